//! The bridge over real PostgreSQL: a fresh database per test with the customer read model
//! built, the worker on the real adapters, and deliveries shaped as Meta sends them.

use std::sync::Arc;

use adapters::commands::{Conversations, Tickets};
use adapters::inbox::PgWebhookInbox;
use adapters::outbox::PgOutbox;
use adapters::store::EventStore;
use bridge::worker::{InboxWorker, WorkerPorts, WorkerSettings};
use chrono::{DateTime, Utc};
use domain::acdb::{AcdbRow, AcdbValue};
use domain::command::{ConversationCommands, TicketCommands};
use domain::conversation::Conversation;
use domain::envelope::{Actor, Envelope};
use domain::event::{capture_event_id, NewEvent};
use domain::inbox::NewDelivery;
use domain::phone::PhoneNumber;
use domain::record::{RowChange, ROW_CHANGE_VERSION};
use domain::ticket::{Ticket, TicketNumber};
use projections::{ProjectorRunner, ReadModels};
use serde_json::{json, Value};
use testkit::pg::{fresh_database, TestDatabase};

/// Mpho Mokoena, customer 12 at MAK, account 0045MAK, phone 58123456.
pub(crate) const MPHO_PHONE: &str = "+26658123456";
pub(crate) const MPHO_WA_ID: &str = "26658123456";
/// A sender no customer record holds.
pub(crate) const STRANGER_WA_ID: &str = "26662999888";

pub(crate) struct Bridge {
    pub(crate) db: TestDatabase,
    pub(crate) ports: WorkerPorts,
    pub(crate) conversations: Arc<dyn ConversationCommands>,
    pub(crate) tickets: Arc<dyn TicketCommands>,
}

impl Bridge {
    /// A database with Mpho (and her account) in the customer read model.
    pub(crate) async fn new() -> Bridge {
        let db = fresh_database().await;
        let store = EventStore::new(db.pool.clone());
        store
            .append(&[
                captured("Customer", "12", customer_row()),
                captured("Account", "0045MAK", account_row()),
            ])
            .await
            .unwrap();
        let runner = ProjectorRunner::new(db.pool.clone(), projections::all());
        runner.ensure_ready().await.unwrap();
        runner.catch_up().await.unwrap();
        let conversations: Arc<dyn ConversationCommands> =
            Arc::new(Conversations::new(db.pool.clone()));
        let tickets: Arc<dyn TicketCommands> = Arc::new(Tickets::new(db.pool.clone()));
        let ports = WorkerPorts {
            inbox: Arc::new(PgWebhookInbox::new(db.pool.clone())),
            customers: Arc::new(ReadModels::new(db.pool.clone())),
            conversations: conversations.clone(),
            tickets: tickets.clone(),
            outbox: Arc::new(PgOutbox::new(db.pool.clone())),
        };
        Bridge {
            db,
            ports,
            conversations,
            tickets,
        }
    }

    pub(crate) fn worker(&self, settings: WorkerSettings) -> InboxWorker {
        InboxWorker::new(self.ports.clone(), None, settings)
    }

    /// Stores `body` in the inbox as the webhook does.
    pub(crate) async fn deliver(&self, body: Value) {
        let message_ids = body
            .pointer("/entry/0/changes/0/value/messages")
            .and_then(Value::as_array)
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self.ports
            .inbox
            .store(NewDelivery {
                body: serde_json::to_vec(&body).unwrap(),
                received_at: Utc::now(),
                message_ids,
            })
            .await
            .unwrap();
    }

    /// Delivers a text message from `from` and has a worker with `settings` process the inbox.
    pub(crate) async fn receive(
        &self,
        from: &str,
        id: &str,
        text: &str,
        sent_at: DateTime<Utc>,
        settings: WorkerSettings,
    ) {
        self.deliver(text_message(from, id, text, sent_at)).await;
        self.worker(settings).process_pending().await.unwrap();
    }

    pub(crate) async fn conversation(&self, phone: &str) -> Conversation {
        self.conversations
            .load(&PhoneNumber::parse(phone).unwrap())
            .await
            .unwrap()
    }

    pub(crate) async fn ticket(&self, number: &str) -> Ticket {
        self.tickets
            .load(&number.parse::<TicketNumber>().unwrap())
            .await
            .unwrap()
    }

    /// The outbox, oldest first: (channel, key, recipient, payload, done).
    pub(crate) async fn outbox(&self) -> Vec<OutboxRow> {
        sqlx::query_as(
            "select channel, key, recipient, payload, done_at is not null as done, attempts, not_before
             from bridge_outbox order by id",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// The numbers of the tickets opened, in order.
    pub(crate) async fn ticket_numbers(&self) -> Vec<String> {
        sqlx::query_scalar(
            "select aggregate_id from event_log where aggregate_type = 'Ticket' and event_type = 'TicketOpened' order by position",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// Every event the bridge's aggregates hold, in order (to compare before and after).
    pub(crate) async fn bridge_events(&self) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "select aggregate_type, aggregate_id, event_type from event_log
             where aggregate_type in ('Ticket', 'TicketSeries', 'Conversation') order by position",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// Makes every delivery unprocessed again, as after a crash before they were marked.
    pub(crate) async fn forget_processing(&self) {
        sqlx::query("update whatsapp_inbox set processed_at = null")
            .execute(&self.db.pool)
            .await
            .unwrap();
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct OutboxRow {
    pub(crate) channel: String,
    pub(crate) key: String,
    pub(crate) recipient: String,
    pub(crate) payload: Value,
    pub(crate) done: bool,
    pub(crate) attempts: i32,
    pub(crate) not_before: DateTime<Utc>,
}

fn text(value: &str) -> AcdbValue {
    AcdbValue::Text(value.into())
}

fn customer_row() -> AcdbRow {
    AcdbRow::new()
        .with("CUSTOMER ID", AcdbValue::Int(12))
        .with("FIRST NAME", text("Mpho"))
        .with("LAST NAME", text("Mokoena"))
        .with("PHONE", AcdbValue::Int(58123456))
        .with("PLOT NUMBER", text("MAK 0045 HH"))
        .with("Concession name", text("MAK"))
        .with("CUSTOMER POSITION", text("HH"))
}

fn account_row() -> AcdbRow {
    AcdbRow::new()
        .with("accountnumber", text("0045MAK"))
        .with("customerid", AcdbValue::Int(12))
        .with("meterid", text("SMRSD-26-00000045"))
        .with("community", text("MAK"))
}

fn captured(aggregate_type: &str, id: &str, row: AcdbRow) -> NewEvent {
    let change = RowChange::Created { row };
    NewEvent {
        event_id: capture_event_id(aggregate_type, id, 1),
        aggregate_type: aggregate_type.into(),
        event_type: change.event_type(aggregate_type),
        event_version: ROW_CHANGE_VERSION.into(),
        payload: change.to_payload(),
        metadata: Envelope::now(Actor::system(), uuid::Uuid::new_v4()).to_metadata(),
        aggregate_id: id.into(),
        sequence: 1,
    }
}

/// A delivery of one text message, as Meta sends it.
pub(crate) fn text_message(from: &str, id: &str, text: &str, sent_at: DateTime<Utc>) -> Value {
    delivery(json!({
        "contacts": [{ "profile": { "name": "Mpho M" }, "wa_id": from }],
        "messages": [{
            "from": from, "id": id, "timestamp": sent_at.timestamp().to_string(),
            "type": "text", "text": { "body": text }
        }]
    }))
}

/// A delivery of a photo without a caption.
pub(crate) fn photo_message(from: &str, id: &str, sent_at: DateTime<Utc>) -> Value {
    delivery(json!({
        "contacts": [{ "profile": { "name": "Mpho M" }, "wa_id": from }],
        "messages": [{
            "from": from, "id": id, "timestamp": sent_at.timestamp().to_string(),
            "type": "image", "image": { "id": "media-1", "mime_type": "image/jpeg" }
        }]
    }))
}

/// A delivery of one status update for our message `wamid`.
pub(crate) fn status_update(to: &str, wamid: &str, status: &str) -> Value {
    delivery(json!({
        "statuses": [{
            "id": wamid, "status": status, "recipient_id": to,
            "timestamp": Utc::now().timestamp().to_string()
        }]
    }))
}

/// A delivery of a `failed` status for our message `wamid` with the Graph error `code`.
pub(crate) fn failed_status(to: &str, wamid: &str, code: i64) -> Value {
    delivery(json!({
        "statuses": [{
            "id": wamid, "status": "failed", "recipient_id": to,
            "timestamp": Utc::now().timestamp().to_string(),
            "errors": [{ "code": code, "title": "Re-engagement message" }]
        }]
    }))
}

fn delivery(value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({ "display_phone_number": "26622000000", "phone_number_id": "1234567890" });
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": value }] }]
    })
}
