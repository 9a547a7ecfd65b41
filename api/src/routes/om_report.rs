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

/// `numerator / denominator` rounded to `dp` (0 when the denominator is 0).
fn ratio(numerator: Decimal, denominator: Decimal, dp: u32) -> Value {
    num(quotient(numerator, denominator), dp)
}

fn site_name(code: &str) -> String {
    SiteCode::parse(code).map_or_else(|_| code.to_string(), |c| c.display_name().to_string())
}

#[derive(Debug, Deserialize)]
pub(crate) struct QuarterQuery {
    quarter: Option<String>,
}

/// A `quarter` parameter: `YYYY QN`, or `Unknown` where undated rows have a bucket.
fn quarter_param(raw: Option<&str>, unknown_allowed: bool) -> ApiResult<Option<String>> {
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

/// §3.3a/§3.4: per site, totals by quarter (`Unknown` for undatable rows) of amount or kWh.
async fn by_site(
    state: &AppState,
    quarter: Option<&str>,
    field: fn(&PeriodSite) -> Decimal,
    total_name: &str,
) -> ApiResult<Value> {
    let pool = state.read_models.pool();
    let ledger = ledger(state).await?;
    let filter = RowFilter {
        dated_only: false,
        with_account_only: false,
    };
    let sums = reports::period_sites(pool, ledger, "Q", filter).await?;
    let mut sites: BTreeMap<&str, BTreeMap<&str, Decimal>> = BTreeMap::new();
    for row in sums.iter().filter(|r| !r.site.is_empty()) {
        if quarter.is_some_and(|q| q != row.period) {
            continue;
        }
        *sites
            .entry(row.site.as_str())
            .or_default()
            .entry(row.period.as_str())
            .or_insert(Decimal::ZERO) += field(row);
    }
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
    Ok(body)
}

async fn sales_by_site(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), true)?;
    Ok(Json(
        by_site(&state, quarter.as_deref(), |r| r.amount, "total_lsl").await?,
    ))
}

async fn consumption_by_site(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), true)?;
    Ok(Json(
        by_site(&state, quarter.as_deref(), |r| r.kwh, "total_kwh").await?,
    ))
}

/// Dated totals per quarter over all sites and accounts (§3.7, §3.8).
async fn quarter_totals(
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

async fn cumulative_trends(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let ledger = ledger(&state).await?;
    let (mut kwh_sum, mut lsl_sum) = (Decimal::ZERO, Decimal::ZERO);
    let trends: Vec<Value> = quarter_totals(&state, ledger)
        .await?
        .into_iter()
        .map(|(quarter, (kwh, lsl))| {
            kwh_sum += kwh;
            lsl_sum += lsl;
            json!({
                "quarter": quarter,
                "kwh": num(kwh, 2),
                "lsl": num(lsl, 2),
                "cumulative_kwh": num(kwh_sum, 2),
                "cumulative_lsl": num(lsl_sum, 2),
            })
        })
        .collect();
    Ok(Json(json!({"trends": trends, "source_table": ledger})))
}

/// §3.8 with legacy bug B1's intent: every quarter with consumption appears, with the customers
/// connected up to and including it.
async fn avg_consumption_trend(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let pool = state.read_models.pool();
    let ledger = ledger(&state).await?;
    let connections = reports::connections_per_quarter(pool).await?;
    let days: BTreeMap<String, i64> = reports::days_per_quarter(pool, ledger)
        .await?
        .into_iter()
        .collect();
    let trends: Vec<Value> = quarter_totals(&state, ledger)
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
            json!({
                "quarter": quarter,
                "customers": customers,
                "total_kwh": num(kwh, 2),
                "total_lsl": num(lsl, 2),
                "avg_daily_kwh_per_customer": ratio(kwh, per, 4),
                "avg_daily_lsl_per_customer": ratio(lsl, per, 4),
            })
        })
        .collect();
    Ok(Json(json!({"trends": trends, "source_table": ledger})))
}

async fn overview(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let pool = state.read_models.pool();
    let (total, terminated, sites) = reports::customer_counts(pool).await?;
    let ledger = ledger(&state).await?;
    let filter = RowFilter {
        dated_only: false,
        with_account_only: false,
    };
    let sums = reports::period_sites(pool, ledger, "Q", filter).await?;
    let kwh: Decimal = sums.iter().map(|r| r.kwh).sum();
    let lsl: Decimal = sums.iter().map(|r| r.amount).sum();
    let thousand = Decimal::from(1000);
    Ok(Json(json!({
        "total_customers": total,
        "active_customers": total - terminated,
        "terminated_customers": terminated,
        "total_sites": sites.len(),
        "sites": sites,
        "total_mwh": num(kwh / thousand, 2),
        "total_lsl_thousands": num(lsl / thousand, 2),
    })))
}

async fn customer_stats(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), false)?;
    let rows =
        reports::customers_by_concession(state.read_models.pool(), quarter.as_deref()).await?;
    let (mut total, mut active, mut new) = (0i64, 0i64, 0i64);
    let sites: Vec<Value> = rows
        .iter()
        .map(|(concession, t, a, n)| {
            total += t;
            active += a;
            new += n;
            json!({
                "concession": concession,
                "total": t,
                "active": a,
                "new": n,
                "activation_rate": ratio(Decimal::from(*a) * Decimal::from(100), Decimal::from(*t), 1),
            })
        })
        .collect();
    Ok(Json(json!({
        "sites": sites,
        "totals": {"total": total, "active": active, "new": new},
        "quarter": quarter,
    })))
}

async fn customer_growth(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let mut cumulative = 0i64;
    let growth: Vec<Value> = reports::connections_per_quarter(state.read_models.pool())
        .await?
        .into_iter()
        .map(|(quarter, n)| {
            cumulative += n;
            json!({"quarter": quarter, "new_customers": n, "cumulative": cumulative})
        })
        .collect();
    Ok(Json(json!({"growth": growth, "total": cumulative})))
}

async fn site_overview(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let rows = reports::customers_by_concession(state.read_models.pool(), None).await?;
    let sites: Vec<Value> = rows
        .iter()
        .map(|(concession, total, _, _)| {
            let known = abbreviation_for_concession(concession);
            json!({
                "concession": concession,
                "abbreviation": known.map_or("", |k| k.code),
                "district": known.map_or("", |k| k.district),
                "customer_count": total,
            })
        })
        .collect();
    Ok(Json(json!({"sites": sites})))
}

async fn load_curves_by_type(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let quarter = quarter_param(query.quarter.as_deref(), true)?;
    let pool = state.read_models.pool();
    let ledger = ledger(&state).await?;
    let typed = reports::typed_accounts(pool).await?;
    let register = reports::type_register(pool).await?;
    if typed == 0 {
        return Ok(Json(json!({
            "curves": [], "quarterly": [],
            "note": "No meter names a customer type: load curves need the customer type of tblmeter or Copy Of tblmeter",
        })));
    }
    let curves = reports::type_curves(pool, ledger, quarter.as_deref()).await?;
    let by_quarter = reports::type_quarters(pool, ledger, quarter.as_deref()).await?;
    let types: Vec<String> = curves.iter().map(|c| c.customer_type.clone()).collect();
    let curves_json: Vec<Value> = curves
        .iter()
        .map(|c| {
            let days = Decimal::from(if c.days > 0 { c.days } else { 90 });
            json!({
                "type": c.customer_type,
                "total_kwh": num(c.kwh, 2),
                "total_lsl": num(c.amount, 2),
                "customer_count": c.accounts,
                "avg_daily_kwh": ratio(c.kwh, days, 4),
                "avg_daily_kwh_per_customer": ratio(c.kwh, days * Decimal::from(c.accounts), 4),
            })
        })
        .collect();
    let mut quarterly: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (q, _, _) in &by_quarter {
        let row = quarterly.entry(q.as_str()).or_default();
        row.insert("quarter".into(), json!(q));
        for t in &types {
            row.entry(t.clone()).or_insert(json!(0));
        }
    }
    for (q, t, kwh) in &by_quarter {
        if let Some(row) = quarterly.get_mut(q.as_str()) {
            row.insert(t.clone(), num(*kwh, 2));
        }
    }
    Ok(Json(json!({
        "curves": curves_json,
        "quarterly": quarterly.into_values().map(Value::Object).collect::<Vec<_>>(),
        "customer_types": types,
        "total_typed_customers": typed,
        "source_table": ledger,
        "meter_source": register,
        "quarter_filter": quarter,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SiteQuery {
    site: Option<String>,
}

async fn daily_load_profiles(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<SiteQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let site = match query
        .site
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(raw) => Some(
            SiteCode::parse(raw)
                .map_err(|e| ApiError::invalid("site", e.to_string()))?
                .as_str()
                .to_string(),
        ),
    };
    let pool = state.read_models.pool();
    let hours = reports::type_hours(pool, site.as_deref()).await?;
    let meters = reports::type_meters(pool, site.as_deref()).await?;
    let register = reports::type_register(pool).await?;
    if hours.is_empty() {
        return Ok(Json(json!({
            "profiles": [],
            "note": "No readings of typed meters (tblmeterdata1 joined to the meter register)",
            "site_filter": site,
        })));
    }
    let types: Vec<String> = meters.iter().map(|(t, _)| t.clone()).collect();
    let mut total_readings = 0i64;
    let mut chart: Vec<Map<String, Value>> = (0..24)
        .map(|h| {
            let mut point = Map::new();
            point.insert("hour".into(), json!(format!("{h:02}:00")));
            point
        })
        .collect();
    let profiles: Vec<Value> = meters
        .iter()
        .map(|(customer_type, meter_count)| {
            let mut means = [Decimal::ZERO; 24];
            let hourly: Vec<Value> = (0..24i16)
                .map(|h| {
                    let found = hours
                        .iter()
                        .find(|r| &r.customer_type == customer_type && r.hour == h);
                    let (sum, readings) =
                        found.map_or((Decimal::ZERO, 0), |r| (r.power_sum, r.readings));
                    total_readings += readings;
                    let mean = if readings > 0 {
                        sum.checked_div(Decimal::from(readings))
                            .unwrap_or(Decimal::ZERO)
                    } else {
                        Decimal::ZERO
                    };
                    means[h as usize] = mean;
                    chart[h as usize].insert(customer_type.clone(), num(mean, 4));
                    json!({"hour": h, "avg_kw": num(mean, 4), "readings": readings})
                })
                .collect();
            // The first hour with the highest mean wins.
            let (peak_hour, peak) =
                means
                    .iter()
                    .enumerate()
                    .fold((0usize, Decimal::ZERO), |best, (h, m)| {
                        if *m > best.1 {
                            (h, *m)
                        } else {
                            best
                        }
                    });
            json!({
                "type": customer_type,
                "meter_count": meter_count,
                "hourly": hourly,
                "peak_hour": peak_hour,
                "peak_kw": num(peak, 4),
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
