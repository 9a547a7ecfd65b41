//! Analysts' access: PostgreSQL login roles that may read the `read_model` schema and nothing
//! else (`ccare analysts grant|revoke|list`).
//!
//! Every analyst is a member of one group role, [`ANALYSTS_GROUP`], which holds the grants:
//! `USAGE` on `read_model` and `SELECT` on the views of every read model that is not private
//! (the `users` read model holds password hashes: never granted). A rebuild recreates its views
//! and grants them again. The views read the generation schemas with their owner's rights, so
//! analysts need (and get) no grant on those schemas, on the event log or on anything else.
//! Their sessions are read-only by default, with a statement timeout so a runaway query cannot
//! hold the service's database.
//!
//! Passwords are sent as SCRAM-SHA-256 verifiers computed here, never as plain text: the server
//! (and its statement log) only ever sees the verifier.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};
use crate::pg;
use crate::projection::{qualified, quote_ident, Projection};
use crate::registry::READ_MODEL_SCHEMA;

/// The group role that holds the analysts' grants.
pub const ANALYSTS_GROUP: &str = "ccare_analysts";

/// How long one analyst statement may run.
const STATEMENT_TIMEOUT: &str = "5min";

const SCRAM_ITERATIONS: u32 = 4096;

/// Whether `name` can be an analyst's role name (a plain lower-case identifier, so it needs no
/// quoting in `psql` either, and not one of PostgreSQL's or ccare's own).
fn valid_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
        && !name.starts_with("ccare")
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` with `salt` (RFC 5802, in the
/// `rolpassword` format of RFC 5803).
fn scram_verifier(password: &str, salt: &[u8; 16]) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, SCRAM_ITERATIONS, &mut salted);
    let key = |label: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&salted).expect("HMAC takes any key length");
        mac.update(label);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(key(b"Client Key"));
    let server_key = key(b"Server Key");
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

fn role_error(error: sqlx::Error) -> Error {
    match &error {
        // insufficient_privilege
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => {
            Error::RolePermission(db.message().to_string())
        }
        _ => Error::Database(error),
    }
}

/// What [`grant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// The login role was created.
    Created,
    /// The role existed; it is now (still) an analyst, with the new password if one was given.
    Updated,
}

/// Makes `name` an analyst: creates the login role if it does not exist (with `password`), sets
/// the password of an existing one when `password` is given, and makes it a member of
/// [`ANALYSTS_GROUP`] (created on first use), which gets `SELECT` on the views of the public
/// read models of `projections`. Idempotent.
pub async fn grant(
    pool: &PgPool,
    projections: &[std::sync::Arc<dyn Projection>],
    name: &str,
    password: Option<&str>,
) -> Result<Granted> {
    if !valid_role_name(name) {
        return Err(Error::InvalidRoleName { name: name.into() });
    }
    let role = quote_ident(name);
    let group = quote_ident(ANALYSTS_GROUP);
    let schema = quote_ident(READ_MODEL_SCHEMA);
    let mut tx = pg::begin(pool).await?;
    let existing: Option<bool> = sqlx::query_scalar(
        "select rolsuper or rolcreaterole or rolcreatedb or rolreplication or rolbypassrls \
         from pg_roles where rolname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    if existing == Some(true) {
        return Err(Error::PrivilegedRole { name: name.into() });
    }
    // Role names are checked identifiers, quoted; passwords go as bound verifiers through
    // format(…, %L), since utility statements take no parameters.
    let mut statements = vec![
        // Roles belong to the whole cluster: another database's grant may create the group at
        // the same moment.
        format!(
            "do $$ begin create role {group} nologin; \
             exception when duplicate_object or unique_violation then null; end $$"
        ),
    ];
    statements.push(format!("grant usage on schema {schema} to {group}"));
    let public: Vec<&str> = projections
        .iter()
        .filter(|p| !p.private())
        .map(|p| p.name())
        .collect();
    let views: Vec<String> = sqlx::query_scalar(
        "select view_name from projection_views where projection = any($1) order by 1",
    )
    .bind(&public)
    .fetch_all(&mut *tx)
    .await?;
    for view in &views {
        statements.push(format!(
            "grant select on {} to {group}",
            qualified(READ_MODEL_SCHEMA, view)
        ));
    }
    if existing.is_none() {
        statements.push(format!("create role {role} login"));
    }
    statements.extend([
        format!("grant {group} to {role}"),
        format!("alter role {role} set default_transaction_read_only = on"),
        format!("alter role {role} set statement_timeout = '{STATEMENT_TIMEOUT}'"),
    ]);
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(role_error)?;
    }
    if let Some(password) = password {
        let salt: [u8; 16] = rand::random();
        let statement: String =
            sqlx::query_scalar("select format('alter role %I password %L', $1::text, $2::text)")
                .bind(name)
                .bind(scram_verifier(password, &salt))
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(&statement)
            .execute(&mut *tx)
            .await
            .map_err(role_error)?;
    }
    tx.commit().await?;
    Ok(if existing.is_none() {
        Granted::Created
    } else {
        Granted::Updated
    })
}

/// Grants the analysts' group `SELECT` on `read_model.{view}`, when the group exists.
pub(crate) async fn grant_view(conn: &mut PgConnection, view: &str) -> Result<()> {
    let group_exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
            .bind(ANALYSTS_GROUP)
            .fetch_one(&mut *conn)
            .await?;
    if group_exists {
        sqlx::query(&format!(
            "grant select on {} to {}",
            qualified(READ_MODEL_SCHEMA, view),
            quote_ident(ANALYSTS_GROUP)
        ))
        .execute(&mut *conn)
        .await
        .map_err(role_error)?;
    }
    Ok(())
}

/// Ends `name`'s analyst access (its membership of the group; the login role itself is left for
/// the database administrator to drop). Returns whether it was an analyst.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<bool> {
    if !valid_role_name(name) {
        return Err(Error::InvalidRoleName { name: name.into() });
    }
    let member = list(pool).await?.iter().any(|m| m == name);
    if member {
        sqlx::query(&format!(
            "revoke {} from {}",
            quote_ident(ANALYSTS_GROUP),
            quote_ident(name)
        ))
        .execute(pool)
        .await
        .map_err(role_error)?;
    }
    Ok(member)
}

/// The analysts, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select member.rolname::text from pg_auth_members m \
         join pg_roles grp on grp.oid = m.roleid \
         join pg_roles member on member.oid = m.member \
         where grp.rolname = $1 order by 1",
    )
    .bind(ANALYSTS_GROUP)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_matches_an_independent_scram_computation() {
        // Computed with Python's hashlib.pbkdf2_hmac and hmac for the same password and salt.
        let salt: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            scram_verifier("analyst secret 1", &salt),
            "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$FebIye1BiFXbkFLKyvtSvw7BQ8912I/hJ1ddJmwZSCw=:pRN0nUzGjwRyvgtoRzanpBVaa2+cGguDpnwdGuV7bWI="
        );
    }

    #[test]
    fn role_names_are_plain_identifiers_and_not_reserved_ones() {
        for good in ["lineo", "analyst_2", "m"] {
            assert!(valid_role_name(good), "{good}");
        }
        for bad in [
            "",
            "Lineo",
            "2x",
            "a-b",
            "a b",
            "pg_monitor",
            "ccare",
            "ccare_analysts",
            "x\"; drop",
        ] {
            assert!(!valid_role_name(bad), "{bad}");
        }
        assert!(!valid_role_name(&"a".repeat(64)));
    }
}
