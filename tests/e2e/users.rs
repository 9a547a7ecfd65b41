//! `ccare users`: the operator's commands, with the password on standard input.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::assert_one_error_line;

/// Runs `ccare ARGS` against `database_url` with `stdin` as standard input.
fn ccare_with_input(args: &[&str], database_url: &str, stdin: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccare"))
        .env("DATABASE_URL", database_url)
        .env("CCARE_DATA_DIR", dir.path())
        .env("CCARE_LOG", "warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ccare binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn an_operator_adds_an_employee_with_a_password_from_stdin_and_lists_them() {
    let db = testkit::pg::fresh_database().await;

    let added = ccare_with_input(
        &[
            "users",
            "add",
            "00123",
            "--role",
            "onm_team",
            "--name",
            "Thabo Mokoena",
        ],
        &db.url,
        "a long enough password\n",
    );
    let short = ccare_with_input(
        &[
            "users", "add", "00124", "--role", "generic", "--name", "Lerato",
        ],
        &db.url,
        "short\n",
    );
    let bad_role = ccare_with_input(
        &["users", "add", "00125", "--role", "admin", "--name", "Neo"],
        &db.url,
        "a long enough password\n",
    );
    let twice = ccare_with_input(
        &[
            "users", "add", "00123", "--role", "generic", "--name", "Thabo",
        ],
        &db.url,
        "a long enough password\n",
    );
    let disabled = ccare_with_input(&["users", "disable", "00123"], &db.url, "");
    let listed = ccare_with_input(&["users", "list"], &db.url, "");

    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_one_error_line(&short, &["password", "at least 8 characters"]);
    assert_one_error_line(&bad_role, &["not a role"]);
    assert_one_error_line(&twice, &["already exists"]);
    assert!(disabled.status.success());
    let list = String::from_utf8_lossy(&listed.stdout);
    assert!(list.contains("00123"), "{list}");
    assert!(
        list.contains("onm_team") && list.contains("disabled"),
        "{list}"
    );
    assert!(!list.contains("00124"), "{list}");
}

#[tokio::test]
async fn an_operator_grants_an_analyst_read_access_and_a_bad_name_is_one_error_line() {
    let db = testkit::pg::fresh_database().await;
    let name = format!("analyst_{}", uuid::Uuid::new_v4().simple());

    let granted = ccare_with_input(
        &["analysts", "grant", &name],
        &db.url,
        "an analyst's password\n",
    );
    let listed = ccare_with_input(&["analysts", "list"], &db.url, "");
    let bad = ccare_with_input(
        &["analysts", "grant", "Robert'); drop"],
        &db.url,
        "an analyst's password\n",
    );
    let revoked = ccare_with_input(&["analysts", "revoke", &name], &db.url, "");
    // Roles belong to the cluster: drop ours.
    sqlx::query(&format!("drop owned by {name}"))
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(&format!("drop role {name}"))
        .execute(&db.pool)
        .await
        .unwrap();

    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    assert!(String::from_utf8_lossy(&granted.stdout).contains("created"));
    assert!(String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == name));
    assert_one_error_line(&bad, &["analyst role name", "Robert"]);
    assert!(String::from_utf8_lossy(&revoked.stdout).contains("no longer an analyst"));
}
