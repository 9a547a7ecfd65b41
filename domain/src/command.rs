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
    /// The command or event this one answers (a revert names the change it undoes).
    pub causation_id: Option<Uuid>,
}

impl CommandContext {
    pub fn new(actor: Actor) -> Self {
        CommandContext {
            actor,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
        }
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
