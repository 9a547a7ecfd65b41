//! The customers' own portal pages (registration, `/portal/my`, `/portal/my/profile`) and
//! everyone's profile and password change.

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use domain::auth::Role;
use domain::dates::maseru_local;
use serde_json::json;
use testkit::acdb::TestAcdb;

use crate::portal::{
    cookie_value, csrf_field, html, location, login_form, page, post, set_cookie, signed_in,
};
use crate::support::{TestApp, CUSTOMER_PASSWORD, PASSWORD};

const ACCOUNT: &str = "0094MAK";
const NEW_PASSWORD: &str = "a brand new secret";

fn day(offset: i64, time: &str) -> String {
    let date = maseru_local(Utc::now()).date() - TimeDelta::days(offset);
    format!("{date} {time}")
}

/// The customer of [`ACCOUNT`] with the ledger `/api/my/dashboard`'s test uses.
fn fixture(acdb: &TestAcdb) {
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name], [CITY]) VALUES (9401, 'Lineo', 'Moshoeshoe', 'MAK', 'Maseru')",
        &[],
    );
    acdb.execute(
        &format!("INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('{ACCOUNT}', 9401)"),
        &[],
    );
    acdb.execute(
        &format!("INSERT INTO [tblmeter] ([meterid], [accountnumber], [customer id], [customer type], [community], [Village name]) VALUES ('SMRSD-94', '{ACCOUNT}', 9401, 'HH', 'MAK', 'Ha Makebe')"),
        &[],
    );
    let rows = [
        (940001, day(1, "10:00:00"), "20", "4", "12"),
        (940002, day(1, "18:00:00"), "10", "2", "NULL"),
        (940003, day(3, "10:00:00"), "30", "6", "NULL"),
        (940004, day(60, "10:00:00"), "30", "600", "NULL"),
    ];
    for (id, at, amount, kwh, balance) in rows {
        acdb.execute(
            &format!("INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [meterid], [transaction date], [transaction amount], [kwh value], [current balance]) VALUES ({id}, '{ACCOUNT}', 'SMRSD-94', '{at}', {amount}, {kwh}, {balance})"),
            &[],
        );
    }
}

/// A one-time registration code for `account`, issued by an O&M employee.
async fn registration_code(app: &TestApp, account: &str) -> String {
    let clerk = app.employee("00801", Role::OnmTeam).await;
    let reply = app
        .post(
            "/api/admin/registration-codes",
            Some(&clerk),
            json!({"account_number": account}),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    reply.body["registration_code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Signs `account`'s customer in through the form with `password`; the session's `Cookie`.
async fn customer_signed_in(app: &TestApp, account: &str, password: &str) -> String {
    let (cookies, csrf) = login_form(app).await;
    let signed = post(
        app,
        "/portal/login",
        &cookies,
        &[
            ("csrf", &csrf),
            ("kind", "customer"),
            ("user_id", account),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", html(&signed));
    format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&signed, "ccare_session").unwrap())
    )
}

async fn customer_app() -> (TestApp, String) {
    let app = TestApp::start_with(fixture).await;
    app.customer_token(ACCOUNT).await;
    let session = customer_signed_in(&app, ACCOUNT, CUSTOMER_PASSWORD).await;
    (app, session)
}

/// The registration form: the `Cookie` header that goes with it and its CSRF value.
async fn register_form(app: &TestApp) -> (String, String) {
    let reply = page(app, "/portal/register", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let line = set_cookie(&reply, "ccare_login").expect("a login cookie");
    let csrf = csrf_field(&html(&reply));
    assert_eq!(cookie_value(&line), csrf);
    (format!("ccare_login={csrf}"), csrf)
}

// ---------------------------------------------------------------------------------------------
// Registration.

#[tokio::test]
async fn registering_with_the_office_s_code_signs_the_customer_in_to_their_dashboard() {
    let app = TestApp::start_with(fixture).await;
    let code = registration_code(&app, ACCOUNT).await;
    let (cookies, csrf) = register_form(&app).await;
    let login = html(&page(&app, "/portal/login?as=customer", "").await);

    let reply = post(
        &app,
        "/portal/register",
        &cookies,
        &[
            ("csrf", &csrf),
            ("customer_id", "0094mak"),
            ("registration_code", &code),
            ("password", CUSTOMER_PASSWORD),
            ("password_again", CUSTOMER_PASSWORD),
        ],
    )
    .await;

    assert!(login.contains(r#"href="/portal/register""#), "{login}");
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(location(&reply), "/portal/my");
    let session = format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&reply, "ccare_session").expect("a session"))
    );
    let board = page(&app, "/portal/my", &session).await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(
        html(&board).contains("Welcome back, Lineo Moshoeshoe"),
        "{}",
        html(&board)
    );
    // The API's own login takes the new password.
    let api = app
        .post(
            "/api/auth/customer-login",
            None,
            json!({"customer_id": ACCOUNT, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
}

#[tokio::test]
async fn registration_refuses_bad_input_beside_the_field_and_registers_nothing() {
    let app = TestApp::start_with(fixture).await;
    let code = registration_code(&app, ACCOUNT).await;
    let (cookies, csrf) = register_form(&app).await;
    let attempt =
        |account: &'static str, code: String, password: &'static str, again: &'static str| {
            let (app, cookies, csrf) = (&app, cookies.clone(), csrf.clone());
            async move {
                post(
                    app,
                    "/portal/register",
                    &cookies,
                    &[
                        ("csrf", &csrf),
                        ("customer_id", account),
                        ("registration_code", &code),
                        ("password", password),
                        ("password_again", again),
                    ],
                )
                .await
            }
        };

    let wrong_code = attempt(
        ACCOUNT,
        "WRONG-CODE".into(),
        CUSTOMER_PASSWORD,
        CUSTOMER_PASSWORD,
    )
    .await;
    let weak = attempt(ACCOUNT, code.clone(), "short", "short").await;
    let mismatch = attempt(ACCOUNT, code.clone(), CUSTOMER_PASSWORD, "something else").await;
    let unknown = attempt(
        "0999MAK",
        code.clone(),
        CUSTOMER_PASSWORD,
        CUSTOMER_PASSWORD,
    )
    .await;
    let no_token = post(
        &app,
        "/portal/register",
        &cookies,
        &[
            ("customer_id", ACCOUNT),
            ("registration_code", &code),
            ("password", CUSTOMER_PASSWORD),
            ("password_again", CUSTOMER_PASSWORD),
        ],
    )
    .await;

    assert_eq!(wrong_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&wrong_code);
    assert!(
        body.contains(r#"<p class="error" id="registration_code-error">"#),
        "{body}"
    );
    assert!(
        body.contains(&format!(r#"name="customer_id" value="{ACCOUNT}""#)),
        "{body}"
    );
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&weak);
    assert!(
        body.contains(r#"<p class="error" id="password-error">The password must be at least 8 characters.</p>"#),
        "{body}"
    );
    assert!(!body.contains("short\""), "passwords are never shown back");
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&mismatch).contains(r#"id="password_again-error""#));
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(html(&unknown).contains(r#"id="customer_id-error""#));
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    for reply in [&wrong_code, &weak, &mismatch, &unknown, &no_token] {
        assert!(set_cookie(reply, "ccare_session").is_none());
    }
    let login = app
        .post(
            "/api/auth/customer-login",
            None,
            json!({"customer_id": ACCOUNT, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "not registered");
}

#[tokio::test]
async fn an_account_registered_already_is_told_to_sign_in() {
    let (app, _) = customer_app().await;
    let (cookies, csrf) = register_form(&app).await;

    let reply = post(
        &app,
        "/portal/register",
        &cookies,
        &[
            ("csrf", &csrf),
            ("customer_id", ACCOUNT),
            ("registration_code", "ANY-CODE"),
            ("password", NEW_PASSWORD),
            ("password_again", NEW_PASSWORD),
        ],
    )
    .await;

    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(
        html(&reply).contains(r#"<p class="error" id="customer_id-error">This account is registered already: sign in instead.</p>"#),
        "{}",
        html(&reply)
    );
}

// ---------------------------------------------------------------------------------------------
// The customer's pages.

#[tokio::test]
async fn a_customer_lands_on_their_dashboard_with_the_customer_nav() {
    let (app, session) = customer_app().await;

    let home = page(&app, "/portal/", &session).await;
    let board = page(&app, "/portal/my", &session).await;

    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&home), "/portal/my");
    let body = html(&board);
    assert!(
        body.contains(r#"<nav class="site" aria-label="Customer">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<a href="/portal/my" aria-current="page">Dashboard</a>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<a href="/portal/my/profile">My account</a>"#),
        "{body}"
    );
    assert!(!body.contains(r#"aria-label="Portal""#), "no staff nav");
}

#[tokio::test]
async fn a_customer_s_dashboard_shows_the_numbers_of_the_api_s_dashboard() {
    let (app, session) = customer_app().await;
    let token = app
        .post(
            "/api/auth/customer-login",
            None,
            json!({"customer_id": ACCOUNT, "password": CUSTOMER_PASSWORD}),
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let api = app.get("/api/my/dashboard", Some(&token)).await.body;

    let reply = page(&app, "/portal/my", &session).await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert_eq!(api["balance_kwh"], json!(12.0));
    assert!(body.contains(r#"<dd id="balance">12.00 kWh"#), "{body}");
    assert!(!body.contains(r#"id="low-balance""#), "12 kWh is not low");
    assert_eq!(api["last_payment"]["amount"], json!(10.0));
    assert!(
        body.contains(r#"<dd id="last-payment">LSL 10.00"#),
        "{body}"
    );
    assert!(
        body.contains(&format!("{} · +2.00 kWh", &day(1, "")[..10])),
        "{body}"
    );
    assert_eq!(api["avg_kwh_per_day"], json!(6.0));
    assert!(
        body.contains(r#"<dd id="average-use">6.00 kWh</dd>"#),
        "{body}"
    );
    assert_eq!(api["estimated_recharge_seconds"], 2 * 86_400);
    assert!(
        body.contains(r#"<dd id="recharge">2 d 0 h 0 min</dd>"#),
        "{body}"
    );
    assert_eq!(api["total_kwh_all_time"], json!(612.0));
    assert!(
        body.contains(r#"<dd id="total-kwh">612.0 kWh</dd>"#),
        "{body}"
    );
    assert_eq!(api["total_lsl_all_time"], json!(90.0));
    assert!(
        body.contains(r#"<dd id="total-lsl">LSL 90.00</dd>"#),
        "{body}"
    );
    assert!(body.contains("Use in the last 7 days"), "{body}");
    assert!(body.contains("Use in the last 12 months"), "{body}");
}

#[tokio::test]
async fn a_customer_s_profile_shows_their_own_record_and_accounts() {
    let (app, session) = customer_app().await;

    let reply = page(&app, "/portal/my/profile", &session).await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert!(
        body.contains("<dt>Name</dt><dd>Lineo Moshoeshoe</dd>"),
        "{body}"
    );
    assert!(body.contains("<dt>Customer ID</dt><dd>9401</dd>"), "{body}");
    assert!(body.contains("<dt>City</dt><dd>Maseru</dd>"), "{body}");
    assert!(body.contains(&format!("<li>{ACCOUNT}</li>")), "{body}");
    assert!(body.contains(r#"<a href="/portal/my/profile" aria-current="page">My account</a>"#));
    assert!(body.contains(r#"href="/portal/account/password""#));
}

#[tokio::test]
async fn an_employee_opening_the_customer_pages_is_told_they_are_for_customers() {
    let app = TestApp::start().await;
    app.add_employee("00810", Role::Superadmin).await;
    let session = signed_in(&app, "00810").await;

    for path in ["/portal/my", "/portal/my/profile"] {
        let reply = page(&app, path, &session).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        let body = html(&reply);
        assert!(body.contains("This page is for customers"), "{body}");
        assert!(
            body.contains(r#"aria-label="Portal""#),
            "the staff nav stays"
        );
    }
    let home = page(&app, "/portal/", &session).await;
    assert_eq!(home.status, StatusCode::OK, "staff keep their dashboard");
}

// ---------------------------------------------------------------------------------------------
// Profile and password.

#[tokio::test]
async fn an_employee_s_profile_shows_who_they_are_and_their_role() {
    let app = TestApp::start().await;
    app.add_employee("00820", Role::FinanceTeam).await;
    let session = signed_in(&app, "00820").await;

    let reply = page(&app, "/portal/account", &session).await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert!(
        body.contains("<dt>Employee ID</dt><dd>00820</dd>"),
        "{body}"
    );
    assert!(
        body.contains("<dt>Role</dt><dd>Finance team</dd>"),
        "{body}"
    );
    assert!(
        body.contains("<dt>May change transactions</dt><dd>Yes</dd>"),
        "{body}"
    );
    assert!(
        body.contains(r#"<a class="name" href="/portal/account">Employee 00820</a>"#),
        "{body}"
    );
}

#[tokio::test]
async fn changing_the_password_keeps_the_user_signed_in_and_the_new_one_signs_in() {
    let app = TestApp::start().await;
    app.add_employee("00830", Role::Generic).await;
    let session = signed_in(&app, "00830").await;
    let form = page(&app, "/portal/account/password", &session).await;
    let csrf = csrf_field(&html(&form));

    let reply = post(
        &app,
        "/portal/account/password",
        &session,
        &[
            ("csrf", &csrf),
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_again", NEW_PASSWORD),
        ],
    )
    .await;

    assert_eq!(form.status, StatusCode::OK);
    assert!(html(&form).contains(r#"<label for="current_password">Current password</label>"#));
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(location(&reply), "/portal/account?password=changed");
    let renewed = format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&reply, "ccare_session").expect("a new session cookie"))
    );
    let after = page(&app, location(&reply), &renewed).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(html(&after).contains("Your password is changed"));
    let old = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00830", "password": PASSWORD}),
        )
        .await;
    let new = app
        .post(
            "/api/auth/employee-login",
            None,
            json!({"employee_id": "00830", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);
}

#[tokio::test]
async fn a_wrong_current_password_or_a_weak_new_one_is_refused_beside_its_field() {
    let app = TestApp::start().await;
    app.add_employee("00840", Role::Generic).await;
    let session = signed_in(&app, "00840").await;
    let csrf = csrf_field(&html(
        &page(&app, "/portal/account/password", &session).await,
    ));
    let events = app.event_count().await;
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let (app, session, csrf) = (&app, session.clone(), csrf.clone());
        async move {
            post(
                app,
                "/portal/account/password",
                &session,
                &[
                    ("csrf", &csrf),
                    ("current_password", current),
                    ("new_password", new),
                    ("new_password_again", again),
                ],
            )
            .await
        }
    };

    let wrong = change("not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    let weak = change(PASSWORD, "short", "short").await;
    let mismatch = change(PASSWORD, NEW_PASSWORD, "another one entirely").await;

    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&wrong).contains(
            r#"<p class="error" id="current_password-error">That is not your current password.</p>"#
        ),
        "{}",
        html(&wrong)
    );
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&weak).contains(r#"<p class="error" id="new_password-error">The new password must be at least 8 characters.</p>"#),
        "{}",
        html(&weak)
    );
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&mismatch).contains(r#"id="new_password_again-error""#));
    for reply in [&wrong, &weak, &mismatch] {
        assert!(set_cookie(reply, "ccare_session").is_none());
        assert!(!html(reply).contains(NEW_PASSWORD));
    }
    assert_eq!(app.event_count().await, events, "nothing written");
    assert_eq!(
        page(&app, "/portal/account", &session).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_customer_changes_their_password_from_their_account_page() {
    let (app, session) = customer_app().await;
    let csrf = csrf_field(&html(
        &page(&app, "/portal/account/password", &session).await,
    ));

    let reply = post(
        &app,
        "/portal/account/password",
        &session,
        &[
            ("csrf", &csrf),
            ("current_password", CUSTOMER_PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("new_password_again", NEW_PASSWORD),
        ],
    )
    .await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(location(&reply), "/portal/my/profile?password=changed");
    let renewed = format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&reply, "ccare_session").unwrap())
    );
    assert_eq!(
        page(&app, "/portal/my", &renewed).await.status,
        StatusCode::OK
    );
    customer_signed_in(&app, ACCOUNT, NEW_PASSWORD).await;
}
