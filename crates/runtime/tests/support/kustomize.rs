//! Renders a kustomization the way `kustomize build` does, for the features
//! dynamo's own kustomizations use, so the manifests can be checked where no
//! kustomize binary can be installed (none is packaged for Debian, PyPI or
//! npm; CI has no kubectl). Where kubectl is installed, `deploy_schemas.rs`
//! compares this rendering with `kubectl kustomize` and fails on any
//! difference, so the two cannot drift apart unnoticed.
//!
//! Supported, and nothing else (an unknown field fails the render):
//! `resources` (files and directories), `namespace`, `labels` (`pairs`
//! only, not selectors), `images` (`name`, `newName`, `newTag`) and
//! `patches`: a strategic-merge patch by `path` (maps merged, other values
//! replaced) or a JSON 6902 patch with a `target` (`replace` and `add` of
//! a plain `/a/b` path).

use super::{documents_of, repo};
use serde_norway::{Mapping, Value};
use std::path::Path;

const KNOWN: &[&str] = &[
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "patches",
];

/// The objects `kustomize build <dir>` would print, `dir` relative to the repository.
pub fn render(dir: &str) -> Vec<Value> {
    build(&repo().join(dir))
}

fn build(dir: &Path) -> Vec<Value> {
    let file = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let kustomization = documents_of(&text, &file.to_string_lossy()).remove(0);
    for key in kustomization.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            KNOWN.contains(&key),
            "{}: `{key}` is not supported here",
            file.display()
        );
    }
    let mut objects = Vec::new();
    for resource in sequence(&kustomization["resources"]) {
        let path = dir.join(resource.as_str().unwrap());
        if path.is_dir() {
            objects.extend(build(&path));
        } else {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            objects.extend(documents_of(&text, &path.to_string_lossy()));
        }
    }
    for patch in sequence(&kustomization["patches"]) {
        apply_patch(dir, patch, &mut objects);
    }
    if let Some(namespace) = kustomization["namespace"].as_str() {
        for object in &mut objects {
            if object["kind"].as_str() != Some("Namespace") {
                set(object, &["metadata", "namespace"], namespace.into());
            }
        }
    }
    for labels in sequence(&kustomization["labels"]) {
        for (key, value) in labels["pairs"].as_mapping().unwrap() {
            for object in &mut objects {
                let key = key.as_str().unwrap();
                set(object, &["metadata", "labels", key], value.clone());
            }
        }
    }
    for image in sequence(&kustomization["images"]) {
        for object in &mut objects {
            retag(object, image);
        }
    }
    objects
}

fn sequence(value: &Value) -> Vec<&Value> {
    value
        .as_sequence()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn set(object: &mut Value, path: &[&str], value: Value) {
    let mut at = object;
    for key in &path[..path.len() - 1] {
        let map = at.as_mapping_mut().unwrap();
        if !map.contains_key(*key) {
            map.insert((*key).into(), Value::Mapping(Mapping::new()));
        }
        at = map.get_mut(*key).unwrap();
    }
    at.as_mapping_mut()
        .unwrap()
        .insert(path[path.len() - 1].into(), value);
}

/// `images:` entries apply to every container whose image has that name.
fn retag(object: &mut Value, image: &Value) {
    let name = image["name"].as_str().unwrap();
    // `get_mut`, not indexing: `IndexMut` would add the missing keys.
    let containers = ["spec", "template", "spec", "containers"]
        .iter()
        .try_fold(&mut *object, |at, key| at.get_mut(*key))
        .and_then(Value::as_sequence_mut);
    let Some(containers) = containers else {
        return;
    };
    for container in containers {
        let current = container["image"].as_str().unwrap().to_owned();
        let (current_name, current_tag) = current.split_once(':').unwrap_or((&current, "latest"));
        if current_name != name {
            continue;
        }
        let new_name = image["newName"].as_str().unwrap_or(current_name);
        let new_tag = image["newTag"].as_str().unwrap_or(current_tag);
        container["image"] = format!("{new_name}:{new_tag}").into();
    }
}

fn apply_patch(dir: &Path, patch: &Value, objects: &mut [Value]) {
    if let Some(path) = patch["path"].as_str() {
        let path = dir.join(path);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for patch in documents_of(&text, &path.to_string_lossy()) {
            let target = objects
                .iter_mut()
                .find(|o| {
                    o["kind"] == patch["kind"] && o["metadata"]["name"] == patch["metadata"]["name"]
                })
                .unwrap_or_else(|| panic!("{}: patches nothing", path.display()));
            merge(target, &patch);
        }
        return;
    }
    let target = &patch["target"];
    let operations = documents_of(patch["patch"].as_str().unwrap(), "a JSON 6902 patch").remove(0);
    let mut patched = 0;
    for object in objects.iter_mut() {
        let group = object["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .map_or("", |(g, _)| g);
        let matches = target["kind"] == object["kind"]
            && target["name"] == object["metadata"]["name"]
            && target["group"].as_str().is_none_or(|g| g == group);
        if !matches {
            continue;
        }
        patched += 1;
        for operation in sequence(&operations) {
            let op = operation["op"].as_str().unwrap();
            assert!(
                op == "replace" || op == "add",
                "JSON patch op {op} is not supported here"
            );
            let path: Vec<&str> = operation["path"]
                .as_str()
                .unwrap()
                .split('/')
                .skip(1)
                .collect();
            set(object, &path, operation["value"].clone());
        }
    }
    assert_eq!(patched, 1, "{target:?} should match one object");
}

/// A strategic-merge patch as kustomize applies it to the maps dynamo patches.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Mapping(target), Value::Mapping(patch)) => {
            for (key, value) in patch {
                match target.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
