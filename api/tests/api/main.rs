//! Integration tests of the HTTP API against a real PostgreSQL, a real ODBC ACDB imported by
//! the real change capture, and the projector runner following the log.

mod auth;
mod support;
mod tariffs;
mod writes;
