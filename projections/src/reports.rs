//! The queries behind the O&M report, ARPU and the site summary: small aggregates over the
//! `analytics` and `customers` read models, exact (every sum is `numeric`), for the API to shape
//! and round at the edge.

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::error::Result;

/// The primary ledger and its fallback (legacy-system.md §3.0).
pub const PRIMARY_LEDGER: &str = "tblaccounthistory1";
pub const FALLBACK_LEDGER: &str = "tblaccounthistoryOriginal";

/// The ledger the figures use: `tblaccounthistory1`, or `tblaccounthistoryOriginal` when the
/// first holds no row. The two are never merged.
pub async fn ledger(pool: &PgPool) -> Result<&'static str> {
    let primary_has_rows: bool = sqlx::query_scalar(
        "select exists (select 1 from read_model.period_totals where source = $1)",
    )
    .bind(PRIMARY_LEDGER)
    .fetch_one(pool)
    .await?;
    if primary_has_rows {
        return Ok(PRIMARY_LEDGER);
    }
    let fallback_has_rows: bool = sqlx::query_scalar(
        "select exists (select 1 from read_model.period_totals where source = $1)",
    )
    .bind(FALLBACK_LEDGER)
    .fetch_one(pool)
    .await?;
    Ok(if fallback_has_rows {
        FALLBACK_LEDGER
    } else {
        PRIMARY_LEDGER
    })
}

/// The sums of one period and site.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PeriodSite {
    pub period: String,
    /// The legacy site of the accounts (`""`: rows whose account has none).
    pub site: String,
    pub amount: Decimal,
    pub kwh: Decimal,
    pub rows: i64,
}

/// Which rows a period query takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowFilter {
    /// Only rows with a usable date (leaves out the `Unknown` period).
    pub dated_only: bool,
    /// Only rows with an account (ARPU skips rows whose account is blank).
    pub with_account_only: bool,
}

/// Sums per period (`kind` `Q` quarters or `M` months) and site of `ledger`.
pub async fn period_sites(
    pool: &PgPool,
    ledger: &str,
    kind: &str,
    filter: RowFilter,
) -> Result<Vec<PeriodSite>> {
    Ok(sqlx::query_as(
        "select period, site, sum(amount) as amount, sum(kwh) as kwh, sum(rows)::bigint as rows
         from read_model.period_totals
         where source = $1 and kind = $2
           and (not $3 or period <> 'Unknown') and (not $4 or has_account)
         group by period, site order by period, site",
    )
    .bind(ledger)
    .bind(kind)
    .bind(filter.dated_only)
    .bind(filter.with_account_only)
    .fetch_all(pool)
    .await?)
}

/// How many accounts of `ledger` have their first dated period (`kind`) at each period, per site.
pub async fn first_periods(
    pool: &PgPool,
    ledger: &str,
    kind: &str,
) -> Result<Vec<(String, String, i64)>> {
    let column = if kind == "M" {
        "first_month"
    } else {
        "first_quarter"
    };
    Ok(sqlx::query_as(&format!(
        "select {column}, site, count(*) from read_model.account_first
         where source = $1 and {column} is not null group by 1, 2 order by 1, 2"
    ))
    .bind(ledger)
    .fetch_all(pool)
    .await?)
}

/// The number of calendar days with dated rows in each quarter of `ledger`.
pub async fn days_per_quarter(pool: &PgPool, ledger: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select quarter, count(*) from read_model.quarter_days where source = $1 group by 1 order by 1",
    )
    .bind(ledger)
    .fetch_all(pool)
    .await?)
}

/// Customers per trimmed concession (blank left out): total, active (no termination date) and
/// connected in `quarter` (`YYYY QN`, when given).
pub async fn customers_by_concession(
    pool: &PgPool,
    quarter: Option<&str>,
) -> Result<Vec<(String, i64, i64, i64)>> {
    Ok(sqlx::query_as(
        "select btrim(concession), count(*), count(*) filter (where not terminated),
                count(*) filter (where $1::text is not null and date_connected is not null
                    and to_char(date_connected, 'YYYY') || ' Q' || extract(quarter from date_connected) = $1)
         from read_model.customers where btrim(coalesce(concession, '')) <> ''
         group by 1 order by 1",
    )
    .bind(quarter)
    .fetch_all(pool)
    .await?)
}

/// Customers connected per quarter (by `DATE SERVICE CONNECTED`; undatable ones left out).
pub async fn connections_per_quarter(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select to_char(date_connected, 'YYYY') || ' Q' || extract(quarter from date_connected), count(*)
         from read_model.customers where date_connected is not null group by 1 order by 1",
    )
    .fetch_all(pool)
    .await?)
}

/// The head counts of the overview: all customers, terminated ones, and the trimmed concessions.
pub async fn customer_counts(pool: &PgPool) -> Result<(i64, i64, Vec<String>)> {
    let (total, terminated): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where terminated) from read_model.customers",
    )
    .fetch_one(pool)
    .await?;
    let sites: Vec<String> = sqlx::query_scalar(
        "select distinct btrim(concession) from read_model.customers
         where btrim(coalesce(concession, '')) <> '' order by 1",
    )
    .fetch_all(pool)
    .await?;
    Ok((total, terminated, sites))
}

/// Per customer type: the accounts whose meter (in `Copy Of tblmeter`, else `tblmeter`; of
/// several meters of one account, the last by meter id) gives that type.
const ACCOUNT_TYPES: &str = "with register as (
        select case when exists (select 1 from read_model.meters where source_table = 'Copy Of tblmeter'
                                 and nullif(btrim(customer_type), '') is not null)
                    then 'Copy Of tblmeter' else 'tblmeter' end as source_table
    ), typed as (
        select distinct on (m.account_key) m.account_key as account, btrim(m.customer_type) as customer_type
        from read_model.meters m, register r
        where m.source_table = r.source_table and m.account_key is not null
          and nullif(btrim(m.customer_type), '') is not null
        order by m.account_key, m.meter_id desc
    )";

/// The load curve of one customer type over `ledger` (quarter-filtered when `quarter` is given;
/// `Unknown` selects the undated rows).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TypeCurve {
    pub customer_type: String,
    pub kwh: Decimal,
    pub amount: Decimal,
    pub accounts: i64,
    pub days: i64,
}

pub async fn type_curves(
    pool: &PgPool,
    ledger: &str,
    quarter: Option<&str>,
) -> Result<Vec<TypeCurve>> {
    Ok(sqlx::query_as(&format!(
        "{ACCOUNT_TYPES}
         select t.customer_type, coalesce(sum(x.kwh), 0) as kwh, coalesce(sum(x.amount), 0) as amount,
                count(distinct x.account) as accounts, count(distinct x.day) as days
         from typed t join read_model.transactions x on x.account = t.account and x.source = $1
         where $2::text is null or coalesce(x.quarter, 'Unknown') = $2
         group by 1 order by 1"
    ))
    .bind(ledger)
    .bind(quarter)
    .fetch_all(pool)
    .await?)
}

/// kWh per customer type and quarter (`Unknown` for undated rows).
pub async fn type_quarters(
    pool: &PgPool,
    ledger: &str,
    quarter: Option<&str>,
) -> Result<Vec<(String, String, Decimal)>> {
    Ok(sqlx::query_as(&format!(
        "{ACCOUNT_TYPES}
         select coalesce(x.quarter, 'Unknown'), t.customer_type, sum(x.kwh)
         from typed t join read_model.transactions x on x.account = t.account and x.source = $1
         where $2::text is null or coalesce(x.quarter, 'Unknown') = $2
         group by 1, 2 order by 1, 2"
    ))
    .bind(ledger)
    .bind(quarter)
    .fetch_all(pool)
    .await?)
}

/// The number of accounts with a customer type.
pub async fn typed_accounts(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar(&format!("{ACCOUNT_TYPES} select count(*) from typed"))
            .fetch_one(pool)
            .await?,
    )
}

/// The name of the meter register the types come from.
pub async fn type_register(pool: &PgPool) -> Result<String> {
    Ok(sqlx::query_scalar(&format!(
        "{ACCOUNT_TYPES} select source_table from register"
    ))
    .fetch_one(pool)
    .await?)
}

/// One hour of a customer type's 24-hour profile: the sum and number of readings, and meters.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TypeHour {
    pub customer_type: String,
    pub hour: i16,
    pub power_sum: Decimal,
    pub readings: i64,
}

/// The meter → type map (same register preference as accounts), optionally for one community.
const METER_TYPES: &str = "with register as (
        select case when exists (select 1 from read_model.meters where source_table = 'Copy Of tblmeter'
                                 and nullif(btrim(customer_type), '') is not null)
                    then 'Copy Of tblmeter' else 'tblmeter' end as source_table
    ), typed as (
        select distinct on (m.meter_id) m.meter_id, btrim(m.customer_type) as customer_type
        from read_model.meters m, register r
        where m.source_table = r.source_table and nullif(btrim(m.customer_type), '') is not null
          and ($1::text is null or upper(btrim(m.community)) = $1)
        order by m.meter_id
    )";

pub async fn type_hours(pool: &PgPool, site: Option<&str>) -> Result<Vec<TypeHour>> {
    Ok(sqlx::query_as(&format!(
        "{METER_TYPES}
         select t.customer_type, h.hour, sum(h.power_sum) as power_sum, sum(h.readings)::bigint as readings
         from typed t join read_model.reading_hours h on h.meter_id = t.meter_id
         where $1::text is null or h.community = $1
         group by 1, 2 order by 1, 2"
    ))
    .bind(site)
    .fetch_all(pool)
    .await?)
}

/// Per customer type, the number of meters with readings.
pub async fn type_meters(pool: &PgPool, site: Option<&str>) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(&format!(
        "{METER_TYPES}
         select t.customer_type, count(distinct h.meter_id)
         from typed t join read_model.reading_hours h on h.meter_id = t.meter_id
         where $1::text is null or h.community = $1
         group by 1 order by 1"
    ))
    .bind(site)
    .fetch_all(pool)
    .await?)
}

/// A ledger row of one account, as the dashboards and the customer-data page show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerRow {
    pub txn_id: i64,
    pub account: Option<String>,
    pub meter_id: Option<String>,
    pub at: Option<chrono::NaiveDateTime>,
    pub amount: Decimal,
    pub rate: Option<Decimal>,
    pub kwh: Decimal,
    pub payment: bool,
    pub balance: Option<Decimal>,
}

/// The rows of `account` (matched as the ledger holds it, ignoring case, as Access does), most
/// recent first (dated rows by date, then undated ones, each by id), from the first ledger that has
/// any for it; and that ledger's name.
pub async fn account_ledger(
    pool: &PgPool,
    account: &str,
) -> Result<(&'static str, Vec<LedgerRow>)> {
    for ledger in [PRIMARY_LEDGER, FALLBACK_LEDGER] {
        let rows: Vec<LedgerRow> = sqlx::query_as(
            "select txn_id, account, meter_id, at, amount, rate, kwh, payment, balance
             from read_model.transactions
             where source = $1 and upper(account) collate \"C\" = upper($2)
             order by at desc nulls last, txn_id desc",
        )
        .bind(ledger)
        .bind(account.trim())
        .fetch_all(pool)
        .await?;
        if !rows.is_empty() {
            return Ok((ledger, rows));
        }
    }
    Ok((PRIMARY_LEDGER, Vec::new()))
}

/// A meter register row as the customer-data page shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MeterInfo {
    pub meter_id: String,
    pub community: Option<String>,
    pub customer_type: Option<String>,
    pub village: Option<String>,
    pub status: Option<i64>,
    pub connect_date: Option<chrono::NaiveDateTime>,
}

/// The meter of `account`: in `tblmeter` first, then `Copy Of tblmeter` (the legacy account
/// resolution order), the most recently connected of several.
pub async fn meter_of_account(pool: &PgPool, account: &str) -> Result<Option<MeterInfo>> {
    Ok(sqlx::query_as(
        "select meter_id, community, customer_type, village, status, connect_date
         from read_model.meters
         where upper(account_key) = upper($1) or account_number = upper($1)
         order by case source_table when 'tblmeter' then 0 else 1 end, connect_date desc nulls last, meter_id
         limit 1",
    )
    .bind(account.trim())
    .fetch_optional(pool)
    .await?)
}
