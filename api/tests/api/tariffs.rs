//! Tariffs: the global rate through the audited writer, overrides with effective dates,
//! resolution, history, and revert.

use std::time::Duration;

use adapters::commands::TariffSchedules;
use adapters::writer::WriteQueue;
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use domain::auth::Role;
use domain::dates::maseru_local;
use serde_json::{json, Value};

use crate::support::TestApp;

fn therate(app: &TestApp) -> String {
    let text = app
        .acdb_text("SELECT [therate] FROM [tblconfig] ORDER BY [ID]")
        .unwrap();
    text.parse::<rust_decimal::Decimal>()
        .unwrap()
        .normalize()
        .to_string()
}

/// A customer with a canonical account: (customer id, account, site).
async fn customer_with_account(app: &TestApp) -> (i64, String, String) {
    let account = app.some_account().await;
    let customer: i64 =
        sqlx::query_scalar("select customer_id from read_model.accounts where account_number = $1")
            .bind(&account)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let site = account[4..].to_string();
    (customer, account, site)
}

fn local(offset: TimeDelta) -> String {
    (maseru_local(Utc::now()) + offset)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[tokio::test]
async fn the_global_rate_is_written_to_tblconfig_by_the_audited_writer_and_recorded_in_the_history()
{
    let app = TestApp::start().await;
    let finance = app.employee("00200", Role::FinanceTeam).await;
    let generic = app.employee("00300", Role::Generic).await;
    let before = therate(&app);

    let refused = app
        .put(
            "/api/tariff/global",
            Some(&generic),
            json!({"rate_lsl": 6.25}),
        )
        .await;
    let set = app
        .put(
            "/api/tariff/global",
            Some(&finance),
            json!({"rate_lsl": 6.25, "notes": "board decision"}),
        )
        .await;

    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["status"], "applied");
    assert_eq!(set.body["previous_rate"], json!(before));
    assert_eq!(therate(&app), "6.25");
    let current = app.get("/api/tariff/current", Some(&generic)).await;
    assert_eq!(current.body["global_rate"], "6.25");
    let history = app
        .get("/api/tariff/history?scope=global", Some(&generic))
        .await;
    let first = &history.body["history"][0];
    assert_eq!(first["rate_lsl"], "6.25");
    assert_eq!(first["previous_rate"], json!(before));
    assert_eq!(first["set_by"], "00200");
    let audit = app
        .get("/api/mutations?table=tblconfig", Some(&generic))
        .await;
    assert_eq!(audit.body["mutations"][0]["user_id"], "00200");
}

#[tokio::test]
async fn a_future_global_rate_waits_for_its_date_then_reaches_tblconfig() {
    let app = TestApp::start().await;
    let finance = app.employee("00200", Role::FinanceTeam).await;
    let before = therate(&app);
    let due = local(TimeDelta::seconds(2));

    let scheduled = app
        .put(
            "/api/tariff/global",
            Some(&finance),
            json!({"rate_lsl": "7.10", "effective_from": due}),
        )
        .await;

    assert_eq!(scheduled.status, StatusCode::OK, "{}", scheduled.body);
    assert_eq!(scheduled.body["status"], "scheduled");
    assert_eq!(therate(&app), before, "not before its date");
    let current = app.get("/api/tariff/current", Some(&finance)).await;
    assert_eq!(current.body["pending_global"]["rate_lsl"], "7.10");
    let writes = WriteQueue::new(app.db.pool.clone(), Duration::from_secs(20));
    let schedules = TariffSchedules::new(app.db.pool.clone());
    let early = adapters::tariffs::apply_due_global_rates(&app.db.pool, &writes, &schedules)
        .await
        .unwrap();
    assert_eq!(early, 0);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let applied = adapters::tariffs::apply_due_global_rates(&app.db.pool, &writes, &schedules)
        .await
        .unwrap();
    let again = adapters::tariffs::apply_due_global_rates(&app.db.pool, &writes, &schedules)
        .await
        .unwrap();
    assert_eq!((applied, again), (1, 0));
    assert_eq!(therate(&app), "7.1");
}

#[tokio::test]
async fn overrides_take_effect_at_their_dates_and_resolve_customer_then_site_then_global() {
    let app = TestApp::start().await;
    let onm = app.employee("00123", Role::OnmTeam).await;
    let (customer, account, site) = customer_with_account(&app).await;
    let global = therate(&app);

    let site_rate = app
        .put(
            &format!("/api/tariff/concession/{}", site.to_lowercase()),
            Some(&onm),
            json!({"rate_lsl": "6.80", "effective_from": local(-TimeDelta::days(1))}),
        )
        .await;
    let customer_rate = app
        .put(
            &format!("/api/tariff/customer/{customer}"),
            Some(&onm),
            json!({"rate_lsl": "4.50", "effective_from": local(TimeDelta::days(30))}),
        )
        .await;
    assert_eq!(site_rate.status, StatusCode::OK, "{}", site_rate.body);
    assert_eq!(
        customer_rate.status,
        StatusCode::OK,
        "{}",
        customer_rate.body
    );
    assert_eq!(customer_rate.body["pending"], true);

    let now = app
        .get(&format!("/api/tariff/resolve/{account}"), Some(&onm))
        .await;
    let later = app
        .get(
            &format!(
                "/api/tariff/resolve/{customer}?at={}",
                local(TimeDelta::days(31))
            ),
            Some(&onm),
        )
        .await;
    let before_all = app
        .get(
            &format!(
                "/api/tariff/resolve/{account}?at={}",
                local(-TimeDelta::days(10))
            ),
            Some(&onm),
        )
        .await;

    assert_eq!(now.status, StatusCode::OK, "{}", now.body);
    assert_eq!(now.body["source"], "concession");
    assert_eq!(now.body["rate_lsl"], "6.80");
    assert_eq!(now.body["concession"], site.as_str());
    assert_eq!(later.body["source"], "customer");
    assert_eq!(later.body["rate_lsl"], "4.50");
    assert_eq!(before_all.body["source"], "global");
    let global_now: rust_decimal::Decimal = before_all.body["rate_lsl"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(global_now.normalize().to_string(), global);
    let current = app.get("/api/tariff/current", Some(&onm)).await;
    assert_eq!(current.body["customer_override_count"], 1);
    assert_eq!(
        current.body["concession_overrides"][0]["scope_key"],
        site.as_str()
    );
}

#[tokio::test]
async fn removing_an_override_falls_back_to_the_next_level_and_a_second_removal_is_404() {
    let app = TestApp::start().await;
    let onm = app.employee("00123", Role::OnmTeam).await;
    let (_, account, site) = customer_with_account(&app).await;
    app.put(
        &format!("/api/tariff/concession/{site}"),
        Some(&onm),
        json!({"rate_lsl": 6.8}),
    )
    .await;

    let removed = app
        .delete(&format!("/api/tariff/concession/{site}"), Some(&onm))
        .await;
    let again = app
        .delete(&format!("/api/tariff/concession/{site}"), Some(&onm))
        .await;

    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["previous_rate"], "6.8");
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let resolved = app
        .get(&format!("/api/tariff/resolve/{account}"), Some(&onm))
        .await;
    assert_eq!(resolved.body["source"], "global");
}

#[tokio::test]
async fn a_tariff_change_is_audited_and_reverted_like_any_other_change() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let (_, account, site) = customer_with_account(&app).await;
    app.put(
        &format!("/api/tariff/concession/{site}"),
        Some(&admin),
        json!({"rate_lsl": "6.80"}),
    )
    .await;
    let audit = app.get("/api/mutations?table=tariffs", Some(&admin)).await;
    let change = &audit.body["mutations"][0];
    assert_eq!(change["record_id"], format!("concession:{site}"));
    assert_eq!(change["action"], "create");

    let reverted = app
        .post(
            &format!("/api/mutations/{}/revert", change["id"]),
            Some(&admin),
            json!({}),
        )
        .await;

    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.body);
    assert_eq!(reverted.body["action"], "revert_delete");
    let resolved = app
        .get(&format!("/api/tariff/resolve/{account}"), Some(&admin))
        .await;
    assert_eq!(resolved.body["source"], "global");
}

#[tokio::test]
async fn bad_tariff_input_is_refused_naming_the_field() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let cases: [(&str, Value, &str); 6] = [
        ("/api/tariff/global", json!({"rate_lsl": 0}), "rate_lsl"),
        ("/api/tariff/global", json!({"rate_lsl": "six"}), "rate_lsl"),
        (
            "/api/tariff/global",
            json!({"rate_lsl": 6.123456}),
            "rate_lsl",
        ),
        (
            "/api/tariff/concession/MAK",
            json!({"rate_lsl": 6, "effective_from": "next week"}),
            "effective_from",
        ),
        (
            "/api/tariff/concession/M4K!",
            json!({"rate_lsl": 6}),
            "code",
        ),
        (
            "/api/tariff/customer/abc",
            json!({"rate_lsl": 6}),
            "customer_id",
        ),
    ];
    for (path, body, field) in cases {
        let reply = app.put(path, Some(&admin), body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {}",
            reply.body
        );
        assert_eq!(reply.body["field"], field, "{path} {body}");
    }
    let unknown = app
        .put(
            "/api/tariff/customer/999999",
            Some(&admin),
            json!({"rate_lsl": 6}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad_scope = app
        .get("/api/tariff/history?scope=planet", Some(&admin))
        .await;
    assert_eq!(bad_scope.body["field"], "scope");
}

/// The rate `/api/tariff/resolve` gives `account` at `at`, which must come from the global level.
async fn global_rate_at(app: &TestApp, token: &str, account: &str, at: &str) -> String {
    let reply = app
        .get(
            &format!("/api/tariff/resolve/{account}?at={at}"),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["source"], "global", "{}", reply.body);
    let rate: rust_decimal::Decimal = reply.body["rate_lsl"].as_str().unwrap().parse().unwrap();
    rate.normalize().to_string()
}

#[tokio::test]
async fn the_global_rate_resolved_at_a_date_is_the_one_in_force_then() {
    let app = TestApp::start().await;
    let finance = app.employee("00200", Role::FinanceTeam).await;
    let (_, account, _) = customer_with_account(&app).await;
    let imported = therate(&app);
    let before_change = local(-TimeDelta::minutes(5));
    app.put(
        "/api/tariff/global",
        Some(&finance),
        json!({"rate_lsl": "6.25"}),
    )
    .await;
    app.put(
        "/api/tariff/global",
        Some(&finance),
        json!({"rate_lsl": "7.00", "effective_from": local(TimeDelta::days(10))}),
    )
    .await;
    assert_eq!(
        global_rate_at(&app, &finance, &account, &before_change).await,
        imported,
        "before the change"
    );
    assert_eq!(
        global_rate_at(&app, &finance, &account, &local(TimeDelta::minutes(1))).await,
        "6.25",
        "after it"
    );
    assert_eq!(
        global_rate_at(&app, &finance, &account, &local(TimeDelta::days(11))).await,
        "7",
        "once the scheduled rate is due"
    );
}
