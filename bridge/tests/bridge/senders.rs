//! The outbox senders against real HTTP fakes of the Cloud API and uGridPlan.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bridge::senders::{ReplySender, Templates, UgridplanForwarder};
use bridge::ugridplan::{UgridplanClient, UgridplanConfig};
use bridge::whatsapp::{CloudApiClient, CloudApiConfig, RetryPolicy};
use bridge::worker::WorkerSettings;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{failed_status, text_message, Bridge, MPHO_PHONE, MPHO_WA_ID};

const PHONE_NUMBER_ID: &str = "1234567890";

fn cloud_api(server: &MockServer) -> CloudApiClient {
    let mut config = CloudApiConfig::new("test-access-token", PHONE_NUMBER_ID);
    config.api_url = server.uri();
    config.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    CloudApiClient::new(config).unwrap()
}

fn accepted(wamid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": MPHO_WA_ID, "wa_id": MPHO_WA_ID }],
        "messages": [{ "id": wamid }]
    }))
}

fn sender(bridge: &Bridge, server: &MockServer) -> ReplySender {
    ReplySender::new(
        bridge.ports.outbox.clone(),
        bridge.conversations.clone(),
        cloud_api(server),
        Templates::default(),
    )
}

async fn requests(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Lets the due time of every queued item pass, as waiting out a back-off would.
async fn make_everything_due(bridge: &Bridge) {
    sqlx::query("update bridge_outbox set not_before = now() - interval '1 second'")
        .execute(&bridge.db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reply_within_the_service_window_goes_as_text_and_its_message_id_is_recorded() {
    let bridge = Bridge::new().await;
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.1",
            "Lumela",
            Utc::now(),
            WorkerSettings::default(),
        )
        .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{PHONE_NUMBER_ID}/messages")))
        .respond_with(accepted("wamid.out.1"))
        .expect(1)
        .mount(&server)
        .await;

    let sent = sender(&bridge, &server).send_due().await.unwrap();

    assert_eq!(sent.sent, 1);
    let [body] = &requests(&server).await[..] else {
        panic!()
    };
    assert_eq!(body["type"], "text");
    assert_eq!(body["to"], MPHO_WA_ID);
    assert!(body["text"]["body"].as_str().unwrap().contains("Lumela"));
    let outbox = bridge.outbox().await;
    assert!(outbox[0].done);
    let conversation = bridge.conversation(MPHO_PHONE).await;
    assert!(
        conversation.unsent_replies.is_empty(),
        "the reply is recorded as sent"
    );
    // Nothing is sent twice.
    assert_eq!(sender(&bridge, &server).send_due().await.unwrap().sent, 0);
}

#[tokio::test]
async fn a_reply_after_the_service_window_goes_as_the_approved_template() {
    let bridge = Bridge::new().await;
    // The message reaches ccare two days late (the worker was down).
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.1",
            "Lumela",
            Utc::now() - Duration::days(2),
            WorkerSettings::default(),
        )
        .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({ "type": "template", "template": { "name": "ccare_reply" } }),
        ))
        .respond_with(accepted("wamid.out.1"))
        .expect(1)
        .mount(&server)
        .await;

    let sent = sender(&bridge, &server).send_due().await.unwrap();

    assert_eq!(sent.sent, 1);
    let [body] = &requests(&server).await[..] else {
        panic!()
    };
    let parameter = body
        .pointer("/template/components/0/parameters/0/text")
        .unwrap();
    assert!(
        parameter.as_str().unwrap().starts_with("Lumela!")
            && !parameter.as_str().unwrap().contains('\n'),
        "{parameter}"
    );
}

#[tokio::test]
async fn a_cloud_api_outage_delays_a_reply_with_back_off_and_it_goes_once_the_api_is_back() {
    let bridge = Bridge::new().await;
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.1",
            "Lumela",
            Utc::now(),
            WorkerSettings::default(),
        )
        .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;

    let first = sender(&bridge, &server).send_due().await.unwrap();
    assert_eq!((first.sent, first.retried), (0, 1));
    let outbox = bridge.outbox().await;
    assert!(!outbox[0].done);
    assert_eq!(outbox[0].attempts, 1);
    assert!(
        outbox[0].not_before > Utc::now(),
        "it waits before the next attempt"
    );
    assert_eq!(
        sender(&bridge, &server).send_due().await.unwrap().sent,
        0,
        "not before its time"
    );

    Mock::given(method("POST"))
        .respond_with(accepted("wamid.out.1"))
        .mount(&server)
        .await;
    make_everything_due(&bridge).await;
    let second = sender(&bridge, &server).send_due().await.unwrap();
    assert_eq!(second.sent, 1);
    assert!(bridge.outbox().await[0].done);
}

fn ugridplan(server: &MockServer) -> UgridplanClient {
    let mut config =
        UgridplanConfig::new(format!("{}/api", server.uri()), "ops-bot", "s3cret-pass");
    config.timeout = StdDuration::from_secs(5);
    UgridplanClient::new(config).unwrap()
}

async fn mount_login(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/api/auth/login"))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header("Set-Cookie", "access_token=tok; Path=/; HttpOnly")
                .set_body_json(json!({ "data": { "status": "ok" } })),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_ugridplan_outage_delays_the_ticket_and_its_follow_up_without_losing_them_and_the_ugridplan_id_is_recorded(
) {
    let bridge = Bridge::new().await;
    let worker = bridge.worker(WorkerSettings {
        forward_to_ugridplan: true,
        ..WorkerSettings::default()
    });
    let start = Utc::now() - Duration::minutes(5);
    bridge
        .deliver(text_message(
            MPHO_WA_ID,
            "wamid.1",
            "Ha ke na motlakase",
            start,
        ))
        .await;
    bridge
        .deliver(text_message(
            MPHO_WA_ID,
            "wamid.2",
            "Le joale",
            start + Duration::minutes(1),
        ))
        .await;
    worker.process_pending().await.unwrap();
    let number = bridge.ticket_numbers().await.remove(0);

    let server = MockServer::start().await;
    mount_login(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/om/tickets"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let forwarder = UgridplanForwarder::new(
        bridge.ports.outbox.clone(),
        bridge.tickets.clone(),
        ugridplan(&server),
    );

    let first = forwarder.forward_due().await.unwrap();
    assert_eq!(
        (first.sent, first.retried),
        (0, 1),
        "the comment waits behind its ticket"
    );
    assert_eq!(bridge.ticket(&number).await.ugridplan_id, None);

    Mock::given(method("POST"))
        .and(path("/api/om/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "success": true, "ticket": { "ticket_id": "UGP-77", "site_id": "MAK", "priority": "P1" } }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/om/tickets/UGP-77/comments"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "data": { "success": true } })),
        )
        .expect(1)
        .mount(&server)
        .await;
    make_everything_due(&bridge).await;
    let second = forwarder.forward_due().await.unwrap();
    assert_eq!(second.sent, 1, "the ticket first");
    assert_eq!(
        bridge.ticket(&number).await.ugridplan_id.as_deref(),
        Some("UGP-77")
    );
    let third = forwarder.forward_due().await.unwrap();
    assert_eq!(third.sent, 1, "then its comment");
    assert!(bridge
        .outbox()
        .await
        .iter()
        .filter(|r| r.channel == "ugridplan")
        .all(|r| r.done));
}

#[tokio::test]
async fn the_reply_sender_and_the_worker_run_until_shut_down() {
    let bridge = Bridge::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted("wamid.out.1"))
        .mount(&server)
        .await;
    let worker = Arc::new(bridge.worker(WorkerSettings {
        poll_interval: StdDuration::from_millis(50),
        ..WorkerSettings::default()
    }));
    let sender = Arc::new(sender(&bridge, &server));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (worker_task, sender_task) = {
        let (w, s) = (worker.clone(), sender.clone());
        let (stop_w, stop_s) = (stopped.clone(), stopped.clone());
        (
            tokio::spawn(async move { w.run(wait(stop_w)).await }),
            tokio::spawn(async move { s.run(StdDuration::from_millis(50), wait(stop_s)).await }),
        )
    };
    bridge
        .deliver(text_message(MPHO_WA_ID, "wamid.1", "Lumela", Utc::now()))
        .await;
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(15);
    while requests(&server).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply was never sent"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    stop.send_replace(true);
    worker_task.await.unwrap();
    sender_task.await.unwrap();
}

async fn wait(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

#[tokio::test]
async fn a_free_text_reported_failed_for_the_closed_window_is_sent_again_as_the_template() {
    let bridge = Bridge::new().await;
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.1",
            "Lumela",
            Utc::now(),
            WorkerSettings::default(),
        )
        .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted("wamid.out.1"))
        .mount(&server)
        .await;
    assert_eq!(sender(&bridge, &server).send_due().await.unwrap().sent, 1);

    // Meta took the text, then reports that the window had closed.
    bridge
        .deliver(failed_status(MPHO_WA_ID, "wamid.out.1", 131047))
        .await;
    bridge
        .worker(WorkerSettings::default())
        .process_pending()
        .await
        .unwrap();
    let again = sender(&bridge, &server).send_due().await.unwrap();

    assert_eq!(again.sent, 1);
    let bodies = requests(&server).await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["type"], "text");
    assert_eq!(bodies[1]["type"], "template");
    assert_eq!(bodies[1]["template"]["name"], "ccare_reply");
    // Another failure of the same message queues nothing more.
    bridge
        .deliver(failed_status(MPHO_WA_ID, "wamid.out.1", 131047))
        .await;
    bridge
        .worker(WorkerSettings::default())
        .process_pending()
        .await
        .unwrap();
    assert_eq!(sender(&bridge, &server).send_due().await.unwrap().sent, 0);
}
