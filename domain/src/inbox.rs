//! The durable inbox of WhatsApp webhook deliveries: the port the API stores each verified
//! delivery through before it answers Meta, and the future bridge worker reads them back from.
//!
//! Meta retries a delivery until it gets a 2xx, and sometimes sends one again after it did. So
//! the API answers 200 only once the delivery is stored ([`WebhookInbox::store`]); whatever comes
//! of it afterwards (triage, tickets, replies) is the worker's, working from the inbox at its own
//! pace, so a crash between the answer and the work loses nothing.
//!
//! Deliveries are kept whole and as received: the signed bytes are the only form Meta's
//! signature holds for, and a delivery that could not be processed can be replayed once the
//! cause is fixed. Redeliveries are recognised by the wamids of their inbound messages, which
//! the inbox remembers across restarts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A webhook delivery whose signature has been verified, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The request body exactly as received and signed, byte for byte.
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
    /// The wamids of the inbound messages in it, for recognising a redelivery. Status updates do
    /// not count: their id is that of our own message, which every update of it (sent, delivered,
    /// read) shares. Empty for a delivery of status updates only.
    pub message_ids: Vec<String>,
}

/// What storing a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredDelivery {
    /// The delivery's id in the inbox, in order of reception.
    pub id: i64,
    /// Every message id of the delivery had been stored before: Meta sent it again. `false` for
    /// a delivery without message ids, since nothing in it can be recognised.
    pub redelivery: bool,
}

/// A stored delivery the worker has not processed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// The body as received.
    pub body: Vec<u8>,
    pub message_ids: Vec<String>,
    /// The message ids this delivery carried first: the messages it is to act on. A redelivery's
    /// are with the delivery that carried them first, however long ago.
    pub first_carried: Vec<String>,
    /// Attempts at processing it so far (each one that failed).
    pub attempts: i32,
    /// The reason the last attempt failed.
    pub last_error: Option<String>,
}

/// Where verified webhook deliveries are kept until they are processed (implemented over
/// PostgreSQL by the adapters).
#[async_trait]
pub trait WebhookInbox: Send + Sync {
    /// Stores `delivery` durably (it is there once this returns `Ok`) and remembers its message
    /// ids. A redelivery is stored too, as a delivery of its own: each message id stays with the
    /// delivery that carried it first, so the worker acts on a message once.
    async fn store(&self, delivery: NewDelivery) -> Result<StoredDelivery, String>;

    /// Up to `limit` deliveries not processed yet with an id above `after`, oldest first (the
    /// order customers wrote in), leaving out those that failed `max_attempts` times or more
    /// (they wait for a replay once the cause is fixed). A worker pages through all of them with
    /// `after` = the last id of the previous page.
    async fn next_unprocessed(
        &self,
        after: i64,
        limit: u32,
        max_attempts: i32,
    ) -> Result<Vec<PendingDelivery>, String>;

    /// Records delivery `id` as processed; it is not listed again. Marking it twice changes
    /// nothing. An unknown id is an error.
    async fn mark_processed(&self, id: i64) -> Result<(), String>;

    /// Records a failed attempt at processing delivery `id`, and why. It stays unprocessed, to be
    /// tried again. An unknown id, or one already processed, is an error.
    async fn mark_failed(&self, id: i64, reason: &str) -> Result<(), String>;
}
