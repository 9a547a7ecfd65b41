//! ccare's adapters to the outside world.
//!
//! - [`acdb`]: reading the ACDB over ODBC (SQLite stand-in, Microsoft Access) or from an
//!   `.accdb`/`.mdb` file, and generating a synthetic ACDB;
//! - [`cdc`]: change capture, turning ACDB rows into events (snapshot, polling, reconciliation);
//! - [`store`]: the event store (global log, idempotent append, hash chain) over PostgreSQL;
//! - [`inbox`]: the durable inbox of WhatsApp webhook deliveries;
//! - [`nats`]: distribution of the global log over NATS JetStream (outbox relay, event feed);
//! - [`postgres`]: connecting to PostgreSQL, running migrations, and the embedded private cluster.
//!
//! Invariant: only this crate and `projections` speak SQL to PostgreSQL; only this crate speaks ODBC.
#![forbid(unsafe_code)]

pub mod acdb;
pub mod bench;
pub mod cdc;
pub mod commands;
mod error;
pub mod inbox;
pub mod nats;
pub mod outbox;
pub mod postgres;
pub mod store;
pub mod tariffs;
pub mod writer;

pub use error::{Error, Result};
