//! Events on their way into the global log ([`NewEvent`]) and out of it ([`StoredEvent`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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
    pub payload: EventPayload,
    pub metadata: BTreeMap<String, String>,
    pub recorded_at: DateTime<Utc>,
}

/// A stored event's payload, kept as the JSON text the log holds and decoded only by the reader
/// that needs it, straight into its own type.
///
/// Rebuilds read millions of events: going through a `serde_json::Value` first cost a tree of
/// small allocations per event, built on the reading thread and dropped on the applying one,
/// which made the reader, not the read models, the limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventPayload(Box<RawValue>);

impl EventPayload {
    /// The payload of the JSON text `json` (checked to be one JSON value).
    pub fn from_json(json: String) -> serde_json::Result<Self> {
        RawValue::from_string(json).map(Self)
    }

    /// The payload holding `value`.
    pub fn from_value(value: &serde_json::Value) -> Self {
        // A Value's own text is always one valid JSON value.
        Self::from_json(value.to_string()).expect("a JSON value serialises to valid JSON")
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The payload decoded into `T`.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }

    /// The payload as a JSON tree (for callers that inspect it generically).
    pub fn to_value(&self) -> serde_json::Value {
        self.decode()
            .expect("the payload was checked to be JSON when it was made")
    }
}

/// Equal when they hold the same JSON value, however it is spelled (key order, spacing).
impl PartialEq for EventPayload {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() || self.to_value() == other.to_value()
    }
}

impl From<&serde_json::Value> for EventPayload {
    fn from(value: &serde_json::Value) -> Self {
        Self::from_value(value)
    }
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
    fn a_payload_keeps_its_text_and_decodes_into_any_type() {
        let payload = EventPayload::from_json(r#"{"b": 1, "a": [true]}"#.to_string()).unwrap();
        assert_eq!(payload.json(), r#"{"b": 1, "a": [true]}"#);
        let decoded: BTreeMap<String, serde_json::Value> = payload.decode().unwrap();
        assert_eq!(decoded["b"], 1);
        assert_eq!(payload.to_value(), serde_json::json!({"a": [true], "b": 1}));
        assert!(EventPayload::from_json("{".to_string()).is_err());
    }

    #[test]
    fn payloads_are_equal_when_their_values_are_whatever_the_spelling() {
        let spaced = EventPayload::from_json(r#"{ "a": 1, "b": 2 }"#.to_string()).unwrap();
        let tight = EventPayload::from_value(&serde_json::json!({"b": 2, "a": 1}));
        assert_eq!(spaced, tight);
        assert_ne!(
            spaced,
            EventPayload::from_value(&serde_json::json!({"a": 1}))
        );
    }

    #[test]
    fn a_stored_event_goes_through_json_with_its_payload_unchanged() {
        let event = StoredEvent {
            position: 7,
            event_id: Uuid::nil(),
            aggregate_type: "Customer".into(),
            aggregate_id: "12".into(),
            sequence: 1,
            event_type: "CustomerCreated".into(),
            event_version: "1".into(),
            payload: EventPayload::from_value(&serde_json::json!({"Created": {"row": {}}})),
            metadata: BTreeMap::from([("channel".to_string(), "system".to_string())]),
            recorded_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(
            text.contains(r#""payload":{"Created":{"row":{}}}"#),
            "{text}"
        );
        let back: StoredEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn capture_event_ids_are_deterministic_and_distinct() {
        let a = capture_event_id("Customer", "12", 1);
        assert_eq!(a, capture_event_id("Customer", "12", 1));
        assert_ne!(a, capture_event_id("Customer", "12", 2));
        assert_ne!(a, capture_event_id("Customer", "1", 21));
    }
}
