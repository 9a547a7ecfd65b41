//! The capture's own tables: `cdc_table_state`, `cdc_row_state`, `cdc_rejected_rows`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};

use domain::acdb::{AcdbRow, AcdbValue, RowHash};
use domain::catalog::{ColumnKind, KeyPart, RejectReason, RowKey, TableKind, TableSpec};

use super::{TablePhase, TRAILING_IDS, TRAILING_PERIOD};
use crate::{Error, Result};

/// What the capture knows of a table, as read at the start of its cycle.
#[derive(Debug, Clone)]
pub(super) struct TableState {
    pub phase: TablePhase,
    pub checkpoint: Option<RowKey>,
    pub snapshot_rows: i64,
    pub watermark: Option<KeyPart>,
    pub known_columns: Vec<String>,
    pub live_rows: i64,
    pub confirmed: bool,
}

/// Creates the table's state row (phase `snapshot`) unless it exists.
pub(super) async fn ensure(pool: &PgPool, table: &str) -> Result<()> {
    sqlx::query(
        "insert into cdc_table_state (table_name) values ($1) on conflict (table_name) do nothing",
    )
    .bind(table)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn phase(pool: &PgPool, table: &str) -> Result<TablePhase> {
    let phase: String =
        sqlx::query_scalar("select phase from cdc_table_state where table_name = $1")
            .bind(table)
            .fetch_one(pool)
            .await?;
    TablePhase::parse(&phase)
}

const STATE_COLUMNS: &str =
    "phase, snapshot_checkpoint, snapshot_rows, watermark, known_columns, live_rows, confirmed";

fn decode(row: &sqlx::postgres::PgRow) -> Result<TableState> {
    let phase: String = row.try_get("phase")?;
    let checkpoint: Option<Json<RowKey>> = row.try_get("snapshot_checkpoint")?;
    let watermark: Option<Json<KeyPart>> = row.try_get("watermark")?;
    let known_columns: Json<Vec<String>> = row.try_get("known_columns")?;
    Ok(TableState {
        phase: TablePhase::parse(&phase)?,
        checkpoint: checkpoint.map(|j| j.0),
        snapshot_rows: row.try_get("snapshot_rows")?,
        watermark: watermark.map(|j| j.0),
        known_columns: known_columns.0,
        live_rows: row.try_get("live_rows")?,
        confirmed: row.try_get("confirmed")?,
    })
}

pub(super) async fn load(pool: &PgPool, table: &str) -> Result<TableState> {
    let row = sqlx::query(&format!(
        "select {STATE_COLUMNS} from cdc_table_state where table_name = $1"
    ))
    .bind(table)
    .fetch_one(pool)
    .await?;
    decode(&row)
}

/// Reads the table's state and locks it until the transaction ends: the lock that keeps two
/// capture processes from working on the same table at once.
pub(super) async fn lock(conn: &mut PgConnection, table: &str) -> Result<TableState> {
    let row = sqlx::query(&format!(
        "select {STATE_COLUMNS} from cdc_table_state where table_name = $1 for update"
    ))
    .bind(table)
    .fetch_one(conn)
    .await?;
    decode(&row)
}

pub(super) async fn record_error(pool: &PgPool, table: &str, error: &str) -> Result<()> {
    sqlx::query(
        "update cdc_table_state set last_error = $2, last_poll_at = $3, updated_at = now() where table_name = $1",
    )
    .bind(table)
    .bind(error)
    .bind(Utc::now())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn confirm(pool: &PgPool, table: &str) -> Result<()> {
    // An approval answers a pause that exists; it must not wait for a future one.
    let approved = sqlx::query(
        "update cdc_table_state set confirmed = true, updated_at = now() where table_name = $1 and phase = 'paused'",
    )
    .bind(table)
    .execute(pool)
    .await?
    .rows_affected();
    if approved == 1 {
        return Ok(());
    }
    let phase: Option<String> =
        sqlx::query_scalar("select phase from cdc_table_state where table_name = $1")
            .bind(table)
            .fetch_optional(pool)
            .await?;
    match phase {
        Some(phase) => Err(Error::Cdc(format!(
            "{table} is not paused (phase {phase}): nothing to confirm"
        ))),
        None => Err(Error::Cdc(format!(
            "{table} has never been captured: nothing to confirm"
        ))),
    }
}

/// The column-name differences between the last cycle and this one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Drift {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Drift {
    /// `known` empty means the table was never seen: nothing to compare with.
    pub(super) fn between(known: &[String], current: &[String]) -> Drift {
        if known.is_empty() {
            return Drift::default();
        }
        Drift {
            added: current
                .iter()
                .filter(|c| !known.contains(c))
                .cloned()
                .collect(),
            removed: known
                .iter()
                .filter(|c| !current.contains(c))
                .cloned()
                .collect(),
        }
    }

    pub(super) fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("columns added: {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!(
                "columns removed or renamed: {}",
                self.removed.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Logs the drift once (the caller stores the new column list).
    pub(super) fn log(&self, table: &str) {
        if !self.added.is_empty() {
            tracing::warn!(table, columns = ?self.added, "ACDB columns added: captured from now on");
        }
        if !self.removed.is_empty() {
            tracing::warn!(table, columns = ?self.removed, "ACDB columns removed or renamed: no longer in captured rows");
        }
    }
}

/// A row left out of the capture.
#[derive(Debug, Clone)]
pub(super) struct Reject {
    pub row_ref: String,
    pub reason: RejectReason,
    pub ordinal: u64,
}

impl Reject {
    /// A row that has no usable key: referred to by its content hash, which stays the same from
    /// one poll to the next as long as the row does.
    pub(super) fn keyless(hash: &RowHash, reason: RejectReason, ordinal: u64) -> Reject {
        Reject {
            row_ref: format!("#{}", &hash.to_hex()[..16]),
            reason,
            ordinal,
        }
    }

    pub(super) fn duplicate(key: &str, ordinal: u64) -> Reject {
        Reject {
            row_ref: key.to_string(),
            reason: RejectReason::DuplicateKey,
            ordinal,
        }
    }
}

/// Records rejected rows (a re-seen row updates its record).
pub(super) async fn record_rejects(
    conn: &mut PgConnection,
    table: &str,
    rejects: &[Reject],
    seen_at: DateTime<Utc>,
) -> Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    // One statement cannot update the same row twice: keep the last of each (ref, reason).
    let mut seen = HashSet::new();
    let mut refs = Vec::new();
    let mut codes = Vec::new();
    let mut details = Vec::new();
    let mut ordinals = Vec::new();
    for r in rejects.iter().rev() {
        if seen.insert((r.row_ref.as_str(), r.reason.code())) {
            refs.push(r.row_ref.clone());
            codes.push(r.reason.code().to_string());
            details.push(r.reason.to_string());
            ordinals.push(r.ordinal as i64);
        }
    }
    sqlx::query(
        "insert into cdc_rejected_rows (table_name, row_ref, reason, detail, ordinal, first_seen, last_seen)
         select $1, r, c, d, o, $6, $6 from unnest($2::text[], $3::text[], $4::text[], $5::int8[]) as t(r, c, d, o)
         on conflict (table_name, row_ref, reason)
         do update set detail = excluded.detail, ordinal = excluded.ordinal, last_seen = excluded.last_seen",
    )
    .bind(table)
    .bind(refs)
    .bind(codes)
    .bind(details)
    .bind(ordinals)
    .bind(seen_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets rejected rows a full scan starting at `scan_started` no longer met (fixed or gone).
pub(super) async fn prune_rejects(
    conn: &mut PgConnection,
    table: &str,
    scan_started: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("delete from cdc_rejected_rows where table_name = $1 and last_seen < $2")
        .bind(table)
        .bind(scan_started)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes row states (insert or replace).
pub(super) async fn upsert_rows(
    conn: &mut PgConnection,
    table: &str,
    rows: &[(String, RowHash, i64, bool)],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|r| &r.1 .0[..]).collect();
    let sequences: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let live: Vec<bool> = rows.iter().map(|r| r.3).collect();
    sqlx::query(
        "insert into cdc_row_state (table_name, row_key, row_hash, sequence, live)
         select $1, k, h, s, l from unnest($2::text[], $3::bytea[], $4::int8[], $5::bool[]) as t(k, h, s, l)
         on conflict (table_name, row_key)
         do update set row_hash = excluded.row_hash, sequence = excluded.sequence, live = excluded.live",
    )
    .bind(table)
    .bind(keys)
    .bind(hashes)
    .bind(sequences)
    .bind(live)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) fn hash_from_bytes(bytes: &[u8]) -> Result<RowHash> {
    bytes.try_into().map(RowHash).map_err(|_| {
        Error::Cdc(format!(
            "a stored row hash has {} bytes instead of 32",
            bytes.len()
        ))
    })
}

/// The latest event of each of `ids` in the log: (sequence, payload text).
pub(super) async fn latest_events(
    conn: &mut PgConnection,
    aggregate_type: &str,
    ids: &[String],
) -> Result<HashMap<String, (i64, String)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "select distinct on (aggregate_id) aggregate_id, sequence, payload::text as payload
         from event_log where aggregate_type = $1 and aggregate_id = any($2)
         order by aggregate_id, sequence desc",
    )
    .bind(aggregate_type)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get("aggregate_id")?,
                (r.try_get("sequence")?, r.try_get("payload")?),
            ))
        })
        .collect()
}

/// The value of an append-only table's watermark column in `row` (`None`: not an append-only
/// table, or a value that cannot order rows).
pub(super) fn watermark_of(spec: &TableSpec, row: &AcdbRow) -> Option<KeyPart> {
    let TableKind::AppendOnly { watermark } = spec.kind else {
        return None;
    };
    match (spec.column_kind(watermark), row.get(watermark)) {
        (_, AcdbValue::Int(i)) => Some(KeyPart::Int(*i)),
        (_, AcdbValue::DateTime { datetime }) => Some(KeyPart::DateTime(*datetime)),
        (Some(ColumnKind::Int), AcdbValue::Text(s)) => s.trim().parse().ok().map(KeyPart::Int),
        _ => None,
    }
}

/// Where a poll of an append-only table starts: the watermark minus the trailing window.
pub(super) fn window_start(watermark: &KeyPart) -> KeyPart {
    match watermark {
        KeyPart::Int(i) => KeyPart::Int(i.saturating_sub(TRAILING_IDS)),
        KeyPart::DateTime(d) => {
            KeyPart::DateTime(d.checked_sub_signed(TRAILING_PERIOD).unwrap_or(*d))
        }
        KeyPart::Text(s) => KeyPart::Text(s.clone()),
    }
}

/// The larger of two optional watermarks.
pub(super) fn max_watermark(a: Option<KeyPart>, b: Option<KeyPart>) -> Option<KeyPart> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
