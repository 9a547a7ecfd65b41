//! The initial import of a table: every row becomes a `…Created` event, chunk by chunk, each
//! chunk committed with its checkpoint.

use std::collections::HashSet;

use chrono::Utc;
use sqlx::types::Json;
use sqlx::PgConnection;

use domain::catalog::{KeyPart, RowKey, TableSpec};
use domain::record::RowChange;

use super::events::EventFactory;
use super::scan::{Chunk, Source};
use super::state::{self, Drift, Reject};
use super::{CycleContext, Phase, TablePhase, TableReport};
use crate::acdb::ScanFilter;
use crate::store::EventStore;
use crate::{Error, Result};

/// Where the snapshot of a table stands after the last committed chunk.
struct Position {
    checkpoint: Option<RowKey>,
    rows: u64,
    /// Rows committed before this scan started: a row's ordinal in the table is this plus its
    /// ordinal in the scan.
    scan_base: u64,
    watermark: Option<KeyPart>,
}

/// Imports `spec.table` from its checkpoint to its end.
pub(super) async fn run(
    cx: &CycleContext<'_>,
    source: &mut Source,
    spec: &'static TableSpec,
) -> Result<TableReport> {
    let cdc = cx.cdc;
    let table = spec.table;
    let started = state::load(&cdc.pool, table).await?;
    let columns = source.call(move |r| r.columns(table)).await?;
    let columns: Vec<String> = columns.into_iter().map(|c| c.name).collect();
    let drift = Drift::between(&started.known_columns, &columns);
    drift.log(table);
    let total = source.call(move |r| r.count_rows(table)).await?;

    let mut report = TableReport::new(table, Phase::Snapshot);
    report.columns_added.clone_from(&drift.added);
    report.columns_removed.clone_from(&drift.removed);
    cdc.progress
        .table_started(table, Phase::Snapshot, Some(total));
    let already = started.snapshot_rows.max(0) as u64;
    if already > 0 {
        tracing::info!(
            table,
            rows_done = already,
            "resuming the import after the last committed chunk"
        );
        cdc.progress.rows_done(table, already);
    }

    let filter = match &started.checkpoint {
        Some(key) => ScanFilter::KeyAfter(key.clone()),
        None => ScanFilter::All,
    };
    let events = EventFactory {
        spec,
        phase: Phase::Snapshot,
        correlation_id: cx.correlation_id,
    };
    let mut position = Position {
        checkpoint: started.checkpoint.clone(),
        rows: already,
        scan_base: already,
        watermark: started.watermark.clone(),
    };
    let columns_json = Json(columns);
    let note = drift.note();

    let mut scan = source.scan(spec, filter, cdc.config.chunk_rows);
    while let Some(chunk) = scan.next().await {
        let rows = chunk.rows.len() as u64;
        let mut tx = cdc.pool.begin().await?;
        commit_chunk(&mut tx, spec, &events, &mut position, chunk, &mut report).await?;
        sqlx::query(
            "update cdc_table_state set known_columns = $2, schema_note = coalesce($3, schema_note) where table_name = $1",
        )
        .bind(table)
        .bind(&columns_json)
        .bind(&note)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        report.rows_seen += rows;
        cdc.progress.rows_done(table, rows);
    }
    scan.finish().await?;

    let now = Utc::now();
    sqlx::query(
        "update cdc_table_state
         set phase = 'polling', snapshot_done_at = $2, known_columns = $3, schema_note = coalesce($4, schema_note),
             last_rows_seen = $5, last_events = $6, last_rejected = $7,
             last_poll_at = $2, last_success_at = $2, last_error = null, updated_at = now()
         where table_name = $1 and phase = 'snapshot'",
    )
    .bind(table)
    .bind(now)
    .bind(&columns_json)
    .bind(&note)
    .bind(report.rows_seen as i64)
    .bind(report.events_emitted as i64)
    .bind(report.rows_rejected as i64)
    .execute(&cdc.pool)
    .await?;
    report.snapshot_complete = true;
    tracing::info!(
        table,
        rows = position.rows,
        events = report.events_emitted,
        "import finished"
    );
    Ok(report)
}

/// Writes one chunk's events, row states, rejected rows and the new checkpoint in `tx`.
async fn commit_chunk(
    tx: &mut PgConnection,
    spec: &'static TableSpec,
    events: &EventFactory,
    position: &mut Position,
    chunk: Chunk,
    report: &mut TableReport,
) -> Result<()> {
    let table = spec.table;
    let locked = state::lock(tx, table).await?;
    if locked.phase != TablePhase::Snapshot || locked.checkpoint != position.checkpoint {
        return Err(Error::Cdc(format!(
            "{table}: another capture process imported this table meanwhile; this one stops"
        )));
    }

    let rows_in_chunk = chunk.rows.len() as u64;
    let mut rejects = Vec::new();
    let mut keyed = Vec::with_capacity(chunk.rows.len());
    let mut in_chunk = HashSet::with_capacity(chunk.rows.len());
    let mut last_key = None;
    let mut watermark = position.watermark.clone();
    for row in chunk.rows {
        let ordinal = position.scan_base + row.ordinal;
        match &row.key {
            Err(reason) => rejects.push(Reject::keyless(&row, reason.clone(), ordinal)),
            Ok(key) => {
                last_key = Some(key.clone());
                watermark = state::max_watermark(watermark, state::watermark_of(spec, &row.row));
                let id = key.to_string();
                if in_chunk.insert(id.clone()) {
                    keyed.push((id, row, ordinal));
                } else {
                    rejects.push(Reject::duplicate(&id, ordinal));
                }
            }
        }
    }

    // Row states first: their primary key finds a key an earlier chunk already imported,
    // wherever the source sorted it.
    let keys: Vec<&str> = keyed.iter().map(|(id, _, _)| id.as_str()).collect();
    let hashes: Vec<&[u8]> = keyed.iter().map(|(_, row, _)| &row.hash.0[..]).collect();
    let inserted: Vec<String> = sqlx::query_scalar(
        "insert into cdc_row_state (table_name, row_key, row_hash, sequence, live)
         select $1, k, h, 1, true from unnest($2::text[], $3::bytea[]) as t(k, h)
         on conflict (table_name, row_key) do nothing
         returning row_key",
    )
    .bind(table)
    .bind(&keys)
    .bind(&hashes)
    .fetch_all(&mut *tx)
    .await?;
    let inserted: HashSet<String> = inserted.into_iter().collect();

    let mut new_events = Vec::with_capacity(inserted.len());
    for (id, row, ordinal) in keyed {
        if inserted.contains(&id) {
            let change = RowChange::Created { row: row.row };
            new_events.push(events.event(&id, 1, &change, row.hash, chunk.read_at, None));
        } else {
            rejects.push(Reject::duplicate(&id, ordinal));
        }
    }
    let appended = EventStore::append_in(&mut *tx, &new_events).await?;
    if appended.duplicates > 0 {
        // Only possible when the capture state was reset while the log kept its events.
        tracing::warn!(
            table,
            duplicates = appended.duplicates,
            "import met events already in the log; kept the stored ones"
        );
    }
    state::record_rejects(&mut *tx, table, &rejects, chunk.read_at).await?;

    let checkpoint = last_key.or_else(|| position.checkpoint.clone());
    sqlx::query(
        "update cdc_table_state
         set snapshot_checkpoint = $2, snapshot_rows = snapshot_rows + $3, live_rows = live_rows + $4,
             total_events = total_events + $5, watermark = $6,
             snapshot_started_at = coalesce(snapshot_started_at, $7), updated_at = now()
         where table_name = $1",
    )
    .bind(table)
    .bind(checkpoint.as_ref().map(Json))
    .bind(rows_in_chunk as i64)
    .bind(inserted.len() as i64)
    .bind(appended.appended as i64)
    .bind(watermark.as_ref().map(Json))
    .bind(chunk.read_at)
    .execute(&mut *tx)
    .await?;

    position.checkpoint = checkpoint;
    position.rows += rows_in_chunk;
    position.watermark = watermark;
    report.events_emitted += appended.appended;
    report.created += appended.appended;
    for reject in &rejects {
        report.count_reject(reject.reason.code());
    }
    Ok(())
}
