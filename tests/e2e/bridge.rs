//! The WhatsApp bridge end to end: `ccare serve` with WhatsApp configured and an HTTP fake of
//! the Cloud API, and `ccare bridge simulate` posting a signed message to its webhook.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adapters::store::EventStore;
use chrono::Datelike;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::ccare;

const APP_SECRET: &str = "e2e-app-secret";

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn whatsapp_vars<'a>(listen: &'a str, cloud_api: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CCARE_LISTEN", listen),
        ("WHATSAPP_VERIFY_TOKEN", "e2e-verify-token"),
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_ACCESS_TOKEN", "e2e-access-token"),
        ("WHATSAPP_PHONE_NUMBER_ID", "1234567890"),
        ("WHATSAPP_API_URL", cloud_api),
    ]
}

/// A `ccare serve` process, killed when dropped (also when the test fails half-way).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(database_url: &str, vars: &[(&str, &str)], data_dir: &std::path::Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccare"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CCARE_") || k.starts_with("ACDB_") || k.starts_with("WHATSAPP_") {
            command.env_remove(k);
        }
    }
    command
        .env("DATABASE_URL", database_url)
        .env("CCARE_DATA_DIR", data_dir)
        .env("CCARE_LOG", "warn")
        .env("CCARE_JWT_SECRET", "e2e-token-secret-of-at-least-32-bytes")
        .envs(vars.iter().copied())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map(Server)
        .expect("ccare serve starts")
}

fn account_0001mak() -> domain::event::NewEvent {
    use domain::acdb::{AcdbRow, AcdbValue};
    use domain::record::{RowChange, ROW_CHANGE_VERSION};
    let change = RowChange::Created {
        row: AcdbRow::new()
            .with("accountnumber", AcdbValue::Text("0001MAK".into()))
            .with("customerid", AcdbValue::Int(1))
            .with("meterid", AcdbValue::Text("SMRSD-26-00000001".into()))
            .with("community", AcdbValue::Text("MAK".into())),
    };
    domain::event::NewEvent {
        event_id: domain::event::capture_event_id("Account", "0001MAK", 1),
        aggregate_type: "Account".into(),
        aggregate_id: "0001MAK".into(),
        sequence: 1,
        event_type: change.event_type("Account"),
        event_version: ROW_CHANGE_VERSION.into(),
        payload: change.to_payload(),
        metadata: domain::envelope::Envelope::now(
            domain::envelope::Actor::system(),
            uuid::Uuid::new_v4(),
        )
        .to_metadata(),
    }
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_message_simulated_from_a_customers_phone_opens_a_ticket_at_their_site_and_the_reply_reaches_the_cloud_api(
) {
    let db = testkit::pg::fresh_database().await;
    // Customer 1 (Palesa Mokoena, +266 5800 1234) and her account at MAK.
    EventStore::new(db.pool.clone())
        .append(&[testkit::events::customer_created(1), account_0001mak()])
        .await
        .unwrap();
    let cloud_api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1234567890/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{ "id": "wamid.e2e.out" }]
        })))
        .mount(&cloud_api)
        .await;
    let data_dir = tempfile::tempdir().unwrap();
    let listen = free_address();
    let cloud_api_url = cloud_api.uri();
    let vars = whatsapp_vars(&listen, &cloud_api_url);
    let _server = serve(&db.url, &vars, data_dir.path());
    wait_until("the customer read model has the customer", async || {
        sqlx::query_scalar::<_, i64>("select count(*) from read_model.customers")
            .fetch_one(&db.pool)
            .await
            .is_ok_and(|n| n == 1)
            && sqlx::query_scalar::<_, i64>("select count(*) from read_model.accounts")
                .fetch_one(&db.pool)
                .await
                .is_ok_and(|n| n == 1)
    })
    .await;
    wait_until("the server listens", async || {
        reqwest::get(format!("http://{listen}/health"))
            .await
            .is_ok()
    })
    .await;

    let simulated = tokio::task::spawn_blocking({
        let (vars, dir, url) = (
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
            data_dir.path().to_path_buf(),
            db.url.clone(),
        );
        move || {
            let mut vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            vars.push(("DATABASE_URL", &url));
            ccare(
                &[
                    "bridge",
                    "simulate",
                    "--from",
                    "58001234",
                    "Ha ke na motlakase",
                ],
                &vars,
                &dir,
            )
        }
    })
    .await
    .unwrap();

    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::Africa::Maseru)
        .year();
    let number = format!("MAK-{year}-0001");
    let stdout = String::from_utf8_lossy(&simulated.stdout);
    assert!(
        simulated.status.success(),
        "{}",
        String::from_utf8_lossy(&simulated.stderr)
    );
    assert!(stdout.contains(&format!("ticket: {number}")), "{stdout}");
    wait_until("the reply reaches the Cloud API", async || {
        cloud_api
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(&number))
    })
    .await;
    let sent = cloud_api.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["to"], "26658001234");
    assert_eq!(
        sent[0].headers.get("authorization").unwrap(),
        "Bearer e2e-access-token"
    );
}
