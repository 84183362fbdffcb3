//! The deployment files cannot drift from the code.
//!
//! Users run dynamo from `docker-compose.yml`, `deploy/kubernetes/`, and watch
//! it with `deploy/grafana/dynamo.json` and `deploy/prometheus/alerts.yml`;
//! none of these can be run here (no Docker, no cluster), so they are kept
//! true by reading them:
//! - `.env.example` names exactly the settings the binaries read (found in
//!   the crates' sources as `env.string("NAME"`, `env.duration("NAME"`, …);
//! - the k8s ConfigMap and Secret hold every one of them, secrets in the
//!   Secret, and nothing else; compose sets only known names;
//! - the dashboard and the alert rules use only metrics the binaries export;
//! - `promtool check rules` accepts the rules and `promtool test rules`
//!   passes their unit tests (promtool required);
//! - the overlay, rendered, probes what dynamo means by its health
//!   endpoints and runs every pod with least privilege.
//!
//! Validation against the schemas is in `deploy_schemas.rs`; compose and
//! the Dockerfile in `deploy_compose.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a file that cannot be read should fail the test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;
use support::{kustomize, read, repo, yaml_documents};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The non-test part of every source file of the crates the binaries are
/// built from (`crates/*/src`, less the test kit): each file up to its
/// `#[cfg(test)]` module.
fn production_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(repo().join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        if krate.file_name().is_some_and(|name| name == "testkit") {
            continue;
        }
        if krate.join("src").is_dir() {
            rust_files(&krate.join("src"), &mut files);
        }
    }
    files.sort();
    assert!(files.len() > 20, "found only {files:?}");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            (path, code)
        })
        .collect()
}

/// The string literal arguments of calls to `methods` in `code`:
/// `env.duration("LEASE_TTL", …)`, also split over lines.
fn literal_arguments<'a>(code: &'a str, methods: &[&str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    for method in methods {
        let call = format!("{method}(");
        let mut rest = code;
        while let Some(at) = rest.find(&call) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + call.len()..];
            // `name(` but not `rename(`: the call starts the identifier.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            // A helper taking the `Env` first: `positive(env, "MAX_CONNECTIONS", …)`.
            let args = rest.trim_start();
            let args = args.strip_prefix("env,").unwrap_or(args);
            let Some(literal) = args.trim_start().strip_prefix('"') else {
                continue;
            };
            if let Some(end) = literal.find('"') {
                found.push(&literal[..end]);
            }
        }
    }
    found
}

/// The settings the binaries read: names passed to `Env`'s getters (and to
/// the broker topology's `name(…)` helper).
fn settings_the_code_reads() -> BTreeSet<String> {
    const GETTERS: &[&str] = &[
        "get",
        "string",
        "optional_string",
        "required_string",
        "secret",
        "required_secret",
        "parse",
        "optional_parse",
        "flag",
        "duration",
        "http_url",
        "optional_http_url",
        "name",
        // The consumer's model chains (OPENAI_IMAGE_MODEL, OPENAI_CHAT_MODEL).
        "model_chain",
        // The server's positive whole-number limits (MAX_CONNECTIONS, ...).
        "positive",
    ];
    let mut names = BTreeSet::new();
    for (_, code) in production_sources() {
        for literal in literal_arguments(&code, GETTERS) {
            let is_setting = literal.len() > 1
                && literal
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_setting {
                names.insert(literal.to_owned());
            }
        }
    }
    names
}

/// The names in `.env.example`, as `--help` reads them.
fn env_example() -> BTreeSet<String> {
    dynamo_runtime::help::settings()
        .into_iter()
        .map(|setting| setting.name.to_owned())
        .collect()
}

/// The settings that are secrets: they go in the k8s Secret.
const SECRETS: &[&str] = &[
    "PGPASSWORD",
    "RMQ_PASSWORD",
    "AUTH_SHARED_SECRET",
    "OPENAI_API_KEY",
    "SPACES_ACCESS_KEY_ID",
    "SPACES_SECRET_KEY",
    "ADMIN_TOKEN_SHA256",
    "TWITCH_TOKEN_KEY",
];

fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
fn env_example_lists_exactly_the_settings_the_code_reads() {
    let code = settings_the_code_reads();
    let listed = env_example();
    // The scan itself works: it finds settings read in several shapes.
    for known in [
        "LEASE_TTL",
        "RMQ_PASSWORD",
        "RMQ_REQUESTS_QUEUE",
        "LOG_FORMAT",
    ] {
        assert!(code.contains(known), "the scan missed {known}: {code:?}");
    }
    assert_eq!(
        difference(&code, &listed),
        Vec::<String>::new(),
        "read by the code but missing from .env.example"
    );
    assert_eq!(
        difference(&listed, &code),
        Vec::<String>::new(),
        "in .env.example but read by no binary"
    );
}

/// `data`/`stringData` keys of the k8s objects of `kind` named `name` in `path`.
fn k8s_keys(path: &str, kind: &str, name: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let mut seen = false;
    for document in yaml_documents(path) {
        if document["kind"].as_str() == Some(kind)
            && document["metadata"]["name"].as_str() == Some(name)
        {
            seen = true;
            for field in ["data", "stringData"] {
                if let Some(map) = document[field].as_mapping() {
                    for (key, value) in map {
                        let value = match value {
                            Value::String(s) => s.clone(),
                            other => panic!("{path}: {key:?} is {other:?}, not a string"),
                        };
                        keys.insert(key.as_str().unwrap().to_owned(), value);
                    }
                }
            }
        }
    }
    assert!(seen, "{path} has no {kind} {name}");
    keys
}

const BASE: &str = "deploy/kubernetes/base";

#[test]
fn the_k8s_config_map_and_secret_hold_every_setting_and_only_settings() {
    let config = k8s_keys(
        &format!("{BASE}/configmap.yaml"),
        "ConfigMap",
        "dynamo-config",
    );
    let secret = k8s_keys(&format!("{BASE}/secret.yaml"), "Secret", "dynamo-secrets");
    let listed = env_example();
    let both: BTreeSet<String> = config.keys().chain(secret.keys()).cloned().collect();
    assert_eq!(
        difference(&listed, &both),
        Vec::<String>::new(),
        "in .env.example but in neither the ConfigMap nor the Secret"
    );
    assert_eq!(
        difference(&both, &listed),
        Vec::<String>::new(),
        "set in k8s but not a dynamo setting"
    );
    for name in SECRETS {
        assert!(secret.contains_key(*name), "{name} is not in the Secret");
        assert!(!config.contains_key(*name), "{name} is in the ConfigMap");
    }
    assert_eq!(config["RMQ_QUORUM_QUEUES"], "true");

    // The overlay's ConfigMap patch sets known names only.
    let overlay = k8s_keys(
        "deploy/kubernetes/overlays/example/config.yaml",
        "ConfigMap",
        "dynamo-config",
    );
    let unknown: Vec<&String> = overlay.keys().filter(|k| !listed.contains(*k)).collect();
    assert!(
        unknown.is_empty(),
        "overlay sets unknown settings {unknown:?}"
    );
}

/// "150s", "10m" → seconds.
fn seconds(duration: &str) -> u64 {
    let (number, unit) = duration.split_at(duration.len() - 1);
    let number: u64 = number.parse().unwrap_or_else(|_| panic!("{duration}"));
    match unit {
        "s" => number,
        "m" => number * 60,
        _ => panic!("{duration}: unit"),
    }
}

/// The one Deployment in `file`, with its container.
fn deployment(file: &str) -> (Value, Value) {
    let documents = yaml_documents(&format!("{BASE}/{file}"));
    let deployment = documents
        .into_iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .unwrap_or_else(|| panic!("{file} has no Deployment"));
    let container = deployment["spec"]["template"]["spec"]["containers"][0].clone();
    (deployment, container)
}

#[test]
fn the_k8s_deployments_take_the_settings_probe_health_and_outlast_the_grace() {
    let config = k8s_keys(
        &format!("{BASE}/configmap.yaml"),
        "ConfigMap",
        "dynamo-config",
    );
    let listed = env_example();
    // KEDA owns the consumer's count: a `replicas` would reset it on every
    // `kubectl apply`. The Twitch intake runs in whichever consumer holds
    // its lease: it has no Deployment of its own.
    for (file, port, replicas) in [
        ("server.yaml", 8080, Some(2)),
        ("consumer.yaml", 8081, None),
    ] {
        let (deployment, container) = deployment(file);
        assert_eq!(deployment["spec"]["replicas"].as_u64(), replicas, "{file}");
        let from: Vec<&str> = container["envFrom"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{file}: no envFrom"))
            .iter()
            .filter_map(|source| {
                source["configMapRef"]["name"]
                    .as_str()
                    .or(source["secretRef"]["name"].as_str())
            })
            .collect();
        assert_eq!(from, ["dynamo-config", "dynamo-secrets"], "{file}");
        // Any variable set one by one is a setting too.
        for variable in container["env"].as_sequence().into_iter().flatten() {
            let name = variable["name"].as_str().unwrap();
            assert!(listed.contains(name), "{file} sets unknown {name}");
        }
        // The ports the probes use are the ones the binaries listen on.
        let container_port = container["ports"][0]["containerPort"].as_u64();
        assert_eq!(container_port, Some(port), "{file}");
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"].as_str(),
            Some("/livez")
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"].as_str(),
            Some("/readyz")
        );
        for kind in ["requests", "limits"] {
            assert!(
                container["resources"][kind]["memory"].is_string(),
                "{file}: no memory {kind}"
            );
        }
    }
    assert_eq!(config["LISTEN_PORT"], "8080");
    assert!(config["CONSUMER_HEALTH_ADDR"].ends_with(":8081"));

    let (consumer, _) = deployment("consumer.yaml");
    let grace = consumer["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("consumer terminationGracePeriodSeconds");
    let shutdown = seconds(&config["SHUTDOWN_GRACE"]);
    assert!(
        grace > shutdown,
        "the kubelet kills the consumer after {grace}s, before SHUTDOWN_GRACE ({shutdown}s) is over"
    );
}

#[test]
fn keda_scales_the_consumer_on_the_request_queue() {
    let config = k8s_keys(
        &format!("{BASE}/configmap.yaml"),
        "ConfigMap",
        "dynamo-config",
    );
    let documents = yaml_documents(&format!("{BASE}/keda.yaml"));
    let scaled = documents
        .iter()
        .find(|d| d["kind"].as_str() == Some("ScaledObject"))
        .expect("a ScaledObject");
    assert_eq!(scaled["apiVersion"].as_str(), Some("keda.sh/v1alpha1"));
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"].as_str(),
        Some("dynamo-consumer")
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"].as_str(), Some("rabbitmq"));
    assert_eq!(trigger["metadata"]["mode"].as_str(), Some("QueueLength"));
    assert_eq!(
        trigger["metadata"]["queueName"].as_str(),
        Some(config["RMQ_REQUESTS_QUEUE"].as_str()),
        "KEDA watches another queue than the one dynamo consumes"
    );
    let auth_name = trigger["authenticationRef"]["name"].as_str().unwrap();
    let auth = documents
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("TriggerAuthentication")
                && d["metadata"]["name"].as_str() == Some(auth_name)
        })
        .expect("the TriggerAuthentication the trigger names");
    let reference = &auth["spec"]["secretTargetRef"][0];
    assert_eq!(reference["parameter"].as_str(), Some("host"));
    let secret = k8s_keys(
        &format!("{BASE}/secret.yaml"),
        "Secret",
        reference["name"].as_str().unwrap(),
    );
    assert!(secret.contains_key(reference["key"].as_str().unwrap()));

    // Every file the base lists exists, and every manifest is listed.
    let kustomization = &yaml_documents(&format!("{BASE}/kustomization.yaml"))[0];
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo().join(BASE))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed,
        on_disk.iter().map(String::as_str).collect(),
        "{BASE}/kustomization.yaml"
    );
}

#[test]
fn compose_sets_only_settings_and_the_consumer_scales() {
    let compose = &yaml_documents("docker-compose.yml")[0];
    let listed = env_example();
    let services = compose["services"].as_mapping().unwrap();
    let dynamo_services = ["consumer", "server", "watch"];
    for name in dynamo_services {
        let service = &compose["services"][name];
        let environment = service["environment"]
            .as_mapping()
            .unwrap_or_else(|| panic!("compose service {name}: no environment map"));
        for key in environment.keys() {
            let key = key.as_str().unwrap();
            assert!(
                listed.contains(key),
                "compose service {name} sets unknown {key}"
            );
        }
        assert_eq!(
            environment.get("RMQ_QUORUM_QUEUES").and_then(Value::as_str),
            Some("${RMQ_QUORUM_QUEUES:-true}"),
            "compose service {name}: quorum queues by default"
        );
    }
    assert!(services.len() > dynamo_services.len());
    // `docker compose up --scale consumer=3`: copies of one service cannot
    // share a container name or a host port.
    let consumer = &compose["services"]["consumer"];
    assert!(
        consumer["container_name"].is_null(),
        "consumer has a container_name"
    );
    assert!(consumer["ports"].is_null(), "consumer publishes host ports");
}

/// Metric names the binaries export: the `dynamo_*` string literals of
/// their sources (HELP tables, encoder descriptors, `# HELP` lines), with
/// `_total` added to those registered with prometheus-client as counters
/// (its encoder adds the suffix).
fn exported_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, code) in production_sources() {
        for (at, _) in code.match_indices("\"dynamo_") {
            let literal = &code[at + 1..];
            let end = literal.find('"').unwrap();
            let literal = &literal[..end];
            if literal.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                names.insert(literal.to_owned());
            }
        }
        for (at, _) in code.match_indices("# HELP dynamo_") {
            let name: String = code[at + "# HELP ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            names.insert(name);
        }
        // `registered!` is the consumer's register-and-keep macro (pipeline/src/metrics.rs).
        for literal in literal_arguments(&code, &["register", "registered!"]) {
            let registered = code.find(&format!("\"{literal}\"")).unwrap();
            if code[..registered].contains("Counter>") {
                names.remove(literal);
                names.insert(format!("{literal}_total"));
            }
        }
    }
    names
}

/// The `dynamo_*` metric names in a PromQL expression.
fn metrics_in(expression: &str, into: &mut BTreeSet<String>) {
    for (at, _) in expression.match_indices("dynamo_") {
        let name: String = expression[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        into.insert(name);
    }
}

fn dashboard_metrics() -> BTreeSet<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dynamo.json")).expect("dashboard JSON");
    let mut used = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            metrics_in(target["expr"].as_str().expect("expr"), &mut used);
        }
    }
    used
}

fn alert_metrics() -> BTreeSet<String> {
    let rules = &yaml_documents("deploy/prometheus/alerts.yml")[0];
    let mut used = BTreeSet::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            metrics_in(rule["expr"].as_str().expect("expr"), &mut used);
        }
    }
    used
}

#[test]
fn the_dashboard_and_alerts_use_only_exported_metrics() {
    let exported = exported_metrics();
    for known in [
        "dynamo_requests_finished_total",
        "dynamo_queue_depth",
        "dynamo_http_requests_total",
    ] {
        assert!(
            exported.contains(known),
            "the scan missed {known}: {exported:?}"
        );
    }
    assert!(!exported.contains("dynamo_http_requests"), "{exported:?}");
    let dashboard = dashboard_metrics();
    let alerts = alert_metrics();
    for (file, used) in [
        ("deploy/grafana/dynamo.json", &dashboard),
        ("deploy/prometheus/alerts.yml", &alerts),
    ] {
        assert!(used.len() >= 3, "{file} uses {used:?}");
        assert_eq!(
            difference(used, &exported),
            Vec::<String>::new(),
            "{file} uses metrics no binary exports"
        );
    }
    // The ones the brief names are on the dashboard.
    for wanted in [
        "dynamo_requests_finished_total",
        "dynamo_step_seconds_total",
        "dynamo_step_total",
        "dynamo_queue_depth",
        "dynamo_rate_limiter_wait_seconds_total",
        "dynamo_upstream_holds_total",
        "dynamo_recovered_total",
        "dynamo_retries_total",
        "dynamo_http_requests_total",
        "dynamo_upstream_held_seconds",
        "dynamo_spend_today_usd",
        "dynamo_spend_broadcast_usd",
        "dynamo_daily_budget_usd",
        "dynamo_image_spend_usd_total",
        "dynamo_model_shutdown_days",
    ] {
        assert!(dashboard.contains(wanted), "the dashboard lacks {wanted}");
    }
    // The hold alert reads the gauge that lasts as long as the hold.
    assert!(
        alerts.contains("dynamo_upstream_held_seconds"),
        "{alerts:?}"
    );
}

/// `promtool check rules` accepts the rules and `promtool test rules` runs
/// their unit tests (`alerts.test.yml`: a 20-minute hold keeps its alert
/// firing to the end). promtool is required: scripts/test.sh installs it.
#[test]
fn promtool_accepts_the_alert_rules_and_their_tests_pass() {
    let dir = repo().join("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let output = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|error| {
                panic!("promtool is needed (scripts/test.sh installs Debian's prometheus): {error}")
            });
        assert!(
            output.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains("SUCCESS"),
            "promtool {}: {said}",
            args.join(" ")
        );
    }
}

/// The overlay renders (`support::kustomize`, compared with `kubectl
/// kustomize` in deploy_schemas.rs where kubectl is installed) into objects
/// that all live in its namespace, run its image, and keep every setting
/// after its ConfigMap patch.
#[test]
fn the_example_overlay_renders() {
    let documents = kustomize::render("deploy/kubernetes/overlays/example");
    assert!(documents.len() >= 11, "{documents:?}");
    for document in &documents {
        let kind = document["kind"].as_str().unwrap();
        // The overlay's own Namespace is neither in itself nor labelled by the base.
        if kind != "Namespace" {
            assert_eq!(
                document["metadata"]["namespace"].as_str(),
                Some("dynamo"),
                "{kind} {:?}",
                document["metadata"]["name"]
            );
            assert_eq!(
                document["metadata"]["labels"]["app.kubernetes.io/part-of"].as_str(),
                Some("dynamo"),
                "{kind}"
            );
        }
        if kind == "Deployment" {
            let image = &document["spec"]["template"]["spec"]["containers"][0]["image"];
            assert_eq!(image.as_str(), Some("registry.example.com/dynamo:0.1.0"));
        }
        if kind == "ConfigMap" && document["metadata"]["name"] == "dynamo-config" {
            let keys: BTreeSet<String> = document["data"]
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect();
            let secrets: BTreeSet<String> = SECRETS.iter().map(|s| s.to_string()).collect();
            let missing: Vec<String> = difference(&env_example(), &keys)
                .into_iter()
                .filter(|name| !secrets.contains(name))
                .collect();
            assert!(missing.is_empty(), "the patched ConfigMap lost {missing:?}");
            assert_eq!(
                document["data"]["PGHOST"].as_str(),
                Some("postgres.databases.svc.cluster.local")
            );
        }
        if kind == "ScaledObject" {
            assert_eq!(document["spec"]["maxReplicaCount"].as_u64(), Some(20));
        }
    }
}

/// What Kubernetes does with the probes is what dynamo means by them
/// (issue 25 item 2): liveness on `/livez` (nothing outside the process
/// restarts it), the server's readiness on `/readyz`, which stays 200 while
/// the broker or a hold is away (crates/server/tests/outages.rs), with a
/// timeout the 1 s database answer fits in; KEDA scales down by a stated
/// behaviour; every pod runs with least privilege (issue 23 item 6).
#[test]
fn the_rendered_pods_probe_what_they_mean_and_run_with_least_privilege() {
    let documents = kustomize::render("deploy/kubernetes/overlays/example");
    let deployments: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .collect();
    assert_eq!(deployments.len(), 2, "the server and the consumer");
    for deployment in &deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{name}"
        );
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}"
        );
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{name}"
        );
        for container in pod["containers"].as_sequence().unwrap() {
            let security = &container["securityContext"];
            assert_eq!(
                security["capabilities"]["drop"],
                serde_norway::from_str::<Value>("[ALL]").unwrap(),
                "{name}"
            );
            assert_eq!(
                security["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}"
            );
            assert_eq!(
                security["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{name}"
            );
            let port = container["ports"][0]["name"].as_str().unwrap();
            for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
                let probe = &container[probe];
                assert_eq!(probe["httpGet"]["path"].as_str(), Some(path), "{name}");
                assert_eq!(probe["httpGet"]["port"].as_str(), Some(port), "{name}");
                // PROBE_TIMEOUT in crates/server/tests/outages.rs: the
                // server answers within it during a database outage.
                assert_eq!(probe["timeoutSeconds"].as_u64(), Some(3), "{name}");
            }
        }
    }
    // Any consumer may run the intake (one at a time, through its lease in
    // PostgreSQL): no Deployment of its own, no "exactly one" rule.
    assert!(
        !documents
            .iter()
            .any(|d| d["metadata"]["name"].as_str() == Some("dynamo-twitch-intake")),
        "the intake needs no Deployment of its own"
    );
    let config = support::find(&documents, "ConfigMap", "dynamo-config");
    assert_eq!(
        config["data"]["TWITCH_INTAKE"].as_str(),
        Some("false"),
        "off until the Twitch settings are in; then on for every consumer"
    );
    assert_ne!(
        config["data"]["PGUSER"].as_str(),
        Some("postgres"),
        "not the superuser"
    );

    let scaled = support::find(&documents, "ScaledObject", "dynamo-consumer");
    let behavior = &scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"];
    assert!(
        behavior["scaleDown"]["policies"][0]["value"]
            .as_u64()
            .is_some(),
        "{scaled:?}"
    );
    assert!(
        behavior["scaleDown"]["stabilizationWindowSeconds"]
            .as_u64()
            .is_some()
    );
    let consumer = support::find(&documents, "Deployment", "dynamo-consumer");
    assert!(
        consumer["spec"]["replicas"].is_null(),
        "KEDA owns the consumer's replicas"
    );
}

/// The example's styles (README "Styles", issue 28): a ConfigMap holding
/// styles.toml, applied by a Job running `dynamoctl styles apply` on it with
/// the settings every binary takes, as least privileged as the Deployments.
#[test]
fn the_example_applies_its_styles_file_with_a_job() {
    let documents = kustomize::render("deploy/kubernetes/overlays/example");
    let styles = support::find(&documents, "ConfigMap", "dynamo-styles");
    let file = styles["data"]["styles.toml"].as_str().unwrap();
    assert!(file.contains("[[style]]\nid = \"sticker\""), "{file}");
    let job = support::find(&documents, "Job", "dynamo-styles");
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"].as_str(),
        Some("registry.example.com/dynamo:0.1.0")
    );
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let command: Vec<&str> = container["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        command,
        [
            "dynamoctl",
            "styles",
            "apply",
            &format!("{mount}/styles.toml")
        ]
    );
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "dynamo-styles");
    let sources: Vec<&str> = container["envFrom"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| {
            s["configMapRef"]["name"]
                .as_str()
                .or(s["secretRef"]["name"].as_str())
        })
        .collect();
    assert_eq!(sources, ["dynamo-config", "dynamo-secrets"]);
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
}
