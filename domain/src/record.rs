//! The aggregate every captured ACDB row becomes, and the decision the change capture makes.
//!
//! Each captured table maps to one aggregate type (see [`crate::catalog`]); each row is one
//! aggregate, identified by its row key. Its events record what happened to the row:
//! created, updated (with before and after values) or deleted. The same pure decision
//! ([`decide_capture`], [`decide_deletion`]) serves the bulk capture path and cqrs-es commands.

use std::marker::PhantomData;

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::acdb::{AcdbRow, RowHash};

/// What happened to a captured row. Serialised as the event payload (externally tagged:
/// `{"Created":{"row":…}}`, `{"Updated":{"before":…,"after":…,"changed":[…]}}`, `{"Deleted":{"before":…}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowChange {
    Created {
        row: AcdbRow,
    },
    Updated {
        before: AcdbRow,
        after: AcdbRow,
        changed: Vec<String>,
    },
    Deleted {
        before: AcdbRow,
    },
}

/// The version of the payload shape above. Bump it (and add an upcaster) on any change.
pub const ROW_CHANGE_VERSION: &str = "1";

impl RowChange {
    /// `Created`, `Updated` or `Deleted`: the suffix of the stored event type.
    pub fn kind(&self) -> &'static str {
        match self {
            RowChange::Created { .. } => "Created",
            RowChange::Updated { .. } => "Updated",
            RowChange::Deleted { .. } => "Deleted",
        }
    }

    /// The stored event type, e.g. `CustomerUpdated`.
    pub fn event_type(&self, aggregate_type: &str) -> String {
        format!("{aggregate_type}{}", self.kind())
    }

    /// The row as it is after the change (`None` after a delete).
    pub fn current_row(&self) -> Option<&AcdbRow> {
        match self {
            RowChange::Created { row } => Some(row),
            RowChange::Updated { after, .. } => Some(after),
            RowChange::Deleted { .. } => None,
        }
    }

    pub fn to_payload(&self) -> serde_json::Value {
        // A RowChange is a tree of maps, strings and numbers: serialising it cannot fail.
        serde_json::to_value(self).expect("RowChange serialises to JSON")
    }

    pub fn from_payload(payload: &crate::event::EventPayload) -> Result<Self, serde_json::Error> {
        payload.decode()
    }
}

/// What the capture knows of a row from the events so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordState {
    /// The sequence of the last event (0: none yet).
    pub sequence: i64,
    /// The row as last captured; `None` before the first capture and after a delete.
    pub row: Option<AcdbRow>,
}

impl RecordState {
    pub fn exists(&self) -> bool {
        self.row.is_some()
    }

    pub fn row_hash(&self) -> Option<RowHash> {
        self.row.as_ref().map(AcdbRow::content_hash)
    }

    pub fn apply(&mut self, change: &RowChange) {
        self.sequence += 1;
        self.row = change.current_row().cloned();
    }
}

/// The event, if any, that capturing `row` (as read from the ACDB now) produces.
/// Unchanged content produces nothing, which is what makes a repeated cycle emit nothing.
pub fn decide_capture(state: &RecordState, row: AcdbRow) -> Option<RowChange> {
    match &state.row {
        None => Some(RowChange::Created { row }),
        Some(before) if before.content_hash() == row.content_hash() => None,
        Some(before) => Some(RowChange::Updated {
            changed: before.changed_columns(&row),
            before: before.clone(),
            after: row,
        }),
    }
}

/// The event, if any, that finding the row gone from the ACDB produces.
pub fn decide_deletion(state: &RecordState) -> Option<RowChange> {
    state.row.as_ref().map(|before| RowChange::Deleted {
        before: before.clone(),
    })
}

/// Ties an aggregate type name to the Rust type of its aggregate.
pub trait RecordKind: Send + Sync + 'static {
    /// The aggregate type (permanent; see `catalog::TableSpec::aggregate_type`).
    const AGGREGATE_TYPE: &'static str;
}

/// The cqrs-es aggregate of one captured row of table kind `K`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AcdbRecord<K> {
    pub state: RecordState,
    #[serde(skip)]
    kind: PhantomData<K>,
}

impl<K> Default for AcdbRecord<K> {
    fn default() -> Self {
        AcdbRecord {
            state: RecordState::default(),
            kind: PhantomData,
        }
    }
}

/// The commands a captured row accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordCommand {
    /// The row as read from the ACDB now.
    Capture { row: AcdbRow },
    /// The row is no longer in the ACDB.
    CaptureDeletion,
}

/// The event type of [`AcdbRecord`]: a [`RowChange`] tagged with its aggregate type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordEvent<K> {
    pub change: RowChange,
    #[serde(skip)]
    kind: PhantomData<K>,
}

impl<K> RecordEvent<K> {
    pub fn new(change: RowChange) -> Self {
        RecordEvent {
            change,
            kind: PhantomData,
        }
    }
}

impl<K: RecordKind + std::fmt::Debug + Clone + PartialEq> DomainEvent for RecordEvent<K> {
    fn event_type(&self) -> String {
        self.change.event_type(K::AGGREGATE_TYPE)
    }

    fn event_version(&self) -> String {
        ROW_CHANGE_VERSION.to_string()
    }
}

/// Capturing never fails in the domain: every decision is "emit this" or "nothing changed".
#[derive(Debug, thiserror::Error)]
#[error("unreachable: record capture has no failure")]
pub struct RecordError;

impl<K> Aggregate for AcdbRecord<K>
where
    K: RecordKind
        + std::fmt::Debug
        + Clone
        + PartialEq
        + Default
        + Serialize
        + for<'de> Deserialize<'de>,
{
    const TYPE: &'static str = K::AGGREGATE_TYPE;
    type Command = RecordCommand;
    type Event = RecordEvent<K>;
    type Error = RecordError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let change = match command {
            RecordCommand::Capture { row } => decide_capture(&self.state, row),
            RecordCommand::CaptureDeletion => decide_deletion(&self.state),
        };
        if let Some(change) = change {
            sink.write(RecordEvent::new(change), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.state.apply(&event.change);
    }
}

/// The record kinds of the captured tables (one per `catalog::CAPTURED_TABLES` entry).
pub mod kinds {
    use serde::{Deserialize, Serialize};

    macro_rules! kinds {
        ($($name:ident),+ $(,)?) => {$(
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
            pub struct $name;
            impl super::RecordKind for $name {
                const AGGREGATE_TYPE: &'static str = stringify!($name);
            }
        )+};
    }

    kinds!(
        TariffConfig,
        Customer,
        Account,
        Meter,
        MeterRegisterCopy,
        AccountTransaction,
        ArchivedAccountTransaction,
        MeterReading,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue;
    use crate::catalog::CAPTURED_TABLES;

    fn row(name: &str) -> AcdbRow {
        AcdbRow::new()
            .with("CUSTOMER ID", AcdbValue::Int(1))
            .with("FIRST NAME", AcdbValue::Text(name.into()))
    }

    #[test]
    fn a_new_row_is_created_then_an_unchanged_one_emits_nothing() {
        let mut state = RecordState::default();
        let created = decide_capture(&state, row("Mpho")).unwrap();
        assert_eq!(created.kind(), "Created");
        state.apply(&created);
        assert_eq!(decide_capture(&state, row("Mpho")), None);
        assert_eq!(state.sequence, 1);
    }

    #[test]
    fn an_edited_row_is_updated_with_before_after_and_the_changed_columns() {
        let mut state = RecordState::default();
        state.apply(&decide_capture(&state, row("Mpho")).unwrap());
        let updated = decide_capture(&state, row("Palesa")).unwrap();
        assert_eq!(
            updated,
            RowChange::Updated {
                before: row("Mpho"),
                after: row("Palesa"),
                changed: vec!["FIRST NAME".into()]
            }
        );
    }

    #[test]
    fn a_deletion_is_emitted_once() {
        let mut state = RecordState::default();
        assert_eq!(decide_deletion(&state), None);
        state.apply(&decide_capture(&state, row("Mpho")).unwrap());
        let deleted = decide_deletion(&state).unwrap();
        state.apply(&deleted);
        assert_eq!(decide_deletion(&state), None);
        assert!(!state.exists());
    }

    #[test]
    fn payloads_round_trip_and_name_their_kind() {
        let change = RowChange::Deleted {
            before: row("Mpho"),
        };
        assert_eq!(
            RowChange::from_payload(&crate::event::EventPayload::from_value(
                &change.to_payload()
            ))
            .unwrap(),
            change
        );
        assert_eq!(change.event_type("Customer"), "CustomerDeleted");
    }

    #[test]
    fn every_captured_table_has_a_record_kind() {
        use kinds::*;
        let kinds = [
            TariffConfig::AGGREGATE_TYPE,
            Customer::AGGREGATE_TYPE,
            Account::AGGREGATE_TYPE,
            Meter::AGGREGATE_TYPE,
            MeterRegisterCopy::AGGREGATE_TYPE,
            AccountTransaction::AGGREGATE_TYPE,
            ArchivedAccountTransaction::AGGREGATE_TYPE,
            MeterReading::AGGREGATE_TYPE,
        ];
        let tables: Vec<&str> = CAPTURED_TABLES.iter().map(|t| t.aggregate_type).collect();
        assert_eq!(kinds.to_vec(), tables);
    }

    #[tokio::test]
    async fn the_cqrs_aggregate_makes_the_same_decisions() {
        use cqrs_es::test::TestFramework;
        type Customer = AcdbRecord<kinds::Customer>;
        TestFramework::<Customer>::with(())
            .given(vec![RecordEvent::new(RowChange::Created {
                row: row("Mpho"),
            })])
            .when_async(RecordCommand::Capture { row: row("Mpho") })
            .await
            .then_expect_events(vec![]);
        TestFramework::<Customer>::with(())
            .given(vec![RecordEvent::new(RowChange::Created {
                row: row("Mpho"),
            })])
            .when_async(RecordCommand::CaptureDeletion)
            .await
            .then_expect_events(vec![RecordEvent::new(RowChange::Deleted {
                before: row("Mpho"),
            })]);
    }
}
