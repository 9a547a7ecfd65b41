//! The legacy customer lookups, now behind an employee token, and the customer's own profile.

use axum::http::StatusCode;
use domain::auth::Role;
use serde_json::{json, Value};

use crate::support::TestApp;

/// A customer of the imported ACDB with a phone and an account: (id, phone E.164, account).
async fn reachable_customer(app: &TestApp) -> (i64, String, String) {
    sqlx::query_as(
        "select c.customer_id, p.e164, a.account_number
         from read_model.customers c
         join read_model.customer_phones p on p.customer_id = c.customer_id
         join read_model.accounts a on a.customer_id = c.customer_id and a.account_number is not null
         order by c.customer_id limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_customer_lookups_that_were_public_now_need_an_employee_token() {
    let app = TestApp::start().await;
    let (id, _, account) = reachable_customer(&app).await;
    let paths = [
        format!("/customers/by-id/{id}"),
        "/customers/by-phone/58123456".to_string(),
        format!("/customers/by-account/{account}"),
        "/customers/search?q=ma".to_string(),
        "/sites".to_string(),
        "/api/sites".to_string(),
    ];
    for path in &paths {
        assert_eq!(
            app.get(path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let generic = app.employee("00300", Role::Generic).await;
    for path in &paths[..1] {
        assert_eq!(
            app.get(path, Some(&generic)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_customer_is_found_by_id_phone_account_and_search_with_their_accounts() {
    let app = TestApp::start().await;
    let token = app.employee("00300", Role::Generic).await;
    let (id, phone, account) = reachable_customer(&app).await;

    let by_id = app
        .get(&format!("/customers/by-id/{id}"), Some(&token))
        .await;
    let national = phone.trim_start_matches("+266");
    let by_phone = app
        .get(&format!("/customers/by-phone/0{national}"), Some(&token))
        .await;
    let by_account = app
        .get(
            &format!("/customers/by-account/{}", account.to_lowercase()),
            Some(&token),
        )
        .await;
    let first_name = by_id.body["customer"]["first_name"]
        .as_str()
        .unwrap_or("ma")
        .to_string();
    let search = app
        .get(
            &format!("/customers/search?q={}&limit=100", &first_name[..2]),
            Some(&token),
        )
        .await;

    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.body);
    let customer = &by_id.body["customer"];
    assert_eq!(customer["customer_id"], id.to_string());
    assert!(customer["account_numbers"]
        .as_array()
        .unwrap()
        .contains(&json!(account)));
    for (_, value) in customer.as_object().unwrap() {
        assert_ne!(value, &json!("None"), "NULL is null, not \"None\"");
    }
    assert_eq!(by_phone.status, StatusCode::OK, "{}", by_phone.body);
    let ids: Vec<&Value> = by_phone.body["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["customer_id"])
        .collect();
    assert!(ids.contains(&&json!(id.to_string())), "{}", by_phone.body);
    assert_eq!(by_account.body["customer"]["customer_id"], id.to_string());
    assert_eq!(search.status, StatusCode::OK);
    assert!(search.body["count"].as_u64().unwrap() >= 1);
    assert!(search.body["customers"][0].get("account_numbers").is_none());
}

#[tokio::test]
async fn bad_lookups_get_a_clear_error() {
    let app = TestApp::start().await;
    let token = app.employee("00300", Role::Generic).await;
    let cases = [
        ("/customers/by-phone/12-3", StatusCode::BAD_REQUEST),
        ("/customers/by-id/abc", StatusCode::UNPROCESSABLE_ENTITY),
        ("/customers/by-id/999999", StatusCode::NOT_FOUND),
        ("/customers/by-account/9999ZZZ", StatusCode::NOT_FOUND),
        ("/customers/search?q=a", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/customers/search?q=ma&limit=500",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, status) in cases {
        let reply = app.get(path, Some(&token)).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        assert!(reply.body["detail"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn sites_list_each_trimmed_concession_once_with_its_customers() {
    let app = TestApp::start().await;
    let token = app.employee("00300", Role::Generic).await;
    let expected: Vec<(String, i64)> = sqlx::query_as(
        "select btrim(source_row->>'Concession name'), count(*) from read_model.customers
         where btrim(coalesce(source_row->>'Concession name', '')) <> '' group by 1 order by 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();

    let reply = app.get("/api/sites", Some(&token)).await;

    let sites: Vec<(String, i64)> = reply.body["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["concession"].as_str().unwrap().to_string(),
                s["customer_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sites, expected);
    assert_eq!(reply.body["total_sites"], expected.len());
}

#[tokio::test]
async fn a_customer_reads_their_own_profile_and_employees_are_sent_elsewhere() {
    let app = TestApp::start().await;
    let clerk = app.employee("00123", Role::OnmTeam).await;
    let (id, _, account) = reachable_customer(&app).await;
    let code = app
        .post(
            "/api/admin/registration-codes",
            Some(&clerk),
            json!({"account_number": account}),
        )
        .await
        .body["registration_code"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/api/auth/customer-register",
        None,
        json!({"customer_id": account, "password": "my own secret", "registration_code": code}),
    )
    .await;
    let login = app
        .post(
            "/api/auth/customer-login",
            None,
            json!({"customer_id": account, "password": "my own secret"}),
        )
        .await;
    let token = login.body["access_token"].as_str().unwrap().to_string();

    let profile = app.get("/api/my/profile", Some(&token)).await;
    let as_employee = app.get("/api/my/profile", Some(&clerk)).await;
    let lookup_as_customer = app
        .get(&format!("/customers/by-id/{id}"), Some(&token))
        .await;

    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    assert_eq!(profile.body["customer"]["customer_id"], id.to_string());
    assert_eq!(profile.body["customer"]["account_number"], account.as_str());
    assert_eq!(as_employee.status, StatusCode::FORBIDDEN);
    assert_eq!(lookup_as_customer.status, StatusCode::FORBIDDEN);
}
