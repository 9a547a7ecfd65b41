//! The event store over PostgreSQL: the global log (see migrations/…_event_store.sql).
//!
//! Every append takes the lock on the single `event_log_head` row, so appends (including
//! postgres-es writes through the `events` view) are serialised: positions are gap-free and
//! commit order is position order. A follower that has read up to position n therefore never
//! later finds an event committed below n, and can simply ask for "everything after n".
//!
//! Each event is chained to the previous one by `link_hash` (`domain::chain`); see
//! [`EventStore::verify_chain`].

pub(crate) mod copy;
mod verify;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use domain::chain::{link_hash, LinkedContent};
use domain::event::{EventPayload, NewEvent, StoredEvent};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::{Error, Result};
use copy::BinaryCopy;

pub use verify::{BrokenLink, ChainReport, ChainStatus};

/// The channel on which every append notifies its last position (as text).
pub const NOTIFY_CHANNEL: &str = "ccare_event_log";

/// COPY data is sent to the server in chunks of about this many bytes, so a batch of tens of
/// thousands of events never sits in memory twice.
const COPY_CHUNK_BYTES: usize = 1 << 20;

const COPY_STATEMENT: &str =
    "copy event_log (position, event_id, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata, recorded_at, link_hash) from stdin with (format binary)";

/// Columns per row of [`COPY_STATEMENT`].
const COPY_FIELDS: i16 = 11;

/// PostgreSQL's limit for one value; a longer payload could never be stored.
const MAX_VALUE_BYTES: usize = (1 << 30) - 1;

/// The global log in PostgreSQL.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
}

/// The last event of the log: its position (0 when the log is empty) and link hash
/// (32 zero bytes when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    pub position: i64,
    pub link_hash: [u8; 32],
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Events written.
    pub appended: u64,
    /// Events skipped because their `event_id` was already stored (or repeated in the batch).
    pub duplicates: u64,
    /// The head after the append.
    pub head: LogHead,
}

/// What an append does with an event whose `event_id` is already stored, or repeated in the
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Skip it and count it as a duplicate: the idempotent append. Costs one lookup of the
    /// batch's ids in the log's `event_id` index.
    Skip,
    /// Fail the whole append with [`Error::Conflict`] (the log's unique index on `event_id`
    /// refuses it). For callers whose events are new by construction, such as the initial
    /// import: no lookup is made, and an id stored anyway is a bug to stop on, not to hide.
    Fail,
}

/// The identity and type of an event (what [`EncodedEvent::with_json`] needs besides the
/// payload and metadata).
#[derive(Debug, Clone, Copy)]
pub struct EventHead<'a> {
    pub event_id: Uuid,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    /// Position within the aggregate, from 1.
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
}

/// An event with its payload and metadata serialised to the JSON text the log stores (and the
/// hash chain covers), checked against what PostgreSQL would refuse.
///
/// Encoding is the costly part of an append that does not depend on the log's head, so callers
/// with large batches encode before taking the head lock (on another thread, even) and the
/// append under the lock only numbers, chains and copies. One allocation per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    event_id: Uuid,
    sequence: i64,
    /// Aggregate type, aggregate id, event type, event version, payload and metadata, back to back.
    text: String,
    /// Where each of the six parts of `text` ends.
    ends: [usize; 6],
}

impl EncodedEvent {
    /// Encodes `event` (its payload and metadata serialised once).
    pub fn new(event: &NewEvent) -> Result<Self> {
        Self::with_json(
            EventHead {
                event_id: event.event_id,
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                sequence: event.sequence,
                event_type: &event.event_type,
                event_version: &event.event_version,
            },
            &event.payload,
            &event.metadata,
        )
    }

    /// Encodes an event whose payload and metadata are given as anything that serialises to
    /// JSON: the payload as the JSON `serde_json` writes for it, the metadata too (for the
    /// envelope, a map of strings). Lets a caller skip building a `serde_json::Value`; the
    /// stored text is the one [`EncodedEvent::new`] would store for the equivalent value.
    pub fn with_json<P, M>(head: EventHead<'_>, payload: &P, metadata: &M) -> Result<Self>
    where
        P: Serialize + ?Sized,
        M: Serialize + ?Sized,
    {
        if head.sequence < 1 {
            return Err(Error::Store(format!(
                "event {} has sequence {}; sequences start at 1",
                head.event_id, head.sequence
            )));
        }
        let texts = [
            ("aggregate_type", head.aggregate_type),
            ("aggregate_id", head.aggregate_id),
            ("event_type", head.event_type),
            ("event_version", head.event_version),
        ];
        let mut bytes =
            Vec::with_capacity(texts.iter().map(|(_, t)| t.len()).sum::<usize>() + 1024);
        let mut ends = [0; 6];
        for (i, (field, value)) in texts.into_iter().enumerate() {
            if value.contains('\0') {
                return Err(Error::Store(format!(
                    "event {} has a NUL character in {field}, which PostgreSQL text cannot hold",
                    head.event_id
                )));
            }
            bytes.extend_from_slice(value.as_bytes());
            ends[i] = bytes.len();
        }
        // serde_json escapes every control character, so its output never holds a raw NUL.
        serde_json::to_writer(&mut bytes, payload).map_err(|e| {
            Error::Store(format!(
                "the payload of event {} is not JSON: {e}",
                head.event_id
            ))
        })?;
        ends[4] = bytes.len();
        serde_json::to_writer(&mut bytes, metadata).map_err(|e| {
            Error::Store(format!(
                "the metadata of event {} is not JSON: {e}",
                head.event_id
            ))
        })?;
        ends[5] = bytes.len();
        if ends[5] - ends[3] > MAX_VALUE_BYTES {
            return Err(Error::Store(format!(
                "event {} is larger than the 1 GB PostgreSQL stores in one value",
                head.event_id
            )));
        }
        let text = String::from_utf8(bytes).expect("UTF-8 strings and serde_json output are UTF-8");
        Ok(EncodedEvent {
            event_id: head.event_id,
            sequence: head.sequence,
            text,
            ends,
        })
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    pub fn aggregate_type(&self) -> &str {
        self.part(0)
    }

    pub fn aggregate_id(&self) -> &str {
        self.part(1)
    }

    pub fn sequence(&self) -> i64 {
        self.sequence
    }

    pub fn event_type(&self) -> &str {
        self.part(2)
    }

    pub fn event_version(&self) -> &str {
        self.part(3)
    }

    /// The payload's JSON text, as it will be stored.
    pub fn payload_json(&self) -> &str {
        self.part(4)
    }

    /// The metadata's JSON text, as it will be stored.
    pub fn metadata_json(&self) -> &str {
        self.part(5)
    }
}

impl EventStore {
    /// The store over the database of `pool` (migrated: see [`crate::postgres::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        EventStore { pool }
    }

    /// The pool, for callers that open their own transaction for [`EventStore::append_in`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends `events` in a transaction of its own. See [`EventStore::append_in`].
    pub async fn append(&self, events: &[NewEvent]) -> Result<AppendOutcome> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        let outcome = Self::append_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Appends `events`, in order, in the caller's transaction (so the caller can commit its
    /// own state, such as a capture checkpoint, atomically with the events).
    ///
    /// Idempotent by `event_id`: an event whose id is already stored, or that repeats an id
    /// earlier in `events`, is skipped and counted as a duplicate. The transaction holds the
    /// log's head lock from here until it ends, blocking every other append: keep it short.
    ///
    /// `conn` must be inside a transaction (begun by the caller); otherwise nothing is written
    /// and an [`Error::Store`] says so.
    ///
    /// An event colliding with a stored one on (aggregate type, aggregate id, sequence) fails
    /// the whole append with [`Error::Conflict`]; the transaction is then aborted and must be
    /// rolled back.
    pub async fn append_in(conn: &mut PgConnection, events: &[NewEvent]) -> Result<AppendOutcome> {
        // Encoded before the head lock is taken: the lock is held only for numbering and copying.
        let encoded = events
            .iter()
            .map(EncodedEvent::new)
            .collect::<Result<Vec<_>>>()?;
        Self::append_encoded_in(conn, &encoded, OnDuplicate::Skip).await
    }

    /// Appends already encoded `events`, in order, in the caller's transaction, with
    /// `on_duplicate` deciding what an id already stored (or repeated in `events`) does.
    /// [`OnDuplicate::Skip`] is exactly [`EventStore::append_in`]; [`OnDuplicate::Fail`] saves
    /// the lookup and reports every appended event as new. Otherwise as
    /// [`EventStore::append_in`]: a transaction is required, the head lock is held until it
    /// ends, and a conflict aborts it.
    pub async fn append_encoded_in(
        conn: &mut PgConnection,
        events: &[EncodedEvent],
        on_duplicate: OnDuplicate,
    ) -> Result<AppendOutcome> {
        if events.is_empty() {
            return Ok(AppendOutcome {
                appended: 0,
                duplicates: 0,
                head: read_head(conn).await?,
            });
        }

        // One timestamp for the batch, from the server's clock like the trigger path's, taken
        // under the lock so recorded_at never decreases along the log. Microseconds: what
        // timestamptz stores, hence what the chain covers.
        let row = sqlx::query(
            "select position, link_hash, date_trunc('microseconds', clock_timestamp()), \
                    pg_current_xact_id()::text \
             from event_log_head for update",
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(missing_head)?;
        let mut head = LogHead {
            position: row.try_get(0)?,
            link_hash: link_array(row.try_get(1)?, "event_log_head")?,
        };
        let recorded_at: DateTime<Utc> = row.try_get(2)?;
        let locking_transaction: String = row.try_get(3)?;

        let fresh: Vec<&EncodedEvent> = match on_duplicate {
            OnDuplicate::Skip => Self::unstored(conn, events, &locking_transaction).await?,
            OnDuplicate::Fail => {
                let (transaction,): (Option<String>,) =
                    sqlx::query_as("select pg_current_xact_id_if_assigned()::text")
                        .fetch_one(&mut *conn)
                        .await?;
                check_transaction(transaction.as_deref(), &locking_transaction)?;
                events.iter().collect()
            }
        };
        let duplicates = (events.len() - fresh.len()) as u64;
        if fresh.is_empty() {
            return Ok(AppendOutcome {
                appended: 0,
                duplicates,
                head,
            });
        }

        let recorded_at_micros = recorded_at.timestamp_micros();
        let mut copy = conn.copy_in_raw(COPY_STATEMENT).await?;
        let mut rows = BinaryCopy::with_capacity(COPY_CHUNK_BYTES + COPY_CHUNK_BYTES / 4);
        for event in &fresh {
            let position = head.position + 1;
            let link = link_hash(
                &head.link_hash,
                &LinkedContent {
                    position,
                    event_id: event.event_id,
                    aggregate_type: event.aggregate_type(),
                    aggregate_id: event.aggregate_id(),
                    sequence: event.sequence,
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: event.payload_json(),
                    metadata: event.metadata_json(),
                    recorded_at_micros,
                },
            );
            rows.row(COPY_FIELDS);
            rows.int8(position);
            rows.uuid(event.event_id);
            rows.text(event.aggregate_type());
            rows.text(event.aggregate_id());
            rows.int8(event.sequence);
            rows.text(event.event_type());
            rows.text(event.event_version());
            rows.text(event.payload_json());
            rows.text(event.metadata_json());
            rows.timestamptz(recorded_at_micros);
            rows.bytea(&link);
            head = LogHead {
                position,
                link_hash: link,
            };
            if rows.len() >= COPY_CHUNK_BYTES {
                copy.send(rows.take()).await.map_err(append_error)?;
            }
        }
        rows.end();
        copy.send(rows.take()).await.map_err(append_error)?;
        copy.finish().await.map_err(append_error)?;

        sqlx::query(
            "with moved as (update event_log_head set position = $1, link_hash = $2 returning position) \
             select pg_notify($3, position::text) from moved",
        )
        .bind(head.position)
        .bind(&head.link_hash[..])
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;

        Ok(AppendOutcome {
            appended: fresh.len() as u64,
            duplicates,
            head,
        })
    }

    /// The events of `events` whose id is not stored yet, first occurrence of each id only.
    /// Race-free because the head lock, which every append takes, is held: checked by asking
    /// for the transaction id again. Outside a transaction block the lock query ran in a
    /// transaction of its own, already over (and the lock with it), so positions could interleave.
    async fn unstored<'e>(
        conn: &mut PgConnection,
        events: &'e [EncodedEvent],
        locking_transaction: &str,
    ) -> Result<Vec<&'e EncodedEvent>> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let (transaction, stored): (Option<String>, Vec<Uuid>) = sqlx::query_as(
            "select pg_current_xact_id_if_assigned()::text, \
                    array(select event_id from event_log where event_id = any($1))",
        )
        .bind(&ids)
        .fetch_one(&mut *conn)
        .await?;
        check_transaction(transaction.as_deref(), locking_transaction)?;
        let stored: HashSet<Uuid> = stored.into_iter().collect();
        let mut seen = HashSet::with_capacity(events.len());
        Ok(events
            .iter()
            .filter(|e| !stored.contains(&e.event_id) && seen.insert(e.event_id))
            .collect())
    }

    /// The current head (committed appends only).
    pub async fn head(&self) -> Result<LogHead> {
        let mut conn = self.pool.acquire().await?;
        read_head(&mut conn).await
    }

    /// Up to `limit` events with a position above `after_position`, in position order.
    /// Because positions are assigned in commit order, reading on from the last position seen
    /// never skips an event.
    pub async fn read_after(&self, after_position: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "select position, event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload::text, metadata::text, recorded_at \
             from event_log where position > $1 order by position limit $2",
        )
        .bind(after_position)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_event).collect()
    }
}

async fn read_head(conn: &mut PgConnection) -> Result<LogHead> {
    let row = sqlx::query("select position, link_hash from event_log_head")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(missing_head)?;
    Ok(LogHead {
        position: row.try_get(0)?,
        link_hash: link_array(row.try_get(1)?, "event_log_head")?,
    })
}

fn missing_head() -> Error {
    Error::Store(
        "event_log_head has no row: the event-store migration has not run on this database".into(),
    )
}

fn link_array(bytes: Vec<u8>, table: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|b: Vec<u8>| {
        Error::Store(format!(
            "{table} holds a {}-byte link hash, not 32",
            b.len()
        ))
    })
}

/// Fails unless the statement that took the head lock and the one just run belong to the
/// same transaction (`transaction` is the latter's id, if it has one).
fn check_transaction(transaction: Option<&str>, locking_transaction: &str) -> Result<()> {
    if transaction != Some(locking_transaction) {
        return Err(Error::Store(
            "append_in needs a transaction (begin one and pass it): outside one the head \
             lock would not be held until the events are stored"
                .into(),
        ));
    }
    Ok(())
}

/// Maps a failed COPY: a uniqueness violation means another event already took the
/// (aggregate, sequence) slot.
fn append_error(error: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &error {
        if db.code().as_deref() == Some("23505") {
            let constraint = db.constraint().unwrap_or("unique").to_string();
            let message = if constraint.contains("sequence") {
                "an event for the same aggregate and sequence is already stored (or repeated in the batch): \
                 the aggregate changed concurrently"
                    .to_string()
            } else if constraint.contains("event_id") {
                "an event with the same event_id is already stored (or repeated in the batch)"
                    .to_string()
            } else {
                format!("the append violates {constraint} on event_log")
            };
            return Error::Conflict {
                sqlstate: "23505".into(),
                message,
            };
        }
    }
    Error::Database(error)
}

fn stored_event(row: &PgRow) -> Result<StoredEvent> {
    let position: i64 = row.try_get(0)?;
    let payload_text: String = row.try_get(7)?;
    let metadata_text: String = row.try_get(8)?;
    let payload = EventPayload::from_json(payload_text).map_err(|e| {
        Error::Store(format!(
            "the payload at position {position} is not readable JSON: {e}"
        ))
    })?;
    let metadata: BTreeMap<String, String> = serde_json::from_str(&metadata_text).map_err(|e| {
        Error::Store(format!(
            "the metadata at position {position} is not a JSON object of strings: {e}"
        ))
    })?;
    Ok(StoredEvent {
        position,
        event_id: row.try_get(1)?,
        aggregate_type: row.try_get(2)?,
        aggregate_id: row.try_get(3)?,
        sequence: row.try_get(4)?,
        event_type: row.try_get(5)?,
        event_version: row.try_get(6)?,
        payload,
        metadata,
        recorded_at: row.try_get(9)?,
    })
}
