//! The HTTP client of uGridPlan, the utility's O&M ticket system: it opens a ticket for a
//! customer's fault and adds follow-up comments to it (legacy-system.md §7.5).
//!
//! The bridge calls it from its outbox, so every failure says whether to try again later
//! ([`UgridplanError::is_retryable`]) and when ([`UgridplanError::retry_after`]). A client is
//! cheap to clone, and its clones share one session: the first call logs in, later calls reuse
//! the `access_token` cookie for [`SESSION_LIFETIME`], and a call refused with 401 or 403 logs in
//! again once and is sent once more.
//!
//! The wire shape is the legacy one, field for field, with two departures:
//!
//! - the bridge logs in with its own configured user and password, not the shared monthly code;
//! - a site the triage could not tell is filed under [`DEFAULT_SITE`], where the legacy bridge
//!   sent the literal `"UNKNOWN"` whenever the AI produced it.
//!
//! uGridPlan's answers are read leniently (`data.status` or a top-level `status`; the ticket under
//! `data.ticket`, `ticket`, or at the top), because the legacy code is their only description.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, COOKIE, RETRY_AFTER, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::triage::{Category, Priority};

/// How long one request to uGridPlan may take, connecting included, unless configured otherwise.
/// The legacy bridge's value.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a session cookie is reused before logging in again. The legacy bridge's value;
/// uGridPlan does not say when the cookie expires, and a refused cookie is renewed anyway.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The site a ticket is filed under when the customer's site is not known: the legacy default.
pub const DEFAULT_SITE: &str = "LSB";

/// The longest `fault_description` sent, in characters (not bytes), as in the legacy bridge.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The `ticket_type` of every ticket the bridge opens: a customer reports something to repair.
pub const TICKET_TYPE: &str = "corrective";

const SESSION_COOKIE: &str = "access_token";

/// How much of uGridPlan's own explanation an error message quotes.
const MAX_DETAIL_CHARS: usize = 200;

/// Where uGridPlan is and whom the bridge logs in as.
#[derive(Clone)]
pub struct UgridplanConfig {
    /// The API root, e.g. `https://dev.ugp.1pwrafrica.com/api`; a trailing slash is ignored.
    pub base_url: String,
    /// The employee number the bridge logs in with.
    pub user: String,
    /// Never printed: `Debug` shows it redacted, and error messages leave it out.
    pub password: String,
    /// The limit for each request, connecting included.
    pub timeout: Duration,
}

impl UgridplanConfig {
    /// A configuration with the [`DEFAULT_TIMEOUT`].
    pub fn new(
        base_url: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        UgridplanConfig {
            base_url: base_url.into(),
            user: user.into(),
            password: password.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for UgridplanConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UgridplanConfig")
            .field("base_url", &self.base_url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a [`UgridplanConfig`] cannot make a client. Each one stops start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the uGridPlan base URL {url:?} is not an http(s) URL: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("the uGridPlan {0} is empty")]
    Missing(&'static str),
    #[error("the HTTP client for uGridPlan cannot be built")]
    Http(#[source] reqwest::Error),
}

/// Who reported the fault, as the ticket's `reported_by` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter<'a> {
    /// A customer the customer projection knows by the sender's phone.
    Customer {
        first_name: &'a str,
        last_name: &'a str,
    },
    /// A sender no customer record matches: their WhatsApp profile name and their phone.
    Unidentified {
        profile_name: &'a str,
        phone: &'a str,
    },
}

impl Reporter<'_> {
    /// `"<First> <Last> (WhatsApp)"` or `"WhatsApp: <profile name> (<phone>)"`, as in the legacy
    /// bridge. A sender without a profile name is `"WhatsApp: <phone>"`, where the legacy bridge
    /// wrote `undefined`.
    pub fn reported_by(&self) -> String {
        match *self {
            Reporter::Customer {
                first_name,
                last_name,
            } => {
                let names: Vec<&str> = [first_name.trim(), last_name.trim()]
                    .into_iter()
                    .filter(|name| !name.is_empty())
                    .collect();
                format!("{} (WhatsApp)", names.join(" "))
            }
            Reporter::Unidentified {
                profile_name,
                phone,
            } => match profile_name.trim() {
                "" => format!("WhatsApp: {}", phone.trim()),
                name => format!("WhatsApp: {name} ({})", phone.trim()),
            },
        }
    }
}

/// The body of `POST /om/tickets`. The field names are the legacy ones and are uGridPlan's
/// contract: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTicket {
    /// A three-letter site code such as `MAK`, or [`DEFAULT_SITE`].
    pub site_id: String,
    /// At most [`MAX_DESCRIPTION_CHARS`] characters.
    pub fault_description: String,
    pub reported_by: String,
    /// `meter`, `electrical`, `civil` or `unknown` (see [`Category::equipment_category`]).
    pub equipment_category: String,
    /// Always [`TICKET_TYPE`].
    pub ticket_type: String,
    pub priority: Priority,
    /// Left out of the body, as in the legacy bridge, when the customer is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

impl NewTicket {
    /// The ticket the legacy bridge would open for a triaged message, with the departures named
    /// in the module docs.
    ///
    /// - `site`: the customer's or the triage's site code. `None`, a blank one or `"UNKNOWN"`
    ///   (which the legacy bridge sent as is, since it is a truthy string) becomes
    ///   [`DEFAULT_SITE`]; a known code is sent trimmed and in upper case.
    /// - `fault_summary`: the triage's one-sentence summary. When it is blank, the customer's
    ///   `text` is the description instead. Either is cut to [`MAX_DESCRIPTION_CHARS`]
    ///   characters; the legacy bridge cut only the text.
    pub fn from_triage(
        site: Option<&str>,
        category: Category,
        priority: Priority,
        fault_summary: &str,
        text: &str,
        reporter: Reporter<'_>,
        customer_id: Option<&str>,
    ) -> Self {
        let description = match fault_summary.trim() {
            "" => text.trim(),
            summary => summary,
        };
        NewTicket {
            site_id: site_code(site),
            fault_description: first_chars(description, MAX_DESCRIPTION_CHARS).to_owned(),
            reported_by: reporter.reported_by(),
            equipment_category: category.equipment_category().to_owned(),
            ticket_type: TICKET_TYPE.to_owned(),
            priority,
            customer_id: customer_id
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        }
    }
}

fn site_code(site: Option<&str>) -> String {
    match site.map(str::trim) {
        Some(code) if !code.is_empty() && !code.eq_ignore_ascii_case("UNKNOWN") => {
            code.to_ascii_uppercase()
        }
        _ => DEFAULT_SITE.to_owned(),
    }
}

/// The ticket uGridPlan opened, as it answered. A field its answer leaves out is the one sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTicket {
    /// uGridPlan's id, e.g. `MAK-2026-0065`: the one to quote to the customer and to comment on.
    pub ticket_id: String,
    pub site_id: String,
    /// As uGridPlan recorded it, which is normally the priority sent (`P1` to `P4`).
    pub priority: String,
    pub fault_description: String,
}

impl CreatedTicket {
    fn read(body: &Value, sent: &NewTicket) -> Option<CreatedTicket> {
        let ticket = [
            body.pointer("/data/ticket"),
            body.get("ticket"),
            body.get("data"),
            Some(body),
        ]
        .into_iter()
        .flatten()
        .find(|candidate| candidate.get("ticket_id").is_some())?;
        let text = |name: &str, sent: &str| {
            ticket
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or(sent)
                .to_owned()
        };
        let ticket_id = ticket.get("ticket_id")?.as_str()?.trim();
        if ticket_id.is_empty() {
            return None;
        }
        Some(CreatedTicket {
            ticket_id: ticket_id.to_owned(),
            site_id: text("site_id", &sent.site_id),
            priority: text("priority", sent.priority.as_str()),
            fault_description: text("fault_description", &sent.fault_description),
        })
    }
}

/// The comment the legacy bridge adds to a customer's open ticket when they write again within
/// the conversation window (legacy-system.md §7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpComment {
    /// `WhatsApp:<phone>`.
    pub user: String,
    /// `WhatsApp follow-up from <name> (<phone>):` and the message on the next line.
    pub text: String,
}

impl FollowUpComment {
    pub fn new(name: &str, phone: &str, text: &str) -> Self {
        let phone = phone.trim();
        let from = match name.trim() {
            "" => phone.to_owned(),
            name => format!("{name} ({phone})"),
        };
        FollowUpComment {
            user: format!("WhatsApp:{phone}"),
            text: format!("WhatsApp follow-up from {from}:\n{text}"),
        }
    }
}

/// The uGridPlan call that failed, as error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Login,
    CreateTicket,
    AddComment,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::Login => "login (POST /auth/login)",
            Call::CreateTicket => "ticket creation (POST /om/tickets)",
            Call::AddComment => "comment (POST /om/tickets/{id}/comments)",
        })
    }
}

/// Why a uGridPlan call did not do what was asked. [`is_retryable`](Self::is_retryable) tells
/// the outbox whether the same request may succeed later.
///
/// A ticket creation that timed out or failed with a 5xx may have opened the ticket even so: a
/// retry can open it twice, which the legacy contract gives no means to prevent.
#[derive(Debug, thiserror::Error)]
pub enum UgridplanError {
    /// No answer: the network or uGridPlan is down, or slower than the timeout. Retryable.
    #[error("uGridPlan {call}: no answer ({})", transport_failure(.source))]
    Transport {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    /// uGridPlan refused the configured user and password. Not retryable: the configuration
    /// must change first.
    #[error(
        "uGridPlan refused the login of user {user:?} (HTTP {status}{}): the configured uGridPlan \
         user or password is wrong, a configuration fault that retrying will not fix",
        saying(.detail)
    )]
    LoginRefused {
        user: String,
        status: StatusCode,
        detail: Option<String>,
    },
    /// The call was refused with 401 or 403 again right after a fresh login, so the user may
    /// not make it. Not retryable: uGridPlan's permissions must change first.
    #[error(
        "uGridPlan {call} answered HTTP {status} even after a fresh login{}: the configured \
         uGridPlan user is not allowed to do this, a configuration fault",
        saying(.detail)
    )]
    Forbidden {
        call: Call,
        status: StatusCode,
        detail: Option<String>,
    },
    /// An error status. Retryable for 408, 429 and 5xx, after `retry_after` if uGridPlan gave
    /// one; any other 4xx refuses this request as it is.
    #[error("uGridPlan {call} answered HTTP {status}{}", saying(.detail))]
    Status {
        call: Call,
        status: StatusCode,
        retry_after: Option<Duration>,
        detail: Option<String>,
    },
    /// A success status whose body says `success: false`. Not retryable: uGridPlan refused it.
    #[error("uGridPlan {call} answered HTTP {status} but reported no success{}", saying(.detail))]
    Rejected {
        call: Call,
        status: StatusCode,
        detail: Option<String>,
    },
    /// A success status whose body lacks what the legacy contract promises. Not retryable: the
    /// same request would get the same answer, and a ticket may have been opened.
    #[error("uGridPlan {call} answered HTTP {status} without the expected fields: {reason}")]
    UnexpectedAnswer {
        call: Call,
        status: StatusCode,
        reason: String,
    },
    /// A ticket id that cannot name a URL path segment (blank, `.` or `..`). Not retryable.
    #[error("uGridPlan {call}: the ticket id {ticket_id:?} cannot be a URL path segment")]
    BadTicketId { call: Call, ticket_id: String },
}

impl UgridplanError {
    /// Whether the same request may succeed later without anything being changed first.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A builder error is a request that can never be sent, not a network fault.
            UgridplanError::Transport { source, .. } => !source.is_builder(),
            UgridplanError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            UgridplanError::LoginRefused { .. }
            | UgridplanError::Forbidden { .. }
            | UgridplanError::Rejected { .. }
            | UgridplanError::UnexpectedAnswer { .. }
            | UgridplanError::BadTicketId { .. } => false,
        }
    }

    /// How long uGridPlan asked the bridge to wait (its `Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UgridplanError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status uGridPlan answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            UgridplanError::LoginRefused { status, .. }
            | UgridplanError::Forbidden { status, .. }
            | UgridplanError::Status { status, .. }
            | UgridplanError::Rejected { status, .. }
            | UgridplanError::UnexpectedAnswer { status, .. } => Some(*status),
            UgridplanError::Transport { .. } | UgridplanError::BadTicketId { .. } => None,
        }
    }
}

fn transport_failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_builder() {
        "the request could not be built"
    } else {
        "the exchange failed"
    }
}

fn saying(detail: &Option<String>) -> String {
    match detail {
        Some(detail) => format!(", saying {detail:?}"),
        None => String::new(),
    }
}

/// The client. Clones share the HTTP connection pool and the session.
#[derive(Clone)]
pub struct UgridplanClient {
    http: reqwest::Client,
    shared: Arc<Shared>,
}

struct Shared {
    base: Url,
    user: String,
    password: String,
    /// A tokio mutex, held across a login: callers that find no valid session wait for the one
    /// login in progress instead of each starting their own.
    session: Mutex<Option<Session>>,
}

struct Session {
    /// `access_token=…`, marked sensitive so that no debug log of a request shows it.
    cookie: HeaderValue,
    expires: Instant,
}

impl fmt::Debug for UgridplanClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UgridplanClient")
            .field("base_url", &self.shared.base.as_str())
            .field("user", &self.shared.user)
            .finish_non_exhaustive()
    }
}

impl UgridplanClient {
    pub fn new(config: UgridplanConfig) -> Result<Self, ConfigError> {
        let base = parse_base_url(&config.base_url)?;
        if config.user.trim().is_empty() {
            return Err(ConfigError::Missing("user"));
        }
        if config.password.is_empty() {
            return Err(ConfigError::Missing("password"));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirected POST turns into a GET and loses its body; a redirect is better seen
            // as the misconfigured base URL it is.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ccare-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ConfigError::Http)?;
        Ok(UgridplanClient {
            http,
            shared: Arc::new(Shared {
                base,
                user: config.user,
                password: config.password,
                session: Mutex::new(None),
            }),
        })
    }

    /// Opens a ticket. Not idempotent: see [`UgridplanError`] before retrying.
    #[tracing::instrument(skip_all, fields(site = %ticket.site_id, priority = %ticket.priority))]
    pub async fn create_ticket(&self, ticket: &NewTicket) -> Result<CreatedTicket, UgridplanError> {
        let call = Call::CreateTicket;
        let answer = self
            .post_in_session(call, self.endpoint(&["om", "tickets"]), ticket)
            .await?;
        let body = answer.success_body(call, &self.shared.password)?;
        let unexpected = |reason: &str| UgridplanError::UnexpectedAnswer {
            call,
            status: answer.status,
            reason: reason.to_owned(),
        };
        let body = body.ok_or_else(|| unexpected("the body is not JSON"))?;
        match success_flag(&body) {
            Some(true) => {}
            Some(false) => {
                return Err(UgridplanError::Rejected {
                    call,
                    status: answer.status,
                    detail: detail(&body, &self.shared.password),
                })
            }
            None => {
                return Err(unexpected(
                    "no `success` flag, neither `data.success` nor `success`",
                ))
            }
        }
        let created = CreatedTicket::read(&body, ticket).ok_or_else(|| {
            unexpected("no `ticket_id` string in `data.ticket`, `ticket` or the body")
        })?;
        tracing::info!(ticket_id = %created.ticket_id, "uGridPlan ticket created");
        Ok(created)
    }

    /// Adds a comment to a ticket; [`FollowUpComment`] makes the legacy follow-up one.
    #[tracing::instrument(skip(self, user, text))]
    pub async fn add_comment(
        &self,
        ticket_id: &str,
        user: &str,
        text: &str,
    ) -> Result<(), UgridplanError> {
        let call = Call::AddComment;
        // The URL builder drops `.` and `..` segments, which would post somewhere else.
        if matches!(ticket_id.trim(), "" | "." | "..") {
            return Err(UgridplanError::BadTicketId {
                call,
                ticket_id: ticket_id.to_owned(),
            });
        }
        let url = self.endpoint(&["om", "tickets", ticket_id, "comments"]);
        let answer = self
            .post_in_session(call, url, &json!({ "user": user, "text": text }))
            .await?;
        // The legacy bridge never looked at this answer; a body that says it failed is believed.
        if let Some(body) = answer.success_body(call, &self.shared.password)? {
            if success_flag(&body) == Some(false) {
                return Err(UgridplanError::Rejected {
                    call,
                    status: answer.status,
                    detail: detail(&body, &self.shared.password),
                });
            }
        }
        tracing::info!("uGridPlan comment added");
        Ok(())
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.shared.base.clone();
        url.path_segments_mut()
            .expect("parse_base_url accepts only http(s) URLs, which always have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Posts with the session cookie, logging in first if there is no valid session, and once
    /// more if uGridPlan refuses the cookie.
    async fn post_in_session<B: Serialize + ?Sized>(
        &self,
        call: Call,
        url: Url,
        body: &B,
    ) -> Result<Answer, UgridplanError> {
        let cookie = self.session_cookie().await?;
        let answer = self.post(call, url.clone(), body, Some(&cookie)).await?;
        if !is_refused_session(answer.status) {
            return Ok(answer);
        }
        tracing::warn!(%call, status = %answer.status, "uGridPlan refused the session; logging in again");
        self.forget_session(&cookie).await;
        let cookie = self.session_cookie().await?;
        let answer = self.post(call, url, body, Some(&cookie)).await?;
        if is_refused_session(answer.status) {
            return Err(UgridplanError::Forbidden {
                call,
                status: answer.status,
                detail: answer.detail(&self.shared.password),
            });
        }
        Ok(answer)
    }

    async fn session_cookie(&self) -> Result<HeaderValue, UgridplanError> {
        let mut session = self.shared.session.lock().await;
        if let Some(valid) = session.as_ref().filter(|s| s.expires > Instant::now()) {
            return Ok(valid.cookie.clone());
        }
        let cookie = self.log_in().await?;
        *session = Some(Session {
            cookie: cookie.clone(),
            expires: Instant::now() + SESSION_LIFETIME,
        });
        Ok(cookie)
    }

    /// Drops the session unless another caller has already replaced it with a fresh one.
    async fn forget_session(&self, refused: &HeaderValue) {
        let mut session = self.shared.session.lock().await;
        if session.as_ref().is_some_and(|s| s.cookie == *refused) {
            *session = None;
        }
    }

    async fn log_in(&self) -> Result<HeaderValue, UgridplanError> {
        let call = Call::Login;
        let shared = &self.shared;
        let credentials = json!({ "employeeNumber": shared.user, "password": shared.password });
        let answer = self
            .post(call, self.endpoint(&["auth", "login"]), &credentials, None)
            .await?;
        let refused = |answer: &Answer| UgridplanError::LoginRefused {
            user: shared.user.clone(),
            status: answer.status,
            detail: answer.detail(&shared.password),
        };
        if is_refused_session(answer.status) {
            return Err(refused(&answer));
        }
        let body = answer.success_body(call, &shared.password)?;
        let status = body.as_ref().and_then(|body| field(body, "status"));
        match status.and_then(Value::as_str) {
            Some(status) if status.eq_ignore_ascii_case("ok") => {}
            Some(_) => return Err(refused(&answer)),
            None => {
                return Err(UgridplanError::UnexpectedAnswer {
                    call,
                    status: answer.status,
                    reason: "no `status` string, neither `data.status` nor `status`".to_owned(),
                })
            }
        }
        let token = answer.session_cookie.clone().or_else(|| {
            body.as_ref()
                .and_then(|body| field(body, SESSION_COOKIE))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .map(str::to_owned)
        });
        let unexpected = |reason: &str| UgridplanError::UnexpectedAnswer {
            call,
            status: answer.status,
            reason: reason.to_owned(),
        };
        let token = token
            .ok_or_else(|| unexpected("no `access_token` cookie, nor an `access_token` field"))?;
        let mut cookie = HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}"))
            .map_err(|_| unexpected("the `access_token` is not valid in a Cookie header"))?;
        cookie.set_sensitive(true);
        tracing::info!(user = %shared.user, "logged in to uGridPlan");
        Ok(cookie)
    }

    async fn post<B: Serialize + ?Sized>(
        &self,
        call: Call,
        url: Url,
        body: &B,
        cookie: Option<&HeaderValue>,
    ) -> Result<Answer, UgridplanError> {
        let transport = |source| UgridplanError::Transport { call, source };
        let mut request = self.http.post(url).json(body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie.clone());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers();
        let retry_after = headers.get(RETRY_AFTER).and_then(parse_retry_after);
        let session_cookie = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(session_cookie_value)
            .map(str::to_owned);
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer {
            status,
            retry_after,
            session_cookie,
            body,
        })
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::BaseUrl {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme is neither http nor https"));
    }
    // Credentials in the URL would be printed wherever the URL is.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it holds credentials; configure the user and password instead",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a query or a fragment"));
    }
    Ok(url)
}

/// What uGridPlan answered, read in full.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    session_cookie: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`None` when it is not JSON) if the status is a success, else the error.
    fn success_body(&self, call: Call, password: &str) -> Result<Option<Value>, UgridplanError> {
        if !self.status.is_success() {
            return Err(UgridplanError::Status {
                call,
                status: self.status,
                retry_after: self.retry_after,
                detail: self.detail(password),
            });
        }
        Ok(serde_json::from_slice(&self.body).ok())
    }

    fn detail(&self, password: &str) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        detail(&body, password)
    }
}

/// uGridPlan's own explanation in a JSON body, shortened, with the password blotted out in case
/// the server echoes the request.
fn detail(body: &Value, password: &str) -> Option<String> {
    let explanation = ["message", "error", "detail", "msg"]
        .into_iter()
        .filter_map(|name| field(body, name))
        .find_map(|value| value.as_str().or_else(|| value.get("message")?.as_str()))
        .map(str::trim)
        .filter(|text| !text.is_empty())?;
    let explanation = if password.is_empty() {
        explanation.to_owned()
    } else {
        explanation.replace(password, "<redacted>")
    };
    Some(first_chars(&explanation, MAX_DETAIL_CHARS).to_owned())
}

/// A field under `data`, as the legacy bridge read it, or else at the top of the body.
fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get("data")
        .and_then(|data| data.get(name))
        .or_else(|| body.get(name))
}

fn success_flag(body: &Value) -> Option<bool> {
    field(body, "success").and_then(Value::as_bool)
}

fn is_refused_session(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

/// The value of `access_token=<value>; Path=/; …`, unless it is another cookie or the empty value
/// a server sets to delete it.
fn session_cookie_value(set_cookie: &str) -> Option<&str> {
    let (name, value) = set_cookie.split(';').next()?.split_once('=')?;
    let value = value.trim().trim_matches('"');
    (name.trim() == SESSION_COOKIE && !value.is_empty()).then_some(value)
}

/// `Retry-After` as seconds or as an HTTP date; a date in the past means now.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let value = value.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

fn first_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

    const USER: &str = "whatsapp-cc";
    const PASSWORD: &str = "Pa55-w0rd-never-shown";
    const TOKEN: &str = "session-token-1";

    fn client_for(server: &MockServer) -> UgridplanClient {
        client_with(UgridplanConfig::new(
            format!("{}/api", server.uri()),
            USER,
            PASSWORD,
        ))
    }

    fn client_with(config: UgridplanConfig) -> UgridplanClient {
        UgridplanClient::new(config).expect("the test configuration is valid")
    }

    fn login_request() -> MockBuilder {
        Mock::given(method("POST"))
            .and(path("/api/auth/login"))
            .and(body_json(
                json!({ "employeeNumber": USER, "password": PASSWORD }),
            ))
    }

    fn logged_in(token: &str) -> ResponseTemplate {
        ResponseTemplate::new(200)
            .append_header("Set-Cookie", "theme=dark; Path=/")
            .append_header(
                "Set-Cookie",
                format!("access_token={token}; Path=/; HttpOnly; SameSite=Strict").as_str(),
            )
            .set_body_json(json!({ "data": { "status": "ok", "user": USER } }))
    }

    async fn mount_login(server: &MockServer) {
        login_request()
            .respond_with(logged_in(TOKEN))
            .expect(1)
            .mount(server)
            .await;
    }

    fn ticket_request(token: &str) -> MockBuilder {
        Mock::given(method("POST"))
            .and(path("/api/om/tickets"))
            .and(header("cookie", format!("access_token={token}").as_str()))
    }

    fn created(ticket_id: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "data": {
                "success": true,
                "ticket": {
                    "ticket_id": ticket_id,
                    "site_id": "MAK",
                    "priority": "P1",
                    "fault_description": "No power at the house since morning.",
                    "status": "open"
                }
            }
        }))
    }

    fn no_power_ticket() -> NewTicket {
        NewTicket::from_triage(
            Some("MAK"),
            Category::NoPower,
            Priority::P1,
            "No power at the house since morning.",
            "Ha ho motlakase ho tloha hoseng",
            Reporter::Customer {
                first_name: "Palesa",
                last_name: "Mokoena",
            },
            Some("0123MAK"),
        )
    }

    fn unidentified() -> Reporter<'static> {
        Reporter::Unidentified {
            profile_name: "Thabo",
            phone: "26658001122",
        }
    }

    async fn error_of<T: fmt::Debug>(
        result: impl std::future::Future<Output = Result<T, UgridplanError>>,
    ) -> UgridplanError {
        result.await.expect_err("the call should fail")
    }

    fn assert_no_secrets(error: &UgridplanError) {
        let message = error.to_string();
        assert!(!message.contains(PASSWORD), "password in {message:?}");
        assert!(!message.contains(TOKEN), "session token in {message:?}");
    }

    #[tokio::test]
    async fn a_ticket_is_opened_after_logging_in_with_exactly_the_legacy_fields_and_the_cookie() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .and(body_json(json!({
                "site_id": "MAK",
                "fault_description": "No power at the house since morning.",
                "reported_by": "Palesa Mokoena (WhatsApp)",
                "equipment_category": "electrical",
                "ticket_type": "corrective",
                "priority": "P1",
                "customer_id": "0123MAK"
            })))
            .respond_with(created("MAK-2026-0065"))
            .expect(1)
            .mount(&server)
            .await;

        let ticket = client_for(&server)
            .create_ticket(&no_power_ticket())
            .await
            .expect("uGridPlan opened the ticket");

        assert_eq!(
            ticket,
            CreatedTicket {
                ticket_id: "MAK-2026-0065".to_owned(),
                site_id: "MAK".to_owned(),
                priority: "P1".to_owned(),
                fault_description: "No power at the house since morning.".to_owned(),
            }
        );
    }

    #[tokio::test]
    async fn an_unknown_customer_s_ticket_has_no_customer_id_field_at_all() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .and(body_json(json!({
                "site_id": "LSB",
                "fault_description": "Meter shows an error code.",
                "reported_by": "WhatsApp: Thabo (26658001122)",
                "equipment_category": "meter",
                "ticket_type": "corrective",
                "priority": "P2"
            })))
            .respond_with(created("LSB-2026-0001"))
            .expect(1)
            .mount(&server)
            .await;
        let ticket = NewTicket::from_triage(
            None,
            Category::MeterIssue,
            Priority::P2,
            "Meter shows an error code.",
            "mitara e bontsha phoso",
            unidentified(),
            None,
        );

        let created = client_for(&server).create_ticket(&ticket).await.unwrap();

        assert_eq!(created.ticket_id, "LSB-2026-0001");
    }

    #[tokio::test]
    async fn every_category_reaches_ugridplan_with_its_legacy_equipment_category() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(created("MAK-2026-0100"))
            .expect(9)
            .mount(&server)
            .await;
        let client = client_for(&server);
        let expected = [
            ("no-power", "electrical"),
            ("equipment-failure", "electrical"),
            ("meter-issue", "meter"),
            ("billing", "unknown"),
            ("installation", "unknown"),
            ("vegetation", "civil"),
            ("vandalism", "unknown"),
            ("complaint", "unknown"),
            ("general-inquiry", "unknown"),
        ];

        for (category, _) in expected {
            let category: Category = category.parse().unwrap();
            let ticket = NewTicket::from_triage(
                Some("MAK"),
                category,
                Priority::P3,
                category.as_str(),
                "",
                unidentified(),
                None,
            );
            client.create_ticket(&ticket).await.unwrap();
        }

        let sent: Vec<(String, String)> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|request| request.url.path() == "/api/om/tickets")
            .map(|request| {
                let body: Value = request.body_json().unwrap();
                let text = |name: &str| body[name].as_str().unwrap().to_owned();
                (text("fault_description"), text("equipment_category"))
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(category, equipment)| (category.to_string(), equipment.to_string()))
            .collect();
        assert_eq!(sent, expected);
    }

    #[tokio::test]
    async fn the_session_is_reused_across_calls_and_clones_without_logging_in_again() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(created("MAK-2026-0065"))
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/om/tickets/MAK-2026-0065/comments"))
            .and(header("cookie", format!("access_token={TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(&server);
        let clone = client.clone();

        client.create_ticket(&no_power_ticket()).await.unwrap();
        clone.create_ticket(&no_power_ticket()).await.unwrap();
        clone
            .add_comment("MAK-2026-0065", "WhatsApp:26658001122", "still dark")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn concurrent_first_calls_share_a_single_login() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(logged_in(TOKEN).set_delay(Duration::from_millis(200)))
            .expect(1)
            .mount(&server)
            .await;
        ticket_request(TOKEN)
            .respond_with(created("MAK-2026-0065"))
            .expect(3)
            .mount(&server)
            .await;
        let client = client_for(&server);
        let ticket = no_power_ticket();

        let (a, b, c) = tokio::join!(
            client.create_ticket(&ticket),
            client.create_ticket(&ticket),
            client.create_ticket(&ticket),
        );

        a.unwrap();
        b.unwrap();
        c.unwrap();
    }

    #[tokio::test]
    async fn an_expired_session_is_renewed_before_the_call() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(logged_in("first"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        login_request()
            .respond_with(logged_in("second"))
            .expect(1)
            .mount(&server)
            .await;
        ticket_request("first")
            .respond_with(created("MAK-2026-0001"))
            .expect(1)
            .mount(&server)
            .await;
        ticket_request("second")
            .respond_with(created("MAK-2026-0002"))
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(&server);
        client.create_ticket(&no_power_ticket()).await.unwrap();

        client.shared.session.lock().await.as_mut().unwrap().expires = Instant::now();
        let renewed = client.create_ticket(&no_power_ticket()).await.unwrap();

        assert_eq!(renewed.ticket_id, "MAK-2026-0002");
    }

    #[tokio::test]
    async fn a_call_refused_with_401_logs_in_again_once_and_is_resent_with_the_new_cookie() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(logged_in("stale"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        login_request()
            .respond_with(logged_in("fresh"))
            .expect(1)
            .mount(&server)
            .await;
        ticket_request("stale")
            .respond_with(ResponseTemplate::new(401))
            .expect(1)
            .mount(&server)
            .await;
        ticket_request("fresh")
            .respond_with(created("MAK-2026-0065"))
            .expect(1)
            .mount(&server)
            .await;

        let created = client_for(&server)
            .create_ticket(&no_power_ticket())
            .await
            .expect("the second attempt succeeds");

        assert_eq!(created.ticket_id, "MAK-2026-0065");
    }

    #[tokio::test]
    async fn a_call_refused_again_after_a_fresh_login_is_not_sent_a_third_time() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(logged_in(TOKEN))
            .expect(2)
            .mount(&server)
            .await;
        ticket_request(TOKEN)
            .respond_with(
                ResponseTemplate::new(403).set_body_json(json!({"message": "no O&M rights"})),
            )
            .expect(2)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(
            matches!(error, UgridplanError::Forbidden { status, .. } if status == 403),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(message.contains("ticket creation"), "{message}");
        assert!(message.contains("403"), "{message}");
        assert!(message.contains("no O&M rights"), "{message}");
        assert_no_secrets(&error);
    }

    #[tokio::test]
    async fn wrong_credentials_are_a_non_retryable_configuration_fault_and_no_ticket_is_sent() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "message": format!("Invalid credentials for password {PASSWORD}")
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/api/om/tickets"))
            .respond_with(created("never"))
            .expect(0)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(
            matches!(error, UgridplanError::LoginRefused { .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(message.contains("configuration fault"), "{message}");
        assert!(message.contains("401"), "{message}");
        assert!(message.contains(USER), "{message}");
        assert!(message.contains("Invalid credentials"), "{message}");
        assert_no_secrets(&error);
    }

    #[tokio::test]
    async fn a_login_answered_200_with_a_status_other_than_ok_is_refused() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "data": { "status": "error", "message": "Wrong password" } }),
            ))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(
            matches!(error, UgridplanError::LoginRefused { .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn a_top_level_status_and_success_and_ticket_and_a_body_token_are_accepted() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "status": "ok", "access_token": "from-body" })),
            )
            .expect(1)
            .mount(&server)
            .await;
        ticket_request("from-body")
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "success": true,
                "ticket": { "ticket_id": "MAK-2026-0070" }
            })))
            .expect(1)
            .mount(&server)
            .await;
        let ticket = no_power_ticket();

        let created = client_for(&server).create_ticket(&ticket).await.unwrap();

        assert_eq!(created.ticket_id, "MAK-2026-0070");
        assert_eq!(
            created.site_id, ticket.site_id,
            "the sent site fills the gap"
        );
        assert_eq!(created.priority, "P1");
        assert_eq!(created.fault_description, ticket.fault_description);
    }

    #[tokio::test]
    async fn a_login_that_yields_no_token_at_all_is_an_unexpected_answer() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": {"status": "ok"}})),
            )
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(
            matches!(
                error,
                UgridplanError::UnexpectedAnswer {
                    call: Call::Login,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("access_token"), "{error}");
    }

    #[tokio::test]
    async fn a_login_that_cannot_connect_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is closed again, so nothing accepts on that port.
        let client = client_with(UgridplanConfig::new(
            format!("http://127.0.0.1:{port}/api"),
            USER,
            PASSWORD,
        ));

        let error = error_of(client.create_ticket(&no_power_ticket())).await;

        assert!(
            matches!(
                error,
                UgridplanError::Transport {
                    call: Call::Login,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert!(error.to_string().contains("login"), "{error}");
        assert_eq!(error.retry_after(), None);
    }

    #[tokio::test]
    async fn a_login_answered_503_is_retryable() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(ResponseTemplate::new(503))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(error.is_retryable(), "{error:?}");
        assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[tokio::test]
    async fn a_ticket_answered_503_is_retryable_without_a_wait_when_none_is_given() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(ResponseTemplate::new(503).set_body_string("<html>down</html>"))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(error.is_retryable(), "{error:?}");
        assert_eq!(error.retry_after(), None);
        let message = error.to_string();
        assert!(message.contains("ticket creation"), "{message}");
        assert!(message.contains("503"), "{message}");
        assert_no_secrets(&error);
    }

    #[tokio::test]
    async fn a_429_is_retryable_after_the_retry_after_it_gives() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(error.is_retryable(), "{error:?}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
        assert!(error.to_string().contains("429"), "{error}");
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let header = |value: &str| parse_retry_after(&HeaderValue::from_str(value).unwrap());
        let in_ten_minutes = (Utc::now() + chrono::Duration::minutes(10))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();

        assert_eq!(header(" 30 "), Some(Duration::from_secs(30)));
        let wait = header(&in_ten_minutes).expect("an HTTP date is understood");
        assert!(
            wait > Duration::from_secs(9 * 60) && wait <= Duration::from_secs(10 * 60),
            "{wait:?}"
        );
        assert_eq!(
            header("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(header("soon"), None);
    }

    #[tokio::test]
    async fn a_ticket_call_slower_than_the_configured_timeout_is_retryable() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(created("MAK-2026-0065").set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let client = client_with(UgridplanConfig {
            timeout: Duration::from_millis(300),
            ..UgridplanConfig::new(format!("{}/api", server.uri()), USER, PASSWORD)
        });

        let started = Instant::now();
        let error = error_of(client.create_ticket(&no_power_ticket())).await;

        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the timeout held"
        );
        assert!(
            matches!(
                error,
                UgridplanError::Transport {
                    call: Call::CreateTicket,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert!(error.to_string().contains("timed out"), "{error}");
    }

    #[tokio::test]
    async fn a_validation_answer_is_not_retryable_and_names_the_call_the_status_and_the_reason() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(
                ResponseTemplate::new(422)
                    .set_body_json(json!({ "error": { "message": "site_id XYZ does not exist" } })),
            )
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(!error.is_retryable(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "uGridPlan ticket creation (POST /om/tickets) answered HTTP 422 Unprocessable Entity, \
             saying \"site_id XYZ does not exist\""
        );
    }

    #[tokio::test]
    async fn a_success_status_without_a_ticket_id_is_a_clear_non_retryable_error() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": { "success": true, "ticket": { "id": 65 } }
            })))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(!error.is_retryable(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "uGridPlan ticket creation (POST /om/tickets) answered HTTP 200 OK without the \
             expected fields: no `ticket_id` string in `data.ticket`, `ticket` or the body"
        );
    }

    #[tokio::test]
    async fn a_success_status_with_a_body_that_is_not_json_or_has_no_success_flag_is_not_retried() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        ticket_request(TOKEN)
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    json!({ "data": { "ticket": { "ticket_id": "MAK-2026-0065" } } }),
                ),
            )
            .mount(&server)
            .await;
        let client = client_for(&server);

        let not_json = error_of(client.create_ticket(&no_power_ticket())).await;
        let no_flag = error_of(client.create_ticket(&no_power_ticket())).await;

        assert!(!not_json.is_retryable());
        assert!(not_json.to_string().contains("not JSON"), "{not_json}");
        assert!(!no_flag.is_retryable());
        assert!(no_flag.to_string().contains("`success`"), "{no_flag}");
    }

    #[tokio::test]
    async fn success_false_is_a_rejection_that_quotes_ugridplan() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        ticket_request(TOKEN)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": { "success": false, "message": "duplicate ticket" }
            })))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).create_ticket(&no_power_ticket())).await;

        assert!(
            matches!(error, UgridplanError::Rejected { .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("duplicate ticket"), "{error}");
    }

    #[tokio::test]
    async fn a_comment_is_posted_to_the_ticket_s_path_with_user_and_text() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let follow_up = FollowUpComment::new("Palesa Mokoena", "26658001122", "Still no power.");
        Mock::given(method("POST"))
            .and(path("/api/om/tickets/MAK-2026-0065/comments"))
            .and(header("cookie", format!("access_token={TOKEN}").as_str()))
            .and(body_json(json!({
                "user": "WhatsApp:26658001122",
                "text": "WhatsApp follow-up from Palesa Mokoena (26658001122):\nStill no power."
            })))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;

        client_for(&server)
            .add_comment("MAK-2026-0065", &follow_up.user, &follow_up.text)
            .await
            .expect("the comment is added");
    }

    #[tokio::test]
    async fn a_ticket_id_is_one_encoded_path_segment() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("POST"))
            .and(path("/api/om/tickets/MAK%2F2026%3F0065/comments"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let client = client_for(&server);

        client.add_comment("MAK/2026?0065", "u", "t").await.unwrap();
        let dot_dot = error_of(client.add_comment("..", "u", "t")).await;

        assert!(
            matches!(dot_dot, UgridplanError::BadTicketId { .. }),
            "{dot_dot:?}"
        );
        assert!(!dot_dot.is_retryable());
    }

    #[tokio::test]
    async fn a_comment_on_an_unknown_ticket_is_not_retryable() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("POST"))
            .and(path("/api/om/tickets/MAK-2026-9999/comments"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
            .expect(1)
            .mount(&server)
            .await;

        let error = error_of(client_for(&server).add_comment("MAK-2026-9999", "u", "t")).await;

        assert!(!error.is_retryable(), "{error:?}");
        assert!(
            error.to_string().starts_with("uGridPlan comment"),
            "{error}"
        );
        assert!(error.to_string().contains("404"), "{error}");
    }

    #[tokio::test]
    async fn a_base_url_with_or_without_a_trailing_slash_reaches_the_same_paths() {
        let server = MockServer::start().await;
        login_request()
            .respond_with(logged_in(TOKEN))
            .expect(2)
            .mount(&server)
            .await;
        ticket_request(TOKEN)
            .respond_with(created("MAK-2026-0065"))
            .expect(2)
            .mount(&server)
            .await;

        for base in [
            format!("{}/api", server.uri()),
            format!("{}/api/", server.uri()),
        ] {
            client_with(UgridplanConfig::new(base, USER, PASSWORD))
                .create_ticket(&no_power_ticket())
                .await
                .unwrap();
        }
    }

    #[test]
    fn a_base_url_that_is_not_plain_http_or_lacks_credentials_is_refused_at_start_up() {
        let refused = |base: &str, user: &str, password: &str| {
            UgridplanClient::new(UgridplanConfig::new(base, user, password))
                .expect_err("the configuration is invalid")
                .to_string()
        };

        assert!(refused("dev.ugp.1pwrafrica.com/api", USER, PASSWORD).contains("base URL"));
        assert!(refused("ftp://host/api", USER, PASSWORD).contains("scheme"));
        assert!(refused("https://u:p@host/api", USER, PASSWORD).contains("credentials"));
        assert_eq!(
            refused("https://host/api", " ", PASSWORD),
            "the uGridPlan user is empty"
        );
        assert_eq!(
            refused("https://host/api", USER, ""),
            "the uGridPlan password is empty"
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let config = UgridplanConfig::new("https://host/api", USER, PASSWORD);
        let client = client_with(config.clone());

        for debug in [format!("{config:?}"), format!("{client:?}")] {
            assert!(!debug.contains(PASSWORD), "{debug}");
            assert!(debug.contains(USER), "{debug}");
        }
        assert!(format!("{config:?}").contains("<redacted>"));
    }

    #[test]
    fn a_long_message_without_a_summary_is_cut_to_500_characters_on_a_char_boundary() {
        // Three bytes each in UTF-8, so a byte-based cut would split one.
        let text = "Motlakase ⚡ o felile, ".repeat(40);
        assert!(text.chars().count() > MAX_DESCRIPTION_CHARS);

        let ticket = NewTicket::from_triage(
            None,
            Category::NoPower,
            Priority::P1,
            "   ",
            &text,
            unidentified(),
            None,
        );

        assert_eq!(
            ticket.fault_description.chars().count(),
            MAX_DESCRIPTION_CHARS
        );
        assert!(text.starts_with(&ticket.fault_description));
        assert!(ticket.fault_description.len() > MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn a_text_of_exactly_500_characters_is_kept_whole() {
        let text = "é".repeat(MAX_DESCRIPTION_CHARS);

        let ticket = NewTicket::from_triage(
            None,
            Category::Billing,
            Priority::P3,
            "",
            &text,
            unidentified(),
            None,
        );

        assert_eq!(ticket.fault_description, text);
    }

    #[test]
    fn the_summary_is_preferred_to_the_customer_s_text() {
        let ticket = NewTicket::from_triage(
            Some("MAK"),
            Category::Vegetation,
            Priority::P3,
            " A tree touches the line. ",
            "sefate se ama terata",
            unidentified(),
            None,
        );

        assert_eq!(ticket.fault_description, "A tree touches the line.");
        assert_eq!(ticket.equipment_category, "civil");
        assert_eq!(ticket.ticket_type, "corrective");
        assert_eq!(ticket.priority, Priority::P3);
    }

    #[test]
    fn an_unknown_or_missing_site_is_filed_under_lsb_and_a_known_one_is_sent_upper_case() {
        let site = |site: Option<&str>| {
            NewTicket::from_triage(
                site,
                Category::NoPower,
                Priority::P1,
                "x",
                "",
                unidentified(),
                None,
            )
            .site_id
        };

        assert_eq!(site(None), "LSB");
        assert_eq!(site(Some("")), "LSB");
        assert_eq!(site(Some("UNKNOWN")), "LSB");
        assert_eq!(site(Some("unknown")), "LSB");
        assert_eq!(site(Some(" mak ")), "MAK");
        assert_eq!(site(Some("TOS")), "TOS");
    }

    #[test]
    fn reported_by_names_a_known_customer_or_the_whatsapp_profile_and_phone() {
        let customer = Reporter::Customer {
            first_name: " Palesa ",
            last_name: "Mokoena",
        };
        let no_profile_name = Reporter::Unidentified {
            profile_name: "",
            phone: "26658001122",
        };

        assert_eq!(customer.reported_by(), "Palesa Mokoena (WhatsApp)");
        assert_eq!(
            unidentified().reported_by(),
            "WhatsApp: Thabo (26658001122)"
        );
        assert_eq!(no_profile_name.reported_by(), "WhatsApp: 26658001122");
    }

    #[test]
    fn a_blank_customer_id_is_no_customer_id() {
        let ticket = NewTicket::from_triage(
            None,
            Category::NoPower,
            Priority::P1,
            "x",
            "",
            unidentified(),
            Some("  "),
        );

        assert_eq!(ticket.customer_id, None);
        let body = serde_json::to_value(&ticket).unwrap();
        assert!(body.get("customer_id").is_none(), "{body}");
    }

    #[test]
    fn the_follow_up_comment_of_a_sender_without_a_name_names_the_phone_once() {
        let comment = FollowUpComment::new(" ", "26658001122", "Hello");

        assert_eq!(comment.user, "WhatsApp:26658001122");
        assert_eq!(comment.text, "WhatsApp follow-up from 26658001122:\nHello");
    }

    #[test]
    fn only_the_access_token_cookie_is_the_session_and_an_emptied_one_is_none() {
        assert_eq!(
            session_cookie_value("access_token=abc.def; Path=/; HttpOnly"),
            Some("abc.def")
        );
        assert_eq!(
            session_cookie_value("access_token=\"q\"; Path=/"),
            Some("q")
        );
        assert_eq!(session_cookie_value("refresh_token=abc; Path=/"), None);
        assert_eq!(session_cookie_value("access_token=; Max-Age=0"), None);
    }
}
