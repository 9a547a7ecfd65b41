//! Logging, set up once at start-up. Logs go to stderr so command output on stdout stays clean.

use tracing_subscriber::{fmt, EnvFilter};

pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::progress::LogWriter)
        .with_target(false);
    // try_init: a second initialisation (tests) is not an error worth stopping for.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
