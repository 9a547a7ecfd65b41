//! The bridge's integration tests: the inbox worker and the outbox senders on real PostgreSQL,
//! with HTTP fakes of the Cloud API and uGridPlan.

mod senders;
mod support;
mod worker;
