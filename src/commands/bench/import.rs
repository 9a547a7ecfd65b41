//! `ccare bench import`: the initial import's throughput against a raw PostgreSQL COPY of the
//! same rows, both measured in this run on this machine.

use std::sync::Arc;
use std::time::Instant;

use adapters::acdb::{self, AcdbLocation};
use adapters::cdc::{Cdc, CdcConfig, NoProgress};
use adapters::postgres::{self, EmbeddedPostgres};
use adapters::store::EventStore;
use anyhow::Context;
use domain::catalog::CAPTURED_TABLES;

use super::{load_average, peak_rss_kib};
use crate::config::Settings;

/// The figure the issue sets: the import reaches at least half of raw COPY throughput.
const TARGET_RATIO: f64 = 0.5;

/// The raw COPY copies at most about this many of the imported events (every k-th): a log of
/// tens of millions of events could not be copied twice on a small disk, and the rate of a COPY
/// into a table with only an increasing primary key does not depend on the table's size.
const BASELINE_MAX_ROWS: u64 = 2_000_000;

pub async fn import(settings: Settings, customers: u32, years: u32) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix("ccare-bench-")
        .tempdir()
        .context("creating a scratch directory")?;

    let acdb_file = work.path().join("acdb.sqlite");
    super::generate_acdb(&acdb_file, customers, years)?;

    // A private cluster in the scratch directory: the benchmark never writes to a database it
    // did not create.
    let bin = postgres::find_bin_dir(settings.pg_bin.as_deref())?;
    let cluster = EmbeddedPostgres::start(&work.path().join("postgres"), &bin).await?;
    let result = measure(&cluster.url(), &acdb_file).await;
    cluster.stop().await?;
    let m = result?;

    let import_rate = m.rows as f64 / m.import_seconds;
    let copy_rate = m.copy.rows_per_second();
    let ratio = import_rate / copy_rate;
    println!("customers                 {customers}");
    println!("source rows imported      {}", m.rows);
    println!(
        "import                    {:.2} s   {:>10.0} rows/s",
        m.import_seconds, import_rate
    );
    println!(
        "raw COPY (same rows)      {:.2} s   {:>10.0} rows/s",
        m.copy.seconds, copy_rate
    );
    if m.copy.every > 1 {
        println!(
            "  (a COPY of {} of the imported events, every {}th)",
            m.copy.rows, m.copy.every
        );
    }
    println!("ratio                     {ratio:.2}   (target >= {TARGET_RATIO})");
    println!("peak memory (ccare)       {} MiB", m.peak_rss_kib / 1024);
    println!(
        "load average              {} before the import, {} after it",
        m.load_before, m.load_after
    );
    Ok(())
}

struct Measurement {
    rows: u64,
    import_seconds: f64,
    copy: adapters::bench::CopyBaseline,
    peak_rss_kib: u64,
    /// The 1-minute load average when the import started and when it ended: the machine is
    /// shared, and both figures depend on what else ran.
    load_before: String,
    load_after: String,
}

async fn measure(url: &str, acdb_file: &std::path::Path) -> anyhow::Result<Measurement> {
    let pool = postgres::connect(url).await?;
    postgres::migrate(&pool).await?;
    let location = AcdbLocation::Odbc(format!("Driver=SQLite3;Database={}", acdb_file.display()));
    let config = CdcConfig {
        tables: CAPTURED_TABLES.iter().collect(),
        chunk_rows: crate::commands::cdc::CHUNK_ROWS,
        poll_interval: std::time::Duration::from_secs(5),
        reconcile_interval: std::time::Duration::from_secs(3600),
        safety_share: 0.2,
    };
    let cdc = Cdc::new(
        pool.clone(),
        EventStore::new(pool.clone()),
        Arc::new(move || acdb::open(&location)),
        config,
        Arc::new(NoProgress),
    );
    cdc.check_source().await?;
    eprintln!("importing ...");
    let load_before = load_average();
    let started = Instant::now();
    let report = cdc.run_cycle().await?;
    let import_seconds = started.elapsed().as_secs_f64();
    let load_after = load_average();
    let rows: u64 = report.tables.iter().map(|t| t.rows_seen).sum();
    if let Some(failed) = report.tables.iter().find(|t| t.error.is_some()) {
        anyhow::bail!(
            "importing {} failed: {}",
            failed.table,
            failed.error.as_deref().unwrap_or_default()
        );
    }
    let peak_rss_kib = peak_rss_kib();
    eprintln!("measuring a raw COPY of the same rows ...");
    let copy = adapters::bench::raw_copy_of_event_log_sample(&pool, BASELINE_MAX_ROWS).await?;
    pool.close().await;
    Ok(Measurement {
        rows,
        import_seconds,
        copy,
        peak_rss_kib,
        load_before,
        load_after,
    })
}
