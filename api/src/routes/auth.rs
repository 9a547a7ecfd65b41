//! `/api/auth/*`: logins, customer registration, password changes, `me` and logout, with the
//! request and response fields of legacy-system.md §1.2.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use domain::account::AccountNumber;
use domain::auth::{
    check_new_password, user_aggregate_id, Permissions, Role, UserCommand, UserType,
};

use crate::auth::login::{log_in, log_out, LoginKind, LoginOutcome, SignedIn};
use crate::auth::{client_address, passwords, CurrentUser};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::{customer_json, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/employee-login", post(employee_login))
        .route("/api/auth/customer-register", post(customer_register))
        .route("/api/auth/customer-login", post(customer_login))
        .route(
            "/api/auth/customer-change-password",
            post(customer_change_password),
        )
        .route("/api/auth/change-password", post(change_password))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(logout))
}

/// Client address of a request, for the login limits.
pub(crate) struct ClientAddress(pub(crate) Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts)))
    }
}

fn non_empty(field: &'static str, value: &str) -> ApiResult<()> {
    if value.trim().is_empty() {
        Err(ApiError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct EmployeeLogin {
    employee_id: String,
    password: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct PermissionsBody {
    write_customers: bool,
    write_transactions: bool,
    manage_roles: bool,
}

impl From<Permissions> for PermissionsBody {
    fn from(p: Permissions) -> Self {
        PermissionsBody {
            write_customers: p.write_customers,
            write_transactions: p.write_transactions,
            manage_roles: p.manage_roles,
        }
    }
}

fn no_permissions() -> PermissionsBody {
    PermissionsBody {
        write_customers: false,
        write_transactions: false,
        manage_roles: false,
    }
}

const INVALID_CREDENTIALS: &str = "Invalid credentials";

async fn employee_login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<EmployeeLogin>,
) -> ApiResult<Json<Value>> {
    non_empty("employee_id", &body.employee_id)?;
    non_empty("password", &body.password)?;
    let outcome = log_in(
        &state,
        LoginKind::Employee,
        &body.employee_id,
        &body.password,
        address,
    )
    .await?;
    let signed = signed_in(outcome, INVALID_CREDENTIALS)?;
    let role = signed.role.unwrap_or(Role::Generic);
    Ok(Json(json!({
        "access_token": signed.issued.token,
        "token_type": "bearer",
        "expires_in": signed.issued.lifetime.as_secs(),
        "user": {
            "user_type": "employee",
            "employee_id": signed.user_id,
            "name": signed.name,
            "email": signed.email,
            "cc_role": role.as_str(),
            "hr_role": Value::Null,
            "permissions": PermissionsBody::from(role.permissions()),
        }
    })))
}

/// The login that signed in, else the JSON API's error for why not; `unknown` is the message
/// for an unknown account.
fn signed_in(outcome: LoginOutcome, unknown: &str) -> ApiResult<SignedIn> {
    Err(match outcome {
        LoginOutcome::SignedIn(signed) => return Ok(*signed),
        LoginOutcome::UnknownAccount => ApiError::Unauthorized(unknown.into()),
        LoginOutcome::WrongPassword => ApiError::Unauthorized(INVALID_CREDENTIALS.into()),
        LoginOutcome::Disabled => ApiError::Unauthorized("This account is disabled".into()),
        LoginOutcome::TooManyAttempts { retry_after_s } => {
            ApiError::TooManyRequests { retry_after_s }
        }
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct CustomerRegister {
    /// The account number (the legacy field name).
    pub(crate) customer_id: String,
    pub(crate) password: String,
    /// The one-time code the office issued for this account.
    pub(crate) registration_code: Option<String>,
}

fn parse_account(field: &'static str, raw: &str) -> ApiResult<AccountNumber> {
    AccountNumber::parse(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

pub(crate) async fn customer_register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<CustomerRegister>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    non_empty("customer_id", &body.customer_id)?;
    let account = parse_account("customer_id", &body.customer_id)?;
    check_new_password("password", &body.password)?;
    let code = body
        .registration_code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "registration_code",
                "is required: ask the office for the one-time code of your account",
            )
        })?;
    state.limiter.attempt(account.as_str(), address)?;
    let customers = state
        .read_models
        .customers_by_account(account.as_str())
        .await?;
    let customer = customers.first().ok_or_else(|| {
        ApiError::NotFound(format!(
            "Account {} not found. Use the account number on your receipt (4 digits and the site, like 0045MAK).",
            account.as_str()
        ))
    })?;
    let password = body.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(ApiError::internal)?;
    let key = user_aggregate_id(UserType::Customer, account.as_str());
    let context = domain::command::CommandContext::new(domain::envelope::Actor {
        user_id: Some(account.as_str().to_string()),
        role: Some("customer".into()),
        channel: domain::envelope::Channel::Api,
    });
    let committed = state
        .users
        .execute(
            &key,
            UserCommand::RegisterCustomer {
                account_number: account.as_str().to_string(),
                name: customer.full_name.clone(),
                code,
                password_hash,
                now: Utc::now(),
            },
            &context,
        )
        .await?;
    state.visible(committed).await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "message": "Registration successful",
            "customer_id": account.as_str(),
            "name": customer.full_name,
        })),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CustomerLogin {
    customer_id: String,
    password: String,
}

async fn customer_login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<CustomerLogin>,
) -> ApiResult<Json<Value>> {
    non_empty("customer_id", &body.customer_id)?;
    non_empty("password", &body.password)?;
    let outcome = log_in(
        &state,
        LoginKind::Customer,
        &body.customer_id,
        &body.password,
        address,
    )
    .await?;
    let signed = signed_in(outcome, "Account not registered. Please register first.")?;
    Ok(Json(json!({
        "access_token": signed.issued.token,
        "token_type": "bearer",
        "expires_in": signed.issued.lifetime.as_secs(),
        "user": {
            "user_type": "customer",
            "customer_id": signed.user_id,
            "name": signed.name,
            "role": "customer",
        }
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangePassword {
    pub(crate) old_password: String,
    pub(crate) new_password: String,
}

async fn customer_change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<ChangePassword>,
) -> ApiResult<Json<Value>> {
    user.customer()?;
    set_own_password(&state, &user, body).await
}

/// Any user's own password (the legacy had no way for employees: their code was shared).
async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<ChangePassword>,
) -> ApiResult<Json<Value>> {
    set_own_password(&state, &user, body).await
}

pub(crate) async fn set_own_password(
    state: &AppState,
    user: &CurrentUser,
    body: ChangePassword,
) -> ApiResult<Json<Value>> {
    check_new_password("new_password", &body.new_password)?;
    let stored = state
        .read_models
        .user(&user.key())
        .await?
        .and_then(|u| u.account.password_hash)
        .unwrap_or_default();
    let ChangePassword {
        old_password,
        new_password,
    } = body;
    let (matches, new_hash) = tokio::task::spawn_blocking(move || {
        let matches = passwords::verify(&old_password, &stored);
        (matches, matches.then(|| passwords::hash(&new_password)))
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(password_hash) = new_hash.filter(|_| matches) else {
        return Err(ApiError::Unauthorized(
            "Current password is incorrect".into(),
        ));
    };
    let committed = state
        .users
        .execute(
            &user.key(),
            UserCommand::SetPassword {
                password_hash,
                reset: false,
                now: Utc::now(),
            },
            &user.command_context(),
        )
        .await?;
    state.visible(committed).await?;
    Ok(Json(json!({
        "message": "Password changed. Other sessions must log in again."
    })))
}

async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    let permissions = user
        .role
        .map_or_else(no_permissions, |r| PermissionsBody::from(r.permissions()));
    let mut body = json!({
        "user_type": user.user_type.as_str(),
        "user_id": user.user_id,
        "role": user.role_name(),
        "name": user.name,
        "email": user.email,
        "permissions": permissions,
    });
    if user.user_type == UserType::Customer {
        let customer = state
            .read_models
            .customers_by_account(&user.user_id)
            .await?
            .into_iter()
            .next();
        body["customer"] = customer.as_ref().map_or(Value::Null, customer_json);
        body["account_number"] = Value::String(user.user_id.clone());
    }
    Ok(Json(body))
}

async fn logout(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    log_out(&state, &user).await?;
    Ok(Json(json!({"message": "Logged out"})))
}
