//! What `ccare status` shows of the change capture.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgPool, Row};

use domain::catalog::{KeyPart, RowKey, CAPTURED_TABLES};

use super::TablePhase;
use crate::Result;

/// The change capture's state, table by table.
#[derive(Debug, Clone, Serialize)]
pub struct CdcStatus {
    pub tables: Vec<TableStatus>,
}

impl CdcStatus {
    pub fn table(&self, table: &str) -> Option<&TableStatus> {
        self.tables
            .iter()
            .find(|t| t.table.eq_ignore_ascii_case(table))
    }
}

/// One captured table.
#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub phase: TablePhase,
    /// Rows currently captured as existing.
    pub live_rows: u64,
    /// Source rows read by the last cycle.
    pub rows_seen_last_cycle: u64,
    pub events_last_cycle: u64,
    pub events_total: u64,
    pub rejected_last_cycle: u64,
    /// Rows currently recorded as rejected.
    pub rejected_total: u64,
    /// Rejected rows by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The last key the unfinished import committed (display form).
    pub snapshot_checkpoint: Option<String>,
    /// Source rows the import has read so far.
    pub snapshot_rows: u64,
    /// The watermark of an append-only table (display form).
    pub watermark: Option<String>,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_reconciled_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub paused_reason: Option<String>,
    /// An operator approved the change that paused the table; the next cycle emits it.
    pub confirmed: bool,
    /// The last schema change seen ("columns added: …").
    pub schema_note: Option<String>,
}

/// The state of every table the capture has met, in catalogue order.
pub async fn status(pool: &PgPool) -> Result<CdcStatus> {
    let rows = sqlx::query(
        "select t.table_name, t.phase, t.live_rows, t.last_rows_seen, t.last_events, t.total_events, t.last_rejected,
                t.snapshot_checkpoint, t.snapshot_rows, t.watermark, t.last_poll_at, t.last_success_at,
                t.last_reconciled_at, t.last_error, t.paused_reason, t.confirmed, t.schema_note,
                coalesce((select json_object_agg(reason, n) from (
                    select reason, count(*) as n from cdc_rejected_rows r
                    where r.table_name = t.table_name group by reason) g), '{}'::json) as rejected
         from cdc_table_state t",
    )
    .fetch_all(pool)
    .await?;
    let mut tables = Vec::with_capacity(rows.len());
    for row in rows {
        let phase: String = row.try_get("phase")?;
        let checkpoint: Option<Json<RowKey>> = row.try_get("snapshot_checkpoint")?;
        let watermark: Option<Json<KeyPart>> = row.try_get("watermark")?;
        let rejected: Json<BTreeMap<String, u64>> = row.try_get("rejected")?;
        let count = |name: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
        tables.push(TableStatus {
            table: row.try_get("table_name")?,
            phase: TablePhase::parse(&phase)?,
            live_rows: count("live_rows")?,
            rows_seen_last_cycle: count("last_rows_seen")?,
            events_last_cycle: count("last_events")?,
            events_total: count("total_events")?,
            rejected_last_cycle: count("last_rejected")?,
            rejected_total: rejected.0.values().sum(),
            rejected_by_reason: rejected.0,
            snapshot_checkpoint: checkpoint.map(|k| k.0.to_string()),
            snapshot_rows: count("snapshot_rows")?,
            watermark: watermark.map(|w| w.0.to_string()),
            last_poll_at: row.try_get("last_poll_at")?,
            last_success_at: row.try_get("last_success_at")?,
            last_reconciled_at: row.try_get("last_reconciled_at")?,
            last_error: row.try_get("last_error")?,
            paused_reason: row.try_get("paused_reason")?,
            confirmed: row.try_get("confirmed")?,
            schema_note: row.try_get("schema_note")?,
        });
    }
    // Catalogue order (masters before history); a table no longer in the catalogue goes last.
    let rank = |t: &TableStatus| {
        CAPTURED_TABLES
            .iter()
            .position(|s| s.table.eq_ignore_ascii_case(&t.table))
            .unwrap_or(usize::MAX)
    };
    tables.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.table.cmp(&b.table)));
    Ok(CdcStatus { tables })
}
