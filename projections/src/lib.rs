//! ccare's read models and the projector runner.
//!
//! Invariant: projections only read the global log and write their own read-model tables;
//! they never emit commands and never touch the ACDB.
#![forbid(unsafe_code)]
