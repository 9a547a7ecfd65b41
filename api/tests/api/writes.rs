//! Generic table writes through the audited writer, the mutation audit, and revert.

use std::time::Duration;

use axum::http::StatusCode;
use domain::auth::Role;
use serde_json::{json, Value};

use crate::support::{Reply, TestApp};

/// Polls `check` until it gives a value, for changes the capture finds on its next poll.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn mutations(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/mutations?{query}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["mutations"].as_array().unwrap().clone()
}

fn first_name_sql(customer: i64) -> String {
    format!("SELECT [FIRST NAME] FROM [tblcustomer] WHERE [CUSTOMER ID] = {customer}")
}

#[tokio::test]
async fn an_update_reaches_the_acdb_and_the_audit_names_who_made_it_with_before_and_after() {
    let app = TestApp::start().await;
    let clerk = app.employee("00123", Role::OnmTeam).await;
    let customer = app.some_customer().await;
    let before = app.acdb_text(&first_name_sql(customer));

    let reply = app
        .put(
            &format!("/api/tables/tblcustomer/{customer}"),
            Some(&clerk),
            json!({"data": {"first name": "Lineo"}}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["message"], "Record updated");
    assert_eq!(
        app.acdb_text(&first_name_sql(customer)).as_deref(),
        Some("Lineo")
    );
    let id = reply.body["mutation_id"].as_i64().unwrap();
    let detail = app.get(&format!("/api/mutations/{id}"), Some(&clerk)).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body["action"], "update");
    assert_eq!(detail.body["user_id"], "00123");
    assert_eq!(detail.body["user_type"], "employee");
    assert_eq!(detail.body["user_name"], "Employee 00123");
    assert_eq!(detail.body["channel"], "api");
    assert_eq!(detail.body["table_name"], "tblcustomer");
    assert_eq!(detail.body["record_id"], customer.to_string());
    assert_eq!(detail.body["old_values"]["FIRST NAME"], json!(before));
    assert_eq!(detail.body["new_values"]["FIRST NAME"], "Lineo");
    assert_eq!(detail.body["changed"], json!(["FIRST NAME"]));
    // The capture's next polls recognise the change as the writer's own: no external edit.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let external = mutations(&app, &clerk, "table=tblcustomer&channel=cdc-external").await;
    assert!(external.is_empty(), "{external:?}");
}

#[tokio::test]
async fn a_create_gets_the_key_the_acdb_assigned_and_a_delete_removes_the_row() {
    let app = TestApp::start().await;
    let clerk = app.employee("00123", Role::Superadmin).await;

    let created = app
        .post(
            "/api/tables/tblcustomer",
            Some(&clerk),
            json!({"data": {"FIRST NAME": "Palesa", "LAST NAME": "Mokoena", "Concession name": "MAK", "PHONE": "+266 5800 1234"}}),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id: i64 = created.body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        app.acdb_text(&first_name_sql(id)).as_deref(),
        Some("Palesa")
    );
    assert_eq!(
        app.acdb_text(&format!(
            "SELECT [PHONE] FROM [tblcustomer] WHERE [CUSTOMER ID] = {id}"
        ))
        .as_deref(),
        Some("58001234"),
        "phones are stored as the national digits"
    );
    let deleted = app
        .delete(&format!("/api/tables/tblcustomer/{id}"), Some(&clerk))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(app.acdb_text(&first_name_sql(id)), None);
    let audit = mutations(&app, &clerk, &format!("table=tblcustomer&record_id={id}")).await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|m| m["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "create"]);
}

/// (method, path, body) of every write endpoint, on rows that exist.
async fn write_requests(app: &TestApp) -> Vec<(&'static str, String, Option<Value>, &'static str)> {
    let customer = app.some_customer().await;
    let transaction: i64 = sqlx::query_scalar(
        "select min(row_key::bigint) from cdc_row_state where table_name = 'tblaccounthistory1'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    vec![
        (
            "PUT",
            format!("/api/tables/tblcustomer/{customer}"),
            Some(json!({"data": {"CITY": "Maseru"}})),
            "customer update",
        ),
        (
            "PUT",
            format!("/api/tables/tblaccounthistory1/{transaction}"),
            Some(json!({"data": {"kwh value": "1.5"}})),
            "transaction update",
        ),
        (
            "PUT",
            format!("/api/tables/TBLACCOUNTHISTORYORIGINAL/{transaction}"),
            Some(json!({"data": {"kwh value": "1.5"}})),
            "archived transaction update",
        ),
        (
            "DELETE",
            format!("/api/tables/tblaccounthistory1/{transaction}"),
            None,
            "transaction delete",
        ),
    ]
}

#[tokio::test]
async fn each_role_may_write_exactly_what_the_legacy_rules_allow() {
    let app = TestApp::start().await;
    let generic = app.employee("00001", Role::Generic).await;
    let finance = app.employee("00002", Role::FinanceTeam).await;
    let onm = app.employee("00003", Role::OnmTeam).await;
    let requests = write_requests(&app).await;
    let expect = |role: &str, what: &str| -> bool {
        match role {
            "generic" => false,
            "finance" => {
                what.starts_with("transaction update") || what == "archived transaction update"
            }
            _ => true,
        }
    };

    for (role, token) in [("generic", &generic), ("finance", &finance), ("onm", &onm)] {
        for (method, path, body, what) in &requests {
            let reply = app
                .request(method.parse().unwrap(), path, Some(token), body.clone())
                .await;
            let allowed = expect(role, what);
            if allowed {
                assert!(
                    reply.status.is_success() || reply.status == StatusCode::NOT_FOUND,
                    "{role} {what}: {} {}",
                    reply.status,
                    reply.body
                );
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{role} {what}: {}",
                    reply.body
                );
            }
        }
    }
    let no_token = app
        .put(&requests[0].1, None, requests[0].2.clone().unwrap())
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
}

async fn assert_refused(
    app: &TestApp,
    reply: Reply,
    status: StatusCode,
    field: Option<&str>,
    events_before: i64,
) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.body["detail"].is_string(), "{}", reply.body);
    if let Some(field) = field {
        assert_eq!(reply.body["field"], field, "{}", reply.body);
    }
    assert_eq!(
        app.event_count().await,
        events_before,
        "no event for a refused write"
    );
}

#[tokio::test]
async fn bad_writes_get_a_clear_4xx_and_change_nothing_in_the_acdb_or_the_log() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    let before = app.acdb_text(&first_name_sql(customer));
    let events = app.event_count().await;
    let path = format!("/api/tables/tblcustomer/{customer}");

    assert_refused(
        &app,
        app.put(
            "/api/tables/tblnothing/1",
            Some(&admin),
            json!({"data": {"x": 1}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        None,
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(&path, Some(&admin), json!({"data": {"NICKNAME": "x"}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("NICKNAME"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(
            &path,
            Some(&admin),
            json!({"data": {"DATE SERVICE CONNECTED": "03/04/2025"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("DATE SERVICE CONNECTED"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(&path, Some(&admin), json!({"data": {"GPS X": "east"}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("GPS X"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(
            &path,
            Some(&admin),
            json!({"data": {"FIRST NAME": {"nested": 1}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("FIRST NAME"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(&path, Some(&admin), json!({"data": {}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("data"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(&path, Some(&admin), json!({"rows": {}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("data"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(
            "/api/tables/tblcustomer/999999",
            Some(&admin),
            json!({"data": {"CITY": "x"}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        None,
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(
            "/api/tables/tblcustomer/abc",
            Some(&admin),
            json!({"data": {"CITY": "x"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("id"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.post(
            "/api/tables/tblcustomer",
            Some(&admin),
            json!({"data": {"CUSTOMER ID": 5, "FIRST NAME": "x"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("CUSTOMER ID"),
        events,
    )
    .await;
    assert_refused(
        &app,
        app.put(
            "/api/tables/tblconfig/1",
            Some(&admin),
            json!({"data": {"therate": 9}}),
        )
        .await,
        StatusCode::FORBIDDEN,
        None,
        events,
    )
    .await;
    let account: String = sqlx::query_scalar("select row_key from cdc_row_state where table_name = 'tblaccountnumbers' and live order by 1 limit 1").fetch_one(&app.db.pool).await.unwrap();
    assert_refused(
        &app,
        app.post(
            "/api/tables/tblaccountnumbers",
            Some(&admin),
            json!({"data": {"accountnumber": account, "customerid": customer}}),
        )
        .await,
        StatusCode::CONFLICT,
        None,
        events,
    )
    .await;
    let huge = json!({"data": {"FIRST NAME": "x".repeat(300_000)}});
    assert_refused(
        &app,
        app.put(&path, Some(&admin), huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        events,
    )
    .await;
    assert_eq!(app.acdb_text(&first_name_sql(customer)), before);
}

#[tokio::test]
async fn an_edit_made_directly_in_access_is_audited_as_cdc_external_with_before_and_after() {
    let app = TestApp::start().await;
    let auditor = app.employee("00123", Role::Generic).await;
    let customer = app.some_customer().await;
    let before = app.acdb_text(&first_name_sql(customer));

    app.acdb.execute(
        &format!(
            "UPDATE [tblcustomer] SET [FIRST NAME] = 'Teboho' WHERE [CUSTOMER ID] = {customer}"
        ),
        &[],
    );

    let found = eventually("the external edit in the audit", || async {
        let list = mutations(&app, &auditor, "channel=cdc-external&table=tblcustomer").await;
        list.into_iter().next()
    })
    .await;
    assert_eq!(found["action"], "update");
    assert_eq!(found["user_id"], Value::Null, "the ACDB does not say who");
    let detail = app
        .get(&format!("/api/mutations/{}", found["id"]), Some(&auditor))
        .await;
    assert_eq!(detail.body["old_values"]["FIRST NAME"], json!(before));
    assert_eq!(detail.body["new_values"]["FIRST NAME"], "Teboho");
}

async fn revert(app: &TestApp, token: &str, id: i64) -> Reply {
    app.post(
        &format!("/api/mutations/{id}/revert"),
        Some(token),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn reverting_an_update_restores_the_row_and_reverting_the_revert_redoes_it() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let finance = app.employee("00200", Role::FinanceTeam).await;
    let customer = app.some_customer().await;
    let original = app.acdb_text(&first_name_sql(customer));
    let updated = app
        .put(
            &format!("/api/tables/tblcustomer/{customer}"),
            Some(&admin),
            json!({"data": {"FIRST NAME": "Lineo"}}),
        )
        .await;
    let update_id = updated.body["mutation_id"].as_i64().unwrap();

    let forbidden = revert(&app, &finance, update_id).await;
    let reverted = revert(&app, &admin, update_id).await;

    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.body);
    assert_eq!(app.acdb_text(&first_name_sql(customer)), original);
    let revert_id = reverted.body["revert_mutation_id"].as_i64().unwrap();
    let original_now = app
        .get(&format!("/api/mutations/{update_id}"), Some(&admin))
        .await;
    assert_eq!(original_now.body["reverted"], true);
    assert_eq!(original_now.body["reverted_by"], "00");
    let revert_row = app
        .get(&format!("/api/mutations/{revert_id}"), Some(&admin))
        .await;
    assert_eq!(revert_row.body["action"], "revert_update");
    assert_eq!(revert_row.body["reverts"], update_id);
    let again = revert(&app, &admin, update_id).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "already reverted");

    let redone = revert(&app, &admin, revert_id).await;

    assert_eq!(redone.status, StatusCode::OK, "{}", redone.body);
    assert_eq!(
        app.acdb_text(&first_name_sql(customer)).as_deref(),
        Some("Lineo")
    );
}

#[tokio::test]
async fn a_revert_that_would_overwrite_a_later_change_is_refused_with_409() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    let path = format!("/api/tables/tblcustomer/{customer}");
    let first = app
        .put(
            &path,
            Some(&admin),
            json!({"data": {"FIRST NAME": "Lineo"}}),
        )
        .await;
    let second = app
        .put(&path, Some(&admin), json!({"data": {"CITY": "Mokhotlong"}}))
        .await;
    assert_eq!(second.status, StatusCode::OK);

    let refused = revert(&app, &admin, first.body["mutation_id"].as_i64().unwrap()).await;

    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.detail().contains("changed after"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.acdb_text(&first_name_sql(customer)).as_deref(),
        Some("Lineo")
    );
}

#[tokio::test]
async fn reverting_a_create_deletes_the_row_and_reverting_a_delete_puts_it_back_with_its_key() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let created = app
        .post(
            "/api/tables/tblcustomer",
            Some(&admin),
            json!({"data": {"FIRST NAME": "Nthabiseng", "Concession name": "KET"}}),
        )
        .await;
    let id: i64 = created.body["id"].as_str().unwrap().parse().unwrap();

    let undone = revert(&app, &admin, created.body["mutation_id"].as_i64().unwrap()).await;

    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);
    assert_eq!(undone.body["action"], "revert_delete");
    assert_eq!(app.acdb_text(&first_name_sql(id)), None);

    let existing = app.some_customer().await;
    let name = app.acdb_text(&first_name_sql(existing));
    let deleted = app
        .delete(&format!("/api/tables/tblcustomer/{existing}"), Some(&admin))
        .await;
    let restored = revert(&app, &admin, deleted.body["mutation_id"].as_i64().unwrap()).await;

    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(restored.body["action"], "revert_create");
    assert_eq!(
        app.acdb_text(&first_name_sql(existing)),
        name,
        "same key, same values"
    );
}

#[tokio::test]
async fn a_role_change_is_audited_and_revertible_like_an_acdb_change() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let thabo = app.employee("00123", Role::Generic).await;
    app.put(
        "/api/admin/roles/00123",
        Some(&admin),
        json!({"cc_role": "onm_team"}),
    )
    .await;
    let audit = mutations(&app, &admin, "table=users&record_id=employee:00123").await;
    let role_change = audit
        .iter()
        .find(|m| m["action"] == "update")
        .expect("the role change is audited");
    let detail = app
        .get(
            &format!("/api/mutations/{}", role_change["id"]),
            Some(&admin),
        )
        .await;
    assert_eq!(detail.body["old_values"], json!({"cc_role": "generic"}));
    assert_eq!(detail.body["new_values"], json!({"cc_role": "onm_team"}));

    let reverted = revert(&app, &admin, role_change["id"].as_i64().unwrap()).await;

    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.body);
    let me = app.get("/api/auth/me", Some(&thabo)).await;
    assert_eq!(me.body["role"], "generic");
}

#[tokio::test]
async fn the_mutation_list_pages_filters_and_checks_its_parameters() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let customer = app.some_customer().await;
    for city in ["A", "B", "C"] {
        app.put(
            &format!("/api/tables/tblcustomer/{customer}"),
            Some(&admin),
            json!({"data": {"CITY": city}}),
        )
        .await;
    }

    let page = app
        .get(
            "/api/mutations?table=tblcustomer&limit=2&page=1",
            Some(&admin),
        )
        .await;
    let bad_limit = app.get("/api/mutations?limit=500", Some(&admin)).await;
    let bad_channel = app.get("/api/mutations?channel=fax", Some(&admin)).await;
    let bad_date = app.get("/api/mutations?from=yesterday", Some(&admin)).await;
    let missing = app.get("/api/mutations/999999", Some(&admin)).await;

    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["pages"], 2);
    assert_eq!(page.body["mutations"].as_array().unwrap().len(), 2);
    let ids: Vec<i64> = page.body["mutations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert!(ids[0] > ids[1], "newest first");
    assert_eq!(bad_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_limit.body["field"], "limit");
    assert_eq!(bad_channel.body["field"], "channel");
    assert_eq!(bad_date.body["field"], "from");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
