//! `/portal/financial`: the Financial page of legacy-system.md §8 — the ARPU trend, monthly
//! ARPU, quarterly revenue by site, ARPU by site in the latest quarter and the revenue breakdown
//! — from [`om_report::arpu_periods`], the function `/api/om-report/arpu` and `monthly-arpu`
//! are written from; each figure as CSV and PDF, and the whole as one PDF.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use rust_decimal::Decimal;

use domain::dates::Month;

use crate::error::ApiError;
use crate::routes::om_report::{self, PeriodArpu};
use crate::AppState;

use super::charts::{Chart, Series};
use super::dashboard::staff_only;
use super::pages::{self, count, decimal, document, respond, Nav};
use super::pdf;
use super::report::{download, figure_download, figure_section, report_pdf, Cell, Figure, Grid};
use super::session::Session;

/// `numerator / denominator`, 0 when the denominator is 0.
fn share(numerator: Decimal, denominator: Decimal) -> Decimal {
    if denominator.is_zero() {
        Decimal::ZERO
    } else {
        numerator.checked_div(denominator).unwrap_or(Decimal::ZERO)
    }
}

/// The headline cards (§3.14).
struct Headline {
    latest: Option<(String, Decimal, i64)>,
    total_revenue: Decimal,
    /// Latest against the previous quarter, per cent.
    growth: Decimal,
}

struct Financial {
    headline: Headline,
    figures: Vec<Figure>,
}

fn site_codes(periods: &[PeriodArpu]) -> Vec<String> {
    periods
        .iter()
        .flat_map(|p| p.per_site.iter().map(|s| s.site.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn site_revenue(period: &PeriodArpu, site: &str) -> Decimal {
    period
        .per_site
        .iter()
        .filter(|s| s.site == site)
        .map(|s| s.revenue)
        .sum()
}

async fn financial(state: &AppState) -> Result<Financial, ApiError> {
    let (quarters, _) = om_report::arpu_periods(state, "Q").await?;
    let (months, _) = om_report::arpu_periods(state, "M").await?;
    let total_revenue: Decimal = quarters.iter().map(|q| q.revenue).sum();
    let latest = quarters.last();
    let previous = quarters.len().checked_sub(2).and_then(|i| quarters.get(i));
    let growth = match (latest, previous) {
        (Some(l), Some(p)) if !p.revenue.is_zero() => {
            share(l.revenue - p.revenue, p.revenue) * Decimal::from(100)
        }
        _ => Decimal::ZERO,
    };
    let headline = Headline {
        latest: latest.map(|l| (l.period.clone(), l.arpu(), l.active_customers)),
        total_revenue,
        growth,
    };
    let quarter_names: Vec<String> = quarters.iter().map(|q| q.period.clone()).collect();
    let mut figures = Vec::new();

    // Figure 1.
    figures.push(Figure::chart(
        "1",
        "Figure 1",
        Chart::new(
            "fin-1",
            "ARPU Trend",
            "Quarter",
            "ARPU, LSL",
            quarter_names.clone(),
        )
        .right_label("Total revenue, LSL")
        .with(
            Series::bars(
                "Total revenue (LSL)",
                quarters.iter().map(|q| q.revenue).collect(),
                2,
            )
            .on_right(),
        )
        .with(Series::line(
            "ARPU (LSL)",
            quarters.iter().map(|q| q.arpu()).collect(),
            2,
        )),
        "ARPU = total quarterly revenue / customers seen up to the quarter.",
    ));

    // Figure 2: one bar series per quarter, so that the bars take their quarter's colour.
    let quarter_of = |month: &str| {
        month
            .parse::<Month>()
            .map(|m| m.quarter().to_string())
            .unwrap_or_default()
    };
    let month_quarters: Vec<String> = months
        .iter()
        .map(|m| quarter_of(&m.period))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut monthly = Chart::new(
        "fin-2",
        "Monthly ARPU",
        "Month",
        "Revenue, LSL",
        months.iter().map(|m| m.period.clone()).collect(),
    )
    .right_label("ARPU, LSL")
    .stacked();
    for q in &month_quarters {
        monthly = monthly.with(Series::bars(
            &format!("Revenue {q}"),
            months
                .iter()
                .map(|m| {
                    if quarter_of(&m.period) == *q {
                        m.revenue
                    } else {
                        Decimal::ZERO
                    }
                })
                .collect(),
            2,
        ));
    }
    monthly = monthly
        .with(Series::line("ARPU (LSL)", months.iter().map(|m| m.arpu()).collect(), 2).on_right());
    figures.push(
        Figure::chart(
            "2",
            "Figure 2",
            monthly,
            "Revenue bars coloured by quarter; customers are those seen up to the month.",
        )
        .with_table(Grid {
            header: [
                "Month",
                "Quarter",
                "Revenue (LSL)",
                "Customers",
                "ARPU (LSL)",
            ]
            .map(String::from)
            .to_vec(),
            rows: months
                .iter()
                .map(|m| {
                    vec![
                        Cell::Text(m.period.clone()),
                        Cell::Text(quarter_of(&m.period)),
                        Cell::Number(m.revenue, 2),
                        Cell::Count(m.active_customers),
                        Cell::Number(m.arpu(), 2),
                    ]
                })
                .collect(),
            footer: None,
        }),
    );

    // Figure 3.
    let codes = site_codes(&quarters);
    let mut by_site = Chart::new(
        "fin-3",
        "Quarterly Revenue by Site",
        "Quarter",
        "Revenue, LSL",
        quarter_names.clone(),
    )
    .stacked();
    for code in &codes {
        by_site = by_site.with(Series::bars(
            code,
            quarters.iter().map(|q| site_revenue(q, code)).collect(),
            2,
        ));
    }
    figures.push(Figure::chart(
        "3",
        "Figure 3",
        by_site,
        "Dated ledger rows, by the site of the account.",
    ));

    // Figure 4: the latest quarter's sites with revenue, highest ARPU first.
    let mut latest_sites: Vec<_> = latest
        .map(|l| {
            l.per_site
                .iter()
                .filter(|s| s.revenue > Decimal::ZERO)
                .collect()
        })
        .unwrap_or_else(Vec::new);
    latest_sites.sort_by(|a, b| b.arpu().cmp(&a.arpu()).then(a.site.cmp(&b.site)));
    let latest_name = latest.map_or("no quarter yet".to_string(), |l| l.period.clone());
    let (site_customers, site_total): (i64, Decimal) =
        latest_sites.iter().fold((0, Decimal::ZERO), |(c, r), s| {
            (c + s.customers, r + s.revenue)
        });
    figures.push(
        Figure::chart(
            "4",
            "Figure 4",
            Chart::new(
                "fin-4",
                &format!("ARPU by Site ({latest_name})"),
                "Site",
                "ARPU, LSL",
                latest_sites.iter().map(|s| s.site.clone()).collect(),
            )
            .with(Series::bars(
                "ARPU (LSL)",
                latest_sites.iter().map(|s| s.arpu()).collect(),
                2,
            )),
            "Sites with revenue in the latest quarter.",
        )
        .with_table(Grid {
            header: ["Site", "Customers", "Revenue (LSL)", "ARPU (LSL)"]
                .map(String::from)
                .to_vec(),
            rows: latest_sites
                .iter()
                .map(|s| {
                    vec![
                        Cell::Text(s.site.clone()),
                        Cell::Count(s.customers),
                        Cell::Number(s.revenue, 2),
                        Cell::Number(s.arpu(), 2),
                    ]
                })
                .collect(),
            footer: Some(vec![
                Cell::Text("Total / average".into()),
                Cell::Count(site_customers),
                Cell::Number(site_total, 2),
                Cell::Number(share(site_total, Decimal::from(site_customers)), 2),
            ]),
        }),
    );

    // Figure 5.
    let mut header = vec!["Quarter".to_string()];
    header.extend(codes.iter().cloned());
    header.extend(["Total (LSL)".to_string(), "ARPU (LSL)".to_string()]);
    let mut site_sums: BTreeMap<&str, Decimal> = BTreeMap::new();
    let rows = quarters
        .iter()
        .map(|q| {
            let mut row = vec![Cell::Text(q.period.clone())];
            for code in &codes {
                let revenue = site_revenue(q, code);
                *site_sums.entry(code.as_str()).or_default() += revenue;
                row.push(Cell::Number(revenue, 2));
            }
            row.push(Cell::Number(q.revenue, 2));
            row.push(Cell::Number(q.arpu(), 2));
            row
        })
        .collect();
    // §3.14: the footer's ARPU divides by the mean customers of the quarters, at least 1.
    let mean_customers = if quarters.is_empty() {
        Decimal::ONE
    } else {
        share(
            Decimal::from(quarters.iter().map(|q| q.active_customers).sum::<i64>()),
            Decimal::from(quarters.len() as i64),
        )
        .max(Decimal::ONE)
    };
    let mut footer = vec![Cell::Text("All Quarters".into())];
    footer.extend(
        codes
            .iter()
            .map(|c| Cell::Number(site_sums.get(c.as_str()).copied().unwrap_or_default(), 2)),
    );
    footer.push(Cell::Number(total_revenue, 2));
    footer.push(Cell::Number(share(total_revenue, mean_customers), 2));
    figures.push(Figure::table(
        "5",
        "Figure 5",
        "Revenue Breakdown by Site and Quarter",
        Grid {
            header,
            rows,
            footer: Some(footer),
        },
    ));

    Ok(Financial { headline, figures })
}

fn main_of(financial: &Financial) -> Markup {
    let h = &financial.headline;
    html! {
        h1 { "Financial analytics" }
        p class="downloads" {
            a href="/portal/financial.pdf" download { "Download the whole report (PDF, A4)" }
        }
        section aria-labelledby="headline" {
            h2 id="headline" class="visually-hidden" { "Headline figures" }
            dl class="cards" {
                @if let Some((quarter, arpu, customers)) = &h.latest {
                    div class="card" { dt { "Latest ARPU (" (quarter) ")" } dd id="latest-arpu" { "LSL " (decimal(*arpu, 2)) } }
                    div class="card" { dt { "Total revenue, all quarters" } dd id="total-revenue" { "LSL " (decimal(h.total_revenue, 2)) } }
                    div class="card" { dt { "Active customers (" (quarter) ")" } dd id="active-customers" { (count(*customers)) } }
                    div class="card" { dt { "Revenue growth, quarter on quarter" } dd id="revenue-growth" { (decimal(h.growth, 1)) "%" } }
                } @else {
                    div class="card" { dt { "Revenue" } dd { "No dated transactions yet" } }
                }
            }
        }
        @for figure in &financial.figures {
            (figure_section(figure, "/portal/financial/figures", ""))
        }
        p class="muted" { "ARPU = Total Quarterly Revenue / Active Customers in Quarter" }
    }
}

async fn for_staff(state: &AppState, session: &Session) -> Result<Financial, Response> {
    if session.user.employee().is_err() {
        return Err(staff_only(session));
    }
    financial(state).await.map_err(pages::failure)
}

/// `GET /portal/financial`: the page's main part is built once per state of the read models
/// (it shows nothing of the user), as the report's is.
pub(crate) async fn page(State(state): State<AppState>, session: Session) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let main = crate::answers::cached_html(&state, "financial", || async {
        Ok(main_of(&financial(&state).await?).into_string())
    })
    .await;
    match main {
        Ok(main) => respond(
            StatusCode::OK,
            document(
                "Financial",
                Some(&session),
                Some(Nav::Financial),
                maud::PreEscaped(main),
            ),
        ),
        Err(error) => pages::failure(error),
    }
}

/// `GET /portal/financial/figures/{n}.csv` and `{n}.pdf`.
pub(crate) async fn figure(
    State(state): State<AppState>,
    session: Session,
    Path(file): Path<String>,
) -> Response {
    match for_staff(&state, &session).await {
        Ok(financial) => figure_download(
            &session,
            &financial.figures,
            &file,
            "financial",
            "/portal/financial",
        ),
        Err(page) => page,
    }
}

/// `GET /portal/financial.pdf`.
pub(crate) async fn whole_pdf(State(state): State<AppState>, session: Session) -> Response {
    match for_staff(&state, &session).await {
        Ok(financial) => {
            let title = pdf::TitlePage {
                title: "Financial Analytics Report".into(),
                lines: vec![
                    "Sotho Minigrid Portfolio (SMP)".into(),
                    "OnePower Lesotho".into(),
                    format!(
                        "Generated {} by ccare Customer Care",
                        chrono::Local::now().format("%Y-%m-%d")
                    ),
                ],
            };
            download(
                "application/pdf",
                "financial-report.pdf",
                report_pdf(&title, &financial.figures),
            )
        }
        Err(page) => page,
    }
}
