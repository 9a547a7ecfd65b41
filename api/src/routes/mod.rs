//! The endpoints, one module per legacy router.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod customers;
pub(crate) mod mutations;
pub(crate) mod om_report;
pub(crate) mod tables;
pub(crate) mod tariff;
