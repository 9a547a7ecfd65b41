//! One module per command; `run` dispatches.

mod acdb;
mod analysts;
mod audit;
mod bench;
mod bridge;
pub(crate) mod cdc;
mod projections;
mod serve;
mod status;
mod users;

use crate::cli::{
    AcdbCommand, AuditCommand, BenchCommand, BridgeCommand, Command, ProjectionsCommand,
};
use crate::config::Settings;
use crate::database::Database;

pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Demo => serve::demo(settings).await,
        Command::Serve(args) => serve::serve(settings, args).await,
        Command::Bridge {
            command: BridgeCommand::Simulate { from, name, text },
        } => bridge::simulate(settings, &from, &name, &text.join(" ")).await,
        Command::Bridge {
            command: BridgeCommand::Replay,
        } => bridge::replay(settings).await,
        Command::Cdc(args) => cdc::run(settings, args).await,
        Command::Status { json } => status::run(settings, json).await,
        Command::Audit { command } => match command {
            AuditCommand::Verify => audit::verify(settings).await,
            AuditCommand::Replay { until, schema } => audit::replay(settings, &until, schema).await,
        },
        Command::Projections { command } => match command {
            ProjectionsCommand::Status { json } => projections::status(settings, json).await,
            ProjectionsCommand::Rebuild { name } => projections::rebuild(settings, name).await,
        },
        Command::Acdb {
            command: AcdbCommand::Generate(args),
        } => acdb::generate(args),
        Command::Bench { command } => match command {
            BenchCommand::Import { customers, years } => {
                bench::import(settings, customers, years).await
            }
            BenchCommand::Write {
                customers,
                updates,
                clients,
            } => bench::write(settings, customers, updates, clients).await,
            BenchCommand::Bridge {
                customers,
                messages,
                clients,
            } => {
                let bench = bench::BridgeBench {
                    customers,
                    messages,
                    clients,
                };
                bench::bridge(settings, bench).await
            }
            BenchCommand::Portal {
                customers,
                years,
                clients,
                requests,
            } => {
                let bench = bench::PortalBench {
                    customers,
                    years,
                    clients,
                    requests,
                };
                bench::portal(settings, bench).await
            }
            BenchCommand::Read {
                customers,
                years,
                clients,
                requests,
                changes,
                parts,
            } => {
                let bench = bench::ReadBench {
                    customers,
                    years,
                    clients,
                    requests,
                    changes,
                    latency: parts.contains(&crate::cli::ReadPart::Latency),
                    rebuild: parts.contains(&crate::cli::ReadPart::Rebuild),
                    change: parts.contains(&crate::cli::ReadPart::Change),
                };
                bench::read(settings, bench).await
            }
        },
        Command::Users { command } => users::run(settings, command).await,
        Command::Analysts { command } => analysts::run(settings, command).await,
        Command::Migrate => {
            let db = Database::open(&settings).await?;
            println!("migrations applied");
            db.close().await
        }
    }
}

/// An error and its causes on one line, outermost first, without repeating a cause that the
/// outer message already contains.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
