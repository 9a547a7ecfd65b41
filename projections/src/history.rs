//! The history of one ACDB record, read from the global log itself (its events, in sequence
//! order, through the aggregate's unique index): what an auditor asks when a record is in
//! doubt, and the record as it stood at any instant.

use chrono::{DateTime, Utc};
use domain::acdb::AcdbRow;
use domain::event::{EventPayload, StoredEvent};
use domain::record::RowChange;
use sqlx::PgPool;

use crate::error::{Error, Result};

/// One change of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChange {
    pub event: StoredEvent,
    pub change: RowChange,
}

/// Every change of the record `aggregate_type`/`aggregate_id` recorded at or before `until`
/// (all of them when `None`), oldest first.
pub async fn record_changes(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<RecordChange>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        position: i64,
        event_id: uuid::Uuid,
        sequence: i64,
        event_type: String,
        event_version: String,
        payload: String,
        metadata: sqlx::types::Json<std::collections::BTreeMap<String, String>>,
        recorded_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select position, event_id, sequence, event_type, event_version, payload::text as payload, metadata, recorded_at
         from event_log
         where aggregate_type = $1 and aggregate_id = $2 and ($3::timestamptz is null or recorded_at <= $3)
         order by sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(until)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let unreadable = || Error::UnreadableEvent {
                position: r.position,
                event_type: r.event_type.clone(),
                reason: "its payload is not a row change".into(),
            };
            let payload = EventPayload::from_json(r.payload).map_err(|_| unreadable())?;
            let change = payload.decode::<RowChange>().map_err(|_| unreadable())?;
            Ok(RecordChange {
                event: StoredEvent {
                    position: r.position,
                    event_id: r.event_id,
                    aggregate_type: aggregate_type.to_string(),
                    aggregate_id: aggregate_id.to_string(),
                    sequence: r.sequence,
                    event_type: r.event_type,
                    event_version: r.event_version,
                    payload,
                    metadata: r.metadata.0,
                    recorded_at: r.recorded_at,
                },
                change,
            })
        })
        .collect()
}

/// The record as the last of `changes` left it (`None`: never captured, or deleted).
pub fn state_after(changes: &[RecordChange]) -> Option<&AcdbRow> {
    changes.last().and_then(|c| c.change.current_row())
}
