//! Helpers shared by ccare's integration tests.
#![forbid(unsafe_code)]
pub mod acdb;
pub mod events;
pub mod nats;
pub mod pg;
