use std::path::PathBuf;

/// Everything that can go wrong in the adapters. Messages are written for an operator: they name
/// the setting, table or file involved and never include row contents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ACDB connection failed ({dsn}): {message}")]
    AcdbConnect { dsn: String, message: String },
    #[error("ACDB table {table:?} not found")]
    AcdbTableMissing { table: String },
    #[error("ACDB query on {table:?} failed: {message}")]
    AcdbQuery { table: String, message: String },
    #[error("ACDB file {path}: {message}")]
    AcdbFile { path: PathBuf, message: String },
    #[error("generating the synthetic ACDB failed: {0}")]
    Generate(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("embedded PostgreSQL: {0}")]
    EmbeddedPostgres(String),
    /// The server could not be reached or refused the login; `target` is `host:port (database …)`.
    #[error("cannot connect to PostgreSQL at {target}: {message}")]
    PgConnect { target: String, message: String },
    /// The connection URL does not parse; the message never repeats the URL (it may hold a password).
    #[error(
        "DATABASE_URL is not a valid PostgreSQL URL (postgres://user@host:port/database): {0}"
    )]
    DatabaseUrl(String),
    /// An append collided with an event already stored (or another in the batch) for the same
    /// aggregate and sequence: someone else decided first. The transaction is aborted.
    #[error("event store: {message} (SQLSTATE {sqlstate})")]
    Conflict { sqlstate: String, message: String },
    #[error("event store: {0}")]
    Store(String),
    #[error("change capture: {0}")]
    Cdc(String),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
