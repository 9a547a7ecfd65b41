//! Commands on the aggregates ccare owns (users, tariff schedules, tickets and their number
//! series, WhatsApp conversations), through
//! cqrs-es and postgres-es. postgres-es writes the `events` view, so these events join the same
//! global log, hash chain and notifications as the captured ones.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use sqlx::PgPool;

use domain::auth::{Credentials, UserAccount, UserCommand, UserError};
use domain::command::{
    CommandContext, CommandError, Committed, ConversationCommands, TariffCommands, TicketCommands,
    UserCommands,
};
use domain::conversation::{Conversation, ConversationCommand, ConversationError};
use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use domain::tariff::{TariffCommand, TariffError, TariffSchedule, TariffScope};
use domain::ticket::{
    series_id, SeriesCommand, SeriesError, Ticket, TicketCommand, TicketError, TicketNumber,
    TicketSeries,
};

/// How often a command that lost an optimistic-concurrency race is tried again.
const CONFLICT_RETRIES: usize = 3;

/// Runs commands of aggregate `A` with postgres-es.
pub struct Executor<A: Aggregate> {
    pool: PgPool,
    cqrs: Arc<PostgresCqrs<A>>,
}

impl<A> Executor<A>
where
    A: Aggregate + 'static,
    A::Command: Clone + Send + 'static,
    A::Error: Clone + Send + 'static,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        Executor {
            cqrs: Arc::new(postgres_es::postgres_cqrs(pool.clone(), vec![], services)),
            pool,
        }
    }

    /// Runs `command` on aggregate `id` with the envelope of `context`, on a task of its own:
    /// a caller that goes away (an HTTP client hanging up) cannot stop a command half-way.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<A::Error>> {
        let metadata: HashMap<String, String> = context.metadata().into_iter().collect();
        let cqrs = self.cqrs.clone();
        let pool = self.pool.clone();
        let id = id.to_string();
        let task = tokio::spawn(async move {
            let before = last_position(&pool, A::TYPE, &id).await?;
            let mut attempt = 0;
            loop {
                match cqrs
                    .execute_with_metadata(&id, command.clone(), metadata.clone())
                    .await
                {
                    Ok(()) => break,
                    Err(AggregateError::AggregateConflict) if attempt < CONFLICT_RETRIES => {
                        attempt += 1;
                    }
                    Err(error) => return Err(map_error(error)),
                }
            }
            let after = last_position(&pool, A::TYPE, &id).await?;
            Ok(Committed {
                position: after.filter(|after| Some(*after) != before),
            })
        });
        task.await
            .map_err(|e| CommandError::Unavailable(format!("the command task failed: {e}")))?
    }
}

impl<A> Executor<A>
where
    A: Aggregate + 'static,
{
    /// Aggregate `id` as its stored events leave it (the default state when it has none).
    pub async fn load(&self, id: &str) -> Result<A, CommandError<A::Error>> {
        let store: PersistedEventStore<PostgresEventRepository, A> =
            PersistedEventStore::new_event_store(PostgresEventRepository::new(self.pool.clone()));
        let mut context = store.load_aggregate(id).await.map_err(map_error)?;
        Ok(std::mem::take(context.aggregate()))
    }
}

async fn last_position<E>(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
) -> Result<Option<i64>, CommandError<E>> {
    sqlx::query_scalar(
        "select max(position) from event_log where aggregate_type = $1 and aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_one(pool)
    .await
    .map_err(|e| CommandError::Unavailable(e.to_string()))
}

fn map_error<E: std::error::Error>(error: AggregateError<E>) -> CommandError<E> {
    match error {
        AggregateError::UserError(e) => CommandError::Rejected(e),
        AggregateError::AggregateConflict => CommandError::Conflict,
        AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
        AggregateError::DeserializationError(e) => {
            CommandError::Unavailable(format!("a stored event cannot be read: {e}"))
        }
        AggregateError::UnexpectedError(e) => CommandError::Unavailable(e.to_string()),
    }
}

/// The user accounts, on postgres-es.
pub struct UserAccounts(Executor<UserAccount>);

impl UserAccounts {
    pub fn new(pool: PgPool, credentials: Arc<dyn Credentials>) -> Self {
        UserAccounts(Executor::new(pool, credentials))
    }
}

#[async_trait]
impl UserCommands for UserAccounts {
    async fn execute(
        &self,
        user_key: &str,
        command: UserCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<UserError>> {
        self.0.execute(user_key, command, context).await
    }
}

/// The tariff schedules, on postgres-es.
pub struct TariffSchedules(Executor<TariffSchedule>);

impl TariffSchedules {
    pub fn new(pool: PgPool) -> Self {
        TariffSchedules(Executor::new(pool, ()))
    }
}

#[async_trait]
impl TariffCommands for TariffSchedules {
    async fn execute(
        &self,
        scope: &TariffScope,
        command: TariffCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<TariffError>> {
        self.0
            .execute(&scope.aggregate_id(), command, context)
            .await
    }
}

/// Tickets and the series their numbers come from, on postgres-es.
pub struct Tickets {
    tickets: Executor<Ticket>,
    series: Executor<TicketSeries>,
    /// Allocations in this process take turns: concurrent ones would all load the same series
    /// and all but one lose the optimistic-concurrency race, again and again under a burst (an
    /// outage reported by a whole village). Other processes still race, and retry.
    allocating: tokio::sync::Mutex<()>,
}

impl Tickets {
    pub fn new(pool: PgPool) -> Self {
        Tickets {
            tickets: Executor::new(pool.clone(), ()),
            series: Executor::new(pool, ()),
            allocating: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait]
impl TicketCommands for Tickets {
    async fn allocate_number(
        &self,
        site: &SiteCode,
        year: i32,
        for_ref: &str,
        context: &CommandContext,
    ) -> Result<TicketNumber, CommandError<SeriesError>> {
        let id = series_id(site.as_str(), year);
        let _turn = self.allocating.lock().await;
        let allocate = SeriesCommand::Allocate {
            for_ref: for_ref.to_string(),
        };
        self.series.execute(&id, allocate, context).await?;
        // The series remembers the allocation by its reference: reading it back is exact even
        // when other allocations came in between.
        let serial = self
            .series
            .load(&id)
            .await?
            .serial_for(for_ref.trim())
            .ok_or_else(|| {
                CommandError::Unavailable(format!(
                    "the series {id} does not show the number it allocated for {for_ref}"
                ))
            })?;
        TicketNumber::new(site, year, serial)
            .map_err(|_| CommandError::Rejected(SeriesError::Exhausted))
    }

    async fn execute(
        &self,
        number: &TicketNumber,
        command: TicketCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<TicketError>> {
        self.tickets
            .execute(&number.to_string(), command, context)
            .await
    }

    async fn load(&self, number: &TicketNumber) -> Result<Ticket, CommandError<TicketError>> {
        self.tickets.load(&number.to_string()).await
    }
}

/// WhatsApp conversations, one per phone number (E.164), on postgres-es.
pub struct Conversations(Executor<Conversation>);

impl Conversations {
    pub fn new(pool: PgPool) -> Self {
        Conversations(Executor::new(pool, ()))
    }
}

#[async_trait]
impl ConversationCommands for Conversations {
    async fn execute(
        &self,
        phone: &PhoneNumber,
        command: ConversationCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<ConversationError>> {
        self.0.execute(phone.as_str(), command, context).await
    }

    async fn load(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Conversation, CommandError<ConversationError>> {
        self.0.load(phone.as_str()).await
    }
}
