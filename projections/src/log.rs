//! Reading the global log (`event_log`) in bounded batches.
//!
//! Positions are gap-free and committed in order (see migrations/…_event_store.sql), so once the
//! head is known to be h, every event at or below h is visible to any later statement: a reader
//! can move its checkpoint to h after reading everything up to h, even when none of those events
//! were for it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::event::StoredEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{Error, Result};

/// How much one batch may read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    /// The most events handed to a projection at once.
    pub(crate) events: i64,
    /// The widest range of positions one batch scans. Bounds the work of one transaction when a
    /// projection filters by aggregate type and most of the log is of other types.
    pub(crate) positions: i64,
}

/// One batch read after a checkpoint.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The events for the projection, in position order.
    pub(crate) events: Vec<StoredEvent>,
    /// The checkpoint after this batch: every event at or below it has been read.
    pub(crate) checkpoint: i64,
    /// The log head seen when the batch was read.
    pub(crate) head: i64,
}

impl Batch {
    /// Whether the batch reached the head seen when it was read.
    pub(crate) fn caught_up(&self) -> bool {
        self.checkpoint >= self.head
    }
}

/// The position of the last committed event (0 for an empty log).
pub(crate) async fn head(conn: &mut PgConnection) -> Result<i64> {
    let head: i64 = sqlx::query_scalar("select coalesce(max(position), 0)::bigint from event_log")
        .fetch_one(conn)
        .await?;
    Ok(head)
}

/// An `event_log` row as [`SELECT_EVENTS`] reads it.
#[derive(sqlx::FromRow)]
struct EventRow {
    position: i64,
    event_id: Uuid,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
    recorded_at: DateTime<Utc>,
}

const SELECT_EVENTS: &str =
    "select position, event_id, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata, recorded_at from event_log";

/// The next batch after `checkpoint`: events of `aggregate_types` (all when `None`).
pub(crate) async fn read_batch(
    conn: &mut PgConnection,
    checkpoint: i64,
    aggregate_types: Option<&[&str]>,
    limits: BatchLimits,
) -> Result<Batch> {
    read_batch_until(conn, checkpoint, aggregate_types, limits, i64::MAX).await
}

/// Like [`read_batch`], reading nothing past position `ceiling` (a replay of the log as it
/// stood at some moment).
pub(crate) async fn read_batch_until(
    conn: &mut PgConnection,
    checkpoint: i64,
    aggregate_types: Option<&[&str]>,
    limits: BatchLimits,
    ceiling: i64,
) -> Result<Batch> {
    // The head is read before the events, by its own statement: under READ COMMITTED the next
    // statement's snapshot is newer, so it sees every event up to this head.
    let head = head(&mut *conn).await?.min(ceiling);
    if checkpoint >= head {
        return Ok(Batch {
            events: Vec::new(),
            checkpoint,
            head,
        });
    }
    let upper = head.min(checkpoint.saturating_add(limits.positions));
    let rows: Vec<EventRow> = match aggregate_types {
        None => {
            sqlx::query_as(&format!(
                "{SELECT_EVENTS} where position > $1 and position <= $2 order by position limit $3"
            ))
            .bind(checkpoint)
            .bind(upper)
            .bind(limits.events)
            .fetch_all(&mut *conn)
            .await?
        }
        Some(types) => {
            sqlx::query_as(&format!(
            "{SELECT_EVENTS} where position > $1 and position <= $2 and aggregate_type = any($3) \
                 order by position limit $4"
        ))
            .bind(checkpoint)
            .bind(upper)
            .bind(types)
            .bind(limits.events)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    // A full batch may have stopped short of `upper`; a short one read everything up to it.
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limits.events;
    let new_checkpoint = match rows.last() {
        Some(last) if full => last.position,
        _ => upper,
    };
    let events = rows
        .into_iter()
        .map(stored_event)
        .collect::<Result<Vec<_>>>()?;
    Ok(Batch {
        events,
        checkpoint: new_checkpoint,
        head,
    })
}

fn stored_event(row: EventRow) -> Result<StoredEvent> {
    let metadata = metadata_map(row.metadata).map_err(|reason| Error::UnreadableEvent {
        position: row.position,
        event_type: row.event_type.clone(),
        reason,
    })?;
    Ok(StoredEvent {
        position: row.position,
        event_id: row.event_id,
        aggregate_type: row.aggregate_type,
        aggregate_id: row.aggregate_id,
        sequence: row.sequence,
        event_type: row.event_type,
        event_version: row.event_version,
        payload: row.payload,
        metadata,
        recorded_at: row.recorded_at,
    })
}

/// The envelope is stored as a flat map of strings; a non-string value (which ccare never
/// writes) is kept as its JSON text rather than dropped.
fn metadata_map(metadata: serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    match metadata {
        serde_json::Value::Object(map) => Ok(map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()),
        serde_json::Value::Null => Ok(BTreeMap::new()),
        _ => Err("its metadata is not a JSON object".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_strings_and_the_text_of_other_values() {
        let map = metadata_map(serde_json::json!({"channel": "system", "n": 3})).unwrap();
        assert_eq!(map["channel"], "system");
        assert_eq!(map["n"], "3");
        assert!(metadata_map(serde_json::json!([1])).is_err());
    }

    #[test]
    fn a_batch_is_caught_up_when_its_checkpoint_reaches_the_head() {
        let batch = Batch {
            events: Vec::new(),
            checkpoint: 10,
            head: 10,
        };
        assert!(batch.caught_up());
        let batch = Batch {
            events: Vec::new(),
            checkpoint: 9,
            head: 10,
        };
        assert!(!batch.caught_up());
    }
}
