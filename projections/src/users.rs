//! The `users` read model: the people who log in (employees and registered customers), their
//! current role and state, and the tokens they logged out of. Every request's authorisation
//! reads it, so a role change, a disabled account or a logout takes effect as soon as its event
//! is applied, not when the token expires.
//!
//! Tables:
//! - `users`: one row per user account aggregate, with the account's whole state as the domain
//!   folds it (`state`) next to the columns queries filter on;
//! - `revoked_tokens`: token ids that were logged out, until they would have expired anyway.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::{Role, UserAccount, UserEvent, UserType, USER_ACCOUNT};
use domain::event::StoredEvent;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::Result;
use crate::projection::{decode_payload, execute_all, qualified, Projection};

/// The projection's permanent name.
pub const NAME: &str = "users";

const AGGREGATE_TYPES: &[&str] = &[USER_ACCOUNT];

/// Builds the `users` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersProjection;

#[async_trait]
impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn private(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(AGGREGATE_TYPES)
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let users = qualified(schema, "users");
        let revoked = qualified(schema, "revoked_tokens");
        let statements = [
            format!(
                "create table {users} (
                    user_key           text primary key,
                    user_type          text,
                    user_id            text not null,
                    name               text not null,
                    email              text,
                    role               text,
                    disabled           boolean not null,
                    registered         boolean not null,
                    tokens_valid_after timestamptz,
                    role_assigned_by   text,
                    role_assigned_at   timestamptz,
                    state              jsonb not null,
                    updated_at         timestamptz not null,
                    position           bigint not null
                )"
            ),
            format!("comment on table {users} is 'ccare: one row per user account (employees and customers); state holds the password hash and is not for analysts'"),
            format!("create index on {users} (user_type, user_id)"),
            format!(
                "create table {revoked} (
                    token_id   text primary key,
                    user_key   text not null,
                    expires_at timestamptz not null
                )"
            ),
            format!("comment on table {revoked} is 'ccare: tokens logged out before their expiry'"),
        ];
        execute_all(conn, statements).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        let users = qualified(schema, "users");
        let revoked = qualified(schema, "revoked_tokens");
        for event in events {
            if event.aggregate_type != USER_ACCOUNT {
                continue;
            }
            let user_event: UserEvent = decode_payload(event, "a user event")?;
            if let UserEvent::TokenRevoked {
                token_id,
                expires_at,
            } = &user_event
            {
                sqlx::query(&format!(
                    "insert into {revoked} (token_id, user_key, expires_at) values ($1, $2, $3)
                     on conflict (token_id) do nothing"
                ))
                .bind(token_id)
                .bind(&event.aggregate_id)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                // Tokens past their expiry are refused anyway: forgetting them keeps the table small.
                sqlx::query(&format!("delete from {revoked} where expires_at < $1"))
                    .bind(event.recorded_at)
                    .execute(&mut *conn)
                    .await?;
                continue;
            }
            let stored: Option<(Json<UserAccount>, Option<String>, Option<DateTime<Utc>>)> =
                sqlx::query_as(&format!(
                    "select state, role_assigned_by, role_assigned_at from {users} where user_key = $1"
                ))
                .bind(&event.aggregate_id)
                .fetch_optional(&mut *conn)
                .await?;
            let (mut account, mut assigned_by, mut assigned_at) = match stored {
                Some((state, by, at)) => (state.0, by, at),
                None => (UserAccount::default(), None, None),
            };
            if matches!(
                user_event,
                UserEvent::EmployeeAdded { .. } | UserEvent::RoleChanged { .. }
            ) {
                assigned_by = Some(
                    event
                        .metadata
                        .get("actor_user_id")
                        .cloned()
                        .unwrap_or_else(|| "system".into()),
                );
                assigned_at = Some(event.recorded_at);
            }
            account.apply_event(user_event);
            sqlx::query(&format!(
                "insert into {users} (user_key, user_type, user_id, name, email, role, disabled,
                     registered, tokens_valid_after, role_assigned_by, role_assigned_at, state,
                     updated_at, position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 on conflict (user_key) do update set
                     user_type = excluded.user_type, user_id = excluded.user_id,
                     name = excluded.name, email = excluded.email, role = excluded.role,
                     disabled = excluded.disabled, registered = excluded.registered,
                     tokens_valid_after = excluded.tokens_valid_after,
                     role_assigned_by = excluded.role_assigned_by,
                     role_assigned_at = excluded.role_assigned_at, state = excluded.state,
                     updated_at = excluded.updated_at, position = excluded.position"
            ))
            .bind(&event.aggregate_id)
            .bind(account.user_type.map(UserType::as_str))
            .bind(&account.user_id)
            .bind(&account.name)
            .bind(&account.email)
            .bind(account.role.map(Role::as_str))
            .bind(account.disabled)
            .bind(account.exists())
            .bind(account.tokens_valid_after)
            .bind(&assigned_by)
            .bind(assigned_at)
            .bind(Json(&account))
            .bind(event.recorded_at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// A user as the API sees it.
#[derive(Debug, Clone)]
pub struct User {
    /// The aggregate id (`employee:<id>`, `customer:<account>`).
    pub key: String,
    pub account: UserAccount,
    pub updated_at: DateTime<Utc>,
    /// Who set the current role, and when (employees).
    pub role_assigned_by: Option<String>,
    pub role_assigned_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn user_type(&self) -> Option<UserType> {
        self.account.user_type
    }
}

fn user_from_row(row: &sqlx::postgres::PgRow) -> Result<User> {
    let state: Json<UserAccount> = row.try_get("state")?;
    Ok(User {
        key: row.try_get("user_key")?,
        account: state.0,
        updated_at: row.try_get("updated_at")?,
        role_assigned_by: row.try_get("role_assigned_by")?,
        role_assigned_at: row.try_get("role_assigned_at")?,
    })
}

/// The user account with aggregate id `key`, registered or not.
pub async fn user_by_key(pool: &PgPool, key: &str) -> Result<Option<User>> {
    let row =
        sqlx::query("select user_key, state, updated_at, role_assigned_by, role_assigned_at from read_model.users where user_key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The user account `key` and whether the token `token_id` was logged out, in one round trip:
/// what every authenticated request asks.
pub async fn user_for_token(
    pool: &PgPool,
    key: &str,
    token_id: &str,
) -> Result<Option<(User, bool)>> {
    let row = sqlx::query(
        "select u.user_key, u.state, u.updated_at, u.role_assigned_by, u.role_assigned_at,
                exists (select 1 from read_model.revoked_tokens r where r.token_id = $2) as revoked
         from read_model.users u where u.user_key = $1",
    )
    .bind(key)
    .bind(token_id)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("revoked")?))),
    }
}

/// Every employee account, by employee id.
pub async fn employees(pool: &PgPool) -> Result<Vec<User>> {
    let rows = sqlx::query(
        "select user_key, state, updated_at, role_assigned_by, role_assigned_at from read_model.users
         where user_type = 'employee' order by user_id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(user_from_row).collect()
}
