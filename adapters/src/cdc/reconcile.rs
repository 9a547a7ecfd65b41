//! Reconciliation: per-bucket checksums of the ACDB and of the captured state, and a repair
//! of the buckets that disagree.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::Row;

use domain::acdb::RowHash;
use domain::catalog::TableSpec;

use super::diff::{self, Plan};
use super::scan::Source;
use super::state;
use super::{CycleContext, Phase, TablePhase, TableReconcileReport, TableReport, ROWS_PER_BUCKET};
use crate::acdb::ScanFilter;
use crate::{Error, Result};

/// The most buckets a table is split into (the bucket is 16 bits of the key's hash).
const MAX_BUCKETS: u64 = 1 << 16;

/// The bucket of a row key: the first 16 bits of sha256(key), masked. Must agree with the SQL
/// function `ccare_cdc_key_bucket` (migrations/…_cdc.sql).
pub(super) fn key_bucket(key: &str, mask: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    ((u32::from(digest[0]) << 8) | u32::from(digest[1])) & mask
}

/// The first 8 bytes of a row hash as a signed big-endian integer; must agree with the SQL
/// function `ccare_cdc_hash_prefix`.
fn hash_prefix(hash: &RowHash) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.0[..8]);
    i64::from_be_bytes(bytes)
}

/// How many buckets (a power of two) a table of `rows` rows is checked in.
fn bucket_count(rows: i64) -> u32 {
    let wanted = (rows.max(0) as u64).div_ceil(ROWS_PER_BUCKET).max(1);
    wanted.next_power_of_two().min(MAX_BUCKETS) as u32
}

/// A set of buckets of one table.
#[derive(Debug, Clone)]
pub(super) struct Buckets {
    pub mask: u32,
    set: HashSet<u32>,
}

impl Buckets {
    pub(super) fn contains(&self, key: &str) -> bool {
        self.set.contains(&key_bucket(key, self.mask))
    }

    pub(super) fn sorted(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.set.iter().copied().collect();
        all.sort_unstable();
        all
    }
}

/// Row count and sum of hash prefixes of one bucket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Checksum {
    rows: u64,
    sum: i128,
}

/// Reconciles one table.
pub(super) async fn run(
    cx: &CycleContext<'_>,
    source: &mut Source,
    spec: &'static TableSpec,
) -> Result<TableReconcileReport> {
    let cdc = cx.cdc;
    let table = spec.table;
    let known = state::load(&cdc.pool, table).await?;
    let mut report = TableReconcileReport {
        table: table.to_string(),
        buckets_checked: 0,
        buckets_mismatched: 0,
        source_rows: 0,
        captured_rows: 0,
        repair: None,
        skipped: None,
    };
    if known.phase == TablePhase::Snapshot {
        report.skipped = Some("the import has not finished".to_string());
        return Ok(report);
    }

    let count = bucket_count(known.live_rows);
    let mask = count - 1;
    cdc.progress.table_started(table, Phase::Reconcile, None);

    // The ACDB side, streamed: one checksum per bucket is all that is kept.
    let mut source_side = vec![Checksum::default(); count as usize];
    let mut scan = source.scan(spec, ScanFilter::All, cdc.config.chunk_rows);
    while let Some(chunk) = scan.next().await {
        let rows = chunk.rows.len() as u64;
        for row in &chunk.rows {
            if let Ok(key) = &row.key {
                let bucket = &mut source_side[key_bucket(&key.to_string(), mask) as usize];
                bucket.rows += 1;
                bucket.sum += i128::from(hash_prefix(&row.hash));
            }
        }
        cdc.progress.rows_done(table, rows);
    }
    scan.finish().await?;

    // The captured side, in one aggregate.
    let mut captured_side = vec![Checksum::default(); count as usize];
    let rows = sqlx::query(
        "select ccare_cdc_key_bucket(row_key, $2) as bucket, count(*) as n,
                sum(ccare_cdc_hash_prefix(row_hash))::text as s
         from cdc_row_state where table_name = $1 and live group by 1",
    )
    .bind(table)
    .bind(mask as i32)
    .fetch_all(&cdc.pool)
    .await?;
    for row in rows {
        let bucket: i32 = row.try_get("bucket")?;
        let sum: String = row.try_get("s")?;
        let slot = captured_side
            .get_mut(bucket as usize)
            .ok_or_else(|| Error::Cdc(format!("{table}: bucket {bucket} is out of range")))?;
        slot.rows = row.try_get::<i64, _>("n")? as u64;
        slot.sum = sum
            .parse()
            .map_err(|_| Error::Cdc(format!("{table}: a bucket checksum is not an integer")))?;
    }

    report.buckets_checked = u64::from(count);
    report.source_rows = source_side.iter().map(|c| c.rows).sum();
    report.captured_rows = captured_side.iter().map(|c| c.rows).sum();
    let mismatched: HashSet<u32> = (0..count)
        .filter(|&b| source_side[b as usize] != captured_side[b as usize])
        .collect();
    report.buckets_mismatched = mismatched.len() as u64;

    if mismatched.is_empty() {
        sqlx::query("update cdc_table_state set last_reconciled_at = $2, updated_at = now() where table_name = $1")
            .bind(table)
            .bind(Utc::now())
            .execute(&cdc.pool)
            .await?;
        cdc.progress
            .table_finished(table, &TableReport::new(table, Phase::Reconcile));
        return Ok(report);
    }

    tracing::warn!(
        table,
        buckets = mismatched.len(),
        of = count,
        "reconciliation found drift: repairing"
    );
    let plan = Plan {
        phase: Phase::Reconcile,
        filter: ScanFilter::All,
        buckets: Some(Buckets {
            mask,
            set: mismatched,
        }),
        detect_deletes: true,
        full_scan: false,
    };
    let repair = diff::run(cx, source, spec, plan).await?;
    let by_kind: BTreeMap<&str, u64> = [
        ("created", repair.created),
        ("updated", repair.updated),
        ("deleted", repair.deleted),
    ]
    .into();
    tracing::info!(table, repaired = ?by_kind, restored = repair.state_restored, paused = repair.paused.is_some(), "reconciliation repair done");
    cdc.progress.table_finished(table, &repair);
    report.repair = Some(repair);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_counts_are_powers_of_two_sized_to_the_table() {
        assert_eq!(bucket_count(0), 1);
        assert_eq!(bucket_count(256), 1);
        assert_eq!(bucket_count(257), 2);
        assert_eq!(bucket_count(250_000), 1024);
        assert_eq!(bucket_count(i64::MAX), 1 << 16);
    }

    #[test]
    fn a_hash_prefix_reads_the_first_eight_bytes_big_endian_and_signed() {
        let mut hash = RowHash([0; 32]);
        hash.0[0] = 0xff;
        hash.0[7] = 0x01;
        assert_eq!(
            hash_prefix(&hash),
            i64::from_be_bytes([0xff, 0, 0, 0, 0, 0, 0, 1])
        );
        assert!(hash_prefix(&hash) < 0);
    }
}
