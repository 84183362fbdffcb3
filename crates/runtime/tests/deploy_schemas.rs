//! The deployment files checked as their tools would check them, since
//! neither Docker nor a cluster runs here (issues 25 item 4 and 27 item 6):
//! - the Kubernetes overlay rendered (`support::kustomize`, compared with
//!   `kubectl kustomize` where kubectl is installed) and every object
//!   validated offline: core kinds by `kubernetes-validate --strict` (PyPI,
//!   ships the Kubernetes schemas), KEDA's by `check-jsonschema` against
//!   schemas made from KEDA's CRDs (`deploy/schemas/`);
//! - `docker-compose.yml` by `check-jsonschema` against the compose
//!   specification's schema (`deploy/schemas/compose-spec.json`);
//! - each validator shown to refuse a broken copy, so a check cannot pass
//!   because it checks nothing. A missing validator fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a file that cannot be read should fail the test

mod support;

use serde_norway::Value;
use support::{Scratch, find, kustomize, read, repo, run};

const OVERLAY: &str = "deploy/kubernetes/overlays/example";
const SCHEMAS: &str = "deploy/schemas";

fn schema(name: &str) -> String {
    repo()
        .join(SCHEMAS)
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A YAML stream of `documents`, each written as JSON: JSON is YAML, and
/// unlike YAML writers it cannot leave a string such as `off` unquoted for
/// a YAML 1.1 reader (the validators' PyYAML) to take for a boolean.
fn yaml(documents: &[Value]) -> String {
    documents
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn is_keda(document: &Value) -> bool {
    document["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("keda.sh/"))
}

/// `kubernetes-validate --strict` on `documents`: Ok, or what it said.
fn kubernetes_validate(documents: &[Value]) -> Result<String, String> {
    let scratch = Scratch::new();
    let file = scratch.write("core.yaml", &yaml(documents));
    // Nothing passes for want of documents.
    assert!(!documents.is_empty());
    let output = run("kubernetes-validate", &["--strict", &file]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // An unknown kind is only a warning to it: here it is a failure.
    if output.status.success() && !said.contains("Couldn't find schema") {
        Ok(said)
    } else {
        Err(said)
    }
}

/// `check-jsonschema` of one YAML text against a schema file: Ok, or what it said.
fn check_jsonschema(schema_file: &str, text: &str) -> Result<(), String> {
    let scratch = Scratch::new();
    let file = scratch.write("document.yaml", text);
    let output = run("check-jsonschema", &["--schemafile", schema_file, &file]);
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `deploy/schemas/keda-<kind>-<version>.json` for a KEDA object.
fn keda_schema(document: &Value) -> String {
    let version = document["apiVersion"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let kind = document["kind"].as_str().unwrap().to_lowercase();
    schema(&format!("keda-{kind}-{version}.json"))
}

/// Sorted by kind and name, as kubectl prints them in its own order.
fn by_identity(mut documents: Vec<Value>) -> Vec<Value> {
    documents.sort_by_key(|d| {
        (
            d["kind"].as_str().unwrap().to_owned(),
            d["metadata"]["name"].as_str().unwrap().to_owned(),
        )
    });
    documents
}

#[test]
fn the_overlay_renders_as_kubectl_kustomize_renders_it() {
    let rendered = by_identity(kustomize::render(OVERLAY));
    // No intake Deployment since any consumer may run the intake (issue 29).
    assert!(rendered.len() >= 11, "{rendered:?}");
    let overlay = repo().join(OVERLAY);
    match std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&overlay)
        .output()
    {
        Ok(output) => {
            assert!(
                output.status.success(),
                "kubectl kustomize {}:\n{}",
                overlay.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            let text = String::from_utf8(output.stdout).unwrap();
            let kubectl = by_identity(support::documents_of(&text, "kubectl kustomize"));
            assert_eq!(
                rendered, kubectl,
                "the test's renderer and kubectl disagree"
            );
        }
        // The rendering is still checked below and in deploy_files.rs;
        // only the comparison needs kubectl (not packaged for CI).
        Err(error) => println!("not compared with kubectl kustomize: {error}"),
    }
}

#[test]
fn every_rendered_object_validates_against_its_schema_offline() {
    let rendered = kustomize::render(OVERLAY);
    let (keda, core): (Vec<Value>, Vec<Value>) = rendered.into_iter().partition(is_keda);
    assert!(core.len() >= 9, "{core:?}");
    assert_eq!(keda.len(), 2, "ScaledObject and TriggerAuthentication");

    let said = kubernetes_validate(&core).unwrap_or_else(|said| panic!("{said}"));
    // It really looked at each of them.
    for document in &core {
        let name = document["metadata"]["name"].as_str().unwrap();
        assert!(
            said.contains(&format!("/{name} ")),
            "not validated: {name}\n{said}"
        );
    }
    for document in &keda {
        check_jsonschema(
            &keda_schema(document),
            &yaml(std::slice::from_ref(document)),
        )
        .unwrap_or_else(|said| panic!("{:?}: {said}", document["kind"]));
    }

    // And each validator refuses what a cluster would refuse.
    let mut broken = core.clone();
    let deployment = broken
        .iter_mut()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] =
        "/livez".into();
    let refused = kubernetes_validate(&broken).expect_err("an unknown probe field passed");
    assert!(refused.contains("pathh"), "{refused}");

    let scaled = find(&keda, "ScaledObject", "dynamo-consumer");
    let mut broken = scaled.clone();
    broken["spec"]["minReplicaCount"] = "two".into();
    let refused = check_jsonschema(&keda_schema(scaled), &yaml(&[broken]))
        .expect_err("a string replica count passed");
    assert!(refused.contains("minReplicaCount"), "{refused}");
    let mut broken = scaled.clone();
    broken["spec"]["cooldwnPeriod"] = 300.into();
    check_jsonschema(&keda_schema(scaled), &yaml(&[broken]))
        .expect_err("an unknown ScaledObject field passed");
}

#[test]
fn compose_validates_against_the_compose_specification() {
    let compose = read("docker-compose.yml");
    check_jsonschema(&schema("compose-spec.json"), &compose)
        .unwrap_or_else(|said| panic!("{said}"));
    let broken = compose.replacen(
        "    restart: unless-stopped",
        "    restart: unless-stopped\n    container_nme: x",
        1,
    );
    assert_ne!(broken, compose);
    let refused = check_jsonschema(&schema("compose-spec.json"), &broken)
        .expect_err("an unknown service field passed");
    assert!(refused.contains("container_nme"), "{refused}");
    // The schemas' sources are named beside them.
    let sources = read(&format!("{SCHEMAS}/README.md"));
    for file in [
        "compose-spec.json",
        "keda-scaledobject-v1alpha1.json",
        "keda-triggerauthentication-v1alpha1.json",
    ] {
        assert!(
            sources.contains(file),
            "{SCHEMAS}/README.md does not say where {file} comes from"
        );
    }
}
