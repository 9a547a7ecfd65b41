//! Reading the global log (`event_log`) in bounded batches.
//!
//! Positions are gap-free and committed in order (see migrations/…_event_store.sql), so once the
//! head is known to be h, every event at or below h is visible to any later statement: a reader
//! can move its checkpoint to h after reading everything up to h, even when none of those events
//! were for it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::event::{EventPayload, StoredEvent};
use serde_json::value::RawValue;
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

/// Below this many events to read, the plan of a batch hardly matters.
const STALE_STATISTICS_MIN_EVENTS: i64 = 10_000;

/// Analyzes `event_log` when the planner believes it much smaller than it is (`head` events).
///
/// Right after a large import the planner still sees the near-empty log of its last statistics
/// and reads a batch by a bitmap scan of the whole remaining range and an on-disk sort, which made
/// every batch cost as much as the rest of the log: 0.7 s instead of 13 ms per 20,000 events.
/// Autovacuum fixes the statistics only a minute or more later. Re-analyzing when the log has
/// more than doubled keeps this to a few cheap runs over any history.
async fn refresh_statistics(conn: &mut PgConnection, head: i64) -> Result<()> {
    let believed: f32 =
        sqlx::query_scalar("select reltuples from pg_class where oid = 'event_log'::regclass")
            .fetch_one(&mut *conn)
            .await?;
    if f64::from(believed) * 2.0 < head as f64 {
        tracing::info!(
            events = head,
            planner_estimate = f64::from(believed.max(0.0)),
            "refreshing the planner's statistics of the event log"
        );
        // Only the table's owner may analyze it; for another role this is a warning, not an error.
        sqlx::query("analyze event_log").execute(&mut *conn).await?;
    }
    Ok(())
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
    payload: String,
    metadata: String,
    recorded_at: DateTime<Utc>,
}

const SELECT_EVENTS: &str =
    "select position, event_id, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload::text as payload, metadata::text as metadata, recorded_at from event_log";

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
    if head - checkpoint >= STALE_STATISTICS_MIN_EVENTS {
        refresh_statistics(&mut *conn, head).await?;
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
    let unreadable = |reason: String| Error::UnreadableEvent {
        position: row.position,
        event_type: row.event_type.clone(),
        reason,
    };
    let metadata = metadata_map(&row.metadata).map_err(unreadable)?;
    let payload = EventPayload::from_json(row.payload)
        .map_err(|_| unreadable("its payload is not JSON".to_string()))?;
    Ok(StoredEvent {
        position: row.position,
        event_id: row.event_id,
        aggregate_type: row.aggregate_type,
        aggregate_id: row.aggregate_id,
        sequence: row.sequence,
        event_type: row.event_type,
        event_version: row.event_version,
        payload,
        metadata,
        recorded_at: row.recorded_at,
    })
}

/// The envelope is stored as a flat map of strings; a non-string value (which ccare never
/// writes) is kept as its JSON text rather than dropped.
fn metadata_map(metadata: &str) -> Result<BTreeMap<String, String>, String> {
    let not_an_object = || "its metadata is not a JSON object".to_string();
    let map: Option<BTreeMap<String, Box<RawValue>>> =
        serde_json::from_str(metadata).map_err(|_| not_an_object())?;
    map.unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let text = value.get();
            if text.starts_with('"') {
                serde_json::from_str(text)
                    .map(|s| (key, s))
                    .map_err(|_| not_an_object())
            } else {
                Ok((key, text.to_string()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_strings_and_the_text_of_other_values() {
        let map = metadata_map(r#"{"channel": "system", "quoted": "a \"b\"", "n": 3}"#).unwrap();
        assert_eq!(map["channel"], "system");
        assert_eq!(map["quoted"], r#"a "b""#);
        assert_eq!(map["n"], "3");
        assert!(metadata_map("null").unwrap().is_empty());
        assert!(metadata_map("[1]").is_err());
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
