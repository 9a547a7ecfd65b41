//! `ccare bench …`: benchmarks that print their figure next to a limit measured in the same run
//! on this machine, and the ratio. They run on a private cluster and a generated ACDB in a
//! scratch directory, never on the configured databases.

mod bridge;
mod import;
mod portal;
mod read;
mod write;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::commands::{TariffSchedules, UserAccounts};
use adapters::store::EventStore;
use adapters::writer::WriteQueue;
use anyhow::Context;
use domain::auth::{user_aggregate_id, Role, UserCommand, UserType};
use domain::command::{CommandContext, UserCommands};
use domain::envelope::Actor;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use projections::{ProjectorRunner, ReadModels};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use bridge::{bridge, BridgeBench};
pub use import::import;
pub use portal::{portal, PortalBench};
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

/// Runs `measure(url, acdb_file)` on a scratch directory holding a generated ACDB of
/// `customers` over `years` and a private PostgreSQL cluster, stopped whatever the outcome: a
/// benchmark never writes to a database it did not create.
async fn on_scratch<F, Fut>(
    settings: &crate::config::Settings,
    customers: u32,
    years: u32,
    measure: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let work = tempfile::Builder::new()
        .prefix("ccare-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let acdb_file = work.path().join("acdb.sqlite");
    generate_acdb(&acdb_file, customers, years)?;
    let bin = adapters::postgres::find_bin_dir(settings.pg_bin.as_deref())?;
    let cluster =
        adapters::postgres::EmbeddedPostgres::start(&work.path().join("postgres"), &bin).await?;
    let result = measure(cluster.url(), acdb_file).await;
    cluster.stop().await?;
    result
}

/// The change capture of a benchmark: every captured table of the ACDB at `location` into the
/// database of `pool`, polling every `poll_interval`, the audited writer's own writes claimed.
fn capture(
    pool: &PgPool,
    location: &adapters::acdb::AcdbLocation,
    poll_interval: Duration,
) -> adapters::cdc::Cdc {
    let location = location.clone();
    adapters::cdc::Cdc::new(
        pool.clone(),
        EventStore::new(pool.clone()),
        Arc::new(move || adapters::acdb::open(&location)),
        adapters::cdc::CdcConfig {
            tables: domain::catalog::CAPTURED_TABLES.iter().collect(),
            chunk_rows: crate::commands::cdc::CHUNK_ROWS,
            poll_interval,
            reconcile_interval: Duration::from_secs(24 * 3600),
            safety_share: 0.2,
        },
        Arc::new(adapters::cdc::NoProgress),
    )
    .with_own_writes(Arc::new(adapters::writer::WriterClaims))
}

/// The benchmark employee's password (a scratch database, gone when the run ends).
const PASSWORD: &str = "benchmark password";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Adds the benchmark employee with `role`, serves the API on a free local port until `stop`,
/// and logs in: the client, the address and the token.
async fn start_api(
    pool: &PgPool,
    stop: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    role: Role,
    whatsapp: Option<api::WhatsAppWebhook>,
) -> anyhow::Result<(HttpClient, std::net::SocketAddr, String)> {
    let users = Arc::new(UserAccounts::new(
        pool.clone(),
        Arc::new(api::auth::passwords::Argon2Credentials),
    ));
    let added = users
        .execute(
            &user_aggregate_id(UserType::Employee, "bench"),
            UserCommand::AddEmployee {
                employee_id: "bench".into(),
                name: "Benchmark".into(),
                email: None,
                role,
                password_hash: api::auth::passwords::hash(PASSWORD),
            },
            &CommandContext::new(Actor::system()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("adding the benchmark employee: {e}"))?;
    let read_models = ReadModels::new(pool.clone());
    if let Some(position) = added.position {
        ProjectorRunner::new(
            pool.clone(),
            vec![Arc::new(projections::users::UsersProjection)],
        )
        .catch_up()
        .await?;
        read_models
            .wait_until_applied("users", position, Duration::from_secs(30))
            .await?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let ports = api::Ports {
        users,
        writes: Arc::new(WriteQueue::new(pool.clone(), Duration::from_secs(30))),
        tariffs: Arc::new(TariffSchedules::new(pool.clone())),
        tickets: Arc::new(adapters::commands::Tickets::new(pool.clone())),
        chain: Arc::new(EventStore::new(pool.clone())),
        whatsapp,
    };
    let secret = api::auth::passwords::random_secret();
    let state = api::AppState::new(
        read_models,
        ports,
        api::TokenKeys::new(secret.as_bytes(), Duration::from_secs(3600))?,
    );
    let serving = stop.clone();
    tasks.spawn(async move {
        api::serve(listener, state, serving.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let body = serde_json::json!({"employee_id": "bench", "password": PASSWORD}).to_string();
    let response = client
        .request(
            hyper::Request::post(format!("http://{address}/api/auth/employee-login"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))?,
        )
        .await?;
    let status = response.status();
    let json: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    anyhow::ensure!(status.is_success(), "the benchmark login failed: {json}");
    let token = json["access_token"]
        .as_str()
        .context("the login answer has no token")?
        .to_string();
    Ok((client, address, token))
}

/// How a benchmark's requests are signed in: the API's bearer token, or the same token as the
/// portal's session cookie.
#[derive(Debug, Clone)]
enum Credential {
    Bearer(String),
    PortalSession(String),
}

impl Credential {
    fn header(&self) -> (&'static str, String) {
        match self {
            Credential::Bearer(token) => ("authorization", format!("Bearer {token}")),
            Credential::PortalSession(token) => ("cookie", format!("ccare_session={token}")),
        }
    }
}

/// The body of `GET path`, as bytes (a client that parsed every answer would measure its own
/// parsing on the same two cores as the server).
async fn fetch(
    client: &HttpClient,
    address: std::net::SocketAddr,
    credential: &Credential,
    path: &str,
) -> anyhow::Result<Bytes> {
    let (name, value) = credential.header();
    let response = client
        .request(
            hyper::Request::get(format!("http://{address}{path}"))
                .header(name, value)
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "GET {path}: {status}");
    Ok(response.into_body().collect().await?.to_bytes())
}

/// Concurrent clients, each sending `requests` requests one after the other.
#[derive(Debug, Clone, Copy)]
struct Load {
    clients: u32,
    requests: u32,
}

/// `load.clients` clients each GET `path` `load.requests` times: every latency, sorted, and the
/// answer's size.
async fn hammer(
    client: &HttpClient,
    address: std::net::SocketAddr,
    credential: &Credential,
    path: &str,
    load: Load,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    // One request first, so no client measures a cold cache.
    let size = fetch(client, address, credential, path).await?.len();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..load.clients {
        let (client, path, credential) = (client.clone(), path.to_string(), credential.clone());
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(load.requests as usize);
            for _ in 0..load.requests {
                let sent = Instant::now();
                fetch(&client, address, &credential, &path).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    latencies.sort();
    Ok((latencies, size))
}

/// The `p` quantile of `sorted` latencies, in milliseconds (NaN for none).
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
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
