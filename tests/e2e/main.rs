//! End-to-end tests of the `ccare` binary: what an operator sees when something is wrong.

mod architecture;
mod bridge;
mod browser;
mod errors;
mod helpers;
mod nats;
mod users;
