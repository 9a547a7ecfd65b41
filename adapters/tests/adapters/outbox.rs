//! The bridge's outbox against a real PostgreSQL: keys queue once, one recipient's items go in
//! order and apart by their spacing, failures wait their back-off, and give-ups free the queue.

use adapters::outbox::PgOutbox;
use chrono::{DateTime, Duration, Utc};
use domain::outbox::{NewOutboxItem, Outbox, OutboxChannel};

fn item(key: &str, recipient: &str, now: DateTime<Utc>, spacing: i64) -> NewOutboxItem {
    NewOutboxItem {
        channel: OutboxChannel::Whatsapp,
        key: key.into(),
        recipient: recipient.into(),
        payload: format!(r#"{{"key":"{key}"}}"#),
        not_before: now,
        spacing: Duration::seconds(spacing),
    }
}

fn keys(items: &[domain::outbox::OutboxItem]) -> Vec<&str> {
    items.iter().map(|i| i.key.as_str()).collect()
}

#[tokio::test]
async fn a_key_is_queued_once_and_one_recipients_items_come_due_in_order_one_at_a_time() {
    let db = testkit::pg::fresh_database().await;
    let outbox = PgOutbox::new(db.pool.clone());
    let now = Utc::now() - Duration::minutes(1);
    assert!(outbox
        .enqueue(item("a1", "+26658123456", now, 0))
        .await
        .unwrap());
    assert!(
        !outbox
            .enqueue(item("a1", "+26658123456", now, 0))
            .await
            .unwrap(),
        "queued before"
    );
    outbox
        .enqueue(item("a2", "+26658123456", now, 0))
        .await
        .unwrap();
    outbox
        .enqueue(item("b1", "+26662001122", now, 0))
        .await
        .unwrap();

    let due = outbox
        .due(OutboxChannel::Whatsapp, Utc::now(), 10)
        .await
        .unwrap();
    assert_eq!(keys(&due), ["a1", "b1"], "a2 waits behind a1");
    assert!(outbox
        .due(OutboxChannel::Ugridplan, Utc::now(), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        due[0].payload, r#"{"key": "a1"}"#,
        "the payload is the JSON queued"
    );

    let first = due[0].id;
    outbox.complete(first, "wamid.1").await.unwrap();
    let due = outbox
        .due(OutboxChannel::Whatsapp, Utc::now(), 10)
        .await
        .unwrap();
    assert_eq!(keys(&due), ["a2", "b1"]);
    let done_again = outbox.complete(first, "wamid.1").await.unwrap_err();
    assert!(done_again.contains("already done"), "{done_again}");
    let unknown = outbox.give_up(9_999, "x").await.unwrap_err();
    assert!(unknown.contains("no item 9999"), "{unknown}");
}

#[tokio::test]
async fn spacing_delays_a_recipients_next_item_and_a_failure_waits_for_its_retry_time() {
    let db = testkit::pg::fresh_database().await;
    let outbox = PgOutbox::new(db.pool.clone());
    let now = Utc::now();
    outbox
        .enqueue(item("a1", "+26658123456", now, 60))
        .await
        .unwrap();
    outbox
        .enqueue(item("a2", "+26658123456", now, 60))
        .await
        .unwrap();
    let due = outbox
        .due(OutboxChannel::Whatsapp, now + Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(keys(&due), ["a1"]);
    outbox.complete(due[0].id, "wamid.1").await.unwrap();
    assert!(
        outbox
            .due(OutboxChannel::Whatsapp, now + Duration::seconds(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "a2 is spaced a minute after a1"
    );
    let due = outbox
        .due(OutboxChannel::Whatsapp, now + Duration::seconds(61), 10)
        .await
        .unwrap();
    assert_eq!(keys(&due), ["a2"]);

    let retry_at = now + Duration::minutes(5);
    outbox.retry(due[0].id, retry_at, "HTTP 503").await.unwrap();
    assert!(outbox
        .due(OutboxChannel::Whatsapp, now + Duration::minutes(4), 10)
        .await
        .unwrap()
        .is_empty());
    let due = outbox
        .due(OutboxChannel::Whatsapp, retry_at, 10)
        .await
        .unwrap();
    assert_eq!(
        (due[0].attempts, due[0].last_error.as_deref()),
        (1, Some("HTTP 503"))
    );

    // Given up, it stays with its reason, and the recipient's queue moves on.
    outbox
        .enqueue(item("a3", "+26658123456", now, 0))
        .await
        .unwrap();
    outbox
        .give_up(due[0].id, "HTTP 400: bad template")
        .await
        .unwrap();
    let due = outbox
        .due(OutboxChannel::Whatsapp, retry_at + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(keys(&due), ["a3"]);
    let (gave_up, reason): (bool, String) =
        sqlx::query_as("select gave_up, last_error from bridge_outbox where key = 'a2'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(gave_up);
    assert_eq!(reason, "HTTP 400: bad template");
}

#[tokio::test]
async fn the_status_counts_what_waits_what_went_and_what_was_given_up() {
    let db = testkit::pg::fresh_database().await;
    let outbox = PgOutbox::new(db.pool.clone());
    let now = Utc::now() - Duration::minutes(1);
    for (key, to) in [
        ("a", "+26658000001"),
        ("b", "+26658000002"),
        ("c", "+26658000003"),
    ] {
        outbox.enqueue(item(key, to, now, 0)).await.unwrap();
    }
    let due = outbox
        .due(OutboxChannel::Whatsapp, Utc::now(), 10)
        .await
        .unwrap();
    outbox.complete(due[0].id, "wamid.1").await.unwrap();
    outbox.give_up(due[1].id, "HTTP 400").await.unwrap();
    outbox
        .retry(due[2].id, Utc::now() + Duration::minutes(1), "HTTP 503")
        .await
        .unwrap();

    let status = adapters::outbox::bridge_status(&db.pool, 10).await.unwrap();

    assert_eq!((status.inbox_waiting, status.inbox_left), (0, 0));
    let [whatsapp] = &status.outbox[..] else {
        panic!("{status:?}")
    };
    assert_eq!(whatsapp.channel, "whatsapp");
    assert_eq!(
        (
            whatsapp.sent,
            whatsapp.pending,
            whatsapp.retrying,
            whatsapp.given_up
        ),
        (1, 1, 1, 1)
    );
    assert!(whatsapp.oldest_pending.is_some());
}
