//! The worker that processes the webhook inbox: for each stored delivery, every message and
//! status update in it, in order, through the conversation and ticket aggregates; what is to be
//! sent goes to the outbox ([`crate::outbox_items`]) for the senders ([`crate::senders`]).
//!
//! Handling a message is a sequence of commands, each of which changes nothing when it is given
//! again (the message is received once, the ticket number is allocated once per message, the
//! reply id is the message's own). So a worker that dies half-way handles the delivery again
//! from the start and ends where it would have ended, with nothing twice. A message counts as
//! handled once its reply is queued in its conversation, which is the last step.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::StreamExt;

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Africa::Maseru;
use domain::command::{CommandContext, CommandError, ConversationCommands, TicketCommands};
use domain::conversation::{
    reply_id_for, Conversation, ConversationCommand, CustomerDirectory, Identification,
    KnownCustomer, MediaRef, ReplyKind, DEFAULT_FOLLOW_UP_WINDOW,
};
use domain::envelope::{Actor, Channel};
use domain::inbox::{PendingDelivery, WebhookInbox};
use domain::outbox::Outbox;
use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use domain::ticket::{NewTicket, TicketChannel, TicketCommand, TicketError, TicketNumber};

use crate::cloud_api::{self, Content, InboundItem, InboundMessage, StatusUpdate};
use crate::flow::{self, Plan, Route};
use crate::llm::{self, CustomerContext, Decision, Exchange, LlmClient};
use crate::outbox_items::{UgridplanItem, WhatsappItem};
use crate::triage;
use crate::ugridplan::{self, Reporter};

/// How many times a delivery is tried before the worker leaves it (in the inbox, with its last
/// error, to be replayed once the cause is fixed).
pub const MAX_DELIVERY_ATTEMPTS: i32 = 10;

/// How many deliveries the worker reads from the inbox at a time.
const PAGE: u32 = 200;

/// How many senders' deliveries are processed at the same time.
const CONCURRENT_SENDERS: usize = 8;

/// The default least time between two replies to one customer.
pub const DEFAULT_REPLY_SPACING: Duration = Duration::seconds(3);

/// How the worker behaves; every field has a default fit for production.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// A message within this time of the last exchange about the open ticket is a comment on it.
    pub follow_up_window: Duration,
    /// The per-customer rate limit: replies to one phone are queued at least this far apart.
    pub reply_spacing: Duration,
    /// Who in the operations team is told of each new ticket (E.164).
    pub ops_recipients: Vec<PhoneNumber>,
    /// Whether tickets and follow-ups are forwarded to uGridPlan (it is configured).
    pub forward_to_ugridplan: bool,
    /// How often the inbox is looked at.
    pub poll_interval: StdDuration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            follow_up_window: DEFAULT_FOLLOW_UP_WINDOW,
            reply_spacing: DEFAULT_REPLY_SPACING,
            ops_recipients: Vec::new(),
            forward_to_ugridplan: false,
            poll_interval: StdDuration::from_millis(500),
        }
    }
}

/// What the worker works with: ports implemented by the adapters and projections.
#[derive(Clone)]
pub struct WorkerPorts {
    pub inbox: Arc<dyn WebhookInbox>,
    pub customers: Arc<dyn CustomerDirectory>,
    pub conversations: Arc<dyn ConversationCommands>,
    pub tickets: Arc<dyn TicketCommands>,
    pub outbox: Arc<dyn Outbox>,
}

/// Why a message or delivery could not be handled now (it is tried again).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the {what} is unavailable: {reason}")]
    Unavailable { what: &'static str, reason: String },
    #[error("the {what} refused a command: {reason}")]
    Refused { what: &'static str, reason: String },
}

fn unavailable(what: &'static str) -> impl FnOnce(String) -> WorkerError {
    move |reason| WorkerError::Unavailable { what, reason }
}

fn command_failed<E: std::fmt::Display>(
    what: &'static str,
) -> impl FnOnce(CommandError<E>) -> WorkerError {
    move |error| match error {
        CommandError::Rejected(e) => WorkerError::Refused {
            what,
            reason: e.to_string(),
        },
        other => WorkerError::Unavailable {
            what,
            reason: other.to_string(),
        },
    }
}

/// What one pass over the inbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub deliveries: usize,
    pub failed: usize,
}

/// The inbox worker.
pub struct InboxWorker {
    ports: WorkerPorts,
    llm: Option<LlmClient>,
    settings: WorkerSettings,
}

impl InboxWorker {
    pub fn new(ports: WorkerPorts, llm: Option<LlmClient>, settings: WorkerSettings) -> Self {
        InboxWorker {
            ports,
            llm,
            settings,
        }
    }

    /// Processes every delivery waiting in the inbox, oldest first, several senders at a time:
    /// one sender's deliveries in order, one after the other. A delivery that fails is recorded
    /// as failed and tried again by a later pass; its sender's later deliveries wait with it.
    pub async fn process_pending(&self) -> Result<Pass, WorkerError> {
        let mut pass = Pass::default();
        // Senders with a delivery that failed in this pass: the rest of theirs waits.
        let mut held: HashSet<String> = HashSet::new();
        let mut after = 0;
        loop {
            let page = self
                .ports
                .inbox
                .next_unprocessed(after, PAGE, MAX_DELIVERY_ATTEMPTS)
                .await
                .map_err(unavailable("webhook inbox"))?;
            let Some(last) = page.last() else {
                return Ok(pass);
            };
            after = last.id;
            let mut senders: Vec<(String, Vec<Received>)> = Vec::new();
            for delivery in page {
                let delivery = Received::read(delivery);
                let sender = delivery.sender();
                if held.contains(&sender) {
                    continue;
                }
                match senders.iter_mut().find(|(s, _)| *s == sender) {
                    Some((_, deliveries)) => deliveries.push(delivery),
                    None => senders.push((sender, vec![delivery])),
                }
            }
            let outcomes: Vec<(String, usize, Option<WorkerError>)> =
                futures::stream::iter(senders)
                    .map(|(sender, deliveries)| async move {
                        let (done, failure) = self.process_in_order(deliveries).await;
                        (sender, done, failure)
                    })
                    .buffer_unordered(CONCURRENT_SENDERS)
                    .collect()
                    .await;
            for (sender, done, failure) in outcomes {
                pass.deliveries += done;
                if let Some(error) = failure {
                    pass.deliveries += 1;
                    pass.failed += 1;
                    held.insert(sender);
                    // Only an unreachable inbox ends the pass; a failed delivery waits.
                    if let WorkerError::Unavailable {
                        what: "webhook inbox",
                        ..
                    } = error
                    {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// Processes one sender's deliveries in order, stopping at the first that fails (recorded as
    /// failed). Returns how many were processed, and the failure.
    async fn process_in_order(&self, deliveries: Vec<Received>) -> (usize, Option<WorkerError>) {
        let mut done = 0;
        for Received { delivery, items } in deliveries {
            let outcome = match self.process(&delivery, items).await {
                Ok(()) => self
                    .ports
                    .inbox
                    .mark_processed(delivery.id)
                    .await
                    .map_err(unavailable("webhook inbox")),
                Err(error) => Err(error),
            };
            let Err(error) = outcome else {
                done += 1;
                continue;
            };
            let attempts = delivery.attempts + 1;
            if attempts >= MAX_DELIVERY_ATTEMPTS {
                tracing::error!(delivery = delivery.id, attempts, error = %error, "a webhook delivery failed too often; it stays in the inbox, unprocessed, for a replay");
            } else {
                tracing::warn!(delivery = delivery.id, attempts, error = %error, "processing a webhook delivery failed; it will be tried again");
            }
            if let Err(e) = self
                .ports
                .inbox
                .mark_failed(delivery.id, &error.to_string())
                .await
            {
                return (done, Some(unavailable("webhook inbox")(e)));
            }
            return (done, Some(error));
        }
        (done, None)
    }

    /// Runs passes until `shutdown`, every poll interval, backing off after failures.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut delay = self.settings.poll_interval;
        loop {
            match self.process_pending().await {
                Ok(pass) if pass.failed == 0 => delay = self.settings.poll_interval,
                Ok(_) => delay = (delay * 2).min(StdDuration::from_secs(60)),
                Err(error) => {
                    tracing::warn!(error = %error, "the bridge worker cannot reach its inbox; trying again");
                    delay = (delay * 2).min(StdDuration::from_secs(60));
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn process(
        &self,
        delivery: &PendingDelivery,
        items: Vec<InboundItem>,
    ) -> Result<(), WorkerError> {
        for item in items {
            match item {
                // Meta sent it again: the delivery that carried it first acts on it.
                InboundItem::Message(message)
                    if !delivery.first_carried.contains(&message.message_id) => {}
                InboundItem::Message(message) => {
                    self.handle_message(&message, delivery.received_at).await?
                }
                InboundItem::Status(status) => self.handle_status(&status).await?,
            }
        }
        Ok(())
    }

    async fn handle_status(&self, status: &StatusUpdate) -> Result<(), WorkerError> {
        let Some(phone) = status.recipient.as_deref().and_then(wa_phone) else {
            tracing::warn!(wamid = %status.message_id, "a status update without a recipient phone; ignored");
            return Ok(());
        };
        let name = match &status.status {
            cloud_api::DeliveryStatus::Sent => "sent",
            cloud_api::DeliveryStatus::Delivered => "delivered",
            cloud_api::DeliveryStatus::Read => "read",
            cloud_api::DeliveryStatus::Failed => "failed",
            cloud_api::DeliveryStatus::Other(other) => other.as_str(),
        };
        if name.is_empty() {
            return Ok(());
        }
        for error in &status.errors {
            tracing::warn!(wamid = %status.message_id, code = ?error.code, title = %error.title, "the Cloud API reports a failed message");
        }
        if status.errors.iter().any(|e| e.is_outside_service_window()) {
            self.send_as_template(&status.message_id).await?;
        }
        self.converse(
            &phone,
            ConversationCommand::RecordStatus {
                wamid: status.message_id.clone(),
                status: name.to_string(),
                at: status.at.unwrap_or_else(Utc::now),
            },
        )
        .await
    }

    /// Queues the reply that went out as `wamid` again, as the reply template: the Cloud API took
    /// the free text and reported later that the customer-service window had closed.
    async fn send_as_template(&self, wamid: &str) -> Result<(), WorkerError> {
        let sent = self
            .ports
            .outbox
            .sent_as(domain::outbox::OutboxChannel::Whatsapp, wamid)
            .await
            .map_err(unavailable("outbox"))?;
        let Some(WhatsappItem::Reply {
            phone,
            reply_id,
            text,
        }) = sent.and_then(|item| serde_json::from_str(&item.payload).ok())
        else {
            // Not a free-text reply of ours (a template, an operations notice): nothing to redo.
            return Ok(());
        };
        let again = WhatsappItem::TemplateAgain {
            phone,
            reply_id,
            text,
            failed_wamid: wamid.to_string(),
        };
        self.enqueue(again.queued(Utc::now(), Duration::zero()))
            .await
    }

    async fn handle_message(
        &self,
        message: &InboundMessage,
        received_at: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let Some(phone) = wa_phone(&message.from) else {
            tracing::warn!(wamid = %message.message_id, "a message from a wa_id that is no phone number; ignored");
            return Ok(());
        };
        let conversation = self
            .ports
            .conversations
            .load(&phone)
            .await
            .map_err(command_failed("conversation store"))?;
        if conversation.answered(&message.message_id) {
            return Ok(());
        }
        let sent_at = message.sent_at.unwrap_or(received_at);
        let words = message.content.words().map(str::trim).map(str::to_string);
        let mut customer = self.customer_of(&phone, &conversation).await?;
        let route = flow::route(
            &conversation,
            customer.as_ref(),
            words.as_deref(),
            sent_at,
            self.settings.follow_up_window,
        );
        self.converse(
            &phone,
            ConversationCommand::Receive {
                message_id: message.message_id.clone(),
                text: words.clone(),
                media: media_of(&message.content),
                profile_name: message.profile_name.clone(),
                sent_at,
            },
        )
        .await?;
        if let Some(known) = &customer {
            if conversation.customer_id != Some(known.customer_id) {
                self.identify(&phone, known, Identification::Phone).await?;
            }
        }
        // A sender we do not know who names their village: their tickets go to its site.
        let village = match (&customer, words.as_deref()) {
            (None, Some(words)) => flow::site_in(words),
            _ => None,
        };
        if let Some(village) = village {
            let site = village.code.to_string();
            self.converse(&phone, ConversationCommand::NameSite { site })
                .await?;
        }
        let case = Case {
            phone: &phone,
            message,
            words: words.as_deref().unwrap_or_default(),
            history: &conversation,
            named_site: village
                .map(|v| v.code.to_string())
                .or_else(|| conversation.named_site.clone()),
            village_answer: village
                .filter(|_| conversation.asked_for_account)
                .map(|v| v.name),
        };
        let reply = match route {
            Route::MediaOnly => triage::media_only_reply(),
            Route::FollowUp { ticket } => {
                match self.follow_up(&case, customer.as_ref(), &ticket).await? {
                    Some(reply) => reply,
                    // Staff closed the ticket meanwhile: the message is a new matter.
                    None => self.triage(&case, customer.as_ref()).await?,
                }
            }
            Route::Identify { account } => {
                match self.lookup(self.ports.customers.by_account(&account).await)? {
                    Some(found) => {
                        self.identify(&phone, &found, Identification::Account)
                            .await?;
                        customer = Some(found);
                        triage::account_found_reply(
                            &customer.as_ref().expect("just set").full_name(),
                        )
                    }
                    None => triage::account_not_found_reply(account.as_ref()),
                }
            }
            Route::Triage => self.triage(&case, customer.as_ref()).await?,
        };
        self.queue_reply(&phone, &message.message_id, reply).await
    }

    /// The customer behind `phone`: by the phone on their record, else the one the conversation
    /// was linked to (by an account number they gave).
    async fn customer_of(
        &self,
        phone: &PhoneNumber,
        conversation: &Conversation,
    ) -> Result<Option<KnownCustomer>, WorkerError> {
        if let Some(found) = self.lookup(self.ports.customers.by_phone(phone).await)? {
            return Ok(Some(found));
        }
        match conversation.customer_id {
            Some(id) => self.lookup(self.ports.customers.by_id(id).await),
            None => Ok(None),
        }
    }

    fn lookup(
        &self,
        found: Result<Option<KnownCustomer>, String>,
    ) -> Result<Option<KnownCustomer>, WorkerError> {
        found.map_err(unavailable("customer read model"))
    }

    async fn identify(
        &self,
        phone: &PhoneNumber,
        customer: &KnownCustomer,
        how: Identification,
    ) -> Result<(), WorkerError> {
        self.converse(
            phone,
            ConversationCommand::Identify {
                customer_id: customer.customer_id,
                how,
            },
        )
        .await
    }

    /// Adds a follow-up to `ticket`; `None` when the ticket no longer takes comments.
    async fn follow_up(
        &self,
        case: &Case<'_>,
        customer: Option<&KnownCustomer>,
        ticket: &TicketNumber,
    ) -> Result<Option<String>, WorkerError> {
        let text = flow::follow_up_comment(
            customer,
            case.message.profile_name.as_deref(),
            case.phone.as_str(),
            case.words,
        );
        let comment = TicketCommand::Comment {
            author: format!("WhatsApp:{}", case.phone.as_str()),
            text,
            channel: TicketChannel::Whatsapp,
        };
        match self
            .ports
            .tickets
            .execute(ticket, comment, &bridge_context())
            .await
        {
            Ok(_) => {}
            Err(CommandError::Rejected(TicketError::NotActive(_) | TicketError::NotFound)) => {
                return Ok(None)
            }
            Err(error) => return Err(command_failed("ticket store")(error)),
        }
        if self.settings.forward_to_ugridplan {
            let name = customer
                .map(KnownCustomer::full_name)
                .or_else(|| case.message.profile_name.clone())
                .unwrap_or_default();
            let comment = ugridplan::FollowUpComment::new(&name, case.phone.as_str(), case.words);
            let item = UgridplanItem::Comment {
                number: ticket.clone(),
                user: comment.user,
                text: comment.text,
            };
            self.enqueue(item.queued(Utc::now(), &case.message.message_id))
                .await?;
        }
        Ok(Some(triage::ticket_updated_reply(&ticket.to_string())))
    }

    /// Triages the message and carries out the plan; returns the reply.
    async fn triage(
        &self,
        case: &Case<'_>,
        customer: Option<&KnownCustomer>,
    ) -> Result<String, WorkerError> {
        let context_of_customer = customer.map(|c| CustomerContext {
            name: Some(c.full_name()),
            customer_id: Some(c.customer_id.to_string()),
            site: c.site.clone(),
            plot: c.plot.clone(),
        });
        // Only this conversation's own texts: nothing of another customer's enters the prompt.
        let history: Vec<Exchange> = case
            .history
            .recent_exchanges
            .iter()
            .map(|e| Exchange {
                from_customer: e.from_customer,
                text: e.text.clone(),
            })
            .collect();
        let decision = llm::decide(
            self.llm.as_ref(),
            case.words,
            context_of_customer.as_ref(),
            &history,
        )
        .await;
        match flow::plan(&decision, customer, case.words) {
            Plan::OpenTicket {
                mut draft,
                ask_for_account,
            } => {
                if customer.is_none() {
                    if let Some(site) = &case.named_site {
                        draft.site = site.clone();
                    }
                }
                let ask_for_account = ask_for_account && case.named_site.is_none();
                let number = self.open_ticket(case, customer, &decision, &draft).await?;
                if ask_for_account {
                    self.converse(case.phone, ConversationCommand::AskForAccount)
                        .await?;
                }
                Ok(flow::ticket_reply(&decision, &number, ask_for_account))
            }
            // The answer to our question was the village: acknowledge it.
            Plan::Reply { .. } if case.village_answer.is_some() => Ok(triage::village_noted_reply(
                case.village_answer.unwrap_or_default(),
            )),
            Plan::Reply {
                text,
                ask_for_account,
            } => {
                let ask_for_account = ask_for_account && case.named_site.is_none();
                if ask_for_account {
                    self.converse(case.phone, ConversationCommand::AskForAccount)
                        .await?;
                }
                Ok(flow::reply_text(&text, ask_for_account))
            }
        }
    }

    async fn open_ticket(
        &self,
        case: &Case<'_>,
        customer: Option<&KnownCustomer>,
        decision: &Decision,
        draft: &flow::TicketDraft,
    ) -> Result<TicketNumber, WorkerError> {
        let site = SiteCode::parse(&draft.site)
            .or_else(|_| SiteCode::parse(domain::ticket::DEFAULT_SITE))
            .map_err(|e| WorkerError::Refused {
                what: "ticket store",
                reason: e.to_string(),
            })?;
        let year = Utc::now().with_timezone(&Maseru).year();
        let number = self
            .ports
            .tickets
            .allocate_number(&site, year, &case.message.message_id, &bridge_context())
            .await
            .map_err(command_failed("ticket numbering"))?;
        let summary = match decision.fault_summary().trim() {
            "" => case.words.to_string(),
            summary => summary.to_string(),
        };
        let open = TicketCommand::Open(NewTicket {
            number: number.clone(),
            category: draft.category,
            priority: draft.priority,
            summary: at_most(&summary, domain::ticket::MAX_TEXT_CHARS),
            description: at_most(&draft.description, domain::ticket::MAX_TEXT_CHARS),
            customer_id: customer.map(|c| c.customer_id),
            phone: Some(case.phone.as_str().to_string()),
            channel: TicketChannel::Whatsapp,
            triaged_by: decision.source().to_string(),
        });
        match self
            .ports
            .tickets
            .execute(&number, open, &bridge_context())
            .await
        {
            // Opened by an earlier attempt at this message.
            Ok(_) | Err(CommandError::Rejected(TicketError::AlreadyOpened(_))) => {}
            Err(error) => return Err(command_failed("ticket store")(error)),
        }
        self.converse(
            case.phone,
            ConversationCommand::LinkTicket {
                number: number.clone(),
            },
        )
        .await?;
        let now = Utc::now();
        if self.settings.forward_to_ugridplan {
            let customer_id = customer.map(|c| c.customer_id.to_string());
            let reporter = match customer {
                Some(c) => Reporter::Customer {
                    first_name: &c.first_name,
                    last_name: &c.last_name,
                },
                None => Reporter::Unidentified {
                    profile_name: case.message.profile_name.as_deref().unwrap_or_default(),
                    phone: case.phone.as_str(),
                },
            };
            let ticket = ugridplan::NewTicket::from_triage(
                Some(site.as_str()),
                draft.category,
                draft.priority,
                &summary,
                case.words,
                reporter,
                customer_id.as_deref(),
            );
            let item = UgridplanItem::Ticket {
                number: number.clone(),
                ticket,
            };
            self.enqueue(item.queued(now, "")).await?;
        }
        let customer_name = customer
            .map(KnownCustomer::full_name)
            .or_else(|| case.message.profile_name.clone())
            .unwrap_or_else(|| "unknown".to_string());
        for member in &self.settings.ops_recipients {
            let notice = WhatsappItem::OpsNotice {
                to: member.as_str().to_string(),
                ticket: number.to_string(),
                site: site.as_str().to_string(),
                priority: draft.priority.to_string(),
                customer: customer_name.clone(),
                phone: case.phone.as_str().to_string(),
                summary: summary.clone(),
            };
            self.enqueue(notice.queued(now, Duration::zero())).await?;
        }
        Ok(number)
    }

    /// Queues the reply in the outbox, then in the conversation (which marks the message
    /// handled): a crash in between queues it again under the same key, which changes nothing.
    async fn queue_reply(
        &self,
        phone: &PhoneNumber,
        message_id: &str,
        text: String,
    ) -> Result<(), WorkerError> {
        let reply_id = reply_id_for(message_id);
        let now = Utc::now();
        let item = WhatsappItem::Reply {
            phone: phone.as_str().to_string(),
            reply_id: reply_id.clone(),
            text: text.clone(),
        };
        self.enqueue(item.queued(now, self.settings.reply_spacing))
            .await?;
        self.converse(
            phone,
            ConversationCommand::QueueReply {
                reply_id,
                text,
                kind: ReplyKind::Text,
                at: now,
            },
        )
        .await
    }

    async fn enqueue(&self, item: domain::outbox::NewOutboxItem) -> Result<(), WorkerError> {
        self.ports
            .outbox
            .enqueue(item)
            .await
            .map(|_| ())
            .map_err(unavailable("outbox"))
    }

    async fn converse(
        &self,
        phone: &PhoneNumber,
        command: ConversationCommand,
    ) -> Result<(), WorkerError> {
        self.ports
            .conversations
            .execute(phone, command, &bridge_context())
            .await
            .map(|_| ())
            .map_err(command_failed("conversation store"))
    }
}

/// The message being handled and where it stands.
struct Case<'a> {
    phone: &'a PhoneNumber,
    message: &'a InboundMessage,
    words: &'a str,
    /// The conversation before this message.
    history: &'a Conversation,
    /// The site of the village an unknown sender named, in this message or before.
    named_site: Option<String>,
    /// The village an unknown sender named in answer to our question.
    village_answer: Option<&'static str>,
}

/// The envelope of the bridge's own commands (the worker's and the senders').
pub(crate) fn bridge_context() -> CommandContext {
    CommandContext::new(Actor {
        user_id: None,
        role: None,
        channel: Channel::Whatsapp,
    })
}

/// A stored delivery with what is in it, read once.
struct Received {
    delivery: PendingDelivery,
    items: Vec<InboundItem>,
}

impl Received {
    fn read(delivery: PendingDelivery) -> Received {
        // The API stored only bodies that parsed; one that does not now never will.
        let items = match cloud_api::parse_delivery(&delivery.body) {
            Ok(parsed) => cloud_api::inbound_items(&parsed),
            Err(error) => {
                tracing::error!(delivery = delivery.id, error = %error, "a stored webhook delivery does not parse; skipped");
                Vec::new()
            }
        };
        Received { delivery, items }
    }

    /// Whose delivery it is: the sender of its first message, or the recipient of its first
    /// status update (the conversation it changes). One sender's deliveries are handled in order.
    fn sender(&self) -> String {
        self.items
            .iter()
            .find_map(|item| match item {
                InboundItem::Message(m) => Some(m.from.clone()),
                InboundItem::Status(s) => s.recipient.clone(),
            })
            .unwrap_or_default()
    }
}

/// `text` cut to `limit` characters (a WhatsApp text may hold 4,096; a ticket keeps 4,000), the
/// cut marked, so a long report still opens its ticket.
fn at_most(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > limit => format!("{}…", &text[..cut]),
        _ => text.to_string(),
    }
}

/// A wa_id (country code and number, digits only) as a phone number.
fn wa_phone(wa_id: &str) -> Option<PhoneNumber> {
    PhoneNumber::parse(&format!("+{}", wa_id.trim().trim_start_matches('+'))).ok()
}

fn media_of(content: &Content) -> Option<MediaRef> {
    match content {
        Content::Media {
            kind,
            media_id,
            mime_type,
            ..
        } => Some(MediaRef {
            kind: kind.as_str().to_string(),
            media_id: media_id.clone(),
            mime_type: mime_type.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_longer_than_the_limit_is_cut_and_marked() {
        assert_eq!(at_most("motlakase", 20), "motlakase");
        assert_eq!(at_most("motlakase", 5), "motl…");
        assert_eq!(at_most("ĥĥĥĥĥĥ", 3).chars().count(), 3);
    }

    #[test]
    fn a_wa_id_reads_as_the_e164_phone_it_is() {
        assert_eq!(
            wa_phone("26658123456").map(|p| p.as_str().to_string()),
            Some("+26658123456".to_string())
        );
        assert_eq!(wa_phone("12"), None);
    }
}
