//! `/portal/admin`: employees and their roles (legacy-system.md §8 Roles, §1.3), superadmins
//! only: the employee list, and forms to add an employee, assign a role, set an e-mail, and
//! disable or enable an account.
//!
//! Every change goes through the JSON API's handlers in [`admin`] with the session's user, so
//! the checks (superadmin, the id's and e-mail's shape, the password's strength, no disabling
//! oneself) and the audited commands are the API's. A refused form comes back beside the list
//! with what was typed (never the password) and the reason beside the field.
//!
//! The users read model has no paged listing; the employees (a few dozen) are read whole and
//! shown 25 to a page.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use domain::auth::Role;

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::admin::{self, EmailBody, NewEmployee, RoleBody};
use crate::routes::mutations::int_param;
use crate::AppState;

use super::dashboard::staff_only;
use super::forms::CheckedForm;
use super::pages::{self, count, document, respond, see_other, Nav};
use super::session::{encode_query_value, Session};
use super::tables::{failure_page, path_segment};

/// Employees on a page of the list.
const PAGE_SIZE: i64 = 25;

/// The page a signed-in user who is not a superadmin gets (customers get the staff-only page).
fn superadmin_only(session: &Session) -> Option<Response> {
    match session.user.employee() {
        Err(_) => Some(staff_only(session)),
        Ok(Role::Superadmin) => None,
        Ok(_) => Some(pages::error_page(
            StatusCode::FORBIDDEN,
            Some(session),
            "This page is for superadmins",
            "Only a superadmin can manage employees and their roles. Ask one if your role should change.",
            ("/portal/", "Back to the portal"),
        )),
    }
}

/// `problem` as a sentence.
fn sentence(problem: &str) -> String {
    let mut chars = problem.trim().chars();
    let text = match chars.next() {
        Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    };
    if text.ends_with('.') {
        text
    } else {
        format!("{text}.")
    }
}

/// Which of the page's forms a refusal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Which {
    #[default]
    None,
    Add,
    Role,
    Email,
    /// A row's disable or enable button.
    Row,
}

impl Which {
    fn id(self) -> &'static str {
        match self {
            Which::None => "",
            Which::Add => "add",
            Which::Role => "role",
            Which::Email => "email",
            Which::Row => "row",
        }
    }
}

/// What a refused form leaves on the page: which form, what was typed, and why.
#[derive(Debug, Default)]
struct Refusal {
    form: Which,
    values: Vec<(&'static str, String)>,
    field_errors: Vec<(String, String)>,
    message: Option<String>,
}

impl Refusal {
    fn value(&self, form: Which, name: &str) -> &str {
        if self.form != form {
            return "";
        }
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn error(&self, form: Which, name: &str) -> Option<&str> {
        if self.form != form {
            return None;
        }
        self.field_errors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_str())
    }

    fn message(&self, form: Which) -> Option<&str> {
        (self.form == form)
            .then_some(self.message.as_deref())
            .flatten()
    }
}

/// The refusal of `form` for the API's `error`, with the status to answer; `Err` for errors that
/// are not about the form (a role refused, the store unavailable).
fn refusal(
    form: Which,
    values: Vec<(&'static str, String)>,
    fields: &[&str],
    error: ApiError,
) -> Result<(StatusCode, Refusal), ApiError> {
    let mut refused = Refusal {
        form,
        values,
        ..Refusal::default()
    };
    let status = match error {
        ApiError::Invalid {
            status,
            field,
            problem,
        } => {
            if fields.contains(&field.as_str()) {
                refused.field_errors.push((field, sentence(&problem)));
            } else {
                refused.message = Some(sentence(&format!("{field}: {problem}")));
            }
            status
        }
        ApiError::NotFound(_) => {
            let id = refused.value(form, "employee_id").to_string();
            let problem = format!("There is no employee {id}: add them first.");
            if fields.contains(&"employee_id") {
                refused.field_errors.push(("employee_id".into(), problem));
            } else {
                refused.message = Some(problem);
            }
            StatusCode::NOT_FOUND
        }
        ApiError::Conflict(problem) => {
            let problem = sentence(&problem);
            if fields.contains(&"employee_id") {
                refused.field_errors.push(("employee_id".into(), problem));
            } else {
                refused.message = Some(problem);
            }
            StatusCode::CONFLICT
        }
        ApiError::BadRequest(problem) => {
            refused.message = Some(sentence(&problem));
            StatusCode::BAD_REQUEST
        }
        other => return Err(other),
    };
    Ok((status, refused))
}

// ---------------------------------------------------------------------------------------------
// The page.

fn text_input(
    refused: &Refusal,
    form: Which,
    name: &str,
    label: &str,
    kind: &str,
    autocomplete: &str,
    required: bool,
) -> Markup {
    let id = format!("{}-{name}", form.id());
    let error_id = format!("{id}-error");
    let error = refused.error(form, name);
    let value = if kind == "password" {
        ""
    } else {
        refused.value(form, name)
    };
    html! {
        div class="field" {
            label for=(id) { (label) }
            @if let Some(error) = error {
                p class="error" id=(error_id) { (error) }
            }
            input type=(kind) id=(id) name=(name) value=(value) autocomplete=(autocomplete)
                required[required] maxlength="256"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.as_str())];
        }
    }
}

fn role_select(refused: &Refusal, form: Which) -> Markup {
    let id = format!("{}-cc_role", form.id());
    let error_id = format!("{id}-error");
    let error = refused.error(form, "cc_role");
    let chosen = refused.value(form, "cc_role");
    html! {
        div class="field" {
            label for=(id) { "Role" }
            @if let Some(error) = error {
                p class="error" id=(error_id) { (error) }
            }
            select id=(id) name="cc_role"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.as_str())] {
                @for role in Role::ALL {
                    @let selected = if chosen.is_empty() { role == Role::Generic } else { chosen == role.as_str() };
                    option value=(role.as_str()) selected[selected] { (pages::role_label(Some(role))) }
                }
            }
        }
    }
}

fn form_message(refused: &Refusal, form: Which) -> Markup {
    html! {
        @if let Some(message) = refused.message(form) {
            p class="error alert" role="alert" id={ (form.id()) "-form-error" } { (message) }
        }
    }
}

fn admin_href(page: i64) -> String {
    format!("/portal/admin?page={page}")
}

fn users_table(session: &Session, users: &[Value], page: i64, refused: &Refusal) -> Markup {
    let total = users.len() as i64;
    let pages_total = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let start = ((page - 1) * PAGE_SIZE).min(total) as usize;
    let end = (start + PAGE_SIZE as usize).min(users.len());
    html! {
        section aria-labelledby="employees" {
            h2 id="employees" { "Employees" }
            p id="employee-total" { (count(total)) " employees · page " (page) " of " (pages_total) }
            (form_message(refused, Which::Row))
            div class="table-wrap" {
                table id="employee-list" {
                    thead {
                        tr {
                            th scope="col" { "Employee ID" }
                            th scope="col" { "Name" }
                            th scope="col" { "E-mail" }
                            th scope="col" { "Role" }
                            th scope="col" { "Assigned by" }
                            th scope="col" { "Account" }
                        }
                    }
                    tbody {
                        @for user in &users[start..end] {
                            @let id = user["employee_id"].as_str().unwrap_or_default();
                            @let disabled = user["disabled"].as_bool().unwrap_or(false);
                            @let role = user["cc_role"].as_str().and_then(|r| r.parse::<Role>().ok());
                            tr {
                                th scope="row" { (id) }
                                td { (user["name"].as_str().unwrap_or_default()) }
                                td { (user["email"].as_str().unwrap_or("–")) }
                                td { (pages::role_label(role.or(Some(Role::Generic)))) }
                                td { (user["assigned_by"].as_str().unwrap_or("–")) }
                                td {
                                    @if disabled { "Disabled " } @else { "Enabled " }
                                    @let action = if disabled { "enable" } else { "disable" };
                                    form method="post" action={ "/portal/admin/users/" (path_segment(id)) "/" (action) } class="inline" {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        button type="submit" class="secondary" {
                                            @if disabled { "Enable" } @else { "Disable" }
                                            span class="visually-hidden" { " " (id) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav aria-label="Pages" class="paging" {
                @if page > 1 { a href=(admin_href(page - 1)) rel="prev" { "Previous" } " " }
                @if page < pages_total { a href=(admin_href(page + 1)) rel="next" { "Next" } }
            }
        }
    }
}

fn admin_main(
    session: &Session,
    users: &[Value],
    page: i64,
    notice: Option<String>,
    refused: &Refusal,
) -> Markup {
    let hidden = html! { input type="hidden" name="csrf" value=(session.csrf); };
    html! {
        h1 { "Employees and roles" }
        @if let Some(notice) = notice {
            p class="notice" role="status" id="notice" { (notice) }
        }
        (users_table(session, users, page, refused))
        div class="stack" {
            section aria-labelledby="assign-role" {
                h2 id="assign-role" { "Assign a role" }
                form method="post" action="/portal/admin/roles" {
                    (hidden)
                    (form_message(refused, Which::Role))
                    (text_input(refused, Which::Role, "employee_id", "Employee ID", "text", "off", true))
                    (role_select(refused, Which::Role))
                    button type="submit" class="primary" { "Assign the role" }
                }
            }
            section aria-labelledby="set-email" {
                h2 id="set-email" { "Set an e-mail" }
                form method="post" action="/portal/admin/emails" {
                    (hidden)
                    (form_message(refused, Which::Email))
                    (text_input(refused, Which::Email, "employee_id", "Employee ID", "text", "off", true))
                    (text_input(refused, Which::Email, "email", "E-mail", "email", "off", true))
                    button type="submit" class="primary" { "Set the e-mail" }
                }
            }
            section aria-labelledby="add-employee" {
                h2 id="add-employee" { "Add an employee" }
                form method="post" action="/portal/admin/users" {
                    (hidden)
                    (form_message(refused, Which::Add))
                    (text_input(refused, Which::Add, "employee_id", "Employee ID", "text", "off", true))
                    (text_input(refused, Which::Add, "name", "Name", "text", "off", true))
                    (text_input(refused, Which::Add, "email", "E-mail (optional)", "email", "off", false))
                    (role_select(refused, Which::Add))
                    (text_input(refused, Which::Add, "password", "First password (at least 8 characters)", "password", "new-password", true))
                    button type="submit" class="primary" { "Add the employee" }
                }
            }
        }
    }
}

async fn employees(state: &AppState, session: &Session) -> Result<Vec<Value>, ApiError> {
    let Json(users) = admin::list_users(State(state.clone()), session.user.clone()).await?;
    Ok(users.as_array().cloned().unwrap_or_default())
}

/// The admin page at `page`, answered with `status`.
async fn admin_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    page: i64,
    notice: Option<String>,
    refused: &Refusal,
) -> Response {
    match employees(state, session).await {
        Ok(users) => respond(
            status,
            document(
                "Employees and roles",
                Some(session),
                Some(Nav::Admin),
                admin_main(session, &users, page, notice, refused),
            ),
        ),
        Err(error) => failure_page(session, error, ("/portal/", "Back to the portal")),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AdminQuery {
    page: Option<String>,
    done: Option<String>,
    who: Option<String>,
}

/// What the change that redirected here did.
fn notice(done: Option<&str>, who: Option<&str>) -> Option<String> {
    let who = who.map(str::trim).filter(|w| !w.is_empty())?;
    Some(match done? {
        "added" => format!("Employee {who} added."),
        "role" => format!("The role of {who} is changed. It applies from their next request."),
        "email" => format!("The e-mail of {who} is set."),
        "disabled" => format!("{who} is disabled: their sessions end now."),
        "enabled" => format!("{who} is enabled again."),
        _ => return None,
    })
}

/// `GET /portal/admin`: the employees, and the forms.
pub(crate) async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<AdminQuery>,
) -> Response {
    if let Some(refused) = superadmin_only(&session) {
        return refused;
    }
    let page = match int_param("page", query.page.as_deref(), 1, 1, 1_000_000) {
        Ok(page) => page,
        Err(error) => return failure_page(&session, error, ("/portal/admin", "Back to page 1")),
    };
    let notice = notice(query.done.as_deref(), query.who.as_deref());
    admin_page(
        &state,
        &session,
        StatusCode::OK,
        page,
        notice,
        &Refusal::default(),
    )
    .await
}

/// 303 back to the list with `done`'s notice about `who`.
fn done(done: &str, who: &str) -> Response {
    see_other(
        &format!(
            "/portal/admin?done={done}&who={}",
            encode_query_value(who.trim())
        ),
        None,
    )
}

/// The answer to a form the API refused: the page with the refusal, or the error's page.
async fn refused_form(
    state: &AppState,
    session: &Session,
    form: Which,
    values: Vec<(&'static str, String)>,
    fields: &[&str],
    error: ApiError,
) -> Response {
    match refusal(form, values, fields, error) {
        Ok((status, refused)) => admin_page(state, session, status, 1, None, &refused).await,
        Err(error) => failure_page(session, error, ("/portal/admin", "Back to the employees")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RoleFields {
    employee_id: String,
    cc_role: String,
}

/// `POST /portal/admin/roles`: assigns a role, as `POST /api/admin/roles`.
pub(crate) async fn assign_role(
    State(state): State<AppState>,
    form: CheckedForm<RoleFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if let Some(refused) = superadmin_only(&session) {
        return refused;
    }
    let answer = admin::assign_role(
        State(state.clone()),
        session.user.clone(),
        JsonBody(RoleBody {
            employee_id: Some(fields.employee_id.clone()),
            cc_role: fields.cc_role.clone(),
        }),
    )
    .await;
    match answer {
        Ok(_) => done("role", &fields.employee_id),
        Err(error) => {
            let values = vec![
                ("employee_id", fields.employee_id),
                ("cc_role", fields.cc_role),
            ];
            refused_form(
                &state,
                &session,
                Which::Role,
                values,
                &["employee_id", "cc_role"],
                error,
            )
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EmailFields {
    employee_id: String,
    email: String,
}

/// `POST /portal/admin/emails`: sets an employee's e-mail, as `POST /api/admin/employee-emails`.
pub(crate) async fn set_email(
    State(state): State<AppState>,
    form: CheckedForm<EmailFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if let Some(refused) = superadmin_only(&session) {
        return refused;
    }
    let answer = admin::set_email(
        State(state.clone()),
        session.user.clone(),
        JsonBody(EmailBody {
            employee_id: fields.employee_id.clone(),
            email: fields.email.clone(),
        }),
    )
    .await;
    match answer {
        Ok(_) => done("email", &fields.employee_id),
        Err(error) => {
            let values = vec![("employee_id", fields.employee_id), ("email", fields.email)];
            refused_form(
                &state,
                &session,
                Which::Email,
                values,
                &["employee_id", "email"],
                error,
            )
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AddFields {
    employee_id: String,
    name: String,
    email: String,
    cc_role: String,
    password: String,
}

/// `POST /portal/admin/users`: adds an employee, as `POST /api/admin/users`.
pub(crate) async fn add_employee(
    State(state): State<AppState>,
    form: CheckedForm<AddFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if let Some(refused) = superadmin_only(&session) {
        return refused;
    }
    let values = vec![
        ("employee_id", fields.employee_id.clone()),
        ("name", fields.name.clone()),
        ("email", fields.email.clone()),
        ("cc_role", fields.cc_role.clone()),
    ];
    // The API takes any name; an employee without one would be listed blank.
    if fields.name.trim().is_empty() {
        let error = ApiError::invalid("name", "enter the employee's name");
        return refused_form(&state, &session, Which::Add, values, &["name"], error).await;
    }
    let email = Some(fields.email.trim().to_string()).filter(|e| !e.is_empty());
    let answer = admin::add_employee(
        State(state.clone()),
        session.user.clone(),
        JsonBody(NewEmployee {
            employee_id: fields.employee_id.clone(),
            name: fields.name.trim().to_string(),
            email,
            cc_role: fields.cc_role,
            password: fields.password,
        }),
    )
    .await;
    match answer {
        Ok(_) => done("added", &fields.employee_id),
        Err(error) => {
            let fields = ["employee_id", "name", "email", "cc_role", "password"];
            refused_form(&state, &session, Which::Add, values, &fields, error).await
        }
    }
}

/// `POST /portal/admin/users/{id}/disable`: as `POST /api/admin/users/{id}/disable`.
pub(crate) async fn disable(
    State(state): State<AppState>,
    Path(employee_id): Path<String>,
    form: CheckedForm<super::forms::NoFields>,
) -> Response {
    let session = form.session;
    if let Some(refused) = superadmin_only(&session) {
        return refused;
    }
    let answer = admin::disable(
        State(state.clone()),
        session.user.clone(),
        Path(employee_id.clone()),
    )
    .await;
    match answer {
        Ok(_) => done("disabled", &employee_id),
        Err(error) => {
            let values = vec![("employee_id", employee_id)];
            refused_form(&state, &session, Which::Row, values, &[], error).await
        }
    }
}

/// `POST /portal/admin/users/{id}/enable`: as `POST /api/admin/users/{id}/enable`.
pub(crate) async fn enable(
    State(state): State<AppState>,
    Path(employee_id): Path<String>,
    form: CheckedForm<super::forms::NoFields>,
) -> Response {
    let session = form.session;
    if let Some(refused) = superadmin_only(&session) {
        return refused;
    }
    let answer = admin::enable(
        State(state.clone()),
        session.user.clone(),
        Path(employee_id.clone()),
    )
    .await;
    match answer {
        Ok(_) => done("enabled", &employee_id),
        Err(error) => {
            let values = vec![("employee_id", employee_id)];
            refused_form(&state, &session, Which::Row, values, &[], error).await
        }
    }
}
