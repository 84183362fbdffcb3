//! One request, loaded once (issue 13): what a successful request asks of
//! PostgreSQL, counted from sqlx's own log of every statement it runs
//! (target `sqlx::query`), attributed to a request by the `request` span the
//! pipeline runs it in. The lease's background renewal runs outside that
//! span and is not counted: how often it runs depends on time, not on the
//! request.
//!
//! A run reads its request once, when it starts (`record` returns the row
//! it wrote); every write after that returns what it changed. So a
//! successful request never reads its row or its image again.
//!
//! Alone in its own test binary: it installs its own subscriber, on the
//! test's thread, where the in-process consumer runs (a current-thread
//! runtime).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::TestWorld;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use uuid::Uuid;

mod support;

use support::{Running, friend, ghost};

/// The statements each request ran, by request id, in order.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<HashMap<String, Vec<String>>>>);

/// The request id a `request` span was opened with.
struct RequestId(String);

/// sqlx logs a short statement whole as its `summary`, a longer one in
/// `db.statement` (and `summary` is then its start).
#[derive(Default)]
struct Fields {
    request_id: Option<String>,
    summary: Option<String>,
    statement: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = Some(value.to_owned()),
            "db.statement" if !value.trim().is_empty() => self.statement = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.request_id = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Statements {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "request" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(request_id), Some(span)) = (fields.request_id, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(request_id) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<RequestId>().map(|r| r.0.clone()))
        else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(statement) = fields.statement.or(fields.summary) {
            let statement = statement.split_whitespace().collect::<Vec<_>>().join(" ");
            self.0
                .lock()
                .unwrap()
                .entry(request_id)
                .or_default()
                .push(statement);
        }
    }
}

impl Statements {
    fn of(&self, id: Uuid) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .get(&id.to_string())
            .cloned()
            .unwrap_or_default()
    }
}

/// A read of the request's row (`Store::get`, `Store::load`) or of its
/// images (`Store::images`) after the run loaded it. `select_requests!`
/// names its columns with sqlx's aliases (`r.twitch_user_id AS
/// "twitch_user_id!"`), and so does every read of the row: known by those
/// aliases wherever they stand in the statement. `Store::record`'s write
/// selects them too, from the row it wrote (`FROM recorded`): not a re-read.
fn rereads(statements: &[String]) -> Vec<&String> {
    statements
        .iter()
        .filter(|s| {
            let reads_row =
                s.contains(r#"AS "twitch_user_id!""#) && s.contains("FROM dynamo.image_request r");
            let reads_images =
                s.contains("FROM dynamo.image WHERE image_request_id") && !s.starts_with("WITH");
            reads_row || reads_images
        })
        .collect()
}

/// What a successful ghost may ask of PostgreSQL (issue 26: it took 27).
const GHOST_STATEMENTS: usize = 18;

fn report(style: &str, statements: &[String]) {
    let kind = |s: &String| s.split(' ').next().unwrap_or_default().to_owned();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for statement in statements {
        *kinds.entry(kind(statement)).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    println!(
        "{style}: {} statements {kinds:?}, {} re-reads of the request",
        statements.len(),
        rereads(statements).len()
    );
    for statement in statements {
        println!("  {}", statement.chars().take(110).collect::<String>());
    }
}

#[tokio::test]
async fn a_successful_request_never_reads_its_row_or_image_again() {
    let statements = Statements::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(statements.clone()));
    let running = Running::default(TestWorld::start().await).await;

    let ghost_id = running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let friend_id = running
        .send(&friend("orange", "a robot who loves soup"))
        .await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(result.body["name"], "Sealy");

    // The result is published before the lease is given up: the run is
    // over once the consumer has stopped.
    running.stop().await;
    let runs =
        [("ghost", ghost_id), ("friend", friend_id)].map(|(style, id)| (style, statements.of(id)));
    for (style, statements) in &runs {
        report(style, statements);
    }
    for (style, statements) in &runs {
        // The count is of something: the run's writes were seen.
        assert!(
            statements.iter().any(|s| s.starts_with("UPDATE")),
            "{style}: no statement of the request was seen"
        );
        assert_eq!(
            rereads(statements),
            Vec::<&String>::new(),
            "{style}: a step read the request again"
        );
    }
    let ghost = &runs[0].1;
    assert!(
        ghost.len() <= GHOST_STATEMENTS,
        "a successful ghost took {} statements, more than {GHOST_STATEMENTS}",
        ghost.len()
    );
}
