//! The legacy customer lookups (legacy-system.md §1.1) and the customer's own profile.
//!
//! The legacy answered `/customers/*` and `/sites` without any authentication, handing out names,
//! phones and plots to anyone (weakness 3). Here they need an employee token; a customer reads
//! their own record through `/api/my/profile`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use domain::phone::PhoneNumber;
use projections::customers::Customer;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::mutations::int_param;
use crate::{customer_json, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/customers/by-phone/{phone}", get(by_phone))
        .route("/customers/by-id/{customer_id}", get(by_id))
        .route("/api/customers/by-id/{customer_id}", get(by_id))
        .route("/customers/by-account/{account}", get(by_account))
        .route("/customers/search", get(search))
        .route("/sites", get(sites))
        .route("/api/sites", get(sites))
        .route("/api/my/profile", get(my_profile))
}

/// The normalised customer with their account numbers.
fn with_accounts(customer: &Customer) -> Value {
    let mut body = customer_json(customer);
    body["account_numbers"] = json!(customer.account_numbers);
    body
}

async fn by_phone(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(phone): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if digits < 5 {
        return Err(ApiError::BadRequest("Phone number too short".into()));
    }
    let phone = PhoneNumber::parse(&phone)
        .map_err(|e| ApiError::BadRequest(format!("{phone:?} is not a phone number: {e}")))?;
    let customers = state.read_models.customers_by_phone(&phone).await?;
    if customers.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No customer found with phone {}",
            phone.as_str()
        )));
    }
    Ok(Json(json!({
        "customers": customers.iter().map(with_accounts).collect::<Vec<_>>(),
        "count": customers.len(),
    })))
}

async fn by_id(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(customer_id): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let id: i64 = customer_id.trim().parse().map_err(|_| {
        ApiError::invalid(
            "customer_id",
            format!("{customer_id:?} is not a customer id"),
        )
    })?;
    let customer = state
        .read_models
        .customer_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Customer {id} not found")))?;
    Ok(Json(json!({ "customer": with_accounts(&customer) })))
}

async fn by_account(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(account): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let customer = state
        .read_models
        .customers_by_account(&account)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::NotFound(format!("No customer found for account {}", account.trim()))
        })?;
    Ok(Json(json!({ "customer": with_accounts(&customer) })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let q = query.q.unwrap_or_default();
    if q.trim().chars().count() < 2 {
        return Err(ApiError::invalid("q", "must be at least 2 characters"));
    }
    let limit = int_param("limit", query.limit.as_deref(), 20, 1, 100)?;
    let customers = state.read_models.search_customers(&q, limit).await?;
    Ok(Json(json!({
        "customers": customers.iter().map(customer_json).collect::<Vec<_>>(),
        "count": customers.len(),
        "query": q,
    })))
}

async fn sites(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let sites = state.read_models.sites().await?;
    Ok(Json(json!({
        "sites": sites
            .iter()
            .map(|(concession, count)| json!({"concession": concession, "customer_count": count}))
            .collect::<Vec<_>>(),
        "total_sites": sites.len(),
    })))
}

pub(crate) async fn my_profile(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    let account = user.customer()?;
    let customer = state
        .read_models
        .customers_by_account(account)
        .await?
        .into_iter()
        .next();
    Ok(Json(match customer {
        Some(customer) => {
            let mut body = with_accounts(&customer);
            body["account_number"] = json!(account);
            json!({ "customer": body })
        }
        None => json!({
            "customer": {
                "account_number": account,
                "customer_id": null,
                "first_name": "",
                "last_name": "",
                "account_numbers": [account],
            }
        }),
    }))
}
