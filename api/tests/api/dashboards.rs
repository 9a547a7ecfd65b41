//! The per-customer dashboards against hand-computed figures (dates relative to today, Maseru
//! local time).

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use domain::auth::Role;
use domain::dates::maseru_local;
use serde_json::{json, Value};
use testkit::acdb::TestAcdb;

use crate::support::TestApp;

const ACCOUNT: &str = "0009MAK";

fn day(offset: i64, time: &str) -> String {
    let date = maseru_local(Utc::now()).date() - TimeDelta::days(offset);
    format!("{date} {time}")
}

fn fixture(acdb: &TestAcdb) {
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES (9009, 'Lineo', 'Moshoeshoe', 'MAK')",
        &[],
    );
    acdb.execute(
        &format!("INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('{ACCOUNT}', 9009)"),
        &[],
    );
    acdb.execute(
        &format!("INSERT INTO [tblmeter] ([meterid], [accountnumber], [customer id], [customer type], [community], [Village name]) VALUES ('SMRSD-9', '{ACCOUNT}', 9009, 'HH', 'MAK', 'Ha Makebe')"),
        &[],
    );
    let rows = [
        (900001, day(1, "10:00:00"), "20", "4", "12"),
        (900002, day(1, "18:00:00"), "10", "2", "NULL"),
        (900003, day(3, "10:00:00"), "30", "6", "NULL"),
        (900004, day(60, "10:00:00"), "30", "600", "NULL"),
    ];
    for (id, at, amount, kwh, balance) in rows {
        acdb.execute(
            &format!("INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [meterid], [transaction date], [transaction amount], [kwh value], [current balance]) VALUES ({id}, '{ACCOUNT}', 'SMRSD-9', '{at}', {amount}, {kwh}, {balance})"),
            &[],
        );
    }
}

#[tokio::test]
async fn a_customer_s_dashboard_shows_balance_payment_average_and_recharge_estimate() {
    let app = TestApp::start_with(fixture).await;
    let token = app.customer_token(ACCOUNT).await;

    let reply = app.get("/api/my/dashboard", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let board = &reply.body;
    assert_eq!(board["balance_kwh"], json!(12.0));
    assert_eq!(
        board["last_payment"],
        json!({"amount": 10.0, "date": day(1, "")[..10], "kwh_purchased": 2.0})
    );
    assert_eq!(
        board["avg_kwh_per_day"],
        json!(6.0),
        "(4 + 2 + 6) kWh over 2 days with data"
    );
    assert_eq!(board["estimated_recharge_seconds"], 2 * 86_400);
    assert_eq!(board["total_kwh_all_time"], json!(612.0));
    assert_eq!(board["total_lsl_all_time"], json!(90.0));
    let week: Vec<&Value> = board["daily_7d"].as_array().unwrap().iter().collect();
    assert_eq!(week.len(), 7);
    assert_eq!(week[5], &json!({"date": day(1, "")[..10], "kwh": 6.0}));
    assert_eq!(week[3], &json!({"date": day(3, "")[..10], "kwh": 6.0}));
    assert_eq!(board["daily_30d"].as_array().unwrap().len(), 30);
    let months = board["monthly_12m"].as_array().unwrap();
    assert_eq!(months.len(), 12);
    let total: f64 = months.iter().map(|m| m["kwh"].as_f64().unwrap()).sum();
    assert_eq!(total, 612.0);
}

#[tokio::test]
async fn an_employee_opens_the_customer_data_by_account_or_customer_id() {
    let app = TestApp::start_with(fixture).await;
    let clerk = app.employee("00300", Role::Generic).await;

    let by_account = app
        .get(
            &format!("/api/customer-data/{}", ACCOUNT.to_lowercase()),
            Some(&clerk),
        )
        .await;
    let by_id = app.get("/api/customer-data/9009", Some(&clerk)).await;
    let unknown = app.get("/api/customer-data/7777ZZZ", Some(&clerk)).await;
    let customer = app.customer_token(ACCOUNT).await;
    let as_customer = app
        .get(&format!("/api/customer-data/{ACCOUNT}"), Some(&customer))
        .await;

    assert_eq!(by_account.status, StatusCode::OK, "{}", by_account.body);
    let body = &by_account.body;
    assert_eq!(body["profile"]["customer_id"], "9009");
    assert_eq!(body["meter"]["meterid"], "SMRSD-9");
    assert_eq!(body["meter"]["customer_type"], "HH");
    assert_eq!(body["tariff"]["source"], "global");
    assert_eq!(body["transaction_count"], 4);
    assert_eq!(body["transactions"][0]["id"], 900002, "most recent first");
    assert_eq!(body["transactions"][0]["balance"], Value::Null);
    assert_eq!(body["dashboard"]["balance_kwh"], json!(12.0));
    assert_eq!(by_id.body["account_number"], ACCOUNT);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(as_customer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_customer_gets_no_analytics_answer_even_once_one_is_cached() {
    let app = TestApp::start_with(fixture).await;
    let employee = app.employee("00301", Role::Generic).await;
    let customer = app.customer_token(ACCOUNT).await;

    let cached = app.get("/api/om-report/arpu", Some(&employee)).await;
    let refused = app.get("/api/om-report/arpu", Some(&customer)).await;

    assert_eq!(cached.status, StatusCode::OK);
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}
