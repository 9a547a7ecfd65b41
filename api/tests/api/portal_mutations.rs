//! The portal's audit pages: the mutation list with its filters and the chain status, one
//! mutation's diff, revert with its confirmation and role rule, and a record as of an instant.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};
use domain::auth::Role;
use serde_json::{json, Value};

use crate::portal::{csrf_field, html, location, page, post, signed_in};
use crate::support::TestApp;

fn city_sql(customer: i64) -> String {
    format!("SELECT [CITY] FROM [tblcustomer] WHERE [CUSTOMER ID] = {customer}")
}

/// Sets the city of `customer` through the JSON API as `token`: the mutation's id.
async fn set_city(app: &TestApp, token: &str, customer: i64, city: &str) -> i64 {
    let reply = app
        .put(
            &format!("/api/tables/tblcustomer/{customer}"),
            Some(token),
            json!({"data": {"CITY": city}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["mutation_id"].as_i64().expect("a mutation id")
}

/// The mutations the JSON API lists for `query`.
async fn api_mutations(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/mutations?{query}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["mutations"].as_array().unwrap().clone()
}

fn lists(body: &str, id: i64) -> bool {
    body.contains(&format!(r#"<a href="/portal/mutations/{id}">{id}</a>"#))
}

#[tokio::test]
async fn a_write_through_the_api_shows_in_the_list_and_its_page_highlights_what_changed() {
    let app = TestApp::start().await;
    let token = app.employee("00701", Role::OnmTeam).await;
    let session = signed_in(&app, "00701").await;
    let customer = app.some_customer().await;
    let id = set_city(&app, &token, customer, "Roma <north>").await;

    let list = page(&app, "/portal/mutations", &session).await;
    let detail = page(&app, &format!("/portal/mutations/{id}"), &session).await;

    assert_eq!(list.status, StatusCode::OK, "{}", html(&list));
    let listed = html(&list);
    assert!(lists(&listed, id), "{listed}");
    assert!(listed.contains("<td>Employee 00701</td><td>API</td><td><span class=\"badge\">update</span></td><td>tblcustomer</td>"), "{listed}");
    assert!(
        listed.contains(r#"<a href="/portal/mutations" aria-current="page">Mutations</a>"#),
        "{listed}"
    );
    assert_eq!(detail.status, StatusCode::OK, "{}", html(&detail));
    let body = html(&detail);
    assert!(
        body.contains(r#"<tr class="changed"><th scope="row">CITY<span class="visually-hidden"> (changed)</span></th>"#),
        "{body}"
    );
    assert!(body.contains("<td>Roma &lt;north&gt;</td>"), "{body}");
    assert!(
        body.contains(r#"<details id="unchanged"><summary>"#),
        "{body}"
    );
    assert!(body.contains("fields unchanged"), "{body}");
    assert!(
        body.contains(r#"<th scope="row">FIRST NAME</th>"#),
        "{body}"
    );
    assert!(body.contains("In effect"), "{body}");
}

#[tokio::test]
async fn each_filter_narrows_the_list_and_a_bad_one_is_named_beside_the_form() {
    let app = TestApp::start().await;
    let token = app.employee("00702", Role::Superadmin).await;
    let other = app.employee("00703", Role::OnmTeam).await;
    let session = signed_in(&app, "00702").await;
    let customer = app.some_customer().await;
    let mine = set_city(&app, &token, customer, "Roma").await;
    let theirs = set_city(&app, &other, customer, "Quthing").await;
    // A site rate set through the portal: a tariffs mutation from the portal channel.
    let tariffs = page(&app, "/portal/tariffs", &session).await;
    let csrf = csrf_field(&html(&tariffs));
    let set = post(
        &app,
        "/portal/tariffs/sites",
        &session,
        &[("csrf", &csrf), ("target", "MAK"), ("rate", "6.5")],
    )
    .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", html(&set));
    let portal = api_mutations(&app, &token, "table=tariffs").await[0]["id"]
        .as_i64()
        .unwrap();
    // And an edit made directly in Access, found by the change capture's next poll.
    app.acdb.execute(
        &format!(
            "UPDATE [tblcustomer] SET [FIRST NAME] = 'Teboho' WHERE [CUSTOMER ID] = {customer}"
        ),
        &[],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let external = loop {
        let found = api_mutations(&app, &token, "channel=cdc-external").await;
        if let Some(first) = found.first() {
            break first["id"].as_i64().unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no external edit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let today = domain::dates::maseru_local(Utc::now()).date();
    let tomorrow = today.succ_opt().unwrap();

    let shown = |query: &'static str| {
        let (app, session) = (&app, &session);
        async move {
            let reply = page(app, &format!("/portal/mutations?{query}"), session).await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", html(&reply));
            html(&reply)
        }
    };
    let by_table = shown("table=TBLCUSTOMER").await;
    let by_user = shown("user=00703").await;
    let by_action = shown("action=create").await;
    let by_portal = shown("channel=portal").await;
    let by_access = shown("channel=cdc-external").await;
    let today_only = page(
        &app,
        &format!("/portal/mutations?from={today}&to={today}&table=tblcustomer"),
        &session,
    )
    .await;
    let from_tomorrow = page(
        &app,
        &format!("/portal/mutations?from={tomorrow}"),
        &session,
    )
    .await;
    let bad = page(
        &app,
        "/portal/mutations?action=explode&user=00702",
        &session,
    )
    .await;

    assert!(lists(&by_table, mine) && lists(&by_table, theirs) && lists(&by_table, external));
    assert!(!lists(&by_table, portal), "{by_table}");
    assert!(
        lists(&by_user, theirs) && !lists(&by_user, mine),
        "{by_user}"
    );
    assert!(
        lists(&by_action, portal) && !lists(&by_action, mine),
        "{by_action}"
    );
    assert!(
        by_action.contains(r#"<option value="create" selected>"#),
        "{by_action}"
    );
    assert!(
        lists(&by_portal, portal) && !lists(&by_portal, mine),
        "{by_portal}"
    );
    assert!(by_access.contains("Direct Access edit"), "{by_access}");
    assert!(
        lists(&by_access, external) && !lists(&by_access, mine),
        "{by_access}"
    );
    let today_only = html(&today_only);
    assert!(
        lists(&today_only, mine) && lists(&today_only, external),
        "{today_only}"
    );
    assert!(
        html(&from_tomorrow).contains("0 mutations"),
        "{}",
        html(&from_tomorrow)
    );
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = html(&bad);
    assert!(bad.contains(r#"<select id="action" name="action" aria-invalid="true" aria-describedby="filter-error">"#), "{bad}");
    assert!(
        bad.contains(r#"id="filter-error" role="alert">action: Choose one of the actions."#),
        "{bad}"
    );
    assert!(bad.contains(r#"value="00702""#), "{bad}");
}

#[tokio::test]
async fn a_revert_needs_its_confirmation_and_then_leads_to_the_new_mutation() {
    let app = TestApp::start().await;
    let token = app.employee("00704", Role::OnmTeam).await;
    let session = signed_in(&app, "00704").await;
    let customer = app.some_customer().await;
    let original = app.acdb_text(&city_sql(customer));
    let id = set_city(&app, &token, customer, "Roma").await;
    let detail = html(&page(&app, &format!("/portal/mutations/{id}"), &session).await);
    assert!(
        detail.contains(
            r#"<input type="checkbox" id="confirm" name="confirm" value="yes" required>"#
        ),
        "{detail}"
    );
    let csrf = csrf_field(&detail);
    let revert = format!("/portal/mutations/{id}/revert");
    let events = app.event_count().await;

    let unconfirmed = post(&app, &revert, &session, &[("csrf", &csrf)]).await;
    let without_csrf = post(&app, &revert, &session, &[("confirm", "yes")]).await;
    assert_eq!(app.event_count().await, events, "nothing half-written");
    assert_eq!(app.acdb_text(&city_sql(customer)).as_deref(), Some("Roma"));
    let confirmed = post(
        &app,
        &revert,
        &session,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    let again = post(
        &app,
        &revert,
        &session,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;

    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let refused = html(&unconfirmed);
    assert!(
        refused.contains(r#"<p class="error" id="revert-error" role="alert">Tick the box to confirm the revert. Nothing was changed.</p>"#),
        "{refused}"
    );
    assert_eq!(without_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        html(&confirmed)
    );
    let new_page = location(&confirmed).to_string();
    let new_id: i64 = new_page
        .strip_prefix("/portal/mutations/")
        .unwrap()
        .parse()
        .unwrap();
    assert!(new_id > id);
    assert_eq!(app.acdb_text(&city_sql(customer)), original);
    let shown = html(&page(&app, &new_page, &session).await);
    assert!(shown.contains("revert_update"), "{shown}");
    assert!(
        shown.contains(&format!(
            r#"<a href="/portal/mutations/{id}">Mutation {id}</a>"#
        )),
        "{shown}"
    );
    let old = html(&page(&app, &format!("/portal/mutations/{id}"), &session).await);
    assert!(
        old.contains(&format!(
            "Reverted by <a href=\"/portal/mutations/{new_id}\">"
        )),
        "{old}"
    );
    assert!(!old.contains(&revert), "no second revert offered: {old}");
    // The form of a page opened before the revert: refused beside it, not run twice.
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", html(&again));
    assert!(
        html(&again).contains("already reverted"),
        "{}",
        html(&again)
    );
}

#[tokio::test]
async fn revert_is_neither_offered_to_nor_allowed_for_generic_and_finance_staff() {
    let app = TestApp::start().await;
    let token = app.employee("00705", Role::Superadmin).await;
    app.add_employee("00706", Role::Generic).await;
    app.add_employee("00707", Role::FinanceTeam).await;
    let customer = app.some_customer().await;
    let id = set_city(&app, &token, customer, "Roma").await;

    for employee in ["00706", "00707"] {
        let session = signed_in(&app, employee).await;
        let detail = page(&app, &format!("/portal/mutations/{id}"), &session).await;
        assert_eq!(detail.status, StatusCode::OK);
        let body = html(&detail);
        assert!(!body.contains("/revert"), "{body}");
        let csrf = csrf_field(&body);

        let reply = post(
            &app,
            &format!("/portal/mutations/{id}/revert"),
            &session,
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;

        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{employee}");
        assert!(html(&reply).contains("Only superadmin and the O&amp;M team revert changes"));
        assert_eq!(app.acdb_text(&city_sql(customer)).as_deref(), Some("Roma"));
    }
}

#[tokio::test]
async fn the_as_of_view_shows_a_record_as_it_stood_before_a_change() {
    let app = TestApp::start().await;
    let token = app.employee("00708", Role::OnmTeam).await;
    let session = signed_in(&app, "00708").await;
    let customer = app.some_customer().await;
    set_city(&app, &token, customer, "Mafeteng").await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let id = set_city(&app, &token, customer, "Roma").await;
    let at = between.to_rfc3339_opts(SecondsFormat::Micros, true);

    let then = page(
        &app,
        &format!("/portal/audit/records/tblcustomer/{customer}?at={at}"),
        &session,
    )
    .await;
    let now = page(
        &app,
        &format!("/portal/audit/records/tblcustomer/{customer}"),
        &session,
    )
    .await;
    let detail = html(&page(&app, &format!("/portal/mutations/{id}"), &session).await);
    let before_link = detail
        .split(r#"<p id="as-of-links"><a href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the record before the change")
        .replace("&amp;", "&");
    let just_before = page(&app, &before_link, &session).await;
    let bad = page(
        &app,
        &format!("/portal/audit/records/tblcustomer/{customer}?at=someday"),
        &session,
    )
    .await;
    let unknown = page(&app, "/portal/audit/records/tblnothing/1", &session).await;

    assert_eq!(then.status, StatusCode::OK, "{}", html(&then));
    let city = r#"<th scope="row">CITY</th><td>"#;
    assert!(
        html(&then).contains(&format!("{city}Mafeteng</td>")),
        "{}",
        html(&then)
    );
    assert!(
        html(&now).contains(&format!("{city}Roma</td>")),
        "{}",
        html(&now)
    );
    assert!(
        html(&just_before).contains(&format!("{city}Mafeteng</td>")),
        "{before_link}: {}",
        html(&just_before)
    );
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&bad).contains(r#"id="at-error" role="alert""#),
        "{}",
        html(&bad)
    );
    assert!(html(&bad).contains(r#"value="someday""#));
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_chain_status_is_shown_and_names_a_tampered_event() {
    let app = TestApp::start().await;
    app.add_employee("00709", Role::Generic).await;
    let session = signed_in(&app, "00709").await;
    let intact = html(&page(&app, "/portal/mutations", &session).await);
    let victim: i64 =
        sqlx::query_scalar("select min(position) from event_log where aggregate_type = 'Customer'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();

    let mut tx = app.db.pool.begin().await.unwrap();
    for sql in [
        "alter table event_log disable trigger event_log_append_only",
        &format!("update event_log set payload = '{{\"Created\":{{\"row\":{{}}}}}}' where position = {victim}"),
        "alter table event_log enable trigger event_log_append_only",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let full = page(&app, "/portal/audit/chain", &session).await;

    assert!(
        intact.contains(r#"<p class="chain-intact">Intact: "#),
        "{intact}"
    );
    assert!(intact.contains(r#"href="/portal/audit/chain""#), "{intact}");
    assert_eq!(full.status, StatusCode::OK);
    assert!(
        html(&full).contains(&format!("Broken at position {victim}: ")),
        "{}",
        html(&full)
    );
}

#[tokio::test]
async fn a_customer_gets_the_staff_only_page_on_the_audit_pages() {
    let app = TestApp::start().await;
    let token = app.employee("00710", Role::Superadmin).await;
    let customer = app.some_customer().await;
    let id = set_city(&app, &token, customer, "Roma").await;
    let account = app.some_account().await;
    let session = format!("ccare_session={}", app.customer_token(&account).await);

    let list = page(&app, "/portal/mutations", &session).await;
    let detail = page(&app, &format!("/portal/mutations/{id}"), &session).await;
    let as_of = page(
        &app,
        &format!("/portal/audit/records/tblcustomer/{customer}"),
        &session,
    )
    .await;
    let chain = page(&app, "/portal/audit/chain", &session).await;
    let csrf = csrf_field(&html(&list));
    let revert = post(
        &app,
        &format!("/portal/mutations/{id}/revert"),
        &session,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;

    for reply in [&list, &detail, &as_of, &chain, &revert] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            html(reply).contains("This page is for staff"),
            "{}",
            html(reply)
        );
    }
    assert!(!html(&detail).contains("Roma"));
    assert_eq!(app.acdb_text(&city_sql(customer)).as_deref(), Some("Roma"));
}

#[tokio::test]
async fn an_unknown_mutation_gets_the_404_page() {
    let app = TestApp::start().await;
    app.add_employee("00711", Role::OnmTeam).await;
    let session = signed_in(&app, "00711").await;
    let csrf = csrf_field(&html(&page(&app, "/portal/mutations", &session).await));

    let unknown = page(&app, "/portal/mutations/999999999", &session).await;
    let malformed = page(&app, "/portal/mutations/abc", &session).await;
    let revert = post(
        &app,
        "/portal/mutations/999999999/revert",
        &session,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;

    for reply in [&unknown, &malformed, &revert] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(html(reply).contains("No such mutation"), "{}", html(reply));
    }
}
