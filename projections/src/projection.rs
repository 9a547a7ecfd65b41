//! What a read model must provide to be built by the [`ProjectorRunner`](crate::ProjectorRunner).

use async_trait::async_trait;
use domain::event::StoredEvent;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::error::{Error, Result};

/// A read model built from the global log.
///
/// The runner owns everything around it: where its tables live (a generation schema
/// `rm_<name>_<n>`, exposed through views in `read_model`), which events it sees (in position
/// order, each exactly once per generation) and its checkpoint. A projection only copies facts
/// from events into its tables; interpretation of rows belongs to `domain::records`.
///
/// `apply` runs inside the transaction that also moves the checkpoint, so it must not commit, and
/// it must be deterministic: a rebuild from position 0 has to produce the same tables as the
/// incremental build did.
#[async_trait]
pub trait Projection: Send + Sync {
    /// The projection's permanent name (`[a-z][a-z0-9_]{0,39}`): the key of its registry row and
    /// the stem of its generation schemas. Renaming it orphans the read model.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events the projection reads, or `None` for every event.
    /// Events of other types are skipped without being read, which keeps catch-up and rebuilds
    /// fast on a log that is mostly transactions and readings.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Creates the projection's tables and indexes in `schema` (which exists and is empty).
    /// Every table created here gets a view of the same name in `read_model`.
    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()>;

    /// The statements creating the secondary indexes of the tables in `schema` (those no `apply`
    /// needs, e.g. for the API's queries). Separate from [`create_tables`](Self::create_tables)
    /// so that a rebuild builds them once after filling the tables, side by side, instead of
    /// updating them row by row.
    fn secondary_indexes(&self, _schema: &str) -> Vec<String> {
        Vec::new()
    }

    /// Whether the read model holds secrets (password hashes, token ids) or what customers wrote
    /// in private (their WhatsApp messages): analysts get no grant on its views and it is not
    /// exported.
    fn private(&self) -> bool {
        false
    }

    /// Applies `events` (in position order, never empty) to the tables in `schema`.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()>;

    /// Does the part of applying `events` that needs no database (decoding payloads, folding
    /// them into rows and sums), so that a rebuild can run it for the next batch on another
    /// thread while the database writes this one. `None`: the projection has nothing to do ahead.
    fn prepare(&self, _events: &[StoredEvent]) -> Result<Option<Prepared>> {
        Ok(None)
    }

    /// Applies `events` given what [`prepare`](Self::prepare) made of them; the same tables must
    /// result as from [`apply`](Self::apply).
    async fn apply_prepared(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
        _prepared: Option<Prepared>,
    ) -> Result<()> {
        self.apply(conn, schema, events).await
    }
}

/// What [`Projection::prepare`] made of a batch, handed back to the same projection's
/// [`Projection::apply_prepared`] (which knows its type).
pub type Prepared = Box<dyn std::any::Any + Send>;

/// Runs `statements` (a projection's DDL) one after the other on `conn`.
pub(crate) async fn execute_all(
    conn: &mut PgConnection,
    statements: impl IntoIterator<Item = String>,
) -> Result<()> {
    for statement in statements {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The error for an event a projection cannot read.
pub(crate) fn unreadable(event: &StoredEvent, reason: impl Into<String>) -> Error {
    Error::UnreadableEvent {
        position: event.position,
        event_type: event.event_type.clone(),
        reason: reason.into(),
    }
}

/// `event`'s payload decoded as `T`, described as `shape` ("a row change") when it is not one.
/// The error names the shape and version only: a serde message could quote the row's contents.
pub(crate) fn decode_payload<'a, T: serde::Deserialize<'a>>(
    event: &'a StoredEvent,
    shape: &str,
) -> Result<T> {
    event.payload.decode().map_err(|_| {
        unreadable(
            event,
            format!(
                "its payload is not {shape} of version {}",
                event.event_version
            ),
        )
    })
}

/// `schema.table` with both parts quoted as SQL identifiers.
///
/// Schemas and tables are ccare's own names (generation schemas are built from validated
/// projection names), quoted anyway so that no name can ever be read as SQL.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// `name` quoted as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns a row type fills, each with its SQL type: the names are the row type's field names,
/// which are the keys of its JSON (see [`insert_rows`]).
pub(crate) type Columns = &'static [(&'static str, &'static str)];

/// Inserts `rows` into `table` with one statement: they go over as one JSON array whose objects'
/// keys are the column names. With a non-empty `key`, a row whose key is already there replaces it.
pub(crate) async fn insert_rows<T: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    columns: Columns,
    key: &[&str],
    rows: &[T],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let names = columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let record = columns
        .iter()
        .map(|(name, sql_type)| format!("{name} {sql_type}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "insert into {table} ({names}) select {names} from jsonb_to_recordset($1) as r({record})"
    );
    if !key.is_empty() {
        let updates = columns
            .iter()
            .filter(|(name, _)| !key.contains(name))
            .map(|(name, _)| format!("{name} = excluded.{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        sql.push_str(&format!(
            " on conflict ({}) do update set {updates}",
            key.join(", ")
        ));
    }
    sqlx::query(&sql).bind(Json(rows)).execute(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_embedded_quotes_doubled() {
        assert_eq!(
            qualified("rm_customers_1", "customers"),
            r#""rm_customers_1"."customers""#
        );
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}
