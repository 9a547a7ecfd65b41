//! The command line: `ccare <command>`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "ccare", version, about = "Event-sourced customer care for 1PWR's mini-grids", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on the embedded defaults: private PostgreSQL, a synthetic ACDB, the API.
    Demo,
    /// Run the service roles (default: every configured role).
    Serve(ServeArgs),
    /// ACDB change capture: import, then follow changes (`--once`: one cycle and exit).
    Cdc(CdcArgs),
    /// Change capture, event log and hash chain status.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Audit tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Read models: status, rebuild.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// The ACDB: generate a synthetic one.
    Acdb {
        #[command(subcommand)]
        command: AcdbCommand,
    },
    /// Benchmarks that print a figure next to a limit measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Employee accounts and customer registration codes.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Analysts' read-only PostgreSQL roles (the read_model schema only).
    Analysts {
        #[command(subcommand)]
        command: AnalystsCommand,
    },
    /// The WhatsApp bridge: try it without Meta.
    Bridge {
        #[command(subcommand)]
        command: BridgeCommand,
    },
    /// Apply the database migrations and exit.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Send one WhatsApp message to the running server's webhook as Meta would (signed with the
    /// app secret: `ccare demo`'s, or WHATSAPP_APP_SECRET), then print the bridge's reply and
    /// the ticket it opened.
    Simulate {
        /// The customer's phone number (any legacy spelling, e.g. +26658001234 or 58001234).
        #[arg(long)]
        from: String,
        /// The WhatsApp profile name shown with the message.
        #[arg(long, default_value = "Simulated customer")]
        name: String,
        /// The message, e.g. "Ha ke na motlakase".
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Give the webhook deliveries the worker left after repeated failures another round of
    /// attempts (once the cause is fixed; `ccare status` counts them).
    Replay,
}

#[derive(Debug, Subcommand)]
pub enum AnalystsCommand {
    /// Create a login role (or update an existing one) that may read the read_model schema and
    /// nothing else; the password is read like `users add`.
    Grant {
        name: String,
        /// Set no password (a new role can then log in only where pg_hba.conf allows peer or
        /// trust; an existing role keeps its password).
        #[arg(long)]
        no_password: bool,
    },
    /// End a role's analyst access.
    Revoke { name: String },
    /// List the analysts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add an employee (the password is read from standard input, or prompted twice on a terminal).
    Add {
        employee_id: String,
        /// superadmin, onm_team, finance_team or generic.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// List the employees with their roles.
    List,
    /// Change an employee's role (takes effect on their next request).
    SetRole { employee_id: String, role: String },
    /// Disable an employee: their tokens stop working at once.
    Disable { employee_id: String },
    /// Enable a disabled employee.
    Enable { employee_id: String },
    /// Set a new password for an employee (read like `add`).
    ResetPassword { employee_id: String },
    /// Issue a one-time code a customer registers with (give it to the customer in person or by
    /// phone to the number on file).
    RegistrationCode { account_number: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Role {
    Api,
    Cdc,
    Projector,
    /// The WhatsApp bridge (needs WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET; the api role
    /// serves its webhook).
    Bridge,
    /// Publishes the event log to NATS JetStream (needs NATS_URL).
    Relay,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Comma-separated roles to run in this process.
    #[arg(long, value_delimiter = ',')]
    pub role: Vec<Role>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CdcArgs {
    /// Run one capture cycle (import or poll) and exit.
    #[arg(long)]
    pub once: bool,
    #[command(subcommand)]
    pub command: Option<CdcCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CdcCommand {
    /// Accept the change that paused TABLE: its next cycle emits it despite the safety stop.
    Confirm { table: String },
    /// Run a reconciliation pass now (chunked checksums; repairs drift) and exit.
    Reconcile,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain over the whole global log; report the first broken link.
    Verify,
    /// Rebuild every read model as of an instant into a schema of its own, for auditors.
    Replay {
        /// The instant: RFC 3339 (2026-03-01T08:00:00+02:00) or a date (midnight UTC).
        #[arg(long)]
        until: String,
        /// The schema to build into (default replay_<until>); it must not exist.
        #[arg(long)]
        schema: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each read model's position and lag behind the log head.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Build a fresh copy from zero while the old one serves, then swap it in.
    Rebuild {
        /// The read model (default: all).
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AcdbCommand {
    /// Write a synthetic ACDB (SQLite, reachable as Driver=SQLite3;Database=FILE).
    Generate(GenerateArgs),
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// The SQLite file to write (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of customers.
    #[arg(long, default_value_t = 1338)]
    pub customers: u32,
    /// Years of history.
    #[arg(long, default_value_t = 4)]
    pub years: u32,
    /// Random seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The parts of `ccare bench read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadPart {
    /// (a) endpoint latency under concurrent clients against the legacy ODBC computation.
    Latency,
    /// (b) analytics rebuild against a raw read of the log.
    Rebuild,
    /// (c) ACDB change until the API shows it.
    Change,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generate an ACDB, import it, and compare rows/s with a raw COPY of the same rows.
    Import {
        #[arg(long, default_value_t = 1338)]
        customers: u32,
        #[arg(long, default_value_t = 4)]
        years: u32,
    },
    /// Audited updates per second (HTTP -> command -> ACDB over ODBC -> applied event) against the
    /// postgres-es single-command rate and the bare ODBC update rate.
    Write {
        #[arg(long, default_value_t = 1338)]
        customers: u32,
        #[arg(long, default_value_t = 2000)]
        updates: u32,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 1)]
        clients: u32,
    },
    /// The WhatsApp bridge: signed webhook deliveries/s accepted and fully processed against the
    /// bare HTTP rate of the same server, and the p99 from delivery to reply sent.
    Bridge {
        #[arg(long, default_value_t = 1338)]
        customers: u32,
        /// Deliveries posted, each from a different customer's phone.
        #[arg(long, default_value_t = 500)]
        messages: u32,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 16)]
        clients: u32,
    },
    /// The portal: requests/s and p99 of the dashboard, the O&M report and the customer list
    /// under concurrent clients, against the same server's static stylesheet route.
    Portal {
        #[arg(long, default_value_t = 1338)]
        customers: u32,
        #[arg(long, default_value_t = 4)]
        years: u32,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 32)]
        clients: u32,
        /// Requests per client and page.
        #[arg(long, default_value_t = 50)]
        requests: u32,
    },
    /// The read side: analytics latency under concurrent clients against the legacy ODBC
    /// computation, rebuild events/s against a raw log read, and ACDB change -> API latency.
    Read {
        #[arg(long, default_value_t = 1338)]
        customers: u32,
        #[arg(long, default_value_t = 4)]
        years: u32,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 64)]
        clients: u32,
        /// Requests per client and endpoint.
        #[arg(long, default_value_t = 20)]
        requests: u32,
        /// ACDB changes timed until the API shows them.
        #[arg(long, default_value_t = 30)]
        changes: u32,
        /// What to measure (default all): latency, rebuild, change.
        #[arg(long, value_delimiter = ',', default_value = "latency,rebuild,change")]
        parts: Vec<ReadPart>,
    },
}
