//! Integration tests of the HTTP API against a real PostgreSQL, a real ODBC ACDB imported by
//! the real change capture, and the projector runner following the log.
// Tests hold their transactions to the end: none is ever cancelled during BEGIN (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod audit;
mod auth;
mod browse;
mod customers;
mod dashboards;
mod openapi;
mod portal;
mod portal_admin;
mod portal_customer_forms;
mod portal_customers;
mod portal_mutations;
mod portal_report;
mod portal_self_service;
mod portal_tables;
mod portal_tariffs;
mod portal_tickets;
mod read_models;
mod rebuilds;
mod reports;
mod support;
mod tariffs;
mod tickets;
mod whatsapp;
mod writes;
