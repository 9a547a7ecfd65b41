//! The read-model exports for analysts: `/api/read-models` and `/api/read-models/{view}/export`.

use axum::http::StatusCode;
use calamine::{Data, Reader, Xlsx};
use domain::auth::Role;
use rust_decimal::Decimal;

use crate::support::TestApp;

async fn app_and_token() -> (TestApp, String) {
    let app = TestApp::start().await;
    let token = app.employee("00200", Role::FinanceTeam).await;
    (app, token)
}

async fn rows_in(app: &TestApp, view: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from read_model.{view}"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_list_shows_the_public_read_models_with_their_columns_and_not_the_private_ones() {
    let (app, token) = app_and_token().await;

    let reply = app.get("/api/read-models", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let views = reply.body.as_array().unwrap();
    let names: Vec<&str> = views.iter().map(|v| v["name"].as_str().unwrap()).collect();
    for expected in ["customers", "transactions", "period_totals", "mirror_rows"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(!names.contains(&"users"), "password hashes: {names:?}");
    assert!(!names.contains(&"revoked_tokens"), "{names:?}");
    for private in ["conversations", "conversation_messages"] {
        assert!(!names.contains(&private), "what customers wrote: {names:?}");
    }
    let totals = views.iter().find(|v| v["name"] == "period_totals").unwrap();
    assert_eq!(totals["read_model"], "analytics");
    let amount = totals["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "amount")
        .unwrap();
    assert_eq!(amount["type"], "numeric");
}

#[tokio::test]
async fn a_json_export_has_every_row_with_money_as_exact_text() {
    let (app, token) = app_and_token().await;

    let reply = app
        .get(
            "/api/read-models/period_totals/export?format=json",
            Some(&token),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("period_totals.json"));
    let rows = reply.body.as_array().expect("a JSON array");
    assert_eq!(rows.len() as i64, rows_in(&app, "period_totals").await);
    let exported: Decimal = rows
        .iter()
        .map(|r| {
            r["amount"]
                .as_str()
                .expect("numeric as text")
                .parse::<Decimal>()
                .unwrap()
        })
        .sum();
    let stored: Decimal = sqlx::query_scalar("select sum(amount) from read_model.period_totals")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(exported, stored);
}

#[tokio::test]
async fn a_csv_export_has_the_header_and_every_row_and_an_xlsx_the_same_cells() {
    let (app, token) = app_and_token().await;
    let count = rows_in(&app, "customers").await;

    let csv_reply = app
        .get("/api/read-models/customers/export", Some(&token))
        .await;
    let xlsx_reply = app
        .get(
            "/api/read-models/customers/export?format=xlsx",
            Some(&token),
        )
        .await;

    assert_eq!(csv_reply.status, StatusCode::OK);
    let mut csv = csv::Reader::from_reader(csv_reply.bytes.as_slice());
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "customer_id");
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(records.len() as i64, count);
    assert_eq!(xlsx_reply.status, StatusCode::OK);
    let mut workbook = Xlsx::new(std::io::Cursor::new(xlsx_reply.bytes.clone())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(sheet.rows().count() as i64, count + 1);
    assert_eq!(
        sheet.rows().next().unwrap()[0],
        Data::String("customer_id".into())
    );
}

#[tokio::test]
async fn private_unknown_or_badly_asked_exports_are_refused() {
    let (app, token) = app_and_token().await;
    let customer = app.customer_token(&app.some_account().await).await;

    let users = app.get("/api/read-models/users/export", Some(&token)).await;
    let unknown = app
        .get("/api/read-models/nothing/export", Some(&token))
        .await;
    let format = app
        .get("/api/read-models/customers/export?format=pdf", Some(&token))
        .await;
    let anonymous = app.get("/api/read-models/customers/export", None).await;
    let listing = app.get("/api/read-models", Some(&customer)).await;
    let by_customer = app
        .get("/api/read-models/customers/export", Some(&customer))
        .await;

    assert_eq!(users.status, StatusCode::NOT_FOUND, "{}", users.body);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(format.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        format.body.to_string().contains("format"),
        "{}",
        format.body
    );
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(listing.status, StatusCode::FORBIDDEN);
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);
}
