//! A private PostgreSQL cluster run from the system's binaries, for machines without a managed
//! database server (and for tests).
//!
//! Layout of the cluster directory:
//!
//! ```text
//! data/            PGDATA (initdb); data/ccare.conf holds ccare's settings, rewritten at every start
//! data/log/        the server log, one file per weekday (rotated daily, kept a week)
//! run/             the Unix socket
//! port             the TCP port chosen at initialisation (127.0.0.1 only)
//! startup.log      pg_ctl's log of the last start (reasons a start failed)
//! ```
//!
//! PostgreSQL refuses to run as root. When ccare runs as root, initdb and pg_ctl run as the
//! `postgres` system user through `runuser` (util-linux), and the cluster directory belongs to
//! that user; if the data directory is somewhere that user cannot reach (under `/root`, say), the
//! cluster lives under `/var/lib/ccare/clusters/` instead and a note in the data directory says where.
//!
//! Authentication is `trust` on 127.0.0.1: the cluster is private to the machine, like the data
//! directory itself. Do not use it on a machine shared with untrusted local users.

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::process::Command;

use crate::{Error, Result};

/// The database ccare uses in its private cluster.
const DATABASE: &str = "ccare";
/// The cluster's superuser (initdb -U), which ccare connects as.
const SUPERUSER: &str = "postgres";
/// The system account PostgreSQL runs as when ccare runs as root.
const SERVICE_USER: &str = "postgres";
/// Where clusters go when the data directory is out of the service user's reach.
const RELOCATED_CLUSTERS: &str = "/var/lib/ccare/clusters";
const NOTE_FILE: &str = "CLUSTER_LOCATION";

const DATA: &str = "data";
const RUN: &str = "run";
const PORT_FILE: &str = "port";
const STARTUP_LOG: &str = "startup.log";
const CONF_FILE: &str = "ccare.conf";
const INCLUDE_LINE: &str = "include = 'ccare.conf'";

/// pg_ctl's wait limit for a start (crash recovery of a large cluster can take a while).
const START_TIMEOUT_SECS: u32 = 300;
/// Starts retried while a crashed server's children still hold its shared memory.
const START_ATTEMPTS: u32 = 10;
/// Looks at a server that seems to be running but refuses connections, before giving up.
const JOIN_ATTEMPTS: u32 = 10;
/// `sun_path` holds 108 bytes on Linux (104 on the BSDs), including the terminating NUL.
const MAX_SOCKET_PATH: usize = 100;

/// How much the cluster trades safety for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync and synchronous commit on: a committed event survives a power cut.
    #[default]
    Durable,
    /// fsync, synchronous commit and full-page writes off: for throwaway test clusters only;
    /// a crash can corrupt the cluster.
    Throwaway,
}

/// How a server is shut down (pg_ctl's `-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Disconnect clients, write a checkpoint, exit.
    Fast,
    /// Exit at once; the next start runs crash recovery. For clusters about to be deleted.
    Immediate,
}

impl ShutdownMode {
    fn as_arg(self) -> &'static str {
        match self {
            ShutdownMode::Fast => "fast",
            ShutdownMode::Immediate => "immediate",
        }
    }
}

/// A private PostgreSQL cluster. Started by [`EmbeddedPostgres::start`]; stopped by
/// [`EmbeddedPostgres::stop`] or, failing that, when dropped (if this process started it).
#[derive(Debug)]
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    /// The `postgres` account PostgreSQL runs as when ccare runs as root.
    service_user: Option<ServiceUser>,
    /// Whether this process started the server. A server found already running (another ccare
    /// process started it) is joined and left running.
    owns_server: bool,
    stopped: bool,
}

#[derive(Debug, Clone)]
struct ServiceUser {
    uid: u32,
    gid: u32,
}

/// Finds the directory of the PostgreSQL server binaries (`initdb`, `pg_ctl`): `explicit` if
/// given, else the newest `/usr/lib/postgresql/*/bin` (Debian, Ubuntu), else `pg_config --bindir`.
pub fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return if has_server_binaries(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(Error::EmbeddedPostgres(format!(
                "{} does not hold the PostgreSQL server binaries initdb and pg_ctl (CCARE_PG_BIN)",
                dir.display()
            )))
        };
    }
    if let Some(dir) = newest_versioned_bin_dir(Path::new("/usr/lib/postgresql")) {
        return Ok(dir);
    }
    if let Some(dir) = pg_config_bin_dir() {
        return Ok(dir);
    }
    Err(Error::EmbeddedPostgres(
        "the PostgreSQL server binaries (initdb, pg_ctl) are not in /usr/lib/postgresql/*/bin nor \
         where `pg_config --bindir` points: install the `postgresql` package (apt-get install \
         postgresql), or set CCARE_PG_BIN to their directory, or set DATABASE_URL"
            .into(),
    ))
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// `<root>/<version>/bin` with the highest version (compared numerically: 9.6 < 10 < 15).
fn newest_versioned_bin_dir(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            has_server_binaries(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

fn pg_config_bin_dir() -> Option<PathBuf> {
    let output = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    has_server_binaries(&dir).then_some(dir)
}

impl EmbeddedPostgres {
    /// Starts the durable cluster kept in `data_dir` (initialising it on first use) with the
    /// binaries in `bin_dir`, and makes sure the `ccare` database exists. If a server already
    /// runs from that cluster (another ccare process started it), joins it instead.
    pub async fn start(data_dir: &Path, bin_dir: &Path) -> Result<Self> {
        Self::start_with(data_dir, bin_dir, Durability::Durable).await
    }

    /// [`EmbeddedPostgres::start`] with a choice of [`Durability`].
    pub async fn start_with(
        data_dir: &Path,
        bin_dir: &Path,
        durability: Durability,
    ) -> Result<Self> {
        if !has_server_binaries(bin_dir) {
            return Err(Error::EmbeddedPostgres(format!(
                "{} does not hold the PostgreSQL server binaries initdb and pg_ctl",
                bin_dir.display()
            )));
        }
        let service_user = ServiceUser::needed()?;
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::io(
                format!(
                    "creating the PostgreSQL data directory {}",
                    data_dir.display()
                ),
                e,
            )
        })?;
        let data_dir = data_dir.canonicalize().map_err(|e| {
            Error::io(
                format!(
                    "resolving the PostgreSQL data directory {}",
                    data_dir.display()
                ),
                e,
            )
        })?;
        let cluster_dir = cluster_dir_for(&data_dir, service_user.as_ref()).await?;

        let mut cluster = EmbeddedPostgres {
            cluster_dir,
            bin_dir: bin_dir.to_path_buf(),
            port: 0,
            service_user,
            owns_server: false,
            stopped: false,
        };
        cluster.prepare_directories()?;
        if cluster.join_running_server().await? {
            return Ok(cluster);
        }
        if !cluster.is_initialised() {
            cluster.initdb().await?;
        }
        cluster.start_server(durability).await?;
        cluster.ensure_database().await?;
        Ok(cluster)
    }

    /// Joins the server already running from this cluster, if there is one. A server that is
    /// dying (killed, or shutting down) may still look alive for a moment: if it refuses
    /// connections, it is looked at again until it is either serving or gone.
    async fn join_running_server(&mut self) -> Result<bool> {
        for attempt in 1..=JOIN_ATTEMPTS {
            let Some(port) = self.running_server_port().await? else {
                return Ok(false);
            };
            self.port = port;
            match self.ensure_database().await {
                Ok(()) => {
                    tracing::info!(cluster = %self.cluster_dir.display(), port, "joined the private PostgreSQL already running");
                    return Ok(true);
                }
                Err(e) if attempt == JOIN_ATTEMPTS => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "the running private PostgreSQL refused a connection; looking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Ok(false)
    }

    /// `postgres://postgres@127.0.0.1:<port>/ccare`.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster (the data directory given to `start`, unless the
    /// cluster had to be relocated; see the module documentation).
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// Whether this process started the server (and so stops it), rather than joining one.
    pub fn owns_server(&self) -> bool {
        self.owns_server
    }

    /// Stops the server (fast shutdown: clients are disconnected, a checkpoint is written) if
    /// this process started it; a joined server is left running for the process that owns it.
    pub async fn stop(mut self) -> Result<()> {
        self.stopped = true;
        if !self.owns_server {
            return Ok(());
        }
        let argv = self.stop_argv(ShutdownMode::Fast);
        let output = self.run(&argv).await?;
        if !output.status.success() {
            return Err(Error::EmbeddedPostgres(format!(
                "pg_ctl stop failed for the cluster in {}: {}",
                self.cluster_dir.display(),
                last_lines(&String::from_utf8_lossy(&output.stderr), 3)
            )));
        }
        tracing::info!(cluster = %self.cluster_dir.display(), "private PostgreSQL stopped");
        Ok(())
    }

    /// The command line (program first) that stops this cluster's server, including the
    /// `runuser` prefix when needed. For watchdogs that must stop the server from outside
    /// this process.
    pub fn stop_argv(&self, mode: ShutdownMode) -> Vec<OsString> {
        self.argv(
            "pg_ctl",
            [
                OsStr::new("stop"),
                OsStr::new("-D"),
                self.data_path().as_os_str(),
                OsStr::new("-m"),
                OsStr::new(mode.as_arg()),
                OsStr::new("-w"),
                OsStr::new("-s"),
            ],
        )
    }

    fn data_path(&self) -> PathBuf {
        self.cluster_dir.join(DATA)
    }

    fn is_initialised(&self) -> bool {
        self.data_path().join("PG_VERSION").is_file()
    }

    /// `program` from the bin dir with `args`, run as the service user when there is one.
    fn argv<'a>(&self, program: &str, args: impl IntoIterator<Item = &'a OsStr>) -> Vec<OsString> {
        let mut argv = Vec::new();
        if self.service_user.is_some() {
            argv.extend(["runuser", "-u", SERVICE_USER, "--"].map(OsString::from));
        }
        argv.push(self.bin_dir.join(program).into_os_string());
        argv.extend(args.into_iter().map(OsStr::to_os_string));
        argv
    }

    async fn run(&self, argv: &[OsString]) -> Result<Output> {
        let (program, args) = argv.split_first().expect("an argv names its program");
        Command::new(program)
            .args(args)
            // The service user may not be able to enter the caller's working directory.
            .current_dir(&self.cluster_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| {
                let name = Path::new(program).file_name().unwrap_or(program).to_string_lossy().into_owned();
                let hint = if e.kind() == ErrorKind::NotFound && name == "runuser" {
                    " (runuser comes with util-linux; as root ccare needs it to run PostgreSQL as the postgres user)"
                } else {
                    ""
                };
                Error::io(format!("running {name}{hint}"), e)
            })
    }

    /// Creates the cluster and socket directories with owner-only access (PostgreSQL insists on
    /// it for the data directory) and hands them to the service user.
    fn prepare_directories(&self) -> Result<()> {
        for dir in [self.cluster_dir.clone(), self.cluster_dir.join(RUN)] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("restricting access to {}", dir.display()), e))?;
            self.hand_over(&dir)?;
        }
        Ok(())
    }

    /// Gives `path` to the service user, when PostgreSQL runs as one.
    fn hand_over(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.service_user {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(|e| {
                Error::io(
                    format!("giving {} to the {SERVICE_USER} user", path.display()),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// The port of a server running from this cluster, if one is. A `postmaster.pid` left by a
    /// crash is removed (with the socket lock files): PostgreSQL itself refuses to start when the
    /// PID in it now belongs to another live process, as happens after a reboot.
    async fn running_server_port(&self) -> Result<Option<u16>> {
        let pid_file = self.data_path().join("postmaster.pid");
        let contents = match std::fs::read_to_string(&pid_file) {
            Ok(contents) => contents,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", pid_file.display()), e)),
        };
        let lines: Vec<&str> = contents.lines().collect();
        let pid = lines.first().and_then(|l| l.trim().parse::<i32>().ok());
        if pid.is_some_and(|pid| pid > 0 && is_live_postgres(pid)) {
            let port = lines.get(3).and_then(|l| l.trim().parse::<u16>().ok());
            let port = match port {
                Some(port) => port,
                None => self.stored_port()?.ok_or_else(|| {
                    Error::EmbeddedPostgres(format!(
                        "a server runs from {} but its port is unknown",
                        self.cluster_dir.display()
                    ))
                })?,
            };
            self.wait_until_ready(&pid_file).await?;
            return Ok(Some(port));
        }
        tracing::warn!(file = %pid_file.display(), "removing a stale postmaster.pid (the server it names is gone)");
        std::fs::remove_file(&pid_file)
            .map_err(|e| Error::io(format!("removing {}", pid_file.display()), e))?;
        self.clear_socket_dir()?;
        Ok(None)
    }

    /// Waits while another process's server is still starting (its pid file says so).
    async fn wait_until_ready(&self, pid_file: &Path) -> Result<()> {
        for _ in 0..START_TIMEOUT_SECS * 10 {
            let status = std::fs::read_to_string(pid_file).unwrap_or_default();
            // Line 8 is the postmaster's status: starting, stopping, ready or standby.
            match status.lines().nth(7).map(str::trim) {
                Some("ready") | Some("standby") => return Ok(()),
                Some("stopping") => {
                    return Err(Error::EmbeddedPostgres(format!(
                        "the private PostgreSQL in {} is shutting down; try again",
                        self.cluster_dir.display()
                    )))
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err(Error::EmbeddedPostgres(format!(
            "the private PostgreSQL in {} did not become ready within {START_TIMEOUT_SECS} s",
            self.cluster_dir.display()
        )))
    }

    fn clear_socket_dir(&self) -> Result<()> {
        let run = self.cluster_dir.join(RUN);
        let entries = std::fs::read_dir(&run)
            .map_err(|e| Error::io(format!("listing {}", run.display()), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        Ok(())
    }

    async fn initdb(&self) -> Result<()> {
        let data = self.data_path();
        // A data directory without PG_VERSION is what an interrupted initdb leaves behind.
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(|e| {
                Error::io(
                    format!("removing the unfinished cluster {}", data.display()),
                    e,
                )
            })?;
        }
        tracing::info!(cluster = %self.cluster_dir.display(), "initialising a private PostgreSQL cluster");
        // C.UTF-8 sorts by code point like C but classifies non-ASCII characters; older systems lack it.
        let mut failure = String::new();
        for locale in ["--locale=C.UTF-8", "--locale=C"] {
            let argv = self.argv(
                "initdb",
                [
                    OsStr::new("-D"),
                    data.as_os_str(),
                    OsStr::new("-U"),
                    OsStr::new(SUPERUSER),
                    OsStr::new("--auth=trust"),
                    OsStr::new("-E"),
                    OsStr::new("UTF8"),
                    OsStr::new(locale),
                    // Page checksums turn silent disk corruption into errors.
                    OsStr::new("--data-checksums"),
                ],
            );
            let output = self.run(&argv).await?;
            if output.status.success() {
                return Ok(());
            }
            failure = last_lines(&String::from_utf8_lossy(&output.stderr), 3);
            if data.exists() {
                std::fs::remove_dir_all(&data).map_err(|e| {
                    Error::io(format!("removing the failed cluster {}", data.display()), e)
                })?;
            }
        }
        Err(Error::EmbeddedPostgres(format!(
            "initdb failed in {}: {failure}",
            self.cluster_dir.display()
        )))
    }

    fn stored_port(&self) -> Result<Option<u16>> {
        let path = self.cluster_dir.join(PORT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The stored port if it is still free, else a newly picked free one (stored).
    fn choose_port(&self) -> Result<u16> {
        let stored = self.stored_port()?;
        if let Some(port) = stored.filter(|&port| port_is_free(port)) {
            return Ok(port);
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| Error::io("finding a free TCP port on 127.0.0.1", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("finding a free TCP port on 127.0.0.1", e))?
            .port();
        if let Some(old) = stored {
            tracing::info!(cluster = %self.cluster_dir.display(), old, port, "the private PostgreSQL's port is taken; moving to another");
        }
        let path = self.cluster_dir.join(PORT_FILE);
        std::fs::write(&path, format!("{port}\n"))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        self.hand_over(&path)?;
        Ok(port)
    }

    /// Writes `data/ccare.conf` (included at the end of postgresql.conf, so it wins over it;
    /// `ALTER SYSTEM` still overrides both).
    fn write_config(&self, durability: Durability) -> Result<()> {
        let data = self.data_path();
        let run = self.cluster_dir.join(RUN);
        let socket_path_len = run.join(".s.PGSQL.65535").as_os_str().len();
        let socket_dirs = if socket_path_len <= MAX_SOCKET_PATH {
            quote_setting(&run)
        } else {
            tracing::info!(dir = %run.display(), "the socket path would be too long; the private PostgreSQL listens on TCP only");
            "''".to_string()
        };
        let safety = match durability {
            Durability::Durable => "on",
            Durability::Throwaway => "off",
        };
        let conf = format!(
            "# Written by ccare at every start; override with ALTER SYSTEM, not here.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = {socket_dirs}\n\
             max_connections = 100\n\
             shared_buffers = 128MB\n\
             fsync = {safety}\n\
             synchronous_commit = {safety}\n\
             full_page_writes = {safety}\n\
             logging_collector = on\n\
             log_directory = 'log'\n\
             log_filename = 'postgresql-%a.log'\n\
             log_rotation_age = 1d\n\
             log_rotation_size = 0\n\
             log_truncate_on_rotation = on\n",
            port = self.port,
        );
        let conf_path = data.join(CONF_FILE);
        std::fs::write(&conf_path, conf)
            .map_err(|e| Error::io(format!("writing {}", conf_path.display()), e))?;
        self.hand_over(&conf_path)?;

        let main_conf = data.join("postgresql.conf");
        let text = std::fs::read_to_string(&main_conf)
            .map_err(|e| Error::io(format!("reading {}", main_conf.display()), e))?;
        if !text.lines().any(|line| line.trim() == INCLUDE_LINE) {
            let appended =
                format!("{text}\n# ccare's settings (see {CONF_FILE})\n{INCLUDE_LINE}\n");
            std::fs::write(&main_conf, appended)
                .map_err(|e| Error::io(format!("writing {}", main_conf.display()), e))?;
        }
        Ok(())
    }

    /// Starts the server with pg_ctl, waiting until it accepts connections. Retries while a
    /// crashed predecessor's processes still hold shared memory or the port was taken meanwhile;
    /// joins instead if another process started the server first.
    async fn start_server(&mut self, durability: Durability) -> Result<()> {
        let startup_log = self.cluster_dir.join(STARTUP_LOG);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.port = self.choose_port()?;
            self.write_config(durability)?;
            match std::fs::remove_file(&startup_log) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(Error::io(format!("removing {}", startup_log.display()), e))
                }
                _ => {}
            }
            let argv = self.argv(
                "pg_ctl",
                [
                    OsStr::new("start"),
                    OsStr::new("-D"),
                    self.data_path().as_os_str(),
                    OsStr::new("-l"),
                    startup_log.as_os_str(),
                    OsStr::new("-w"),
                    OsStr::new("-t"),
                    OsStr::new(&START_TIMEOUT_SECS.to_string()),
                    OsStr::new("-s"),
                ],
            );
            let output = self.run(&argv).await?;
            if output.status.success() {
                self.owns_server = true;
                tracing::info!(cluster = %self.cluster_dir.display(), port = self.port, "private PostgreSQL started");
                return Ok(());
            }
            if let Some(port) = self.running_server_port().await? {
                tracing::info!(cluster = %self.cluster_dir.display(), port, "another process started the private PostgreSQL first; joining it");
                self.port = port;
                return Ok(());
            }
            let log = std::fs::read_to_string(&startup_log).unwrap_or_default();
            let retry =
                log.contains("pre-existing shared memory block") || log.contains("could not bind");
            if retry && attempt < START_ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let reason = if log.trim().is_empty() {
                String::from_utf8_lossy(&output.stderr).into_owned()
            } else {
                log
            };
            return Err(Error::EmbeddedPostgres(format!(
                "pg_ctl start failed for the cluster in {} (log: {}): {}",
                self.cluster_dir.display(),
                startup_log.display(),
                last_lines(&reason, 3)
            )));
        }
    }

    async fn ensure_database(&self) -> Result<()> {
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(SUPERUSER)
            .database("postgres")
            .disable_statement_logging();
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(|e| Error::PgConnect {
                target: format!("127.0.0.1:{} (database postgres)", self.port),
                message: e.to_string(),
            })?;
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            match sqlx::query(&format!("create database \"{DATABASE}\""))
                .execute(&mut conn)
                .await
            {
                Ok(_) => tracing::info!(
                    database = DATABASE,
                    "created the database in the private PostgreSQL"
                ),
                // Another process created it between the check and the create.
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let _ = conn.close().await;
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.stopped || !self.owns_server {
            return;
        }
        let argv = self.stop_argv(ShutdownMode::Fast);
        let (program, args) = argv.split_first().expect("an argv names its program");
        let result = std::process::Command::new(program)
            .args(args)
            .current_dir(&self.cluster_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match result {
            Ok(output) if output.status.success() => {}
            Ok(output) => tracing::warn!(
                cluster = %self.cluster_dir.display(),
                error = %last_lines(&String::from_utf8_lossy(&output.stderr), 3),
                "stopping the private PostgreSQL failed"
            ),
            Err(e) => {
                tracing::warn!(cluster = %self.cluster_dir.display(), error = %e, "stopping the private PostgreSQL failed")
            }
        }
    }
}

impl ServiceUser {
    /// The account to run PostgreSQL as: `None` (the current user) unless running as root.
    fn needed() -> Result<Option<Self>> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let user = nix::unistd::User::from_name(SERVICE_USER)
            .map_err(|e| Error::EmbeddedPostgres(format!("looking up the {SERVICE_USER} system user: {e}")))?
            .ok_or_else(|| {
                Error::EmbeddedPostgres(format!(
                    "PostgreSQL refuses to run as root and there is no `{SERVICE_USER}` system user to run \
                     it as: install the postgresql package, or run ccare as a normal user"
                ))
            })?;
        Ok(Some(ServiceUser {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }))
    }

    /// Whether this user can reach (search) `dir`, following the same permission checks as
    /// the kernel (ACLs included), by asking `test` as that user.
    async fn can_reach(&self, dir: &Path) -> Result<bool> {
        let status = Command::new("runuser")
            .args(["-u", SERVICE_USER, "--", "test", "-x"])
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|e| {
                Error::io(
                    "running runuser (util-linux; as root ccare needs it to run PostgreSQL as the postgres user)",
                    e,
                )
            })?;
        Ok(status.success())
    }
}

/// Where the cluster of `data_dir` lives: `data_dir` itself, unless PostgreSQL runs as the
/// service user and cannot reach it.
async fn cluster_dir_for(data_dir: &Path, service_user: Option<&ServiceUser>) -> Result<PathBuf> {
    let Some(user) = service_user else {
        return Ok(data_dir.to_path_buf());
    };
    let parent = data_dir.parent().unwrap_or(Path::new("/"));
    if user.can_reach(parent).await? {
        return Ok(data_dir.to_path_buf());
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_bytes());
    let relocated = Path::new(RELOCATED_CLUSTERS).join(hex::encode(&digest[..6]));
    std::fs::create_dir_all(RELOCATED_CLUSTERS)
        .map_err(|e| Error::io(format!("creating {RELOCATED_CLUSTERS}"), e))?;
    tracing::info!(
        data_dir = %data_dir.display(),
        cluster = %relocated.display(),
        "the postgres user cannot reach the data directory; the private cluster lives elsewhere"
    );
    let note = data_dir.join(NOTE_FILE);
    let text = format!(
        "The private PostgreSQL cluster of this data directory is in {}\n\
         (PostgreSQL runs as the postgres user, who cannot reach this directory).\n",
        relocated.display()
    );
    std::fs::write(&note, text).map_err(|e| Error::io(format!("writing {}", note.display()), e))?;
    Ok(relocated)
}

/// Whether `pid` is a live (not zombie) PostgreSQL process. Where /proc is unavailable, any
/// live process counts.
fn is_live_postgres(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    if !Path::new("/proc/self/stat").exists() {
        return true;
    }
    // /proc/<pid>/stat: "<pid> (<comm>) <state> …"; comm may itself contain parentheses.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next();
    comm.starts_with("postgres") && state != Some('Z')
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A path as a postgresql.conf string value.
fn quote_setting(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "''"))
}

/// The last `n` non-empty lines of `text`, joined with " / " (errors stay on one line).
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_versioned_bin_dir_wins_numerically() {
        let root = tempfile::tempdir().unwrap();
        for version in ["9.6", "10", "15", "notaversion"] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
            std::fs::write(bin.join("pg_ctl"), "").unwrap();
        }
        std::fs::create_dir_all(root.path().join("16/bin")).unwrap(); // no binaries: skipped

        assert_eq!(
            newest_versioned_bin_dir(root.path()),
            Some(root.path().join("15/bin"))
        );
    }

    #[test]
    fn an_explicit_bin_dir_without_binaries_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let error = find_bin_dir(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        assert!(error.contains("CCARE_PG_BIN"), "{error}");
    }

    #[test]
    fn a_dead_pid_is_not_a_running_server() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!is_live_postgres(pid));
        // This test process is alive but is no PostgreSQL (only /proc tells them apart).
        #[cfg(target_os = "linux")]
        assert!(!is_live_postgres(std::process::id() as i32));
    }

    #[test]
    fn quotes_in_paths_are_doubled_in_settings() {
        assert_eq!(quote_setting(Path::new("/tmp/o'neil")), "'/tmp/o''neil'");
    }
}
