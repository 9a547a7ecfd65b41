//! The runner's bookkeeping in PostgreSQL: locks, the registry rows, generation schemas and the
//! `read_model` views (tables in migrations/…_projections.sql).

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};
use crate::projection::{qualified, quote_ident, Projection};

/// The schema that holds one view per read-model table, pointing at the live generation.
pub const READ_MODEL_SCHEMA: &str = "read_model";

/// First key of the advisory lock that serialises the appliers of one projection (taken per
/// transaction: each batch, the swap of a rebuilt generation, the dropping of old ones).
const APPLY_LOCK_CLASS: i32 = 0x6363_0001;
/// First key of the session advisory lock held for the whole of a rebuild.
const REBUILD_LOCK_CLASS: i32 = 0x6363_0002;

/// The second key of a projection's advisory locks: 31 bits of the FNV-1a hash of its name.
/// Stable across processes and versions, which `hashtext` does not promise.
fn lock_key(name: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    // Masked to 31 bits so the key is the same whether read as int4 or as oid in pg_locks.
    i32::try_from(hash & 0x7fff_ffff).unwrap_or_default()
}

/// Whether `name` can be a projection name (and so the stem of a schema name).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The schema of generation `generation` of projection `name`.
pub(crate) fn generation_schema(name: &str, generation: i32) -> String {
    format!("rm_{name}_{generation}")
}

/// Waits for, then holds until the end of the transaction, the lock of projection `name`'s appliers.
pub(crate) async fn lock_projection(conn: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1, $2)")
        .bind(APPLY_LOCK_CLASS)
        .bind(lock_key(name))
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes the session lock that marks a rebuild of `name` as running, if no one holds it.
pub(crate) async fn try_lock_rebuild(conn: &mut PgConnection, name: &str) -> Result<bool> {
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(REBUILD_LOCK_CLASS)
        .bind(lock_key(name))
        .fetch_one(conn)
        .await?;
    Ok(locked)
}

pub(crate) async fn unlock_rebuild(conn: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::query("select pg_advisory_unlock($1, $2)")
        .bind(REBUILD_LOCK_CLASS)
        .bind(lock_key(name))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether some session (of any process) is rebuilding `name` now.
pub(crate) async fn rebuild_running(conn: &mut PgConnection, name: &str) -> Result<bool> {
    // A two-key advisory lock shows in pg_locks as classid = key 1, objid = key 2, objsubid = 2.
    let running: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_locks l join pg_database d on d.oid = l.database \
         where l.locktype = 'advisory' and d.datname = current_database() and l.granted \
         and l.classid::bigint = $1 and l.objid::bigint = $2 and l.objsubid = 2)",
    )
    .bind(i64::from(REBUILD_LOCK_CLASS))
    .bind(i64::from(lock_key(name)))
    .fetch_one(conn)
    .await?;
    Ok(running)
}

/// A projection's registry row, with the rebuild in progress if there is one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RegistryRow {
    pub(crate) name: String,
    pub(crate) live_generation: i32,
    pub(crate) position: i64,
    pub(crate) status: String,
    pub(crate) last_applied_at: Option<DateTime<Utc>>,
    pub(crate) last_error: Option<String>,
    pub(crate) rebuild_generation: Option<i32>,
    pub(crate) rebuild_position: Option<i64>,
}

const SELECT_REGISTRY: &str =
    "select r.name, r.live_generation, r.position, r.status, r.last_applied_at, r.last_error, \
     b.generation as rebuild_generation, b.position as rebuild_position \
     from projection_registry r left join projection_rebuilds b on b.name = r.name";

/// The registry row of `name`, if the projection has been made ready.
pub(crate) async fn registry_row_of(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<RegistryRow>> {
    let row = sqlx::query_as(&format!("{SELECT_REGISTRY} where r.name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row)
}

/// The live generation and checkpoint of `name`; `NotReady` if it has no registry row.
pub(crate) async fn live_checkpoint(conn: &mut PgConnection, name: &str) -> Result<(i32, i64)> {
    let row: Option<(i32, i64)> =
        sqlx::query_as("select live_generation, position from projection_registry where name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    row.ok_or_else(|| Error::NotReady {
        name: name.to_string(),
    })
}

/// Moves the live checkpoint of `name` and clears any recorded failure.
pub(crate) async fn advance_live(conn: &mut PgConnection, name: &str, position: i64) -> Result<()> {
    // The notification goes out at commit: whoever waits for this read model to show an event
    // (a command's answer) wakes at once instead of polling.
    sqlx::query(
        "with moved as (
             update projection_registry set position = $2, last_applied_at = now(), updated_at = now(),
                 last_error = null, last_error_at = null where name = $1 returning name
         )
         select pg_notify($3, $1 || ':' || $2::text) from moved",
    )
    .bind(name)
    .bind(position)
    .bind(crate::read_models::READ_MODEL_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records why applying a batch of `name` failed (the batch itself was rolled back).
pub(crate) async fn record_failure(
    conn: &mut PgConnection,
    name: &str,
    error: &Error,
) -> Result<()> {
    sqlx::query(
        "update projection_registry set last_error = $2, last_error_at = now(), updated_at = now() \
         where name = $1",
    )
    .bind(name)
    .bind(error.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn schema_exists(conn: &mut PgConnection, schema: &str) -> Result<bool> {
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_namespace where nspname = $1)")
            .bind(schema)
            .fetch_one(conn)
            .await?;
    Ok(exists)
}

/// Creates generation `generation` of `projection`: an empty schema, then the projection's tables.
/// A schema of that name left behind by an earlier failure is dropped first.
/// Whether a new generation gets its secondary indexes at once or after it is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Indexes {
    Now,
    AfterFilling,
}

pub(crate) async fn create_generation(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    generation: i32,
    indexes: Indexes,
) -> Result<String> {
    let schema = generation_schema(projection.name(), generation);
    drop_schema(&mut *conn, &schema).await?;
    sqlx::query(&format!("create schema {}", quote_ident(&schema)))
        .execute(&mut *conn)
        .await?;
    projection.create_tables(&mut *conn, &schema).await?;
    if indexes == Indexes::Now {
        create_indexes(&mut *conn, projection, &schema).await?;
    }
    Ok(schema)
}

pub(crate) async fn drop_schema(conn: &mut PgConnection, schema: &str) -> Result<()> {
    sqlx::query(&format!(
        "drop schema if exists {} cascade",
        quote_ident(schema)
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts the registry row of a projection whose generation 1 has just been created.
pub(crate) async fn insert_registry_row(conn: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::query("insert into projection_registry (name, live_generation, position, status) values ($1, 1, 0, 'live')")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Points the `read_model` views of projection `name` at the tables of `schema`: one view per
/// table, named like it; views of tables the schema no longer has are dropped.
///
/// Runs inside the caller's transaction, so readers see the old views or the new ones, never a mix.
/// A new view loses the old one's grants, so the analysts' group gets its grant again here
/// (unless the read model is private).
pub(crate) async fn point_views(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> Result<()> {
    let name = projection.name();
    let tables = tables_of(&mut *conn, schema).await?;
    for table in &tables {
        let claimed: Option<String> = sqlx::query_scalar(
            "insert into projection_views (view_name, projection) values ($1, $2) \
             on conflict (view_name) do update set projection = excluded.projection \
             where projection_views.projection = excluded.projection returning projection",
        )
        .bind(table)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        if claimed.is_none() {
            let owner: String =
                sqlx::query_scalar("select projection from projection_views where view_name = $1")
                    .bind(table)
                    .fetch_one(&mut *conn)
                    .await?;
            return Err(Error::TableTaken {
                name: name.to_string(),
                table: table.clone(),
                owner,
            });
        }
        let view = qualified(READ_MODEL_SCHEMA, table);
        // Drop and create rather than `create or replace`: the new generation's columns may differ.
        sqlx::query(&format!("drop view if exists {view}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "create view {view} as select * from {}",
            qualified(schema, table)
        ))
        .execute(&mut *conn)
        .await?;
        // The view carries the table's own comment (PostgreSQL quotes it: %L) for analysts.
        let comment: String = sqlx::query_scalar(
            "select format('comment on view %I.%I is %L', $1::text, $2::text, \
             coalesce(obj_description(format('%I.%I', $3::text, $2::text)::regclass, 'pg_class'), '') \
             || format(' [projection %s, schema %s]', $4::text, $3::text))",
        )
        .bind(READ_MODEL_SCHEMA)
        .bind(table)
        .bind(schema)
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(&comment).execute(&mut *conn).await?;
        if !projection.private() {
            crate::analysts::grant_view(&mut *conn, table).await?;
        }
    }
    let stale: Vec<String> = sqlx::query_scalar(
        "delete from projection_views where projection = $1 and view_name <> all($2) returning view_name",
    )
    .bind(name)
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    for view in stale {
        sqlx::query(&format!(
            "drop view if exists {}",
            qualified(READ_MODEL_SCHEMA, &view)
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Gathers planner statistics on every table of `schema`. A freshly filled generation has none
/// until autovacuum gets to it, and without them the planner ignores its indexes.
pub(crate) async fn analyze_schema(conn: &mut PgConnection, schema: &str) -> Result<()> {
    for table in tables_of(&mut *conn, schema).await? {
        sqlx::query(&format!("analyze {}", qualified(schema, &table)))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Creates `projection`'s secondary indexes in `schema`, one after the other on `conn`.
pub(crate) async fn create_indexes(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> Result<()> {
    for statement in projection.secondary_indexes(schema) {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Creates `projection`'s secondary indexes in the filled `schema`, then analyzes its tables:
/// side by side on connections of `pool`, since each statement keeps one core busy and the
/// swap waits for all of them.
pub(crate) async fn index_and_analyze(
    pool: &PgPool,
    projection: &dyn Projection,
    schema: &str,
) -> Result<()> {
    let side_by_side = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let run_all = |statements: Vec<String>| async move {
        futures::stream::iter(statements)
            .map(|statement| async move { sqlx::query(&statement).execute(pool).await.map(drop) })
            .buffer_unordered(side_by_side)
            .try_collect::<Vec<()>>()
            .await
    };
    run_all(projection.secondary_indexes(schema)).await?;
    let tables = tables_of(&mut *pool.acquire().await?, schema).await?;
    run_all(
        tables
            .iter()
            .map(|table| format!("analyze {}", qualified(schema, table)))
            .collect(),
    )
    .await?;
    Ok(())
}

/// The names of the tables in `schema`, sorted.
async fn tables_of(conn: &mut PgConnection, schema: &str) -> Result<Vec<String>> {
    let tables = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = $1 order by tablename",
    )
    .bind(schema)
    .fetch_all(conn)
    .await?;
    Ok(tables)
}

/// Generation schemas of `name` that are neither live nor being rebuilt: left behind by a
/// swap whose drop did not finish, or by a rebuild that died.
pub(crate) async fn orphan_generations(conn: &mut PgConnection, name: &str) -> Result<Vec<String>> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "select n.nspname::text from pg_namespace n \
         where n.nspname ~ ('^rm_' || $1 || '_[0-9]+$') \
         and n.nspname not in ( \
             select 'rm_' || r.name || '_' || r.live_generation from projection_registry r where r.name = $1 \
             union all \
             select 'rm_' || b.name || '_' || b.generation from projection_rebuilds b where b.name = $1) \
         order by 1",
    )
    .bind(name)
    .fetch_all(conn)
    .await?;
    Ok(schemas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_names_are_lower_case_identifiers_of_bounded_length() {
        assert!(valid_name("customers"));
        assert!(valid_name("account_balances2"));
        assert!(!valid_name(""));
        assert!(!valid_name("2customers"));
        assert!(!valid_name("Customers"));
        assert!(!valid_name("customers;drop"));
        assert!(!valid_name(&"a".repeat(41)));
    }

    #[test]
    fn lock_keys_are_stable_non_negative_and_differ_between_names() {
        assert_eq!(lock_key("customers"), lock_key("customers"));
        assert_ne!(lock_key("customers"), lock_key("balances"));
        assert!(lock_key("customers") >= 0);
    }

    #[test]
    fn generation_schemas_carry_the_name_and_number() {
        assert_eq!(generation_schema("customers", 3), "rm_customers_3");
    }
}
