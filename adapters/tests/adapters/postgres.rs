//! The private PostgreSQL cluster (real system binaries) and connecting to PostgreSQL.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use adapters::postgres::{self, EmbeddedPostgres};

fn bin_dir() -> PathBuf {
    postgres::find_bin_dir(None).expect("the PostgreSQL server binaries are installed")
}

/// Starts the cluster of `dir`, with a watchdog that stops it should this test process die.
async fn start(dir: &Path) -> EmbeddedPostgres {
    let cluster = EmbeddedPostgres::start(dir, &bin_dir()).await.unwrap();
    testkit::pg::stop_when_this_process_exits(&cluster, &[cluster.cluster_dir().to_path_buf()]);
    cluster
}

fn postmaster_pid(cluster: &EmbeddedPostgres) -> i32 {
    let pid_file = cluster.cluster_dir().join("data/postmaster.pid");
    std::fs::read_to_string(pid_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `pid` has exited (a zombie counts: nobody may reap it in a container).
fn wait_until_dead(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.trim_start().chars().next());
        if stat.is_empty() || state == Some('Z') {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} did not die"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Creates the table `notes` with one row, `body`.
async fn write_note(url: &str, body: &str) {
    let pool = postgres::connect(url).await.unwrap();
    sqlx::query("create table notes (body text)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("insert into notes values ($1)")
        .bind(body)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Kills the cluster's server as a crash would (SIGKILL, no clean-up); returns its PID.
fn crash(cluster: EmbeddedPostgres) -> i32 {
    let pid = postmaster_pid(&cluster);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::mem::forget(cluster); // its server is gone: nothing to stop
    pid
}

/// Connects to `url` and closes the connection again; fails the test if the server refuses.
async fn connect_once(url: &str) {
    postgres::connect(url)
        .await
        .expect("the server accepts connections")
        .close()
        .await;
}

async fn count_notes(url: &str) -> i64 {
    let pool = postgres::connect(url).await.unwrap();
    let count = sqlx::query_scalar("select count(*) from notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

#[tokio::test]
async fn an_embedded_cluster_keeps_its_data_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    assert!(cluster.owns_server());
    write_note(&cluster.url(), "kept").await;
    let first_port = cluster.port();

    cluster.stop().await.unwrap();
    let restarted = start(dir.path()).await;

    assert_eq!(
        restarted.port(),
        first_port,
        "the port chosen at initialisation is kept"
    );
    assert_eq!(count_notes(&restarted.url()).await, 1);
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn a_stopped_cluster_no_longer_accepts_connections() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    let url = cluster.url();
    connect_once(&url).await;

    cluster.stop().await.unwrap();

    let error = postgres::connect(&url).await.unwrap_err().to_string();
    assert!(error.contains("127.0.0.1:"), "{error}");
}

#[tokio::test]
async fn a_dropped_cluster_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    let url = cluster.url();

    drop(cluster);

    assert!(postgres::connect(&url).await.is_err());
}

#[tokio::test]
async fn a_stale_postmaster_pid_from_a_crash_does_not_prevent_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    write_note(&cluster.url(), "before the crash").await;

    // The server dies without cleaning up; the next start finds its postmaster.pid.
    let pid = crash(cluster);
    wait_until_dead(pid);
    assert!(dir.path().join("data/postmaster.pid").exists());
    let restarted = start(dir.path()).await;

    assert_eq!(
        count_notes(&restarted.url()).await,
        1,
        "crash recovery kept the committed row"
    );
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn a_postmaster_pid_naming_another_live_process_does_not_prevent_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    let pid_file = cluster.cluster_dir().join("data/postmaster.pid");
    let real = std::fs::read_to_string(&pid_file).unwrap();
    cluster.stop().await.unwrap();
    // As after a reboot: the recorded PID now belongs to some unrelated live process (this one).
    let forged: String = std::iter::once(std::process::id().to_string())
        .chain(real.lines().skip(1).map(str::to_string))
        .map(|line| line + "\n")
        .collect();
    std::fs::write(&pid_file, forged).unwrap();

    let restarted = start(dir.path()).await;

    assert!(restarted.owns_server());
    connect_once(&restarted.url()).await;
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_start_joins_the_running_server_and_leaves_it_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let owner = start(dir.path()).await;

    let joiner = start(dir.path()).await;

    assert!(!joiner.owns_server());
    assert_eq!(joiner.url(), owner.url());
    joiner.stop().await.unwrap();
    connect_once(&owner.url()).await; // the owner's server still runs
    owner.stop().await.unwrap();
}

#[tokio::test]
async fn the_ccare_database_exists_and_migrations_apply() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;

    let pool = postgres::connect(&cluster.url()).await.unwrap();
    postgres::migrate(&pool).await.unwrap();
    postgres::migrate(&pool)
        .await
        .expect("migrating twice is a no-op");

    let head: i64 = sqlx::query_scalar("select position from event_log_head")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(head, 0);
    let encoding: String = sqlx::query_scalar("show server_encoding")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(encoding, "UTF8");
    let fsync: String = sqlx::query_scalar("show fsync")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(fsync, "on");
    pool.close().await;
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_database_is_named_in_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;
    let url = testkit::pg::with_database(&cluster.url(), "no_such_database");

    let error = postgres::connect(&url).await.unwrap_err().to_string();

    assert!(error.contains("no_such_database"), "{error}");
    assert!(
        error.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
    cluster.stop().await.unwrap();
}

/// As root, PostgreSQL runs as the `postgres` user, who cannot enter a 0700 directory of
/// root's; the cluster then lives under /var/lib/ccare/clusters. As any other user the
/// cluster stays in the data directory.
#[tokio::test]
async fn a_data_directory_the_server_user_cannot_reach_gets_its_cluster_elsewhere() {
    use std::os::unix::fs::PermissionsExt;
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = private.path().join("postgres");

    let cluster = start(&data_dir).await;

    let canonical = data_dir.canonicalize().unwrap();
    if nix::unistd::geteuid().is_root() {
        assert!(
            cluster.cluster_dir().starts_with("/var/lib/ccare/clusters"),
            "{}",
            cluster.cluster_dir().display()
        );
        let note = std::fs::read_to_string(canonical.join("CLUSTER_LOCATION")).unwrap();
        assert!(
            note.contains(&cluster.cluster_dir().display().to_string()),
            "{note}"
        );
    } else {
        assert_eq!(cluster.cluster_dir(), canonical);
    }
    connect_once(&cluster.url()).await;
    let cluster_dir = cluster.cluster_dir().to_path_buf();
    cluster.stop().await.unwrap();
    if cluster_dir != canonical {
        std::fs::remove_dir_all(&cluster_dir).unwrap();
    }
}

#[tokio::test]
async fn a_start_right_after_a_crash_waits_out_the_dying_server() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path()).await;

    // No pause: the killed server may still look alive to the next start.
    crash(cluster);
    let restarted = start(dir.path()).await;

    assert!(restarted.owns_server(), "a dead server is not joined");
    connect_once(&restarted.url()).await;
    restarted.stop().await.unwrap();
}

/// A TCP relay in front of a PostgreSQL server whose answers can be held back: a statement
/// sent while they are held stays unanswered, as on a slow or stalled server.
struct Relay {
    port: u16,
    answers_held: tokio::sync::watch::Sender<bool>,
    /// Bytes the clients have sent so far.
    sent: Arc<AtomicU64>,
}

impl Relay {
    async fn start(server: &str) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (answers_held, held) = tokio::sync::watch::channel(false);
        let sent = Arc::new(AtomicU64::new(0));
        let (server, counter) = (server.to_string(), sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = tokio::net::TcpStream::connect(&server).await.unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = upstream.into_split();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 8192];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut held = held.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 8192];
                    while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                        if held.wait_for(|held| !held).await.is_err()
                            || to_client.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        Relay {
            port,
            answers_held,
            sent,
        }
    }
}

#[tokio::test]
async fn a_transaction_abandoned_while_it_opens_leaves_no_transaction_on_the_pooled_connection() {
    // Arrange: one pooled connection, through a relay that can stall the server's answers, and
    // no ping on acquire, so the first bytes a `begin` sends are its BEGIN.
    let db = testkit::pg::fresh_database().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).unwrap();
    let relay = Relay::start(&format!("{}:{}", options.get_host(), options.get_port())).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options.port(relay.port))
        .await
        .unwrap();
    sqlx::query("create table notes (body text)")
        .execute(&pool)
        .await
        .unwrap();

    // Act: BEGIN goes out and its answer is held; the caller gives up, as a cancelled request
    // or a timeout would. Then the pool's connection is used for an ordinary insert.
    while pool.num_idle() < 1 {
        // The connection comes back after its release ping, which must not be mistaken for BEGIN.
        tokio::task::yield_now().await;
    }
    relay.answers_held.send_replace(true);
    let before = relay.sent.load(Ordering::SeqCst);
    {
        let mut opening = std::pin::pin!(postgres::begin(&pool));
        while relay.sent.load(Ordering::SeqCst) == before {
            assert!(futures::poll!(opening.as_mut()).is_pending());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    relay.answers_held.send_replace(false);
    sqlx::query("insert into notes values ('kept')")
        .execute(&pool)
        .await
        .unwrap();

    // Assert: the insert committed on its own (inside a leaked transaction it would vanish).
    pool.close().await;
    assert_eq!(count_notes(&db.url).await, 1);
}
