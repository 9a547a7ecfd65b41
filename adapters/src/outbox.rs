//! The bridge's outbox over PostgreSQL (`bridge_outbox`; see the migration): [`PgOutbox`], the
//! implementation of [`Outbox`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use domain::outbox::{NewOutboxItem, Outbox, OutboxChannel, OutboxItem};

use crate::{Error, Result};

/// The outbox in the ccare database.
#[derive(Debug, Clone)]
pub struct PgOutbox {
    pool: PgPool,
}

impl PgOutbox {
    pub fn new(pool: PgPool) -> Self {
        PgOutbox { pool }
    }

    async fn insert(&self, item: &NewOutboxItem) -> Result<bool> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        // Items to one recipient are queued one after the other, so the spacing is computed from
        // the previous one's time without a race.
        sqlx::query("select pg_advisory_xact_lock(hashtextextended('bridge_outbox:' || $1, 0))")
            .bind(&item.recipient)
            .execute(&mut *tx)
            .await?;
        let spacing_ms = item.spacing.num_milliseconds().max(0);
        let queued = sqlx::query(
            "insert into bridge_outbox (channel, key, recipient, payload, not_before)
             select $1, $2, $3, $4::jsonb,
                    greatest($5::timestamptz,
                             (select max(not_before) from bridge_outbox
                              where channel = $1 and recipient = $3)
                             + make_interval(secs => $6::double precision / 1000))
             on conflict (key) do nothing",
        )
        .bind(item.channel.as_str())
        .bind(&item.key)
        .bind(&item.recipient)
        .bind(&item.payload)
        .bind(item.not_before)
        .bind(spacing_ms as f64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(queued == 1)
    }

    async fn due_items(
        &self,
        channel: OutboxChannel,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>> {
        let rows: Vec<ItemRow> = sqlx::query_as(
            "select id, key, recipient, payload::text as payload, queued_at, not_before, attempts, last_error
             from (select distinct on (recipient) *
                   from bridge_outbox
                   where channel = $1 and done_at is null
                   order by recipient, id) as first_per_recipient
             where not_before <= $2
             order by not_before, id
             limit $3",
        )
        .bind(channel.as_str())
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| row.into_item(channel)).collect())
    }

    async fn by_outcome(
        &self,
        channel: OutboxChannel,
        outcome: &str,
    ) -> Result<Option<OutboxItem>> {
        let row: Option<ItemRow> = sqlx::query_as(
            "select id, key, recipient, payload::text as payload, queued_at, not_before, attempts, last_error
             from bridge_outbox
             where channel = $1 and outcome = $2 and done_at is not null and not gave_up
             order by id desc limit 1",
        )
        .bind(channel.as_str())
        .bind(outcome)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.into_item(channel)))
    }

    async fn finish(&self, id: i64, outcome: Option<&str>, error: Option<&str>) -> Result<()> {
        let updated = sqlx::query(
            "update bridge_outbox
             set done_at = now(), outcome = $2, gave_up = $3,
                 last_error = coalesce($4, last_error),
                 attempts = attempts + case when $3 then 1 else 0 end
             where id = $1 and done_at is null",
        )
        .bind(id)
        .bind(outcome)
        .bind(error.is_some())
        .bind(error)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.found(id, updated).await
    }

    async fn again_at(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<()> {
        let updated = sqlx::query(
            "update bridge_outbox set attempts = attempts + 1, last_error = $3, not_before = $2
             where id = $1 and done_at is null",
        )
        .bind(id)
        .bind(at)
        .bind(error)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.found(id, updated).await
    }

    async fn found(&self, id: i64, updated: u64) -> Result<()> {
        if updated == 1 {
            return Ok(());
        }
        let exists: bool =
            sqlx::query_scalar("select exists (select from bridge_outbox where id = $1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Err(Error::Store(if exists {
            format!("bridge outbox: item {id} is already done")
        } else {
            format!("bridge outbox: there is no item {id}")
        }))
    }
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    key: String,
    recipient: String,
    payload: String,
    queued_at: DateTime<Utc>,
    not_before: DateTime<Utc>,
    attempts: i32,
    last_error: Option<String>,
}

impl ItemRow {
    fn into_item(self, channel: OutboxChannel) -> OutboxItem {
        OutboxItem {
            id: self.id,
            channel,
            key: self.key,
            recipient: self.recipient,
            payload: self.payload,
            queued_at: self.queued_at,
            not_before: self.not_before,
            attempts: self.attempts,
            last_error: self.last_error,
        }
    }
}

#[async_trait]
impl Outbox for PgOutbox {
    async fn enqueue(&self, item: NewOutboxItem) -> std::result::Result<bool, String> {
        // On a task of its own: a caller going away must not leave a statement half-way.
        let outbox = self.clone();
        tokio::spawn(async move { outbox.insert(&item).await })
            .await
            .map_err(|e| format!("the outbox task failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    async fn due(
        &self,
        channel: OutboxChannel,
        now: DateTime<Utc>,
        limit: u32,
    ) -> std::result::Result<Vec<OutboxItem>, String> {
        self.due_items(channel, now, limit)
            .await
            .map_err(|e| e.to_string())
    }

    async fn complete(&self, id: i64, outcome: &str) -> std::result::Result<(), String> {
        self.finish(id, Some(outcome), None)
            .await
            .map_err(|e| e.to_string())
    }

    async fn retry(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> std::result::Result<(), String> {
        self.again_at(id, at, error)
            .await
            .map_err(|e| e.to_string())
    }

    async fn sent_as(
        &self,
        channel: OutboxChannel,
        outcome: &str,
    ) -> std::result::Result<Option<OutboxItem>, String> {
        self.by_outcome(channel, outcome)
            .await
            .map_err(|e| e.to_string())
    }

    async fn give_up(&self, id: i64, error: &str) -> std::result::Result<(), String> {
        self.finish(id, None, Some(error))
            .await
            .map_err(|e| e.to_string())
    }
}

/// The bridge's queues as `ccare status` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BridgeStatus {
    /// Webhook deliveries stored and not processed yet.
    pub inbox_waiting: i64,
    /// Of those, deliveries whose processing failed at least once (still tried).
    pub inbox_failing: i64,
    /// Deliveries that failed as often as the worker tries: left for a replay.
    pub inbox_left: i64,
    /// Per outbox channel.
    pub outbox: Vec<OutboxStatus>,
}

/// One outbox channel's items.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct OutboxStatus {
    pub channel: String,
    pub pending: i64,
    /// Of those, items that failed at least once and wait for their next attempt.
    pub retrying: i64,
    pub given_up: i64,
    pub sent: i64,
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// The bridge's queues; `max_attempts` is the worker's limit of tries per delivery.
pub async fn bridge_status(pool: &PgPool, max_attempts: i32) -> Result<BridgeStatus> {
    let (inbox_waiting, inbox_failing, inbox_left): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where attempts < $1),
                count(*) filter (where attempts > 0 and attempts < $1),
                count(*) filter (where attempts >= $1)
         from whatsapp_inbox where processed_at is null",
    )
    .bind(max_attempts)
    .fetch_one(pool)
    .await?;
    let outbox = sqlx::query_as(
        "select channel::text as channel,
                count(*) filter (where done_at is null) as pending,
                count(*) filter (where done_at is null and attempts > 0) as retrying,
                count(*) filter (where gave_up) as given_up,
                count(*) filter (where done_at is not null and not gave_up) as sent,
                min(queued_at) filter (where done_at is null) as oldest_pending
         from bridge_outbox group by channel order by channel",
    )
    .fetch_all(pool)
    .await?;
    Ok(BridgeStatus {
        inbox_waiting,
        inbox_failing,
        inbox_left,
        outbox,
    })
}
