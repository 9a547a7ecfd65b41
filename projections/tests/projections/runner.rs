//! The projector runner: checkpoints, catch-up, following, rebuilds and status.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_trait::async_trait;
use domain::acdb::AcdbRow;
use domain::event::StoredEvent;
use projections::customers::{self, CustomersProjection};
use projections::{
    qualified, Error, Projection, ProjectionState, ProjectorRunner, RebuildProgress, RunnerOptions,
};
use sqlx::PgConnection;

use crate::support::{
    account_row, customer_row, dump, eventually, generation_schemas, live, meter_row, Following,
    Harness,
};

/// A bounded wait for something expected within about a second; generous for slow CI machines.
const VISIBLE_WITHIN: Duration = Duration::from_secs(15);

/// Customer 1, as most tests first capture them.
fn mpho() -> AcdbRow {
    customer_row(1, "Mpho", "Mokoena", 58123456, "MAK 0045 HH", "MAK")
}

/// Customer 2, as most tests first capture them.
fn palesa() -> AcdbRow {
    customer_row(2, "Palesa", "Nthako", 62001122, "MAS 0101 HH", "MAS")
}

/// Captures a small ACDB history: customers, accounts and meters created, edited and deleted,
/// with transactions (which the read model ignores) in between.
async fn capture_history(h: &mut Harness) {
    let c = &mut h.capture;
    c.row("tblcustomer", mpho()).await;
    c.row("tblcustomer", palesa()).await;
    c.row(
        "tblaccountnumbers",
        account_row("0045MAK", 1, "SMRSD-26-00000045"),
    )
    .await;
    c.transaction(1, "0045MAK", "50.00").await;
    c.row(
        "tblcustomer",
        customer_row(3, "Thabo", "Lebona", 57000003, "SHG 0007 SME", "SHG"),
    )
    .await;
    c.row("tblmeter", meter_row("SMRSD-26-00000101", "0101MAS", 2))
        .await;
    c.row(
        "Copy Of tblmeter",
        meter_row("SMRSD-26-00000007", "0007SHG", 3),
    )
    .await;
    c.transaction(2, "0101MAS", "20.00").await;
    c.row(
        "tblcustomer",
        customer_row(
            1,
            "Mpho",
            "Mokoena-Ramoeletsi",
            58123456,
            "MAK 0045 HH",
            "MAK",
        ),
    )
    .await;
    c.row(
        "tblcustomer",
        customer_row(4, "Lerato", "Mofokeng", 59009988, "MAK 0046 HH", "MAK"),
    )
    .await;
    c.deletion("tblcustomer", "4").await;
    c.row(
        "tblaccountnumbers",
        account_row("0046MAK", 4, "SMRSD-26-00000046"),
    )
    .await;
    c.deletion("tblaccountnumbers", "0046MAK").await;
    c.row("tblmeter", meter_row("SMRSD-26-00000101", "0101MAS", 3))
        .await;
    c.transaction(3, "0007SHG", "10.00").await;
}

#[tokio::test]
async fn a_projection_rebuilt_from_zero_equals_the_incrementally_built_one() {
    // Arrange: build incrementally, a few events per batch, catching up as history arrives.
    let mut h = Harness::new().await;
    let runner = h.runner_with(RunnerOptions {
        batch_events: 2,
        rebuild_batch_events: 2,
        ..RunnerOptions::default()
    });
    runner.ensure_ready().await.unwrap();
    runner.catch_up().await.unwrap();
    capture_history(&mut h).await;
    runner.catch_up().await.unwrap();
    h.capture
        .row(
            "tblcustomer",
            customer_row(5, "Neo", "Sello", 63004455, "TOS 0012 HH", "TOS"),
        )
        .await;
    runner.catch_up().await.unwrap();
    let incremental = dump(h.pool()).await;

    // Act
    let mut reports = Vec::new();
    runner
        .rebuild(Some(customers::NAME), &mut |p| reports.push(p))
        .await
        .unwrap();

    // Assert
    assert_eq!(dump(h.pool()).await, incremental);
    let head = h.capture.store().head().await.unwrap().position;
    assert_eq!(live(h.pool()).await, (2, head));
    assert_eq!(generation_schemas(h.pool()).await, ["rm_customers_2"]);
    let last = reports.last().expect("progress was reported");
    assert!(last.done);
    assert_eq!((last.generation, last.position), (2, head));
    assert!(
        reports.len() > 2,
        "a rebuild in batches of 2 reports each batch: {reports:?}"
    );
    assert!(
        incremental["customers"].contains("Mokoena-Ramoeletsi"),
        "the dump holds the data"
    );
}

#[tokio::test]
async fn a_read_model_that_has_applied_nothing_is_first_built_by_the_rebuild_pipeline_when_the_log_is_long(
) {
    // Arrange: the same history, built once batch by batch and once on a second database
    // whose runner takes the pipeline for any log of at least one event.
    let mut batchwise = Harness::new().await;
    capture_history(&mut batchwise).await;
    let runner = batchwise.runner_with(RunnerOptions {
        batch_events: 2,
        ..RunnerOptions::default()
    });
    runner.ensure_ready().await.unwrap();
    runner.catch_up().await.unwrap();
    let expected = dump(batchwise.pool()).await;
    assert_eq!(
        live(batchwise.pool()).await.0,
        1,
        "batch by batch stays on generation 1"
    );

    let mut pipelined = Harness::new().await;
    capture_history(&mut pipelined).await;
    let runner = pipelined.runner_with(RunnerOptions {
        rebuild_batch_events: 2,
        first_build_min_events: 1,
        ..RunnerOptions::default()
    });
    runner.ensure_ready().await.unwrap();

    // Act
    let applied = runner.catch_up().await.unwrap();

    // Assert: a rebuilt generation is live, at the head, with the same rows.
    let head = pipelined.capture.store().head().await.unwrap().position;
    assert_eq!(live(pipelined.pool()).await, (2, head));
    assert!(applied > 0, "the events of the first build are counted");
    assert_eq!(dump(pipelined.pool()).await, expected);
    // Once built, it follows batch by batch.
    pipelined
        .capture
        .row(
            "tblcustomer",
            customer_row(5, "Neo", "Sello", 63004455, "TOS 0012 HH", "TOS"),
        )
        .await;
    runner.catch_up().await.unwrap();
    let head = pipelined.capture.store().head().await.unwrap().position;
    assert_eq!(live(pipelined.pool()).await, (2, head));
}

#[tokio::test]
async fn applying_the_same_batch_twice_changes_nothing() {
    // Arrange
    let mut h = Harness::new().await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    capture_history(&mut h).await;
    runner.catch_up().await.unwrap();
    let before = dump(h.pool()).await;
    let events = h.capture.store().read_after(0, 1_000).await.unwrap();

    // Act: the whole log again, as one redelivered batch, straight into the live generation.
    let mut tx = h.pool().begin().await.unwrap();
    CustomersProjection
        .apply(&mut tx, "rm_customers_1", &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Assert
    assert_eq!(dump(h.pool()).await, before);
}

#[tokio::test]
async fn events_at_or_below_the_checkpoint_are_applied_again_only_after_a_reset_and_then_change_nothing(
) {
    // Arrange
    let mut h = Harness::new().await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    capture_history(&mut h).await;
    let first = runner.catch_up().await.unwrap();
    let before = dump(h.pool()).await;

    // Act
    let again = runner.catch_up().await.unwrap();
    sqlx::query("update projection_registry set position = 0 where name = 'customers'")
        .execute(h.pool())
        .await
        .unwrap();
    let after_reset = runner.catch_up().await.unwrap();

    // Assert: 15 events were captured, 12 of them for this read model (3 are transactions).
    assert_eq!((first, again, after_reset), (12, 0, 12));
    assert_eq!(dump(h.pool()).await, before);
}

#[tokio::test]
async fn catching_up_after_downtime_applies_exactly_the_missed_events() {
    // Arrange
    let mut h = Harness::new().await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    h.capture.row("tblcustomer", mpho()).await;
    assert_eq!(runner.catch_up().await.unwrap(), 1);
    // While no runner runs: two customers, an edit, and two events of other tables.
    h.capture.row("tblcustomer", palesa()).await;
    h.capture.transaction(1, "0045MAK", "50.00").await;
    h.capture
        .row(
            "tblcustomer",
            customer_row(1, "Mpho", "Ramoeletsi", 58123456, "MAK 0045 HH", "MAK"),
        )
        .await;
    h.capture.transaction(2, "0045MAK", "25.00").await;
    h.capture
        .row(
            "tblcustomer",
            customer_row(3, "Thabo", "Lebona", 57000003, "SHG 0007 SME", "SHG"),
        )
        .await;

    // Act
    let applied = runner.catch_up().await.unwrap();

    // Assert
    assert_eq!(applied, 3);
    let head = h.capture.store().head().await.unwrap().position;
    assert_eq!(live(h.pool()).await, (1, head));
    assert_eq!(customers::customer_count(h.pool()).await.unwrap(), 3);
    let mpho = customers::customer_by_id(h.pool(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mpho.last_name.as_deref(), Some("Ramoeletsi"));
    assert_eq!(runner.catch_up().await.unwrap(), 0);
}

#[tokio::test]
async fn an_event_appended_while_the_runner_runs_becomes_visible_without_waiting_for_the_poll() {
    // Arrange: a safety poll far longer than the wait below, so only the notification can wake it.
    let mut h = Harness::new().await;
    let runner = Arc::new(h.runner_with(RunnerOptions {
        poll_interval: Duration::from_secs(600),
        ..RunnerOptions::default()
    }));
    let following = Following::start(Arc::clone(&runner));
    let pool = h.pool().clone();
    assert!(
        eventually(VISIBLE_WITHIN, || async {
            sqlx::query("select 1 from read_model.customers limit 0")
                .execute(&pool)
                .await
                .is_ok()
        })
        .await
    );

    // Act
    h.capture
        .row(
            "tblcustomer",
            customer_row(7, "Mpho", "Mokoena", 58123456, "MAK 0045 HH", "MAK"),
        )
        .await;

    // Assert
    let visible = eventually(VISIBLE_WITHIN, || async {
        customers::customer_by_id(&pool, 7).await.unwrap().is_some()
    })
    .await;
    assert!(visible, "the new customer never appeared in the read model");
    following.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn during_a_rebuild_the_old_generation_serves_and_the_runner_then_continues_on_the_new_one() {
    // Arrange: a running runner and a read model with some history.
    let mut h = Harness::new().await;
    let options = RunnerOptions {
        batch_events: 2,
        rebuild_batch_events: 2,
        poll_interval: Duration::from_millis(200),
        ..RunnerOptions::default()
    };
    let runner = Arc::new(h.runner_with(options));
    let following = Following::start(Arc::clone(&runner));
    capture_history(&mut h).await;
    let pool = h.pool().clone();
    let head = h.capture.store().head().await.unwrap().position;
    assert!(eventually(VISIBLE_WITHIN, || async { live(&pool).await.1 == head }).await);

    // Act 1: start a rebuild and hold it after its first batch.
    let (reached, paused) = mpsc::channel::<RebuildProgress>();
    let (resume, resumed) = mpsc::channel::<()>();
    let rebuild = tokio::spawn({
        let runner = Arc::clone(&runner);
        async move {
            let mut first = true;
            runner
                .rebuild(Some(customers::NAME), &mut move |p: RebuildProgress| {
                    if first && !p.done {
                        first = false;
                        reached.send(p).unwrap();
                        // Blocks only this task's worker; the runner and the test go on.
                        tokio::task::block_in_place(|| resumed.recv().unwrap());
                    }
                })
                .await
        }
    });
    let progress =
        tokio::task::spawn_blocking(move || paused.recv_timeout(VISIBLE_WITHIN).unwrap())
            .await
            .unwrap();

    // Assert 1: generation 2 is partly built; generation 1 serves and is kept current.
    assert_eq!(progress.generation, 2);
    assert!(
        progress.position < head,
        "the rebuild paused before reaching the head"
    );
    let status = runner.status().await.unwrap().remove(0);
    assert_eq!(status.state, ProjectionState::Rebuilding);
    assert_eq!(status.live_generation, 1);
    let rebuild_status = status.rebuild.expect("the rebuild shows in the status");
    assert_eq!(rebuild_status.generation, 2);
    assert!(rebuild_status.running);
    let second = runner.rebuild(Some(customers::NAME), &mut |_| {}).await;
    assert!(
        matches!(second, Err(Error::RebuildRunning { .. })),
        "{second:?}"
    );
    assert_eq!(customers::customer_count(&pool).await.unwrap(), 3);
    h.capture
        .row(
            "tblcustomer",
            customer_row(8, "Karabo", "Phiri", 58880008, "MAK 0050 HH", "MAK"),
        )
        .await;
    assert!(
        eventually(VISIBLE_WITHIN, || async {
            customers::customer_by_id(&pool, 8).await.unwrap().is_some()
        })
        .await,
        "the live generation stopped following during the rebuild"
    );
    assert_eq!(live(&pool).await.0, 1);

    // Act 2: let the rebuild finish, then append more.
    resume.send(()).unwrap();
    rebuild.await.unwrap().unwrap();
    h.capture
        .row(
            "tblcustomer",
            customer_row(9, "Teboho", "Khoali", 58990009, "MAK 0051 HH", "MAK"),
        )
        .await;

    // Assert 2: generation 2 is live, has everything, and the runner keeps it current.
    assert!(
        eventually(VISIBLE_WITHIN, || async {
            customers::customer_by_id(&pool, 9).await.unwrap().is_some()
        })
        .await,
        "the runner did not continue on the new generation"
    );
    let head = h.capture.store().head().await.unwrap().position;
    assert!(eventually(VISIBLE_WITHIN, || async { live(&pool).await == (2, head) }).await);
    assert_eq!(customers::customer_count(&pool).await.unwrap(), 5);
    assert_eq!(generation_schemas(&pool).await, ["rm_customers_2"]);
    let status = runner.status().await.unwrap().remove(0);
    assert_eq!(
        (status.state, status.rebuild),
        (ProjectionState::Live, None)
    );
    following.stop().await;
}

#[tokio::test]
async fn status_reports_the_live_generation_position_and_lag() {
    // Arrange
    let mut h = Harness::new().await;
    let runner = h.runner();
    h.capture.row("tblcustomer", mpho()).await;
    h.capture.transaction(1, "0045MAK", "50.00").await;
    h.capture.row("tblcustomer", palesa()).await;
    h.capture.transaction(2, "0101MAS", "20.00").await;

    // Act
    let never_started = runner.status().await.unwrap().remove(0);
    runner.ensure_ready().await.unwrap();
    let ready = runner.status().await.unwrap().remove(0);
    runner.catch_up().await.unwrap();
    let caught_up = runner.status().await.unwrap().remove(0);

    // Assert
    assert_eq!(never_started.state, ProjectionState::NotStarted);
    assert_eq!(
        (ready.name.as_str(), ready.state),
        ("customers", ProjectionState::Live)
    );
    assert_eq!(
        (ready.live_generation, ready.position, ready.head, ready.lag),
        (1, 0, 4, 4)
    );
    assert_eq!(ready.last_applied_at, None);
    assert_eq!(
        (caught_up.position, caught_up.head, caught_up.lag),
        (4, 4, 0)
    );
    assert!(caught_up.last_applied_at.is_some());
    assert_eq!(caught_up.last_error, None);
}

/// Records every event it is given in a table whose key is the position, so an event applied
/// twice to one generation fails the batch.
struct PositionLedger;

#[async_trait]
impl Projection for PositionLedger {
    fn name(&self) -> &'static str {
        "position_ledger"
    }

    async fn create_tables(
        &self,
        conn: &mut PgConnection,
        schema: &str,
    ) -> projections::Result<()> {
        sqlx::query(&format!(
            "create table {} (position bigint primary key)",
            qualified(schema, "ledger")
        ))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> projections::Result<()> {
        let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
        sqlx::query(&format!(
            "insert into {} select unnest($1::bigint[])",
            qualified(schema, "ledger")
        ))
        .bind(&positions)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_catching_up_at_once_apply_every_event_exactly_once() {
    // Arrange: two runners (as two processes would have), small batches.
    let mut h = Harness::new().await;
    for id in 1..=40 {
        h.capture.transaction(id, "0045MAK", "1.00").await;
    }
    let options = RunnerOptions {
        batch_events: 3,
        ..RunnerOptions::default()
    };
    let make = || {
        ProjectorRunner::new(
            h.pool().clone(),
            vec![Arc::new(PositionLedger) as Arc<dyn Projection>],
        )
        .with_options(options.clone())
    };
    let (a, b) = (make(), make());
    a.ensure_ready().await.unwrap();

    // Act
    let (applied_a, applied_b) = tokio::join!(a.catch_up(), b.catch_up());

    // Assert
    assert_eq!(applied_a.unwrap() + applied_b.unwrap(), 40);
    let (count, max): (i64, Option<i64>) =
        sqlx::query_as("select count(*), max(position) from read_model.ledger")
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!((count, max), (40, Some(40)));
}

#[tokio::test]
async fn an_unreadable_event_stops_the_projection_just_before_it_and_the_failure_is_recorded() {
    // Arrange: a Customer event whose payload is not a row change, between two good ones.
    let mut h = Harness::new().await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    h.capture.row("tblcustomer", mpho()).await;
    let good = h.capture.store().read_after(0, 1).await.unwrap().remove(0);
    let broken = domain::event::NewEvent {
        event_id: uuid::Uuid::new_v4(),
        aggregate_type: "Customer".into(),
        aggregate_id: "99".into(),
        sequence: 1,
        event_type: "CustomerCreated".into(),
        event_version: "1".into(),
        payload: serde_json::json!({"Renamed": {"to": "x"}}),
        metadata: good.metadata.clone(),
    };
    h.capture
        .store()
        .append(std::slice::from_ref(&broken))
        .await
        .unwrap();
    h.capture.row("tblcustomer", palesa()).await;

    // Act
    let error = runner.catch_up().await.unwrap_err();
    let pool = h.pool().clone();
    let following = Following::start(Arc::new(h.runner()));
    let recorded = eventually(VISIBLE_WITHIN, || async {
        sqlx::query_scalar::<_, Option<String>>(
            "select last_error from projection_registry where name = 'customers'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .is_some()
    })
    .await;
    following.stop().await;

    // Assert
    assert!(
        matches!(error, Error::UnreadableEvent { position: 2, .. }),
        "{error}"
    );
    assert!(recorded, "the failure was not recorded in the registry");
    assert_eq!(live(h.pool()).await, (1, 1));
    let status = runner.status().await.unwrap().remove(0);
    assert!(status.last_error.unwrap().contains("position 2"));
    assert_eq!(status.lag, 2);
    assert_eq!(customers::customer_count(h.pool()).await.unwrap(), 1);
}

/// A projection with a name chosen by the test.
struct Named(&'static str);

#[async_trait]
impl Projection for Named {
    fn name(&self) -> &'static str {
        self.0
    }

    async fn create_tables(&self, _: &mut PgConnection, _: &str) -> projections::Result<()> {
        Ok(())
    }

    async fn apply(
        &self,
        _: &mut PgConnection,
        _: &str,
        _: &[StoredEvent],
    ) -> projections::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_runner_refuses_names_that_cannot_name_a_schema_and_names_used_twice() {
    // Arrange
    let h = Harness::new().await;
    let runner = |names: &[&'static str]| {
        let projections = names
            .iter()
            .map(|n| Arc::new(Named(n)) as Arc<dyn Projection>)
            .collect();
        ProjectorRunner::new(h.pool().clone(), projections)
    };

    // Act
    let invalid = runner(&["Customers; drop table event_log"])
        .ensure_ready()
        .await;
    let duplicate = runner(&["customers", "customers"]).status().await;

    // Assert
    assert!(
        matches!(invalid, Err(Error::InvalidName { .. })),
        "{invalid:?}"
    );
    assert!(
        matches!(duplicate, Err(Error::DuplicateName { .. })),
        "{duplicate:?}"
    );
    let registered: i64 = sqlx::query_scalar("select count(*) from projection_registry")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(registered, 0);
}

#[tokio::test]
async fn a_generation_left_behind_by_an_interrupted_swap_is_dropped_when_the_runner_starts() {
    // Arrange
    let mut h = Harness::new().await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    capture_history(&mut h).await;
    runner.catch_up().await.unwrap();
    sqlx::query("create schema rm_customers_7")
        .execute(h.pool())
        .await
        .unwrap();

    // Act
    runner.ensure_ready().await.unwrap();

    // Assert
    assert_eq!(generation_schemas(h.pool()).await, ["rm_customers_1"]);
    assert_eq!(customers::customer_count(h.pool()).await.unwrap(), 3);
}

#[tokio::test]
async fn a_rebuild_that_died_shows_as_not_running_and_the_next_rebuild_replaces_it() {
    // Arrange: a rebuild of generation 2 that stopped at position 3 without cleaning up.
    let mut h = Harness::new().await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    capture_history(&mut h).await;
    runner.catch_up().await.unwrap();
    let before = dump(h.pool()).await;
    for statement in [
        "create schema rm_customers_2",
        "create table rm_customers_2.leftover (x int)",
        "insert into projection_rebuilds (name, generation, position) values ('customers', 2, 3)",
        "update projection_registry set status = 'rebuilding' where name = 'customers'",
    ] {
        sqlx::query(statement).execute(h.pool()).await.unwrap();
    }
    let died = runner.status().await.unwrap().remove(0);

    // Act
    runner.rebuild(None, &mut |_| {}).await.unwrap();

    // Assert
    assert_eq!(died.state, ProjectionState::Rebuilding);
    assert_eq!(
        died.rebuild,
        Some(projections::RebuildStatus {
            generation: 2,
            position: 3,
            running: false
        })
    );
    let head = h.capture.store().head().await.unwrap().position;
    assert_eq!(live(h.pool()).await, (2, head));
    assert_eq!(generation_schemas(h.pool()).await, ["rm_customers_2"]);
    assert_eq!(dump(h.pool()).await, before);
    let status = runner.status().await.unwrap().remove(0);
    assert_eq!(
        (status.state, status.rebuild),
        (ProjectionState::Live, None)
    );
}

#[tokio::test]
async fn catching_up_a_log_the_planner_thinks_empty_refreshes_its_statistics_first() {
    // Arrange: 12,000 events appended at once, as an import does; the planner's estimate of the
    // log is still that of the empty table.
    let mut h = Harness::new().await;
    h.capture.row("tblcustomer", mpho()).await;
    let template = h.capture.store().read_after(0, 1).await.unwrap().remove(0);
    let events: Vec<domain::event::NewEvent> = (1..=12_000)
        .map(|i| domain::event::NewEvent {
            event_id: uuid::Uuid::new_v4(),
            aggregate_type: "TariffConfig".into(),
            aggregate_id: format!("bulk-{i}"),
            sequence: 1,
            event_type: "TariffConfigCreated".into(),
            event_version: "1".into(),
            payload: serde_json::json!({"Created": {"row": {}}}),
            metadata: template.metadata.clone(),
        })
        .collect();
    h.capture.store().append(&events).await.unwrap();
    let estimate = || async {
        let tuples: f32 =
            sqlx::query_scalar("select reltuples from pg_class where oid = 'event_log'::regclass")
                .fetch_one(h.pool())
                .await
                .unwrap();
        tuples
    };
    assert!(estimate().await < 6_000.0, "not analyzed yet");
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();

    // Act
    runner.catch_up().await.unwrap();

    // Assert: analyzed (the estimate is the log's size), and the customer was applied.
    assert!(estimate().await >= 12_000.0, "{}", estimate().await);
    let customers: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(customers, 1);
}
