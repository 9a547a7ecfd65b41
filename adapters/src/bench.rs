//! Limits measured in the same run as a benchmark, so that figures are reported as ratios to
//! what this machine's PostgreSQL can do right now rather than as absolute numbers.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Instant;

use futures::TryStreamExt;
use sqlx::PgPool;

use crate::{Error, Result};

/// A raw `COPY` of rows into a plain table.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CopyBaseline {
    pub rows: u64,
    pub seconds: f64,
    /// 1 when every event was copied; k when every k-th was (see
    /// [`raw_copy_of_event_log_sample`]).
    pub every: u64,
}

impl CopyBaseline {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
}

/// The table the baseline copies into: the event log's columns and types with only a primary
/// key, no other index, no trigger, no hash computation.
const BASELINE_TABLE: &str = "bench_raw_copy";

/// Exports every row of the global log to a temporary file, then times a `COPY … FROM STDIN`
/// of exactly those bytes into a plain table with a primary key. This is the ceiling an import
/// of the same rows could approach. The table is dropped afterwards.
pub async fn raw_copy_of_event_log(pool: &PgPool) -> Result<CopyBaseline> {
    raw_copy_of_event_log_sample(pool, u64::MAX).await
}

/// Like [`raw_copy_of_event_log`], over at most about `max_rows` events: every k-th event of the
/// log, spread over all of it so the sample has the log's mix of row sizes. For logs too large
/// to copy twice on the disk at hand; a COPY into a table whose only index is an increasing
/// primary key proceeds at the same rate whatever the table's size, so the sample's rate is the
/// whole log's.
pub async fn raw_copy_of_event_log_sample(pool: &PgPool, max_rows: u64) -> Result<CopyBaseline> {
    let total: i64 = sqlx::query_scalar("select position from event_log_head")
        .fetch_one(pool)
        .await?;
    let every = (total.max(0) as u64).div_ceil(max_rows.max(1)).max(1);
    // `every` is an integer computed here, not input: safe to write into the statement.
    let sample = if every > 1 {
        format!("where position % {every} = 0 ")
    } else {
        String::new()
    };
    let mut file =
        tempfile::tempfile().map_err(|e| Error::io("creating the baseline's temporary file", e))?;
    let mut conn = pool.acquire().await?;
    let mut rows: u64 = 0;
    {
        let mut out = conn
            .copy_out_raw(
                &format!(
                    "copy (select position, event_id, aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata, recorded_at, link_hash from event_log {sample}order by position) to stdout"
                ),
            )
            .await?;
        while let Some(chunk) = out.try_next().await? {
            rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            file.write_all(&chunk)
                .map_err(|e| Error::io("writing the baseline's temporary file", e))?;
        }
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("rewinding the baseline's temporary file", e))?;

    sqlx::query(&format!("drop table if exists {BASELINE_TABLE}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "create table {BASELINE_TABLE} (position bigint primary key, event_id uuid not null, \
         aggregate_type text not null, aggregate_id text not null, sequence bigint not null, \
         event_type text not null, event_version text not null, payload json not null, \
         metadata json not null, recorded_at timestamptz not null, link_hash bytea not null)"
    ))
    .execute(&mut *conn)
    .await?;
    sqlx::query("checkpoint").execute(&mut *conn).await?;

    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("copy {BASELINE_TABLE} from stdin"))
        .await?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("reading the baseline's temporary file", e))?;
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await?;
    }
    copy.finish().await?;
    let seconds = started.elapsed().as_secs_f64();

    sqlx::query(&format!("drop table {BASELINE_TABLE}"))
        .execute(&mut *conn)
        .await?;
    Ok(CopyBaseline {
        rows,
        seconds,
        every,
    })
}
