//! The `mutations` read model: the audit of every change — ACDB rows changed through ccare's
//! audited writer or directly in Access (channel `cdc-external`), and the records ccare owns
//! (user accounts; tariffs) — with who, when, through which channel, before and after, and
//! which later change reverted it. The initial import is not a mutation and is left out.
//!
//! A mutation's id is the global-log position of its event, so ids increase with time and an
//! auditor can find the event itself.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::{UserEvent, USER_ACCOUNT};
use domain::catalog::spec_for_aggregate;
use domain::envelope::{CDC_PHASE_KEY, REVERTS_KEY};
use domain::event::{EventPayload, StoredEvent};
use domain::record::RowChange;
use domain::tariff::{TariffEvent, TARIFF_SCHEDULE};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::PgArguments;
use sqlx::types::Json;
use sqlx::{Arguments, PgConnection, PgPool};

use crate::error::{Error, Result};
use crate::projection::{execute_all, qualified, unreadable, Projection};

/// The projection's permanent name.
pub const NAME: &str = "mutations";

/// The `table_name` of user-account mutations.
pub const USERS_TABLE: &str = "users";

/// The `table_name` of tariff-schedule mutations (site and customer overrides, future global
/// rates). Changes of the current global rate are `tblconfig` mutations.
pub const TARIFFS_TABLE: &str = "tariffs";

/// Builds the `mutations` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct MutationsProjection;

/// What a mutation did, in the legacy vocabulary (a revert is `revert_<what it did>`).
fn action_name(kind: &str, revert: bool) -> String {
    if revert {
        format!("revert_{kind}")
    } else {
        kind.to_string()
    }
}

/// One row of the audit, as written.
#[derive(Debug, Serialize)]
struct MutationRow {
    id: i64,
    recorded_at: DateTime<Utc>,
    occurred_at: Option<String>,
    user_type: Option<&'static str>,
    user_id: Option<String>,
    role: Option<String>,
    channel: String,
    action: String,
    table_name: String,
    record_id: String,
    aggregate_type: String,
    old_values: Option<Value>,
    new_values: Option<Value>,
    changed: Vec<String>,
    command_id: Option<String>,
    correlation_id: Option<String>,
    reverts: Option<i64>,
    event: Option<EventPayload>,
}

fn user_type_of(role: Option<&str>) -> Option<&'static str> {
    match role {
        Some("customer") => Some("customer"),
        Some("operator") | None => None,
        Some(_) => Some("employee"),
    }
}

fn row_mutation(event: &StoredEvent, change: RowChange, table: &str) -> MutationRow {
    let revert = event.metadata.contains_key(REVERTS_KEY);
    let (kind, old, new, changed) = match change {
        RowChange::Created { row } => ("create", None, Some(row.to_plain_json()), vec![]),
        RowChange::Updated {
            before,
            after,
            changed,
        } => (
            "update",
            Some(before.to_plain_json()),
            Some(after.to_plain_json()),
            changed,
        ),
        RowChange::Deleted { before } => ("delete", Some(before.to_plain_json()), None, vec![]),
    };
    base_row(event, action_name(kind, revert), table, old, new, changed)
}

fn base_row(
    event: &StoredEvent,
    action: String,
    table: &str,
    old_values: Option<Value>,
    new_values: Option<Value>,
    changed: Vec<String>,
) -> MutationRow {
    let m = &event.metadata;
    MutationRow {
        id: event.position,
        recorded_at: event.recorded_at,
        occurred_at: m.get("occurred_at").cloned(),
        user_type: user_type_of(m.get("actor_role").map(String::as_str)),
        user_id: m.get("actor_user_id").cloned(),
        role: m.get("actor_role").cloned(),
        channel: m.get("channel").cloned().unwrap_or_else(|| "system".into()),
        action,
        table_name: table.to_string(),
        record_id: event.aggregate_id.clone(),
        aggregate_type: event.aggregate_type.clone(),
        old_values,
        new_values,
        changed,
        command_id: m.get("causation_id").cloned(),
        correlation_id: m.get("correlation_id").cloned(),
        reverts: m.get(REVERTS_KEY).and_then(|r| r.parse().ok()),
        // The stored payload as it is: the exact event a revert compensates.
        event: Some(event.payload.clone()),
    }
}

/// The audit row of a user-account event (`None`: not a change of the account, e.g. a logout).
/// Secrets never appear: a password change shows as changed, not as its hash.
fn user_mutation(event: &StoredEvent, user_event: &UserEvent) -> Option<MutationRow> {
    let revert = event.metadata.contains_key(REVERTS_KEY);
    let (kind, old, new) = match user_event {
        UserEvent::EmployeeAdded {
            employee_id,
            name,
            email,
            role,
            ..
        } => (
            "create",
            None,
            Some(
                json!({"employee_id": employee_id, "name": name, "email": email, "cc_role": role.as_str()}),
            ),
        ),
        UserEvent::CustomerRegistered {
            account_number,
            name,
            ..
        } => (
            "create",
            None,
            Some(json!({"account_number": account_number, "name": name})),
        ),
        UserEvent::RegistrationCodeIssued { code, .. } => (
            "update",
            None,
            Some(
                json!({"registration_code": "issued", "expires_at": code.expires_at, "issued_by": code.issued_by}),
            ),
        ),
        UserEvent::RoleChanged { from, to } => (
            "update",
            Some(json!({"cc_role": from.as_str()})),
            Some(json!({"cc_role": to.as_str()})),
        ),
        UserEvent::ProfileChanged {
            before_name,
            before_email,
            name,
            email,
        } => (
            "update",
            Some(json!({"name": before_name, "email": before_email})),
            Some(json!({"name": name, "email": email})),
        ),
        UserEvent::PasswordChanged { reset, .. } => (
            "update",
            Some(json!({"password": "(previous)"})),
            Some(json!({"password": if *reset { "(reset)" } else { "(changed)" }})),
        ),
        UserEvent::UserDisabled => (
            "update",
            Some(json!({"disabled": false})),
            Some(json!({"disabled": true})),
        ),
        UserEvent::UserEnabled => (
            "update",
            Some(json!({"disabled": true})),
            Some(json!({"disabled": false})),
        ),
        UserEvent::TokenRevoked { .. } => return None,
    };
    let changed = new
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    Some(base_row(
        event,
        action_name(kind, revert),
        USERS_TABLE,
        old,
        new,
        changed,
    ))
}

/// The audit row of a tariff-schedule event (`None` for the bookkeeping of a global rate
/// written to `tblconfig`, which is audited as that `tblconfig` change).
fn tariff_mutation(event: &StoredEvent, tariff_event: &TariffEvent) -> Option<MutationRow> {
    let revert = event.metadata.contains_key(REVERTS_KEY);
    let entry_json = |from: &chrono::NaiveDateTime, entry: &domain::tariff::ScheduleEntry| {
        json!({
            "effective_from": from.format("%Y-%m-%d %H:%M:%S").to_string(),
            "rate_lsl": entry.rate.map(|r| r.to_string()),
            "notes": entry.notes,
        })
    };
    let (kind, old, new) = match tariff_event {
        TariffEvent::EntrySet {
            effective_from,
            entry,
            previous,
        } => (
            if previous.is_some() {
                "update"
            } else {
                "create"
            },
            previous.as_ref().map(|p| entry_json(effective_from, p)),
            Some(entry_json(effective_from, entry)),
        ),
        TariffEvent::EntryCleared {
            effective_from,
            previous,
        } => ("delete", Some(entry_json(effective_from, previous)), None),
        TariffEvent::GlobalRateApplied { .. } => return None,
    };
    Some(base_row(
        event,
        action_name(kind, revert),
        TARIFFS_TABLE,
        old,
        new,
        vec!["rate_lsl".into()],
    ))
}

/// The audit row of `event`, if it is a mutation.
fn mutation_of(event: &StoredEvent) -> Result<Option<MutationRow>> {
    if event.aggregate_type == USER_ACCOUNT {
        let user_event = event
            .payload
            .decode::<UserEvent>()
            .map_err(|_| unreadable(event, "its payload is not a user event"))?;
        return Ok(user_mutation(event, &user_event));
    }
    if event.aggregate_type == TARIFF_SCHEDULE {
        let tariff_event = event
            .payload
            .decode::<TariffEvent>()
            .map_err(|_| unreadable(event, "its payload is not a tariff event"))?;
        return Ok(tariff_mutation(event, &tariff_event));
    }
    let Some(spec) = spec_for_aggregate(&event.aggregate_type) else {
        return Ok(None);
    };
    if event.metadata.get(CDC_PHASE_KEY).map(String::as_str) == Some("snapshot") {
        return Ok(None);
    }
    let change = event
        .payload
        .decode::<RowChange>()
        .map_err(|_| unreadable(event, "its payload is not a row change"))?;
    Ok(Some(row_mutation(event, change, spec.table)))
}

const COLUMNS: &[(&str, &str)] = &[
    ("id", "bigint"),
    ("recorded_at", "timestamptz"),
    ("occurred_at", "text"),
    ("user_type", "text"),
    ("user_id", "text"),
    ("role", "text"),
    ("channel", "text"),
    ("action", "text"),
    ("table_name", "text"),
    ("record_id", "text"),
    ("aggregate_type", "text"),
    ("old_values", "jsonb"),
    ("new_values", "jsonb"),
    ("changed", "text[]"),
    ("command_id", "text"),
    ("correlation_id", "text"),
    ("reverts", "bigint"),
    ("event", "jsonb"),
];

#[async_trait]
impl Projection for MutationsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let table = qualified(schema, "mutations");
        let statements = [
            format!(
                "create table {table} (
                    id               bigint primary key,
                    recorded_at      timestamptz not null,
                    occurred_at      text,
                    user_type        text,
                    user_id          text,
                    role             text,
                    channel          text not null,
                    action           text not null,
                    table_name       text not null,
                    record_id        text not null,
                    aggregate_type   text not null,
                    old_values       jsonb,
                    new_values       jsonb,
                    changed          text[] not null,
                    command_id       text,
                    correlation_id   text,
                    reverts          bigint,
                    event            jsonb,
                    reverted_by      bigint,
                    reverted_at      timestamptz,
                    reverted_by_user text
                )"
            ),
            format!("comment on table {table} is 'ccare: every change to the ACDB (through ccare or in Access, channel cdc-external) and to the records ccare owns; id = event_log position'"),
            format!("comment on column {table}.reverts is 'the mutation this one reverts'"),
            format!("comment on column {table}.reverted_by is 'the mutation that reverted this one'"),
            format!("create index on {table} (table_name, record_id, id)"),
            format!("create index on {table} (user_id, id)"),
            format!("create index on {table} (recorded_at)"),
        ];
        execute_all(conn, statements).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        let table = qualified(schema, "mutations");
        let mut rows = Vec::new();
        for event in events {
            if let Some(row) = mutation_of(event)? {
                rows.push(row);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let names = COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ");
        let record = COLUMNS
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!(
            "insert into {table} ({names}) select {names} from jsonb_to_recordset($1) as r({record})
             on conflict (id) do nothing"
        ))
        .bind(Json(&rows))
        .execute(&mut *conn)
        .await?;
        // A revert marks what it reverted (the latest revert wins, as a redo after an undo).
        sqlx::query(&format!(
            "update {table} t set reverted_by = r.id, reverted_at = r.recorded_at, reverted_by_user = r.user_id
             from {table} r
             where r.reverts = t.id and r.id = any($1)"
        ))
        .bind(rows.iter().filter(|r| r.reverts.is_some()).map(|r| r.id).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// A mutation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutation {
    pub id: i64,
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: Option<String>,
    pub user_type: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub role: Option<String>,
    pub channel: String,
    pub action: String,
    pub table_name: String,
    pub record_id: String,
    pub aggregate_type: String,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
    pub changed: Vec<String>,
    pub command_id: Option<String>,
    pub reverts: Option<i64>,
    pub reverted_by: Option<i64>,
    pub reverted_at: Option<DateTime<Utc>>,
    pub reverted_by_user: Option<String>,
    /// The event's payload, exact (what a revert compensates).
    pub event: Option<Value>,
}

/// [`Mutation`] as its row reads.
#[derive(sqlx::FromRow)]
struct MutationSqlRow {
    id: i64,
    recorded_at: DateTime<Utc>,
    occurred_at: Option<String>,
    user_type: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    role: Option<String>,
    channel: String,
    action: String,
    table_name: String,
    record_id: String,
    aggregate_type: String,
    old_values: Option<Json<Value>>,
    new_values: Option<Json<Value>>,
    changed: Vec<String>,
    command_id: Option<String>,
    reverts: Option<i64>,
    reverted_by: Option<i64>,
    reverted_at: Option<DateTime<Utc>>,
    reverted_by_user: Option<String>,
    event: Option<Json<Value>>,
}

impl From<MutationSqlRow> for Mutation {
    fn from(r: MutationSqlRow) -> Self {
        Mutation {
            id: r.id,
            recorded_at: r.recorded_at,
            occurred_at: r.occurred_at,
            user_type: r.user_type,
            user_id: r.user_id,
            user_name: r.user_name,
            role: r.role,
            channel: r.channel,
            action: r.action,
            table_name: r.table_name,
            record_id: r.record_id,
            aggregate_type: r.aggregate_type,
            old_values: r.old_values.map(|j| j.0),
            new_values: r.new_values.map(|j| j.0),
            changed: r.changed,
            command_id: r.command_id,
            reverts: r.reverts,
            reverted_by: r.reverted_by,
            reverted_at: r.reverted_at,
            reverted_by_user: r.reverted_by_user,
            event: r.event.map(|j| j.0),
        }
    }
}

/// Filters of the mutation list; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutationFilter {
    pub table: Option<String>,
    pub user: Option<String>,
    pub action: Option<String>,
    pub channel: Option<String>,
    pub record_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

const SELECT: &str = "select m.id, m.recorded_at, m.occurred_at, m.user_type, m.user_id,
        (select u.name from read_model.users u
         where u.user_id = m.user_id and u.user_type = m.user_type limit 1) as user_name,
        m.role, m.channel, m.action, m.table_name, m.record_id, m.aggregate_type, m.old_values,
        m.new_values, m.changed, m.command_id, m.reverts, m.reverted_by, m.reverted_at,
        m.reverted_by_user, m.event
     from read_model.mutations m";

const WHERE: &str = "where ($1::text is null or lower(m.table_name) = lower($1))
       and ($2::text is null or m.user_id = $2)
       and ($3::text is null or m.action = $3)
       and ($4::text is null or m.channel = $4)
       and ($5::text is null or m.record_id = $5)
       and ($6::timestamptz is null or m.recorded_at >= $6)
       and ($7::timestamptz is null or m.recorded_at < $7)";

/// A page of mutations, newest first, and the number matching.
pub async fn list(
    pool: &PgPool,
    filter: &MutationFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Mutation>, i64)> {
    let total: i64 = sqlx::query_scalar_with(
        &format!("select count(*) from read_model.mutations m {WHERE}"),
        filter_arguments(filter, &[])?,
    )
    .fetch_one(pool)
    .await?;
    let rows: Vec<MutationSqlRow> = sqlx::query_as_with(
        &format!("{SELECT} {WHERE} order by m.id desc limit $8 offset $9"),
        filter_arguments(filter, &[limit, offset])?,
    )
    .fetch_all(pool)
    .await?;
    Ok((rows.into_iter().map(Mutation::from).collect(), total))
}

/// The filter's seven parameters (`$1`…`$7` of [`WHERE`]), then `extra`.
fn filter_arguments(filter: &MutationFilter, extra: &[i64]) -> Result<PgArguments> {
    fn add<'q, T>(args: &mut PgArguments, value: T) -> Result<()>
    where
        T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
    {
        args.add(value)
            .map_err(|e| Error::Database(sqlx::Error::Encode(e)))
    }
    let mut args = PgArguments::default();
    add(&mut args, filter.table.clone())?;
    add(&mut args, filter.user.clone())?;
    add(&mut args, filter.action.clone())?;
    add(&mut args, filter.channel.clone())?;
    add(&mut args, filter.record_id.clone())?;
    add(&mut args, filter.from)?;
    add(&mut args, filter.to)?;
    for value in extra {
        add(&mut args, *value)?;
    }
    Ok(args)
}

/// The mutation `id`.
pub async fn by_id(pool: &PgPool, id: i64) -> Result<Option<Mutation>> {
    let row: Option<MutationSqlRow> = sqlx::query_as(&format!("{SELECT} where m.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Mutation::from))
}

/// The latest mutation of the record `table`/`record_id` (a revert must be of it).
pub async fn latest_of_record(pool: &PgPool, table: &str, record_id: &str) -> Result<Option<i64>> {
    let latest: Option<i64> = sqlx::query_scalar(
        "select max(id) from read_model.mutations where table_name = $1 and record_id = $2",
    )
    .bind(table)
    .bind(record_id)
    .fetch_one(pool)
    .await?;
    Ok(latest)
}

/// Up to `limit` mutations with ids above `after`, oldest first (exports walk the audit with it).
pub async fn page_after(
    pool: &PgPool,
    filter: &MutationFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<Mutation>> {
    let rows: Vec<MutationSqlRow> = sqlx::query_as_with(
        &format!("{SELECT} {WHERE} and m.id > $8 order by m.id limit $9"),
        filter_arguments(filter, &[after, limit])?,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Mutation::from).collect())
}
