//! `ccare bench …`: benchmarks that print their figure next to a limit measured in the same run
//! on this machine, and the ratio. They run on a private cluster and a generated ACDB in a
//! scratch directory, never on the configured databases.

mod import;
mod read;
mod write;

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

pub use import::import;
pub use read::{read, ReadBench};
pub use write::write;

/// Generates an ACDB at `file` in a child process (so the benchmark's own peak memory is its
/// own), reporting the time taken.
fn generate_acdb(file: &Path, customers: u32, years: u32) -> anyhow::Result<()> {
    eprintln!("generating an ACDB with {customers} customers over {years} years ...");
    let started = Instant::now();
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["acdb", "generate", "--out"])
        .arg(file)
        .args([
            "--customers",
            &customers.to_string(),
            "--years",
            &years.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running `ccare acdb generate`")?;
    anyhow::ensure!(status.success(), "generating the benchmark ACDB failed");
    eprintln!("generated in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The change capture of a benchmark: every captured table of the ACDB at `location` into the
/// database of `pool`, polling every `poll_interval`, the audited writer's own writes claimed.
fn capture(
    pool: &sqlx::PgPool,
    location: &adapters::acdb::AcdbLocation,
    poll_interval: std::time::Duration,
) -> adapters::cdc::Cdc {
    let location = location.clone();
    adapters::cdc::Cdc::new(
        pool.clone(),
        adapters::store::EventStore::new(pool.clone()),
        std::sync::Arc::new(move || adapters::acdb::open(&location)),
        adapters::cdc::CdcConfig {
            tables: domain::catalog::CAPTURED_TABLES.iter().collect(),
            chunk_rows: crate::commands::cdc::CHUNK_ROWS,
            poll_interval,
            reconcile_interval: std::time::Duration::from_secs(24 * 3600),
            safety_share: 0.2,
        },
        std::sync::Arc::new(adapters::cdc::NoProgress),
    )
    .with_own_writes(std::sync::Arc::new(adapters::writer::WriterClaims))
}

/// The 1-minute load average; `?` where /proc is not available.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The process's peak resident memory (VmHWM), in KiB; 0 where /proc is not available.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
