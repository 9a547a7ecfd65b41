//! The portal's employee administration: superadmins only; adding an employee, assigning a
//! role, setting an e-mail, disabling and enabling, each refused beside its field when wrong.

use axum::http::StatusCode;
use domain::auth::Role;
use serde_json::Value;

use crate::portal::{csrf_field, html, location, page, post, signed_in};
use crate::support::{TestApp, PASSWORD};

const ADMIN: &str = "00700";

/// A signed-in superadmin: the app, the session's `Cookie` and its CSRF token, and an API
/// token to check the results with.
struct Admin {
    app: TestApp,
    session: String,
    csrf: String,
    token: String,
}

async fn admin_app() -> Admin {
    let app = TestApp::start().await;
    app.add_employee(ADMIN, Role::Superadmin).await;
    let session = signed_in(&app, ADMIN).await;
    let csrf = csrf_field(&html(&page(&app, "/portal/admin", &session).await));
    let token = app.login(ADMIN).await;
    Admin {
        app,
        session,
        csrf,
        token,
    }
}

/// The employee `id` as `/api/admin/users` lists them.
async fn employee(admin: &Admin, id: &str) -> Option<Value> {
    let reply = admin.app.get("/api/admin/users", Some(&admin.token)).await;
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["employee_id"] == id)
        .cloned()
}

#[tokio::test]
async fn the_admin_pages_are_refused_to_every_role_but_superadmin() {
    let admin = admin_app().await;
    let app = &admin.app;
    for (id, role) in [
        ("00701", Role::OnmTeam),
        ("00702", Role::FinanceTeam),
        ("00703", Role::Generic),
    ] {
        app.add_employee(id, role).await;
        let theirs = signed_in(app, id).await;
        let session = theirs.as_str();
        let dashboard = html(&page(app, "/portal/", session).await);
        let csrf = csrf_field(&dashboard);

        let list = page(app, "/portal/admin", session).await;
        let assign = post(
            app,
            "/portal/admin/roles",
            session,
            &[
                ("csrf", csrf.as_str()),
                ("employee_id", id),
                ("cc_role", "superadmin"),
            ],
        )
        .await;
        let add = post(
            app,
            "/portal/admin/users",
            session,
            &[
                ("csrf", csrf.as_str()),
                ("employee_id", "00799"),
                ("name", "Intruder"),
                ("cc_role", "superadmin"),
                ("password", PASSWORD),
            ],
        )
        .await;
        let disable = post(
            app,
            &format!("/portal/admin/users/{ADMIN}/disable"),
            session,
            &[("csrf", csrf.as_str())],
        )
        .await;

        for reply in [&list, &assign, &add, &disable] {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{role:?}");
            assert!(html(reply).contains("This page is for superadmins"));
        }
        assert!(
            !dashboard.contains(r#"href="/portal/admin""#),
            "no Admin in the nav"
        );
        assert_eq!(
            employee(&admin, id).await.unwrap()["cc_role"],
            role.as_str()
        );
        assert!(employee(&admin, "00799").await.is_none());
        assert_eq!(employee(&admin, ADMIN).await.unwrap()["disabled"], false);
    }
}

#[tokio::test]
async fn a_superadmin_sees_the_employees_with_their_roles_and_an_admin_nav_entry() {
    let admin = admin_app().await;
    let (app, session) = (&admin.app, &admin.session);
    app.add_employee("00704", Role::FinanceTeam).await;

    let reply = page(app, "/portal/admin", session).await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert!(
        body.contains(r#"<a href="/portal/admin" aria-current="page">Admin</a>"#),
        "{body}"
    );
    let row = body
        .split("<tr>")
        .find(|r| r.contains(r#"<th scope="row">00704</th>"#))
        .expect("a row for 00704");
    assert!(row.contains("<td>Employee 00704</td>"), "{row}");
    assert!(row.contains("<td>Finance team</td>"), "{row}");
    assert!(
        row.contains(r#"action="/portal/admin/users/00704/disable""#),
        "{row}"
    );
    assert!(body.contains(r#"<label for="add-employee_id">Employee ID</label>"#));
}

#[tokio::test]
async fn assigning_a_role_changes_it_and_says_so() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);
    app.add_employee("00705", Role::Generic).await;

    let reply = post(
        app,
        "/portal/admin/roles",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "00705"),
            ("cc_role", "onm_team"),
        ],
    )
    .await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(location(&reply), "/portal/admin?done=role&who=00705");
    let after = html(&page(app, location(&reply), session).await);
    assert!(after.contains("The role of 00705 is changed"), "{after}");
    assert_eq!(
        employee(&admin, "00705").await.unwrap()["cc_role"],
        "onm_team"
    );
}

#[tokio::test]
async fn an_unknown_role_or_employee_is_refused_beside_its_field_keeping_what_was_typed() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);
    app.add_employee("00706", Role::Generic).await;
    let events = app.event_count().await;

    let bad_role = post(
        app,
        "/portal/admin/roles",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "00706"),
            ("cc_role", "boss"),
        ],
    )
    .await;
    let unknown = post(
        app,
        "/portal/admin/roles",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "00998"),
            ("cc_role", "generic"),
        ],
    )
    .await;
    let bad_id = post(
        app,
        "/portal/admin/roles",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "no spaces"),
            ("cc_role", "generic"),
        ],
    )
    .await;

    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&bad_role);
    assert!(
        body.contains(r#"<p class="error" id="role-cc_role-error">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"id="role-employee_id" name="employee_id" value="00706""#),
        "{body}"
    );
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let body = html(&unknown);
    assert!(
        body.contains(r#"<p class="error" id="role-employee_id-error">There is no employee 00998"#),
        "{body}"
    );
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad_id).contains(r#"id="role-employee_id-error""#));
    assert_eq!(app.event_count().await, events, "nothing written");
    assert_eq!(
        employee(&admin, "00706").await.unwrap()["cc_role"],
        "generic"
    );
}

#[tokio::test]
async fn adding_an_employee_lets_them_sign_in_with_their_first_password() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);

    let reply = post(
        app,
        "/portal/admin/users",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "00710"),
            ("name", "Mpho Nthako"),
            ("email", "Mpho@1PWR.org"),
            ("cc_role", "finance_team"),
            ("password", PASSWORD),
        ],
    )
    .await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(location(&reply), "/portal/admin?done=added&who=00710");
    let added = employee(&admin, "00710").await.unwrap();
    assert_eq!(added["name"], "Mpho Nthako");
    assert_eq!(added["cc_role"], "finance_team");
    assert_eq!(added["email"], "mpho@1pwr.org");
    signed_in(app, "00710").await;
}

#[tokio::test]
async fn adding_an_employee_with_a_weak_password_a_taken_id_or_no_name_adds_nothing() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);
    let events = app.event_count().await;
    let form = |id: &'static str, name: &'static str, password: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("employee_id", id.to_string()),
            ("name", name.to_string()),
            ("email", String::new()),
            ("cc_role", "generic".to_string()),
            ("password", password.to_string()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| async move {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post(app, "/portal/admin/users", session, &fields).await
    };

    let weak = send(form("00711", "Thabo", "short")).await;
    let taken = send(form(ADMIN, "Thabo", PASSWORD)).await;
    let nameless = send(form("00712", " ", PASSWORD)).await;

    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&weak);
    assert!(
        body.contains(
            r#"<p class="error" id="add-password-error">Must be at least 8 characters.</p>"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"id="add-name" name="name" value="Thabo""#),
        "{body}"
    );
    assert!(!body.contains("short"), "the password is never shown back");
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(html(&taken).contains(r#"id="add-employee_id-error""#));
    assert_eq!(nameless.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&nameless).contains(r#"id="add-name-error""#));
    assert_eq!(app.event_count().await, events);
    assert!(employee(&admin, "00711").await.is_none());
}

#[tokio::test]
async fn disabling_an_employee_ends_their_session_and_enabling_lets_them_back() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);
    app.add_employee("00720", Role::OnmTeam).await;
    let theirs = signed_in(app, "00720").await;

    let disabled = post(
        app,
        "/portal/admin/users/00720/disable",
        session,
        &[("csrf", csrf)],
    )
    .await;
    let shut_out = page(app, "/portal/tickets", &theirs).await;
    let list = html(&page(app, "/portal/admin", session).await);
    let enabled = post(
        app,
        "/portal/admin/users/00720/enable",
        session,
        &[("csrf", csrf)],
    )
    .await;

    assert_eq!(
        disabled.status,
        StatusCode::SEE_OTHER,
        "{}",
        html(&disabled)
    );
    assert_eq!(location(&disabled), "/portal/admin?done=disabled&who=00720");
    assert_eq!(shut_out.status, StatusCode::SEE_OTHER);
    assert!(location(&shut_out).starts_with("/portal/login"));
    assert!(
        list.contains(r#"action="/portal/admin/users/00720/enable""#),
        "{list}"
    );
    assert_eq!(enabled.status, StatusCode::SEE_OTHER);
    assert_eq!(employee(&admin, "00720").await.unwrap()["disabled"], false);
    signed_in(app, "00720").await;
}

#[tokio::test]
async fn a_superadmin_cannot_disable_their_own_account_or_an_unknown_one() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);

    let own = post(
        app,
        &format!("/portal/admin/users/{ADMIN}/disable"),
        session,
        &[("csrf", csrf)],
    )
    .await;
    let unknown = post(
        app,
        "/portal/admin/users/00997/enable",
        session,
        &[("csrf", csrf)],
    )
    .await;

    assert_eq!(own.status, StatusCode::BAD_REQUEST);
    let body = html(&own);
    assert!(
        body.contains(r#"id="row-form-error">You cannot disable your own account."#),
        "{body}"
    );
    assert_eq!(employee(&admin, ADMIN).await.unwrap()["disabled"], false);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(html(&unknown).contains("There is no employee 00997"));
}

#[tokio::test]
async fn setting_an_e_mail_shows_it_in_the_list_and_a_malformed_one_is_refused() {
    let admin = admin_app().await;
    let (app, session, csrf) = (&admin.app, &admin.session, &admin.csrf);
    app.add_employee("00730", Role::Generic).await;

    let set = post(
        app,
        "/portal/admin/emails",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "00730"),
            ("email", "Lineo@1PWR.org"),
        ],
    )
    .await;
    let bad = post(
        app,
        "/portal/admin/emails",
        session,
        &[
            ("csrf", csrf),
            ("employee_id", "00730"),
            ("email", "not an address"),
        ],
    )
    .await;

    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", html(&set));
    let list = html(&page(app, location(&set), session).await);
    assert!(list.contains("<td>lineo@1pwr.org</td>"), "{list}");
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&bad);
    assert!(body.contains(r#"id="email-email-error""#), "{body}");
    assert!(body.contains(r#"value="not an address""#), "{body}");
    assert_eq!(
        employee(&admin, "00730").await.unwrap()["email"],
        "lineo@1pwr.org"
    );
}

#[tokio::test]
async fn an_admin_form_without_its_csrf_token_changes_nothing() {
    let admin = admin_app().await;
    let (app, session) = (&admin.app, &admin.session);
    app.add_employee("00740", Role::Generic).await;

    let reply = post(
        app,
        "/portal/admin/roles",
        session,
        &[("employee_id", "00740"), ("cc_role", "superadmin")],
    )
    .await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        employee(&admin, "00740").await.unwrap()["cc_role"],
        "generic"
    );
}

#[tokio::test]
async fn a_customer_gets_the_staff_only_page_for_the_admin_pages() {
    let app = TestApp::start().await;
    let account = app.some_account().await;
    app.customer_token(&account).await;
    let (cookies, csrf) = crate::portal::login_form(&app).await;
    let signed = post(
        &app,
        "/portal/login",
        &cookies,
        &[
            ("csrf", &csrf),
            ("kind", "customer"),
            ("user_id", &account),
            ("password", crate::support::CUSTOMER_PASSWORD),
        ],
    )
    .await;
    let line = crate::portal::set_cookie(&signed, "ccare_session").unwrap();
    let session = format!("ccare_session={}", crate::portal::cookie_value(&line));
    let csrf = csrf_field(&html(&page(&app, "/portal/my", &session).await));

    let list = page(&app, "/portal/admin", &session).await;
    let assign = post(
        &app,
        "/portal/admin/roles",
        &session,
        &[
            ("csrf", &csrf),
            ("employee_id", "00123"),
            ("cc_role", "superadmin"),
        ],
    )
    .await;

    for reply in [&list, &assign] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(html(reply).contains("This page is for staff"));
    }
}
