//! The WhatsApp Business Cloud API at the wire: the webhook's signature check and verify
//! handshake, the delivery payload and its flattening into inbound messages and status updates,
//! and the bodies the bridge posts to the messages endpoint.
//!
//! Everything here is pure; the HTTP layer hands in raw bytes and headers and sends what comes
//! out. A webhook POST is handled in this order:
//!
//! 1. refuse a body longer than [`MAX_BODY_BYTES`] before reading all of it;
//! 2. [`verify_signature`] over the raw bytes, exactly as received;
//! 3. [`parse_delivery`] (a signed body that is not a delivery is answered 400), and
//!    [`inbound_items`] for the message ids that recognise a redelivery;
//! 4. keep the raw body with those ids (the durable inbox) and answer 200.
//!
//! The wire types mirror Meta's JSON, ignore whatever Meta adds, make every field optional and
//! stop at this module: the rest of the bridge sees [`InboundItem`]s.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying `sha256=<hex>`, the HMAC-SHA256 of the raw body keyed with the app secret.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The largest webhook body the bridge accepts. The HTTP layer enforces it (413) before buffering
/// the body; [`parse_delivery`] checks it again. Meta's deliveries are a few kilobytes, and a
/// batch of many messages stays well under this.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Graph error code for a free-form message sent outside the 24-hour customer-service window
/// ("Re-engagement message"): only a template can reach the customer now.
pub const RE_ENGAGEMENT_ERROR: i64 = 131047;

/// Graph error codes worth retrying later with the same body. Meta's error-code reference, as
/// mirrored by vendor docs (reference-systems.md B.1 names only 131047), lists these as rate
/// limits or temporary service faults; every other code needs a different request, so the list
/// is deliberately short.
const RETRYABLE_ERRORS: &[i64] = &[
    1,      // API Unknown: possibly a server error.
    2,      // API Service: downtime or overload.
    4,      // Too many API calls for the app.
    80007,  // Rate limit of the WhatsApp Business Account.
    130429, // Cloud API throughput reached.
    131000, // Something went wrong.
    131016, // Service unavailable.
    131056, // Too many messages to the same customer in a short time.
    133004, // Server temporarily unavailable.
];

const WHATSAPP_OBJECT: &str = "whatsapp_business_account";
const MESSAGES_FIELD: &str = "messages";

/// Why a webhook POST is not from Meta. Answer 401 with no detail, except [`NoSecret`], a
/// configuration fault to log and answer 500.
///
/// [`NoSecret`]: SignatureError::NoSecret
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// An empty key would let anyone sign, so nothing is accepted under it.
    #[error("no app secret is configured, so no webhook can be authenticated")]
    NoSecret,
    #[error("the {SIGNATURE_HEADER} header is missing")]
    Missing,
    #[error("the {SIGNATURE_HEADER} header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the {SIGNATURE_HEADER} signature does not match the body")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against the HMAC-SHA256 of `raw_body` keyed with
/// `app_secret`, in constant time.
///
/// It must see the bytes as received: JSON parsed and serialised again differs (escaped
/// `\u` sequences, key order, spacing) and never matches. The hex digits may be upper or lower
/// case, since both spell the same 32 bytes and only the bytes are compared; the `sha256=`
/// prefix must be lower case, as Meta sends it.
pub fn verify_signature(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    if app_secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?;
    let digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed("it does not start with sha256="))?;
    if digest.len() != 64 {
        return Err(SignatureError::Malformed("the digest is not 64 hex digits"));
    }
    let expected =
        hex::decode(digest).map_err(|_| SignatureError::Malformed("the digest is not hex"))?;
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes a key of any length");
    mac.update(raw_body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` value Meta sends with `raw_body` (`sha256=<hex>`): for the local
/// simulator (`ccare bridge simulate`) and tests, which deliver as Meta does.
pub fn signature_header(app_secret: &[u8], raw_body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes a key of any length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery of one text message from `wa_id` (digits, no `+`), shaped as Meta sends it: what
/// the local simulator posts to the webhook.
pub fn text_delivery(
    wa_id: &str,
    profile_name: &str,
    message_id: &str,
    text: &str,
    sent_at: DateTime<Utc>,
) -> Value {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "0",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "0", "phone_number_id": "0" },
                    "contacts": [{ "profile": { "name": profile_name }, "wa_id": wa_id }],
                    "messages": [{
                        "from": wa_id,
                        "id": message_id,
                        "timestamp": sent_at.timestamp().to_string(),
                        "type": "text",
                        "text": { "body": text }
                    }]
                }
            }]
        }]
    })
}

/// Why a verify handshake (GET with `hub.mode`, `hub.verify_token`, `hub.challenge`) is refused.
/// Every variant answers 403, as Meta expects; [`NotConfigured`] is also worth logging.
///
/// [`NotConfigured`]: HandshakeError::NotConfigured
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// An empty expected token would match an empty or absent one.
    #[error("no webhook verify token is configured")]
    NotConfigured,
    #[error("hub.mode is {0:?}, not \"subscribe\"")]
    WrongMode(Option<String>),
    #[error("hub.verify_token is missing")]
    MissingToken,
    #[error("hub.verify_token does not match")]
    TokenMismatch,
    #[error("hub.challenge is missing")]
    MissingChallenge,
}

/// Answers Meta's verify handshake: the challenge, to echo with 200 as `text/plain` (never as
/// HTML, since it is caller-supplied text), when the mode is `subscribe` and the token matches.
pub fn verify_handshake(
    expected_token: &str,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> Result<String, HandshakeError> {
    if expected_token.is_empty() {
        return Err(HandshakeError::NotConfigured);
    }
    if mode != Some("subscribe") {
        return Err(HandshakeError::WrongMode(mode.map(str::to_owned)));
    }
    let token = token.ok_or(HandshakeError::MissingToken)?;
    if !secrets_equal(expected_token.as_bytes(), token.as_bytes()) {
        return Err(HandshakeError::TokenMismatch);
    }
    match challenge {
        Some(challenge) if !challenge.is_empty() => Ok(challenge.to_owned()),
        _ => Err(HandshakeError::MissingChallenge),
    }
}

/// Compares two secrets without revealing through timing where they first differ or how long
/// the expected one is: both are reduced to HMAC tags under a fixed key, and the tags are compared
/// by `verify_slice`, which is constant-time.
fn secrets_equal(expected: &[u8], given: &[u8]) -> bool {
    let tag = |bytes: &[u8]| {
        let mut mac = HmacSha256::new_from_slice(b"ccare verify token")
            .expect("HMAC takes a key of any length");
        mac.update(bytes);
        mac
    };
    let expected_tag = tag(expected).finalize().into_bytes();
    tag(given).verify_slice(&expected_tag).is_ok()
}

/// Why a signed body is not a delivery this module can read. The webhook answers 400 without
/// storing it, and Meta retries it. The wire types are lenient (every field optional, unknown
/// ones ignored), so it takes a body that is not JSON or has a field of the wrong type.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(
        "the webhook body is {len} bytes, over the limit of {} bytes",
        MAX_BODY_BYTES
    )]
    TooLarge { len: usize },
    #[error("the webhook body is not a WhatsApp delivery: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads a webhook body, after [`verify_signature`] has accepted it.
pub fn parse_delivery(raw_body: &[u8]) -> Result<Delivery, ParseError> {
    if raw_body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge {
            len: raw_body.len(),
        });
    }
    Ok(serde_json::from_slice(raw_body)?)
}

/// One webhook POST: `object` is `whatsapp_business_account`, and Meta may batch several entries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Delivery {
    pub object: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub entry: Vec<Entry>,
}

/// One WhatsApp Business Account's changes; `id` is the account id.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub id: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub changes: Vec<Change>,
}

/// One change of a subscribed field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "RawChange")]
pub struct Change {
    pub field: Option<String>,
    /// Decoded for field `messages` only, and `None` for every other field: their values have
    /// other shapes, and one of them must not fail a batch that also carries messages.
    pub value: Option<ChangeValue>,
}

#[derive(Deserialize)]
struct RawChange {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Value,
}

impl TryFrom<RawChange> for Change {
    type Error = serde_json::Error;

    fn try_from(raw: RawChange) -> Result<Self, Self::Error> {
        let value = match raw.field.as_deref() {
            Some(MESSAGES_FIELD) if !raw.value.is_null() => {
                Some(serde_json::from_value(raw.value)?)
            }
            _ => None,
        };
        Ok(Change {
            field: raw.field,
            value,
        })
    }
}

/// The value of a `messages` change: inbound messages, or status updates of ours, for one of
/// the business's phone numbers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChangeValue {
    pub messaging_product: Option<String>,
    pub metadata: Option<Metadata>,
    #[serde(deserialize_with = "null_as_default")]
    pub contacts: Vec<Contact>,
    #[serde(deserialize_with = "null_as_default")]
    pub messages: Vec<Message>,
    #[serde(deserialize_with = "null_as_default")]
    pub statuses: Vec<Status>,
    /// Out-of-band errors Meta reports without a message or status to attach them to.
    #[serde(deserialize_with = "null_as_default")]
    pub errors: Vec<WebhookError>,
}

/// The business phone number the change is about.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub display_phone_number: Option<String>,
    pub phone_number_id: Option<String>,
}

/// A customer who sent one of the change's messages.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub profile: Option<Profile>,
    pub wa_id: Option<String>,
}

/// The customer's WhatsApp profile, as they set it: not an identity.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub name: Option<String>,
}

/// An inbound message. `kind` is Meta's `type`; only the object named by it is expected.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Message {
    pub from: Option<String>,
    /// The wamid, unique per message: the key for deduplicating Meta's redeliveries.
    pub id: Option<String>,
    /// Unix seconds, sent as a string.
    #[serde(deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<Text>,
    pub interactive: Option<Interactive>,
    /// A quick-reply button of a template message.
    pub button: Option<Button>,
    pub image: Option<Media>,
    pub video: Option<Media>,
    pub audio: Option<Media>,
    pub document: Option<Media>,
    pub sticker: Option<Media>,
    pub location: Option<Location>,
    /// Set when the customer replied to (quoted) an earlier message.
    pub context: Option<Context>,
    #[serde(deserialize_with = "null_as_default")]
    pub errors: Vec<WebhookError>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Text {
    pub body: Option<String>,
}

/// A reply to one of our interactive messages: `kind` is `button_reply` or `list_reply`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub button_reply: Option<Reply>,
    pub list_reply: Option<Reply>,
}

/// The chosen button or list row: `id` is ours, `title` is what the customer saw.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Reply {
    pub id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Button {
    pub payload: Option<String>,
    pub text: Option<String>,
}

/// An image, video, audio, document or sticker. The `id` expires after 7 days and its download
/// URL within minutes, so the bridge fetches the media at once.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Media {
    pub id: Option<String>,
    pub mime_type: Option<String>,
    /// Hash of the file, to check the download against.
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Location {
    #[serde(deserialize_with = "lenient_f64")]
    pub latitude: Option<f64>,
    #[serde(deserialize_with = "lenient_f64")]
    pub longitude: Option<f64>,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Context {
    pub from: Option<String>,
    pub id: Option<String>,
}

/// A status update of a message we sent. Meta does not order these: `delivered` may arrive after
/// `read` or `failed`, and is skipped when delivery and reading coincide.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The wamid of our message.
    pub id: Option<String>,
    pub status: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    pub recipient_id: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub errors: Vec<WebhookError>,
}

/// An error inside a webhook. Meta advises acting on `code`, not on the title.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WebhookError {
    #[serde(deserialize_with = "lenient_i64")]
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    /// Usually `{"details": "…"}`; kept loose, since some errors send a bare string.
    pub error_data: Option<Value>,
}

impl WebhookError {
    pub fn details(&self) -> Option<&str> {
        details(self.error_data.as_ref())
    }
}

/// What the bridge acts on, one per inbound message or status update, in the order Meta listed
/// them (within one change, messages before statuses; Meta sends one or the other).
#[derive(Debug, Clone, PartialEq)]
pub enum InboundItem {
    Message(InboundMessage),
    Status(StatusUpdate),
}

/// An inbound customer message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The wamid, for deduplication.
    pub message_id: String,
    /// The sender's wa_id as Meta sent it: country code and number, digits only, no `+`.
    pub from: String,
    /// The profile name of the contact whose wa_id equals `from`.
    pub profile_name: Option<String>,
    /// Which of the business's numbers received it.
    pub phone_number_id: Option<String>,
    /// `None` when the timestamp is absent or not unix seconds: the message still counts, and
    /// the caller stamps it with the time it was received instead.
    pub sent_at: Option<DateTime<Utc>>,
    /// The wamid of the message the customer quoted, if any.
    pub reply_to: Option<String>,
    pub content: Content,
}

/// What an inbound message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    /// A button or list reply to an interactive message, or a template's quick-reply button:
    /// `reply_id` is the id or payload we set, `title` the text the customer tapped.
    Interactive {
        reply_id: String,
        title: String,
    },
    Media {
        kind: MediaKind,
        media_id: String,
        caption: Option<String>,
        mime_type: Option<String>,
        sha256: Option<String>,
        filename: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// A type the bridge does not read (reaction, contacts, order, Meta's own `unsupported`…) or
    /// a message missing the object its type names. `kind` is Meta's type, or `unknown`.
    Unsupported {
        kind: String,
    },
}

impl Content {
    /// The words a triage can read: a text body, the title of a tapped reply or a media
    /// caption. `None` for media without a caption (the legacy bot asked those customers to
    /// describe the problem in text), locations and unsupported types, and for blank text.
    pub fn words(&self) -> Option<&str> {
        let words = match self {
            Content::Text(body) => Some(body.as_str()),
            Content::Interactive { title, .. } => Some(title.as_str()),
            Content::Media { caption, .. } => caption.as_deref(),
            Content::Location { .. } | Content::Unsupported { .. } => None,
        };
        words.filter(|words| !words.trim().is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// Meta's name for it, as in the message `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// A status update for a message the bridge sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The wamid of our message.
    pub message_id: String,
    pub status: DeliveryStatus,
    pub recipient: Option<String>,
    pub phone_number_id: Option<String>,
    /// `None` when the timestamp is absent or not unix seconds.
    pub at: Option<DateTime<Utc>>,
    pub errors: Vec<StatusError>,
}

/// Where our message got to. Updates arrive in any order, so a reader keeps the furthest state
/// rather than the latest to arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Any other value Meta sends, as sent (empty when there was none).
    Other(String),
}

impl DeliveryStatus {
    fn from_wire(status: Option<&str>) -> Self {
        match status {
            Some("sent") => DeliveryStatus::Sent,
            Some("delivered") => DeliveryStatus::Delivered,
            Some("read") => DeliveryStatus::Read,
            Some("failed") => DeliveryStatus::Failed,
            other => DeliveryStatus::Other(other.unwrap_or_default().to_owned()),
        }
    }
}

/// Why a message of ours failed, as a status update reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub code: Option<i64>,
    /// Meta's title, or its message when there is no title.
    pub title: String,
    pub details: Option<String>,
}

impl StatusError {
    /// Whether the message was free-form and the customer-service window had closed, so a
    /// template must be sent instead.
    pub fn is_outside_service_window(&self) -> bool {
        self.code == Some(RE_ENGAGEMENT_ERROR)
    }
}

/// Flattens a delivery into what the bridge acts on: every message and status of every
/// `messages` change of every entry. Other fields, and deliveries whose `object` is not a
/// WhatsApp Business Account, yield nothing. A message or status without an id is dropped, since
/// it can be neither deduplicated nor matched; so is a message without a sender to answer.
pub fn inbound_items(delivery: &Delivery) -> Vec<InboundItem> {
    if delivery
        .object
        .as_deref()
        .is_some_and(|object| object != WHATSAPP_OBJECT)
    {
        return Vec::new();
    }
    let mut items = Vec::new();
    let changes = delivery.entry.iter().flat_map(|entry| &entry.changes);
    for change in changes.filter(|change| change.field.as_deref() == Some(MESSAGES_FIELD)) {
        let Some(value) = &change.value else {
            continue;
        };
        let phone_number_id = value
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.phone_number_id.clone());
        for message in &value.messages {
            if let Some(message) = inbound_message(message, value, &phone_number_id) {
                items.push(InboundItem::Message(message));
            }
        }
        for status in &value.statuses {
            if let Some(status) = status_update(status, &phone_number_id) {
                items.push(InboundItem::Status(status));
            }
        }
    }
    items
}

fn inbound_message(
    message: &Message,
    value: &ChangeValue,
    phone_number_id: &Option<String>,
) -> Option<InboundMessage> {
    let message_id = non_empty(message.id.as_deref())?;
    let from = non_empty(message.from.as_deref())?;
    let profile_name = value
        .contacts
        .iter()
        .find(|contact| contact.wa_id.as_deref() == Some(from))
        .and_then(|contact| contact.profile.as_ref()?.name.clone());
    Some(InboundMessage {
        message_id: message_id.to_owned(),
        from: from.to_owned(),
        profile_name,
        phone_number_id: phone_number_id.clone(),
        sent_at: unix_seconds(message.timestamp.as_deref()),
        reply_to: message
            .context
            .as_ref()
            .and_then(|context| context.id.clone()),
        content: content(message),
    })
}

fn content(message: &Message) -> Content {
    let kind = message.kind.as_deref().unwrap_or_default();
    let media = |kind, media: &Option<Media>| {
        let media = media.as_ref()?;
        Some(Content::Media {
            kind,
            media_id: non_empty(media.id.as_deref())?.to_owned(),
            caption: media.caption.clone(),
            mime_type: media.mime_type.clone(),
            sha256: media.sha256.clone(),
            filename: media.filename.clone(),
        })
    };
    let content = match kind {
        "text" => message
            .text
            .as_ref()
            .and_then(|text| text.body.clone())
            .map(Content::Text),
        "interactive" => message.interactive.as_ref().and_then(|interactive| {
            let reply = interactive
                .button_reply
                .as_ref()
                .or(interactive.list_reply.as_ref());
            match reply {
                Some(reply) => tapped(reply.id.as_ref(), reply.title.as_ref()),
                // A flow response (`nfm_reply`) or a reply type newer than this module.
                None => Some(Content::Unsupported {
                    kind: format!(
                        "interactive.{}",
                        interactive.kind.as_deref().unwrap_or("unknown")
                    ),
                }),
            }
        }),
        "button" => message
            .button
            .as_ref()
            .and_then(|button| tapped(button.payload.as_ref(), button.text.as_ref())),
        "image" => media(MediaKind::Image, &message.image),
        "video" => media(MediaKind::Video, &message.video),
        "audio" => media(MediaKind::Audio, &message.audio),
        "document" => media(MediaKind::Document, &message.document),
        "sticker" => media(MediaKind::Sticker, &message.sticker),
        "location" => message.location.as_ref().and_then(|location| {
            Some(Content::Location {
                latitude: location.latitude?,
                longitude: location.longitude?,
                name: location.name.clone(),
                address: location.address.clone(),
            })
        }),
        _ => None,
    };
    content.unwrap_or_else(|| Content::Unsupported {
        kind: if kind.is_empty() { "unknown" } else { kind }.to_owned(),
    })
}

/// A tapped reply; a missing half is left empty rather than losing the other.
fn tapped(id: Option<&String>, title: Option<&String>) -> Option<Content> {
    if id.is_none() && title.is_none() {
        return None;
    }
    Some(Content::Interactive {
        reply_id: id.cloned().unwrap_or_default(),
        title: title.cloned().unwrap_or_default(),
    })
}

fn status_update(status: &Status, phone_number_id: &Option<String>) -> Option<StatusUpdate> {
    Some(StatusUpdate {
        message_id: non_empty(status.id.as_deref())?.to_owned(),
        status: DeliveryStatus::from_wire(status.status.as_deref()),
        recipient: status.recipient_id.clone(),
        phone_number_id: phone_number_id.clone(),
        at: unix_seconds(status.timestamp.as_deref()),
        errors: status
            .errors
            .iter()
            .map(|error| StatusError {
                code: error.code,
                title: error
                    .title
                    .clone()
                    .or_else(|| error.message.clone())
                    .unwrap_or_default(),
                details: error.details().map(str::to_owned),
            })
            .collect(),
    })
}

fn unix_seconds(timestamp: Option<&str>) -> Option<DateTime<Utc>> {
    let seconds = timestamp?.trim().parse::<i64>().ok()?;
    DateTime::from_timestamp(seconds, 0)
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

fn details(error_data: Option<&Value>) -> Option<&str> {
    match error_data? {
        Value::String(details) => Some(details),
        data => data.get("details")?.as_str(),
    }
}

/// The messages endpoint, `POST {api_base}/{phone_number_id}/messages`, where `api_base` is
/// e.g. `https://graph.facebook.com/v23.0`. The request carries `Authorization: Bearer` with a
/// system-user token.
pub fn messages_url(api_base: &str, phone_number_id: &str) -> String {
    format!(
        "{}/{phone_number_id}/messages",
        api_base.trim_end_matches('/')
    )
}

/// A free-form text message, which Meta accepts only within 24 hours of the customer's last
/// message. `to` is the wa_id as the webhook gave it. Link previews stay off: a reply quoting a
/// URL should not fetch it on the customer's data bundle.
pub fn text_message(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": { "body": body, "preview_url": false },
    })
}

/// A pre-approved template, the only message Meta accepts outside the 24-hour window. The
/// parameters fill the body's `{{1}}`, `{{2}}`… in order; with none, no components are sent, as
/// Meta rejects an empty parameter list.
pub fn template_message(
    to: &str,
    name: &str,
    language_code: &str,
    body_parameters: &[String],
) -> Value {
    let mut template = json!({
        "name": name,
        "language": { "code": language_code },
    });
    if !body_parameters.is_empty() {
        let parameters: Vec<Value> = body_parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        template["components"] = json!([{ "type": "body", "parameters": parameters }]);
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    })
}

/// The messages endpoint's answer on success. Acceptance is not delivery: that comes later as
/// status updates for `messages[0].id`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SendResponse {
    pub messaging_product: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub contacts: Vec<SentContact>,
    #[serde(deserialize_with = "null_as_default")]
    pub messages: Vec<SentMessage>,
}

impl SendResponse {
    /// The wamid of the sent message, to match its status updates against.
    pub fn message_id(&self) -> Option<&str> {
        self.messages
            .iter()
            .find_map(|message| non_empty(message.id.as_deref()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SentContact {
    pub input: Option<String>,
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SentMessage {
    pub id: Option<String>,
    pub message_status: Option<String>,
}

/// The Graph API's error answer, `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiErrorBody {
    pub error: GraphError,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GraphError {
    #[serde(deserialize_with = "lenient_i64")]
    pub code: Option<i64>,
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Deprecated by Meta and absent since v16.0; kept for older API versions.
    #[serde(deserialize_with = "lenient_i64")]
    pub error_subcode: Option<i64>,
    pub error_data: Option<Value>,
    /// Meta support's key to the failed request: worth logging.
    pub fbtrace_id: Option<String>,
}

impl ApiErrorBody {
    /// Whether the send failed because the 24-hour window is closed (131047): send a template.
    pub fn is_outside_service_window(&self) -> bool {
        self.error.code == Some(RE_ENGAGEMENT_ERROR)
    }

    /// Whether the same request may succeed later (a rate limit or a temporary fault). The
    /// caller also retries an HTTP 5xx with no readable body; anything else needs a different
    /// request and is not retried.
    pub fn is_retryable(&self) -> bool {
        self.error
            .code
            .is_some_and(|code| RETRYABLE_ERRORS.contains(&code))
    }

    pub fn details(&self) -> Option<&str> {
        details(self.error.error_data.as_ref())
    }
}

/// Reads `null` as the default, so `"messages": null` is no messages rather than a failed batch.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Meta sends unix seconds as a string; a number is read as well, and any other shape as absent,
/// since one odd timestamp must not fail a whole batch.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

/// An integer, or an integer written as a string; anything else reads as absent.
fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
}

/// A number, or a number written as a string; anything else reads as absent.
fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &[u8] = b"ccare-test-app-secret";

    fn delivery(json: &str) -> Delivery {
        parse_delivery(json.as_bytes()).expect("the fixture is a valid delivery")
    }

    fn messages(items: &[InboundItem]) -> Vec<&InboundMessage> {
        items
            .iter()
            .filter_map(|item| match item {
                InboundItem::Message(message) => Some(message),
                InboundItem::Status(_) => None,
            })
            .collect()
    }

    fn statuses(items: &[InboundItem]) -> Vec<&StatusUpdate> {
        items
            .iter()
            .filter_map(|item| match item {
                InboundItem::Status(status) => Some(status),
                InboundItem::Message(_) => None,
            })
            .collect()
    }

    fn only_message(json: &str) -> InboundMessage {
        let items = inbound_items(&delivery(json));
        assert_eq!(items.len(), 1, "{items:?}");
        match items.into_iter().next() {
            Some(InboundItem::Message(message)) => message,
            other => panic!("expected one message, got {other:?}"),
        }
    }

    /// A `messages` change holding one message object, as Meta frames it.
    fn one_message_delivery(message: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{
                "messaging_product":"whatsapp",
                "metadata":{{"display_phone_number":"26622000000","phone_number_id":"106540352242922"}},
                "contacts":[{{"profile":{{"name":"Mpho"}},"wa_id":"26658123456"}}],
                "messages":[{message}]}}}}]}}]}}"#
        )
    }

    // Signature. The expected digests were computed once outside Rust with
    //   printf '%s' 'BODY' | openssl dgst -sha256 -hmac 'ccare-test-app-secret'
    // and cross-checked with Python's hmac.new(secret, body, hashlib.sha256).hexdigest().

    const PLAIN_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    const PLAIN_SIGNATURE: &str =
        "sha256=5bbc2ad696e022098f0b4d01132634ed7e6fbec0ea88c81e085c66fb67126466";

    /// Raw UTF-8: a Sesotho sentence with an emoji and an em dash.
    const UTF8_BODY: &str = r#"{"text":{"body":"Ha ke na motlakase ⚡😞 — Ha Makebe"}}"#;
    const UTF8_SIGNATURE: &str =
        "sha256=34d9b3f7a9b11c73b64765f09b3d3129a3dc49a340e50f3745ea1f7694e947fd";

    /// The same kind of text with the emoji escaped as `\u` sequences, as JSON may carry it.
    const ESCAPED_BODY: &str = r#"{"text":{"body":"Ha ke na motlakase \u26a1\ud83d\ude1e"}}"#;
    const ESCAPED_SIGNATURE: &str =
        "sha256=1f61b8ceb4662f8501f0b1f68dca4f52812197d83f75ffcbc662f11bbfb5fa1b";

    #[test]
    fn a_simulated_delivery_carries_a_signature_the_webhook_accepts_and_reads_as_one_message() {
        let body = serde_json::to_vec(&text_delivery(
            "26658123456",
            "Mpho",
            "wamid.sim.1",
            "Ha ke na motlakase",
            Utc::now(),
        ))
        .unwrap();
        let header = signature_header(b"app-secret", &body);
        assert_eq!(
            verify_signature(b"app-secret", &body, Some(&header)),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"other", &body, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        let items = inbound_items(&parse_delivery(&body).unwrap());
        let [InboundItem::Message(message)] = &items[..] else {
            panic!("{items:?}")
        };
        assert_eq!(message.content.words(), Some("Ha ke na motlakase"));
        assert_eq!(message.profile_name.as_deref(), Some("Mpho"));
    }

    #[test]
    fn a_signature_computed_independently_over_the_raw_body_is_accepted() {
        assert_eq!(
            verify_signature(SECRET, PLAIN_BODY.as_bytes(), Some(PLAIN_SIGNATURE)),
            Ok(())
        );
    }

    #[test]
    fn a_body_with_emoji_and_non_ascii_text_is_checked_on_its_bytes() {
        assert_eq!(
            verify_signature(SECRET, UTF8_BODY.as_bytes(), Some(UTF8_SIGNATURE)),
            Ok(())
        );
        assert_eq!(
            verify_signature(SECRET, ESCAPED_BODY.as_bytes(), Some(ESCAPED_SIGNATURE)),
            Ok(())
        );
    }

    #[test]
    fn a_body_parsed_and_serialised_again_no_longer_matches_its_signature() {
        let reserialised =
            serde_json::to_vec(&serde_json::from_str::<Value>(ESCAPED_BODY).unwrap()).unwrap();
        assert_ne!(reserialised, ESCAPED_BODY.as_bytes());
        assert_eq!(
            verify_signature(SECRET, &reserialised, Some(ESCAPED_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_body_is_a_mismatch() {
        let tampered = PLAIN_BODY.replace("[]", "[{}]");
        assert_eq!(
            verify_signature(SECRET, tampered.as_bytes(), Some(PLAIN_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        let one_byte_more = format!("{PLAIN_BODY}\n");
        assert_eq!(
            verify_signature(SECRET, one_byte_more.as_bytes(), Some(PLAIN_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_made_with_another_secret_is_a_mismatch() {
        assert_eq!(
            verify_signature(
                b"ccare-test-app-secreT",
                PLAIN_BODY.as_bytes(),
                Some(PLAIN_SIGNATURE)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn upper_case_hex_digits_are_accepted_but_not_an_upper_case_prefix() {
        let upper = format!(
            "sha256={}",
            PLAIN_SIGNATURE["sha256=".len()..].to_uppercase()
        );
        assert_eq!(
            verify_signature(SECRET, PLAIN_BODY.as_bytes(), Some(&upper)),
            Ok(())
        );
        let upper_prefix = PLAIN_SIGNATURE.replace("sha256=", "SHA256=");
        assert!(matches!(
            verify_signature(SECRET, PLAIN_BODY.as_bytes(), Some(&upper_prefix)),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn whitespace_around_the_header_value_is_tolerated() {
        let padded = format!("  {PLAIN_SIGNATURE}\t");
        assert_eq!(
            verify_signature(SECRET, PLAIN_BODY.as_bytes(), Some(&padded)),
            Ok(())
        );
    }

    #[test]
    fn a_missing_header_is_refused_as_missing() {
        assert_eq!(
            verify_signature(SECRET, PLAIN_BODY.as_bytes(), None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_malformed_header_is_refused_as_malformed() {
        let digest = &PLAIN_SIGNATURE["sha256=".len()..];
        let malformed = [
            String::new(),
            digest.to_owned(),
            format!("sha1={digest}"),
            format!("sha256={}", &digest[..62]),
            format!("sha256={digest}00"),
            format!("sha256={}zz", &digest[..62]),
            "sha256=".to_owned(),
        ];
        for header in malformed {
            assert!(
                matches!(
                    verify_signature(SECRET, PLAIN_BODY.as_bytes(), Some(&header)),
                    Err(SignatureError::Malformed(_))
                ),
                "{header:?} should be malformed"
            );
        }
    }

    #[test]
    fn an_empty_app_secret_accepts_nothing() {
        // HMAC-SHA256 of PLAIN_BODY under the empty key, from `openssl dgst -sha256 -hmac ''`:
        // a correct signature for that key must still be refused.
        let empty_key_signature =
            "sha256=704eb71c28bbe7c091ca5b8f9446c2bceec023435f33ff17e7fb9634d46333bc";
        assert_eq!(
            verify_signature(b"", PLAIN_BODY.as_bytes(), Some(empty_key_signature)),
            Err(SignatureError::NoSecret)
        );
    }

    // Verify handshake.

    #[test]
    fn the_handshake_echoes_the_challenge_when_mode_and_token_match() {
        assert_eq!(
            verify_handshake(
                "s3cret-token",
                Some("subscribe"),
                Some("s3cret-token"),
                Some("1158201444")
            ),
            Ok("1158201444".to_owned())
        );
    }

    #[test]
    fn the_handshake_refuses_another_mode_or_none() {
        assert_eq!(
            verify_handshake("t", Some("unsubscribe"), Some("t"), Some("1")),
            Err(HandshakeError::WrongMode(Some("unsubscribe".to_owned())))
        );
        assert_eq!(
            verify_handshake("t", None, Some("t"), Some("1")),
            Err(HandshakeError::WrongMode(None))
        );
    }

    #[test]
    fn the_handshake_refuses_a_wrong_or_missing_token() {
        let handshake =
            |token| verify_handshake("s3cret-token", Some("subscribe"), token, Some("1"));
        assert_eq!(handshake(None), Err(HandshakeError::MissingToken));
        for wrong in ["", "s3cret-toke", "s3cret-token ", "S3CRET-TOKEN", "other"] {
            assert_eq!(
                handshake(Some(wrong)),
                Err(HandshakeError::TokenMismatch),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn the_handshake_needs_a_challenge_to_echo() {
        assert_eq!(
            verify_handshake("t", Some("subscribe"), Some("t"), None),
            Err(HandshakeError::MissingChallenge)
        );
        assert_eq!(
            verify_handshake("t", Some("subscribe"), Some("t"), Some("")),
            Err(HandshakeError::MissingChallenge)
        );
    }

    #[test]
    fn an_unconfigured_verify_token_matches_nothing_not_even_an_empty_one() {
        assert_eq!(
            verify_handshake("", Some("subscribe"), Some(""), Some("1")),
            Err(HandshakeError::NotConfigured)
        );
    }

    // Deliveries.

    #[test]
    fn a_single_text_message_becomes_one_inbound_message() {
        let message = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.HBgLMjY2NTgxMjM0NTYVAgASGBQzQTQxQzE3RkQ1QjJGMEMxMDlBRQA=",
                "timestamp":"1749416383","type":"text","text":{"body":"Ha ho motlakase Ha Makebe"}}"#,
        ));
        assert_eq!(
            message,
            InboundMessage {
                message_id: "wamid.HBgLMjY2NTgxMjM0NTYVAgASGBQzQTQxQzE3RkQ1QjJGMEMxMDlBRQA="
                    .to_owned(),
                from: "26658123456".to_owned(),
                profile_name: Some("Mpho".to_owned()),
                phone_number_id: Some("106540352242922".to_owned()),
                sent_at: Some(Utc.with_ymd_and_hms(2025, 6, 8, 20, 59, 43).unwrap()),
                reply_to: None,
                content: Content::Text("Ha ho motlakase Ha Makebe".to_owned()),
            }
        );
        assert_eq!(message.content.words(), Some("Ha ho motlakase Ha Makebe"));
    }

    #[test]
    fn every_entry_and_change_of_a_batched_delivery_is_flattened_in_order() {
        let batch = delivery(
            r#"{"object":"whatsapp_business_account","entry":[
              {"id":"WABA-1","changes":[
                {"field":"messages","value":{"messaging_product":"whatsapp",
                  "metadata":{"display_phone_number":"26622000001","phone_number_id":"PN-1"},
                  "contacts":[{"profile":{"name":"Mpho"},"wa_id":"26658000001"},
                              {"profile":{"name":"Lerato"},"wa_id":"26658000002"}],
                  "messages":[
                    {"from":"26658000001","id":"wamid.A1","timestamp":"1749416383","type":"text","text":{"body":"first"}},
                    {"from":"26658000002","id":"wamid.A2","timestamp":"1749416390","type":"text","text":{"body":"second"}}]}},
                {"field":"messages","value":{"messaging_product":"whatsapp",
                  "metadata":{"display_phone_number":"26622000001","phone_number_id":"PN-1"},
                  "statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":"1749416400","recipient_id":"26658000001"}]}}]},
              {"id":"WABA-2","changes":[
                {"field":"messages","value":{"messaging_product":"whatsapp",
                  "metadata":{"display_phone_number":"26622000002","phone_number_id":"PN-2"},
                  "statuses":[{"id":"wamid.OUT2","status":"read","timestamp":"1749416460","recipient_id":"26658000003"}]}},
                {"field":"messages","value":{"messaging_product":"whatsapp",
                  "metadata":{"display_phone_number":"26622000002","phone_number_id":"PN-2"},
                  "contacts":[{"profile":{"name":"Thabo"},"wa_id":"26658000003"}],
                  "messages":[{"from":"26658000003","id":"wamid.B1","timestamp":"1749416500","type":"text","text":{"body":"third"}}]}}]}
            ]}"#,
        );
        let items = inbound_items(&batch);
        let ids: Vec<&str> = items
            .iter()
            .map(|item| match item {
                InboundItem::Message(message) => message.message_id.as_str(),
                InboundItem::Status(status) => status.message_id.as_str(),
            })
            .collect();
        assert_eq!(
            ids,
            [
                "wamid.A1",
                "wamid.A2",
                "wamid.OUT1",
                "wamid.OUT2",
                "wamid.B1"
            ]
        );

        let messages = messages(&items);
        let senders: Vec<_> = messages
            .iter()
            .map(|m| {
                (
                    m.from.as_str(),
                    m.profile_name.as_deref(),
                    m.phone_number_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            senders,
            [
                ("26658000001", Some("Mpho"), Some("PN-1")),
                ("26658000002", Some("Lerato"), Some("PN-1")),
                ("26658000003", Some("Thabo"), Some("PN-2")),
            ]
        );
        let statuses = statuses(&items);
        assert_eq!(statuses[0].status, DeliveryStatus::Delivered);
        assert_eq!(statuses[0].phone_number_id.as_deref(), Some("PN-1"));
        assert_eq!(statuses[1].status, DeliveryStatus::Read);
        assert_eq!(statuses[1].recipient.as_deref(), Some("26658000003"));
        assert_eq!(statuses[1].phone_number_id.as_deref(), Some("PN-2"));
    }

    #[test]
    fn button_and_list_replies_and_template_quick_replies_are_interactive() {
        let button = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.BTN","timestamp":"1749416383","type":"interactive",
                "context":{"from":"26622000000","id":"wamid.OURS"},
                "interactive":{"type":"button_reply","button_reply":{"id":"confirm-outage","title":"E, ha ho motlakase"}}}"#,
        ));
        assert_eq!(
            button.content,
            Content::Interactive {
                reply_id: "confirm-outage".to_owned(),
                title: "E, ha ho motlakase".to_owned()
            }
        );
        assert_eq!(button.content.words(), Some("E, ha ho motlakase"));
        assert_eq!(button.reply_to.as_deref(), Some("wamid.OURS"));

        let list = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.LST","timestamp":"1749416383","type":"interactive",
                "interactive":{"type":"list_reply","list_reply":{"id":"cat-meter","title":"Meter problem","description":"Mitha ha e sebetse"}}}"#,
        ));
        assert_eq!(
            list.content,
            Content::Interactive {
                reply_id: "cat-meter".to_owned(),
                title: "Meter problem".to_owned()
            }
        );

        let quick_reply = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.QR","timestamp":"1749416383","type":"button",
                "button":{"payload":"reopen-ticket","text":"Bula tikete hape"}}"#,
        ));
        assert_eq!(
            quick_reply.content,
            Content::Interactive {
                reply_id: "reopen-ticket".to_owned(),
                title: "Bula tikete hape".to_owned()
            }
        );
    }

    #[test]
    fn an_image_keeps_its_caption_and_an_audio_without_one_has_no_words() {
        let image = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.IMG","timestamp":"1749416383","type":"image",
                "image":{"caption":"Mitha e chele","mime_type":"image/jpeg",
                         "sha256":"2f8ba9f4ef8cd4e0cbbf58f3b33a5a1ae49a45d8d1bea9fbf0d25a7b1e6a4c11","id":"1398741050880423"}}"#,
        ));
        assert_eq!(
            image.content,
            Content::Media {
                kind: MediaKind::Image,
                media_id: "1398741050880423".to_owned(),
                caption: Some("Mitha e chele".to_owned()),
                mime_type: Some("image/jpeg".to_owned()),
                sha256: Some(
                    "2f8ba9f4ef8cd4e0cbbf58f3b33a5a1ae49a45d8d1bea9fbf0d25a7b1e6a4c11".to_owned()
                ),
                filename: None,
            }
        );
        assert_eq!(image.content.words(), Some("Mitha e chele"));

        let audio = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.AUD","timestamp":"1749416383","type":"audio",
                "audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"abc","id":"872641208134001","voice":true}}"#,
        ));
        let Content::Media {
            kind,
            media_id,
            caption,
            ..
        } = &audio.content
        else {
            panic!("expected media, got {:?}", audio.content);
        };
        assert_eq!(
            (*kind, media_id.as_str(), caption),
            (MediaKind::Audio, "872641208134001", &None)
        );
        assert_eq!(audio.content.words(), None);
    }

    #[test]
    fn a_document_keeps_its_file_name_and_a_location_its_coordinates() {
        let document = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.DOC","timestamp":"1749416383","type":"document",
                "document":{"filename":"receipt.pdf","mime_type":"application/pdf","sha256":"def","id":"555"}}"#,
        ));
        assert!(matches!(
            &document.content,
            Content::Media { kind: MediaKind::Document, filename: Some(name), .. } if name == "receipt.pdf"
        ));

        let location = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.LOC","timestamp":"1749416383","type":"location",
                "location":{"latitude":-29.8461,"longitude":"27.9934","name":"Ha Makebe","address":"Maseru"}}"#,
        ));
        assert_eq!(
            location.content,
            Content::Location {
                latitude: -29.8461,
                longitude: 27.9934,
                name: Some("Ha Makebe".to_owned()),
                address: Some("Maseru".to_owned()),
            }
        );
        assert_eq!(location.content.words(), None);
    }

    #[test]
    fn sent_delivered_read_and_failed_statuses_come_through_with_their_errors() {
        let items = inbound_items(&delivery(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{
                "messaging_product":"whatsapp",
                "metadata":{"display_phone_number":"26622000000","phone_number_id":"PN"},
                "statuses":[
                  {"id":"wamid.S","status":"sent","timestamp":"1749416383","recipient_id":"26658123456",
                   "conversation":{"id":"c1","origin":{"type":"service"}},"pricing":{"billable":false,"category":"service"}},
                  {"id":"wamid.D","status":"delivered","timestamp":"1749416390","recipient_id":"26658123456"},
                  {"id":"wamid.R","status":"read","timestamp":"1749416400","recipient_id":"26658123456"},
                  {"id":"wamid.F","status":"failed","timestamp":"1749416460","recipient_id":"26658123456",
                   "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
                              "error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                              "href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},
                  {"id":"wamid.X","status":"deleted","timestamp":"1749416500","recipient_id":"26658123456"}
                ]}}]}]}"#,
        ));
        let statuses = statuses(&items);
        let seen: Vec<_> = statuses
            .iter()
            .map(|s| (s.message_id.as_str(), s.status.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("wamid.S", DeliveryStatus::Sent),
                ("wamid.D", DeliveryStatus::Delivered),
                ("wamid.R", DeliveryStatus::Read),
                ("wamid.F", DeliveryStatus::Failed),
                ("wamid.X", DeliveryStatus::Other("deleted".to_owned())),
            ]
        );
        assert_eq!(
            statuses[2].at,
            Some(Utc.with_ymd_and_hms(2025, 6, 8, 21, 0, 0).unwrap())
        );
        assert!(statuses[0].errors.is_empty());

        let failure = &statuses[3].errors;
        assert_eq!(failure.len(), 1);
        assert_eq!(failure[0].code, Some(131047));
        assert_eq!(failure[0].title, "Re-engagement message");
        assert!(failure[0].details.as_deref().unwrap().contains("24 hours"));
        assert!(failure[0].is_outside_service_window());
    }

    #[test]
    fn unknown_fields_and_unknown_message_types_are_tolerated() {
        let items = inbound_items(&delivery(
            r#"{"object":"whatsapp_business_account","brand_new_top_level":{"x":1},
              "entry":[{"id":"WABA","time":1749416383,"changes":[{"field":"messages","extra":[1,2],"value":{
                "messaging_product":"whatsapp","new_value_field":true,
                "metadata":{"display_phone_number":"26622000000","phone_number_id":"PN","region":"ZA"},
                "contacts":[{"profile":{"name":"Mpho","username":"mpho"},"wa_id":"26658123456","user_id":"LS.123"}],
                "messages":[
                  {"from":"26658123456","id":"wamid.T","timestamp":"1749416383","type":"text",
                   "text":{"body":"hello","new":"x"},"referral":{"source_type":"ad"},"identity":{}},
                  {"from":"26658123456","id":"wamid.RE","timestamp":"1749416384","type":"reaction",
                   "reaction":{"message_id":"wamid.OURS","emoji":"👍"}},
                  {"from":"26658123456","id":"wamid.U","timestamp":"1749416385","type":"unsupported",
                   "errors":[{"code":131051,"title":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}]},
                  {"from":"26658123456","id":"wamid.HOLO","timestamp":"1749416386","type":"hologram","hologram":{"id":"9"}},
                  {"from":"26658123456","id":"wamid.NOTYPE","timestamp":"1749416387"},
                  {"from":"26658123456","id":"wamid.FLOW","timestamp":"1749416388","type":"interactive",
                   "interactive":{"type":"nfm_reply","nfm_reply":{"response_json":"{}"}}},
                  {"from":"26658123456","id":"wamid.EMPTY","timestamp":"1749416389","type":"image","image":{"mime_type":"image/jpeg"}}
                ]}}]}]}"#,
        ));
        let kinds: Vec<_> = messages(&items).iter().map(|m| m.content.clone()).collect();
        let unsupported = |kind: &str| Content::Unsupported {
            kind: kind.to_owned(),
        };
        assert_eq!(
            kinds,
            [
                Content::Text("hello".to_owned()),
                unsupported("reaction"),
                unsupported("unsupported"),
                unsupported("hologram"),
                unsupported("unknown"),
                unsupported("interactive.nfm_reply"),
                unsupported("image"),
            ]
        );
    }

    #[test]
    fn a_change_of_another_field_is_ignored_even_when_its_value_has_another_shape() {
        let parsed = delivery(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[
                {"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1,
                  "message_template_name":"ticket_opened","message_template_language":"en","statuses":"not a list"}},
                {"field":"account_update","value":"a string, not an object"},
                {"field":"messages","value":{"messaging_product":"whatsapp",
                  "metadata":{"phone_number_id":"PN"},
                  "messages":[{"from":"26658123456","id":"wamid.KEEP","timestamp":"1749416383","type":"text","text":{"body":"kept"}}]}}
            ]}]}"#,
        );
        assert_eq!(parsed.entry[0].changes[0].value, None);
        assert_eq!(parsed.entry[0].changes[1].value, None);
        let items = inbound_items(&parsed);
        assert_eq!(messages(&items).len(), 1);
        assert_eq!(messages(&items)[0].message_id, "wamid.KEEP");
    }

    #[test]
    fn a_delivery_for_another_object_yields_nothing() {
        let page = delivery(
            r#"{"object":"page","entry":[{"id":"1","changes":[{"field":"messages","value":{
                "messages":[{"from":"26658123456","id":"wamid.P","timestamp":"1749416383","type":"text","text":{"body":"x"}}]}}]}]}"#,
        );
        assert_eq!(
            page.entry[0].changes[0]
                .value
                .as_ref()
                .unwrap()
                .messages
                .len(),
            1
        );
        assert!(inbound_items(&page).is_empty());
    }

    #[test]
    fn a_message_whose_timestamp_does_not_parse_still_comes_through_without_a_time() {
        for timestamp in [r#""yesterday""#, r#""""#, "null", r#"{"s":1}"#] {
            let message = only_message(&one_message_delivery(&format!(
                r#"{{"from":"26658123456","id":"wamid.T","timestamp":{timestamp},"type":"text","text":{{"body":"hi"}}}}"#
            )));
            assert_eq!(message.sent_at, None, "timestamp {timestamp}");
            assert_eq!(message.content, Content::Text("hi".to_owned()));
        }
        let numeric = only_message(&one_message_delivery(
            r#"{"from":"26658123456","id":"wamid.N","timestamp":1749416383,"type":"text","text":{"body":"hi"}}"#,
        ));
        assert_eq!(
            numeric.sent_at,
            Some(Utc.with_ymd_and_hms(2025, 6, 8, 20, 59, 43).unwrap())
        );
    }

    #[test]
    fn the_profile_name_comes_only_from_the_contact_with_the_senders_wa_id() {
        let message = only_message(&one_message_delivery(
            r#"{"from":"26658999999","id":"wamid.O","timestamp":"1749416383","type":"text","text":{"body":"hi"}}"#,
        ));
        assert_eq!(message.from, "26658999999");
        assert_eq!(message.profile_name, None);
    }

    #[test]
    fn messages_and_statuses_without_an_id_or_a_sender_are_dropped() {
        let items = inbound_items(&delivery(
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
                "messages":[
                  {"from":"26658123456","timestamp":"1749416383","type":"text","text":{"body":"no id"}},
                  {"from":"26658123456","id":"","type":"text","text":{"body":"empty id"}},
                  {"id":"wamid.NOFROM","type":"text","text":{"body":"no sender"}},
                  {"from":"26658123456","id":"wamid.OK","type":"text","text":{"body":"fine"}}],
                "statuses":[{"status":"read"},{"id":"wamid.ST","status":"read"}]}}]}]}"#,
        ));
        let ids: Vec<_> = items
            .iter()
            .map(|item| match item {
                InboundItem::Message(message) => message.message_id.as_str(),
                InboundItem::Status(status) => status.message_id.as_str(),
            })
            .collect();
        assert_eq!(ids, ["wamid.OK", "wamid.ST"]);
    }

    #[test]
    fn null_arrays_and_a_missing_value_read_as_empty() {
        let parsed = delivery(
            r#"{"object":"whatsapp_business_account","entry":[
                {"id":"A","changes":null},
                {"id":"B","changes":[{"field":"messages"},{"field":"messages","value":{"messages":null,"statuses":null,"contacts":null}}]}]}"#,
        );
        assert_eq!(parsed.entry.len(), 2);
        assert!(inbound_items(&parsed).is_empty());
    }

    #[test]
    fn blank_text_and_a_blank_caption_have_no_words() {
        assert_eq!(Content::Text(" \n ".to_owned()).words(), None);
        let blank_caption = Content::Media {
            kind: MediaKind::Video,
            media_id: "1".to_owned(),
            caption: Some(String::new()),
            mime_type: None,
            sha256: None,
            filename: None,
        };
        assert_eq!(blank_caption.words(), None);
        assert_eq!(
            Content::Unsupported {
                kind: "reaction".to_owned()
            }
            .words(),
            None
        );
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        for body in [
            "",
            "not json",
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"x"}"#,
            r#"{"object":"whatsapp_business_account","entry":"not a list"}"#,
            r#"{"entry":[{"changes":[{"field":"messages","value":{"messages":"not a list"}}]}]}"#,
        ] {
            assert!(
                matches!(parse_delivery(body.as_bytes()), Err(ParseError::Json(_))),
                "{body:?} should not parse"
            );
        }
    }

    #[test]
    fn a_body_over_the_size_limit_is_refused_before_parsing() {
        let mut body = PLAIN_BODY.as_bytes().to_vec();
        body.resize(MAX_BODY_BYTES + 1, b' ');
        assert!(matches!(
            parse_delivery(&body),
            Err(ParseError::TooLarge { len }) if len == MAX_BODY_BYTES + 1
        ));
        body.truncate(MAX_BODY_BYTES);
        assert!(parse_delivery(&body).is_ok());
    }

    // Outbound.

    #[test]
    fn the_messages_url_joins_the_api_base_and_the_phone_number_id() {
        assert_eq!(
            messages_url("https://graph.facebook.com/v23.0/", "106540352242922"),
            "https://graph.facebook.com/v23.0/106540352242922/messages"
        );
        assert_eq!(
            messages_url("https://graph.facebook.com/v23.0", "1"),
            "https://graph.facebook.com/v23.0/1/messages"
        );
    }

    #[test]
    fn a_text_message_is_an_individual_text_without_link_preview() {
        assert_eq!(
            text_message("26658123456", "Tikete ea hao MAK-2026-0065 e thehiloe.\nYour ticket MAK-2026-0065 has been created."),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "26658123456",
                "type": "text",
                "text": {
                    "body": "Tikete ea hao MAK-2026-0065 e thehiloe.\nYour ticket MAK-2026-0065 has been created.",
                    "preview_url": false,
                },
            })
        );
    }

    #[test]
    fn a_template_message_fills_the_body_parameters_in_order() {
        let parameters = ["MAK-2026-0065".to_owned(), "Mpho".to_owned()];
        assert_eq!(
            template_message("26658123456", "ticket_update", "st", &parameters),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "26658123456",
                "type": "template",
                "template": {
                    "name": "ticket_update",
                    "language": { "code": "st" },
                    "components": [{
                        "type": "body",
                        "parameters": [
                            { "type": "text", "text": "MAK-2026-0065" },
                            { "type": "text", "text": "Mpho" },
                        ],
                    }],
                },
            })
        );
    }

    #[test]
    fn a_template_without_parameters_sends_no_components() {
        let message = template_message("26658123456", "hello_world", "en_US", &[]);
        assert_eq!(
            message["template"],
            json!({ "name": "hello_world", "language": { "code": "en_US" } })
        );
    }

    #[test]
    fn a_send_response_yields_the_wamid_of_the_sent_message() {
        let response: SendResponse = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"26658123456","wa_id":"26658123456"}],
                "messages":[{"id":"wamid.HBgLMjY2NTgxMjM0NTYVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","message_status":"accepted"}]}"#,
        )
        .unwrap();
        assert_eq!(
            response.message_id(),
            Some("wamid.HBgLMjY2NTgxMjM0NTYVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA")
        );
        assert_eq!(response.contacts[0].wa_id.as_deref(), Some("26658123456"));
        assert_eq!(SendResponse::default().message_id(), None);
    }

    fn api_error(code: &str) -> ApiErrorBody {
        serde_json::from_str(&format!(
            r#"{{"error":{{"message":"(#{code}) something","type":"OAuthException","code":{code},
                "error_data":{{"messaging_product":"whatsapp","details":"details of {code}"}},
                "fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn error_131047_means_the_service_window_is_closed_and_is_not_retried() {
        let error = api_error("131047");
        assert!(error.is_outside_service_window());
        assert!(!error.is_retryable());
        assert_eq!(error.details(), Some("details of 131047"));
        assert_eq!(
            error.error.fbtrace_id.as_deref(),
            Some("Az8or2yhqkZfEZ-_4Qn_Bam")
        );
    }

    #[test]
    fn rate_limits_and_temporary_faults_are_retryable_and_request_errors_are_not() {
        for code in [
            "1", "2", "4", "80007", "130429", "131000", "131016", "131056", "133004",
        ] {
            let error = api_error(code);
            assert!(error.is_retryable(), "{code} should be retryable");
            assert!(!error.is_outside_service_window(), "{code}");
        }
        for code in ["100", "131026", "131048", "132001", "190", "368"] {
            assert!(
                !api_error(code).is_retryable(),
                "{code} should not be retried"
            );
        }
    }

    #[test]
    fn an_api_error_tolerates_a_string_code_string_error_data_and_a_subcode() {
        let error: ApiErrorBody = serde_json::from_str(
            r#"{"error":{"message":"Invalid parameter","code":"131047","error_subcode":2494010,
                "error_data":"Template name does not exist"}}"#,
        )
        .unwrap();
        assert!(error.is_outside_service_window());
        assert_eq!(error.error.error_subcode, Some(2494010));
        assert_eq!(error.details(), Some("Template name does not exist"));
    }
}
