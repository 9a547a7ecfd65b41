//! A NATS server with JetStream for a test: `CCARE_TEST_NATS_URL` when it is set (shared: each
//! test names its own stream), else a private `nats-server -js` started from the system binary
//! on a free port, stopped (by its PID) when the handle drops.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct TestNats {
    /// The server's URL.
    pub url: String,
    /// A stream name (and so subjects) and a consumer name no other test uses.
    pub stream: String,
    pub durable: String,
    server: Option<(Child, TempDir)>,
}

impl TestNats {
    /// Stops the private server as a crash would (SIGKILL), keeping its storage, and starts it
    /// again on the same port and storage. Panics on a shared server.
    pub fn restart(&mut self) {
        let (mut child, dir) = self.server.take().expect("only a private server restarts");
        let _ = child.kill();
        let _ = child.wait();
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let child = spawn(port, &dir);
        wait_until_listening(port);
        self.server = Some((child, dir));
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        if let Some((child, _dir)) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let candidate = PathBuf::from(dir).join("nats-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("nats-server is not installed: run scripts/install-deps (Debian package nats-server)");
}

fn spawn(port: u16, dir: &TempDir) -> Child {
    Command::new(binary())
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts")
}

fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server for this test, with names of its own.
pub fn start() -> TestNats {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let names = |url: String, server| TestNats {
        url,
        stream: format!("T_{id}"),
        durable: format!("projector_{id}"),
        server,
    };
    if let Ok(url) = std::env::var("CCARE_TEST_NATS_URL") {
        return names(url, None);
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("a directory for JetStream");
    let child = spawn(port, &dir);
    wait_until_listening(port);
    names(format!("nats://127.0.0.1:{port}"), Some((child, dir)))
}
