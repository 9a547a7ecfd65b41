//! `GET /portal/`: the staff dashboard — headline cards, customers per site and the site
//! performance table — from the same `projections` queries as `/api/om-report/overview`,
//! `/api/om-report/arpu`, `/api/sites` and `/api/stats/site-summary` — the ARPU and the site
//! totals through the very functions of [`om_report`] those answers are written from — with the
//! same rounding (half to even, once, when written). Customers get a page that says it is for staff.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use rust_decimal::Decimal;

use domain::site::SiteCode;
use projections::reports;

use crate::error::ApiError;
use crate::routes::om_report::{self, PeriodArpu, SiteTotals};
use crate::AppState;

use super::pages::{self, count, decimal, document, respond, Nav};
use super::session::Session;

/// One site's row of the performance table.
#[derive(Debug, Default)]
struct SiteRow {
    customers: i64,
    totals: SiteTotals,
}

#[derive(Debug)]
struct Figures {
    customers: i64,
    active_customers: i64,
    sites: usize,
    /// The latest quarter's revenue and ARPU (§3.1).
    latest: Option<PeriodArpu>,
    per_site: BTreeMap<String, SiteRow>,
}

async fn figures(state: &AppState) -> Result<Figures, ApiError> {
    // `/api/om-report/overview`.
    let (customers, terminated, sites) = reports::customer_counts(state.read_models.pool()).await?;
    // `/api/om-report/arpu`.
    let (quarters, _) = om_report::arpu_periods(state, "Q").await?;
    // `/api/sites` (customers per concession) and `/api/stats/site-summary`.
    let mut per_site: BTreeMap<String, SiteRow> = BTreeMap::new();
    for (site, n) in state.read_models.sites().await? {
        per_site.entry(site).or_default().customers += n;
    }
    let (totals, _) = om_report::site_totals(state).await?;
    for (site, totals) in totals {
        per_site.entry(site).or_default().totals = totals;
    }
    Ok(Figures {
        customers,
        active_customers: customers - terminated,
        sites: sites.len(),
        latest: quarters.into_iter().last(),
        per_site,
    })
}

fn site_label(code: &str) -> String {
    SiteCode::parse(code).map_or_else(
        |_| code.to_string(),
        |c| format!("{} ({})", c.display_name(), c.as_str()),
    )
}

fn board(figures: &Figures) -> Markup {
    let thousand = Decimal::from(1000);
    let most = figures
        .per_site
        .values()
        .map(|s| s.customers)
        .max()
        .unwrap_or(0)
        .max(1);
    let total_customers: i64 = figures.per_site.values().map(|s| s.customers).sum();
    let total_kwh: Decimal = figures.per_site.values().map(|s| s.totals.kwh).sum();
    let total_lsl: Decimal = figures.per_site.values().map(|s| s.totals.lsl).sum();
    let per_customer = |kwh: Decimal, customers: i64| {
        if customers == 0 {
            "–".to_string()
        } else {
            decimal(
                kwh.checked_div(Decimal::from(customers))
                    .unwrap_or(Decimal::ZERO),
                1,
            )
        }
    };
    html! {
        h1 { "Dashboard" }
        section aria-labelledby="headline" {
            h2 id="headline" class="visually-hidden" { "Headline figures" }
            dl class="cards" {
                div class="card" { dt { "Customers" } dd id="customers" { (count(figures.customers)) } }
                div class="card" { dt { "Active customers" } dd id="active-customers" { (count(figures.active_customers)) } }
                div class="card" { dt { "Sites" } dd id="sites" { (count(figures.sites as i64)) } }
                @if let Some(latest) = &figures.latest {
                    div class="card" {
                        dt { "Revenue, " (latest.period) }
                        dd id="revenue" { "LSL " (decimal(latest.revenue, 2)) }
                    }
                    div class="card" {
                        dt { "ARPU, " (latest.period) }
                        dd id="arpu" {
                            "LSL " (decimal(latest.arpu(), 2))
                            small { (count(latest.active_customers)) " active accounts" }
                        }
                    }
                } @else {
                    div class="card" { dt { "Revenue" } dd id="revenue" { "No transactions yet" } }
                }
            }
        }
        section aria-labelledby="per-site" {
            h2 id="per-site" { "Customers per site" }
            @if figures.per_site.is_empty() {
                p { "No customers yet." }
            } @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Site" } th scope="col" class="n" { "Customers" } th scope="col" { span class="visually-hidden" { "Share" } } } }
                        tbody {
                            @for (site, row) in &figures.per_site {
                                tr {
                                    th scope="row" { (site_label(site)) }
                                    td class="n" { (count(row.customers)) }
                                    td { meter min="0" max=(most) value=(row.customers) aria-hidden="true" { (row.customers) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="performance" {
            h2 id="performance" { "Site performance" }
            div class="table-wrap" {
                table id="site-performance" {
                    caption { "All transactions to date, by the site of the account" }
                    thead {
                        tr {
                            th scope="col" { "Site" }
                            th scope="col" class="n" { "Customers" }
                            th scope="col" class="n" { "MWh" }
                            th scope="col" class="n" { abbr title="thousand maloti" { "'000 LSL" } }
                            th scope="col" class="n" { "kWh per customer" }
                        }
                    }
                    tbody {
                        @for (site, row) in &figures.per_site {
                            tr {
                                th scope="row" { (site) }
                                td class="n" { (count(row.customers)) }
                                td class="n" { (decimal(row.totals.kwh / thousand, 2)) }
                                td class="n" { (decimal(row.totals.lsl / thousand, 2)) }
                                td class="n" { (per_customer(row.totals.kwh, row.customers)) }
                            }
                        }
                    }
                    tfoot {
                        tr {
                            th scope="row" { "Total" }
                            td class="n" { (count(total_customers)) }
                            td class="n" { (decimal(total_kwh / thousand, 2)) }
                            td class="n" { (decimal(total_lsl / thousand, 2)) }
                            td class="n" { (per_customer(total_kwh, total_customers)) }
                        }
                    }
                }
            }
        }
    }
}

/// The page a customer gets on a staff page.
pub(crate) fn staff_only(session: &Session) -> Response {
    let main = html! {
        h1 { "This page is for staff" }
        p { "You are signed in as a customer: this page is for the utility's staff." }
        p { a href="/portal/my" { "Your balance, payments and usage" } " are on your own dashboard." }
        form method="post" action="/portal/logout" {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" class="primary" { "Sign out" }
        }
    };
    respond(
        StatusCode::FORBIDDEN,
        document("For staff", Some(session), None, main),
    )
}

pub(crate) async fn page(State(state): State<AppState>, session: Session) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    // The board shows nothing of the user: built once per state of the read models.
    let main = crate::answers::cached_html(&state, "dashboard", || async {
        Ok(board(&figures(&state).await?).into_string())
    })
    .await;
    match main {
        Ok(main) => respond(
            StatusCode::OK,
            document(
                "Dashboard",
                Some(&session),
                Some(Nav::Dashboard),
                maud::PreEscaped(main),
            ),
        ),
        Err(error) => pages::failure(error),
    }
}
