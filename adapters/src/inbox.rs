//! The durable inbox of WhatsApp webhook deliveries over PostgreSQL (`whatsapp_inbox`,
//! `whatsapp_seen_messages`; see the migration for the reasoning): [`PgWebhookInbox`], the
//! implementation of [`WebhookInbox`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use domain::inbox::{NewDelivery, PendingDelivery, StoredDelivery, WebhookInbox};

use crate::{Error, Result};

/// The inbox in the ccare database.
#[derive(Debug, Clone)]
pub struct PgWebhookInbox {
    pool: PgPool,
}

impl PgWebhookInbox {
    pub fn new(pool: PgPool) -> Self {
        PgWebhookInbox { pool }
    }

    /// Gives the deliveries that failed `max_attempts` times or more a fresh set of attempts (an
    /// operator's replay once the cause is fixed). Returns how many.
    pub async fn replay_left(&self, max_attempts: i32) -> Result<u64> {
        Ok(sqlx::query(
            "update whatsapp_inbox set attempts = 0
             where processed_at is null and attempts >= $1",
        )
        .bind(max_attempts)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn insert(&self, delivery: &NewDelivery) -> Result<StoredDelivery> {
        let mut tx = crate::postgres::begin(&self.pool).await?;
        let id: i64 = sqlx::query_scalar(
            "insert into whatsapp_inbox (received_at, body, message_ids) values ($1, $2, $3)
             returning id",
        )
        .bind(delivery.received_at)
        .bind(&delivery.body)
        .bind(&delivery.message_ids)
        .fetch_one(&mut *tx)
        .await?;
        // A concurrent delivery of the same message waits here on the primary key until the
        // first commits, then finds it: a message id belongs to exactly one delivery.
        let new_ids = sqlx::query(
            "insert into whatsapp_seen_messages (message_id, inbox_id, first_seen_at)
             select distinct message_id, $2::bigint, $3::timestamptz from unnest($1::text[]) as ids (message_id)
             on conflict (message_id) do nothing",
        )
        .bind(&delivery.message_ids)
        .bind(id)
        .bind(delivery.received_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(StoredDelivery {
            id,
            redelivery: !delivery.message_ids.is_empty() && new_ids == 0,
        })
    }

    async fn pending(
        &self,
        after: i64,
        limit: u32,
        max_attempts: i32,
    ) -> Result<Vec<PendingDelivery>> {
        let rows: Vec<PendingRow> = sqlx::query_as(
            "select i.id, i.received_at, i.body, i.message_ids, i.attempts, i.last_error,
                    array(select s.message_id::text from whatsapp_seen_messages s
                          where s.inbox_id = i.id) as first_carried
             from whatsapp_inbox i
             where i.processed_at is null and i.id > $1 and i.attempts < $3
             order by i.id limit $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .bind(max_attempts)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| PendingDelivery {
                id: row.id,
                received_at: row.received_at,
                body: row.body,
                message_ids: row.message_ids,
                first_carried: row.first_carried,
                attempts: row.attempts,
                last_error: row.last_error,
            })
            .collect())
    }

    async fn processed(&self, id: i64) -> Result<()> {
        // The first time counts: marking a delivery again keeps when it was processed.
        let found = sqlx::query(
            "update whatsapp_inbox set processed_at = coalesce(processed_at, now()) where id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if found == 0 {
            return Err(no_such_delivery(id));
        }
        Ok(())
    }

    async fn failed(&self, id: i64, reason: &str) -> Result<()> {
        let marked = sqlx::query(
            "update whatsapp_inbox set attempts = attempts + 1, last_error = $2
             where id = $1 and processed_at is null",
        )
        .bind(id)
        .bind(reason)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if marked == 1 {
            return Ok(());
        }
        let exists: bool =
            sqlx::query_scalar("select exists (select from whatsapp_inbox where id = $1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Err(if exists {
            Error::Store(format!(
                "whatsapp inbox: delivery {id} is already processed; a failure cannot be recorded for it"
            ))
        } else {
            no_such_delivery(id)
        })
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    received_at: DateTime<Utc>,
    body: Vec<u8>,
    message_ids: Vec<String>,
    first_carried: Vec<String>,
    attempts: i32,
    last_error: Option<String>,
}

fn no_such_delivery(id: i64) -> Error {
    Error::Store(format!("whatsapp inbox: there is no delivery {id}"))
}

#[async_trait]
impl WebhookInbox for PgWebhookInbox {
    async fn store(&self, delivery: NewDelivery) -> std::result::Result<StoredDelivery, String> {
        // On a task of its own, as commands run: Meta hanging up must not abandon a statement
        // half-way, which can leave a pooled connection out of step with the server.
        let inbox = self.clone();
        tokio::spawn(async move { inbox.insert(&delivery).await })
            .await
            .map_err(|e| format!("the inbox task failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    async fn next_unprocessed(
        &self,
        after: i64,
        limit: u32,
        max_attempts: i32,
    ) -> std::result::Result<Vec<PendingDelivery>, String> {
        self.pending(after, limit, max_attempts)
            .await
            .map_err(|e| e.to_string())
    }

    async fn mark_processed(&self, id: i64) -> std::result::Result<(), String> {
        self.processed(id).await.map_err(|e| e.to_string())
    }

    async fn mark_failed(&self, id: i64, reason: &str) -> std::result::Result<(), String> {
        self.failed(id, reason).await.map_err(|e| e.to_string())
    }
}
