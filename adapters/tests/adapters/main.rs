//! Integration tests of the adapters against real PostgreSQL and real ODBC drivers.
mod acdb;
mod postgres;
mod store;
mod cdc;
