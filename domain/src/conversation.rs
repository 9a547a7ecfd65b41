//! A customer's WhatsApp conversation with the utility, as an aggregate ccare owns (events only),
//! one per phone number (E.164).
//!
//! It remembers what the bridge needs to answer well and what staff need to read back: every
//! message in and out, who the customer is once known, the ticket a follow-up belongs to, and when
//! the customer last wrote (the Cloud API allows free text only within 24 hours of that; after it,
//! only an approved template).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::account::AccountNumber;
use crate::phone::PhoneNumber;
use crate::ticket::TicketNumber;

/// The aggregate type of conversations.
pub const CONVERSATION: &str = "Conversation";

/// How long after the customer's last message free text may be sent (the Cloud API's
/// customer-service window).
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

/// The legacy bridge's window within which a new message is a follow-up of the open ticket.
pub const DEFAULT_FOLLOW_UP_WINDOW: Duration = Duration::minutes(30);

/// A media attachment as the webhook named it (the file itself is fetched only if needed: the
/// Cloud API keeps it for 7 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// image, video, audio, document or sticker.
    pub kind: String,
    pub media_id: String,
    pub mime_type: Option<String>,
}

/// How the customer behind a phone number became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identification {
    /// The phone number is on the customer's record.
    Phone,
    /// The customer gave an account number the bridge had asked for.
    Account,
    /// The customer named a village the bridge could match to one customer.
    Village,
}

/// Whether a reply is free text or a template (outside the service window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyKind {
    Text,
    Template,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationEvent {
    /// A message from the customer. `text` is what a person can read in it (the text, the
    /// button's title, a caption); `None` for a media-only message.
    MessageReceived {
        message_id: String,
        text: Option<String>,
        media: Option<MediaRef>,
        profile_name: Option<String>,
        sent_at: DateTime<Utc>,
    },
    CustomerIdentified {
        customer_id: i64,
        how: Identification,
    },
    /// The bridge asked an unknown customer for their account number or village.
    AskedForAccount,
    /// A sender the bridge does not know named their village, which is at `site`: their tickets
    /// go to that site.
    SiteNamed { site: String },
    /// A ticket was opened from this conversation.
    TicketLinked { number: TicketNumber },
    /// A reply was queued for sending (`reply_id` is ccare's own id of it).
    ReplyQueued {
        reply_id: String,
        text: String,
        kind: ReplyKind,
        at: DateTime<Utc>,
    },
    /// The Cloud API accepted the reply under `wamid`.
    ReplySent { reply_id: String, wamid: String },
    /// A delivery status the Cloud API reported for a reply (sent, delivered, read, failed).
    ReplyStatus {
        wamid: String,
        status: String,
        at: DateTime<Utc>,
    },
}

/// The version of [`ConversationEvent`]'s shape.
pub const CONVERSATION_EVENT_VERSION: &str = "1";

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            ConversationEvent::MessageReceived { .. } => "ConversationMessageReceived",
            ConversationEvent::CustomerIdentified { .. } => "ConversationCustomerIdentified",
            ConversationEvent::AskedForAccount => "ConversationAskedForAccount",
            ConversationEvent::SiteNamed { .. } => "ConversationSiteNamed",
            ConversationEvent::TicketLinked { .. } => "ConversationTicketLinked",
            ConversationEvent::ReplyQueued { .. } => "ConversationReplyQueued",
            ConversationEvent::ReplySent { .. } => "ConversationReplySent",
            ConversationEvent::ReplyStatus { .. } => "ConversationReplyStatus",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        CONVERSATION_EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationCommand {
    Receive {
        message_id: String,
        text: Option<String>,
        media: Option<MediaRef>,
        profile_name: Option<String>,
        sent_at: DateTime<Utc>,
    },
    Identify {
        customer_id: i64,
        how: Identification,
    },
    AskForAccount,
    NameSite {
        site: String,
    },
    LinkTicket {
        number: TicketNumber,
    },
    QueueReply {
        reply_id: String,
        text: String,
        kind: ReplyKind,
        at: DateTime<Utc>,
    },
    RecordSent {
        reply_id: String,
        wamid: String,
    },
    RecordStatus {
        wamid: String,
        status: String,
        at: DateTime<Utc>,
    },
}

/// Why a conversation command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("{field}: must not be empty")]
    Empty { field: &'static str },
    #[error("no reply {0} was queued in this conversation")]
    UnknownReply(String),
}

/// How many message ids a conversation remembers to recognise a redelivery (the inbox
/// recognises older ones).
const REMEMBERED_MESSAGE_IDS: usize = 64;

/// A conversation as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub customer_id: Option<i64>,
    pub asked_for_account: bool,
    /// The site of the village an unknown sender named.
    #[serde(default)]
    pub named_site: Option<String>,
    /// When the customer last wrote (by the message's own time).
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// The last exchange in either direction.
    pub last_exchange_at: Option<DateTime<Utc>>,
    pub ticket: Option<TicketNumber>,
    /// When the ticket was linked or last followed up.
    pub ticket_touched_at: Option<DateTime<Utc>>,
    pub recent_message_ids: Vec<String>,
    /// Replies queued and not yet accepted by the Cloud API.
    pub unsent_replies: Vec<String>,
    /// What the Cloud API reported of each sent reply (the latest ones).
    pub deliveries: Vec<ReplyDelivery>,
    /// The ids of the latest replies queued, sent or not: queueing one again changes nothing.
    #[serde(default)]
    pub recent_reply_ids: Vec<String>,
    /// The latest texts exchanged, oldest first: the context an LLM triage is given (this
    /// conversation's own, never another's).
    #[serde(default)]
    pub recent_exchanges: Vec<RecentExchange>,
}

/// One text of a conversation, in or out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentExchange {
    pub from_customer: bool,
    pub text: String,
}

/// How many texts a conversation keeps for the triage's context.
const REMEMBERED_EXCHANGES: usize = 6;

/// How many replies a conversation remembers (ids and delivery statuses).
const REMEMBERED_REPLIES: usize = 64;

/// The id of the reply to message `message_id`: each inbound message gets exactly one reply, so
/// a worker that handles a message again after a crash queues nothing twice.
pub fn reply_id_for(message_id: &str) -> String {
    format!("re:{message_id}")
}

fn push_bounded<T>(items: &mut Vec<T>, item: T, limit: usize) {
    items.push(item);
    if items.len() > limit {
        items.remove(0);
    }
}

/// The statuses reported for one sent reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyDelivery {
    pub wamid: String,
    /// The furthest status reached (failed > read > delivered > sent), whatever the order the
    /// webhooks came in.
    pub status: String,
    /// Every status reported, in the order recorded.
    pub reported: Vec<String>,
}

/// How far a delivery status goes; an unknown status counts least.
fn status_rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        // The Cloud API may report a failure after a delivery: the failure is what staff must see.
        "failed" => 4,
        _ => 0,
    }
}

impl Conversation {
    /// The open ticket a message at `now` continues, if the last exchange about it is within
    /// `window` (the legacy 30 minutes by default).
    pub fn follow_up_ticket(&self, now: DateTime<Utc>, window: Duration) -> Option<&TicketNumber> {
        let touched = self.ticket_touched_at?;
        (now - touched <= window).then_some(self.ticket.as_ref()?)
    }

    /// Whether message `message_id` has been handled to the end (its reply is queued).
    pub fn answered(&self, message_id: &str) -> bool {
        self.recent_reply_ids.contains(&reply_id_for(message_id))
    }

    /// Whether free text may be sent at `now` (the customer wrote within 24 hours).
    pub fn within_service_window(&self, now: DateTime<Utc>) -> bool {
        self.last_inbound_at
            .is_some_and(|last| now - last < SERVICE_WINDOW)
    }

    pub fn decide(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        use ConversationCommand as C;
        let event = match command {
            C::Receive {
                message_id,
                text,
                media,
                profile_name,
                sent_at,
            } => {
                if message_id.trim().is_empty() {
                    return Err(ConversationError::Empty {
                        field: "message_id",
                    });
                }
                // A redelivered message changes nothing.
                if self.recent_message_ids.contains(&message_id) {
                    return Ok(Vec::new());
                }
                ConversationEvent::MessageReceived {
                    message_id,
                    text: text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
                    media,
                    profile_name,
                    sent_at,
                }
            }
            C::Identify { customer_id, how } => {
                if self.customer_id == Some(customer_id) {
                    return Ok(Vec::new());
                }
                ConversationEvent::CustomerIdentified { customer_id, how }
            }
            C::AskForAccount => ConversationEvent::AskedForAccount,
            C::NameSite { site } => {
                let site = site.trim().to_string();
                if site.is_empty() {
                    return Err(ConversationError::Empty { field: "site" });
                }
                if self.named_site.as_ref() == Some(&site) {
                    return Ok(Vec::new());
                }
                ConversationEvent::SiteNamed { site }
            }
            C::LinkTicket { number } => {
                if self.ticket.as_ref() == Some(&number) {
                    return Ok(Vec::new());
                }
                ConversationEvent::TicketLinked { number }
            }
            C::QueueReply {
                reply_id,
                text,
                kind,
                at,
            } => {
                if text.trim().is_empty() {
                    return Err(ConversationError::Empty { field: "text" });
                }
                if reply_id.trim().is_empty() {
                    return Err(ConversationError::Empty { field: "reply_id" });
                }
                if self.recent_reply_ids.contains(&reply_id) {
                    return Ok(Vec::new());
                }
                ConversationEvent::ReplyQueued {
                    reply_id,
                    text,
                    kind,
                    at,
                }
            }
            C::RecordSent { reply_id, wamid } => {
                if !self.unsent_replies.contains(&reply_id) {
                    return Err(ConversationError::UnknownReply(reply_id));
                }
                ConversationEvent::ReplySent { reply_id, wamid }
            }
            C::RecordStatus { wamid, status, at } => {
                // A status reported again (a redelivered webhook) changes nothing.
                if self
                    .deliveries
                    .iter()
                    .any(|d| d.wamid == wamid && d.reported.contains(&status))
                {
                    return Ok(Vec::new());
                }
                ConversationEvent::ReplyStatus { wamid, status, at }
            }
        };
        Ok(vec![event])
    }

    pub fn apply_event(&mut self, event: ConversationEvent) {
        match event {
            ConversationEvent::MessageReceived {
                message_id,
                text,
                sent_at,
                ..
            } => {
                // Out-of-order deliveries must not move the window back.
                self.last_inbound_at = self.last_inbound_at.max(Some(sent_at));
                self.last_exchange_at = self.last_exchange_at.max(Some(sent_at));
                push_bounded(
                    &mut self.recent_message_ids,
                    message_id,
                    REMEMBERED_MESSAGE_IDS,
                );
                if let Some(text) = text {
                    push_bounded(
                        &mut self.recent_exchanges,
                        RecentExchange {
                            from_customer: true,
                            text,
                        },
                        REMEMBERED_EXCHANGES,
                    );
                }
                if self.ticket.is_some() {
                    self.ticket_touched_at = self.ticket_touched_at.max(Some(sent_at));
                }
            }
            ConversationEvent::CustomerIdentified { customer_id, .. } => {
                self.customer_id = Some(customer_id);
                self.asked_for_account = false;
            }
            ConversationEvent::AskedForAccount => self.asked_for_account = true,
            ConversationEvent::SiteNamed { site } => self.named_site = Some(site),
            ConversationEvent::TicketLinked { number } => {
                self.ticket = Some(number);
                self.ticket_touched_at = self.last_exchange_at;
            }
            ConversationEvent::ReplyQueued {
                reply_id, text, at, ..
            } => {
                self.unsent_replies.push(reply_id.clone());
                push_bounded(&mut self.recent_reply_ids, reply_id, REMEMBERED_REPLIES);
                push_bounded(
                    &mut self.recent_exchanges,
                    RecentExchange {
                        from_customer: false,
                        text,
                    },
                    REMEMBERED_EXCHANGES,
                );
                self.last_exchange_at = self.last_exchange_at.max(Some(at));
                if self.ticket.is_some() {
                    self.ticket_touched_at = self.ticket_touched_at.max(Some(at));
                }
            }
            ConversationEvent::ReplySent { reply_id, .. } => {
                self.unsent_replies.retain(|r| *r != reply_id);
            }
            ConversationEvent::ReplyStatus { wamid, status, .. } => {
                match self.deliveries.iter_mut().find(|d| d.wamid == wamid) {
                    Some(delivery) => {
                        if status_rank(&status) >= status_rank(&delivery.status) {
                            delivery.status = status.clone();
                        }
                        delivery.reported.push(status);
                    }
                    None => push_bounded(
                        &mut self.deliveries,
                        ReplyDelivery {
                            wamid,
                            status: status.clone(),
                            reported: vec![status],
                        },
                        REMEMBERED_REPLIES,
                    ),
                }
            }
        }
    }
}

/// The customer behind a phone number or account, as the customer read model knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCustomer {
    pub customer_id: i64,
    pub first_name: String,
    pub last_name: String,
    /// The customer's site (from their record or account), if any.
    pub site: Option<String>,
    pub plot: Option<String>,
}

impl KnownCustomer {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name.trim(), self.last_name.trim())
            .trim()
            .to_string()
    }
}

/// Where the bridge finds the customer who writes (implemented over the customer read model).
#[async_trait]
pub trait CustomerDirectory: Send + Sync {
    /// The customer whose record holds `phone` (in any of the legacy spellings); `None` when no
    /// record does, or when several customers share it (the bridge then asks for the account).
    async fn by_phone(&self, phone: &PhoneNumber) -> Result<Option<KnownCustomer>, String>;
    /// The customer holding `account`.
    async fn by_account(&self, account: &AccountNumber) -> Result<Option<KnownCustomer>, String>;
    /// The customer with id `customer_id` (one the conversation was linked to before).
    async fn by_id(&self, customer_id: i64) -> Result<Option<KnownCustomer>, String>;
}

aggregate_by_decide!(
    Conversation,
    CONVERSATION,
    ConversationCommand,
    ConversationEvent,
    ConversationError
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::SiteCode;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap() + Duration::minutes(minute)
    }

    fn receive(id: &str, minute: i64) -> ConversationCommand {
        ConversationCommand::Receive {
            message_id: id.into(),
            text: Some("Ha ke na motlakase".into()),
            media: None,
            profile_name: Some("Mpho".into()),
            sent_at: at(minute),
        }
    }

    fn run(c: &mut Conversation, command: ConversationCommand) -> Vec<ConversationEvent> {
        let events = c.decide(command).unwrap();
        for event in events.clone() {
            c.apply_event(event);
        }
        events
    }

    fn ticket() -> TicketNumber {
        TicketNumber::new(&SiteCode::parse("MAK").unwrap(), 2026, 65).unwrap()
    }

    #[test]
    fn a_redelivered_message_changes_nothing() {
        let mut c = Conversation::default();
        assert_eq!(run(&mut c, receive("wamid.1", 0)).len(), 1);
        assert!(run(&mut c, receive("wamid.1", 0)).is_empty());
        assert_eq!(c.recent_message_ids, vec!["wamid.1".to_string()]);
    }

    #[test]
    fn messages_within_the_window_after_a_ticket_are_follow_ups_and_later_ones_are_not() {
        let mut c = Conversation::default();
        run(&mut c, receive("wamid.1", 0));
        assert_eq!(c.follow_up_ticket(at(1), DEFAULT_FOLLOW_UP_WINDOW), None);
        run(&mut c, ConversationCommand::LinkTicket { number: ticket() });
        assert_eq!(
            c.follow_up_ticket(at(29), DEFAULT_FOLLOW_UP_WINDOW),
            Some(&ticket())
        );
        // A follow-up at minute 20 keeps the ticket current for 30 minutes more.
        run(&mut c, receive("wamid.2", 20));
        assert_eq!(
            c.follow_up_ticket(at(45), DEFAULT_FOLLOW_UP_WINDOW),
            Some(&ticket())
        );
        assert_eq!(c.follow_up_ticket(at(51), DEFAULT_FOLLOW_UP_WINDOW), None);
        assert_eq!(
            c.follow_up_ticket(at(51), Duration::hours(2)),
            Some(&ticket())
        );
    }

    #[test]
    fn an_out_of_order_message_does_not_move_the_service_window_back() {
        let mut c = Conversation::default();
        assert!(!c.within_service_window(at(0)));
        run(&mut c, receive("wamid.2", 60));
        run(&mut c, receive("wamid.1", 0));
        assert_eq!(c.last_inbound_at, Some(at(60)));
        assert!(c.within_service_window(at(60 + 23 * 60)));
        assert!(!c.within_service_window(at(60 + 24 * 60)));
    }

    #[test]
    fn a_reply_is_sent_once_queued_and_its_statuses_are_kept_in_any_order() {
        let mut c = Conversation::default();
        assert_eq!(
            c.decide(ConversationCommand::RecordSent {
                reply_id: "r1".into(),
                wamid: "wamid.out".into()
            }),
            Err(ConversationError::UnknownReply("r1".into()))
        );
        run(
            &mut c,
            ConversationCommand::QueueReply {
                reply_id: "r1".into(),
                text: "Re amohetse molaetsa oa hao.".into(),
                kind: ReplyKind::Text,
                at: at(1),
            },
        );
        assert_eq!(c.unsent_replies, vec!["r1".to_string()]);
        run(
            &mut c,
            ConversationCommand::RecordSent {
                reply_id: "r1".into(),
                wamid: "wamid.out".into(),
            },
        );
        assert!(c.unsent_replies.is_empty());
        let status = |s: &str| ConversationCommand::RecordStatus {
            wamid: "wamid.out".into(),
            status: s.into(),
            at: at(2),
        };
        // Read came before delivered: both are recorded, read stays the status.
        assert_eq!(run(&mut c, status("read")).len(), 1);
        assert_eq!(run(&mut c, status("delivered")).len(), 1);
        assert!(run(&mut c, status("delivered")).is_empty());
        assert_eq!(
            c.deliveries,
            vec![ReplyDelivery {
                wamid: "wamid.out".into(),
                status: "read".into(),
                reported: vec!["read".into(), "delivered".into()],
            }]
        );
        run(&mut c, status("failed"));
        assert_eq!(c.deliveries[0].status, "failed");
    }

    #[test]
    fn a_message_is_answered_once_its_reply_is_queued_and_queueing_or_linking_again_changes_nothing(
    ) {
        let mut c = Conversation::default();
        run(&mut c, receive("wamid.1", 0));
        assert!(!c.answered("wamid.1"));
        assert_eq!(
            run(&mut c, ConversationCommand::LinkTicket { number: ticket() }).len(),
            1
        );
        assert!(run(&mut c, ConversationCommand::LinkTicket { number: ticket() }).is_empty());
        let reply = ConversationCommand::QueueReply {
            reply_id: reply_id_for("wamid.1"),
            text: "Re amohetse molaetsa oa hao.".into(),
            kind: ReplyKind::Text,
            at: at(1),
        };
        assert_eq!(run(&mut c, reply.clone()).len(), 1);
        assert!(c.answered("wamid.1"));
        assert!(run(&mut c, reply).is_empty());
        assert_eq!(
            c.recent_exchanges,
            vec![
                RecentExchange {
                    from_customer: true,
                    text: "Ha ke na motlakase".into()
                },
                RecentExchange {
                    from_customer: false,
                    text: "Re amohetse molaetsa oa hao.".into()
                },
            ]
        );
    }

    #[test]
    fn identifying_the_customer_ends_the_question_and_repeating_it_changes_nothing() {
        let mut c = Conversation::default();
        run(&mut c, ConversationCommand::AskForAccount);
        assert!(c.asked_for_account);
        let identify = ConversationCommand::Identify {
            customer_id: 12,
            how: Identification::Account,
        };
        assert_eq!(run(&mut c, identify.clone()).len(), 1);
        assert!(!c.asked_for_account);
        assert_eq!(c.customer_id, Some(12));
        assert!(run(&mut c, identify).is_empty());
    }

    #[test]
    fn a_blank_text_is_kept_as_no_text_and_a_message_needs_an_id() {
        let c = Conversation::default();
        let events = c
            .decide(ConversationCommand::Receive {
                message_id: "wamid.9".into(),
                text: Some("  ".into()),
                media: Some(MediaRef {
                    kind: "image".into(),
                    media_id: "m1".into(),
                    mime_type: Some("image/jpeg".into()),
                }),
                profile_name: None,
                sent_at: at(0),
            })
            .unwrap();
        assert!(matches!(
            &events[..],
            [ConversationEvent::MessageReceived {
                text: None,
                media: Some(_),
                ..
            }]
        ));
        assert_eq!(
            c.decide(ConversationCommand::Receive {
                message_id: " ".into(),
                text: None,
                media: None,
                profile_name: None,
                sent_at: at(0),
            }),
            Err(ConversationError::Empty {
                field: "message_id"
            })
        );
    }
}
