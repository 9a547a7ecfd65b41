//! Who is asking: the token check every protected endpoint runs, and the role rules of
//! legacy-system.md §4.4 as guards.
//!
//! A token proves who logged in and when. What the person may do is read from the `users` read
//! model on every request — their current role, whether the account is disabled, whether this
//! token was logged out or predates a password change — so none of those waits for the token to
//! expire (legacy weakness 2).

pub mod limiter;
pub(crate) mod login;
pub mod passwords;
pub mod tokens;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use domain::auth::{user_aggregate_id, Role, UserType};
use domain::command::CommandContext;
use domain::envelope::{Actor, Channel};

use crate::error::ApiError;
use crate::AppState;

/// An authenticated caller, as they are now.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user_type: UserType,
    /// Employee id or account number.
    pub user_id: String,
    /// The employee's current role; `None` for customers.
    pub role: Option<Role>,
    pub name: String,
    pub email: Option<String>,
    pub token_id: String,
    pub token_expires_at: DateTime<Utc>,
    /// Where the request came from (for the audit), when known.
    pub channel: Channel,
}

impl CurrentUser {
    /// The aggregate id of the caller's account.
    pub fn key(&self) -> String {
        user_aggregate_id(self.user_type, &self.user_id)
    }

    /// The legacy `role` claim: the role name, or `customer`.
    pub fn role_name(&self) -> &'static str {
        self.role.map_or("customer", Role::as_str)
    }

    /// 403 unless the caller is an employee; returns their role.
    pub fn employee(&self) -> Result<Role, ApiError> {
        match (self.user_type, self.role) {
            (UserType::Employee, Some(role)) => Ok(role),
            _ => Err(ApiError::Forbidden("Employee access required".into())),
        }
    }

    /// 403 unless the caller is an employee with one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<Role, ApiError> {
        let role = self.employee()?;
        if roles.contains(&role) {
            Ok(role)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "Requires one of: [{}]",
                names.join(", ")
            )))
        }
    }

    /// 403 unless the caller is a customer.
    pub fn customer(&self) -> Result<&str, ApiError> {
        match self.user_type {
            UserType::Customer => Ok(&self.user_id),
            UserType::Employee => Err(ApiError::Forbidden("Customer endpoint only".into())),
        }
    }

    /// The actor of the commands this caller issues.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user_id.clone()),
            role: Some(self.role_name().to_string()),
            channel: self.channel,
        }
    }

    pub fn command_context(&self) -> CommandContext {
        CommandContext::new(self.actor())
    }
}

/// The bearer token of a request: the `Authorization: Bearer` header, else the legacy
/// `access_token` cookie.
pub(crate) fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == "access_token").then(|| value.to_string())
        })
}

/// The channel a request counts as for the audit: `X-CCARE-Channel: portal` from the portal's
/// own pages, `api` otherwise.
fn channel_of(parts: &Parts) -> Channel {
    match parts
        .headers
        .get("x-ccare-channel")
        .and_then(|v| v.to_str().ok())
    {
        Some("portal") => Channel::Portal,
        _ => Channel::Api,
    }
}

/// The client's address, when the server was started with connection info.
pub(crate) fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?;
        let claims = state
            .tokens
            .verify(&token)
            .map_err(|e| ApiError::Unauthorized(format!("Invalid token: {e}")))?;
        let key = user_aggregate_id(claims.user_type, &claims.sub);
        let (user, revoked) = state
            .read_models
            .user_for_token(&key, &claims.jti)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("Invalid token: no such user".into()))?;
        let account = user.account;
        if !account.exists() {
            return Err(ApiError::Unauthorized("Invalid token: no such user".into()));
        }
        if account.disabled {
            return Err(ApiError::Unauthorized("This account is disabled".into()));
        }
        if revoked {
            return Err(ApiError::Unauthorized(
                "Invalid token: it was logged out".into(),
            ));
        }
        if account
            .tokens_valid_after
            .is_some_and(|after| claims.issued_at() < after.trunc_subsecs_floor())
        {
            return Err(ApiError::Unauthorized(
                "Invalid token: the password changed after it was issued; log in again".into(),
            ));
        }
        Ok(CurrentUser {
            user_type: claims.user_type,
            user_id: claims.sub.clone(),
            role: account.role,
            name: account.name,
            email: account.email,
            token_id: claims.jti.clone(),
            token_expires_at: claims.expires_at(),
            channel: channel_of(parts),
        })
    }
}

trait TruncSeconds {
    fn trunc_subsecs_floor(self) -> Self;
}

impl TruncSeconds for DateTime<Utc> {
    /// Whole seconds: token times have no fractions, and a token issued in the same second as a
    /// password change (the change's own new login) must stay valid.
    fn trunc_subsecs_floor(self) -> Self {
        DateTime::from_timestamp(self.timestamp(), 0).unwrap_or(self)
    }
}
