//! Integration tests of the adapters against real PostgreSQL and real ODBC drivers.
mod acdb;
mod cdc;
mod postgres;
mod store;
