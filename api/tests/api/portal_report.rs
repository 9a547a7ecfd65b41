//! The portal's O&M report and Financial pages: every figure as an SVG with its numbers, on the
//! hand-computed fixture of `reports.rs` (`support::report_ledger` and a meter register), the
//! quarter and site selectors and their refusals, the CSV and PDF downloads, and who may read
//! them.

use axum::http::StatusCode;
use domain::auth::Role;
use testkit::acdb::TestAcdb;

use crate::portal::{cookie_value, html, login_form, page, post, set_cookie, signed_in};
use crate::support::{report_ledger, TestApp, CUSTOMER_PASSWORD};

/// The ledger and customers of [`report_ledger`], and typed meters with a few readings.
fn fixture(acdb: &TestAcdb) {
    report_ledger(acdb);
    for (meter, account, kind, community) in [
        ("M1", "0001MAK", "HH", "MAK"),
        ("M2", "0002MAK", "SME", "MAK"),
        ("M3", "0001MAS", "HH", "MAS"),
    ] {
        acdb.execute(
            &format!(
                "INSERT INTO [Copy Of tblmeter] ([meterid], [accountnumber], [customer type], [community]) VALUES ('{meter}', '{account}', '{kind}', '{community}')"
            ),
            &[],
        );
    }
    for (meter, at, power, community) in [
        ("M1", "2025-03-01 10:10:00", "1.0", "MAK"),
        ("M1", "2025-03-02 10:20:00", "3.0", "MAK"),
        ("M2", "2025-03-01 10:30:00", "4.0", "MAK"),
        ("M3", "2025-03-01 10:40:00", "2.0", "MAS"),
    ] {
        acdb.execute(
            &format!(
                "INSERT INTO [tblmeterdata1] ([meterid], [whdatetime], [powerkW], [community]) VALUES ('{meter}', '{at}', {power}, '{community}')"
            ),
            &[],
        );
    }
}

async fn staff_app() -> (TestApp, String) {
    let app = TestApp::start_with(fixture).await;
    app.add_employee("00710", Role::Generic).await;
    let session = signed_in(&app, "00710").await;
    (app, session)
}

/// The page at `path`, which must answer 200.
async fn ok_page(app: &TestApp, path: &str, session: &str) -> String {
    let reply = page(app, path, session).await;
    let body = html(&reply);
    assert_eq!(reply.status, StatusCode::OK, "{path}: {body}");
    body
}

/// The section of `body` of the figure `id` (from its heading to the next section).
fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!(r#"aria-labelledby="figure-{id}""#))
        .unwrap_or_else(|| panic!("no figure {id} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</section>").unwrap()]
}

/// The page objects of a PDF (not its page tree, `/Type /Pages`).
fn pdf_pages(pdf: &str) -> usize {
    pdf.match_indices("/Type /Page")
        .filter(|(i, m)| !pdf[i + m.len()..].starts_with('s'))
        .count()
}

const REPORT_FIGURES: &[(&str, &str)] = &[
    ("table-1", "Table 1: Portfolio Site Overview"),
    ("1", "Figure 1: Customer Statistics by Concession"),
    ("2", "Figure 2: Customer Connection Growth"),
    ("3", "Figure 3: Electricity Consumption by Site"),
    ("4", "Figure 4: Revenue by Site"),
    ("5", "Figure 5: Cumulative Electricity Consumed"),
    ("6", "Figure 6: Cumulative Electricity Sales"),
    ("7", "Figure 7: Quarterly Consumption"),
    ("8", "Figure 8: Quarterly Sales"),
    ("9", "Figure 9: Average Daily Consumption per Customer"),
    ("10", "Figure 10: Average Daily Sales per Customer"),
    (
        "11",
        "Figure 11: Average Daily Load Curves by Customer Type",
    ),
    (
        "11b",
        "Figure 11b: Average Daily Consumption by Customer Type",
    ),
    ("12", "Figure 12: Total Consumption by Customer Type"),
    ("13", "Figure 13: Quarterly Consumption by Customer Type"),
];

#[tokio::test]
async fn the_report_shows_every_figure_as_an_image_with_its_hand_computed_numbers() {
    let (app, session) = staff_app().await;

    let body = ok_page(&app, "/portal/report", &session).await;

    for (id, heading) in REPORT_FIGURES {
        let figure = section(&body, id);
        assert!(
            figure.contains(&format!(
                r#"<h2 id="figure-{id}">{}"#,
                heading.replace('&', "&amp;")
            )),
            "{figure}"
        );
        if *id != "table-1" {
            assert!(
                figure.contains(
                    r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img""#
                ),
                "{figure}"
            );
            assert!(figure.contains("<title id="), "{figure}");
        }
        assert!(
            figure.contains(&format!(r#"href="/portal/report/figures/{id}.csv""#)),
            "{figure}"
        );
        assert!(
            figure.contains(&format!(r#"href="/portal/report/figures/{id}.pdf""#)),
            "{figure}"
        );
    }
    assert!(
        body.contains(r#"<a href="/portal/report" aria-current="page">O&amp;M report</a>"#),
        "{body}"
    );
    // Figure 4, all quarters: MAK 100 + 50.50 + 30 + 0 + 40 + 60 + 7; MAS −10 + 0.125.
    let revenue = section(&body, "4");
    assert!(
        revenue.contains(r#"<tr><th scope="row">MAK</th><td class="n">287.50</td></tr>"#),
        "{revenue}"
    );
    assert!(
        revenue.contains(r#"<tr><th scope="row">MAS</th><td class="n">-9.88</td></tr>"#),
        "{revenue}"
    );
    // Figure 8: the dated rows of every account, the blank account's 1,000 included.
    let sales = section(&body, "8");
    assert!(
        sales.contains(r#"<tr><th scope="row">2025 Q1</th><td class="n">1,180.50</td></tr>"#),
        "{sales}"
    );
    // Figure 11: hour 10 of HH is the mean of 1.0, 3.0 (MAK) and 2.0 (MAS); SME's is 4.0.
    let curves = section(&body, "11");
    assert!(curves.contains(r#"<tr><th scope="row">10:00</th><td class="n">2.0000</td><td class="n">4.0000</td></tr>"#), "{curves}");
    // Table 1 and the cards.
    let sites = section(&body, "table-1");
    assert!(
        sites.contains(
            r#"<th scope="row">1</th><td>MAK</td><td>MAK</td><td>Maseru</td><td class="n">3</td>"#
        ),
        "{sites}"
    );
    assert!(
        body.contains(r#"<dd id="total-customers">7<small>6 active</small></dd>"#),
        "{body}"
    );
}

#[tokio::test]
async fn the_quarter_selector_narrows_the_figures_and_ends_the_trends_there() {
    let (app, session) = staff_app().await;

    let body = ok_page(&app, "/portal/report?quarter=2025+Q2", &session).await;

    assert!(
        body.contains(r#"<option value="2025 Q2" selected>2025 Q2</option>"#),
        "{body}"
    );
    let revenue = section(&body, "4");
    assert!(
        revenue.contains(r#"<tr><th scope="row">MAK</th><td class="n">40.00</td></tr>"#),
        "{revenue}"
    );
    assert!(
        revenue.contains(r#"<tr><th scope="row">MAS</th><td class="n">-10.00</td></tr>"#),
        "{revenue}"
    );
    let customers = section(&body, "1");
    assert!(customers.contains("New in 2025 Q2"), "{customers}");
    let sales = section(&body, "8");
    assert!(sales.contains(">2025 Q2</th>"), "{sales}");
    assert!(!sales.contains(">2025 Q3</th>"), "{sales}");
    assert!(
        section(&body, "3").contains(r#"href="/portal/report/figures/3.csv?quarter=2025%20Q2""#)
    );
}

#[tokio::test]
async fn a_quarter_or_site_that_is_not_one_is_refused_beside_its_field() {
    let (app, session) = staff_app().await;

    let quarter = page(&app, "/portal/report?quarter=2025+Q9", &session).await;
    let site = page(&app, "/portal/report?site=M%21", &session).await;
    let download = page(&app, "/portal/report/figures/3.csv?quarter=soon", &session).await;

    assert_eq!(quarter.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = html(&quarter);
    assert!(
        body.contains(r#"aria-describedby="quarter-error""#),
        "{body}"
    );
    assert!(
        body.contains(r#"<p class="error" id="quarter-error">“2025 Q9” is not a quarter"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<option value="2025 Q9" selected>2025 Q9</option>"#),
        "{body}"
    );
    assert!(!body.contains("<svg"), "{body}");
    assert_eq!(site.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html(&site).contains(r#"<p class="error" id="site-error">"#),
        "{}",
        html(&site)
    );
    assert_eq!(download.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_figure_s_csv_has_its_header_and_a_row_per_category() {
    let (app, session) = staff_app().await;

    let revenue = page(&app, "/portal/report/figures/4.csv", &session).await;
    let q2 = page(
        &app,
        "/portal/report/figures/4.csv?quarter=2025%20Q2",
        &session,
    )
    .await;
    let mas_curves = page(&app, "/portal/report/figures/11.csv?site=mas", &session).await;
    let types = page(&app, "/portal/report/figures/12.csv", &session).await;
    let missing = page(&app, "/portal/report/figures/99.csv", &session).await;

    assert_eq!(revenue.status, StatusCode::OK);
    assert_eq!(revenue.headers["content-type"], "text/csv; charset=utf-8");
    assert!(revenue.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(html(&revenue), "Site,LSL\nMAK,287.50\nMAS,-9.88\n");
    assert_eq!(html(&q2), "Site,LSL\nMAK,40.00\nMAS,-10.00\n");
    let curves = html(&mas_curves);
    assert!(curves.starts_with("Hour,HH\n00:00,0.0000\n"), "{curves}");
    assert!(curves.contains("\n10:00,2.0000\n"), "{curves}");
    assert_eq!(curves.lines().count(), 25);
    assert!(
        html(&types).starts_with("Type,Customers,Total kWh,Total LSL,Avg kWh/day\n"),
        "{}",
        html(&types)
    );
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_report_pdf_has_a_title_page_and_a_page_per_figure() {
    let (app, session) = staff_app().await;

    let whole = page(&app, "/portal/report.pdf?quarter=2025+Q1", &session).await;
    let one = page(&app, "/portal/report/figures/8.pdf", &session).await;

    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.headers["content-type"], "application/pdf");
    let pdf = String::from_utf8_lossy(&whole.bytes).to_string();
    assert!(pdf.starts_with("%PDF"));
    assert_eq!(pdf_pages(&pdf), REPORT_FIGURES.len() + 1);
    assert!(pdf.contains("(Operations & Maintenance Quarterly Report)"));
    assert!(
        pdf.contains("Sotho Minigrid Portfolio (SMP)")
            || pdf.contains("Sotho Minigrid Portfolio \\(SMP\\)"),
        "the title page names the portfolio"
    );
    assert!(pdf.contains("(OnePower Lesotho)"));
    for (_, heading) in REPORT_FIGURES {
        assert!(pdf.contains(&format!("({heading})")), "{heading}");
    }
    let single = String::from_utf8_lossy(&one.bytes).to_string();
    assert!(single.starts_with("%PDF"));
    assert_eq!(pdf_pages(&single), 1);
    assert!(single.contains("(Figure 8: Quarterly Sales)"));
    assert!(single.contains("(1,180.50)"));
}

#[tokio::test]
async fn the_financial_page_shows_arpu_by_quarter_month_and_site() {
    let (app, session) = staff_app().await;

    let body = ok_page(&app, "/portal/financial", &session).await;
    let breakdown = page(&app, "/portal/financial/figures/5.csv", &session).await;
    let whole = page(&app, "/portal/financial.pdf", &session).await;

    for (id, heading) in [
        ("1", "Figure 1: ARPU Trend"),
        ("2", "Figure 2: Monthly ARPU"),
        ("3", "Figure 3: Quarterly Revenue by Site"),
        ("4", "Figure 4: ARPU by Site (2025 Q3)"),
        ("5", "Figure 5: Revenue Breakdown by Site and Quarter"),
    ] {
        let figure = section(&body, id);
        assert!(figure.contains(heading), "{figure}");
        if id != "5" {
            assert!(figure.contains(r#"role="img""#), "{figure}");
        }
    }
    assert!(
        body.contains(r#"<a href="/portal/financial" aria-current="page">Financial</a>"#),
        "{body}"
    );
    // §3.1: 0.125 over the 6 accounts seen by Q3, half to even; Q3 against Q2's 50.00.
    assert!(
        body.contains(r#"<dd id="latest-arpu">LSL 0.02</dd>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<dd id="total-revenue">LSL 230.62</dd>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<dd id="revenue-growth">-99.8%</dd>"#),
        "{body}"
    );
    // Figure 1's numbers: Q1 180.50 over 2 accounts.
    assert!(section(&body, "1").contains(
        r#"<tr><th scope="row">2025 Q1</th><td class="n">180.50</td><td class="n">90.25</td></tr>"#
    ));
    // Figure 2's table: April's −10 over 3 accounts.
    assert!(section(&body, "2").contains(r#"<tr><th scope="row">2025-04</th><td>2025 Q2</td><td class="n">-10.00</td><td class="n">3</td><td class="n">-3.33</td></tr>"#), "{}", section(&body, "2"));
    // Figure 4: only MAS has revenue in Q3: 0.125 over its 2 accounts.
    assert!(section(&body, "4").contains(r#"<tr><th scope="row">MAS</th><td class="n">2</td><td class="n">0.12</td><td class="n">0.06</td></tr>"#), "{}", section(&body, "4"));
    // Figure 5's footer: 230.625 over the mean of 2, 5 and 6 accounts.
    assert_eq!(
        html(&breakdown),
        "Quarter,MAK,MAS,Total (LSL),ARPU (LSL)\n2025 Q1,180.50,0.00,180.50,90.25\n2025 Q2,40.00,-10.00,50.00,10.00\n2025 Q3,0.00,0.12,0.12,0.02\nAll Quarters,220.50,-9.88,230.62,53.22\n"
    );
    let pdf = String::from_utf8_lossy(&whole.bytes).to_string();
    assert!(pdf.starts_with("%PDF"));
    assert_eq!(pdf_pages(&pdf), 6);
    assert!(pdf.contains("(Financial Analytics Report)"));
    assert!(pdf.contains("(Figure 5: Revenue Breakdown by Site and Quarter)"));
}

#[tokio::test]
async fn a_customer_is_refused_the_reports_and_a_visitor_is_sent_to_sign_in() {
    const ACCOUNT: &str = "0078MAK";
    let app = TestApp::start_with(|acdb| {
        acdb.execute(
            "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [LAST NAME], [Concession name]) VALUES (9078, 'Lineo', 'Mokoena', 'MAK')",
            &[],
        );
        acdb.execute(
            &format!("INSERT INTO [tblaccountnumbers] ([accountnumber], [customerid]) VALUES ('{ACCOUNT}', 9078)"),
            &[],
        );
    })
    .await;
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
    let customer = format!(
        "ccare_session={}",
        cookie_value(&set_cookie(&signed, "ccare_session").unwrap())
    );

    for path in [
        "/portal/report",
        "/portal/report.pdf",
        "/portal/report/figures/4.csv",
        "/portal/financial",
        "/portal/financial.pdf",
        "/portal/financial/figures/5.csv",
    ] {
        let refused = page(&app, path, &customer).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(html(&refused).contains("This page is for staff"), "{path}");
        let visitor = page(&app, path, "").await;
        assert_eq!(visitor.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            visitor.headers["location"]
                .to_str()
                .unwrap()
                .starts_with("/portal/login"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn every_employee_role_may_read_the_reports() {
    let app = TestApp::start_with(fixture).await;
    for (id, role) in [
        ("00711", Role::Superadmin),
        ("00712", Role::OnmTeam),
        ("00713", Role::FinanceTeam),
    ] {
        app.add_employee(id, role).await;
        let session = signed_in(&app, id).await;
        for path in ["/portal/report", "/portal/financial"] {
            let reply = page(&app, path, &session).await;
            assert_eq!(reply.status, StatusCode::OK, "{id} {path}");
        }
    }
}
