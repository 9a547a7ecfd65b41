//! The initial import of a table: every row becomes a `…Created` event, chunk by chunk, each
//! chunk committed with its checkpoint.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use domain::acdb::RowHash;
use domain::catalog::{KeyPart, RejectReason, RowKey, TableSpec};

use super::events::{EventFactory, SnapshotEncoder};
use super::scan::{Chunk, ScannedRow, Source};
use super::state::{self, Drift, Reject};
use super::{CycleContext, Phase, TablePhase, TableReport};
use crate::acdb::ScanFilter;
use crate::store::copy::BinaryCopy;
use crate::store::{EncodedEvent, EventStore, OnDuplicate};
use crate::{Error, Result};

/// A source row made ready for import on the reader's thread: its event is encoded there (the
/// row itself is dropped there too), so that this work overlaps the previous chunk's writes and
/// a chunk in memory is about the size of its events' text.
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
    /// Fails only for a key PostgreSQL cannot store (a NUL character): the chunk fails with it.
    event: Result<EncodedEvent>,
}

fn prepare(
    spec: &'static TableSpec,
    encoder: &mut SnapshotEncoder,
    row: ScannedRow,
    read_at: DateTime<Utc>,
) -> SnapshotRow {
    let watermark = state::watermark_of(spec, &row.row);
    let keyed = row.key.map(|key| {
        let id = key.to_string();
        let event = encoder.created(&id, &row.row, row.hash, read_at);
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
    let mut encoder = SnapshotEncoder::new(EventFactory {
        spec,
        phase: Phase::Snapshot,
        correlation_id: cx.correlation_id,
    });
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
            prepare(spec, &mut encoder, row, read_at)
        });
    // Two chunks in flight: the next chunk's row states are written (on a connection of its
    // own) while the previous chunk appends its events and commits. The next chunk commits
    // only after checking, under the table's lock, that the previous one committed the
    // checkpoint it started from, so commits stay in scan order.
    // Where the time goes, logged at the end (debug): writing the row states, settling, and
    // waiting for the reader with nothing else to do.
    let busy = Busy::default();
    let settle = Settle {
        spec,
        columns: &columns_json,
        schema_note: note.as_deref(),
        busy: &busy,
    };
    let mut pending: Option<Staged> = match scan.next().await {
        None => None,
        Some(chunk) => Some(
            busy.stage
                .time(stage(&cdc.pool, table, position.scan_base, chunk))
                .await?,
        ),
    };
    while let Some(staged) = pending.take() {
        // The next chunk is read and staged while this one settles; it commits only after this
        // one did (see `Settle::settle`).
        let scan_base = position.scan_base;
        let (settled, next) = tokio::join!(
            busy.settle
                .time(settle.run(staged, &mut position, &mut report)),
            async {
                let chunk = busy.wait.time(scan.next()).await?;
                Some(
                    busy.stage
                        .time(stage(&cdc.pool, table, scan_base, chunk))
                        .await,
                )
            }
        );
        let rows = settled?;
        pending = next.transpose()?;
        cdc.progress.rows_done(table, rows);
    }
    tracing::debug!(
        table,
        staging_s = busy.stage.seconds(),
        settling_s = busy.settle.seconds(),
        committing_s = busy.commit.seconds(),
        waiting_for_reader_s = busy.wait.seconds(),
        "import timings"
    );
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

/// Time spent in each step of the import's pipeline.
#[derive(Default)]
struct Busy {
    stage: Stopwatch,
    settle: Stopwatch,
    /// The part of `settle` spent committing.
    commit: Stopwatch,
    wait: Stopwatch,
}

/// Total time spent awaiting some futures, in nanoseconds; shared by concurrent ones, each
/// timing itself.
#[derive(Default)]
struct Stopwatch(AtomicU64);

impl Stopwatch {
    async fn time<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let out = work.await;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
        out
    }

    fn seconds(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// A chunk whose row states are written, in its open transaction.
struct Staged {
    tx: Transaction<'static, Postgres>,
    rows: u64,
    keyed: Vec<KeyedRow>,
    rejects: Vec<Reject>,
    /// The keys whose row state the chunk inserted, when that is not all of `keyed` (some key
    /// was stored already); `None` when every row's state went in.
    inserted: Option<HashSet<String>>,
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
                    event: event?,
                });
            }
        }
    }
    let keyed = drop_repeats_in_chunk(keyed, &mut rejects);

    // Snapshot rows are new by construction: their states go in with a plain COPY. The row
    // states' primary key refuses a key an earlier chunk already imported, wherever the source
    // sorted it (a resumed scan reading a row again, or a duplicate key): then the chunk starts
    // over with an insert that skips such keys, and `settle` looks them up.
    let mut tx = crate::postgres::begin(pool).await?;
    let inserted = match copy_row_states(&mut tx, table, &keyed).await {
        Ok(()) => None,
        Err(error) if is_unique_violation(&error) => {
            tx.rollback().await?;
            tx = crate::postgres::begin(pool).await?;
            Some(insert_new_row_states(&mut tx, table, &keyed).await?)
        }
        Err(error) => return Err(error.into()),
    };
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

/// The row states (sequence 1, live) of `keyed`, with a COPY that fails if a key is stored.
async fn copy_row_states(
    conn: &mut PgConnection,
    table: &str,
    keyed: &[KeyedRow],
) -> std::result::Result<(), sqlx::Error> {
    if keyed.is_empty() {
        return Ok(());
    }
    let mut rows = BinaryCopy::with_capacity(keyed.len() * (table.len() + 96));
    for row in keyed {
        rows.row(5);
        rows.text(table);
        rows.text(&row.id);
        rows.bytea(&row.hash.0);
        rows.int8(1);
        rows.bool(true);
    }
    rows.end();
    let mut copy = conn
        .copy_in_raw(
            "copy cdc_row_state (table_name, row_key, row_hash, sequence, live) from stdin with (format binary)",
        )
        .await?;
    if let Err(error) = copy.send(rows.take()).await {
        // The server's own error, if it sent one, is the more useful of the two.
        return Err(copy
            .abort("sending the row states failed")
            .await
            .err()
            .unwrap_or(error));
    }
    copy.finish().await.map(drop)
}

/// The row states of `keyed` whose key is not stored yet; returns the keys that went in. Waits
/// for a concurrent chunk's transaction that inserted one of the keys to end, so the answer is
/// exact once that chunk has committed.
async fn insert_new_row_states(
    conn: &mut PgConnection,
    table: &str,
    keyed: &[KeyedRow],
) -> Result<HashSet<String>> {
    let keys: Vec<&str> = keyed.iter().map(|r| r.id.as_str()).collect();
    let hashes: Vec<&[u8]> = keyed.iter().map(|r| &r.hash.0[..]).collect();
    let inserted: Vec<String> = sqlx::query_scalar(
        "insert into cdc_row_state (table_name, row_key, row_hash, sequence, live)
         select $1, k, h, 1, true from unnest($2::text[], $3::bytea[]) as t(k, h)
         on conflict (table_name, row_key) do nothing
         returning row_key",
    )
    .bind(table)
    .bind(&keys)
    .bind(&hashes)
    .fetch_all(conn)
    .await?;
    Ok(inserted.into_iter().collect())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// What settling a chunk needs besides the chunk.
struct Settle<'a> {
    spec: &'static TableSpec,
    columns: &'a Json<Vec<String>>,
    schema_note: Option<&'a str>,
    busy: &'a Busy,
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
                self.busy.commit.time(tx.commit()).await?;
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
        inserted: Option<HashSet<String>>,
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
        let inserted_rows = inserted.as_ref().map_or(keyed.len(), HashSet::len) as u64;
        // The keys stored before this chunk, with their row's hash.
        let stored = match &inserted {
            None => HashMap::new(),
            Some(inserted) => {
                let before: Vec<&str> = keyed
                    .iter()
                    .map(|r| r.id.as_str())
                    .filter(|id| !inserted.contains(*id))
                    .collect();
                stored_row_hashes(tx, table, &before).await?
            }
        };
        drop(inserted);
        let mut new_events = Vec::with_capacity(keyed.len());
        let mut imported_before = 0u64;
        for row in keyed {
            match stored.get(&row.id) {
                None => new_events.push(row.event),
                // The row itself, imported by an earlier chunk or run that read it too (a
                // resumed scan reading it again): its event is stored already.
                Some(hash) if hash[..] == row.hash.0[..] => imported_before += 1,
                // Another row with a key an earlier chunk imported.
                Some(_) => rejects.push(Reject::duplicate(&row.id, row.ordinal)),
            }
        }
        if imported_before > 0 {
            tracing::debug!(
                table,
                rows = imported_before,
                "rows read again after a resume: already imported"
            );
        }
        // Every event left is new: its row state was just inserted, in this transaction, and a
        // row's state and its event always commit together.
        let appended =
            EventStore::append_encoded_in(&mut *tx, &new_events, OnDuplicate::Fail).await?;
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
        .bind(inserted_rows as i64)
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
    event: EncodedEvent,
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

/// The stored row hash of each of `keys`. Only called when some key was already stored.
async fn stored_row_hashes(
    tx: &mut PgConnection,
    table: &str,
    keys: &[&str],
) -> Result<HashMap<String, Vec<u8>>> {
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "select row_key, row_hash from cdc_row_state where table_name = $1 and row_key = any($2)",
    )
    .bind(table)
    .bind(keys)
    .fetch_all(&mut *tx)
    .await?;
    Ok(stored.into_iter().collect())
}
