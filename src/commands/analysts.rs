//! `ccare analysts grant|revoke|list`: read-only PostgreSQL roles for analysts.

use projections::analysts::{self, Granted};
use projections::ProjectorRunner;

use crate::cli::AnalystsCommand;
use crate::commands::users::read_new_password;
use crate::config::Settings;
use crate::database::Database;

pub async fn run(settings: Settings, command: AnalystsCommand) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let result = run_with(&db, command).await;
    db.close().await?;
    result
}

async fn run_with(db: &Database, command: AnalystsCommand) -> anyhow::Result<()> {
    match command {
        AnalystsCommand::Grant { name, no_password } => {
            // The read_model views must exist for the grant on them to mean anything.
            let all = projections::all();
            ProjectorRunner::new(db.pool.clone(), all.clone())
                .ensure_ready()
                .await?;
            let password = if no_password {
                None
            } else {
                Some(read_new_password(&format!("password for analyst {name}"))?)
            };
            let done = analysts::grant(&db.pool, &all, &name, password.as_deref()).await?;
            let what = match done {
                Granted::Created => "created",
                Granted::Updated => "updated",
            };
            println!(
                "analyst role {name} {what}: it may read schema read_model (read-only sessions, \
                 5 min statement timeout) and nothing else"
            );
            println!(
                "connect with: psql \"host=… dbname=… user={name}\" -c 'select * from read_model.period_totals limit 5'"
            );
        }
        AnalystsCommand::Revoke { name } => {
            if analysts::revoke(&db.pool, &name).await? {
                println!("{name} is no longer an analyst (the login role remains; DROP ROLE it if no longer needed)");
            } else {
                println!("{name} was not an analyst; nothing changed");
            }
        }
        AnalystsCommand::List => {
            for name in analysts::list(&db.pool).await? {
                println!("{name}");
            }
        }
    }
    Ok(())
}
