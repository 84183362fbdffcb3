//! The OpenAPI document tells the truth (issue 23 item 7): schemathesis
//! generates requests from `/openapi.json` and checks every answer against
//! it (`--checks all`: no 5xx, every status and body documented, what the
//! document allows accepted, what it forbids refused), its stateful phase
//! following the document's links from `POST /requests` to the request's
//! own routes. Bounded by tests/schemathesis.toml: a fixed number of
//! examples per operation and a fixed seed, so a run takes about a minute on
//! two cores.
//!
//! Needs `schemathesis` on the PATH (scripts/test.sh installs it from PyPI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::Server;
use dynamo_testkit::TestWorld;
use std::process::Stdio;
use std::time::Duration;

/// The event streams never end, so they are left out of the generated
/// requests (their errors are tested in shedding.rs and bad_values.rs).
const STREAMS: &str = "/events$";

/// One run of schemathesis against `base`: its exit status and output.
async fn schemathesis(
    base: &str,
    admin: &str,
    config: &str,
) -> (std::process::ExitStatus, String, String) {
    // schemathesis keeps a crash cache in its working directory: a scratch one.
    let scratch =
        std::env::temp_dir().join(format!("dynamo-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let run = tokio::process::Command::new("schemathesis")
        .current_dir(&scratch)
        .args(["--config-file", config])
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--workers", "2"])
        .args(["--exclude-path-regex", STREAMS])
        .args(["--request-timeout", "10"])
        .arg("--no-color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect(
            "schemathesis is installed (scripts/test.sh installs it: pip install schemathesis)",
        );
    let output = tokio::time::timeout(Duration::from_secs(600), run.wait_with_output())
        .await
        .expect("schemathesis ends within its bound")
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_mismatch_with_the_document() {
    // Its requests without a token would soon limit the test's address.
    let server = Server::start_in(TestWorld::start().await, |env| {
        // The gallery on, so its pages are checked too (off, they only 404).
        env.with("AUTH_FAILURE_LIMIT", "0")
            .with("PUBLIC_GALLERY", "true")
            .with("PUBLIC_BASE_URL", "http://dynamo.example")
    })
    .await;
    // A consumer (placeholder images) records what is enqueued, so the ids
    // POST /requests answers lead somewhere.
    let consumer = server.start_consumer().await;
    let admin = server.admin();
    let base = server.base.clone();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let mut attempt = 1;
    let stdout = loop {
        let (status, stdout, stderr) = schemathesis(&base, &admin, config).await;
        if status.success() {
            break stdout;
        }
        // CPython 3.11.7 (this machine's) can raise "AST constructor
        // recursion depth mismatch" (a CPython bug, gh-106905) inside
        // hypothesis while it describes a filter: a crash of the tool, not a
        // finding about dynamo. That crash alone earns one more run; any
        // other failure, or the crash twice, fails the test.
        let tool_crash_only = stdout.contains("AST constructor recursion depth mismatch")
            && !stdout.contains("=== FAILURES ===");
        assert!(
            tool_crash_only && attempt == 1,
            "schemathesis found mismatches:\n{stdout}\n{stderr}"
        );
        println!("schemathesis crashed inside CPython 3.11.7's ast (gh-106905); running it again");
        attempt += 1;
    };
    println!("{stdout}");
    // Only a link from POST /requests's answer gives a request id that
    // exists: a 200 from GET /requests/{id} is the stateful phase's.
    let metrics = server.metrics().await;
    let followed = |route: &str, status: &str| {
        metrics.lines().any(|line| {
            line.contains(&format!(r#"route="{route}""#))
                && line.contains(&format!(r#"status="{status}""#))
                && line.contains(r#"method="GET""#)
        })
    };
    assert!(
        followed("/requests/{id}", "200"),
        "the stateful phase reached GET /requests/{{id}} with a real id:\n{stdout}"
    );
    consumer.stop().await;
}
