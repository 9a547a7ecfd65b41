//! Distribution of the global log over NATS JetStream (used when `NATS_URL` is set).
//!
//! - [`OutboxRelay`] publishes every event of `event_log`, in position order, to one stream: the
//!   subject is `{stream}.{aggregate type}` (e.g. `CCARE_EVENTS.Customer`), the payload the [`StoredEvent`] as JSON, and
//!   `Nats-Msg-Id` the event id, so JetStream drops a repeat within its duplicate window. The
//!   event log is the outbox: nothing else needs writing when an event is appended.
//! - [`EventFeed`] reads the stream through a durable pull consumer, for a projector running in
//!   another process.
//!
//! Exactly once, end to end: the relay stores the position the stream has acknowledged, and on
//! start resumes after the larger of that and the position of the stream's last message (so a
//! crash between the stream's ack and the stored position republishes nothing, whatever the
//! duplicate window). A consumer gets every message at least once; the projector applies an
//! event only when its position is its checkpoint + 1, and moves the checkpoint in the same
//! transaction, so a redelivery is skipped and a gap is never jumped.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_nats::HeaderMap;
use domain::event::StoredEvent;
use futures::StreamExt;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::store::EventStore;

/// The header carrying the global position of the event a message holds.
pub const POSITION_HEADER: &str = "Ccare-Position";

/// The stream's name unless `CCARE_NATS_STREAM` says otherwise.
pub const DEFAULT_STREAM: &str = "CCARE_EVENTS";

/// The durable consumer of the projector role.
pub const PROJECTOR_CONSUMER: &str = "ccare-projector";

/// The PostgreSQL channel the event store notifies on after an append.
const EVENT_LOG_CHANNEL: &str = "ccare_event_log";

/// Where and how the log is distributed.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream's name, also the first token of its subjects.
    pub stream: String,
    /// Events read from the log and published per round.
    pub batch: i64,
    /// How long the relay waits for news when the log gives none.
    pub poll_interval: Duration,
    /// How long a delivered message may stay unacknowledged before JetStream redelivers it.
    pub ack_wait: Duration,
}

impl NatsConfig {
    /// The production defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            stream: DEFAULT_STREAM.into(),
            batch: 1_000,
            poll_interval: Duration::from_secs(1),
            ack_wait: Duration::from_secs(30),
        }
    }

    /// The subject of an event of `aggregate_type` (characters NATS gives a meaning to become `_`).
    pub fn subject(&self, aggregate_type: &str) -> String {
        let token: String = aggregate_type
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}.{token}", self.stream)
    }

    /// Whether `name` can name a stream (and so start its subjects): letters, digits, `-`, `_`.
    pub fn valid_stream_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }
}

fn nats_error(what: &str, config: &NatsConfig, error: impl std::fmt::Display) -> Error {
    Error::Nats(format!("{what} ({}, NATS_URL): {error}", config.url))
}

async fn connect(config: &NatsConfig) -> Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("ccare")
        .connect(config.url.as_str())
        .await
        .map_err(|e| nats_error("cannot connect to NATS", config, e))?;
    Ok(jetstream::new(client))
}

async fn ensure_stream(js: &jetstream::Context, config: &NatsConfig) -> Result<stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.stream)],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| nats_error(&format!("cannot open stream {}", config.stream), config, e))
}

/// The global position in a message's headers.
fn position_of(headers: Option<&HeaderMap>) -> Option<i64> {
    headers?.get(POSITION_HEADER)?.as_str().parse().ok()
}

/// Publishes the global log to JetStream, in order, resuming after any crash.
pub struct OutboxRelay {
    pool: PgPool,
    store: EventStore,
    js: jetstream::Context,
    stream: stream::Stream,
    config: NatsConfig,
}

impl OutboxRelay {
    /// Connects to NATS and makes sure the stream exists.
    pub async fn connect(pool: PgPool, config: NatsConfig) -> Result<Self> {
        let js = connect(&config).await?;
        let stream = ensure_stream(&js, &config).await?;
        Ok(OutboxRelay {
            store: EventStore::new(pool.clone()),
            pool,
            js,
            stream,
            config,
        })
    }

    /// The position the stream is known to hold everything up to: the larger of the stored one
    /// and that of the stream's last message.
    pub async fn position(&self) -> Result<i64> {
        let stored: Option<i64> =
            sqlx::query_scalar("select position from nats_relay where stream = $1")
                .bind(&self.config.stream)
                .fetch_optional(&self.pool)
                .await?;
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| nats_error("reading the stream's state", &self.config, e))?;
        let last_sequence = info.state.last_sequence;
        let in_stream = if info.state.messages == 0 {
            None
        } else {
            let last = stream
                .get_raw_message(last_sequence)
                .await
                .map_err(|e| nats_error("reading the stream's last message", &self.config, e))?;
            position_of(Some(&last.headers))
        };
        Ok(stored.unwrap_or(0).max(in_stream.unwrap_or(0)))
    }

    async fn store_position(&self, position: i64) -> Result<()> {
        sqlx::query(
            "insert into nats_relay (stream, position) values ($1, $2) \
             on conflict (stream) do update set position = greatest(nats_relay.position, excluded.position), updated_at = now()",
        )
        .bind(&self.config.stream)
        .bind(position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Publishes one batch after `after`; returns the position now published up to.
    async fn publish_batch(&self, after: i64) -> Result<i64> {
        let events = self.store.read_after(after, self.config.batch).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(after);
        };
        // Published back to back on one connection (so in order), acknowledged afterwards.
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
            headers.insert(POSITION_HEADER, event.position.to_string().as_str());
            let payload = serde_json::to_vec(event)
                .map_err(|e| Error::Nats(format!("encoding event {}: {e}", event.position)))?;
            let ack = self
                .js
                .publish_with_headers(
                    self.config.subject(&event.aggregate_type),
                    headers,
                    payload.into(),
                )
                .await
                .map_err(|e| nats_error("publishing an event", &self.config, e))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| {
                nats_error("the stream did not acknowledge an event", &self.config, e)
            })?;
        }
        self.store_position(last).await?;
        Ok(last)
    }

    /// Publishes everything not yet published; returns how many events it published.
    pub async fn publish_pending(&self) -> Result<u64> {
        let (from, to) = self.round(None).await?;
        Ok(u64::try_from(to - from).unwrap_or_default())
    }

    /// Publishes every event after `known` (after [`position`](Self::position) when `None`);
    /// returns the positions it started from and reached.
    async fn round(&self, known: Option<i64>) -> Result<(i64, i64)> {
        let from = match known {
            Some(position) => position,
            None => self.position().await?,
        };
        let mut position = from;
        loop {
            let next = self.publish_batch(position).await?;
            if next == position {
                return Ok((from, position));
            }
            position = next;
        }
    }

    /// Publishes until `shutdown` completes: whenever the event store notifies an append, and
    /// at least every poll interval. A failed round (NATS or PostgreSQL down) is logged and
    /// retried with a growing delay; nothing is skipped.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(EVENT_LOG_CHANNEL).await?;
        tokio::pin!(shutdown);
        let mut delay = self.config.poll_interval;
        tracing::info!(stream = %self.config.stream, "NATS outbox relay started");
        // What the stream holds is read from it once, and again only after a failed round (which
        // may have published part of a batch); in between the relay knows where it is.
        let mut known = None;
        loop {
            match self.round(known).await {
                Ok((from, to)) => {
                    known = Some(to);
                    delay = self.config.poll_interval;
                    if to > from {
                        tracing::debug!(published = to - from, "events published to NATS");
                    }
                }
                Err(error) => {
                    known = None;
                    tracing::error!(error = %error, retry_in = ?delay, "the NATS relay failed; retrying");
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                _ = listener.recv() => {}
                () = tokio::time::sleep(delay) => {}
            }
        }
        tracing::info!("NATS outbox relay stopped");
        Ok(())
    }
}

/// How far the relay has published the log to one stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RelayProgress {
    pub stream: String,
    /// The last position the stream acknowledged.
    pub position: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every stream the relay has published to, as recorded in PostgreSQL (`ccare status`).
pub async fn relay_progress(pool: &PgPool) -> Result<Vec<RelayProgress>> {
    Ok(
        sqlx::query_as("select stream, position, updated_at from nats_relay order by stream")
            .fetch_all(pool)
            .await?,
    )
}

/// One event delivered by the stream, to be acknowledged once applied.
pub struct Delivered {
    pub event: StoredEvent,
    message: jetstream::Message,
}

impl Delivered {
    /// Tells the stream the event is applied (and waits for the server to confirm it).
    pub async fn ack(&self) -> Result<()> {
        self.message
            .double_ack()
            .await
            .map_err(|e| Error::Nats(format!("acknowledging event {}: {e}", self.event.position)))
    }

    /// Asks for the event again after `delay` (it could not be applied yet).
    pub async fn retry_after(&self, delay: Duration) -> Result<()> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| Error::Nats(format!("returning event {}: {e}", self.event.position)))
    }
}

/// The stream read through a durable pull consumer.
pub struct EventFeed {
    consumer: consumer::Consumer<consumer::pull::Config>,
    config: NatsConfig,
}

impl EventFeed {
    /// Connects to the durable consumer `durable` of the stream (created on first use, from the
    /// stream's first message).
    pub async fn connect(config: NatsConfig, durable: &str) -> Result<Self> {
        let js = connect(&config).await?;
        let stream = ensure_stream(&js, &config).await?;
        let consumer = stream
            .get_or_create_consumer(
                durable,
                consumer::pull::Config {
                    durable_name: Some(durable.to_string()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_wait: config.ack_wait,
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats_error(&format!("cannot open consumer {durable}"), &config, e))?;
        Ok(EventFeed { consumer, config })
    }

    /// Up to `max` events, waiting at most `wait` for the first. A message that is not a
    /// ccare event is logged and left unacknowledged (it is not ours to drop).
    pub async fn next_batch(&self, max: usize, wait: Duration) -> Result<Vec<Delivered>> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| nats_error("fetching events", &self.config, e))?;
        let mut batch = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| nats_error("receiving an event", &self.config, e))?;
            match serde_json::from_slice::<StoredEvent>(&message.payload) {
                Ok(event) => batch.push(Delivered { event, message }),
                Err(e) => tracing::error!(
                    subject = %message.subject,
                    error = %e,
                    "a message on the event stream is not a ccare event; ignored"
                ),
            }
        }
        Ok(batch)
    }
}

/// How [`consume`] reads and retries.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeOptions {
    /// Events fetched at once.
    pub batch: usize,
    /// How long one fetch waits for events.
    pub wait: Duration,
    /// When an event cannot be applied yet (an earlier one is still to come), how soon to ask
    /// for it again.
    pub retry_delay: Duration,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            batch: 500,
            wait: Duration::from_secs(1),
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// Feeds `apply` the events of `feed` until `shutdown` completes. `apply` returns the position
/// up to which the events are applied (durably: committed); deliveries at or below it are
/// acknowledged, the others returned for redelivery. A failure (NATS down, `apply` failing) is
/// logged and retried with a growing delay; an event is acknowledged only once applied.
pub async fn consume<A, F, E>(
    feed: &EventFeed,
    mut apply: A,
    options: ConsumeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()>
where
    A: FnMut(Vec<StoredEvent>) -> F + Send,
    F: Future<Output = std::result::Result<i64, E>> + Send,
    E: std::fmt::Display,
{
    tokio::pin!(shutdown);
    let mut failures: u32 = 0;
    let backoff = |failures: u32| {
        (options.retry_delay * 2u32.saturating_pow(failures.min(7))).min(Duration::from_secs(60))
    };
    loop {
        let batch = tokio::select! {
            () = &mut shutdown => break,
            batch = feed.next_batch(options.batch, options.wait) => batch,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                failures += 1;
                let delay = backoff(failures);
                tracing::error!(error = %error, retry_in = ?delay, "reading the event stream failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if batch.is_empty() {
            continue;
        }
        let events = batch.iter().map(|d| d.event.clone()).collect();
        let (through, delay) = match apply(events).await {
            Ok(through) => {
                failures = 0;
                (through, options.retry_delay)
            }
            Err(error) => {
                failures += 1;
                let delay = backoff(failures);
                tracing::error!(error = %error, retry_in = ?delay, "applying delivered events failed");
                (i64::MIN, delay)
            }
        };
        for delivered in &batch {
            let answered = if delivered.event.position <= through {
                delivered.ack().await
            } else {
                delivered.retry_after(delay).await
            };
            // An answer that does not arrive is a redelivery later, which the checkpoint skips.
            if let Err(error) = answered {
                tracing::warn!(error = %error, "answering a delivery failed");
            }
        }
    }
    tracing::info!("event stream consumer stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_prefix_and_a_safe_aggregate_type_token() {
        let config = NatsConfig::new("nats://127.0.0.1:4222");
        assert_eq!(config.subject("Customer"), "CCARE_EVENTS.Customer");
        assert_eq!(config.subject("a.b c>*"), "CCARE_EVENTS.a_b_c__");
        assert!(NatsConfig::valid_stream_name("T_1-x"));
        assert!(!NatsConfig::valid_stream_name("a.b"));
        assert!(!NatsConfig::valid_stream_name(""));
    }
}
