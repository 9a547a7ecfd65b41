//! The `customers` read model: customers with their phones, accounts and meters, and every query
//! over it (all of this read model's SQL lives in this module).
//!
//! Tables (in the generation schema; readers use the views `read_model.<table>`):
//! - `customers`: one row per `tblcustomer` row, read by `domain::records::customer`;
//! - `customer_phones`: each customer's phones in E.164, in column order;
//! - `accounts`: one row per `tblaccountnumbers` row;
//! - `meters`: one row per `tblmeter` and `Copy Of tblmeter` row, with its source table.
//!
//! Every row carries the captured ACDB row it was read from (`source_row`) and the position of
//! the event that last wrote it. Each event carries its row whole, so within a batch only the
//! last event of each row matters: a batch is folded to the final state of every row it touches,
//! then written with one statement per table.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use domain::acdb::AcdbRow;
use domain::catalog::spec_for_aggregate;
use domain::event::StoredEvent;
use domain::phone::PhoneNumber;
use domain::record::{kinds, RecordKind, RowChange};
use domain::records::account::AccountRecord;
use domain::records::customer::CustomerRecord;
use domain::records::meter::MeterRecord;
use domain::site::SiteCode;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::error::Result;
use crate::projection::{
    decode_payload, execute_all, insert_rows, qualified, unreadable, Columns, Projection,
};

/// The projection's permanent name.
pub const NAME: &str = "customers";

const CUSTOMER: &str = kinds::Customer::AGGREGATE_TYPE;
const ACCOUNT: &str = kinds::Account::AGGREGATE_TYPE;
const METER: &str = kinds::Meter::AGGREGATE_TYPE;
const METER_REGISTER_COPY: &str = kinds::MeterRegisterCopy::AGGREGATE_TYPE;
const AGGREGATE_TYPES: &[&str] = &[CUSTOMER, ACCOUNT, METER, METER_REGISTER_COPY];

/// The ACDB table whose rows become events of `aggregate_type` (the catalogue is the one place
/// that spells table names).
fn source_table(aggregate_type: &str) -> &'static str {
    spec_for_aggregate(aggregate_type)
        .map(|t| t.table)
        .expect("every aggregate type this read model reads is in the catalogue")
}

/// Builds the `customers` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomersProjection;

#[async_trait]
impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(AGGREGATE_TYPES)
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let customers = qualified(schema, "customers");
        let phones = qualified(schema, "customer_phones");
        let accounts = qualified(schema, "accounts");
        let meters = qualified(schema, "meters");
        let statements = [
            format!(
                "create table {customers} (
                    customer_id     bigint primary key,
                    first_name      text,
                    middle_name     text,
                    last_name       text,
                    full_name       text not null,
                    plot_number     text,
                    concession      text,
                    site_code       text,
                    city            text,
                    district        text,
                    date_connected  timestamp,
                    date_terminated timestamp,
                    terminated      boolean not null,
                    customer_type   text,
                    derived_account text,
                    source_row      jsonb not null,
                    position        bigint not null,
                    search_text     text not null generated always as (lower(
                        customer_id::text || E'\\n' || full_name || E'\\n' || coalesce(plot_number, '')
                        || E'\\n' || coalesce(concession, '') || E'\\n' || coalesce(city, '')
                        || E'\\n' || coalesce(district, ''))) stored
                )"
            ),
            format!(
                "comment on table {customers} is 'ccare: one row per tblcustomer row (dates are ACDB local time, Africa/Maseru)'"
            ),
            format!("comment on column {customers}.derived_account is 'the account the plot number implies (legacy fallback when no account row or meter names the customer)'"),
            format!("comment on column {customers}.source_row is 'the tblcustomer row as last captured'"),
            format!("comment on column {customers}.position is 'event_log position of the event that last wrote this row'"),
            format!("create index on {customers} using gin (search_text gin_trgm_ops)"),
            format!("create index on {customers} (site_code)"),
            format!(
                "create table {phones} (
                    customer_id bigint not null,
                    e164        text not null,
                    last8       text not null,
                    ordinal     smallint not null,
                    primary key (customer_id, e164)
                )"
            ),
            format!("comment on table {phones} is 'ccare: the phones of each customer (PHONE, CELL PHONE 1, CELL PHONE 2), in E.164'"),
            format!("create index on {phones} (e164)"),
            format!("create index on {phones} (last8)"),
            format!("create index on {phones} using gin (e164 gin_trgm_ops)"),
            format!(
                "create table {accounts} (
                    account_key    text primary key,
                    account_number text,
                    customer_id    bigint,
                    meter_id       text,
                    community      text,
                    opened         timestamp,
                    source_row     jsonb not null,
                    position       bigint not null
                )"
            ),
            format!("comment on table {accounts} is 'ccare: one row per tblaccountnumbers row'"),
            format!("comment on column {accounts}.account_key is 'the account number as captured (trimmed)'"),
            format!("comment on column {accounts}.account_number is 'the canonical account number (0045MAK), when the captured one can be read as one'"),
            format!("create index on {accounts} (customer_id)"),
            format!("create index on {accounts} (account_number)"),
            format!("create index on {accounts} (upper(account_key))"),
            format!("create index on {accounts} using gin (lower(account_key) gin_trgm_ops)"),
            format!(
                "create table {meters} (
                    source_table   text not null,
                    meter_id       text not null,
                    account_key    text,
                    account_number text,
                    customer_id    bigint,
                    customer_type  text,
                    community      text,
                    village        text,
                    status         bigint,
                    connect_date   timestamp,
                    source_row     jsonb not null,
                    position       bigint not null,
                    primary key (source_table, meter_id)
                )"
            ),
            format!("comment on table {meters} is 'ccare: one row per tblmeter and Copy Of tblmeter row'"),
            format!("comment on column {meters}.source_table is 'the ACDB table the row is from: tblmeter or Copy Of tblmeter'"),
            format!("create index on {meters} (customer_id)"),
            format!("create index on {meters} (account_number)"),
            format!("create index on {meters} (upper(account_key))"),
            format!("create index on {meters} using gin (lower(account_key) gin_trgm_ops)"),
        ];
        execute_all(conn, statements).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        let latest = LatestRows::fold(events)?;
        write_customers(&mut *conn, schema, &latest.customers).await?;
        write_accounts(&mut *conn, schema, &latest.accounts).await?;
        write_meters(&mut *conn, schema, &latest.meters).await?;
        Ok(())
    }
}

/// The state of a row after a batch: the position of its last event and the row it left
/// (`None` when that event deleted it).
type Latest = (i64, Option<AcdbRow>);

/// The final state of every row a batch touched, by row identity.
#[derive(Default)]
struct LatestRows {
    customers: BTreeMap<i64, Latest>,
    accounts: BTreeMap<String, Latest>,
    /// By (source table, meter id).
    meters: BTreeMap<(&'static str, String), Latest>,
}

impl LatestRows {
    fn fold(events: &[StoredEvent]) -> Result<Self> {
        let mut latest = LatestRows::default();
        for event in events {
            let aggregate_type = event.aggregate_type.as_str();
            if !AGGREGATE_TYPES.contains(&aggregate_type) {
                continue;
            }
            let change: RowChange = decode_payload(event, "a row change")?;
            let current = match change {
                RowChange::Created { row } | RowChange::Updated { after: row, .. } => Some(row),
                RowChange::Deleted { .. } => None,
            };
            let state = (event.position, current);
            match aggregate_type {
                CUSTOMER => {
                    let id = event
                        .aggregate_id
                        .parse::<i64>()
                        .map_err(|_| unreadable(event, "its aggregate id is not a customer id"))?;
                    latest.customers.insert(id, state);
                }
                ACCOUNT => {
                    latest.accounts.insert(event.aggregate_id.clone(), state);
                }
                _ => {
                    latest.meters.insert(
                        (source_table(aggregate_type), event.aggregate_id.clone()),
                        state,
                    );
                }
            }
        }
        Ok(latest)
    }
}

const CUSTOMER_COLUMNS: Columns = &[
    ("customer_id", "bigint"),
    ("first_name", "text"),
    ("middle_name", "text"),
    ("last_name", "text"),
    ("full_name", "text"),
    ("plot_number", "text"),
    ("concession", "text"),
    ("site_code", "text"),
    ("city", "text"),
    ("district", "text"),
    ("date_connected", "timestamp"),
    ("date_terminated", "timestamp"),
    ("terminated", "boolean"),
    ("customer_type", "text"),
    ("derived_account", "text"),
    ("source_row", "jsonb"),
    ("position", "bigint"),
];

#[derive(Serialize)]
struct CustomerRow<'a> {
    customer_id: i64,
    first_name: Option<String>,
    middle_name: Option<String>,
    last_name: Option<String>,
    full_name: String,
    plot_number: Option<String>,
    concession: Option<String>,
    site_code: Option<String>,
    city: Option<String>,
    district: Option<String>,
    date_connected: Option<NaiveDateTime>,
    date_terminated: Option<NaiveDateTime>,
    terminated: bool,
    customer_type: Option<String>,
    derived_account: Option<String>,
    source_row: &'a AcdbRow,
    position: i64,
}

const PHONE_COLUMNS: Columns = &[
    ("customer_id", "bigint"),
    ("e164", "text"),
    ("last8", "text"),
    ("ordinal", "smallint"),
];

#[derive(Serialize)]
struct PhoneRow {
    customer_id: i64,
    e164: String,
    last8: String,
    ordinal: i16,
}

async fn write_customers(
    conn: &mut PgConnection,
    schema: &str,
    latest: &BTreeMap<i64, Latest>,
) -> Result<()> {
    if latest.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut phones = Vec::new();
    let mut removed = Vec::new();
    for (&customer_id, (position, row)) in latest {
        let Some((row, record)) = row
            .as_ref()
            .and_then(|row| Some((row, CustomerRecord::from_row(row)?)))
        else {
            removed.push(customer_id);
            continue;
        };
        for (ordinal, phone) in record.phones.iter().enumerate() {
            phones.push(PhoneRow {
                customer_id,
                e164: phone.as_str().to_string(),
                last8: phone.last8().to_string(),
                ordinal: i16::try_from(ordinal).unwrap_or(i16::MAX),
            });
        }
        let derived_account = match (&record.plot_number, &record.concession) {
            (Some(plot), Some(concession)) => {
                domain::account::derive_from_plot(plot, concession).map(|a| a.as_str().to_string())
            }
            _ => None,
        };
        rows.push(CustomerRow {
            customer_id,
            full_name: record.full_name(),
            first_name: record.first_name,
            middle_name: record.middle_name,
            last_name: record.last_name,
            plot_number: record.plot_number,
            site_code: record.site.as_ref().map(|s| s.as_str().to_string()),
            concession: record.concession,
            city: record.city,
            district: record.district,
            date_connected: record.date_connected,
            date_terminated: record.date_terminated,
            terminated: record.terminated,
            customer_type: record.customer_type,
            derived_account,
            source_row: row,
            position: *position,
        });
    }
    let customers = qualified(schema, "customers");
    let phone_table = qualified(schema, "customer_phones");
    let touched: Vec<i64> = latest.keys().copied().collect();
    sqlx::query(&format!(
        "delete from {phone_table} where customer_id = any($1)"
    ))
    .bind(&touched)
    .execute(&mut *conn)
    .await?;
    if !removed.is_empty() {
        sqlx::query(&format!(
            "delete from {customers} where customer_id = any($1)"
        ))
        .bind(&removed)
        .execute(&mut *conn)
        .await?;
    }
    insert_rows(
        &mut *conn,
        &customers,
        CUSTOMER_COLUMNS,
        &["customer_id"],
        &rows,
    )
    .await?;
    insert_rows(&mut *conn, &phone_table, PHONE_COLUMNS, &[], &phones).await?;
    Ok(())
}

const ACCOUNT_COLUMNS: Columns = &[
    ("account_key", "text"),
    ("account_number", "text"),
    ("customer_id", "bigint"),
    ("meter_id", "text"),
    ("community", "text"),
    ("opened", "timestamp"),
    ("source_row", "jsonb"),
    ("position", "bigint"),
];

#[derive(Serialize)]
struct AccountRow<'a> {
    account_key: &'a str,
    account_number: Option<String>,
    customer_id: Option<i64>,
    meter_id: Option<String>,
    community: Option<String>,
    opened: Option<NaiveDateTime>,
    source_row: &'a AcdbRow,
    position: i64,
}

async fn write_accounts(
    conn: &mut PgConnection,
    schema: &str,
    latest: &BTreeMap<String, Latest>,
) -> Result<()> {
    if latest.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut removed = Vec::new();
    for (key, (position, row)) in latest {
        let Some((row, record)) = row
            .as_ref()
            .and_then(|row| Some((row, AccountRecord::from_row(row)?)))
        else {
            removed.push(key.as_str());
            continue;
        };
        rows.push(AccountRow {
            account_key: key,
            account_number: record.account.as_ref().map(|a| a.as_str().to_string()),
            customer_id: record.customer_id,
            meter_id: record.meter_id,
            community: record.community,
            opened: record.opened,
            source_row: row,
            position: *position,
        });
    }
    let accounts = qualified(schema, "accounts");
    if !removed.is_empty() {
        sqlx::query(&format!(
            "delete from {accounts} where account_key = any($1)"
        ))
        .bind(&removed)
        .execute(&mut *conn)
        .await?;
    }
    insert_rows(
        &mut *conn,
        &accounts,
        ACCOUNT_COLUMNS,
        &["account_key"],
        &rows,
    )
    .await?;
    Ok(())
}

const METER_COLUMNS: Columns = &[
    ("source_table", "text"),
    ("meter_id", "text"),
    ("account_key", "text"),
    ("account_number", "text"),
    ("customer_id", "bigint"),
    ("customer_type", "text"),
    ("community", "text"),
    ("village", "text"),
    ("status", "bigint"),
    ("connect_date", "timestamp"),
    ("source_row", "jsonb"),
    ("position", "bigint"),
];

#[derive(Serialize)]
struct MeterRow<'a> {
    source_table: &'static str,
    meter_id: &'a str,
    account_key: Option<String>,
    account_number: Option<String>,
    customer_id: Option<i64>,
    customer_type: Option<String>,
    community: Option<String>,
    village: Option<String>,
    status: Option<i64>,
    connect_date: Option<NaiveDateTime>,
    source_row: &'a AcdbRow,
    position: i64,
}

#[derive(Serialize)]
struct MeterKey<'a> {
    source_table: &'static str,
    meter_id: &'a str,
}

async fn write_meters(
    conn: &mut PgConnection,
    schema: &str,
    latest: &BTreeMap<(&'static str, String), Latest>,
) -> Result<()> {
    if latest.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut removed = Vec::new();
    for ((source_table, meter_id), (position, row)) in latest {
        let Some((row, record)) = row
            .as_ref()
            .and_then(|row| Some((row, MeterRecord::from_row(row)?)))
        else {
            removed.push(MeterKey {
                source_table,
                meter_id,
            });
            continue;
        };
        rows.push(MeterRow {
            source_table,
            meter_id,
            account_key: record.raw_account,
            account_number: record.account.as_ref().map(|a| a.as_str().to_string()),
            customer_id: record.customer_id,
            customer_type: record.customer_type,
            community: record.community,
            village: record.village,
            status: record.status,
            connect_date: record.connect_date,
            source_row: row,
            position: *position,
        });
    }
    let meters = qualified(schema, "meters");
    if !removed.is_empty() {
        sqlx::query(&format!(
            "delete from {meters} m using jsonb_to_recordset($1) as r(source_table text, meter_id text) \
             where m.source_table = r.source_table and m.meter_id = r.meter_id"
        ))
        .bind(Json(&removed))
        .execute(&mut *conn)
        .await?;
    }
    insert_rows(
        &mut *conn,
        &meters,
        METER_COLUMNS,
        &["source_table", "meter_id"],
        &rows,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Queries. They read the `read_model` views, so they always see the live generation.
// ---------------------------------------------------------------------------------------------

/// A customer as the read model holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub customer_id: i64,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    /// First, middle and last name, those present, joined by spaces.
    pub full_name: String,
    /// In column order (`PHONE`, `CELL PHONE 1`, `CELL PHONE 2`), each number once.
    pub phones: Vec<PhoneNumber>,
    pub plot_number: Option<String>,
    /// `Concession name` as written.
    pub concession: Option<String>,
    pub site: Option<SiteCode>,
    pub city: Option<String>,
    pub district: Option<String>,
    /// ACDB local time (Africa/Maseru).
    pub date_connected: Option<NaiveDateTime>,
    pub date_terminated: Option<NaiveDateTime>,
    pub terminated: bool,
    pub customer_type: Option<String>,
    /// The customer's account numbers in the legacy resolution order (see [`account_numbers`]).
    pub account_numbers: Vec<String>,
    /// The `tblcustomer` row as last captured (for columns the read model does not break out:
    /// email, address, raw phone cells…).
    pub source_row: AcdbRow,
}

impl Customer {
    /// The typed reading of the captured row.
    pub fn record(&self) -> Option<CustomerRecord> {
        CustomerRecord::from_row(&self.source_row)
    }
}

#[derive(sqlx::FromRow)]
struct CustomerSqlRow {
    customer_id: i64,
    first_name: Option<String>,
    middle_name: Option<String>,
    last_name: Option<String>,
    full_name: String,
    plot_number: Option<String>,
    concession: Option<String>,
    site_code: Option<String>,
    city: Option<String>,
    district: Option<String>,
    date_connected: Option<NaiveDateTime>,
    date_terminated: Option<NaiveDateTime>,
    terminated: bool,
    customer_type: Option<String>,
    phones: Vec<String>,
    account_numbers: Vec<String>,
    source_row: Json<AcdbRow>,
}

impl From<CustomerSqlRow> for Customer {
    fn from(r: CustomerSqlRow) -> Self {
        Customer {
            customer_id: r.customer_id,
            first_name: r.first_name,
            middle_name: r.middle_name,
            last_name: r.last_name,
            full_name: r.full_name,
            // Written from parsed numbers, so they parse again; one that did not would be dropped
            // rather than fail the whole answer.
            phones: r
                .phones
                .iter()
                .filter_map(|p| PhoneNumber::parse(p).ok())
                .collect(),
            plot_number: r.plot_number,
            concession: r.concession,
            site: r.site_code.as_deref().and_then(|s| SiteCode::parse(s).ok()),
            city: r.city,
            district: r.district,
            date_connected: r.date_connected,
            date_terminated: r.date_terminated,
            terminated: r.terminated,
            customer_type: r.customer_type,
            account_numbers: r.account_numbers,
            source_row: r.source_row.0,
        }
    }
}

/// The account numbers of customer `c` (legacy-system.md §2.4, `customer_api.py:162-218`): the
/// union of the `tblaccountnumbers` rows naming them and the accounts of the `tblmeter` and
/// `Copy Of tblmeter` rows naming them; only if there are none, the account their plot number
/// implies. Sorted by byte value, as Python's `sorted` did.
const ACCOUNT_NUMBERS_OF_C: &str = "coalesce(
        nullif(array(
            select s.account collate \"C\" from (
                select a.account_key as account from read_model.accounts a where a.customer_id = c.customer_id
                union
                select m.account_key from read_model.meters m
                where m.customer_id = c.customer_id and m.account_key is not null
            ) s order by 1), '{}'),
        array_remove(array[c.derived_account], null))";

fn select_customers(condition: &str, tail: &str) -> String {
    format!(
        "select c.customer_id, c.first_name, c.middle_name, c.last_name, c.full_name, c.plot_number, c.concession, \
             c.site_code, c.city, c.district, c.date_connected, c.date_terminated, c.terminated, c.customer_type, \
             array(select p.e164 from read_model.customer_phones p where p.customer_id = c.customer_id \
                   order by p.ordinal) as phones, \
             {ACCOUNT_NUMBERS_OF_C} as account_numbers, \
             c.source_row \
         from read_model.customers c where {condition} {tail}"
    )
}

/// The customer with `customer_id`.
pub async fn customer_by_id(pool: &PgPool, customer_id: i64) -> Result<Option<Customer>> {
    let row: Option<CustomerSqlRow> = sqlx::query_as(&select_customers("c.customer_id = $1", ""))
        .bind(customer_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Customer::from))
}

/// The customers with `phone` among their phones, by customer id.
///
/// Phones are stored in E.164, so any way of writing a number (`58123456`, `+266 5812 3456`,
/// `0026658123456`…) finds the same customers once parsed. When no E.164 number matches, the
/// legacy rule is the fallback: the last 8 digits (the legacy matched `LIKE '%<last 8>'`), which
/// finds a number stored under another country code.
pub async fn customers_by_phone(pool: &PgPool, phone: &PhoneNumber) -> Result<Vec<Customer>> {
    let exact = customers_with_phone_where(pool, "e164", phone.as_str()).await?;
    if !exact.is_empty() {
        return Ok(exact);
    }
    customers_with_phone_where(pool, "last8", phone.last8()).await
}

/// The customers with a phone whose `column` (of `customer_phones`) is `value`, by customer id.
async fn customers_with_phone_where(
    pool: &PgPool,
    column: &'static str,
    value: &str,
) -> Result<Vec<Customer>> {
    let rows: Vec<CustomerSqlRow> = sqlx::query_as(&select_customers(
        &format!(
            "c.customer_id in (select p.customer_id from read_model.customer_phones p where p.{column} = $1)"
        ),
        "order by c.customer_id",
    ))
    .bind(value)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Customer::from).collect())
}

/// The customers an account number maps to, looked up like the legacy `/customers/by-account`
/// (legacy-system.md §1.1): in `tblaccountnumbers`, then `tblmeter`, then `Copy Of tblmeter`;
/// the first table that maps the account to a customer id decides. The account matches
/// ignoring case and surrounding spaces (Access compares text that way), or by its canonical
/// form (`mak0045` finds `0045MAK`). Usually one customer; a meter register naming the account
/// for several customers gives them all, by customer id.
pub async fn customers_by_account(pool: &PgPool, account: &str) -> Result<Vec<Customer>> {
    let account = account.trim();
    if account.is_empty() {
        return Ok(Vec::new());
    }
    let canonical = domain::account::AccountNumber::parse(account)
        .ok()
        .map(|a| a.as_str().to_string());
    let condition = "c.customer_id in (
            with hits as (
                select 1 as source_rank, a.customer_id from read_model.accounts a
                where (upper(a.account_key) = upper($1) or a.account_number = $2) and a.customer_id is not null
                union all
                select case m.source_table when $3 then 2 else 3 end, m.customer_id from read_model.meters m
                where (upper(m.account_key) = upper($1) or m.account_number = $2) and m.customer_id is not null
            )
            select h.customer_id from hits h where h.source_rank = (select min(source_rank) from hits))";
    let rows: Vec<CustomerSqlRow> =
        sqlx::query_as(&select_customers(condition, "order by c.customer_id"))
            .bind(account)
            .bind(canonical)
            .bind(source_table(METER))
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(Customer::from).collect())
}

/// Customers matching `query` (case-insensitive, anywhere in the text): by customer id, name,
/// plot number, concession, city or district (the legacy search's fields), by one of their
/// phones' digits, or by one of their account numbers. At most `limit` (1 to 100), by
/// customer id. A query of blanks finds nothing.
pub async fn search(pool: &PgPool, query: &str, limit: i64) -> Result<Vec<Customer>> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let pattern = format!("%{}%", escape_like(&query.to_lowercase()));
    let phone_digits = phone_like_digits(query).map(|digits| format!("%{digits}%"));
    let condition = "c.customer_id in (
            select c2.customer_id from read_model.customers c2 where c2.search_text like $1
            union
            select p.customer_id from read_model.customer_phones p where $2::text is not null and p.e164 like $2
            union
            select a.customer_id from read_model.accounts a
            where lower(a.account_key) like $1 and a.customer_id is not null
            union
            select m.customer_id from read_model.meters m
            where lower(m.account_key) like $1 and m.customer_id is not null)";
    let rows: Vec<CustomerSqlRow> = sqlx::query_as(&select_customers(
        condition,
        "order by c.customer_id limit $3",
    ))
    .bind(pattern)
    .bind(phone_digits)
    .bind(limit.clamp(1, 100))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Customer::from).collect())
}

/// A page of customers, by customer id: those of `site` (when given) matching `query` (when
/// given, as [`search`] matches), at most `limit` (1 to 100) from `offset`; and how many match in
/// all, so a list can page through every one of them rather than the first hundred.
pub async fn page(
    pool: &PgPool,
    query: Option<&str>,
    site: Option<&SiteCode>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Customer>, i64)> {
    let query = query.map(str::trim).filter(|q| !q.is_empty());
    let pattern = query.map(|q| format!("%{}%", escape_like(&q.to_lowercase())));
    let phone_digits = query
        .and_then(phone_like_digits)
        .map(|digits| format!("%{digits}%"));
    let site = site.map(|s| s.as_str().to_string());
    let condition = "($2::text is null or c.site_code = $2) and ($1::text is null or c.customer_id in (
            select c2.customer_id from read_model.customers c2 where c2.search_text like $1
            union
            select p.customer_id from read_model.customer_phones p where $3::text is not null and p.e164 like $3
            union
            select a.customer_id from read_model.accounts a
            where lower(a.account_key) like $1 and a.customer_id is not null
            union
            select m.customer_id from read_model.meters m
            where lower(m.account_key) like $1 and m.customer_id is not null))";
    let total: i64 = sqlx::query_scalar(&format!(
        "select count(*) from read_model.customers c where {condition}"
    ))
    .bind(&pattern)
    .bind(&site)
    .bind(&phone_digits)
    .fetch_one(pool)
    .await?;
    let rows: Vec<CustomerSqlRow> = sqlx::query_as(&select_customers(
        condition,
        "order by c.customer_id limit $4 offset $5",
    ))
    .bind(&pattern)
    .bind(&site)
    .bind(&phone_digits)
    .bind(limit.clamp(1, 100))
    .bind(offset.max(0))
    .fetch_all(pool)
    .await?;
    Ok((rows.into_iter().map(Customer::from).collect(), total))
}

/// How many customers the read model holds.
pub async fn customer_count(pool: &PgPool) -> Result<i64> {
    let count: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(pool)
        .await?;
    Ok(count)
}

/// A meter as a customer's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CustomerMeter {
    pub meter_id: String,
    pub account_number: Option<String>,
    pub community: Option<String>,
    pub customer_type: Option<String>,
    pub connect_date: Option<NaiveDateTime>,
    /// `tblmeter`, or `Copy Of tblmeter` for the legacy's older copy.
    pub source_table: String,
}

/// The meters naming `customer_id`, newest connection first (undated ones last).
pub async fn meters_of(pool: &PgPool, customer_id: i64) -> Result<Vec<CustomerMeter>> {
    Ok(sqlx::query_as(
        "select meter_id, account_number, community, customer_type, connect_date, source_table
         from read_model.meters where customer_id = $1
         order by connect_date desc nulls last, source_table, meter_id",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await?)
}

/// The account numbers of `customer_id` in the legacy resolution order (legacy-system.md §2.4):
/// the accounts rows and meters naming the customer, else the account their plot implies;
/// sorted. Empty for an unknown customer.
pub async fn account_numbers(pool: &PgPool, customer_id: i64) -> Result<Vec<String>> {
    let numbers: Option<Vec<String>> = sqlx::query_scalar(&format!(
        "select {ACCOUNT_NUMBERS_OF_C} from read_model.customers c where c.customer_id = $1"
    ))
    .bind(customer_id)
    .fetch_optional(pool)
    .await?;
    Ok(numbers.unwrap_or_default())
}

/// The sites customers belong to, by their `Concession name` trimmed (blank names left out; the
/// legacy listed `MAK` and `MAK ` apart and counted a blank name as a site, legacy-system.md
/// §3.16 B5), with the number of customers of each, sorted by name.
pub async fn sites(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select btrim(concession) as site, count(*) from read_model.customers
         where btrim(coalesce(concession, '')) <> ''
         group by btrim(concession) order by 1",
    )
    .fetch_all(pool)
    .await?)
}

/// `text` with LIKE's wildcards and escape character escaped (PostgreSQL's default escape is `\`).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The digits to look for in phones when a query is written like a phone number (only digits,
/// spaces, dashes, dots, brackets and a leading `+`): its digits without leading zeros (a trunk
/// `0` or an international `00` is not stored in E.164), if at least 5 remain — the legacy
/// lookup's minimum, below which a query like `0045` would match nearly every phone.
fn phone_like_digits(query: &str) -> Option<String> {
    let body = query.strip_prefix('+').unwrap_or(query);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return None;
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0');
    (significant.len() >= 5).then(|| significant.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_query_are_matched_literally() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn a_query_written_like_a_phone_yields_its_digits() {
        assert_eq!(
            phone_like_digits("+266 5812-3456").as_deref(),
            Some("26658123456")
        );
        assert_eq!(phone_like_digits("(058) 123"), Some("58123".to_string()));
        assert_eq!(
            phone_like_digits("0026658123456").as_deref(),
            Some("26658123456")
        );
        assert_eq!(phone_like_digits("0007"), None);
        assert_eq!(phone_like_digits("1234"), None);
        assert_eq!(phone_like_digits("MAK 0045"), None);
    }

    #[test]
    fn the_meter_tables_are_named_as_in_the_catalogue() {
        assert_eq!(source_table(METER), "tblmeter");
        assert_eq!(source_table(METER_REGISTER_COPY), "Copy Of tblmeter");
    }
}
