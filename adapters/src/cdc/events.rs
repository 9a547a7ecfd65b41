//! The events a capture emits.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use domain::acdb::RowHash;
use domain::catalog::TableSpec;
use domain::envelope::{maseru_time, Actor, CdcSource, Envelope};
use domain::event::{capture_event_id, NewEvent};
use domain::record::{RowChange, ROW_CHANGE_VERSION};

use super::{OwnWrite, Phase};

/// The metadata key naming the capture step that found a change.
pub(super) const PHASE_KEY: &str = "cdc_phase";

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
            (None, Phase::Poll | Phase::Reconcile) => (Actor::cdc_external(), None),
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
