//! `dynamoctl styles export` and `dynamoctl styles apply`, the real binary
//! against a real database: export → apply changes nothing, a changed file
//! applies exactly its diff (after a dry run that prints it and writes
//! nothing), and a bad file writes nothing and names the style and field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_store::Store;
use dynamo_store::golden_vcr::{PromptTemplates, Seeding, seed};
use dynamo_testkit::{TestDatabase, command, output_within};
use dynamo_wire::StyleDefinition;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamoctl");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn dynamoctl(env: &Env, args: &[&str]) -> Run {
    let output = output_within(command(BINARY, env).args(args), Duration::from_secs(60));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A file of its own for each test, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("styles-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sticker() -> StyleDefinition {
    serde_json::from_value(json!({
        "id": "sticker", "display_name": "Sticker", "color": "optional",
        "prompt_template": "{article} {color} {subject} as a die-cut sticker",
        "output": "cutout", "points_cost": 100,
        "reward": {"title": "dynamo: a sticker", "prompt": "What should it be?", "cost": 500,
                   "cooldown_seconds": 30},
        "on_air": {"duration_ms": 6000},
    }))
    .unwrap()
}

/// A database with Golden VCR's seeded styles (as a consumer seeds them) and
/// a sticker, and the settings to reach it.
async fn world() -> (TestDatabase, Store, Env) {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    seed(&store, &PromptTemplates::default(), 200, Seeding::Follow)
        .await
        .unwrap();
    store.put_style(&sticker()).await.unwrap();
    let env = Env::from_pairs(database.env_pairs());
    (database, store, env)
}

/// Every style's (version, follows_settings, definition), by id.
async fn snapshot(store: &Store) -> BTreeMap<String, (i64, bool, StyleDefinition)> {
    store
        .styles()
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.definition.id.to_string(),
                (s.version, s.follows_settings, s.definition),
            )
        })
        .collect()
}

fn export(env: &Env) -> String {
    let run = dynamoctl(env, &["styles", "export"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    run.stdout
}

#[tokio::test]
async fn export_then_apply_changes_nothing() {
    let (_database, store, env) = world().await;
    let before = snapshot(&store).await;
    let exported = export(&env);
    assert!(
        exported.contains("[[style]]\nid = \"friend\""),
        "{exported}"
    );
    assert!(exported.contains("[style.reward]"), "{exported}");

    let file = TempFile::new(&exported);
    let run = dynamoctl(&env, &["styles", "apply", file.path()]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    for id in ["friend", "ghost", "sticker"] {
        assert!(
            run.stdout.contains(&format!("{id}: unchanged")),
            "{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("nothing to change"), "{}", run.stdout);
    // Not a version bumped, and the seeded two still follow the settings.
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(export(&env), exported);
}

#[tokio::test]
async fn a_changed_file_applies_exactly_its_diff_after_a_dry_run_shows_it() {
    let (_database, store, env) = world().await;
    store
        .put_style(&StyleDefinition {
            id: dynamo_wire::StyleId::parse("legacy").unwrap(),
            ..sticker()
        })
        .await
        .unwrap();
    let before = snapshot(&store).await;
    // The export less `legacy`, with the sticker's template and friend's
    // cost changed, and a new style.
    let exported = export(&env);
    let (head, rest) = exported.split_once("[[style]]\nid = \"legacy\"").unwrap();
    let rest = &rest[rest.find("[[style]]").unwrap()..];
    let changed = format!("{head}{rest}")
        .replace("as a die-cut sticker\"", "as a die-cut sticker, glossy\"")
        .replacen("points_cost = 200", "points_cost = 150", 1)
        + "\n[[style]]\nid = \"pixel\"\ndisplay_name = \"Pixel portrait\"\n\
           prompt_template = \"{subject} as a pixel-art portrait\"\noutput = \"photo\"\n\
           points_cost = 50\n\n[style.reward]\ntitle = \"dynamo: a pixel portrait\"\n\
           prompt = \"Who?\"\ncost = 200\n";
    assert!(changed.find("id = \"friend\"") < changed.find("points_cost = 150"));
    let file = TempFile::new(&changed);

    let dry = dynamoctl(&env, &["styles", "apply", "--dry-run", file.path()]);
    assert_eq!(dry.code, Some(0), "{}{}", dry.stdout, dry.stderr);
    let expected = [
        "friend.points_cost: 200 → 150",
        "friend: no longer follows PROMPT_FRIEND and POINTS_COST",
        "ghost: unchanged",
        "sticker.prompt_template: \"{article} {color} {subject} as a die-cut sticker\" → \"{article} {color} {subject} as a die-cut sticker, glossy\"",
        "pixel: created",
        "legacy: not in the file, left alone",
        "dry run: nothing was written",
    ];
    for line in expected {
        assert!(dry.stdout.contains(line), "{line} missing:\n{}", dry.stdout);
    }
    assert_eq!(dry.stdout.lines().count(), expected.len(), "{}", dry.stdout);
    assert_eq!(snapshot(&store).await, before, "a dry run writes nothing");

    let run = dynamoctl(&env, &["styles", "apply", file.path()]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("applied: 1 created, 2 updated, 1 unchanged"),
        "{}",
        run.stdout
    );
    let after = snapshot(&store).await;
    assert_eq!(
        after["ghost"], before["ghost"],
        "ghost untouched, still following"
    );
    assert_eq!(after["legacy"], before["legacy"], "left alone");
    let (version, follows, friend) = &after["friend"];
    assert_eq!(friend.points_cost, 150);
    assert!(!follows, "an edited seeded style stops following");
    assert_eq!(*version, before["friend"].0 + 1);
    let mut expected_friend = before["friend"].2.clone();
    expected_friend.points_cost = 150;
    assert_eq!(*friend, expected_friend, "only the field that changed");
    assert!(
        after["sticker"]
            .2
            .prompt_template
            .ends_with("sticker, glossy")
    );
    assert_eq!(after["pixel"].2.display_name, "Pixel portrait");

    let again = dynamoctl(&env, &["styles", "apply", file.path()]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
    assert_eq!(snapshot(&store).await, after, "idempotent");

    let pruned = dynamoctl(&env, &["styles", "apply", "--prune", file.path()]);
    assert_eq!(pruned.code, Some(0), "{}", pruned.stderr);
    assert!(
        pruned
            .stdout
            .contains("legacy: not in the file, disabled (--prune)"),
        "{}",
        pruned.stdout
    );
    let legacy = &snapshot(&store).await["legacy"].2;
    assert!(!legacy.enabled);
}

#[tokio::test]
async fn a_bad_file_names_the_style_and_field_and_writes_nothing() {
    let (_database, store, env) = world().await;
    let before = snapshot(&store).await;
    let good = "[[style]]\nid = \"pixel\"\ndisplay_name = \"Pixel\"\n\
                prompt_template = \"{subject} in pixels\"\noutput = \"photo\"\npoints_cost = 5\n\n\
                [style.reward]\ntitle = \"dynamo: pixels\"\nprompt = \"Who?\"\ncost = 20\n\n";
    let sticker = |edit: &dyn Fn(String) -> String| {
        edit("[[style]]\nid = \"sticker\"\ndisplay_name = \"Sticker\"\n\
              prompt_template = \"a sticker of {subject}\"\noutput = \"cutout\"\npoints_cost = 1\n\n\
              [style.reward]\ntitle = \"dynamo: a sticker\"\nprompt = \"What?\"\ncost = 9\n"
            .to_owned())
    };
    // The file's second style, edited, and what its line of stderr says.
    let cases: [(String, &[&str]); 4] = [
        (
            sticker(&|s| s.replace("a sticker of {subject}", "a {colour} {subject}")),
            &["line 16: style sticker: prompt_template: unknown placeholder {colour}"],
        ),
        (
            sticker(&|s| s.replace("\"sticker\"", "\"Sticker_1\"")),
            &["line 14: style #2: id: ", "\"Sticker_1\" is not a style id"],
        ),
        (
            sticker(&|s| s.replace("dynamo: a sticker", &"x".repeat(46))),
            &["line 21: style sticker: reward.title: is 46 characters; it takes 1 to 45"],
        ),
        (
            sticker(&|s| s.replace("cost = 9", "cost = 9\ncolour = \"red\"")),
            &["line 24: style sticker: reward", "unknown field `colour`"],
        ),
    ];
    for (second, expected) in cases {
        let file = TempFile::new(&format!("{good}{second}"));
        for dry_run in [false, true] {
            let mut args = vec!["styles", "apply", file.path()];
            if dry_run {
                args.insert(2, "--dry-run");
            }
            let run = dynamoctl(&env, &args);
            assert_eq!(
                run.code,
                Some(1),
                "{expected:?}: {}{}",
                run.stdout,
                run.stderr
            );
            let line = run
                .stderr
                .lines()
                .find(|line| line.starts_with(&format!("{}: line", file.path())))
                .unwrap_or_else(|| panic!("no problem line:\n{}", run.stderr));
            for fragment in expected {
                assert!(line.contains(fragment), "{fragment} missing: {line}");
            }
            assert!(
                run.stderr.contains("1 problem (nothing was written)"),
                "{}",
                run.stderr
            );
            assert_eq!(run.stdout, "", "no diff for a bad file");
        }
        assert_eq!(
            snapshot(&store).await,
            before,
            "{expected:?}: nothing written"
        );
    }
}
