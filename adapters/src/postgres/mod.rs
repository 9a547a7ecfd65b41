//! PostgreSQL: connection, migrations, and the embedded private cluster.
//!
//! ccare either uses the server named by `DATABASE_URL` ([`connect`]) or, without one, a private
//! cluster it runs itself from the system's PostgreSQL binaries ([`EmbeddedPostgres`]).

#[cfg(unix)]
mod embedded;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::{Error, Result};

#[cfg(unix)]
pub use embedded::{find_bin_dir, Durability, EmbeddedPostgres, ShutdownMode};

/// Connections per process. The machines are small (two cores); ten lets the change capture,
/// the projections and the API each hold a few without starving one another.
const POOL_SIZE: u32 = 10;

/// How long a caller may wait for a free pooled connection. Long enough to ride out a large
/// append holding connections, short enough that a wedged pool shows up as an error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the first connection may take. A host that drops packets would otherwise leave the
/// operator waiting for the operating system's TCP timeout (minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Statements slower than this are logged as warnings.
const SLOW_STATEMENT: Duration = Duration::from_secs(30);

/// Opens a pool on the server named by `url` (`postgres://user[:password]@host[:port]/database`).
///
/// One connection is made up front so a wrong address, a refused login or a missing database is
/// reported at once, in one line naming `host:port` and the database (never the password).
pub async fn connect(url: &str) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Error::DatabaseUrl(describe_url_error(&e)))?
        // Bulk appends and chain verification legitimately run for seconds; sqlx's default
        // (warn after 1 s) would flood the log. sqlx takes a `log::LevelFilter`: parsing the
        // level names that type without another dependency.
        .log_slow_statements(
            "warn".parse().expect("`warn` is a log level"),
            SLOW_STATEMENT,
        )
        // sqlx logs server notices at INFO; "already exists, skipping" from idempotent DDL
        // (migrations) is not news to an operator.
        .options([("client_min_messages", "warning")]);
    let target = describe_target(&options);

    // The pool retries "connection refused" until its acquire timeout and then reports only
    // "pool timed out"; a direct connection gives the operator the real reason.
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Err(_) => {
            return Err(Error::PgConnect {
                target,
                message: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            })
        }
        Ok(Err(e)) => {
            return Err(Error::PgConnect {
                target,
                message: describe_connect_error(&e),
            })
        }
        Ok(Ok(probe)) => {
            // Closing politely is best effort: the probe has done its job either way.
            let _ = probe.close().await;
        }
    }

    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| Error::PgConnect {
            target,
            message: describe_connect_error(&e),
        })
}

/// Applies ccare's migrations (the workspace's `migrations/` directory, embedded at build time).
/// Safe to run from several processes at once: sqlx serialises them under an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::migrate!("../migrations").run(pool).await?;
    Ok(())
}

/// Opens a transaction on a pooled connection; use it instead of `Pool::begin`.
///
/// sqlx 0.8's `Pool::begin` is not cancel-safe on PostgreSQL (sqlx issue #4393): a caller
/// dropped while `BEGIN` is in flight returns the connection to the pool inside a transaction
/// nothing ends, and the next borrower's statements silently run, and vanish, in it. Here the
/// `BEGIN` runs on a task of its own that a cancelled caller does not stop; a transaction
/// nobody receives is dropped there, and so rolled back.
pub async fn begin(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    #[allow(clippy::disallowed_methods)] // the one sanctioned call, made cancel-safe here
    let opening = tokio::spawn(async move { pool.begin().await });
    match opening.await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(sqlx::Error::Io(std::io::Error::other(
            "the runtime shut down while a transaction was opening",
        ))),
    }
}

/// `host:port (database name)`, or the socket directory for a Unix-socket host.
fn describe_target(options: &PgConnectOptions) -> String {
    let host = options.get_host();
    let database = options
        .get_database()
        .unwrap_or_else(|| options.get_username());
    if host.starts_with('/') {
        format!(
            "socket {host}/.s.PGSQL.{} (database {database})",
            options.get_port()
        )
    } else {
        format!("{host}:{} (database {database})", options.get_port())
    }
}

fn describe_url_error(error: &sqlx::Error) -> String {
    match error {
        // sqlx's configuration errors describe the offending part, never the whole URL.
        sqlx::Error::Configuration(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

fn describe_connect_error(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::PoolTimedOut => {
            format!("no connection within {} s", ACQUIRE_TIMEOUT.as_secs())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_named_by_host_and_port() {
        // Port 1 (tcpmux) is reserved and never runs PostgreSQL.
        let error = connect("postgres://postgres@127.0.0.1:1/ccare")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("database ccare"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[tokio::test]
    async fn a_malformed_url_names_database_url_and_hides_the_password() {
        let error = connect("postgres://ccare:s3cret@127.0.0.1:notaport/ccare")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::DatabaseUrl(_)), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
