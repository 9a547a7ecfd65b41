//! `/portal/customers`: the customer search (by name, id, plot, phone or account, narrowed by
//! site), and `/portal/customers/{id}`: one customer with their account numbers and tickets —
//! read only, from the same read models as `/customers/search` and `/api/customers/by-id`.
//!
//! The list is a paged read-model query (by site, by text, or both), so every match can be
//! reached; the write forms live in [`super::customer_forms`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDateTime;
use maud::{html, Markup};

use domain::site::SiteCode;
use projections::customers::{Customer, CustomerMeter};
use projections::mutations::{Mutation, MutationFilter};
use projections::tickets::{TicketFilter, TicketSort};

use crate::routes::mutations::int_param;
use crate::AppState;

use super::dashboard::staff_only;
use super::pages::{self, count, document, respond, Nav};
use super::session::Session;
use super::tickets::{status_label, when};

/// Customers on a page of the list.
const PAGE_SIZE: i64 = 25;
/// The most tickets a customer's page lists.
const TICKETS_ON_A_CUSTOMER: i64 = 50;

fn day(at: Option<NaiveDateTime>) -> String {
    at.map_or_else(|| "–".to_string(), |at| at.format("%Y-%m-%d").to_string())
}

fn or_dash(text: Option<&str>) -> &str {
    text.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("–")
}

fn site_of(c: &Customer) -> String {
    match (&c.site, c.concession.as_deref().map(str::trim)) {
        (Some(site), _) => site.as_str().to_string(),
        (None, Some(concession)) if !concession.is_empty() => concession.to_string(),
        _ => "–".to_string(),
    }
}

fn not_found(session: &Session) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No such customer",
        "There is no customer with that id. Check the id, or search for the customer.",
        ("/portal/customers", "Search customers"),
    )
}

// ---------------------------------------------------------------------------------------------
// The search.

/// The search as given (kept in the form and the paging links) and as understood.
#[derive(Debug, Default)]
struct ListQuery {
    q: String,
    site: String,
    page: i64,
}

/// What to search for: the text (if any), and the site the matches must be of (if any).
#[derive(Debug, Default, PartialEq, Eq)]
struct Search {
    text: Option<String>,
    site: Option<SiteCode>,
}

impl ListQuery {
    fn given<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// The query of `pairs`, and the search it means (none: nothing asked yet), or what is
    /// wrong with it.
    fn parse(pairs: &[(String, String)]) -> (ListQuery, Result<Option<Search>, String>) {
        let mut query = ListQuery {
            q: Self::given(pairs, "q").to_string(),
            site: Self::given(pairs, "site").to_ascii_uppercase(),
            page: 1,
        };
        let page = Self::given(pairs, "page");
        let page = (!page.is_empty()).then_some(page);
        let search = (|| {
            query.page = int_param("page", page, 1, 1, i64::MAX / (PAGE_SIZE * 2))
                .map_err(|e| e.to_string())?;
            let site = if query.site.is_empty() {
                None
            } else {
                Some(SiteCode::parse(&query.site).map_err(|e| format!("site: {e}"))?)
            };
            if !query.q.is_empty() && query.q.chars().count() < 2 {
                return Err("q: must be at least 2 characters".to_string());
            }
            Ok(match (query.q.is_empty(), site) {
                (true, None) => None,
                (true, Some(site)) => Some(Search {
                    text: None,
                    site: Some(site),
                }),
                (false, site) => Some(Search {
                    text: Some(query.q.clone()),
                    site,
                }),
            })
        })();
        (query, search)
    }

    /// The list's address for page `page` of this search.
    fn href(&self, page: i64) -> String {
        pages::list_href(
            "/portal/customers",
            page,
            &[("q", &self.q), ("site", &self.site)],
        )
    }
}

fn search_form(query: &ListQuery, error: Option<&str>) -> Markup {
    let described = error.map(|_| "search-error");
    html! {
        form method="get" action="/portal/customers" class="filters" role="search" {
            div class="field" {
                label for="q" { "Name, id, plot, phone or account" }
                input type="search" id="q" name="q" value=(query.q) maxlength="100"
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
            }
            div class="field" {
                label for="site" { "Site code" }
                input type="text" id="site" name="site" value=(query.site) maxlength="8"
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
            }
            @if let Some(error) = error {
                p class="error" id="search-error" role="alert" { (error) }
            }
            button type="submit" class="primary" { "Search" }
        }
    }
}

fn results_table(customers: &[Customer]) -> Markup {
    html! {
        div class="table-wrap" {
            table id="customer-list" {
                thead {
                    tr {
                        th scope="col" class="n" { "Id" }
                        th scope="col" { "Name" }
                        th scope="col" { "Site" }
                        th scope="col" { "Phones" }
                        th scope="col" { "Accounts" }
                        th scope="col" { "Terminated" }
                    }
                }
                tbody {
                    @for c in customers {
                        tr {
                            th scope="row" class="n" { a href={ "/portal/customers/" (c.customer_id) } { (c.customer_id) } }
                            td { (c.full_name) }
                            td { (site_of(c)) }
                            td { @for (i, p) in c.phones.iter().enumerate() { @if i > 0 { ", " } (p.as_str()) } }
                            td { (c.account_numbers.join(", ")) }
                            td { @if c.terminated { "Yes" } @else { "No" } }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let (query, search) = ListQuery::parse(&pairs);
    let (status, error, found) = match search {
        Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, Some(error), None),
        // No search: every customer, a page at a time (the legacy Customers page lists them all).
        Ok(search) => {
            let (text, site) = search.map_or((None, None), |s| (s.text, s.site));
            match state
                .read_models
                .customer_page(
                    text.as_deref(),
                    site.as_ref(),
                    PAGE_SIZE,
                    (query.page - 1) * PAGE_SIZE,
                )
                .await
            {
                Ok(found) => (StatusCode::OK, None, Some(found)),
                Err(error) => return pages::failure(error.into()),
            }
        }
    };
    let may_write = may_write_customers(&session);
    let main = html! {
        h1 { "Customers" }
        p class="actions" {
            a href="/portal/customer-data" { "Customer data by account" }
            @if may_write {
                a href="/portal/customers/new" id="add-customer" { "Add a customer" }
            }
        }
        (search_form(&query, error.as_deref()))
        @if let Some((matches, total)) = &found {
            @let total = *total;
            @let pages_total = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
            p id="customer-total" {
                (count(total)) " customers found, by id · page " (query.page) " of " (pages_total)
            }
            @if !matches.is_empty() {
                (results_table(matches))
            } @else if total > 0 {
                p { "There are no more customers: go back a page." }
            }
            nav aria-label="Pages" class="paging" {
                @if query.page > 1 {
                    a href=(query.href(query.page - 1)) rel="prev" { "Previous" }
                    " "
                }
                @if query.page < pages_total {
                    a href=(query.href(query.page + 1)) rel="next" { "Next" }
                }
            }
        }
    };
    respond(
        status,
        document("Customers", Some(&session), Some(Nav::Customers), main),
    )
}

// ---------------------------------------------------------------------------------------------
// One customer.

/// Whether the session's role may edit, add and delete customers and assign meters
/// (`write_customers`, legacy-system.md §4.4).
pub(super) fn may_write_customers(session: &Session) -> bool {
    session
        .user
        .employee()
        .is_ok_and(|role| role.permissions().write_customers)
}

fn customer_main(c: &Customer, related: &Related<'_>, may_write: bool) -> Markup {
    let id = c.customer_id;
    let (tickets, total) = (related.tickets, related.ticket_total);
    html! {
        p { a href="/portal/customers" { "← Search customers" } }
        h1 { "Customer " (c.customer_id) }
        nav aria-label="Customer actions" class="actions" {
            a href={ "/portal/customers/" (id) "/data" } { "Customer data" }
            " · " a href={ "/portal/tables/tblcustomer/records/" (id) } { "Every ACDB field" }
            @if may_write {
                " · " a href={ "/portal/customers/" (id) "/edit" } { "Edit" }
                " · " a href={ "/portal/customers/" (id) "/assign-meter" } { "Assign a meter" }
                " · " a href={ "/portal/customers/" (id) "/delete" } { "Delete" }
            }
        }
        dl class="facts" id="customer" {
            div { dt { "Name" } dd { (c.full_name) } }
            div { dt { "Plot number" } dd { (or_dash(c.plot_number.as_deref())) } }
            div { dt { "Concession" } dd { (or_dash(c.concession.as_deref())) } }
            div { dt { "Site" } dd { @if let Some(site) = &c.site { (site.as_str()) } @else { "–" } } }
            div { dt { "City" } dd { (or_dash(c.city.as_deref())) } }
            div { dt { "District" } dd { (or_dash(c.district.as_deref())) } }
            div { dt { "Phones" } dd {
                @if c.phones.is_empty() { "–" }
                @for (i, p) in c.phones.iter().enumerate() { @if i > 0 { ", " } (p.as_str()) }
            } }
            div { dt { "Type" } dd { (or_dash(c.customer_type.as_deref())) } }
            div { dt { "Connected" } dd { (day(c.date_connected)) } }
            div { dt { "Terminated on" } dd { (day(c.date_terminated)) } }
            div { dt { "Terminated" } dd { @if c.terminated { "Yes" } @else { "No" } } }
        }
        section aria-labelledby="accounts" {
            h2 id="accounts" { "Account numbers" }
            @if c.account_numbers.is_empty() {
                p { "No account numbers." }
            } @else {
                ul id="account-list" {
                    @for account in &c.account_numbers { li { (account) } }
                }
            }
        }
        (meters_section(related.meters))
        section aria-labelledby="tickets" {
            h2 id="tickets" { "Tickets" }
            @if tickets.is_empty() {
                p { "No tickets name this customer." }
            } @else {
                p class="muted" id="customer-ticket-total" {
                    (count(total)) " tickets, newest first"
                    @if total > tickets.len() as i64 { " (the newest " (tickets.len()) " shown)" }
                }
                div class="table-wrap" {
                    table id="customer-tickets" {
                        thead {
                            tr {
                                th scope="col" { "Number" }
                                th scope="col" { "Status" }
                                th scope="col" { "Priority" }
                                th scope="col" { "Summary" }
                                th scope="col" { "Opened" }
                            }
                        }
                        tbody {
                            @for t in tickets {
                                tr {
                                    th scope="row" { a href={ "/portal/tickets/" (t.ticket_number) } { (t.ticket_number) } }
                                    td { (status_label(&t.status)) }
                                    td { (t.priority) }
                                    td { (t.summary) }
                                    td { (when(t.opened_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (changes_section(id, related.changes, related.change_total))
    }
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let Ok(id) = id.trim().parse::<i64>() else {
        return not_found(&session);
    };
    let customer = match state.read_models.customer_by_id(id).await {
        Ok(Some(customer)) => customer,
        Ok(None) => return not_found(&session),
        Err(error) => return pages::failure(error.into()),
    };
    let filter = TicketFilter {
        customer_id: Some(id),
        ..TicketFilter::default()
    };
    let (tickets, total) = match state
        .read_models
        .tickets(&filter, TicketSort::Newest, TICKETS_ON_A_CUSTOMER, 0)
        .await
    {
        Ok(found) => found,
        Err(error) => return pages::failure(error.into()),
    };
    let meters = match state.read_models.meters_of_customer(id).await {
        Ok(meters) => meters,
        Err(error) => return pages::failure(error.into()),
    };
    let history = MutationFilter {
        table: Some("tblcustomer".into()),
        record_id: Some(id.to_string()),
        ..MutationFilter::default()
    };
    let changes = match state
        .read_models
        .mutations(&history, CHANGES_ON_A_CUSTOMER, 0)
        .await
    {
        Ok(found) => found,
        Err(error) => return pages::failure(error.into()),
    };
    let related = Related {
        tickets: &tickets,
        ticket_total: total,
        meters: &meters,
        changes: &changes.0,
        change_total: changes.1,
    };
    respond(
        StatusCode::OK,
        document(
            &format!("Customer {id}"),
            Some(&session),
            Some(Nav::Customers),
            customer_main(&customer, &related, may_write_customers(&session)),
        ),
    )
}

/// What a customer's page shows beside the customer's own fields.
struct Related<'a> {
    tickets: &'a [projections::tickets::TicketRow],
    ticket_total: i64,
    meters: &'a [CustomerMeter],
    changes: &'a [Mutation],
    change_total: i64,
}

/// The newest changes to a customer's row listed on their page (the audit has the rest).
const CHANGES_ON_A_CUSTOMER: i64 = 10;

fn meters_section(meters: &[CustomerMeter]) -> Markup {
    html! {
        section aria-labelledby="meters" {
            h2 id="meters" { "Meters" }
            @if meters.is_empty() {
                p { "No meter names this customer." }
            } @else {
                div class="table-wrap" {
                    table id="customer-meters" {
                        thead {
                            tr {
                                th scope="col" { "Meter" }
                                th scope="col" { "Account" }
                                th scope="col" { "Site" }
                                th scope="col" { "Type" }
                                th scope="col" { "Connected" }
                                th scope="col" { "Table" }
                            }
                        }
                        tbody {
                            @for m in meters {
                                tr {
                                    th scope="row" { (m.meter_id) }
                                    td { (or_dash(m.account_number.as_deref())) }
                                    td { (or_dash(m.community.as_deref())) }
                                    td { (or_dash(m.customer_type.as_deref())) }
                                    td { (day(m.connect_date)) }
                                    td { (m.source_table) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn changes_section(customer_id: i64, changes: &[Mutation], total: i64) -> Markup {
    html! {
        section aria-labelledby="changes" {
            h2 id="changes" { "Changes to this customer" }
            @if changes.is_empty() {
                p { "No change to this customer's row is recorded." }
            } @else {
                p class="muted" id="customer-change-total" {
                    (count(total)) " recorded changes, newest first"
                    @if total > changes.len() as i64 { " (the newest " (changes.len()) " shown)" }
                    " · "
                    a href={ "/portal/audit/records/tblcustomer/" (customer_id) } { "the record as of a chosen time" }
                }
                div class="table-wrap" {
                    table id="customer-changes" {
                        thead {
                            tr {
                                th scope="col" { "Mutation" }
                                th scope="col" { "When" }
                                th scope="col" { "Action" }
                                th scope="col" { "By" }
                                th scope="col" { "Channel" }
                                th scope="col" { "Fields" }
                            }
                        }
                        tbody {
                            @for m in changes {
                                tr {
                                    th scope="row" { a href={ "/portal/mutations/" (m.id) } { (m.id) } }
                                    td { (when(m.recorded_at)) }
                                    td { (m.action) }
                                    td { (m.user_name.as_deref().or(m.user_id.as_deref()).unwrap_or("–")) }
                                    td { (m.channel) }
                                    td { (m.changed.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bad_searches_are_named_and_good_ones_kept_in_the_paging_links() {
        let (_, bad) = ListQuery::parse(&pairs(&[("page", "x")]));
        assert!(bad.unwrap_err().contains("page"));
        let (_, bad) = ListQuery::parse(&pairs(&[("page", "0")]));
        assert!(bad.is_err());
        let (_, bad) = ListQuery::parse(&pairs(&[("q", "a")]));
        assert!(bad.unwrap_err().starts_with("q:"));
        let (_, nothing) = ListQuery::parse(&pairs(&[]));
        assert_eq!(nothing, Ok(None));
        let (query, good) = ListQuery::parse(&pairs(&[("q", "Mo ena"), ("site", "mak")]));
        let good = good.unwrap().unwrap();
        assert_eq!(good.text.as_deref(), Some("Mo ena"));
        assert_eq!(good.site.unwrap().as_str(), "MAK");
        assert_eq!(
            query.href(2),
            "/portal/customers?page=2&q=Mo%20ena&site=MAK"
        );
        let (_, by_site) = ListQuery::parse(&pairs(&[("site", "MAS")]));
        let by_site = by_site.unwrap().unwrap();
        assert_eq!(by_site.text, None);
        assert_eq!(by_site.site.unwrap().as_str(), "MAS");
    }
}
