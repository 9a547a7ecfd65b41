//! The WhatsApp bridge role (the inbox worker and the outbox senders), `ccare bridge simulate`,
//! and the demo's local stand-in for the Cloud API.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adapters::commands::{Conversations, Tickets};
use adapters::inbox::PgWebhookInbox;
use adapters::outbox::PgOutbox;
use anyhow::Context;
use bridge::llm::LlmClient;
use bridge::senders::{ReplySender, UgridplanForwarder};
use bridge::ugridplan::UgridplanClient;
use bridge::whatsapp::{CloudApiClient, CloudApiConfig};
use bridge::worker::{InboxWorker, WorkerPorts, WorkerSettings};
use domain::command::ConversationCommands;
use domain::phone::PhoneNumber;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::Role;
use crate::config::{Settings, WhatsAppSettings};
use crate::database::Database;

/// How often the senders look at the outbox.
pub(crate) const REPLY_POLL: Duration = Duration::from_secs(1);
const UGRIDPLAN_POLL: Duration = Duration::from_secs(5);

/// Starts the worker and the configured senders, and says at start-up which parts run.
pub fn spawn(
    settings: &Settings,
    db: &Database,
    tasks: &mut JoinSet<(Role, anyhow::Result<()>)>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let pool = db.pool.clone();
    let bridge = &settings.bridge;
    let conversations = Arc::new(Conversations::new(pool.clone()));
    let tickets = Arc::new(Tickets::new(pool.clone()));
    let outbox = Arc::new(PgOutbox::new(pool.clone()));
    let ports = WorkerPorts {
        inbox: Arc::new(PgWebhookInbox::new(pool.clone())),
        customers: Arc::new(projections::ReadModels::new(pool.clone())),
        conversations: conversations.clone(),
        tickets: tickets.clone(),
        outbox: outbox.clone(),
    };
    let llm = match &bridge.llm {
        Some(config) => Some(
            LlmClient::new(config.clone())
                .map_err(|e| anyhow::anyhow!("configuration error: LLM_URL {e}"))?,
        ),
        None => None,
    };
    let worker_settings = WorkerSettings {
        follow_up_window: chrono::Duration::from_std(bridge.follow_up_window)
            .context("CCARE_BRIDGE_FOLLOW_UP_WINDOW is too long")?,
        reply_spacing: chrono::Duration::from_std(bridge.reply_spacing)
            .context("CCARE_BRIDGE_REPLY_SPACING is too long")?,
        ops_recipients: bridge.ops_recipients.clone(),
        forward_to_ugridplan: bridge.ugridplan.is_some(),
        ..WorkerSettings::default()
    };
    tracing::info!(
        triage = if llm.is_some() {
            "LLM, keyword rules as fallback"
        } else {
            "keyword rules (LLM_URL not set)"
        },
        replies = if bridge.cloud_api.is_some() {
            "sent through the Cloud API"
        } else {
            "queued until WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are set"
        },
        ugridplan = if bridge.ugridplan.is_some() {
            "tickets forwarded"
        } else {
            "not forwarded (UGRIDPLAN_URL not set)"
        },
        ops_recipients = bridge.ops_recipients.len(),
        "bridge role: processing the WhatsApp inbox"
    );
    let worker = InboxWorker::new(ports, llm, worker_settings);
    let token = stop.clone();
    tasks.spawn(async move {
        worker.run(token.cancelled_owned()).await;
        (Role::Bridge, Ok(()))
    });
    if let Some(config) = &bridge.cloud_api {
        let client = CloudApiClient::new(config.clone())
            .map_err(|e| anyhow::anyhow!("configuration error: WHATSAPP_ACCESS_TOKEN {e}"))?;
        let sender = ReplySender::new(
            outbox.clone(),
            conversations,
            client,
            bridge.templates.clone(),
        );
        let token = stop.clone();
        tasks.spawn(async move {
            sender.run(REPLY_POLL, token.cancelled_owned()).await;
            (Role::Bridge, Ok(()))
        });
    }
    if let Some(config) = &bridge.ugridplan {
        let client = UgridplanClient::new(config.clone())
            .map_err(|e| anyhow::anyhow!("configuration error: UGRIDPLAN_URL {e}"))?;
        let forwarder = UgridplanForwarder::new(outbox, tickets, client);
        let token = stop.clone();
        tasks.spawn(async move {
            forwarder.run(UGRIDPLAN_POLL, token.cancelled_owned()).await;
            (Role::Bridge, Ok(()))
        });
    }
    Ok(())
}

/// The demo's webhook secrets: generated on the first run and kept (owner-readable) under the
/// data directory, where `ccare bridge simulate` finds them.
pub fn demo_whatsapp(data_dir: &Path) -> anyhow::Result<WhatsAppSettings> {
    Ok(WhatsAppSettings {
        verify_token: super::serve::demo_file_secret(&data_dir.join("whatsapp-verify-token"))?,
        app_secret: super::serve::demo_file_secret(&data_dir.join("whatsapp-app-secret"))?,
    })
}

/// A local stand-in for the Cloud API's messages endpoint: takes each message like the real
/// one, hands its body to `on_message`, and answers with a fresh message id. Returns the
/// configuration that sends to it, and the server to run until `stop`.
pub(crate) async fn cloud_api_stand_in(
    stop: &CancellationToken,
    on_message: impl Fn(&serde_json::Value) + Clone + Send + Sync + 'static,
) -> anyhow::Result<(
    CloudApiConfig,
    impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
)> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("starting a local stand-in for the Cloud API")?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/{version}/{phone_number_id}/messages",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let on_message = on_message.clone();
            async move {
                on_message(&body);
                let to = body["to"].as_str().unwrap_or_default().to_string();
                axum::Json(serde_json::json!({
                    "messaging_product": "whatsapp",
                    "contacts": [{ "input": to, "wa_id": to }],
                    "messages": [{ "id": format!("wamid.local.{}", uuid::Uuid::new_v4().simple()) }]
                }))
            }
        }),
    );
    let mut config = CloudApiConfig::new("local-stand-in-token", "100000000000001");
    config.api_url = format!("http://{address}/v25.0");
    let serving = stop.clone();
    let server = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(serving.cancelled_owned())
            .await
    };
    Ok((config, server))
}

/// The Cloud API as the demo sees it: the local stand-in, printing every message it takes.
pub async fn start_cloud_api_simulator(
    tasks: &mut JoinSet<(Role, anyhow::Result<()>)>,
    stop: &CancellationToken,
) -> anyhow::Result<CloudApiConfig> {
    let (config, server) = cloud_api_stand_in(stop, |body| {
        let to = body["to"].as_str().unwrap_or("?");
        let text = body
            .pointer("/text/body")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("[template {}]", body["template"]["name"]));
        eprintln!("\n[WhatsApp simulator] to +{to}:\n{text}\n");
    })
    .await?;
    tasks.spawn(async move { (Role::Bridge, server.await.map_err(Into::into)) });
    tracing::info!(url = %config.api_url, "the demo's WhatsApp Cloud API simulator is listening");
    Ok(config)
}

/// `ccare bridge simulate`: delivers one message to the running server's webhook, signed as Meta
/// signs it, then waits for the bridge's reply and prints it with the ticket it opened.
pub async fn simulate(
    settings: Settings,
    from: &str,
    name: &str,
    text: &str,
) -> anyhow::Result<()> {
    let phone = PhoneNumber::parse(from)
        .map_err(|e| anyhow::anyhow!("--from {from:?} is not a phone number: {e}"))?;
    anyhow::ensure!(!text.trim().is_empty(), "the message text is empty");
    let whatsapp = match &settings.whatsapp {
        Some(whatsapp) => whatsapp.clone(),
        None if settings.data_dir.join("whatsapp-app-secret").exists() => {
            demo_whatsapp(&settings.data_dir)?
        }
        None => anyhow::bail!(
            "configuration error: WHATSAPP_APP_SECRET is not set and {} holds no demo secret: start `ccare demo` first (or set WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET as the server has them)",
            settings.data_dir.display()
        ),
    };
    let message_id = format!("wamid.sim.{}", uuid::Uuid::new_v4().simple());
    let wa_id = phone.as_str().trim_start_matches('+');
    let body = serde_json::to_vec(&bridge::cloud_api::text_delivery(
        wa_id,
        name,
        &message_id,
        text,
        chrono::Utc::now(),
    ))?;
    let url = format!("http://{}/webhooks/whatsapp", settings.listen);
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header(
            bridge::cloud_api::SIGNATURE_HEADER,
            bridge::cloud_api::signature_header(whatsapp.app_secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .with_context(|| {
            format!("posting to {url} (is `ccare demo` or `ccare serve` running? CCARE_LISTEN)")
        })?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "the webhook at {url} answered HTTP {status}: {}",
        response.text().await.unwrap_or_default()
    );
    eprintln!("delivered {message_id} from {} to {url}", phone.as_str());

    let db = Database::open(&settings).await?;
    let conversations = Conversations::new(db.pool.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answered = loop {
        let conversation = conversations
            .load(&phone)
            .await
            .map_err(|e| anyhow::anyhow!("reading the conversation: {e}"))?;
        if conversation.answered(&message_id) {
            break Some(conversation);
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    db.close().await?;
    let conversation = answered.context(
        "no reply within 30 s: is the bridge role running (in `ccare demo`, or `ccare serve` with WhatsApp configured)?",
    )?;
    let reply = conversation
        .recent_exchanges
        .iter()
        .rev()
        .find(|e| !e.from_customer)
        .map(|e| e.text.clone())
        .unwrap_or_default();
    if let Some(ticket) = conversation
        .ticket
        .as_ref()
        .filter(|t| reply.contains(&t.to_string()))
    {
        println!("ticket: {ticket}");
    }
    println!("reply:\n{reply}");
    Ok(())
}

/// `ccare bridge replay`: the deliveries left after repeated failures get another round.
pub async fn replay(settings: Settings) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let replayed = PgWebhookInbox::new(db.pool.clone())
        .replay_left(bridge::worker::MAX_DELIVERY_ATTEMPTS)
        .await;
    db.close().await?;
    let replayed = replayed?;
    println!("{replayed} webhook deliveries will be processed again by the running bridge worker");
    Ok(())
}
