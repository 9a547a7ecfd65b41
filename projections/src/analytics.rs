//! The `analytics` read model: the account ledgers and meter readings, kept so that every figure
//! of the O&M report and the dashboards (legacy-system.md §3) is a small query, however long the
//! history grows.
//!
//! Tables:
//! - `transactions`: one row per ledger row of `tblaccounthistory1` and
//!   `tblaccounthistoryOriginal` (`source` says which: the legacy figures use the first and fall
//!   back to the second only when the first is empty, never merging them), read by
//!   `domain::records::transaction`: trimmed account, its legacy site, date (and whether it was
//!   missing or unparseable), quarter, month, day, exact amount and kWh;
//! - `period_totals`: per source, period (quarter `Q` or month `M`; `Unknown` for rows without a
//!   usable date), site (`''` when the account has none) and whether the row has an account, the
//!   exact sums of amount and kWh and the row count — kept by adding each change's after-row and
//!   subtracting its before-row;
//! - `account_first`: per source and account (trimmed text, compared case-sensitively as the
//!   legacy did), its site and its first dated quarter and month: who counts as a customer in a
//!   period (every account seen with a dated row up to it);
//! - `quarter_days`: per source and quarter, the calendar days with dated rows (legacy bug B4's
//!   intent: calendar days of parseable dates only);
//! - `reading_hours`: per meter, community and hour of the day, the sum and count of power
//!   readings (the 24-hour load profiles average them).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::catalog::spec_for_aggregate;
use domain::event::StoredEvent;
use domain::record::{kinds, RecordKind, RowChange};
use domain::records::reading::MeterReadingRecord;
use domain::records::transaction::TransactionRecord;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::error::Result;
use crate::projection::{decode_payload, execute_all, qualified, unreadable, Prepared, Projection};

/// The projection's permanent name.
pub const NAME: &str = "analytics";

/// The period key of rows without a usable date.
pub const UNKNOWN_PERIOD: &str = "Unknown";

const TRANSACTION: &str = kinds::AccountTransaction::AGGREGATE_TYPE;
const ARCHIVED_TRANSACTION: &str = kinds::ArchivedAccountTransaction::AGGREGATE_TYPE;
const READING: &str = kinds::MeterReading::AGGREGATE_TYPE;
const AGGREGATE_TYPES: &[&str] = &[TRANSACTION, ARCHIVED_TRANSACTION, READING];

/// Builds the `analytics` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyticsProjection;

#[async_trait]
impl Projection for AnalyticsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(AGGREGATE_TYPES)
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let transactions = qualified(schema, "transactions");
        let totals = qualified(schema, "period_totals");
        let first = qualified(schema, "account_first");
        let days = qualified(schema, "quarter_days");
        let hours = qualified(schema, "reading_hours");
        let statements = [
            // `source` (a table name) and the period keys are ccare's ASCII, which sorts the same
            // in any locale: compared bytewise ("C"), the keys and indexes that hold them cost no
            // locale-aware comparisons.
            format!(
                "create table {transactions} (
                    source     text collate \"C\" not null,
                    txn_id     bigint not null,
                    account    text,
                    site       text,
                    at         timestamp,
                    date_state text collate \"C\" not null,
                    quarter    text collate \"C\",
                    month      text collate \"C\",
                    day        date,
                    amount     numeric not null,
                    kwh        numeric not null,
                    rate       numeric,
                    payment    boolean not null,
                    balance    numeric,
                    meter_id   text,
                    position   bigint not null,
                    primary key (source, txn_id)
                )"
            ),
            format!("comment on table {transactions} is 'ccare: one row per account-ledger row (tblaccounthistory1, tblaccounthistoryOriginal = source); dates are ACDB local time (Africa/Maseru); amount/kwh NULL counted as 0'"),
            format!("comment on column {transactions}.date_state is 'dated, missing (NULL or blank) or unparseable'"),
            format!("comment on column {transactions}.account is 'accountnumber trimmed; compared case-sensitively, as the legacy figures did'"),
            // apply recomputes an account's first periods from its rows: needed while filling.
            // Equality only (recomputing an account's first periods), so bytewise is enough;
            // the query names the collation to use it.
            format!("create index on {transactions} (source, account collate \"C\")"),
            format!(
                "create table {totals} (
                    source      text not null,
                    kind        text not null,
                    period      text not null,
                    site        text not null,
                    has_account boolean not null,
                    amount      numeric not null,
                    kwh         numeric not null,
                    rows        bigint not null,
                    primary key (source, kind, period, site, has_account)
                )"
            ),
            format!("comment on table {totals} is 'ccare: exact sums of amount and kWh per source, period (kind Q: YYYY QN, M: YYYY-MM; Unknown without a usable date) and site (empty: no site)'"),
            format!(
                "create table {first} (
                    source        text not null,
                    account       text not null,
                    site          text not null,
                    first_quarter text,
                    first_month   text,
                    primary key (source, account)
                )"
            ),
            format!("comment on table {first} is 'ccare: per account its first dated quarter and month (the ARPU customer base: every account seen up to a period)'"),
            format!(
                "create table {days} (
                    source  text not null,
                    quarter text not null,
                    day     date not null,
                    rows    bigint not null,
                    primary key (source, quarter, day)
                )"
            ),
            format!(
                "create table {hours} (
                    meter_id  text not null,
                    community text not null,
                    hour      smallint not null,
                    power_sum numeric not null,
                    readings  bigint not null,
                    primary key (meter_id, community, hour)
                )"
            ),
            format!("comment on table {hours} is 'ccare: per meter, community (upper-cased; empty if none) and hour of day, the sum and number of non-null tblmeterdata1 power readings (kW)'"),
        ];
        execute_all(conn, statements).await
    }

    fn secondary_indexes(&self, schema: &str) -> Vec<String> {
        let transactions = qualified(schema, "transactions");
        let first = qualified(schema, "account_first");
        vec![
            // Case-insensitive account lookups (reports::account_ledger): equality, so bytewise.
            format!("create index on {transactions} (source, upper(account) collate \"C\")"),
            format!("create index on {transactions} (source, quarter)"),
            format!("create index on {first} (source, first_quarter)"),
            format!("create index on {first} (source, first_month)"),
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        Batch::of(events)?.write(conn, schema).await
    }

    fn prepare(&self, events: &[StoredEvent]) -> Result<Option<Prepared>> {
        Ok(Some(Box::new(Batch::of(events)?)))
    }

    async fn apply_prepared(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
        prepared: Option<Prepared>,
    ) -> Result<()> {
        match prepared.and_then(|p| p.downcast::<Batch>().ok()) {
            Some(batch) => batch.write(conn, schema).await,
            None => self.apply(conn, schema, events).await,
        }
    }
}

/// A ledger row as `transactions` stores it.
#[derive(Debug, Clone)]
struct TransactionRow {
    source: &'static str,
    txn_id: i64,
    account: Option<String>,
    site: Option<String>,
    at: Option<chrono::NaiveDateTime>,
    date_state: &'static str,
    quarter: Option<String>,
    month: Option<String>,
    day: Option<NaiveDate>,
    amount: Decimal,
    kwh: Decimal,
    rate: Option<Decimal>,
    payment: bool,
    balance: Option<Decimal>,
    meter_id: Option<String>,
    position: i64,
}

const TRANSACTION_COLUMNS: &[(&str, &str)] = &[
    ("source", "text"),
    ("txn_id", "bigint"),
    ("account", "text"),
    ("site", "text"),
    ("at", "timestamp"),
    ("date_state", "text"),
    ("quarter", "text"),
    ("month", "text"),
    ("day", "date"),
    ("amount", "numeric"),
    ("kwh", "numeric"),
    ("rate", "numeric"),
    ("payment", "boolean"),
    ("balance", "numeric"),
    ("meter_id", "text"),
    ("position", "bigint"),
];

fn transaction_row(
    source: &'static str,
    record: &TransactionRecord,
    position: i64,
) -> TransactionRow {
    use domain::records::transaction::TransactionDate;
    let date_state = match &record.date {
        TransactionDate::Dated(_) => "dated",
        TransactionDate::Missing => "missing",
        TransactionDate::Unparseable(_) => "unparseable",
    };
    TransactionRow {
        source,
        txn_id: record.id,
        account: record.raw_account.clone(),
        site: record.site.as_ref().map(|s| s.as_str().to_string()),
        at: record.date.datetime(),
        date_state,
        quarter: record.date.quarter().map(|q| q.to_string()),
        month: record.date.month().map(|m| m.to_string()),
        day: record.date.date(),
        amount: record.amount.amount(),
        kwh: record.kwh.amount(),
        rate: record.rate,
        payment: record.payment,
        balance: record.balance.map(|b| b.amount()),
        meter_id: record.meter_id.clone(),
        position,
    }
}

/// Writes ledger rows (insert, or replace the row of the same source and id) as typed arrays
/// through `unnest`: binary parameters, which PostgreSQL reads far more cheaply than one JSON
/// document of the batch.
async fn upsert_transactions(
    conn: &mut PgConnection,
    table: &str,
    rows: Vec<TransactionRow>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut source = Vec::with_capacity(n);
    let mut txn_id = Vec::with_capacity(n);
    let mut account = Vec::with_capacity(n);
    let mut site = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut date_state = Vec::with_capacity(n);
    let mut quarter = Vec::with_capacity(n);
    let mut month = Vec::with_capacity(n);
    let mut day = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let mut kwh = Vec::with_capacity(n);
    let mut rate = Vec::with_capacity(n);
    let mut payment = Vec::with_capacity(n);
    let mut balance = Vec::with_capacity(n);
    let mut meter_id = Vec::with_capacity(n);
    let mut position = Vec::with_capacity(n);
    for row in rows {
        source.push(row.source);
        txn_id.push(row.txn_id);
        account.push(row.account);
        site.push(row.site);
        at.push(row.at);
        date_state.push(row.date_state);
        quarter.push(row.quarter);
        month.push(row.month);
        day.push(row.day);
        amount.push(row.amount);
        kwh.push(row.kwh);
        rate.push(row.rate);
        payment.push(row.payment);
        balance.push(row.balance);
        meter_id.push(row.meter_id);
        position.push(row.position);
    }
    let names: Vec<&str> = TRANSACTION_COLUMNS.iter().map(|(name, _)| *name).collect();
    let arrays: Vec<String> = TRANSACTION_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, sql_type))| format!("${}::{sql_type}[]", i + 1))
        .collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|name| !matches!(**name, "source" | "txn_id"))
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    sqlx::query(&format!(
        "insert into {table} ({names}) select * from unnest({arrays})
         on conflict (source, txn_id) do update set {updates}",
        names = names.join(", "),
        arrays = arrays.join(", "),
        updates = updates.join(", "),
    ))
    .bind(source)
    .bind(txn_id)
    .bind(account)
    .bind(site)
    .bind(at)
    .bind(date_state)
    .bind(quarter)
    .bind(month)
    .bind(day)
    .bind(amount)
    .bind(kwh)
    .bind(rate)
    .bind(payment)
    .bind(balance)
    .bind(meter_id)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes ledger rows that should not be in the table yet with COPY (`text`: their lines, see
/// [`copy_line`]), which PostgreSQL loads several times faster than an upsert of the same rows.
///
/// A row whose key is there after all (a log that created a row twice) makes the COPY fail on
/// the primary key; it is then undone to a savepoint and the rows are upserted instead, so the
/// outcome is the same as an upsert's either way.
async fn copy_transactions(
    conn: &mut PgConnection,
    table: &str,
    rows: Vec<TransactionRow>,
    text: &str,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = TRANSACTION_COLUMNS.iter().map(|(name, _)| *name).collect();
    // A plain savepoint: `conn` is the caller's transaction, which must go on either way.
    sqlx::query("savepoint ledger_copy")
        .execute(&mut *conn)
        .await?;
    let copied = async {
        let mut copy = conn
            .copy_in_raw(&format!("copy {table} ({}) from stdin", names.join(", ")))
            .await?;
        copy.send(text.as_bytes()).await?;
        copy.finish().await
    }
    .await;
    match copied {
        Ok(_) => {
            sqlx::query("release savepoint ledger_copy")
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            sqlx::query("rollback to savepoint ledger_copy")
                .execute(&mut *conn)
                .await?;
            tracing::warn!(
                table,
                rows = rows.len(),
                "ledger rows created twice in the log: upserted instead of copied"
            );
            upsert_transactions(conn, table, rows).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Appends `row` to `out` as a line of COPY's text format, columns in [`TRANSACTION_COLUMNS`]
/// order.
fn copy_line(out: &mut String, row: &TransactionRow) {
    use std::fmt::Write;
    fn text(out: &mut String, value: Option<&str>) {
        match value {
            None => out.push_str("\\N"),
            Some(value) => {
                for c in value.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    fn shown(out: &mut String, value: Option<impl std::fmt::Display>) {
        match value {
            None => out.push_str("\\N"),
            // Numbers, dates and timestamps never hold a character COPY would need escaped.
            Some(value) => {
                let _ = write!(out, "{value}");
            }
        }
    }
    text(out, Some(row.source));
    out.push('\t');
    shown(out, Some(row.txn_id));
    out.push('\t');
    text(out, row.account.as_deref());
    out.push('\t');
    text(out, row.site.as_deref());
    out.push('\t');
    shown(out, row.at.map(|at| at.format("%Y-%m-%d %H:%M:%S%.f")));
    out.push('\t');
    text(out, Some(row.date_state));
    out.push('\t');
    text(out, row.quarter.as_deref());
    out.push('\t');
    text(out, row.month.as_deref());
    out.push('\t');
    shown(out, row.day);
    out.push('\t');
    shown(out, Some(row.amount));
    out.push('\t');
    shown(out, Some(row.kwh));
    out.push('\t');
    shown(out, row.rate);
    out.push('\t');
    shown(out, Some(if row.payment { "t" } else { "f" }));
    out.push('\t');
    shown(out, row.balance);
    out.push('\t');
    text(out, row.meter_id.as_deref());
    out.push('\t');
    shown(out, Some(row.position));
    out.push('\n');
}

/// The ledger rows a batch deletes, replaces and creates, with the COPY text of the created
/// ones made ahead (it is most of the CPU work of writing them).
#[derive(Default)]
struct LedgerWrites {
    gone: Vec<(&'static str, i64)>,
    touched: Vec<TransactionRow>,
    fresh: Vec<TransactionRow>,
    fresh_copy: String,
}

impl LedgerWrites {
    fn of(
        rows: BTreeMap<(&'static str, i64), Option<TransactionRow>>,
        fresh: &BTreeSet<(&'static str, i64)>,
    ) -> Self {
        let mut writes = LedgerWrites::default();
        for (key, row) in rows {
            match row {
                None => writes.gone.push(key),
                Some(row) if fresh.contains(&key) => writes.fresh.push(row),
                Some(row) => writes.touched.push(row),
            }
        }
        writes.fresh_copy.reserve(writes.fresh.len() * 160);
        for row in &writes.fresh {
            copy_line(&mut writes.fresh_copy, row);
        }
        writes
    }
}

/// The key of a `period_totals` row.
type TotalKey = (&'static str, &'static str, String, String, bool);

/// An account's site and the earliest quarter and month a batch saw it dated in.
#[derive(Debug, Default)]
struct FirstSeen {
    site: String,
    quarter: Option<String>,
    month: Option<String>,
}

/// What one batch changes, gathered before anything is written.
#[derive(Default)]
struct Batch {
    /// The latest state of each ledger row touched (`None`: deleted).
    rows: BTreeMap<(&'static str, i64), Option<TransactionRow>>,
    /// Ledger rows this batch created (their first event in it is a creation): not in the table
    /// yet, so they are copied in rather than upserted.
    fresh: BTreeSet<(&'static str, i64)>,
    /// What becomes of the ledger rows, once every event is added.
    ledger: LedgerWrites,
    totals: HashMap<TotalKey, (Decimal, Decimal, i64)>,
    days: HashMap<(&'static str, String, NaiveDate), i64>,
    /// Accounts whose first period may only have moved earlier (rows created).
    earlier: BTreeMap<(&'static str, String), FirstSeen>,
    /// Accounts that lost or changed a row: their first period is computed again.
    recompute: BTreeSet<(&'static str, String)>,
    hours: HashMap<(String, String, i16), (Decimal, i64)>,
}

impl Batch {
    fn of(events: &[StoredEvent]) -> Result<Self> {
        let mut batch = Batch::default();
        for event in events {
            batch.add(event)?;
        }
        batch.ledger = LedgerWrites::of(std::mem::take(&mut batch.rows), &batch.fresh);
        Ok(batch)
    }

    fn add(&mut self, event: &StoredEvent) -> Result<()> {
        let aggregate_type = event.aggregate_type.as_str();
        if !AGGREGATE_TYPES.contains(&aggregate_type) {
            return Ok(());
        }
        let change: RowChange = decode_payload(event, "a row change")?;
        let created = matches!(change, RowChange::Created { .. });
        let (before, after) = match &change {
            RowChange::Created { row } => (None, Some(row)),
            RowChange::Updated { before, after, .. } => (Some(before), Some(after)),
            RowChange::Deleted { before } => (Some(before), None),
        };
        if aggregate_type == READING {
            if let Some(row) = before.and_then(MeterReadingRecord::from_row) {
                self.reading(&row, -1);
            }
            if let Some(row) = after.and_then(MeterReadingRecord::from_row) {
                self.reading(&row, 1);
            }
            return Ok(());
        }
        let source = spec_for_aggregate(aggregate_type)
            .map(|spec| spec.table)
            .ok_or_else(|| unreadable(event, "its aggregate type names no captured table"))?;
        let before = before.and_then(TransactionRecord::from_row);
        let after = after.and_then(TransactionRecord::from_row);
        if let Some(old) = &before {
            self.contribute(source, old, -1);
            if let Some(account) = &old.raw_account {
                self.recompute.insert((source, account.clone()));
            }
        }
        match &after {
            Some(new) => {
                self.contribute(source, new, 1);
                if let Some(account) = &new.raw_account {
                    if before.is_some() {
                        self.recompute.insert((source, account.clone()));
                    } else {
                        self.earlier_first(source, account, new);
                    }
                }
                let key = (source, new.id);
                if created && !self.rows.contains_key(&key) {
                    self.fresh.insert(key);
                }
                self.rows
                    .insert(key, Some(transaction_row(source, new, event.position)));
            }
            None => {
                if let Some(old) = &before {
                    self.rows.insert((source, old.id), None);
                } else if let Ok(id) = event.aggregate_id.parse::<i64>() {
                    self.rows.insert((source, id), None);
                }
            }
        }
        Ok(())
    }

    /// Adds (`sign` 1) or removes (-1) a ledger row's share of the totals and days.
    fn contribute(&mut self, source: &'static str, record: &TransactionRecord, sign: i64) {
        let site = record
            .site
            .as_ref()
            .map_or_else(String::new, |s| s.as_str().to_string());
        let has_account = record.raw_account.is_some();
        let quarter = record
            .date
            .quarter()
            .map_or_else(|| UNKNOWN_PERIOD.to_string(), |q| q.to_string());
        let month = record
            .date
            .month()
            .map_or_else(|| UNKNOWN_PERIOD.to_string(), |m| m.to_string());
        let factor = Decimal::from(sign);
        for (kind, period) in [("Q", quarter.clone()), ("M", month)] {
            let entry = self
                .totals
                .entry((source, kind, period, site.clone(), has_account))
                .or_insert((Decimal::ZERO, Decimal::ZERO, 0));
            entry.0 += record.amount.amount() * factor;
            entry.1 += record.kwh.amount() * factor;
            entry.2 += sign;
        }
        if let Some(day) = record.date.date() {
            *self.days.entry((source, quarter, day)).or_insert(0) += sign;
        }
    }

    fn earlier_first(&mut self, source: &'static str, account: &str, record: &TransactionRecord) {
        let site = record
            .site
            .as_ref()
            .map_or_else(String::new, |s| s.as_str().to_string());
        let quarter = record.date.quarter().map(|q| q.to_string());
        let month = record.date.month().map(|m| m.to_string());
        let entry = self
            .earlier
            .entry((source, account.to_string()))
            .or_insert(FirstSeen {
                site,
                ..FirstSeen::default()
            });
        entry.quarter = min_period(entry.quarter.take(), quarter);
        entry.month = min_period(entry.month.take(), month);
    }

    fn reading(&mut self, reading: &MeterReadingRecord, sign: i64) {
        let Some(power) = reading.power_kw else {
            return;
        };
        let community = reading
            .community
            .as_deref()
            .map(str::to_uppercase)
            .unwrap_or_default();
        let hour = i16::try_from(reading.hour()).unwrap_or(0);
        let entry = self
            .hours
            .entry((reading.meter_id.clone(), community, hour))
            .or_insert((Decimal::ZERO, 0));
        entry.0 += power * Decimal::from(sign);
        entry.1 += sign;
    }

    async fn write(self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let transactions = qualified(schema, "transactions");
        let totals = qualified(schema, "period_totals");
        let first = qualified(schema, "account_first");
        let days = qualified(schema, "quarter_days");
        let hours = qualified(schema, "reading_hours");

        let ledger = self.ledger;
        if !ledger.gone.is_empty() {
            let sources: Vec<&str> = ledger.gone.iter().map(|(s, _)| *s).collect();
            let ids: Vec<i64> = ledger.gone.iter().map(|(_, id)| *id).collect();
            sqlx::query(&format!(
                "delete from {transactions} t using unnest($1::text[], $2::int8[]) as g(source, txn_id)
                 where t.source = g.source and t.txn_id = g.txn_id"
            ))
            .bind(sources)
            .bind(ids)
            .execute(&mut *conn)
            .await?;
        }
        upsert_transactions(conn, &transactions, ledger.touched).await?;
        copy_transactions(conn, &transactions, ledger.fresh, &ledger.fresh_copy).await?;

        if !self.totals.is_empty() {
            #[derive(Serialize)]
            struct Delta<'a> {
                source: &'a str,
                kind: &'a str,
                period: &'a str,
                site: &'a str,
                has_account: bool,
                amount: Decimal,
                kwh: Decimal,
                rows: i64,
            }
            let deltas: Vec<Delta<'_>> = self
                .totals
                .iter()
                .filter(|(_, (amount, kwh, rows))| {
                    *rows != 0 || !amount.is_zero() || !kwh.is_zero()
                })
                .map(
                    |((source, kind, period, site, has_account), (amount, kwh, rows))| Delta {
                        source,
                        kind,
                        period,
                        site,
                        has_account: *has_account,
                        amount: *amount,
                        kwh: *kwh,
                        rows: *rows,
                    },
                )
                .collect();
            sqlx::query(&format!(
                "insert into {totals} (source, kind, period, site, has_account, amount, kwh, rows)
                 select source, kind, period, site, has_account, amount, kwh, rows
                 from jsonb_to_recordset($1) as d(source text, kind text, period text, site text,
                      has_account boolean, amount numeric, kwh numeric, rows bigint)
                 on conflict (source, kind, period, site, has_account) do update set
                     amount = {totals}.amount + excluded.amount, kwh = {totals}.kwh + excluded.kwh,
                     rows = {totals}.rows + excluded.rows"
            ))
            .bind(Json(&deltas))
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!("delete from {totals} where rows = 0"))
                .execute(&mut *conn)
                .await?;
        }

        if !self.days.is_empty() {
            let mut sources = Vec::new();
            let mut quarters = Vec::new();
            let mut dates = Vec::new();
            let mut counts = Vec::new();
            for ((source, quarter, day), rows) in &self.days {
                if *rows == 0 {
                    continue;
                }
                sources.push(*source);
                quarters.push(quarter.as_str());
                dates.push(*day);
                counts.push(*rows);
            }
            sqlx::query(&format!(
                "insert into {days} (source, quarter, day, rows)
                 select * from unnest($1::text[], $2::text[], $3::date[], $4::int8[])
                 on conflict (source, quarter, day) do update set rows = {days}.rows + excluded.rows"
            ))
            .bind(sources)
            .bind(quarters)
            .bind(dates)
            .bind(counts)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!("delete from {days} where rows = 0"))
                .execute(&mut *conn)
                .await?;
        }

        // Created rows can only move an account's first period earlier.
        let earlier: Vec<_> = self
            .earlier
            .iter()
            .filter(|(key, _)| !self.recompute.contains(*key))
            .collect();
        if !earlier.is_empty() {
            sqlx::query(&format!(
                "insert into {first} (source, account, site, first_quarter, first_month)
                 select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                 on conflict (source, account) do update set
                     first_quarter = least({first}.first_quarter, excluded.first_quarter),
                     first_month = least({first}.first_month, excluded.first_month)"
            ))
            .bind(earlier.iter().map(|((s, _), _)| *s).collect::<Vec<_>>())
            .bind(
                earlier
                    .iter()
                    .map(|((_, a), _)| a.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                earlier
                    .iter()
                    .map(|(_, f)| f.site.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                earlier
                    .iter()
                    .map(|(_, f)| f.quarter.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                earlier
                    .iter()
                    .map(|(_, f)| f.month.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
        }
        // Accounts that lost or changed a row: computed again from their rows.
        if !self.recompute.is_empty() {
            let sources: Vec<&str> = self.recompute.iter().map(|(s, _)| *s).collect();
            let accounts: Vec<&str> = self.recompute.iter().map(|(_, a)| a.as_str()).collect();
            sqlx::query(&format!(
                "delete from {first} f using unnest($1::text[], $2::text[]) as t(source, account)
                 where f.source = t.source and f.account = t.account"
            ))
            .bind(&sources)
            .bind(&accounts)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "insert into {first} (source, account, site, first_quarter, first_month)
                 select t.source, t.account, coalesce(max(x.site), ''),
                        min(x.quarter) filter (where x.date_state = 'dated'),
                        min(x.month) filter (where x.date_state = 'dated')
                 from unnest($1::text[], $2::text[]) as t(source, account)
                 join {transactions} x on x.source = t.source and x.account = t.account collate \"C\"
                 group by t.source, t.account"
            ))
            .bind(&sources)
            .bind(&accounts)
            .execute(&mut *conn)
            .await?;
        }

        if !self.hours.is_empty() {
            let mut meters = Vec::new();
            let mut communities = Vec::new();
            let mut hours_of_day = Vec::new();
            let mut sums = Vec::new();
            let mut counts = Vec::new();
            for ((meter, community, hour), (sum, count)) in &self.hours {
                if *count == 0 && sum.is_zero() {
                    continue;
                }
                meters.push(meter.as_str());
                communities.push(community.as_str());
                hours_of_day.push(*hour);
                sums.push(*sum);
                counts.push(*count);
            }
            sqlx::query(&format!(
                "insert into {hours} (meter_id, community, hour, power_sum, readings)
                 select * from unnest($1::text[], $2::text[], $3::int2[], $4::numeric[], $5::int8[])
                 on conflict (meter_id, community, hour) do update set
                     power_sum = {hours}.power_sum + excluded.power_sum,
                     readings = {hours}.readings + excluded.readings"
            ))
            .bind(meters)
            .bind(communities)
            .bind(hours_of_day)
            .bind(sums)
            .bind(counts)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!("delete from {hours} where readings = 0"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// The earlier of two period keys (`YYYY QN` and `YYYY-MM` sort as their periods do).
fn min_period(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_line_escapes_text_and_marks_nulls() {
        let row = TransactionRow {
            source: "tblaccounthistory1",
            txn_id: 42,
            account: Some("0045\tMAK\\x\n".to_string()),
            site: None,
            at: NaiveDate::from_ymd_opt(2025, 3, 31)
                .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 250)),
            date_state: "dated",
            quarter: Some("2025 Q1".to_string()),
            month: Some("2025-03".to_string()),
            day: NaiveDate::from_ymd_opt(2025, 3, 31),
            amount: Decimal::new(-1250, 2),
            kwh: Decimal::ZERO,
            rate: None,
            payment: true,
            balance: Some(Decimal::new(5, 1)),
            meter_id: None,
            position: 7,
        };
        let mut line = String::new();
        copy_line(&mut line, &row);
        assert_eq!(
            line,
            "tblaccounthistory1\t42\t0045\\tMAK\\\\x\\n\t\\N\t2025-03-31 23:59:59.250\tdated\t\
             2025 Q1\t2025-03\t2025-03-31\t-12.50\t0\t\\N\tt\t0.5\t\\N\t7\n"
        );
        assert_eq!(line.split('\t').count(), TRANSACTION_COLUMNS.len());
    }

    #[test]
    fn period_keys_order_like_their_periods() {
        assert_eq!(
            min_period(Some("2025 Q4".into()), Some("2025 Q1".into())).as_deref(),
            Some("2025 Q1")
        );
        assert_eq!(
            min_period(None, Some("2024-12".into())).as_deref(),
            Some("2024-12")
        );
        assert!("2024 Q4" < "2025 Q1" && "2024-12" < "2025-01");
    }
}
