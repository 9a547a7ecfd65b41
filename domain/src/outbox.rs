//! The bridge's outbox: what it must send out (replies through the Cloud API, tickets and
//! comments to uGridPlan, notices to the operations team), kept durably until it has gone.
//!
//! Work is queued in the same pass that decided it and sent by senders of their own, so a Cloud
//! API or uGridPlan outage delays messages and tickets but loses none, and a restart resumes
//! where the last process stopped. Items to one recipient go out in the order they were queued,
//! one at a time, and no closer together than the spacing they were queued with: the per-customer
//! rate limit queues, it never drops.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// Which sender an item is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxChannel {
    /// Messages through the WhatsApp Cloud API.
    Whatsapp,
    /// Tickets and comments forwarded to uGridPlan.
    Ugridplan,
}

impl OutboxChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxChannel::Whatsapp => "whatsapp",
            OutboxChannel::Ugridplan => "ugridplan",
        }
    }
}

/// An item to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    pub channel: OutboxChannel,
    /// Names the item for good: queueing a key again changes nothing (a worker that handles a
    /// message again after a crash queues nothing twice).
    pub key: String,
    /// Who it goes to: a phone number (E.164), or the ticket a uGridPlan call is about.
    pub recipient: String,
    /// What the sender needs, as JSON text (the sender's own shape).
    pub payload: String,
    /// The earliest it may go.
    pub not_before: DateTime<Utc>,
    /// The least time between two items to the same recipient (zero: no limit).
    pub spacing: Duration,
}

/// A queued item that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub channel: OutboxChannel,
    pub key: String,
    pub recipient: String,
    pub payload: String,
    pub queued_at: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// The outbox (implemented over PostgreSQL by the adapters).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queues `item`, later than `item.not_before` when the recipient's previous item leaves less
    /// than `item.spacing`. Returns whether it was queued (`false`: its key was queued before).
    async fn enqueue(&self, item: NewOutboxItem) -> Result<bool, String>;

    /// Up to `limit` items of `channel` due at `now`, earliest first: for each recipient only
    /// the oldest unfinished item, so one recipient's items go out in order.
    async fn due(
        &self,
        channel: OutboxChannel,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, String>;

    /// Item `id` went out; `outcome` is what the far side answered (a message or ticket id).
    async fn complete(&self, id: i64, outcome: &str) -> Result<(), String>;

    /// Item `id` failed for a reason that may pass: it is tried again at `at`.
    async fn retry(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<(), String>;

    /// The item of `channel` that went out with `outcome` (a message id), if any.
    async fn sent_as(
        &self,
        channel: OutboxChannel,
        outcome: &str,
    ) -> Result<Option<OutboxItem>, String>;

    /// Item `id` failed for good (the far side refused it): it is kept, with the reason, for
    /// staff to see, and the recipient's next item goes ahead.
    async fn give_up(&self, id: i64, error: &str) -> Result<(), String>;
}
