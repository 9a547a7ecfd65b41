//! Signing in and out, as `/api/auth/employee-login`, `/api/auth/customer-login` and
//! `/api/auth/logout` do and the portal's `/portal/login` and `/portal/logout` do the same way:
//! the login limits, the decoy hash for unknown users, the disabled check and the token issued.

use std::net::IpAddr;

use chrono::Utc;

use domain::account::AccountNumber;
use domain::auth::{parse_employee_id, user_aggregate_id, Role, UserCommand, UserType};

use crate::auth::passwords;
use crate::auth::tokens::Issued;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;

/// Who is signing in: which kind of id the credentials name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginKind {
    /// An HR employee number.
    Employee,
    /// A customer's account number.
    Customer,
}

/// A successful login: the token and whom it names.
#[derive(Debug)]
pub(crate) struct SignedIn {
    pub(crate) issued: Issued,
    /// Employee id or account number, as the token's subject.
    pub(crate) user_id: String,
    /// The employee's role; `None` for customers.
    pub(crate) role: Option<Role>,
    pub(crate) name: String,
    pub(crate) email: Option<String>,
}

/// What a login attempt came to.
#[derive(Debug)]
pub(crate) enum LoginOutcome {
    SignedIn(Box<SignedIn>),
    /// No account of that id (or an id that cannot be one); checked against the decoy hash, so
    /// it takes as long as a wrong password.
    UnknownAccount,
    WrongPassword,
    /// The password matched, but the account is disabled.
    Disabled,
    /// Over the login limits of the account or the address.
    TooManyAttempts {
        retry_after_s: u64,
    },
}

async fn verify_blocking(password: &str, hash: &str) -> Result<bool, ApiError> {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || passwords::verify(&password, &hash))
        .await
        .map_err(ApiError::internal)
}

/// Checks `password` for the account `raw_id` names (of `kind`) under the login limits of the
/// account and of `address`, and issues a token when it matches an enabled account.
pub(crate) async fn log_in(
    state: &AppState,
    kind: LoginKind,
    raw_id: &str,
    password: &str,
    address: Option<IpAddr>,
) -> Result<LoginOutcome, ApiError> {
    match state.limiter.attempt(raw_id, address) {
        Ok(()) => {}
        Err(ApiError::TooManyRequests { retry_after_s }) => {
            return Ok(LoginOutcome::TooManyAttempts { retry_after_s })
        }
        Err(other) => return Err(other),
    }
    let (user_type, subject) = match kind {
        LoginKind::Employee => (UserType::Employee, parse_employee_id(raw_id).ok()),
        LoginKind::Customer => (
            UserType::Customer,
            AccountNumber::parse(raw_id)
                .ok()
                .map(|a| a.as_str().to_string()),
        ),
    };
    let account = match &subject {
        Some(subject) => state
            .read_models
            .user(&user_aggregate_id(user_type, subject))
            .await?
            .map(|u| u.account)
            .filter(|a| a.exists()),
        None => None,
    };
    let (Some(subject), Some(account)) = (subject, account) else {
        verify_blocking(password, passwords::decoy_hash()).await?;
        return Ok(LoginOutcome::UnknownAccount);
    };
    let hash = account
        .password_hash
        .as_deref()
        .unwrap_or(passwords::decoy_hash());
    if !verify_blocking(password, hash).await? {
        return Ok(LoginOutcome::WrongPassword);
    }
    if account.disabled {
        return Ok(LoginOutcome::Disabled);
    }
    let (user_id, role, email) = match kind {
        LoginKind::Employee => (
            subject,
            Some(account.role.unwrap_or(Role::Generic)),
            account.email,
        ),
        LoginKind::Customer => (account.user_id, None, None),
    };
    let issued = state
        .tokens
        .issue(
            user_type,
            &user_id,
            role.map_or("customer", Role::as_str),
            &account.name,
            email.as_deref(),
            Utc::now(),
        )
        .map_err(ApiError::internal)?;
    Ok(LoginOutcome::SignedIn(Box::new(SignedIn {
        issued,
        user_id,
        role,
        name: account.name,
        email,
    })))
}

/// Revokes the token `user` came with, and waits until the read models know it.
pub(crate) async fn log_out(state: &AppState, user: &CurrentUser) -> Result<(), ApiError> {
    let committed = state
        .users
        .execute(
            &user.key(),
            UserCommand::RevokeToken {
                token_id: user.token_id.clone(),
                expires_at: user.token_expires_at,
            },
            &user.command_context(),
        )
        .await?;
    state.visible(committed).await?;
    Ok(())
}
