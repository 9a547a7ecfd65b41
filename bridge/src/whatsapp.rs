//! The client that sends messages through the WhatsApp Business Cloud API: one `POST` to the
//! messages endpoint per attempt, with the bodies of [`cloud_api`], retried while the failure is
//! temporary.
//!
//! # What the caller does with an outcome
//!
//! - [`SentMessage`]: Meta took the message. Record its wamid: delivery comes later as status
//!   updates for it.
//! - [`SendError::OutsideServiceWindow`]: the 24-hour window has closed (error 131047). Send a
//!   template instead; sending the same text again will fail the same way.
//! - [`SendError::Rejected`]: this request will never succeed as it is (a bad number, an unknown
//!   template, an expired token…). Do not retry it; alert on 401 and error 190, since every send
//!   fails until the token is replaced.
//! - [`SendError::NoMessageId`]: Meta answered success without naming the message. It was
//!   probably sent, so it is not retried; log it.
//! - [`SendError::Unavailable`]: the attempts ran out on temporary failures. Retry later, from
//!   the outbox ([`SendError::is_retryable`]), no sooner than `retry_after` when it is set.
//!
//! # Retries
//!
//! A failure is retried, with exponential back-off and jitter ([`RetryPolicy`]), when it is a
//! network error or timeout, HTTP 408, 429 or 5xx, or a Graph error code that
//! [`ApiErrorBody::is_retryable`] lists. A `Retry-After` header sets the wait instead of the
//! back-off; a wait longer than [`RetryPolicy::max_backoff`] ends the attempts at once, with the
//! wait in [`SendError::Unavailable`], rather than hold the caller for it.
//!
//! # Idempotency
//!
//! The Cloud API takes no idempotency key, so a request that reached Meta and then lost its
//! answer cannot be told apart from one that never arrived. The approach:
//!
//! - the caller stores each outbound message under its own id before sending, and records the
//!   wamid returned for it, so that a restart never sends a message that already has a wamid;
//! - this client never sends again after an answer that names a wamid, whatever its status;
//! - a failure to connect is never ambiguous: nothing was sent;
//! - a timeout or a connection lost after the request was written is ambiguous. It is retried,
//!   since a reply sent twice costs less than a reply never sent, and it marks the final
//!   [`SendError::Unavailable`] `ambiguous`, so that the caller logs that the customer may
//!   already have the message before it retries.
//!
//! An HTTP error answer is taken to mean that Meta did not take the message.
//!
//! The caller's outbox also paces sends (Meta limits throughput per phone number and per
//! recipient); this client only reacts to the limits it is told about.

use std::error::Error as _;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::cloud_api::{self, ApiErrorBody, SendResponse};

/// The Graph API base the client posts to by default. v25.0 was released on 2026-02-18 and,
/// per Meta's Graph API changelog, is available until 2028-07-29 (v21.0 ends on 2027-01-21;
/// v26.0 is the newest). The send body and answer have not changed across these versions;
/// moving to a newer version is a change of this string, checked against the changelog.
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com/v25.0";

/// How long one attempt may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest Graph error message kept in a [`SendError`].
const MAX_MESSAGE_CHARS: usize = 500;

/// How often, and how patiently, a send is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// The back-off after the first failed attempt; it doubles after each further one.
    pub base_backoff: Duration,
    /// The longest wait between attempts, and the longest `Retry-After` that is waited out.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting about 0.5 s, 1 s and 2 s between them.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `failed + 1`: half of the exponential back-off, capped at
    /// `max_backoff`, plus a random part of the other half, so that waits grow while senders
    /// that failed together spread out. `unit` is the random part, in `[0, 1)`.
    fn backoff(&self, failed: u32, unit: f64) -> Duration {
        let doubling = 2u32.saturating_pow(failed.saturating_sub(1));
        let ceiling = self
            .base_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        ceiling / 2 + (ceiling / 2).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Where and as whom to send. The access token is readable only by this module, and `Debug`
/// does not show it.
#[derive(Clone)]
pub struct CloudApiConfig {
    /// The Graph API base, version included: [`DEFAULT_API_URL`], or a fake's address in tests.
    pub api_url: String,
    /// A system-user token with the `whatsapp_business_messaging` permission.
    access_token: String,
    /// The business phone number the messages are sent from (digits, Meta's id, not the number).
    pub phone_number_id: String,
    /// How long one attempt may take; half of it is allowed for connecting.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl CloudApiConfig {
    /// A configuration with [`DEFAULT_API_URL`], [`DEFAULT_TIMEOUT`] and the default
    /// [`RetryPolicy`]; the public fields can be changed afterwards.
    pub fn new(access_token: impl Into<String>, phone_number_id: impl Into<String>) -> Self {
        CloudApiConfig {
            api_url: DEFAULT_API_URL.to_owned(),
            access_token: access_token.into(),
            phone_number_id: phone_number_id.into(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for CloudApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApiConfig")
            .field("api_url", &self.api_url)
            .field("access_token", &"[redacted]")
            .field("phone_number_id", &self.phone_number_id)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Why a [`CloudApiConfig`] cannot send anything.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no WhatsApp access token is configured")]
    NoAccessToken,
    #[error("the WhatsApp phone number id {0:?} is not Meta's numeric id")]
    BadPhoneNumberId(String),
    #[error("the Cloud API URL {0:?} is not an http or https URL")]
    BadApiUrl(String),
    #[error("the retry policy allows no attempt")]
    NoAttempts,
    #[error("the timeout is zero")]
    NoTimeout,
    #[error("the HTTP client cannot be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// A message to send. `to` is the customer's wa_id, as the webhook gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Free-form text, accepted only within 24 hours of the customer's last message.
    Text { to: String, body: String },
    /// A pre-approved template; `parameters` fill its body's `{{1}}`, `{{2}}`… in order.
    Template {
        to: String,
        name: String,
        /// The template's language code, e.g. `en_US`.
        language: String,
        parameters: Vec<String>,
    },
}

impl Outbound {
    /// The recipient's wa_id.
    pub fn to(&self) -> &str {
        match self {
            Outbound::Text { to, .. } | Outbound::Template { to, .. } => to,
        }
    }

    /// The JSON posted to the messages endpoint.
    pub fn request_body(&self) -> Value {
        match self {
            Outbound::Text { to, body } => cloud_api::text_message(to, body),
            Outbound::Template {
                to,
                name,
                language,
                parameters,
            } => cloud_api::template_message(to, name, language, parameters),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Outbound::Text { .. } => "text",
            Outbound::Template { .. } => "template",
        }
    }
}

/// A message Meta took. (Not [`cloud_api::SentMessage`], the wire entry it is read from.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Meta's id for the message, which its status updates carry.
    pub wamid: String,
    /// The attempts it took, the successful one included.
    pub attempts: u32,
}

/// Why a message was not sent. No variant holds the access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Error 131047: the free-form message came after the 24-hour window closed. Only a
    /// template can reach the customer now.
    #[error("the customer-service window has closed (error 131047): send a template instead")]
    OutsideServiceWindow,
    /// The Cloud API refused this request, and would refuse it again.
    #[error(
        "the Cloud API rejected the message with HTTP {status}{}: {message}",
        graph_code(.code)
    )]
    Rejected {
        status: u16,
        /// The Graph error code, when the answer had one.
        code: Option<i64>,
        message: String,
        /// Meta support's key to the failed request.
        fbtrace_id: Option<String>,
    },
    /// Meta answered success without a message id: the message was probably sent, so it is not
    /// sent again, but its status updates cannot be matched to it.
    #[error(
        "the Cloud API answered HTTP {status} without a message id; the message may have been sent"
    )]
    NoMessageId { status: u16 },
    /// Every attempt failed, each for a reason that may pass.
    #[error(
        "the Cloud API was unavailable for {attempts} attempt(s){}: {reason}",
        ambiguity(.ambiguous)
    )]
    Unavailable {
        attempts: u32,
        /// Whether an attempt may have reached Meta and been taken (it timed out, or the
        /// connection was lost, after the request was written): a retry may duplicate it.
        ambiguous: bool,
        /// How long Meta asked the client to wait before the next attempt.
        retry_after: Option<Duration>,
        /// What went wrong on the last attempt.
        reason: String,
    },
}

impl SendError {
    /// Whether the caller's outbox should send the same message again later. Only
    /// [`SendError::Unavailable`] is: every other failure would repeat, or the message was
    /// probably sent.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Unavailable { .. })
    }
}

fn graph_code(code: &Option<i64>) -> String {
    code.map(|code| format!(" (error {code})"))
        .unwrap_or_default()
}

fn ambiguity(ambiguous: &bool) -> &'static str {
    if *ambiguous {
        ", and one of them may have been taken"
    } else {
        ""
    }
}

/// Sends messages as one business phone number. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct CloudApiClient {
    http: reqwest::Client,
    url: Url,
    config: CloudApiConfig,
}

/// One attempt's failure when another attempt may succeed.
#[derive(Debug)]
struct Temporary {
    ambiguous: bool,
    retry_after: Option<Duration>,
    reason: String,
}

enum Attempt {
    Sent(String),
    Final(SendError),
    Temporary(Temporary),
}

impl CloudApiClient {
    /// Checks the configuration and builds the HTTP client; nothing is sent yet.
    pub fn new(config: CloudApiConfig) -> Result<Self, ConfigError> {
        if config.access_token.is_empty() {
            return Err(ConfigError::NoAccessToken);
        }
        // Meta's ids are digits; anything else would also change the path it is spliced into.
        let id = &config.phone_number_id;
        if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ConfigError::BadPhoneNumberId(id.clone()));
        }
        let url = Url::parse(&cloud_api::messages_url(&config.api_url, id))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| ConfigError::BadApiUrl(config.api_url.clone()))?;
        if config.retry.max_attempts == 0 {
            return Err(ConfigError::NoAttempts);
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::NoTimeout);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("ccare-bridge/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            // A failure to connect is never ambiguous, so it gets its own, shorter limit rather
            // than being cut off by the request's.
            .connect_timeout(config.timeout / 2)
            // The Graph API does not redirect; a redirect would be a misconfigured URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ConfigError::Client)?;
        Ok(CloudApiClient { http, url, config })
    }

    /// Sends one message, retrying temporary failures as the [`RetryPolicy`] allows.
    #[tracing::instrument(name = "whatsapp_send", skip_all, fields(kind = message.kind()))]
    pub async fn send(&self, message: &Outbound) -> Result<SentMessage, SendError> {
        let body = message.request_body();
        let policy = self.config.retry;
        let mut ambiguous = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(&body).await {
                Attempt::Sent(wamid) => return Ok(SentMessage { wamid, attempts }),
                Attempt::Final(error) => return Err(error),
                Attempt::Temporary(failure) => failure,
            };
            ambiguous |= failure.ambiguous;
            let wait = failure
                .retry_after
                .unwrap_or_else(|| policy.backoff(attempts, jitter()));
            if attempts >= policy.max_attempts || wait > policy.max_backoff {
                return Err(SendError::Unavailable {
                    attempts,
                    ambiguous,
                    retry_after: failure.retry_after,
                    reason: failure.reason,
                });
            }
            tracing::warn!(
                attempt = attempts,
                max_attempts = policy.max_attempts,
                wait_ms = wait.as_millis() as u64,
                ambiguous = failure.ambiguous,
                reason = %failure.reason,
                "a WhatsApp send failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, body: &Value) -> Attempt {
        let sent = self
            .http
            .post(self.url.clone())
            .bearer_auth(&self.config.access_token)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Attempt::Temporary(self.transport_failure(error)),
        };
        let status = response.status();
        let retry_after = response_retry_after(response.headers(), Utc::now());
        // An unreadable body is read as empty: the status alone then decides.
        let text = response.text().await.unwrap_or_default();

        if let Some(wamid) = serde_json::from_str::<SendResponse>(&text)
            .ok()
            .and_then(|answer| answer.message_id().map(str::to_owned))
        {
            return Attempt::Sent(wamid);
        }
        if status.is_success() {
            return Attempt::Final(SendError::NoMessageId {
                status: status.as_u16(),
            });
        }
        let api_error = serde_json::from_str::<ApiErrorBody>(&text).ok();
        if api_error
            .as_ref()
            .is_some_and(ApiErrorBody::is_outside_service_window)
        {
            return Attempt::Final(SendError::OutsideServiceWindow);
        }
        let code = api_error.as_ref().and_then(|body| body.error.code);
        let message = match api_error
            .as_ref()
            .and_then(|body| body.error.message.as_deref())
        {
            Some(message) => self.scrub(message),
            None => status
                .canonical_reason()
                .unwrap_or("no error message")
                .to_owned(),
        };
        let retryable = status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || api_error.as_ref().is_some_and(ApiErrorBody::is_retryable);
        if retryable {
            return Attempt::Temporary(Temporary {
                ambiguous: false,
                retry_after,
                reason: format!("HTTP {}{}: {message}", status.as_u16(), graph_code(&code)),
            });
        }
        Attempt::Final(SendError::Rejected {
            status: status.as_u16(),
            code,
            message,
            fbtrace_id: api_error.and_then(|body| body.error.fbtrace_id),
        })
    }

    fn transport_failure(&self, error: reqwest::Error) -> Temporary {
        if error.is_connect() {
            return Temporary {
                ambiguous: false,
                retry_after: None,
                reason: format!("could not connect: {}", error_chain(error)),
            };
        }
        let reason = if error.is_timeout() {
            format!("no answer within {:?}", self.config.timeout)
        } else {
            error_chain(error)
        };
        Temporary {
            ambiguous: true,
            retry_after: None,
            reason,
        }
    }

    /// Meta's text, clipped, and without the token should an answer ever quote it.
    fn scrub(&self, text: &str) -> String {
        let clipped: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        clipped.replace(&self.config.access_token, "[redacted]")
    }
}

/// The error and its causes, without the URL (which holds nothing secret, but is noise).
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn response_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

/// A `Retry-After` value: whole seconds, or an HTTP date (a date already past is no wait).
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)` to spread back-offs. `RandomState` is seeded randomly per process and
/// varied per instance: not for secrets, enough to keep senders from retrying in step.
fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

    const TOKEN: &str = "EAAGtest-token-that-must-never-be-shown";
    const PHONE_NUMBER_ID: &str = "106540352242922";
    const MESSAGES_PATH: &str = "/v25.0/106540352242922/messages";
    const WAMID: &str = "wamid.HBgLMjY2NTgxMjM0NTYVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";
    const CUSTOMER: &str = "26658123456";

    /// A configuration for `server`, with back-offs short enough for tests.
    fn config(server: &MockServer) -> CloudApiConfig {
        let mut config = CloudApiConfig::new(TOKEN, PHONE_NUMBER_ID);
        config.api_url = format!("{}/v25.0", server.uri());
        config.timeout = Duration::from_secs(5);
        config.retry = RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        };
        config
    }

    fn client(config: CloudApiConfig) -> CloudApiClient {
        CloudApiClient::new(config).expect("the test configuration is valid")
    }

    fn text(body: &str) -> Outbound {
        Outbound::Text {
            to: CUSTOMER.to_owned(),
            body: body.to_owned(),
        }
    }

    fn messages_endpoint() -> MockBuilder {
        Mock::given(method("POST")).and(path(MESSAGES_PATH))
    }

    fn accepted(wamid: &str) -> ResponseTemplate {
        answer_naming(200, wamid)
    }

    /// An answer with `status` whose body names the message, as a success does.
    fn answer_naming(status: u16, wamid: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": CUSTOMER, "wa_id": CUSTOMER }],
            "messages": [{ "id": wamid, "message_status": "accepted" }],
        }))
    }

    fn graph_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": "details" },
                "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
            }
        }))
    }

    async fn assert_sends(server: &MockServer, message: Outbound) {
        let sent = client(config(server)).send(&message).await;
        assert_eq!(
            sent,
            Ok(SentMessage {
                wamid: WAMID.to_owned(),
                attempts: 1
            })
        );
    }

    #[tokio::test]
    async fn a_text_is_posted_with_the_bearer_token_and_returns_the_wamid() {
        let server = MockServer::start().await;
        messages_endpoint()
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": CUSTOMER,
                "type": "text",
                "text": { "body": "Tikete ea hao MAK-2026-0065 e thehiloe.", "preview_url": false },
            })))
            .respond_with(accepted(WAMID))
            .expect(1)
            .mount(&server)
            .await;

        assert_sends(&server, text("Tikete ea hao MAK-2026-0065 e thehiloe.")).await;
    }

    #[tokio::test]
    async fn a_template_is_posted_with_its_body_parameters_in_order() {
        let server = MockServer::start().await;
        messages_endpoint()
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": CUSTOMER,
                "type": "template",
                "template": {
                    "name": "ticket_update",
                    "language": { "code": "en_US" },
                    "components": [{
                        "type": "body",
                        "parameters": [
                            { "type": "text", "text": "MAK-2026-0065" },
                            { "type": "text", "text": "Mpho" },
                        ],
                    }],
                },
            })))
            .respond_with(accepted(WAMID))
            .expect(1)
            .mount(&server)
            .await;

        let template = Outbound::Template {
            to: CUSTOMER.to_owned(),
            name: "ticket_update".to_owned(),
            language: "en_US".to_owned(),
            parameters: vec!["MAK-2026-0065".to_owned(), "Mpho".to_owned()],
        };
        assert_sends(&server, template).await;
    }

    #[tokio::test]
    async fn a_template_without_parameters_is_posted_without_components() {
        let server = MockServer::start().await;
        messages_endpoint()
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": CUSTOMER,
                "type": "template",
                "template": { "name": "hello_world", "language": { "code": "en_US" } },
            })))
            .respond_with(accepted(WAMID))
            .expect(1)
            .mount(&server)
            .await;

        let template = Outbound::Template {
            to: CUSTOMER.to_owned(),
            name: "hello_world".to_owned(),
            language: "en_US".to_owned(),
            parameters: Vec::new(),
        };
        assert_sends(&server, template).await;
    }

    #[tokio::test]
    async fn a_500_then_a_200_succeeds_on_the_second_attempt() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        messages_endpoint()
            .respond_with(accepted(WAMID))
            .expect(1)
            .mount(&server)
            .await;

        let sent = client(config(&server)).send(&text("hi")).await.unwrap();
        assert_eq!(sent.wamid, WAMID);
        assert_eq!(sent.attempts, 2);
    }

    #[tokio::test]
    async fn a_429_with_retry_after_is_waited_out_then_retried() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(
                graph_error(429, 130429, "(#130429) Rate limit hit")
                    .insert_header("Retry-After", "1"),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        messages_endpoint()
            .respond_with(accepted(WAMID))
            .expect(1)
            .mount(&server)
            .await;
        let mut config = config(&server);
        config.retry.max_backoff = Duration::from_secs(2);

        let started = Instant::now();
        let sent = client(config).send(&text("hi")).await.unwrap();
        assert_eq!(sent.attempts, 2);
        // The back-off alone would have waited a millisecond.
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "retried after {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_retry_after_longer_than_the_longest_back_off_ends_the_attempts_at_once() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "60"))
            .expect(1)
            .mount(&server)
            .await;

        let error = client(config(&server)).send(&text("hi")).await.unwrap_err();
        assert!(error.is_retryable());
        assert!(
            matches!(
                &error,
                SendError::Unavailable { attempts: 1, ambiguous: false, retry_after: Some(wait), .. }
                    if *wait == Duration::from_secs(60)
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_graph_rate_limit_code_in_a_400_is_retried() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(graph_error(400, 131056, "(#131056) Pair rate limit hit"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        messages_endpoint()
            .respond_with(accepted(WAMID))
            .expect(1)
            .mount(&server)
            .await;

        let sent = client(config(&server)).send(&text("hi")).await.unwrap();
        assert_eq!(sent.attempts, 2);
    }

    #[tokio::test]
    async fn a_persistent_503_is_unavailable_after_the_last_attempt() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(graph_error(503, 131016, "(#131016) Service unavailable"))
            .expect(3)
            .mount(&server)
            .await;

        let error = client(config(&server)).send(&text("hi")).await.unwrap_err();
        assert!(error.is_retryable());
        assert_eq!(
            error,
            SendError::Unavailable {
                attempts: 3,
                ambiguous: false,
                retry_after: None,
                reason: "HTTP 503 (error 131016): (#131016) Service unavailable".to_owned(),
            }
        );
    }

    #[tokio::test]
    async fn error_131047_is_outside_the_service_window_after_one_request() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(graph_error(400, 131047, "(#131047) Re-engagement message"))
            .expect(1)
            .mount(&server)
            .await;

        let error = client(config(&server)).send(&text("hi")).await.unwrap_err();
        assert_eq!(error, SendError::OutsideServiceWindow);
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn an_invalid_parameter_is_rejected_after_one_request() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(graph_error(400, 100, "(#100) Invalid parameter"))
            .expect(1)
            .mount(&server)
            .await;

        let error = client(config(&server)).send(&text("hi")).await.unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(
            error,
            SendError::Rejected {
                status: 400,
                code: Some(100),
                message: "(#100) Invalid parameter".to_owned(),
                fbtrace_id: Some("Az8or2yhqkZfEZ-_4Qn_Bam".to_owned()),
            }
        );
        assert_eq!(
            error.to_string(),
            "the Cloud API rejected the message with HTTP 400 (error 100): (#100) Invalid parameter"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_retried_then_unavailable_and_ambiguous() {
        let server = MockServer::start().await;
        // Meta took the message each time; the answer came too late to say so.
        messages_endpoint()
            .respond_with(accepted(WAMID).set_delay(Duration::from_secs(2)))
            .expect(2)
            .mount(&server)
            .await;
        let mut config = config(&server);
        config.timeout = Duration::from_millis(200);
        config.retry.max_attempts = 2;

        let error = client(config).send(&text("hi")).await.unwrap_err();
        assert!(error.is_retryable());
        assert!(
            matches!(
                &error,
                SendError::Unavailable { attempts: 2, ambiguous: true, retry_after: None, reason }
                    if reason == "no answer within 200ms"
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("may have been taken"), "{error}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_and_is_not_ambiguous() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut config = CloudApiConfig::new(TOKEN, PHONE_NUMBER_ID);
        config.api_url = format!("http://{address}/v25.0");
        config.retry = RetryPolicy {
            max_attempts: 2,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        };

        let error = client(config).send(&text("hi")).await.unwrap_err();
        assert!(
            matches!(
                &error,
                SendError::Unavailable { attempts: 2, ambiguous: false, reason, .. }
                    if reason.starts_with("could not connect")
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_200_without_a_message_id_is_an_error_and_is_not_sent_again() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": CUSTOMER, "wa_id": CUSTOMER }],
                "messages": [],
            })))
            .expect(1)
            .mount(&server)
            .await;

        let error = client(config(&server)).send(&text("hi")).await.unwrap_err();
        assert_eq!(error, SendError::NoMessageId { status: 200 });
        assert!(!error.is_retryable());
        assert!(
            error.to_string().contains("without a message id"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_error_answer_that_names_a_wamid_is_not_sent_again() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(answer_naming(503, WAMID))
            .expect(1)
            .mount(&server)
            .await;

        let sent = client(config(&server)).send(&text("hi")).await.unwrap();
        assert_eq!(sent.wamid, WAMID);
        assert_eq!(sent.attempts, 1);
    }

    #[tokio::test]
    async fn an_error_quoting_the_token_does_not_show_it() {
        let server = MockServer::start().await;
        messages_endpoint()
            .respond_with(graph_error(
                401,
                190,
                &format!("Invalid OAuth access token - Cannot parse access token {TOKEN}"),
            ))
            .expect(1)
            .mount(&server)
            .await;

        let error = client(config(&server)).send(&text("hi")).await.unwrap_err();
        assert!(
            matches!(
                error,
                SendError::Rejected {
                    status: 401,
                    code: Some(190),
                    ..
                }
            ),
            "{error:?}"
        );
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn debug_hides_the_access_token() {
        let config = CloudApiConfig::new(TOKEN, PHONE_NUMBER_ID);
        let shown = format!(
            "{config:?} {:?}",
            CloudApiClient::new(config.clone()).unwrap()
        );
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains(PHONE_NUMBER_ID), "{shown}");
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = CloudApiConfig::new(TOKEN, PHONE_NUMBER_ID);
        assert_eq!(config.api_url, "https://graph.facebook.com/v25.0");
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(
            config.retry,
            RetryPolicy {
                max_attempts: 4,
                base_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(8),
            }
        );
        let client = CloudApiClient::new(config).unwrap();
        assert_eq!(
            client.url.as_str(),
            "https://graph.facebook.com/v25.0/106540352242922/messages"
        );
    }

    #[test]
    fn a_configuration_that_cannot_send_is_refused() {
        let refused = |change: fn(&mut CloudApiConfig)| {
            let mut config = CloudApiConfig::new(TOKEN, PHONE_NUMBER_ID);
            change(&mut config);
            CloudApiClient::new(config).unwrap_err()
        };
        assert!(matches!(
            CloudApiClient::new(CloudApiConfig::new("", PHONE_NUMBER_ID)),
            Err(ConfigError::NoAccessToken)
        ));
        for id in ["", "1065/../me", "+26622000000"] {
            assert!(
                matches!(
                    CloudApiClient::new(CloudApiConfig::new(TOKEN, id)),
                    Err(ConfigError::BadPhoneNumberId(_))
                ),
                "{id:?}"
            );
        }
        assert!(matches!(
            refused(|config| config.api_url = "graph.facebook.com/v25.0".to_owned()),
            ConfigError::BadApiUrl(_)
        ));
        assert!(matches!(
            refused(|config| config.api_url = "ftp://graph.facebook.com/v25.0".to_owned()),
            ConfigError::BadApiUrl(_)
        ));
        assert!(matches!(
            refused(|config| config.retry.max_attempts = 0),
            ConfigError::NoAttempts
        ));
        assert!(matches!(
            refused(|config| config.timeout = Duration::ZERO),
            ConfigError::NoTimeout
        ));
    }

    #[test]
    fn the_back_off_doubles_up_to_the_cap_with_half_of_it_random() {
        let policy = RetryPolicy::default();
        let ms = Duration::from_millis;
        let expected = [
            (1, 500),
            (2, 1000),
            (3, 2000),
            (4, 4000),
            (5, 8000),
            (6, 8000),
        ];
        for (failed, ceiling) in expected {
            assert_eq!(
                policy.backoff(failed, 0.0),
                ms(ceiling / 2),
                "after {failed}"
            );
            assert_eq!(policy.backoff(failed, 1.0), ms(ceiling), "after {failed}");
            let middle = policy.backoff(failed, 0.5);
            assert!(
                middle > ms(ceiling / 2) && middle < ms(ceiling),
                "after {failed}"
            );
        }
        assert_eq!(policy.backoff(u32::MAX, 1.0), ms(8000));
        for _ in 0..100 {
            let unit = jitter();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
