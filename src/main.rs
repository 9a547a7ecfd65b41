//! `ccare`: configuration and wiring only; each command lives in `commands`.
#![forbid(unsafe_code)]
// A binary's modules are private to it: `pub` inside them is crate visibility, not an API.
#![allow(unreachable_pub)]

mod cli;
mod commands;
mod config;
mod database;
mod progress;
mod shutdown;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let settings = match config::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ccare: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_filter, settings.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ccare: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, outermost first.
            eprintln!("ccare: {}", commands::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
