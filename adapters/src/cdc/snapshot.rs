//! The initial import of a table: every row becomes a `…Created` event, chunk by chunk, each
//! chunk committed with its checkpoint.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use domain::acdb::RowHash;
use domain::catalog::{KeyPart, RejectReason, RowKey, TableSpec};
use domain::event::NewEvent;
use domain::record::RowChange;

use super::events::EventFactory;
use super::scan::{Chunk, ScannedRow, Source};
use super::state::{self, Drift, Reject};
use super::{CycleContext, Phase, TablePhase, TableReport};
use crate::acdb::ScanFilter;
use crate::store::EventStore;
use crate::{Error, Result};

/// A source row made ready for import on the reader's thread: its event is built there, so that
/// building overlaps the previous chunk's writes.
struct SnapshotRow {
    /// Position in this scan, from 1.
    ordinal: u64,
    hash: RowHash,
    watermark: Option<KeyPart>,
    keyed: Result<Keyed, RejectReason>,
}

struct Keyed {
    key: RowKey,
    /// The key's display form: the aggregate id.
    id: String,
    event: NewEvent,
}

fn prepare(
    spec: &'static TableSpec,
    events: &EventFactory,
    row: ScannedRow,
    read_at: DateTime<Utc>,
) -> SnapshotRow {
    let watermark = state::watermark_of(spec, &row.row);
    let keyed = row.key.map(|key| {
        let id = key.to_string();
        let change = RowChange::Created { row: row.row };
        let event = events.event(&id, 1, &change, row.hash, read_at, None);
        Keyed { key, id, event }
    });
    SnapshotRow {
        ordinal: row.ordinal,
        hash: row.hash,
        watermark,
        keyed,
    }
}

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

    let mut scan =
        source.scan_prepared(spec, filter, cdc.config.chunk_rows, move |row, read_at| {
            prepare(spec, &events, row, read_at)
        });
    // Two chunks in flight: the next chunk's row states are written (on a connection of its
    // own) while the previous chunk appends its events and commits. The next chunk commits
    // only after checking, under the table's lock, that the previous one committed the
    // checkpoint it started from, so commits stay in scan order.
    let settle = Settle {
        spec,
        columns: &columns_json,
        schema_note: note.as_deref(),
    };
    let mut pending: Option<Staged> = None;
    loop {
        let chunk = scan.next().await;
        let settled = match (pending.take(), chunk) {
            (None, None) => break,
            (Some(staged), None) => {
                let rows = settle.run(staged, &mut position, &mut report).await?;
                cdc.progress.rows_done(table, rows);
                break;
            }
            (None, Some(chunk)) => {
                pending = Some(stage(&cdc.pool, table, position.scan_base, chunk).await?);
                continue;
            }
            (Some(staged), Some(chunk)) => {
                let scan_base = position.scan_base;
                let (settled, next) = tokio::join!(
                    settle.run(staged, &mut position, &mut report),
                    stage(&cdc.pool, table, scan_base, chunk)
                );
                let rows = settled?;
                pending = Some(next?);
                rows
            }
        };
        cdc.progress.rows_done(table, settled);
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

/// A chunk whose row states are written, in its open transaction.
struct Staged {
    tx: Transaction<'static, Postgres>,
    rows: u64,
    keyed: Vec<KeyedRow>,
    rejects: Vec<Reject>,
    /// Row states the chunk inserted (fewer than `keyed` when some key was already stored).
    inserted: u64,
    last_key: Option<RowKey>,
    watermark: Option<KeyPart>,
    read_at: DateTime<Utc>,
}

/// Opens the chunk's transaction and writes its row states. Takes no lock but the row
/// states' own index entries, so it can run while the previous chunk settles.
async fn stage(
    pool: &PgPool,
    table: &str,
    scan_base: u64,
    chunk: Chunk<SnapshotRow>,
) -> Result<Staged> {
    let rows = chunk.rows.len() as u64;
    let mut rejects = Vec::new();
    let mut keyed = Vec::with_capacity(chunk.rows.len());
    let mut last_key = None;
    let mut watermark = None;
    for row in chunk.rows {
        let ordinal = scan_base + row.ordinal;
        match row.keyed {
            Err(reason) => rejects.push(Reject::keyless(&row.hash, reason, ordinal)),
            Ok(Keyed { key, id, event }) => {
                last_key = Some(key);
                watermark = state::max_watermark(watermark, row.watermark);
                keyed.push(KeyedRow {
                    id,
                    hash: row.hash,
                    ordinal,
                    event,
                });
            }
        }
    }
    let keyed = drop_repeats_in_chunk(keyed, &mut rejects);

    // The row states' primary key finds a key an earlier chunk already imported, wherever the
    // source sorted it (see `settle`).
    let mut tx = pool.begin().await?;
    let keys: Vec<&str> = keyed.iter().map(|r| r.id.as_str()).collect();
    let hashes: Vec<&[u8]> = keyed.iter().map(|r| &r.hash.0[..]).collect();
    let inserted = sqlx::query(
        "insert into cdc_row_state (table_name, row_key, row_hash, sequence, live)
         select $1, k, h, 1, true from unnest($2::text[], $3::bytea[]) as t(k, h)
         on conflict (table_name, row_key) do nothing",
    )
    .bind(table)
    .bind(&keys)
    .bind(&hashes)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    drop((keys, hashes));
    Ok(Staged {
        tx,
        rows,
        keyed,
        rejects,
        inserted,
        last_key,
        watermark,
        read_at: chunk.read_at,
    })
}

/// What settling a chunk needs besides the chunk.
struct Settle<'a> {
    spec: &'static TableSpec,
    columns: &'a Json<Vec<String>>,
    schema_note: Option<&'a str>,
}

impl Settle<'_> {
    /// Appends a staged chunk's events, records its rejected rows and checkpoint, and commits.
    /// Returns the number of source rows committed. On failure the transaction is rolled back
    /// before returning, so a chunk staged meanwhile never waits on its locks.
    async fn run(
        &self,
        staged: Staged,
        position: &mut Position,
        report: &mut TableReport,
    ) -> Result<u64> {
        let Staged {
            mut tx,
            rows,
            keyed,
            rejects,
            inserted,
            last_key,
            watermark,
            read_at,
        } = staged;
        let outcome = self
            .settle(
                &mut tx, rows, keyed, rejects, inserted, last_key, watermark, read_at, position,
            )
            .await;
        match outcome {
            Ok(settled) => {
                tx.commit().await?;
                position.checkpoint = settled.checkpoint;
                position.rows += rows;
                position.watermark = settled.watermark;
                report.rows_seen += rows;
                report.events_emitted += settled.appended;
                report.created += settled.appended;
                for code in settled.rejected {
                    report.count_reject(code);
                }
                Ok(rows)
            }
            Err(error) => {
                // Nothing to add if the rollback fails too: the connection is discarded.
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        tx: &mut PgConnection,
        rows: u64,
        keyed: Vec<KeyedRow>,
        mut rejects: Vec<Reject>,
        inserted: u64,
        last_key: Option<RowKey>,
        watermark: Option<KeyPart>,
        read_at: DateTime<Utc>,
        position: &Position,
    ) -> Result<Settled> {
        let table = self.spec.table;
        let locked = state::lock(tx, table).await?;
        if locked.phase != TablePhase::Snapshot || locked.checkpoint != position.checkpoint {
            return Err(Error::Cdc(format!(
                "{table}: another capture process imported this table meanwhile; this one stops"
            )));
        }
        let conflicts = if inserted == keyed.len() as u64 {
            HashSet::new()
        } else {
            other_rows_with_same_key(tx, table, &keyed).await?
        };
        let mut new_events = Vec::with_capacity(keyed.len());
        for row in keyed {
            if conflicts.contains(&row.id) {
                rejects.push(Reject::duplicate(&row.id, row.ordinal));
            } else {
                // Includes a row a resumed scan read again after its chunk was committed: its
                // event id is the stored one, which the append skips.
                new_events.push(row.event);
            }
        }
        let appended = EventStore::append_in(&mut *tx, &new_events).await?;
        if appended.duplicates > 0 {
            tracing::debug!(
                table,
                duplicates = appended.duplicates,
                "rows read again after a resume: already imported"
            );
        }
        drop(new_events);
        state::record_rejects(&mut *tx, table, &rejects, read_at).await?;

        let checkpoint = last_key.or_else(|| position.checkpoint.clone());
        let watermark = state::max_watermark(position.watermark.clone(), watermark);
        sqlx::query(
            "update cdc_table_state
             set snapshot_checkpoint = $2, snapshot_rows = snapshot_rows + $3, live_rows = live_rows + $4,
                 total_events = total_events + $5, watermark = $6,
                 snapshot_started_at = coalesce(snapshot_started_at, $7),
                 known_columns = $8, schema_note = coalesce($9, schema_note), updated_at = now()
             where table_name = $1",
        )
        .bind(table)
        .bind(checkpoint.as_ref().map(Json))
        .bind(rows as i64)
        .bind(inserted as i64)
        .bind(appended.appended as i64)
        .bind(watermark.as_ref().map(Json))
        .bind(read_at)
        .bind(self.columns)
        .bind(self.schema_note)
        .execute(&mut *tx)
        .await?;
        Ok(Settled {
            checkpoint,
            watermark,
            appended: appended.appended,
            rejected: rejects.iter().map(|r| r.reason.code()).collect(),
        })
    }
}

/// What a settled chunk changed.
struct Settled {
    checkpoint: Option<RowKey>,
    watermark: Option<KeyPart>,
    appended: u64,
    rejected: Vec<&'static str>,
}

/// A keyed row of a chunk, ready to import.
struct KeyedRow {
    id: String,
    hash: RowHash,
    ordinal: u64,
    event: NewEvent,
}

/// Keeps the first row of each key in the chunk; the others are rejected as duplicates.
fn drop_repeats_in_chunk(keyed: Vec<KeyedRow>, rejects: &mut Vec<Reject>) -> Vec<KeyedRow> {
    let mut seen = HashSet::with_capacity(keyed.len());
    let first: Vec<bool> = keyed.iter().map(|r| seen.insert(r.id.as_str())).collect();
    drop(seen);
    keyed
        .into_iter()
        .zip(first)
        .filter_map(|(row, first)| {
            if !first {
                rejects.push(Reject::duplicate(&row.id, row.ordinal));
            }
            first.then_some(row)
        })
        .collect()
}

/// The keys whose stored row state holds another row's hash: keys an earlier chunk imported
/// for a different row, i.e. duplicates. A stored hash equal to the row's is this row, imported
/// now or by an earlier run that read it too. Only called when some key was already stored.
async fn other_rows_with_same_key(
    tx: &mut PgConnection,
    table: &str,
    keyed: &[KeyedRow],
) -> Result<HashSet<String>> {
    let keys: Vec<&str> = keyed.iter().map(|r| r.id.as_str()).collect();
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "select row_key, row_hash from cdc_row_state where table_name = $1 and row_key = any($2)",
    )
    .bind(table)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    let stored: HashMap<String, Vec<u8>> = stored.into_iter().collect();
    Ok(keyed
        .iter()
        .filter(|r| stored.get(&r.id).is_some_and(|h| h[..] != r.hash.0[..]))
        .map(|r| r.id.clone())
        .collect())
}
