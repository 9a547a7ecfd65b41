//! The portal's tariffs page: the global rate, site and customer overrides, the history, the
//! forms that set and remove rates, their refusals beside the fields, and the role rules.

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use domain::auth::Role;
use domain::dates::maseru_local;
use serde_json::json;

use crate::portal::{csrf_field, html, location, page, post, signed_in};
use crate::support::{Reply, TestApp};

/// The tariffs page for `session`, asserted 200: its HTML.
async fn tariffs(app: &TestApp, session: &str) -> String {
    let reply = page(app, "/portal/tariffs", session).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    html(&reply)
}

/// Posts `fields` (and the session's CSRF token) to `path`.
async fn send(app: &TestApp, session: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
    let csrf = csrf_field(&tariffs(app, session).await);
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    post(app, path, session, &form).await
}

fn therate(app: &TestApp) -> String {
    let text = app
        .acdb_text("SELECT [therate] FROM [tblconfig] ORDER BY [ID]")
        .unwrap();
    text.parse::<rust_decimal::Decimal>()
        .unwrap()
        .normalize()
        .to_string()
}

#[tokio::test]
async fn generic_staff_read_the_rates_and_history_without_the_forms() {
    let app = TestApp::start().await;
    let finance = app.employee("00801", Role::FinanceTeam).await;
    app.add_employee("00802", Role::Generic).await;
    let set = app
        .put(
            "/api/tariff/concession/MAS",
            Some(&finance),
            json!({"rate_lsl": "7.1", "notes": "remote <site>"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let session = signed_in(&app, "00802").await;

    let body = tariffs(&app, &session).await;

    assert!(
        body.contains(r#"<dl class="facts" id="global-rate">"#),
        "{body}"
    );
    assert!(body.contains(r#"id="read-only""#), "{body}");
    assert!(!body.contains(r#"action="/portal/tariffs/"#), "{body}");
    assert!(!body.contains("/remove"), "{body}");
    assert!(
        body.contains(r#"<table id="site-overrides">"#)
            && body.contains(r#"<th scope="row">MAS</th><td class="n">7.10</td>"#),
        "{body}"
    );
    assert!(body.contains("<td>remote &lt;site&gt;</td>"), "{body}");
    assert!(
        body.contains(
            r#"<td>Site</td><th scope="row">MAS</th><td class="n">–</td><td class="n">7.10</td>"#
        ),
        "{body}"
    );
    assert!(body.contains("Employee 00801"), "{body}");
    assert!(
        body.contains(r#"<a href="/portal/tariffs" aria-current="page">Tariffs</a>"#),
        "{body}"
    );
}

#[tokio::test]
async fn a_global_rate_set_in_the_portal_reaches_tblconfig_the_current_rate_and_the_history() {
    let app = TestApp::start().await;
    app.add_employee("00803", Role::FinanceTeam).await;
    let session = signed_in(&app, "00803").await;

    let set = send(
        &app,
        &session,
        "/portal/tariffs/global",
        &[("rate", "6.25")],
    )
    .await;

    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", html(&set));
    assert_eq!(location(&set), "/portal/tariffs");
    assert_eq!(therate(&app), "6.25");
    let body = tariffs(&app, &session).await;
    assert!(
        body.contains(r#"<div><dt>Rate (LSL/kWh)</dt><dd>6.25</dd></div>"#),
        "{body}"
    );
    let history = body.split(r#"<table id="tariff-history">"#).nth(1).unwrap();
    assert!(history.contains(r#"<td>Global</td>"#), "{history}");
    assert!(history.contains(r#"<td class="n">6.25</td>"#), "{history}");
    let scheduled = send(
        &app,
        &session,
        "/portal/tariffs/global",
        &[
            ("rate", "7"),
            ("effective_from", "2099-01-01"),
            ("notes", "board decision"),
        ],
    )
    .await;
    assert_eq!(
        scheduled.status,
        StatusCode::SEE_OTHER,
        "{}",
        html(&scheduled)
    );
    assert_eq!(therate(&app), "6.25", "not before its date");
    let body = tariffs(&app, &session).await;
    assert!(
        body.contains(
            "From 2099-01-01 00:00 the global rate will be 7.00 LSL/kWh (board decision)."
        ),
        "{body}"
    );
}

#[tokio::test]
async fn site_and_customer_overrides_are_set_from_a_date_and_removed() {
    let app = TestApp::start().await;
    app.add_employee("00804", Role::OnmTeam).await;
    let session = signed_in(&app, "00804").await;
    let customer = app.some_customer().await.to_string();
    let next_week = (maseru_local(Utc::now()) + TimeDelta::days(7))
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    let site = send(
        &app,
        &session,
        "/portal/tariffs/sites",
        &[("target", "MAK"), ("rate", "6.5")],
    )
    .await;
    let future = send(
        &app,
        &session,
        "/portal/tariffs/customers",
        &[
            ("target", &customer),
            ("rate", "4.1234"),
            ("effective_from", &next_week),
        ],
    )
    .await;
    let set = tariffs(&app, &session).await;
    let removed_site = send(&app, &session, "/portal/tariffs/sites/MAK/remove", &[]).await;
    let removed_customer = send(
        &app,
        &session,
        &format!("/portal/tariffs/customers/{customer}/remove"),
        &[],
    )
    .await;
    let nothing_left = send(&app, &session, "/portal/tariffs/sites/MAK/remove", &[]).await;
    let after = tariffs(&app, &session).await;
    let customer_history = page(&app, "/portal/tariffs?scope=customer", &session).await;

    for reply in [&site, &future, &removed_site, &removed_customer] {
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(reply));
    }
    assert!(
        set.contains(r#"<th scope="row">MAK</th><td class="n">6.50</td>"#),
        "{set}"
    );
    let pending_row = format!(
        r#"<th scope="row">{customer}</th><td class="n">4.1234</td><td>{} <span class="badge">pending</span></td>"#,
        next_week.replace('T', " ")
    );
    assert!(set.contains(&pending_row), "{set}");
    assert!(
        set.contains(
            r#"<form method="post" action="/portal/tariffs/sites/MAK/remove" class="inline">"#
        ),
        "{set}"
    );
    assert_eq!(nothing_left.status, StatusCode::NOT_FOUND);
    assert!(html(&nothing_left).contains("No such override"));
    assert!(after.contains(r#"id="no-site-overrides""#), "{after}");
    assert!(after.contains(r#"id="no-customer-overrides""#), "{after}");
    assert!(
        after.contains(r#"<td class="n">6.50</td><td class="n">removed</td>"#),
        "{after}"
    );
    let customer_history = html(&customer_history);
    assert!(customer_history.contains(r#"<option value="customer" selected>"#));
    assert!(
        !customer_history.contains("<td>Site</td>"),
        "{customer_history}"
    );
    assert!(
        customer_history.contains("<td>Customer</td>"),
        "{customer_history}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_beside_its_field_keeping_what_was_typed_and_changing_nothing() {
    let app = TestApp::start().await;
    app.add_employee("00805", Role::Superadmin).await;
    let session = signed_in(&app, "00805").await;
    let events = app.event_count().await;
    let before = therate(&app);

    let negative = send(&app, &session, "/portal/tariffs/global", &[("rate", "-1")]).await;
    let not_a_number = send(
        &app,
        &session,
        "/portal/tariffs/sites",
        &[("target", "MAK"), ("rate", "five"), ("notes", "kept <b>")],
    )
    .await;
    let unknown_site = send(
        &app,
        &session,
        "/portal/tariffs/sites",
        &[("target", "XYZ"), ("rate", "6")],
    )
    .await;
    let bad_date = send(
        &app,
        &session,
        "/portal/tariffs/sites",
        &[
            ("target", "MAS"),
            ("rate", "6"),
            ("effective_from", "next tuesday"),
        ],
    )
    .await;
    let unknown_customer = send(
        &app,
        &session,
        "/portal/tariffs/customers",
        &[("target", "987654321"), ("rate", "6")],
    )
    .await;
    let not_a_customer = send(
        &app,
        &session,
        "/portal/tariffs/customers",
        &[("target", "abc"), ("rate", "6")],
    )
    .await;

    for reply in [
        &negative,
        &not_a_number,
        &unknown_site,
        &bad_date,
        &not_a_customer,
    ] {
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            html(reply)
        );
    }
    assert_eq!(unknown_customer.status, StatusCode::NOT_FOUND);
    let negative = html(&negative);
    assert!(
        negative.contains(r#"<p class="error" id="global-rate-error" role="alert">The rate must be greater than 0.</p>"#),
        "{negative}"
    );
    assert!(
        negative.contains(r#"value="-1" aria-invalid="true" aria-describedby="global-rate-error""#),
        "{negative}"
    );
    let not_a_number = html(&not_a_number);
    assert!(
        not_a_number.contains(
            r#"id="site-rate-error" role="alert">The rate &quot;five&quot; is not a number.</p>"#
        ),
        "{not_a_number}"
    );
    assert!(
        not_a_number.contains(r#"value="kept &lt;b&gt;""#),
        "{not_a_number}"
    );
    assert!(
        not_a_number.contains(r#"<option value="MAK" selected>"#),
        "{not_a_number}"
    );
    assert!(
        html(&unknown_site)
            .contains(r#"id="site-target-error" role="alert">Choose one of the sites.</p>"#),
        "{}",
        html(&unknown_site)
    );
    assert!(
        html(&bad_date).contains(r#"id="site-effective-error" role="alert">The effective date "#),
        "{}",
        html(&bad_date)
    );
    assert!(html(&bad_date).contains(r#"value="next tuesday""#));
    assert!(
        html(&unknown_customer).contains(
            r#"id="customer-target-error" role="alert">There is no customer 987654321.</p>"#
        ),
        "{}",
        html(&unknown_customer)
    );
    assert!(html(&not_a_customer).contains(r#"id="customer-target-error""#));
    assert_eq!(app.event_count().await, events, "nothing written");
    assert_eq!(therate(&app), before);
}

#[tokio::test]
async fn generic_staff_are_refused_every_tariff_change() {
    let app = TestApp::start().await;
    let finance = app.employee("00806", Role::FinanceTeam).await;
    app.put(
        "/api/tariff/concession/MAK",
        Some(&finance),
        json!({"rate_lsl": "6.5"}),
    )
    .await;
    app.add_employee("00807", Role::Generic).await;
    let session = signed_in(&app, "00807").await;
    let customer = app.some_customer().await.to_string();
    let events = app.event_count().await;

    let refused = [
        send(&app, &session, "/portal/tariffs/global", &[("rate", "9")]).await,
        send(
            &app,
            &session,
            "/portal/tariffs/sites",
            &[("target", "MAK"), ("rate", "9")],
        )
        .await,
        send(
            &app,
            &session,
            "/portal/tariffs/customers",
            &[("target", &customer), ("rate", "9")],
        )
        .await,
        send(&app, &session, "/portal/tariffs/sites/MAK/remove", &[]).await,
        send(
            &app,
            &session,
            &format!("/portal/tariffs/customers/{customer}/remove"),
            &[],
        )
        .await,
    ];

    for reply in &refused {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", html(reply));
        assert!(html(reply).contains("Not allowed for your role"));
    }
    assert_eq!(app.event_count().await, events);
    let without_csrf = post(&app, "/portal/tariffs/global", &session, &[("rate", "9")]).await;
    assert_eq!(without_csrf.status, StatusCode::FORBIDDEN);
    assert!(html(&without_csrf).contains("This form has expired"));
}

#[tokio::test]
async fn a_customer_gets_the_staff_only_page_on_the_tariffs_pages() {
    let app = TestApp::start().await;
    let account = app.some_account().await;
    let session = format!("ccare_session={}", app.customer_token(&account).await);
    let events = app.event_count().await;

    let read = page(&app, "/portal/tariffs", &session).await;
    let csrf = csrf_field(&html(&read));
    let write = post(
        &app,
        "/portal/tariffs/global",
        &session,
        &[("csrf", &csrf), ("rate", "1")],
    )
    .await;

    for reply in [&read, &write] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            html(reply).contains("This page is for staff"),
            "{}",
            html(reply)
        );
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn a_bad_history_filter_is_named_beside_it() {
    let app = TestApp::start().await;
    app.add_employee("00808", Role::Generic).await;
    let session = signed_in(&app, "00808").await;

    let reply = page(&app, "/portal/tariffs?scope=planet", &session).await;

    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&reply).contains(
            r#"id="history-error" role="alert">scope: must be global, site or customer</p>"#
        ),
        "{}",
        html(&reply)
    );
}
