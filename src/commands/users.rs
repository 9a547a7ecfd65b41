//! `ccare users add|list|set-role|disable|enable|reset-password|registration-code`: the
//! operator's side of the accounts (the same commands the admin endpoints send, with the
//! operator as the actor).

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use adapters::commands::UserAccounts;
use anyhow::Context;
use api::auth::passwords;
use chrono::{TimeDelta, Utc};
use domain::account::AccountNumber;
use domain::auth::{
    check_new_password, parse_employee_id, user_aggregate_id, Role, UserCommand, UserType,
};
use domain::command::{CommandContext, CommandError, UserCommands};
use domain::envelope::{Actor, Channel};
use projections::ProjectorRunner;

use crate::cli::UsersCommand;
use crate::config::Settings;
use crate::database::Database;

pub async fn run(settings: Settings, command: UsersCommand) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let result = run_with(&db, command).await;
    db.close().await?;
    result
}

/// The actor of commands typed by the operator: the system channel, named after the OS user.
fn operator() -> CommandContext {
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "operator".into());
    CommandContext::new(Actor {
        user_id: Some(format!("cli:{login}")),
        role: Some("operator".into()),
        channel: Channel::System,
    })
}

async fn run_with(db: &Database, command: UsersCommand) -> anyhow::Result<()> {
    let users = UserAccounts::new(db.pool.clone(), Arc::new(passwords::Argon2Credentials));
    let context = operator();
    let employee = |id: &str| -> anyhow::Result<(String, String)> {
        let id = parse_employee_id(id)?;
        Ok((user_aggregate_id(UserType::Employee, &id), id))
    };
    match command {
        UsersCommand::Add {
            employee_id,
            role,
            name,
            email,
        } => {
            let (key, id) = employee(&employee_id)?;
            let role: Role = role.parse()?;
            let password = read_new_password(&format!("password for {id}"))?;
            let password_hash = passwords::hash(&password);
            execute(
                &users,
                &key,
                UserCommand::AddEmployee {
                    employee_id: id.clone(),
                    name,
                    email,
                    role,
                    password_hash,
                },
                &context,
            )
            .await?;
            println!("employee {id} added with role {role}");
        }
        UsersCommand::List => {
            let runner = ProjectorRunner::new(
                db.pool.clone(),
                vec![Arc::new(projections::users::UsersProjection)],
            );
            runner.ensure_ready().await?;
            runner.catch_up().await?;
            let employees = projections::users::employees(&db.pool).await?;
            println!(
                "{:<16} {:<14} {:<9} {:<28} email",
                "employee id", "role", "state", "name"
            );
            for user in employees {
                let account = &user.account;
                println!(
                    "{:<16} {:<14} {:<9} {:<28} {}",
                    account.user_id,
                    account.role.map_or("-", Role::as_str),
                    if account.disabled {
                        "disabled"
                    } else {
                        "active"
                    },
                    account.name,
                    account.email.as_deref().unwrap_or("")
                );
            }
        }
        UsersCommand::SetRole { employee_id, role } => {
            let (key, id) = employee(&employee_id)?;
            let role: Role = role.parse()?;
            execute(&users, &key, UserCommand::ChangeRole { role }, &context).await?;
            println!("{id} now has role {role}");
        }
        UsersCommand::Disable { employee_id } => {
            let (key, id) = employee(&employee_id)?;
            execute(&users, &key, UserCommand::Disable, &context).await?;
            println!("{id} is disabled: their tokens stop working at once");
        }
        UsersCommand::Enable { employee_id } => {
            let (key, id) = employee(&employee_id)?;
            execute(&users, &key, UserCommand::Enable, &context).await?;
            println!("{id} is enabled");
        }
        UsersCommand::ResetPassword { employee_id } => {
            let (key, id) = employee(&employee_id)?;
            let password = read_new_password(&format!("new password for {id}"))?;
            let password_hash = passwords::hash(&password);
            execute(
                &users,
                &key,
                UserCommand::SetPassword {
                    password_hash,
                    reset: true,
                    now: Utc::now(),
                },
                &context,
            )
            .await?;
            println!("password of {id} reset; their existing tokens no longer work");
        }
        UsersCommand::RegistrationCode { account_number } => {
            let account = AccountNumber::parse(&account_number)?;
            let code = passwords::new_registration_code();
            let expires_at = Utc::now() + TimeDelta::days(api::REGISTRATION_CODE_DAYS);
            execute(
                &users,
                &user_aggregate_id(UserType::Customer, account.as_str()),
                UserCommand::IssueRegistrationCode {
                    account_number: account.as_str().to_string(),
                    code_hash: passwords::hash(&code),
                    expires_at,
                    issued_by: context.actor.user_id.clone().unwrap_or_default(),
                },
                &context,
            )
            .await?;
            println!(
                "registration code for {}: {code} (valid until {})",
                account.as_str(),
                expires_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
    }
    Ok(())
}

async fn execute(
    users: &UserAccounts,
    key: &str,
    command: UserCommand,
    context: &CommandContext,
) -> anyhow::Result<()> {
    match users.execute(key, command, context).await {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(e)) => Err(anyhow::anyhow!("{e}")),
        Err(e) => Err(e.into()),
    }
}

/// A new password: one line from standard input when it is not a terminal (scripts), else typed
/// twice at a prompt that does not echo.
pub(crate) fn read_new_password(what: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password(format!("{what}: ")).context("reading the password")?;
        let second = rpassword::prompt_password(format!("{what} (again): "))
            .context("reading the password")?;
        anyhow::ensure!(
            first == second,
            "the two passwords differ; nothing was changed"
        );
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    check_new_password("password", &password)?;
    Ok(password)
}
