//! Fresh, migrated PostgreSQL databases for tests.
//!
//! With `CCARE_TEST_DATABASE_URL` set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), each
//! test gets a new database on that server, created and migrated for it and dropped when the
//! [`TestDatabase`] is dropped; no other database there is touched. Without it, the first test of
//! a test binary starts a private throwaway cluster (system PostgreSQL binaries, temporary
//! directory) and migrates a template database once; every test then gets a copy of the
//! template. A watchdog stops the cluster and deletes its directory when the test process exits,
//! however it exits.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use adapters::postgres::{self, Durability, EmbeddedPostgres, ShutdownMode};
use sqlx::{Connection, PgConnection, PgPool};

/// The environment variable naming a server to create test databases on.
pub const TEST_DATABASE_URL: &str = "CCARE_TEST_DATABASE_URL";

/// The migrated template the private cluster copies for every test.
const TEMPLATE: &str = "ccare_template";

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// A pool on the database (migrated).
    pub pool: PgPool,
    /// Its URL, for code under test that connects by itself (e.g. the `ccare` binary).
    pub url: String,
    /// Its name.
    pub name: String,
    /// The URL of a database on the same server to issue `DROP DATABASE` from.
    admin_url: String,
}

/// Where test databases are created.
enum Server {
    /// `CCARE_TEST_DATABASE_URL`: each database is created and migrated on demand.
    External { admin_url: String },
    /// The private cluster of this test binary, with its migrated template.
    Private {
        admin_url: String,
        _cluster: EmbeddedPostgres,
    },
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// A new, uniquely named, migrated database (see the module documentation for where).
pub async fn fresh_database() -> TestDatabase {
    let server = server();
    let name = format!("ccare_test_{}", uuid::Uuid::new_v4().simple());
    let (admin_url, template) = match server {
        Server::External { admin_url } => (admin_url, None),
        Server::Private { admin_url, .. } => (admin_url, Some(TEMPLATE)),
    };
    let mut admin = PgConnection::connect(admin_url)
        .await
        .expect("connecting to the test PostgreSQL server");
    let create = match template {
        Some(template) => format!("create database \"{name}\" template \"{template}\""),
        None => format!("create database \"{name}\""),
    };
    sqlx::query(&create)
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    admin.close().await.ok();

    let url = with_database(admin_url, &name);
    let pool = postgres::connect(&url)
        .await
        .expect("connecting to the test database");
    if template.is_none() {
        postgres::migrate(&pool)
            .await
            .expect("migrating the test database");
    }
    TestDatabase {
        pool,
        url,
        name,
        admin_url: admin_url.clone(),
    }
}

impl Drop for TestDatabase {
    /// Drops the database so a shared server does not fill up with test databases. Runs on a
    /// thread of its own: the test's runtime may be shutting down, and Drop cannot await.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let drop_statement = format!("drop database if exists \"{}\" with (force)", self.name);
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&drop_statement)
                    .execute(&mut admin)
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        });
        // A database left behind is only litter (and vanishes with a private cluster).
        let _ = dropper.join();
    }
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        // The server outlives every test's runtime, so it is set up on a runtime of its own.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a runtime for the test PostgreSQL");
            runtime.block_on(set_up_server())
        })
        .join()
        .unwrap_or_else(|_| panic!("setting up the test PostgreSQL failed (see the panic above)"))
    })
}

async fn set_up_server() -> Server {
    if let Some(url) = std::env::var(TEST_DATABASE_URL)
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Server::External { admin_url: url };
    }
    let bin_dir =
        postgres::find_bin_dir(None).expect("finding the PostgreSQL binaries for the test cluster");
    let dir = tempfile::Builder::new()
        .prefix("ccare-test-pg-")
        .tempdir()
        .expect("creating a directory for the test PostgreSQL")
        .keep();
    let cluster = EmbeddedPostgres::start_with(&dir, &bin_dir, Durability::Throwaway)
        .await
        .unwrap_or_else(|e| panic!("starting the test PostgreSQL in {}: {e}", dir.display()));
    stop_when_this_process_exits(
        &cluster,
        &[dir.clone(), cluster.cluster_dir().to_path_buf()],
    );

    let admin_url = with_database(&cluster.url(), "postgres");
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connecting to the test PostgreSQL");
    sqlx::query(&format!("create database \"{TEMPLATE}\""))
        .execute(&mut admin)
        .await
        .expect("creating the template database");
    let template = postgres::connect(&with_database(&admin_url, TEMPLATE))
        .await
        .expect("connecting to the template");
    postgres::migrate(&template)
        .await
        .expect("migrating the template database");
    // A template must have no connections while it is copied.
    template.close().await;
    sqlx::query(&format!(
        "alter database \"{TEMPLATE}\" with is_template true allow_connections false"
    ))
    .execute(&mut admin)
    .await
    .expect("marking the template database");
    admin.close().await.ok();
    Server::Private {
        admin_url,
        _cluster: cluster,
    }
}

/// Spawns a watchdog that waits for this process to exit, however it exits, then stops
/// `cluster` at once and deletes `remove`. Statics are never dropped, and a killed test
/// process runs no destructor, so a cluster kept for a whole test binary needs this.
pub fn stop_when_this_process_exits(cluster: &EmbeddedPostgres, remove: &[PathBuf]) {
    use std::os::unix::process::CommandExt;

    let stop = shell_words(cluster.stop_argv(ShutdownMode::Immediate));
    let remove: Vec<String> = remove.iter().map(|p| shell_quote(p.as_os_str())).collect();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {remove}",
        pid = std::process::id(),
        remove = remove.join(" ")
    );
    // Never waited for, by design: it must outlive this process (which it watches); until then it
    // runs, and afterwards it is reparented and reaped by init.
    #[allow(clippy::zombie_processes)]
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(Path::new("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C to the test run must not kill the watchdog too.
        .process_group(0)
        .spawn()
        .expect("spawning the test PostgreSQL watchdog");
}

fn shell_words(argv: Vec<OsString>) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &std::ffi::OsStr) -> String {
    format!("'{}'", word.to_string_lossy().replace('\'', r"'\''"))
}

/// `url` with its database replaced by `database` (user, host, port and parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://u@h", "x"), "postgresql://u@h/x");
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote(std::ffi::OsStr::new("a'b c")), r"'a'\''b c'");
    }
}
