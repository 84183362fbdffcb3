//! Poison messages are parked, never retried forever (issue 23): a message
//! the database cannot hold, one it refuses, and one that fails on every
//! delivery each end in the dead-letter queue with the reason and the
//! original's properties, while the valid requests behind them succeed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_broker::headers;
use dynamo_testkit::{Captured, TestWorld, eventually};
use uuid::Uuid;

mod support;

use support::{Running, WAIT, ghost};

async fn parked(running: &Running) -> Captured {
    let broker = &running.world.broker;
    broker
        .next(&broker.topology.dead_letter_queue, WAIT)
        .await
        .expect("a dead-lettered message")
}

#[tokio::test]
async fn four_poison_messages_are_parked_and_the_valid_ones_behind_them_succeed() {
    let world = TestWorld::start().await;
    let env = world.consumer_env().with("CONSUMER_PREFETCH", "4");
    let running = Running::start(world, env).await;
    let broker = &running.world.broker;
    // Straight into the queue, past every check a publisher could make:
    // U+0000 in the subject, which PostgreSQL's text cannot hold, and
    // content types as careless publishers set them.
    let content_types = [
        "application/json",
        "text/plain",
        "application/json; charset=utf-8",
        "application/octet-stream",
    ];
    let mut poison = Vec::new();
    for (index, content_type) in content_types.iter().enumerate() {
        let id = format!("poison-{index}-{}", Uuid::new_v4());
        let body = serde_json::to_vec(&ghost(&format!("a seal\u{0}{index}"))).unwrap();
        broker
            .publish_raw(&body, &id, content_type, &[("x-from-test", "poison")])
            .await;
        poison.push((id, *content_type, body));
    }
    let mut valid = Vec::new();
    for subject in ["a walrus", "a puffin", "an otter", "a heron"] {
        valid.push(running.send(&ghost(subject)).await);
    }

    let mut finished = Vec::new();
    for _ in &valid {
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
        finished.push(result.message_id.unwrap());
    }
    for id in &valid {
        assert!(finished.contains(&id.to_string()), "{id} did not finish");
    }

    let mut dead = Vec::new();
    for _ in &poison {
        dead.push(parked(&running).await);
    }
    for (id, content_type, body) in &poison {
        let copy = dead
            .iter()
            .find(|d| d.message_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} was not parked with its message_id"));
        assert_eq!(&copy.raw, body, "the body is parked as sent");
        assert_eq!(copy.content_type.as_deref(), Some(*content_type));
        assert_eq!(copy.header("x-from-test"), Some("poison"));
        assert!(copy.persistent);
        let reason = copy.header(headers::REASON).unwrap();
        assert!(
            reason.contains("payload.inputs.subject") && reason.contains("U+0000"),
            "{reason}"
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request")
        .fetch_one(running.world.database.pool())
        .await
        .unwrap();
    assert_eq!(rows, 4, "only the valid requests were recorded");
    running.stop().await;
}

#[tokio::test]
async fn a_request_the_database_refuses_is_parked_with_the_reason() {
    let running = Running::default(TestWorld::start().await).await;
    let broker = &running.world.broker;
    // An admin's retry of a request that is no longer there: the foreign key
    // on retry_of refuses it, every time.
    let missing = Uuid::new_v4();
    let id = Uuid::new_v4();
    let body = serde_json::to_vec(&ghost("a seal")).unwrap();
    broker
        .publish_raw(
            &body,
            &id.to_string(),
            "application/json",
            &[(headers::RETRY_OF, &missing.to_string())],
        )
        .await;
    let behind = running.send(&ghost("a walrus")).await;

    let result = running.result().await;
    assert_eq!(result.message_id, Some(behind.to_string()));
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let copy = parked(&running).await;
    assert_eq!(copy.message_id, Some(id.to_string()));
    assert_eq!(
        copy.header(headers::RETRY_OF),
        Some(missing.to_string().as_str())
    );
    let reason = copy.header(headers::REASON).unwrap();
    assert!(
        reason.contains("the database refused the request") && reason.contains("retry_of"),
        "{reason}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_message_that_fails_on_every_delivery_is_parked_after_the_delivery_limit() {
    let world = TestWorld::start().await;
    // A fault only this subject meets: PostgreSQL answers its insert with a
    // serialization failure, an error worth retrying, on every delivery.
    sqlx::raw_sql(
        r#"CREATE FUNCTION dynamo.fail_cursed() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.inputs->>'subject' = 'a cursed seal' THEN
               RAISE EXCEPTION 'injected by the test' USING ERRCODE = 'serialization_failure';
             END IF;
             RETURN NEW;
           END $$;
           CREATE TRIGGER fail_cursed BEFORE INSERT ON dynamo.image_request
             FOR EACH ROW EXECUTE FUNCTION dynamo.fail_cursed();"#,
    )
    .execute(world.database.pool())
    .await
    .unwrap();
    let env = world.consumer_env().with("DELIVERY_LIMIT", "3");
    let running = Running::start(world, env).await;
    let cursed = running.send(&ghost("a cursed seal")).await;
    let behind = running.send(&ghost("a walrus")).await;

    let result = running.result().await;
    assert_eq!(result.message_id, Some(behind.to_string()));
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let copy = parked(&running).await;
    assert_eq!(copy.message_id, Some(cursed.to_string()));
    assert_eq!(copy.content_type.as_deref(), Some("application/json"));
    let reason = copy.header(headers::REASON).unwrap();
    assert!(
        reason.contains("delivered 4 times") && reason.contains("DELIVERY_LIMIT is 3"),
        "{reason}"
    );
    // Settled: its count is forgotten, and it never reached the table.
    let pool = running.world.database.pool().clone();
    eventually("the delivery count forgotten", WAIT, || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.message_delivery")
            .fetch_one(&pool)
            .await
            .unwrap();
        (left == 0).then_some(())
    })
    .await;
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request WHERE id = $1")
            .bind(cursed)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recorded, 0);
    running.stop().await;
}
