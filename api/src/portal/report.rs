//! `/portal/report`: the O&M quarterly report of legacy-system.md §8 (Table 1 and Figures 1–13)
//! as server-drawn SVG charts with their numbers, for a chosen quarter and, for the load curves,
//! site; every figure also as CSV (`/portal/report/figures/{n}.csv`) and PDF
//! (`/portal/report/figures/{n}.pdf`), and the whole report as one PDF (`/portal/report.pdf`).
//!
//! Every number comes from the very functions of [`om_report`] that write the JSON API's
//! answers, exact, and is rounded only when written (half to even, as the API does).
//!
//! The quarter narrows the figures the API narrows by quarter (customers connected in it; sales
//! and consumption by site; the customer-type figures) and ends the trends there, so that the
//! report of a past quarter shows what was known at its end.

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use rust_decimal::Decimal;

use domain::dates::Quarter;

use crate::error::ApiError;
use crate::routes::om_report::{self, SiteQuarters};
use crate::AppState;

use super::charts::{self, Chart, Series};
use super::dashboard::staff_only;
use super::pages::{self, count, decimal, document, respond, Nav};
use super::pdf;
use super::session::Session;

// ---------------------------------------------------------------------------------------------
// Tables of figures, shared with the Financial pages.

/// One cell of a figure's table: written grouped on pages and PDFs, plain in CSV.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    Text(String),
    Number(Decimal, u32),
    Count(i64),
}

impl Cell {
    fn shown(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Number(value, dp) => decimal(*value, *dp),
            Cell::Count(n) => count(*n),
        }
    }

    fn plain(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Number(value, dp) => {
                format!("{:.prec$}", value.round_dp(*dp), prec = *dp as usize)
            }
            Cell::Count(n) => n.to_string(),
        }
    }

    fn is_number(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

/// A figure's numbers: a header, rows whose first cell names them, and perhaps a totals row.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grid {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<Cell>>,
    pub(crate) footer: Option<Vec<Cell>>,
}

impl Grid {
    /// The numbers of `chart`: a row per category, a column per series.
    pub(crate) fn of_chart(chart: &Chart) -> Grid {
        let mut header = vec![chart.x_label.clone()];
        header.extend(chart.series.iter().map(|s| s.name.clone()));
        let rows = chart
            .categories
            .iter()
            .enumerate()
            .map(|(c, category)| {
                let mut row = vec![Cell::Text(category.clone())];
                row.extend(
                    chart
                        .series
                        .iter()
                        .map(|s| Cell::Number(s.values.get(c).copied().unwrap_or_default(), s.dp)),
                );
                row
            })
            .collect();
        Grid {
            header,
            rows,
            footer: None,
        }
    }

    pub(crate) fn html(&self, id: &str, caption: &str) -> Markup {
        let cell = |c: &Cell| {
            html! { td class=[c.is_number().then_some("n")] { (c.shown()) } }
        };
        html! {
            div class="table-wrap" {
                table id=(id) {
                    caption { (caption) }
                    thead { tr { @for (i, h) in self.header.iter().enumerate() {
                        th scope="col" class=[(i > 0 && self.numeric(i)).then_some("n")] { (h) }
                    } } }
                    tbody {
                        @for row in &self.rows {
                            tr {
                                @if let Some(first) = row.first() { th scope="row" { (first.shown()) } }
                                @for c in row.iter().skip(1) { (cell(c)) }
                            }
                        }
                    }
                    @if let Some(footer) = &self.footer {
                        tfoot { tr {
                            @if let Some(first) = footer.first() { th scope="row" { (first.shown()) } }
                            @for c in footer.iter().skip(1) { (cell(c)) }
                        } }
                    }
                }
            }
        }
    }

    /// Whether column `i` holds numbers (and is aligned right).
    fn numeric(&self, i: usize) -> bool {
        self.rows
            .first()
            .and_then(|row| row.get(i))
            .is_none_or(Cell::is_number)
    }

    pub(crate) fn csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(&self.header);
        for row in self.rows.iter().chain(self.footer.iter()) {
            let _ = writer.write_record(row.iter().map(Cell::plain));
        }
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    fn pdf(&self) -> pdf::Table {
        pdf::Table {
            header: self.header.clone(),
            rows: self
                .rows
                .iter()
                .chain(self.footer.iter())
                .map(|row| row.iter().map(Cell::shown).collect())
                .collect(),
        }
    }
}

/// One figure (or table) of a report.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// Its number in addresses: `1`, `11b`, `table-1`.
    pub(crate) id: &'static str,
    /// "Figure 3", "Table 1".
    pub(crate) label: String,
    pub(crate) title: String,
    /// What it counts, under the heading.
    pub(crate) note: String,
    pub(crate) chart: Option<Chart>,
    /// Its numbers (the CSV's and the PDF's).
    pub(crate) grid: Grid,
    /// Whether the page shows the table beside the chart (otherwise it is folded under it).
    pub(crate) table_shown: bool,
}

impl Figure {
    pub(crate) fn chart(id: &'static str, label: &str, chart: Chart, note: &str) -> Figure {
        Figure {
            id,
            label: label.to_string(),
            title: chart.title.clone(),
            note: note.to_string(),
            grid: Grid::of_chart(&chart),
            chart: Some(chart),
            table_shown: false,
        }
    }

    /// A chart whose table has more than its numbers, shown in full.
    pub(crate) fn with_table(mut self, grid: Grid) -> Figure {
        self.grid = grid;
        self.table_shown = true;
        self
    }

    pub(crate) fn table(id: &'static str, label: &str, title: &str, grid: Grid) -> Figure {
        Figure {
            id,
            label: label.to_string(),
            title: title.to_string(),
            note: String::new(),
            chart: None,
            grid,
            table_shown: true,
        }
    }

    /// Its numbers as CSV: the chart's own, unless the table shows more.
    fn csv(&self) -> String {
        match &self.chart {
            Some(chart) if !self.table_shown => charts::csv(chart),
            _ => self.grid.csv(),
        }
    }

    fn heading(&self) -> String {
        format!("{}: {}", self.label, self.title)
    }

    fn pdf_page(&self) -> pdf::Page {
        pdf::Page {
            heading: self.heading(),
            chart: self.chart.clone(),
            table: Some(self.grid.pdf()),
            note: self.note.clone(),
        }
    }
}

/// A figure's section on a page, with its downloads (`base`: the figures' address, `query`: the
/// page's parameters, to keep).
pub(crate) fn figure_section(figure: &Figure, base: &str, query: &str) -> Markup {
    let heading_id = format!("figure-{}", figure.id);
    html! {
        section class="figure" aria-labelledby=(heading_id) {
            h2 id=(heading_id) { (figure.heading()) }
            @if !figure.note.is_empty() { p class="muted" { (figure.note) } }
            @if let Some(chart) = &figure.chart {
                @if figure.table_shown {
                    div class="chart-wrap" { (charts::svg(chart)) }
                } @else {
                    (charts::figure(chart))
                }
            }
            @if figure.table_shown {
                (figure.grid.html(&format!("figure-{}-table", figure.id), &figure.title))
            }
            p class="downloads" {
                a href=(format!("{base}/{}.csv{query}", figure.id)) download { "CSV of " (figure.label) }
                " · "
                a href=(format!("{base}/{}.pdf{query}", figure.id)) download { "PDF of " (figure.label) }
            }
        }
    }
}

/// A file to download.
pub(crate) fn download(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, content_type.to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// `file` (`3.csv`, `table-1.pdf`) as a figure id and a format.
pub(crate) fn figure_file(file: &str) -> Option<(&str, &str)> {
    file.rsplit_once('.')
        .filter(|(_, format)| matches!(*format, "csv" | "pdf"))
}

/// The answer for `file` of `figures`: its CSV or one-page PDF, or the 404 page.
pub(crate) fn figure_download(
    session: &Session,
    figures: &[Figure],
    file: &str,
    name: &str,
    back: &str,
) -> Response {
    let found = figure_file(file)
        .and_then(|(id, format)| figures.iter().find(|f| f.id == id).map(|f| (f, format)));
    match found {
        Some((figure, "csv")) => download(
            "text/csv; charset=utf-8",
            &format!("{name}-figure-{}.csv", figure.id),
            figure.csv().into_bytes(),
        ),
        Some((figure, _)) => download(
            "application/pdf",
            &format!("{name}-figure-{}.pdf", figure.id),
            pdf::document(None, &[figure.pdf_page()]),
        ),
        None => pages::error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            "No such figure",
            "The report has no figure of that number.",
            (back, "Back to the report"),
        ),
    }
}

/// The whole report as a PDF: the title page, then a page per figure.
pub(crate) fn report_pdf(title: &pdf::TitlePage, figures: &[Figure]) -> Vec<u8> {
    let pages: Vec<pdf::Page> = figures.iter().map(Figure::pdf_page).collect();
    pdf::document(Some(title), &pages)
}

// ---------------------------------------------------------------------------------------------
// The O&M report's figures.

/// What the report is asked for, as given (kept in the form) and as understood.
#[derive(Debug, Default)]
struct Choice {
    quarter: String,
    site: String,
}

/// The report's narrowing: the quarter (none: all) and the load curves' site (none: all).
#[derive(Debug, Default)]
struct Narrowing {
    quarter: Option<String>,
    site: Option<String>,
}

/// Which field a refusal is about, and what it says.
type Refusal = (&'static str, String);

impl Choice {
    fn parse(pairs: &[(String, String)]) -> (Choice, Result<Narrowing, Refusal>) {
        let given = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map_or(String::new(), |(_, v)| v.trim().to_string())
        };
        let choice = Choice {
            quarter: given("quarter"),
            site: given("site").to_ascii_uppercase(),
        };
        let quarter = if choice.quarter.is_empty() || choice.quarter.eq_ignore_ascii_case("all") {
            Ok(None)
        } else {
            choice
                .quarter
                .parse::<Quarter>()
                .map(|q| Some(q.to_string()))
                .map_err(|_| {
                    (
                        "quarter",
                        format!(
                            "\u{201c}{}\u{201d} is not a quarter: choose one from the list, like 2025 Q4.",
                            choice.quarter
                        ),
                    )
                })
        };
        let narrowing = quarter.and_then(|quarter| {
            let site = om_report::site_param(Some(&choice.site))
                .map_err(|e| ("site", format!("{}.", problem_of(e))))?;
            Ok(Narrowing { quarter, site })
        });
        (choice, narrowing)
    }

    /// The parameters to keep in the downloads' addresses.
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if !self.quarter.is_empty() {
            parts.push(format!(
                "quarter={}",
                super::session::encode_query_value(&self.quarter)
            ));
        }
        if !self.site.is_empty() {
            parts.push(format!(
                "site={}",
                super::session::encode_query_value(&self.site)
            ));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

fn problem_of(error: ApiError) -> String {
    match error {
        ApiError::Invalid { problem, .. } => problem,
        other => other.to_string(),
    }
}

fn n(v: i64) -> Decimal {
    Decimal::from(v)
}

/// Quarters up to and including `last` (all without one).
fn up_to<T>(rows: Vec<T>, quarter_of: fn(&T) -> &str, last: Option<&str>) -> Vec<T> {
    rows.into_iter()
        .filter(|r| last.is_none_or(|last| quarter_of(r) <= last))
        .collect()
}

/// The headline figures above the report's figures.
#[derive(Debug)]
struct Headline {
    customers: i64,
    active: i64,
    mwh: Decimal,
    thousand_lsl: Decimal,
    sites: usize,
}

/// The report's figures, and the quarters and sites it can be narrowed to.
struct Report {
    headline: Headline,
    figures: Vec<Figure>,
    quarters: Vec<String>,
    sites: Vec<String>,
}

fn by_site_chart(id: &str, title: &str, unit: &str, sites: &SiteQuarters, dp: u32) -> Chart {
    let codes: Vec<String> = sites.keys().cloned().collect();
    let totals: Vec<Decimal> = sites.values().map(|q| q.values().copied().sum()).collect();
    Chart::new(id, title, "Site", unit, codes).with(Series::bars(unit, totals, dp))
}

async fn report(state: &AppState, narrowing: &Narrowing) -> Result<Report, ApiError> {
    let quarter = narrowing.quarter.as_deref();
    let overview = om_report::overview_figures(state).await?;
    let thousand = Decimal::from(1000);
    let headline = Headline {
        customers: overview.total_customers,
        active: overview.total_customers - overview.terminated_customers,
        mwh: overview.kwh / thousand,
        thousand_lsl: overview.lsl / thousand,
        sites: overview.sites.len(),
    };
    let mut figures = Vec::new();

    // Table 1.
    let site_rows = om_report::site_overview_rows(state).await?;
    let table_total: i64 = site_rows.iter().map(|r| r.customers).sum();
    let mut sites: Vec<String> = site_rows
        .iter()
        .filter(|r| !r.abbreviation.is_empty())
        .map(|r| r.abbreviation.to_string())
        .collect();
    figures.push(Figure::table(
        "table-1",
        "Table 1",
        "Portfolio Site Overview",
        Grid {
            header: ["#", "Concession", "Abbrev.", "District", "Customers"]
                .map(String::from)
                .to_vec(),
            rows: site_rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    vec![
                        Cell::Count(i as i64 + 1),
                        Cell::Text(r.concession.clone()),
                        Cell::Text(r.abbreviation.to_string()),
                        Cell::Text(r.district.to_string()),
                        Cell::Count(r.customers),
                    ]
                })
                .collect(),
            footer: Some(vec![
                Cell::Text("Total".into()),
                Cell::Text(String::new()),
                Cell::Text(String::new()),
                Cell::Text(String::new()),
                Cell::Count(table_total),
            ]),
        },
    ));

    // Figure 1.
    let concessions = om_report::customers_by_concession(state, quarter).await?;
    let (total, active) = concessions
        .iter()
        .fold((0, 0), |(t, a), r| (t + r.total, a + r.active));
    // The legacy page rounds with JavaScript's Math.round: halves up (legacy-system.md §3.14).
    let rate = if total == 0 {
        Decimal::ZERO
    } else {
        (n(active) * Decimal::from(100) / n(total))
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    let names: Vec<String> = concessions.iter().map(|r| r.concession.clone()).collect();
    let new_label = match quarter {
        Some(q) => format!("New in {q}"),
        None => "New".to_string(),
    };
    figures.push(Figure::chart(
        "1",
        "Figure 1",
        Chart::new(
            "fig-1",
            "Customer Statistics by Concession",
            "Concession",
            "Customers",
            names,
        )
        .with(Series::bars(
            "Total",
            concessions.iter().map(|r| n(r.total)).collect(),
            0,
        ))
        .with(Series::bars(
            "Active",
            concessions.iter().map(|r| n(r.active)).collect(),
            0,
        ))
        .with(Series::bars(
            &new_label,
            concessions.iter().map(|r| n(r.new)).collect(),
            0,
        )),
        &format!(
            "{} of {} customers active ({}%).{}",
            count(active),
            count(total),
            decimal(rate, 0),
            if quarter.is_none() {
                " New customers are counted for a chosen quarter."
            } else {
                ""
            }
        ),
    ));

    // Figure 2.
    let growth = up_to(
        om_report::customer_growth_quarters(state).await?,
        |g| g.quarter.as_str(),
        quarter,
    );
    figures.push(Figure::chart(
        "2",
        "Figure 2",
        Chart::new(
            "fig-2",
            "Customer Connection Growth",
            "Quarter",
            "New customers",
            growth.iter().map(|g| g.quarter.clone()).collect(),
        )
        .right_label("Customers connected")
        .with(Series::bars(
            "New customers",
            growth.iter().map(|g| n(g.new_customers)).collect(),
            0,
        ))
        .with(
            Series::line(
                "Cumulative customers",
                growth.iter().map(|g| n(g.cumulative)).collect(),
                0,
            )
            .on_right(),
        ),
        "Customers by the quarter of their connection date.",
    ));

    // Figures 3 and 4.
    let scope = match quarter {
        Some(q) => format!("Ledger rows of {q}, by the site of the account."),
        None => "All ledger rows, undated ones included, by the site of the account.".into(),
    };
    let (kwh_by_site, _) = om_report::consumption_by_site_data(state, quarter).await?;
    let (lsl_by_site, _) = om_report::sales_by_site_data(state, quarter).await?;
    for code in kwh_by_site.keys().chain(lsl_by_site.keys()) {
        if !sites.contains(code) {
            sites.push(code.clone());
        }
    }
    figures.push(Figure::chart(
        "3",
        "Figure 3",
        by_site_chart(
            "fig-3",
            "Electricity Consumption by Site",
            "kWh",
            &kwh_by_site,
            2,
        ),
        &scope,
    ));
    figures.push(Figure::chart(
        "4",
        "Figure 4",
        by_site_chart("fig-4", "Revenue by Site", "LSL", &lsl_by_site, 2),
        &scope,
    ));

    // Figures 5 to 8.
    let (cumulative, _) = om_report::cumulative_quarters(state).await?;
    let all_quarters: Vec<String> = cumulative.iter().map(|c| c.quarter.clone()).collect();
    let cumulative = up_to(cumulative, |c| c.quarter.as_str(), quarter);
    let quarters_of = |rows: &[om_report::CumulativeQuarter]| -> Vec<String> {
        rows.iter().map(|c| c.quarter.clone()).collect()
    };
    let dated = "Dated ledger rows of every account.";
    figures.push(Figure::chart(
        "5",
        "Figure 5",
        Chart::new(
            "fig-5",
            "Cumulative Electricity Consumed",
            "Quarter",
            "kWh",
            quarters_of(&cumulative),
        )
        .with(Series::area(
            "Cumulative kWh",
            cumulative.iter().map(|c| c.cumulative_kwh).collect(),
            2,
        ))
        .with(Series::area(
            "Quarterly kWh",
            cumulative.iter().map(|c| c.kwh).collect(),
            2,
        )),
        dated,
    ));
    figures.push(Figure::chart(
        "6",
        "Figure 6",
        Chart::new(
            "fig-6",
            "Cumulative Electricity Sales",
            "Quarter",
            "LSL",
            quarters_of(&cumulative),
        )
        .with(Series::area(
            "Cumulative LSL",
            cumulative.iter().map(|c| c.cumulative_lsl).collect(),
            2,
        ))
        .with(Series::area(
            "Quarterly LSL",
            cumulative.iter().map(|c| c.lsl).collect(),
            2,
        )),
        dated,
    ));
    figures.push(Figure::chart(
        "7",
        "Figure 7",
        Chart::new(
            "fig-7",
            "Quarterly Consumption",
            "Quarter",
            "kWh",
            quarters_of(&cumulative),
        )
        .with(Series::bars(
            "kWh",
            cumulative.iter().map(|c| c.kwh).collect(),
            2,
        )),
        dated,
    ));
    figures.push(Figure::chart(
        "8",
        "Figure 8",
        Chart::new(
            "fig-8",
            "Quarterly Sales",
            "Quarter",
            "LSL",
            quarters_of(&cumulative),
        )
        .with(Series::bars(
            "LSL",
            cumulative.iter().map(|c| c.lsl).collect(),
            2,
        )),
        dated,
    ));

    // Figures 9 and 10.
    let (averages, _) = om_report::average_daily_per_customer(state).await?;
    let averages = up_to(averages, |a| a.quarter.as_str(), quarter);
    let average_note = "Customers connected up to the quarter; days with ledger rows in it.";
    for (id, fig, title, unit, values) in [
        (
            "9",
            "Figure 9",
            "Average Daily Consumption per Customer",
            "kWh per customer per day",
            averages
                .iter()
                .map(|a| a.daily_kwh_per_customer)
                .collect::<Vec<_>>(),
        ),
        (
            "10",
            "Figure 10",
            "Average Daily Sales per Customer",
            "LSL per customer per day",
            averages.iter().map(|a| a.daily_lsl_per_customer).collect(),
        ),
    ] {
        figures.push(Figure::chart(
            id,
            fig,
            Chart::new(
                &format!("fig-{id}"),
                title,
                "Quarter",
                "Customers",
                averages.iter().map(|a| a.quarter.clone()).collect(),
            )
            .right_label(unit)
            .with(Series::bars(
                "Customers",
                averages.iter().map(|a| n(a.customers)).collect(),
                0,
            ))
            .with(Series::line(unit, values, 4).on_right()),
            average_note,
        ));
    }

    // Figure 11: the 24-hour profiles.
    let (profiles, register) = om_report::load_profiles(state, narrowing.site.as_deref()).await?;
    let hours: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
    let mut load_chart = Chart::new(
        "fig-11",
        "Average Daily Load Curves by Customer Type",
        "Hour",
        "Mean kW",
        if profiles.is_empty() {
            Vec::new()
        } else {
            hours
        },
    );
    for p in &profiles {
        load_chart = load_chart.with(Series::line(
            &p.customer_type,
            p.hours.iter().map(|(mean, _)| *mean).collect(),
            4,
        ));
    }
    figures.push(Figure::chart(
        "11",
        "Figure 11",
        load_chart,
        &format!(
            "Mean of the meter readings in each hour, {}; customer types from {register}.",
            narrowing
                .site
                .as_deref()
                .map_or("at every site".to_string(), |s| format!("at {s}"))
        ),
    ));

    // The second Figure 11, and Figures 12 and 13: the customer types' ledger rows.
    let loads = om_report::load_curves(state, quarter).await?;
    let curves = loads.as_ref().map_or(&[][..], |l| &l.curves[..]);
    let types: Vec<String> = curves.iter().map(|c| c.customer_type.clone()).collect();
    let types_note = match (&loads, quarter) {
        (None, _) => "No meter names a customer type.".to_string(),
        (Some(l), Some(q)) => format!(
            "Ledger rows of {q} of the {} accounts with a customer type (from {}).",
            count(l.total_typed_customers),
            l.register
        ),
        (Some(l), None) => format!(
            "Ledger rows of the {} accounts with a customer type (from {}).",
            count(l.total_typed_customers),
            l.register
        ),
    };
    // The legacy report numbers it 11 too; 11b keeps the links and their names apart.
    figures.push(Figure::chart(
        "11b",
        "Figure 11b",
        Chart::new(
            "fig-11b",
            "Average Daily Consumption by Customer Type",
            "Customer type",
            "kWh per customer per day",
            types.clone(),
        )
        .with(Series::bars(
            "kWh per customer per day",
            curves.iter().map(|c| c.daily_kwh_per_customer).collect(),
            4,
        )),
        &types_note,
    ));
    let type_chart = Chart::new(
        "fig-12",
        "Total Consumption by Customer Type",
        "Customer type",
        "kWh",
        types.clone(),
    )
    .horizontal()
    .with(Series::bars(
        "kWh",
        curves.iter().map(|c| c.kwh).collect(),
        2,
    ));
    figures.push(
        Figure::chart("12", "Figure 12", type_chart, &types_note).with_table(Grid {
            header: ["Type", "Customers", "Total kWh", "Total LSL", "Avg kWh/day"]
                .map(String::from)
                .to_vec(),
            rows: curves
                .iter()
                .map(|c| {
                    vec![
                        Cell::Text(c.customer_type.clone()),
                        Cell::Count(c.customers),
                        Cell::Number(c.kwh, 2),
                        Cell::Number(c.lsl, 2),
                        Cell::Number(c.daily_kwh, 4),
                    ]
                })
                .collect(),
            footer: None,
        }),
    );
    let quarterly = loads.as_ref().map(|l| &l.quarterly);
    let type_quarters: Vec<String> = quarterly.map_or(Vec::new(), |q| q.keys().cloned().collect());
    let mut stacked = Chart::new(
        "fig-13",
        "Quarterly Consumption by Customer Type",
        "Quarter",
        "kWh",
        type_quarters,
    )
    .stacked();
    for t in &types {
        stacked = stacked.with(Series::bars(
            t,
            quarterly.map_or(Vec::new(), |q| {
                q.values()
                    .map(|by_type| by_type.get(t).copied().unwrap_or_default())
                    .collect()
            }),
            2,
        ));
    }
    figures.push(Figure::chart("13", "Figure 13", stacked, &types_note));

    sites.sort();
    sites.dedup();
    Ok(Report {
        headline,
        figures,
        quarters: all_quarters,
        sites,
    })
}

// ---------------------------------------------------------------------------------------------
// The page.

fn selector(
    choice: &Choice,
    quarters: &[String],
    sites: &[String],
    refusal: Option<&Refusal>,
) -> Markup {
    let error_of = |field: &str| {
        refusal
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    };
    let quarter_error = error_of("quarter");
    let site_error = error_of("site");
    html! {
        form method="get" action="/portal/report" class="filters" {
            div class="field" {
                label for="quarter" { "Quarter" }
                select id="quarter" name="quarter" aria-invalid=[quarter_error.map(|_| "true")]
                    aria-describedby=[quarter_error.map(|_| "quarter-error")] {
                    option value="all" selected[choice.quarter.is_empty() || choice.quarter.eq_ignore_ascii_case("all")] { "All quarters" }
                    @for q in quarters.iter().rev() {
                        option value=(q) selected[choice.quarter == *q] { (q) }
                    }
                    @if quarter_error.is_some() {
                        option value=(choice.quarter) selected { (choice.quarter) }
                    }
                }
                @if let Some(message) = quarter_error { p class="error" id="quarter-error" { (message) } }
            }
            div class="field" {
                label for="site" { "Site of the load curves (Figure 11)" }
                select id="site" name="site" aria-invalid=[site_error.map(|_| "true")]
                    aria-describedby=[site_error.map(|_| "site-error")] {
                    option value="" selected[choice.site.is_empty()] { "All sites" }
                    @for s in sites {
                        option value=(s) selected[choice.site == *s] { (s) }
                    }
                    @if site_error.is_some() {
                        option value=(choice.site) selected { (choice.site) }
                    }
                }
                @if let Some(message) = site_error { p class="error" id="site-error" { (message) } }
            }
            button type="submit" class="primary" { "Show the report" }
        }
    }
}

fn title_page(narrowing: &Narrowing) -> pdf::TitlePage {
    pdf::TitlePage {
        title: "Operations & Maintenance Quarterly Report".into(),
        lines: vec![
            "Sotho Minigrid Portfolio (SMP)".into(),
            "OnePower Lesotho".into(),
            narrowing
                .quarter
                .as_ref()
                .map_or("All quarters".to_string(), |q| q.clone()),
            format!(
                "Generated {} by ccare Customer Care",
                chrono::Local::now().format("%Y-%m-%d")
            ),
        ],
    }
}

fn report_main(
    choice: &Choice,
    report: Option<&Report>,
    refusal: Option<&Refusal>,
    quarters: &[String],
    sites: &[String],
) -> Markup {
    let query = choice.query();
    html! {
        h1 { "O&M quarterly report" }
        p class="muted" { "Sotho Minigrid Portfolio (SMP) · OnePower Lesotho" }
        (selector(choice, quarters, sites, refusal))
        @if let Some(report) = report {
            p class="downloads" {
                a href=(format!("/portal/report.pdf{query}")) download { "Download the whole report (PDF, A4)" }
            }
            section aria-labelledby="headline" {
                h2 id="headline" class="visually-hidden" { "Headline figures" }
                dl class="cards" {
                    div class="card" { dt { "Total customers" } dd id="total-customers" { (count(report.headline.customers)) small { (count(report.headline.active)) " active" } } }
                    div class="card" { dt { "Total MWh" } dd id="total-mwh" { (decimal(report.headline.mwh, 2)) } }
                    div class="card" { dt { abbr title="thousand maloti" { "'000 LSL" } " revenue" } dd id="total-lsl" { (decimal(report.headline.thousand_lsl, 2)) } }
                    div class="card" { dt { "Active sites" } dd id="active-sites" { (count(report.headline.sites as i64)) } }
                }
            }
            @for figure in &report.figures {
                (figure_section(figure, "/portal/report/figures", &query))
            }
        }
    }
}

/// `GET /portal/report`.
pub(crate) async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let (choice, narrowing) = Choice::parse(&pairs);
    let (status, report, refusal) = match narrowing {
        Ok(narrowing) => {
            // The report's main part shows nothing of the user: it is built once per state of
            // the read models and choice, and each request only wraps it in the layout.
            let key = format!("report {choice:?}");
            let main = crate::answers::cached_html(&state, &key, || async {
                let report = report(&state, &narrowing).await?;
                Ok(report_main(
                    &choice,
                    Some(&report),
                    None,
                    &report.quarters,
                    &report.sites,
                )
                .into_string())
            })
            .await;
            return match main {
                Ok(main) => respond(
                    StatusCode::OK,
                    document(
                        "O&M report",
                        Some(&session),
                        Some(Nav::Report),
                        maud::PreEscaped(main),
                    ),
                ),
                Err(error) => pages::failure(error),
            };
        }
        Err(refusal) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            None::<Report>,
            Some(refusal),
        ),
    };
    // A refused choice still gets the lists to choose from.
    let (quarters, sites) = match &report {
        Some(r) => (r.quarters.clone(), r.sites.clone()),
        None => match choices(&state).await {
            Ok(lists) => lists,
            Err(error) => return pages::failure(error),
        },
    };
    let main = report_main(
        &choice,
        report.as_ref(),
        refusal.as_ref(),
        &quarters,
        &sites,
    );
    respond(
        status,
        document("O&M report", Some(&session), Some(Nav::Report), main),
    )
}

/// The quarters and sites the report can be narrowed to.
async fn choices(state: &AppState) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let (quarters, _) = om_report::cumulative_quarters(state).await?;
    let mut sites: Vec<String> = om_report::site_overview_rows(state)
        .await?
        .into_iter()
        .filter(|r| !r.abbreviation.is_empty())
        .map(|r| r.abbreviation.to_string())
        .collect();
    sites.sort();
    sites.dedup();
    Ok((quarters.into_iter().map(|c| c.quarter).collect(), sites))
}

/// The report for a download, or the page that says why not.
async fn report_for_download(
    state: &AppState,
    session: &Session,
    pairs: &[(String, String)],
) -> Result<(Narrowing, Report), Response> {
    if session.user.employee().is_err() {
        return Err(staff_only(session));
    }
    let (choice, narrowing) = Choice::parse(pairs);
    let narrowing = match narrowing {
        Ok(narrowing) => narrowing,
        Err(refusal) => {
            let (quarters, sites) = choices(state).await.map_err(pages::failure)?;
            let main = report_main(&choice, None, Some(&refusal), &quarters, &sites);
            return Err(respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                document("O&M report", Some(session), Some(Nav::Report), main),
            ));
        }
    };
    let report = report(state, &narrowing).await.map_err(pages::failure)?;
    Ok((narrowing, report))
}

fn file_part(narrowing: &Narrowing) -> String {
    narrowing
        .quarter
        .as_deref()
        .map_or("all".to_string(), |q| q.replace(' ', "-"))
}

/// `GET /portal/report/figures/{n}.csv` and `{n}.pdf`.
pub(crate) async fn figure(
    State(state): State<AppState>,
    session: Session,
    Path(file): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match report_for_download(&state, &session, &pairs).await {
        Ok((narrowing, report)) => figure_download(
            &session,
            &report.figures,
            &file,
            &format!("om-report-{}", file_part(&narrowing)),
            "/portal/report",
        ),
        Err(page) => page,
    }
}

/// `GET /portal/report.pdf`: the title page and every figure.
pub(crate) async fn whole_pdf(
    State(state): State<AppState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    match report_for_download(&state, &session, &pairs).await {
        Ok((narrowing, report)) => download(
            "application/pdf",
            &format!("om-report-{}.pdf", file_part(&narrowing)),
            report_pdf(&title_page(&narrowing), &report.figures),
        ),
        Err(page) => page,
    }
}
