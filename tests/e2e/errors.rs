use crate::helpers::{assert_one_error_line, ccare};

#[test]
fn a_malformed_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ccare(
        &["status"],
        &[("CCARE_LISTEN", "not-an-address")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_one_error_line(&out, &["CCARE_LISTEN"]);
}

#[test]
fn a_command_that_needs_the_acdb_names_the_missing_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = ccare(
        &["cdc", "--once"],
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")],
        dir.path(),
    );
    assert_one_error_line(&out, &["ACDB_DSN"]);
}

#[test]
fn an_unreachable_database_gives_one_clear_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let acdb = testkit::acdb::generated_small();
    let out = ccare(
        &["cdc", "--once"],
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
            ("ACDB_DSN", &acdb.dsn()),
        ],
        dir.path(),
    );
    assert_one_error_line(&out, &["127.0.0.1:1"]);
}

#[tokio::test]
async fn a_bad_acdb_dsn_gives_one_clear_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::pg::fresh_database().await;
    let out = ccare(
        &["cdc", "--once"],
        &[
            ("DATABASE_URL", &db.url),
            ("ACDB_DSN", "Driver=NoSuchOdbcDriver;Database=/nonexistent"),
        ],
        dir.path(),
    );
    assert_one_error_line(&out, &["ACDB", "NoSuchOdbcDriver"]);
}

#[tokio::test]
async fn a_missing_acdb_table_gives_one_clear_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::pg::fresh_database().await;
    let acdb = testkit::acdb::generated_small();
    acdb.execute("DROP TABLE [tblmeterdata1]", &[]);
    let out = ccare(
        &["cdc", "--once"],
        &[("DATABASE_URL", &db.url), ("ACDB_DSN", &acdb.dsn())],
        dir.path(),
    );
    assert_one_error_line(&out, &["tblmeterdata1"]);
}

#[tokio::test]
async fn the_api_role_refuses_to_start_without_a_token_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::pg::fresh_database().await;
    let out = ccare(
        &["serve", "--role", "api"],
        &[("DATABASE_URL", &db.url), ("CCARE_LISTEN", "127.0.0.1:0")],
        dir.path(),
    );
    assert_one_error_line(&out, &["CCARE_JWT_SECRET", "is not set"]);
}

#[test]
fn a_token_secret_shorter_than_32_bytes_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = ccare(
        &["serve", "--role", "api"],
        &[("CCARE_JWT_SECRET", "changeme")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_one_error_line(&out, &["CCARE_JWT_SECRET", "at least 32 bytes"]);
}

#[test]
fn the_bridge_role_refuses_to_start_without_both_whatsapp_settings() {
    let dir = tempfile::tempdir().unwrap();

    let neither = ccare(&["serve", "--role", "bridge"], &[], dir.path());
    let half = ccare(
        &["serve", "--role", "bridge"],
        &[("WHATSAPP_VERIFY_TOKEN", "a-token")],
        dir.path(),
    );

    assert_one_error_line(&neither, &["WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET"]);
    assert_eq!(half.status.code(), Some(2));
    assert_one_error_line(&half, &["WHATSAPP_APP_SECRET", "is not set"]);
}

#[test]
fn simulating_a_whatsapp_message_without_a_secret_or_a_server_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();

    let no_secret = ccare(
        &[
            "bridge",
            "simulate",
            "--from",
            "+26658123456",
            "Ha ke na motlakase",
        ],
        &[],
        dir.path(),
    );
    let bad_phone = ccare(
        &[
            "bridge",
            "simulate",
            "--from",
            "call me",
            "Ha ke na motlakase",
        ],
        &[],
        dir.path(),
    );
    // Nothing listens on this port: the error says where it posted and what to start.
    let no_server = ccare(
        &[
            "bridge",
            "simulate",
            "--from",
            "+26658123456",
            "Ha ke na motlakase",
        ],
        &[
            ("WHATSAPP_VERIFY_TOKEN", "a-token"),
            ("WHATSAPP_APP_SECRET", "a-secret"),
            ("CCARE_LISTEN", "127.0.0.1:9"),
        ],
        dir.path(),
    );

    assert_one_error_line(&no_secret, &["WHATSAPP_APP_SECRET", "ccare demo"]);
    assert_one_error_line(&bad_phone, &["--from", "not a phone number"]);
    assert_one_error_line(&no_server, &["127.0.0.1:9/webhooks/whatsapp", "running"]);
}
