//! The tamper-evidence chain over the global log.
//!
//! Each event's link hash is SHA-256 over the previous event's link hash followed by the event's
//! content, in this exact byte layout (integers big-endian, strings as a 4-byte length then UTF-8):
//!
//! ```text
//! prev_link[32] ‖ position:i64 ‖ event_id:16 bytes ‖ aggregate_type ‖ aggregate_id ‖ sequence:i64
//!   ‖ event_type ‖ event_version ‖ payload text ‖ metadata text ‖ recorded_at as µs since epoch:i64
//! ```
//!
//! The first event's `prev_link` is 32 zero bytes. The same formula is implemented in SQL by
//! `ccare_event_link` (migrations/0001), used when postgres-es writes through the `events` view;
//! the two must stay byte-identical (a test in `adapters` checks it).

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const GENESIS_LINK: [u8; 32] = [0; 32];

/// The content of a stored event that the chain covers. `payload` and `metadata` are the JSON
/// texts exactly as stored.
#[derive(Debug, Clone, Copy)]
pub struct LinkedContent<'a> {
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a str,
    pub metadata: &'a str,
    pub recorded_at_micros: i64,
}

pub fn link_hash(prev: &[u8; 32], c: &LinkedContent<'_>) -> [u8; 32] {
    fn lp(h: &mut Sha256, s: &str) {
        h.update((s.len() as u32).to_be_bytes());
        h.update(s.as_bytes());
    }
    let mut h = Sha256::new();
    h.update(prev);
    h.update(c.position.to_be_bytes());
    h.update(c.event_id.as_bytes());
    lp(&mut h, c.aggregate_type);
    lp(&mut h, c.aggregate_id);
    h.update(c.sequence.to_be_bytes());
    lp(&mut h, c.event_type);
    lp(&mut h, c.event_version);
    lp(&mut h, c.payload);
    lp(&mut h, c.metadata);
    h.update(c.recorded_at_micros.to_be_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(payload: &str) -> LinkedContent<'_> {
        LinkedContent {
            position: 1,
            event_id: Uuid::nil(),
            aggregate_type: "Customer",
            aggregate_id: "1",
            sequence: 1,
            event_type: "CustomerCreated",
            event_version: "1",
            payload,
            metadata: "{}",
            recorded_at_micros: 0,
        }
    }

    #[test]
    fn any_change_to_the_content_or_the_previous_link_changes_the_link() {
        let base = link_hash(&GENESIS_LINK, &content("{}"));
        assert_ne!(base, link_hash(&GENESIS_LINK, &content("{ }")));
        assert_ne!(base, link_hash(&[1; 32], &content("{}")));
        assert_eq!(base, link_hash(&GENESIS_LINK, &content("{}")));
    }
}
