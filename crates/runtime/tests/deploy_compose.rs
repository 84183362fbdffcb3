//! The Docker side, read as Docker would read it (nothing here runs Docker):
//! - compose pulls only the images the README lists with their tag, why each
//!   was chosen and the date checked (issue 25: `minio/minio` vanished from
//!   Docker Hub and nothing here noticed);
//! - no published port listens on every interface by accident: bound to
//!   127.0.0.1 (or a variable defaulting to it), or a comment on the line says
//!   why not (the development token and passwords are public);
//! - every service has a healthcheck;
//! - the image's user owns its home and the filesystem storage directory
//!   (the Dockerfile's `useradd`, `WORKDIR` and `USER` read together), and
//!   compose mounts the images volume there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a file that cannot be read should fail the test

mod support;

use serde_norway::Value;
use std::collections::BTreeSet;
use support::{read, yaml_documents};

fn compose() -> Value {
    yaml_documents("docker-compose.yml").remove(0)
}

/// `(image, tag)` rows of the README's table under `### Images the compose
/// file uses`: `| \`image\` | \`tag\` | why | YYYY-MM-DD |`.
fn readme_images() -> BTreeSet<(String, String)> {
    let readme = read("README.md");
    let section = readme
        .split("### Images the compose file uses")
        .nth(1)
        .expect("README has a section `### Images the compose file uses`");
    let mut rows = BTreeSet::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (Some(image), Some(tag)) = (
            cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
            cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
        ) else {
            continue; // the header and its rule
        };
        assert_eq!(cells.len(), 4, "{line}: image, tag, why, date checked");
        assert!(cells[2].len() > 20, "{line}: say why this image");
        let date = cells[3];
        let is_date = date.len() == 10
            && date.chars().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        assert!(is_date, "{line}: the date checked, YYYY-MM-DD");
        rows.insert((image.to_owned(), tag.to_owned()));
    }
    rows
}

#[test]
fn compose_pulls_only_the_images_the_readme_lists() {
    let listed = readme_images();
    assert!(listed.len() >= 3, "{listed:?}");
    let compose = compose();
    let mut used = BTreeSet::new();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if let Some(image) = service["image"].as_str() {
            let (image, tag) = image
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{name}: {image} has no tag: pin one"));
            assert_ne!(tag, "latest", "{name}: pin a tag, not latest");
            used.insert((image.to_owned(), tag.to_owned()));
        } else {
            assert!(
                service["build"].is_string(),
                "{name}: neither image nor build"
            );
        }
    }
    // The Dockerfile's stages (what `build: .` pulls) count too.
    for line in read("Dockerfile").lines() {
        if let Some(from) = line.strip_prefix("FROM ") {
            let image = from.split_whitespace().next().unwrap();
            let (image, tag) = image
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("the Dockerfile's {image} has no tag"));
            used.insert((image.to_owned(), tag.to_owned()));
        }
    }
    let unlisted: Vec<_> = used.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "compose or the Dockerfile uses images the README does not list: {unlisted:?}"
    );
    let unused: Vec<_> = listed.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the README lists images nothing uses: {unused:?}"
    );
}

/// The host address of a published port, `${VAR:-default}` read as its default.
fn host_address(port: &str) -> Option<String> {
    let port = if let Some(rest) = port.strip_prefix("${") {
        let (variable, after) = rest.split_once('}').unwrap();
        let default = variable.split_once(":-").map_or("", |(_, d)| d);
        format!("{default}{after}")
    } else {
        port.to_owned()
    };
    let parts: Vec<&str> = port.split(':').collect();
    // HOST:PUBLISHED:TARGET has an address; PUBLISHED:TARGET or TARGET has none.
    (parts.len() == 3).then(|| parts[0].to_owned())
}

#[test]
fn no_published_port_listens_on_every_interface_by_accident() {
    // The check itself tells the cases apart.
    assert_eq!(
        host_address("127.0.0.1:5432:5432").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        host_address("${DYNAMO_BIND:-127.0.0.1}:8080:8080").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(host_address("5432:5432"), None);

    let text = read("docker-compose.yml");
    let compose = compose();
    let mut published = 0;
    for (name, service) in compose["services"].as_mapping().unwrap() {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port
                .as_str()
                .unwrap_or_else(|| panic!("{name:?}: write ports as strings"));
            published += 1;
            if matches!(host_address(port).as_deref(), Some("127.0.0.1" | "[::1]")) {
                continue;
            }
            // Every interface: only with a comment on its line saying why.
            let line = text.lines().find(|line| line.contains(port)).unwrap();
            assert!(
                line.split_once('#')
                    .is_some_and(|(_, why)| why.contains("all interfaces")),
                "{name:?} publishes {port} on every interface; bind it to 127.0.0.1 or say why \
                 on its line (`# all interfaces: …`)"
            );
        }
    }
    assert!(published >= 3, "no published ports found");
}

#[test]
fn every_compose_service_has_a_healthcheck() {
    let compose = compose();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let test = &service["healthcheck"]["test"];
        assert!(
            test.as_sequence().is_some_and(|t| t.len() >= 2),
            "{name:?} has no healthcheck"
        );
    }
}

/// The last stage's instructions, continuation lines joined.
fn runtime_stage() -> Vec<String> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    lines[last_from..].to_vec()
}

fn instruction<'a>(stage: &'a [String], name: &str) -> &'a str {
    stage
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("the runtime stage has no {name}"))
        .trim()
}

#[test]
fn the_image_user_owns_its_home_and_the_storage_directory() {
    let stage = runtime_stage();
    let user = instruction(&stage, "USER");
    let workdir = instruction(&stage, "WORKDIR");
    let run = stage
        .iter()
        .filter_map(|l| l.strip_prefix("RUN "))
        .collect::<Vec<_>>()
        .join(" && ");
    let words: Vec<&str> = run.split_whitespace().collect();
    let useradd = words
        .iter()
        .position(|w| *w == "useradd")
        .expect("the runtime stage creates its user");
    let command: Vec<&str> = words[useradd..]
        .iter()
        .take_while(|w| **w != "&&")
        .copied()
        .collect();
    assert_eq!(
        command.last(),
        Some(&user),
        "useradd creates the USER: {command:?}"
    );
    assert!(
        command.contains(&"--create-home") || command.contains(&"-m"),
        "useradd makes no home, so WORKDIR would be root's: {command:?}"
    );
    let home = command
        .iter()
        .position(|w| *w == "--home-dir" || *w == "-d")
        .map_or(format!("/home/{user}"), |at| command[at + 1].to_owned());
    assert_eq!(workdir, home, "WORKDIR is the user's home");

    // STORAGE_DIR's default, ./data/images, exists and is the user's: a
    // volume mounted on it starts out with that owner.
    let storage = format!("{home}/data/images");
    let created = run.contains(&format!("install -d -o {user} -g {user} {storage}"));
    assert!(
        created,
        "the runtime stage does not create {storage} owned by {user}: {run}"
    );

    // Compose mounts the images volume there, in every dynamo service.
    let compose = compose();
    for name in ["consumer", "server"] {
        let service = &compose["services"][name];
        let volumes: Vec<&str> = service["volumes"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name}: no volumes"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            volumes.contains(&format!("images:{home}/data").as_str()),
            "{name}: {volumes:?}"
        );
        assert_eq!(
            service["environment"]["STORAGE_DIR"].as_str(),
            Some(storage.as_str()),
            "{name}"
        );
    }
}
