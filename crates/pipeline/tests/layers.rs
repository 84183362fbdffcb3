//! The crate's modules import each other without a circle, and `run` (the
//! shared vocabulary) and `stage` (which stage runs next) import nothing of
//! the crate: read from the sources,
//! so a new `use crate::…` that closes a circle fails here, naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a source it cannot read should fail it

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of `src/` and the modules of the crate it names (`crate::x`),
/// outside comments and its unit tests. A directory (`steps/`) is one
/// module: its files together.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("the crate's src/") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let files = if path.is_dir() {
            std::fs::read_dir(&path)
                .expect("a module's directory")
                .map(|entry| entry.expect("a directory entry").path())
                .filter(|path| path.extension().is_some_and(|e| e == "rs"))
                .collect()
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            vec![path]
        } else {
            Vec::new()
        };
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = code
                .lines()
                .map(|line| line.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            sources.entry(name.clone()).or_default().push_str(&code);
        }
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, code)| {
            let named = code
                .split("crate::")
                .skip(1)
                .flat_map(named_modules)
                .filter(|name| modules.contains(name) && name != module)
                .collect();
            (module.clone(), named)
        })
        .collect()
}

/// The modules named right after one `crate::`: one (`crate::gate::Gate`),
/// or each of a group (`crate::{gate::Gate, limits}`).
fn named_modules(rest: &str) -> Vec<String> {
    let first = |path: &str| {
        path.trim()
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    match rest.strip_prefix('{') {
        // A group ends at its first `}`; a nested group's names are
        // not modules of the crate and are dropped by the caller.
        Some(group) => group
            .split('}')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(first)
            .collect(),
        None => vec![first(rest)],
    }
}

#[test]
fn a_group_import_names_each_module() {
    assert_eq!(
        named_modules("{gate::Gate, limits::Endpoint};"),
        ["gate", "limits"]
    );
    assert_eq!(named_modules("run::Next;"), ["run"]);
}

/// A circle through `from`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        let last = path.last()?.clone();
        for next in graph.get(&last).into_iter().flatten() {
            if *next == path[0] {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if !path.contains(next) {
                path.push(next.clone());
                if let Some(found) = walk(graph, path) {
                    return Some(found);
                }
                path.pop();
            }
        }
        None
    }
    walk(graph, &mut vec![from.to_owned()])
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(
        ["request", "run", "stage", "steps"]
            .iter()
            .all(|module| graph.contains_key(*module)),
        "{graph:?}"
    );
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|module| circle(&graph, module))
        .map(|path| path.join(" -> "))
        .collect();
    assert_eq!(circles, Vec::<String>::new());
}

#[test]
fn the_shared_vocabulary_is_a_leaf() {
    assert_eq!(imports()["run"], BTreeSet::new());
}

/// The loop picks a stage and the steps run it: both read `stage`, which
/// reads neither, and the loop reaches a stage's code only through the
/// dispatch (a method), never by naming `steps`.
#[test]
fn the_stages_are_a_leaf_and_the_loop_does_not_name_their_code() {
    let graph = imports();
    assert_eq!(graph["stage"], BTreeSet::new());
    assert!(graph["request"].contains("stage"), "{:?}", graph["request"]);
    assert!(
        !graph["request"].contains("steps"),
        "{:?}",
        graph["request"]
    );
}
