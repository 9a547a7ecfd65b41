//! The portal's tickets pages: the active-ticket summary and the list, one ticket with its
//! activity and messages, and the comment and status forms (CSRF, roles, refusals).

use axum::http::StatusCode;
use domain::auth::Role;
use domain::ticket::{Priority, TicketNumber};
use serde_json::Value;

use crate::portal::{csrf_field, html, location, page, post, signed_in};
use crate::support::TestApp;

const PHONE: &str = "+26658123457";

/// The ticket as `GET /api/tickets/{number}` answers it.
async fn json_ticket(app: &TestApp, token: &str, number: &TicketNumber) -> Value {
    let reply = app
        .get(&format!("/api/tickets/{number}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// The CSRF token of the ticket's page for `session`.
async fn ticket_csrf(app: &TestApp, session: &str, number: &TicketNumber) -> String {
    let reply = page(app, &format!("/portal/tickets/{number}"), session).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    csrf_field(&html(&reply))
}

#[tokio::test]
async fn an_employee_sees_the_active_ticket_summary_and_the_list() {
    let app = TestApp::start().await;
    let first = app.open_ticket("MAK", Priority::P1, None, None).await;
    let second = app.open_ticket("MAK", Priority::P1, None, None).await;
    let other = app.open_ticket("MAS", Priority::P3, None, None).await;
    app.add_employee("00501", Role::Generic).await;
    let session = signed_in(&app, "00501").await;

    let reply = page(&app, "/portal/tickets", &session).await;
    let filtered = page(&app, "/portal/tickets?status=open&site=mas", &session).await;
    let bad = page(&app, "/portal/tickets?status=lost", &session).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    let body = html(&reply);
    assert!(body.contains(r#"<p id="active-count">3 active"#), "{body}");
    assert!(
        body.contains(r#"<th scope="row">MAK</th><td>P1</td><td class="n">2</td><td class="n">0</td><td class="n">2</td><td class="n">0 min</td>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<th scope="row">MAS</th><td>P3</td><td class="n">1</td>"#),
        "{body}"
    );
    // The list, newest first, each linking to its page; the nav marks the page.
    let at = |n: &TicketNumber| {
        body.find(&format!(r#"href="/portal/tickets/{n}""#))
            .unwrap()
    };
    assert!(
        at(&other) < at(&second) && at(&second) < at(&first),
        "{body}"
    );
    assert!(
        body.contains("3 tickets, newest first · page 1 of 1"),
        "{body}"
    );
    assert!(
        body.contains(r#"<a href="/portal/tickets" aria-current="page">Tickets</a>"#),
        "{body}"
    );
    // The filters narrow the list and stay in the form.
    let narrowed = html(&filtered);
    assert_eq!(filtered.status, StatusCode::OK, "{narrowed}");
    assert!(narrowed.contains("1 tickets, newest first"), "{narrowed}");
    assert!(narrowed.contains(&format!("/portal/tickets/{other}")));
    assert!(!narrowed.contains(&format!("/portal/tickets/{first}")));
    assert!(
        narrowed.contains(r#"<option value="open" selected>"#),
        "{narrowed}"
    );
    assert!(narrowed.contains(r#"value="MAS""#), "{narrowed}");
    // A bad filter is named on the page, not a 500.
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&bad).contains("status: must be open, in-progress, resolved or closed"),
        "{}",
        html(&bad)
    );
}

#[tokio::test]
async fn the_list_filters_by_priority_category_and_text_and_names_a_bad_filter() {
    let app = TestApp::start().await;
    let urgent = app.open_ticket("MAK", Priority::P1, None, None).await;
    let routine = app.open_ticket("MAK", Priority::P3, None, None).await;
    app.add_employee("00502", Role::Generic).await;
    let session = signed_in(&app, "00502").await;
    let listed =
        |body: &str, n: &TicketNumber| body.contains(&format!(r#"href="/portal/tickets/{n}""#));

    let p1 = page(&app, "/portal/tickets?priority=p1", &session).await;
    let no_power = page(
        &app,
        "/portal/tickets?category=no-power&q=motlakase",
        &session,
    )
    .await;
    let billing = page(&app, "/portal/tickets?category=billing", &session).await;
    let by_number = page(&app, &format!("/portal/tickets?q={routine}"), &session).await;
    let bad_priority = page(&app, "/portal/tickets?priority=P9", &session).await;
    let bad_category = page(&app, "/portal/tickets?category=weather", &session).await;

    let body = html(&p1);
    assert_eq!(p1.status, StatusCode::OK, "{body}");
    assert!(listed(&body, &urgent) && !listed(&body, &routine), "{body}");
    assert!(
        body.contains(r#"<option value="P1" selected>P1</option>"#),
        "{body}"
    );
    let body = html(&no_power);
    assert!(listed(&body, &urgent) && listed(&body, &routine), "{body}");
    assert!(body.contains(r#"value="motlakase""#), "{body}");
    let body = html(&billing);
    assert!(
        !listed(&body, &urgent) && !listed(&body, &routine),
        "{body}"
    );
    let body = html(&by_number);
    assert!(listed(&body, &routine) && !listed(&body, &urgent), "{body}");
    for (reply, field) in [(&bad_priority, "priority:"), (&bad_category, "category:")] {
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let body = html(reply);
        assert!(
            body.contains(r#"<p class="error" id="filter-error" role="alert">"#)
                && body.contains(field),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_ticket_page_shows_the_ticket_its_activity_and_its_phone_s_messages() {
    let app = TestApp::start().await;
    let number = app
        .ticket_from_whatsapp("MAK", PHONE, "Ha ke na <b>motlakase</b>")
        .await;
    app.add_employee("00502", Role::Generic).await;
    let session = signed_in(&app, "00502").await;

    let reply = page(&app, &format!("/portal/tickets/{number}"), &session).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    let body = html(&reply);
    assert!(
        body.contains(&format!("<h1>Ticket {number}</h1>")),
        "{body}"
    );
    for fact in [
        r#"<dt>Site</dt><dd>MAK</dd>"#,
        r#"<dt>Status</dt><dd id="ticket-status">Open</dd>"#,
        r#"<dt>Category</dt><dd>no-power</dd>"#,
        r#"<dt>Priority</dt><dd>P1</dd>"#,
        r#"<dt>Summary</dt><dd>Customer reports no power.</dd>"#,
        r#"<dt>Phone</dt><dd>+26658123457</dd>"#,
        r#"<dt>Age</dt><dd>0 min</dd>"#,
    ] {
        assert!(body.contains(fact), "{fact} not in {body}");
    }
    assert!(body.contains("opened"), "{body}");
    // The messages in order, in and out, escaped.
    let inbound = body
        .find("<td>In</td><td>Ha ke na &lt;b&gt;motlakase&lt;/b&gt;</td>")
        .expect(&body);
    let outbound = body
        .find(&format!(
            "<td>Out</td><td>Tikete ea hao {number} e thehiloe.</td>"
        ))
        .expect(&body);
    assert!(inbound < outbound);
    assert!(!body.contains("<b>motlakase"));
    // Every employee may comment; only superadmin and onm_team see the status form.
    assert!(
        body.contains(r#"<label for="comment">Comment</label>"#),
        "{body}"
    );
    assert!(!body.contains("/status\""), "{body}");
}

#[tokio::test]
async fn commenting_adds_the_comment_shown_after_the_redirect() {
    let app = TestApp::start().await;
    let number = app.open_ticket("MAK", Priority::P2, None, None).await;
    let token = app.employee("00503", Role::FinanceTeam).await;
    let session = signed_in(&app, "00503").await;
    let csrf = ticket_csrf(&app, &session, &number).await;

    let reply = post(
        &app,
        &format!("/portal/tickets/{number}/comments"),
        &session,
        &[("csrf", &csrf), ("text", "Called the customer <back>")],
    )
    .await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", html(&reply));
    assert_eq!(location(&reply), format!("/portal/tickets/{number}"));
    let after = html(&page(&app, location(&reply), &session).await);
    assert!(
        after.contains("Called the customer &lt;back&gt;"),
        "{after}"
    );
    assert!(after.contains("commented · 00503"), "{after}");
    let ticket = json_ticket(&app, &token, &number).await;
    let last = ticket["activity"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["kind"], "commented");
    assert_eq!(last["actor"], "00503");
    assert_eq!(last["channel"], "portal");
}

#[tokio::test]
async fn a_status_change_by_onm_team_works_and_by_finance_is_refused_with_403() {
    let app = TestApp::start().await;
    let number = app.open_ticket("MAK", Priority::P2, None, None).await;
    let path = format!("/portal/tickets/{number}/status");
    let finance_token = app.employee("00504", Role::FinanceTeam).await;
    let finance = signed_in(&app, "00504").await;
    app.add_employee("00505", Role::OnmTeam).await;
    let onm = signed_in(&app, "00505").await;
    let events = app.event_count().await;

    // Finance has no status form and the server refuses the post all the same.
    let finance_csrf = ticket_csrf(&app, &finance, &number).await;
    let refused = post(
        &app,
        &path,
        &finance,
        &[("csrf", &finance_csrf), ("status", "closed")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", html(&refused));
    assert!(html(&refused).contains("Not allowed for your role"));
    assert_eq!(app.event_count().await, events);
    assert_eq!(
        json_ticket(&app, &finance_token, &number).await["ticket"]["status"],
        "open"
    );

    // O&M moves it, with a reason.
    let onm_csrf = ticket_csrf(&app, &onm, &number).await;
    let moved = post(
        &app,
        &path,
        &onm,
        &[
            ("csrf", &onm_csrf),
            ("status", "in-progress"),
            ("reason", "Technician sent"),
        ],
    )
    .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", html(&moved));
    let after = html(&page(&app, location(&moved), &onm).await);
    assert!(
        after.contains(r#"<dd id="ticket-status">In progress</dd>"#),
        "{after}"
    );
    assert!(
        after.contains("Status Open → In progress: Technician sent"),
        "{after}"
    );
    assert!(
        after.contains(r#"<option value="in-progress" selected>"#),
        "{after}"
    );

    // The same status again is refused beside the form, keeping what was typed.
    let same = post(
        &app,
        &path,
        &onm,
        &[
            ("csrf", &onm_csrf),
            ("status", "in-progress"),
            ("reason", "Typed again"),
        ],
    )
    .await;
    assert_eq!(same.status, StatusCode::CONFLICT, "{}", html(&same));
    let body = html(&same);
    assert!(body.contains(r#"id="status-error" role="alert""#), "{body}");
    assert!(body.contains(r#"value="Typed again""#), "{body}");
}

#[tokio::test]
async fn an_empty_comment_shows_the_error_and_records_nothing() {
    let app = TestApp::start().await;
    let number = app.open_ticket("MAK", Priority::P2, None, None).await;
    let token = app.employee("00506", Role::Generic).await;
    let session = signed_in(&app, "00506").await;
    let csrf = ticket_csrf(&app, &session, &number).await;
    let events = app.event_count().await;

    let reply = post(
        &app,
        &format!("/portal/tickets/{number}/comments"),
        &session,
        &[("csrf", &csrf), ("text", "   ")],
    )
    .await;

    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&reply);
    assert!(
        body.contains(r#"<p class="error" id="comment-error" role="alert">Write something first"#),
        "{body}"
    );
    assert!(body.contains(r#"aria-invalid="true""#), "{body}");
    assert_eq!(app.event_count().await, events);
    let ticket = json_ticket(&app, &token, &number).await;
    assert_eq!(ticket["activity"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_ticket_form_posted_without_its_csrf_token_is_refused() {
    let app = TestApp::start().await;
    let number = app.open_ticket("MAK", Priority::P2, None, None).await;
    app.add_employee("00507", Role::Superadmin).await;
    let session = signed_in(&app, "00507").await;
    let events = app.event_count().await;

    let comment = post(
        &app,
        &format!("/portal/tickets/{number}/comments"),
        &session,
        &[("text", "No token")],
    )
    .await;
    let status = post(
        &app,
        &format!("/portal/tickets/{number}/status"),
        &session,
        &[("csrf", "0123abcd"), ("status", "closed")],
    )
    .await;

    for reply in [&comment, &status] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(html(reply).contains("This form has expired"));
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn a_customer_session_gets_the_staff_only_page_on_the_tickets_pages() {
    let app = TestApp::start().await;
    let number = app.open_ticket("MAK", Priority::P2, None, None).await;
    let account = app.some_account().await;
    let token = app.customer_token(&account).await;
    let session = format!("ccare_session={token}");

    let list = page(&app, "/portal/tickets", &session).await;
    let detail = page(&app, &format!("/portal/tickets/{number}"), &session).await;

    for reply in [&list, &detail] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            html(reply).contains("This page is for staff"),
            "{}",
            html(reply)
        );
        assert!(!html(reply).contains("Ha ke na"));
    }
}

#[tokio::test]
async fn an_unknown_or_malformed_ticket_number_gets_the_404_page() {
    let app = TestApp::start().await;
    app.add_employee("00508", Role::OnmTeam).await;
    let session = signed_in(&app, "00508").await;

    let unknown = page(&app, "/portal/tickets/MAK-2020-9999", &session).await;
    let malformed = page(&app, "/portal/tickets/not-a-ticket", &session).await;

    for reply in [&unknown, &malformed] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(html(reply).contains("No such ticket"), "{}", html(reply));
    }
}
