//! The NATS outbox relay against a real `nats-server -js`: every event of the log in order,
//! once, deduplicated by event id, resumed after crashes of the relay and of the server.

use std::time::Duration;

use adapters::nats::{NatsConfig, OutboxRelay, POSITION_HEADER};
use adapters::store::EventStore;
use async_nats::jetstream;
use domain::event::StoredEvent;
use testkit::events::customers;
use testkit::nats::TestNats;

fn config(nats: &TestNats) -> NatsConfig {
    NatsConfig {
        stream: nats.stream.clone(),
        batch: 200,
        poll_interval: Duration::from_millis(100),
        ..NatsConfig::new(nats.url.clone())
    }
}

/// Every message of the stream, in stream order: (sequence, subject, Nats-Msg-Id, position
/// header, event).
async fn stream_messages(nats: &TestNats) -> Vec<(u64, String, String, i64, StoredEvent)> {
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream(&nats.stream).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut messages = Vec::new();
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        let message = stream.get_raw_message(sequence).await.unwrap();
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        messages.push((
            message.sequence,
            message.subject.to_string(),
            header("Nats-Msg-Id"),
            header(POSITION_HEADER).parse().unwrap(),
            serde_json::from_slice(&message.payload).unwrap(),
        ));
    }
    messages
}

/// How many messages the stream holds.
async fn stream_count(nats: &TestNats) -> usize {
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let Ok(mut stream) = jetstream::new(client).get_stream(&nats.stream).await else {
        return 0;
    };
    stream.info().await.unwrap().state.messages as usize
}

async fn delete_stream(nats: &TestNats) {
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let _ = jetstream::new(client).delete_stream(&nats.stream).await;
}

/// Asserts the stream holds exactly the log, in order, once each.
async fn assert_stream_is_the_log(nats: &TestNats, store: &EventStore) {
    let log = store.read_after(0, i64::MAX).await.unwrap();
    let messages = stream_messages(nats).await;
    assert_eq!(messages.len(), log.len(), "one message per event");
    for (i, ((sequence, subject, msg_id, position, event), stored)) in
        messages.iter().zip(&log).enumerate()
    {
        assert_eq!(*sequence, i as u64 + 1);
        assert_eq!(*position, stored.position);
        assert_eq!(msg_id, &stored.event_id.to_string());
        assert_eq!(subject, &format!("{}.Customer", nats.stream));
        assert_eq!(event, stored, "the message carries the stored event");
    }
}

#[tokio::test]
async fn the_relay_publishes_every_event_in_order_once_and_resumes_where_it_stopped() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let nats = testkit::nats::start();
    store.append(&customers(1..501)).await.unwrap();

    let relay = OutboxRelay::connect(db.pool.clone(), config(&nats))
        .await
        .unwrap();
    let first = relay.publish_pending().await.unwrap();
    let again = relay.publish_pending().await.unwrap();
    store.append(&customers(501..751)).await.unwrap();
    let restarted = OutboxRelay::connect(db.pool.clone(), config(&nats))
        .await
        .unwrap();
    let more = restarted.publish_pending().await.unwrap();

    assert_eq!((first, again, more), (500, 0, 250));
    assert_eq!(restarted.position().await.unwrap(), 750);
    let progress = adapters::nats::relay_progress(&db.pool).await.unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(
        (progress[0].stream.as_str(), progress[0].position),
        (nats.stream.as_str(), 750)
    );
    assert_stream_is_the_log(&nats, &store).await;
    delete_stream(&nats).await;
}

#[tokio::test]
async fn a_relay_killed_mid_stream_and_one_that_lost_its_position_publish_nothing_twice() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let nats = testkit::nats::start();
    store.append(&customers(1..20_001)).await.unwrap();

    // Killed part-way: the task is dropped wherever it is (mid-publish, mid-ack, mid-update).
    let relay = OutboxRelay::connect(db.pool.clone(), config(&nats))
        .await
        .unwrap();
    let running = tokio::spawn(async move { relay.run(std::future::pending()).await });
    wait_for(&nats, 1).await;
    running.abort();
    let _ = running.await;
    let published_when_killed = stream_count(&nats).await;
    assert!(published_when_killed < 20_000, "killed before the end");

    // Its stored position is lost too (as if the database were restored from a backup).
    sqlx::query("delete from nats_relay")
        .execute(&db.pool)
        .await
        .unwrap();
    let relay = OutboxRelay::connect(db.pool.clone(), config(&nats))
        .await
        .unwrap();
    relay.publish_pending().await.unwrap();

    assert_stream_is_the_log(&nats, &store).await;
    delete_stream(&nats).await;
}

#[tokio::test]
async fn a_republished_event_is_dropped_by_the_stream_for_its_event_id() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let nats = testkit::nats::start();
    store.append(&customers(1..11)).await.unwrap();
    let relay = OutboxRelay::connect(db.pool.clone(), config(&nats))
        .await
        .unwrap();
    relay.publish_pending().await.unwrap();

    // A stale relay that believes nothing was published, bypassing the resume check.
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let js = jetstream::new(client);
    let event = &store.read_after(0, 1).await.unwrap()[0];
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
    let ack = js
        .publish_with_headers(
            format!("{}.Customer", nats.stream),
            headers,
            serde_json::to_vec(event).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    assert!(ack.duplicate);
    assert_stream_is_the_log(&nats, &store).await;
    delete_stream(&nats).await;
}

async fn wait_for(nats: &TestNats, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stream_count(nats).await < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck below {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_relay_survives_a_nats_server_crash_and_catches_up() {
    let mut nats = testkit::nats::start();
    if std::env::var("CCARE_TEST_NATS_URL").is_ok() {
        // The shared server is not ours to kill.
        delete_stream(&nats).await;
        return;
    }
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..101)).await.unwrap();
    let relay = OutboxRelay::connect(db.pool.clone(), config(&nats))
        .await
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    let running = tokio::spawn(async move { relay.run(stopping.cancelled_owned()).await });

    wait_for(&nats, 100).await;
    nats.restart();
    store.append(&customers(101..201)).await.unwrap();
    wait_for(&nats, 200).await;
    stop.cancel();
    running.await.unwrap().unwrap();

    assert_stream_is_the_log(&nats, &store).await;
}
