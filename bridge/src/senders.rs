//! The senders that empty the bridge's outbox: [`ReplySender`] through the WhatsApp Cloud API,
//! [`UgridplanForwarder`] to uGridPlan. Each takes what is due, sends it, and records the outcome:
//! done (with the far side's id), tried again later with back-off (the far side may recover), or
//! given up (the far side refused it; kept with the reason for staff). Items are in PostgreSQL,
//! so an outage or a restart delays them and loses none.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Utc;
use domain::command::{CommandError, ConversationCommands, TicketCommands};
use domain::conversation::ConversationCommand;
use domain::outbox::{Outbox, OutboxChannel, OutboxItem};
use domain::phone::PhoneNumber;
use domain::ticket::{TicketCommand, TicketError};
use futures::StreamExt;

use crate::outbox_items::{backoff, UgridplanItem, WhatsappItem};
use crate::ugridplan::UgridplanClient;
use crate::whatsapp::{CloudApiClient, Outbound, SendError};
use crate::worker::bridge_context;

/// How many due items one pass takes.
const BATCH: u32 = 50;

/// The approved templates used outside the customer-service window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// Carries a reply after the 24-hour window: one body parameter, the reply's text.
    pub reply: String,
    /// Tells the operations team of a new ticket: six body parameters (ticket, site, priority,
    /// customer, phone, summary).
    pub ops_notice: String,
    /// The templates' language code, e.g. `en`.
    pub language: String,
}

/// The template names used when none are configured.
pub const DEFAULT_REPLY_TEMPLATE: &str = "ccare_reply";
pub const DEFAULT_OPS_TEMPLATE: &str = "ccare_ops_ticket";
pub const DEFAULT_TEMPLATE_LANGUAGE: &str = "en";

impl Default for Templates {
    fn default() -> Self {
        Templates {
            reply: DEFAULT_REPLY_TEMPLATE.to_string(),
            ops_notice: DEFAULT_OPS_TEMPLATE.to_string(),
            language: DEFAULT_TEMPLATE_LANGUAGE.to_string(),
        }
    }
}

/// What a pass of a sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub retried: usize,
    pub given_up: usize,
}

enum Outcome {
    Done(String),
    Retry(Option<StdDuration>, String),
    GiveUp(String),
}

async fn settle(outbox: &dyn Outbox, item: &OutboxItem, outcome: Outcome, tally: &mut Sent) {
    let recorded = match outcome {
        Outcome::Done(id) => {
            tally.sent += 1;
            outbox.complete(item.id, &id).await
        }
        Outcome::Retry(asked, reason) => {
            tally.retried += 1;
            let at = Utc::now() + backoff(item.attempts, asked);
            tracing::warn!(item = %item.key, attempts = item.attempts + 1, retry_at = %at, reason = %reason, "sending failed; will try again");
            outbox.retry(item.id, at, &reason).await
        }
        Outcome::GiveUp(reason) => {
            tally.given_up += 1;
            tracing::error!(item = %item.key, reason = %reason, "the far side refused an outbox item; given up");
            outbox.give_up(item.id, &reason).await
        }
    };
    if let Err(e) = recorded {
        // The item stays as it was and is taken again: sending twice is the lesser harm.
        tracing::warn!(item = %item.key, error = %e, "could not record an outbox item's outcome");
    }
}

/// How many items (each to a different recipient) are sent at the same time.
const CONCURRENT_SENDS: usize = 8;

/// Takes the items of `channel` due now, sends them with `send` (several recipients at a time;
/// each recipient has one item due at most), and records the outcomes.
async fn drain<T, F, Fut>(
    outbox: &dyn Outbox,
    channel: OutboxChannel,
    send: F,
) -> Result<Sent, String>
where
    T: serde::de::DeserializeOwned,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let due = outbox.due(channel, Utc::now(), BATCH).await?;
    let outcomes: Vec<(OutboxItem, Outcome)> = futures::stream::iter(due)
        .map(|item| {
            let decoded = serde_json::from_str::<T>(&item.payload);
            let send = &send;
            async move {
                let outcome = match decoded {
                    Ok(payload) => send(payload).await,
                    Err(e) => Outcome::GiveUp(format!("the item cannot be read: {e}")),
                };
                (item, outcome)
            }
        })
        .buffer_unordered(CONCURRENT_SENDS)
        .collect()
        .await;
    let mut tally = Sent::default();
    for (item, outcome) in outcomes {
        settle(outbox, &item, outcome, &mut tally).await;
    }
    Ok(tally)
}

async fn run_passes<F, Fut>(
    poll: StdDuration,
    shutdown: impl std::future::Future<Output = ()>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Sent, String>>,
{
    tokio::pin!(shutdown);
    loop {
        let busy = match pass().await {
            Ok(sent) => sent.sent + sent.given_up > 0,
            Err(error) => {
                tracing::warn!(error = %error, "the outbox is unavailable; trying again");
                false
            }
        };
        // More may be due already: look again at once, unless it is time to stop.
        if busy {
            if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                return;
            }
            continue;
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Sends replies and operations notices through the Cloud API.
pub struct ReplySender {
    outbox: Arc<dyn Outbox>,
    conversations: Arc<dyn ConversationCommands>,
    client: CloudApiClient,
    templates: Templates,
}

impl ReplySender {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        conversations: Arc<dyn ConversationCommands>,
        client: CloudApiClient,
        templates: Templates,
    ) -> Self {
        ReplySender {
            outbox,
            conversations,
            client,
            templates,
        }
    }

    /// Sends what is due now.
    pub async fn send_due(&self) -> Result<Sent, String> {
        drain(
            self.outbox.as_ref(),
            OutboxChannel::Whatsapp,
            |item: WhatsappItem| async move { self.send(&item).await },
        )
        .await
    }

    /// Sends until `shutdown`, looking at the outbox every `poll`.
    pub async fn run(&self, poll: StdDuration, shutdown: impl std::future::Future<Output = ()>) {
        run_passes(poll, shutdown, || self.send_due()).await
    }

    async fn send(&self, item: &WhatsappItem) -> Outcome {
        match item {
            WhatsappItem::Reply {
                phone,
                reply_id,
                text,
            } => self.send_reply(phone, reply_id, text).await,
            WhatsappItem::TemplateAgain { phone, text, .. } => {
                outcome_of(self.client.send(&self.reply_template(phone, text)).await)
            }
            WhatsappItem::OpsNotice {
                to,
                ticket,
                site,
                priority,
                customer,
                phone,
                summary,
            } => {
                let message = Outbound::Template {
                    to: wa_id(to),
                    name: self.templates.ops_notice.clone(),
                    language: self.templates.language.clone(),
                    parameters: [ticket, site, priority, customer, phone, summary]
                        .into_iter()
                        .map(|p| template_parameter(p))
                        .collect(),
                };
                outcome_of(self.client.send(&message).await)
            }
        }
    }

    /// The reply template carrying `text`.
    fn reply_template(&self, phone: &str, text: &str) -> Outbound {
        Outbound::Template {
            to: wa_id(phone),
            name: self.templates.reply.clone(),
            language: self.templates.language.clone(),
            parameters: vec![template_parameter(text)],
        }
    }

    async fn send_reply(&self, phone: &str, reply_id: &str, text: &str) -> Outcome {
        let Ok(number) = PhoneNumber::parse(phone) else {
            return Outcome::GiveUp(format!("{phone:?} is not a phone number"));
        };
        let within_window = match self.conversations.load(&number).await {
            Ok(conversation) => conversation.within_service_window(Utc::now()),
            Err(e) => return Outcome::Retry(None, format!("the conversation cannot be read: {e}")),
        };
        let free_text = Outbound::Text {
            to: wa_id(phone),
            body: text.to_string(),
        };
        let template = self.reply_template(phone, text);
        let sent = if within_window {
            match self.client.send(&free_text).await {
                // The window closed between our look and Meta's: the template goes instead.
                Err(SendError::OutsideServiceWindow) => self.client.send(&template).await,
                other => other,
            }
        } else {
            self.client.send(&template).await
        };
        let outcome = outcome_of(sent);
        if let Outcome::Done(wamid) = &outcome {
            let record = ConversationCommand::RecordSent {
                reply_id: reply_id.to_string(),
                wamid: wamid.clone(),
            };
            if let Err(e) = self
                .conversations
                .execute(&number, record, &bridge_context())
                .await
            {
                tracing::warn!(reply = reply_id, error = %e, "a reply was sent but the conversation could not record it");
            }
        }
        outcome
    }
}

fn outcome_of(sent: Result<crate::whatsapp::SentMessage, SendError>) -> Outcome {
    match sent {
        Ok(sent) => Outcome::Done(sent.wamid),
        // Probably sent: sending again would duplicate it.
        Err(SendError::NoMessageId { status }) => {
            Outcome::Done(format!("(no message id, HTTP {status})"))
        }
        Err(SendError::Unavailable {
            retry_after,
            reason,
            ..
        }) => Outcome::Retry(retry_after, reason),
        Err(other) => Outcome::GiveUp(other.to_string()),
    }
}

/// The wa_id (digits, no `+`) of an E.164 number.
fn wa_id(phone: &str) -> String {
    phone.trim().trim_start_matches('+').to_string()
}

/// A template body parameter: Meta refuses new lines, tabs and more than four spaces in a row
/// there, so the lines of a text are joined with " | ".
pub fn template_parameter(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Forwards tickets and follow-up comments to uGridPlan.
pub struct UgridplanForwarder {
    outbox: Arc<dyn Outbox>,
    tickets: Arc<dyn TicketCommands>,
    client: UgridplanClient,
}

impl UgridplanForwarder {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        tickets: Arc<dyn TicketCommands>,
        client: UgridplanClient,
    ) -> Self {
        UgridplanForwarder {
            outbox,
            tickets,
            client,
        }
    }

    /// Forwards what is due now.
    pub async fn forward_due(&self) -> Result<Sent, String> {
        drain(
            self.outbox.as_ref(),
            OutboxChannel::Ugridplan,
            |item: UgridplanItem| async move { self.forward(&item).await },
        )
        .await
    }

    /// Forwards until `shutdown`, looking at the outbox every `poll`.
    pub async fn run(&self, poll: StdDuration, shutdown: impl std::future::Future<Output = ()>) {
        run_passes(poll, shutdown, || self.forward_due()).await
    }

    async fn forward(&self, item: &UgridplanItem) -> Outcome {
        match item {
            UgridplanItem::Ticket { number, ticket } => {
                let created = match self.client.create_ticket(ticket).await {
                    Ok(created) => created,
                    Err(e) if e.is_retryable() => {
                        return Outcome::Retry(e.retry_after(), e.to_string())
                    }
                    Err(e) => return Outcome::GiveUp(e.to_string()),
                };
                let record = TicketCommand::RecordForwarded {
                    ugridplan_id: created.ticket_id.clone(),
                };
                match self
                    .tickets
                    .execute(number, record, &bridge_context())
                    .await
                {
                    Ok(_) => Outcome::Done(created.ticket_id),
                    Err(CommandError::Rejected(TicketError::ForwardedAs(known))) => {
                        Outcome::Done(known)
                    }
                    // uGridPlan has the ticket; recording its id is retried with the call, which
                    // may open it twice there, but never loses it.
                    Err(e) => Outcome::Retry(
                        None,
                        format!(
                            "uGridPlan opened {} but ccare could not record it: {e}",
                            created.ticket_id
                        ),
                    ),
                }
            }
            UgridplanItem::Comment { number, user, text } => {
                let ticket = match self.tickets.load(number).await {
                    Ok(ticket) => ticket,
                    Err(e) => return Outcome::Retry(None, e.to_string()),
                };
                // The ticket's own item went first; without an id it was given up.
                let Some(ugridplan_id) = ticket.ugridplan_id else {
                    return Outcome::GiveUp(format!(
                        "ticket {number} was never forwarded to uGridPlan"
                    ));
                };
                match self.client.add_comment(&ugridplan_id, user, text).await {
                    Ok(()) => Outcome::Done(ugridplan_id),
                    Err(e) if e.is_retryable() => Outcome::Retry(e.retry_after(), e.to_string()),
                    Err(e) => Outcome::GiveUp(e.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_parameter_has_no_new_lines_or_runs_of_spaces() {
        assert_eq!(
            template_parameter("Lumela!\n\nHello!   How are you?\t"),
            "Lumela! | Hello! How are you?"
        );
    }
}
