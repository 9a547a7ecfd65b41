//! The WhatsApp webhook inbox against a real PostgreSQL: deliveries kept byte for byte,
//! redeliveries recognised by their message ids (across restarts and concurrent deliveries),
//! the worker's listing, and processed/failed marks.

use adapters::inbox::PgWebhookInbox;
use chrono::{DateTime, TimeZone, Utc};
use domain::inbox::{NewDelivery, WebhookInbox};
use sqlx::PgPool;

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, second).unwrap()
}

fn delivery(body: &[u8], message_ids: &[&str]) -> NewDelivery {
    NewDelivery {
        body: body.to_vec(),
        received_at: at(0),
        message_ids: message_ids.iter().map(|id| id.to_string()).collect(),
    }
}

async fn seen_rows(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("select message_id, inbox_id from whatsapp_seen_messages order by message_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn inbox_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from whatsapp_inbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stored_delivery_keeps_its_body_byte_for_byte_and_waits_unprocessed() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());
    // Emoji, a NUL and bytes that are not UTF-8 at all: the inbox keeps bytes, not text.
    let mut body = r#"{"text":{"body":"Ke kopa thuso 🙏 ⚡"}}"#.as_bytes().to_vec();
    body.extend_from_slice(&[0x00, 0xff, 0xfe]);
    let received_at = at(7);

    let stored = inbox
        .store(NewDelivery {
            body: body.clone(),
            received_at,
            message_ids: vec!["wamid.A".into(), "wamid.B".into()],
        })
        .await
        .unwrap();

    assert!(!stored.redelivery);
    let pending = inbox.next_unprocessed(0, 10, i32::MAX).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, stored.id);
    assert_eq!(pending[0].body, body);
    assert_eq!(pending[0].received_at, received_at);
    assert_eq!(pending[0].message_ids, ["wamid.A", "wamid.B"]);
    assert_eq!(
        (pending[0].attempts, pending[0].last_error.as_deref()),
        (0, None)
    );
    assert_eq!(
        seen_rows(&db.pool).await,
        [
            ("wamid.A".to_string(), stored.id),
            ("wamid.B".to_string(), stored.id)
        ]
    );
}

#[tokio::test]
async fn a_delivery_whose_every_message_was_seen_is_a_redelivery_even_after_a_restart() {
    let db = testkit::pg::fresh_database().await;
    let first = PgWebhookInbox::new(db.pool.clone())
        .store(delivery(b"first", &["wamid.A", "wamid.B"]))
        .await
        .unwrap();
    // A new process: a pool and an inbox of its own, nothing remembered in memory.
    let restarted = PgWebhookInbox::new(adapters::postgres::connect(&db.url).await.unwrap());

    let again = restarted
        .store(delivery(b"again", &["wamid.B", "wamid.A"]))
        .await
        .unwrap();

    assert!(again.redelivery);
    assert!(
        again.id > first.id,
        "a redelivery is kept as a delivery of its own"
    );
    assert_eq!(inbox_rows(&db.pool).await, 2);
    assert_eq!(
        seen_rows(&db.pool).await,
        [
            ("wamid.A".to_string(), first.id),
            ("wamid.B".to_string(), first.id)
        ],
        "each message stays with the delivery that carried it first"
    );
}

#[tokio::test]
async fn a_delivery_with_one_new_message_is_not_a_redelivery() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());
    let first = inbox.store(delivery(b"1", &["wamid.A"])).await.unwrap();

    let mixed = inbox
        .store(delivery(b"2", &["wamid.A", "wamid.NEW"]))
        .await
        .unwrap();

    assert!(!mixed.redelivery);
    assert_eq!(
        seen_rows(&db.pool).await,
        [
            ("wamid.A".to_string(), first.id),
            ("wamid.NEW".to_string(), mixed.id)
        ]
    );
    // Each delivery is to act on the messages it carried first.
    let pending = inbox.next_unprocessed(0, 10, i32::MAX).await.unwrap();
    let carried: Vec<&[String]> = pending.iter().map(|d| &d.first_carried[..]).collect();
    assert_eq!(
        carried,
        [&["wamid.A".to_string()][..], &["wamid.NEW".to_string()][..]]
    );
}

#[tokio::test]
async fn a_delivery_without_message_ids_is_never_taken_for_a_redelivery() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());

    let first = inbox.store(delivery(b"statuses", &[])).await.unwrap();
    let second = inbox.store(delivery(b"statuses", &[])).await.unwrap();

    assert!(!first.redelivery && !second.redelivery);
    assert_eq!(inbox_rows(&db.pool).await, 2);
    assert!(seen_rows(&db.pool).await.is_empty());
}

#[tokio::test]
async fn a_message_id_repeated_within_one_delivery_is_stored_once() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());

    let stored = inbox
        .store(delivery(b"twice", &["wamid.A", "wamid.A"]))
        .await
        .unwrap();

    assert!(!stored.redelivery);
    assert_eq!(
        seen_rows(&db.pool).await,
        [("wamid.A".to_string(), stored.id)]
    );
}

#[tokio::test]
async fn of_two_deliveries_of_one_message_at_the_same_moment_exactly_one_is_new() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());

    let (one, two) = tokio::join!(
        inbox.store(delivery(b"one", &["wamid.RACE"])),
        inbox.store(delivery(b"two", &["wamid.RACE"])),
    );

    let (one, two) = (one.unwrap(), two.unwrap());
    assert_ne!(one.redelivery, two.redelivery, "{one:?} {two:?}");
    let new = if one.redelivery { two } else { one };
    assert_eq!(
        seen_rows(&db.pool).await,
        [("wamid.RACE".to_string(), new.id)]
    );
}

#[tokio::test]
async fn unprocessed_deliveries_are_listed_oldest_first_up_to_the_limit() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());
    let mut ids = Vec::new();
    for body in [b"a", b"b", b"c"] {
        ids.push(inbox.store(delivery(body, &[])).await.unwrap().id);
    }

    let first_two: Vec<i64> = inbox
        .next_unprocessed(0, 2, i32::MAX)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();

    assert_eq!(first_two, ids[..2]);
    assert!(inbox
        .next_unprocessed(0, 0, i32::MAX)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_processed_delivery_leaves_the_listing_and_a_failed_one_stays_with_its_reason() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());
    let done = inbox.store(delivery(b"done", &["wamid.D"])).await.unwrap();
    let failing = inbox
        .store(delivery(b"failing", &["wamid.F"]))
        .await
        .unwrap();

    inbox.mark_processed(done.id).await.unwrap();
    inbox
        .mark_failed(failing.id, "the customer projection is not caught up")
        .await
        .unwrap();
    inbox
        .mark_failed(failing.id, "uGridPlan timed out")
        .await
        .unwrap();

    let pending = inbox.next_unprocessed(0, 10, i32::MAX).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, failing.id);
    assert_eq!(pending[0].attempts, 2);
    assert_eq!(
        pending[0].last_error.as_deref(),
        Some("uGridPlan timed out")
    );
    // Failed as often as the caller allows, it is left out; and a page starts after `after`.
    assert!(inbox.next_unprocessed(0, 10, 2).await.unwrap().is_empty());
    // An operator's replay gives it a fresh set of attempts, and the reason stays.
    assert_eq!(inbox.replay_left(2).await.unwrap(), 1);
    let replayed = inbox.next_unprocessed(0, 10, 2).await.unwrap();
    assert_eq!((replayed[0].id, replayed[0].attempts), (failing.id, 0));
    assert_eq!(
        replayed[0].last_error.as_deref(),
        Some("uGridPlan timed out")
    );
    assert!(inbox
        .next_unprocessed(failing.id, 10, i32::MAX)
        .await
        .unwrap()
        .is_empty());

    // Marking it again is harmless and keeps the first time.
    let processed_at = |pool: PgPool| async move {
        sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
            "select processed_at from whatsapp_inbox where id = $1",
        )
        .bind(done.id)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let first_time = processed_at(db.pool.clone()).await;
    assert!(first_time.is_some());
    inbox.mark_processed(done.id).await.unwrap();
    assert_eq!(processed_at(db.pool.clone()).await, first_time);
}

#[tokio::test]
async fn marking_an_unknown_delivery_or_failing_a_processed_one_is_an_error() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());
    let done = inbox.store(delivery(b"done", &[])).await.unwrap();
    inbox.mark_processed(done.id).await.unwrap();

    let unknown = inbox.mark_processed(done.id + 100).await.unwrap_err();
    let unknown_failed = inbox.mark_failed(done.id + 100, "x").await.unwrap_err();
    let after_done = inbox.mark_failed(done.id, "late").await.unwrap_err();

    assert!(unknown.contains("no delivery"), "{unknown}");
    assert!(unknown_failed.contains("no delivery"), "{unknown_failed}");
    assert!(after_done.contains("already processed"), "{after_done}");
    let (attempts, last_error): (i32, Option<String>) =
        sqlx::query_as("select attempts, last_error from whatsapp_inbox where id = $1")
            .bind(done.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((attempts, last_error), (0, None));
}

#[tokio::test]
async fn a_delivery_whose_message_ids_cannot_be_recorded_is_not_stored_at_all() {
    let db = testkit::pg::fresh_database().await;
    let inbox = PgWebhookInbox::new(db.pool.clone());
    // Sabotage the second half of the transaction.
    sqlx::query("drop table whatsapp_seen_messages")
        .execute(&db.pool)
        .await
        .unwrap();

    let refused = inbox.store(delivery(b"lost?", &["wamid.A"])).await;

    assert!(refused.is_err());
    assert_eq!(inbox_rows(&db.pool).await, 0, "the insert was rolled back");
}
