//! The staged diff behind polling and reconciliation repairs: scan, compare each row's hash
//! with the captured one, stage the differences in temporary tables, check them against the
//! safety stop, then emit them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use domain::acdb::{AcdbRow, RowHash};
use domain::catalog::{KeyPart, TableKind, TableSpec};
use domain::record::{decide_capture, decide_deletion, RecordState, RowChange};

use super::events::EventFactory;
use super::reconcile::Buckets;
use super::scan::{Chunk, Source};
use super::state::{self, Drift, Reject};
use super::{CycleContext, FoundChange, Phase, TablePhase, TableReport, SAFETY_FLOOR_ROWS};
use crate::acdb::ScanFilter;
use crate::store::EventStore;
use crate::{Error, Result};

/// What a diff pass reads and looks for.
pub(super) struct Plan {
    pub phase: Phase,
    pub filter: ScanFilter,
    /// Reconciliation: only rows whose key falls in these buckets.
    pub buckets: Option<Buckets>,
    /// Captured rows not met by the scan are deletions (the scan covers them all).
    pub detect_deletes: bool,
    /// The scan visits every row of the table: rejected rows it did not meet are forgotten.
    pub full_scan: bool,
}

/// Polls `spec.table` for changes.
pub(super) async fn poll(
    cx: &CycleContext<'_>,
    source: &mut Source,
    spec: &'static TableSpec,
) -> Result<TableReport> {
    let filter = match spec.kind {
        TableKind::Mutable => ScanFilter::All,
        TableKind::AppendOnly { watermark } => {
            let stored = state::load(&cx.cdc.pool, spec.table).await?.watermark;
            match stored {
                Some(value @ (KeyPart::Int(_) | KeyPart::DateTime(_))) => ScanFilter::AtLeast {
                    column: watermark.to_string(),
                    value: state::window_start(&value),
                },
                // No watermark yet (the table was empty): read it all until it has one.
                _ => ScanFilter::All,
            }
        }
    };
    let full_scan = filter == ScanFilter::All;
    let plan = Plan {
        phase: Phase::Poll,
        filter,
        buckets: None,
        detect_deletes: full_scan,
        full_scan,
    };
    run(cx, source, spec, plan).await
}

/// Staged counts of one cycle.
#[derive(Debug, Default, Clone, Copy)]
struct Staged {
    created: u64,
    updated: u64,
    deleted: u64,
}

/// Runs one diff pass over `spec.table` in one transaction.
pub(super) async fn run(
    cx: &CycleContext<'_>,
    source: &mut Source,
    spec: &'static TableSpec,
    plan: Plan,
) -> Result<TableReport> {
    let cdc = cx.cdc;
    let table = spec.table;
    let mut report = TableReport::new(table, plan.phase);
    let started_at = Utc::now();

    let mut tx = crate::postgres::begin(&cdc.pool).await?;
    let locked = state::lock(&mut tx, table).await?;
    if locked.phase == TablePhase::Snapshot {
        return Err(Error::Cdc(format!(
            "{table}: the import has not finished; it cannot be diffed yet"
        )));
    }
    let columns: Vec<String> = source
        .call(move |r| r.columns(table))
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let drift = Drift::between(&locked.known_columns, &columns);
    drift.log(table);
    report.columns_added.clone_from(&drift.added);
    report.columns_removed.clone_from(&drift.removed);

    // Dropped at commit or rollback, so a connection returned to the pool carries nothing over.
    sqlx::query("create temporary table cdc_seen (row_key text primary key) on commit drop")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "create temporary table cdc_stage (
             ord bigserial primary key, row_key text not null, kind text not null,
             row_hash bytea not null, row_json text, detected_at timestamptz not null
         ) on commit drop",
    )
    .execute(&mut *tx)
    .await?;

    cdc.progress.table_started(table, plan.phase, None);
    let mut watermark = locked.watermark.clone();
    let mut scan = source.scan(spec, plan.filter.clone(), cdc.config.chunk_rows);
    while let Some(chunk) = scan.next().await {
        let rows = chunk.rows.len() as u64;
        stage_chunk(&mut tx, spec, &plan, chunk, &mut watermark, &mut report).await?;
        report.rows_seen += rows;
        cdc.progress.rows_done(table, rows);
    }
    scan.finish().await?;
    if plan.detect_deletes {
        stage_deletions(&mut tx, table, plan.buckets.as_ref()).await?;
    }
    let staged = staged_counts(&mut tx).await?;

    let limit = safety_limit(locked.live_rows, cdc.config.safety_share);
    let implausible = staged.deleted > limit || staged.updated > limit;
    let columns_json = Json(columns);
    let note = drift.note();
    if implausible && !locked.confirmed {
        let reason = format!(
            "this {} would delete {} and update {} of {} captured rows, above the limit of {} per cycle; \
             if the ACDB is right, confirm with `ccare cdc confirm {}`",
            plan.phase.as_str(),
            staged.deleted,
            staged.updated,
            locked.live_rows,
            limit,
            table,
        );
        tx.rollback().await?;
        tracing::error!(
            table,
            deleted = staged.deleted,
            updated = staged.updated,
            limit,
            "safety stop: table paused, nothing emitted"
        );
        pause(
            &cdc.pool,
            table,
            &reason,
            &report,
            &columns_json,
            note.as_deref(),
            started_at,
        )
        .await?;
        report.paused = Some(reason);
        return Ok(report);
    }
    if implausible {
        tracing::warn!(
            table,
            deleted = staged.deleted,
            updated = staged.updated,
            "emitting a change above the safety limit: confirmed by an operator"
        );
    } else if locked.phase == TablePhase::Paused {
        tracing::info!(
            table,
            "the change that paused the table is no longer pending: capture resumed"
        );
    }

    let live_delta = emit(cx, &mut tx, spec, plan.phase, &mut report).await?;
    if plan.full_scan {
        state::prune_rejects(&mut tx, table, started_at).await?;
    }
    let now = Utc::now();
    sqlx::query(
        "update cdc_table_state
         set phase = 'polling', paused_reason = null, confirmed = false, watermark = $2, known_columns = $3,
             schema_note = coalesce($4, schema_note), live_rows = live_rows + $5,
             last_rows_seen = $6, last_events = $7, last_rejected = $8, total_events = total_events + $7,
             last_poll_at = $9, last_success_at = $9, last_error = null,
             last_reconciled_at = case when $10 then $9 else last_reconciled_at end, updated_at = now()
         where table_name = $1",
    )
    .bind(table)
    .bind(watermark.as_ref().map(Json))
    .bind(&columns_json)
    .bind(&note)
    .bind(live_delta)
    .bind(report.rows_seen as i64)
    .bind(report.events_emitted as i64)
    .bind(report.rows_rejected as i64)
    .bind(now)
    .bind(plan.phase == Phase::Reconcile)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// The most deletions, and the most updates, one cycle may emit without an operator's approval.
fn safety_limit(live_rows: i64, share: f64) -> u64 {
    let share_of_table = (live_rows.max(0) as f64 * share).floor() as u64;
    share_of_table.max(SAFETY_FLOOR_ROWS)
}

async fn pause(
    pool: &sqlx::PgPool,
    table: &str,
    reason: &str,
    report: &TableReport,
    columns: &Json<Vec<String>>,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update cdc_table_state
         set phase = 'paused', paused_reason = $2, known_columns = $3, schema_note = coalesce($4, schema_note),
             last_rows_seen = $5, last_events = 0, last_rejected = $6, last_poll_at = $7, last_error = null,
             updated_at = now()
         where table_name = $1",
    )
    .bind(table)
    .bind(reason)
    .bind(columns)
    .bind(note)
    .bind(report.rows_seen as i64)
    .bind(report.rows_rejected as i64)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Compares one chunk with the captured state and stages the rows that differ.
async fn stage_chunk(
    tx: &mut PgConnection,
    spec: &'static TableSpec,
    plan: &Plan,
    chunk: Chunk,
    watermark: &mut Option<KeyPart>,
    report: &mut TableReport,
) -> Result<()> {
    let table = spec.table;
    let mut rejects = Vec::new();
    let mut keyed = Vec::with_capacity(chunk.rows.len());
    let mut in_chunk = HashSet::with_capacity(chunk.rows.len());
    for row in chunk.rows {
        match &row.key {
            Err(reason) => rejects.push(Reject::keyless(&row.hash, reason.clone(), row.ordinal)),
            Ok(key) => {
                let id = key.to_string();
                if plan.buckets.as_ref().is_some_and(|b| !b.contains(&id)) {
                    continue;
                }
                *watermark =
                    state::max_watermark(watermark.take(), state::watermark_of(spec, &row.row));
                if in_chunk.insert(id.clone()) {
                    keyed.push((id, row));
                } else {
                    rejects.push(Reject::duplicate(&id, row.ordinal));
                }
            }
        }
    }

    // One round trip: remember the keys (the primary key of cdc_seen finds a key an earlier
    // chunk already had) and read their captured state.
    let keys: Vec<&str> = keyed.iter().map(|(id, _)| id.as_str()).collect();
    let found = sqlx::query(
        "with input as (select k, i from unnest($2::text[]) with ordinality as t(k, i)),
              fresh as (insert into cdc_seen (row_key) select k from input on conflict do nothing returning row_key)
         select input.i, fresh.row_key is not null as fresh, s.row_hash, s.live
         from input
         left join fresh on fresh.row_key = input.k
         left join cdc_row_state s on s.table_name = $1 and s.row_key = input.k",
    )
    .persistent(false)
    .bind(table)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;

    let mut stage_keys = Vec::new();
    let mut stage_kinds = Vec::new();
    let mut stage_hashes = Vec::new();
    let mut stage_rows = Vec::new();
    for found in found {
        let index: i64 = found.try_get("i")?;
        let (id, row) = &keyed[(index - 1) as usize];
        if !found.try_get::<bool, _>("fresh")? {
            rejects.push(Reject::duplicate(id, row.ordinal));
            continue;
        }
        let captured: Option<Vec<u8>> = found.try_get("row_hash")?;
        let live: Option<bool> = found.try_get("live")?;
        let kind = match (captured, live) {
            (Some(hash), Some(true)) if hash == row.hash.0 => continue,
            (Some(_), Some(true)) => "U",
            _ => "C",
        };
        let json = serde_json::to_string(&row.row)
            .map_err(|e| Error::Cdc(format!("{table}: a row does not serialise: {e}")))?;
        stage_keys.push(id.as_str());
        stage_kinds.push(kind);
        stage_hashes.push(&row.hash.0[..]);
        stage_rows.push(json);
    }
    if !stage_keys.is_empty() {
        sqlx::query(
            "insert into cdc_stage (row_key, kind, row_hash, row_json, detected_at)
             select k, c, h, j, $5 from unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) as t(k, c, h, j)",
        )
        .persistent(false)
        .bind(&stage_keys)
        .bind(&stage_kinds)
        .bind(&stage_hashes)
        .bind(&stage_rows)
        .bind(chunk.read_at)
        .execute(&mut *tx)
        .await?;
    }
    state::record_rejects(&mut *tx, table, &rejects, chunk.read_at).await?;
    for reject in &rejects {
        report.count_reject(reject.reason.code());
    }
    Ok(())
}

/// Stages as deletions the live captured rows the scan did not meet.
async fn stage_deletions(
    tx: &mut PgConnection,
    table: &str,
    buckets: Option<&Buckets>,
) -> Result<()> {
    let (mask, wanted): (i32, Option<Vec<i32>>) = match buckets {
        Some(b) => (
            b.mask as i32,
            Some(b.sorted().into_iter().map(|x| x as i32).collect()),
        ),
        None => (0, None),
    };
    sqlx::query(
        "insert into cdc_stage (row_key, kind, row_hash, row_json, detected_at)
         select r.row_key, 'D', r.row_hash, null, $2
         from cdc_row_state r
         where r.table_name = $1 and r.live
           and not exists (select 1 from cdc_seen s where s.row_key = r.row_key)
           and ($4::int4[] is null or ccare_cdc_key_bucket(r.row_key, $3) = any($4))
         order by r.row_key",
    )
    .persistent(false)
    .bind(table)
    .bind(Utc::now())
    .bind(mask)
    .bind(wanted)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn staged_counts(tx: &mut PgConnection) -> Result<Staged> {
    let rows = sqlx::query("select kind, count(*) as n from cdc_stage group by kind")
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
    let mut staged = Staged::default();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let n = row.try_get::<i64, _>("n")? as u64;
        match kind.as_str() {
            "C" => staged.created = n,
            "U" => staged.updated = n,
            _ => staged.deleted = n,
        }
    }
    Ok(staged)
}

/// A staged difference, read back for emission.
struct StagedRow {
    key: String,
    kind: String,
    hash: RowHash,
    row: Option<AcdbRow>,
    detected_at: DateTime<Utc>,
}

/// Emits the staged differences in chunks and updates the row states. Returns the change in
/// the table's live row count.
async fn emit(
    cx: &CycleContext<'_>,
    tx: &mut PgConnection,
    spec: &'static TableSpec,
    phase: Phase,
    report: &mut TableReport,
) -> Result<i64> {
    let cdc = cx.cdc;
    let table = spec.table;
    let events = EventFactory {
        spec,
        phase,
        correlation_id: cx.correlation_id,
    };
    let page = cdc.config.chunk_rows.max(1) as i64;
    let mut after = 0i64;
    let mut live_delta = 0i64;
    loop {
        let rows = sqlx::query(
            "select ord, row_key, kind, row_hash, row_json, detected_at from cdc_stage where ord > $1 order by ord limit $2",
        )
        .persistent(false)
        .bind(after)
        .bind(page)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("ord")?;
        let mut staged = Vec::with_capacity(rows.len());
        for r in rows {
            let json: Option<String> = r.try_get("row_json")?;
            let row = json
                .map(|j| serde_json::from_str::<AcdbRow>(&j))
                .transpose()
                .map_err(|e| Error::Cdc(format!("{table}: a staged row does not parse: {e}")))?;
            staged.push(StagedRow {
                key: r.try_get("row_key")?,
                kind: r.try_get("kind")?,
                hash: state::hash_from_bytes(&r.try_get::<Vec<u8>, _>("row_hash")?)?,
                row,
                detected_at: r.try_get("detected_at")?,
            });
        }

        // The event log, not cdc_row_state, is the truth about each aggregate: its latest event
        // gives the sequence to continue and the `before` of an update or deletion.
        let ids: Vec<String> = staged.iter().map(|s| s.key.clone()).collect();
        let latest = state::latest_events(&mut *tx, spec.aggregate_type, &ids).await?;

        let mut decided = Vec::new();
        let mut forget = Vec::new();
        let mut row_states = Vec::with_capacity(staged.len());
        for s in staged {
            let record = match latest.get(&s.key) {
                Some((sequence, payload)) => {
                    let change: RowChange = serde_json::from_str(payload).map_err(|e| {
                        Error::Cdc(format!(
                            "{}/{}: the latest event does not parse: {e}",
                            spec.aggregate_type, s.key
                        ))
                    })?;
                    RecordState {
                        sequence: *sequence,
                        row: change.current_row().cloned(),
                    }
                }
                None => RecordState::default(),
            };
            let was_live = s.kind != "C";
            let change = match s.row {
                None => decide_deletion(&record),
                Some(row) => decide_capture(&record, row),
            };
            match change {
                Some(change) => {
                    let now_live = change.current_row().is_some();
                    live_delta += i64::from(now_live) - i64::from(was_live);
                    row_states.push((s.key.clone(), s.hash, record.sequence + 1, now_live));
                    decided.push((s.key, record.sequence + 1, change, s.hash, s.detected_at));
                }
                None => {
                    // The log already holds this content: only the cached row state was stale.
                    let now_live = record.exists();
                    live_delta += i64::from(now_live) - i64::from(was_live);
                    let hash = record.row_hash().unwrap_or(s.hash);
                    if record.sequence > 0 {
                        row_states.push((s.key, hash, record.sequence, now_live));
                    } else {
                        // A state with no event behind it: forget it rather than delete nothing.
                        forget.push(s.key);
                    }
                    report.state_restored += 1;
                }
            }
        }

        let found: Vec<FoundChange<'_>> = decided
            .iter()
            .map(|(key, _, change, hash, _)| FoundChange {
                table,
                key,
                kind: change.kind(),
                row_hash: change.current_row().map(|_| *hash),
                row: change.current_row(),
            })
            .collect();
        let claims = cdc.own_writes.claim(&mut *tx, &found).await?;
        if claims.len() != found.len() {
            return Err(Error::Cdc(format!(
                "{table}: the own-write matcher answered {} claims for {} changes",
                claims.len(),
                found.len()
            )));
        }
        drop(found);
        let mut new_events = Vec::with_capacity(decided.len());
        for ((key, sequence, change, hash, detected_at), own) in decided.iter().zip(claims.iter()) {
            new_events.push(events.event(
                key,
                *sequence,
                change,
                *hash,
                *detected_at,
                own.as_ref(),
            ));
            match change {
                RowChange::Created { .. } => report.created += 1,
                RowChange::Updated { .. } => report.updated += 1,
                RowChange::Deleted { .. } => report.deleted += 1,
            }
        }
        let appended = EventStore::append_in(&mut *tx, &new_events).await?;
        state::upsert_rows(&mut *tx, table, &row_states).await?;
        if !forget.is_empty() {
            sqlx::query("delete from cdc_row_state where table_name = $1 and row_key = any($2)")
                .bind(table)
                .bind(&forget)
                .execute(&mut *tx)
                .await?;
        }
        report.events_emitted += appended.appended;
    }
    Ok(live_delta)
}
