//! The tables browser, the schema listing and the exports, read from the `mirror` read model.

use axum::http::StatusCode;
use calamine::{Data, Reader, Xlsx};
use domain::auth::Role;
use serde_json::{json, Value};
use testkit::acdb::TestAcdb;

use crate::support::{Reply, TestApp};

/// A concession no generated row uses, so the fixture's rows can be selected alone.
const SITE: &str = "ZZQ";
const ACCOUNT: &str = "0091ZZQ";

fn fixture(acdb: &TestAcdb) {
    let customers = [
        (9101, "Lineo", "Moshoeshoe"),
        (9102, "Thabo", "Letsie"),
        (9103, "Palesa", "Mokhehle"),
        (9104, "Teboho", "Jonathan"),
        (9105, "Mpho", "Nthako"),
    ];
    for (id, first, last) in customers {
        acdb.execute(
            &format!("INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES ({id}, '{first}', '{last}', '{SITE}')"),
            &[],
        );
    }
    acdb.execute(
        &format!("INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('{ACCOUNT}', 9101)"),
        &[],
    );
    acdb.execute(
        "INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('0092ZZQ', 9102)",
        &[],
    );
    // Amounts whose text order (100.5 < 20 < 5) differs from their numeric order.
    let history = [
        (910001, "20.00", 1),
        (910002, "5.00", 0),
        (910003, "100.50", 1),
    ];
    for (id, amount, payment) in history {
        acdb.execute(
            &format!("INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [meterid], [transaction date], [transaction amount], [payment]) VALUES ({id}, '{ACCOUNT}', 'SMRSD-91', '2026-03-0{} 10:00:00', {amount}, {payment})", id - 910000),
            &[],
        );
    }
}

async fn fixture_app() -> (TestApp, String) {
    let app = TestApp::start_with(fixture).await;
    let token = app.employee("00200", Role::Generic).await;
    (app, token)
}

fn column(reply: &Reply, name: &str) -> Vec<Value> {
    reply.body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {}", reply.body))
        .iter()
        .map(|row| row[name].clone())
        .collect()
}

fn site_rows(extra: &str) -> String {
    format!("/api/tables/tblcustomer?filter_col=Concession%20name&filter_val={SITE}{extra}")
}

#[tokio::test]
async fn a_table_is_paged_in_key_order_with_its_total_and_page_count() {
    let (app, token) = fixture_app().await;

    let first = app.get(&site_rows("&limit=2"), Some(&token)).await;
    let last = app.get(&site_rows("&limit=2&page=3"), Some(&token)).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(column(&first, "CUSTOMER ID"), [json!(9101), json!(9102)]);
    assert_eq!(first.body["total"], 5);
    assert_eq!(first.body["pages"], 3);
    assert_eq!(first.body["page"], 1);
    assert_eq!(first.body["limit"], 2);
    assert_eq!(column(&last, "CUSTOMER ID"), [json!(9105)]);
    assert_eq!(first.body["rows"][0]["FIRST NAME"], "Lineo");
}

#[tokio::test]
async fn the_whole_table_counts_every_mirrored_row() {
    let (app, token) = fixture_app().await;
    let customers: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let reply = app
        .get("/api/tables/tblcustomer?limit=500&page=1", Some(&token))
        .await;

    assert_eq!(reply.body["total"], customers);
    assert_eq!(
        reply.body["rows"].as_array().unwrap().len() as i64,
        customers.min(500)
    );
}

#[tokio::test]
async fn rows_sort_by_any_column_either_way() {
    let (app, token) = fixture_app().await;

    let ascending = app.get(&site_rows("&sort=LAST%20NAME"), Some(&token)).await;
    let descending = app
        .get(&site_rows("&sort=last%20name&order=desc"), Some(&token))
        .await;

    let names = ["Jonathan", "Letsie", "Mokhehle", "Moshoeshoe", "Nthako"];
    assert_eq!(column(&ascending, "LAST NAME"), names.map(Value::from));
    let mut reversed = names;
    reversed.reverse();
    assert_eq!(column(&descending, "LAST NAME"), reversed.map(Value::from));
}

#[tokio::test]
async fn a_money_column_sorts_as_numbers_not_as_text() {
    let (app, token) = fixture_app().await;

    let reply = app
        .get(
            &format!("/api/tables/tblaccounthistory1?filter_col=accountnumber&filter_val={ACCOUNT}&sort=transaction%20amount"),
            Some(&token),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        column(&reply, "ID"),
        [json!(910002), json!(910001), json!(910003)]
    );
}

#[tokio::test]
async fn search_finds_text_in_any_column_ignoring_case() {
    let (app, token) = fixture_app().await;

    let reply = app
        .get("/api/tables/tblcustomer?search=moSHOE", Some(&token))
        .await;
    let wildcard = app
        .get("/api/tables/tblcustomer?search=%25", Some(&token))
        .await;

    assert_eq!(column(&reply, "CUSTOMER ID"), [json!(9101)]);
    assert_eq!(reply.body["total"], 1);
    // A `%` is looked for as itself, not as a wildcard.
    assert_eq!(wildcard.body["total"], 0);
}

#[tokio::test]
async fn filters_match_text_ignoring_case_and_numbers_and_days_by_value() {
    let (app, token) = fixture_app().await;

    let text = app
        .get(
            "/api/tables/tblcustomer?filter_col=FIRST%20NAME&filter_val=palesa",
            Some(&token),
        )
        .await;
    let int = app
        .get(
            "/api/tables/tblcustomer?filter_col=customer%20id&filter_val=9104",
            Some(&token),
        )
        .await;
    let number = app
        .get(
            "/api/tables/tblaccounthistory1?filter_col=transaction%20amount&filter_val=100.5",
            Some(&token),
        )
        .await;
    let day = app
        .get(
            &format!("/api/tables/tblaccounthistory1?filter_col=transaction%20date&filter_val=2026-03-02&search={ACCOUNT}"),
            Some(&token),
        )
        .await;
    let flag = app
        .get(
            &format!("/api/tables/tblaccounthistory1?filter_col=payment&filter_val=false&search={ACCOUNT}"),
            Some(&token),
        )
        .await;

    assert_eq!(column(&text, "CUSTOMER ID"), [json!(9103)]);
    assert_eq!(column(&int, "LAST NAME"), [json!("Jonathan")]);
    assert!(
        column(&number, "ID").contains(&json!(910003)),
        "{}",
        number.body
    );
    assert_eq!(column(&day, "ID"), [json!(910002)]);
    assert_eq!(column(&flag, "ID"), [json!(910002)]);
}

#[tokio::test]
async fn bad_listing_parameters_are_422_naming_the_parameter() {
    let (app, token) = fixture_app().await;
    let cases = [
        ("/api/tables/tblcustomer?limit=0", "limit"),
        ("/api/tables/tblcustomer?limit=501", "limit"),
        ("/api/tables/tblcustomer?page=0", "page"),
        ("/api/tables/tblcustomer?page=two", "page"),
        ("/api/tables/tblcustomer?order=sideways", "order"),
        ("/api/tables/tblcustomer?sort=shoe%20size", "sort"),
        ("/api/tables/tblcustomer?filter_val=x", "filter_col"),
        (
            "/api/tables/tblcustomer?filter_col=FIRST%20NAME",
            "filter_val",
        ),
        (
            "/api/tables/tblcustomer?filter_col=nonsense&filter_val=1",
            "filter_col",
        ),
        (
            "/api/tables/tblcustomer?filter_col=CUSTOMER%20ID&filter_val=abc",
            "filter_val",
        ),
        (
            "/api/tables/tblaccounthistory1?filter_col=transaction%20date&filter_val=31/31/2026",
            "filter_val",
        ),
        (
            "/api/tables/tblaccounthistory1?filter_col=payment&filter_val=maybe",
            "filter_val",
        ),
        ("/api/export/tblcustomer?format=pdf", "format"),
    ];
    for (path, parameter) in cases {
        let reply = app.get(path, Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            reply.body
        );
        assert!(
            reply.body.to_string().contains(parameter),
            "{path} should name {parameter}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn an_unknown_table_is_404_and_not_a_query() {
    let (app, token) = fixture_app().await;

    for path in [
        "/api/tables/tblsecrets",
        "/api/tables/tblcustomer;drop%20table%20x",
        "/api/tables/tblsecrets/1",
        "/api/schema/tables/tblsecrets/columns",
        "/api/export/tblsecrets",
    ] {
        let reply = app.get(path, Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
        assert!(reply.detail().contains("not found"), "{}", reply.body);
    }
}

#[tokio::test]
async fn a_record_is_read_by_its_key() {
    let (app, token) = fixture_app().await;

    let reply = app.get("/api/tables/tblcustomer/9103", Some(&token)).await;
    let account = app
        .get(
            &format!("/api/tables/tblaccountnumbers/{ACCOUNT}"),
            Some(&token),
        )
        .await;
    let missing = app.get("/api/tables/tblcustomer/99999", Some(&token)).await;
    let malformed = app.get("/api/tables/tblcustomer/abc", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["record"]["FIRST NAME"], "Palesa");
    assert_eq!(reply.body["primary_key"], "CUSTOMER ID");
    assert_eq!(
        account.body["record"]["customerid"], 9101,
        "{}",
        account.body
    );
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(malformed.status.is_client_error(), "{}", malformed.body);
}

#[tokio::test]
async fn a_change_in_access_shows_in_the_browser_after_one_poll() {
    let (app, token) = fixture_app().await;

    app.acdb.execute(
        "UPDATE [tblcustomer] SET [FIRST NAME] = 'Nthabiseng-Zzq' WHERE [CUSTOMER ID] = 9105",
        &[],
    );

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = app.get("/api/tables/tblcustomer/9105", Some(&token)).await;
        if reply.body["record"]["FIRST NAME"] == "Nthabiseng-Zzq" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", reply.body);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let found = app
        .get(
            "/api/tables/tblcustomer?search=NTHABISENG-zzq",
            Some(&token),
        )
        .await;
    assert_eq!(column(&found, "CUSTOMER ID"), [json!(9105)]);
}

#[tokio::test]
async fn a_customer_reads_only_their_own_customer_and_account_rows() {
    let app = TestApp::start_with(fixture).await;
    let token = app.customer_token(ACCOUNT).await;

    let customers = app.get("/api/tables/tblcustomer", Some(&token)).await;
    let accounts = app.get("/api/tables/tblaccountnumbers", Some(&token)).await;
    let own = app.get("/api/tables/tblcustomer/9101", Some(&token)).await;
    let other = app.get("/api/tables/tblcustomer/9102", Some(&token)).await;
    let other_account = app
        .get("/api/tables/tblaccountnumbers/0092ZZQ", Some(&token))
        .await;

    assert_eq!(customers.status, StatusCode::OK, "{}", customers.body);
    assert_eq!(column(&customers, "CUSTOMER ID"), [json!(9101)]);
    assert_eq!(customers.body["total"], 1);
    assert_eq!(column(&accounts, "accountnumber"), [json!(ACCOUNT)]);
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(other_account.status, StatusCode::FORBIDDEN);
    for path in [
        "/api/tables/tblmeter",
        "/api/tables/tblaccounthistory1",
        "/api/schema/tables",
        "/api/schema/tables/tblcustomer/columns",
        "/api/export/tblcustomer",
    ] {
        let reply = app.get(path, Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn every_browser_endpoint_needs_a_token() {
    let (app, _) = fixture_app().await;
    for path in [
        "/api/tables/tblcustomer",
        "/api/tables/tblcustomer/9101",
        "/api/schema/tables",
        "/api/schema/tables/tblcustomer/columns",
        "/api/export/tblcustomer",
    ] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn the_schema_lists_tables_with_counts_and_columns_with_types() {
    let (app, token) = fixture_app().await;
    let customers: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let tables = app.get("/api/schema/tables", Some(&token)).await;
    let columns = app
        .get("/api/schema/tables/tblcustomer/columns", Some(&token))
        .await;

    assert_eq!(tables.status, StatusCode::OK, "{}", tables.body);
    let customer_table = tables
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "tblcustomer")
        .expect("tblcustomer is listed");
    assert_eq!(customer_table["row_count"], customers);
    let columns = columns.body.as_array().unwrap();
    assert_eq!(columns[0]["name"], "CUSTOMER ID");
    assert_eq!(columns[0]["type_name"], "INTEGER");
    assert_eq!(columns[0]["nullable"], false);
    let first_name = columns.iter().find(|c| c["name"] == "FIRST NAME").unwrap();
    assert_eq!(first_name["type_name"], "VARCHAR");
    assert_eq!(customer_table["column_count"], columns.len());
}

#[tokio::test]
async fn a_csv_export_streams_the_selected_rows_with_a_header() {
    let (app, token) = fixture_app().await;

    let reply = app
        .get(
            &format!("/api/export/tblaccounthistory1?format=csv&filter_col=accountnumber&filter_val={ACCOUNT}"),
            Some(&token),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(reply.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("tblaccounthistory1.csv"));
    let mut csv = csv::Reader::from_reader(reply.bytes.as_slice());
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "ID");
    let id = 0;
    let payment = header.iter().position(|h| h == "payment").unwrap();
    let amount = header
        .iter()
        .position(|h| h == "transaction amount")
        .unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let cells: Vec<(&str, &str)> = rows.iter().map(|r| (&r[id], &r[payment])).collect();
    assert_eq!(
        cells,
        [("910001", "True"), ("910002", "False"), ("910003", "True")]
    );
    assert_eq!(rows[2][amount].parse::<f64>().unwrap(), 100.5);
}

#[tokio::test]
async fn an_export_of_a_whole_table_has_every_row() {
    let (app, token) = fixture_app().await;
    let readings: i64 = sqlx::query_scalar(
        "select count(*) from read_model.mirror_rows where table_name = 'tblmeterdata1'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();

    let reply = app.get("/api/export/tblmeterdata1", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::OK);
    let rows = csv::Reader::from_reader(reply.bytes.as_slice())
        .records()
        .count() as i64;
    // More rows than one page of the stream, so the keyset paging is exercised.
    assert!(readings > 1_000, "the fixture should hold many readings");
    assert_eq!(rows, readings);
}

#[tokio::test]
async fn an_xlsx_export_opens_as_a_workbook_with_the_same_cells() {
    let (app, token) = fixture_app().await;

    let reply = app
        .get(
            &format!("/api/export/tblcustomer?format=xlsx&filter_col=Concession%20name&filter_val={SITE}"),
            Some(&token),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("tblcustomer.xlsx"));
    let mut workbook = Xlsx::new(std::io::Cursor::new(reply.bytes.clone())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 6, "a header and five customers");
    assert_eq!(rows[0][0], Data::String("CUSTOMER ID".into()));
    let first_name = rows[0]
        .iter()
        .position(|c| *c == Data::String("FIRST NAME".into()))
        .unwrap();
    assert_eq!(rows[1][first_name], Data::String("Lineo".into()));
    assert_eq!(rows[5][first_name], Data::String("Mpho".into()));
}
