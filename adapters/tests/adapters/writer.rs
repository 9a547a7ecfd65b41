//! The audited writer against a real PostgreSQL and a generated ACDB over ODBC: requests left
//! behind by a process that stopped at each step are settled exactly once, and the change
//! capture attributes a write it sees first to its command.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use adapters::acdb::{self, AcdbLocation};
use adapters::cdc::{Cdc, NoProgress};
use adapters::writer::{AuditedWriter, WriteQueue, WriterClaims};
use domain::command::{AcdbWrites, CommandContext, WriteOutcome};
use domain::envelope::{Actor, Channel};
use domain::write::{validate, InputValue, TableWrite, WriteAction};
use testkit::acdb::TestAcdb;
use testkit::pg::TestDatabase;
use uuid::Uuid;

use crate::cdc::{capture, head, import};

struct Setup {
    db: TestDatabase,
    acdb: TestAcdb,
    cdc: Cdc,
}

async fn imported() -> Setup {
    let db = testkit::pg::fresh_database().await;
    let acdb = testkit::acdb::generated(30, 21);
    let cdc = capture(&db, &acdb, Arc::new(NoProgress)).with_own_writes(Arc::new(WriterClaims));
    import(&cdc).await;
    Setup { db, acdb, cdc }
}

fn writer(setup: &Setup) -> AuditedWriter {
    let location = AcdbLocation::Odbc(setup.acdb.dsn());
    AuditedWriter::new(
        setup.db.pool.clone(),
        Arc::new(move || acdb::open_writer(&location)),
    )
}

/// A queue that does not wait: the request is recorded and left for a writer.
fn queue(setup: &Setup) -> WriteQueue {
    WriteQueue::new(setup.db.pool.clone(), Duration::ZERO)
}

fn clerk() -> CommandContext {
    CommandContext::new(Actor {
        user_id: Some("00123".into()),
        role: Some("onm_team".into()),
        channel: Channel::Portal,
    })
}

fn write(table: &str, action: WriteAction, id: Option<&str>, data: &[(&str, &str)]) -> TableWrite {
    let data: BTreeMap<String, InputValue> = data
        .iter()
        .map(|(k, v)| (k.to_string(), InputValue::Text(v.to_string())))
        .collect();
    validate(table, action, id, &data, &[]).expect("a valid write")
}

async fn submit_and_leave(setup: &Setup, write: TableWrite) -> Uuid {
    match queue(setup).submit(write, &clerk()).await.unwrap() {
        WriteOutcome::Pending { command_id } => command_id,
        other => panic!("no writer runs, yet the write finished: {other:?}"),
    }
}

/// What a writer killed after its ACDB transaction and before recording it leaves behind.
async fn mark_applying(setup: &Setup, command_id: Uuid, key_floor: Option<i64>) {
    sqlx::query("update acdb_writes set status = 'applying', key_floor = $2 where command_id = $1")
        .bind(command_id)
        .bind(key_floor)
        .execute(&setup.db.pool)
        .await
        .unwrap();
}

async fn status_of(setup: &Setup, command_id: Uuid) -> (String, Option<String>) {
    sqlx::query_as("select status, reason from acdb_writes where command_id = $1")
        .bind(command_id)
        .fetch_one(&setup.db.pool)
        .await
        .unwrap()
}

/// An event as these tests look at it: any kind, its metadata, its payload.
struct Logged {
    event_type: String,
    metadata: BTreeMap<String, String>,
    payload: serde_json::Value,
}

async fn events_after(pool: &sqlx::PgPool, position: i64) -> Vec<Logged> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select event_type, metadata::text, payload::text from event_log where position > $1 order by position",
    )
    .bind(position)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(event_type, metadata, payload)| Logged {
            event_type,
            metadata: serde_json::from_str(&metadata).unwrap(),
            payload: serde_json::from_str(&payload).unwrap(),
        })
        .collect()
}

async fn some_customer(setup: &Setup) -> i64 {
    sqlx::query_scalar(
        "select min(row_key::bigint) from cdc_row_state where table_name = 'tblcustomer' and live",
    )
    .fetch_one(&setup.db.pool)
    .await
    .unwrap()
}

fn count_rows(setup: &Setup, sql: &str) -> i64 {
    use odbc_api::Cursor;
    let env = odbc_api::environment().unwrap();
    let conn = env
        .connect_with_connection_string(&setup.acdb.dsn(), odbc_api::ConnectionOptions::default())
        .unwrap();
    let mut cursor = conn.execute(sql, (), None).unwrap().unwrap();
    let mut row = cursor.next_row().unwrap().unwrap();
    let mut text = Vec::new();
    row.get_text(1, &mut text).unwrap();
    String::from_utf8(text).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_request_a_stopped_process_had_only_recorded_is_applied_once_by_the_next_writer() {
    let setup = imported().await;
    let customer = some_customer(&setup).await;
    let command = submit_and_leave(
        &setup,
        write(
            "tblcustomer",
            WriteAction::Update,
            Some(&customer.to_string()),
            &[("CITY", "Quthing")],
        ),
    )
    .await;
    let start = head(&setup.db.pool).await;

    let applied = writer(&setup).apply_next().await.unwrap();
    let nothing_left = writer(&setup).apply_next().await.unwrap();
    let cycle = setup.cdc.run_cycle().await.unwrap();

    assert!(applied && !nothing_left);
    assert_eq!(status_of(&setup, command).await.0, "applied");
    assert_eq!(
        count_rows(&setup, &format!("SELECT COUNT(*) FROM [tblcustomer] WHERE [CUSTOMER ID] = {customer} AND [CITY] = 'Quthing'")),
        1
    );
    let events = events_after(&setup.db.pool, start).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["CustomerUpdated", "WriteApplied"]);
    let updated = &events[0];
    assert_eq!(updated.metadata["actor_user_id"], "00123");
    assert_eq!(updated.metadata["channel"], "portal");
    assert_eq!(updated.metadata["causation_id"], command.to_string());
    assert_eq!(updated.metadata["cdc_phase"], "write");
    assert_eq!(cycle.events_emitted(), 0, "the capture finds nothing new");
}

#[tokio::test]
async fn a_create_that_reached_the_acdb_before_the_stop_is_confirmed_and_not_inserted_again() {
    let setup = imported().await;
    let command = submit_and_leave(
        &setup,
        write(
            "tblaccounthistory1",
            WriteAction::Create,
            None,
            &[
                ("accountnumber", "0001MAK"),
                ("transaction amount", "77.7700"),
                ("kwh value", "12.5"),
            ],
        ),
    )
    .await;
    let floor: i64 = sqlx::query_scalar(
        "select max(row_key::bigint) from cdc_row_state where table_name = 'tblaccounthistory1'",
    )
    .fetch_one(&setup.db.pool)
    .await
    .unwrap();
    mark_applying(&setup, command, Some(floor)).await;
    // The killed writer's ACDB transaction had committed.
    setup.acdb.execute(
        "INSERT INTO [tblaccounthistory1] ([accountnumber], [transaction amount], [kwh value]) VALUES ('0001MAK', 77.77, 12.5)",
        &[],
    );

    let settled = writer(&setup).recover().await.unwrap();

    assert_eq!(settled, 1);
    assert_eq!(status_of(&setup, command).await.0, "applied");
    assert_eq!(
        count_rows(
            &setup,
            "SELECT COUNT(*) FROM [tblaccounthistory1] WHERE [transaction amount] = 77.77"
        ),
        1,
        "not inserted a second time"
    );
    let created: Vec<String> = sqlx::query_scalar(
        "select metadata->>'causation_id' from event_log where event_type = 'AccountTransactionCreated' and metadata->>'cdc_phase' <> 'snapshot'",
    )
    .fetch_all(&setup.db.pool)
    .await
    .unwrap();
    assert_eq!(created, [command.to_string()]);
    assert_eq!(setup.cdc.run_cycle().await.unwrap().events_emitted(), 0);
}

#[tokio::test]
async fn a_write_that_had_not_reached_the_acdb_before_the_stop_is_recorded_as_failed() {
    let setup = imported().await;
    let customer = some_customer(&setup).await;
    let command = submit_and_leave(
        &setup,
        write(
            "tblcustomer",
            WriteAction::Update,
            Some(&customer.to_string()),
            &[("CITY", "Quthing")],
        ),
    )
    .await;
    mark_applying(&setup, command, None).await;
    let start = head(&setup.db.pool).await;

    writer(&setup).recover().await.unwrap();

    let (status, reason) = status_of(&setup, command).await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("does not hold it"));
    let kinds: Vec<String> = events_after(&setup.db.pool, start)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(kinds, ["WriteFailed"]);
    assert_eq!(
        count_rows(
            &setup,
            "SELECT COUNT(*) FROM [tblcustomer] WHERE [CITY] = 'Quthing'"
        ),
        0
    );
}

#[tokio::test]
async fn the_capture_that_sees_a_write_first_attributes_it_to_the_command_and_the_writer_adds_only_the_outcome(
) {
    let setup = imported().await;
    let customer = some_customer(&setup).await;
    let command = submit_and_leave(
        &setup,
        write(
            "tblcustomer",
            WriteAction::Update,
            Some(&customer.to_string()),
            &[("CITY", "Semonkong")],
        ),
    )
    .await;
    mark_applying(&setup, command, None).await;
    setup.acdb.execute(
        &format!("UPDATE [tblcustomer] SET [CITY] = 'Semonkong' WHERE [CUSTOMER ID] = {customer}"),
        &[],
    );
    let start = head(&setup.db.pool).await;

    let cycle = setup.cdc.run_cycle().await.unwrap();
    writer(&setup).recover().await.unwrap();

    assert_eq!(cycle.table("tblcustomer").unwrap().updated, 1);
    let events = events_after(&setup.db.pool, start).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["CustomerUpdated", "WriteApplied"]);
    assert_eq!(events[0].metadata["channel"], "portal", "not cdc-external");
    assert_eq!(events[0].metadata["causation_id"], command.to_string());
    assert_eq!(status_of(&setup, command).await.0, "applied");
}

#[tokio::test]
async fn an_edit_made_in_access_just_before_a_write_is_recorded_as_its_own_external_change() {
    let setup = imported().await;
    let customer = some_customer(&setup).await;
    setup.acdb.execute(
        &format!(
            "UPDATE [tblcustomer] SET [DISTRICT] = 'Mokhotlong' WHERE [CUSTOMER ID] = {customer}"
        ),
        &[],
    );
    submit_and_leave(
        &setup,
        write(
            "tblcustomer",
            WriteAction::Update,
            Some(&customer.to_string()),
            &[("CITY", "Quthing")],
        ),
    )
    .await;
    let start = head(&setup.db.pool).await;

    writer(&setup).apply_next().await.unwrap();

    let events = events_after(&setup.db.pool, start).await;
    let updates: Vec<(&str, Vec<String>)> = events
        .iter()
        .filter(|e| e.event_type == "CustomerUpdated")
        .map(|e| {
            let changed: Vec<String> =
                serde_json::from_value(e.payload["Updated"]["changed"].clone()).unwrap();
            (e.metadata["channel"].as_str(), changed)
        })
        .collect();
    assert_eq!(
        updates,
        [
            ("cdc-external", vec!["DISTRICT".to_string()]),
            ("portal", vec!["CITY".to_string()])
        ]
    );
    assert_eq!(setup.cdc.run_cycle().await.unwrap().events_emitted(), 0);
}

#[tokio::test]
async fn a_write_the_acdb_refuses_is_recorded_as_failed_with_the_acdb_reason() {
    let setup = imported().await;
    // A row the capture has not seen yet takes the key first.
    setup.acdb.execute(
        "INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('9999MAK', 1)",
        &[],
    );
    let command = submit_and_leave(
        &setup,
        write(
            "tblaccountnumbers",
            WriteAction::Create,
            None,
            &[("accountnumber", "9999MAK"), ("customerid", "2")],
        ),
    )
    .await;

    writer(&setup).apply_next().await.unwrap();

    let (status, reason) = status_of(&setup, command).await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("already exists"));
    let value = count_rows(
        &setup,
        "SELECT [customerid] FROM [tblaccountnumbers] WHERE [accountnumber] = '9999MAK'",
    );
    assert_eq!(value, 1, "the row the ACDB had is untouched");
}

/// A meter and its account, as the portal's assign-meter command writes them.
fn meter_and_account(meter: &str, account: &str) -> Vec<TableWrite> {
    vec![
        write(
            "tblmeter",
            WriteAction::Create,
            None,
            &[
                ("meterid", meter),
                ("accountnumber", account),
                ("customer id", "1"),
            ],
        ),
        write(
            "tblaccountnumbers",
            WriteAction::Create,
            None,
            &[
                ("accountnumber", account),
                ("customerid", "1"),
                ("meterid", meter),
            ],
        ),
    ]
}

#[tokio::test]
async fn writes_submitted_together_are_applied_in_one_transaction_each_its_own_mutation() {
    let setup = imported().await;
    let start = head(&setup.db.pool).await;
    let queue = queue(&setup);
    let outcomes = queue
        .submit_together(meter_and_account("SMRSD-TG-1", "9801MAK"), &clerk())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);

    writer(&setup).apply_next().await.unwrap();

    for outcome in &outcomes {
        let WriteOutcome::Pending { command_id } = outcome else {
            panic!("no writer ran yet: {outcome:?}");
        };
        assert_eq!(status_of(&setup, *command_id).await.0, "applied");
    }
    let changes: Vec<Logged> = events_after(&setup.db.pool, start)
        .await
        .into_iter()
        .filter(|e| e.event_type.ends_with("Created"))
        .collect();
    assert_eq!(changes.len(), 2, "one change event per row");
    assert_eq!(
        count_rows(
            &setup,
            "SELECT COUNT(*) FROM [tblmeter] WHERE [meterid] = 'SMRSD-TG-1'"
        ),
        1
    );
    assert_eq!(
        count_rows(
            &setup,
            "SELECT COUNT(*) FROM [tblaccountnumbers] WHERE [accountnumber] = '9801MAK'"
        ),
        1
    );
}

#[tokio::test]
async fn when_the_acdb_refuses_the_second_of_writes_made_together_the_first_is_not_kept_either() {
    let setup = imported().await;
    // A row the capture has not seen yet takes the account's key first.
    setup.acdb.execute(
        "INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('9802MAK', 1)",
        &[],
    );
    let outcomes = queue(&setup)
        .submit_together(meter_and_account("SMRSD-TG-2", "9802MAK"), &clerk())
        .await
        .unwrap();

    writer(&setup).apply_next().await.unwrap();

    let ids: Vec<Uuid> = outcomes
        .iter()
        .map(|o| match o {
            WriteOutcome::Pending { command_id } => *command_id,
            other => panic!("no writer ran yet: {other:?}"),
        })
        .collect();
    let (meter_status, meter_reason) = status_of(&setup, ids[0]).await;
    let (account_status, account_reason) = status_of(&setup, ids[1]).await;
    assert_eq!(meter_status, "failed");
    assert!(meter_reason.unwrap().contains("nothing was changed"));
    assert_eq!(account_status, "failed");
    assert!(account_reason.unwrap().contains("already exists"));
    assert_eq!(
        count_rows(
            &setup,
            "SELECT COUNT(*) FROM [tblmeter] WHERE [meterid] = 'SMRSD-TG-2'"
        ),
        0,
        "the meter was rolled back with the account"
    );
}

#[tokio::test]
async fn a_group_cut_by_the_batch_limit_is_still_applied_in_one_transaction() {
    let setup = imported().await;
    let customer = some_customer(&setup).await;
    let queue = queue(&setup);
    // 31 writes ahead of it: the batch of 32 would end after the group's first write.
    for n in 0..31 {
        let name = format!("Ahead{n}");
        // One queue for all: each holds a listening connection.
        queue
            .submit(
                write(
                    "tblcustomer",
                    WriteAction::Update,
                    Some(&customer.to_string()),
                    &[("FIRST NAME", name.as_str())],
                ),
                &clerk(),
            )
            .await
            .unwrap();
    }
    setup.acdb.execute(
        "INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('9803MAK', 1)",
        &[],
    );
    queue
        .submit_together(meter_and_account("SMRSD-TG-3", "9803MAK"), &clerk())
        .await
        .unwrap();

    writer(&setup).apply_next().await.unwrap();

    assert_eq!(
        count_rows(
            &setup,
            "SELECT COUNT(*) FROM [tblmeter] WHERE [meterid] = 'SMRSD-TG-3'"
        ),
        0,
        "the meter was applied with its refused account, not alone"
    );
    let open: i64 = sqlx::query_scalar(
        "select count(*) from acdb_writes where status not in ('applied', 'failed')",
    )
    .fetch_one(&setup.db.pool)
    .await
    .unwrap();
    assert_eq!(open, 0);
}
