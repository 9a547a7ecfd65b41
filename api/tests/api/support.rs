//! The test application: a fresh database, a small generated ACDB imported by the change
//! capture, the projector runner following the log, and the router answering requests in
//! process (the same `Router` `ccare serve` serves).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapters::acdb::{self, AcdbLocation};
use adapters::cdc::{Cdc, CdcConfig, NoProgress};
use adapters::commands::{Conversations, TariffSchedules, Tickets, UserAccounts};
use adapters::inbox::PgWebhookInbox;
use adapters::store::EventStore;
use adapters::writer::{AuditedWriter, WriteQueue, WriterClaims};
use api::auth::passwords;
use api::{AppState, TokenKeys};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use chrono::Datelike;
use domain::auth::{user_aggregate_id, Role, UserCommand, UserType};
use domain::catalog::CAPTURED_TABLES;
use domain::command::{CommandContext, ConversationCommands, TicketCommands, UserCommands};
use domain::conversation::ConversationCommand;
use domain::envelope::{Actor, Channel};
use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use domain::ticket::{Category, NewTicket, Priority, TicketChannel, TicketCommand, TicketNumber};
use projections::{ProjectorRunner, ReadModels, RunnerOptions};
use serde_json::{json, Value};
use testkit::acdb::TestAcdb;
use testkit::pg::TestDatabase;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Who the WhatsApp bridge's commands come from.
fn bridge_actor() -> Actor {
    Actor {
        user_id: None,
        role: None,
        channel: Channel::Whatsapp,
    }
}

/// The password every test employee gets.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// The password [`TestApp::customer_token`] registers for the customer.
pub(crate) const CUSTOMER_PASSWORD: &str = "my own secret";

/// The ledger of [`report_ledger`]: accounts of two sites, a 1-character account (no site), a
/// lower-case account (same site, another customer), a blank account, undated and unparseable
/// dates, a negative and a zero amount, a row at 23:30 on the last day of a quarter and one at
/// 00:30 on the first of the next (local time), a half-cent tie.
const REPORT_LEDGER: &[(i64, &str, Option<&str>, &str, &str)] = &[
    (1, "0001MAK", Some("2025-01-15 09:00:00"), "100.00", "10.0"),
    (2, "0001MAK", Some("2025-02-10 09:00:00"), "50.50", "5.0"),
    (3, "0002MAK", Some("2025-03-31 23:30:00"), "30.00", "3.0"),
    (4, "0001MAS", Some("2025-04-01 00:30:00"), "-10.00", "0"),
    (5, "0001MAK", Some("2025-05-05 09:00:00"), "0.00", "0"),
    (6, "x", Some("2025-05-06 09:00:00"), "20.00", "2.0"),
    (7, "0003mak", Some("2025-06-01 09:00:00"), "40.00", "4.0"),
    (8, "0002MAK", None, "60.00", "6.0"),
    (9, "0002MAK", Some("sometime"), "7.00", "0.7"),
    (10, "  ", Some("2025-01-20 09:00:00"), "1000.00", "100"),
    (11, "0004MAS", Some("2025-08-15 09:00:00"), "0.1250", "1.0"),
];

/// The customers of [`report_ledger`]: (id, concession, connected, terminated).
const REPORT_CUSTOMERS: &[(i64, &str, Option<&str>, Option<&str>)] = &[
    (1, "MAK", Some("2024-11-05"), None),
    (2, "MAK", Some("2025-01-10"), Some("2025-06-01")),
    (3, "MAK ", Some("2025-02-01"), None),
    (4, "MAS", Some("2025-04-15"), None),
    (5, "", Some("2025-05-01"), None),
    (6, "MAS", None, None),
    (7, "MAS", Some("garbage"), Some(" ")),
];

/// The ACDB fixture of the O&M report figures (`reports.rs`, where every expected number was
/// worked out by hand from these rows, and the portal's dashboard): the ledger and customers
/// above, in place of the generated ones, and no meter register.
pub(crate) fn report_ledger(acdb: &TestAcdb) {
    let text = |value: Option<&str>| value.map_or("NULL".into(), |v| format!("'{v}'"));
    for table in [
        "tblaccounthistory1",
        "tblaccounthistoryOriginal",
        "tblcustomer",
        "tblaccountnumbers",
        "tblmeter",
        "Copy Of tblmeter",
        "tblmeterdata1",
    ] {
        acdb.execute(&format!("DELETE FROM [{table}]"), &[]);
    }
    for (id, account, date, amount, kwh) in REPORT_LEDGER {
        acdb.execute(
            &format!(
                "INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [transaction date], [transaction amount], [kwh value]) VALUES ({id}, '{account}', {}, {amount}, {kwh})",
                text(*date)
            ),
            &[],
        );
    }
    for (id, concession, connected, terminated) in REPORT_CUSTOMERS {
        acdb.execute(
            &format!(
                "INSERT INTO [tblcustomer] ([CUSTOMER ID], [FIRST NAME], [Concession name], [DATE SERVICE CONNECTED], [DATE SERVICE TERMINATED]) VALUES ({id}, 'C{id}', '{concession}', {}, {})",
                text(*connected),
                text(*terminated)
            ),
            &[],
        );
    }
}

pub(crate) struct TestApp {
    pub(crate) db: TestDatabase,
    /// The generated ACDB, kept for as long as the app (dropping it removes the file).
    pub(crate) acdb: TestAcdb,
    pub(crate) router: Router,
    pub(crate) users: Arc<UserAccounts>,
    /// The tickets the API's port is wired to, for tests that open tickets as the bridge does.
    pub(crate) tickets: Arc<Tickets>,
    /// The WhatsApp conversations, for tests that record messages as the bridge does.
    pub(crate) conversations: Arc<Conversations>,
    /// The API's read models (one listener for the whole app: each `ReadModels::new` starts its
    /// own, which holds a connection).
    read_models: ReadModels,
    stop: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A test token secret (tests only; production has no default).
pub(crate) fn secret() -> Vec<u8> {
    b"test secret of at least thirty-two bytes".to_vec()
}

impl TestApp {
    pub(crate) async fn start() -> TestApp {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), with `prepare` run on the ACDB before it is imported (a
    /// fixture of hand-written rows).
    pub(crate) async fn start_with(prepare: impl FnOnce(&TestAcdb)) -> TestApp {
        Self::build(prepare, None).await
    }

    /// Like [`start`](Self::start), with the WhatsApp webhook configured with these secrets and
    /// storing deliveries in the PostgreSQL inbox.
    pub(crate) async fn start_with_whatsapp(verify_token: &str, app_secret: &str) -> TestApp {
        Self::build(|_| {}, Some((verify_token, app_secret))).await
    }

    async fn build(prepare: impl FnOnce(&TestAcdb), whatsapp: Option<(&str, &str)>) -> TestApp {
        let db = testkit::pg::fresh_database().await;
        let acdb = testkit::acdb::generated_small();
        prepare(&acdb);
        let location = AcdbLocation::Odbc(acdb.dsn());
        let cdc = Cdc::new(
            db.pool.clone(),
            EventStore::new(db.pool.clone()),
            Arc::new(move || acdb::open(&location)),
            CdcConfig {
                tables: CAPTURED_TABLES.iter().collect(),
                chunk_rows: 1_000,
                poll_interval: Duration::from_millis(200),
                reconcile_interval: Duration::from_secs(3600),
                safety_share: 0.5,
            },
            Arc::new(NoProgress),
        )
        .with_own_writes(Arc::new(WriterClaims));
        cdc.run_cycle().await.expect("the test ACDB imports");

        let runner = Arc::new(
            ProjectorRunner::new(db.pool.clone(), projections::all()).with_options(RunnerOptions {
                poll_interval: Duration::from_millis(200),
                ..RunnerOptions::default()
            }),
        );
        runner.ensure_ready().await.unwrap();
        runner.catch_up().await.unwrap();
        let stop = CancellationToken::new();
        let following = stop.clone();
        tokio::spawn(async move { runner.run(following.cancelled_owned()).await });
        let polling = stop.clone();
        tokio::spawn(async move { cdc.run(polling.cancelled_owned()).await });
        let dsn = acdb.dsn();
        let writer = AuditedWriter::new(
            db.pool.clone(),
            Arc::new(move || acdb::open_writer(&AcdbLocation::Odbc(dsn.clone()))),
        );
        let writing = stop.clone();
        tokio::spawn(async move { writer.run(writing.cancelled_owned()).await });

        let users = Arc::new(UserAccounts::new(
            db.pool.clone(),
            Arc::new(passwords::Argon2Credentials),
        ));
        let tickets = Arc::new(Tickets::new(db.pool.clone()));
        let conversations = Arc::new(Conversations::new(db.pool.clone()));
        let tokens = TokenKeys::new(&secret(), Duration::from_secs(3600)).unwrap();
        let ports = api::Ports {
            users: users.clone(),
            writes: Arc::new(WriteQueue::new(db.pool.clone(), Duration::from_secs(20))),
            tariffs: Arc::new(TariffSchedules::new(db.pool.clone())),
            tickets: tickets.clone(),
            chain: Arc::new(EventStore::new(db.pool.clone())),
            whatsapp: whatsapp.map(|(verify_token, app_secret)| api::WhatsAppWebhook {
                verify_token: verify_token.into(),
                app_secret: app_secret.into(),
                inbox: Arc::new(PgWebhookInbox::new(db.pool.clone())),
            }),
        };
        let read_models = ReadModels::new(db.pool.clone());
        let state = AppState::new(read_models.clone(), ports, tokens);
        TestApp {
            router: api::router(state),
            db,
            acdb,
            users,
            tickets,
            conversations,
            read_models,
            stop,
        }
    }

    /// Opens a ticket at `site` as the WhatsApp bridge does (a number of the site's series, then
    /// `Open`) and waits until the `tickets` read model shows it.
    pub(crate) async fn open_ticket(
        &self,
        site: &str,
        priority: Priority,
        phone: Option<&str>,
        customer_id: Option<i64>,
    ) -> TicketNumber {
        let context = CommandContext::new(bridge_actor());
        let site = SiteCode::parse(site).unwrap();
        let year = chrono::Utc::now().year();
        let number = self
            .tickets
            .allocate_number(&site, year, &uuid::Uuid::new_v4().to_string(), &context)
            .await
            .unwrap();
        let opened = self
            .tickets
            .execute(
                &number,
                TicketCommand::Open(NewTicket {
                    number: number.clone(),
                    category: Category::NoPower,
                    priority,
                    summary: "Customer reports no power.".into(),
                    description: "Ha ke na motlakase".into(),
                    customer_id,
                    phone: phone.map(str::to_string),
                    channel: TicketChannel::Whatsapp,
                    triaged_by: "rules".into(),
                }),
                &context,
            )
            .await
            .unwrap();
        self.wait_for("tickets", opened.position).await;
        number
    }

    /// Runs `command` on the conversation of `phone` as the bridge does, and waits until the
    /// `conversations` read model shows it.
    pub(crate) async fn converse(&self, phone: &str, command: ConversationCommand) {
        let committed = self
            .conversations
            .execute(
                &PhoneNumber::parse(phone).unwrap(),
                command,
                &CommandContext::new(bridge_actor()),
            )
            .await
            .unwrap();
        self.wait_for("conversations", committed.position).await;
    }

    /// A ticket at `site` opened from `phone`'s WhatsApp conversation: the customer's message
    /// `inbound` before it, linked to it, and the bridge's reply naming the number queued after.
    pub(crate) async fn ticket_from_whatsapp(
        &self,
        site: &str,
        phone: &str,
        inbound: &str,
    ) -> TicketNumber {
        use domain::conversation::{reply_id_for, ReplyKind};
        let now = chrono::Utc::now();
        self.converse(
            phone,
            ConversationCommand::Receive {
                message_id: "wamid.portal.1".into(),
                text: Some(inbound.into()),
                media: None,
                profile_name: Some("Mpho".into()),
                sent_at: now - chrono::Duration::minutes(10),
            },
        )
        .await;
        let number = self
            .open_ticket(site, Priority::P1, Some(phone), None)
            .await;
        self.converse(
            phone,
            ConversationCommand::LinkTicket {
                number: number.clone(),
            },
        )
        .await;
        self.converse(
            phone,
            ConversationCommand::QueueReply {
                reply_id: reply_id_for("wamid.portal.1"),
                text: format!("Tikete ea hao {number} e thehiloe."),
                kind: ReplyKind::Text,
                at: now,
            },
        )
        .await;
        number
    }

    /// Waits until read model `projection` has applied the event at `position`.
    pub(crate) async fn wait_for(&self, projection: &'static str, position: Option<i64>) {
        if let Some(position) = position {
            self.read_models
                .wait_until_applied(projection, position, Duration::from_secs(15))
                .await
                .unwrap();
        }
    }

    /// Adds employee `id` with `role` and [`PASSWORD`], as `ccare users add` does.
    pub(crate) async fn add_employee(&self, id: &str, role: Role) {
        let committed = self
            .users
            .execute(
                &user_aggregate_id(UserType::Employee, id),
                UserCommand::AddEmployee {
                    employee_id: id.into(),
                    name: format!("Employee {id}"),
                    email: None,
                    role,
                    password_hash: passwords::hash(PASSWORD),
                },
                &CommandContext::new(Actor::system()),
            )
            .await
            .unwrap();
        self.wait_for("users", committed.position).await;
    }

    /// Logs employee `id` in with [`PASSWORD`]; returns the token.
    pub(crate) async fn login(&self, id: &str) -> String {
        let response = self
            .post(
                "/api/auth/employee-login",
                None,
                json!({"employee_id": id, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["access_token"].as_str().unwrap().to_string()
    }

    /// An employee with `role`, logged in: their token.
    pub(crate) async fn employee(&self, id: &str, role: Role) -> String {
        self.add_employee(id, role).await;
        self.login(id).await
    }

    /// A canonical account number of the imported ACDB.
    pub(crate) async fn some_account(&self) -> String {
        sqlx::query_scalar(
            "select account_number from read_model.accounts where account_number is not null order by 1 limit 1",
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let mut request = builder.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        self.send(request).await
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
            bytes: bytes.to_vec(),
        }
    }

    pub(crate) async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Events in the log.
    pub(crate) async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from event_log")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// A customer id of the imported ACDB (the smallest).
    pub(crate) async fn some_customer(&self) -> i64 {
        sqlx::query_scalar("select min(customer_id) from read_model.customers")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// One text cell of the ACDB, read over ODBC as office staff would see it.
    pub(crate) fn acdb_text(&self, sql: &str) -> Option<String> {
        use odbc_api::Cursor;
        let env = odbc_api::environment().unwrap();
        let conn = env
            .connect_with_connection_string(
                &self.acdb.dsn(),
                odbc_api::ConnectionOptions::default(),
            )
            .unwrap();
        let mut cursor = conn.execute(sql, (), None).unwrap().unwrap();
        let mut row = cursor.next_row().unwrap()?;
        let mut text = Vec::new();
        let present = row.get_text(1, &mut text).unwrap();
        present.then(|| String::from_utf8(text).unwrap())
    }

    /// A customer registered (through a registration code an O&M employee issues) and logged in
    /// for `account`: their token.
    pub(crate) async fn customer_token(&self, account: &str) -> String {
        let clerk = self.employee("00123", Role::OnmTeam).await;
        let reply = self
            .post(
                "/api/admin/registration-codes",
                Some(&clerk),
                json!({"account_number": account}),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
        let code = reply.body["registration_code"]
            .as_str()
            .unwrap()
            .to_string();
        let password = CUSTOMER_PASSWORD;
        let reply = self
            .post(
                "/api/auth/customer-register",
                None,
                json!({"customer_id": account, "password": password, "registration_code": code}),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
        let reply = self
            .post(
                "/api/auth/customer-login",
                None,
                json!({"customer_id": account, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PUT, path, token, Some(body)).await
    }
}

/// A response: status, headers and the body as JSON (a JSON string when it is not JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Value,
    /// The body as sent (for files such as XLSX exports).
    pub(crate) bytes: Vec<u8>,
}

impl Reply {
    /// The `detail` of an error body.
    pub(crate) fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}
