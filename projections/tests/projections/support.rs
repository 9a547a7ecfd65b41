//! Test helpers: a fresh database with an event store, a capture that turns ACDB rows into the
//! events the CDC would append, rows shaped like the ACDB's, and dumps of the read-model tables.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use adapters::store::EventStore;
use chrono::NaiveDateTime;
use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::table_spec;
use domain::envelope::{Actor, CdcSource, Envelope};
use domain::event::{capture_event_id, NewEvent};
use domain::record::{decide_capture, decide_deletion, RecordState, RowChange, ROW_CHANGE_VERSION};
use projections::customers::CustomersProjection;
use projections::{Projection, ProjectorRunner, RunnerOptions};
use sqlx::PgPool;
use testkit::pg::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A fresh, migrated database and the event store over it.
pub(crate) struct Harness {
    pub(crate) db: TestDatabase,
    pub(crate) capture: Capture,
}

impl Harness {
    pub(crate) async fn new() -> Harness {
        let db = testkit::pg::fresh_database().await;
        let capture = Capture::new(EventStore::new(db.pool.clone()));
        Harness { db, capture }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// A runner for the customers read model, following with a short safety poll.
    pub(crate) fn runner(&self) -> ProjectorRunner {
        self.runner_with(RunnerOptions {
            poll_interval: Duration::from_millis(500),
            ..RunnerOptions::default()
        })
    }

    pub(crate) fn runner_with(&self, options: RunnerOptions) -> ProjectorRunner {
        let projections: Vec<Arc<dyn Projection>> = vec![Arc::new(CustomersProjection)];
        ProjectorRunner::new(self.pool().clone(), projections).with_options(options)
    }
}

/// Captures rows like the CDC does: the same pure decision (`decide_capture`), deterministic
/// event ids, the CDC envelope; appended through the real event store.
pub(crate) struct Capture {
    store: EventStore,
    states: HashMap<(String, String), RecordState>,
    correlation_id: Uuid,
}

impl Capture {
    fn new(store: EventStore) -> Capture {
        Capture {
            store,
            states: HashMap::new(),
            correlation_id: Uuid::new_v4(),
        }
    }

    pub(crate) fn store(&self) -> &EventStore {
        &self.store
    }

    /// Captures `row` of ACDB `table` as it is now: a Created or Updated event (nothing if it is
    /// unchanged). Returns the position of the event appended, if any.
    pub(crate) async fn row(&mut self, table: &str, row: AcdbRow) -> Option<i64> {
        let spec = table_spec(table).expect("a captured table");
        let key = spec.row_key(&row).expect("a row with a usable key");
        let aggregate_id = key.aggregate_id();
        let state = self
            .states
            .entry((spec.aggregate_type.to_string(), aggregate_id.clone()))
            .or_default();
        let change = decide_capture(state, row)?;
        self.append(table, spec.aggregate_type, &aggregate_id, change)
            .await
    }

    /// Captures the disappearance from `table` of the row with key `aggregate_id`.
    pub(crate) async fn deletion(&mut self, table: &str, aggregate_id: &str) -> Option<i64> {
        let spec = table_spec(table).expect("a captured table");
        let state = self
            .states
            .entry((spec.aggregate_type.to_string(), aggregate_id.to_string()))
            .or_default();
        let change = decide_deletion(state)?;
        self.append(table, spec.aggregate_type, aggregate_id, change)
            .await
    }

    async fn append(
        &mut self,
        table: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        change: RowChange,
    ) -> Option<i64> {
        let state = self
            .states
            .get_mut(&(aggregate_type.to_string(), aggregate_id.to_string()))
            .unwrap();
        let sequence = state.sequence + 1;
        // The CDC records the hash of the row as captured, or as it was before a deletion.
        let row_hash = match &change {
            RowChange::Deleted { before } => before.content_hash(),
            RowChange::Created { row } | RowChange::Updated { after: row, .. } => {
                row.content_hash()
            }
        };
        let envelope =
            Envelope::now(Actor::cdc_external(), self.correlation_id).with_cdc(CdcSource {
                table: table.to_string(),
                key: aggregate_id.to_string(),
                row_hash,
            });
        let event = NewEvent {
            event_id: capture_event_id(aggregate_type, aggregate_id, sequence),
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: aggregate_id.to_string(),
            sequence,
            event_type: change.event_type(aggregate_type),
            event_version: ROW_CHANGE_VERSION.to_string(),
            payload: change.to_payload(),
            metadata: envelope.to_metadata(),
        };
        let outcome = self.store.append(&[event]).await.expect("append");
        state.apply(&change);
        Some(outcome.head.position)
    }

    /// Appends an event of a table this read model does not read (a transaction).
    pub(crate) async fn transaction(
        &mut self,
        id: i64,
        account: &str,
        amount: &str,
    ) -> Option<i64> {
        let row = AcdbRow::new()
            .with("ID", AcdbValue::Int(id))
            .with("accountnumber", text(account))
            .with("transaction date", datetime("2024-05-01T10:00:00"))
            .with("transaction amount", decimal(amount));
        self.row("tblaccounthistory1", row).await
    }
}

pub(crate) fn text(s: &str) -> AcdbValue {
    AcdbValue::Text(s.to_string())
}

pub(crate) fn decimal(s: &str) -> AcdbValue {
    AcdbValue::Decimal {
        decimal: s.parse().unwrap(),
    }
}

pub(crate) fn datetime(s: &str) -> AcdbValue {
    AcdbValue::DateTime {
        datetime: s.parse::<NaiveDateTime>().unwrap(),
    }
}

/// A `tblcustomer` row as the ACDB holds one (the phone in the INTEGER form, without 266).
pub(crate) fn customer_row(
    id: i64,
    first: &str,
    last: &str,
    phone: i64,
    plot: &str,
    concession: &str,
) -> AcdbRow {
    AcdbRow::new()
        .with("CUSTOMER ID", AcdbValue::Int(id))
        .with("FIRST NAME", text(first))
        .with("MIDDLE NAME", AcdbValue::Null)
        .with("LAST NAME", text(last))
        .with("PHONE", AcdbValue::Int(phone))
        .with("CELL PHONE 1", AcdbValue::Null)
        .with("CELL PHONE 2", AcdbValue::Null)
        .with("EMAIL", AcdbValue::Null)
        .with("PLOT NUMBER", text(plot))
        .with("STREET ADDRESS", AcdbValue::Null)
        .with("CITY", text("Maseru"))
        .with("DISTRICT", text("Maseru"))
        .with("Concession name", text(concession))
        .with("DATE SERVICE CONNECTED", datetime("2023-04-12T00:00:00"))
        .with("DATE SERVICE TERMINATED", AcdbValue::Null)
        .with("ID NUMBER", text("010203040"))
        .with("CUSTOMER POSITION", text("HH"))
        .with("GPS X", decimal("27.7312"))
        .with("GPS Y", decimal("-29.4051"))
        .with("GENDER", text("Female"))
        .with("COUNTRY", text("Lesotho"))
        .with("RECORD CREATE DATE", datetime("2023-04-12T09:30:00"))
        .with("RECORD CREATED BY", text("CC Portal"))
}

/// The community an account number names: its site code, the last three characters.
fn community_of(account: &str) -> AcdbValue {
    text(&account[account.len().saturating_sub(3)..].to_uppercase())
}

/// A `tblaccountnumbers` row.
pub(crate) fn account_row(account: &str, customer_id: i64, meter_id: &str) -> AcdbRow {
    AcdbRow::new()
        .with("accountnumber", text(account))
        .with("customerid", AcdbValue::Int(customer_id))
        .with("meterid", text(meter_id))
        .with("community", community_of(account))
        .with("opened date", datetime("2023-04-12T00:00:00"))
        .with("created by", text("CC Portal"))
}

/// A `tblmeter` / `Copy Of tblmeter` row.
pub(crate) fn meter_row(meter_id: &str, account: &str, customer_id: i64) -> AcdbRow {
    AcdbRow::new()
        .with("meterid", text(meter_id))
        .with("accountnumber", text(account))
        .with("customer id", AcdbValue::Int(customer_id))
        .with("customer type", text("HH"))
        .with("community", community_of(account))
        .with("latitude", decimal("-29.4051"))
        .with("longitude", decimal("27.7312"))
        .with("Village name", text("Ha Makebe"))
        .with("current status", AcdbValue::Int(1))
        .with("customer connect date", datetime("2023-04-12T00:00:00"))
}

/// Every table of the customers read model (through its `read_model` view), each as JSON text
/// of all its rows in a total order: two equal dumps mean equal tables.
pub(crate) async fn dump(pool: &PgPool) -> BTreeMap<String, String> {
    let views: Vec<String> = sqlx::query_scalar(
        "select view_name from projection_views where projection = 'customers' order by view_name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        views,
        ["accounts", "customer_phones", "customers", "meters"]
    );
    let mut dump = BTreeMap::new();
    for view in views {
        let rows: String = sqlx::query_scalar(&format!(
            "select coalesce(json_agg(t order by t::text), '[]')::text from read_model.{view} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        dump.insert(view, rows);
    }
    dump
}

/// The registry's live generation and checkpoint of the customers read model ((0, 0) before the
/// runner has made it ready).
pub(crate) async fn live(pool: &PgPool) -> (i32, i64) {
    sqlx::query_as(
        "select live_generation, position from projection_registry where name = 'customers'",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
    .unwrap_or((0, 0))
}

/// The generation schemas of the customers read model that exist.
pub(crate) async fn generation_schemas(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select nspname::text from pg_namespace where nspname like 'rm\\_customers\\_%' order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Polls `check` until it returns true, for at most `limit`; false if it never did.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A runner following the log on a task of its own until stopped.
pub(crate) struct Following {
    stop: oneshot::Sender<()>,
    running: JoinHandle<projections::Result<()>>,
}

impl Following {
    pub(crate) fn start(runner: Arc<ProjectorRunner>) -> Following {
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            runner
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Following { stop, running }
    }

    /// Stops the runner and waits for it to return; fails the test if it returned an error.
    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        self.running.await.unwrap().unwrap();
    }
}

/// The tickets and conversations as the bridge and the API change them (the adapters'
/// postgres-es executors), with a runner of their two read models and the queries over them.
pub(crate) struct CareDesk {
    pub(crate) tickets: adapters::commands::Tickets,
    pub(crate) conversations: adapters::commands::Conversations,
    pub(crate) runner: ProjectorRunner,
    pub(crate) read_models: projections::ReadModels,
}

impl Harness {
    /// A [`CareDesk`] on this database, its read models ready.
    pub(crate) async fn care_desk(&self) -> CareDesk {
        let projections: Vec<Arc<dyn Projection>> = vec![
            Arc::new(projections::tickets::TicketsProjection),
            Arc::new(projections::conversations::ConversationsProjection),
        ];
        let runner = ProjectorRunner::new(self.pool().clone(), projections);
        runner.ensure_ready().await.unwrap();
        CareDesk {
            tickets: adapters::commands::Tickets::new(self.pool().clone()),
            conversations: adapters::commands::Conversations::new(self.pool().clone()),
            runner,
            read_models: projections::ReadModels::new(self.pool().clone()),
        }
    }
}

impl CareDesk {
    /// Opens a ticket at `site` numbered by the site's series, as the bridge would.
    pub(crate) async fn open_ticket(
        &self,
        site: &str,
        priority: domain::ticket::Priority,
        summary: &str,
        phone: Option<&str>,
        customer_id: Option<i64>,
    ) -> domain::ticket::TicketNumber {
        use domain::command::TicketCommands;
        let context = domain::command::CommandContext::new(Actor::system());
        let site = domain::site::SiteCode::parse(site).unwrap();
        let number = self
            .tickets
            .allocate_number(&site, 2026, &Uuid::new_v4().to_string(), &context)
            .await
            .unwrap();
        let new = domain::ticket::NewTicket {
            number: number.clone(),
            category: domain::ticket::Category::NoPower,
            priority,
            summary: summary.into(),
            description: format!("{summary} (in the customer's words)"),
            customer_id,
            phone: phone.map(str::to_string),
            channel: domain::ticket::TicketChannel::Whatsapp,
            triaged_by: "rules".into(),
        };
        self.ticket(&number, domain::ticket::TicketCommand::Open(new))
            .await;
        number
    }

    /// Runs `command` on ticket `number` as employee E042 (the system for an opening).
    pub(crate) async fn ticket(
        &self,
        number: &domain::ticket::TicketNumber,
        command: domain::ticket::TicketCommand,
    ) {
        use domain::command::TicketCommands;
        let actor = match command {
            domain::ticket::TicketCommand::Open(_) => Actor::system(),
            _ => Actor {
                user_id: Some("E042".into()),
                role: Some("onm_team".into()),
                channel: domain::envelope::Channel::Api,
            },
        };
        self.tickets
            .execute(
                number,
                command,
                &domain::command::CommandContext::new(actor),
            )
            .await
            .unwrap();
    }

    /// Runs `command` on the conversation of `phone`, as the bridge would.
    pub(crate) async fn converse(
        &self,
        phone: &str,
        command: domain::conversation::ConversationCommand,
    ) {
        use domain::command::ConversationCommands;
        let actor = Actor {
            user_id: None,
            role: None,
            channel: domain::envelope::Channel::Whatsapp,
        };
        self.conversations
            .execute(
                &domain::phone::PhoneNumber::parse(phone).unwrap(),
                command,
                &domain::command::CommandContext::new(actor),
            )
            .await
            .unwrap();
    }

    /// Applies everything appended so far to both read models.
    pub(crate) async fn catch_up(&self) {
        self.runner.catch_up().await.unwrap();
    }
}

/// Every row of the views of read model `projection` as JSON text, in a total order.
pub(crate) async fn dump_views(pool: &PgPool, projection: &str) -> BTreeMap<String, String> {
    let views: Vec<String> = sqlx::query_scalar(
        "select view_name from projection_views where projection = $1 order by view_name",
    )
    .bind(projection)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut dump = BTreeMap::new();
    for view in views {
        let rows: String = sqlx::query_scalar(&format!(
            "select coalesce(json_agg(v order by v::text), '[]')::text from read_model.\"{view}\" v"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        dump.insert(view, rows);
    }
    dump
}
