//! The event store against a real PostgreSQL: idempotent append, gap-free positions under
//! concurrency, the hash chain (Rust appends, trigger appends through postgres-es, tampering),
//! and the recorded verification status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::store::{EncodedEvent, EventStore, LogHead, OnDuplicate};
use adapters::Error;
use cqrs_es::AggregateError;
use domain::acdb::AcdbValue;
use domain::chain::GENESIS_LINK;
use domain::envelope::{Actor, Envelope};
use domain::record::{kinds, AcdbRecord, RecordCommand, RowChange, ROW_CHANGE_VERSION};
use sqlx::PgPool;
use testkit::events::{customer_created, customer_row, customers};
use uuid::Uuid;

async fn all_positions(store: &EventStore) -> Vec<i64> {
    store
        .read_after(0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect()
}

async fn verify(store: &EventStore) -> adapters::store::ChainReport {
    store.verify_chain(&mut |_| {}).await.unwrap()
}

/// Runs `sql` on `pool` with the append-only guard lifted, as someone tampering would.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table event_log disable trigger event_log_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table event_log enable trigger event_log_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Waits until `count` sessions of `pool`'s database are blocked on a lock.
async fn wait_for_lock_waiters(pool: &PgPool, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} sessions never blocked on the head lock ({waiting} did)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn appending_an_event_id_twice_stores_it_once() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let [a, b, c] = [
        customer_created(1),
        customer_created(2),
        customer_created(3),
    ];

    let first = store
        .append(&[a.clone(), b.clone(), a.clone()])
        .await
        .unwrap();
    let second = store.append(&[b.clone(), c.clone()]).await.unwrap();
    let third = store
        .append(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();

    assert_eq!((first.appended, first.duplicates), (2, 1));
    assert_eq!((second.appended, second.duplicates), (1, 1));
    assert_eq!((third.appended, third.duplicates), (0, 3));
    assert_eq!(third.head, second.head);
    let stored = store.read_after(0, 100).await.unwrap();
    let ids: Vec<Uuid> = stored.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, vec![a.event_id, b.event_id, c.event_id]);
    assert_eq!(all_positions(&store).await, vec![1, 2, 3]);
    assert_eq!(store.head().await.unwrap().position, 3);
}

#[tokio::test]
async fn positions_run_from_one_without_a_gap_across_batches() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());

    for batch in [0..5, 3..9, 9..10, 0..10, 10..40] {
        store.append(&customers(batch)).await.unwrap();
    }

    assert_eq!(all_positions(&store).await, (1..=40).collect::<Vec<_>>());
    let head = store.head().await.unwrap();
    assert_eq!(head.position, 40);
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test]
async fn an_empty_log_has_the_genesis_head_and_an_empty_append_changes_nothing() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());

    let outcome = store.append(&[]).await.unwrap();

    let genesis = LogHead {
        position: 0,
        link_hash: GENESIS_LINK,
    };
    assert_eq!(outcome.head, genesis);
    assert_eq!(store.head().await.unwrap(), genesis);
    let report = verify(&store).await;
    assert_eq!(
        (report.checked, report.head_position, report.first_broken),
        (0, 0, None)
    );
}

#[tokio::test]
async fn stored_events_read_back_as_appended() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let mut awkward = customer_created(7);
    // Everything COPY's text format must escape, plus non-ASCII text.
    awkward.aggregate_id = "7\tA\\B".into();
    awkward.payload =
        serde_json::json!({ "note": "line one\nline\ttwo \\ \"quoted\" \r Sello Motšoene ✓" });
    awkward
        .metadata
        .insert("actor_role".into(), "tab\there\nnewline".into());

    store.append(std::slice::from_ref(&awkward)).await.unwrap();
    let stored = store.read_after(0, 10).await.unwrap();

    assert_eq!(stored.len(), 1);
    let event = &stored[0];
    assert_eq!(event.position, 1);
    assert_eq!(event.event_id, awkward.event_id);
    assert_eq!(event.aggregate_type, awkward.aggregate_type);
    assert_eq!(event.aggregate_id, awkward.aggregate_id);
    assert_eq!(event.sequence, 1);
    assert_eq!(event.event_type, "CustomerCreated");
    assert_eq!(event.event_version, ROW_CHANGE_VERSION);
    assert_eq!(event.payload.to_value(), awkward.payload);
    assert_eq!(event.metadata, awkward.metadata);
    assert_eq!(
        event.recorded_at.timestamp_subsec_nanos() % 1000,
        0,
        "recorded_at is whole microseconds"
    );
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test]
async fn read_after_pages_through_the_log_from_a_position() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..11)).await.unwrap();

    let page = store.read_after(4, 3).await.unwrap();

    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert!(store.read_after(10, 5).await.unwrap().is_empty());
    assert!(store.read_after(0, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_append_notifies_its_last_position() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener
        .listen(adapters::store::NOTIFY_CHANNEL)
        .await
        .unwrap();

    store.append(&customers(1..4)).await.unwrap();

    let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.payload(), "3");
}

#[tokio::test]
async fn a_taken_aggregate_sequence_is_a_conflict_and_stores_nothing() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&[customer_created(1)]).await.unwrap();
    let mut rival = customer_created(1);
    rival.event_id = Uuid::new_v4();

    let error = store
        .append(&[customer_created(2), rival])
        .await
        .unwrap_err();

    match &error {
        Error::Conflict { sqlstate, .. } => assert_eq!(sqlstate, "23505"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(error.to_string().contains("23505"), "{error}");
    assert_eq!(all_positions(&store).await, vec![1]);
    assert_eq!(store.head().await.unwrap().position, 1);
}

#[tokio::test]
async fn an_event_with_sequence_zero_is_refused_before_anything_is_written() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let mut event = customer_created(1);
    event.sequence = 0;

    let error = store
        .append(&[customer_created(2), event.clone()])
        .await
        .unwrap_err();

    assert!(matches!(error, Error::Store(_)), "{error:?}");
    assert!(
        error.to_string().contains(&event.event_id.to_string()),
        "{error}"
    );
    assert_eq!(store.head().await.unwrap().position, 0);
}

#[tokio::test]
async fn append_in_commits_or_rolls_back_with_the_callers_transaction() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());

    let mut rolled_back = db.pool.begin().await.unwrap();
    let outcome = EventStore::append_in(&mut rolled_back, &customers(1..4))
        .await
        .unwrap();
    assert_eq!(outcome.head.position, 3);
    rolled_back.rollback().await.unwrap();
    let mut committed = db.pool.begin().await.unwrap();
    let outcome = EventStore::append_in(&mut committed, &customers(1..3))
        .await
        .unwrap();
    committed.commit().await.unwrap();

    assert_eq!(outcome.head.position, 2);
    assert_eq!(all_positions(&store).await, vec![1, 2]);
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test]
async fn append_in_outside_a_transaction_is_refused_and_writes_nothing() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let mut autocommit = db.pool.acquire().await.unwrap();

    let error = EventStore::append_in(&mut autocommit, &customers(1..3))
        .await
        .unwrap_err();

    assert!(error.to_string().contains("transaction"), "{error}");
    assert_eq!(store.head().await.unwrap().position, 0);
    assert!(all_positions(&store).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_never_skips_an_event_committed_late() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..3)).await.unwrap();

    // A: appended (positions 3..5) but not committed yet.
    let mut slow = db.pool.begin().await.unwrap();
    let slow_outcome = EventStore::append_in(&mut slow, &customers(3..6))
        .await
        .unwrap();
    assert_eq!(slow_outcome.head.position, 5);
    // B: a second append, which must queue behind A.
    let concurrent = {
        let store = store.clone();
        tokio::spawn(async move { store.append(&customers(6..8)).await })
    };
    wait_for_lock_waiters(&db.pool, 1).await;

    let seen_while_open = store.read_after(0, 100).await.unwrap();
    assert_eq!(
        seen_while_open
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(store.head().await.unwrap().position, 2);
    assert!(
        !concurrent.is_finished(),
        "the second append waits for the first to commit"
    );

    slow.commit().await.unwrap();
    let concurrent_outcome = concurrent.await.unwrap().unwrap();

    assert_eq!(concurrent_outcome.head.position, 7);
    let after = store.read_after(2, 100).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![3, 4, 5, 6, 7]
    );
    let aggregate_ids: Vec<&str> = after.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(aggregate_ids, vec!["3", "4", "5", "6", "7"]);
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_polling_during_concurrent_appends_sees_every_position_once_in_order() {
    const WRITERS: i64 = 4;
    const BATCHES: i64 = 40;
    const BATCH: i64 = 25;
    let total = WRITERS * BATCHES * BATCH;
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for batch in 0..BATCHES {
                    let first = (writer * BATCHES + batch) * BATCH;
                    store
                        .append(&customers(first..first + BATCH))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let follower = {
        let store = store.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen = Vec::with_capacity(total as usize);
            let mut last = 0;
            while last < total {
                assert!(
                    Instant::now() < deadline,
                    "the follower stalled at position {last}"
                );
                for event in store.read_after(last, 300).await.unwrap() {
                    seen.push(event.position);
                    last = event.position;
                }
            }
            seen
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = follower.await.unwrap();

    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    let report = verify(&store).await;
    assert_eq!((report.checked, report.first_broken), (total as u64, None));
}

#[tokio::test]
async fn the_log_refuses_updates_deletes_and_truncation() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..3)).await.unwrap();

    for sql in [
        "update event_log set payload = '{}' where position = 1",
        "delete from event_log where position = 2",
        "truncate event_log",
    ] {
        let error = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    assert_eq!(all_positions(&store).await, vec![1, 2]);
}

#[tokio::test]
async fn tampering_with_a_stored_payload_is_caught_at_its_position() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..51)).await.unwrap();
    let mut progress = Vec::new();
    let intact = store
        .verify_chain(&mut |checked| progress.push(checked))
        .await
        .unwrap();
    assert_eq!(
        (intact.checked, intact.head_position, intact.first_broken),
        (50, 50, None)
    );
    assert_eq!(progress.last(), Some(&50));

    tamper(
        &db.pool,
        r#"update event_log set payload = '{"Created":{"row":{}}}' where position = 17"#,
    )
    .await;
    let report = verify(&store).await;

    let broken = report.first_broken.expect("the tampering is caught");
    assert_eq!(broken.position, 17);
    assert!(broken.problem.contains("link hash"), "{}", broken.problem);
    assert_eq!(report.checked, 16);
}

#[tokio::test]
async fn tampering_with_whitespace_only_is_caught_too() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..6)).await.unwrap();

    // Same JSON value, different text: the chain covers the stored text.
    tamper(
        &db.pool,
        "update event_log set metadata = (' ' || metadata::text)::json where position = 3",
    )
    .await;

    assert_eq!(
        verify(&store).await.first_broken.map(|b| b.position),
        Some(3)
    );
}

#[tokio::test]
async fn deleting_an_event_is_caught_as_a_missing_position() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..21)).await.unwrap();

    tamper(&db.pool, "delete from event_log where position = 9").await;
    let report = verify(&store).await;

    let broken = report.first_broken.expect("the deletion is caught");
    assert_eq!(broken.position, 9);
    assert!(broken.problem.contains("missing"), "{}", broken.problem);
    assert_eq!(report.checked, 8);
}

#[tokio::test]
async fn deleting_the_last_event_is_caught_against_the_head() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..6)).await.unwrap();

    tamper(&db.pool, "delete from event_log where position = 5").await;
    let report = verify(&store).await;

    let broken = report.first_broken.expect("the deletion is caught");
    assert_eq!(broken.position, 5);
    assert!(broken.problem.contains("head"), "{}", broken.problem);
}

#[tokio::test]
async fn a_head_that_disagrees_with_the_log_is_caught() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..6)).await.unwrap();

    sqlx::query("update event_log_head set link_hash = decode(repeat('ab', 32), 'hex')")
        .execute(&db.pool)
        .await
        .unwrap();
    let report = verify(&store).await;

    let broken = report.first_broken.expect("the bad head is caught");
    assert_eq!(broken.position, 5);
    assert!(
        broken.problem.contains("event_log_head"),
        "{}",
        broken.problem
    );
}

#[tokio::test]
async fn the_chain_status_follows_verification_up_to_the_head() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..11)).await.unwrap();
    let before = store.chain_status().await.unwrap();
    assert_eq!(
        (
            before.head_position,
            before.verified_position,
            before.verified_to_head()
        ),
        (10, 0, false)
    );

    let first = store.verify_chain_since_checkpoint().await.unwrap();
    let verified = store.chain_status().await.unwrap();
    store.append(&customers(11..16)).await.unwrap();
    let behind = store.chain_status().await.unwrap();
    let second = store.verify_chain_since_checkpoint().await.unwrap();
    let caught_up = store.chain_status().await.unwrap();

    assert_eq!((first.checked, first.first_broken), (10, None));
    assert!(verified.verified_to_head() && verified.verified_at.is_some());
    assert_eq!(
        (
            behind.head_position,
            behind.verified_position,
            behind.verified_to_head()
        ),
        (15, 10, false)
    );
    assert_eq!(
        (second.checked, second.head_position, second.first_broken),
        (5, 15, None),
        "only the new events"
    );
    assert!(caught_up.verified_to_head());
}

#[tokio::test]
async fn incremental_verification_catches_tampering_after_the_checkpoint_and_records_it() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..11)).await.unwrap();
    store.verify_chain_since_checkpoint().await.unwrap();
    store.append(&customers(11..16)).await.unwrap();

    tamper(
        &db.pool,
        "update event_log set event_type = 'CustomerDeleted' where position = 12",
    )
    .await;
    let report = store.verify_chain_since_checkpoint().await.unwrap();
    let status = store.chain_status().await.unwrap();

    assert_eq!(report.first_broken.as_ref().map(|b| b.position), Some(12));
    assert_eq!(report.checked, 1);
    assert!(!status.verified_to_head());
    assert_eq!(status.verified_position, 11);
    assert_eq!(status.broken.map(|b| b.position), Some(12));
}

#[tokio::test]
async fn incremental_verification_catches_a_rewritten_checkpoint_link() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..11)).await.unwrap();
    store.verify_chain_since_checkpoint().await.unwrap();

    tamper(
        &db.pool,
        "update event_log set link_hash = decode(repeat('cd', 32), 'hex') where position = 10",
    )
    .await;
    let report = store.verify_chain_since_checkpoint().await.unwrap();

    assert_eq!(report.first_broken.map(|b| b.position), Some(10));
    assert_eq!(
        store.chain_status().await.unwrap().verified_position,
        0,
        "nothing can be trusted any more"
    );
}

#[tokio::test]
async fn a_full_verification_records_its_outcome_for_the_status() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..8)).await.unwrap();

    verify(&store).await;

    let status = store.chain_status().await.unwrap();
    assert!(status.verified_to_head());
    assert_eq!(status.verified_position, 7);
}

type CustomerRecord = AcdbRecord<kinds::Customer>;

fn envelope_metadata() -> HashMap<String, String> {
    Envelope::now(Actor::cdc_external(), Uuid::new_v4())
        .to_metadata()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn postgres_es_writes_through_the_events_view_into_the_chained_log() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let cqrs = postgres_es::postgres_cqrs::<CustomerRecord>(db.pool.clone(), vec![], ());
    store.append(&customers(1..4)).await.unwrap();

    let metadata = envelope_metadata();
    cqrs.execute_with_metadata(
        "42",
        RecordCommand::Capture {
            row: customer_row(42),
        },
        metadata.clone(),
    )
    .await
    .unwrap();
    store.append(&customers(4..6)).await.unwrap();

    let log = store.read_after(0, 100).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    let through_view = &log[3];
    assert_eq!(
        (
            through_view.aggregate_type.as_str(),
            through_view.aggregate_id.as_str(),
            through_view.sequence
        ),
        ("Customer", "42", 1)
    );
    assert_eq!(through_view.event_type, "CustomerCreated");
    assert_eq!(
        through_view.metadata,
        metadata.into_iter().collect::<BTreeMap<_, _>>()
    );
    assert_eq!(
        RowChange::from_payload(&through_view.payload).unwrap(),
        RowChange::Created {
            row: customer_row(42)
        }
    );
    assert_eq!(store.head().await.unwrap().position, 6);
    // The trigger's SQL link and the Rust link agree, or this mixed log would not verify.
    let report = verify(&store).await;
    assert_eq!((report.checked, report.first_broken), (6, None));
}

#[tokio::test]
async fn postgres_es_loads_an_aggregate_back_from_the_log() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let cqrs = postgres_es::postgres_cqrs::<CustomerRecord>(db.pool.clone(), vec![], ());
    // Created by the bulk path, with the id a capture would give it.
    store.append(&[customer_created(42)]).await.unwrap();

    // Unchanged: the loaded state already holds this row, so nothing is emitted.
    cqrs.execute_with_metadata(
        "42",
        RecordCommand::Capture {
            row: customer_row(42),
        },
        envelope_metadata(),
    )
    .await
    .unwrap();
    let edited = customer_row(42).with("FIRST NAME", AcdbValue::Text("Lineo".into()));
    cqrs.execute_with_metadata(
        "42",
        RecordCommand::Capture {
            row: edited.clone(),
        },
        envelope_metadata(),
    )
    .await
    .unwrap();

    let log = store.read_after(0, 100).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].position, log[1].sequence, log[1].event_type.as_str()),
        (2, 2, "CustomerUpdated")
    );
    match RowChange::from_payload(&log[1].payload).unwrap() {
        RowChange::Updated { after, changed, .. } => {
            assert_eq!(after, edited);
            assert_eq!(changed, vec!["FIRST NAME".to_string()]);
        }
        other => panic!("expected an update, got {other:?}"),
    }
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_commands_end_in_one_event_and_an_aggregate_conflict() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let cqrs = Arc::new(postgres_es::postgres_cqrs::<CustomerRecord>(
        db.pool.clone(),
        vec![],
        (),
    ));
    // Hold the head lock so both commands load the (empty) aggregate and then queue to append.
    let mut gate = db.pool.begin().await.unwrap();
    sqlx::query("select position from event_log_head for update")
        .execute(&mut *gate)
        .await
        .unwrap();
    let commands: Vec<_> = ["Palesa", "Lineo"]
        .into_iter()
        .map(|name| {
            let cqrs = cqrs.clone();
            let row = customer_row(42).with("FIRST NAME", AcdbValue::Text(name.into()));
            tokio::spawn(async move {
                cqrs.execute_with_metadata(
                    "42",
                    RecordCommand::Capture { row },
                    envelope_metadata(),
                )
                .await
            })
        })
        .collect();
    wait_for_lock_waiters(&db.pool, 2).await;

    gate.rollback().await.unwrap();
    let mut results = Vec::new();
    for command in commands {
        results.push(command.await.unwrap());
    }

    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(AggregateError::AggregateConflict))),
        "the loser sees an aggregate conflict: {results:?}"
    );
    assert_eq!(all_positions(&store).await, vec![1]);
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test]
async fn events_known_to_be_new_are_appended_without_a_lookup_and_chain_like_any_other() {
    // Arrange
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..3)).await.unwrap();
    let expected = customers(3..6);
    let encoded: Vec<EncodedEvent> = expected
        .iter()
        .map(|e| EncodedEvent::new(e).unwrap())
        .collect();

    // Act
    let mut tx = db.pool.begin().await.unwrap();
    let outcome = EventStore::append_encoded_in(&mut tx, &encoded, OnDuplicate::Fail)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Assert
    assert_eq!((outcome.appended, outcome.duplicates), (3, 0));
    assert_eq!(all_positions(&store).await, vec![1, 2, 3, 4, 5]);
    let stored = store.read_after(2, 10).await.unwrap();
    for (stored, expected) in stored.iter().zip(&expected) {
        assert_eq!(
            (stored.event_id, stored.payload.to_value(), &stored.metadata),
            (
                expected.event_id,
                expected.payload.clone(),
                &expected.metadata
            )
        );
    }
    let report = verify(&store).await;
    assert_eq!((report.first_broken, report.checked), (None, 5));
}

#[tokio::test]
async fn an_event_known_to_be_new_that_is_stored_already_fails_the_append_and_stores_nothing() {
    // Arrange
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    store.append(&customers(1..3)).await.unwrap();
    let again: Vec<EncodedEvent> = [customer_created(3), customer_created(2)]
        .iter()
        .map(|e| EncodedEvent::new(e).unwrap())
        .collect();

    // Act
    let mut tx = db.pool.begin().await.unwrap();
    let error = EventStore::append_encoded_in(&mut tx, &again, OnDuplicate::Fail)
        .await
        .unwrap_err();
    tx.rollback().await.unwrap();

    // Assert: an error rather than a silent skip, and the log as it was.
    assert!(
        matches!(&error, Error::Conflict { sqlstate, .. } if sqlstate == "23505"),
        "{error:?}"
    );
    assert!(error.to_string().contains("event_id"), "{error}");
    assert_eq!(all_positions(&store).await, vec![1, 2]);
    // The idempotent append of the same events still skips the stored one.
    let mut tx = db.pool.begin().await.unwrap();
    let outcome = EventStore::append_encoded_in(&mut tx, &again, OnDuplicate::Skip)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((outcome.appended, outcome.duplicates), (1, 1));
    assert_eq!(verify(&store).await.first_broken, None);
}

#[tokio::test]
async fn an_append_of_events_known_to_be_new_outside_a_transaction_is_refused() {
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let mut autocommit = db.pool.acquire().await.unwrap();
    let encoded = [EncodedEvent::new(&customer_created(1)).unwrap()];

    let error = EventStore::append_encoded_in(&mut autocommit, &encoded, OnDuplicate::Fail)
        .await
        .unwrap_err();

    assert!(error.to_string().contains("transaction"), "{error}");
    assert!(all_positions(&store).await.is_empty());
}

/// Not a check of speed (nothing is asserted about timings): prints the throughput of
/// `append_in` and of a raw COPY of the same rows. Run in release mode:
/// `cargo test -p adapters --release --test adapters append_throughput -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement: run explicitly, in release mode"]
async fn append_throughput_against_a_raw_copy_of_the_same_rows() {
    const EVENTS: i64 = 250_000;
    let db = testkit::pg::fresh_database().await;
    let store = EventStore::new(db.pool.clone());
    let events = customers(1..EVENTS + 1);
    let payload_bytes: usize = events.iter().map(|e| e.payload.to_string().len()).sum();
    println!(
        "{EVENTS} events, mean payload {} bytes",
        payload_bytes / EVENTS as usize
    );
    // The client-side share of an append: serialising payload and metadata and chaining links.
    let started = Instant::now();
    let mut link = GENESIS_LINK;
    for (position, event) in (1..).zip(&events) {
        let payload = serde_json::to_string(&event.payload).unwrap();
        let metadata = serde_json::to_string(&event.metadata).unwrap();
        link = domain::chain::link_hash(
            &link,
            &domain::chain::LinkedContent {
                position,
                event_id: event.event_id,
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                sequence: event.sequence,
                event_type: &event.event_type,
                event_version: &event.event_version,
                payload: &payload,
                metadata: &metadata,
                recorded_at_micros: 0,
            },
        );
    }
    std::hint::black_box(link);
    println!(
        "serialising and chaining alone: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    println!(
        "load average before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    checkpoint(&db.pool).await;
    let started = Instant::now();
    let mut tx = db.pool.begin().await.unwrap();
    let outcome = EventStore::append_in(&mut tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    let append_secs = started.elapsed().as_secs_f64();
    println!(
        "append_in (dedup, hash chain, COPY, commit): {append_secs:.2} s, {:.0} events/s",
        EVENTS as f64 / append_secs
    );
    assert_eq!(outcome.appended, EVENTS as u64);

    // The same rows, byte for byte, as COPY text.
    let mut conn = db.pool.acquire().await.unwrap();
    let mut out = conn.copy_out_raw("copy event_log to stdout").await.unwrap();
    let mut rows = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut out).await {
        rows.extend_from_slice(&chunk.unwrap());
    }
    drop(out);
    for (label, create) in [
        (
            "raw COPY into a copy of event_log (same keys)",
            "create table raw_copy (like event_log including all)",
        ),
        (
            "raw COPY into a plain table (no keys)",
            "create table raw_copy (like event_log)",
        ),
    ] {
        sqlx::query("drop table if exists raw_copy")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(create).execute(&mut *conn).await.unwrap();
        checkpoint(&db.pool).await;
        let started = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let mut copy = tx.copy_in_raw("copy raw_copy from stdin").await.unwrap();
        for chunk in rows.chunks(1 << 20) {
            copy.send(chunk).await.unwrap();
        }
        assert_eq!(copy.finish().await.unwrap(), EVENTS as u64);
        tx.commit().await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!("{label}: {secs:.2} s, {:.0} rows/s", EVENTS as f64 / secs);
    }

    checkpoint(&db.pool).await;
    let started = Instant::now();
    let report = verify(&store).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "verify_chain: {secs:.2} s, {:.0} events/s",
        EVENTS as f64 / secs
    );
    assert_eq!(report.first_broken, None);
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

/// Flushes dirty pages so one measurement does not pay for the previous one's writes.
async fn checkpoint(pool: &PgPool) {
    sqlx::query("checkpoint").execute(pool).await.unwrap();
}
