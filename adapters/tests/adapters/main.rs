//! Integration tests of the adapters against real PostgreSQL and real ODBC drivers.
// Tests hold their transactions to the end: none is ever cancelled during BEGIN (clippy.toml).
#![allow(clippy::disallowed_methods)]
mod acdb;
mod cdc;
mod inbox;
mod nats;
mod outbox;
mod postgres;
mod store;
mod writer;
