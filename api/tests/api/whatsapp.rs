//! `/webhooks/whatsapp`: Meta's verify handshake, and deliveries verified against their
//! signature over the raw bytes and stored in the inbox before the 200.

use adapters::inbox::PgWebhookInbox;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use domain::inbox::WebhookInbox;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::support::{Reply, TestApp};

const PATH: &str = "/webhooks/whatsapp";
const VERIFY_TOKEN: &str = "ccare-verify-token";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A delivery as Meta sends one: two inbound messages (one with emoji) in one change, a status
/// update of ours in another, odd spacing and a `\u` escape that re-serialising would change.
const DELIVERY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[
  {"field":"messages","value":{"messaging_product":"whatsapp",
    "metadata":{"display_phone_number":"26622000000","phone_number_id":"106540352242922"},
    "contacts":[{"profile":{"name":"Mpho \u00e9"},"wa_id":"26658123456"}],
    "messages":[
      {"from":"26658123456","id":"wamid.ONE","timestamp":"1749416383","type":"text","text":{"body":"Motlakase o khaohile 😞⚡ Ha Makebe"}},
      {"from":"26658123456","id":"wamid.TWO","timestamp":"1749416390","type":"text","text":{"body":"Ke kopa thuso 🙏"}}]}},
  {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},
    "statuses":[{"id":"wamid.OURS","status":"delivered","timestamp":"1749416400","recipient_id":"26658123456"}]}}
]}]}"#;

/// `sha256=<hex>` of `body` under `secret`, as Meta computes `X-Hub-Signature-256`.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_raw(app: &TestApp, body: &[u8], signature: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(PATH)
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    app.send(request.body(Body::from(body.to_vec())).unwrap())
        .await
}

async fn post_signed(app: &TestApp, body: &[u8]) -> Reply {
    post_raw(app, body, Some(&signature(APP_SECRET, body))).await
}

async fn configured_app() -> TestApp {
    TestApp::start_with_whatsapp(VERIFY_TOKEN, APP_SECRET).await
}

async fn stored_deliveries(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from whatsapp_inbox")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn seen_messages(app: &TestApp) -> Vec<(String, i64)> {
    sqlx::query_as("select message_id, inbox_id from whatsapp_seen_messages order by message_id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

fn handshake_path(mode: &str, token: &str, challenge: &str) -> String {
    format!("{PATH}?hub.mode={mode}&hub.verify_token={token}&hub.challenge={challenge}")
}

#[tokio::test]
async fn the_verify_handshake_echoes_the_challenge_as_plain_text() {
    let app = configured_app().await;

    let reply = app
        .get(
            &handshake_path("subscribe", VERIFY_TOKEN, "1158201444"),
            None,
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.bytes, b"1158201444");
    let content_type = reply.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
}

#[tokio::test]
async fn a_handshake_with_a_wrong_token_a_wrong_mode_or_no_challenge_is_refused_with_403() {
    let app = configured_app().await;

    for (path, problem) in [
        (
            handshake_path("subscribe", "guessed-token", "1"),
            "hub.verify_token does not match",
        ),
        (
            handshake_path("unsubscribe", VERIFY_TOKEN, "1"),
            "hub.mode must be subscribe",
        ),
        (
            format!("{PATH}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
            "hub.challenge is missing",
        ),
        (PATH.to_string(), "hub.mode must be subscribe"),
    ] {
        let reply = app.get(&path, None).await;

        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(reply.detail(), problem, "{path}");
        assert!(!reply.detail().contains("guessed"), "{path}");
    }
}

#[tokio::test]
async fn a_correctly_signed_delivery_is_stored_byte_for_byte_before_the_200() {
    let app = configured_app().await;

    let reply = post_signed(&app, DELIVERY.as_bytes()).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = reply.body["delivery"].as_i64().expect("the inbox id");
    assert_eq!(
        reply.body,
        json!({"status": "stored", "delivery": id, "redelivery": false})
    );
    // Read back through the port the bridge's worker will use.
    let pending = PgWebhookInbox::new(app.db.pool.clone())
        .next_unprocessed(0, 10, i32::MAX)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(
        pending[0].body,
        DELIVERY.as_bytes(),
        "emoji and escapes kept"
    );
    assert_eq!(pending[0].message_ids, ["wamid.ONE", "wamid.TWO"]);
    assert_eq!(
        seen_messages(&app).await,
        [("wamid.ONE".to_string(), id), ("wamid.TWO".to_string(), id)],
        "the status update's id is our message's, not a message to deduplicate"
    );
}

#[tokio::test]
async fn an_unsigned_delivery_is_refused_with_401_and_nothing_is_stored() {
    let app = configured_app().await;

    let reply = post_raw(&app, DELIVERY.as_bytes(), None).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert!(
        reply.detail().contains("X-Hub-Signature-256"),
        "{}",
        reply.body
    );
    assert_eq!(stored_deliveries(&app).await, 0);
}

#[tokio::test]
async fn a_delivery_signed_with_another_secret_or_a_malformed_signature_is_refused_with_401() {
    let app = configured_app().await;
    let body = DELIVERY.as_bytes();

    for header in [
        signature("not the app secret", body),
        "sha256=zz".to_string(),
        signature(APP_SECRET, body).replace("sha256=", "sha1="),
        signature(APP_SECRET, body)[..70].to_string(),
    ] {
        let reply = post_raw(&app, body, Some(&header)).await;

        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}");
    }
    assert_eq!(stored_deliveries(&app).await, 0);
}

#[tokio::test]
async fn a_delivery_changed_after_signing_is_refused_with_401() {
    let app = configured_app().await;
    let signed = signature(APP_SECRET, DELIVERY.as_bytes());
    let altered = DELIVERY.replace("Ha Makebe", "Ha Makeba");
    // The same JSON, written again: a proxy that re-serialises breaks the signature too.
    let reserialised =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(DELIVERY).unwrap()).unwrap();

    for body in [altered.as_bytes(), &reserialised[..]] {
        let reply = post_raw(&app, body, Some(&signed)).await;

        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    assert_eq!(stored_deliveries(&app).await, 0);
}

#[tokio::test]
async fn a_delivery_over_the_webhook_limit_is_refused_with_413_though_one_at_the_limit_is_stored() {
    let app = configured_app().await;
    let limit = bridge::cloud_api::MAX_BODY_BYTES;
    // Valid JSON padded with spaces: far over the API's limit for its own request bodies.
    let mut at_limit = DELIVERY.as_bytes().to_vec();
    at_limit.resize(limit, b' ');
    let mut over = at_limit.clone();
    over.push(b' ');

    let refused = post_signed(&app, &over).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.body
    );
    assert_eq!(stored_deliveries(&app).await, 0);

    let stored = post_signed(&app, &at_limit).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert_eq!(stored_deliveries(&app).await, 1);
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_delivery_is_refused_with_400_naming_the_problem_not_the_content(
) {
    let app = configured_app().await;

    for (body, problem) in [
        (&b"not json, SECRET-CONTENT"[..], "is not valid JSON"),
        (
            &br#"{"object":"whatsapp_business_account","entry":"SECRET-CONTENT"}"#[..],
            "not in the shape of a WhatsApp delivery",
        ),
        (
            &br#"{"object":"whatsapp_business_account","entry":["#[..],
            "ends before",
        ),
    ] {
        let reply = post_signed(&app, body).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.body["field"], "body");
        assert!(reply.detail().contains(problem), "{}", reply.body);
        assert!(!reply.detail().contains("SECRET"), "{}", reply.body);
    }
    assert_eq!(stored_deliveries(&app).await, 0);
}

#[tokio::test]
async fn a_redelivery_is_answered_200_as_a_redelivery_and_its_messages_are_not_seen_twice() {
    let app = configured_app().await;
    let first = post_signed(&app, DELIVERY.as_bytes()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);

    let again = post_signed(&app, DELIVERY.as_bytes()).await;

    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["status"], "stored");
    assert_eq!(again.body["redelivery"], true);
    assert_ne!(again.body["delivery"], first.body["delivery"]);
    let first_id = first.body["delivery"].as_i64().unwrap();
    assert_eq!(
        seen_messages(&app).await,
        [
            ("wamid.ONE".to_string(), first_id),
            ("wamid.TWO".to_string(), first_id)
        ]
    );
}

#[tokio::test]
async fn a_delivery_the_inbox_cannot_store_is_answered_503_so_meta_retries_it() {
    let app = configured_app().await;
    sqlx::query("drop table whatsapp_seen_messages")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let reply = post_signed(&app, DELIVERY.as_bytes()).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        !reply.detail().contains("whatsapp_seen_messages"),
        "{}",
        reply.body
    );
    assert_eq!(stored_deliveries(&app).await, 0);
}

#[tokio::test]
async fn without_whatsapp_settings_both_routes_answer_404_saying_so() {
    let app = TestApp::start().await;

    let handshake = app
        .get(&handshake_path("subscribe", VERIFY_TOKEN, "1"), None)
        .await;
    let delivery = post_signed(&app, DELIVERY.as_bytes()).await;

    for reply in [handshake, delivery] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(reply.detail(), "the WhatsApp bridge is not configured");
    }
}
