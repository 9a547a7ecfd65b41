//! `ccare serve` (the service roles) and `ccare demo` (everything on the embedded defaults).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use adapters::acdb::generate::{generate, GenerateOptions};
use adapters::commands::{TariffSchedules, UserAccounts};
use adapters::inbox::PgWebhookInbox;
use adapters::nats::{ConsumeOptions, EventFeed, NatsConfig, OutboxRelay, PROJECTOR_CONSUMER};
use adapters::store::EventStore;
use adapters::writer::WriteQueue;
use anyhow::Context;
use projections::ProjectorRunner;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{Role, ServeArgs};
use crate::config::{AcdbLocation, Settings};
use crate::database::{ensure_dir, Database};

/// How long a write request waits for the writer's outcome before answering 202 (pending).
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn serve(settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    let roles = resolve_roles(&settings, &args.role)?;
    let db = Database::open(&settings).await?;
    let result = run_roles(&settings, &db, &roles, None, false).await;
    db.close().await?;
    result
}

pub async fn demo(mut settings: Settings) -> anyhow::Result<()> {
    ensure_dir(&settings.data_dir)?;
    if settings.acdb.is_none() {
        let file = settings.data_dir.join("acdb.sqlite");
        if !file.exists() {
            eprintln!("Generating a synthetic ACDB at {} ...", file.display());
            let tmp = settings.data_dir.join("acdb.sqlite.partial");
            // A partial file from an interrupted run is useless: start it again.
            let _ = std::fs::remove_file(&tmp);
            generate(&tmp, &GenerateOptions::default(), &mut |_| {})?;
            std::fs::rename(&tmp, &file)
                .with_context(|| format!("moving the generated ACDB to {}", file.display()))?;
        }
        settings.acdb = Some(AcdbLocation::Odbc(sqlite_dsn(&file)?));
    }
    if settings.jwt_secret.is_none() {
        settings.jwt_secret = Some(demo_secret(&settings.data_dir)?);
    }
    if settings.whatsapp.is_none() {
        settings.whatsapp = Some(super::bridge::demo_whatsapp(&settings.data_dir)?);
    }
    let db = Database::open(&settings).await?;
    let admin_password = demo_admin(&settings.data_dir, &db).await?;
    let roles: BTreeSet<Role> = [Role::Api, Role::Cdc, Role::Projector, Role::Bridge].into();
    let next_steps =
        move |settings: &Settings| print_next_steps(settings, admin_password.as_deref());
    let result = run_roles(&settings, &db, &roles, Some(&next_steps), true).await;
    db.close().await?;
    result
}

fn sqlite_dsn(file: &Path) -> anyhow::Result<String> {
    let abs =
        std::fs::canonicalize(file).with_context(|| format!("resolving {}", file.display()))?;
    Ok(format!("Driver=SQLite3;Database={}", abs.display()))
}

/// The demo's token secret: generated on the first run and kept (readable by its owner only)
/// under the data directory, so tokens survive a restart. A real deployment sets
/// `CCARE_JWT_SECRET` instead.
fn demo_secret(data_dir: &Path) -> anyhow::Result<String> {
    demo_file_secret(&data_dir.join("jwt-secret"))
}

/// A random secret kept in `file` (owner-readable), generated when the file has none.
pub(crate) fn demo_file_secret(file: &Path) -> anyhow::Result<String> {
    if let Ok(secret) = std::fs::read_to_string(file) {
        if secret.trim().len() >= api::MIN_SECRET_BYTES {
            return Ok(secret.trim().to_string());
        }
    }
    let secret = api::auth::passwords::random_secret();
    write_private(file, &secret)?;
    Ok(secret)
}

/// The demo's superadmin `admin`, with a random password, created on the first run. Returns the
/// password when it was just created, so it is printed once (it is also kept, owner-readable,
/// in `demo-admin-password` under the data directory).
async fn demo_admin(data_dir: &Path, db: &Database) -> anyhow::Result<Option<String>> {
    let file = data_dir.join("demo-admin-password");
    if file.exists() {
        return Ok(None);
    }
    let password = api::auth::passwords::random_secret()[..16].to_string();
    let users = UserAccounts::new(
        db.pool.clone(),
        Arc::new(api::auth::passwords::Argon2Credentials),
    );
    let context = domain::command::CommandContext::new(domain::envelope::Actor::system());
    let added = domain::command::UserCommands::execute(
        &users,
        &domain::auth::user_aggregate_id(domain::auth::UserType::Employee, "admin"),
        domain::auth::UserCommand::AddEmployee {
            employee_id: "admin".into(),
            name: "Demo administrator".into(),
            email: None,
            role: domain::auth::Role::Superadmin,
            password_hash: api::auth::passwords::hash(&password),
        },
        &context,
    )
    .await;
    match added {
        Ok(_)
        | Err(domain::command::CommandError::Rejected(domain::auth::UserError::AlreadyExists)) => {}
        Err(e) => return Err(anyhow::anyhow!("creating the demo administrator: {e}")),
    }
    write_private(&file, &password)?;
    Ok(Some(password))
}

/// Writes `contents` to `file`, readable and writable by the owner only.
fn write_private(file: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options
        .open(file)
        .with_context(|| format!("writing {}", file.display()))?;
    out.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}

fn print_next_steps(settings: &Settings, admin_password: Option<&str>) {
    let data_dir = settings.data_dir.display();
    eprintln!();
    eprintln!("ccare is running.");
    eprintln!("  portal:        http://{}/portal/", settings.listen);
    eprintln!("  health:        http://{}/health", settings.listen);
    match admin_password {
        Some(password) => eprintln!(
            "  log in:        employee id `admin`, password `{password}` (shown once; also in {data_dir}/demo-admin-password)"
        ),
        None => eprintln!(
            "  log in:        employee id `admin`, password in {data_dir}/demo-admin-password"
        ),
    }
    eprintln!(
        "  token:         curl -s -X POST http://{}/api/auth/employee-login -H 'content-type: application/json' -d '{{\"employee_id\":\"admin\",\"password\":\"…\"}}'",
        settings.listen
    );
    eprintln!("  status:        CCARE_DATA_DIR={data_dir} ccare status");
    eprintln!("  verify chain:  CCARE_DATA_DIR={data_dir} ccare audit verify");
    eprintln!("  read models:   CCARE_DATA_DIR={data_dir} ccare projections status");
    eprintln!(
        "  WhatsApp:      CCARE_DATA_DIR={data_dir} ccare bridge simulate --from +26658001234 \"Ha ke na motlakase\""
    );
    if let Some(AcdbLocation::Odbc(dsn)) = &settings.acdb {
        eprintln!("  edit the ACDB: isql -k '{dsn}'   (changes appear within one poll interval)");
    }
    eprintln!("Press Ctrl-C to stop; running it again reuses the data in {data_dir}.");
}

/// The roles to run: those asked for, or every configured one.
fn resolve_roles(settings: &Settings, asked: &[Role]) -> anyhow::Result<BTreeSet<Role>> {
    if asked.is_empty() {
        let mut roles: BTreeSet<Role> = [Role::Api, Role::Projector].into();
        if settings.acdb.is_some() {
            roles.insert(Role::Cdc);
        } else {
            tracing::warn!("cdc role not started: neither ACDB_DSN nor ACDB_FILE is set");
        }
        if settings.nats_url.is_some() {
            roles.insert(Role::Relay);
        }
        if settings.whatsapp.is_some() {
            roles.insert(Role::Bridge);
        } else {
            tracing::info!(
                "bridge role not started: WhatsApp is not configured (WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET)"
            );
        }
        return Ok(roles);
    }
    let roles: BTreeSet<Role> = asked.iter().copied().collect();
    if roles.contains(&Role::Cdc) {
        settings.require_acdb()?;
    }
    if roles.contains(&Role::Relay) && settings.nats_url.is_none() {
        anyhow::bail!("configuration error: NATS_URL is required by the relay role");
    }
    if roles.contains(&Role::Bridge) {
        settings.require_whatsapp()?;
    }
    Ok(roles)
}

async fn run_roles(
    settings: &Settings,
    db: &Database,
    roles: &BTreeSet<Role>,
    after_start: Option<&(dyn Fn(&Settings) + Sync)>,
    demo: bool,
) -> anyhow::Result<()> {
    let nats = settings.nats_url.as_ref().map(|url| NatsConfig {
        stream: settings.nats_stream.clone(),
        ..NatsConfig::new(url.clone())
    });
    let stop = CancellationToken::new();
    let mut tasks: JoinSet<(Role, anyhow::Result<()>)> = JoinSet::new();

    if roles.contains(&Role::Cdc) {
        let location = settings.require_acdb()?.clone();
        // A pool of its own: at shutdown a capture cycle is abandoned mid-statement, and sqlx
        // can leave such a connection (a COPY cut off) out of step with the server; no other role
        // must be handed one. The pool is closed with the role.
        let cdc_pool = adapters::postgres::connect(&db.url).await?;
        let cdc = super::cdc::build(settings, cdc_pool.clone(), &location);
        cdc.check_source().await?;
        // The first cycle (the initial import on a new database) runs before the API opens, so
        // the demo prints its progress bar on a quiet terminal.
        cdc.run_cycle().await?;
        let token = stop.clone();
        tasks.spawn(async move {
            let ran = cdc.run(token.cancelled_owned()).await;
            cdc_pool.close().await;
            (Role::Cdc, ran.map_err(Into::into))
        });
        let writer = super::cdc::writer(db.pool.clone(), &location);
        let token = stop.clone();
        tasks.spawn(async move {
            (
                Role::Cdc,
                writer
                    .run(token.cancelled_owned())
                    .await
                    .map_err(Into::into),
            )
        });
    }
    if roles.contains(&Role::Relay) {
        let config = nats.clone().context("the relay role needs NATS_URL")?;
        let relay = OutboxRelay::connect(db.pool.clone(), config).await?;
        let token = stop.clone();
        tasks.spawn(async move {
            (
                Role::Relay,
                relay.run(token.cancelled_owned()).await.map_err(Into::into),
            )
        });
    }
    if roles.contains(&Role::Projector) {
        let runner = Arc::new(ProjectorRunner::new(db.pool.clone(), projections::all()));
        runner.ensure_ready().await?;
        let token = stop.clone();
        match nats.clone() {
            // Events come from the stream, not from PostgreSQL.
            Some(config) => {
                let stream = config.stream.clone();
                let feed = EventFeed::connect(config, PROJECTOR_CONSUMER).await?;
                tracing::info!(
                    stream,
                    consumer = PROJECTOR_CONSUMER,
                    "projector reads events from NATS"
                );
                tasks.spawn(async move {
                    let apply = move |events: Vec<domain::event::StoredEvent>| {
                        let runner = runner.clone();
                        async move { runner.apply_delivered(&events).await }
                    };
                    let consumed = adapters::nats::consume(
                        &feed,
                        apply,
                        ConsumeOptions::default(),
                        token.cancelled_owned(),
                    )
                    .await;
                    (Role::Projector, consumed.map_err(Into::into))
                });
            }
            None => {
                tasks.spawn(async move {
                    (
                        Role::Projector,
                        runner
                            .run(token.cancelled_owned())
                            .await
                            .map_err(Into::into),
                    )
                });
            }
        }
    }
    if roles.contains(&Role::Api) {
        let tokens =
            api::TokenKeys::new(settings.require_jwt_secret()?.as_bytes(), settings.jwt_ttl)?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} (CCARE_LISTEN)", settings.listen))?;
        let ports = api::Ports {
            users: Arc::new(UserAccounts::new(
                db.pool.clone(),
                Arc::new(api::auth::passwords::Argon2Credentials),
            )),
            writes: Arc::new(WriteQueue::new(db.pool.clone(), WRITE_WAIT)),
            tariffs: Arc::new(TariffSchedules::new(db.pool.clone())),
            tickets: Arc::new(adapters::commands::Tickets::new(db.pool.clone())),
            chain: Arc::new(EventStore::new(db.pool.clone())),
            whatsapp: settings
                .whatsapp
                .as_ref()
                .map(|whatsapp| api::WhatsAppWebhook {
                    verify_token: whatsapp.verify_token.clone(),
                    app_secret: whatsapp.app_secret.clone(),
                    inbox: Arc::new(PgWebhookInbox::new(db.pool.clone())),
                }),
        };
        if ports.whatsapp.is_some() {
            tracing::info!("the WhatsApp webhook stores deliveries at /webhooks/whatsapp");
        }
        let state =
            api::AppState::new(projections::ReadModels::new(db.pool.clone()), ports, tokens);
        let token = stop.clone();
        tracing::info!(address = %settings.listen, "serving HTTP");
        tasks.spawn(async move {
            let served = api::serve(listener, state, token.cancelled_owned()).await;
            (Role::Api, served.map_err(Into::into))
        });
    }
    if roles.contains(&Role::Bridge) {
        let mut bridge_settings = settings.clone();
        // Without Meta credentials the demo's replies go to a local stand-in, which prints them.
        if demo && bridge_settings.bridge.cloud_api.is_none() {
            bridge_settings.bridge.cloud_api =
                Some(super::bridge::start_cloud_api_simulator(&mut tasks, &stop).await?);
        }
        super::bridge::spawn(&bridge_settings, db, &mut tasks, &stop)?;
    }
    if let Some(after_start) = after_start {
        after_start(settings);
    }

    let mut outcome = Ok(());
    tokio::select! {
        _ = crate::shutdown::signal() => {}
        Some(joined) = tasks.join_next() => {
            outcome = role_outcome(joined);
        }
    }
    stop.cancel();
    while let Some(joined) = tasks.join_next().await {
        let r = role_outcome(joined);
        if outcome.is_ok() {
            outcome = r;
        }
    }
    outcome
}

fn role_outcome(
    joined: Result<(Role, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((role, result)) => result.with_context(|| format!("the {role:?} role stopped")),
        Err(e) => Err(anyhow::anyhow!("a role task failed: {e}")),
    }
}
