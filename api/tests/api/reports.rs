//! The O&M report and ARPU against hand-computed figures on a small fixture ACDB (the rows of
//! `support::report_ledger` and the meters below are all it holds; every expected number was
//! worked out by hand from them, following legacy-system.md §3 and its bug fixes §3.16).

use axum::http::StatusCode;
use domain::auth::Role;
use serde_json::{json, Value};
use testkit::acdb::TestAcdb;

use crate::support::{report_ledger, TestApp};

/// The ledger and customers of [`report_ledger`], and the meter register with a few readings.
fn fixture(acdb: &TestAcdb) {
    report_ledger(acdb);
    for (meter, account, kind, community) in [
        ("M1", "0001MAK", "HH", "MAK"),
        ("M2", "0002MAK", "SME", "MAK"),
        ("M3", "0001MAS", "HH", "MAS"),
    ] {
        acdb.execute(
            &format!(
                "INSERT INTO [Copy Of tblmeter] ([meterid], [accountnumber], [customer type], [community]) VALUES ('{meter}', '{account}', '{kind}', '{community}')"
            ),
            &[],
        );
    }
    for (meter, at, power, community) in [
        ("M1", "2025-03-01 10:10:00", Some("1.0"), "MAK"),
        ("M1", "2025-03-02 10:20:00", Some("3.0"), "MAK"),
        ("M1", "2025-03-01 11:00:00", Some("0.5"), "MAK"),
        ("M1", "2025-03-03 12:00:00", None, "MAK"),
        ("M2", "2025-03-01 10:30:00", Some("4.0"), "MAK"),
        ("M3", "2025-03-01 10:40:00", Some("2.0"), "MAS"),
    ] {
        acdb.execute(
            &format!(
                "INSERT INTO [tblmeterdata1] ([meterid], [whdatetime], [powerkW], [community]) VALUES ('{meter}', '{at}', {}, '{community}')",
                power.unwrap_or("NULL")
            ),
            &[],
        );
    }
}

async fn report(app: &TestApp, token: &str, path: &str) -> Value {
    let reply = app.get(path, Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    reply.body
}

async fn fixture_app() -> (TestApp, String) {
    let app = TestApp::start_with(fixture).await;
    let token = app.employee("00300", Role::Generic).await;
    (app, token)
}

#[tokio::test]
async fn quarterly_arpu_counts_every_account_seen_so_far_and_rounds_half_to_even() {
    let (app, token) = fixture_app().await;

    let body = report(&app, &token, "/api/om-report/arpu").await;

    assert_eq!(body["source_table"], "tblaccounthistory1");
    assert_eq!(body["site_codes"], json!(["MAK", "MAS"]));
    assert_eq!(
        body["site_names"],
        json!({"MAK": "Ha Makebe", "MAS": "Mashai"})
    );
    assert_eq!(
        body["arpu"],
        json!([
            {"quarter": "2025 Q1", "total_revenue": 180.5, "active_customers": 2, "arpu": 90.25,
             "per_site": {"MAK": {"name": "Ha Makebe", "revenue": 180.5, "customers": 2, "arpu": 90.25}}},
            {"quarter": "2025 Q2", "total_revenue": 50.0, "active_customers": 5, "arpu": 10.0,
             "per_site": {
                "MAK": {"name": "Ha Makebe", "revenue": 40.0, "customers": 3, "arpu": 13.33},
                "MAS": {"name": "Mashai", "revenue": -10.0, "customers": 1, "arpu": -10.0}}},
            {"quarter": "2025 Q3", "total_revenue": 0.12, "active_customers": 6, "arpu": 0.02,
             "per_site": {"MAS": {"name": "Mashai", "revenue": 0.12, "customers": 2, "arpu": 0.06}}},
        ])
    );
}

#[tokio::test]
async fn monthly_arpu_uses_local_months_and_names_each_month_s_quarter() {
    let (app, token) = fixture_app().await;

    let body = report(&app, &token, "/api/om-report/monthly-arpu").await;

    let rows: Vec<(String, String, f64, i64, f64)> = body["monthly_arpu"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["month"].as_str().unwrap().to_string(),
                r["quarter"].as_str().unwrap().to_string(),
                r["total_revenue"].as_f64().unwrap(),
                r["active_customers"].as_i64().unwrap(),
                r["arpu"].as_f64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("2025-01", "2025 Q1", 100.0, 1, 100.0),
        ("2025-02", "2025 Q1", 50.5, 1, 50.5),
        ("2025-03", "2025 Q1", 30.0, 2, 15.0),
        ("2025-04", "2025 Q2", -10.0, 3, -3.33),
        ("2025-05", "2025 Q2", 20.0, 4, 5.0),
        ("2025-06", "2025 Q2", 40.0, 5, 8.0),
        ("2025-08", "2025 Q3", 0.12, 6, 0.02),
    ];
    let expected: Vec<(String, String, f64, i64, f64)> = expected
        .iter()
        .map(|(m, q, r, c, a)| (m.to_string(), q.to_string(), *r, *c, *a))
        .collect();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn sales_and_consumption_by_site_put_undatable_rows_under_unknown_and_filter_by_quarter() {
    let (app, token) = fixture_app().await;

    let sales = report(&app, &token, "/api/om-report/sales-by-site").await;
    let q2 = report(
        &app,
        &token,
        "/api/om-report/sales-by-site?quarter=2025%20Q2",
    )
    .await;
    let unknown = report(&app, &token, "/api/om-report/sales-by-site?quarter=Unknown").await;
    let kwh = report(&app, &token, "/api/om-report/consumption-by-site").await;

    assert_eq!(
        sales["sites"],
        json!([
            {"site": "MAK", "name": "Ha Makebe", "total_lsl": 287.5,
             "quarters": {"2025 Q1": 180.5, "2025 Q2": 40.0, "Unknown": 67.0}},
            {"site": "MAS", "name": "Mashai", "total_lsl": -9.88,
             "quarters": {"2025 Q2": -10.0, "2025 Q3": 0.12}},
        ])
    );
    assert_eq!(sales["total_lsl"], json!(277.62));
    assert_eq!(q2["total_lsl"], json!(30.0));
    assert_eq!(q2["quarter_filter"], "2025 Q2");
    assert_eq!(unknown["sites"][0]["total_lsl"], json!(67.0));
    assert_eq!(unknown["sites"].as_array().unwrap().len(), 1);
    assert_eq!(kwh["sites"][0]["total_kwh"], json!(28.7));
    assert_eq!(kwh["sites"][0]["quarters"]["Unknown"], json!(6.7));
    assert_eq!(kwh["sites"][1]["total_kwh"], json!(1.0));
    let bad = app
        .get(
            "/api/om-report/sales-by-site?quarter=Q2%202025",
            Some(&token),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["field"], "quarter");
}

#[tokio::test]
async fn cumulative_trends_and_the_site_summary_add_up_exactly() {
    let (app, token) = fixture_app().await;

    let trends = report(&app, &token, "/api/om-report/cumulative-trends").await;
    let summary = report(&app, &token, "/api/stats/site-summary").await;
    let overview = report(&app, &token, "/api/om-report/overview").await;

    assert_eq!(
        trends["trends"],
        json!([
            {"quarter": "2025 Q1", "kwh": 118.0, "lsl": 1180.5, "cumulative_kwh": 118.0, "cumulative_lsl": 1180.5},
            {"quarter": "2025 Q2", "kwh": 6.0, "lsl": 50.0, "cumulative_kwh": 124.0, "cumulative_lsl": 1230.5},
            {"quarter": "2025 Q3", "kwh": 1.0, "lsl": 0.12, "cumulative_kwh": 125.0, "cumulative_lsl": 1230.62},
        ])
    );
    assert_eq!(
        summary["sites"],
        json!([
            {"site": "MAK", "mwh": 0.03, "lsl_thousands": 0.29},
            {"site": "MAS", "mwh": 0.0, "lsl_thousands": -0.01},
        ])
    );
    assert_eq!(
        summary["totals"],
        json!({"mwh": 0.03, "lsl_thousands": 0.28})
    );
    assert_eq!(summary["site_count"], 2);
    assert_eq!(overview["total_mwh"], json!(0.13));
    assert_eq!(overview["total_lsl_thousands"], json!(1.3));
}

#[tokio::test]
async fn customer_figures_trim_concessions_and_count_a_blank_termination_as_active() {
    let (app, token) = fixture_app().await;

    let overview = report(&app, &token, "/api/om-report/overview").await;
    let stats = report(&app, &token, "/api/om-report/customer-stats").await;
    let stats_q1 = report(
        &app,
        &token,
        "/api/om-report/customer-stats?quarter=2025%20Q1",
    )
    .await;
    let growth = report(&app, &token, "/api/om-report/customer-growth").await;
    let sites = report(&app, &token, "/api/om-report/site-overview").await;

    assert_eq!(overview["total_customers"], 7);
    assert_eq!(overview["terminated_customers"], 1);
    assert_eq!(overview["active_customers"], 6);
    assert_eq!(overview["sites"], json!(["MAK", "MAS"]));
    assert_eq!(overview["total_sites"], 2);
    assert_eq!(
        stats["sites"],
        json!([
            {"concession": "MAK", "total": 3, "active": 2, "new": 0, "activation_rate": 66.7},
            {"concession": "MAS", "total": 3, "active": 3, "new": 0, "activation_rate": 100.0},
        ])
    );
    assert_eq!(stats["totals"], json!({"total": 6, "active": 5, "new": 0}));
    assert_eq!(stats_q1["sites"][0]["new"], 2);
    assert_eq!(stats_q1["totals"]["new"], 2);
    assert_eq!(
        growth["growth"],
        json!([
            {"quarter": "2024 Q4", "new_customers": 1, "cumulative": 1},
            {"quarter": "2025 Q1", "new_customers": 2, "cumulative": 3},
            {"quarter": "2025 Q2", "new_customers": 2, "cumulative": 5},
        ])
    );
    assert_eq!(growth["total"], 5);
    assert_eq!(
        sites["sites"],
        json!([
            {"concession": "MAK", "abbreviation": "MAK", "district": "Maseru", "customer_count": 3},
            {"concession": "MAS", "abbreviation": "MAS", "district": "Thaba-Tseka", "customer_count": 3},
        ])
    );
}

#[tokio::test]
async fn average_consumption_keeps_every_quarter_with_consumption() {
    let (app, token) = fixture_app().await;

    let body = report(&app, &token, "/api/om-report/avg-consumption-trend").await;

    assert_eq!(
        body["trends"],
        json!([
            {"quarter": "2025 Q1", "customers": 3, "total_kwh": 118.0, "total_lsl": 1180.5,
             "avg_daily_kwh_per_customer": 9.8333, "avg_daily_lsl_per_customer": 98.375},
            {"quarter": "2025 Q2", "customers": 5, "total_kwh": 6.0, "total_lsl": 50.0,
             "avg_daily_kwh_per_customer": 0.3, "avg_daily_lsl_per_customer": 2.5},
            {"quarter": "2025 Q3", "customers": 5, "total_kwh": 1.0, "total_lsl": 0.12,
             "avg_daily_kwh_per_customer": 0.2, "avg_daily_lsl_per_customer": 0.025},
        ])
    );
}

#[tokio::test]
async fn load_curves_and_daily_profiles_group_by_the_meter_register_s_customer_types() {
    let (app, token) = fixture_app().await;

    let curves = report(&app, &token, "/api/om-report/load-curves-by-type").await;
    let profiles = report(&app, &token, "/api/om-report/daily-load-profiles").await;
    let mak = report(&app, &token, "/api/om-report/daily-load-profiles?site=mak").await;

    assert_eq!(
        curves["curves"],
        json!([
            {"type": "HH", "total_kwh": 15.0, "total_lsl": 140.5, "customer_count": 2,
             "avg_daily_kwh": 3.75, "avg_daily_kwh_per_customer": 1.875},
            {"type": "SME", "total_kwh": 9.7, "total_lsl": 97.0, "customer_count": 1,
             "avg_daily_kwh": 9.7, "avg_daily_kwh_per_customer": 9.7},
        ])
    );
    assert_eq!(
        curves["quarterly"],
        json!([
            {"quarter": "2025 Q1", "HH": 15.0, "SME": 3.0},
            {"quarter": "2025 Q2", "HH": 0.0, "SME": 0},
            {"quarter": "Unknown", "HH": 0, "SME": 6.7},
        ])
    );
    assert_eq!(curves["total_typed_customers"], 3);
    assert_eq!(curves["meter_source"], "Copy Of tblmeter");
    let hh = &profiles["profiles"][0];
    assert_eq!(hh["type"], "HH");
    assert_eq!(hh["meter_count"], 2);
    assert_eq!(
        hh["hourly"][10],
        json!({"hour": 10, "avg_kw": 2.0, "readings": 3})
    );
    assert_eq!(
        hh["hourly"][11],
        json!({"hour": 11, "avg_kw": 0.5, "readings": 1})
    );
    assert_eq!(hh["peak_hour"], 10);
    assert_eq!(profiles["total_readings"], 5, "NULL readings are left out");
    assert_eq!(
        profiles["chart_data"][10],
        json!({"hour": "10:00", "HH": 2.0, "SME": 4.0})
    );
    assert_eq!(mak["site_filter"], "MAK");
    assert_eq!(mak["profiles"][0]["hourly"][10]["avg_kw"], json!(2.0));
    assert_eq!(mak["profiles"][0]["meter_count"], 1);
}

#[tokio::test]
async fn a_ledger_change_in_access_moves_the_figures_after_one_poll() {
    let (app, token) = fixture_app().await;
    let before = report(&app, &token, "/api/om-report/arpu").await;
    assert_eq!(before["arpu"][0]["total_revenue"], json!(180.5));

    app.acdb.execute(
        "UPDATE [tblaccounthistory1] SET [transaction amount] = 120.00 WHERE [ID] = 1",
        &[],
    );
    app.acdb.execute(
        "UPDATE [tblaccounthistory1] SET [transaction date] = '2025-04-02 09:00:00' WHERE [ID] = 3",
        &[],
    );

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = report(&app, &token, "/api/om-report/arpu").await;
        // 120 + 50.50, and 0002MAK's only dated row moved to Q2: one customer in Q1.
        if now["arpu"][0]["total_revenue"] == json!(170.5)
            && now["arpu"][0]["active_customers"] == 1
        {
            assert_eq!(now["arpu"][0]["arpu"], json!(170.5));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not updated: {}",
            now["arpu"][0]
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_reports_need_an_employee() {
    let (app, _) = fixture_app().await;
    for path in [
        "/api/om-report/arpu",
        "/api/om-report/monthly-arpu",
        "/api/om-report/overview",
        "/api/stats/site-summary",
    ] {
        assert_eq!(
            app.get(path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_rebuilt_analytics_read_model_gives_the_same_figures_as_the_incremental_one() {
    let (app, token) = fixture_app().await;
    // Changes after the import: an edit, a new row, a row whose account changes.
    app.acdb.execute(
        "UPDATE [tblaccounthistory1] SET [transaction amount] = 99.99 WHERE [ID] = 2",
        &[],
    );
    app.acdb.execute(
        "INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [transaction date], [transaction amount], [kwh value]) VALUES (12, '0005MAK', '2025-09-30 23:59:00', 5.55, 0.5)",
        &[],
    );
    app.acdb.execute(
        "UPDATE [tblaccounthistory1] SET [accountnumber] = '0001MAS' WHERE [ID] = 7",
        &[],
    );
    let paths = [
        "/api/om-report/arpu",
        "/api/om-report/monthly-arpu",
        "/api/om-report/sales-by-site",
        "/api/om-report/consumption-by-site",
        "/api/om-report/cumulative-trends",
        "/api/om-report/avg-consumption-trend",
        "/api/om-report/load-curves-by-type",
        "/api/om-report/daily-load-profiles",
        "/api/stats/site-summary",
    ];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let incremental = loop {
        let arpu = report(&app, &token, paths[0]).await;
        if arpu["arpu"].as_array().unwrap().len() == 3
            && arpu["arpu"][2]["total_revenue"] == json!(5.68)
            && arpu["arpu"][1]["per_site"]["MAK"]["customers"] == json!(2)
        {
            let mut all = Vec::new();
            for path in paths {
                all.push(report(&app, &token, path).await);
            }
            break all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "changes not seen: {arpu}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };

    let runner = projections::ProjectorRunner::new(app.db.pool.clone(), projections::all());
    runner
        .rebuild(Some("analytics"), &mut |_| {})
        .await
        .unwrap();

    for (path, before) in paths.iter().zip(&incremental) {
        assert_eq!(&report(&app, &token, path).await, before, "{path}");
    }
}

#[tokio::test]
async fn an_answer_is_computed_once_per_state_of_the_read_models_and_fresh_after_a_change() {
    let (app, token) = fixture_app().await;
    let before = report(&app, &token, "/api/om-report/arpu").await;
    assert_eq!(before["arpu"][0]["total_revenue"], json!(180.5));

    // Behind the projector's back the table changes but no checkpoint moves: the cached
    // answer stands (it is not computed again per request).
    sqlx::query("update read_model.period_totals set amount = amount + 1000")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let cached = report(&app, &token, "/api/om-report/arpu").await;
    assert_eq!(cached, before);

    // A change in Access moves the checkpoint: the answer is computed again.
    app.acdb.execute(
        "UPDATE [tblaccounthistory1] SET [transaction amount] = 120.00 WHERE [ID] = 1",
        &[],
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = report(&app, &token, "/api/om-report/arpu").await;
        if now != before {
            // Computed from the table as it now stands (the tampering included).
            assert_ne!(now["arpu"][0]["total_revenue"], json!(180.5), "{now}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still the old answer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
