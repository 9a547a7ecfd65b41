//! The portal's read-only customer pages: the search with its site filter and paging, one
//! customer with their accounts and tickets, the 404 and the staff-only page.

use axum::http::StatusCode;
use domain::auth::Role;
use domain::ticket::Priority;

use testkit::acdb::TestAcdb;

use crate::portal::{html, page, signed_in};
use crate::support::TestApp;

/// Two customers sharing a rare last name at two sites, one with a script for a first name.
fn two_customers(acdb: &TestAcdb) {
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name], [PLOT NUMBER], [PHONE], [DATE SERVICE CONNECTED], [DATE SERVICE TERMINATED]) VALUES (9201, 'Palesa', 'Qwertyane', 'MAK', 'MAK 0042 HH', '58123499', '2021-03-04', '2024-05-06')",
        &[],
    );
    acdb.execute(
        "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES (9202, '<script>alert(2)</script>', 'Qwertyane', 'MAS')",
        &[],
    );
    acdb.execute(
        "INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('0201MAK', 9201)",
        &[],
    );
}

#[tokio::test]
async fn an_employee_searches_by_name_and_sees_the_matches_escaped() {
    let app = TestApp::start_with(two_customers).await;
    app.add_employee("00601", Role::Generic).await;
    let session = signed_in(&app, "00601").await;

    let reply = page(&app, "/portal/customers?q=qwertyane", &session).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    let body = html(&reply);
    assert!(
        body.contains(r#"<label for="q">Name, id, plot, phone or account</label>"#),
        "{body}"
    );
    assert!(
        body.contains("2 customers found, by id · page 1 of 1"),
        "{body}"
    );
    assert!(
        body.contains(r#"<th scope="row" class="n"><a href="/portal/customers/9201">9201</a></th><td>Palesa Qwertyane</td><td>MAK</td><td>+26658123499</td><td>0201MAK</td><td>Yes</td>"#),
        "{body}"
    );
    assert!(body.contains(r#"href="/portal/customers/9202""#), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script"), "{body}");
    assert!(
        body.contains(r#"<a href="/portal/customers" aria-current="page">Customers</a>"#),
        "{body}"
    );
    assert!(body.contains(r#"value="qwertyane""#), "{body}");
}

#[tokio::test]
async fn the_site_filter_narrows_the_matches() {
    let app = TestApp::start_with(two_customers).await;
    app.add_employee("00602", Role::Generic).await;
    let session = signed_in(&app, "00602").await;

    let reply = page(&app, "/portal/customers?q=Qwertyane&site=mas", &session).await;
    let site_only = page(&app, "/portal/customers?site=MAS", &session).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    let body = html(&reply);
    assert!(body.contains("1 customers found"), "{body}");
    assert!(body.contains(r#"href="/portal/customers/9202""#), "{body}");
    assert!(!body.contains(r#"href="/portal/customers/9201""#), "{body}");
    assert!(body.contains(r#"value="MAS""#), "{body}");
    let listed = html(&site_only);
    assert_eq!(site_only.status, StatusCode::OK, "{listed}");
    assert!(
        listed.contains(r#"href="/portal/customers/9202""#),
        "{listed}"
    );
    assert!(
        !listed.contains(r#"href="/portal/customers/9201""#),
        "{listed}"
    );
}

#[tokio::test]
async fn a_bad_page_number_site_or_query_shows_the_error_beside_the_form() {
    let app = TestApp::start_with(two_customers).await;
    app.add_employee("00603", Role::Generic).await;
    let session = signed_in(&app, "00603").await;

    for (path, error) in [
        ("/portal/customers?q=Qwertyane&page=x", "page"),
        ("/portal/customers?q=Qwertyane&page=0", "page"),
        (
            "/portal/customers?q=Qwertyane&page=999999999999999999999",
            "page",
        ),
        ("/portal/customers?q=Q", "q: must be at least 2 characters"),
        ("/portal/customers?q=Qwertyane&site=%3Cb%3E", "site:"),
    ] {
        let reply = page(&app, path, &session).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let body = html(&reply);
        assert!(
            body.contains(r#"<p class="error" id="search-error" role="alert">"#),
            "{path}: {body}"
        );
        assert!(body.contains(error), "{path}: {body}");
        assert!(!body.contains("customer-list"), "{path}: {body}");
        assert!(!body.contains("<b>"), "{path}: {body}");
    }
    // No search: every customer, paged.
    let all = page(&app, "/portal/customers", &session).await;
    assert_eq!(all.status, StatusCode::OK);
    let body = html(&all);
    assert!(body.contains("customer-list"), "{body}");
    assert!(
        body.contains("2 customers found, by id · page 1 of 1"),
        "{body}"
    );
}

#[tokio::test]
async fn the_detail_page_shows_the_fields_accounts_and_tickets() {
    let app = TestApp::start_with(two_customers).await;
    let number = app.open_ticket("MAK", Priority::P2, None, Some(9201)).await;
    let other = app.open_ticket("MAK", Priority::P2, None, Some(9202)).await;
    app.add_employee("00604", Role::FinanceTeam).await;
    let session = signed_in(&app, "00604").await;

    let reply = page(&app, "/portal/customers/9201", &session).await;
    let escaped = page(&app, "/portal/customers/9202", &session).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    let body = html(&reply);
    assert!(body.contains("<h1>Customer 9201</h1>"), "{body}");
    for fact in [
        "<dt>Name</dt><dd>Palesa Qwertyane</dd>",
        "<dt>Plot number</dt><dd>MAK 0042 HH</dd>",
        "<dt>Concession</dt><dd>MAK</dd>",
        "<dt>Site</dt><dd>MAK</dd>",
        "<dt>Phones</dt><dd>+26658123499</dd>",
        "<dt>Connected</dt><dd>2021-03-04</dd>",
        "<dt>Terminated on</dt><dd>2024-05-06</dd>",
        "<dt>Terminated</dt><dd>Yes</dd>",
    ] {
        assert!(body.contains(fact), "{fact} not in {body}");
    }
    assert!(
        body.contains(r#"<ul id="account-list"><li>0201MAK</li></ul>"#),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            r#"<th scope="row"><a href="/portal/tickets/{number}">{number}</a></th><td>Open</td><td>P2</td><td>Customer reports no power.</td>"#
        )),
        "{body}"
    );
    assert!(!body.contains(&other.to_string()), "{body}");
    let body = html(&escaped);
    assert_eq!(escaped.status, StatusCode::OK, "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(2)&lt;/script&gt; Qwertyane"),
        "{body}"
    );
    assert!(!body.contains("<script"), "{body}");
}

#[tokio::test]
async fn the_detail_page_lists_the_customers_meters_and_the_changes_made_to_their_row() {
    let app = TestApp::start_with(|acdb| {
        two_customers(acdb);
        acdb.execute(
            "INSERT INTO [tblmeter] ([meterid], [accountnumber], [customer id], [community], [customer type], [customer connect date]) VALUES ('SMRSD-26-00000201', '0201MAK', 9201, 'MAK', 'HH', '2021-03-04')",
            &[],
        );
    })
    .await;
    let token = app.employee("00606", Role::OnmTeam).await;
    let session = signed_in(&app, "00606").await;
    let unchanged = page(&app, "/portal/customers/9202", &session).await;
    let edit = app
        .put(
            "/api/tables/tblcustomer/9201",
            Some(&token),
            serde_json::json!({"data": {"CITY": "Roma"}}),
        )
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.body);
    let mutation = edit.body["mutation_id"].as_i64().unwrap();

    let reply = page(&app, "/portal/customers/9201", &session).await;

    let body = html(&reply);
    assert_eq!(reply.status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"<th scope="row">SMRSD-26-00000201</th><td>0201MAK</td><td>MAK</td><td>HH</td><td>2021-03-04</td><td>tblmeter</td>"#),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            r#"<th scope="row"><a href="/portal/mutations/{mutation}">{mutation}</a></th>"#
        )),
        "{body}"
    );
    assert!(
        body.contains("<td>UPDATE</td>") || body.contains("<td>update</td>"),
        "{body}"
    );
    assert!(body.contains("<td>CITY</td>"), "{body}");
    assert!(
        body.contains(r#"href="/portal/audit/records/tblcustomer/9201""#),
        "{body}"
    );
    let body = html(&unchanged);
    assert!(body.contains("No meter names this customer."), "{body}");
}

#[tokio::test]
async fn an_unknown_or_non_numeric_customer_id_gets_the_404_page() {
    let app = TestApp::start().await;
    app.add_employee("00605", Role::OnmTeam).await;
    let session = signed_in(&app, "00605").await;

    let unknown = page(&app, "/portal/customers/987654321", &session).await;
    let malformed = page(&app, "/portal/customers/not-an-id", &session).await;

    for reply in [&unknown, &malformed] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(html(reply).contains("No such customer"), "{}", html(reply));
    }
}

#[tokio::test]
async fn a_customer_session_gets_the_staff_only_page_on_the_customer_pages() {
    let app = TestApp::start_with(two_customers).await;
    let token = app.customer_token("0201MAK").await;
    let session = format!("ccare_session={token}");

    let list = page(&app, "/portal/customers?q=Qwertyane", &session).await;
    let detail = page(&app, "/portal/customers/9202", &session).await;

    for reply in [&list, &detail] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let body = html(reply);
        assert!(body.contains("This page is for staff"), "{body}");
        assert!(!body.contains("alert(2)"), "{body}");
    }
}
