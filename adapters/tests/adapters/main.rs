//! Integration tests of the adapters against real PostgreSQL and real ODBC drivers.
mod postgres;
mod store;
