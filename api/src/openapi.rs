//! The OpenAPI 3.1 document served at `/api/openapi.json`: every endpoint of the router with its
//! access rule, path and query parameters and request body fields.
//!
//! Written as a table rather than derived from the handlers so that the access rules and the
//! legacy notes read in one place; the API tests check both ways that the table and the router
//! agree (every route documented, every documented operation routed).

use serde_json::{json, Map, Value};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Public,
    Employee,
    Customer,
    /// An employee, or a customer for their own records only.
    EmployeeOrOwnRecords,
    /// Any logged-in user.
    AnyUser,
    Superadmin,
    /// superadmin or onm_team.
    Operations,
    /// superadmin, onm_team or finance_team.
    Tariffs,
    /// The role's write permission for the table (deletes: superadmin or onm_team).
    TableWriter,
    /// No token: Meta's webhook calls, checked by the verify token or the body's signature.
    MetaWebhook,
}

impl Access {
    fn describe(self) -> &'static str {
        match self {
            Access::Public => "No token needed.",
            Access::Employee => "Any employee.",
            Access::Customer => "A customer (their own account).",
            Access::EmployeeOrOwnRecords => {
                "Any employee; a customer for their own tblcustomer and tblaccountnumbers rows only."
            }
            Access::AnyUser => "Any logged-in employee or customer.",
            Access::Superadmin => "Role superadmin.",
            Access::Operations => "Role superadmin or onm_team.",
            Access::Tariffs => "Role superadmin, onm_team or finance_team.",
            Access::TableWriter => {
                "An employee whose role may write the table (write_customers for customer tables, write_transactions for account history); deletes need superadmin or onm_team."
            }
            Access::MetaWebhook => {
                "No token: Meta calls it. The verify handshake must carry the configured verify token, and a delivery a valid X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret). 404 when WhatsApp is not configured."
            }
        }
    }
}

/// One documented operation.
pub(crate) struct Operation {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
    /// Query parameters: name and description.
    query: &'static [(&'static str, &'static str)],
    /// Fields of the JSON request body: name, description.
    body: &'static [(&'static str, &'static str)],
    /// The body is a JSON array of objects with the `body` fields.
    body_is_array: bool,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
) -> Operation {
    Operation {
        method,
        path,
        tag,
        summary,
        access,
        query: &[],
        body: &[],
        body_is_array: false,
    }
}

impl Operation {
    const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }

    const fn body(mut self, body: &'static [(&'static str, &'static str)]) -> Self {
        self.body = body;
        self
    }

    const fn array_body(mut self, items: &'static [(&'static str, &'static str)]) -> Self {
        self.body = items;
        self.body_is_array = true;
        self
    }
}

use Access::*;

const QUARTER: &[(&str, &str)] = &[(
    "quarter",
    "A quarter such as 2026Q1 (default: the latest quarter with data).",
)];
const TABLE_PAGE: &[(&str, &str)] = &[
    ("page", "Page number from 1 (default 1)."),
    ("limit", "Rows per page, 1–500 (default 50)."),
    (
        "sort",
        "A column of the table to sort by (default the key).",
    ),
    ("order", "asc (default) or desc."),
    (
        "search",
        "Rows with this text in any text column, ignoring case.",
    ),
    (
        "filter_col",
        "A column to filter on (with filter_val; compared as the column's type).",
    ),
    ("filter_val", "The value filter_col must equal."),
];
const AUDIT_FILTERS: &[(&str, &str)] = &[
    ("table", "Only mutations of this table."),
    ("user", "Only mutations by this user id."),
    ("action", "create, update or delete."),
    (
        "channel",
        "api, portal, access (direct edits in Access), cli, …",
    ),
    ("from", "From this instant (ISO 8601 or YYYY-MM-DD)."),
    ("to", "Up to this instant."),
];
const RATE_BODY: &[(&str, &str)] = &[
    ("rate_lsl", "The rate in LSL per kWh (an exact decimal)."),
    (
        "effective_from",
        "When it applies from (default now, Africa/Maseru).",
    ),
    ("notes", "Why it changed."),
];

/// Every operation of the router.
pub(crate) const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/health",
        "health",
        "Service health, event log head and customer count.",
        Public,
    ),
    op("get", "/api/health", "health", "Same as /health.", Public),
    op(
        "get",
        "/api/openapi.json",
        "health",
        "This document.",
        Public,
    ),
    // Authentication.
    op(
        "post",
        "/api/auth/employee-login",
        "auth",
        "Employee login: a JWT.",
        Public,
    )
    .body(&[
        ("employee_id", "The employee id."),
        ("password", "The password."),
    ]),
    op(
        "post",
        "/api/auth/customer-register",
        "auth",
        "A customer sets a password with a registration code.",
        Public,
    )
    .body(&[
        ("customer_id", "The account number."),
        ("password", "At least 8 characters."),
        ("registration_code", "The code from the office."),
    ]),
    op(
        "post",
        "/api/auth/customer-login",
        "auth",
        "Customer login: a JWT.",
        Public,
    )
    .body(&[
        ("customer_id", "The account number."),
        ("password", "The password."),
    ]),
    op(
        "post",
        "/api/auth/customer-change-password",
        "auth",
        "A customer changes their password.",
        Customer,
    )
    .body(&[
        ("old_password", "The password now."),
        ("new_password", "The new password."),
    ]),
    op(
        "post",
        "/api/auth/change-password",
        "auth",
        "An employee changes their password.",
        Employee,
    )
    .body(&[
        ("old_password", "The password now."),
        ("new_password", "The new password."),
    ]),
    op(
        "get",
        "/api/auth/me",
        "auth",
        "The caller: user type, id, name, role and permissions.",
        AnyUser,
    ),
    op(
        "post",
        "/api/auth/logout",
        "auth",
        "Revokes the token.",
        AnyUser,
    ),
    // Administration.
    op(
        "get",
        "/api/admin/roles",
        "admin",
        "Employees' roles.",
        Superadmin,
    ),
    op(
        "post",
        "/api/admin/roles",
        "admin",
        "Assigns a role.",
        Superadmin,
    )
    .body(&[
        ("employee_id", "The employee."),
        ("cc_role", "superadmin, onm_team, finance_team or generic."),
    ]),
    op(
        "put",
        "/api/admin/roles/{employee_id}",
        "admin",
        "Changes a role.",
        Superadmin,
    )
    .body(&[("cc_role", "The new role.")]),
    op(
        "delete",
        "/api/admin/roles/{employee_id}",
        "admin",
        "Resets a role to generic.",
        Superadmin,
    ),
    op(
        "get",
        "/api/admin/employee-emails",
        "admin",
        "Employees' e-mail addresses.",
        Superadmin,
    ),
    op(
        "post",
        "/api/admin/employee-emails",
        "admin",
        "Sets an employee's e-mail address.",
        Superadmin,
    )
    .body(&[("employee_id", "The employee."), ("email", "The address.")]),
    op(
        "post",
        "/api/admin/employee-emails/bulk",
        "admin",
        "Sets many e-mail addresses at once.",
        Superadmin,
    )
    .array_body(&[("employee_id", "The employee."), ("email", "The address.")]),
    op(
        "get",
        "/api/admin/users",
        "admin",
        "Employees and their state.",
        Superadmin,
    ),
    op(
        "post",
        "/api/admin/users",
        "admin",
        "Adds an employee.",
        Superadmin,
    )
    .body(&[
        ("employee_id", "The new id."),
        ("name", "Full name."),
        ("cc_role", "The role."),
        ("password", "The first password."),
        ("email", "Optional address."),
    ]),
    op(
        "post",
        "/api/admin/users/{employee_id}/disable",
        "admin",
        "Disables an employee (their tokens stop working).",
        Superadmin,
    ),
    op(
        "post",
        "/api/admin/users/{employee_id}/enable",
        "admin",
        "Enables an employee again.",
        Superadmin,
    ),
    op(
        "post",
        "/api/admin/users/{employee_id}/reset-password",
        "admin",
        "Sets a new password for an employee.",
        Superadmin,
    )
    .body(&[("password", "The new password.")]),
    op(
        "post",
        "/api/admin/registration-codes",
        "admin",
        "Issues a customer registration code (valid 14 days).",
        Operations,
    )
    .body(&[("account_number", "The customer's account number.")]),
    // Customers.
    op(
        "get",
        "/customers/by-phone/{phone}",
        "customers",
        "Customers with this phone number (any legacy format).",
        Employee,
    ),
    op(
        "get",
        "/customers/by-id/{customer_id}",
        "customers",
        "A customer by id.",
        Employee,
    ),
    op(
        "get",
        "/api/customers/by-id/{customer_id}",
        "customers",
        "Same as /customers/by-id.",
        Employee,
    ),
    op(
        "get",
        "/customers/by-account/{account}",
        "customers",
        "The customer of an account number.",
        Employee,
    ),
    op(
        "get",
        "/customers/search",
        "customers",
        "Customers by name, plot, phone, account or id.",
        Employee,
    )
    .query(&[
        ("q", "The text to look for."),
        ("limit", "At most this many (default 20)."),
    ]),
    op(
        "get",
        "/sites",
        "customers",
        "Sites (concessions) with customer counts.",
        Employee,
    ),
    op(
        "get",
        "/api/sites",
        "customers",
        "Same as /sites.",
        Employee,
    ),
    op(
        "get",
        "/api/my/profile",
        "customers",
        "The calling customer's profile.",
        Customer,
    ),
    op(
        "get",
        "/api/my/dashboard",
        "customers",
        "The calling customer's balance, last payment and usage.",
        Customer,
    ),
    op(
        "get",
        "/api/customer-data/{account}",
        "customers",
        "A customer's balance, usage and transactions (account number or customer id).",
        Employee,
    ),
    // Tables browser, schema and exports.
    op(
        "get",
        "/api/tables/{table}",
        "tables",
        "A page of a captured ACDB table, from the mirror read model.",
        EmployeeOrOwnRecords,
    )
    .query(TABLE_PAGE),
    op(
        "post",
        "/api/tables/{table}",
        "tables",
        "Creates a record in the ACDB through the audited writer.",
        TableWriter,
    )
    .body(&[("data", "The record's columns and values.")]),
    op(
        "get",
        "/api/tables/{table}/{id}",
        "tables",
        "One record by its key.",
        EmployeeOrOwnRecords,
    ),
    op(
        "put",
        "/api/tables/{table}/{id}",
        "tables",
        "Updates a record (only the fields sent) through the audited writer.",
        TableWriter,
    )
    .body(&[("data", "The changed columns and their new values.")]),
    op(
        "delete",
        "/api/tables/{table}/{id}",
        "tables",
        "Deletes a record through the audited writer.",
        TableWriter,
    ),
    op(
        "get",
        "/api/schema/tables",
        "tables",
        "The captured tables with row and column counts.",
        Employee,
    ),
    op(
        "get",
        "/api/schema/tables/{table}/columns",
        "tables",
        "A table's columns and types.",
        Employee,
    ),
    op(
        "get",
        "/api/export/{table}",
        "tables",
        "A whole table (or a filtered part) as CSV or XLSX, streamed.",
        Employee,
    )
    .query(&[
        ("format", "csv (default) or xlsx."),
        ("search", "As for the table listing."),
        ("filter_col", "As for the table listing."),
        ("filter_val", "As for the table listing."),
    ]),
    op(
        "get",
        "/api/read-models",
        "read models",
        "The exportable read-model views with their columns (for analysts).",
        Employee,
    ),
    op(
        "get",
        "/api/read-models/{view}/export",
        "read models",
        "A whole read-model view as CSV, XLSX or JSON, streamed.",
        Employee,
    )
    .query(&[("format", "csv (default), xlsx or json.")]),
    // Mutation audit.
    op(
        "get",
        "/api/mutations",
        "audit",
        "Every change to the ACDB and to ccare's own state, newest first.",
        Employee,
    )
    .query(&[
        ("page", "Page from 1."),
        ("limit", "1–500 (default 50)."),
        ("table", "Only this table."),
        ("user", "Only this user."),
        ("action", "create, update or delete."),
        (
            "channel",
            "Only this channel (access = direct edits in Access).",
        ),
        ("record_id", "Only this record."),
        ("from", "From this instant."),
        ("to", "Up to this instant."),
    ]),
    op(
        "get",
        "/api/mutations/{id}",
        "audit",
        "One mutation with its before and after.",
        Employee,
    ),
    op(
        "post",
        "/api/mutations/{id}/revert",
        "audit",
        "Reverts a mutation (a new audited write).",
        Operations,
    ),
    op(
        "get",
        "/api/audit/records/{table}/{id}",
        "audit",
        "A record as it stood at an instant.",
        Employee,
    )
    .query(&[("as_of", "The instant (default now).")]),
    op(
        "get",
        "/api/audit/records/{table}/{id}/history",
        "audit",
        "Every version of a record.",
        Employee,
    ),
    op(
        "get",
        "/api/audit/verify",
        "audit",
        "Checks the event log's hash chain.",
        Employee,
    )
    .query(&[(
        "full",
        "true to check the whole chain, not only since the last check.",
    )]),
    op(
        "get",
        "/api/audit/export",
        "audit",
        "The mutation audit as CSV or JSON.",
        Employee,
    )
    .query(AUDIT_FILTERS),
    // Tariffs.
    op(
        "get",
        "/api/tariff/current",
        "tariffs",
        "The global rate and every site and customer override in force.",
        Employee,
    ),
    op(
        "get",
        "/api/tariff/resolve/{identifier}",
        "tariffs",
        "The rate that applies to a customer, account or site.",
        Employee,
    )
    .query(&[("at", "At this instant (default now).")]),
    op(
        "put",
        "/api/tariff/global",
        "tariffs",
        "Sets the global rate (written to tblconfig).",
        Tariffs,
    )
    .body(RATE_BODY),
    op(
        "put",
        "/api/tariff/concession/{code}",
        "tariffs",
        "Sets a site's rate override.",
        Tariffs,
    )
    .body(RATE_BODY),
    op(
        "delete",
        "/api/tariff/concession/{code}",
        "tariffs",
        "Ends a site's override.",
        Tariffs,
    ),
    op(
        "put",
        "/api/tariff/customer/{customer_id}",
        "tariffs",
        "Sets a customer's rate override.",
        Tariffs,
    )
    .body(RATE_BODY),
    op(
        "delete",
        "/api/tariff/customer/{customer_id}",
        "tariffs",
        "Ends a customer's override.",
        Tariffs,
    ),
    op(
        "get",
        "/api/tariff/history",
        "tariffs",
        "Every tariff change.",
        Employee,
    )
    .query(&[
        ("page", "Page from 1."),
        ("limit", "1–500."),
        ("scope", "global, concession or customer."),
        ("key", "The site code or customer id."),
        ("from", "From this instant."),
        ("to", "Up to this instant."),
    ]),
    // O&M report and statistics.
    op(
        "get",
        "/api/om-report/overview",
        "reports",
        "Headline figures: customers, sites, revenue, consumption.",
        Employee,
    ),
    op(
        "get",
        "/api/om-report/customer-stats",
        "reports",
        "Customers per site and type for a quarter.",
        Employee,
    )
    .query(QUARTER),
    op(
        "get",
        "/api/om-report/customer-growth",
        "reports",
        "New and cumulative customers per quarter and site.",
        Employee,
    ),
    op(
        "get",
        "/api/om-report/consumption-by-site",
        "reports",
        "kWh sold per site for a quarter.",
        Employee,
    )
    .query(QUARTER),
    op(
        "get",
        "/api/om-report/sales-by-site",
        "reports",
        "Revenue per site for a quarter.",
        Employee,
    )
    .query(QUARTER),
    op(
        "get",
        "/api/om-report/cumulative-trends",
        "reports",
        "Cumulative revenue, kWh and customers per quarter.",
        Employee,
    ),
    op(
        "get",
        "/api/om-report/avg-consumption-trend",
        "reports",
        "Average kWh per customer per quarter.",
        Employee,
    ),
    op(
        "get",
        "/api/om-report/site-overview",
        "reports",
        "Per site: customers, revenue, kWh, ARPU.",
        Employee,
    ),
    op(
        "get",
        "/api/om-report/load-curves-by-type",
        "reports",
        "Average hourly load by customer type for a quarter.",
        Employee,
    )
    .query(QUARTER),
    op(
        "get",
        "/api/om-report/daily-load-profiles",
        "reports",
        "24-hour load profile per site.",
        Employee,
    )
    .query(&[("site", "One site (default all).")]),
    op(
        "get",
        "/api/om-report/arpu",
        "reports",
        "Quarterly ARPU overall and per site.",
        Employee,
    ),
    op(
        "get",
        "/api/om-report/monthly-arpu",
        "reports",
        "Monthly ARPU overall.",
        Employee,
    ),
    op(
        "get",
        "/api/stats/site-summary",
        "reports",
        "Per site: customers, meters, revenue and kWh to date.",
        Employee,
    ),
    // Tickets and WhatsApp conversations.
    op(
        "get",
        "/api/tickets",
        "tickets",
        "Tickets, newest first, filtered and paged ({tickets, total, page, page_size, pages}).",
        Employee,
    )
    .query(&[
        (
            "status",
            "open, in-progress, resolved or closed; several allowed (repeated or comma-separated).",
        ),
        ("site", "A site code (MAK)."),
        ("priority", "P1, P2, P3 or P4."),
        ("category", "A legacy category (no-power, meter-issue, billing, …)."),
        ("customer_id", "The customer's id."),
        ("phone", "The phone the ticket came from (any legacy spelling)."),
        (
            "from",
            "Opened on or after this day (YYYY-MM-DD, Africa/Maseru) or instant (RFC 3339).",
        ),
        ("to", "Opened on or before this day, or before this instant."),
        ("q", "Text in the number, summary or description, ignoring case."),
        ("sort", "newest (default), oldest, updated or priority."),
        ("page", "Page from 1 (default 1)."),
        ("page_size", "Tickets per page, 1–200 (default 50)."),
    ]),
    op(
        "get",
        "/api/tickets/summary",
        "tickets",
        "Active tickets (open and in progress) per site and priority, with the age of the oldest.",
        Employee,
    ),
    op(
        "get",
        "/api/tickets/{number}",
        "tickets",
        "A ticket (SITE-YYYY-NNNN), its history in order, and the WhatsApp messages of its phone from 24 h before it opened (at most 200; messages_total counts them all).",
        Employee,
    ),
    op(
        "post",
        "/api/tickets/{number}/comments",
        "tickets",
        "Comments on an open or in-progress ticket as the caller (201 with the ticket and the comment); 409 once it is resolved or closed.",
        Employee,
    )
    .body(&[("text", "The comment, 1–4000 characters.")]),
    op(
        "post",
        "/api/tickets/{number}/status",
        "tickets",
        "Moves a ticket to another status (a resolved or closed one can be reopened); 409 when it already has it.",
        Operations,
    )
    .body(&[
        ("status", "open, in-progress, resolved or closed."),
        ("reason", "Why (optional, at most 4000 characters)."),
    ]),
    op(
        "get",
        "/api/conversations",
        "tickets",
        "The WhatsApp conversations of a customer or a phone and their messages, newest first, paged ({conversations, messages, total, page, page_size, pages}).",
        Employee,
    )
    .query(&[
        (
            "customer_id",
            "Every conversation identified as this customer's (give this or phone).",
        ),
        ("phone", "The conversation of this phone (any legacy spelling)."),
        ("page", "Page from 1 (default 1)."),
        ("page_size", "Messages per page, 1–200 (default 50)."),
    ]),
    // The WhatsApp Cloud API webhook (Meta calls it).
    op(
        "get",
        "/webhooks/whatsapp",
        "whatsapp",
        "Meta's verify handshake: the challenge as text/plain when the token matches, else 403.",
        MetaWebhook,
    )
    .query(&[
        ("hub.mode", "subscribe."),
        ("hub.verify_token", "The configured verify token."),
        ("hub.challenge", "Text to echo back."),
    ]),
    op(
        "post",
        "/webhooks/whatsapp",
        "whatsapp",
        "A delivery of messages and status updates, stored before the 200 ({status, delivery, redelivery}); 401 unsigned, 413 over 1 MiB, 400 not a delivery, 503 not stored (Meta retries).",
        MetaWebhook,
    )
    .body(&[
        ("object", "whatsapp_business_account."),
        ("entry", "The entries, each with its changes."),
    ]),
];

fn parameter(name: &str, location: &str, description: &str, required: bool) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    })
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn operation(op: &Operation) -> Value {
    let mut parameters: Vec<Value> = path_parameters(op.path)
        .map(|name| parameter(name, "path", "", true))
        .collect();
    parameters.extend(
        op.query
            .iter()
            .map(|(name, description)| parameter(name, "query", description, false)),
    );
    let mut operation = json!({
        "tags": [op.tag],
        "summary": op.summary,
        "description": format!("Access: {}", op.access.describe()),
        "operationId": format!("{} {}", op.method, op.path),
        "parameters": parameters,
        "responses": {
            "200": {"description": "Success."},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "422": {"$ref": "#/components/responses/Error"},
        },
    });
    if matches!(op.access, Public | MetaWebhook) {
        operation["security"] = json!([]);
    }
    if !op.body.is_empty() {
        let properties: Map<String, Value> = op
            .body
            .iter()
            .map(|(name, description)| (name.to_string(), json!({"description": description})))
            .collect();
        let object = json!({"type": "object", "properties": properties});
        let schema = if op.body_is_array {
            json!({"type": "array", "items": object})
        } else {
            object
        };
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema}},
        });
    }
    operation
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ccare",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Customer-care and operations API of the 1PWR mini-grids. Reads come from projections of the event log; writes go through the audited writer. Errors are JSON {\"detail\": …}.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "responses": {
                "Error": {
                    "description": "An error; `detail` says what is wrong (for a bad parameter, which one).",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"detail": {}},
                        "required": ["detail"],
                    }}},
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for op in OPERATIONS {
            assert!(
                seen.insert((op.method, op.path)),
                "{} {} is listed twice",
                op.method,
                op.path
            );
        }
    }

    #[test]
    fn path_parameters_are_declared_as_required() {
        let doc = document();
        let parameters = &doc["paths"]["/api/tables/{table}/{id}"]["put"]["parameters"];
        assert_eq!(parameters[0]["name"], "table");
        assert_eq!(parameters[1]["name"], "id");
        assert_eq!(parameters[1]["required"], true);
    }

    #[test]
    fn public_operations_need_no_token() {
        let doc = document();
        assert_eq!(
            doc["paths"]["/api/auth/employee-login"]["post"]["security"],
            json!([])
        );
        assert!(doc["paths"]["/api/mutations"]["get"]
            .get("security")
            .is_none());
    }

    #[test]
    fn the_whatsapp_webhook_needs_no_token_because_meta_calls_it() {
        let doc = document();
        for method in ["get", "post"] {
            let operation = &doc["paths"]["/webhooks/whatsapp"][method];
            assert_eq!(operation["security"], json!([]), "{method}");
            assert!(operation["description"]
                .as_str()
                .unwrap()
                .contains("X-Hub-Signature-256"));
        }
    }
}
