//! `ccare serve` with `NATS_URL`: the relay and the projector as separate processes, each
//! killed (SIGKILL) mid-stream and started again — every event reaches the read models once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adapters::store::EventStore;
use async_nats::jetstream;
use testkit::events::customers;
use testkit::nats::TestNats;
use testkit::pg::TestDatabase;

const EVENTS: i64 = 20_000;

/// `ccare serve --role ROLE` against the test's database and NATS server.
fn serve(role: &str, db: &TestDatabase, nats: &TestNats, data_dir: &std::path::Path) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccare"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CCARE_") || k.starts_with("ACDB_") || k == "NATS_URL" {
            command.env_remove(k);
        }
    }
    command
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", &nats.url)
        .env("CCARE_NATS_STREAM", &nats.stream)
        .env("CCARE_DATA_DIR", data_dir)
        .env("CCARE_LOG", "warn")
        .args(["serve", "--role", role])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ccare serve starts")
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn stream_count(nats: &TestNats) -> i64 {
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    match jetstream::new(client).get_stream(&nats.stream).await {
        Ok(mut stream) => stream.info().await.unwrap().state.messages as i64,
        Err(_) => 0,
    }
}

/// The smallest checkpoint of the read models.
async fn slowest_checkpoint(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("select coalesce(min(position), 0)::bigint from projection_registry")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_relay_and_a_projector_killed_mid_stream_lose_no_event_and_apply_none_twice() {
    let db = testkit::pg::fresh_database().await;
    let nats = testkit::nats::start();
    let data_dir = tempfile::tempdir().unwrap();
    EventStore::new(db.pool.clone())
        .append(&customers(1..EVENTS + 1))
        .await
        .unwrap();

    let relay = serve("relay", &db, &nats, data_dir.path());
    wait_until("the relay publishes", async || {
        stream_count(&nats).await > 0
    })
    .await;
    kill(relay);
    let published_at_kill = stream_count(&nats).await;

    let projector = serve("projector", &db, &nats, data_dir.path());
    wait_until("the projector applies", async || {
        slowest_checkpoint(&db).await > 0
    })
    .await;
    kill(projector);
    let applied_at_kill = slowest_checkpoint(&db).await;

    let relay = serve("relay", &db, &nats, data_dir.path());
    let projector = serve("projector", &db, &nats, data_dir.path());
    wait_until("every read model reaches the head", async || {
        slowest_checkpoint(&db).await == EVENTS
    })
    .await;
    kill(projector);
    kill(relay);

    assert!(
        published_at_kill < EVENTS,
        "the relay was killed mid-stream"
    );
    assert!(
        applied_at_kill < EVENTS,
        "the projector was killed mid-stream"
    );
    assert_eq!(
        stream_count(&nats).await,
        EVENTS,
        "each event published once"
    );
    let (customers, mutations, distinct): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from read_model.customers), \
                (select count(*) from read_model.mutations), \
                (select count(distinct id) from read_model.mutations)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(customers, EVENTS);
    assert_eq!(
        (mutations, distinct),
        (EVENTS, EVENTS),
        "each event applied once"
    );
    let client = async_nats::connect(nats.url.as_str()).await.unwrap();
    let _ = jetstream::new(client).delete_stream(&nats.stream).await;
}
