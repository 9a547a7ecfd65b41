//! Commands as the API hands them to the write side: who asks ([`CommandContext`]), what came of
//! it ([`Committed`], [`CommandError`]), and the ports the write side implements.
//!
//! The ports are traits so the API depends on the domain only: the adapters implement them
//! (postgres-es for the aggregates ccare owns, the audited writer for the ACDB) and the binary
//! wires one to the other.

use async_trait::async_trait;
use uuid::Uuid;

use crate::auth::{UserCommand, UserError};
use crate::envelope::{Actor, Envelope};

/// Who issues a command and in answer to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub actor: Actor,
    /// Shared by everything one request causes.
    pub correlation_id: Uuid,
    /// The command or event this one answers.
    pub causation_id: Option<Uuid>,
    /// The mutation (event position) this command undoes, for a revert.
    pub reverts: Option<i64>,
}

impl CommandContext {
    pub fn new(actor: Actor) -> Self {
        CommandContext {
            actor,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            reverts: None,
        }
    }

    /// The same caller undoing mutation `id`.
    pub fn reverting(mut self, id: i64) -> Self {
        self.reverts = Some(id);
        self
    }

    /// The envelope as the flat metadata map of stored events, with the revert it performs.
    pub fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        let mut metadata = self.envelope().to_metadata();
        if let Some(reverts) = self.reverts {
            metadata.insert(
                crate::envelope::REVERTS_KEY.to_string(),
                reverts.to_string(),
            );
        }
        metadata
    }

    /// The envelope of events recorded for this command now.
    pub fn envelope(&self) -> Envelope {
        let mut envelope = Envelope::now(self.actor.clone(), self.correlation_id);
        envelope.causation_id = self.causation_id;
        envelope
    }
}

/// A command that was accepted and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The global-log position of the last event it stored; `None` when it changed nothing.
    pub position: Option<i64>,
}

/// Why a command did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError<E> {
    /// The domain refused it: nothing was stored.
    #[error(transparent)]
    Rejected(E),
    /// Another command changed the same aggregate at the same moment, again and again.
    #[error("the record was changed by someone else at the same moment; try again")]
    Conflict,
    /// The event store could not be reached or failed; nothing was stored.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
}

/// The user accounts ccare owns (events only).
#[async_trait]
pub trait UserCommands: Send + Sync {
    /// Runs `command` against the account `user_key` (see `auth::user_aggregate_id`).
    async fn execute(
        &self,
        user_key: &str,
        command: UserCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<UserError>>;
}

/// What came of a write into the ACDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The ACDB holds the change; `position` is that of the row's change event in the log.
    Applied {
        command_id: Uuid,
        /// The row key's display form (for a create, the key the ACDB assigned).
        key: String,
        position: Option<i64>,
    },
    /// The ACDB refused the change (its reason); nothing changed there.
    Failed { command_id: Uuid, reason: String },
    /// Recorded, but not applied yet when the answer was due (the writer is busy or not
    /// running): it will be, exactly once.
    Pending { command_id: Uuid },
}

/// Why a write was refused before it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteRejection {
    #[error(transparent)]
    Invalid(#[from] crate::write::WriteError),
    #[error("Record {key} not found in {table}")]
    NotFound { table: String, key: String },
    #[error("A record {key} already exists in {table}")]
    AlreadyExists { table: String, key: String },
    #[error("{table} is still being imported; writes open when its import has finished")]
    NotReady { table: String },
    #[error("{0}")]
    Conflict(String),
}

/// The audited writer: the only way anything changes ACDB rows.
#[async_trait]
pub trait AcdbWrites: Send + Sync {
    /// Records `write` as requested by `context`, has it applied, and waits (a bounded time) for
    /// the outcome. A context that reverts a mutation marks the write as its compensation.
    async fn submit(
        &self,
        write: crate::write::TableWrite,
        context: &CommandContext,
    ) -> Result<WriteOutcome, CommandError<WriteRejection>>;

    /// Records `writes` as one command of `context` and has them applied together, in order,
    /// in one ACDB transaction: all of them or none (each row still its own audited mutation).
    /// Their outcomes, in order; when one is refused, every one of them has failed.
    async fn submit_together(
        &self,
        writes: Vec<crate::write::TableWrite>,
        context: &CommandContext,
    ) -> Result<Vec<WriteOutcome>, CommandError<WriteRejection>>;

    /// The columns of `table` as the change capture last saw them (the catalogue's, plus any
    /// added in Access).
    async fn columns(&self, table: &str) -> Result<Vec<String>, CommandError<WriteRejection>>;
}

/// The tariff schedules ccare owns (events only).
#[async_trait]
pub trait TariffCommands: Send + Sync {
    async fn execute(
        &self,
        scope: &crate::tariff::TariffScope,
        command: crate::tariff::TariffCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<crate::tariff::TariffError>>;
}

/// What a verification of the hash chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Events whose link was recomputed.
    pub checked: u64,
    pub head_position: i64,
    /// The first broken link: its position and what is wrong there.
    pub first_broken: Option<(i64, String)>,
}

/// Verifies the global log's hash chain (implemented by the event store).
#[async_trait]
pub trait ChainVerifier: Send + Sync {
    /// From the first event (`full`), or from the last verified checkpoint.
    async fn verify(&self, full: bool) -> Result<ChainCheck, String>;
}

/// The tickets ccare owns (events only): numbering and every change of a ticket.
#[async_trait]
pub trait TicketCommands: Send + Sync {
    /// The number of a ticket to open at `site` in `year` for `for_ref` (what the ticket is for,
    /// e.g. a WhatsApp message id): the next of the series the first time, the same number again
    /// for the same reference.
    async fn allocate_number(
        &self,
        site: &crate::site::SiteCode,
        year: i32,
        for_ref: &str,
        context: &CommandContext,
    ) -> Result<crate::ticket::TicketNumber, CommandError<crate::ticket::SeriesError>>;

    async fn execute(
        &self,
        number: &crate::ticket::TicketNumber,
        command: crate::ticket::TicketCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<crate::ticket::TicketError>>;

    /// The ticket as its events left it (`Ticket::default()` for a number never opened).
    async fn load(
        &self,
        number: &crate::ticket::TicketNumber,
    ) -> Result<crate::ticket::Ticket, CommandError<crate::ticket::TicketError>>;
}

/// The WhatsApp conversations ccare owns (events only), one per phone number.
#[async_trait]
pub trait ConversationCommands: Send + Sync {
    async fn execute(
        &self,
        phone: &crate::phone::PhoneNumber,
        command: crate::conversation::ConversationCommand,
        context: &CommandContext,
    ) -> Result<Committed, CommandError<crate::conversation::ConversationError>>;

    /// The conversation as its events left it (`Conversation::default()` for a new number).
    async fn load(
        &self,
        phone: &crate::phone::PhoneNumber,
    ) -> Result<
        crate::conversation::Conversation,
        CommandError<crate::conversation::ConversationError>,
    >;
}
