//! The endpoints, one module per legacy router.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod browse;
pub(crate) mod customers;
pub(crate) mod dashboard;
pub(crate) mod mutations;
pub(crate) mod om_report;
pub(crate) mod read_models;
pub(crate) mod tables;
pub(crate) mod tariff;
pub(crate) mod tickets;
pub(crate) mod whatsapp;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// `value` rounded to `dp` decimals, half to even, as a JSON number. Figures are exact until here;
/// the number's text is the exact rounded decimal (a value of at most 15 significant digits
/// survives the double that carries it in JSON).
pub(crate) fn num(value: Decimal, dp: u32) -> Value {
    value
        .round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
        .to_f64()
        .map_or(Value::Null, Value::from)
}
