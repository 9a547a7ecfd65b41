//! `ccare bench read`: the read side on a generated ACDB, each figure next to a limit measured
//! in the same run:
//!
//! (a) latency p50/p99 of four analytics endpoints under concurrent clients, next to the time
//!     the legacy way takes — reading the ledger over ODBC and computing ARPU per request;
//! (b) a rebuild of the analytics read model (events/s), next to a raw sequential read of the
//!     global log;
//! (c) an ACDB change until it shows in the API (p50/p95), with the capture polling every
//!     second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::acdb::AcdbLocation;
use adapters::postgres;
use adapters::store::EventStore;
use anyhow::Context;
use domain::auth::Role;
use domain::dates::{parse_legacy_text, Quarter};
use domain::site::SiteCode;
use projections::ProjectorRunner;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{fetch, hammer, load_average, percentile, Credential, HttpClient, Load};
use crate::config::Settings;

/// (a): the endpoints are at least this many times faster than the legacy computation.
const LATENCY_TARGET: f64 = 100.0;
/// (b): a rebuild reaches this share of the raw log read …
const REBUILD_SHARE_TARGET: f64 = 0.5;
/// … and at least this many events per second.
const REBUILD_RATE_TARGET: f64 = 100_000.0;

const ENDPOINTS: &[&str] = &[
    "/api/om-report/arpu",
    "/api/om-report/monthly-arpu",
    "/api/om-report/sales-by-site",
    "/api/om-report/customer-stats",
];

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct ReadBench {
    pub customers: u32,
    pub years: u32,
    pub clients: u32,
    /// Requests per client and endpoint.
    pub requests: u32,
    /// Changes timed for (c).
    pub changes: u32,
    /// Which of (a), (b) and (c) to measure.
    pub latency: bool,
    pub rebuild: bool,
    pub change: bool,
}

pub async fn read(settings: Settings, bench: ReadBench) -> anyhow::Result<()> {
    super::on_scratch(
        &settings,
        bench.customers,
        bench.years,
        |url, acdb_file| async move { measure(&url, &acdb_file, bench).await },
    )
    .await
}

async fn measure(url: &str, acdb_file: &std::path::Path, bench: ReadBench) -> anyhow::Result<()> {
    let pool = postgres::connect(url).await?;
    postgres::migrate(&pool).await?;
    let dsn = format!("Driver=SQLite3;Database={}", acdb_file.display());
    let cdc = super::capture(
        &pool,
        &AcdbLocation::Odbc(dsn.clone()),
        Duration::from_secs(1),
    );
    eprintln!("importing the ACDB ...");
    let started = Instant::now();
    cdc.run_cycle().await?;
    let head = EventStore::new(pool.clone()).head().await?.position;
    eprintln!(
        "imported {head} events in {:.1}s; building the read models ...",
        started.elapsed().as_secs_f64()
    );
    let runner = Arc::new(ProjectorRunner::new(pool.clone(), measured_read_models()));
    runner.ensure_ready().await?;
    let started = Instant::now();
    runner.catch_up().await?;
    let catch_up = started.elapsed().as_secs_f64();
    println!("customers                      {}", bench.customers);
    println!("events in the log              {head}");
    println!(
        "first build of the read models measured ({}) {catch_up:.1} s",
        MEASURED_READ_MODELS.join(", ")
    );

    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let (client, address, token) =
        super::start_api(&pool, &stop, &mut tasks, Role::FinanceTeam, None).await?;

    if bench.latency {
        latency(&client, address, &token, &dsn, bench).await?;
    }
    if bench.rebuild {
        rebuild(&pool, &runner, head).await?;
    }
    if bench.change {
        eprintln!("(c) timing ACDB changes until the API shows them ...");
        let runner_task = runner.clone();
        let following = stop.clone();
        tasks.spawn(async move {
            runner_task
                .run(following.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        });
        let polling = stop.clone();
        tasks.spawn(async move {
            cdc.run(polling.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        });
        let latencies = change_latencies(&pool, &dsn, &client, address, &token, bench).await?;
        println!(
            "(c) ACDB change -> API          p50 {:.0} ms   p95 {:.0} ms   ({} changes, capture polling every 1 s)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            latencies.len()
        );
    }

    stop.cancel();
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    pool.close().await;
    Ok(())
}

/// The read models the measured endpoints read (the analytics figures, the customers the
/// changes are timed on, the caller's account). The others are left out: at 130,000 customers
/// the audit and the mirror of every row would double the disk the benchmark needs.
const MEASURED_READ_MODELS: [&str; 4] = ["users", "customers", "tariffs", "analytics"];

fn measured_read_models() -> Vec<Arc<dyn projections::Projection>> {
    projections::all()
        .into_iter()
        .filter(|p| MEASURED_READ_MODELS.contains(&p.name()))
        .collect()
}

/// (a): the endpoints under concurrent clients, and the legacy computation.
async fn latency(
    client: &HttpClient,
    address: std::net::SocketAddr,
    token: &str,
    dsn: &str,
    bench: ReadBench,
) -> anyhow::Result<()> {
    eprintln!("(a) computing ARPU the legacy way, over ODBC ...");
    let (legacy_seconds, legacy_quarters) = {
        let dsn = dsn.to_string();
        tokio::task::spawn_blocking(move || legacy_arpu(&dsn)).await??
    };
    let api_arpu = get(client, address, token, "/api/om-report/arpu").await?;
    let agree = quarters_agree(&legacy_quarters, &api_arpu);
    println!(
        "(a) legacy ARPU over ODBC       {:.1} ms per request ({} quarters; the API's figures {})",
        legacy_seconds * 1000.0,
        legacy_quarters.len(),
        if agree { "agree" } else { "DIFFER" }
    );
    let load_before = load_average();
    let mut slowest_p50: f64 = 0.0;
    for endpoint in ENDPOINTS {
        let load = Load {
            clients: bench.clients,
            requests: bench.requests,
        };
        let (latencies, size) = hammer(
            client,
            address,
            &Credential::Bearer(token.to_string()),
            endpoint,
            load,
        )
        .await?;
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        slowest_p50 = slowest_p50.max(p50);
        println!(
            "    {endpoint:<32} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   ({} requests, {} clients, {} KiB)",
            latencies.len(),
            bench.clients,
            size / 1024
        );
    }
    let speedup = legacy_seconds * 1000.0 / slowest_p50;
    println!(
        "    legacy time / slowest p50   {speedup:.0}x   (target >= {LATENCY_TARGET:.0}x)   load {load_before} -> {}",
        load_average()
    );
    Ok(())
}

/// (b): the analytics rebuild against a raw read of the log.
async fn rebuild(pool: &PgPool, runner: &ProjectorRunner, head: i64) -> anyhow::Result<()> {
    eprintln!("(b) reading the log, then rebuilding the analytics read model ...");
    let (read_events, read_seconds) = raw_log_read(pool).await?;
    let read_rate = read_events as f64 / read_seconds;
    let started = Instant::now();
    runner.rebuild(Some("analytics"), &mut |_| {}).await?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let rebuild_rate = head as f64 / rebuild_seconds;
    println!(
        "(b) raw sequential log read     {read_rate:>10.0} events/s ({read_events} events, {read_seconds:.2} s)"
    );
    println!(
        "    analytics rebuild           {rebuild_rate:>10.0} events/s ({rebuild_seconds:.2} s)   share {:.2} (target >= {REBUILD_SHARE_TARGET}, and >= {REBUILD_RATE_TARGET:.0} events/s)",
        rebuild_rate / read_rate
    );
    Ok(())
}

async fn get(
    client: &HttpClient,
    address: std::net::SocketAddr,
    token: &str,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice(
        &fetch(
            client,
            address,
            &Credential::Bearer(token.to_string()),
            path,
        )
        .await?,
    )?)
}

/// Per quarter: revenue and customers, as the legacy computes them (legacy-system.md §3.1).
type LegacyQuarters = BTreeMap<Quarter, (Decimal, usize)>;

/// The legacy way: every ledger row read over ODBC, then the two passes of §3.1. Returns the
/// seconds it took and the quarters.
fn legacy_arpu(dsn: &str) -> anyhow::Result<(f64, LegacyQuarters)> {
    use odbc_api::buffers::TextRowSet;
    use odbc_api::Cursor;
    let started = Instant::now();
    let env = odbc_api::environment()?;
    let conn = env.connect_with_connection_string(dsn, odbc_api::ConnectionOptions::default())?;
    let mut cursor = conn
        .execute(
            "SELECT [accountnumber], [transaction date], [transaction amount] FROM [tblaccounthistory1]",
            (),
            None,
        )?
        .context("the ledger query returned no rows")?;
    let buffer = TextRowSet::for_cursor(5_000, &mut cursor, Some(64))?;
    let mut rows = cursor.bind_buffer(buffer)?;
    let mut revenue: BTreeMap<Quarter, Decimal> = BTreeMap::new();
    let mut site_revenue: BTreeMap<(Quarter, SiteCode), Decimal> = BTreeMap::new();
    let mut first: BTreeMap<String, Quarter> = BTreeMap::new();
    let text =
        |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
    while let Some(batch) = rows.fetch()? {
        for i in 0..batch.num_rows() {
            let account = text(batch.at(0, i)).trim().to_string();
            let Some(at) = parse_legacy_text(&text(batch.at(1, i))) else {
                continue;
            };
            if account.is_empty() {
                continue;
            }
            let quarter = Quarter::of(at.date());
            let amount: Decimal = text(batch.at(2, i)).trim().parse().unwrap_or_default();
            *revenue.entry(quarter).or_default() += amount;
            if let Some(site) = SiteCode::of_account(&account) {
                *site_revenue.entry((quarter, site)).or_default() += amount;
            }
            first
                .entry(account)
                .and_modify(|q| *q = (*q).min(quarter))
                .or_insert(quarter);
        }
    }
    let mut new_accounts: BTreeMap<Quarter, usize> = BTreeMap::new();
    for quarter in first.values() {
        *new_accounts.entry(*quarter).or_default() += 1;
    }
    let quarters = revenue
        .iter()
        .map(|(quarter, total)| {
            let customers = new_accounts.range(..=*quarter).map(|(_, n)| n).sum();
            (*quarter, (*total, customers))
        })
        .collect();
    // The per-site sums are part of the legacy's work per request, so part of the baseline.
    std::hint::black_box(&site_revenue);
    Ok((started.elapsed().as_secs_f64(), quarters))
}

/// Whether the API's quarterly ARPU has the legacy computation's quarters, revenues and
/// customer counts.
fn quarters_agree(legacy: &LegacyQuarters, api: &serde_json::Value) -> bool {
    let Some(rows) = api["arpu"].as_array() else {
        return false;
    };
    rows.len() == legacy.len()
        && rows
            .iter()
            .zip(legacy)
            .all(|(row, (quarter, (revenue, customers)))| {
                let rounded = revenue
                    .round_dp(2)
                    .to_string()
                    .parse::<f64>()
                    .unwrap_or(f64::NAN);
                row["quarter"] == quarter.to_string()
                    && row["active_customers"] == *customers
                    && row["total_revenue"].as_f64() == Some(rounded)
            })
}

/// A sequential read of the whole log, as the runner reads it (rows decoded into events).
async fn raw_log_read(pool: &PgPool) -> anyhow::Result<(u64, f64)> {
    let store = EventStore::new(pool.clone());
    let started = Instant::now();
    let mut after = 0;
    let mut events = 0u64;
    loop {
        let batch = store.read_after(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        events += batch.len() as u64;
    }
    Ok((events, started.elapsed().as_secs_f64()))
}

/// Renames a customer in the ACDB over ODBC, then polls the API until it shows the new name.
async fn change_latencies(
    pool: &PgPool,
    dsn: &str,
    client: &HttpClient,
    address: std::net::SocketAddr,
    token: &str,
    bench: ReadBench,
) -> anyhow::Result<Vec<Duration>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "select customer_id from read_model.customers order by customer_id limit $1",
    )
    .bind(i64::from(bench.changes))
    .fetch_all(pool)
    .await?;
    let mut latencies = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let name = format!("Bench{i}");
        let (dsn, id_param, name_param) = (dsn.to_string(), *id, name.clone());
        let changed = tokio::task::spawn_blocking(move || -> anyhow::Result<Instant> {
            use odbc_api::IntoParameter;
            let env = odbc_api::environment()?;
            let conn =
                env.connect_with_connection_string(&dsn, odbc_api::ConnectionOptions::default())?;
            let id = i32::try_from(id_param).unwrap_or(i32::MAX);
            conn.execute(
                "UPDATE [tblcustomer] SET [FIRST NAME] = ? WHERE [CUSTOMER ID] = ?",
                (&name_param.into_parameter(), &id),
                None,
            )?;
            Ok(Instant::now())
        })
        .await??;
        let deadline = changed + Duration::from_secs(60);
        loop {
            let record = get(
                client,
                address,
                token,
                &format!("/api/tables/tblcustomer/{id}"),
            )
            .await?;
            if record["record"]["FIRST NAME"] == name.as_str() {
                latencies.push(changed.elapsed());
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "a change did not show within a minute"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Changes land at random points of the poll cycle, as real edits do.
        tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7))).await;
    }
    latencies.sort();
    Ok(latencies)
}
