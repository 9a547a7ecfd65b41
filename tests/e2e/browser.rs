//! The portal in a real browser: `ccare demo` (private PostgreSQL, the synthetic ACDB, every
//! role) driven through headless Chromium by ChromeDriver (Debian's `chromium` and
//! `chromium-driver`, installed by scripts/install-deps).
//!
//! Every page visited is checked for console errors (a blocked stylesheet, a failed load, a
//! content-policy violation) and saved as a screenshot under
//! `target/tmp/portal-screenshots/` (the test artifacts).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::ccare;

/// A child process, killed when dropped (also when the test fails half-way).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The environment of a `ccare` child with none of the developer's ccare settings.
fn clean_ccare_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ccare"));
    for (k, _) in std::env::vars() {
        if k == "DATABASE_URL"
            || k == "NATS_URL"
            || k.starts_with("CCARE_")
            || k.starts_with("ACDB_")
            || k.starts_with("WHATSAPP_")
            || k.starts_with("UGRIDPLAN_")
            || k.starts_with("LLM_")
        {
            command.env_remove(k);
        }
    }
    command
        .env("CCARE_DATA_DIR", data_dir)
        .env("CCARE_LOG", "warn");
    command
}

/// `ccare demo` on a data directory of its own, once it says it is running.
struct Demo {
    _process: Process,
    base: String,
    data_dir: PathBuf,
    _scratch: Option<tempfile::TempDir>,
    admin_password: String,
}

impl Demo {
    /// Starts the demo on a scratch data directory, or on `CCARE_E2E_DEMO_DIR` when set (a
    /// developer's way to keep the built read models between runs: the first run takes minutes).
    fn start() -> Demo {
        let (data_dir, scratch) = match std::env::var_os("CCARE_E2E_DEMO_DIR") {
            Some(dir) => (PathBuf::from(dir), None),
            None => {
                let scratch = tempfile::tempdir().unwrap();
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        let port = free_port();
        let mut child = clean_ccare_command(&data_dir)
            .env("CCARE_LISTEN", format!("127.0.0.1:{port}"))
            .arg("demo")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ccare demo starts");
        let stderr = child.stderr.take().unwrap();
        let process = Process(child);
        let (running, said) = std::sync::mpsc::channel();
        // The demo's terminal output: watched for "running", then drained so it never blocks.
        std::thread::spawn(move || {
            let mut running = Some(running);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("ccare is running") {
                    if let Some(running) = running.take() {
                        let _ = running.send(());
                    }
                }
                eprintln!("demo: {line}");
            }
        });
        said.recv_timeout(Duration::from_secs(900))
            .expect("ccare demo says it is running within 15 minutes");
        let admin_password = std::fs::read_to_string(data_dir.join("demo-admin-password"))
            .expect("the demo keeps its administrator's password")
            .trim()
            .to_string();
        Demo {
            _process: process,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
            _scratch: scratch,
            admin_password,
        }
    }

    /// Waits until every read model has applied the whole log (`ccare projections status`), so
    /// the pages show all of the demo data and writes are read back at once.
    fn wait_until_caught_up(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(900);
        loop {
            let out = ccare(&["projections", "status", "--json"], &[], &self.data_dir);
            if out.status.success() {
                let status: Value = serde_json::from_slice(&out.stdout).unwrap();
                if status
                    .as_array()
                    .is_some_and(|all| all.iter().all(|s| s["lag"] == 0))
                {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the read models did not catch up within 15 minutes: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// ChromeDriver's log of the browser's console (not in W3C WebDriver; ChromeDriver keeps the
/// Selenium endpoint).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// Headless Chromium through a ChromeDriver of its own, saving screenshots to `artifacts`.
struct Browser {
    client: Client,
    _driver: Process,
    artifacts: PathBuf,
    shots: usize,
}

impl Browser {
    async fn start(artifacts: PathBuf) -> Browser {
        let driver_bin = std::env::var("CCARE_CHROMEDRIVER").unwrap_or("chromedriver".into());
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Process)
            .unwrap_or_else(|e| {
                panic!("{driver_bin} does not start ({e}): run scripts/install-deps (Debian's chromium-driver)")
            });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CCARE_CHROMIUM").unwrap_or("/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"],
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut attempts = 0;
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("ChromeDriver on port {port} does not open a session: {e}"),
            }
        };
        std::fs::create_dir_all(&artifacts).unwrap();
        Browser {
            client,
            _driver: driver,
            artifacts,
            shots: 0,
        }
    }

    /// The console's warnings and errors since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")))
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Asserts the page shows `heading` and logged nothing, and saves its screenshot as `name`.
    async fn check_page(&mut self, name: &str, heading: &str) {
        let h1 = match self.client.find(Locator::Css("main h1")).await {
            Ok(h1) => h1,
            Err(e) => {
                let url = self.client.current_url().await.unwrap();
                let source = self.client.source().await.unwrap_or_default();
                panic!("{name}: no h1 in main at {url} ({e}); the page is:\n{source}")
            }
        };
        let text = h1.text().await.unwrap();
        assert!(
            text.contains(heading),
            "{name}: the heading is {text:?}, expected {heading:?}"
        );
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{name}: the console says {errors:?}");
        self.shots += 1;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(
            self.artifacts.join(format!("{:02}-{name}.png", self.shots)),
            png,
        )
        .unwrap();
    }

    /// Opens `url`, a page the user may not see: the browser logs its refusal (`status`, e.g.
    /// "403") and nothing else.
    async fn visit_refused(&mut self, url: &str, name: &str, heading: &str, status: &str) {
        self.client.goto(url).await.unwrap();
        let errors = self.console_errors().await;
        assert!(
            errors.len() == 1 && errors[0].contains(url) && errors[0].contains(status),
            "{name}: expected only the {status} of {url}, the console says {errors:?}"
        );
        self.check_page(name, heading).await;
    }

    /// Opens `url` and checks it as [`Browser::check_page`] does.
    async fn visit(&mut self, url: &str, name: &str, heading: &str) {
        self.client.goto(url).await.unwrap();
        self.check_page(name, heading).await;
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks what is at `css` (a link or a submit button) and waits until the next page has
    /// replaced this one: WebDriver's click may return before the navigation it starts.
    async fn click(&self, css: &str) {
        let old_page = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while old_page.tag_name().await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "clicking {css} led nowhere within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.client
            .wait()
            .for_element(Locator::Css("body"))
            .await
            .unwrap();
    }

    async fn body_text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Signs in on the login page as an employee.
    async fn sign_in(&mut self, demo: &Demo, employee_id: &str, password: &str) {
        self.client.goto(&demo.url("/portal/login")).await.unwrap();
        self.fill("#user_id", employee_id).await;
        self.fill("#password", password).await;
        self.click("main form button[type=submit]").await;
    }

    async fn sign_out(&mut self) {
        self.click("header form button[type=submit]").await;
    }

    /// The session cookie, for downloads fetched beside the browser.
    async fn session_cookie(&self) -> String {
        let cookie = self
            .client
            .get_named_cookie("ccare_session")
            .await
            .expect("the browser holds a session cookie");
        format!("ccare_session={}", cookie.value())
    }
}

/// An employee added through the JSON API with the administrator's token.
async fn add_employee(
    demo: &Demo,
    http: &reqwest::Client,
    admin_token: &str,
    id: &str,
    role: &str,
) {
    let answer = http
        .post(demo.url("/api/admin/users"))
        .bearer_auth(admin_token)
        .json(&json!({
            "employee_id": id,
            "name": format!("Browser test {role}"),
            "cc_role": role,
            "password": format!("{id} browser password"),
        }))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    // A kept demo directory has them from an earlier run.
    assert!(
        status.is_success() || status == reqwest::StatusCode::CONFLICT,
        "{id}: {status} {}",
        answer.text().await.unwrap()
    );
}

/// The API token of an employee, once the users read model has them (the demo's projector
/// builds every read model in the background after it opens).
async fn api_token(demo: &Demo, http: &reqwest::Client, id: &str, password: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let answer: Value = http
            .post(demo.url("/api/auth/employee-login"))
            .json(&json!({ "employee_id": id, "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(token) = answer["access_token"].as_str() {
            return token.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token for {id}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sends one WhatsApp message through `ccare bridge simulate` and returns the ticket number it
/// printed.
fn simulate_whatsapp_message(demo: &Demo, from: &str, text: &str) -> String {
    let listen = demo.base.trim_start_matches("http://").to_string();
    let out = ccare(
        &["bridge", "simulate", "--from", from, text],
        &[("CCARE_LISTEN", &listen)],
        &demo.data_dir,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bridge simulate: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("ticket: "))
        .unwrap_or_else(|| panic!("no ticket in {stdout}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

const ROLES: &[(&str, &str)] = &[
    ("onm1", "onm_team"),
    ("fin1", "finance_team"),
    ("gen1", "generic"),
];

/// The widest a page may lay out on the narrowest phone the portal is for.
const PHONE_WIDTH: u32 = 360;

#[tokio::test(flavor = "multi_thread")]
async fn the_portal_works_in_headless_chromium_on_the_demo_data_for_every_role() {
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    let _ = std::fs::remove_dir_all(&artifacts);
    let demo = Demo::start();
    demo.wait_until_caught_up();
    let http = reqwest::Client::new();
    let admin_token = api_token(&demo, &http, "admin", &demo.admin_password).await;
    for (id, role) in ROLES {
        add_employee(&demo, &http, &admin_token, id, role).await;
    }
    let mut browser = Browser::start(artifacts.clone()).await;

    every_role_signs_in_and_out(&mut browser, &demo).await;
    browser.sign_in(&demo, "admin", &demo.admin_password).await;
    browser
        .check_page("dashboard-superadmin", "Dashboard")
        .await;
    every_staff_page_opens(&mut browser, &demo).await;
    the_reports_download_as_pdf_with_their_figures(&mut browser, &demo, &http).await;
    a_tariff_change_shows_in_the_history_and_the_audit(&mut browser, &demo).await;
    let account =
        a_customer_is_created_edited_reverted_given_a_meter_and_a_transaction(&mut browser, &demo)
            .await;
    a_whatsapp_message_opens_a_ticket_shown_in_the_portal(&mut browser, &demo).await;
    pages_fit_a_phone(&mut browser, &demo).await;
    browser.sign_out().await;
    a_customer_registers_and_sees_their_own_dashboard(
        &mut browser,
        &demo,
        &http,
        &admin_token,
        &account,
    )
    .await;

    browser.client.close().await.unwrap();
}

async fn every_role_signs_in_and_out(browser: &mut Browser, demo: &Demo) {
    for (id, role) in ROLES {
        browser
            .sign_in(demo, id, &format!("{id} browser password"))
            .await;
        browser
            .check_page(&format!("dashboard-{role}"), "Dashboard")
            .await;
        let text = browser.body_text().await;
        assert!(text.contains(&format!("Browser test {role}")), "{text}");
        // Only the superadmin has the admin pages in the nav.
        assert!(!text.contains("Admin"), "{role}: {text}");
        browser.sign_out().await;
        browser
            .check_page(&format!("signed-out-{role}"), "Sign in")
            .await;
    }
}

/// Every staff page, as the superadmin, following the pages' own links where an address needs
/// an id from the data.
async fn every_staff_page_opens(browser: &mut Browser, demo: &Demo) {
    for (name, path, heading) in [
        ("report", "/portal/report", "O&M quarterly report"),
        ("financial", "/portal/financial", "Financial analytics"),
        ("customers", "/portal/customers", "Customers"),
        ("tables", "/portal/tables", "Tables"),
        ("schema", "/portal/schema", "Schema"),
        ("table-rows", "/portal/tables/tblcustomer", "tblcustomer"),
        ("tariffs", "/portal/tariffs", "Tariffs"),
        ("mutations", "/portal/mutations", "Mutations"),
        ("chain", "/portal/audit/chain", "Hash chain"),
        ("admin", "/portal/admin", "Employees and roles"),
        ("account", "/portal/account", "My profile"),
    ] {
        browser.visit(&demo.url(path), name, heading).await;
    }
    browser
        .visit(
            &demo.url("/portal/tables/tblcustomer"),
            "table-rows",
            "tblcustomer",
        )
        .await;
    browser
        .click("main table tbody tr td a, main table tbody tr th a")
        .await;
    browser.check_page("table-record", "").await;
    browser
        .visit(&demo.url("/portal/customers"), "customers", "Customers")
        .await;
    browser.click("main table tbody tr th a").await;
    browser.check_page("customer", "").await;
    let customer_page = browser.client.current_url().await.unwrap();
    browser
        .client
        .goto(&format!(
            "{}/data",
            customer_page.as_str().trim_end_matches('/')
        ))
        .await
        .unwrap();
    browser.check_page("customer-data", "Customer data").await;
}

async fn the_reports_download_as_pdf_with_their_figures(
    browser: &mut Browser,
    demo: &Demo,
    http: &reqwest::Client,
) {
    browser
        .visit(
            &demo.url("/portal/report"),
            "report",
            "O&M quarterly report",
        )
        .await;
    let svgs = browser
        .client
        .find_all(Locator::Css("main svg[role=img]"))
        .await
        .unwrap();
    assert!(svgs.len() >= 13, "the report shows {} charts", svgs.len());
    let cookie = browser.session_cookie().await;
    for (path, at_least) in [("/portal/report.pdf", 14), ("/portal/financial.pdf", 6)] {
        let answer = http
            .get(demo.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::OK, "{path}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/pdf",
            "{path}"
        );
        let pdf = answer.bytes().await.unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{path}");
        let text = String::from_utf8_lossy(&pdf);
        let pages = text.matches("/Type /Page\n").count()
            + text.matches("/Type /Page\r").count()
            + text.matches("/Type /Page/").count()
            + text.matches("/Type /Page ").count()
            + text.matches("/Type /Page>").count();
        assert!(pages >= at_least, "{path} has {pages} pages");
        std::fs::write(
            browser.artifacts.join(path.trim_start_matches("/portal/")),
            &pdf,
        )
        .unwrap();
    }
}

async fn a_tariff_change_shows_in_the_history_and_the_audit(browser: &mut Browser, demo: &Demo) {
    browser
        .visit(&demo.url("/portal/tariffs"), "tariffs", "Tariffs")
        .await;
    browser
        .client
        .find(Locator::Css("#site-target"))
        .await
        .unwrap()
        .select_by_value("MAK")
        .await
        .unwrap();
    browser.fill("#site-rate", "4.85").await;
    browser.fill("#site-notes", "browser test").await;
    browser
        .click("form:has(#site-target) button[type=submit]")
        .await;
    browser.check_page("tariff-changed", "Tariffs").await;
    let history = browser
        .client
        .find(Locator::Css("#tariff-history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(history.contains("4.85"), "{history}");
    assert!(history.contains("MAK"), "{history}");
}

/// Picks `value` in the select `css`.
async fn choose(browser: &Browser, css: &str, value: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no select {css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} has no option {value}: {e}"));
}

/// The wizard, the list, the audit with its diff and revert, assign meter, and a transaction.
/// Returns the new customer's account number.
async fn a_customer_is_created_edited_reverted_given_a_meter_and_a_transaction(
    browser: &mut Browser,
    demo: &Demo,
) -> String {
    // A long Sesotho family name must not break the layout.
    let last_name = "Ramahlaphahlaphe-Mokhothu";
    browser
        .visit(
            &demo.url("/portal/customers/new"),
            "wizard-person",
            "New customer",
        )
        .await;
    browser.fill("#first-name", "Lerato").await;
    browser.fill("#last-name", last_name).await;
    browser.click("main form button.primary").await;
    browser.check_page("wizard-place", "New customer").await;
    choose(browser, "#concession-name", "MAK").await;
    browser.click("main form button.primary").await;
    browser.check_page("wizard-service", "New customer").await;
    choose(browser, "#customer-position", "HH").await;
    browser.click("main form button.primary").await;
    browser.check_page("wizard-review", "New customer").await;
    browser.click("main form button.primary").await;
    browser.check_page("wizard-created", "Customer ").await;
    assert!(browser.body_text().await.contains(last_name));
    let customer_url = browser.client.current_url().await.unwrap().to_string();
    let customer_id = customer_url.rsplit('/').next().unwrap().to_string();

    browser
        .visit(
            &demo.url(&format!("/portal/customers?q={last_name}")),
            "customer-in-list",
            "Customers",
        )
        .await;
    assert!(browser.body_text().await.contains(&customer_id));
    browser
        .visit(
            &demo.url("/portal/mutations?table=tblcustomer"),
            "creation-in-audit",
            "Mutations",
        )
        .await;
    assert!(browser.body_text().await.contains(&customer_id));

    // Edit the phone, then revert that edit from its mutation's page.
    browser
        .visit(
            &format!("{customer_url}/edit"),
            "customer-edit",
            "Edit customer",
        )
        .await;
    browser.fill("#phone", "58009999").await;
    browser.click("main form button.primary").await;
    browser.check_page("customer-edited", "Customer ").await;
    assert!(browser.body_text().await.contains("58009999"));
    browser
        .visit(
            &demo.url("/portal/mutations?table=tblcustomer"),
            "edit-in-audit",
            "Mutations",
        )
        .await;
    browser.click("#mutation-list tbody tr a").await;
    browser.check_page("edit-diff", "Mutation").await;
    assert!(browser.body_text().await.contains("58009999"));
    browser
        .client
        .find(Locator::Css("#confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .click("form:has(#confirm) button[type=submit]")
        .await;
    browser.check_page("edit-reverted", "Mutation").await;
    browser
        .visit(&customer_url, "customer-after-revert", "Customer ")
        .await;
    assert!(!browser.body_text().await.contains("58009999"));

    // One command gives the customer a meter and an account.
    browser
        .visit(
            &format!("{customer_url}/assign-meter"),
            "assign-meter",
            "Assign a meter",
        )
        .await;
    // Numbers the synthetic ACDB does not use, different on every run of a kept demo.
    let serial: u64 = customer_id.parse().unwrap();
    let account = format!("{:04}MAK", 9000 + serial % 1000);
    browser
        .fill("#meterid", &format!("SMRSD-26-B{serial:07}"))
        .await;
    choose(browser, "#community", "MAK").await;
    choose(browser, "#customer-type", "HH").await;
    browser.fill("#accountnumber", &account).await;
    browser.click("main form button.primary").await;
    browser.check_page("meter-assigned", "Customer ").await;
    assert!(browser.body_text().await.contains(&account));

    // A transaction on the new account.
    browser
        .visit(
            &format!("{customer_url}/data"),
            "customer-data-empty",
            "Customer data",
        )
        .await;
    browser
        .client
        .execute(
            "document.getElementById('transaction-date').value = arguments[0];",
            vec![json!("2026-11-30T10:15")],
        )
        .await
        .unwrap();
    choose(browser, "#payment", "1").await;
    browser.fill("#transaction-amount", "50").await;
    browser.fill("#kwh-value", "10").await;
    browser
        .click("form:has(#transaction-amount) button.primary")
        .await;
    browser
        .check_page("transaction-added", "Customer data")
        .await;
    let ledger = browser
        .client
        .find(Locator::Css("#transaction-list"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ledger.contains("50.00"), "{ledger}");
    account
}

async fn a_whatsapp_message_opens_a_ticket_shown_in_the_portal(browser: &mut Browser, demo: &Demo) {
    let number = tokio::task::block_in_place(|| {
        simulate_whatsapp_message(demo, "+26658001234", "Ha ke na motlakase")
    });
    browser
        .visit(&demo.url("/portal/tickets"), "tickets", "Tickets")
        .await;
    let text = browser.body_text().await;
    assert!(text.contains(&number), "{number} not in {text}");
    browser
        .visit(
            &demo.url(&format!("/portal/tickets/{number}")),
            "ticket",
            &number,
        )
        .await;
    assert!(browser.body_text().await.contains("Ha ke na motlakase"));
}

/// At 360 px nothing makes the page itself scroll sideways (wide tables and charts scroll in
/// their own boxes).
async fn pages_fit_a_phone(browser: &mut Browser, demo: &Demo) {
    browser
        .client
        .set_window_size(PHONE_WIDTH, 800)
        .await
        .unwrap();
    for (name, path) in [
        ("phone-dashboard", "/portal/"),
        ("phone-report", "/portal/report"),
        ("phone-customers", "/portal/customers"),
        ("phone-tickets", "/portal/tickets"),
        ("phone-mutations", "/portal/mutations"),
        ("phone-tariffs", "/portal/tariffs"),
        ("phone-financial", "/portal/financial"),
        ("phone-tables", "/portal/tables/tblcustomer"),
        ("phone-admin", "/portal/admin"),
    ] {
        browser.visit(&demo.url(path), name, "").await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            overflow,
            json!(0),
            "{path} scrolls sideways by {overflow} px on a phone"
        );
    }
    browser.client.set_window_size(1280, 1000).await.unwrap();
}

/// The customer of `account` registers with a code the office issued and signs in.
async fn a_customer_registers_and_sees_their_own_dashboard(
    browser: &mut Browser,
    demo: &Demo,
    http: &reqwest::Client,
    admin_token: &str,
    account: &str,
) {
    let code: Value = http
        .post(demo.url("/api/admin/registration-codes"))
        .bearer_auth(admin_token)
        .json(&json!({ "account_number": account }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = code["registration_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {code}"))
        .to_string();
    browser
        .visit(&demo.url("/portal/register"), "register", "Register")
        .await;
    browser.fill("#customer_id", account).await;
    browser.fill("#registration_code", &code).await;
    browser
        .fill("#password", "a customer's browser password")
        .await;
    browser
        .fill("#password_again", "a customer's browser password")
        .await;
    browser.click("main form button[type=submit]").await;
    browser.check_page("my-dashboard", "Welcome back").await;
    assert!(browser.body_text().await.contains(account));
    browser
        .visit(&demo.url("/portal/my/profile"), "my-profile", "My account")
        .await;
    // A staff page is refused, and says where the customer's pages are.
    browser
        .visit_refused(
            &demo.url("/portal/report"),
            "customer-refused",
            "This page is for staff",
            "403",
        )
        .await;
}
