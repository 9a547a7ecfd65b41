//! The per-customer dashboards (legacy-system.md §1.5, §3.12): `/api/my/dashboard` for the
//! customer, `/api/customer-data/{account}` for employees (profile, meter, tariff, dashboard and
//! the transactions).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use domain::account::CustomerLookup;
use domain::dashboard::{Dashboard, LedgerEntry};
use domain::dates::maseru_local;

use projections::reports::{self, LedgerRow};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::num;
use crate::routes::tariff::{override_schedules, resolve_with};
use crate::{customer_json, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/my/dashboard", get(my_dashboard))
        .route("/api/customer-data/{account}", get(customer_data))
}

fn dashboard_json(rows: &[LedgerRow]) -> Value {
    let entries: Vec<LedgerEntry> = rows
        .iter()
        .map(|r| LedgerEntry {
            at: r.at,
            amount: r.amount,
            kwh: r.kwh,
            balance: r.balance,
        })
        .collect();
    let board = Dashboard::compute(&entries, maseru_local(Utc::now()));
    let days = |series: &[(chrono::NaiveDate, Decimal)]| -> Vec<Value> {
        series
            .iter()
            .map(|(date, kwh)| json!({"date": date.to_string(), "kwh": num(*kwh, 2)}))
            .collect()
    };
    json!({
        "balance_kwh": num(board.balance_kwh, 2),
        "last_payment": board.last_payment.map(|p| json!({
            "amount": num(p.amount, 2),
            "date": p.date.to_string(),
            "kwh_purchased": num(p.kwh, 2),
        })),
        "avg_kwh_per_day": num(board.avg_kwh_per_day, 2),
        "estimated_recharge_seconds": board.estimated_recharge_seconds,
        "total_kwh_all_time": num(board.total_kwh, 1),
        "total_lsl_all_time": num(board.total_lsl, 2),
        "daily_7d": days(&board.daily_7d),
        "daily_30d": days(&board.daily_30d),
        "monthly_12m": board.monthly_12m.iter().map(|(m, kwh)| json!({"month": m.to_string(), "kwh": num(*kwh, 1)})).collect::<Vec<_>>(),
    })
}

async fn my_dashboard(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    let account = user.customer()?;
    let (_, rows) = reports::account_ledger(state.read_models.pool(), account).await?;
    Ok(Json(dashboard_json(&rows)))
}

async fn customer_data(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let pool = state.read_models.pool();
    let lookup = CustomerLookup::parse(&raw)
        .ok_or_else(|| ApiError::invalid("account_number", "must not be empty"))?;
    let (account, customer) = match lookup {
        CustomerLookup::CustomerId(id) => {
            let customer = state
                .read_models
                .customer_by_id(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("Customer {id} not found")))?;
            let account = customer.account_numbers.first().cloned().ok_or_else(|| {
                ApiError::NotFound(format!("Customer {id} has no account number"))
            })?;
            (account, Some(customer))
        }
        CustomerLookup::Account(account) => {
            let customer = state
                .read_models
                .customers_by_account(&account)
                .await?
                .into_iter()
                .next();
            (account, customer)
        }
    };
    let (ledger, rows) = reports::account_ledger(pool, &account).await?;
    if customer.is_none() && rows.is_empty() {
        return Err(ApiError::NotFound(format!("Account {account} not found")));
    }
    let meter = reports::meter_of_account(pool, &account).await?;
    let meter_json = match &meter {
        Some(m) => json!({
            "meterid": m.meter_id,
            "community": m.community,
            "customer_type": m.customer_type,
            "village": m.village,
            "status": m.status,
            "connect_date": m.connect_date.map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()),
        }),
        None => rows
            .iter()
            .find_map(|r| r.meter_id.clone())
            .map_or(Value::Null, |id| json!({"meterid": id})),
    };
    let customer_id = customer.as_ref().map(|c| c.customer_id);
    let concession = customer
        .as_ref()
        .and_then(|c| c.site.as_ref().map(|s| s.as_str().to_string()))
        .or_else(|| {
            meter
                .as_ref()
                .and_then(|m| m.community.clone())
                .map(|c| c.to_uppercase())
        });
    let now = maseru_local(Utc::now());
    let tariff = match state.read_models.global_rate_at(now, now).await? {
        None => Value::Null,
        Some(global) => {
            let (customer_schedule, site_schedule) =
                override_schedules(&state, customer_id, concession.as_deref()).await?;
            let resolved = resolve_with(now, &customer_schedule, &site_schedule, global);
            json!({
                "rate_lsl": num(resolved.rate, 4),
                "source": resolved.source,
                "source_key": resolved.source_key,
                "effective_from": resolved.effective_from.map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string()),
            })
        }
    };
    let transactions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.txn_id,
                "account": r.account,
                "meter": r.meter_id,
                "date": r.at.map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()),
                "amount_lsl": num(r.amount, 2),
                "rate": r.rate.map(|v| num(v, 2)),
                "kwh": num(r.kwh, 2),
                "is_payment": r.payment,
                "balance": r.balance.map(|v| num(v, 2)),
            })
        })
        .collect();
    Ok(Json(json!({
        "account_number": account,
        "profile": customer.as_ref().map_or(Value::Null, customer_json),
        "meter": meter_json,
        "tariff": tariff,
        "dashboard": dashboard_json(&rows),
        "transactions": transactions,
        "transaction_count": rows.len(),
        "source_table": ledger,
    })))
}
