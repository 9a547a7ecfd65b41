//! Events on their way into the global log ([`NewEvent`]) and out of it ([`StoredEvent`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An event ready to append. `event_id` is the idempotency key: appending the same id twice
/// stores it once.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position within the aggregate, from 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    /// The envelope as a flat map (see `envelope::Envelope::to_metadata`).
    pub metadata: BTreeMap<String, String>,
}

/// An event as stored in the global log (and, as JSON, as the NATS distribution carries it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredEvent {
    /// Global position: gap-free, increasing in commit order.
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: BTreeMap<String, String>,
    pub recorded_at: DateTime<Utc>,
}

/// The deterministic id of the event a capture emits for `aggregate_type`/`aggregate_id` at
/// `sequence`: a capture that is interrupted and repeated produces the same ids, so the store's
/// idempotent append drops the repeats.
pub fn capture_event_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Uuid {
    // A fixed namespace for ccare's capture events; changing it would change every id.
    const NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2a0e_8c1b_4f6e_9a35_0c2e_ccae_0001);
    let name = format!("{aggregate_type}\u{1f}{aggregate_id}\u{1f}{sequence}");
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_event_ids_are_deterministic_and_distinct() {
        let a = capture_event_id("Customer", "12", 1);
        assert_eq!(a, capture_event_id("Customer", "12", 1));
        assert_ne!(a, capture_event_id("Customer", "12", 2));
        assert_ne!(a, capture_event_id("Customer", "1", 21));
    }
}
