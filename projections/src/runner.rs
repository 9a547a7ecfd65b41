//! The projector runner: builds every read model from the global log and keeps it current.
//!
//! Prior art: Marten's async daemon (a checkpoint per projection, catch-up then follow, rebuilds
//! into a fresh copy) and Axon's tracking tokens (a replay is a reset of the token). ccare's log
//! has gap-free positions committed in order, so no high-water-mark or gap detection is needed:
//! a checkpoint n means "every event at or below n is applied", and nothing can later appear
//! below it.
//!
//! - **Applying**: each batch (bounded in events and in positions scanned) is applied and the
//!   checkpoint moved in one transaction, under the projection's advisory lock, re-reading the
//!   checkpoint after taking it. A crash loses the whole batch or none of it; two runners
//!   (two processes) never apply the same event twice.
//! - **Following**: catch up from the checkpoint, then wake on `NOTIFY ccare_event_log` (sent by
//!   every append) with a safety poll for notifications lost while the listener reconnects.
//! - **Rebuilding**: fill generation n+1 from position 0 while n keeps serving (and keeps being
//!   updated by any runner), then, under the lock, apply the tail, swap the `read_model` views and
//!   the live generation in one transaction, and drop generation n.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;

use domain::event::StoredEvent;

use crate::error::{Error, Result};
use crate::log::{self, BatchLimits};
use crate::projection::{Prepared, Projection};
use crate::registry;

/// The channel every append notifies with its last position (migrations/…_event_store.sql).
pub const EVENT_LOG_CHANNEL: &str = "ccare_event_log";

/// The longest a following runner waits before retrying a projection that keeps failing (the
/// delay starts at the poll interval and doubles).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Tuning of the runner. The defaults suit ccare's log; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The most events applied in one transaction.
    pub batch_events: i64,
    /// The widest range of log positions one transaction scans for a projection's events.
    pub batch_positions: i64,
    /// The most events applied in one transaction of a rebuild (bigger than a follower's: a
    /// rebuild has the whole log to go through, and nobody waits for its single events).
    pub rebuild_batch_events: i64,
    /// How often a following runner looks at the log even without a notification.
    pub poll_interval: Duration,
    /// How long a rebuild's swap waits for locks held by readers before trying again.
    pub swap_lock_timeout: Duration,
    /// How many times a rebuild tries to swap in its generation.
    pub swap_attempts: u32,
    /// A projection that has applied nothing yet and is at least this many events behind the
    /// head is built by the rebuild pipeline (read, prepare and write a batch ahead of each
    /// other, indexes after filling) instead of batch by batch: the first start after a large
    /// import then takes minutes instead of most of an hour.
    pub first_build_min_events: i64,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            batch_events: 2_000,
            batch_positions: 50_000,
            rebuild_batch_events: 20_000,
            poll_interval: Duration::from_secs(3),
            swap_lock_timeout: Duration::from_secs(5),
            swap_attempts: 10,
            first_build_min_events: 100_000,
        }
    }
}

impl RunnerOptions {
    fn limits(&self) -> BatchLimits {
        BatchLimits {
            events: self.batch_events.max(1),
            positions: self.batch_positions.max(1),
        }
    }

    fn rebuild_limits(&self) -> BatchLimits {
        let events = self.rebuild_batch_events.max(1);
        BatchLimits {
            events,
            positions: self.batch_positions.max(events.saturating_mul(10)),
        }
    }
}

/// Where a rebuild stands, reported after every batch and once at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildProgress {
    pub projection: &'static str,
    /// The generation being built.
    pub generation: i32,
    /// The new generation's checkpoint.
    pub position: i64,
    /// The log head when the last batch was read.
    pub head: i64,
    /// Events applied to the new generation so far.
    pub events_applied: u64,
    /// Set once the new generation is live and the old one dropped.
    pub done: bool,
}

impl fmt::Display for RebuildProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.done {
            write!(
                f,
                "{}: generation {} is live at position {} ({} events applied)",
                self.projection, self.generation, self.position, self.events_applied
            )
        } else {
            write!(
                f,
                "{}: building generation {}, position {} of {} ({} events applied)",
                self.projection, self.generation, self.position, self.head, self.events_applied
            )
        }
    }
}

/// What a projection is doing, as the registry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectionState {
    /// Registered with the runner but never made ready: it has no tables yet.
    NotStarted,
    /// Serving and being kept current.
    Live,
    /// Serving from its live generation while a rebuild fills the next one.
    Rebuilding,
}

impl ProjectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionState::NotStarted => "not-started",
            ProjectionState::Live => "live",
            ProjectionState::Rebuilding => "rebuilding",
        }
    }
}

/// A rebuild in progress (or left behind by one that died).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildStatus {
    pub generation: i32,
    pub position: i64,
    /// Whether a process is working on it now; `false` means it died and the next rebuild
    /// will discard it.
    pub running: bool,
}

/// One projection's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub state: ProjectionState,
    /// The generation the `read_model` views point at (0 before the first start).
    pub live_generation: i32,
    /// The live generation's checkpoint.
    pub position: i64,
    /// The log head.
    pub head: i64,
    /// Events in the log not yet applied: `head - position`.
    pub lag: i64,
    /// When the checkpoint last moved.
    pub last_applied_at: Option<DateTime<Utc>>,
    /// Why the last batch failed, until one succeeds.
    pub last_error: Option<String>,
    pub rebuild: Option<RebuildStatus>,
}

/// Builds and follows a set of projections over one database.
pub struct ProjectorRunner {
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    options: RunnerOptions,
    /// One first build at a time: each reads the whole log on connections of its own, and
    /// several at once would take the pool from the API and compete for the same disk.
    first_builds: tokio::sync::Semaphore,
}

impl ProjectorRunner {
    /// A runner for `projections`. Their names must be valid and distinct; every operation
    /// checks this first and fails with [`Error::InvalidName`] or [`Error::DuplicateName`].
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection>>) -> Self {
        ProjectorRunner {
            pool,
            projections,
            options: RunnerOptions::default(),
            first_builds: tokio::sync::Semaphore::new(1),
        }
    }

    fn check_names(&self) -> Result<()> {
        for (i, projection) in self.projections.iter().enumerate() {
            let name = projection.name();
            if !registry::valid_name(name) {
                return Err(Error::InvalidName {
                    name: name.to_string(),
                });
            }
            if self.projections[..i].iter().any(|p| p.name() == name) {
                return Err(Error::DuplicateName {
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Replaces the default tuning.
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// The projections this runner builds.
    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    /// Makes every projection ready to apply events: on first start, creates its generation 1,
    /// its `read_model` views and its registry row (checkpoint 0). Drops generation schemas left
    /// behind by an interrupted swap. Safe to call from several processes at once.
    pub async fn ensure_ready(&self) -> Result<()> {
        self.check_names()?;
        for projection in &self.projections {
            self.ensure_ready_one(projection.as_ref()).await?;
        }
        Ok(())
    }

    async fn ensure_ready_one(&self, projection: &dyn Projection) -> Result<()> {
        let name = projection.name();
        let mut tx = crate::pg::begin(&self.pool).await?;
        registry::lock_projection(&mut tx, name).await?;
        match registry::registry_row_of(&mut tx, name).await? {
            None => {
                let schema =
                    registry::create_generation(&mut tx, projection, 1, registry::Indexes::Now)
                        .await?;
                registry::insert_registry_row(&mut tx, name).await?;
                registry::point_views(&mut tx, projection, &schema).await?;
                tracing::info!(projection = name, schema, "read model created");
            }
            Some(row) => {
                let schema = registry::generation_schema(name, row.live_generation);
                if !registry::schema_exists(&mut tx, &schema).await? {
                    return Err(Error::MissingGeneration {
                        name: name.to_string(),
                        schema,
                    });
                }
            }
        }
        tx.commit().await?;
        self.drop_retired_generations(name).await;
        Ok(())
    }

    /// Applies every event not yet applied, projection by projection, until each has reached
    /// the log head seen by its last batch. Returns the number of events handed to projections.
    pub async fn catch_up(&self) -> Result<u64> {
        self.check_names()?;
        let mut applied = 0;
        for projection in &self.projections {
            applied += self.catch_up_one(projection, &mut || false).await?;
        }
        Ok(applied)
    }

    /// Applies batches of one projection until it is caught up or `stop()` says to stop.
    async fn catch_up_one(
        &self,
        projection: &Arc<dyn Projection>,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Result<u64> {
        let mut applied = self.first_build(projection).await?;
        let projection = projection.as_ref();
        let normal = self.options.limits();
        let mut limits = normal;
        // Events still to apply one at a time after a batch failed.
        let mut single_steps = 0;
        loop {
            match self.apply_next_batch(projection, limits).await {
                Ok((count, caught_up)) => {
                    applied += count;
                    if single_steps > 0 {
                        single_steps -= 1;
                        if single_steps == 0 {
                            limits = normal;
                        }
                    }
                    if caught_up || stop() {
                        return Ok(applied);
                    }
                }
                // A batch fails as a whole. Going on one event at a time (for as many events as
                // the batch could hold) applies everything before the event that fails, so the
                // checkpoint stops just before it and the error names it.
                Err(error) if limits.events > 1 => {
                    tracing::warn!(
                        projection = projection.name(),
                        error = %error,
                        "a batch failed; applying one event at a time to find the failing one"
                    );
                    limits = BatchLimits {
                        events: 1,
                        ..normal
                    };
                    single_steps = normal.events;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Builds a projection that has applied nothing yet through the rebuild pipeline when the
    /// log is long enough for it to pay (see [`RunnerOptions::first_build_min_events`]). Its live
    /// generation is empty, so a rebuild swapped in is what applying batch by batch would have
    /// built. Returns the events applied (0 when the normal path is to be taken).
    async fn first_build(&self, projection: &Arc<dyn Projection>) -> Result<u64> {
        let name = projection.name();
        let mut conn = self.pool.acquire().await?;
        let (_, checkpoint) = registry::live_checkpoint(&mut conn, name).await?;
        if checkpoint > 0 || log::head(&mut conn).await? < self.options.first_build_min_events {
            return Ok(0);
        }
        drop(conn);
        let _turn = self
            .first_builds
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // Another runner may have built it while this one waited.
        let mut conn = self.pool.acquire().await?;
        if registry::live_checkpoint(&mut conn, name).await?.1 > 0 {
            return Ok(0);
        }
        drop(conn);
        tracing::info!(
            projection = name,
            "first build through the rebuild pipeline"
        );
        let mut applied = 0;
        match self
            .rebuild_one(projection, &mut |p| applied = p.events_applied)
            .await
        {
            Ok(()) => Ok(applied),
            // Another runner is building it: follow the normal path meanwhile, the swap then
            // takes over whatever this one applied.
            Err(Error::RebuildRunning { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Applies the next batch of `projection` to its live generation and moves its checkpoint,
    /// in one transaction. Returns the events applied and whether the head was reached.
    async fn apply_next_batch(
        &self,
        projection: &dyn Projection,
        limits: BatchLimits,
    ) -> Result<(u64, bool)> {
        let name = projection.name();
        let mut tx = crate::pg::begin(&self.pool).await?;
        // The checkpoint and the live generation are read under the lock: another runner (or a
        // rebuild's swap) may have moved them while this one waited.
        registry::lock_projection(&mut tx, name).await?;
        let (generation, checkpoint) = registry::live_checkpoint(&mut tx, name).await?;
        let batch =
            log::read_batch(&mut tx, checkpoint, projection.aggregate_types(), limits).await?;
        if batch.checkpoint == checkpoint {
            tx.commit().await?;
            return Ok((0, true));
        }
        if !batch.events.is_empty() {
            let schema = registry::generation_schema(name, generation);
            projection.apply(&mut tx, &schema, &batch.events).await?;
        }
        registry::advance_live(&mut tx, name, batch.checkpoint).await?;
        tx.commit().await?;
        Ok((batch.events.len() as u64, batch.caught_up()))
    }

    /// Applies events delivered from outside PostgreSQL (the NATS feed of a projector running in
    /// its own process) to every projection's live generation. Per projection, in one transaction
    /// with its checkpoint: events at or below the checkpoint are skipped (a redelivery), the
    /// following ones are applied as long as their positions run on without a gap (positions
    /// are gap-free), and the checkpoint moves to the last of them. Returns the position up to
    /// which every projection has now applied the log: deliveries at or below it may be
    /// acknowledged, the others must come again.
    pub async fn apply_delivered(&self, events: &[StoredEvent]) -> Result<i64> {
        self.check_names()?;
        let mut ordered: Vec<&StoredEvent> = events.iter().collect();
        ordered.sort_by_key(|e| e.position);
        ordered.dedup_by_key(|e| e.position);
        let mut applied_through = i64::MAX;
        for projection in &self.projections {
            let through = self
                .apply_delivered_one(projection.as_ref(), &ordered)
                .await?;
            applied_through = applied_through.min(through);
        }
        Ok(if applied_through == i64::MAX {
            0
        } else {
            applied_through
        })
    }

    async fn apply_delivered_one(
        &self,
        projection: &dyn Projection,
        ordered: &[&StoredEvent],
    ) -> Result<i64> {
        let name = projection.name();
        let mut tx = crate::pg::begin(&self.pool).await?;
        registry::lock_projection(&mut tx, name).await?;
        let (generation, checkpoint) = registry::live_checkpoint(&mut tx, name).await?;
        let mut through = checkpoint;
        let mut mine = Vec::new();
        for event in ordered {
            if event.position <= through {
                continue;
            }
            if event.position != through + 1 {
                break;
            }
            through = event.position;
            let wanted = projection
                .aggregate_types()
                .is_none_or(|types| types.contains(&event.aggregate_type.as_str()));
            if wanted {
                mine.push((*event).clone());
            }
        }
        if through > checkpoint {
            if !mine.is_empty() {
                let schema = registry::generation_schema(name, generation);
                projection.apply(&mut tx, &schema, &mine).await?;
            }
            registry::advance_live(&mut tx, name, through).await?;
        }
        tx.commit().await?;
        Ok(through)
    }

    /// Follows the log until `shutdown` completes: catches up, then applies new events as they
    /// are appended. Failures to apply are logged and recorded in the registry (see
    /// [`status`](Self::status)) and retried with a growing delay (from the poll interval up to
    /// a minute), the other projections going on meanwhile; only a failure to start (making the
    /// projections ready, listening) is returned.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        self.ensure_ready().await?;
        let (wake, woken) = watch::channel(0u64);
        // Listening starts before the first catch-up, so no append can fall between the two.
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(EVENT_LOG_CHANNEL).await?;
        let listener_task = tokio::spawn(forward_notifications(listener, wake));

        // Each read model follows on its own: a slow or failing one delays no other.
        let (stop, stopping) = watch::channel(false);
        let followers = futures::future::join_all(
            self.projections
                .iter()
                .map(|p| self.follow(p, woken.clone(), stopping.clone())),
        );
        tokio::pin!(followers);
        tokio::select! {
            () = shutdown => {
                stop.send_replace(true);
                followers.await;
            }
            _ = &mut followers => {}
        }
        listener_task.abort();
        tracing::info!("projector runner stopped");
        Ok(())
    }

    /// Follows one projection until `stopping` turns true: catches up whenever `woken` moves or
    /// the poll interval passes; after a failure, tries again with a growing delay (from the poll
    /// interval up to a minute).
    async fn follow(
        &self,
        projection: &Arc<dyn Projection>,
        mut woken: watch::Receiver<u64>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let mut backoff: Option<(Instant, Duration)> = None;
        loop {
            if *stopping.borrow() {
                return;
            }
            if backoff.is_none_or(|(retry_at, _)| Instant::now() >= retry_at) {
                let stop_flag = stopping.clone();
                let mut stop = move || *stop_flag.borrow();
                // A first build runs for minutes without looking at `stop`: stopping drops it
                // (its generation is discarded by the next rebuild).
                let caught_up = tokio::select! {
                    caught_up = self.catch_up_one(projection, &mut stop) => caught_up,
                    _ = stopping.wait_for(|stopped| *stopped) => return,
                };
                match caught_up {
                    Ok(_) => backoff = None,
                    Err(error) => {
                        let delay = backoff.map_or(self.options.poll_interval, |(_, last)| {
                            (last * 2).min(MAX_RETRY_DELAY)
                        });
                        backoff = Some((Instant::now() + delay, delay));
                        self.report_failure(projection.name(), &error, delay).await;
                    }
                }
            }
            let pause = match backoff {
                Some((retry_at, _)) => retry_at.saturating_duration_since(Instant::now()),
                None => self.options.poll_interval,
            };
            tokio::select! {
                _ = stopping.changed() => {}
                _ = woken.changed() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn report_failure(&self, name: &str, error: &Error, retry_in: Duration) {
        tracing::error!(
            projection = name,
            error = %error,
            retry_in_ms = retry_in.as_millis() as u64,
            "applying events failed; the read model stays at its last good position"
        );
        let recorded = match self.pool.acquire().await {
            Ok(mut conn) => registry::record_failure(&mut conn, name, error).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = recorded {
            tracing::warn!(projection = name, error = %e, "could not record the failure in the registry");
        }
    }

    /// Builds every projection from position 0 up to `until_position` into `schema`, a new schema
    /// of its own (no view points at it; the live read models are untouched): the read models as
    /// they stood when the log ended at that position, for auditors. Returns the events applied.
    pub async fn replay(
        &self,
        schema: &str,
        until_position: i64,
        progress: &mut (dyn FnMut(&str, i64) + Send),
    ) -> Result<u64> {
        self.check_names()?;
        if !registry::valid_name(schema) {
            return Err(Error::InvalidName {
                name: schema.to_string(),
            });
        }
        {
            let mut tx = crate::pg::begin(&self.pool).await?;
            if registry::schema_exists(&mut tx, schema).await? {
                return Err(Error::SchemaExists {
                    schema: schema.to_string(),
                });
            }
            sqlx::query(&format!("create schema {}", crate::quote_ident(schema)))
                .execute(&mut *tx)
                .await?;
            for projection in &self.projections {
                projection.create_tables(&mut tx, schema).await?;
                registry::create_indexes(&mut tx, projection.as_ref(), schema).await?;
            }
            tx.commit().await?;
        }
        let limits = self.options.limits();
        let mut applied = 0u64;
        for projection in &self.projections {
            let mut checkpoint = 0;
            loop {
                let mut tx = crate::pg::begin(&self.pool).await?;
                let batch = log::read_batch_until(
                    &mut tx,
                    checkpoint,
                    projection.aggregate_types(),
                    limits,
                    until_position,
                )
                .await?;
                if !batch.events.is_empty() {
                    projection.apply(&mut tx, schema, &batch.events).await?;
                }
                tx.commit().await?;
                applied += batch.events.len() as u64;
                checkpoint = batch.checkpoint;
                progress(projection.name(), checkpoint);
                if batch.caught_up() {
                    break;
                }
            }
        }
        registry::analyze_schema(&mut *self.pool.acquire().await?, schema).await?;
        Ok(applied)
    }

    /// Rebuilds one projection (`Some(name)`) or all of them from position 0 into a new
    /// generation, while the live one keeps serving; then swaps it in and drops the old one.
    pub async fn rebuild(
        &self,
        name: Option<&str>,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<()> {
        self.check_names()?;
        let selected: Vec<&Arc<dyn Projection>> = match name {
            None => self.projections.iter().collect(),
            Some(name) => vec![self
                .projections
                .iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| Error::UnknownProjection {
                    name: name.to_string(),
                })?],
        };
        for projection in selected {
            self.ensure_ready_one(projection.as_ref()).await?;
            self.rebuild_one(projection, progress).await?;
        }
        Ok(())
    }

    async fn rebuild_one(
        &self,
        projection: &Arc<dyn Projection>,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<()> {
        let name = projection.name();
        // The rebuild lock is a session lock on a connection taken out of the pool: whatever
        // happens (error, panic, cancellation), dropping the connection closes it and frees the lock.
        let mut lock_conn = self.pool.acquire().await?.detach();
        if !registry::try_lock_rebuild(&mut lock_conn, name).await? {
            return Err(Error::RebuildRunning {
                name: name.to_string(),
            });
        }
        let generation = match self.start_rebuild(projection.as_ref()).await {
            Ok(generation) => generation,
            Err(e) => {
                self.close_lock_connection(lock_conn, name).await;
                return Err(e);
            }
        };
        let outcome = self.fill_and_swap(projection, generation, progress).await;
        if let Err(error) = &outcome {
            tracing::error!(projection = name, generation, error = %error, "rebuild failed; the live generation keeps serving");
            if let Err(e) = self.abandon_rebuild(name, generation).await {
                tracing::warn!(projection = name, error = %e, "could not discard the unfinished generation; the next rebuild will");
            }
        }
        self.close_lock_connection(lock_conn, name).await;
        outcome
    }

    async fn close_lock_connection(&self, mut conn: PgConnection, name: &str) {
        if let Err(e) = registry::unlock_rebuild(&mut conn, name).await {
            tracing::warn!(projection = name, error = %e, "could not release the rebuild lock; closing its connection releases it");
        }
        use sqlx::Connection;
        if let Err(e) = conn.close().await {
            tracing::debug!(projection = name, error = %e, "closing the rebuild lock connection");
        }
    }

    /// Creates the next generation (discarding one left by a rebuild that died) and records it.
    async fn start_rebuild(&self, projection: &dyn Projection) -> Result<i32> {
        let name = projection.name();
        let mut tx = crate::pg::begin(&self.pool).await?;
        registry::lock_projection(&mut tx, name).await?;
        let row = registry::registry_row_of(&mut tx, name)
            .await?
            .ok_or_else(|| Error::NotReady {
                name: name.to_string(),
            })?;
        if let Some(stale) = row.rebuild_generation {
            registry::drop_schema(&mut tx, &registry::generation_schema(name, stale)).await?;
            sqlx::query("delete from projection_rebuilds where name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tracing::info!(
                projection = name,
                generation = stale,
                "discarded the generation of a rebuild that died"
            );
        }
        let generation = row.live_generation + 1;
        let schema = registry::create_generation(
            &mut tx,
            projection,
            generation,
            registry::Indexes::AfterFilling,
        )
        .await?;
        sqlx::query(
            "insert into projection_rebuilds (name, generation, position) values ($1, $2, 0)",
        )
        .bind(name)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        sqlx::query("update projection_registry set status = 'rebuilding', updated_at = now() where name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(projection = name, generation, schema, "rebuild started");
        Ok(generation)
    }

    async fn fill_and_swap(
        &self,
        projection: &Arc<dyn Projection>,
        generation: i32,
        progress: &mut (dyn FnMut(RebuildProgress) + Send),
    ) -> Result<()> {
        let name = projection.name();
        let schema = registry::generation_schema(name, generation);
        let mut applied: u64 = 0;
        // Fill without the projection's lock: only this rebuild writes the new generation, and the
        // live one goes on being updated by the runners meanwhile. Reading the log runs a batch
        // ahead of applying, on a connection of its own: the two cost about the same.
        let start: i64 = sqlx::query_scalar(
            "select position from projection_rebuilds where name = $1 and generation = $2",
        )
        .bind(name)
        .bind(generation)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotReady {
            name: name.to_string(),
        })?;
        // Three stages, each a batch ahead of the next: reading the log, preparing the batch
        // (decoding, folding; no database), and writing it.
        let (batches, read) = tokio::sync::mpsc::channel::<Result<log::Batch>>(1);
        let reader = tokio::spawn(read_ahead(
            self.pool.clone(),
            start,
            projection.aggregate_types(),
            self.options.rebuild_limits(),
            batches,
        ));
        let (prepared_batches, mut ahead) = tokio::sync::mpsc::channel(1);
        let preparer = tokio::spawn(prepare_ahead(
            Arc::clone(projection),
            read,
            prepared_batches,
        ));
        let mut checkpoint = start;
        while let Some(prepared) = ahead.recv().await {
            let (batch, prepared) = prepared?;
            let mut tx = crate::pg::begin(&self.pool).await?;
            // The generation is not live and its checkpoint commits with its rows: a crash can
            // lose the last batches only together with their checkpoint, which the rebuild then
            // reads again. No need to wait for each commit to reach the disk.
            sqlx::query("set local synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
            if !batch.events.is_empty() {
                projection
                    .apply_prepared(&mut tx, &schema, &batch.events, prepared)
                    .await?;
            }
            let moved = sqlx::query(
                "update projection_rebuilds set position = $3, updated_at = now() \
                 where name = $1 and generation = $2 and position = $4",
            )
            .bind(name)
            .bind(generation)
            .bind(batch.checkpoint)
            .bind(checkpoint)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                // Someone else moved this rebuild's checkpoint: it is not ours any more.
                return Err(Error::RebuildRunning {
                    name: name.to_string(),
                });
            }
            tx.commit().await?;
            checkpoint = batch.checkpoint;
            applied += batch.events.len() as u64;
            progress(RebuildProgress {
                projection: name,
                generation,
                position: batch.checkpoint,
                head: batch.head,
                events_applied: applied,
                done: false,
            });
            if batch.caught_up() {
                break;
            }
        }
        drop(ahead);
        let _ = preparer.await;
        let _ = reader.await;
        registry::index_and_analyze(&self.pool, projection.as_ref(), &schema).await?;
        // The swap: under the lock (no runner is mid-batch), apply what was appended since, then
        // point the views and the registry at the new generation, all in one transaction.
        let mut attempt = 0;
        let (position, head) = loop {
            attempt += 1;
            match self
                .swap(projection.as_ref(), generation, &schema, &mut applied)
                .await
            {
                Ok(done) => break done,
                Err(Error::Database(e))
                    if is_lock_timeout(&e) && attempt < self.options.swap_attempts =>
                {
                    tracing::info!(
                        projection = name,
                        attempt,
                        "readers held the read-model views; retrying the swap"
                    );
                }
                Err(Error::Database(e)) if is_lock_timeout(&e) => {
                    return Err(Error::SwapFailed {
                        name: name.to_string(),
                        attempts: attempt,
                    });
                }
                Err(e) => return Err(e),
            }
        };
        self.drop_retired_generations(name).await;
        progress(RebuildProgress {
            projection: name,
            generation,
            position,
            head,
            events_applied: applied,
            done: true,
        });
        tracing::info!(
            projection = name,
            generation,
            position,
            "rebuilt generation is live"
        );
        Ok(())
    }

    /// Applies one batch to the generation being rebuilt and moves its checkpoint.
    /// Returns (checkpoint, head, caught up, events applied).
    async fn apply_to_rebuild(
        &self,
        conn: &mut PgConnection,
        projection: &dyn Projection,
        generation: i32,
        schema: &str,
    ) -> Result<(i64, i64, bool, u64)> {
        let name = projection.name();
        let checkpoint: i64 = sqlx::query_scalar(
            "select position from projection_rebuilds where name = $1 and generation = $2 for update",
        )
        .bind(name)
        .bind(generation)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotReady { name: name.to_string() })?;
        let batch = log::read_batch(
            &mut *conn,
            checkpoint,
            projection.aggregate_types(),
            self.options.limits(),
        )
        .await?;
        if !batch.events.is_empty() {
            projection.apply(&mut *conn, schema, &batch.events).await?;
        }
        if batch.checkpoint != checkpoint {
            sqlx::query(
                "update projection_rebuilds set position = $2, updated_at = now() where name = $1",
            )
            .bind(name)
            .bind(batch.checkpoint)
            .execute(&mut *conn)
            .await?;
        }
        Ok((
            batch.checkpoint,
            batch.head,
            batch.caught_up(),
            batch.events.len() as u64,
        ))
    }

    async fn swap(
        &self,
        projection: &dyn Projection,
        generation: i32,
        schema: &str,
        applied: &mut u64,
    ) -> Result<(i64, i64)> {
        let name = projection.name();
        let mut tx = self.begin_with_bounded_lock_waits(name).await?;
        let mut tail = 0;
        let (position, head) = loop {
            let (position, head, caught_up, count) = self
                .apply_to_rebuild(&mut tx, projection, generation, schema)
                .await?;
            tail += count;
            if caught_up {
                break (position, head);
            }
        };
        registry::point_views(&mut tx, projection, schema).await?;
        sqlx::query(
            "update projection_registry set live_generation = $2, position = $3, status = 'live', \
             last_applied_at = now(), last_error = null, last_error_at = null, updated_at = now() where name = $1",
        )
        .bind(name)
        .bind(generation)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from projection_rebuilds where name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        *applied += tail;
        Ok((position, head))
    }

    /// A transaction holding the lock of projection `name`, in which every lock wait (for that
    /// lock, or for readers of the views) gives up after `swap_lock_timeout`: readers running
    /// long queries on the views must not stall the read models, so past this wait the caller
    /// gives up and tries again later.
    async fn begin_with_bounded_lock_waits(
        &self,
        name: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = crate::pg::begin(&self.pool).await?;
        sqlx::query(&format!(
            "set local lock_timeout = {}",
            self.options.swap_lock_timeout.as_millis()
        ))
        .execute(&mut *tx)
        .await?;
        registry::lock_projection(&mut tx, name).await?;
        Ok(tx)
    }

    /// Drops the generations of `name` that are neither live nor being rebuilt (the one a swap
    /// retired, or one left behind by an interrupted swap). Waits a bounded time for readers
    /// still using them; what it cannot drop now is dropped by a later call.
    async fn drop_retired_generations(&self, name: &str) {
        let result: Result<()> = async {
            let mut tx = self.begin_with_bounded_lock_waits(name).await?;
            for schema in registry::orphan_generations(&mut tx, name).await? {
                registry::drop_schema(&mut tx, &schema).await?;
                tracing::info!(projection = name, schema, "dropped a retired generation");
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(projection = name, error = %e, "could not drop a retired generation yet; it will be dropped later");
        }
    }

    /// Discards the generation of a failed rebuild; the live generation was never touched.
    async fn abandon_rebuild(&self, name: &str, generation: i32) -> Result<()> {
        let mut tx = crate::pg::begin(&self.pool).await?;
        registry::lock_projection(&mut tx, name).await?;
        registry::drop_schema(&mut tx, &registry::generation_schema(name, generation)).await?;
        sqlx::query("delete from projection_rebuilds where name = $1 and generation = $2")
            .bind(name)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "update projection_registry set status = 'live', updated_at = now() where name = $1",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Each projection's live generation, checkpoint, lag behind the log head, last apply time,
    /// last failure and rebuild in progress.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>> {
        self.check_names()?;
        let mut conn = self.pool.acquire().await?;
        let head = log::head(&mut conn).await?;
        let mut statuses = Vec::with_capacity(self.projections.len());
        for projection in &self.projections {
            let name = projection.name();
            let status = match registry::registry_row_of(&mut conn, name).await? {
                None => ProjectionStatus {
                    name: name.to_string(),
                    state: ProjectionState::NotStarted,
                    live_generation: 0,
                    position: 0,
                    head,
                    lag: head,
                    last_applied_at: None,
                    last_error: None,
                    rebuild: None,
                },
                Some(row) => {
                    let rebuild = match (row.rebuild_generation, row.rebuild_position) {
                        (Some(generation), Some(position)) => Some(RebuildStatus {
                            generation,
                            position,
                            running: registry::rebuild_running(&mut conn, name).await?,
                        }),
                        _ => None,
                    };
                    ProjectionStatus {
                        state: if row.status == "rebuilding" {
                            ProjectionState::Rebuilding
                        } else {
                            ProjectionState::Live
                        },
                        live_generation: row.live_generation,
                        position: row.position,
                        head,
                        lag: (head - row.position).max(0),
                        last_applied_at: row.last_applied_at,
                        last_error: row.last_error,
                        rebuild,
                        name: row.name,
                    }
                }
            };
            statuses.push(status);
        }
        Ok(statuses)
    }
}

/// Wakes the runner for every notification on the log channel (`Notify` keeps one pending
/// wake-up, so a burst of appends costs one catch-up). A lost connection also wakes it, since
/// notifications sent while it was down are gone.
/// Reads the log from `checkpoint` in batches of `limits` and hands them over until one reaches
/// the head (or the receiver goes).
async fn read_ahead(
    pool: PgPool,
    mut checkpoint: i64,
    aggregate_types: Option<&'static [&'static str]>,
    limits: BatchLimits,
    batches: tokio::sync::mpsc::Sender<Result<log::Batch>>,
) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = batches.send(Err(e.into())).await;
            return;
        }
    };
    // The first batches are small and grow to the full size: the later stages start on the
    // first one as soon as it is read, instead of waiting for a full batch to be read and prepared.
    let mut events = (limits.events / 16).max(1);
    loop {
        let ramped = BatchLimits { events, ..limits };
        events = (events * 2).min(limits.events);
        let batch = log::read_batch(&mut conn, checkpoint, aggregate_types, ramped).await;
        let (done, next) = match &batch {
            Ok(batch) => (batch.caught_up(), batch.checkpoint),
            Err(_) => (true, checkpoint),
        };
        if batches.send(batch).await.is_err() || done {
            return;
        }
        checkpoint = next;
    }
}

/// A batch of the log with what the projection prepared of it.
type PreparedBatch = (log::Batch, Option<Prepared>);

/// Prepares each batch `read` hands over (on the blocking pool: it is CPU work) and passes it on,
/// until the reader stops or the receiver goes.
async fn prepare_ahead(
    projection: Arc<dyn Projection>,
    mut read: tokio::sync::mpsc::Receiver<Result<log::Batch>>,
    prepared: tokio::sync::mpsc::Sender<Result<PreparedBatch>>,
) {
    while let Some(batch) = read.recv().await {
        let outcome = match batch {
            Ok(batch) if batch.events.is_empty() => Ok((batch, None)),
            Ok(batch) => {
                let preparing = Arc::clone(&projection);
                tokio::task::spawn_blocking(move || {
                    let ready = preparing.prepare(&batch.events)?;
                    Ok((batch, ready))
                })
                .await
                .unwrap_or_else(|e| {
                    Err(Error::PrepareFailed {
                        name: projection.name().to_string(),
                        reason: e.to_string(),
                    })
                })
            }
            Err(e) => Err(e),
        };
        let failed = outcome.is_err();
        if prepared.send(outcome).await.is_err() || failed {
            return;
        }
    }
}

async fn forward_notifications(mut listener: PgListener, wake: watch::Sender<u64>) {
    let ring = || wake.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => ring(),
            Ok(None) => {
                tracing::info!("event log listener reconnected");
                ring();
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "event log listener failed; the safety poll covers the gap");
                tokio::time::sleep(Duration::from_secs(1)).await;
                ring();
            }
        }
    }
}

fn is_lock_timeout(e: &sqlx::Error) -> bool {
    // 55P03: lock_not_available, raised when lock_timeout expires.
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}
