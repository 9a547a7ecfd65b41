//! PostgreSQL helpers shared by the runner and the read models.

use sqlx::{PgPool, Postgres, Transaction};

/// Opens a transaction on a pooled connection; use it instead of `Pool::begin`.
///
/// sqlx 0.8's `Pool::begin` is not cancel-safe on PostgreSQL (sqlx issue #4393): a caller
/// dropped while `BEGIN` is in flight returns the connection to the pool inside a transaction
/// nothing ends, and the next borrower's statements silently run, and vanish, in it. Here the
/// `BEGIN` runs on a task of its own that a cancelled caller does not stop; a transaction
/// nobody receives is dropped there, and so rolled back. (`adapters::postgres::begin` is the
/// same for the adapters; the crates do not depend on each other.)
pub(crate) async fn begin(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
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
