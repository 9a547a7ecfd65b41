//! Integration tests of the projector runner and read models against a real PostgreSQL.
// Tests hold their transactions to the end: none is ever cancelled during BEGIN (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod analysts;
mod analytics;
mod conversations;
mod customers;
mod runner;
mod support;
mod tickets;
