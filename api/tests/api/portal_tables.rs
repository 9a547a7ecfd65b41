//! The portal's tables browser and exports: the tables, a table's rows 25 to a page, a record,
//! the schema, CSV and XLSX files, and customers refused.

use axum::http::StatusCode;
use calamine::{Data, Reader, Xlsx};
use domain::auth::Role;
use testkit::acdb::TestAcdb;

use crate::portal::{cookie_value, html, login_form, page, post, set_cookie, signed_in};
use crate::support::{TestApp, CUSTOMER_PASSWORD};

/// A concession no generated row uses, so the fixture's customers can be searched alone.
const SITE: &str = "ZZT";
const ACCOUNT: &str = "0093ZZT";

fn fixture(acdb: &TestAcdb) {
    let customers = [
        (9301, "Lineo", "Moshoeshoe"),
        (9302, "Thabo", "Letsie"),
        (9303, "Palesa", "Mokhehle"),
    ];
    for (id, first, last) in customers {
        acdb.execute(
            &format!("INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES ({id}, '{first}', '{last}', '{SITE}')"),
            &[],
        );
    }
    acdb.execute(
        &format!("INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('{ACCOUNT}', 9301)"),
        &[],
    );
}

async fn staff_app() -> (TestApp, String) {
    let app = TestApp::start_with(fixture).await;
    app.add_employee("00601", Role::Generic).await;
    let session = signed_in(&app, "00601").await;
    (app, session)
}

/// `n` as the portal writes counts: thousands separated by commas.
fn grouped(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The rows of the page's `<tbody>`s.
fn body_rows(page: &str) -> usize {
    page.split("<tbody>")
        .skip(1)
        .map(|body| {
            body.split("</tbody>")
                .next()
                .unwrap()
                .matches("<tr>")
                .count()
        })
        .sum()
}

/// Signs the customer of [`ACCOUNT`] in through the form; the session's `Cookie` header.
async fn customer_session(app: &TestApp) -> String {
    app.customer_token(ACCOUNT).await;
    let (cookies, csrf) = login_form(app).await;
    let signed = post(
        app,
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
    format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&signed, "ccare_session").unwrap())
    )
}

#[tokio::test]
async fn the_tables_page_lists_every_mirrored_table_with_its_row_count() {
    let (app, session) = staff_app().await;
    let customers: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let reply = page(&app, "/portal/tables", &session).await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert!(
        body.contains(r#"<a href="/portal/tables" aria-current="page">Tables</a>"#),
        "{body}"
    );
    let row = body
        .split("<tr>")
        .find(|row| row.contains(r#"href="/portal/tables/tblcustomer""#))
        .expect("a row for tblcustomer");
    assert!(
        row.contains(&format!(r#"<td class="n">{}</td>"#, grouped(customers))),
        "{row}"
    );
    assert!(body.contains(r#"href="/portal/tables/tblmeterdata1""#));
    assert!(body.contains(r#"href="/portal/export?table=tblcustomer&amp;format=xlsx""#));
}

#[tokio::test]
async fn a_table_s_rows_come_25_to_a_page_with_every_column_and_paging_links() {
    let (app, session) = staff_app().await;
    let readings: i64 = sqlx::query_scalar(
        "select count(*) from read_model.mirror_rows where table_name = 'tblmeterdata1'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let columns: Vec<String> = sqlx::query_scalar(
        "select column_name from read_model.mirror_columns where table_name = 'tblmeterdata1'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        readings > 50,
        "the fixture should hold a few pages of readings"
    );
    let pages = (readings + 24) / 25;

    let first = page(&app, "/portal/tables/tblmeterdata1", &session).await;
    let second = page(&app, "/portal/tables/tblmeterdata1?page=2", &session).await;
    let last = page(
        &app,
        &format!("/portal/tables/tblmeterdata1?page={pages}"),
        &session,
    )
    .await;

    assert_eq!(first.status, StatusCode::OK);
    let body = html(&first);
    assert_eq!(body_rows(&body), 25);
    for column in &columns {
        assert!(
            body.contains(&format!(r#"<th scope="col">{column}</th>"#)),
            "{column}: {body}"
        );
    }
    assert!(
        body.contains(&format!(
            "{} rows · page 1 of {}",
            grouped(readings),
            grouped(pages)
        )),
        "{body}"
    );
    assert!(
        body.contains(r#"href="/portal/tables/tblmeterdata1?page=2" rel="next""#),
        "{body}"
    );
    assert!(!body.contains(r#"rel="prev""#));
    // A reading's key is its meter and time: its link opens it.
    let marker = r#"href="/portal/tables/tblmeterdata1/records/"#;
    let start = body.find(marker).expect("a record link") + r#"href=""#.len();
    let link = body[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let record = page(&app, &link, &session).await;
    assert_eq!(record.status, StatusCode::OK, "{link}: {}", html(&record));
    assert_eq!(body_rows(&html(&second)), 25);
    assert!(html(&second).contains(r#"href="/portal/tables/tblmeterdata1?page=1" rel="prev""#));
    let last = html(&last);
    assert_eq!(body_rows(&last) as i64, readings - (pages - 1) * 25);
    assert!(!last.contains(r#"rel="next""#));
}

#[tokio::test]
async fn a_search_narrows_the_rows_and_is_kept_in_the_paging_and_export_links() {
    let (app, session) = staff_app().await;

    let reply = page(
        &app,
        &format!("/portal/tables/tblcustomer?search={SITE}"),
        &session,
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert_eq!(body_rows(&body), 3, "{body}");
    assert!(body.contains("3 rows · page 1 of 1"), "{body}");
    assert!(body.contains(&format!(r#"value="{SITE}""#)));
    assert!(
        body.contains(&format!(
            r#"href="/portal/export?table=tblcustomer&amp;format=csv&amp;search={SITE}""#
        )),
        "{body}"
    );
}

#[tokio::test]
async fn a_bad_page_number_is_refused_with_422_and_an_unknown_table_with_404() {
    let (app, session) = staff_app().await;

    let bad_page = page(&app, "/portal/tables/tblcustomer?page=x", &session).await;
    let unknown = page(&app, "/portal/tables/tblnothing", &session).await;

    assert_eq!(bad_page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&bad_page);
    assert!(body.contains(r#"id="search-error""#), "{body}");
    assert!(body.contains("There is no such page"), "{body}");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(html(&unknown).contains("tblnothing"));
}

#[tokio::test]
async fn a_row_links_to_its_record_page_which_shows_every_column() {
    let (app, session) = staff_app().await;

    let rows = page(
        &app,
        &format!("/portal/tables/tblcustomer?search={SITE}"),
        &session,
    )
    .await;
    let record = page(&app, "/portal/tables/tblcustomer/records/9301", &session).await;
    let missing = page(&app, "/portal/tables/tblcustomer/records/999999", &session).await;

    assert!(
        html(&rows).contains(r#"<a href="/portal/tables/tblcustomer/records/9301">9301</a>"#),
        "{}",
        html(&rows)
    );
    assert_eq!(record.status, StatusCode::OK);
    let body = html(&record);
    assert!(body.contains("<dt>FIRST NAME</dt><dd>Lineo</dd>"), "{body}");
    assert!(
        body.contains("<dt>LAST NAME</dt><dd>Moshoeshoe</dd>"),
        "{body}"
    );
    assert!(body.contains(&format!("<dd>{SITE}</dd>")), "{body}");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_schema_page_lists_each_table_with_its_columns_and_types() {
    let (app, session) = staff_app().await;

    let reply = page(&app, "/portal/schema", &session).await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = html(&reply);
    assert!(body.contains(r#"<h2 id="table-tblcustomer">"#), "{body}");
    let customer = body
        .split(r#"<h2 id="table-tblcustomer">"#)
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(
        customer.contains(r#"<th scope="row">FIRST NAME</th><td>VARCHAR</td><td>Yes</td>"#),
        "{customer}"
    );
    assert!(
        customer.contains(r#"<th scope="row">CUSTOMER ID</th><td>INTEGER</td><td>No (key)</td>"#),
        "{customer}"
    );
}

#[tokio::test]
async fn a_csv_export_is_a_file_with_the_header_row_and_the_rows_found() {
    let (app, session) = staff_app().await;

    let reply = page(
        &app,
        &format!("/portal/export?table=tblcustomer&format=csv&search={SITE}"),
        &session,
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(reply.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("tblcustomer.csv"));
    let mut csv = csv::Reader::from_reader(reply.bytes.as_slice());
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "CUSTOMER ID");
    assert!(header.iter().any(|h| h == "FIRST NAME"));
    let ids: Vec<String> = csv.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(ids, ["9301", "9302", "9303"]);
}

#[tokio::test]
async fn an_xlsx_export_is_a_workbook_with_a_bold_header_row() {
    let (app, session) = staff_app().await;

    let reply = page(
        &app,
        &format!("/portal/export?table=tblcustomer&format=xlsx&search={SITE}"),
        &session,
    )
    .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", html(&reply));
    assert_eq!(
        reply.headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut workbook = Xlsx::new(std::io::Cursor::new(reply.bytes.clone())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 4, "a header and three customers");
    assert_eq!(rows[0][0], Data::String("CUSTOMER ID".into()));
}

#[tokio::test]
async fn an_export_in_an_unknown_format_or_of_an_unknown_table_is_refused() {
    let (app, session) = staff_app().await;

    let format = page(
        &app,
        "/portal/export?table=tblcustomer&format=pdf",
        &session,
    )
    .await;
    let table = page(&app, "/portal/export?table=tblnothing&format=csv", &session).await;

    assert_eq!(format.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&format).contains("format"), "{}", html(&format));
    assert_eq!(table.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_customer_is_refused_every_tables_page_and_export() {
    let app = TestApp::start_with(fixture).await;
    let session = customer_session(&app).await;

    for path in [
        "/portal/tables",
        "/portal/tables/tblcustomer",
        "/portal/tables/tblcustomer/records/9301",
        "/portal/schema",
        "/portal/export?table=tblcustomer&format=csv",
    ] {
        let reply = page(&app, path, &session).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        let body = html(&reply);
        assert!(body.contains("This page is for staff"), "{path}: {body}");
        assert!(!body.contains("Mokhehle"), "{path}: {body}");
    }
}

#[tokio::test]
async fn the_tables_need_a_session() {
    let app = TestApp::start().await;

    let reply = page(&app, "/portal/export?table=tblcustomer", "").await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/portal/login"));
}
