//! ACDB change capture: every row of the captured tables becomes an event, and every later
//! change to it (made by ccare or directly in Access) becomes another.
//!
//! Access keeps no change log, so the capture polls and diffs (the Debezium pattern without a
//! log to tail): an initial snapshot, then cycles that compare each row's content hash with the
//! one last captured, and a periodic reconciliation that proves the two sides still agree.
//!
//! # State
//! Three tables (migrations/…_cdc.sql) hold the capture's memory, always written in the same
//! transaction as the events they account for:
//! - `cdc_table_state`: per table, its phase (`snapshot` → `polling`, or `paused` by the safety
//!   stop), the snapshot checkpoint, the watermark, the known columns and the counters `status` shows;
//! - `cdc_row_state`: per row, the hash and aggregate sequence of the last event emitted for it.
//!   It is a cache of the event log: a row with no state whose aggregate exists in the log is
//!   matched against its latest event, so a lost or stale `cdc_row_state` never produces a
//!   duplicate or a wrong `before`;
//! - `cdc_rejected_rows`: rows that cannot become events, with the reason.
//!
//! # Initial snapshot
//! Each table is read in key order in chunks of [`CdcConfig::chunk_rows`]. A chunk's events, row
//! states, rejected rows and the checkpoint (the last key of the chunk) commit in one
//! transaction, so an import killed anywhere resumes after the last committed chunk
//! (`ScanFilter::KeyAfter`) and emits no duplicate. Snapshot rows are new by construction, so
//! no per-row lookup is made: the row states go in with a plain COPY, and only when it meets a
//! stored key (the primary key refuses it) does the chunk start over with an insert that skips
//! stored keys and says which went in. Those that did not are looked up — a stored hash equal
//! to the row's is the same row read again after a resume (already imported: no event), another
//! hash is a duplicate key, rejected. The events are then appended without the event store's
//! duplicate-id lookup (`OnDuplicate::Fail`): a row's state and its event commit together, so an
//! event whose row state was just inserted cannot be stored yet.
//!
//! Throughput: the reader runs on a blocking thread and computes keys, hashes and the encoded
//! events themselves there (payload and metadata JSON, written once; the raw row is dropped
//! there), handing chunks over a channel of capacity one; and two chunks are in
//! flight on two connections — the next chunk's row states are written while the previous
//! chunk appends its events and commits. The next chunk settles only after checking, under the
//! table's row lock, that the checkpoint is the one the previous chunk committed, so commits
//! stay in scan order and a failure of either rolls back the later one. Memory holds at most
//! four chunks whatever the table size.
//!
//! # Polling
//! One transaction per table and cycle, holding the table's `cdc_table_state` row lock (two
//! capture processes cannot diff the same table at once):
//! 1. scan — mutable tables entirely, append-only tables from their watermark minus a trailing
//!    window ([`TRAILING_IDS`] ids, or [`TRAILING_PERIOD`] for a date watermark);
//! 2. per chunk, one statement streams the keys into a temporary `cdc_seen` table (its primary
//!    key finds duplicate keys exactly, in any source order) and returns each key's captured
//!    hash and sequence; rows whose hash differs are staged, with their content, in a temporary
//!    `cdc_stage` table — so neither the set of keys nor the set of changes is held in memory;
//! 3. mutable tables: live captured rows missing from `cdc_seen` are staged as deletions
//!    (an anti-join; append-only tables leave deletions to reconciliation);
//! 4. the safety stop counts the staged deletions and updates; an implausible cycle rolls back
//!    and pauses the table (nothing emitted);
//! 5. otherwise staged changes are emitted in chunks: the sequence to continue and the `before`
//!    row come from the aggregate's latest event in the log, read for changed rows only.
//!
//! A cycle with no change stages nothing and emits nothing. A cycle is atomic per table: cancel
//! it at any point and the next one redoes it.
//!
//! Why a key table rather than counting: a cheaper test ("as many distinct keys seen as live
//! rows captured, so nothing was deleted") needs the distinct count, which in turn needs the
//! source to return keys in `RowKey` order so that repeats are adjacent. Access sorts text
//! case-insensitively and keys are trimmed, so that order is not guaranteed; `cdc_seen` is exact
//! in any order for the price of one temporary-table insert per chunk, in the same round trip
//! as the lookup.
//!
//! # Reconciliation
//! Per table, keys are spread over 2^k hash buckets (`sha256(key)`, about [`ROWS_PER_BUCKET`]
//! rows each). Both sides compute, per bucket, the row count and the sum of the first 8 bytes
//! of the row hashes: the ACDB side while streaming a full scan (memory: one counter pair per
//! bucket), the captured side in one aggregate query over `cdc_row_state`. Buckets that
//! disagree are repaired by the same staged diff as polling, restricted to those buckets and
//! with deletions detected — which finds what polling cannot see (edits and deletions of
//! history rows behind the trailing window, a lost row state). Repairs are tagged
//! `cdc_phase=reconcile`, channel `cdc-external`, and pass the safety stop like any cycle.
//!
//! # Safety stop
//! Before a polling or reconciliation cycle emits anything for a table, its deletions and its
//! updates are each compared with `max(safety_share × live rows, SAFETY_FLOOR_ROWS)`. Above it
//! (an ACDB restored from an old backup, a truncated or wrong file) the table is paused, the
//! reason recorded and logged as an error, and nothing is emitted. Every later cycle evaluates
//! it again and resumes by itself if the change has become plausible; [`Cdc::confirm`] grants a
//! one-shot approval that lets the next cycle emit it anyway.
//!
//! # Rejected rows and schema drift
//! A row without a usable key (see `TableSpec::row_key`) or with a key another row already has
//! is recorded in `cdc_rejected_rows` (table, key or content-hash reference, reason), counted in
//! the cycle report, and skipped; the import goes on. Each cycle compares the source's column
//! names with the last ones seen: rows always carry every column, so an added column is captured
//! without a code change (NULLs do not change a row's hash, so adding one is not an update of
//! every row); additions and removals are logged once and kept in the table's status note.
//!
//! # Events
//! One event per row change: aggregate type from the catalogue, aggregate id = the row key's
//! display form, sequence = the captured sequence + 1, `event_id` =
//! `capture_event_id(type, id, sequence)` (deterministic: a repeated capture stores nothing
//! twice), envelope with actor `system` for the snapshot and `cdc-external` otherwise, one
//! correlation id per cycle, `occurred_at` = the Maseru time the change was read, the CDC
//! source (table, key, row hash), and `cdc_phase` = `snapshot` | `poll` | `reconcile`.
//!
//! # Own writes
//! Changes made by ccare's audited writer must not be reported as external edits. The seam is
//! [`OwnWrites`]: consulted for every polled or reconciled change before it is tagged
//! `cdc-external`; a claimed change takes the writer's actor and causation instead.

mod diff;
mod events;
mod own;
mod reconcile;
mod scan;
mod snapshot;
mod state;
mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use domain::acdb::{AcdbRow, RowHash};
use domain::catalog::TableSpec;
use domain::envelope::Actor;

use crate::acdb::AcdbReader;
use crate::store::EventStore;
use crate::{Error, Result};

pub use status::{status, CdcStatus, TableStatus};

pub(crate) use own::{captured_row, is_imported, lock_table, record_change, Change};

/// Ids behind the watermark an append-only table with an integer watermark re-reads each
/// cycle, to catch late arrivals and recent edits.
pub const TRAILING_IDS: i64 = 1_000;

/// The period behind the watermark an append-only table with a date watermark re-reads.
pub const TRAILING_PERIOD: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// The safety stop never trips below this many deletions or updates, however small the table.
pub const SAFETY_FLOOR_ROWS: u64 = 10;

/// The aim for the number of rows per reconciliation bucket.
pub const ROWS_PER_BUCKET: u64 = 256;

/// Opens a reader on the ACDB. Called on a blocking thread once per cycle.
pub type ReaderFactory = Arc<dyn Fn() -> Result<Box<dyn AcdbReader>> + Send + Sync>;

/// How the capture runs.
#[derive(Debug, Clone)]
pub struct CdcConfig {
    /// The tables to capture, in the order a cycle visits them (masters before history).
    pub tables: Vec<&'static TableSpec>,
    /// Rows per snapshot transaction and per batch of a scan.
    pub chunk_rows: usize,
    /// Time between the end of a cycle and the start of the next.
    pub poll_interval: Duration,
    /// Time between reconciliation passes (run by [`Cdc::run`]).
    pub reconcile_interval: Duration,
    /// The share of a table's live rows one cycle may delete, or update, before the safety stop
    /// pauses the table (see [`SAFETY_FLOOR_ROWS`]).
    pub safety_share: f64,
}

/// What a cycle is doing to a table; also the `cdc_phase` of the events it emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The initial import.
    Snapshot,
    /// Following changes.
    Poll,
    /// Checking the captured state against the ACDB and repairing drift.
    Reconcile,
    /// Recorded by ccare's audited writer for a change it made.
    Write,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Snapshot => "snapshot",
            Phase::Poll => "poll",
            Phase::Reconcile => "reconcile",
            Phase::Write => "write",
        }
    }
}

/// Where a table stands (`cdc_table_state.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TablePhase {
    /// The initial import has not finished.
    Snapshot,
    /// Imported; cycles follow its changes.
    Polling,
    /// The safety stop held back a change; see the paused reason.
    Paused,
}

impl TablePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            TablePhase::Snapshot => "snapshot",
            TablePhase::Polling => "polling",
            TablePhase::Paused => "paused",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "snapshot" => Ok(TablePhase::Snapshot),
            "polling" => Ok(TablePhase::Polling),
            "paused" => Ok(TablePhase::Paused),
            other => Err(Error::Cdc(format!(
                "cdc_table_state holds an unknown phase {other:?}"
            ))),
        }
    }
}

/// Receives progress of the capture (a progress bar, log lines). Called from the capture's task;
/// implementations must be quick.
pub trait ProgressSink: Send + Sync {
    /// A table's cycle started; `total_rows` is known for a snapshot.
    fn table_started(&self, table: &str, phase: Phase, total_rows: Option<u64>);
    /// `rows` more source rows were processed (for a snapshot: committed).
    fn rows_done(&self, table: &str, rows: u64);
    /// A table's cycle ended.
    fn table_finished(&self, table: &str, report: &TableReport);
}

/// A [`ProgressSink`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn table_started(&self, _: &str, _: Phase, _: Option<u64>) {}
    fn rows_done(&self, _: &str, _: u64) {}
    fn table_finished(&self, _: &str, _: &TableReport) {}
}

/// A change the capture found, as offered to [`OwnWrites::claim`].
#[derive(Debug, Clone)]
pub struct FoundChange<'a> {
    pub table: &'a str,
    /// The row key's display form (the aggregate id).
    pub key: &'a str,
    /// `Created`, `Updated` or `Deleted`.
    pub kind: &'static str,
    /// The hash of the row as it is now (`None` for a deletion).
    pub row_hash: Option<RowHash>,
    /// The row as it is now (`None` for a deletion).
    pub row: Option<&'a AcdbRow>,
}

/// Who made a change that ccare's own audited writer applied to the ACDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnWrite {
    pub actor: Actor,
    /// The command that made the change.
    pub causation_id: Uuid,
    /// The mutation (event position) the command reverts, for a revert.
    pub reverts: Option<i64>,
}

/// Recognises changes made by ccare's own audited writer, so that they are linked to their
/// command instead of being reported as `cdc-external` edits. Consulted in the emitting
/// transaction, once per chunk of changes.
#[async_trait]
pub trait OwnWrites: Send + Sync {
    /// For each change, the write that made it, if it was ccare's own (same length and order).
    async fn claim(
        &self,
        conn: &mut PgConnection,
        changes: &[FoundChange<'_>],
    ) -> Result<Vec<Option<OwnWrite>>>;
}

/// No own writes exist yet: every change found by polling is external.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOwnWrites;

#[async_trait]
impl OwnWrites for NoOwnWrites {
    async fn claim(
        &self,
        _: &mut PgConnection,
        changes: &[FoundChange<'_>],
    ) -> Result<Vec<Option<OwnWrite>>> {
        Ok(vec![None; changes.len()])
    }
}

/// What one cycle did to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub phase: Phase,
    /// Source rows read.
    pub rows_seen: u64,
    pub events_emitted: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Rows whose lost or stale row state was restored from the event log, without an event.
    pub state_restored: u64,
    pub rows_rejected: u64,
    /// Rejected rows by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Snapshot: the whole table is imported.
    pub snapshot_complete: bool,
    /// Set when the safety stop paused the table: nothing was emitted.
    pub paused: Option<String>,
    pub columns_added: Vec<String>,
    pub columns_removed: Vec<String>,
    /// Set when the table's cycle failed (it is retried next cycle).
    pub error: Option<String>,
}

impl TableReport {
    fn new(table: &str, phase: Phase) -> Self {
        TableReport {
            table: table.to_string(),
            phase,
            rows_seen: 0,
            events_emitted: 0,
            created: 0,
            updated: 0,
            deleted: 0,
            state_restored: 0,
            rows_rejected: 0,
            rejected_by_reason: BTreeMap::new(),
            snapshot_complete: false,
            paused: None,
            columns_added: Vec::new(),
            columns_removed: Vec::new(),
            error: None,
        }
    }

    fn count_reject(&mut self, code: &str) {
        self.rows_rejected += 1;
        *self.rejected_by_reason.entry(code.to_string()).or_default() += 1;
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    /// Shared by every event the cycle emitted.
    pub correlation_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub tables: Vec<TableReport>,
}

impl CycleReport {
    pub fn events_emitted(&self) -> u64 {
        self.tables.iter().map(|t| t.events_emitted).sum()
    }

    pub fn table(&self, table: &str) -> Option<&TableReport> {
        self.tables
            .iter()
            .find(|t| t.table.eq_ignore_ascii_case(table))
    }
}

/// What reconciliation found and repaired in one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReconcileReport {
    pub table: String,
    pub buckets_checked: u64,
    pub buckets_mismatched: u64,
    pub source_rows: u64,
    pub captured_rows: u64,
    /// The repair pass (present when some bucket disagreed).
    pub repair: Option<TableReport>,
    /// Why the table was not reconciled (its snapshot is unfinished).
    pub skipped: Option<String>,
}

/// What a reconciliation pass found and repaired.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    pub correlation_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub tables: Vec<TableReconcileReport>,
}

impl ReconcileReport {
    pub fn table(&self, table: &str) -> Option<&TableReconcileReport> {
        self.tables
            .iter()
            .find(|t| t.table.eq_ignore_ascii_case(table))
    }

    /// Events emitted by all repairs.
    pub fn events_emitted(&self) -> u64 {
        self.tables
            .iter()
            .filter_map(|t| t.repair.as_ref())
            .map(|r| r.events_emitted)
            .sum()
    }
}

/// The change capture.
pub struct Cdc {
    pool: PgPool,
    store: EventStore,
    open_reader: ReaderFactory,
    config: CdcConfig,
    progress: Arc<dyn ProgressSink>,
    own_writes: Arc<dyn OwnWrites>,
}

/// What every part of one cycle shares.
struct CycleContext<'a> {
    cdc: &'a Cdc,
    correlation_id: Uuid,
}

impl Cdc {
    /// A capture of `config.tables` from the ACDB `open_reader` connects to, into `store`.
    pub fn new(
        pool: PgPool,
        store: EventStore,
        open_reader: ReaderFactory,
        config: CdcConfig,
        progress: Arc<dyn ProgressSink>,
    ) -> Self {
        Cdc {
            pool,
            store,
            open_reader,
            config,
            progress,
            own_writes: Arc::new(NoOwnWrites),
        }
    }

    /// Recognise ccare's own writes with `own_writes` (see [`OwnWrites`]).
    pub fn with_own_writes(mut self, own_writes: Arc<dyn OwnWrites>) -> Self {
        self.own_writes = own_writes;
        self
    }

    pub fn config(&self) -> &CdcConfig {
        &self.config
    }

    /// The event store the capture appends to.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Connects to the ACDB and checks that every configured table exists
    /// (`Error::AcdbTableMissing` names the first that does not).
    pub async fn check_source(&self) -> Result<()> {
        let mut source = scan::Source::open(&self.open_reader).await?;
        self.check_tables(&mut source).await
    }

    async fn check_tables(&self, source: &mut scan::Source) -> Result<()> {
        let present = source.call(|r| r.tables()).await?;
        for spec in &self.config.tables {
            if !present.iter().any(|t| t.eq_ignore_ascii_case(spec.table)) {
                return Err(Error::AcdbTableMissing {
                    table: spec.table.to_string(),
                });
            }
        }
        Ok(())
    }

    /// One cycle over every configured table: continue the snapshot of a table not yet
    /// imported, else poll it for changes. A table whose cycle fails is recorded
    /// (`last_error`) and the others still run; the first failure is then returned.
    pub async fn run_cycle(&self) -> Result<CycleReport> {
        let started_at = Utc::now();
        let cx = CycleContext {
            cdc: self,
            correlation_id: Uuid::new_v4(),
        };
        let mut source = scan::Source::open(&self.open_reader).await?;
        if let Err(error) = self.check_tables(&mut source).await {
            if let Error::AcdbTableMissing { table } = &error {
                // Shown by `status` next to the table (a table never captured has no row yet).
                state::record_error(&self.pool, table, &error.to_string()).await?;
            }
            return Err(error);
        }
        let mut tables = Vec::with_capacity(self.config.tables.len());
        let mut first_error = None;
        for spec in &self.config.tables {
            state::ensure(&self.pool, spec.table).await?;
            let phase = state::phase(&self.pool, spec.table).await?;
            let result = match phase {
                TablePhase::Snapshot => snapshot::run(&cx, &mut source, spec).await,
                TablePhase::Polling | TablePhase::Paused => {
                    diff::poll(&cx, &mut source, spec).await
                }
            };
            let report = match result {
                Ok(report) => report,
                Err(error) => {
                    let phase = if phase == TablePhase::Snapshot {
                        Phase::Snapshot
                    } else {
                        Phase::Poll
                    };
                    let mut report = TableReport::new(spec.table, phase);
                    report.error = Some(error.to_string());
                    tracing::error!(table = spec.table, error = %error, "capture cycle failed; retried next cycle");
                    state::record_error(&self.pool, spec.table, &error.to_string()).await?;
                    first_error.get_or_insert(error);
                    report
                }
            };
            self.progress.table_finished(spec.table, &report);
            tables.push(report);
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        Ok(CycleReport {
            correlation_id: cx.correlation_id,
            started_at,
            finished_at: Utc::now(),
            tables,
        })
    }

    /// Proves, table by table, that the captured state matches the ACDB, and repairs what does
    /// not by emitting the missing events (see the module documentation).
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let started_at = Utc::now();
        let cx = CycleContext {
            cdc: self,
            correlation_id: Uuid::new_v4(),
        };
        let mut source = scan::Source::open(&self.open_reader).await?;
        self.check_tables(&mut source).await?;
        let mut tables = Vec::with_capacity(self.config.tables.len());
        for spec in &self.config.tables {
            state::ensure(&self.pool, spec.table).await?;
            let report = match reconcile::run(&cx, &mut source, spec).await {
                Ok(report) => report,
                Err(error) => {
                    state::record_error(&self.pool, spec.table, &error.to_string()).await?;
                    return Err(error);
                }
            };
            tables.push(report);
        }
        Ok(ReconcileReport {
            correlation_id: cx.correlation_id,
            started_at,
            finished_at: Utc::now(),
            tables,
        })
    }

    /// Approves, once, the change that paused `table`: the next cycle emits it despite the
    /// safety stop.
    pub async fn confirm(&self, table: &str) -> Result<()> {
        let spec = self
            .config
            .tables
            .iter()
            .find(|s| s.table.eq_ignore_ascii_case(table))
            .ok_or_else(|| Error::Cdc(format!("{table:?} is not a captured table")))?;
        state::confirm(&self.pool, spec.table).await
    }

    /// Runs cycles every `poll_interval` and reconciliation every `reconcile_interval` until
    /// `shutdown` completes. A failing cycle is logged and retried at the next interval. A cycle
    /// in progress at shutdown is abandoned: its open transaction rolls back and the next start
    /// redoes it. Give the capture a pool of its own and close it after: sqlx leaves a
    /// connection whose COPY was cut off out of step with the server (its `PgCopyIn` drop sends
    /// `CopyFail` without expecting the answer), so such a connection must not be reused.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut next_reconcile = tokio::time::Instant::now() + self.config.reconcile_interval;
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = self.run_cycle() => match result {
                    Ok(report) => tracing::debug!(events = report.events_emitted(), "capture cycle done"),
                    Err(error) => tracing::error!(error = %error, "capture cycle failed; retrying next interval"),
                },
            }
            if tokio::time::Instant::now() >= next_reconcile {
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    result = self.reconcile() => match result {
                        Ok(report) => tracing::info!(events = report.events_emitted(), "reconciliation done"),
                        Err(error) => tracing::error!(error = %error, "reconciliation failed; retrying next interval"),
                    },
                }
                next_reconcile = tokio::time::Instant::now() + self.config.reconcile_interval;
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }
}
