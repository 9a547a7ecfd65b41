//! The audited writer: the only way ccare changes ACDB rows.
//!
//! A write is a command with its actor. It goes through three recorded steps:
//! 1. **requested** — [`WriteQueue::submit`] (the API's side) records a `WriteRequested` event
//!    and its working row in `acdb_writes`, in one transaction, and notifies the writer;
//! 2. **applied to the ACDB** — [`AuditedWriter::run`] (in the process that owns the ACDB
//!    connection, the `cdc` role) takes requests in order, marks one `applying`, and applies it
//!    over ODBC in one ACDB transaction, reading the row before and after;
//! 3. **outcome** — in one PostgreSQL transaction holding the change capture's lock on the table:
//!    the row's own change event (`CustomerUpdated`, with before and after, the writer's actor and
//!    the command as cause), its row state (so the next poll finds nothing new), and
//!    `WriteApplied` — or `WriteFailed` with the ACDB's reason.
//!
//! A process that dies during step 2 or 3 leaves the write `applying`. The next start reads the
//! ACDB: if the row holds the requested values (or is gone, for a delete) the write is recorded
//! as applied, otherwise as failed. It is never applied twice and never lost.
//!
//! The change capture may see the change before step 3 records it (it polls the same table).
//! Through [`WriterClaims`] (its `OwnWrites`) it recognises a write in progress by table, key and
//! values, and records the change with the writer's actor instead of calling it an external edit;
//! step 3 then records only the outcome.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use domain::acdb::AcdbRow;
use domain::catalog::{table_spec, KeyPart, RowKey, TableSpec};
use domain::command::{AcdbWrites, CommandContext, CommandError, WriteOutcome, WriteRejection};
use domain::envelope::Envelope;
use domain::event::{capture_event_id, NewEvent};
use domain::write::{
    key_is_assigned_by_the_acdb, row_has_values, TableWrite, WriteAction, WriteEvent, ACDB_WRITE,
    WRITE_EVENT_VERSION,
};

use crate::acdb::{AcdbWriter, Scan, ScanFilter};
use crate::cdc::{self, FoundChange, OwnWrite, OwnWrites};
use crate::store::EventStore;
use crate::{Error, Result};

/// The notification channel of new write requests and outcomes.
pub const WRITES_CHANNEL: &str = "ccare_acdb_writes";

/// The most requests the writer takes at once: their outcomes are recorded in one transaction.
const BATCH: i64 = 32;

/// The advisory lock key the running writer holds: one writer per database.
const WRITER_LOCK: i64 = 0x6363_6172_6557_7254; // "ccareWrT"

/// Opens a writing connection to the ACDB. Called on a blocking thread.
pub type WriterFactory = Arc<dyn Fn() -> Result<Box<dyn AcdbWriter>> + Send + Sync>;

/// The working row of a write (`acdb_writes`).
#[derive(Debug, Clone)]
struct Pending {
    command_id: Uuid,
    write: TableWrite,
    envelope: Envelope,
    reverts: Option<i64>,
    key_floor: Option<i64>,
    /// The writes applied together with this one, in one ACDB transaction.
    group_id: Option<Uuid>,
}

fn pending_from_row(row: &sqlx::postgres::PgRow) -> Result<Pending> {
    let write: Json<TableWrite> = row.try_get("write")?;
    let envelope: Json<std::collections::BTreeMap<String, String>> = row.try_get("envelope")?;
    let envelope = Envelope::from_metadata(&envelope.0)
        .map_err(|e| Error::Store(format!("acdb_writes holds an unreadable envelope: {e}")))?;
    Ok(Pending {
        command_id: row.try_get("command_id")?,
        write: write.0,
        envelope,
        reverts: row.try_get("reverts")?,
        key_floor: row.try_get("key_floor")?,
        group_id: row.try_get("group_id")?,
    })
}

const PENDING_COLUMNS: &str = "command_id, write, envelope, reverts, key_floor, group_id";

/// The `AcdbWrite` event at `sequence` of command `command_id`.
fn write_event(
    command_id: Uuid,
    sequence: i64,
    event: &WriteEvent,
    envelope: &Envelope,
) -> NewEvent {
    let id = command_id.to_string();
    NewEvent {
        event_id: capture_event_id(ACDB_WRITE, &id, sequence),
        aggregate_type: ACDB_WRITE.to_string(),
        aggregate_id: id,
        sequence,
        event_type: event.kind().to_string(),
        event_version: WRITE_EVENT_VERSION.to_string(),
        payload: serde_json::to_value(event).expect("write events serialise to JSON"),
        metadata: envelope.to_metadata(),
    }
}

/// The API's side of the writer: records requests and waits for their outcome.
#[derive(Clone)]
pub struct WriteQueue {
    pool: PgPool,
    /// How long `submit` waits for the outcome before answering `Pending`.
    wait: Duration,
    outcomes: Arc<Outcomes>,
}

/// Outcomes announced by the writer (command ids on [`WRITES_CHANNEL`]), fed by one listener
/// per queue. Waiters also look at `acdb_writes` on a short timer, so an announcement lost to a
/// reconnect only delays them.
struct Outcomes {
    announced: tokio::sync::broadcast::Sender<Uuid>,
    listening: std::sync::OnceLock<()>,
}

impl Outcomes {
    fn listen(self: &Arc<Self>, pool: &PgPool) {
        let outcomes = Arc::clone(self);
        let pool = pool.clone();
        self.listening.get_or_init(move || {
            tokio::spawn(async move {
                loop {
                    let Err(e) = outcomes.follow(&pool).await;
                    if pool.is_closed() {
                        return;
                    }
                    tracing::debug!(error = %e, "write notifications interrupted; listening again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        });
    }

    async fn follow(
        &self,
        pool: &PgPool,
    ) -> std::result::Result<std::convert::Infallible, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(WRITES_CHANNEL).await?;
        loop {
            let note = listener.recv().await?;
            if let Ok(id) = note.payload().parse() {
                // Nobody waiting is no error.
                let _ = self.announced.send(id);
            }
        }
    }
}

impl WriteQueue {
    pub fn new(pool: PgPool, wait: Duration) -> Self {
        WriteQueue {
            pool,
            wait,
            outcomes: Arc::new(Outcomes {
                announced: tokio::sync::broadcast::channel(1024).0,
                listening: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Records `writes` as requested, in one transaction: one command each, in one group when
    /// there are several (the writer applies a group in one ACDB transaction).
    async fn record_requests(
        &self,
        writes: &[TableWrite],
        context: &CommandContext,
    ) -> Result<std::result::Result<Vec<Uuid>, WriteRejection>> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        let group_id = (writes.len() > 1).then(Uuid::new_v4);
        let mut command_ids = Vec::with_capacity(writes.len());
        for (order, write) in writes.iter().enumerate() {
            let ordered = group_id.map(|group| (group, order as i32));
            match Self::record_request_in(&mut tx, write, context, ordered).await? {
                Ok(command_id) => command_ids.push(command_id),
                Err(rejection) => return Ok(Err(rejection)),
            }
        }
        tx.commit().await?;
        Ok(Ok(command_ids))
    }

    async fn record_request_in(
        tx: &mut PgConnection,
        write: &TableWrite,
        context: &CommandContext,
        group: Option<(Uuid, i32)>,
    ) -> Result<std::result::Result<Uuid, WriteRejection>> {
        let reverts = context.reverts;
        let spec = write.spec();
        // No lock: requests do not wait for one another, the capture or the writer. The checks
        // below only spare the writer hopeless requests; it checks the ACDB itself.
        if !cdc::is_imported(&mut *tx, spec).await? {
            return Ok(Err(WriteRejection::NotReady {
                table: spec.table.to_string(),
            }));
        }
        if let Some(key) = &write.key {
            let id = key.aggregate_id();
            let exists = cdc::captured_row(&mut *tx, spec, &id).await?.exists();
            match write.action {
                WriteAction::Update | WriteAction::Delete if !exists => {
                    return Ok(Err(WriteRejection::NotFound {
                        table: spec.table.to_string(),
                        key: id,
                    }))
                }
                WriteAction::Create if exists => {
                    return Ok(Err(WriteRejection::AlreadyExists {
                        table: spec.table.to_string(),
                        key: id,
                    }))
                }
                _ => {}
            }
        }
        let command_id = Uuid::new_v4();
        let envelope = context.envelope();
        let event = WriteEvent::WriteRequested {
            write: write.clone(),
            reverts,
        };
        EventStore::append_in(&mut *tx, &[write_event(command_id, 1, &event, &envelope)]).await?;
        sqlx::query(
            "insert into acdb_writes (command_id, table_name, action, row_key, write, envelope, reverts,
                 group_id, group_order)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(command_id)
        .bind(spec.table)
        .bind(write.action.as_str())
        .bind(write.key.as_ref().map(RowKey::aggregate_id))
        .bind(Json(write))
        .bind(Json(envelope.to_metadata()))
        .bind(reverts)
        .bind(group.map(|(id, _)| id))
        .bind(group.map(|(_, order)| order))
        .execute(&mut *tx)
        .await?;
        sqlx::query("select pg_notify($1, $2)")
            .bind(WRITES_CHANNEL)
            .bind(command_id.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(Ok(command_id))
    }

    /// Records `writes` (see [`record_requests`](Self::record_requests)) and waits, until the
    /// queue's deadline, for the outcome of each.
    async fn submit_all(
        &self,
        writes: Vec<TableWrite>,
        context: &CommandContext,
    ) -> std::result::Result<Vec<WriteOutcome>, CommandError<WriteRejection>> {
        self.outcomes.listen(&self.pool);
        // Subscribed before the request exists: its outcome cannot be announced unheard.
        let mut announced = self.outcomes.announced.subscribe();
        // On a task of its own: a caller that goes away cannot stop the request half-recorded.
        let queue = self.clone();
        let context = context.clone();
        let command_ids =
            tokio::spawn(async move { queue.record_requests(&writes, &context).await })
                .await
                .map_err(|e| CommandError::Unavailable(format!("the write task failed: {e}")))?
                .map_err(unavailable)?
                .map_err(CommandError::Rejected)?;
        let recorded = tokio::time::Instant::now();
        let deadline = recorded + self.wait;
        let mut outcomes = Vec::with_capacity(command_ids.len());
        for command_id in command_ids {
            outcomes.push(
                self.await_outcome(command_id, &mut announced, recorded, deadline)
                    .await?,
            );
        }
        Ok(outcomes)
    }

    /// The outcome of `command_id` once it has one, or `Pending` at `deadline`.
    async fn await_outcome(
        &self,
        command_id: Uuid,
        announced: &mut tokio::sync::broadcast::Receiver<Uuid>,
        recorded: tokio::time::Instant,
        deadline: tokio::time::Instant,
    ) -> std::result::Result<WriteOutcome, CommandError<WriteRejection>> {
        loop {
            if let Some(outcome) = self.outcome(command_id).await.map_err(unavailable)? {
                tracing::debug!(command = %command_id, wait_ms = recorded.elapsed().as_secs_f64() * 1e3, "write outcome");
                return Ok(outcome);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(WriteOutcome::Pending { command_id });
            }
            let fallback = tokio::time::sleep((deadline - now).min(Duration::from_millis(100)));
            tokio::pin!(fallback);
            loop {
                tokio::select! {
                    heard = announced.recv() => match heard {
                        Ok(id) if id != command_id => continue,
                        // Ours, or some were missed (lagged): look.
                        _ => break,
                    },
                    () = &mut fallback => break,
                }
            }
        }
    }

    /// The outcome of `command_id`, once it has one.
    async fn outcome(&self, command_id: Uuid) -> Result<Option<WriteOutcome>> {
        let row = sqlx::query(
            "select status, row_key, reason, position from acdb_writes where command_id = $1",
        )
        .bind(command_id)
        .fetch_one(&self.pool)
        .await?;
        let status: String = row.try_get("status")?;
        Ok(match status.as_str() {
            "applied" => Some(WriteOutcome::Applied {
                command_id,
                key: row
                    .try_get::<Option<String>, _>("row_key")?
                    .unwrap_or_default(),
                position: row.try_get("position")?,
            }),
            "failed" => Some(WriteOutcome::Failed {
                command_id,
                reason: row
                    .try_get::<Option<String>, _>("reason")?
                    .unwrap_or_default(),
            }),
            _ => None,
        })
    }
}

fn unavailable(error: Error) -> CommandError<WriteRejection> {
    CommandError::Unavailable(error.to_string())
}

#[async_trait]
impl AcdbWrites for WriteQueue {
    async fn submit(
        &self,
        write: TableWrite,
        context: &CommandContext,
    ) -> std::result::Result<WriteOutcome, CommandError<WriteRejection>> {
        let mut outcomes = self.submit_all(vec![write], context).await?;
        Ok(outcomes.pop().expect("one outcome per write"))
    }

    async fn submit_together(
        &self,
        writes: Vec<TableWrite>,
        context: &CommandContext,
    ) -> std::result::Result<Vec<WriteOutcome>, CommandError<WriteRejection>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        self.submit_all(writes, context).await
    }

    async fn columns(
        &self,
        table: &str,
    ) -> std::result::Result<Vec<String>, CommandError<WriteRejection>> {
        let known: Option<Json<Vec<String>>> =
            sqlx::query_scalar("select known_columns from cdc_table_state where table_name = $1")
                .bind(table)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| unavailable(e.into()))?;
        Ok(known.map(|k| k.0).unwrap_or_default())
    }
}

/// What applying a write to the ACDB found.
#[derive(Debug)]
struct Applied {
    key: RowKey,
    before: Option<AcdbRow>,
    after: Option<AcdbRow>,
    read_at: DateTime<Utc>,
}

/// Applies write requests to the ACDB, one at a time, in request order.
pub struct AuditedWriter {
    pool: PgPool,
    open: WriterFactory,
    /// The ODBC connection, kept between writes; dropped after a failure so the next write
    /// reconnects.
    connection: Arc<Mutex<Option<Box<dyn AcdbWriter>>>>,
    poll_interval: Duration,
}

impl AuditedWriter {
    pub fn new(pool: PgPool, open: WriterFactory) -> Self {
        AuditedWriter {
            pool,
            open,
            connection: Arc::new(Mutex::new(None)),
            poll_interval: Duration::from_secs(1),
        }
    }

    /// Runs `work` on the ACDB connection, on a blocking thread.
    async fn with_acdb<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn AcdbWriter) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let open = self.open.clone();
        let slot = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut held = slot.lock().unwrap_or_else(|p| p.into_inner());
            if held.is_none() {
                *held = Some(open()?);
            }
            let connection = held.as_mut().expect("opened just above");
            let result = work(connection.as_mut());
            if result.is_err() {
                *held = None;
            }
            result
        })
        .await
        .map_err(|e| Error::Store(format!("the ACDB writer thread failed: {e}")))?
    }

    /// Applies requests until `shutdown` completes: first those a previous process left
    /// half-done, then each new one as it arrives. Only one writer runs per database; a second
    /// waits for the first to stop.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut lock = self.pool.acquire().await?.detach();
        loop {
            let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
                .bind(WRITER_LOCK)
                .fetch_one(&mut lock)
                .await?;
            if locked {
                break;
            }
            tracing::warn!("another ccare process runs the audited writer; waiting for it to stop");
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(WRITES_CHANNEL).await?;
        self.recover().await?;
        let mut settle = false;
        loop {
            // After a failure a write may be left `applying`: settle it by reading the ACDB
            // before taking new ones.
            if settle {
                match self.recover().await {
                    Ok(_) => settle = false,
                    Err(error) => {
                        tracing::error!(error = %error, "settling interrupted writes failed; retrying");
                    }
                }
            }
            if !settle {
                let stopping = std::sync::atomic::AtomicBool::new(false);
                let applied = {
                    let go_on = || !stopping.load(Ordering::Relaxed);
                    let applying = self.apply_while(&go_on);
                    tokio::pin!(applying);
                    loop {
                        tokio::select! {
                            result = &mut applying => break result,
                            () = &mut shutdown, if !stopping.load(Ordering::Relaxed) => {
                                // Finish the batch in hand, take no other.
                                stopping.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                };
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                match applied {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::error!(error = %error, "the audited writer failed; retrying");
                        settle = true;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                _ = listener.recv() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
        // The session lock ends with the connection.
        drop(lock);
        Ok(())
    }

    /// Applies requests until none is left: batches of up to [`BATCH`] in request order, each
    /// write its own ACDB transaction; a batch's outcomes are recorded in one transaction, which
    /// also takes the next batch. Says whether there was any.
    pub async fn apply_next(&self) -> Result<bool> {
        self.apply_while(&|| true).await
    }

    /// Like [`apply_next`](Self::apply_next), taking no new batch once `go_on` says no (a
    /// stopping process leaves untried requests `requested`, not `applying`).
    async fn apply_while(&self, go_on: &(dyn Fn() -> bool + Sync)) -> Result<bool> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        let mut batch = take_batch(&mut tx).await?;
        tx.commit().await?;
        if batch.is_empty() {
            return Ok(false);
        }
        while !batch.is_empty() {
            let started = std::time::Instant::now();
            let writes: Vec<(TableWrite, Option<Uuid>)> = batch
                .iter()
                .map(|p| (p.write.clone(), p.group_id))
                .collect();
            let results = self
                .with_acdb(move |acdb| {
                    let mut results = Vec::with_capacity(writes.len());
                    let mut next = 0;
                    while next < writes.len() {
                        let group = writes[next].1;
                        let end = match group {
                            Some(_) => {
                                next + writes[next..]
                                    .iter()
                                    .take_while(|(_, g)| *g == group)
                                    .count()
                            }
                            None => next + 1,
                        };
                        let together: Vec<&TableWrite> =
                            writes[next..end].iter().map(|(w, _)| w).collect();
                        let applied = if together.len() == 1 {
                            apply(acdb, together[0].spec(), together[0]).map(|one| vec![one])
                        } else {
                            apply_together(acdb, &together)
                        };
                        match applied {
                            Ok(outcomes) => results.extend(outcomes),
                            // The ACDB stopped answering: the writes not yet tried wait for it.
                            Err(error) => return Ok((results, Some(error))),
                        }
                        next = end;
                    }
                    Ok((results, None))
                })
                .await;
            let (results, unreachable) = match results {
                Ok(done) => done,
                Err(error) => (Vec::new(), Some(error)),
            };
            let applied = started.elapsed();
            let next = self
                .record_batch(&batch, results, unreachable.is_none() && go_on())
                .await?;
            tracing::debug!(
                writes = batch.len(),
                acdb_ms = applied.as_secs_f64() * 1e3,
                record_ms = (started.elapsed() - applied).as_secs_f64() * 1e3,
                "write batch"
            );
            if let Some(error) = unreachable {
                tracing::error!(error = %error, "the ACDB is unreachable; the write in progress is settled when it answers");
                return Err(error);
            }
            batch = next;
        }
        Ok(true)
    }

    /// Records the outcomes of the first `results.len()` writes of `batch` in one transaction,
    /// under the capture's lock on every table they touch; the write after them (the one the
    /// ACDB stopped answering during) stays `applying`, and the rest go back to `requested`.
    /// With `take_next`, the same transaction takes (and returns) the next batch.
    async fn record_batch(
        &self,
        batch: &[Pending],
        results: Vec<std::result::Result<Applied, String>>,
        take_next: bool,
    ) -> Result<Vec<Pending>> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        let mut tables: Vec<&'static TableSpec> = batch.iter().map(|p| p.write.spec()).collect();
        tables.sort_by_key(|spec| spec.table);
        tables.dedup_by_key(|spec| spec.table);
        for spec in tables {
            cdc::lock_table(&mut tx, spec).await?;
        }
        let done = results.len();
        for (pending, result) in batch.iter().zip(results) {
            match result {
                Ok(applied) => record_applied_in(&mut tx, pending, applied).await?,
                Err(reason) => record_failed_in(&mut tx, pending, &reason).await?,
            }
        }
        // The writes of the group in hand when the ACDB stopped answering shared its transaction:
        // they stay `applying` with it, for recovery to settle together.
        let in_hand = batch.get(done).and_then(|p| p.group_id);
        let untried: Vec<Uuid> = batch
            .iter()
            .skip(done + 1)
            .filter(|p| in_hand.is_none() || p.group_id != in_hand)
            .map(|p| p.command_id)
            .collect();
        if !untried.is_empty() {
            sqlx::query("update acdb_writes set status = 'requested' where command_id = any($1)")
                .bind(&untried)
                .execute(&mut *tx)
                .await?;
        }
        let next = if take_next {
            take_batch(&mut tx).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        Ok(next)
    }

    /// Settles every write a previous process left `applying`, by reading the ACDB.
    pub async fn recover(&self) -> Result<u64> {
        let rows = sqlx::query(&format!(
            "select {PENDING_COLUMNS} from acdb_writes where status = 'applying' order by requested_at, command_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut settled = 0;
        for row in rows {
            let pending = pending_from_row(&row)?;
            let spec = pending.write.spec();
            let claimed = claimed_keys(&self.pool, spec, pending.command_id).await?;
            let write = pending.write.clone();
            let floor = pending.key_floor;
            let found = self
                .with_acdb(move |acdb| {
                    // Reads in a transaction of their own, ended at once: a writing connection
                    // must never sit in an open transaction that holds Access users back.
                    acdb.begin()?;
                    let found = find_applied(acdb, spec, &write, floor, &claimed);
                    acdb.rollback()?;
                    found
                })
                .await?;
            match found {
                Some(applied) => {
                    tracing::warn!(command = %pending.command_id, "a write interrupted by a stop had reached the ACDB: recorded as applied");
                    self.record_applied(&pending, applied).await?;
                }
                None => {
                    tracing::warn!(command = %pending.command_id, "a write interrupted by a stop had not reached the ACDB: recorded as failed");
                    self.record_failed(
                        &pending,
                        "ccare stopped while applying this write, and the ACDB does not hold it; nothing was changed",
                    )
                    .await?;
                }
            }
            settled += 1;
        }
        Ok(settled)
    }

    async fn record_applied(&self, pending: &Pending, applied: Applied) -> Result<()> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        cdc::lock_table(&mut tx, pending.write.spec()).await?;
        record_applied_in(&mut tx, pending, applied).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_failed(&self, pending: &Pending, reason: &str) -> Result<()> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        record_failed_in(&mut tx, pending, reason).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records that `pending` was applied, in `tx`, which holds the capture's lock on its table.
async fn record_applied_in(
    tx: &mut PgConnection,
    pending: &Pending,
    applied: Applied,
) -> Result<()> {
    let spec = pending.write.spec();
    let key = applied.key.aggregate_id();
    let captured: bool =
        sqlx::query_scalar("select captured from acdb_writes where command_id = $1 for update")
            .bind(pending.command_id)
            .fetch_one(&mut *tx)
            .await?;
    let outcome = write_event(
        pending.command_id,
        2,
        &WriteEvent::WriteApplied { key: key.clone() },
        &pending.envelope,
    );
    let position = if captured {
        EventStore::append_in(&mut *tx, std::slice::from_ref(&outcome)).await?;
        // The capture recorded the change first, attributed to this command.
        sqlx::query_scalar(
            "select max(position) from event_log
             where aggregate_type = $1 and aggregate_id = $2 and metadata->>'causation_id' = $3",
        )
        .bind(spec.aggregate_type)
        .bind(&key)
        .bind(pending.command_id.to_string())
        .fetch_one(&mut *tx)
        .await?
    } else {
        let mut recorded = cdc::captured_row(&mut *tx, spec, &key).await?;
        // An edit made in Access since the last poll is its own, external change.
        if let Some(before) = &applied.before {
            if recorded.row_hash() != Some(before.content_hash()) {
                let external = cdc::Change {
                    spec,
                    key: &key,
                    row: Some(before),
                    read_at: applied.read_at,
                    own: None,
                    correlation_id: pending.envelope.correlation_id,
                };
                recorded = cdc::record_change(&mut *tx, &recorded, &external, &[])
                    .await?
                    .1;
            }
        }
        let own = OwnWrite {
            actor: pending.envelope.actor.clone(),
            causation_id: pending.command_id,
            reverts: pending.reverts,
        };
        let ours = cdc::Change {
            spec,
            key: &key,
            row: applied.after.as_ref(),
            read_at: applied.read_at,
            own: Some(&own),
            correlation_id: pending.envelope.correlation_id,
        };
        cdc::record_change(&mut *tx, &recorded, &ours, std::slice::from_ref(&outcome))
            .await?
            .0
    };
    sqlx::query(
        "update acdb_writes set status = 'applied', row_key = $2, captured = true, position = $3,
             finished_at = now()
         where command_id = $1",
    )
    .bind(pending.command_id)
    .bind(&key)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    notify(&mut *tx, pending.command_id).await?;
    Ok(())
}

/// Records that `pending` failed with `reason`, in `tx`.
async fn record_failed_in(tx: &mut PgConnection, pending: &Pending, reason: &str) -> Result<()> {
    let outcome = WriteEvent::WriteFailed {
        reason: reason.to_string(),
    };
    EventStore::append_in(
        &mut *tx,
        &[write_event(
            pending.command_id,
            2,
            &outcome,
            &pending.envelope,
        )],
    )
    .await?;
    sqlx::query(
        "update acdb_writes set status = 'failed', reason = $2, finished_at = now() where command_id = $1",
    )
    .bind(pending.command_id)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    notify(&mut *tx, pending.command_id).await?;
    Ok(())
}

/// Takes the oldest requests (up to [`BATCH`]) and marks them `applying`, in `tx`: once that
/// commits, a stop leaves them for recovery to settle by reading the ACDB.
async fn take_batch(tx: &mut PgConnection) -> Result<Vec<Pending>> {
    // A group's writes are recorded in one transaction (one `requested_at`), so they sort
    // together, in their order.
    let mut rows = sqlx::query(&format!(
        "select {PENDING_COLUMNS} from acdb_writes where status = 'requested'
         order by requested_at, coalesce(group_id, command_id), group_order, command_id
         limit $1 for update skip locked"
    ))
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    // The limit may cut the last group: it is taken whole.
    let cut: Option<Uuid> = match rows.last() {
        Some(last) => last.try_get("group_id")?,
        None => None,
    };
    if let Some(group_id) = cut {
        let taken: Vec<Uuid> = rows
            .iter()
            .map(|row| row.try_get("command_id"))
            .collect::<std::result::Result<_, _>>()?;
        let rest = sqlx::query(&format!(
            "select {PENDING_COLUMNS} from acdb_writes
             where status = 'requested' and group_id = $1 and command_id <> all($2)
             order by group_order, command_id for update"
        ))
        .bind(group_id)
        .bind(&taken)
        .fetch_all(&mut *tx)
        .await?;
        rows.extend(rest);
    }
    let mut batch = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut pending = pending_from_row(row)?;
        if pending.write.action == WriteAction::Create && pending.write.key.is_none() {
            pending.key_floor = Some(largest_int_key(&mut *tx, pending.write.spec()).await?);
        }
        sqlx::query(
            "update acdb_writes set status = 'applying', key_floor = $2 where command_id = $1",
        )
        .bind(pending.command_id)
        .bind(pending.key_floor)
        .execute(&mut *tx)
        .await?;
        batch.push(pending);
    }
    Ok(batch)
}

async fn notify(tx: &mut PgConnection, command_id: Uuid) -> Result<()> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(WRITES_CHANNEL)
        .bind(command_id.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// The largest integer key captured in `spec.table` (0 when none): new AutoNumber keys are above it.
async fn largest_int_key(tx: &mut PgConnection, spec: &TableSpec) -> Result<i64> {
    let largest: Option<i64> = sqlx::query_scalar(
        "select max(row_key::bigint) from cdc_row_state where table_name = $1 and row_key ~ '^-?[0-9]{1,18}$'",
    )
    .bind(spec.table)
    .fetch_one(&mut *tx)
    .await?;
    Ok(largest.unwrap_or(0))
}

/// Keys other writes already account for (applied, or claimed by the capture): a recovering
/// AutoNumber create must not take one of them for its own.
async fn claimed_keys(pool: &PgPool, spec: &TableSpec, except: Uuid) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select row_key from acdb_writes where table_name = $1 and command_id <> $2
         and row_key is not null and (status = 'applied' or captured)",
    )
    .bind(spec.table)
    .bind(except)
    .fetch_all(pool)
    .await?)
}

/// Applies `write` in one ACDB transaction. `Ok(Err(reason))` when the ACDB refused it (nothing
/// changed there); `Err` when the ACDB could not be reached or the outcome is unknown.
fn apply(
    acdb: &mut dyn AcdbWriter,
    spec: &'static TableSpec,
    write: &TableWrite,
) -> Result<std::result::Result<Applied, String>> {
    acdb.begin()?;
    match apply_in_transaction(acdb, spec, write) {
        Ok(Ok(applied)) => {
            acdb.commit()?;
            Ok(Ok(applied))
        }
        Ok(Err(reason)) => {
            acdb.rollback()?;
            Ok(Err(reason))
        }
        Err(Error::AcdbQuery { message, .. }) => {
            // A statement the ACDB refused (a constraint, a type): roll back and report it.
            acdb.rollback()?;
            Ok(Err(message))
        }
        Err(other) => {
            let _ = acdb.rollback();
            Err(other)
        }
    }
}

/// Applies `writes` in order in one ACDB transaction: all of them, or (the ACDB refusing one)
/// none, each then failed with the reason. `Err` as for [`apply`].
fn apply_together(
    acdb: &mut dyn AcdbWriter,
    writes: &[&TableWrite],
) -> Result<Vec<std::result::Result<Applied, String>>> {
    acdb.begin()?;
    let mut applied = Vec::with_capacity(writes.len());
    for (refused_at, write) in writes.iter().enumerate() {
        let reason = match apply_in_transaction(acdb, write.spec(), write) {
            Ok(Ok(done)) => {
                applied.push(done);
                continue;
            }
            Ok(Err(reason))
            | Err(Error::AcdbQuery {
                message: reason, ..
            }) => reason,
            Err(other) => {
                let _ = acdb.rollback();
                return Err(other);
            }
        };
        acdb.rollback()?;
        let refused = writes[refused_at];
        return Ok(writes
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Err(if i == refused_at {
                    reason.clone()
                } else {
                    format!("not applied: {refused}, made together with it, was refused ({reason}); nothing was changed")
                })
            })
            .collect());
    }
    acdb.commit()?;
    Ok(applied.into_iter().map(Ok).collect())
}

fn apply_in_transaction(
    acdb: &mut dyn AcdbWriter,
    spec: &'static TableSpec,
    write: &TableWrite,
) -> Result<std::result::Result<Applied, String>> {
    let not_found = |key: &RowKey| format!("Record {key} not found in {}", spec.table);
    let read_at = Utc::now();
    match write.action {
        WriteAction::Update => {
            let key = write.key.clone().expect("a validated update has its key");
            let Some(before) = acdb.read_row(spec, &key)? else {
                return Ok(Err(not_found(&key)));
            };
            if acdb.update(spec, &key, &write.values)? != 1 {
                return Ok(Err(not_found(&key)));
            }
            let after = acdb.read_row(spec, &key)?;
            Ok(Ok(Applied {
                key,
                before: Some(before),
                after,
                read_at,
            }))
        }
        WriteAction::Delete => {
            let key = write.key.clone().expect("a validated delete has its key");
            let Some(before) = acdb.read_row(spec, &key)? else {
                return Ok(Err(not_found(&key)));
            };
            if acdb.delete(spec, &key)? != 1 {
                return Ok(Err(not_found(&key)));
            }
            Ok(Ok(Applied {
                key,
                before: Some(before),
                after: None,
                read_at,
            }))
        }
        WriteAction::Create => {
            let key = match &write.key {
                Some(key) => {
                    if acdb.read_row(spec, key)?.is_some() {
                        return Ok(Err(format!(
                            "A record {key} already exists in {}",
                            spec.table
                        )));
                    }
                    let mut values = write.values.clone();
                    for (column, part) in spec.key.iter().zip(key.parts()) {
                        values.insert(*column, key_value(part));
                    }
                    acdb.insert(spec, &values)?;
                    key.clone()
                }
                None => {
                    let id = acdb
                        .insert(spec, &write.values)?
                        .ok_or_else(|| Error::AcdbQuery {
                            table: spec.table.to_string(),
                            message: "the ACDB assigned no key to the new row".into(),
                        })?;
                    RowKey(vec![KeyPart::Int(id)])
                }
            };
            let after = acdb.read_row(spec, &key)?;
            if after.is_none() {
                return Ok(Err(format!(
                    "the new row {key} cannot be read back from {}",
                    spec.table
                )));
            }
            Ok(Ok(Applied {
                key,
                before: None,
                after,
                read_at,
            }))
        }
    }
}

fn key_value(part: &KeyPart) -> domain::acdb::AcdbValue {
    use domain::acdb::AcdbValue;
    match part {
        KeyPart::Int(i) => AcdbValue::Int(*i),
        KeyPart::Text(s) => AcdbValue::Text(s.clone()),
        KeyPart::DateTime(d) => AcdbValue::DateTime { datetime: *d },
    }
}

/// Whether the ACDB holds what `write` asked for, after a stop interrupted it: the row it
/// changed, if so.
fn find_applied(
    acdb: &mut dyn AcdbWriter,
    spec: &'static TableSpec,
    write: &TableWrite,
    key_floor: Option<i64>,
    claimed: &[String],
) -> Result<Option<Applied>> {
    let read_at = Utc::now();
    let found = |key: RowKey, after: Option<AcdbRow>| Applied {
        key,
        before: None,
        after,
        read_at,
    };
    Ok(match (write.action, &write.key) {
        (WriteAction::Delete, Some(key)) => match acdb.read_row(spec, key)? {
            None => Some(found(key.clone(), None)),
            Some(_) => None,
        },
        (WriteAction::Update | WriteAction::Create, Some(key)) => acdb
            .read_row(spec, key)?
            .filter(|row| row_has_values(&write.values, row))
            .map(|row| found(key.clone(), Some(row))),
        (WriteAction::Create, None) if key_is_assigned_by_the_acdb(spec) => {
            let floor = key_floor.unwrap_or(0);
            let mut candidate = None;
            acdb.scan(
                spec,
                &Scan {
                    filter: ScanFilter::KeyAfter(RowKey(vec![KeyPart::Int(floor)])),
                    batch_size: 500,
                },
                &mut |rows| {
                    candidate = rows.into_iter().find(|row| {
                        row_has_values(&write.values, row)
                            && spec
                                .row_key(row)
                                .is_ok_and(|k| !claimed.contains(&k.aggregate_id()))
                    });
                    candidate.is_none()
                },
            )?;
            candidate.and_then(|row| {
                let key = spec.row_key(&row).ok()?;
                Some(found(key, Some(row)))
            })
        }
        _ => None,
    })
}

/// The change capture's [`OwnWrites`]: recognises changes made by writes in progress or applied
/// but not yet recorded, so they are attributed to their command.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterClaims;

#[async_trait]
impl OwnWrites for WriterClaims {
    async fn claim(
        &self,
        conn: &mut PgConnection,
        changes: &[FoundChange<'_>],
    ) -> Result<Vec<Option<OwnWrite>>> {
        let Some(first) = changes.first() else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(&format!(
            "select {PENDING_COLUMNS} from acdb_writes
             where table_name = $1 and not captured and status in ('applying', 'applied')
             order by requested_at, command_id for update"
        ))
        .bind(first.table)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(vec![None; changes.len()]);
        }
        let mut open: Vec<Pending> = rows.iter().map(pending_from_row).collect::<Result<_>>()?;
        let mut claims = Vec::with_capacity(changes.len());
        for change in changes {
            let spec = table_spec(change.table);
            let index = spec.and_then(|spec| {
                open.iter()
                    .position(|p| write_made(spec, &p.write, p.key_floor, change))
            });
            let Some(index) = index else {
                claims.push(None);
                continue;
            };
            let pending = open.remove(index);
            sqlx::query(
                "update acdb_writes set captured = true, row_key = $2 where command_id = $1",
            )
            .bind(pending.command_id)
            .bind(change.key)
            .execute(&mut *conn)
            .await?;
            claims.push(Some(OwnWrite {
                actor: pending.envelope.actor,
                causation_id: pending.command_id,
                reverts: pending.reverts,
            }));
        }
        Ok(claims)
    }
}

/// Whether `change` is what `write` does to the table.
fn write_made(
    spec: &TableSpec,
    write: &TableWrite,
    key_floor: Option<i64>,
    change: &FoundChange<'_>,
) -> bool {
    let key_matches = |key: &RowKey| key.aggregate_id() == change.key;
    let values_match = || {
        change
            .row
            .is_some_and(|row| row_has_values(&write.values, row))
    };
    match (write.action, change.kind, &write.key) {
        (WriteAction::Delete, "Deleted", Some(key)) => key_matches(key),
        (WriteAction::Update, "Updated", Some(key)) => key_matches(key) && values_match(),
        (WriteAction::Create, "Created", Some(key)) => key_matches(key) && values_match(),
        (WriteAction::Create, "Created", None) if key_is_assigned_by_the_acdb(spec) => {
            let above_floor = change
                .key
                .parse::<i64>()
                .is_ok_and(|k| k > key_floor.unwrap_or(i64::MAX));
            above_floor && values_match()
        }
        _ => false,
    }
}
