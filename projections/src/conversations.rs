//! The `conversations` read model: the customers' WhatsApp conversations (events of the
//! `Conversation` aggregate, one per phone number in E.164), for staff reading a customer's
//! history and a ticket's messages. It replaces the legacy bot's in-memory `conversations` map
//! and its per-phone JSONL logs (legacy-system.md §7.7), and forgets nothing after two hours.
//!
//! Tables:
//! - `conversations`: one row per phone: the customer once identified, the latest WhatsApp
//!   profile name, when the customer last wrote and when anything was last exchanged, the ticket
//!   linked last, the messages counted each way, and whether the bridge is waiting for an account
//!   number;
//! - `conversation_messages`: one row per message in or out, keyed by the position of the event
//!   that recorded it (`MessageReceived`, `ReplyQueued`), with the Cloud API's id of a sent reply,
//!   its delivery status (the furthest reached), and the ticket the conversation was linked to
//!   at the time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::conversation::{
    Conversation, ConversationEvent, ReplyDelivery, ReplyKind, CONVERSATION,
};
use domain::event::StoredEvent;
use domain::phone::PhoneNumber;
use sqlx::{PgConnection, PgPool};

use crate::error::Result;
use crate::projection::{decode_payload, execute_all, qualified, Projection};

/// The projection's permanent name.
pub const NAME: &str = "conversations";

const AGGREGATE_TYPES: &[&str] = &[CONVERSATION];

/// Builds the `conversations` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationsProjection;

#[async_trait]
impl Projection for ConversationsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(AGGREGATE_TYPES)
    }

    /// What customers wrote is for the staff who answer them, not for analysts' exports.
    fn private(&self) -> bool {
        true
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let conversations = qualified(schema, "conversations");
        let messages = qualified(schema, "conversation_messages");
        let statuses = qualified(schema, "conversation_statuses");
        let statements = [
            format!(
                "create table {conversations} (
                    phone             text primary key,
                    customer_id       bigint,
                    profile_name      text,
                    last_inbound_at   timestamptz,
                    last_exchange_at  timestamptz,
                    ticket_number     text,
                    messages_in       integer not null,
                    messages_out      integer not null,
                    asked_for_account boolean not null,
                    position          bigint not null
                )"
            ),
            format!("comment on table {conversations} is 'ccare: one row per WhatsApp conversation (phone in E.164): the customer once identified, the latest profile name, the last message times, the ticket linked last and the messages counted each way'"),
            format!(
                "create table {messages} (
                    position      bigint primary key,
                    phone         text not null,
                    direction     text not null,
                    message_id    text not null,
                    wamid         text,
                    text          text,
                    media_kind    text,
                    media_id      text,
                    reply_kind    text,
                    at            timestamptz not null,
                    status        text,
                    status_at     timestamptz,
                    ticket_number text
                )"
            ),
            format!("comment on table {messages} is 'ccare: every WhatsApp message in (direction in, message_id the wamid) or out (direction out, message_id the reply id, wamid once the Cloud API accepted it, status the furthest delivery status reached), with the ticket the conversation was linked to at the time'"),
            // Every status reported, also for a reply not yet recorded as sent (the Cloud API's
            // webhook can overtake the sender's own record): applied when it is.
            format!(
                "create table {statuses} (
                    position bigint primary key,
                    phone    text not null,
                    wamid    text not null,
                    status   text not null,
                    at       timestamptz not null
                )"
            ),
            format!("comment on table {statuses} is 'ccare: every delivery status the Cloud API reported for a reply, in order'"),
            format!("create index on {statuses} (phone, wamid, position)"),
            // What applying a reply's acceptance and its statuses looks up.
            format!("create index on {messages} (phone, message_id)"),
            format!("create index on {messages} (phone, wamid) where wamid is not null"),
        ];
        execute_all(conn, statements).await
    }

    fn secondary_indexes(&self, schema: &str) -> Vec<String> {
        let conversations = qualified(schema, "conversations");
        let messages = qualified(schema, "conversation_messages");
        vec![
            // The messages of one phone in order (a history, a ticket's messages).
            format!("create index on {messages} (phone, at, position)"),
            // The conversations of one customer.
            format!("create index on {conversations} (customer_id)"),
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        let conversations = qualified(schema, "conversations");
        let messages = qualified(schema, "conversation_messages");
        let statuses = qualified(schema, "conversation_statuses");
        for event in events {
            if event.aggregate_type != CONVERSATION {
                continue;
            }
            let conversation_event: ConversationEvent =
                decode_payload(event, "a conversation event")?;
            let phone = event.aggregate_id.as_str();
            // Every event of the conversation is its latest: the row exists from the first.
            sqlx::query(&format!(
                "insert into {conversations} (phone, messages_in, messages_out, asked_for_account,
                     position)
                 values ($1, 0, 0, false, $2)
                 on conflict (phone) do update set position = excluded.position"
            ))
            .bind(phone)
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
            match conversation_event {
                ConversationEvent::MessageReceived {
                    message_id,
                    text,
                    media,
                    profile_name,
                    sent_at,
                } => {
                    // Times move forward only: a late delivery of an older message keeps them.
                    sqlx::query(&format!(
                        "update {conversations} set
                             profile_name = coalesce($2, profile_name),
                             last_inbound_at = greatest(last_inbound_at, $3),
                             last_exchange_at = greatest(last_exchange_at, $3),
                             messages_in = messages_in + 1
                         where phone = $1"
                    ))
                    .bind(phone)
                    .bind(profile_name)
                    .bind(sent_at)
                    .execute(&mut *conn)
                    .await?;
                    let (media_kind, media_id) = media.map(|m| (m.kind, m.media_id)).unzip();
                    insert_message(
                        conn,
                        &messages,
                        &conversations,
                        event,
                        NewMessage {
                            direction: "in",
                            message_id,
                            text,
                            media_kind,
                            media_id,
                            reply_kind: None,
                            at: sent_at,
                        },
                    )
                    .await?;
                }
                ConversationEvent::CustomerIdentified { customer_id, .. } => {
                    sqlx::query(&format!(
                        "update {conversations} set customer_id = $2, asked_for_account = false
                         where phone = $1"
                    ))
                    .bind(phone)
                    .bind(customer_id)
                    .execute(&mut *conn)
                    .await?;
                }
                ConversationEvent::AskedForAccount => {
                    sqlx::query(&format!(
                        "update {conversations} set asked_for_account = true where phone = $1"
                    ))
                    .bind(phone)
                    .execute(&mut *conn)
                    .await?;
                }
                // The site only steers the sender's tickets, which the tickets read model shows.
                ConversationEvent::SiteNamed { .. } => {}
                ConversationEvent::TicketLinked { number } => {
                    sqlx::query(&format!(
                        "update {conversations} set ticket_number = $2 where phone = $1"
                    ))
                    .bind(phone)
                    .bind(number.to_string())
                    .execute(&mut *conn)
                    .await?;
                }
                ConversationEvent::ReplyQueued {
                    reply_id,
                    text,
                    kind,
                    at,
                } => {
                    sqlx::query(&format!(
                        "update {conversations} set
                             last_exchange_at = greatest(last_exchange_at, $2),
                             messages_out = messages_out + 1
                         where phone = $1"
                    ))
                    .bind(phone)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                    insert_message(
                        conn,
                        &messages,
                        &conversations,
                        event,
                        NewMessage {
                            direction: "out",
                            message_id: reply_id,
                            text: Some(text),
                            media_kind: None,
                            media_id: None,
                            reply_kind: Some(reply_kind_name(kind)),
                            at,
                        },
                    )
                    .await?;
                }
                ConversationEvent::ReplySent { reply_id, wamid } => {
                    sqlx::query(&format!(
                        "update {messages} set wamid = $3
                         where phone = $1 and message_id = $2 and direction = 'out'"
                    ))
                    .bind(phone)
                    .bind(&reply_id)
                    .bind(&wamid)
                    .execute(&mut *conn)
                    .await?;
                    // Statuses that came before this record now have their message.
                    let earlier: Vec<(String, DateTime<Utc>)> = sqlx::query_as(&format!(
                        "select status, at from {statuses} where phone = $1 and wamid = $2 order by position"
                    ))
                    .bind(phone)
                    .bind(&wamid)
                    .fetch_all(&mut *conn)
                    .await?;
                    let mut shown: Option<(String, DateTime<Utc>)> = None;
                    for (status, at) in earlier {
                        let furthest = furthest_status(
                            &wamid,
                            shown.as_ref().map(|(s, _)| s.as_str()),
                            &status,
                            at,
                        );
                        if shown.as_ref().map(|(s, _)| s) != Some(&furthest) {
                            shown = Some((furthest, at));
                        }
                    }
                    if let Some((status, at)) = shown {
                        sqlx::query(&format!(
                            "update {messages} set status = $4, status_at = $5
                             where phone = $1 and message_id = $2 and direction = 'out' and wamid = $3"
                        ))
                        .bind(phone)
                        .bind(&reply_id)
                        .bind(&wamid)
                        .bind(&status)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                ConversationEvent::ReplyStatus { wamid, status, at } => {
                    sqlx::query(&format!(
                        "insert into {statuses} (position, phone, wamid, status, at)
                         values ($1, $2, $3, $4, $5) on conflict (position) do nothing"
                    ))
                    .bind(event.position)
                    .bind(phone)
                    .bind(&wamid)
                    .bind(&status)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                    let shown: Vec<(i64, Option<String>)> = sqlx::query_as(&format!(
                        "select position, status from {messages}
                         where phone = $1 and wamid = $2 and direction = 'out'"
                    ))
                    .bind(phone)
                    .bind(&wamid)
                    .fetch_all(&mut *conn)
                    .await?;
                    // A reply not yet recorded as sent gets it when it is (above).
                    for (position, current) in shown {
                        let furthest = furthest_status(&wamid, current.as_deref(), &status, at);
                        if current.as_deref() != Some(furthest.as_str()) {
                            sqlx::query(&format!(
                                "update {messages} set status = $2, status_at = $3
                                 where position = $1"
                            ))
                            .bind(position)
                            .bind(&furthest)
                            .bind(at)
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A `conversation_messages` row being made.
struct NewMessage {
    direction: &'static str,
    message_id: String,
    text: Option<String>,
    media_kind: Option<String>,
    media_id: Option<String>,
    reply_kind: Option<&'static str>,
    at: DateTime<Utc>,
}

/// Inserts the message `event` recorded, with the ticket its conversation is linked to now.
async fn insert_message(
    conn: &mut PgConnection,
    messages: &str,
    conversations: &str,
    event: &StoredEvent,
    message: NewMessage,
) -> Result<()> {
    sqlx::query(&format!(
        "insert into {messages} (position, phone, direction, message_id, wamid, text, media_kind,
             media_id, reply_kind, at, status, status_at, ticket_number)
         values ($1, $2, $3, $4, null, $5, $6, $7, $8, $9, null, null,
                 (select ticket_number from {conversations} where phone = $2))
         on conflict (position) do nothing"
    ))
    .bind(event.position)
    .bind(&event.aggregate_id)
    .bind(message.direction)
    .bind(message.message_id)
    .bind(message.text)
    .bind(message.media_kind)
    .bind(message.media_id)
    .bind(message.reply_kind)
    .bind(message.at)
    .execute(conn)
    .await?;
    Ok(())
}

fn reply_kind_name(kind: ReplyKind) -> &'static str {
    match kind {
        ReplyKind::Text => "text",
        ReplyKind::Template => "template",
    }
}

/// The status a reply shows once `reported` arrives, when it showed `current`: the domain's own
/// rule (the furthest reached, failed > read > delivered > sent, whatever the order the
/// statuses came in), applied by folding the event into a conversation that knows only this
/// reply, so the rule is written once, in `domain::conversation`.
fn furthest_status(
    wamid: &str,
    current: Option<&str>,
    reported: &str,
    at: DateTime<Utc>,
) -> String {
    let mut conversation = Conversation::default();
    if let Some(current) = current {
        conversation.deliveries.push(ReplyDelivery {
            wamid: wamid.to_string(),
            status: current.to_string(),
            reported: vec![current.to_string()],
        });
    }
    conversation.apply_event(ConversationEvent::ReplyStatus {
        wamid: wamid.to_string(),
        status: reported.to_string(),
        at,
    });
    conversation
        .deliveries
        .into_iter()
        .find(|d| d.wamid == wamid)
        .map_or_else(|| reported.to_string(), |d| d.status)
}

// ---------------------------------------------------------------------------------------------
// Queries. They read the `read_model` views, so they always see the live generation.
// ---------------------------------------------------------------------------------------------

/// A conversation as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationSummary {
    /// E.164.
    pub phone: String,
    pub customer_id: Option<i64>,
    pub profile_name: Option<String>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub last_exchange_at: Option<DateTime<Utc>>,
    pub ticket_number: Option<String>,
    pub messages_in: i32,
    pub messages_out: i32,
    pub asked_for_account: bool,
}

/// One message of a conversation, in or out.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Message {
    /// The position of the event that recorded it.
    pub position: i64,
    pub phone: String,
    /// `in` (from the customer) or `out` (a reply).
    pub direction: String,
    /// The WhatsApp message id of a message in; ccare's reply id of a reply.
    pub message_id: String,
    /// The Cloud API's id of a reply it accepted.
    pub wamid: Option<String>,
    pub text: Option<String>,
    pub media_kind: Option<String>,
    pub media_id: Option<String>,
    /// `text` or `template`, for a reply.
    pub reply_kind: Option<String>,
    /// When it was sent (a message in: by the customer's phone; a reply: when it was queued).
    pub at: DateTime<Utc>,
    /// The furthest delivery status reported for a reply (sent, delivered, read, failed).
    pub status: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    /// The ticket the conversation was linked to when the message came or went.
    pub ticket_number: Option<String>,
}

/// Whose conversations a history is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    /// Every conversation identified as this customer's.
    Customer(i64),
    /// The conversation of this phone number.
    Phone(PhoneNumber),
}

const SELECT_CONVERSATIONS: &str = "select c.phone, c.customer_id, c.profile_name,
        c.last_inbound_at, c.last_exchange_at, c.ticket_number, c.messages_in, c.messages_out,
        c.asked_for_account
     from read_model.conversations c";

const SELECT_MESSAGES: &str = "select m.position, m.phone, m.direction, m.message_id, m.wamid,
        m.text, m.media_kind, m.media_id, m.reply_kind, m.at, m.status, m.status_at,
        m.ticket_number
     from read_model.conversation_messages m";

/// `$1` a customer id, `$2` a phone: whichever is given picks the conversations.
const PARTY: &str = "(($1::bigint is not null and c.customer_id = $1) or c.phone = $2)";

fn party_parameters(party: &Party) -> (Option<i64>, Option<&str>) {
    match party {
        Party::Customer(id) => (Some(*id), None),
        Party::Phone(phone) => (None, Some(phone.as_str())),
    }
}

/// The conversations of `party`, the most recent exchange first.
pub async fn conversations_of(pool: &PgPool, party: &Party) -> Result<Vec<ConversationSummary>> {
    let (customer_id, phone) = party_parameters(party);
    Ok(sqlx::query_as(&format!(
        "{SELECT_CONVERSATIONS} where {PARTY}
         order by c.last_exchange_at desc nulls last, c.phone"
    ))
    .bind(customer_id)
    .bind(phone)
    .fetch_all(pool)
    .await?)
}

/// A page of the messages of `party`'s conversations, the newest first, and how many there are.
pub async fn history(
    pool: &PgPool,
    party: &Party,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Message>, i64)> {
    let (customer_id, phone) = party_parameters(party);
    let phones =
        format!("m.phone in (select c.phone from read_model.conversations c where {PARTY})");
    let total: i64 = sqlx::query_scalar(&format!(
        "select count(*) from read_model.conversation_messages m where {phones}"
    ))
    .bind(customer_id)
    .bind(phone)
    .fetch_one(pool)
    .await?;
    let messages = sqlx::query_as(&format!(
        "{SELECT_MESSAGES} where {phones}
         order by m.at desc, m.position desc limit $3 offset $4"
    ))
    .bind(customer_id)
    .bind(phone)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((messages, total))
}

/// The first `limit` messages of `phone` from `since` on, in order, and how many there are.
pub async fn messages_since(
    pool: &PgPool,
    phone: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<Message>, i64)> {
    let total: i64 = sqlx::query_scalar(
        "select count(*) from read_model.conversation_messages m where m.phone = $1 and m.at >= $2",
    )
    .bind(phone)
    .bind(since)
    .fetch_one(pool)
    .await?;
    let messages = sqlx::query_as(&format!(
        "{SELECT_MESSAGES} where m.phone = $1 and m.at >= $2
         order by m.at, m.position limit $3"
    ))
    .bind(phone)
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok((messages, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap()
    }

    #[test]
    fn a_reply_shows_the_furthest_status_whatever_the_order_they_came_in() {
        let mut shown: Option<String> = None;
        for reported in ["read", "sent", "delivered"] {
            shown = Some(furthest_status("wamid.1", shown.as_deref(), reported, at()));
        }
        assert_eq!(shown.as_deref(), Some("read"));
        assert_eq!(
            furthest_status("wamid.1", Some("read"), "failed", at()),
            "failed"
        );
        assert_eq!(
            furthest_status("wamid.1", Some("failed"), "read", at()),
            "failed"
        );
        assert_eq!(
            furthest_status("wamid.1", None, "delivered", at()),
            "delivered"
        );
    }
}
