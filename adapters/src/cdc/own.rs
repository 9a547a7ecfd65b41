//! Recording a change ccare's audited writer made, in the capture's own terms: the same event a
//! poll would emit for the row, with the writer's actor and command, and the row state moved so
//! the next poll finds nothing new.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use domain::acdb::AcdbRow;
use domain::catalog::TableSpec;
use domain::record::{decide_capture, decide_deletion, RecordState, RowChange};

use super::events::EventFactory;
use super::{state, OwnWrite, Phase, TablePhase};
use crate::store::EventStore;
use crate::{Error, Result};

/// Locks the capture's state of `spec.table` for the rest of `tx` (the lock a poll of the table
/// holds) and says whether the table is imported, i.e. whether writes may go through.
pub(crate) async fn lock_table(tx: &mut PgConnection, spec: &TableSpec) -> Result<bool> {
    let row: Option<String> =
        sqlx::query_scalar("select phase from cdc_table_state where table_name = $1 for update")
            .bind(spec.table)
            .fetch_optional(&mut *tx)
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

/// Records that row `key` of `spec` is now `row` (`None`: deleted), as read at `read_at`, in
/// `tx`, which must hold [`lock_table`]. `own` attributes the change to a write command; without
/// it the change is an external edit (one made in Access between the last poll and the write).
/// Emits nothing when the log already holds this content. Returns the position of the event
/// appended, if one was.
pub(crate) async fn record_change(
    tx: &mut PgConnection,
    spec: &'static TableSpec,
    key: &str,
    row: Option<&AcdbRow>,
    read_at: DateTime<Utc>,
    own: Option<&OwnWrite>,
    correlation_id: Uuid,
) -> Result<Option<i64>> {
    let record = captured_row(&mut *tx, spec, key).await?;
    let change = match row {
        Some(row) => decide_capture(&record, row.clone()),
        None => decide_deletion(&record),
    };
    let Some(change) = change else {
        return Ok(None);
    };
    let sequence = record.sequence + 1;
    let hash = match (&change, row) {
        (_, Some(row)) => row.content_hash(),
        (RowChange::Deleted { before }, None) => before.content_hash(),
        _ => unreachable!("a change without a row is a deletion"),
    };
    let factory = EventFactory {
        spec,
        phase: if own.is_some() {
            Phase::Write
        } else {
            Phase::Poll
        },
        correlation_id,
    };
    let event = factory.event(key, sequence, &change, hash, read_at, own);
    let appended = EventStore::append_in(&mut *tx, std::slice::from_ref(&event)).await?;
    let now_live = row.is_some();
    let live_delta = i64::from(now_live) - i64::from(record.exists());
    state::upsert_rows(
        &mut *tx,
        spec.table,
        &[(key.to_string(), hash, sequence, now_live)],
    )
    .await?;
    sqlx::query(
        "update cdc_table_state set live_rows = live_rows + $2, total_events = total_events + $3, updated_at = now()
         where table_name = $1",
    )
    .bind(spec.table)
    .bind(live_delta)
    .bind(appended.appended as i64)
    .execute(&mut *tx)
    .await?;
    let position: Option<i64> =
        sqlx::query_scalar("select position from event_log where event_id = $1")
            .bind(event.event_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(position)
}
