//! The events a capture emits.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use domain::acdb::{AcdbRow, RowHash};
use domain::catalog::TableSpec;
use domain::envelope::{maseru_time, Actor, CdcSource, Envelope};
use domain::event::{capture_event_id, NewEvent};
use domain::record::{RowChange, ROW_CHANGE_VERSION};

use super::{OwnWrite, Phase};
use crate::store::{EncodedEvent, EventHead};
use crate::Result;

/// The metadata key naming the capture step that found a change.
pub(super) const PHASE_KEY: &str = domain::envelope::CDC_PHASE_KEY;
use domain::envelope::REVERTS_KEY;

/// Builds the events of one table's cycle.
pub(super) struct EventFactory {
    pub spec: &'static TableSpec,
    pub phase: Phase,
    pub correlation_id: Uuid,
}

impl EventFactory {
    /// The event recording `change` of the row `key` at aggregate `sequence`, detected at
    /// `read_at`. `row_hash` is the row's hash after the change (before it, for a deletion).
    pub(super) fn event(
        &self,
        key: &str,
        sequence: i64,
        change: &RowChange,
        row_hash: RowHash,
        read_at: DateTime<Utc>,
        own_write: Option<&OwnWrite>,
    ) -> NewEvent {
        let (actor, causation_id) = match (own_write, self.phase) {
            (Some(own), _) => (own.actor.clone(), Some(own.causation_id)),
            (None, Phase::Snapshot) => (Actor::system(), None),
            (None, Phase::Poll | Phase::Reconcile | Phase::Write) => (Actor::cdc_external(), None),
        };
        let envelope = Envelope {
            actor,
            correlation_id: self.correlation_id,
            causation_id,
            occurred_at: maseru_time(read_at),
            cdc: Some(CdcSource {
                table: self.spec.table.to_string(),
                key: key.to_string(),
                row_hash,
            }),
        };
        let mut metadata = envelope.to_metadata();
        metadata.insert(PHASE_KEY.to_string(), self.phase.as_str().to_string());
        if let Some(reverts) = own_write.and_then(|own| own.reverts) {
            metadata.insert(REVERTS_KEY.to_string(), reverts.to_string());
        }
        let aggregate_type = self.spec.aggregate_type;
        NewEvent {
            event_id: capture_event_id(aggregate_type, key, sequence),
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: key.to_string(),
            sequence,
            event_type: change.event_type(aggregate_type),
            event_version: ROW_CHANGE_VERSION.to_string(),
            payload: change.to_payload(),
            metadata,
        }
    }
}

/// `RowChange::Created` over a borrowed row: serialises to the same JSON as the owned change
/// (`{"Created":{"row":…}}`) without moving or cloning the row.
#[derive(Serialize)]
enum CreatedPayload<'a> {
    Created { row: &'a AcdbRow },
}

/// Encodes the snapshot's `…Created` events straight from the source rows, on the reader's
/// thread: the payload is serialised from the row itself and the envelope from strings shared
/// by the chunk, with no `serde_json::Value` or metadata map built per event. The text stored is
/// the one [`EventFactory::event`] and [`EncodedEvent::new`] give (a test checks it).
pub(super) struct SnapshotEncoder {
    factory: EventFactory,
    event_type: String,
    correlation_id: String,
    /// The Maseru rendering of the last `read_at` seen (one per chunk).
    occurred_at: Option<(DateTime<Utc>, String)>,
}

impl SnapshotEncoder {
    pub(super) fn new(factory: EventFactory) -> Self {
        debug_assert_eq!(factory.phase, Phase::Snapshot);
        SnapshotEncoder {
            event_type: format!("{}Created", factory.spec.aggregate_type),
            correlation_id: factory.correlation_id.to_string(),
            occurred_at: None,
            factory,
        }
    }

    /// The `…Created` event (sequence 1) of the row keyed `key`, read at `read_at`.
    pub(super) fn created(
        &mut self,
        key: &str,
        row: &AcdbRow,
        row_hash: RowHash,
        read_at: DateTime<Utc>,
    ) -> Result<EncodedEvent> {
        let occurred_at = match &self.occurred_at {
            Some((at, text)) if *at == read_at => text,
            _ => {
                let text = maseru_time(read_at).to_rfc3339();
                &self.occurred_at.insert((read_at, text)).1
            }
        };
        let mut hex_buf = [0u8; 64];
        hex::encode_to_slice(row_hash.0, &mut hex_buf).expect("32 bytes take 64 hex digits");
        let row_hash = std::str::from_utf8(&hex_buf).expect("hex digits are ASCII");
        // The envelope of `Envelope::to_metadata` for the system actor with a CDC source, plus
        // the phase; a BTreeMap so the keys come out sorted as that map's do.
        let metadata: BTreeMap<&str, &str> = BTreeMap::from([
            ("channel", Actor::system().channel.as_str()),
            ("correlation_id", self.correlation_id.as_str()),
            ("occurred_at", occurred_at.as_str()),
            ("cdc_table", self.factory.spec.table),
            ("cdc_key", key),
            ("cdc_row_hash", row_hash),
            (PHASE_KEY, Phase::Snapshot.as_str()),
        ]);
        let aggregate_type = self.factory.spec.aggregate_type;
        EncodedEvent::with_json(
            EventHead {
                event_id: capture_event_id(aggregate_type, key, 1),
                aggregate_type,
                aggregate_id: key,
                sequence: 1,
                event_type: &self.event_type,
                event_version: ROW_CHANGE_VERSION,
            },
            &CreatedPayload::Created { row },
            &metadata,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::acdb::AcdbValue;
    use domain::catalog::table_spec;

    #[test]
    fn a_snapshot_event_is_encoded_as_the_generic_event_would_be() {
        let spec = table_spec("tblcustomer").unwrap();
        let factory = || EventFactory {
            spec,
            phase: Phase::Snapshot,
            correlation_id: Uuid::from_u128(42),
        };
        let row = AcdbRow::new()
            .with("CUSTOMER ID", AcdbValue::Int(12))
            .with("FIRST NAME", AcdbValue::Text("Mpho \"M\"\tü".into()))
            .with(
                "BALANCE",
                AcdbValue::Decimal {
                    decimal: "12.5000".parse().unwrap(),
                },
            )
            .with("NOTES", AcdbValue::Null);
        let hash = row.content_hash();
        let read_at: DateTime<Utc> = "2026-01-02T03:04:05.123456Z".parse().unwrap();
        let generic = factory().event(
            "12",
            1,
            &RowChange::Created { row: row.clone() },
            hash,
            read_at,
            None,
        );
        let mut encoder = SnapshotEncoder::new(factory());
        for _ in 0..2 {
            let fast = encoder.created("12", &row, hash, read_at).unwrap();
            assert_eq!(fast, EncodedEvent::new(&generic).unwrap());
        }
    }
}
