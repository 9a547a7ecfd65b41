//! [`ReadModels`]: the read side as the api crate sees it, without SQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use sqlx::PgPool;

use crate::conversations::{self, ConversationSummary, Message, Party};
use crate::customers::{self, Customer};
use crate::error::{Error, Result};
use crate::log;
use crate::mutations::{self, Mutation, MutationFilter};
use crate::tariffs::{self, Entry, HistoryFilter, HistoryRow};
use crate::tickets::{
    self, ActiveGroup, TicketActivity, TicketDetail, TicketFilter, TicketRow, TicketSort,
};
use crate::users::{self, User};
use domain::tariff::{TariffSchedule, TariffScope};
use rust_decimal::Decimal;

/// The notification channel on which the runner announces `<projection>:<position>` each time a
/// read model's checkpoint moves.
pub const READ_MODEL_CHANNEL: &str = "ccare_read_model";

/// A cheap, cloneable handle on the read models (it wraps the connection pool).
#[derive(Debug, Clone)]
pub struct ReadModels {
    pool: PgPool,
    progress: Arc<Progress>,
    /// Answers of [`user_for_token`](Self::user_for_token), valid while `users` stays at the
    /// checkpoint they were read at: every request checks its token, and this keeps that off
    /// the database.
    tokens: Arc<Mutex<HashMap<(String, String), TokenLookup>>>,
}

/// How stale [`ReadModels::position`] may be when notifications are lost (a reconnect).
const POSITION_REFRESH: Duration = Duration::from_secs(1);

/// The most `(user, token)` lookups kept; past it the cache starts again.
const TOKEN_CACHE_ENTRIES: usize = 10_000;

/// The latest checkpoint announced per read model, fed by one listener per process.
#[derive(Debug, Default)]
struct Progress {
    positions: Mutex<HashMap<String, watch::Sender<i64>>>,
    listening: std::sync::OnceLock<()>,
    /// When the positions were last read from the registry.
    refreshed_at: Mutex<Option<std::time::Instant>>,
}

/// A `user_for_token` answer and the `users` checkpoint it was read at.
type TokenLookup = (i64, Option<(User, bool)>);

impl Progress {
    fn subscribe(&self, projection: &str) -> watch::Receiver<i64> {
        let mut positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        positions
            .entry(projection.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn announce(&self, projection: &str, position: i64) {
        let mut positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        positions
            .entry(projection.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .send_if_modified(|seen| {
                let moved = position > *seen;
                *seen = (*seen).max(position);
                moved
            });
    }

    fn announced(&self, projection: &str) -> i64 {
        let positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        positions
            .get(projection)
            .map_or(0, |sender| *sender.borrow())
    }

    /// Reads every checkpoint from the registry when the last read is older than
    /// [`POSITION_REFRESH`] (one caller does it; the others go on with what is announced).
    async fn refresh_if_due(&self, pool: &PgPool) -> Result<()> {
        let due = {
            let mut refreshed = self.refreshed_at.lock().unwrap_or_else(|p| p.into_inner());
            let due = refreshed.is_none_or(|at| at.elapsed() >= POSITION_REFRESH);
            if due {
                *refreshed = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("select name, position from projection_registry")
                    .fetch_all(pool)
                    .await?;
            for (name, position) in rows {
                self.announce(&name, position);
            }
        }
        Ok(())
    }

    /// Announces every notification until the connection fails.
    async fn follow(&self, pool: &PgPool) -> Result<std::convert::Infallible, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(READ_MODEL_CHANNEL).await?;
        loop {
            let note = listener.recv().await?;
            if let Some((name, position)) = note.payload().rsplit_once(':') {
                if let Ok(position) = position.parse() {
                    self.announce(name, position);
                }
            }
        }
    }

    /// Starts (once) the task that turns notifications into announcements. Waiters also look at
    /// the registry on a short timer, so a notification lost to a reconnect only delays them.
    fn listen(self: &Arc<Self>, pool: &PgPool) {
        let progress = Arc::clone(self);
        let pool = pool.clone();
        self.listening.get_or_init(move || {
            tokio::spawn(async move {
                loop {
                    let Err(e) = progress.follow(&pool).await;
                    if pool.is_closed() {
                        return;
                    }
                    tracing::debug!(error = %e, "read-model notifications interrupted; listening again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        });
    }
}

/// What `/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The position of the last event in the global log.
    pub event_log_head: i64,
    /// Customers in the `customers` read model.
    pub customer_count: i64,
}

impl ReadModels {
    /// The read models reached through `pool`.
    pub fn new(pool: PgPool) -> Self {
        ReadModels {
            pool,
            progress: Arc::new(Progress::default()),
            tokens: Arc::default(),
        }
    }

    /// The pool underneath, for wiring (the binary shares it with the runner).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// See [`customers::customer_by_id`].
    pub async fn customer_by_id(&self, customer_id: i64) -> Result<Option<Customer>> {
        customers::customer_by_id(&self.pool, customer_id).await
    }

    /// See [`customers::customers_by_phone`].
    pub async fn customers_by_phone(&self, phone: &PhoneNumber) -> Result<Vec<Customer>> {
        customers::customers_by_phone(&self.pool, phone).await
    }

    /// See [`customers::customers_by_account`].
    pub async fn customers_by_account(&self, account: &str) -> Result<Vec<Customer>> {
        customers::customers_by_account(&self.pool, account).await
    }

    /// See [`customers::search`].
    pub async fn search_customers(&self, query: &str, limit: i64) -> Result<Vec<Customer>> {
        customers::search(&self.pool, query, limit).await
    }

    /// See [`customers::meters_of`].
    pub async fn meters_of_customer(
        &self,
        customer_id: i64,
    ) -> Result<Vec<customers::CustomerMeter>> {
        customers::meters_of(&self.pool, customer_id).await
    }

    /// See [`customers::page`].
    pub async fn customer_page(
        &self,
        query: Option<&str>,
        site: Option<&SiteCode>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Customer>, i64)> {
        customers::page(&self.pool, query, site, limit, offset).await
    }

    /// See [`customers::customer_count`].
    pub async fn customer_count(&self) -> Result<i64> {
        customers::customer_count(&self.pool).await
    }

    /// See [`customers::sites`].
    pub async fn sites(&self) -> Result<Vec<(String, i64)>> {
        customers::sites(&self.pool).await
    }

    /// See [`customers::account_numbers`].
    pub async fn account_numbers(&self, customer_id: i64) -> Result<Vec<String>> {
        customers::account_numbers(&self.pool, customer_id).await
    }

    /// The log head and the customer count; an error means the database cannot answer.
    pub async fn health(&self) -> Result<Health> {
        // The connection goes back to the pool before the count takes one: a health check
        // never holds two.
        let event_log_head = log::head(&mut *self.pool.acquire().await?).await?;
        let customer_count = customers::customer_count(&self.pool).await?;
        Ok(Health {
            event_log_head,
            customer_count,
        })
    }

    /// See [`users::user_by_key`].
    pub async fn user(&self, key: &str) -> Result<Option<User>> {
        users::user_by_key(&self.pool, key).await
    }

    /// The checkpoint of read model `projection` as this process knows it: announced by the
    /// runner's notifications, and read from the registry at least every second (so at most
    /// that stale when a notification is lost). A command's answer that waited for a position
    /// ([`wait_until_applied`](Self::wait_until_applied)) is always reflected here. Answers
    /// cached under a position are current while it stays.
    pub async fn position(&self, projection: &str) -> Result<i64> {
        self.progress.listen(&self.pool);
        self.progress.refresh_if_due(&self.pool).await?;
        Ok(self.progress.announced(projection))
    }

    /// See [`users::user_for_token`]; answered from memory while the `users` read model has not
    /// moved since the same question was last asked.
    pub async fn user_for_token(&self, key: &str, token_id: &str) -> Result<Option<(User, bool)>> {
        let position = self.position(users::NAME).await?;
        let cache_key = (key.to_string(), token_id.to_string());
        {
            let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, answer)) = tokens.get(&cache_key) {
                if *at == position {
                    return Ok(answer.clone());
                }
            }
        }
        // Read after the position: the answer is at least as new as the position it is kept
        // under, so it is never newer than what invalidates it.
        let answer = users::user_for_token(&self.pool, key, token_id).await?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= TOKEN_CACHE_ENTRIES {
            tokens.clear();
        }
        tokens.insert(cache_key, (position, answer.clone()));
        Ok(answer)
    }

    /// See [`users::employees`].
    pub async fn employees(&self) -> Result<Vec<User>> {
        users::employees(&self.pool).await
    }

    /// See [`mutations::list`].
    pub async fn mutations(
        &self,
        filter: &MutationFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Mutation>, i64)> {
        mutations::list(&self.pool, filter, limit, offset).await
    }

    /// See [`mutations::page_after`].
    pub async fn mutations_after(
        &self,
        filter: &MutationFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Mutation>> {
        mutations::page_after(&self.pool, filter, after, limit).await
    }

    /// See [`mutations::by_id`].
    pub async fn mutation(&self, id: i64) -> Result<Option<Mutation>> {
        mutations::by_id(&self.pool, id).await
    }

    /// See [`mutations::latest_of_record`].
    pub async fn latest_mutation_of(&self, table: &str, record_id: &str) -> Result<Option<i64>> {
        mutations::latest_of_record(&self.pool, table, record_id).await
    }

    /// See [`tariffs::entries`].
    pub async fn tariff_entries(&self, scope: &str) -> Result<Vec<Entry>> {
        tariffs::entries(&self.pool, scope).await
    }

    /// See [`tariffs::schedule`].
    pub async fn tariff_schedule(&self, scope: &TariffScope) -> Result<TariffSchedule> {
        tariffs::schedule(&self.pool, scope).await
    }

    /// See [`tariffs::global_rate`].
    pub async fn global_rate(&self) -> Result<Option<(Decimal, chrono::NaiveDateTime)>> {
        tariffs::global_rate(&self.pool).await
    }

    /// See [`tariffs::global_rate_at`].
    pub async fn global_rate_at(
        &self,
        at: chrono::NaiveDateTime,
        now: chrono::NaiveDateTime,
    ) -> Result<Option<(Decimal, Option<chrono::NaiveDateTime>)>> {
        tariffs::global_rate_at(&self.pool, at, now).await
    }

    /// See [`tariffs::global_rate_row`].
    pub async fn global_rate_row(&self) -> Result<Option<String>> {
        tariffs::global_rate_row(&self.pool).await
    }

    /// See [`tariffs::history`].
    pub async fn tariff_history(
        &self,
        filter: &HistoryFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<HistoryRow>, i64)> {
        tariffs::history(&self.pool, filter, limit, offset).await
    }

    /// See [`crate::history::record_changes`].
    pub async fn record_changes(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::history::RecordChange>> {
        crate::history::record_changes(&self.pool, aggregate_type, aggregate_id, until).await
    }

    /// See [`tickets::list`].
    pub async fn tickets(
        &self,
        filter: &TicketFilter,
        sort: TicketSort,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TicketRow>, i64)> {
        tickets::list(&self.pool, filter, sort, limit, offset).await
    }

    /// See [`tickets::detail`].
    pub async fn ticket(&self, number: &str, message_limit: i64) -> Result<Option<TicketDetail>> {
        tickets::detail(&self.pool, number, message_limit).await
    }

    /// See [`tickets::by_number`].
    pub async fn ticket_row(&self, number: &str) -> Result<Option<TicketRow>> {
        tickets::by_number(&self.pool, number).await
    }

    /// See [`tickets::activity_at`].
    pub async fn ticket_activity_at(&self, position: i64) -> Result<Option<TicketActivity>> {
        tickets::activity_at(&self.pool, position).await
    }

    /// See [`tickets::active_summary`].
    pub async fn active_tickets(&self) -> Result<Vec<ActiveGroup>> {
        tickets::active_summary(&self.pool).await
    }

    /// See [`conversations::conversations_of`].
    pub async fn conversations(&self, party: &Party) -> Result<Vec<ConversationSummary>> {
        conversations::conversations_of(&self.pool, party).await
    }

    /// See [`conversations::history`].
    pub async fn conversation_history(
        &self,
        party: &Party,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Message>, i64)> {
        conversations::history(&self.pool, party, limit, offset).await
    }

    /// Waits until the read model `projection` has applied every event up to `position`, so a
    /// command's answer can promise that what it changed is visible (read your writes).
    /// Fails with [`Error::NotCaughtUp`] after `timeout`: the command took effect, the read
    /// model just lags (is the projector running?).
    pub async fn wait_until_applied(
        &self,
        projection: &'static str,
        position: i64,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.progress.listen(&self.pool);
        // Subscribed before the registry is read: an announcement in between is not missed.
        let mut announced = self.progress.subscribe(projection);
        loop {
            if *announced.borrow_and_update() < position {
                let applied: Option<i64> =
                    sqlx::query_scalar("select position from projection_registry where name = $1")
                        .bind(projection)
                        .fetch_optional(&self.pool)
                        .await?;
                if let Some(applied) = applied.filter(|applied| *applied >= position) {
                    // Whoever acts on this answer next must see the position it promises.
                    self.progress.announce(projection, applied);
                    return Ok(());
                }
            } else {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Error::NotCaughtUp {
                    name: projection.to_string(),
                    position,
                });
            }
            let fallback = (deadline - now).min(Duration::from_millis(100));
            tokio::select! {
                _ = announced.changed() => {}
                () = tokio::time::sleep(fallback) => {}
            }
        }
    }
}
