//! Events shaped like the change capture's, for tests that need a log.

use domain::acdb::{AcdbRow, AcdbValue};
use domain::envelope::{Actor, Envelope};
use domain::event::{capture_event_id, NewEvent};
use domain::record::{RowChange, ROW_CHANGE_VERSION};
use uuid::Uuid;

/// A captured customer row, roughly the size of a real one (~500 bytes of payload).
pub fn customer_row(id: i64) -> AcdbRow {
    AcdbRow::new()
        .with("CUSTOMER ID", AcdbValue::Int(id))
        .with("FIRST NAME", AcdbValue::Text("Palesa".into()))
        .with("LAST NAME", AcdbValue::Text("Mokoena".into()))
        .with("PLOT NUMBER", AcdbValue::Text(format!("MAK-{id:04}-HH")))
        .with("CELL PHONE 1", AcdbValue::Text("+266 5800 1234".into()))
        .with("VILLAGE", AcdbValue::Text("Ha Makebe".into()))
        .with(
            "DATE SERVICE CONNECTED",
            AcdbValue::Text("2021-03-04 00:00:00".into()),
        )
        .with("CUSTOMER POSITION", AcdbValue::Text("Household".into()))
        .with("GENDER", AcdbValue::Text("F".into()))
        .with("DISTRICT", AcdbValue::Text("Maseru".into()))
        .with("CONCESSION", AcdbValue::Text("Makebe mini-grid".into()))
        .with("ID NUMBER", AcdbValue::Text(format!("0{id:09}")))
        .with(
            "EMAIL",
            AcdbValue::Text(format!("customer{id}@example.org")),
        )
        .with(
            "NEXT OF KIN",
            AcdbValue::Text("Thabo Mokoena, +266 6200 4321".into()),
        )
        .with(
            "NOTES",
            AcdbValue::Text(
                "Connected in the second phase; meter moved once after the kitchen was rebuilt."
                    .into(),
            ),
        )
}

pub fn customer_created(id: i64) -> NewEvent {
    let aggregate_id = id.to_string();
    let change = RowChange::Created {
        row: customer_row(id),
    };
    NewEvent {
        event_id: capture_event_id("Customer", &aggregate_id, 1),
        aggregate_type: "Customer".into(),
        event_type: change.event_type("Customer"),
        event_version: ROW_CHANGE_VERSION.into(),
        payload: change.to_payload(),
        metadata: Envelope::now(Actor::system(), Uuid::new_v4()).to_metadata(),
        aggregate_id,
        sequence: 1,
    }
}

/// `customer_created` for every id of `ids`.
pub fn customers(ids: std::ops::Range<i64>) -> Vec<NewEvent> {
    ids.map(customer_created).collect()
}
