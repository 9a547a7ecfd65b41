/// Everything that can go wrong in the projections crate. Messages name the projection, table or
/// event position involved and never include row contents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read-model database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("projection name {name:?} must be 1 to 40 characters of a-z, 0-9 and _, starting with a letter")]
    InvalidName { name: String },
    #[error("two projections are named {name:?}")]
    DuplicateName { name: String },
    #[error("no projection named {name:?} is registered with this runner")]
    UnknownProjection { name: String },
    #[error("projection {name:?} has no registry row yet: the runner must be made ready first")]
    NotReady { name: String },
    #[error("projection {name:?}: the schema {schema:?} of its live generation is missing")]
    MissingGeneration { name: String, schema: String },
    #[error("a rebuild of projection {name:?} is already running")]
    RebuildRunning { name: String },
    #[error("projection {name:?} has a table {table:?}, but read_model.{table} belongs to projection {owner:?}")]
    TableTaken {
        name: String,
        table: String,
        owner: String,
    },
    #[error("projection {name:?}: the new generation did not catch up with the log in {attempts} attempts to swap it in")]
    SwapFailed { name: String, attempts: u32 },
    #[error("schema {schema:?} already exists; choose another name or drop it")]
    SchemaExists { schema: String },
    #[error("read model {name:?} has not yet applied the event at position {position}: is the projector running?")]
    NotCaughtUp { name: String, position: i64 },
    #[error("event at position {position} ({event_type}) cannot be read: {reason}")]
    UnreadableEvent {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("analyst role name {name:?} must be 1 to 63 characters of a-z, 0-9 and _, starting with a letter, and not start with pg_ or ccare")]
    InvalidRoleName { name: String },
    #[error("{name:?} is a role with more than read access (superuser, createrole, createdb or replication); choose another name")]
    PrivilegedRole { name: String },
    #[error("cannot manage roles: the database user needs CREATEROLE ({0})")]
    RolePermission(String),
    #[error(
        "projection {name:?}: preparing a batch of the rebuild failed unexpectedly ({reason})"
    )]
    PrepareFailed { name: String, reason: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
