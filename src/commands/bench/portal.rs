//! `ccare bench portal`: requests per second and latency of the portal's heaviest pages under
//! concurrent clients, on a generated ACDB the size of the demo's, next to the portal's
//! stylesheet served by the same server in the same run — the most the server can answer when
//! a page costs nothing to build.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::acdb::AcdbLocation;
use adapters::postgres;
use adapters::store::EventStore;
use anyhow::Context;
use domain::auth::Role;
use projections::ProjectorRunner;
use tokio_util::sync::CancellationToken;

use super::{hammer, load_average, percentile, Credential, Load};
use crate::config::Settings;

/// The same server's static route: the ceiling the pages are measured against.
const STATIC_ROUTE: &str = "/portal/assets/portal.css";

/// The pages measured, with what they are.
const PAGES: &[(&str, &str)] = &[
    ("dashboard", "/portal/"),
    ("O&M report", "/portal/report"),
    ("customer list", "/portal/customers"),
];

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct PortalBench {
    pub customers: u32,
    pub years: u32,
    pub clients: u32,
    /// Requests per client and page.
    pub requests: u32,
}

pub async fn portal(settings: Settings, bench: PortalBench) -> anyhow::Result<()> {
    super::on_scratch(
        &settings,
        bench.customers,
        bench.years,
        |url, acdb_file| async move { measure(&url, &acdb_file, bench).await },
    )
    .await
}

async fn measure(url: &str, acdb_file: &std::path::Path, bench: PortalBench) -> anyhow::Result<()> {
    let pool = postgres::connect(url).await?;
    postgres::migrate(&pool).await?;
    let dsn = format!("Driver=SQLite3;Database={}", acdb_file.display());
    let cdc = super::capture(&pool, &AcdbLocation::Odbc(dsn), Duration::from_secs(3600));
    eprintln!("importing the ACDB ...");
    let started = Instant::now();
    cdc.run_cycle().await?;
    let head = EventStore::new(pool.clone()).head().await?.position;
    eprintln!(
        "imported {head} events in {:.1}s; building every read model ...",
        started.elapsed().as_secs_f64()
    );
    let runner = Arc::new(ProjectorRunner::new(pool.clone(), projections::all()));
    runner.ensure_ready().await?;
    runner.catch_up().await?;

    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let (client, address, token) =
        super::start_api(&pool, &stop, &mut tasks, Role::Superadmin, None).await?;
    let session = Credential::PortalSession(token);
    let load = Load {
        clients: bench.clients,
        requests: bench.requests,
    };
    println!("customers                      {}", bench.customers);
    println!("events in the log              {head}");
    println!(
        "clients                        {} ({} requests each per route)",
        bench.clients, bench.requests
    );
    let load_before = load_average();
    let ceiling = measure_route(&client, address, &session, STATIC_ROUTE, load).await?;
    println!(
        "static file {STATIC_ROUTE:<27} {:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} B)",
        ceiling.rate, ceiling.p50, ceiling.p99, ceiling.size
    );
    for (name, path) in PAGES {
        let page = measure_route(&client, address, &session, path, load).await?;
        println!(
            "{name:<14} {path:<24} {:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} KiB)   {:.2} of the static rate",
            page.rate,
            page.p50,
            page.p99,
            page.size / 1024,
            page.rate / ceiling.rate
        );
    }
    println!("load average {load_before} -> {}", load_average());
    stop.cancel();
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    pool.close().await;
    Ok(())
}

/// One route's figures under the load.
struct RouteFigures {
    rate: f64,
    p50: f64,
    p99: f64,
    size: usize,
}

async fn measure_route(
    client: &super::HttpClient,
    address: std::net::SocketAddr,
    session: &Credential,
    path: &str,
    load: Load,
) -> anyhow::Result<RouteFigures> {
    let started = Instant::now();
    let (latencies, size) = hammer(client, address, session, path, load)
        .await
        .with_context(|| format!("measuring {path}"))?;
    // The warm-up request is inside the wall time but not in the count: a small, conservative
    // error on the rate.
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    Ok(RouteFigures {
        rate,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        size,
    })
}
