//! `ccare bench write`: audited updates per second through the whole path — an HTTP request to
//! the API, the command recorded, applied to the ACDB over ODBC by the audited writer, the
//! applied event and the audit visible — next to two limits measured in the same run: the
//! postgres-es single-command rate and the bare ODBC update rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::acdb::{self, AcdbLocation};
use adapters::postgres::{self, EmbeddedPostgres};
use adapters::writer::AuditedWriter;
use anyhow::Context;
use cqrs_es::{Aggregate, DomainEvent};
use domain::auth::Role;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use projections::ProjectorRunner;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::load_average;
use crate::config::Settings;

/// The figure the issue sets: at least half of the slower of the two limits.
const TARGET_RATIO: f64 = 0.5;

pub async fn write(
    settings: Settings,
    customers: u32,
    updates: u32,
    clients: u32,
) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix("ccare-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let acdb_file = work.path().join("acdb.sqlite");
    super::generate_acdb(&acdb_file, customers, 1)?;
    // The bare ODBC rate is measured on a copy, so its updates are not captured as edits.
    let copy_file = work.path().join("acdb-copy.sqlite");
    std::fs::copy(&acdb_file, &copy_file).context("copying the benchmark ACDB")?;

    let bin = postgres::find_bin_dir(settings.pg_bin.as_deref())?;
    let cluster = EmbeddedPostgres::start(&work.path().join("postgres"), &bin).await?;
    let result = measure(
        &cluster.url(),
        &acdb_file,
        &copy_file,
        updates,
        clients.max(1),
    )
    .await;
    cluster.stop().await?;
    let m = result?;

    let limit = m.postgres_es.min(m.odbc);
    let ratio = m.audited / limit;
    println!("customers                   {customers}");
    println!("updates                     {updates} ({clients} concurrent clients)");
    println!(
        "audited writes (HTTP→ACDB)  {:>8.0} /s   p50 {:.1} ms   p99 {:.1} ms",
        m.audited, m.p50_ms, m.p99_ms
    );
    println!(
        "postgres-es commands        {:>8.0} /s   (single task)",
        m.postgres_es
    );
    println!(
        "bare ODBC updates           {:>8.0} /s   (one transaction each)",
        m.odbc
    );
    println!("ratio to the slower limit   {ratio:.2}   (target >= {TARGET_RATIO})");
    println!(
        "load average                {} before, {} after",
        m.load_before, m.load_after
    );
    Ok(())
}

struct Measurement {
    audited: f64,
    p50_ms: f64,
    p99_ms: f64,
    postgres_es: f64,
    odbc: f64,
    load_before: String,
    load_after: String,
}

async fn measure(
    url: &str,
    acdb_file: &std::path::Path,
    copy_file: &std::path::Path,
    updates: u32,
    clients: u32,
) -> anyhow::Result<Measurement> {
    let pool = postgres::connect(url).await?;
    postgres::migrate(&pool).await?;
    let dsn = format!("Driver=SQLite3;Database={}", acdb_file.display());
    let location = AcdbLocation::Odbc(dsn.clone());
    let cdc = super::capture(&pool, &location, Duration::from_secs(5));
    eprintln!("importing ...");
    cdc.run_cycle().await?;

    let stop = CancellationToken::new();
    let runner = Arc::new(ProjectorRunner::new(pool.clone(), projections::all()));
    runner.ensure_ready().await?;
    runner.catch_up().await?;
    let mut tasks = tokio::task::JoinSet::new();
    {
        let (runner, stop) = (runner.clone(), stop.clone());
        tasks.spawn(async move {
            runner
                .run(stop.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        });
    }
    {
        let stop = stop.clone();
        tasks.spawn(async move {
            cdc.run(stop.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        });
    }
    {
        let writer =
            AuditedWriter::new(pool.clone(), Arc::new(move || acdb::open_writer(&location)));
        let stop = stop.clone();
        tasks.spawn(async move {
            writer
                .run(stop.cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        });
    }
    runner.catch_up().await?;
    let (client, address, token) =
        super::start_api(&pool, &stop, &mut tasks, Role::OnmTeam, None).await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("select customer_id from read_model.customers order by customer_id")
            .fetch_all(&pool)
            .await?;
    anyhow::ensure!(!ids.is_empty(), "the benchmark ACDB has no customers");

    eprintln!("measuring the postgres-es single-command rate ...");
    let postgres_es = postgres_es_rate(&pool, updates).await?;
    eprintln!("measuring the bare ODBC update rate ...");
    let copy_dsn = format!("Driver=SQLite3;Database={}", copy_file.display());
    let odbc = tokio::task::spawn_blocking({
        let ids = ids.clone();
        move || odbc_rate(&copy_dsn, &ids, updates)
    })
    .await??;

    eprintln!("measuring audited writes through the API ...");
    let load_before = load_average();
    let started = Instant::now();
    let per_client = updates.div_ceil(clients);
    let mut workers = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, token, ids) = (client.clone(), token.clone(), ids.clone());
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client as usize);
            for i in 0..per_client {
                // Each client works on its own customers: concurrent writes to one row would
                // measure conflicts, not throughput.
                let index = (i as usize * clients as usize + c as usize) % ids.len();
                let sent = Instant::now();
                update(&client, address, &token, ids[index], &format!("B{c}-{i}")).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let load_after = load_average();
    latencies.sort();
    let percentile = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };

    stop.cancel();
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    pool.close().await;
    Ok(Measurement {
        audited: latencies.len() as f64 / seconds,
        p50_ms: percentile(0.5),
        p99_ms: percentile(0.99),
        postgres_es,
        odbc,
        load_before,
        load_after,
    })
}

async fn request(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<(hyper::StatusCode, serde_json::Value)> {
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

async fn update(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    address: std::net::SocketAddr,
    token: &str,
    customer: i64,
    city: &str,
) -> anyhow::Result<()> {
    let body = serde_json::json!({"data": {"CITY": city}}).to_string();
    let (status, json) = request(
        client,
        hyper::Request::put(format!(
            "http://{address}/api/tables/tblcustomer/{customer}"
        ))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body)))?,
    )
    .await?;
    anyhow::ensure!(
        status == hyper::StatusCode::OK,
        "an audited update failed: {status} {json}"
    );
    Ok(())
}

/// A one-event aggregate: the cheapest command postgres-es can run, the limit its own
/// machinery sets (load, one insert through the events view, commit).
#[derive(Debug, Default, Serialize, Deserialize)]
struct BenchCounter {
    count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counted;

impl DomainEvent for Counted {
    fn event_type(&self) -> String {
        "BenchCounted".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for BenchCounter {
    const TYPE: &'static str = "BenchCounter";
    type Command = ();
    type Event = Counted;
    type Error = Never;
    type Services = ();

    async fn handle(
        &mut self,
        _: (),
        _: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Never> {
        sink.write(Counted, self).await;
        Ok(())
    }

    fn apply(&mut self, _: Counted) {
        self.count += 1;
    }
}

async fn postgres_es_rate(pool: &PgPool, commands: u32) -> anyhow::Result<f64> {
    let cqrs = postgres_es::postgres_cqrs::<BenchCounter>(pool.clone(), vec![], ());
    let started = Instant::now();
    for i in 0..commands {
        cqrs.execute(&format!("counter-{i}"), ())
            .await
            .map_err(|e| anyhow::anyhow!("a postgres-es command failed: {e}"))?;
    }
    Ok(f64::from(commands) / started.elapsed().as_secs_f64())
}

fn odbc_rate(dsn: &str, ids: &[i64], updates: u32) -> anyhow::Result<f64> {
    use odbc_api::IntoParameter;
    let env = odbc_api::environment()?;
    let conn = env.connect_with_connection_string(dsn, odbc_api::ConnectionOptions::default())?;
    let mut statement =
        conn.prepare("UPDATE [tblcustomer] SET [CITY] = ? WHERE [CUSTOMER ID] = ?")?;
    let started = Instant::now();
    for i in 0..updates as usize {
        let id = i32::try_from(ids[i % ids.len()]).unwrap_or(i32::MAX);
        let city = format!("O{i}").into_parameter();
        statement.execute((&city, &id))?;
    }
    Ok(f64::from(updates) / started.elapsed().as_secs_f64())
}
