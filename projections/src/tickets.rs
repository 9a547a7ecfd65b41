//! The `tickets` read model: the tickets ccare numbers itself (events of the `Ticket` aggregate),
//! for the staff's ticket list and the portal.
//!
//! Tables:
//! - `tickets`: one row per ticket, its current status, classification, customer and uGridPlan id,
//!   when it was opened and last changed (the age the portal shows is `now() - opened_at`);
//! - `ticket_activity`: one row per event of a ticket (opened, commented, status changed,
//!   reclassified, forwarded), with who did it, in order: a ticket's history and comments.
//!
//! The queries below serve the staff's ticket list, a ticket's page (with the WhatsApp messages
//! of its phone from the `conversations` read model) and the portal's summary of active tickets.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use domain::event::StoredEvent;
use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use domain::ticket::{Category, Priority, TicketEvent, TicketStatus, TICKET};
use sqlx::{PgConnection, PgPool};

use crate::conversations::{self, Message};
use crate::error::Result;
use crate::projection::{decode_payload, execute_all, qualified, Projection};

/// The projection's permanent name.
pub const NAME: &str = "tickets";

const AGGREGATE_TYPES: &[&str] = &[TICKET];

/// Builds the `tickets` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketsProjection;

#[async_trait]
impl Projection for TicketsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(AGGREGATE_TYPES)
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let tickets = qualified(schema, "tickets");
        let activity = qualified(schema, "ticket_activity");
        let statements = [
            format!(
                "create table {tickets} (
                    ticket_number text primary key,
                    site          text not null,
                    year          integer not null,
                    serial        integer not null,
                    status        text not null,
                    category      text not null,
                    priority      text not null,
                    summary       text not null,
                    description   text not null,
                    customer_id   bigint,
                    phone         text,
                    channel       text not null,
                    triaged_by    text not null,
                    ugridplan_id  text,
                    comments      integer not null,
                    opened_at     timestamptz not null,
                    updated_at    timestamptz not null,
                    position      bigint not null
                )"
            ),
            format!("comment on table {tickets} is 'ccare: one row per ticket (number SITE-YYYY-NNNN), its current status and classification; phone in E.164'"),
            format!("create index on {tickets} (status, site, priority)"),
            format!("create index on {tickets} (customer_id)"),
            format!("create index on {tickets} (phone)"),
            format!(
                "create table {activity} (
                    position      bigint primary key,
                    ticket_number text not null,
                    kind          text not null,
                    actor         text,
                    channel       text,
                    text          text,
                    from_status   text,
                    to_status     text,
                    at            timestamptz not null
                )"
            ),
            format!("comment on table {activity} is 'ccare: every event of every ticket in order (kind opened, commented, status-changed, reclassified, forwarded); text is the comment, the reason or the new classification'"),
            format!("create index on {activity} (ticket_number, position)"),
        ];
        execute_all(conn, statements).await
    }

    fn secondary_indexes(&self, schema: &str) -> Vec<String> {
        let tickets = qualified(schema, "tickets");
        // The ticket list, newest first.
        vec![format!("create index on {tickets} (opened_at)")]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        let tickets = qualified(schema, "tickets");
        let activity = qualified(schema, "ticket_activity");
        for event in events {
            if event.aggregate_type != TICKET {
                continue;
            }
            let ticket_event: TicketEvent = decode_payload(event, "a ticket event")?;
            let number = &event.aggregate_id;
            // Who did it: the envelope's user, else its channel (the bridge, the system).
            let actor = event
                .metadata
                .get("actor_user_id")
                .or_else(|| event.metadata.get("channel"))
                .cloned();
            let mut entry = Activity {
                kind: "",
                actor,
                channel: None,
                text: None,
                from_status: None,
                to_status: None,
            };
            match ticket_event {
                TicketEvent::Opened(new) => {
                    sqlx::query(&format!(
                        "insert into {tickets} (ticket_number, site, year, serial, status, category,
                             priority, summary, description, customer_id, phone, channel, triaged_by,
                             ugridplan_id, comments, opened_at, updated_at, position)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, null, 0,
                                 $14, $14, $15)
                         on conflict (ticket_number) do nothing"
                    ))
                    .bind(number)
                    .bind(new.number.site())
                    .bind(new.number.year())
                    .bind(i64::from(new.number.serial()))
                    .bind(TicketStatus::Open.as_str())
                    .bind(new.category.as_str())
                    .bind(new.priority.as_str())
                    .bind(&new.summary)
                    .bind(&new.description)
                    .bind(new.customer_id)
                    .bind(&new.phone)
                    .bind(channel_name(new.channel))
                    .bind(&new.triaged_by)
                    .bind(event.recorded_at)
                    .bind(event.position)
                    .execute(&mut *conn)
                    .await?;
                    entry.kind = "opened";
                    entry.channel = Some(channel_name(new.channel));
                    entry.text = Some(new.description);
                    entry.to_status = Some(TicketStatus::Open.as_str());
                }
                TicketEvent::Commented {
                    author,
                    text,
                    channel,
                } => {
                    touch(conn, &tickets, number, event, "comments = comments + 1").await?;
                    entry.kind = "commented";
                    entry.actor = Some(author);
                    entry.channel = Some(channel_name(channel));
                    entry.text = Some(text);
                }
                TicketEvent::StatusChanged { from, to, reason } => {
                    sqlx::query(&format!(
                        "update {tickets} set status = $2, updated_at = $3, position = $4
                         where ticket_number = $1"
                    ))
                    .bind(number)
                    .bind(to.as_str())
                    .bind(event.recorded_at)
                    .bind(event.position)
                    .execute(&mut *conn)
                    .await?;
                    entry.kind = "status-changed";
                    entry.text = reason;
                    entry.from_status = Some(from.as_str());
                    entry.to_status = Some(to.as_str());
                }
                TicketEvent::Reclassified {
                    category, priority, ..
                } => {
                    sqlx::query(&format!(
                        "update {tickets} set category = $2, priority = $3, updated_at = $4,
                             position = $5
                         where ticket_number = $1"
                    ))
                    .bind(number)
                    .bind(category.as_str())
                    .bind(priority.as_str())
                    .bind(event.recorded_at)
                    .bind(event.position)
                    .execute(&mut *conn)
                    .await?;
                    entry.kind = "reclassified";
                    entry.text = Some(format!("{} {}", category.as_str(), priority.as_str()));
                }
                TicketEvent::ForwardedToUgridplan { ugridplan_id } => {
                    sqlx::query(&format!(
                        "update {tickets} set ugridplan_id = $2, updated_at = $3, position = $4
                         where ticket_number = $1"
                    ))
                    .bind(number)
                    .bind(&ugridplan_id)
                    .bind(event.recorded_at)
                    .bind(event.position)
                    .execute(&mut *conn)
                    .await?;
                    entry.kind = "forwarded";
                    entry.text = Some(ugridplan_id);
                }
            }
            sqlx::query(&format!(
                "insert into {activity} (position, ticket_number, kind, actor, channel, text,
                     from_status, to_status, at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 on conflict (position) do nothing"
            ))
            .bind(event.position)
            .bind(number)
            .bind(entry.kind)
            .bind(entry.actor)
            .bind(entry.channel)
            .bind(entry.text)
            .bind(entry.from_status)
            .bind(entry.to_status)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// A `ticket_activity` row being made.
struct Activity {
    kind: &'static str,
    actor: Option<String>,
    channel: Option<&'static str>,
    text: Option<String>,
    from_status: Option<&'static str>,
    to_status: Option<&'static str>,
}

fn channel_name(channel: domain::ticket::TicketChannel) -> &'static str {
    match channel {
        domain::ticket::TicketChannel::Whatsapp => "whatsapp",
        domain::ticket::TicketChannel::Portal => "portal",
    }
}

/// Moves a ticket's `updated_at` and position, with `set` for the rest.
async fn touch(
    conn: &mut PgConnection,
    tickets: &str,
    number: &str,
    event: &StoredEvent,
    set: &str,
) -> Result<()> {
    sqlx::query(&format!(
        "update {tickets} set {set}, updated_at = $2, position = $3 where ticket_number = $1"
    ))
    .bind(number)
    .bind(event.recorded_at)
    .bind(event.position)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Queries. They read the `read_model` views, so they always see the live generation.
// ---------------------------------------------------------------------------------------------

/// A ticket as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRow {
    pub ticket_number: String,
    pub site: String,
    pub year: i32,
    pub serial: i32,
    pub status: String,
    pub category: String,
    pub priority: String,
    pub summary: String,
    pub description: String,
    pub customer_id: Option<i64>,
    /// E.164.
    pub phone: Option<String>,
    pub channel: String,
    pub triaged_by: String,
    pub ugridplan_id: Option<String>,
    pub comments: i32,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One event of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketActivity {
    /// The position of the event.
    pub position: i64,
    pub ticket_number: String,
    /// opened, commented, status-changed, reclassified or forwarded.
    pub kind: String,
    pub actor: Option<String>,
    pub channel: Option<String>,
    /// The description, the comment, the reason, the new classification or the uGridPlan id.
    pub text: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub at: DateTime<Utc>,
}

/// Filters of the ticket list; every field optional, all of them must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Any of these statuses (none: every status).
    pub statuses: Vec<TicketStatus>,
    pub site: Option<SiteCode>,
    pub priority: Option<Priority>,
    pub category: Option<Category>,
    pub customer_id: Option<i64>,
    pub phone: Option<PhoneNumber>,
    /// Opened at or after this instant.
    pub opened_from: Option<DateTime<Utc>>,
    /// Opened before this instant.
    pub opened_before: Option<DateTime<Utc>>,
    /// Text found, ignoring case, in the number, the summary or the description.
    pub text: Option<String>,
}

/// The order of the ticket list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TicketSort {
    /// The most recently opened first.
    #[default]
    Newest,
    /// The longest open first.
    Oldest,
    /// The most recently changed first.
    Updated,
    /// The most urgent first (P1 before P2…), the longest open first within a priority.
    Priority,
}

impl TicketSort {
    fn order_by(self) -> &'static str {
        match self {
            TicketSort::Newest => "t.opened_at desc, t.ticket_number desc",
            TicketSort::Oldest => "t.opened_at, t.ticket_number",
            TicketSort::Updated => "t.updated_at desc, t.ticket_number desc",
            TicketSort::Priority => "t.priority, t.opened_at, t.ticket_number",
        }
    }
}

const SELECT_TICKETS: &str = "select t.ticket_number, t.site, t.year, t.serial, t.status,
        t.category, t.priority, t.summary, t.description, t.customer_id, t.phone, t.channel,
        t.triaged_by, t.ugridplan_id, t.comments, t.opened_at, t.updated_at
     from read_model.tickets t";

const WHERE_TICKETS: &str = "where (cardinality($1::text[]) = 0 or t.status = any($1))
       and ($2::text is null or t.site = $2)
       and ($3::text is null or t.priority = $3)
       and ($4::text is null or t.category = $4)
       and ($5::bigint is null or t.customer_id = $5)
       and ($6::text is null or t.phone = $6)
       and ($7::timestamptz is null or t.opened_at >= $7)
       and ($8::timestamptz is null or t.opened_at < $8)
       and ($9::text is null
            or strpos(lower(t.ticket_number), lower($9)) > 0
            or strpos(lower(t.summary), lower($9)) > 0
            or strpos(lower(t.description), lower($9)) > 0)";

/// The filter's nine parameters (`$1`…`$9` of [`WHERE_TICKETS`]) bound to `query`.
fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    filter: &'q TicketFilter,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(
            filter
                .statuses
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(filter.site.as_ref().map(SiteCode::as_str))
        .bind(filter.priority.map(Priority::as_str))
        .bind(filter.category.map(Category::as_str))
        .bind(filter.customer_id)
        .bind(filter.phone.as_ref().map(PhoneNumber::as_str))
        .bind(filter.opened_from)
        .bind(filter.opened_before)
        .bind(filter.text.as_deref())
}

/// A page of the tickets matching `filter` in `sort` order, and how many match.
pub async fn list(
    pool: &PgPool,
    filter: &TicketFilter,
    sort: TicketSort,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TicketRow>, i64)> {
    let count = format!("select count(*) from read_model.tickets t {WHERE_TICKETS}");
    let (total,): (i64,) = bind_filter(sqlx::query_as(&count), filter)
        .fetch_one(pool)
        .await?;
    let page = format!(
        "{SELECT_TICKETS} {WHERE_TICKETS} order by {} limit $10 offset $11",
        sort.order_by()
    );
    let tickets = bind_filter(sqlx::query_as(&page), filter)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    Ok((tickets, total))
}

/// The ticket `number` (its display form, `MAK-2026-0065`).
pub async fn by_number(pool: &PgPool, number: &str) -> Result<Option<TicketRow>> {
    Ok(
        sqlx::query_as(&format!("{SELECT_TICKETS} where t.ticket_number = $1"))
            .bind(number)
            .fetch_optional(pool)
            .await?,
    )
}

const SELECT_ACTIVITY: &str = "select a.position, a.ticket_number, a.kind, a.actor, a.channel,
        a.text, a.from_status, a.to_status, a.at
     from read_model.ticket_activity a";

/// Every event of ticket `number`, in order.
pub async fn activity(pool: &PgPool, number: &str) -> Result<Vec<TicketActivity>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT_ACTIVITY} where a.ticket_number = $1 order by a.position"
    ))
    .bind(number)
    .fetch_all(pool)
    .await?)
}

/// The ticket event at `position`, if it is one.
pub async fn activity_at(pool: &PgPool, position: i64) -> Result<Option<TicketActivity>> {
    Ok(
        sqlx::query_as(&format!("{SELECT_ACTIVITY} where a.position = $1"))
            .bind(position)
            .fetch_optional(pool)
            .await?,
    )
}

/// How long before a ticket was opened its phone's messages belong on its page (what led to it).
pub const MESSAGES_BEFORE_OPENING: Duration = Duration::hours(24);

/// A ticket's page: the ticket, its history, and the WhatsApp messages of its phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDetail {
    pub ticket: TicketRow,
    pub activity: Vec<TicketActivity>,
    /// The first messages of the ticket's phone from [`MESSAGES_BEFORE_OPENING`] before it was
    /// opened onward, in order (none for a ticket without a phone).
    pub messages: Vec<Message>,
    /// How many messages there are from then on (more than `messages` holds when capped).
    pub messages_total: i64,
}

/// Ticket `number` with its history and at most `message_limit` messages of its phone.
pub async fn detail(
    pool: &PgPool,
    number: &str,
    message_limit: i64,
) -> Result<Option<TicketDetail>> {
    let Some(ticket) = by_number(pool, number).await? else {
        return Ok(None);
    };
    let activity = activity(pool, number).await?;
    let (messages, messages_total) = match &ticket.phone {
        Some(phone) => {
            let since = ticket.opened_at - MESSAGES_BEFORE_OPENING;
            conversations::messages_since(pool, phone, since, message_limit).await?
        }
        None => (Vec::new(), 0),
    };
    Ok(Some(TicketDetail {
        ticket,
        activity,
        messages,
        messages_total,
    }))
}

/// The active tickets (open or in progress) of one site and priority.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveGroup {
    pub site: String,
    pub priority: String,
    pub open: i64,
    pub in_progress: i64,
    /// `open + in_progress`.
    pub count: i64,
    /// When the oldest of them was opened.
    pub oldest_opened_at: DateTime<Utc>,
}

/// The active tickets per site and priority, by site then the most urgent first.
pub async fn active_summary(pool: &PgPool) -> Result<Vec<ActiveGroup>> {
    Ok(sqlx::query_as(
        "select t.site, t.priority,
                count(*) filter (where t.status = $1) as open,
                count(*) filter (where t.status = $2) as in_progress,
                count(*) as count,
                min(t.opened_at) as oldest_opened_at
         from read_model.tickets t
         where t.status in ($1, $2)
         group by t.site, t.priority
         order by t.site, t.priority",
    )
    .bind(TicketStatus::Open.as_str())
    .bind(TicketStatus::InProgress.as_str())
    .fetch_all(pool)
    .await?)
}
