//! Auditors' tools: a record as of an instant, its history, the chain check, exports, replay.

use std::time::Duration;

use adapters::acdb::AcdbWriter;
use axum::http::StatusCode;
use chrono::Utc;
use domain::auth::Role;
use domain::catalog::{table_spec, KeyPart, RowKey};
use projections::ProjectorRunner;
use serde_json::{json, Value};

use crate::support::TestApp;

/// The row of `tblcustomer` as the ACDB holds it now, as plain JSON.
fn acdb_customer(app: &TestApp, customer: i64) -> Value {
    let mut reader = app.acdb.reader();
    let spec = table_spec("tblcustomer").unwrap();
    reader
        .read_row(spec, &RowKey(vec![KeyPart::Int(customer)]))
        .unwrap()
        .expect("the customer is in the ACDB")
        .to_plain_json()
}

fn encode(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339().replace('+', "%2B")
}

#[tokio::test]
async fn a_record_as_of_an_instant_is_the_acdb_row_as_it_was_captured_then() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    let as_imported = acdb_customer(&app, customer);
    let before_edit = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.put(
        &format!("/api/tables/tblcustomer/{customer}"),
        Some(&admin),
        json!({"data": {"FIRST NAME": "Lineo", "CITY": "Roma"}}),
    )
    .await;
    let as_edited = acdb_customer(&app, customer);

    let then = app
        .get(
            &format!(
                "/api/audit/records/tblcustomer/{customer}?as_of={}",
                encode(before_edit)
            ),
            Some(&admin),
        )
        .await;
    let now = app
        .get(
            &format!("/api/audit/records/tblcustomer/{customer}"),
            Some(&admin),
        )
        .await;
    let before_anything = app
        .get(
            &format!("/api/audit/records/tblcustomer/{customer}?as_of=2000-01-01"),
            Some(&admin),
        )
        .await;

    assert_eq!(then.status, StatusCode::OK, "{}", then.body);
    assert_eq!(then.body["record"], as_imported);
    assert_eq!(then.body["last_change"]["capture"], "snapshot");
    assert_eq!(now.body["record"], as_edited);
    assert_eq!(now.body["last_change"]["user_id"], "00");
    assert_ne!(as_imported, as_edited);
    assert_eq!(before_anything.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_record_history_lists_its_import_and_every_change_with_who_and_how() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    app.put(
        &format!("/api/tables/tblcustomer/{customer}"),
        Some(&admin),
        json!({"data": {"CITY": "Roma"}}),
    )
    .await;

    let history = app
        .get(
            &format!("/api/audit/records/tblcustomer/{customer}/history"),
            Some(&admin),
        )
        .await;
    let unknown = app
        .get("/api/audit/records/tblnothing/1/history", Some(&admin))
        .await;

    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let changes = history.body["history"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["capture"], "snapshot");
    assert_eq!(changes[0]["channel"], "system");
    // Recorded by the writer, or by a poll that saw it first and attributed it to the command.
    assert!(
        changes[1]["capture"] == "write" || changes[1]["capture"] == "poll",
        "{}",
        changes[1]
    );
    assert_eq!(changes[1]["channel"], "api");
    assert_eq!(changes[1]["user_id"], "00");
    assert_eq!(changes[1]["after"]["CITY"], "Roma");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_chain_check_reports_an_intact_log_and_names_a_tampered_event() {
    let app = TestApp::start().await;
    let auditor = app.employee("00300", Role::Generic).await;
    let intact = app.get("/api/audit/verify?full=true", Some(&auditor)).await;
    assert_eq!(intact.status, StatusCode::OK, "{}", intact.body);
    assert_eq!(intact.body["intact"], true);
    let victim: i64 =
        sqlx::query_scalar("select min(position) from event_log where aggregate_type = 'Customer'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();

    let mut tx = app.db.pool.begin().await.unwrap();
    for sql in [
        "alter table event_log disable trigger event_log_append_only",
        &format!("update event_log set payload = '{{\"Created\":{{\"row\":{{}}}}}}' where position = {victim}"),
        "alter table event_log enable trigger event_log_append_only",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let broken = app.get("/api/audit/verify?full=true", Some(&auditor)).await;

    assert_eq!(broken.body["intact"], false, "{}", broken.body);
    assert_eq!(broken.body["first_broken"]["position"], victim);
}

#[tokio::test]
async fn the_audit_trail_exports_as_csv_and_json_lines() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    for city in ["A", "B, with a comma", "C \"quoted\""] {
        app.put(
            &format!("/api/tables/tblcustomer/{customer}"),
            Some(&admin),
            json!({"data": {"CITY": city}}),
        )
        .await;
    }

    let csv = app
        .get(
            "/api/audit/export?format=csv&table=tblcustomer",
            Some(&admin),
        )
        .await;
    let jsonl = app
        .get(
            "/api/audit/export?format=jsonl&table=tblcustomer",
            Some(&admin),
        )
        .await;
    let bad = app.get("/api/audit/export?format=xml", Some(&admin)).await;

    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.body.as_str().unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[1][13].contains("B, with a comma"), "{:?}", rows[1]);
    let lines: Vec<Value> = jsonl
        .body
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["new_values"]["CITY"], "C \"quoted\"");
    assert!(
        lines[0]["id"].as_i64() < lines[1]["id"].as_i64(),
        "oldest first"
    );
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_replay_rebuilds_the_read_models_as_they_stood_at_an_earlier_position() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    let before: i64 = sqlx::query_scalar("select max(position) from event_log")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let name_then: Option<String> =
        sqlx::query_scalar("select first_name from read_model.customers where customer_id = $1")
            .bind(customer)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    app.put(
        &format!("/api/tables/tblcustomer/{customer}"),
        Some(&admin),
        json!({"data": {"FIRST NAME": "Lineo"}}),
    )
    .await;

    let runner = ProjectorRunner::new(app.db.pool.clone(), projections::all());
    let applied = runner
        .replay("replay_test", before, &mut |_, _| {})
        .await
        .unwrap();
    let again = runner.replay("replay_test", before, &mut |_, _| {}).await;

    assert!(applied > 0);
    let replayed: Option<String> =
        sqlx::query_scalar("select first_name from replay_test.customers where customer_id = $1")
            .bind(customer)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(replayed, name_then);
    let live: Option<String> =
        sqlx::query_scalar("select first_name from read_model.customers where customer_id = $1")
            .bind(customer)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(live.as_deref(), Some("Lineo"));
    assert!(matches!(
        again,
        Err(projections::Error::SchemaExists { .. })
    ));
}
