//! The portal's pages as a browser without JavaScript meets them: redirects, the sign-in form,
//! the session cookie and its CSRF-checked forms, the staff dashboard's figures, and escaping.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use domain::auth::Role;
use serde_json::Value;
use testkit::acdb::TestAcdb;

use crate::support::{report_ledger, Reply, TestApp, CUSTOMER_PASSWORD, PASSWORD};

/// `fields` as an `application/x-www-form-urlencoded` body.
fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A browser request: `cookies` as sent (`name=value; …`), extra `headers`, a form body.
pub(crate) async fn browse(
    app: &TestApp,
    method: Method,
    path: &str,
    cookies: &str,
    headers: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(path);
    if !cookies.is_empty() {
        builder = builder.header("cookie", cookies);
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match form {
        Some(fields) => {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
            Body::from(form_body(fields))
        }
        None => Body::empty(),
    };
    let mut request = builder.body(body).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40001))));
    app.send(request).await
}

pub(crate) async fn page(app: &TestApp, path: &str, cookies: &str) -> Reply {
    browse(app, Method::GET, path, cookies, &[], None).await
}

pub(crate) async fn post(app: &TestApp, path: &str, cookies: &str, form: &[(&str, &str)]) -> Reply {
    browse(app, Method::POST, path, cookies, &[], Some(form)).await
}

pub(crate) fn html(reply: &Reply) -> String {
    String::from_utf8(reply.bytes.clone()).unwrap()
}

pub(crate) fn location(reply: &Reply) -> &str {
    reply.headers["location"].to_str().unwrap()
}

/// The `Set-Cookie` line that sets cookie `name`, if any.
pub(crate) fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|line| line.starts_with(&format!("{name}=")))
}

/// The value a `Set-Cookie` line sets.
pub(crate) fn cookie_value(line: &str) -> String {
    let pair = line.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// The value of the page's hidden `csrf` field.
pub(crate) fn csrf_field(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

/// A fresh sign-in form: the `Cookie` header that goes with it and its CSRF value.
pub(crate) async fn login_form(app: &TestApp) -> (String, String) {
    let reply = page(app, "/portal/login", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let line = set_cookie(&reply, "ccare_login").expect("a login cookie");
    let csrf = csrf_field(&html(&reply));
    assert_eq!(cookie_value(&line), csrf);
    (format!("ccare_login={csrf}"), csrf)
}

/// Posts the staff sign-in form for `id` with `password` (and `next`).
async fn sign_in_as(app: &TestApp, id: &str, password: &str, next: Option<&str>) -> Reply {
    let (cookies, csrf) = login_form(app).await;
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("kind", "staff"),
        ("user_id", id),
        ("password", password),
    ];
    if let Some(next) = next {
        fields.push(("next", next));
    }
    post(app, "/portal/login", &cookies, &fields).await
}

/// Signs employee `id` in through the form; the `Cookie` header of the session.
pub(crate) async fn signed_in(app: &TestApp, id: &str) -> String {
    let reply = sign_in_as(app, id, PASSWORD, None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    let line = set_cookie(&reply, "ccare_session").expect("a session cookie");
    format!("ccare_session={}", cookie_value(&line))
}

#[tokio::test]
async fn the_root_address_sends_browsers_to_the_portal() {
    let app = TestApp::start().await;

    let reply = page(&app, "/", "").await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/portal/");
}

#[tokio::test]
async fn a_page_opened_without_a_session_goes_to_the_login_page_and_back_after_signing_in() {
    let app = TestApp::start().await;
    app.add_employee("00401", Role::Generic).await;

    let reply = page(&app, "/portal/?from=mail", "").await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&reply),
        "/portal/login?next=/portal/%3Ffrom%3Dmail"
    );
    let form = page(&app, location(&reply), "").await;
    assert!(
        html(&form).contains(r#"name="next" value="/portal/?from=mail""#),
        "{}",
        html(&form)
    );
    let signed = sign_in_as(&app, "00401", PASSWORD, Some("/portal/?from=mail")).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&signed), "/portal/?from=mail");
}

#[tokio::test]
async fn an_absolute_or_foreign_next_address_is_ignored() {
    let app = TestApp::start().await;
    app.add_employee("00402", Role::Generic).await;

    let form = page(&app, "/portal/login?next=https://evil.example/portal/", "").await;
    let scheme_relative = sign_in_as(&app, "00402", PASSWORD, Some("//evil.example/portal/")).await;
    let absolute = sign_in_as(&app, "00402", PASSWORD, Some("https://evil.example/")).await;

    assert!(!html(&form).contains("evil.example"), "{}", html(&form));
    assert_eq!(location(&scheme_relative), "/portal/");
    assert_eq!(location(&absolute), "/portal/");
}

#[tokio::test]
async fn a_wrong_password_shows_the_error_beside_the_form_and_sets_no_session_cookie() {
    let app = TestApp::start().await;
    app.add_employee("00403", Role::Generic).await;

    let wrong_password = sign_in_as(&app, "00403", "not the password", None).await;
    let unknown_user = sign_in_as(&app, "00999", PASSWORD, None).await;

    for reply in [&wrong_password, &unknown_user] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let page = html(reply);
        assert!(page.contains(r#"role="alert""#), "{page}");
        assert!(
            page.contains("Those details do not match an account"),
            "{page}"
        );
        assert!(set_cookie(reply, "ccare_session").is_none());
        assert!(!page.contains("not the password"));
    }
    // Whichever part was wrong, the page is the same but for the ID typed (and the form's token).
    let neutral = |reply: &Reply, id: &str| {
        let page = html(reply);
        page.replace(&csrf_field(&page), "CSRF").replace(id, "ID")
    };
    assert_eq!(
        neutral(&wrong_password, "00403"),
        neutral(&unknown_user, "00999")
    );
}

#[tokio::test]
async fn empty_fields_are_named_beside_the_field() {
    let app = TestApp::start().await;
    let (cookies, csrf) = login_form(&app).await;

    let reply = post(
        &app,
        "/portal/login",
        &cookies,
        &[
            ("csrf", &csrf),
            ("kind", "staff"),
            ("user_id", " "),
            ("password", ""),
        ],
    )
    .await;

    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = html(&reply);
    assert!(
        page.contains(r#"<p class="error" id="user_id-error">Enter your employee ID.</p>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<p class="error" id="password-error">Enter your password.</p>"#),
        "{page}"
    );
    assert_eq!(page.matches(r#"aria-invalid="true""#).count(), 2);
    assert!(set_cookie(&reply, "ccare_session").is_none());
}

#[tokio::test]
async fn signing_in_sets_an_http_only_same_site_cookie_holding_the_api_s_token() {
    let app = TestApp::start().await;
    app.add_employee("00404", Role::OnmTeam).await;

    let reply = sign_in_as(&app, "00404", PASSWORD, None).await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/portal/");
    let line = set_cookie(&reply, "ccare_session").unwrap();
    assert!(line.contains("; HttpOnly"), "{line}");
    assert!(line.contains("; SameSite=Lax"), "{line}");
    assert!(line.contains("; Path=/portal"), "{line}");
    assert!(line.contains("; Max-Age=3600"), "{line}");
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    // The login form's cookie is spent.
    let spent = set_cookie(&reply, "ccare_login").unwrap();
    assert!(spent.contains("Max-Age=0"), "{spent}");
    // The same token as the JSON API's: it works as a bearer token there…
    let token = cookie_value(&line);
    let me = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["user_id"], "00404");
    // …but the JSON API does not take the portal's cookie.
    let by_cookie = browse(
        &app,
        Method::GET,
        "/api/auth/me",
        &format!("ccare_session={token}"),
        &[],
        None,
    )
    .await;
    assert_eq!(by_cookie.status, StatusCode::UNAUTHORIZED);
    // The dashboard opens with it, naming the user and the role.
    let dashboard = page(&app, "/portal/", &format!("ccare_session={token}")).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", html(&dashboard));
    assert!(html(&dashboard).contains("Employee 00404"));
    assert!(html(&dashboard).contains("O&amp;M team"));
}

#[tokio::test]
async fn behind_an_https_proxy_the_session_cookie_is_secure() {
    let app = TestApp::start().await;
    app.add_employee("00405", Role::Generic).await;
    let https = [("x-forwarded-proto", "https")];
    let form = browse(&app, Method::GET, "/portal/login", "", &https, None).await;
    let login_line = set_cookie(&form, "ccare_login").unwrap();
    assert!(
        login_line.contains("; SameSite=Strict; Secure"),
        "{login_line}"
    );
    let csrf = cookie_value(&login_line);

    let reply = browse(
        &app,
        Method::POST,
        "/portal/login",
        &format!("ccare_login={csrf}"),
        &https,
        Some(&[
            ("csrf", &csrf),
            ("user_id", "00405"),
            ("password", PASSWORD),
        ]),
    )
    .await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let line = set_cookie(&reply, "ccare_session").unwrap();
    assert!(line.ends_with("; Secure"), "{line}");
}

#[tokio::test]
async fn pages_forbid_scripts_framing_and_caching() {
    let app = TestApp::start().await;

    let login = page(&app, "/portal/login", "").await;
    let css = page(&app, "/portal/assets/portal.css", "").await;

    let policy = login.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(login.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(!html(&login).contains("<script"));
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(css.headers["cache-control"], "public, max-age=3600");
}

#[tokio::test]
async fn the_dashboard_shows_the_figures_of_the_om_report_and_the_site_summary() {
    let app = TestApp::start_with(report_ledger).await;
    let token = app.employee("00406", Role::Generic).await;
    let session = signed_in(&app, "00406").await;

    let reply = page(&app, "/portal/", &session).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    let board = html(&reply);
    // The headline cards: 7 customers, 6 active, 2 sites; 2025 Q3 revenue 0.125 (half to even
    // 0.12) over 6 accounts seen so far.
    for card in [
        r#"<dd id="customers">7</dd>"#,
        r#"<dd id="active-customers">6</dd>"#,
        r#"<dd id="sites">2</dd>"#,
        r#"<dt>Revenue, 2025 Q3</dt><dd id="revenue">LSL 0.12</dd>"#,
        r#"<dt>ARPU, 2025 Q3</dt><dd id="arpu">LSL 0.02<small>6 active accounts</small></dd>"#,
    ] {
        assert!(board.contains(card), "{card} not in {board}");
    }
    // Customers per site.
    assert!(board.contains(r#"<th scope="row">Ha Makebe (MAK)</th><td class="n">3</td>"#));
    assert!(board.contains(r#"<th scope="row">Mashai (MAS)</th><td class="n">3</td>"#));
    // Site performance: the site summary's MWh and '000 LSL.
    for row in [
        r#"<th scope="row">MAK</th><td class="n">3</td><td class="n">0.03</td><td class="n">0.29</td><td class="n">9.6</td>"#,
        r#"<th scope="row">MAS</th><td class="n">3</td><td class="n">0.00</td><td class="n">-0.01</td><td class="n">0.3</td>"#,
        r#"<th scope="row">Total</th><td class="n">6</td><td class="n">0.03</td><td class="n">0.28</td>"#,
    ] {
        assert!(board.contains(row), "{row} not in {board}");
    }
    // The same figures as the JSON endpoints.
    let overview = app.get("/api/om-report/overview", Some(&token)).await.body;
    let arpu = app.get("/api/om-report/arpu", Some(&token)).await.body;
    let summary = app.get("/api/stats/site-summary", Some(&token)).await.body;
    assert_eq!(overview["total_customers"], 7);
    assert_eq!(overview["active_customers"], 6);
    let latest: &Value = arpu["arpu"].as_array().unwrap().last().unwrap();
    assert_eq!(latest["quarter"], "2025 Q3");
    assert_eq!(latest["total_revenue"], 0.12);
    assert_eq!(latest["arpu"], 0.02);
    assert_eq!(summary["sites"][0]["lsl_thousands"], 0.29);
    assert_eq!(summary["totals"]["lsl_thousands"], 0.28);
}

#[tokio::test]
async fn a_form_posted_without_its_csrf_token_is_refused() {
    let app = TestApp::start().await;
    app.add_employee("00407", Role::Generic).await;
    let session = signed_in(&app, "00407").await;

    let without = post(&app, "/portal/logout", &session, &[]).await;
    let wrong = post(&app, "/portal/logout", &session, &[("csrf", "0123abcd")]).await;
    let other_session = signed_in(&app, "00407").await;
    let other_csrf = csrf_field(&html(&page(&app, "/portal/", &other_session).await));
    let another_session_s = post(&app, "/portal/logout", &session, &[("csrf", &other_csrf)]).await;

    for reply in [&without, &wrong, &another_session_s] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(html(reply).contains("This form has expired"));
    }
    // Nothing happened: the session still opens the dashboard.
    assert_eq!(
        page(&app, "/portal/", &session).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_login_form_without_its_own_cookie_is_refused() {
    let app = TestApp::start().await;
    app.add_employee("00408", Role::Generic).await;
    let (_, csrf) = login_form(&app).await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("user_id", "00408"),
        ("password", PASSWORD),
    ];

    let no_cookie = post(&app, "/portal/login", "", &fields).await;
    let other_cookie = post(
        &app,
        "/portal/login",
        &format!("ccare_login={}", "ab".repeat(32)),
        &fields,
    )
    .await;

    for reply in [&no_cookie, &other_cookie] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(set_cookie(reply, "ccare_session").is_none());
    }
}

#[tokio::test]
async fn signing_out_revokes_the_session() {
    let app = TestApp::start().await;
    app.add_employee("00409", Role::Generic).await;
    let session = signed_in(&app, "00409").await;
    let dashboard = page(&app, "/portal/", &session).await;
    let csrf = csrf_field(&html(&dashboard));

    let reply = post(&app, "/portal/logout", &session, &[("csrf", &csrf)]).await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/portal/login");
    let cleared = set_cookie(&reply, "ccare_session").unwrap();
    assert!(cleared.starts_with("ccare_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer opens the dashboard, nor does its token open the API.
    let again = page(&app, "/portal/", &session).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&again), "/portal/login");
    let token = session.trim_start_matches("ccare_session=");
    let me = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

const ACCOUNT: &str = "0077MAK";

fn scripted_customer(acdb: &TestAcdb) {
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES (9077, '<script>alert(1)</script>', 'Mokoena', 'MAK')",
        &[],
    );
    acdb.execute(
        &format!("INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('{ACCOUNT}', 9077)"),
        &[],
    );
}

#[tokio::test]
async fn a_customer_gets_the_staff_only_page_with_their_name_escaped() {
    let app = TestApp::start_with(scripted_customer).await;
    app.customer_token(ACCOUNT).await;
    let (cookies, csrf) = login_form(&app).await;
    let signed = post(
        &app,
        "/portal/login",
        &cookies,
        &[
            ("csrf", &csrf),
            ("kind", "customer"),
            ("user_id", ACCOUNT),
            ("password", CUSTOMER_PASSWORD),
        ],
    )
    .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", html(&signed));
    let session = format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&signed, "ccare_session").unwrap())
    );

    let home = page(&app, "/portal/", &session).await;
    let reply = page(&app, "/portal/tickets", &session).await;

    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&home), "/portal/my");
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let body = html(&reply);
    assert!(body.contains("This page is for staff"), "{body}");
    assert!(body.contains(r#"<a href="/portal/my">"#), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script"), "{body}");
    // No staff nav for a customer, but a way out.
    assert!(!body.contains(r#"aria-label="Portal""#), "{body}");
    assert!(body.contains(r#"action="/portal/logout""#), "{body}");
}
