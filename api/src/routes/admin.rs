//! `/api/admin/*`: employees and their roles (legacy-system.md §1.3), and the one-time codes
//! customers register with. Every change is a command on the user's account aggregate, so it is
//! audited and revertible like any other change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use domain::account::AccountNumber;
use domain::auth::{
    check_new_password, parse_employee_id, user_aggregate_id, Role, UserCommand, UserType,
};

use crate::auth::{passwords, CurrentUser};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How long a registration code stays valid.
pub const REGISTRATION_CODE_DAYS: i64 = 14;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/roles", get(list_roles).post(assign_role))
        .route(
            "/api/admin/roles/{employee_id}",
            put(update_role).delete(remove_role),
        )
        .route(
            "/api/admin/employee-emails",
            get(list_emails).post(set_email),
        )
        .route("/api/admin/employee-emails/bulk", post(set_emails_bulk))
        .route("/api/admin/users", get(list_users).post(add_employee))
        .route("/api/admin/users/{employee_id}/disable", post(disable))
        .route("/api/admin/users/{employee_id}/enable", post(enable))
        .route(
            "/api/admin/users/{employee_id}/reset-password",
            post(reset_password),
        )
        .route(
            "/api/admin/registration-codes",
            post(issue_registration_code),
        )
}

fn superadmin(user: &CurrentUser) -> ApiResult<()> {
    user.require_role(&[Role::Superadmin]).map(drop)
}

fn parse_role(field: &'static str, raw: &str) -> ApiResult<Role> {
    raw.parse::<Role>()
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn employee_key(raw: &str) -> ApiResult<String> {
    let id = parse_employee_id(raw).map_err(ApiError::from)?;
    Ok(user_aggregate_id(UserType::Employee, &id))
}

fn role_row(user: &projections::users::User) -> Value {
    let account = &user.account;
    json!({
        "employee_id": account.user_id,
        "cc_role": account.role.unwrap_or(Role::Generic).as_str(),
        "assigned_by": user.role_assigned_by,
        "assigned_at": user.role_assigned_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "name": account.name,
        "email": account.email,
        "disabled": account.disabled,
    })
}

async fn list_roles(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    superadmin(&user)?;
    let employees = state.read_models.employees().await?;
    Ok(Json(Value::Array(employees.iter().map(role_row).collect())))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoleBody {
    #[serde(default)]
    pub(crate) employee_id: Option<String>,
    pub(crate) cc_role: String,
}

/// Runs `command` on the employee account `key`, then answers with the employee as the read
/// model now shows them.
async fn change_employee(
    state: &AppState,
    user: &CurrentUser,
    key: &str,
    command: UserCommand,
) -> ApiResult<Json<Value>> {
    let committed = state
        .users
        .execute(key, command, &user.command_context())
        .await?;
    state.visible(committed).await?;
    let employee = state
        .read_models
        .user(key)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such employee".into()))?;
    Ok(Json(role_row(&employee)))
}

async fn set_role(
    state: &AppState,
    user: &CurrentUser,
    key: &str,
    role: Role,
) -> ApiResult<Json<Value>> {
    change_employee(state, user, key, UserCommand::ChangeRole { role }).await
}

pub(crate) async fn assign_role(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<RoleBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    superadmin(&user)?;
    let id = body
        .employee_id
        .ok_or_else(|| ApiError::invalid("employee_id", "is required"))?;
    let key = employee_key(&id)?;
    let role = parse_role("cc_role", &body.cc_role)?;
    let answer = set_role(&state, &user, &key, role).await?;
    Ok((StatusCode::CREATED, answer))
}

async fn update_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(employee_id): Path<String>,
    JsonBody(body): JsonBody<RoleBody>,
) -> ApiResult<Json<Value>> {
    superadmin(&user)?;
    let key = employee_key(&employee_id)?;
    let role = parse_role("cc_role", &body.cc_role)?;
    set_role(&state, &user, &key, role).await
}

/// The legacy removed the manual role row, leaving the employee `generic`; here the role is
/// set to `generic`.
async fn remove_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(employee_id): Path<String>,
) -> ApiResult<Json<Value>> {
    superadmin(&user)?;
    let key = employee_key(&employee_id)?;
    let _employee = set_role(&state, &user, &key, Role::Generic).await?;
    Ok(Json(
        json!({"message": format!("Role of {employee_id} removed; the employee is now generic")}),
    ))
}

async fn list_emails(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    superadmin(&user)?;
    let employees = state.read_models.employees().await?;
    Ok(Json(Value::Array(
        employees
            .iter()
            .filter_map(|e| {
                e.account
                    .email
                    .as_ref()
                    .map(|email| json!({"employee_id": e.account.user_id, "email": email}))
            })
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct EmailBody {
    pub(crate) employee_id: String,
    pub(crate) email: String,
}

async fn change_email(state: &AppState, user: &CurrentUser, body: &EmailBody) -> ApiResult<Value> {
    let key = employee_key(&body.employee_id)?;
    let employee = state
        .read_models
        .user(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no employee {}", body.employee_id)))?;
    let committed = state
        .users
        .execute(
            &key,
            UserCommand::ChangeProfile {
                name: employee.account.name.clone(),
                email: Some(body.email.clone()),
            },
            &user.command_context(),
        )
        .await?;
    state.visible(committed).await?;
    Ok(json!({
        "employee_id": employee.account.user_id,
        "email": body.email.trim().to_lowercase(),
    }))
}

pub(crate) async fn set_email(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<EmailBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    superadmin(&user)?;
    Ok((
        StatusCode::CREATED,
        Json(change_email(&state, &user, &body).await?),
    ))
}

async fn set_emails_bulk(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<Vec<EmailBody>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    superadmin(&user)?;
    // Every mapping is checked before any is applied, so a bad one changes nothing.
    for (i, mapping) in body.iter().enumerate() {
        employee_key(&mapping.employee_id).map_err(|_| {
            ApiError::invalid(format!("[{i}].employee_id"), "is not an employee id")
        })?;
        if !mapping.email.contains('@') {
            return Err(ApiError::invalid(
                format!("[{i}].email"),
                "is not an email address",
            ));
        }
    }
    let mut mappings = Vec::with_capacity(body.len());
    for mapping in &body {
        mappings.push(change_email(&state, &user, mapping).await?);
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"count": mappings.len(), "mappings": mappings})),
    ))
}

pub(crate) async fn list_users(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    superadmin(&user)?;
    list_roles(State(state), user).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewEmployee {
    pub(crate) employee_id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    pub(crate) cc_role: String,
    pub(crate) password: String,
}

pub(crate) async fn add_employee(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<NewEmployee>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    superadmin(&user)?;
    let key = employee_key(&body.employee_id)?;
    let role = parse_role("cc_role", &body.cc_role)?;
    check_new_password("password", &body.password)?;
    let password = body.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(ApiError::internal)?;
    let committed = state
        .users
        .execute(
            &key,
            UserCommand::AddEmployee {
                employee_id: body.employee_id.clone(),
                name: body.name,
                email: body.email,
                role,
                password_hash,
            },
            &user.command_context(),
        )
        .await?;
    state.visible(committed).await?;
    let employee = state
        .read_models
        .user(&key)
        .await?
        .ok_or_else(|| ApiError::internal("the new employee is not in the read model"))?;
    Ok((StatusCode::CREATED, Json(role_row(&employee))))
}

async fn user_command(
    state: &AppState,
    user: &CurrentUser,
    employee_id: &str,
    command: UserCommand,
) -> ApiResult<Json<Value>> {
    superadmin(user)?;
    let key = employee_key(employee_id)?;
    change_employee(state, user, &key, command).await
}

pub(crate) async fn disable(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(employee_id): Path<String>,
) -> ApiResult<Json<Value>> {
    if employee_id.trim() == user.user_id && user.user_type == UserType::Employee {
        return Err(ApiError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    user_command(&state, &user, &employee_id, UserCommand::Disable).await
}

pub(crate) async fn enable(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(employee_id): Path<String>,
) -> ApiResult<Json<Value>> {
    user_command(&state, &user, &employee_id, UserCommand::Enable).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResetPassword {
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(employee_id): Path<String>,
    JsonBody(body): JsonBody<ResetPassword>,
) -> ApiResult<Json<Value>> {
    superadmin(&user)?;
    check_new_password("password", &body.password)?;
    let password = body.password;
    let password_hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(ApiError::internal)?;
    user_command(
        &state,
        &user,
        &employee_id,
        UserCommand::SetPassword {
            password_hash,
            reset: true,
            now: Utc::now(),
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodeRequest {
    account_number: String,
}

/// A one-time code for a customer to register with, shown once to the employee who hands it to
/// the customer (in person or by phone to the number on file).
async fn issue_registration_code(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CodeRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = user.employee()?;
    if !role.can_issue_registration_codes() {
        return Err(ApiError::Forbidden(
            "Requires one of: [superadmin, onm_team]".into(),
        ));
    }
    let account = AccountNumber::parse(&body.account_number)
        .map_err(|e| ApiError::invalid("account_number", e.to_string()))?;
    let customers = state
        .read_models
        .customers_by_account(account.as_str())
        .await?;
    let customer = customers
        .first()
        .ok_or_else(|| ApiError::NotFound(format!("Account {} not found", account.as_str())))?;
    let code = passwords::new_registration_code();
    let code_for_hash = code.clone();
    let code_hash = tokio::task::spawn_blocking(move || passwords::hash(&code_for_hash))
        .await
        .map_err(ApiError::internal)?;
    let expires_at = Utc::now() + TimeDelta::days(REGISTRATION_CODE_DAYS);
    let committed = state
        .users
        .execute(
            &user_aggregate_id(UserType::Customer, account.as_str()),
            UserCommand::IssueRegistrationCode {
                account_number: account.as_str().to_string(),
                code_hash,
                expires_at,
                issued_by: user.user_id.clone(),
            },
            &user.command_context(),
        )
        .await?;
    state.visible(committed).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "account_number": account.as_str(),
            "name": customer.full_name,
            "registration_code": code,
            "expires_at": expires_at.to_rfc3339(),
        })),
    ))
}
