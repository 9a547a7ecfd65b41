//! The customer write pages (legacy-system.md §8 Customers): edit a customer, delete one after a
//! confirmation step, the new-customer wizard, and assign a meter — every change a command
//! through the audited writer, the same path as `POST/PUT/DELETE /api/tables/{table}`, with the
//! same role rules (`write_customers`: superadmin and the O&M team; delete likewise).
//!
//! - **Edit** sends only the fields whose value changed (compared with the customer's captured
//!   row after coercion, so `+266 5812 3456` for a stored `58123456` is no change): the
//!   mutation's diff holds only what the user changed.
//! - **The wizard** is three plain forms and a review, each step posting every value typed so
//!   far (the other steps' as hidden fields) with its CSRF token; nothing is written until the
//!   review's "Create".
//! - **Assign meter** is one command: the `tblmeter` row and the `tblaccountnumbers` row are
//!   applied together in one ACDB transaction (`AcdbWrites::submit_together`), both or neither.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDateTime, Utc};
use maud::{html, Markup};

use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{table_spec, TableSpec};
use domain::command::{CommandError, WriteOutcome, WriteRejection};
use domain::dates::maseru_local;
use domain::site::SiteCode;
use domain::write::{self, cell_matches, InputValue, TableWrite, WriteAction, WriteError};
use projections::customers::Customer;

use crate::error::ApiError;
use crate::AppState;

use super::customers::may_write_customers;
use super::dashboard::staff_only;
use super::forms::CheckedForm;
use super::pages::{self, document, respond, see_other, Nav};
use super::session::Session;

const CUSTOMERS: &str = "tblcustomer";
const METERS: &str = "tblmeter";
const ACCOUNTS: &str = "tblaccountnumbers";

/// Who creates rows from the portal, as the legacy wizard wrote it.
const CREATED_BY: &str = "CC Portal";

/// The customer types of the legacy wizard (`CUSTOMER POSITION`).
const CUSTOMER_TYPES: &[(&str, &str)] = &[
    ("HH", "HH: household"),
    ("SME", "SME: small business"),
    ("CHU", "CHU: church"),
    ("SCP", "SCP"),
    ("SCH", "SCH: school"),
    ("GOV", "GOV: government"),
    ("COM", "COM: commercial"),
    ("IND", "IND: industrial"),
];

const GENDERS: &[(&str, &str)] = &[("Male", "Male"), ("Female", "Female")];

/// How a field is typed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Tel,
    Email,
    /// A day: the stored time of day is kept when the day is unchanged.
    Date,
    /// A day and a time of day, to the minute.
    DateTime,
    /// A decimal number (coordinates, money, kWh).
    Number,
    /// One of a fixed list.
    Choice(&'static [(&'static str, &'static str)]),
    /// A site code, from the sites customers belong to.
    Site,
}

/// A form field of an ACDB column.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub(super) column: &'static str,
    pub(super) label: &'static str,
    pub(super) kind: Kind,
    pub(super) required: bool,
}

const fn field(column: &'static str, label: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        column,
        label,
        kind,
        required,
    }
}

impl Field {
    /// The field's form name and element id: the column, lower case, spaces as dashes.
    pub(super) fn name(&self) -> String {
        self.column.to_ascii_lowercase().replace(' ', "-")
    }
}

/// Every `tblcustomer` column the portal edits, in the order the form shows them.
const CUSTOMER_FIELDS: &[Field] = &[
    field("FIRST NAME", "First name", Kind::Text, true),
    field("MIDDLE NAME", "Middle name", Kind::Text, false),
    field("LAST NAME", "Last name", Kind::Text, true),
    field("GENDER", "Gender", Kind::Choice(GENDERS), false),
    field("ID NUMBER", "National ID", Kind::Text, false),
    field("PHONE", "Phone", Kind::Tel, false),
    field("CELL PHONE 1", "Cell phone", Kind::Tel, false),
    field("CELL PHONE 2", "Second cell phone", Kind::Tel, false),
    field("EMAIL", "E-mail", Kind::Email, false),
    field("Concession name", "Site", Kind::Text, false),
    field("DISTRICT", "District", Kind::Text, false),
    field("PLOT NUMBER", "Plot or stand number", Kind::Text, false),
    field("STREET ADDRESS", "Village or street", Kind::Text, false),
    field("CITY", "City", Kind::Text, false),
    field("GPS Y", "GPS latitude", Kind::Number, false),
    field("GPS X", "GPS longitude", Kind::Number, false),
    field(
        "CUSTOMER POSITION",
        "Customer type",
        Kind::Choice(CUSTOMER_TYPES),
        false,
    ),
    field(
        "DATE SERVICE CONNECTED",
        "Date connected",
        Kind::Date,
        false,
    ),
    field(
        "DATE SERVICE TERMINATED",
        "Date terminated",
        Kind::Date,
        false,
    ),
];

/// The wizard's steps: their titles and fields (legacy NewCustomerWizard).
const WIZARD_STEPS: &[(&str, &[Field])] = &[
    (
        "The person",
        &[
            field("FIRST NAME", "First name", Kind::Text, true),
            field("LAST NAME", "Last name", Kind::Text, true),
            field("MIDDLE NAME", "Middle name", Kind::Text, false),
            field("GENDER", "Gender", Kind::Choice(GENDERS), false),
            field("ID NUMBER", "National ID", Kind::Text, false),
            field("PHONE", "Phone", Kind::Tel, false),
            field("CELL PHONE 1", "Cell phone", Kind::Tel, false),
        ],
    ),
    (
        "The place",
        &[
            field("Concession name", "Site", Kind::Site, true),
            field("DISTRICT", "District", Kind::Text, false),
            field("PLOT NUMBER", "Plot or stand number", Kind::Text, false),
            field("STREET ADDRESS", "Village or street", Kind::Text, false),
            field("GPS Y", "GPS latitude", Kind::Number, false),
            field("GPS X", "GPS longitude", Kind::Number, false),
        ],
    ),
    (
        "The service",
        &[
            field(
                "CUSTOMER POSITION",
                "Customer type",
                Kind::Choice(CUSTOMER_TYPES),
                true,
            ),
            field(
                "DATE SERVICE CONNECTED",
                "Date connected",
                Kind::Date,
                false,
            ),
        ],
    ),
];

/// What was typed, by field name.
pub(super) type Typed = BTreeMap<String, String>;
/// What is wrong, by field name.
pub(super) type Problems = BTreeMap<String, String>;

fn spec(table: &str) -> &'static TableSpec {
    table_spec(table).expect("the portal writes catalogued tables")
}

/// A stored cell as a form shows it: dates as `YYYY-MM-DD` (with the time, when not midnight,
/// for date-times), decimals without trailing zeros.
pub(super) fn cell_text(value: &AcdbValue, kind: Kind) -> String {
    match (value, kind) {
        (AcdbValue::DateTime { datetime }, Kind::Date) => datetime.format("%Y-%m-%d").to_string(),
        (AcdbValue::DateTime { datetime }, Kind::DateTime) => {
            datetime.format("%Y-%m-%dT%H:%M").to_string()
        }
        (other, _) => other.as_text().unwrap_or_default(),
    }
}

fn trimmed<'a>(typed: &'a Typed, field: &Field) -> &'a str {
    typed.get(&field.name()).map_or("", |v| v.trim())
}

/// `typed`'s value of `field` coerced to its column of `spec`, or what is wrong with it.
pub(super) fn checked(spec: &TableSpec, field: &Field, text: &str) -> Result<AcdbValue, String> {
    if text.is_empty() {
        return if field.required {
            Err(format!("{} is required.", field.label))
        } else {
            Ok(AcdbValue::Null)
        };
    }
    if let Kind::Choice(options) = field.kind {
        if !options.iter().any(|(value, _)| *value == text) {
            return Err(format!(
                "Choose one of the {}s.",
                field.label.to_lowercase()
            ));
        }
    }
    if field.kind == Kind::Site {
        SiteCode::parse(text).map_err(|e| format!("{}: {e}", field.label))?;
    }
    write::coerce(spec, field.column, &InputValue::Text(text.to_string())).map_err(|e| match e {
        WriteError::Invalid { problem, .. } => format!("{}: {problem}", field.label),
        other => other.to_string(),
    })
}

/// Whether `value` (as typed and coerced) is what `stored` already holds: a day typed for a
/// date-time whose day it is counts as unchanged, so an edit never drops the stored time.
pub(super) fn unchanged(field: &Field, value: &AcdbValue, stored: &AcdbValue) -> bool {
    match (field.kind, value, stored) {
        (
            Kind::Date,
            AcdbValue::DateTime { datetime: typed },
            AcdbValue::DateTime { datetime: kept },
        ) => typed.date() == kept.date(),
        _ => cell_matches(value, stored),
    }
}

/// One labelled input (or select) with its error beside it.
pub(super) fn input(
    field: &Field,
    value: &str,
    problem: Option<&String>,
    sites: &[String],
) -> Markup {
    let name = field.name();
    let error_id = format!("{name}-error");
    let invalid = problem.map(|_| "true");
    let described = problem.map(|_| error_id.as_str());
    html! {
        div class="field" {
            label for=(name) {
                (field.label)
                @if field.required { " (required)" }
            }
            @match field.kind {
                Kind::Choice(options) => {
                    select id=(name) name=(name) required[field.required]
                        aria-invalid=[invalid] aria-describedby=[described] {
                        option value="" selected[value.is_empty()] { "–" }
                        @for (option, label) in options {
                            option value=(option) selected[value == *option] { (label) }
                        }
                        @if !value.is_empty() && !options.iter().any(|(o, _)| *o == value) {
                            option value=(value) selected { (value) }
                        }
                    }
                }
                Kind::Site => {
                    select id=(name) name=(name) required[field.required]
                        aria-invalid=[invalid] aria-describedby=[described] {
                        option value="" selected[value.is_empty()] { "Choose a site" }
                        @for site in sites {
                            option value=(site) selected[value == site] { (site) }
                        }
                        @if !value.is_empty() && !sites.iter().any(|s| s == value) {
                            option value=(value) selected { (value) }
                        }
                    }
                }
                kind => {
                    @let (kind_name, mode) = match kind {
                        Kind::Tel => ("tel", None),
                        Kind::Email => ("email", None),
                        Kind::Date => ("date", None),
                        Kind::DateTime => ("datetime-local", None),
                        Kind::Number => ("text", Some("decimal")),
                        _ => ("text", None),
                    };
                    input type=(kind_name) id=(name) name=(name) value=(value) inputmode=[mode]
                        maxlength="255" required[field.required]
                        aria-invalid=[invalid] aria-describedby=[described];
                }
            }
            @if let Some(problem) = problem {
                p class="error" id=(error_id) role="alert" { (problem) }
            }
        }
    }
}

/// The 403 page of a role that may not do what it asked.
pub(super) fn forbidden(session: &Session, who_may: &str, back: (&str, &str)) -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        "Not allowed for your role",
        &format!("Only {who_may} may do this. Nothing was changed."),
        back,
    )
}

pub(super) fn no_customer(session: &Session) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No such customer",
        "There is no customer with that id. Check the id, or search for the customer.",
        ("/portal/customers", "Search customers"),
    )
}

const WRITERS: &str = "superadmin and the O&M team";

/// The customer `raw` names, or the page to answer instead (404, 5xx).
pub(super) async fn customer(
    state: &AppState,
    session: &Session,
    raw: &str,
) -> Result<Customer, Response> {
    let Ok(id) = raw.trim().parse::<i64>() else {
        return Err(no_customer(session));
    };
    match state.read_models.customer_by_id(id).await {
        Ok(Some(customer)) => Ok(customer),
        Ok(None) => Err(no_customer(session)),
        Err(error) => Err(pages::failure(error.into())),
    }
}

/// The customer of `raw`, for a user who may write customers (else the refusal to show).
async fn writable_customer(
    state: &AppState,
    session: &Session,
    raw: &str,
) -> Result<Customer, Response> {
    match gate(session) {
        Some(refused) => Err(refused),
        None => customer(state, session, raw).await,
    }
}

/// The staff-and-role gate of the write pages: the page to answer instead, if any.
fn gate(session: &Session) -> Option<Response> {
    if session.user.employee().is_err() {
        return Some(staff_only(session));
    }
    (!may_write_customers(session))
        .then(|| forbidden(session, WRITERS, ("/portal/customers", "Search customers")))
}

// ---------------------------------------------------------------------------------------------
// Handing writes to the writer.

/// What came of writes handed to the audited writer.
pub(super) enum Written {
    /// Applied, and visible in the read model and the audit: the rows' keys.
    Applied(Vec<String>),
    /// Refused (before anything was recorded, or by the ACDB: nothing changed): the status to
    /// answer with, the table and column at fault when known, and why.
    Refused {
        status: StatusCode,
        table: Option<String>,
        column: Option<String>,
        message: String,
    },
    /// A row to change is not there (any more).
    NotFound,
    /// Recorded, and applied to the ACDB shortly.
    Pending,
}

/// Hands `writes` to the writer as one command of the session's user (together, in one ACDB
/// transaction, when there are several) and waits until `read_model` and the audit show them.
pub(super) async fn write_through(
    state: &AppState,
    session: &Session,
    mut writes: Vec<TableWrite>,
    read_model: &'static str,
) -> Result<Written, ApiError> {
    let context = session.user.command_context();
    let tables: Vec<String> = writes.iter().map(|w| w.table.clone()).collect();
    let outcomes = if writes.len() == 1 {
        let one = writes.pop().expect("one write");
        state.writes.submit(one, &context).await.map(|o| vec![o])
    } else {
        state.writes.submit_together(writes, &context).await
    };
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(CommandError::Rejected(rejection)) => {
            return Ok(match rejection {
                WriteRejection::NotFound { .. } => Written::NotFound,
                WriteRejection::Invalid(WriteError::Invalid { field, problem }) => {
                    Written::Refused {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        table: None,
                        column: Some(field),
                        message: problem,
                    }
                }
                WriteRejection::AlreadyExists { ref table, .. } => Written::Refused {
                    status: StatusCode::CONFLICT,
                    table: Some(table.clone()),
                    column: None,
                    message: rejection.to_string(),
                },
                WriteRejection::Conflict(message) => Written::Refused {
                    status: StatusCode::CONFLICT,
                    table: None,
                    column: None,
                    message,
                },
                other => return Err(other.into()),
            })
        }
        Err(other) => return Err(other.into()),
    };
    let mut keys = Vec::with_capacity(outcomes.len());
    let mut last = None;
    for (outcome, table) in outcomes.iter().zip(&tables) {
        match outcome {
            WriteOutcome::Applied { key, position, .. } => {
                keys.push(key.clone());
                last = last.max(*position);
            }
            // The one the ACDB refused says why; the others only that they went with it.
            WriteOutcome::Failed { reason, .. } if !reason.starts_with("not applied:") => {
                return Ok(Written::Refused {
                    status: StatusCode::CONFLICT,
                    table: Some(table.clone()),
                    column: None,
                    message: format!("The ACDB refused the change: {reason}. Nothing was changed."),
                })
            }
            WriteOutcome::Failed { .. } => {}
            WriteOutcome::Pending { .. } => return Ok(Written::Pending),
        }
    }
    if keys.len() < outcomes.len() {
        return Ok(Written::Refused {
            status: StatusCode::CONFLICT,
            table: None,
            column: None,
            message: "The ACDB refused the change. Nothing was changed.".into(),
        });
    }
    if let Some(position) = last {
        state
            .read_models
            .wait_until_applied(read_model, position, crate::VISIBLE_WITHIN)
            .await?;
        state.visible_mutation(Some(position)).await?;
    }
    Ok(Written::Applied(keys))
}

/// The page of writes recorded but not applied yet.
pub(super) fn pending_page(session: &Session, back: (&str, &str)) -> Response {
    pages::error_page(
        StatusCode::ACCEPTED,
        Some(session),
        "The change is recorded",
        "It will be applied to the ACDB shortly; the pages show it once it is.",
        back,
    )
}

/// The columns of `table` the writer knows (the catalogue's and any added in Access).
async fn columns(state: &AppState, table: &str) -> Result<Vec<String>, ApiError> {
    Ok(state.writes.columns(table).await?)
}

// ---------------------------------------------------------------------------------------------
// Edit.

fn stored_values(customer: &Customer) -> Typed {
    CUSTOMER_FIELDS
        .iter()
        .map(|f| {
            (
                f.name(),
                cell_text(customer.source_row.get(f.column), f.kind),
            )
        })
        .collect()
}

fn edit_main(
    session: &Session,
    id: i64,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
) -> Markup {
    html! {
        p { a href={ "/portal/customers/" (id) } { "← Customer " (id) } }
        h1 { "Edit customer " (id) }
        @if let Some(notice) = notice {
            p class="alert" role="alert" id="form-error" { (notice) }
        }
        form method="post" action={ "/portal/customers/" (id) "/edit" } class="stack" {
            input type="hidden" name="csrf" value=(session.csrf);
            @for f in CUSTOMER_FIELDS {
                (input(f, typed.get(&f.name()).map_or("", String::as_str), problems.get(&f.name()), &[]))
            }
            p class="muted" { "Only the fields you change are saved." }
            button type="submit" class="primary" { "Save changes" }
        }
    }
}

fn edit_page(
    session: &Session,
    status: StatusCode,
    id: i64,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
) -> Response {
    respond(
        status,
        document(
            &format!("Edit customer {id}"),
            Some(session),
            Some(Nav::Customers),
            edit_main(session, id, typed, problems, notice),
        ),
    )
}

/// `GET /portal/customers/{id}/edit`.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let customer = match writable_customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    edit_page(
        &session,
        StatusCode::OK,
        customer.customer_id,
        &stored_values(&customer),
        &Problems::new(),
        None,
    )
}

/// The columns of `tblcustomer` whose typed value differs from the stored one, or the
/// problems of the fields that cannot be stored.
fn changed_columns(
    customer: &Customer,
    typed: &Typed,
) -> Result<BTreeMap<String, InputValue>, Problems> {
    let spec = spec(CUSTOMERS);
    let mut changed = BTreeMap::new();
    let mut problems = Problems::new();
    for f in CUSTOMER_FIELDS {
        // A field the form did not send is left as it is.
        let Some(text) = typed.get(&f.name()).map(|t| t.trim()) else {
            continue;
        };
        match checked(spec, f, text) {
            Err(problem) => {
                problems.insert(f.name(), problem);
            }
            Ok(value) if unchanged(f, &value, customer.source_row.get(f.column)) => {}
            Ok(_) => {
                changed.insert(f.column.to_string(), InputValue::Text(text.to_string()));
            }
        }
    }
    if problems.is_empty() {
        Ok(changed)
    } else {
        Err(problems)
    }
}

/// The field named by a writer's refusal of `column`.
fn field_of_column(fields: &[Field], column: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.column.eq_ignore_ascii_case(column))
        .map(Field::name)
}

/// `POST /portal/customers/{id}/edit`: the changed fields, through the writer.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: CheckedForm<Typed>,
) -> Response {
    let CheckedForm {
        session,
        fields: typed,
    } = form;
    let customer = match writable_customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    let id = customer.customer_id;
    let refuse = |status, problems: &Problems, notice: Option<&str>| {
        edit_page(&session, status, id, &typed, problems, notice)
    };
    let changed = match changed_columns(&customer, &typed) {
        Ok(changed) => changed,
        Err(problems) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                Some("Some fields need correcting: see beside them. Nothing was saved."),
            )
        }
    };
    let detail = format!("/portal/customers/{id}");
    if changed.is_empty() {
        return see_other(&detail, None);
    }
    let known = match columns(&state, CUSTOMERS).await {
        Ok(known) => known,
        Err(error) => return pages::failure(error),
    };
    let write = match write::validate(
        CUSTOMERS,
        WriteAction::Update,
        Some(&id.to_string()),
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
    match write_through(&state, &session, vec![write], projections::customers::NAME).await {
        Ok(Written::Applied(_)) => see_other(&detail, None),
        Ok(Written::NotFound) => no_customer(&session),
        Ok(Written::Pending) => pending_page(&session, (&detail, "Back to the customer")),
        Ok(Written::Refused {
            status,
            column,
            message,
            ..
        }) => {
            let mut problems = Problems::new();
            match column.and_then(|c| field_of_column(CUSTOMER_FIELDS, &c)) {
                Some(name) => {
                    problems.insert(name, message);
                    refuse(status, &problems, None)
                }
                None => refuse(status, &problems, Some(&message)),
            }
        }
        Err(error) => pages::failure(error),
    }
}

// ---------------------------------------------------------------------------------------------
// Delete.

fn delete_main(session: &Session, customer: &Customer) -> Markup {
    let id = customer.customer_id;
    html! {
        p { a href={ "/portal/customers/" (id) } { "← Customer " (id) } }
        h1 { "Delete customer " (id) "?" }
        p id="delete-question" {
            "This deletes " strong { (customer.full_name) } " (customer " (id) ") from the ACDB. "
            "The change is audited and can be reverted from the Mutations page."
        }
        @if !customer.account_numbers.is_empty() {
            p { "Their account numbers (" (customer.account_numbers.join(", ")) ") are not deleted." }
        }
        form method="post" action={ "/portal/customers/" (id) "/delete" } {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="confirm" value="yes";
            button type="submit" class="primary" { "Yes, delete customer " (id) }
            " "
            a href={ "/portal/customers/" (id) } { "No, keep them" }
        }
    }
}

fn delete_page(session: &Session, status: StatusCode, customer: &Customer) -> Response {
    respond(
        status,
        document(
            &format!("Delete customer {}", customer.customer_id),
            Some(session),
            Some(Nav::Customers),
            delete_main(session, customer),
        ),
    )
}

/// `GET /portal/customers/{id}/delete`: the confirmation step.
pub(crate) async fn delete_confirm(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = gate(&session) {
        return refused;
    }
    match customer(&state, &session, &id).await {
        Ok(customer) => delete_page(&session, StatusCode::OK, &customer),
        Err(page) => page,
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ConfirmFields {
    #[serde(default)]
    confirm: String,
}

/// `POST /portal/customers/{id}/delete`: only with the confirmation's `confirm=yes`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: CheckedForm<ConfirmFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    if !session.user.employee().is_ok_and(|role| role.can_delete()) {
        return forbidden(&session, WRITERS, ("/portal/customers", "Search customers"));
    }
    let customer = match customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    if fields.confirm != "yes" {
        return delete_page(&session, StatusCode::UNPROCESSABLE_ENTITY, &customer);
    }
    let id = customer.customer_id;
    let write = match write::validate(
        CUSTOMERS,
        WriteAction::Delete,
        Some(&id.to_string()),
        &BTreeMap::new(),
        &[],
    ) {
        Ok(write) => write,
        Err(error) => return pages::failure(error.into()),
    };
    let detail = format!("/portal/customers/{id}");
    match write_through(&state, &session, vec![write], projections::customers::NAME).await {
        Ok(Written::Applied(_)) => see_other("/portal/customers", None),
        Ok(Written::NotFound) => no_customer(&session),
        Ok(Written::Pending) => pending_page(&session, ("/portal/customers", "Search customers")),
        Ok(Written::Refused {
            status, message, ..
        }) => pages::error_page(
            status,
            Some(&session),
            "The customer was not deleted",
            &message,
            (&detail, "Back to the customer"),
        ),
        Err(error) => pages::failure(error),
    }
}

// ---------------------------------------------------------------------------------------------
// The new-customer wizard.

/// The step to show: 1 to 3, or the review (4).
const REVIEW: usize = WIZARD_STEPS.len() + 1;

fn hidden_except(typed: &Typed, step: usize) -> Markup {
    html! {
        @for (index, (_, fields)) in WIZARD_STEPS.iter().enumerate() {
            @if index + 1 != step {
                @for f in *fields {
                    input type="hidden" name=(f.name()) value=(trimmed(typed, f));
                }
            }
        }
    }
}

fn step_nav(step: usize) -> Markup {
    html! {
        ol class="steps" aria-label="Steps" {
            @for (index, (title, _)) in WIZARD_STEPS.iter().enumerate() {
                li aria-current=[(index + 1 == step).then_some("step")] { (title) }
            }
            li aria-current=[(step == REVIEW).then_some("step")] { "Review" }
        }
    }
}

fn wizard_main(
    session: &Session,
    step: usize,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
    sites: &[String],
) -> Markup {
    html! {
        p { a href="/portal/customers" { "← Customers" } }
        h1 { "New customer" }
        (step_nav(step))
        @if let Some(notice) = notice {
            p class="alert" role="alert" id="form-error" { (notice) }
        }
        form method="post" action="/portal/customers/new" class="stack" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="step" value=(step);
            (hidden_except(typed, step))
            @if step == REVIEW {
                h2 { "Review" }
                dl class="facts" id="review" {
                    @for (_, fields) in WIZARD_STEPS {
                        @for f in *fields {
                            div { dt { (f.label) } dd { @let v = trimmed(typed, f); @if v.is_empty() { "–" } @else { (v) } } }
                        }
                    }
                }
                button type="submit" name="go" value="create" class="primary" { "Create the customer" }
                " "
                button type="submit" name="go" value=(REVIEW - 1) class="secondary" { "Back" }
            } @else {
                @let (title, fields) = WIZARD_STEPS[step - 1];
                fieldset {
                    legend { "Step " (step) " of " (WIZARD_STEPS.len()) ": " (title) }
                    @for f in fields {
                        (input(f, trimmed(typed, f), problems.get(&f.name()), sites))
                    }
                }
                button type="submit" name="go" value=(step + 1) class="primary" {
                    @if step + 1 == REVIEW { "Review" } @else { "Next" }
                }
                @if step > 1 {
                    " "
                    button type="submit" name="go" value=(step - 1) class="secondary" formnovalidate { "Back" }
                }
            }
        }
    }
}

async fn wizard_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    step: usize,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
) -> Response {
    let sites: Vec<String> = match state.read_models.sites().await {
        Ok(sites) => sites
            .into_iter()
            .map(|(site, _)| site)
            .filter(|site| SiteCode::parse(site).is_ok())
            .collect(),
        Err(error) => return pages::failure(error.into()),
    };
    respond(
        status,
        document(
            "New customer",
            Some(session),
            Some(Nav::Customers),
            wizard_main(session, step, typed, problems, notice, &sites),
        ),
    )
}

/// `GET /portal/customers/new`: the wizard's first step.
pub(crate) async fn wizard_start(State(state): State<AppState>, session: Session) -> Response {
    if let Some(refused) = gate(&session) {
        return refused;
    }
    wizard_page(
        &state,
        &session,
        StatusCode::OK,
        1,
        &Typed::new(),
        &Problems::new(),
        None,
    )
    .await
}

/// The problems of step `step`'s fields (1-based).
fn step_problems(typed: &Typed, step: usize) -> Problems {
    let spec = spec(CUSTOMERS);
    WIZARD_STEPS[step - 1]
        .1
        .iter()
        .filter_map(|f| {
            checked(spec, f, trimmed(typed, f))
                .err()
                .map(|p| (f.name(), p))
        })
        .collect()
}

/// The first step with a problem, and its problems.
fn first_problems(typed: &Typed) -> Option<(usize, Problems)> {
    (1..REVIEW)
        .map(|step| (step, step_problems(typed, step)))
        .find(|(_, problems)| !problems.is_empty())
}

/// The new row of `tblcustomer` as typed, with the legacy wizard's bookkeeping columns.
fn new_customer(typed: &Typed, now: NaiveDateTime) -> BTreeMap<String, InputValue> {
    let mut data: BTreeMap<String, InputValue> = WIZARD_STEPS
        .iter()
        .flat_map(|(_, fields)| fields.iter())
        .filter(|f| !trimmed(typed, f).is_empty())
        .map(|f| {
            (
                f.column.to_string(),
                InputValue::Text(trimmed(typed, f).to_string()),
            )
        })
        .collect();
    data.insert(
        "RECORD CREATE DATE".into(),
        InputValue::Text(now.format("%Y-%m-%d %H:%M:%S").to_string()),
    );
    data.insert(
        "RECORD CREATED BY".into(),
        InputValue::Text(CREATED_BY.into()),
    );
    data.insert("COUNTRY".into(), InputValue::Text("Lesotho".into()));
    data
}

/// `POST /portal/customers/new`: checks the step posted (`step`), then shows the one asked for
/// (`go`: a step, or `create` from the review).
pub(crate) async fn wizard_step(
    State(state): State<AppState>,
    form: CheckedForm<Typed>,
) -> Response {
    let CheckedForm {
        session,
        fields: typed,
    } = form;
    if let Some(refused) = gate(&session) {
        return refused;
    }
    let from = typed
        .get("step")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|s| (1..=REVIEW).contains(s))
        .unwrap_or(1);
    let go = typed.get("go").map_or("", |g| g.trim());
    let bad = |step: usize, problems: Problems| {
        let state = state.clone();
        let session = session.clone();
        let typed = typed.clone();
        async move {
            wizard_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                step,
                &typed,
                &problems,
                Some("Some fields need correcting: see beside them."),
            )
            .await
        }
    };
    if go == "create" {
        if let Some((step, problems)) = first_problems(&typed) {
            return bad(step, problems).await;
        }
        let known = match columns(&state, CUSTOMERS).await {
            Ok(known) => known,
            Err(error) => return pages::failure(error),
        };
        let data = new_customer(&typed, maseru_local(Utc::now()));
        let write = match write::validate(CUSTOMERS, WriteAction::Create, None, &data, &known) {
            Ok(write) => write,
            Err(error) => {
                let mut problems = Problems::new();
                let notice = error.to_string();
                if let WriteError::Invalid { field, problem } = error {
                    if let Some(name) = field_of_column(CUSTOMER_FIELDS, &field) {
                        problems.insert(name, problem);
                    }
                }
                return wizard_page(
                    &state,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    REVIEW,
                    &typed,
                    &problems,
                    Some(&notice),
                )
                .await;
            }
        };
        return match write_through(&state, &session, vec![write], projections::customers::NAME)
            .await
        {
            Ok(Written::Applied(keys)) => {
                see_other(&format!("/portal/customers/{}", keys[0]), None)
            }
            Ok(Written::Pending) => pending_page(&session, ("/portal/customers", "Customers")),
            Ok(Written::Refused {
                status, message, ..
            }) => {
                wizard_page(
                    &state,
                    &session,
                    status,
                    REVIEW,
                    &typed,
                    &Problems::new(),
                    Some(&message),
                )
                .await
            }
            Ok(Written::NotFound) => no_customer(&session),
            Err(error) => pages::failure(error),
        };
    }
    let to = go
        .parse::<usize>()
        .ok()
        .filter(|s| (1..=REVIEW).contains(s))
        .unwrap_or(from);
    // Going forward needs the step just filled in to be right; going back does not.
    if to > from && from < REVIEW {
        let problems = step_problems(&typed, from);
        if !problems.is_empty() {
            return bad(from, problems).await;
        }
    }
    if to == REVIEW {
        if let Some((step, problems)) = first_problems(&typed) {
            return bad(step, problems).await;
        }
    }
    wizard_page(
        &state,
        &session,
        StatusCode::OK,
        to,
        &typed,
        &Problems::new(),
        None,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Assign a meter.

/// The fields of the assign-meter form (legacy AssignMeterPage).
const METER_FIELDS: &[Field] = &[
    field("meterid", "Meter ID", Kind::Text, true),
    field("community", "Site", Kind::Site, true),
    field(
        "customer type",
        "Customer type",
        Kind::Choice(CUSTOMER_TYPES),
        true,
    ),
    field("accountnumber", "Account number", Kind::Text, true),
    field("Village name", "Village", Kind::Text, false),
    field(
        "customer connect date",
        "Connection date",
        Kind::Date,
        false,
    ),
    field("latitude", "GPS latitude", Kind::Number, false),
    field("longitude", "GPS longitude", Kind::Number, false),
];

fn assign_defaults(customer: &Customer, today: NaiveDateTime) -> Typed {
    let row: &AcdbRow = &customer.source_row;
    let text = |column: &str| row.get(column).as_text().unwrap_or_default();
    let mut typed = Typed::new();
    typed.insert(
        "community".into(),
        customer
            .site
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    );
    typed.insert("customer-type".into(), text("CUSTOMER POSITION"));
    typed.insert("village-name".into(), text("STREET ADDRESS"));
    typed.insert(
        "customer-connect-date".into(),
        today.format("%Y-%m-%d").to_string(),
    );
    typed.insert("latitude".into(), text("GPS Y"));
    typed.insert("longitude".into(), text("GPS X"));
    typed
}

fn assign_main(
    session: &Session,
    customer: &Customer,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
    sites: &[String],
) -> Markup {
    let id = customer.customer_id;
    html! {
        p { a href={ "/portal/customers/" (id) } { "← Customer " (id) } }
        h1 { "Assign a meter to customer " (id) }
        p { (customer.full_name) }
        @if let Some(notice) = notice {
            p class="alert" role="alert" id="form-error" { (notice) }
        }
        form method="post" action={ "/portal/customers/" (id) "/assign-meter" } class="stack" {
            input type="hidden" name="csrf" value=(session.csrf);
            @for f in METER_FIELDS {
                (input(f, trimmed(typed, f), problems.get(&f.name()), sites))
            }
            p class="muted" { "The meter and the account are created together, or not at all." }
            button type="submit" class="primary" { "Assign the meter" }
        }
    }
}

async fn assign_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    customer: &Customer,
    typed: &Typed,
    problems: &Problems,
    notice: Option<&str>,
) -> Response {
    let mut sites: Vec<String> = match state.read_models.sites().await {
        Ok(sites) => sites
            .into_iter()
            .map(|(site, _)| site)
            .filter(|site| SiteCode::parse(site).is_ok())
            .collect(),
        Err(error) => return pages::failure(error.into()),
    };
    if let Some(site) = &customer.site {
        if !sites.iter().any(|s| s == site.as_str()) {
            sites.push(site.as_str().to_string());
        }
    }
    respond(
        status,
        document(
            &format!("Assign a meter to customer {}", customer.customer_id),
            Some(session),
            Some(Nav::Customers),
            assign_main(session, customer, typed, problems, notice, &sites),
        ),
    )
}

/// `GET /portal/customers/{id}/assign-meter`.
pub(crate) async fn assign_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let customer = match writable_customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    let typed = assign_defaults(&customer, maseru_local(Utc::now()));
    assign_page(
        &state,
        &session,
        StatusCode::OK,
        &customer,
        &typed,
        &Problems::new(),
        None,
    )
    .await
}

/// The meter's and the account's rows, or the problems of the form.
fn meter_writes(
    customer: &Customer,
    typed: &Typed,
    now: NaiveDateTime,
    known: (&[String], &[String]),
) -> Result<Vec<TableWrite>, Problems> {
    let meters = spec(METERS);
    let mut problems = Problems::new();
    for f in METER_FIELDS {
        if let Err(problem) = checked(meters, f, trimmed(typed, f)) {
            problems.insert(f.name(), problem);
        }
    }
    let account = METER_FIELDS
        .iter()
        .find(|f| f.column == "accountnumber")
        .expect("the form has an account field");
    let account_number = match domain::account::AccountNumber::parse(trimmed(typed, account)) {
        Ok(number) => number.as_str().to_string(),
        Err(error) => {
            problems
                .entry(account.name())
                .or_insert_with(|| format!("Account number: {error}"));
            String::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let text = |value: &str| InputValue::Text(value.to_string());
    let stamp = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let id = customer.customer_id.to_string();
    let mut meter: BTreeMap<String, InputValue> = METER_FIELDS
        .iter()
        .filter(|f| !trimmed(typed, f).is_empty())
        .map(|f| (f.column.to_string(), text(trimmed(typed, f))))
        .collect();
    meter.insert("accountnumber".into(), text(&account_number));
    meter.insert("customer id".into(), text(&id));
    meter.insert("RECORD CREATE DATE".into(), text(&stamp));
    meter.insert("RECORD CREATED BY".into(), text(CREATED_BY));
    let meter_id = trimmed(typed, &METER_FIELDS[0]).to_string();
    let mut account_row: BTreeMap<String, InputValue> = BTreeMap::new();
    account_row.insert("accountnumber".into(), text(&account_number));
    account_row.insert("customerid".into(), text(&id));
    account_row.insert("meterid".into(), text(&meter_id));
    account_row.insert("community".into(), text(trimmed(typed, &METER_FIELDS[1])));
    let opened = trimmed(typed, &METER_FIELDS[5]);
    account_row.insert(
        "opened date".into(),
        text(if opened.is_empty() { &stamp } else { opened }),
    );
    account_row.insert("created by".into(), text(CREATED_BY));
    let as_problem = |error: WriteError| {
        let mut problems = Problems::new();
        let name = match &error {
            WriteError::Invalid { field, .. } => field_of_column(METER_FIELDS, field),
            _ => None,
        };
        problems.insert(name.unwrap_or_else(|| "meterid".into()), error.to_string());
        problems
    };
    let meter =
        write::validate(METERS, WriteAction::Create, None, &meter, known.0).map_err(as_problem)?;
    let account_row = write::validate(ACCOUNTS, WriteAction::Create, None, &account_row, known.1)
        .map_err(as_problem)?;
    Ok(vec![meter, account_row])
}

/// `POST /portal/customers/{id}/assign-meter`: one command creating the meter and its account.
pub(crate) async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: CheckedForm<Typed>,
) -> Response {
    let CheckedForm {
        session,
        fields: typed,
    } = form;
    let customer = match writable_customer(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return page,
    };
    let (known_meters, known_accounts) = match (
        columns(&state, METERS).await,
        columns(&state, ACCOUNTS).await,
    ) {
        (Ok(m), Ok(a)) => (m, a),
        (Err(error), _) | (_, Err(error)) => return pages::failure(error),
    };
    let now = maseru_local(Utc::now());
    let writes = match meter_writes(&customer, &typed, now, (&known_meters, &known_accounts)) {
        Ok(writes) => writes,
        Err(problems) => {
            return assign_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &customer,
                &typed,
                &problems,
                Some("Some fields need correcting: see beside them. Nothing was created."),
            )
            .await
        }
    };
    let detail = format!("/portal/customers/{}", customer.customer_id);
    match write_through(&state, &session, writes, projections::customers::NAME).await {
        Ok(Written::Applied(_)) => see_other(&detail, None),
        Ok(Written::Pending) => pending_page(&session, (&detail, "Back to the customer")),
        Ok(Written::NotFound) => no_customer(&session),
        Ok(Written::Refused {
            status,
            table,
            column,
            message,
        }) => {
            let mut problems = Problems::new();
            let name =
                column
                    .and_then(|c| field_of_column(METER_FIELDS, &c))
                    .or(match table.as_deref() {
                        Some(METERS) => Some("meterid".to_string()),
                        Some(ACCOUNTS) => Some("accountnumber".to_string()),
                        _ => None,
                    });
            if let Some(name) = name {
                problems.insert(name, message.clone());
            }
            assign_page(
                &state,
                &session,
                status,
                &customer,
                &typed,
                &problems,
                Some(&format!("{message} Nothing was created.")),
            )
            .await
        }
        Err(error) => pages::failure(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(pairs: &[(&str, &str)]) -> Typed {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn field_names_are_the_columns_in_lower_case_with_dashes() {
        assert_eq!(CUSTOMER_FIELDS[0].name(), "first-name");
        assert_eq!(METER_FIELDS[5].name(), "customer-connect-date");
    }

    #[test]
    fn a_day_typed_for_a_stored_date_time_of_that_day_is_no_change() {
        let f = field(
            "DATE SERVICE CONNECTED",
            "Date connected",
            Kind::Date,
            false,
        );
        let at = |s: &str| AcdbValue::DateTime {
            datetime: s.parse().unwrap(),
        };
        assert!(unchanged(
            &f,
            &at("2024-05-06T00:00:00"),
            &at("2024-05-06T13:45:00")
        ));
        assert!(!unchanged(
            &f,
            &at("2024-05-07T00:00:00"),
            &at("2024-05-06T13:45:00")
        ));
    }

    #[test]
    fn each_wizard_step_names_its_missing_and_malformed_fields() {
        let empty = typed(&[]);
        let first = step_problems(&empty, 1);
        assert!(first.contains_key("first-name") && first.contains_key("last-name"));
        let second = step_problems(&typed(&[("concession-name", "MAK"), ("gps-y", "north")]), 2);
        assert_eq!(second.keys().collect::<Vec<_>>(), vec!["gps-y"]);
        let third = step_problems(&typed(&[("customer-position", "XX")]), 3);
        assert!(third.contains_key("customer-position"));
    }
}
