//! The blocking ACDB reader behind an async boundary.
//!
//! The reader lives on a blocking thread for each call. A scan computes every row's key and
//! content hash on that thread (so the hashing overlaps the PostgreSQL work on the async side)
//! and hands chunks over a channel of capacity one: at most three chunks exist at once (one
//! being read, one queued, one being written), whatever the table size. The reader itself
//! hands rows over in batches of at most [`READ_BATCH_ROWS`], so that raw source rows never
//! pile up a whole chunk deep before they are prepared (a prepared snapshot row is its encoded
//! event, a fraction of the size of the row it came from).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use domain::acdb::{AcdbRow, RowHash};
use domain::catalog::{RejectReason, RowKey, TableSpec};

use super::ReaderFactory;
use crate::acdb::{AcdbReader, Scan, ScanFilter};
use crate::{Error, Result};

/// Rows per batch the ACDB reader hands over: large enough that the per-batch cost vanishes,
/// small enough that a batch of raw rows is a few megabytes.
pub(super) const READ_BATCH_ROWS: usize = 1_000;

/// One source row with what the capture derives from it.
pub(super) struct ScannedRow {
    /// Position in this scan, from 1.
    pub ordinal: u64,
    pub key: Result<RowKey, RejectReason>,
    pub hash: RowHash,
    pub row: AcdbRow,
}

/// Consecutive rows of a scan, each prepared on the reader's thread.
pub(super) struct Chunk<T = ScannedRow> {
    pub rows: Vec<T>,
    /// When the chunk's first row was read: the detection time of the changes in it.
    pub read_at: DateTime<Utc>,
}

/// An ACDB connection used across the steps of one cycle.
pub(super) struct Source {
    factory: ReaderFactory,
    /// `None` after a scan was abandoned (the reader stayed with its thread); reopened on demand.
    reader: Option<Box<dyn AcdbReader>>,
}

fn join_error(error: tokio::task::JoinError) -> Error {
    Error::Cdc(format!("the ACDB reader thread failed: {error}"))
}

impl Source {
    pub(super) async fn open(factory: &ReaderFactory) -> Result<Source> {
        let open = factory.clone();
        let reader = tokio::task::spawn_blocking(move || open())
            .await
            .map_err(join_error)??;
        Ok(Source {
            factory: factory.clone(),
            reader: Some(reader),
        })
    }

    fn take_reader(&mut self) -> Box<dyn FnOnce() -> Result<Box<dyn AcdbReader>> + Send> {
        match self.reader.take() {
            Some(reader) => Box::new(move || Ok(reader)),
            None => {
                let open = self.factory.clone();
                Box::new(move || open())
            }
        }
    }

    /// Runs `f` with the reader on a blocking thread.
    pub(super) async fn call<T, F>(&mut self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn AcdbReader) -> Result<T> + Send + 'static,
    {
        let reader = self.take_reader();
        let (reader, out) = tokio::task::spawn_blocking(move || {
            let mut reader = reader()?;
            let out = f(reader.as_mut());
            Ok::<_, Error>((reader, out))
        })
        .await
        .map_err(join_error)??;
        self.reader = Some(reader);
        out
    }

    /// Starts streaming the rows of `spec.table` matching `filter`, in chunks of `chunk_rows`.
    pub(super) fn scan(
        &mut self,
        spec: &'static TableSpec,
        filter: ScanFilter,
        chunk_rows: usize,
    ) -> TableScan<'_> {
        self.scan_prepared(spec, filter, chunk_rows, |row, _| row)
    }

    /// Like [`Source::scan`], with `prepare` applied to every row on the reader's thread (given
    /// the chunk's read time), so that per-row work overlaps the consumer's.
    pub(super) fn scan_prepared<T, P>(
        &mut self,
        spec: &'static TableSpec,
        filter: ScanFilter,
        chunk_rows: usize,
        mut prepare: P,
    ) -> TableScan<'_, T>
    where
        T: Send + 'static,
        P: FnMut(ScannedRow, DateTime<Utc>) -> T + Send + 'static,
    {
        let chunk_rows = chunk_rows.max(1);
        let (tx, rx) = mpsc::channel::<Chunk<T>>(1);
        let reader = self.take_reader();
        let task = tokio::task::spawn_blocking(move || {
            let mut reader = match reader() {
                Ok(reader) => reader,
                Err(error) => return (None, Err(error)),
            };
            let mut ordinal = 0u64;
            let mut pending: Vec<T> = Vec::with_capacity(chunk_rows);
            let mut read_at = Utc::now();
            let mut receiver_gone = false;
            let started = Instant::now();
            // Time spent waiting for the consumer to take a chunk: the reader was not the
            // bottleneck for that long.
            let mut blocked = Duration::ZERO;
            let scan = Scan {
                filter,
                batch_size: chunk_rows.min(READ_BATCH_ROWS),
            };
            let result = reader.scan(spec, &scan, &mut |rows| {
                for row in rows {
                    if pending.is_empty() {
                        read_at = Utc::now();
                    }
                    ordinal += 1;
                    let scanned = ScannedRow {
                        ordinal,
                        key: spec.row_key(&row),
                        hash: row.content_hash(),
                        row,
                    };
                    pending.push(prepare(scanned, read_at));
                    if pending.len() >= chunk_rows {
                        let rows = std::mem::replace(&mut pending, Vec::with_capacity(chunk_rows));
                        let waiting = Instant::now();
                        let sent = tx.blocking_send(Chunk { rows, read_at });
                        blocked += waiting.elapsed();
                        if sent.is_err() {
                            receiver_gone = true;
                            return false;
                        }
                    }
                }
                true
            });
            if result.is_ok() && !receiver_gone && !pending.is_empty() {
                // A closed receiver means the consumer stopped first: nothing to report.
                let _ = tx.blocking_send(Chunk {
                    rows: pending,
                    read_at,
                });
            }
            tracing::debug!(
                table = spec.table,
                rows = ordinal,
                reading_s = (started.elapsed() - blocked).as_secs_f64(),
                waiting_for_consumer_s = blocked.as_secs_f64(),
                "scan timings"
            );
            (Some(reader), result)
        });
        TableScan {
            rx,
            task: Some(task),
            source: self,
        }
    }
}

/// What the reader thread hands back: the reader (unless it could not be opened) and whether
/// the scan reached the end.
type ScanOutcome = (Option<Box<dyn AcdbReader>>, Result<()>);

/// A scan in progress. Read chunks with [`TableScan::next`], then call [`TableScan::finish`]
/// to learn whether the source read to the end; dropping it abandons the scan.
pub(super) struct TableScan<'s, T = ScannedRow> {
    rx: mpsc::Receiver<Chunk<T>>,
    task: Option<JoinHandle<ScanOutcome>>,
    source: &'s mut Source,
}

impl<T> TableScan<'_, T> {
    /// The next chunk; `None` at the end of the scan or when it failed (see `finish`).
    pub(super) async fn next(&mut self) -> Option<Chunk<T>> {
        self.rx.recv().await
    }

    /// Waits for the reader and returns its outcome; the reader goes back to the source.
    pub(super) async fn finish(mut self) -> Result<()> {
        // Draining is not needed: the caller has read until `None`, or has failed and stops
        // here, in which case closing the channel makes the reader stop at its next chunk.
        self.rx.close();
        let task = self.task.take().expect("finish is called once");
        let (reader, result) = task.await.map_err(join_error)?;
        self.source.reader = reader;
        result
    }
}
