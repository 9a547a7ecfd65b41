//! The portal's customer write pages and the customer data page: the paged list by site, edit
//! (only changed fields reach the writer), delete after confirming, the new-customer wizard,
//! assign meter as one command (both rows or neither), the data page's figures, charts and
//! transactions, and every refusal (validation 422, role 403, CSRF 403, unknown 404).

use axum::http::StatusCode;
use domain::auth::Role;
use serde_json::Value;
use testkit::acdb::TestAcdb;

use crate::portal::{html, location, page, post, signed_in};
use crate::support::{Reply, TestApp, PASSWORD};

/// Customer 9201 (account 0201MAK, 30 ledger rows) and 9202, as in the read-only pages' tests.
fn customers_with_a_ledger(acdb: &TestAcdb) {
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name], [PLOT NUMBER], [PHONE], [DATE SERVICE CONNECTED], [DATE SERVICE TERMINATED]) VALUES (9201, 'Palesa', 'Qwertyane', 'MAK', 'MAK 0042 HH', '58123499', '2021-03-04 10:30:00', '2024-05-06')",
        &[],
    );
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES (9202, 'Thabo', 'Qwertyane', 'MAS')",
        &[],
    );
    acdb.execute(
        "INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('0201MAK', 9201)",
        &[],
    );
    for i in 1..=30 {
        acdb.execute(
            &format!(
                "INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [transaction date], [transaction amount], [kwh value], [rate used], [payment], [current balance]) VALUES ({}, '0201MAK', '2025-01-{:02} 09:00:00', {}.00, {}.0, 5.00, 1, {}.0)",
                95000 + i,
                i,
                i * 3 % 31,
                i,
                100 - i,
            ),
            &[],
        );
    }
    // The ACDB refuses this one account number: a failure of the second row of assign-meter.
    acdb.execute(
        "CREATE TRIGGER refuse_account BEFORE INSERT ON tblaccountnumbers WHEN NEW.accountnumber = '0999MAK' BEGIN SELECT RAISE(ABORT, 'account refused by the test'); END",
        &[],
    );
}

/// 110 customers at site ZZQ: more than one search's cap of 100.
fn a_large_site(acdb: &TestAcdb) {
    for id in 9300..9410 {
        acdb.execute(
            &format!(
                "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES ({id}, 'Z{id}', 'Zed', 'ZZQ')"
            ),
            &[],
        );
    }
}

fn csrf_of(body: &str) -> String {
    crate::portal::csrf_field(body)
}

/// The session's CSRF token, read from a page.
async fn csrf(app: &TestApp, session: &str) -> String {
    let reply = page(app, "/portal/customers", session).await;
    csrf_of(&html(&reply))
}

/// Posts `fields` with the session's CSRF token.
async fn submit(app: &TestApp, path: &str, session: &str, fields: &[(&str, &str)]) -> Reply {
    let token = csrf(app, session).await;
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    post(app, path, session, &all).await
}

/// A superadmin's API token, to read the audit with.
async fn auditor(app: &TestApp) -> String {
    let login = app
        .post(
            "/api/auth/employee-login",
            None,
            serde_json::json!({"employee_id": "00999", "password": PASSWORD}),
        )
        .await;
    match login.body["access_token"].as_str() {
        Some(token) => token.to_string(),
        None => app.employee("00999", Role::Superadmin).await,
    }
}

/// The audit's mutations of `table` row `record` (every row, when blank), newest first.
async fn audit(app: &TestApp, table: &str, record: &str) -> Vec<Value> {
    let auditor = auditor(app).await;
    let reply = app
        .get(
            &format!("/api/mutations?table={table}&record_id={record}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["mutations"].as_array().unwrap().clone()
}

async fn mutation(app: &TestApp, id: &Value) -> Value {
    let auditor = auditor(app).await;
    app.get(&format!("/api/mutations/{id}"), Some(&auditor))
        .await
        .body
}

#[tokio::test]
async fn the_site_filter_pages_through_every_customer_of_the_site() {
    let app = TestApp::start_with(a_large_site).await;
    app.add_employee("00701", Role::Generic).await;
    let session = signed_in(&app, "00701").await;

    let first = page(&app, "/portal/customers?site=zzq", &session).await;
    let last = page(&app, "/portal/customers?site=ZZQ&page=5", &session).await;

    let body = html(&first);
    assert_eq!(first.status, StatusCode::OK, "{body}");
    assert!(
        body.contains("110 customers found, by id · page 1 of 5"),
        "{body}"
    );
    assert!(body.contains(r#"href="/portal/customers/9300""#), "{body}");
    assert!(
        body.contains(r#"href="/portal/customers?page=2&amp;site=ZZQ" rel="next""#),
        "{body}"
    );
    let body = html(&last);
    assert_eq!(last.status, StatusCode::OK, "{body}");
    assert!(body.contains("page 5 of 5"), "{body}");
    assert_eq!(body.matches(r#"<th scope="row" class="n">"#).count(), 10);
    assert!(body.contains(r#"href="/portal/customers/9409""#), "{body}");
    assert!(!body.contains(r#"href="/portal/customers/9399""#), "{body}");
}

#[tokio::test]
async fn an_edit_sends_only_the_changed_fields_and_the_audit_holds_only_them() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00702", Role::OnmTeam).await;
    let session = signed_in(&app, "00702").await;

    let form = page(&app, "/portal/customers/9201/edit", &session).await;
    let body = html(&form);
    assert_eq!(form.status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"<label for="first-name">First name (required)</label>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"name="first-name" value="Palesa""#),
        "{body}"
    );
    assert!(
        body.contains(r#"name="date-service-connected" value="2021-03-04""#),
        "{body}"
    );
    // Every field as shown, the phone written another way, one real change.
    let saved = submit(
        &app,
        "/portal/customers/9201/edit",
        &session,
        &[
            ("first-name", "Palesa"),
            ("middle-name", ""),
            ("last-name", "Mokoena"),
            ("phone", "+266 5812 3499"),
            ("plot-number", "MAK 0042 HH"),
            ("concession-name", "MAK"),
            ("date-service-connected", "2021-03-04"),
            ("date-service-terminated", "2024-05-06"),
            ("gps-y", ""),
        ],
    )
    .await;

    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", html(&saved));
    assert_eq!(location(&saved), "/portal/customers/9201");
    let detail = html(&page(&app, "/portal/customers/9201", &session).await);
    assert!(detail.contains("Palesa Mokoena"), "{detail}");
    let found = audit(&app, "tblcustomer", "9201").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let change = mutation(&app, &found[0]["id"]).await;
    assert_eq!(change["action"], "update");
    assert_eq!(
        change["changed"],
        serde_json::json!(["LAST NAME"]),
        "{change}"
    );
    assert_eq!(change["user_id"], "00702");
    assert_eq!(
        app.acdb_text(
            "SELECT [DATE SERVICE CONNECTED] FROM [tblcustomer] WHERE [CUSTOMER ID] = 9201"
        )
        .unwrap()
        .get(..16),
        Some("2021-03-04 10:30"),
        "the stored time of day is kept"
    );

    // Nothing changed: nothing is sent.
    let again = submit(
        &app,
        "/portal/customers/9201/edit",
        &session,
        &[("first-name", "Palesa"), ("last-name", "Mokoena")],
    )
    .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(audit(&app, "tblcustomer", "9201").await.len(), 1);
}

#[tokio::test]
async fn bad_edits_come_back_beside_their_fields_with_what_was_typed_and_write_nothing() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00703", Role::Superadmin).await;
    let session = signed_in(&app, "00703").await;

    for (fields, error_id, kept) in [
        (
            vec![("first-name", ""), ("last-name", "Kept <b>name</b>")],
            "first-name-error",
            r#"value="Kept &lt;b&gt;name&lt;/b&gt;""#,
        ),
        (
            vec![
                ("first-name", "Palesa"),
                ("date-service-connected", "03/04/2025"),
            ],
            "date-service-connected-error",
            r#"value="03/04/2025""#,
        ),
        (
            vec![("first-name", "Palesa"), ("gps-y", "north")],
            "gps-y-error",
            r#"value="north""#,
        ),
        (
            vec![("first-name", "Palesa"), ("phone", "12")],
            "phone-error",
            r#"value="12""#,
        ),
    ] {
        let reply = submit(&app, "/portal/customers/9201/edit", &session, &fields).await;
        let body = html(&reply);
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body.contains(&format!(
                r#"<p class="error" id="{error_id}" role="alert">"#
            )),
            "{error_id}: {body}"
        );
        assert!(body.contains(kept), "{kept}: {body}");
        assert!(!body.contains("<b>name"), "{body}");
    }
    assert!(audit(&app, "tblcustomer", "9201").await.is_empty());

    for path in [
        "/portal/customers/987654/edit",
        "/portal/customers/x/edit",
        "/portal/customers/987654/delete",
        "/portal/customers/987654/assign-meter",
    ] {
        assert_eq!(
            page(&app, path, &session).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        let posted = submit(
            &app,
            path,
            &session,
            &[("first-name", "A"), ("confirm", "yes")],
        )
        .await;
        assert_eq!(posted.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn read_only_roles_customers_and_forms_without_their_token_are_refused() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00704", Role::Generic).await;
    app.add_employee("00705", Role::FinanceTeam).await;
    app.add_employee("00706", Role::OnmTeam).await;

    for id in ["00704", "00705"] {
        let session = signed_in(&app, id).await;
        let detail = html(&page(&app, "/portal/customers/9201", &session).await);
        assert!(!detail.contains("/portal/customers/9201/edit"), "{detail}");
        assert!(
            !detail.contains("/portal/customers/9201/delete"),
            "{detail}"
        );
        assert!(detail.contains("/portal/customers/9201/data"), "{detail}");
        let list = html(&page(&app, "/portal/customers?site=MAK", &session).await);
        assert!(!list.contains("add-customer"), "{list}");
        for path in [
            "/portal/customers/9201/edit",
            "/portal/customers/9201/delete",
            "/portal/customers/9201/assign-meter",
            "/portal/customers/new",
        ] {
            let get = page(&app, path, &session).await;
            assert_eq!(get.status, StatusCode::FORBIDDEN, "{id} GET {path}");
            assert!(html(&get).contains("Not allowed for your role"));
            let posted = submit(
                &app,
                path,
                &session,
                &[
                    ("first-name", "X"),
                    ("last-name", "Y"),
                    ("confirm", "yes"),
                    ("go", "create"),
                ],
            )
            .await;
            assert_eq!(posted.status, StatusCode::FORBIDDEN, "{id} POST {path}");
        }
    }
    assert!(audit(&app, "tblcustomer", "9201").await.is_empty());

    let writer = signed_in(&app, "00706").await;
    let missing = post(
        &app,
        "/portal/customers/9201/edit",
        &writer,
        &[("first-name", "Forged")],
    )
    .await;
    let wrong = post(
        &app,
        "/portal/customers/9201/delete",
        &writer,
        &[("csrf", "0123456789abcdef"), ("confirm", "yes")],
    )
    .await;
    for reply in [&missing, &wrong] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            html(reply).contains("This form has expired"),
            "{}",
            html(reply)
        );
    }

    let token = app.customer_token("0201MAK").await;
    let customer = format!("ccare_session={token}");
    for path in [
        "/portal/customers/9201/edit",
        "/portal/customers/new",
        "/portal/customers/9201/data",
    ] {
        let reply = page(&app, path, &customer).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(html(&reply).contains("This page is for staff"), "{path}");
    }
    assert!(audit(&app, "tblcustomer", "9201").await.is_empty());
}

#[tokio::test]
async fn a_customer_is_deleted_only_after_the_confirmation() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00707", Role::OnmTeam).await;
    let session = signed_in(&app, "00707").await;

    let question = page(&app, "/portal/customers/9202/delete", &session).await;
    let body = html(&question);
    assert_eq!(question.status, StatusCode::OK, "{body}");
    assert!(body.contains("Delete customer 9202?"), "{body}");
    assert!(body.contains(r#"name="confirm" value="yes""#), "{body}");
    let unconfirmed = submit(&app, "/portal/customers/9202/delete", &session, &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(audit(&app, "tblcustomer", "9202").await.is_empty());

    let deleted = submit(
        &app,
        "/portal/customers/9202/delete",
        &session,
        &[("confirm", "yes")],
    )
    .await;

    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", html(&deleted));
    assert_eq!(location(&deleted), "/portal/customers");
    assert_eq!(
        page(&app, "/portal/customers/9202", &session).await.status,
        StatusCode::NOT_FOUND
    );
    let found = audit(&app, "tblcustomer", "9202").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["action"], "delete");
    assert_eq!(
        app.acdb_text("SELECT [FIRST NAME] FROM [tblcustomer] WHERE [CUSTOMER ID] = 9202"),
        None
    );
}

#[tokio::test]
async fn the_wizard_walks_three_steps_and_a_review_to_a_customer_in_the_list_and_the_audit() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00708", Role::OnmTeam).await;
    let session = signed_in(&app, "00708").await;

    let start = page(&app, "/portal/customers/new", &session).await;
    let body = html(&start);
    assert_eq!(start.status, StatusCode::OK, "{body}");
    assert!(body.contains("Step 1 of 3: The person"), "{body}");

    let person = [
        ("first-name", "Wizardine"),
        ("last-name", "Ntlhoro"),
        ("phone", "+266 5800 7788"),
    ];
    let missing = submit(
        &app,
        "/portal/customers/new",
        &session,
        &[("step", "1"), ("go", "2"), ("first-name", "Wizardine")],
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&missing);
    assert!(body.contains(r#"id="last-name-error""#), "{body}");
    assert!(body.contains(r#"value="Wizardine""#), "{body}");

    let mut fields = vec![("step", "1"), ("go", "2")];
    fields.extend_from_slice(&person);
    let place = submit(&app, "/portal/customers/new", &session, &fields).await;
    let body = html(&place);
    assert_eq!(place.status, StatusCode::OK, "{body}");
    assert!(body.contains("Step 2 of 3: The place"), "{body}");
    assert!(
        body.contains(r#"<input type="hidden" name="first-name" value="Wizardine">"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<option value="MAK">MAK</option>"#),
        "{body}"
    );

    let mut fields = vec![
        ("step", "2"),
        ("go", "3"),
        ("concession-name", "MAK"),
        ("gps-y", "south"),
    ];
    fields.extend_from_slice(&person);
    let bad_place = submit(&app, "/portal/customers/new", &session, &fields).await;
    assert_eq!(bad_place.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad_place).contains(r#"id="gps-y-error""#));

    let mut fields = vec![
        ("step", "2"),
        ("go", "3"),
        ("concession-name", "MAK"),
        ("gps-y", "-29.31"),
        ("gps-x", "27.48"),
    ];
    fields.extend_from_slice(&person);
    let service = submit(&app, "/portal/customers/new", &session, &fields).await;
    assert_eq!(service.status, StatusCode::OK);
    assert!(html(&service).contains("Step 3 of 3: The service"));

    let mut everything = vec![
        ("concession-name", "MAK"),
        ("gps-y", "-29.31"),
        ("gps-x", "27.48"),
        ("customer-position", "HH"),
        ("date-service-connected", "2026-11-30"),
    ];
    everything.extend_from_slice(&person);
    let mut fields = vec![("step", "3"), ("go", "4")];
    fields.extend_from_slice(&everything);
    let review = submit(&app, "/portal/customers/new", &session, &fields).await;
    let body = html(&review);
    assert_eq!(review.status, StatusCode::OK, "{body}");
    assert!(
        body.contains("<dt>First name</dt><dd>Wizardine</dd>"),
        "{body}"
    );
    assert!(body.contains(r#"value="create""#), "{body}");
    assert!(
        audit(&app, "tblcustomer", "").await.is_empty(),
        "nothing written before Create"
    );

    let mut fields = vec![("step", "4"), ("go", "create")];
    fields.extend_from_slice(&everything);
    let created = submit(&app, "/portal/customers/new", &session, &fields).await;

    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", html(&created));
    let id = location(&created)
        .strip_prefix("/portal/customers/")
        .unwrap()
        .to_string();
    let list = html(&page(&app, "/portal/customers?q=Wizardine", &session).await);
    assert!(
        list.contains(&format!(r#"href="/portal/customers/{id}""#)),
        "{list}"
    );
    assert!(list.contains("Wizardine Ntlhoro"), "{list}");
    let found = audit(&app, "tblcustomer", &id).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["action"], "create");
    assert_eq!(found[0]["user_id"], "00708");
    let change = mutation(&app, &found[0]["id"]).await;
    assert_eq!(
        change["new_values"]["RECORD CREATED BY"], "CC Portal",
        "{change}"
    );
    assert_eq!(change["new_values"]["PHONE"], "58007788", "{change}");
}

#[tokio::test]
async fn assigning_a_meter_creates_the_meter_and_the_account_in_one_command() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00709", Role::OnmTeam).await;
    let session = signed_in(&app, "00709").await;

    let form = page(&app, "/portal/customers/9202/assign-meter", &session).await;
    let body = html(&form);
    assert_eq!(form.status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"<label for="meterid">Meter ID (required)</label>"#),
        "{body}"
    );

    for (fields, error_id) in [
        (
            vec![
                ("community", "MAS"),
                ("customer-type", "HH"),
                ("accountnumber", "0301MAS"),
            ],
            "meterid-error",
        ),
        (
            vec![
                ("meterid", "SMRSD-26-1"),
                ("community", "MAS"),
                ("customer-type", "HH"),
                ("accountnumber", "12"),
            ],
            "accountnumber-error",
        ),
        (
            vec![
                ("meterid", "SMRSD-26-1"),
                ("community", "MAS"),
                ("customer-type", "HH"),
                ("accountnumber", "0301MAS"),
                ("customer-connect-date", "tomorrow"),
            ],
            "customer-connect-date-error",
        ),
    ] {
        let reply = submit(
            &app,
            "/portal/customers/9202/assign-meter",
            &session,
            &fields,
        )
        .await;
        let body = html(&reply);
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{error_id}: {body}"
        );
        assert!(
            body.contains(&format!(r#"id="{error_id}""#)),
            "{error_id}: {body}"
        );
    }

    let assigned = submit(
        &app,
        "/portal/customers/9202/assign-meter",
        &session,
        &[
            ("meterid", "SMRSD-26-1"),
            ("community", "MAS"),
            ("customer-type", "HH"),
            ("accountnumber", "0301mas"),
            ("customer-connect-date", "2026-11-30"),
        ],
    )
    .await;

    assert_eq!(
        assigned.status,
        StatusCode::SEE_OTHER,
        "{}",
        html(&assigned)
    );
    assert_eq!(location(&assigned), "/portal/customers/9202");
    let detail = html(&page(&app, "/portal/customers/9202", &session).await);
    assert!(detail.contains("<li>0301MAS</li>"), "{detail}");
    assert_eq!(
        app.acdb_text("SELECT [accountnumber] FROM [tblmeter] WHERE [meterid] = 'SMRSD-26-1'")
            .as_deref(),
        Some("0301MAS")
    );
    assert_eq!(
        app.acdb_text(
            "SELECT [meterid] FROM [tblaccountnumbers] WHERE [accountnumber] = '0301MAS'"
        )
        .as_deref(),
        Some("SMRSD-26-1")
    );
    let meter = audit(&app, "tblmeter", "SMRSD-26-1").await;
    let account = audit(&app, "tblaccountnumbers", "0301MAS").await;
    assert_eq!((meter.len(), account.len()), (1, 1));
    assert_eq!(meter[0]["action"], "create");
    assert_eq!(account[0]["user_id"], "00709");
}

#[tokio::test]
async fn when_the_acdb_refuses_the_account_the_meter_is_not_created_either() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00710", Role::Superadmin).await;
    let session = signed_in(&app, "00710").await;

    let refused = submit(
        &app,
        "/portal/customers/9201/assign-meter",
        &session,
        &[
            ("meterid", "SMRSD-26-9"),
            ("community", "MAK"),
            ("customer-type", "HH"),
            ("accountnumber", "0999MAK"),
        ],
    )
    .await;

    let body = html(&refused);
    assert_eq!(refused.status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains(r#"id="accountnumber-error""#), "{body}");
    assert!(body.contains("account refused by the test"), "{body}");
    assert!(body.contains(r#"value="SMRSD-26-9""#), "{body}");
    assert_eq!(
        app.acdb_text("SELECT [meterid] FROM [tblmeter] WHERE [meterid] = 'SMRSD-26-9'"),
        None,
        "the meter went with the refused account"
    );
    assert!(audit(&app, "tblmeter", "SMRSD-26-9").await.is_empty());
}

/// A figure of `/api/customer-data/0201MAK`'s dashboard as the page writes it.
fn figure(dashboard: &Value, name: &str, dp: usize) -> String {
    format!("{:.dp$}", dashboard[name].as_f64().unwrap())
}

#[tokio::test]
async fn the_data_page_shows_the_api_figures_charts_and_the_transactions_sorted_and_paged() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00711", Role::Generic).await;
    let session = signed_in(&app, "00711").await;
    let token = app.employee("00712", Role::Generic).await;
    let api = app.get("/api/customer-data/0201MAK", Some(&token)).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    let dashboard = &api.body["dashboard"];

    let first = page(&app, "/portal/customers/9201/data", &session).await;

    let body = html(&first);
    assert_eq!(first.status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"<a href="/portal/customer-data" aria-current="page">Customer data</a>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<dd id="account-number">0201MAK</dd>"#),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            r#"<dd id="balance">{} kWh</dd>"#,
            figure(dashboard, "balance_kwh", 2)
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            r#"<dd id="average-use">{} kWh</dd>"#,
            figure(dashboard, "avg_kwh_per_day", 2)
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            r#"<dd id="total-lsl">{}</dd>"#,
            figure(dashboard, "total_lsl_all_time", 2)
        )),
        "{body}"
    );
    assert!(body.contains(r#"id="last-payment">LSL "#), "{body}");
    for chart in ["usage-7d-title", "usage-30d-title", "usage-12m-title"] {
        assert!(body.contains(chart), "{chart}: {body}");
    }
    assert!(body.contains("<svg"), "{body}");
    assert!(body.contains("30 transactions · page 1 of 2"), "{body}");
    assert_eq!(
        body.matches("<th scope=\"row\" class=\"n\">2025-01-")
            .count(),
        25
    );
    assert!(
        body.contains(r#"<th scope="col" class="n" aria-sort="descending">"#),
        "{body}"
    );
    assert!(
        !body.contains("add-transaction"),
        "a read-only role gets no form: {body}"
    );
    assert!(!body.contains("/edit?account="), "{body}");

    let second = html(&page(&app, "/portal/customers/9201/data?page=2", &session).await);
    assert!(second.contains("page 2 of 2"), "{second}");
    assert_eq!(
        second
            .matches("<th scope=\"row\" class=\"n\">2025-01-")
            .count(),
        5
    );
    assert!(
        second.contains("2025-01-01 09:00"),
        "the oldest come last: {second}"
    );

    let by_amount = html(
        &page(
            &app,
            "/portal/customers/9201/data?sort=amount&dir=asc",
            &session,
        )
        .await,
    );
    // Amounts are i * 3 mod 31 on day i: the smallest, 1.00, is of day 21.
    let first_row = by_amount
        .split(r#"<table id="transaction-list">"#)
        .nth(1)
        .and_then(|table| table.split("<tbody>").nth(1))
        .unwrap();
    assert!(
        first_row.starts_with(r#"<tr><th scope="row" class="n">2025-01-21 09:00</th><td>Payment</td><td class="n">1.00</td>"#),
        "{first_row}"
    );
    assert!(
        by_amount.contains(r#"aria-sort="ascending""#),
        "{by_amount}"
    );

    for (lookup, target) in [
        ("0201mak", "/portal/customers/9201/data?account=0201MAK"),
        ("9201", "/portal/customers/9201/data"),
    ] {
        let reply = page(
            &app,
            &format!("/portal/customer-data?account={lookup}"),
            &session,
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{lookup}");
        assert_eq!(location(&reply), target);
    }
    let nobody = page(&app, "/portal/customer-data?account=0888XYZ", &session).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert!(html(&nobody).contains(r#"id="lookup-error""#));
    let bad = page(&app, "/portal/customers/9201/data?sort=name", &session).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = page(&app, "/portal/customers/987654/data", &session).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn transactions_are_added_edited_and_deleted_through_the_writer_with_the_role_rules() {
    let app = TestApp::start_with(customers_with_a_ledger).await;
    app.add_employee("00713", Role::FinanceTeam).await;
    app.add_employee("00714", Role::OnmTeam).await;
    app.add_employee("00715", Role::Generic).await;
    let finance = signed_in(&app, "00713").await;
    let onm = signed_in(&app, "00714").await;
    let generic = signed_in(&app, "00715").await;
    let data = "/portal/customers/9201/data/transactions";

    let form = html(&page(&app, "/portal/customers/9201/data", &finance).await);
    assert!(
        form.contains(r#"<label for="transaction-amount">Amount (LSL) (required)</label>"#),
        "{form}"
    );
    assert!(form.contains(r#"name="rate-used" value="5.00""#), "{form}");

    let good = [
        ("account", "0201MAK"),
        ("transaction-date", "2025-02-01T08:15"),
        ("payment", "1"),
        ("transaction-amount", "50.00"),
        ("kwh-value", "10"),
        ("rate-used", "5.00"),
    ];
    for (name, value, error_id) in [
        ("transaction-amount", "", "transaction-amount-error"),
        ("transaction-amount", "fifty", "transaction-amount-error"),
        ("transaction-date", "01/02/2025", "transaction-date-error"),
        ("payment", "maybe", "payment-error"),
    ] {
        let fields: Vec<(&str, &str)> = good
            .iter()
            .map(|(k, v)| if *k == name { (*k, value) } else { (*k, *v) })
            .collect();
        let reply = submit(&app, data, &finance, &fields).await;
        let body = html(&reply);
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}={value}: {body}"
        );
        assert!(
            body.contains(&format!(r#"id="{error_id}""#)),
            "{name}: {body}"
        );
    }
    let refused = submit(&app, data, &generic, &good).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let added = submit(&app, data, &finance, &good).await;

    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", html(&added));
    assert_eq!(
        location(&added),
        "/portal/customers/9201/data?account=0201MAK"
    );
    let body = html(&page(&app, "/portal/customers/9201/data", &finance).await);
    assert!(body.contains("31 transactions"), "{body}");
    let created = audit(&app, "tblaccounthistory1", "").await;
    let created: Vec<&Value> = created.iter().filter(|m| m["action"] == "create").collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["user_id"], "00713");
    let txn = created[0]["record_id"].as_str().unwrap().to_string();
    assert!(
        body.contains(&format!("/data/transactions/{txn}/edit?account=0201MAK")),
        "{body}"
    );
    assert!(
        !body.contains("/delete?account="),
        "finance may not delete: {body}"
    );

    let edit = page(
        &app,
        &format!("{data}/{txn}/edit?account=0201MAK"),
        &finance,
    )
    .await;
    let body = html(&edit);
    assert_eq!(edit.status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"name="transaction-date" value="2025-02-01T08:15""#),
        "{body}"
    );
    let mut changed: Vec<(&str, &str)> = good.to_vec();
    changed[3] = ("transaction-amount", "55.00");
    let saved = submit(&app, &format!("{data}/{txn}/edit"), &finance, &changed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", html(&saved));
    let updates = audit(&app, "tblaccounthistory1", &txn).await;
    let update = updates.iter().find(|m| m["action"] == "update").unwrap();
    let update = mutation(&app, &update["id"]).await;
    assert_eq!(
        update["changed"],
        serde_json::json!(["transaction amount"]),
        "{update}"
    );

    let missing = page(
        &app,
        &format!("{data}/99999999/edit?account=0201MAK"),
        &finance,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let finance_delete = submit(
        &app,
        &format!("{data}/{txn}/delete"),
        &finance,
        &[("account", "0201MAK"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(finance_delete.status, StatusCode::FORBIDDEN);

    let question = page(&app, &format!("{data}/{txn}/delete?account=0201MAK"), &onm).await;
    assert_eq!(question.status, StatusCode::OK);
    assert!(html(&question).contains(&format!("Delete transaction {txn}?")));
    let deleted = submit(
        &app,
        &format!("{data}/{txn}/delete"),
        &onm,
        &[("account", "0201MAK"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", html(&deleted));
    let body = html(&page(&app, "/portal/customers/9201/data", &onm).await);
    assert!(body.contains("30 transactions"), "{body}");
    assert!(audit(&app, "tblaccounthistory1", &txn)
        .await
        .iter()
        .any(|m| m["action"] == "delete"));
}
