//! What the bridge queues in its outbox (`domain::outbox`) and how each item is named, so the
//! worker that queues an item and the sender that sends it agree on its shape.
//!
//! Every key is derived from what caused the item (a message id, a ticket number), never drawn
//! at random: a worker that handles a message again after a crash queues the same keys, which
//! the outbox ignores.

use chrono::{DateTime, Duration, Utc};
use domain::outbox::{NewOutboxItem, OutboxChannel};
use domain::ticket::TicketNumber;
use serde::{Deserialize, Serialize};

use crate::ugridplan;

/// An item for the Cloud API sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WhatsappItem {
    /// The reply to a customer's message, free text within the service window and the reply
    /// template after it (decided when it is sent).
    Reply {
        /// The customer's phone, E.164 (the conversation's id).
        phone: String,
        /// The conversation's id of the reply (`conversation::reply_id_for`).
        reply_id: String,
        text: String,
    },
    /// A reply sent again as the reply template because the Cloud API reported, after taking
    /// it, that the free text came outside the customer-service window (error 131047).
    TemplateAgain {
        phone: String,
        reply_id: String,
        text: String,
        /// The message id of the free text that failed.
        failed_wamid: String,
    },
    /// A notice to one member of the operations team that a ticket was opened, through the
    /// operations template (the Cloud API cannot post to a group).
    OpsNotice {
        /// The team member's phone, E.164.
        to: String,
        ticket: String,
        site: String,
        priority: String,
        customer: String,
        phone: String,
        summary: String,
    },
}

/// An item for the uGridPlan forwarder. Its recipient is the ticket number, so a ticket's
/// comments go after the ticket itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UgridplanItem {
    /// Open the ticket in uGridPlan and record its id on ccare's ticket.
    Ticket {
        number: TicketNumber,
        ticket: ugridplan::NewTicket,
    },
    /// Add a follow-up to the ticket's uGridPlan twin.
    Comment {
        number: TicketNumber,
        user: String,
        text: String,
    },
}

impl WhatsappItem {
    fn recipient(&self) -> &str {
        match self {
            WhatsappItem::Reply { phone, .. } | WhatsappItem::TemplateAgain { phone, .. } => phone,
            WhatsappItem::OpsNotice { to, .. } => to,
        }
    }

    fn key(&self) -> String {
        match self {
            WhatsappItem::Reply { reply_id, .. } => format!("whatsapp:{reply_id}"),
            WhatsappItem::TemplateAgain { failed_wamid, .. } => {
                format!("whatsapp:template-again:{failed_wamid}")
            }
            WhatsappItem::OpsNotice { to, ticket, .. } => format!("whatsapp:ops:{ticket}:{to}"),
        }
    }

    /// The outbox item, not before `now` and at least `spacing` after the recipient's previous
    /// message (the per-customer rate limit).
    pub fn queued(&self, now: DateTime<Utc>, spacing: Duration) -> NewOutboxItem {
        NewOutboxItem {
            channel: OutboxChannel::Whatsapp,
            key: self.key(),
            recipient: self.recipient().to_string(),
            payload: serde_json::to_string(self).expect("outbox items serialise"),
            not_before: now,
            spacing,
        }
    }
}

impl UgridplanItem {
    fn number(&self) -> &TicketNumber {
        match self {
            UgridplanItem::Ticket { number, .. } | UgridplanItem::Comment { number, .. } => number,
        }
    }

    /// The outbox item; `cause` names what made it (the message a comment came from).
    pub fn queued(&self, now: DateTime<Utc>, cause: &str) -> NewOutboxItem {
        let key = match self {
            UgridplanItem::Ticket { number, .. } => format!("ugridplan:ticket:{number}"),
            UgridplanItem::Comment { number, .. } => format!("ugridplan:comment:{number}:{cause}"),
        };
        NewOutboxItem {
            channel: OutboxChannel::Ugridplan,
            key,
            recipient: self.number().to_string(),
            payload: serde_json::to_string(self).expect("outbox items serialise"),
            not_before: now,
            spacing: Duration::zero(),
        }
    }
}

/// How long to wait before attempt `attempts + 1` of an item that failed `attempts` times: 10 s,
/// doubling up to 30 minutes, and never less than the far side asked for.
pub fn backoff(attempts: i32, asked: Option<std::time::Duration>) -> Duration {
    let doubling = attempts.clamp(0, 10) as u32;
    let delay = Duration::seconds(10 * 2_i64.pow(doubling)).min(Duration::minutes(30));
    let asked = asked
        .and_then(|asked| Duration::from_std(asked).ok())
        .unwrap_or_else(Duration::zero);
    delay.max(asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::site::SiteCode;

    #[test]
    fn the_backoff_doubles_from_ten_seconds_to_half_an_hour_and_respects_retry_after() {
        let secs = |attempts| backoff(attempts, None).num_seconds();
        assert_eq!([secs(0), secs(1), secs(2)], [10, 20, 40]);
        assert_eq!(secs(8), 1800);
        assert_eq!(secs(50), 1800);
        assert_eq!(
            backoff(0, Some(std::time::Duration::from_secs(120))).num_seconds(),
            120
        );
    }

    #[test]
    fn items_are_keyed_by_their_cause_so_queueing_them_again_is_recognised() {
        let now = Utc::now();
        let reply = WhatsappItem::Reply {
            phone: "+26658123456".into(),
            reply_id: "re:wamid.1".into(),
            text: "Lumela".into(),
        };
        let queued = reply.queued(now, Duration::seconds(5));
        assert_eq!(queued.key, "whatsapp:re:wamid.1");
        assert_eq!(queued.recipient, "+26658123456");
        assert_eq!(queued.spacing, Duration::seconds(5));
        let back: WhatsappItem = serde_json::from_str(&queued.payload).unwrap();
        assert_eq!(back, reply);

        let number = TicketNumber::new(&SiteCode::parse("MAK").unwrap(), 2026, 65).unwrap();
        let comment = UgridplanItem::Comment {
            number: number.clone(),
            user: "WhatsApp:+26658123456".into(),
            text: "Still off".into(),
        };
        let queued = comment.queued(now, "wamid.2");
        assert_eq!(queued.key, "ugridplan:comment:MAK-2026-0065:wamid.2");
        assert_eq!(queued.recipient, "MAK-2026-0065");
    }
}
