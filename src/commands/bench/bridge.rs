//! `ccare bench bridge`: signed webhook deliveries per second, accepted (stored and answered 200)
//! and fully processed (ticket opened, reply queued), next to the bare HTTP request rate of the
//! same server on a trivial route (`/health`) in the same run; and the p99 from posting a
//! delivery to the Cloud API fake receiving its reply.
//!
//! Everything runs on loopback: a private cluster, a generated ACDB imported for the customers,
//! the API with the webhook, the bridge worker and reply sender as `ccare serve` runs them, and a
//! local HTTP fake of the Cloud API that notes when each reply arrives. Each message comes from
//! a different customer's phone, so the per-customer spacing of replies does not queue them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::acdb::AcdbLocation;
use adapters::commands::{Conversations, Tickets};
use adapters::inbox::PgWebhookInbox;
use adapters::outbox::PgOutbox;
use adapters::postgres;
use bridge::senders::{ReplySender, Templates};
use bridge::whatsapp::{CloudApiClient, CloudApiConfig};
use bridge::worker::{InboxWorker, WorkerPorts, WorkerSettings};
use domain::auth::Role;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use projections::{ProjectorRunner, ReadModels};
use tokio_util::sync::CancellationToken;

use super::{load_average, percentile, HttpClient};
use crate::config::Settings;

const APP_SECRET: &str = "benchmark app secret";

/// The least number of requests the bare rate is measured over.
const BARE_REQUESTS: u32 = 5_000;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct BridgeBench {
    pub customers: u32,
    /// Deliveries posted, one message each from a different customer.
    pub messages: u32,
    pub clients: u32,
}

pub async fn bridge(settings: Settings, bench: BridgeBench) -> anyhow::Result<()> {
    super::on_scratch(&settings, bench.customers, 1, |url, acdb_file| async move {
        measure(&url, &acdb_file, bench).await
    })
    .await
}

/// When each reply reached the fake, by recipient wa_id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// The Cloud API as the local stand-in, noting when each recipient's first message arrived.
async fn start_cloud_api_fake(
    stop: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<(CloudApiConfig, Arrivals)> {
    let arrivals: Arrivals = Arc::default();
    let noted = arrivals.clone();
    let (config, server) =
        crate::commands::bridge::cloud_api_stand_in(stop, move |body: &serde_json::Value| {
            let to = body["to"].as_str().unwrap_or_default().to_string();
            noted
                .lock()
                .expect("not poisoned")
                .entry(to)
                .or_insert_with(Instant::now);
        })
        .await?;
    tasks.spawn(async move { server.await.map_err(anyhow::Error::from) });
    Ok((config, arrivals))
}

async fn measure(url: &str, acdb_file: &std::path::Path, bench: BridgeBench) -> anyhow::Result<()> {
    let pool = postgres::connect(url).await?;
    postgres::migrate(&pool).await?;
    eprintln!("importing the ACDB for its customers ...");
    let dsn = format!("Driver=SQLite3;Database={}", acdb_file.display());
    super::capture(&pool, &AcdbLocation::Odbc(dsn), Duration::from_secs(1))
        .run_cycle()
        .await?;
    let runner = Arc::new(ProjectorRunner::new(pool.clone(), projections::all()));
    runner.ensure_ready().await?;
    runner.catch_up().await?;
    let phones: Vec<String> = sqlx::query_scalar(
        "select e164 from read_model.customer_phones group by e164
         having count(distinct customer_id) = 1 order by e164 limit $1",
    )
    .bind(i64::from(bench.messages))
    .fetch_all(&pool)
    .await?;
    anyhow::ensure!(
        phones.len() == bench.messages as usize,
        "the ACDB has {} phones of one customer each; ask for at most that many messages (--messages)",
        phones.len()
    );

    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let whatsapp = api::WhatsAppWebhook {
        verify_token: "benchmark verify token".into(),
        app_secret: APP_SECRET.into(),
        inbox: Arc::new(PgWebhookInbox::new(pool.clone())),
    };
    let (client, address, _token) =
        super::start_api(&pool, &stop, &mut tasks, Role::Generic, Some(whatsapp)).await?;
    let following = stop.clone();
    let follower = runner.clone();
    tasks.spawn(async move {
        follower
            .run(following.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    });
    let (cloud_api, arrivals) = start_cloud_api_fake(&stop, &mut tasks).await?;
    let conversations = Arc::new(Conversations::new(pool.clone()));
    let outbox = Arc::new(PgOutbox::new(pool.clone()));
    let worker = InboxWorker::new(
        WorkerPorts {
            inbox: Arc::new(PgWebhookInbox::new(pool.clone())),
            customers: Arc::new(ReadModels::new(pool.clone())),
            conversations: conversations.clone(),
            tickets: Arc::new(Tickets::new(pool.clone())),
            outbox: outbox.clone(),
        },
        None,
        WorkerSettings::default(),
    );
    let sender = ReplySender::new(
        outbox,
        conversations,
        CloudApiClient::new(cloud_api)?,
        Templates::default(),
    );

    println!("customers                    {}", bench.customers);
    println!(
        "messages                     {} (from {} clients)",
        bench.messages, bench.clients
    );
    let load_before = load_average();
    let bare_requests = bench.messages.max(BARE_REQUESTS);
    let (bare_rate, _) = post_all(&client, address, bench.clients, bare_requests, |_| None).await?;
    println!(
        "bare HTTP (GET /health)      {bare_rate:>8.0} requests/s   (the limit measured in this run)"
    );

    // The worker and the sender start with the deliveries, as in `ccare serve`.
    let working = stop.clone();
    tasks.spawn(async move {
        worker.run(working.cancelled_owned()).await;
        Ok(())
    });
    let sending = stop.clone();
    tasks.spawn(async move {
        sender
            .run(
                crate::commands::bridge::REPLY_POLL,
                sending.cancelled_owned(),
            )
            .await;
        Ok(())
    });
    let started = Instant::now();
    let (accepted_rate, posted_at) =
        post_all(&client, address, bench.clients, bench.messages, |i| {
            let wa_id = phones[i].trim_start_matches('+').to_string();
            let body = serde_json::to_vec(&bridge::cloud_api::text_delivery(
                &wa_id,
                "Benchmark",
                &format!("wamid.bench.in.{i}"),
                "Ha ke na motlakase ho tloha hoseng",
                chrono::Utc::now(),
            ))
            .expect("a delivery serialises");
            Some((wa_id, body))
        })
        .await?;
    println!(
        "deliveries accepted (200)    {accepted_rate:>8.0} deliveries/s   {:.2} of the bare rate",
        accepted_rate / bare_rate
    );

    let deadline = Instant::now() + Duration::from_secs(600);
    let processed_at = loop {
        let handled: i64 =
            sqlx::query_scalar("select count(*) from bridge_outbox where key like 'whatsapp:re:%'")
                .fetch_one(&pool)
                .await?;
        if handled >= i64::from(bench.messages) {
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {handled} of {} messages were handled within 10 minutes",
            bench.messages
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let processed_rate = f64::from(bench.messages) / processed_at.as_secs_f64();
    println!(
        "fully processed              {processed_rate:>8.0} messages/s   (ticket opened, reply queued; {:.1} s for all)",
        processed_at.as_secs_f64()
    );
    let tickets: i64 = sqlx::query_scalar(
        "select count(*) from event_log where aggregate_type = 'Ticket' and event_type = 'TicketOpened'",
    )
    .fetch_one(&pool)
    .await?;
    anyhow::ensure!(
        tickets == i64::from(bench.messages),
        "{tickets} tickets were opened for {} outage reports",
        bench.messages
    );

    while arrivals.lock().expect("not poisoned").len() < bench.messages as usize {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every reply reached the Cloud API fake within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<Duration> = {
        let arrived = arrivals.lock().expect("not poisoned");
        posted_at
            .iter()
            .map(|(wa_id, at)| arrived[wa_id].saturating_duration_since(*at))
            .collect()
    };
    latencies.sort();
    println!(
        "delivery -> reply sent       p50 {:.0} ms   p99 {:.0} ms   (worker polls every 0.5 s, sender every 1 s)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!(
        "load average                 {load_before} -> {}",
        load_average()
    );

    stop.cancel();
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    pool.close().await;
    Ok(())
}

/// `count` requests from `clients` clients: a signed delivery when `delivery(i)` gives one, else
/// `GET /health`. Returns the rate and, for deliveries, when each was posted.
async fn post_all(
    client: &HttpClient,
    address: SocketAddr,
    clients: u32,
    count: u32,
    delivery: impl Fn(usize) -> Option<(String, Vec<u8>)>,
) -> anyhow::Result<(f64, Vec<(String, Instant)>)> {
    let requests: Vec<Option<(String, Vec<u8>)>> = (0..count as usize).map(delivery).collect();
    let queue = Arc::new(Mutex::new(requests.into_iter()));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, queue) = (client.clone(), queue.clone());
        workers.spawn(async move {
            let mut posted = Vec::new();
            loop {
                let next = queue.lock().expect("not poisoned").next();
                let Some(request) = next else {
                    return anyhow::Ok(posted);
                };
                let request = match request {
                    None => hyper::Request::get(format!("http://{address}/health"))
                        .body(Full::new(Bytes::new()))?,
                    Some((wa_id, body)) => {
                        let signature =
                            bridge::cloud_api::signature_header(APP_SECRET.as_bytes(), &body);
                        posted.push((wa_id, Instant::now()));
                        hyper::Request::post(format!("http://{address}/webhooks/whatsapp"))
                            .header("content-type", "application/json")
                            .header(bridge::cloud_api::SIGNATURE_HEADER, signature)
                            .body(Full::new(Bytes::from(body)))?
                    }
                };
                let response = client.request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                anyhow::ensure!(status.is_success(), "the server answered {status}");
            }
        });
    }
    let mut posted = Vec::new();
    while let Some(done) = workers.join_next().await {
        posted.extend(done??);
    }
    let rate = f64::from(count) / started.elapsed().as_secs_f64();
    Ok((rate, posted))
}
