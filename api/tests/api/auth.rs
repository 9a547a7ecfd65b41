//! Logins, tokens, roles and registration (`/api/auth/*`, `/api/admin/*`).

use std::time::Duration;

use api::TokenKeys;
use axum::http::StatusCode;
use chrono::Utc;
use domain::auth::{Role, UserType};
use serde_json::json;

use crate::support::{secret, TestApp, PASSWORD};

#[tokio::test]
async fn an_employee_logs_in_with_their_own_password_and_gets_the_legacy_response_shape() {
    let app = TestApp::start().await;
    app.add_employee("00123", Role::OnmTeam).await;

    let reply = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": PASSWORD}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "bearer");
    assert_eq!(reply.body["expires_in"], 3600);
    let user = &reply.body["user"];
    assert_eq!(user["user_type"], "employee");
    assert_eq!(user["employee_id"], "00123");
    assert_eq!(user["cc_role"], "onm_team");
    assert_eq!(
        user["permissions"],
        json!({"write_customers": true, "write_transactions": true, "manage_roles": false})
    );
    let token = reply.body["access_token"].as_str().unwrap();
    let me = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user_id"], "00123");
    assert_eq!(me.body["role"], "onm_team");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_employee_get_the_same_401_and_an_empty_field_a_422() {
    let app = TestApp::start().await;
    app.add_employee("00123", Role::Generic).await;

    let wrong = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": "not the password"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00", "password": PASSWORD}),
        )
        .await;
    let empty = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": ""}),
        )
        .await;
    let missing = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123"}),
        )
        .await;

    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.detail(), "Invalid credentials");
    assert_eq!(unknown.detail(), wrong.detail());
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.body["field"], "password");
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["field"], "password", "{}", missing.body);
}

#[tokio::test]
async fn requests_without_a_token_or_with_a_foreign_tampered_or_expired_one_get_401() {
    let app = TestApp::start().await;
    app.add_employee("00123", Role::Superadmin).await;
    let genuine = app.login("00123").await;

    let none = app.get("/api/auth/me", None).await;
    let garbage = app.get("/api/auth/me", Some("not.a.token")).await;
    let other_secret = TokenKeys::new(&[9u8; 32], Duration::from_secs(3600)).unwrap();
    let foreign = other_secret
        .issue(
            UserType::Employee,
            "00123",
            "superadmin",
            "Eve",
            None,
            Utc::now(),
        )
        .unwrap();
    let foreign = app.get("/api/auth/me", Some(&foreign.token)).await;
    let mut tampered = genuine.clone();
    tampered.pop();
    tampered.push(if genuine.ends_with('A') { 'B' } else { 'A' });
    let tampered = app.get("/api/auth/me", Some(&tampered)).await;
    let keys = TokenKeys::new(&secret(), Duration::from_secs(60)).unwrap();
    let expired = keys
        .issue(
            UserType::Employee,
            "00123",
            "superadmin",
            "Employee 00123",
            None,
            Utc::now() - chrono::TimeDelta::hours(1),
        )
        .unwrap();
    let expired = app.get("/api/auth/me", Some(&expired.token)).await;

    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.detail(), "Not authenticated");
    for (what, reply) in [
        ("garbage", &garbage),
        ("foreign", &foreign),
        ("tampered", &tampered),
        ("expired", &expired),
    ] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            reply.detail().starts_with("Invalid token"),
            "{what}: {}",
            reply.body
        );
    }
    assert!(expired.detail().contains("xpired"), "{}", expired.body);
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request_without_a_new_login() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let thabo = app.employee("00123", Role::Generic).await;
    assert_eq!(
        app.get("/api/admin/roles", Some(&thabo)).await.status,
        StatusCode::FORBIDDEN
    );

    let changed = app
        .put(
            "/api/admin/roles/00123",
            Some(&admin),
            json!({"cc_role": "superadmin"}),
        )
        .await;

    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["cc_role"], "superadmin");
    assert_eq!(changed.body["assigned_by"], "00");
    let roles = app.get("/api/admin/roles", Some(&thabo)).await;
    assert_eq!(
        roles.status,
        StatusCode::OK,
        "the old token carries the new role"
    );
    let ids: Vec<&str> = roles
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["employee_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["00", "00123"]);
}

#[tokio::test]
async fn an_unknown_role_or_employee_is_refused_naming_the_field() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;

    let bad_role = app
        .post(
            "/api/admin/roles",
            Some(&admin),
            json!({"employee_id": "00", "cc_role": "admin"}),
        )
        .await;
    let nobody = app
        .put(
            "/api/admin/roles/99999",
            Some(&admin),
            json!({"cc_role": "generic"}),
        )
        .await;

    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_role.body["field"], "cc_role");
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_disabled_employee_is_refused_at_once_and_cannot_log_in_again() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    let thabo = app.employee("00123", Role::OnmTeam).await;

    let disabled = app
        .post("/api/admin/users/00123/disable", Some(&admin), json!({}))
        .await;

    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert_eq!(disabled.body["disabled"], true);
    let me = app.get("/api/auth/me", Some(&thabo)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.detail(), "This account is disabled");
    let login = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    let own = app
        .post("/api/admin/users/00/disable", Some(&admin), json!({}))
        .await;
    assert_eq!(
        own.status,
        StatusCode::BAD_REQUEST,
        "no locking oneself out"
    );
}

#[tokio::test]
async fn logout_revokes_the_token_and_leaves_other_sessions_alone() {
    let app = TestApp::start().await;
    app.add_employee("00123", Role::Generic).await;
    let laptop = app.login("00123").await;
    let phone = app.login("00123").await;

    let out = app.post("/api/auth/logout", Some(&laptop), json!({})).await;

    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    let after = app.get("/api/auth/me", Some(&laptop)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(after.detail().contains("logged out"), "{}", after.body);
    assert_eq!(
        app.get("/api/auth/me", Some(&phone)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_attempts_on_one_account_are_limited_with_retry_after() {
    let app = TestApp::start().await;
    app.add_employee("00123", Role::Generic).await;
    let attempt = || {
        app.post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": "guess"}),
        )
    };
    for _ in 0..5 {
        assert_eq!(attempt().await.status, StatusCode::UNAUTHORIZED);
    }

    let limited = attempt().await;

    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    let right_password_too = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": PASSWORD}),
        )
        .await;
    assert_eq!(right_password_too.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_customer_registers_only_with_the_code_the_office_issued_then_logs_in() {
    let app = TestApp::start().await;
    let clerk = app.employee("00123", Role::OnmTeam).await;
    let finance = app.employee("00200", Role::FinanceTeam).await;
    let account = app.some_account().await;
    let register = |code: Option<&str>| {
        let mut body = json!({"customer_id": account.to_lowercase(), "password": "my own secret"});
        if let Some(code) = code {
            body["registration_code"] = json!(code);
        }
        app.post("/api/auth/customer-register", None, body)
    };

    let without_code = register(None).await;
    let not_issued = register(Some("ABCDEFGHJK")).await;
    let refused_issue = app
        .post(
            "/api/admin/registration-codes",
            Some(&finance),
            json!({"account_number": account}),
        )
        .await;
    let issued = app
        .post(
            "/api/admin/registration-codes",
            Some(&clerk),
            json!({"account_number": account}),
        )
        .await;
    let code = issued.body["registration_code"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = register(Some("ABCDEFGHJK")).await;
    let registered = register(Some(&code)).await;
    let again = register(Some(&code)).await;
    let login = app
        .post(
            "/api/auth/customer-login",
            None,
            json!({"customer_id": account, "password": "my own secret"}),
        )
        .await;

    assert_eq!(without_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(without_code.body["field"], "registration_code");
    assert_eq!(not_issued.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused_issue.status, StatusCode::FORBIDDEN);
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    assert_eq!(registered.body["customer_id"], account.as_str());
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["user"]["role"], "customer");
    let token = login.body["access_token"].as_str().unwrap();
    let me = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(me.body["account_number"], account.as_str());
    assert!(
        me.body["customer"]["customer_id"].is_string(),
        "{}",
        me.body
    );
    assert_eq!(
        app.get("/api/admin/roles", Some(token)).await.status,
        StatusCode::FORBIDDEN,
        "customers are not employees"
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_the_older_sessions() {
    let app = TestApp::start().await;
    app.add_employee("00123", Role::Generic).await;
    let old_session = app.login("00123").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let current = app.login("00123").await;

    let wrong = app
        .post(
            "/api/auth/change-password",
            Some(&current),
            json!({"old_password": "nope", "new_password": "a new long password"}),
        )
        .await;
    let short = app
        .post(
            "/api/auth/change-password",
            Some(&current),
            json!({"old_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    let legacy_path = app
        .post(
            "/api/auth/customer-change-password",
            Some(&current),
            json!({"old_password": PASSWORD, "new_password": "a new long password"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = app
        .post(
            "/api/auth/change-password",
            Some(&current),
            json!({"old_password": PASSWORD, "new_password": "a new long password"}),
        )
        .await;

    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.body["field"], "new_password");
    assert_eq!(
        legacy_path.status,
        StatusCode::FORBIDDEN,
        "customers only, as before"
    );
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        app.get("/api/auth/me", Some(&old_session)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let relogin = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00123", "password": "a new long password"}),
        )
        .await;
    assert_eq!(relogin.status, StatusCode::OK);
}

#[tokio::test]
async fn every_role_but_superadmin_is_refused_by_the_admin_endpoints() {
    let app = TestApp::start().await;
    let admin = app.employee("00", Role::Superadmin).await;
    for (i, role) in [Role::OnmTeam, Role::FinanceTeam, Role::Generic]
        .into_iter()
        .enumerate()
    {
        let token = app.employee(&format!("0100{i}"), role).await;
        for (method, path) in [
            ("GET", "/api/admin/roles"),
            ("POST", "/api/admin/roles"),
            ("PUT", "/api/admin/roles/00"),
            ("DELETE", "/api/admin/roles/00"),
            ("GET", "/api/admin/employee-emails"),
            ("POST", "/api/admin/users"),
            ("POST", "/api/admin/users/00/disable"),
        ] {
            let body = json!({"employee_id": "00", "cc_role": "generic", "name": "x", "password": "long enough!", "email": "a@b.org"});
            let reply = app
                .request(method.parse().unwrap(), path, Some(&token), Some(body))
                .await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{role} {method} {path}"
            );
        }
    }
    let added = app
        .post(
            "/api/admin/users",
            Some(&admin),
            json!({"employee_id": "00777", "name": "Lineo", "email": "Lineo@1PWR.org", "cc_role": "finance_team", "password": "long enough!"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["email"], "lineo@1pwr.org");
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_a_json_error() {
    let app = TestApp::start().await;
    let request = |body: axum::body::Body, content_type: &str| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/api/auth/employee-login")
            .header("content-type", content_type)
            .body(body)
            .unwrap()
    };

    let broken = app
        .send(request("{\"employee_id\": ".into(), "application/json"))
        .await;
    let text = app.send(request("hello".into(), "text/plain")).await;
    let huge = app
        .send(request(
            format!("{{\"employee_id\": \"{}\"}}", "x".repeat(1 << 20)).into(),
            "application/json",
        ))
        .await;

    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.body["field"], "body");
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(huge.detail().contains("larger than"), "{}", huge.body);
}
