//! `/portal/customers/{id}/data`: one account of a customer (legacy-system.md §8 Customer Data):
//! who and where, the tariff in force, the dashboard figures (balance, average use, estimated
//! recharge, last payment, totals — computed as `GET /api/customer-data/{account}` computes
//! them: the same ledger query, `Dashboard::compute` at the same moment, the same tariff
//! resolution), 7-day, 30-day and 12-month usage charts, and the account's transactions, sorted
//! and paged; and, for roles that may write the ledger, adding, editing and deleting a
//! transaction through the audited writer with the rules of `/api/tables/{table}`.
//!
//! The ledger is read whole, as the JSON API reads it: the dashboard's figures need every row.
//! The table shows one page of it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDateTime, Utc};
use maud::{html, Markup};
use rust_decimal::Decimal;

use domain::acdb::AcdbValue;
use domain::catalog::table_spec;
use domain::dashboard::{Dashboard, LedgerEntry};
use domain::dates::maseru_local;
use domain::tariff::RateSource;
use domain::write::{self, InputValue, WriteAction};
use projections::customers::Customer;
use projections::reports::{self, LedgerRow, MeterInfo};

use crate::routes::mutations::int_param;
use crate::routes::tables::check_rights;
use crate::routes::tariff::{override_schedules, resolve_with};
use crate::AppState;

use super::charts::{self, Chart, Series};
use super::customer_forms::{
    cell_text, checked, customer, forbidden, input, pending_page, unchanged, write_through, Field,
    Kind, Problems, Typed, Written,
};
use super::dashboard::staff_only;
use super::forms::CheckedForm;
use super::pages::{self, count, decimal, document, respond, see_other, Nav};
use super::session::Session;

/// Transactions on a page of the table (as the legacy page).
const PAGE_SIZE: usize = 25;

/// A balance under this many days of use is shown as a warning.
const LOW_DAYS: i64 = 3;

const PAYMENT_KINDS: &[(&str, &str)] = &[("1", "Payment"), ("0", "Consumption")];

const fn field(column: &'static str, label: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        column,
        label,
        kind,
        required,
    }
}

/// The transaction form's fields (legacy Add/Edit Transaction).
const TRANSACTION_FIELDS: &[Field] = &[
    field("transaction date", "Date and time", Kind::DateTime, true),
    field("payment", "Type", Kind::Choice(PAYMENT_KINDS), true),
    field("transaction amount", "Amount (LSL)", Kind::Number, true),
    field("kwh value", "kWh", Kind::Number, true),
    field("rate used", "Rate (LSL per kWh)", Kind::Number, false),
    field("current balance", "Balance (kWh)", Kind::Number, false),
];

/// Who may write the ledger, as staff read it.
const LEDGER_WRITERS: &str = "superadmin, the O&M team and the finance team";
const DELETERS: &str = "superadmin and the O&M team";

// ---------------------------------------------------------------------------------------------
// The account and its figures.

/// An account of a customer with everything the page shows of it.
struct Account {
    customer: Customer,
    number: String,
    /// The ledger table its rows are from.
    ledger: &'static str,
    rows: Vec<LedgerRow>,
    meter: Option<MeterInfo>,
    board: Dashboard,
    /// The rate in force: LSL per kWh, and where it comes from.
    tariff: Option<(Decimal, String)>,
}

/// The account `wanted` of the customer (their first when not given or not theirs), read as
/// `/api/customer-data/{account}` reads it; `None` for a customer without accounts.
async fn account_of(
    state: &AppState,
    customer: Customer,
    wanted: Option<&str>,
) -> Result<Option<Account>, crate::error::ApiError> {
    let number = wanted
        .and_then(|w| {
            customer
                .account_numbers
                .iter()
                .find(|a| a.eq_ignore_ascii_case(w.trim()))
        })
        .or_else(|| customer.account_numbers.first())
        .cloned();
    let Some(number) = number else {
        return Ok(None);
    };
    let pool = state.read_models.pool();
    let (ledger, rows) = reports::account_ledger(pool, &number).await?;
    let meter = reports::meter_of_account(pool, &number).await?;
    let entries: Vec<LedgerEntry> = rows
        .iter()
        .map(|r| LedgerEntry {
            at: r.at,
            amount: r.amount,
            kwh: r.kwh,
            balance: r.balance,
        })
        .collect();
    let now = maseru_local(Utc::now());
    let board = Dashboard::compute(&entries, now);
    let concession = customer
        .site
        .as_ref()
        .map(|s| s.as_str().to_string())
        .or_else(|| {
            meter
                .as_ref()
                .and_then(|m| m.community.clone())
                .map(|c| c.to_uppercase())
        });
    let tariff = match state.read_models.global_rate_at(now, now).await? {
        None => None,
        Some(global) => {
            let (customer_schedule, site_schedule) =
                override_schedules(state, Some(customer.customer_id), concession.as_deref())
                    .await?;
            let resolved = resolve_with(now, &customer_schedule, &site_schedule, global);
            let source = match resolved.source {
                RateSource::Customer => "customer override".to_string(),
                RateSource::Concession => format!("site {}", resolved.source_key),
                RateSource::Global => "global rate".to_string(),
            };
            Some((resolved.rate, source))
        }
    };
    Ok(Some(Account {
        customer,
        number,
        ledger,
        rows,
        meter,
        board,
        tariff,
    }))
}

/// `seconds` as days, hours and minutes.
fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!(
        "{} d {} h {} min",
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60
    )
}

fn usage_chart(id: &str, title: &str, x: &str, points: Vec<(String, Decimal)>, dp: u32) -> Markup {
    let (labels, values): (Vec<String>, Vec<Decimal>) = points.into_iter().unzip();
    let chart = Chart::new(id, title, x, "kWh", labels).with(Series::bars("kWh", values, dp));
    html! {
        section aria-labelledby={ (id) "-title" } {
            h2 id={ (id) "-title" } { (title) }
            (charts::figure(&chart))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sorting and paging the transactions.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Date,
    Amount,
    Kwh,
    Balance,
}

impl SortKey {
    const ALL: [SortKey; 4] = [
        SortKey::Date,
        SortKey::Amount,
        SortKey::Kwh,
        SortKey::Balance,
    ];

    fn as_str(self) -> &'static str {
        match self {
            SortKey::Date => "date",
            SortKey::Amount => "amount",
            SortKey::Kwh => "kwh",
            SortKey::Balance => "balance",
        }
    }
}

/// The table's view as asked for: which account, the order, the page.
#[derive(Debug, Clone)]
struct View {
    account: String,
    sort: SortKey,
    descending: bool,
    page: i64,
}

impl View {
    fn parse(pairs: &[(String, String)]) -> Result<View, String> {
        let given = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.trim())
        };
        let sort = match given("sort") {
            "" => SortKey::Date,
            text => *SortKey::ALL
                .iter()
                .find(|k| k.as_str() == text)
                .ok_or("sort: must be date, amount, kwh or balance")?,
        };
        let descending = match given("dir") {
            "" | "desc" => true,
            "asc" => false,
            _ => return Err("dir: must be asc or desc".into()),
        };
        let page = given("page");
        let page = int_param(
            "page",
            (!page.is_empty()).then_some(page),
            1,
            1,
            i64::MAX / 64,
        )
        .map_err(|e| e.to_string())?;
        Ok(View {
            account: given("account").to_string(),
            sort,
            descending,
            page,
        })
    }

    fn href(&self, id: i64, sort: SortKey, descending: bool, page: i64) -> String {
        let mut href = format!(
            "/portal/customers/{id}/data?sort={}&dir={}&page={page}",
            sort.as_str(),
            if descending { "desc" } else { "asc" }
        );
        if !self.account.is_empty() {
            href.push_str(&format!(
                "&account={}",
                super::session::encode_query_value(&self.account)
            ));
        }
        href
    }
}

/// `rows` (the ledger's order: most recent first) in the view's order. Rows without the value
/// sorted on go last either way.
fn sorted(rows: &[LedgerRow], sort: SortKey, descending: bool) -> Vec<&LedgerRow> {
    let mut ordered: Vec<&LedgerRow> = rows.iter().collect();
    if sort == SortKey::Date {
        if !descending {
            // Dated rows oldest first, the undated after them.
            ordered.sort_by(|a, b| match (a.at, b.at) {
                (Some(x), Some(y)) => x.cmp(&y).then(a.txn_id.cmp(&b.txn_id)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => a.txn_id.cmp(&b.txn_id),
            });
        }
        return ordered;
    }
    let value = |r: &LedgerRow| match sort {
        SortKey::Amount => Some(r.amount),
        SortKey::Kwh => Some(r.kwh),
        SortKey::Balance => r.balance,
        SortKey::Date => None,
    };
    // Stable: equal values keep the ledger's order.
    ordered.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) if descending => y.cmp(&x),
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    ordered
}

// ---------------------------------------------------------------------------------------------
// The page.

fn at_text(at: Option<NaiveDateTime>) -> String {
    at.map_or_else(|| "–".into(), |at| at.format("%Y-%m-%d %H:%M").to_string())
}

fn sort_header(view: &View, id: i64, key: SortKey, label: &str) -> Markup {
    let current = view.sort == key;
    // A click on the current column turns its order round; another column starts descending.
    let descending = if current { !view.descending } else { true };
    let aria = current.then_some(if view.descending {
        "descending"
    } else {
        "ascending"
    });
    html! {
        th scope="col" class="n" aria-sort=[aria] {
            a href=(view.href(id, key, descending, 1)) { (label) @if current { @if view.descending { " ↓" } @else { " ↑" } } }
        }
    }
}

fn may_write_ledger(session: &Session, ledger: &str) -> bool {
    check_rights(&session.user, ledger, WriteAction::Update).is_ok()
}

fn may_delete_from_ledger(session: &Session, ledger: &str) -> bool {
    check_rights(&session.user, ledger, WriteAction::Delete).is_ok()
}

fn transactions_table(session: &Session, account: &Account, view: &View) -> Markup {
    let id = account.customer.customer_id;
    let ordered = sorted(&account.rows, view.sort, view.descending);
    let total = ordered.len() as i64;
    let pages_total = ((total + PAGE_SIZE as i64 - 1) / PAGE_SIZE as i64).max(1);
    let start = ((view.page - 1).saturating_mul(PAGE_SIZE as i64)).min(total) as usize;
    let shown = &ordered[start..(start + PAGE_SIZE).min(ordered.len())];
    let may_edit = may_write_ledger(session, account.ledger);
    let may_delete = may_delete_from_ledger(session, account.ledger);
    let account_query = super::session::encode_query_value(&account.number);
    html! {
        section aria-labelledby="transactions" {
            h2 id="transactions" { "Transactions" }
            p id="transaction-total" {
                (count(total)) " transactions · page " (view.page) " of " (pages_total)
            }
            @if !shown.is_empty() {
                div class="table-wrap" {
                    table id="transaction-list" {
                        thead {
                            tr {
                                (sort_header(view, id, SortKey::Date, "Date"))
                                th scope="col" { "Type" }
                                (sort_header(view, id, SortKey::Amount, "Amount (LSL)"))
                                (sort_header(view, id, SortKey::Kwh, "kWh"))
                                th scope="col" class="n" { "Rate" }
                                (sort_header(view, id, SortKey::Balance, "Balance"))
                                th scope="col" { "Meter" }
                                @if may_edit || may_delete { th scope="col" { "Change" } }
                            }
                        }
                        tbody {
                            @for r in shown {
                                tr {
                                    th scope="row" class="n" { (at_text(r.at)) }
                                    td { @if r.payment { "Payment" } @else { "Consumption" } }
                                    td class="n" { (decimal(r.amount, 2)) }
                                    td class="n" { (decimal(r.kwh, 2)) }
                                    td class="n" { @if let Some(rate) = r.rate { (decimal(rate, 2)) } @else { "–" } }
                                    td class="n" { @if let Some(b) = r.balance { (decimal(b, 2)) } @else { "–" } }
                                    td { (r.meter_id.as_deref().unwrap_or("–")) }
                                    @if may_edit || may_delete {
                                        td {
                                            @if may_edit {
                                                a href={ "/portal/customers/" (id) "/data/transactions/" (r.txn_id) "/edit?account=" (account_query) } { "Edit" span class="visually-hidden" { " transaction " (r.txn_id) } }
                                            }
                                            @if may_edit && may_delete { " · " }
                                            @if may_delete {
                                                a href={ "/portal/customers/" (id) "/data/transactions/" (r.txn_id) "/delete?account=" (account_query) } { "Delete" span class="visually-hidden" { " transaction " (r.txn_id) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } @else if total > 0 {
                p { "There are no more transactions: go back a page." }
            } @else {
                p { "No transactions on this account." }
            }
            nav aria-label="Transaction pages" class="paging" {
                @if view.page > 1 {
                    a href=(view.href(id, view.sort, view.descending, view.page - 1)) rel="prev" { "Previous" }
                    " "
                }
                @if view.page < pages_total {
                    a href=(view.href(id, view.sort, view.descending, view.page + 1)) rel="next" { "Next" }
                }
            }
        }
    }
}

fn transaction_form(
    session: &Session,
    action: &str,
    account: &str,
    typed: &Typed,
    problems: &Problems,
    button: &str,
) -> Markup {
    html! {
        form method="post" action=(action) class="stack" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="account" value=(account);
            @for f in TRANSACTION_FIELDS {
                (input(f, typed.get(&f.name()).map_or("", String::as_str), problems.get(&f.name()), &[]))
            }
            button type="submit" class="primary" { (button) }
        }
    }
}

fn new_transaction_defaults() -> Typed {
    let mut typed = Typed::new();
    typed.insert(
        "transaction-date".into(),
        maseru_local(Utc::now())
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
    );
    typed.insert("payment".into(), "1".into());
    typed.insert("rate-used".into(), "5.00".into());
    typed
}

/// What a refused add form leaves on the page.
struct AddForm<'a> {
    typed: &'a Typed,
    problems: &'a Problems,
    notice: Option<&'a str>,
}

fn data_main(
    session: &Session,
    account: &Account,
    view: &View,
    add: Option<AddForm<'_>>,
) -> Markup {
    let c = &account.customer;
    let id = c.customer_id;
    let board = &account.board;
    let low = board.avg_kwh_per_day > Decimal::ZERO
        && board.estimated_recharge_seconds < LOW_DAYS * 86_400;
    let defaults = new_transaction_defaults();
    let (typed, problems, notice) = match &add {
        Some(form) => (form.typed, form.problems, form.notice),
        None => (&defaults, &Problems::new(), None),
    };
    let problems = problems.clone();
    html! {
        p { a href={ "/portal/customers/" (id) } { "← Customer " (id) } }
        h1 { "Customer data: " (c.full_name) }
        @if c.account_numbers.len() > 1 {
            nav aria-label="Accounts" class="tabs" {
                @for number in &c.account_numbers {
                    @let href = format!("/portal/customers/{id}/data?account={}", super::session::encode_query_value(number));
                    @if *number == account.number {
                        a href=(href) aria-current="page" { (number) }
                    } @else {
                        a href=(href) { (number) }
                    }
                }
            }
        }
        dl class="facts" id="account-facts" {
            div { dt { "Account" } dd id="account-number" { (account.number) } }
            div { dt { "Customer ID" } dd { (id) } }
            div { dt { "Site" } dd { @if let Some(site) = &c.site { (site.as_str()) } @else { "–" } } }
            div { dt { "Meter" } dd { @if let Some(m) = &account.meter { (m.meter_id) } @else { "–" } } }
            div { dt { "Type" } dd { (account.meter.as_ref().and_then(|m| m.customer_type.as_deref()).or(c.customer_type.as_deref()).unwrap_or("–")) } }
            div { dt { "Village" } dd { (account.meter.as_ref().and_then(|m| m.village.as_deref()).unwrap_or("–")) } }
            div { dt { "Tariff" } dd id="tariff" {
                @if let Some((rate, source)) = &account.tariff { "LSL " (decimal(*rate, 4)) " per kWh (" (source) ")" } @else { "–" }
            } }
        }
        section aria-labelledby="figures" {
            h2 id="figures" { "Figures" }
            dl class="cards" {
                div class="card" { dt { "Balance" } dd id="balance" { (decimal(board.balance_kwh, 2)) " kWh" } }
                div class="card" { dt { "Average use per day" } dd id="average-use" { (decimal(board.avg_kwh_per_day, 2)) " kWh" } }
                div class="card" {
                    dt { "Estimated time to recharge" }
                    dd id="recharge" {
                        (duration(board.estimated_recharge_seconds))
                        @if low { small id="recharge-soon" { "Under " (LOW_DAYS) " days: recharge soon" } }
                    }
                }
                div class="card" {
                    dt { "Last payment" }
                    dd id="last-payment" {
                        @if let Some(p) = &board.last_payment {
                            "LSL " (decimal(p.amount, 2))
                            small { (p.date.format("%Y-%m-%d")) " · +" (decimal(p.kwh, 2)) " kWh" }
                        } @else { "None" }
                    }
                }
                div class="card" { dt { "All-time kWh" } dd id="total-kwh" { (decimal(board.total_kwh, 1)) } }
                div class="card" { dt { "All-time LSL" } dd id="total-lsl" { (decimal(board.total_lsl, 2)) } }
            }
        }
        (usage_chart("usage-7d", "Use in the last 7 days", "Day",
            board.daily_7d.iter().map(|(d, kwh)| (d.format("%m-%d").to_string(), *kwh)).collect(), 2))
        (usage_chart("usage-30d", "Use in the last 30 days", "Day",
            board.daily_30d.iter().map(|(d, kwh)| (d.format("%m-%d").to_string(), *kwh)).collect(), 2))
        (usage_chart("usage-12m", "Use in the last 12 months", "Month",
            board.monthly_12m.iter().map(|(m, kwh)| (m.to_string(), *kwh)).collect(), 1))
        (transactions_table(session, account, view))
        @if may_write_ledger(session, account.ledger) {
            section aria-labelledby="add-transaction" {
                h2 id="add-transaction" { "Add a transaction" }
                @if let Some(notice) = notice {
                    p class="alert" role="alert" id="form-error" { (notice) }
                }
                (transaction_form(session, &format!("/portal/customers/{id}/data/transactions"), &account.number, typed, &problems, "Add the transaction"))
            }
        }
    }
}

fn no_account(session: &Session, id: i64) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No account",
        "This customer has no account number yet: assign a meter first.",
        (&format!("/portal/customers/{id}"), "Back to the customer"),
    )
}

async fn data_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    customer: Customer,
    view: &View,
    add: Option<AddForm<'_>>,
) -> Response {
    let id = customer.customer_id;
    let account = match account_of(state, customer, Some(&view.account)).await {
        Ok(Some(account)) => account,
        Ok(None) => return no_account(session, id),
        Err(error) => return pages::failure(error),
    };
    respond(
        status,
        document(
            &format!("Customer data {id}"),
            Some(session),
            Some(Nav::CustomerData),
            data_main(session, &account, view, add),
        ),
    )
}

/// `GET /portal/customers/{id}/data`.
pub(crate) async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let customer = match customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    let view = match View::parse(&pairs) {
        Ok(view) => view,
        Err(error) => {
            return pages::error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&session),
                "The table cannot be shown so",
                &error,
                (
                    &format!("/portal/customers/{}/data", customer.customer_id),
                    "Show the newest transactions",
                ),
            )
        }
    };
    data_page(&state, &session, StatusCode::OK, customer, &view, None).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct LookupQuery {
    #[serde(default)]
    account: String,
}

fn lookup_main(typed: &str, problem: Option<&str>) -> Markup {
    html! {
        h1 { "Customer data" }
        form method="get" action="/portal/customer-data" class="filters" role="search" {
            div class="field" {
                label for="account" { "Account number or customer id" }
                input type="search" id="account" name="account" value=(typed) maxlength="40"
                    aria-invalid=[problem.map(|_| "true")]
                    aria-describedby=[problem.map(|_| "lookup-error")];
                @if let Some(problem) = problem {
                    p class="error" id="lookup-error" role="alert" { (problem) }
                }
            }
            button type="submit" class="primary" { "Show" }
        }
    }
}

/// `GET /portal/customer-data?account=`: the legacy lookup (an account number, e.g. 0045MAK,
/// or a numeric customer id), sending the browser to that customer's data page.
pub(crate) async fn lookup(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<LookupQuery>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let typed = query.account.trim();
    let refuse = |status: StatusCode, problem: Option<&str>| {
        respond(
            status,
            document(
                "Customer data",
                Some(&session),
                Some(Nav::CustomerData),
                lookup_main(typed, problem),
            ),
        )
    };
    let found = match domain::account::CustomerLookup::parse(typed) {
        None => return refuse(StatusCode::OK, None),
        Some(domain::account::CustomerLookup::CustomerId(id)) => state
            .read_models
            .customer_by_id(id)
            .await
            .map(|c| c.map(|c| (c, None))),
        Some(domain::account::CustomerLookup::Account(account)) => state
            .read_models
            .customers_by_account(&account)
            .await
            .map(|found| found.into_iter().next().map(|c| (c, Some(account)))),
    };
    match found {
        Ok(Some((customer, None))) => see_other(
            &format!("/portal/customers/{}/data", customer.customer_id),
            None,
        ),
        Ok(Some((customer, Some(account)))) => {
            see_other(&data_href(customer.customer_id, &account), None)
        }
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            Some("No customer has that account number or id."),
        ),
        Err(error) => pages::failure(error.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing transactions.

/// The typed transaction's columns: all of them for a new one, or those that differ from
/// `stored` for an edit; or the problems of the form.
fn transaction_columns(
    typed: &Typed,
    stored: Option<&BTreeMap<&'static str, AcdbValue>>,
) -> Result<BTreeMap<String, InputValue>, Problems> {
    let spec = table_spec("tblaccounthistory1").expect("the ledger is catalogued");
    let mut columns = BTreeMap::new();
    let mut problems = Problems::new();
    for f in TRANSACTION_FIELDS {
        let text = typed.get(&f.name()).map_or("", |t| t.trim());
        match checked(spec, f, text) {
            Err(problem) => {
                problems.insert(f.name(), problem);
            }
            Ok(value) => {
                let same = stored.is_some_and(|row| {
                    unchanged(f, &value, row.get(f.column).unwrap_or(&AcdbValue::Null))
                });
                // A new row leaves blank columns out; an edit sends only what differs.
                let left_out = stored.is_none() && value.is_null();
                if !(same || left_out) {
                    columns.insert(f.column.to_string(), InputValue::Text(text.to_string()));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(problems)
    }
}

/// A ledger row's cells as the form's columns hold them.
fn stored_cells(row: &LedgerRow) -> BTreeMap<&'static str, AcdbValue> {
    let number = |d: Decimal| AcdbValue::Decimal { decimal: d };
    BTreeMap::from([
        (
            "transaction date",
            row.at
                .map_or(AcdbValue::Null, |datetime| AcdbValue::DateTime { datetime }),
        ),
        ("payment", AcdbValue::Bool(row.payment)),
        ("transaction amount", number(row.amount)),
        ("kwh value", number(row.kwh)),
        ("rate used", row.rate.map_or(AcdbValue::Null, number)),
        (
            "current balance",
            row.balance.map_or(AcdbValue::Null, number),
        ),
    ])
}

fn stored_typed(row: &LedgerRow) -> Typed {
    let cells = stored_cells(row);
    TRANSACTION_FIELDS
        .iter()
        .map(|f| {
            let value = cells.get(f.column).cloned().unwrap_or(AcdbValue::Null);
            (f.name(), cell_text(&value, f.kind))
        })
        .collect()
}

fn data_href(id: i64, account: &str) -> String {
    format!(
        "/portal/customers/{id}/data?account={}",
        super::session::encode_query_value(account)
    )
}

/// The refusal of a role that may not write the ledger (`action`), if it may not.
fn ledger_gate(session: &Session, ledger: &str, action: WriteAction, id: i64) -> Option<Response> {
    if session.user.employee().is_err() {
        return Some(staff_only(session));
    }
    check_rights(&session.user, ledger, action).err().map(|_| {
        let who = if action == WriteAction::Delete {
            DELETERS
        } else {
            LEDGER_WRITERS
        };
        forbidden(
            session,
            who,
            (
                &format!("/portal/customers/{id}/data"),
                "Back to the customer data",
            ),
        )
    })
}

/// `POST /portal/customers/{id}/data/transactions`: a new ledger row of the account.
pub(crate) async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: CheckedForm<Typed>,
) -> Response {
    let CheckedForm {
        session,
        fields: typed,
    } = form;
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let customer = match customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    let id = customer.customer_id;
    let wanted = typed.get("account").cloned().unwrap_or_default();
    let account = match account_of(&state, customer.clone(), Some(&wanted)).await {
        Ok(Some(account)) => account,
        Ok(None) => return no_account(&session, id),
        Err(error) => return pages::failure(error),
    };
    if let Some(refused) = ledger_gate(&session, account.ledger, WriteAction::Create, id) {
        return refused;
    }
    let view = View {
        account: account.number.clone(),
        sort: SortKey::Date,
        descending: true,
        page: 1,
    };
    let refuse = |status: StatusCode, problems: Problems, notice: Option<String>| {
        let state = state.clone();
        let session = session.clone();
        let customer = customer.clone();
        let typed = typed.clone();
        let view = view.clone();
        async move {
            let form = AddForm {
                typed: &typed,
                problems: &problems,
                notice: notice.as_deref(),
            };
            data_page(&state, &session, status, customer, &view, Some(form)).await
        }
    };
    let mut columns = match transaction_columns(&typed, None) {
        Ok(columns) => columns,
        Err(problems) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                problems,
                Some("Some fields need correcting: see beside them. Nothing was added.".into()),
            )
            .await
        }
    };
    columns.insert(
        "accountnumber".into(),
        InputValue::Text(account.number.clone()),
    );
    if let Some(meter) = &account.meter {
        columns.insert("meterid".into(), InputValue::Text(meter.meter_id.clone()));
    }
    let known = match state.writes.columns(account.ledger).await {
        Ok(known) => known,
        Err(error) => return pages::failure(error.into()),
    };
    let write = match write::validate(account.ledger, WriteAction::Create, None, &columns, &known) {
        Ok(write) => write,
        Err(error) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                Problems::new(),
                Some(error.to_string()),
            )
            .await
        }
    };
    let back = data_href(id, &account.number);
    match write_through(&state, &session, vec![write], projections::analytics::NAME).await {
        Ok(Written::Applied(_)) => see_other(&back, None),
        Ok(Written::Pending) => pending_page(&session, (&back, "Back to the customer data")),
        Ok(Written::NotFound) => super::customer_forms::no_customer(&session),
        Ok(Written::Refused {
            status, message, ..
        }) => refuse(status, Problems::new(), Some(message)).await,
        Err(error) => pages::failure(error),
    }
}

/// The account's ledger row `txn` named by a path, or the page to answer instead.
async fn transaction_of(
    state: &AppState,
    session: &Session,
    id: &str,
    txn: &str,
    account: &str,
) -> Result<(Account, LedgerRow), Response> {
    let customer = customer(state, session, id).await?;
    let id = customer.customer_id;
    let not_found = || {
        pages::error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            "No such transaction",
            "This account has no transaction with that id.",
            (
                &format!("/portal/customers/{id}/data"),
                "Back to the customer data",
            ),
        )
    };
    let Ok(txn) = txn.trim().parse::<i64>() else {
        return Err(not_found());
    };
    let account = match account_of(state, customer, Some(account)).await {
        Ok(Some(account)) => account,
        Ok(None) => return Err(no_account(session, id)),
        Err(error) => return Err(pages::failure(error)),
    };
    match account.rows.iter().find(|r| r.txn_id == txn).cloned() {
        Some(row) => Ok((account, row)),
        None => Err(not_found()),
    }
}

fn edit_main(
    session: &Session,
    account: &Account,
    row: &LedgerRow,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
) -> Markup {
    let id = account.customer.customer_id;
    html! {
        p { a href=(data_href(id, &account.number)) { "← Customer data" } }
        h1 { "Edit transaction " (row.txn_id) }
        p { "Account " (account.number) " · only the fields you change are saved." }
        @if let Some(notice) = notice {
            p class="alert" role="alert" id="form-error" { (notice) }
        }
        (transaction_form(session, &format!("/portal/customers/{id}/data/transactions/{}/edit", row.txn_id), &account.number, typed, problems, "Save changes"))
    }
}

fn edit_page(
    session: &Session,
    status: StatusCode,
    account: &Account,
    row: &LedgerRow,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
) -> Response {
    respond(
        status,
        document(
            &format!("Edit transaction {}", row.txn_id),
            Some(session),
            Some(Nav::CustomerData),
            edit_main(session, account, row, typed, problems, notice),
        ),
    )
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct AccountQuery {
    #[serde(default)]
    account: String,
}

/// `GET /portal/customers/{id}/data/transactions/{txn}/edit?account=`.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    Path((id, txn)): Path<(String, String)>,
    Query(query): Query<AccountQuery>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let (account, row) = match transaction_of(&state, &session, &id, &txn, &query.account).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let id = account.customer.customer_id;
    if let Some(refused) = ledger_gate(&session, account.ledger, WriteAction::Update, id) {
        return refused;
    }
    edit_page(
        &session,
        StatusCode::OK,
        &account,
        &row,
        &stored_typed(&row),
        &Problems::new(),
        None,
    )
}

/// `POST /portal/customers/{id}/data/transactions/{txn}/edit`: the changed fields.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path((id, txn)): Path<(String, String)>,
    form: CheckedForm<Typed>,
) -> Response {
    let CheckedForm {
        session,
        fields: typed,
    } = form;
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let wanted = typed.get("account").cloned().unwrap_or_default();
    let (account, row) = match transaction_of(&state, &session, &id, &txn, &wanted).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let id = account.customer.customer_id;
    if let Some(refused) = ledger_gate(&session, account.ledger, WriteAction::Update, id) {
        return refused;
    }
    let refuse = |status, problems: &Problems, notice: Option<&str>| {
        edit_page(&session, status, &account, &row, &typed, problems, notice)
    };
    let changed = match transaction_columns(&typed, Some(&stored_cells(&row))) {
        Ok(changed) => changed,
        Err(problems) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                Some("Some fields need correcting: see beside them. Nothing was saved."),
            )
        }
    };
    let back = data_href(id, &account.number);
    if changed.is_empty() {
        return see_other(&back, None);
    }
    let known = match state.writes.columns(account.ledger).await {
        Ok(known) => known,
        Err(error) => return pages::failure(error.into()),
    };
    let write = match write::validate(
        account.ledger,
        WriteAction::Update,
        Some(&row.txn_id.to_string()),
        &changed,
        &known,
    ) {
        Ok(write) => write,
        Err(error) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &Problems::new(),
                Some(&error.to_string()),
            )
        }
    };
    match write_through(&state, &session, vec![write], projections::analytics::NAME).await {
        Ok(Written::Applied(_)) => see_other(&back, None),
        Ok(Written::Pending) => pending_page(&session, (&back, "Back to the customer data")),
        Ok(Written::NotFound) => super::customer_forms::no_customer(&session),
        Ok(Written::Refused {
            status, message, ..
        }) => refuse(status, &Problems::new(), Some(&message)),
        Err(error) => pages::failure(error),
    }
}

fn delete_main(session: &Session, account: &Account, row: &LedgerRow) -> Markup {
    let id = account.customer.customer_id;
    html! {
        p { a href=(data_href(id, &account.number)) { "← Customer data" } }
        h1 { "Delete transaction " (row.txn_id) "?" }
        dl class="facts" id="transaction" {
            div { dt { "Account" } dd { (account.number) } }
            div { dt { "Date" } dd { (at_text(row.at)) } }
            div { dt { "Type" } dd { @if row.payment { "Payment" } @else { "Consumption" } } }
            div { dt { "Amount (LSL)" } dd { (decimal(row.amount, 2)) } }
            div { dt { "kWh" } dd { (decimal(row.kwh, 2)) } }
        }
        p { "The deletion is audited and can be reverted from the Mutations page." }
        form method="post" action={ "/portal/customers/" (id) "/data/transactions/" (row.txn_id) "/delete" } {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="account" value=(account.number);
            input type="hidden" name="confirm" value="yes";
            button type="submit" class="primary" { "Yes, delete transaction " (row.txn_id) }
            " "
            a href=(data_href(id, &account.number)) { "No, keep it" }
        }
    }
}

fn delete_page(
    session: &Session,
    status: StatusCode,
    account: &Account,
    row: &LedgerRow,
) -> Response {
    respond(
        status,
        document(
            &format!("Delete transaction {}", row.txn_id),
            Some(session),
            Some(Nav::CustomerData),
            delete_main(session, account, row),
        ),
    )
}

/// `GET /portal/customers/{id}/data/transactions/{txn}/delete?account=`: the confirmation.
pub(crate) async fn delete_confirm(
    State(state): State<AppState>,
    session: Session,
    Path((id, txn)): Path<(String, String)>,
    Query(query): Query<AccountQuery>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let (account, row) = match transaction_of(&state, &session, &id, &txn, &query.account).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let id = account.customer.customer_id;
    if let Some(refused) = ledger_gate(&session, account.ledger, WriteAction::Delete, id) {
        return refused;
    }
    delete_page(&session, StatusCode::OK, &account, &row)
}

/// `POST /portal/customers/{id}/data/transactions/{txn}/delete`, with `confirm=yes`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((id, txn)): Path<(String, String)>,
    form: CheckedForm<Typed>,
) -> Response {
    let CheckedForm {
        session,
        fields: typed,
    } = form;
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let wanted = typed.get("account").cloned().unwrap_or_default();
    let (account, row) = match transaction_of(&state, &session, &id, &txn, &wanted).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let id = account.customer.customer_id;
    if let Some(refused) = ledger_gate(&session, account.ledger, WriteAction::Delete, id) {
        return refused;
    }
    if typed.get("confirm").map(|c| c.trim()) != Some("yes") {
        return delete_page(&session, StatusCode::UNPROCESSABLE_ENTITY, &account, &row);
    }
    let write = match write::validate(
        account.ledger,
        WriteAction::Delete,
        Some(&row.txn_id.to_string()),
        &BTreeMap::new(),
        &[],
    ) {
        Ok(write) => write,
        Err(error) => return pages::failure(error.into()),
    };
    let back = data_href(id, &account.number);
    match write_through(&state, &session, vec![write], projections::analytics::NAME).await {
        Ok(Written::Applied(_)) => see_other(&back, None),
        Ok(Written::Pending) => pending_page(&session, (&back, "Back to the customer data")),
        Ok(Written::NotFound) => super::customer_forms::no_customer(&session),
        Ok(Written::Refused {
            status, message, ..
        }) => pages::error_page(
            status,
            Some(&session),
            "The transaction was not deleted",
            &message,
            (&back, "Back to the customer data"),
        ),
        Err(error) => pages::failure(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, at: Option<&str>, amount: &str, balance: Option<&str>) -> LedgerRow {
        LedgerRow {
            txn_id: id,
            account: Some("0001MAK".into()),
            meter_id: None,
            at: at.map(|a| a.parse().unwrap()),
            amount: amount.parse().unwrap(),
            rate: None,
            kwh: Decimal::ZERO,
            payment: true,
            balance: balance.map(|b| b.parse().unwrap()),
        }
    }

    #[test]
    fn transactions_sort_by_any_column_with_missing_values_last() {
        // The ledger's order: newest first, undated last.
        let rows = vec![
            row(3, Some("2025-03-01T00:00:00"), "5", None),
            row(2, Some("2025-02-01T00:00:00"), "20", Some("1")),
            row(1, None, "10", Some("2")),
        ];
        let ids = |v: Vec<&LedgerRow>| v.iter().map(|r| r.txn_id).collect::<Vec<_>>();
        assert_eq!(ids(sorted(&rows, SortKey::Date, true)), vec![3, 2, 1]);
        assert_eq!(ids(sorted(&rows, SortKey::Date, false)), vec![2, 3, 1]);
        assert_eq!(ids(sorted(&rows, SortKey::Amount, true)), vec![2, 1, 3]);
        assert_eq!(ids(sorted(&rows, SortKey::Amount, false)), vec![3, 1, 2]);
        assert_eq!(ids(sorted(&rows, SortKey::Balance, false)), vec![2, 1, 3]);
    }

    #[test]
    fn a_bad_sort_direction_or_page_is_named() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert!(View::parse(&pairs(&[("sort", "name")]))
            .unwrap_err()
            .starts_with("sort:"));
        assert!(View::parse(&pairs(&[("dir", "up")]))
            .unwrap_err()
            .starts_with("dir:"));
        assert!(View::parse(&pairs(&[("page", "0")])).is_err());
        let view = View::parse(&pairs(&[
            ("sort", "kwh"),
            ("dir", "asc"),
            ("account", "0001MAK"),
        ]))
        .unwrap();
        assert_eq!(
            view.href(7, view.sort, view.descending, 2),
            "/portal/customers/7/data?sort=kwh&dir=asc&page=2&account=0001MAK"
        );
    }
}
