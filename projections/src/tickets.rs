//! The `tickets` read model: the tickets ccare numbers itself (events of the `Ticket` aggregate),
//! for the staff's ticket list and the portal.
//!
//! Tables:
//! - `tickets`: one row per ticket, its current status, classification, customer and uGridPlan id,
//!   when it was opened and last changed (the age the portal shows is `now() - opened_at`);
//! - `ticket_activity`: one row per event of a ticket (opened, commented, status changed,
//!   reclassified, forwarded), with who did it, in order: a ticket's history and comments.

use async_trait::async_trait;
use domain::event::StoredEvent;
use domain::ticket::{TicketEvent, TicketStatus, TICKET};
use sqlx::PgConnection;

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
