//! Integration tests of the projector runner and read models against a real PostgreSQL.

mod customers;
mod runner;
mod support;
