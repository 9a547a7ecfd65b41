//! `/api/om-report/*` and `/api/stats/site-summary` (legacy-system.md §1.7, §1.9, §3): the O&M
//! report and ARPU, computed exactly from the read models and rounded once, here, half to even,
//! to the legacy's decimals. The five legacy bugs of §3.16 follow the intent (see
//! docs/analytics.md).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use domain::dates::{Month, Quarter};
use domain::site::{abbreviation_for_concession, SiteCode};
use projections::reports::{self, PeriodSite, RowFilter};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::num;
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/om-report/overview", get(overview))
        .route("/api/om-report/customer-stats", get(customer_stats))
        .route("/api/om-report/customer-growth", get(customer_growth))
        .route(
            "/api/om-report/consumption-by-site",
            get(consumption_by_site),
        )
        .route("/api/om-report/sales-by-site", get(sales_by_site))
        .route("/api/om-report/cumulative-trends", get(cumulative_trends))
        .route(
            "/api/om-report/avg-consumption-trend",
            get(avg_consumption_trend),
        )
        .route("/api/om-report/site-overview", get(site_overview))
        .route(
            "/api/om-report/load-curves-by-type",
            get(load_curves_by_type),
        )
        .route(
            "/api/om-report/daily-load-profiles",
            get(daily_load_profiles),
        )
        .route("/api/om-report/arpu", get(arpu))
        .route("/api/om-report/monthly-arpu", get(monthly_arpu))
        .route("/api/stats/site-summary", get(site_summary))
}

/// `numerator / denominator`, exactly (0 when the denominator is 0).
fn quotient(numerator: Decimal, denominator: Decimal) -> Decimal {
    if denominator.is_zero() {
        return Decimal::ZERO;
    }
    numerator.checked_div(denominator).unwrap_or(Decimal::ZERO)
}

fn site_name(code: &str) -> String {
    SiteCode::parse(code).map_or_else(|_| code.to_string(), |c| c.display_name().to_string())
}

#[derive(Debug, Deserialize)]
pub(crate) struct QuarterQuery {
    quarter: Option<String>,
}

/// A `quarter` parameter: `YYYY QN`, or `Unknown` where undated rows have a bucket.
pub(crate) fn quarter_param(raw: Option<&str>, unknown_allowed: bool) -> ApiResult<Option<String>> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if unknown_allowed && raw.eq_ignore_ascii_case(reports_unknown()) {
        return Ok(Some(reports_unknown().to_string()));
    }
    raw.parse::<Quarter>()
        .map(|q| Some(q.to_string()))
        .map_err(|_| ApiError::invalid("quarter", format!("{raw:?} is not a quarter like 2025 Q4")))
}

fn reports_unknown() -> &'static str {
    projections::analytics::UNKNOWN_PERIOD
}

async fn ledger(state: &AppState) -> ApiResult<&'static str> {
    Ok(reports::ledger(state.read_models.pool()).await?)
}

/// One site's part of a period's ARPU.
#[derive(Debug)]
pub(crate) struct SiteArpu {
    pub(crate) site: String,
    pub(crate) revenue: Decimal,
    /// The site's accounts seen up to the period.
    pub(crate) customers: i64,
}

impl SiteArpu {
    pub(crate) fn arpu(&self) -> Decimal {
        quotient(self.revenue, Decimal::from(self.customers))
    }
}

/// One period's ARPU (§3.1/§3.2), exact (rounded only when written).
#[derive(Debug)]
pub(crate) struct PeriodArpu {
    /// `YYYY QN` or `YYYY-MM`.
    pub(crate) period: String,
    pub(crate) revenue: Decimal,
    /// The accounts seen up to the period.
    pub(crate) active_customers: i64,
    /// The sites of the period's rows, in the order of the rows.
    pub(crate) per_site: Vec<SiteArpu>,
}

impl PeriodArpu {
    pub(crate) fn arpu(&self) -> Decimal {
        quotient(self.revenue, Decimal::from(self.active_customers))
    }
}

/// The ARPU of §3.1/§3.2 over the periods of `kind` (`Q` or `M`), oldest first, and the ledger
/// it is computed from: dated rows of accounts; customers are the accounts seen up to the period.
pub(crate) async fn arpu_periods(
    state: &AppState,
    kind: &str,
) -> ApiResult<(Vec<PeriodArpu>, &'static str)> {
    let pool = state.read_models.pool();
    let ledger = ledger(state).await?;
    let filter = RowFilter {
        dated_only: true,
        with_account_only: true,
    };
    let sums = reports::period_sites(pool, ledger, kind, filter).await?;
    let firsts = reports::first_periods(pool, ledger, kind).await?;
    let mut periods: BTreeMap<&str, Vec<&PeriodSite>> = BTreeMap::new();
    for row in &sums {
        periods.entry(row.period.as_str()).or_default().push(row);
    }
    let out = periods
        .into_iter()
        .map(|(period, rows)| {
            let customers_by_site = |site: Option<&str>| -> i64 {
                firsts
                    .iter()
                    .filter(|(first, s, _)| {
                        first.as_str() <= period && site.is_none_or(|site| s == site)
                    })
                    .map(|(_, _, n)| n)
                    .sum()
            };
            PeriodArpu {
                period: period.to_string(),
                revenue: rows.iter().map(|r| r.amount).sum(),
                active_customers: customers_by_site(None),
                per_site: rows
                    .iter()
                    .filter(|r| !r.site.is_empty())
                    .map(|row| SiteArpu {
                        site: row.site.clone(),
                        revenue: row.amount,
                        customers: customers_by_site(Some(&row.site)),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok((out, ledger))
}

/// The ARPU rows of §3.1/§3.2 over the periods of `kind`, as written.
async fn arpu_rows(
    state: &AppState,
    kind: &str,
) -> ApiResult<(Vec<Value>, Vec<String>, &'static str)> {
    let (periods, ledger) = arpu_periods(state, kind).await?;
    let mut site_codes = BTreeSet::new();
    let mut out = Vec::with_capacity(periods.len());
    for period in &periods {
        let mut per_site = Map::new();
        for site in &period.per_site {
            site_codes.insert(site.site.clone());
            per_site.insert(
                site.site.clone(),
                json!({
                    "name": site_name(&site.site),
                    "revenue": num(site.revenue, 2),
                    "customers": site.customers,
                    "arpu": num(site.arpu(), 2),
                }),
            );
        }
        let mut entry = json!({
            "total_revenue": num(period.revenue, 2),
            "active_customers": period.active_customers,
            "arpu": num(period.arpu(), 2),
            "per_site": Value::Object(per_site),
        });
        if kind == "M" {
            entry["month"] = json!(period.period);
            entry["quarter"] = json!(period
                .period
                .parse::<Month>()
                .map(|m| m.quarter().to_string())
                .unwrap_or_default());
        } else {
            entry["quarter"] = json!(period.period);
        }
        out.push(entry);
    }
    Ok((out, site_codes.into_iter().collect(), ledger))
}

fn site_names(codes: &[String]) -> Value {
    Value::Object(
        codes
            .iter()
            .map(|c| (c.clone(), Value::String(site_name(c))))
            .collect(),
    )
}

async fn arpu(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (rows, codes, ledger) = arpu_rows(&state, "Q").await?;
    Ok(Json(json!({
        "arpu": rows,
        "site_names": site_names(&codes),
        "site_codes": codes,
        "source_table": ledger,
    })))
}

async fn monthly_arpu(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (rows, codes, ledger) = arpu_rows(&state, "M").await?;
    Ok(Json(json!({
        "monthly_arpu": rows,
        "site_names": site_names(&codes),
        "site_codes": codes,
        "source_table": ledger,
    })))
}

/// Per site code, totals by quarter (`Unknown` for undatable rows), exact.
pub(crate) type SiteQuarters = BTreeMap<String, BTreeMap<String, Decimal>>;

/// §3.4: per site, kWh by quarter, only `quarter`'s if given; and the ledger.
pub(crate) async fn consumption_by_site_data(
    state: &AppState,
    quarter: Option<&str>,
) -> ApiResult<(SiteQuarters, &'static str)> {
    site_quarters(state, quarter, |r| r.kwh).await
}

/// §3.3a: per site, LSL by quarter, only `quarter`'s if given; and the ledger.
pub(crate) async fn sales_by_site_data(
    state: &AppState,
    quarter: Option<&str>,
) -> ApiResult<(SiteQuarters, &'static str)> {
    site_quarters(state, quarter, |r| r.amount).await
}

/// §3.3a/§3.4: per site, totals by quarter (`Unknown` for undatable rows) of amount or kWh.
async fn site_quarters(
    state: &AppState,
    quarter: Option<&str>,
    field: fn(&PeriodSite) -> Decimal,
) -> ApiResult<(SiteQuarters, &'static str)> {
    let pool = state.read_models.pool();
    let ledger = ledger(state).await?;
    let filter = RowFilter {
        dated_only: false,
        with_account_only: false,
    };
    let sums = reports::period_sites(pool, ledger, "Q", filter).await?;
    let mut sites = SiteQuarters::new();
    for row in sums.iter().filter(|r| !r.site.is_empty()) {
        if quarter.is_some_and(|q| q != row.period) {
            continue;
        }
        *sites
            .entry(row.site.clone())
            .or_default()
            .entry(row.period.clone())
            .or_insert(Decimal::ZERO) += field(row);
    }
    Ok((sites, ledger))
}

/// The answer of `sales-by-site` or `consumption-by-site`.
fn by_site_json(
    sites: &SiteQuarters,
    ledger: &str,
    quarter: Option<&str>,
    total_name: &str,
) -> Value {
    let mut overall = Decimal::ZERO;
    let list: Vec<Value> = sites
        .iter()
        .map(|(site, quarters)| {
            let total: Decimal = quarters.values().copied().sum();
            overall += total;
            let mut entry = json!({
                "site": site,
                "name": site_name(site),
                "quarters": quarters.iter().map(|(q, v)| ((*q).to_string(), num(*v, 2))).collect::<Map<_, _>>(),
            });
            entry[total_name] = num(total, 2);
            entry
        })
        .collect();
    let mut body = json!({
        "sites": list,
        "source_table": ledger,
        "quarter_filter": quarter,
    });
    body[total_name] = num(overall, 2);
    body
}

async fn sales_by_site(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), true)?;
    let (sites, ledger) = sales_by_site_data(&state, quarter.as_deref()).await?;
    Ok(Json(by_site_json(
        &sites,
        ledger,
        quarter.as_deref(),
        "total_lsl",
    )))
}

async fn consumption_by_site(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), true)?;
    let (sites, ledger) = consumption_by_site_data(&state, quarter.as_deref()).await?;
    Ok(Json(by_site_json(
        &sites,
        ledger,
        quarter.as_deref(),
        "total_kwh",
    )))
}

/// Dated totals per quarter over all sites and accounts (§3.7, §3.8): (kWh, LSL).
pub(crate) async fn quarter_totals(
    state: &AppState,
    ledger: &str,
) -> ApiResult<BTreeMap<String, (Decimal, Decimal)>> {
    let filter = RowFilter {
        dated_only: true,
        with_account_only: false,
    };
    let sums = reports::period_sites(state.read_models.pool(), ledger, "Q", filter).await?;
    let mut quarters: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for row in sums {
        let entry = quarters
            .entry(row.period)
            .or_insert((Decimal::ZERO, Decimal::ZERO));
        entry.0 += row.kwh;
        entry.1 += row.amount;
    }
    Ok(quarters)
}

/// One quarter of §3.7, exact.
#[derive(Debug)]
pub(crate) struct CumulativeQuarter {
    pub(crate) quarter: String,
    pub(crate) kwh: Decimal,
    pub(crate) lsl: Decimal,
    pub(crate) cumulative_kwh: Decimal,
    pub(crate) cumulative_lsl: Decimal,
}

/// §3.7: the dated quarters' kWh and LSL with their running totals, oldest first; and the
/// ledger.
pub(crate) async fn cumulative_quarters(
    state: &AppState,
) -> ApiResult<(Vec<CumulativeQuarter>, &'static str)> {
    let ledger = ledger(state).await?;
    let (mut kwh_sum, mut lsl_sum) = (Decimal::ZERO, Decimal::ZERO);
    let quarters = quarter_totals(state, ledger)
        .await?
        .into_iter()
        .map(|(quarter, (kwh, lsl))| {
            kwh_sum += kwh;
            lsl_sum += lsl;
            CumulativeQuarter {
                quarter,
                kwh,
                lsl,
                cumulative_kwh: kwh_sum,
                cumulative_lsl: lsl_sum,
            }
        })
        .collect();
    Ok((quarters, ledger))
}

async fn cumulative_trends(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (quarters, ledger) = cumulative_quarters(&state).await?;
    let trends: Vec<Value> = quarters
        .iter()
        .map(|q| {
            json!({
                "quarter": q.quarter,
                "kwh": num(q.kwh, 2),
                "lsl": num(q.lsl, 2),
                "cumulative_kwh": num(q.cumulative_kwh, 2),
                "cumulative_lsl": num(q.cumulative_lsl, 2),
            })
        })
        .collect();
    Ok(Json(json!({"trends": trends, "source_table": ledger})))
}

/// One quarter of §3.8, exact.
#[derive(Debug)]
pub(crate) struct AverageQuarter {
    pub(crate) quarter: String,
    /// Connected up to and including the quarter.
    pub(crate) customers: i64,
    pub(crate) kwh: Decimal,
    pub(crate) lsl: Decimal,
    pub(crate) daily_kwh_per_customer: Decimal,
    pub(crate) daily_lsl_per_customer: Decimal,
}

/// §3.8 with legacy bug B1's intent: every quarter with consumption appears, with the customers
/// connected up to and including it; and the ledger.
pub(crate) async fn average_daily_per_customer(
    state: &AppState,
) -> ApiResult<(Vec<AverageQuarter>, &'static str)> {
    let pool = state.read_models.pool();
    let ledger = ledger(state).await?;
    let connections = reports::connections_per_quarter(pool).await?;
    let days: BTreeMap<String, i64> = reports::days_per_quarter(pool, ledger)
        .await?
        .into_iter()
        .collect();
    let quarters = quarter_totals(state, ledger)
        .await?
        .into_iter()
        .map(|(quarter, (kwh, lsl))| {
            let customers: i64 = connections
                .iter()
                .filter(|(q, _)| q.as_str() <= quarter.as_str())
                .map(|(_, n)| n)
                .sum();
            let day_count = days.get(&quarter).copied().filter(|d| *d > 0).unwrap_or(90);
            let per = Decimal::from(customers) * Decimal::from(day_count);
            AverageQuarter {
                quarter,
                customers,
                kwh,
                lsl,
                daily_kwh_per_customer: quotient(kwh, per),
                daily_lsl_per_customer: quotient(lsl, per),
            }
        })
        .collect();
    Ok((quarters, ledger))
}

async fn avg_consumption_trend(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (quarters, ledger) = average_daily_per_customer(&state).await?;
    let trends: Vec<Value> = quarters
        .iter()
        .map(|q| {
            json!({
                "quarter": q.quarter,
                "customers": q.customers,
                "total_kwh": num(q.kwh, 2),
                "total_lsl": num(q.lsl, 2),
                "avg_daily_kwh_per_customer": num(q.daily_kwh_per_customer, 4),
                "avg_daily_lsl_per_customer": num(q.daily_lsl_per_customer, 4),
            })
        })
        .collect();
    Ok(Json(json!({"trends": trends, "source_table": ledger})))
}

/// The headline figures of §3.5a, exact.
#[derive(Debug)]
pub(crate) struct Overview {
    pub(crate) total_customers: i64,
    pub(crate) terminated_customers: i64,
    /// The concessions' names.
    pub(crate) sites: Vec<String>,
    /// Over every ledger row.
    pub(crate) kwh: Decimal,
    pub(crate) lsl: Decimal,
}

/// §3.5a: customers, terminated customers, concessions, and all kWh and LSL to date.
pub(crate) async fn overview_figures(state: &AppState) -> ApiResult<Overview> {
    let pool = state.read_models.pool();
    let (total, terminated, sites) = reports::customer_counts(pool).await?;
    let ledger = ledger(state).await?;
    let filter = RowFilter {
        dated_only: false,
        with_account_only: false,
    };
    let sums = reports::period_sites(pool, ledger, "Q", filter).await?;
    Ok(Overview {
        total_customers: total,
        terminated_customers: terminated,
        sites,
        kwh: sums.iter().map(|r| r.kwh).sum(),
        lsl: sums.iter().map(|r| r.amount).sum(),
    })
}

async fn overview(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let o = overview_figures(&state).await?;
    let thousand = Decimal::from(1000);
    Ok(Json(json!({
        "total_customers": o.total_customers,
        "active_customers": o.total_customers - o.terminated_customers,
        "terminated_customers": o.terminated_customers,
        "total_sites": o.sites.len(),
        "sites": o.sites,
        "total_mwh": num(o.kwh / thousand, 2),
        "total_lsl_thousands": num(o.lsl / thousand, 2),
    })))
}

/// One concession's customers (§3.5b).
#[derive(Debug)]
pub(crate) struct ConcessionCustomers {
    pub(crate) concession: String,
    pub(crate) total: i64,
    pub(crate) active: i64,
    /// Connected in the quarter asked for (0 when none was).
    pub(crate) new: i64,
}

impl ConcessionCustomers {
    /// Active customers per hundred, exact.
    pub(crate) fn activation_rate(&self) -> Decimal {
        quotient(
            Decimal::from(self.active) * Decimal::from(100),
            Decimal::from(self.total),
        )
    }
}

/// §3.5b: per concession, its customers, the active ones, and those connected in `quarter`.
pub(crate) async fn customers_by_concession(
    state: &AppState,
    quarter: Option<&str>,
) -> ApiResult<Vec<ConcessionCustomers>> {
    let rows = reports::customers_by_concession(state.read_models.pool(), quarter).await?;
    Ok(rows
        .into_iter()
        .map(|(concession, total, active, new)| ConcessionCustomers {
            concession,
            total,
            active,
            new,
        })
        .collect())
}

async fn customer_stats(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), false)?;
    let rows = customers_by_concession(&state, quarter.as_deref()).await?;
    let (mut total, mut active, mut new) = (0i64, 0i64, 0i64);
    let sites: Vec<Value> = rows
        .iter()
        .map(|row| {
            total += row.total;
            active += row.active;
            new += row.new;
            json!({
                "concession": row.concession,
                "total": row.total,
                "active": row.active,
                "new": row.new,
                "activation_rate": num(row.activation_rate(), 1),
            })
        })
        .collect();
    Ok(Json(json!({
        "sites": sites,
        "totals": {"total": total, "active": active, "new": new},
        "quarter": quarter,
    })))
}

/// One quarter of §3.6.
#[derive(Debug)]
pub(crate) struct QuarterGrowth {
    pub(crate) quarter: String,
    pub(crate) new_customers: i64,
    pub(crate) cumulative: i64,
}

/// §3.6: connections per quarter and their running total, oldest first.
pub(crate) async fn customer_growth_quarters(state: &AppState) -> ApiResult<Vec<QuarterGrowth>> {
    let mut cumulative = 0i64;
    Ok(reports::connections_per_quarter(state.read_models.pool())
        .await?
        .into_iter()
        .map(|(quarter, n)| {
            cumulative += n;
            QuarterGrowth {
                quarter,
                new_customers: n,
                cumulative,
            }
        })
        .collect())
}

async fn customer_growth(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let growth = customer_growth_quarters(&state).await?;
    let total = growth.last().map_or(0, |g| g.cumulative);
    let growth: Vec<Value> = growth
        .iter()
        .map(|g| json!({"quarter": g.quarter, "new_customers": g.new_customers, "cumulative": g.cumulative}))
        .collect();
    Ok(Json(json!({"growth": growth, "total": total})))
}

/// One row of Table 1 (§3.9).
#[derive(Debug)]
pub(crate) struct SiteOverviewRow {
    pub(crate) concession: String,
    pub(crate) abbreviation: &'static str,
    pub(crate) district: &'static str,
    pub(crate) customers: i64,
}

/// §3.9: the concessions, by name, with their site code, district and customers.
pub(crate) async fn site_overview_rows(state: &AppState) -> ApiResult<Vec<SiteOverviewRow>> {
    let rows = reports::customers_by_concession(state.read_models.pool(), None).await?;
    Ok(rows
        .into_iter()
        .map(|(concession, total, _, _)| {
            let known = abbreviation_for_concession(&concession);
            SiteOverviewRow {
                abbreviation: known.map_or("", |k| k.code),
                district: known.map_or("", |k| k.district),
                concession,
                customers: total,
            }
        })
        .collect())
}

async fn site_overview(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let sites: Vec<Value> = site_overview_rows(&state)
        .await?
        .iter()
        .map(|row| {
            json!({
                "concession": row.concession,
                "abbreviation": row.abbreviation,
                "district": row.district,
                "customer_count": row.customers,
            })
        })
        .collect();
    Ok(Json(json!({"sites": sites})))
}

/// The load curve of one customer type (§3.10), exact.
#[derive(Debug)]
pub(crate) struct TypeLoad {
    pub(crate) customer_type: String,
    pub(crate) kwh: Decimal,
    pub(crate) lsl: Decimal,
    pub(crate) customers: i64,
    pub(crate) daily_kwh: Decimal,
    pub(crate) daily_kwh_per_customer: Decimal,
}

/// §3.10 over the typed accounts' ledger rows.
#[derive(Debug)]
pub(crate) struct LoadCurves {
    /// By customer type.
    pub(crate) curves: Vec<TypeLoad>,
    /// Per quarter (`Unknown` for undated rows), the kWh of the types that have rows in it.
    pub(crate) quarterly: BTreeMap<String, BTreeMap<String, Decimal>>,
    pub(crate) total_typed_customers: i64,
    pub(crate) ledger: &'static str,
    pub(crate) register: String,
}

/// §3.10, only `quarter`'s rows if given; none when no meter names a customer type.
pub(crate) async fn load_curves(
    state: &AppState,
    quarter: Option<&str>,
) -> ApiResult<Option<LoadCurves>> {
    let pool = state.read_models.pool();
    let ledger = ledger(state).await?;
    let typed = reports::typed_accounts(pool).await?;
    let register = reports::type_register(pool).await?;
    if typed == 0 {
        return Ok(None);
    }
    let curves = reports::type_curves(pool, ledger, quarter).await?;
    let by_quarter = reports::type_quarters(pool, ledger, quarter).await?;
    let mut quarterly: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    for (q, t, kwh) in by_quarter {
        quarterly.entry(q).or_default().insert(t, kwh);
    }
    Ok(Some(LoadCurves {
        curves: curves
            .into_iter()
            .map(|c| {
                let days = Decimal::from(if c.days > 0 { c.days } else { 90 });
                TypeLoad {
                    daily_kwh: quotient(c.kwh, days),
                    daily_kwh_per_customer: quotient(c.kwh, days * Decimal::from(c.accounts)),
                    customer_type: c.customer_type,
                    kwh: c.kwh,
                    lsl: c.amount,
                    customers: c.accounts,
                }
            })
            .collect(),
        quarterly,
        total_typed_customers: typed,
        ledger,
        register,
    }))
}

async fn load_curves_by_type(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), true)?;
    let Some(loads) = load_curves(&state, quarter.as_deref()).await? else {
        return Ok(Json(json!({
            "curves": [], "quarterly": [],
            "note": "No meter names a customer type: load curves need the customer type of tblmeter or Copy Of tblmeter",
        })));
    };
    let types: Vec<String> = loads
        .curves
        .iter()
        .map(|c| c.customer_type.clone())
        .collect();
    let curves_json: Vec<Value> = loads
        .curves
        .iter()
        .map(|c| {
            json!({
                "type": c.customer_type,
                "total_kwh": num(c.kwh, 2),
                "total_lsl": num(c.lsl, 2),
                "customer_count": c.customers,
                "avg_daily_kwh": num(c.daily_kwh, 4),
                "avg_daily_kwh_per_customer": num(c.daily_kwh_per_customer, 4),
            })
        })
        .collect();
    let quarterly: Vec<Value> = loads
        .quarterly
        .iter()
        .map(|(q, kwh_by_type)| {
            let mut row = Map::new();
            row.insert("quarter".into(), json!(q));
            for t in &types {
                row.insert(t.clone(), json!(0));
            }
            for (t, kwh) in kwh_by_type {
                row.insert(t.clone(), num(*kwh, 2));
            }
            Value::Object(row)
        })
        .collect();
    Ok(Json(json!({
        "curves": curves_json,
        "quarterly": quarterly,
        "customer_types": types,
        "total_typed_customers": loads.total_typed_customers,
        "source_table": loads.ledger,
        "meter_source": loads.register,
        "quarter_filter": quarter,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SiteQuery {
    site: Option<String>,
}

/// A `site` parameter: a site code (any case), or nothing for every site.
pub(crate) fn site_param(raw: Option<&str>) -> ApiResult<Option<String>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => Ok(Some(
            SiteCode::parse(raw)
                .map_err(|e| ApiError::invalid("site", e.to_string()))?
                .as_str()
                .to_string(),
        )),
    }
}

/// One customer type's 24-hour profile (§3.11), exact.
#[derive(Debug)]
pub(crate) struct TypeProfile {
    pub(crate) customer_type: String,
    pub(crate) meter_count: i64,
    /// Per hour 0–23: the mean kW of its readings (0 without any) and their number.
    pub(crate) hours: Vec<(Decimal, i64)>,
    /// The first hour with the highest mean, and that mean.
    pub(crate) peak_hour: usize,
    pub(crate) peak_kw: Decimal,
}

/// §3.11 for `site`'s meters (every site's without one): a profile per customer type, and the
/// meter register the types come from.
pub(crate) async fn load_profiles(
    state: &AppState,
    site: Option<&str>,
) -> ApiResult<(Vec<TypeProfile>, String)> {
    let pool = state.read_models.pool();
    let hours = reports::type_hours(pool, site).await?;
    let meters = reports::type_meters(pool, site).await?;
    let register = reports::type_register(pool).await?;
    if hours.is_empty() {
        return Ok((Vec::new(), register));
    }
    let profiles = meters
        .into_iter()
        .map(|(customer_type, meter_count)| {
            let hourly: Vec<(Decimal, i64)> = (0..24i16)
                .map(|h| {
                    let found = hours
                        .iter()
                        .find(|r| r.customer_type == customer_type && r.hour == h);
                    let (sum, readings) =
                        found.map_or((Decimal::ZERO, 0), |r| (r.power_sum, r.readings));
                    let mean = if readings > 0 {
                        sum.checked_div(Decimal::from(readings))
                            .unwrap_or(Decimal::ZERO)
                    } else {
                        Decimal::ZERO
                    };
                    (mean, readings)
                })
                .collect();
            // The first hour with the highest mean wins.
            let (peak_hour, peak_kw) =
                hourly
                    .iter()
                    .enumerate()
                    .fold((0usize, Decimal::ZERO), |best, (h, (m, _))| {
                        if *m > best.1 {
                            (h, *m)
                        } else {
                            best
                        }
                    });
            TypeProfile {
                customer_type,
                meter_count,
                hours: hourly,
                peak_hour,
                peak_kw,
            }
        })
        .collect();
    Ok((profiles, register))
}

async fn daily_load_profiles(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<SiteQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let site = site_param(query.site.as_deref())?;
    let (profiles, register) = load_profiles(&state, site.as_deref()).await?;
    if profiles.is_empty() {
        return Ok(Json(json!({
            "profiles": [],
            "note": "No readings of typed meters (tblmeterdata1 joined to the meter register)",
            "site_filter": site,
        })));
    }
    let types: Vec<String> = profiles.iter().map(|p| p.customer_type.clone()).collect();
    let mut total_readings = 0i64;
    let mut chart: Vec<Map<String, Value>> = (0..24)
        .map(|h| {
            let mut point = Map::new();
            point.insert("hour".into(), json!(format!("{h:02}:00")));
            point
        })
        .collect();
    let profiles: Vec<Value> = profiles
        .iter()
        .map(|p| {
            let hourly: Vec<Value> = p
                .hours
                .iter()
                .enumerate()
                .map(|(h, (mean, readings))| {
                    total_readings += readings;
                    chart[h].insert(p.customer_type.clone(), num(*mean, 4));
                    json!({"hour": h, "avg_kw": num(*mean, 4), "readings": readings})
                })
                .collect();
            json!({
                "type": p.customer_type,
                "meter_count": p.meter_count,
                "hourly": hourly,
                "peak_hour": p.peak_hour,
                "peak_kw": num(p.peak_kw, 4),
            })
        })
        .collect();
    Ok(Json(json!({
        "profiles": profiles,
        "chart_data": chart.into_iter().map(Value::Object).collect::<Vec<_>>(),
        "customer_types": types,
        "total_readings": total_readings,
        "meter_source": register,
        "site_filter": site,
    })))
}

/// One site's totals over every ledger row to date.
#[derive(Debug, Default)]
pub(crate) struct SiteTotals {
    pub(crate) kwh: Decimal,
    pub(crate) lsl: Decimal,
}

/// The totals of `/api/stats/site-summary`, exact: per site of the account (rows without one
/// left out), every row whether dated or not; and the ledger they are computed from.
pub(crate) async fn site_totals(
    state: &AppState,
) -> ApiResult<(BTreeMap<String, SiteTotals>, &'static str)> {
    let ledger = ledger(state).await?;
    let filter = RowFilter {
        dated_only: false,
        with_account_only: false,
    };
    let sums = reports::period_sites(state.read_models.pool(), ledger, "Q", filter).await?;
    let mut sites: BTreeMap<String, SiteTotals> = BTreeMap::new();
    for row in sums.into_iter().filter(|r| !r.site.is_empty()) {
        let entry = sites.entry(row.site).or_default();
        entry.kwh += row.kwh;
        entry.lsl += row.amount;
    }
    Ok((sites, ledger))
}

async fn site_summary(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (sites, ledger) = site_totals(&state).await?;
    let thousand = Decimal::from(1000);
    let kwh: Decimal = sites.values().map(|t| t.kwh).sum();
    let lsl: Decimal = sites.values().map(|t| t.lsl).sum();
    Ok(Json(json!({
        "sites": sites.iter().map(|(site, t)| json!({
            "site": site,
            "mwh": num(t.kwh / thousand, 2),
            "lsl_thousands": num(t.lsl / thousand, 2),
        })).collect::<Vec<_>>(),
        "totals": {"mwh": num(kwh / thousand, 2), "lsl_thousands": num(lsl / thousand, 2)},
        "source_table": ledger,
        "site_count": sites.len(),
    })))
}
