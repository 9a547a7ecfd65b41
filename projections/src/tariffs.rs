//! The `tariffs` read model: the global rate as `tblconfig` holds it, the rate schedules ccare
//! owns (per site, per customer, and future global rates), and their history.
//!
//! Tables:
//! - `tariff_schedules`: one row per schedule with its entries as the domain folds them (`state`);
//! - `tariff_entries`: every entry of every schedule, for listings;
//! - `tariff_history`: every change of a rate — schedule entries set or cleared, and every change
//!   of `tblconfig.therate` (through ccare or in Access) — with who and the rate it replaced;
//! - `global_rate`: each `tblconfig` row's current `therate`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use domain::dates::maseru_local;
use domain::event::StoredEvent;
use domain::record::{kinds, RecordKind, RowChange};
use domain::records::config::TariffConfigRecord;
use domain::tariff::{TariffEvent, TariffSchedule, TariffScope, TARIFF_SCHEDULE};
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::Result;
use crate::projection::{execute_all, qualified, unreadable, Projection};

/// The projection's permanent name.
pub const NAME: &str = "tariffs";

const TARIFF_CONFIG: &str = kinds::TariffConfig::AGGREGATE_TYPE;
const AGGREGATE_TYPES: &[&str] = &[TARIFF_SCHEDULE, TARIFF_CONFIG];

/// Builds the `tariffs` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct TariffsProjection;

#[async_trait]
impl Projection for TariffsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(AGGREGATE_TYPES)
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let schedules = qualified(schema, "tariff_schedules");
        let entries = qualified(schema, "tariff_entries");
        let history = qualified(schema, "tariff_history");
        let global = qualified(schema, "global_rate");
        let statements = [
            format!(
                "create table {schedules} (
                    scope_id   text primary key,
                    scope      text not null,
                    scope_key  text not null,
                    state      jsonb not null,
                    position   bigint not null
                )"
            ),
            format!(
                "create table {entries} (
                    scope_id       text not null,
                    scope          text not null,
                    scope_key      text not null,
                    effective_from timestamp not null,
                    rate_lsl       numeric,
                    notes          text,
                    set_by         text,
                    set_at         timestamptz not null,
                    applied        boolean not null default false,
                    position       bigint not null,
                    primary key (scope_id, effective_from)
                )"
            ),
            format!("comment on table {entries} is 'ccare: rate schedule entries (effective_from is Africa/Maseru local time; a null rate ends an override)'"),
            format!(
                "create table {history} (
                    id             bigint primary key,
                    recorded_at    timestamptz not null,
                    scope          text not null,
                    scope_key      text not null,
                    action         text not null,
                    rate_lsl       numeric,
                    previous_rate  numeric,
                    effective_from timestamp not null,
                    set_by         text,
                    notes          text,
                    source         text not null
                )"
            ),
            format!("comment on column {history}.source is 'tblconfig: a change of the rate in the ACDB; schedule: an entry of a rate schedule'"),
            format!("comment on table {history} is 'ccare: every tariff change (id = event_log position); global changes of tblconfig.therate included'"),
            format!("create index on {history} (scope, scope_key, id)"),
            format!(
                "create table {global} (
                    row_key   text primary key,
                    rate_lsl  numeric,
                    since     timestamp not null,
                    position  bigint not null
                )"
            ),
            format!("comment on table {global} is 'ccare: tblconfig rows and their therate (the global tariff) as last captured'"),
        ];
        execute_all(conn, statements).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        for event in events {
            match event.aggregate_type.as_str() {
                TARIFF_SCHEDULE => apply_schedule_event(conn, schema, event).await?,
                TARIFF_CONFIG => apply_config_event(conn, schema, event).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

async fn apply_schedule_event(
    conn: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> Result<()> {
    let schedules = qualified(schema, "tariff_schedules");
    let entries = qualified(schema, "tariff_entries");
    let history = qualified(schema, "tariff_history");
    let scope = TariffScope::from_aggregate_id(&event.aggregate_id)
        .ok_or_else(|| unreadable(event, "its aggregate id is not a tariff scope"))?;
    let tariff_event = event
        .payload
        .decode::<TariffEvent>()
        .map_err(|_| unreadable(event, "its payload is not a tariff event"))?;
    let stored: Option<Json<TariffSchedule>> = sqlx::query_scalar(&format!(
        "select state from {schedules} where scope_id = $1"
    ))
    .bind(&event.aggregate_id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut schedule = stored.map(|s| s.0).unwrap_or_default();
    let set_by = event.metadata.get("actor_user_id").cloned();
    match &tariff_event {
        TariffEvent::EntrySet {
            effective_from,
            entry,
            ..
        } => {
            let previous = schedule.rate_at(*effective_from).map(|(_, r)| r);
            sqlx::query(&format!(
                "insert into {entries} (scope_id, scope, scope_key, effective_from, rate_lsl, notes, set_by, set_at, position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 on conflict (scope_id, effective_from) do update set rate_lsl = excluded.rate_lsl,
                     notes = excluded.notes, set_by = excluded.set_by, set_at = excluded.set_at,
                     applied = false, position = excluded.position"
            ))
            .bind(&event.aggregate_id)
            .bind(scope.kind())
            .bind(scope.key())
            .bind(effective_from)
            .bind(entry.rate)
            .bind(&entry.notes)
            .bind(&set_by)
            .bind(event.recorded_at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
            let action = if entry.rate.is_some() {
                "set"
            } else {
                "removed"
            };
            insert_history(
                conn,
                &history,
                event,
                HistoryEntry {
                    scope: &scope,
                    action,
                    rate: entry.rate,
                    previous,
                    effective_from: *effective_from,
                    set_by: set_by.as_deref(),
                    notes: entry.notes.as_deref(),
                    source: "schedule",
                },
            )
            .await?;
        }
        TariffEvent::EntryCleared {
            effective_from,
            previous,
        } => {
            sqlx::query(&format!(
                "delete from {entries} where scope_id = $1 and effective_from = $2"
            ))
            .bind(&event.aggregate_id)
            .bind(effective_from)
            .execute(&mut *conn)
            .await?;
            insert_history(
                conn,
                &history,
                event,
                HistoryEntry {
                    scope: &scope,
                    action: "withdrawn",
                    rate: None,
                    previous: previous.rate,
                    effective_from: *effective_from,
                    set_by: set_by.as_deref(),
                    notes: previous.notes.as_deref(),
                    source: "schedule",
                },
            )
            .await?;
        }
        TariffEvent::GlobalRateApplied { effective_from } => {
            sqlx::query(&format!(
                "update {entries} set applied = true where scope_id = $1 and effective_from = $2"
            ))
            .bind(&event.aggregate_id)
            .bind(effective_from)
            .execute(&mut *conn)
            .await?;
        }
    }
    schedule.apply_event(tariff_event);
    sqlx::query(&format!(
        "insert into {schedules} (scope_id, scope, scope_key, state, position) values ($1, $2, $3, $4, $5)
         on conflict (scope_id) do update set state = excluded.state, position = excluded.position"
    ))
    .bind(&event.aggregate_id)
    .bind(scope.kind())
    .bind(scope.key())
    .bind(Json(&schedule))
    .bind(event.position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One row of `tariff_history`.
struct HistoryEntry<'a> {
    scope: &'a TariffScope,
    action: &'a str,
    rate: Option<Decimal>,
    previous: Option<Decimal>,
    effective_from: NaiveDateTime,
    set_by: Option<&'a str>,
    notes: Option<&'a str>,
    source: &'a str,
}

async fn insert_history(
    conn: &mut PgConnection,
    history: &str,
    event: &StoredEvent,
    entry: HistoryEntry<'_>,
) -> Result<()> {
    let HistoryEntry {
        scope,
        action,
        rate,
        previous,
        effective_from,
        set_by,
        notes,
        source,
    } = entry;
    sqlx::query(&format!(
        "insert into {history} (id, recorded_at, scope, scope_key, action, rate_lsl, previous_rate, effective_from, set_by, notes, source)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) on conflict (id) do nothing"
    ))
    .bind(event.position)
    .bind(event.recorded_at)
    .bind(scope.kind())
    .bind(scope.key())
    .bind(action)
    .bind(rate)
    .bind(previous)
    .bind(effective_from)
    .bind(set_by)
    .bind(notes)
    .bind(source)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the ACDB's `tblconfig` changed: the Maseru time the change was captured.
fn occurred_local(event: &StoredEvent) -> NaiveDateTime {
    event
        .metadata
        .get("occurred_at")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(|| maseru_local(event.recorded_at), |t| t.naive_local())
}

async fn apply_config_event(
    conn: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> Result<()> {
    let global = qualified(schema, "global_rate");
    let history = qualified(schema, "tariff_history");
    let change = event
        .payload
        .decode::<RowChange>()
        .map_err(|_| unreadable(event, "its payload is not a row change"))?;
    let rate_of = |row: &domain::acdb::AcdbRow| TariffConfigRecord::from_row(row).rate;
    let (before, after) = match &change {
        RowChange::Created { row } => (None, Some(rate_of(row))),
        RowChange::Updated { before, after, .. } => (Some(rate_of(before)), Some(rate_of(after))),
        RowChange::Deleted { before } => (Some(rate_of(before)), None),
    };
    let at = occurred_local(event);
    match after {
        Some(rate) => {
            sqlx::query(&format!(
                "insert into {global} (row_key, rate_lsl, since, position) values ($1, $2, $3, $4)
                 on conflict (row_key) do update set rate_lsl = excluded.rate_lsl,
                     since = case when {global}.rate_lsl is distinct from excluded.rate_lsl
                                  then excluded.since else {global}.since end,
                     position = excluded.position"
            ))
            .bind(&event.aggregate_id)
            .bind(rate)
            .bind(at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query(&format!("delete from {global} where row_key = $1"))
                .bind(&event.aggregate_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    // The import is not a tariff change; a change of the rate is, whoever made it.
    let imported = event.metadata.get("cdc_phase").map(String::as_str) == Some("snapshot");
    let rate_changed = before.flatten() != after.flatten();
    if !imported && rate_changed {
        insert_history(
            conn,
            &history,
            event,
            HistoryEntry {
                scope: &TariffScope::Global,
                action: "set",
                rate: after.flatten(),
                previous: before.flatten(),
                effective_from: at,
                set_by: event.metadata.get("actor_user_id").map(String::as_str),
                notes: None,
                source: "tblconfig",
            },
        )
        .await?;
    }
    Ok(())
}

/// A schedule entry as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub scope: String,
    pub scope_key: String,
    pub effective_from: NaiveDateTime,
    pub rate_lsl: Option<Decimal>,
    pub notes: Option<String>,
    pub set_by: Option<String>,
    pub set_by_name: Option<String>,
    pub set_at: DateTime<Utc>,
    pub applied: bool,
}

/// Every schedule entry of `scope` (`global`, `concession`, `customer`), by key then date.
pub async fn entries(pool: &PgPool, scope: &str) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(
        "select e.scope, e.scope_key, e.effective_from, e.rate_lsl, e.notes, e.set_by,
                (select u.name from read_model.users u where u.user_type = 'employee' and u.user_id = e.set_by limit 1) as set_by_name,
                e.set_at, e.applied
         from read_model.tariff_entries e where e.scope = $1 order by e.scope_key, e.effective_from",
    )
    .bind(scope)
    .fetch_all(pool)
    .await?)
}

/// The schedule of `scope`, empty when it was never set.
pub async fn schedule(pool: &PgPool, scope: &TariffScope) -> Result<TariffSchedule> {
    let stored: Option<Json<TariffSchedule>> =
        sqlx::query_scalar("select state from read_model.tariff_schedules where scope_id = $1")
            .bind(scope.aggregate_id())
            .fetch_optional(pool)
            .await?;
    Ok(stored.map(|s| s.0).unwrap_or_default())
}

/// The global rate as `tblconfig` holds it now (the row with the smallest key), and since when.
pub async fn global_rate(pool: &PgPool) -> Result<Option<(Decimal, NaiveDateTime)>> {
    let row = sqlx::query(
        "select rate_lsl, since from read_model.global_rate where rate_lsl is not null
         order by case when row_key ~ '^[0-9]+$' then row_key::bigint end nulls last, row_key limit 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((r.try_get("rate_lsl")?, r.try_get("since")?)))
        .transpose()
}

/// The global rate in force at `at` (Maseru local time), and since when when that is known: the
/// last change of `tblconfig.therate` at or before `at`; before the first change ccare saw, the
/// rate that change replaced; with no change seen, the rate as imported. A future `at` also sees
/// scheduled global rates due by then.
pub async fn global_rate_at(
    pool: &PgPool,
    at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Option<(Decimal, Option<NaiveDateTime>)>> {
    let Some((current, since)) = global_rate(pool).await? else {
        return Ok(None);
    };
    if at >= now {
        let scheduled = schedule(pool, &TariffScope::Global).await?;
        let due = scheduled
            .rate_at(at)
            .filter(|(from, _)| *from > now && !scheduled.applied.contains(from));
        return Ok(Some(match due {
            Some((from, rate)) => (rate, Some(from)),
            None => (current, Some(since)),
        }));
    }
    let changed: Option<(Option<Decimal>, NaiveDateTime)> = sqlx::query_as(
        "select rate_lsl, effective_from from read_model.tariff_history
         where scope = 'global' and source = 'tblconfig' and effective_from <= $1
         order by effective_from desc, id desc limit 1",
    )
    .bind(at)
    .fetch_optional(pool)
    .await?;
    if let Some((rate, from)) = changed {
        return Ok(rate.map(|rate| (rate, Some(from))));
    }
    let first: Option<Option<Decimal>> = sqlx::query_scalar(
        "select previous_rate from read_model.tariff_history
         where scope = 'global' and source = 'tblconfig' order by effective_from, id limit 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(Some(match first.flatten() {
        Some(before_first_change) => (before_first_change, None),
        None => (current, None),
    }))
}

/// The key of the `tblconfig` row holding the global rate (see [`global_rate`]).
pub async fn global_rate_row(pool: &PgPool) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select row_key from read_model.global_rate
         order by case when row_key ~ '^[0-9]+$' then row_key::bigint end nulls last, row_key limit 1",
    )
    .fetch_optional(pool)
    .await?)
}

/// A history row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub recorded_at: DateTime<Utc>,
    pub scope: String,
    pub scope_key: String,
    pub action: String,
    pub rate_lsl: Option<Decimal>,
    pub previous_rate: Option<Decimal>,
    pub effective_from: NaiveDateTime,
    pub set_by: Option<String>,
    pub set_by_name: Option<String>,
    pub notes: Option<String>,
}

/// History filters.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub scope: Option<String>,
    pub key: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A page of the history, newest first, and the number of rows matching.
pub async fn history(
    pool: &PgPool,
    filter: &HistoryFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<HistoryRow>, i64)> {
    const WHERE: &str = "where ($1::text is null or h.scope = $1) and ($2::text is null or h.scope_key = $2)
        and ($3::timestamptz is null or h.recorded_at >= $3) and ($4::timestamptz is null or h.recorded_at < $4)";
    let total: i64 = sqlx::query_scalar(&format!(
        "select count(*) from read_model.tariff_history h {WHERE}"
    ))
    .bind(&filter.scope)
    .bind(&filter.key)
    .bind(filter.from)
    .bind(filter.to)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as(&format!(
        "select h.id, h.recorded_at, h.scope, h.scope_key, h.action, h.rate_lsl, h.previous_rate,
                h.effective_from, h.set_by,
                (select u.name from read_model.users u where u.user_type = 'employee' and u.user_id = h.set_by limit 1) as set_by_name,
                h.notes
         from read_model.tariff_history h {WHERE} order by h.id desc limit $5 offset $6"
    ))
    .bind(&filter.scope)
    .bind(&filter.key)
    .bind(filter.from)
    .bind(filter.to)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}
