//! Recording a change ccare's audited writer made, in the capture's own terms: the same event a
//! poll would emit for the row, with the writer's actor and command, and the row state moved so
//! the next poll finds nothing new.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use domain::acdb::AcdbRow;
use domain::catalog::TableSpec;
use domain::event::NewEvent;
use domain::record::{decide_capture, decide_deletion, RecordState, RowChange};

use super::events::EventFactory;
use super::{state, OwnWrite, Phase, TablePhase};
use crate::store::EventStore;
use crate::{Error, Result};

/// Locks the capture's state of `spec.table` for the rest of `tx` (the lock a poll of the table
/// holds) and says whether the table is imported, i.e. whether writes may go through.
pub(crate) async fn lock_table(tx: &mut PgConnection, spec: &TableSpec) -> Result<bool> {
    table_imported(tx, spec, " for update").await
}

/// Whether `spec.table` is imported, without locking anything.
pub(crate) async fn is_imported(conn: &mut PgConnection, spec: &TableSpec) -> Result<bool> {
    table_imported(conn, spec, "").await
}

async fn table_imported(conn: &mut PgConnection, spec: &TableSpec, lock: &str) -> Result<bool> {
    let row: Option<String> = sqlx::query_scalar(&format!(
        "select phase from cdc_table_state where table_name = $1{lock}"
    ))
    .bind(spec.table)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        None => false,
        Some(phase) => TablePhase::parse(&phase)? != TablePhase::Snapshot,
    })
}

/// The row `key` of `spec` as the event log last recorded it (`None`: never captured, or deleted).
pub(crate) async fn captured_row(
    tx: &mut PgConnection,
    spec: &TableSpec,
    key: &str,
) -> Result<RecordState> {
    let latest = state::latest_events(&mut *tx, spec.aggregate_type, &[key.to_string()]).await?;
    Ok(match latest.get(key) {
        None => RecordState::default(),
        Some((sequence, payload)) => {
            let change: RowChange = serde_json::from_str(payload).map_err(|e| {
                Error::Cdc(format!(
                    "{}/{key}: the latest event does not parse: {e}",
                    spec.aggregate_type
                ))
            })?;
            RecordState {
                sequence: *sequence,
                row: change.current_row().cloned(),
            }
        }
    })
}

/// A row change to record: row `key` of `spec` is now `row` (`None`: deleted), as read at
/// `read_at`; `own` attributes it to a write command, without it it is an external edit (one
/// made in Access between the last poll and the write).
pub(crate) struct Change<'a> {
    pub spec: &'static TableSpec,
    pub key: &'a str,
    pub row: Option<&'a AcdbRow>,
    pub read_at: DateTime<Utc>,
    pub own: Option<&'a OwnWrite>,
    pub correlation_id: Uuid,
}

/// Records `change` in `tx`, which must hold [`lock_table`], given what the log holds of the row
/// (`record`, read in `tx`), appending `also` in the same append (the writer's outcome event).
/// Emits no row event when the log already holds this content. Returns the position of the row's
/// event (if one was needed) and the row's state afterwards.
pub(crate) async fn record_change(
    tx: &mut PgConnection,
    record: &RecordState,
    change: &Change<'_>,
    also: &[NewEvent],
) -> Result<(Option<i64>, RecordState)> {
    let decided = match change.row {
        Some(row) => decide_capture(record, row.clone()),
        None => decide_deletion(record),
    };
    let Some(decided) = decided else {
        if !also.is_empty() {
            EventStore::append_in(&mut *tx, also).await?;
        }
        return Ok((None, record.clone()));
    };
    let spec = change.spec;
    let sequence = record.sequence + 1;
    let hash = match (&decided, change.row) {
        (_, Some(row)) => row.content_hash(),
        (RowChange::Deleted { before }, None) => before.content_hash(),
        _ => unreachable!("a change without a row is a deletion"),
    };
    let factory = EventFactory {
        spec,
        phase: if change.own.is_some() {
            Phase::Write
        } else {
            Phase::Poll
        },
        correlation_id: change.correlation_id,
    };
    let event = factory.event(
        change.key,
        sequence,
        &decided,
        hash,
        change.read_at,
        change.own,
    );
    let mut events = Vec::with_capacity(1 + also.len());
    events.push(event);
    events.extend_from_slice(also);
    let appended = EventStore::append_in(&mut *tx, &events).await?;
    let now_live = change.row.is_some();
    let live_delta = i64::from(now_live) - i64::from(record.exists());
    state::upsert_rows(
        &mut *tx,
        spec.table,
        &[(change.key.to_string(), hash, sequence, now_live)],
    )
    .await?;
    sqlx::query(
        "update cdc_table_state set live_rows = live_rows + $2, total_events = total_events + 1, updated_at = now()
         where table_name = $1",
    )
    .bind(spec.table)
    .bind(live_delta)
    .execute(&mut *tx)
    .await?;
    // Appended together at the end of the log: the row's event comes just before `also`.
    let position = if appended.appended == events.len() as u64 {
        Some(appended.head.position - also.len() as i64)
    } else {
        sqlx::query_scalar("select position from event_log where event_id = $1")
            .bind(events[0].event_id)
            .fetch_optional(&mut *tx)
            .await?
    };
    let after = RecordState {
        sequence,
        row: change.row.cloned(),
    };
    Ok((position, after))
}
