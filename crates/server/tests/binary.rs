//! The real `dynamo-server` binary: its help and version.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{assert_version, help_of};

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-server");

#[test]
fn help_lists_the_settings_and_starts_nothing_without_any_environment() {
    // With no environment every default holds, and on this machine that is a
    // server that would start and keep running; --help must exit instead.
    let stdout = help_of(BINARY);
    for setting in [
        "PGHOST=localhost",
        "RMQ_HOST=localhost",
        "LISTEN_PORT=8080",
        "AUTH_MODE=goldenvcr",
        "ADMIN_TOKEN_SHA256=",
        "STORAGE_DIR=./data/images",
        "LOG_FORMAT=text",
    ] {
        assert!(
            stdout.contains(setting),
            "{setting} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains(".env.example"), "{stdout}");
    assert!(
        stdout.contains("dev-admin-token"),
        "points at the local stack's token: {stdout}"
    );
    assert!(
        !stdout.contains("OPENAI_API_KEY"),
        "the consumer's settings are not the server's"
    );
}

#[test]
fn version_prints_the_version() {
    assert_version(BINARY, "dynamo-server");
}
