//! Reading the deployment files, shared by `deploy_files.rs` and
//! `deploy_schemas.rs`.
#![allow(dead_code)] // each test binary uses a different part of it

pub mod kustomize;

use serde_norway::Value;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read(path: &str) -> String {
    let full = repo().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// All YAML documents of a text (empty ones left out).
pub fn documents_of(text: &str, what: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            serde::Deserialize::deserialize(document).unwrap_or_else(|e| panic!("{what}: {e}"))
        })
        .filter(|document: &Value| !document.is_null())
        .collect()
}

/// All YAML documents of one file of the repository.
pub fn yaml_documents(path: &str) -> Vec<Value> {
    documents_of(&read(path), path)
}

/// The first document of `kind` named `name`.
pub fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Runs a validator and says how it ended. A validator that is not
/// installed fails the test: a check must not pass because its tool is
/// missing (`scripts/test.sh` installs them).
pub fn run(program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("{program} is needed (scripts/test.sh installs it with pip): {error}")
        })
}

/// A file in a fresh temporary directory, removed with the directory when
/// the returned guard drops.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("dynamo-deploy-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
