//! The tickets read model, from events of the Ticket aggregate appended to the log.

use std::sync::Arc;

use cqrs_es::DomainEvent;
use domain::envelope::{Actor, Channel, Envelope};
use domain::event::NewEvent;
use domain::site::SiteCode;
use domain::ticket::{
    Category, NewTicket, Priority, TicketChannel, TicketEvent, TicketNumber, TicketStatus, TICKET,
    TICKET_EVENT_VERSION,
};
use projections::tickets::TicketsProjection;
use projections::{Projection, ProjectorRunner};
use uuid::Uuid;

use crate::support::Harness;

fn number() -> TicketNumber {
    TicketNumber::new(&SiteCode::parse("MAK").unwrap(), 2026, 65).unwrap()
}

/// Both tables of the read model as JSON text, rows in a total order.
async fn dump(h: &Harness) -> Vec<String> {
    let mut dump = Vec::new();
    for view in ["tickets", "ticket_activity"] {
        dump.push(
            sqlx::query_scalar(&format!(
                "select coalesce(json_agg(t order by t::text), '[]')::text from read_model.{view} t"
            ))
            .fetch_one(h.pool())
            .await
            .unwrap(),
        );
    }
    dump
}

async fn append(h: &Harness, sequence: i64, event: TicketEvent, user: Option<&str>) {
    let actor = Actor {
        user_id: user.map(str::to_string),
        role: user.map(|_| "onm_team".to_string()),
        channel: if user.is_some() {
            Channel::Api
        } else {
            Channel::System
        },
    };
    let envelope = Envelope::now(actor, Uuid::new_v4());
    h.capture
        .store()
        .append(&[NewEvent {
            event_id: Uuid::new_v4(),
            aggregate_type: TICKET.to_string(),
            aggregate_id: number().to_string(),
            sequence,
            event_type: event.event_type(),
            event_version: TICKET_EVENT_VERSION.to_string(),
            payload: serde_json::to_value(&event).unwrap(),
            metadata: envelope.to_metadata(),
        }])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_ticket_and_its_activity_follow_its_events_and_a_rebuild_gives_the_same() {
    // Arrange
    let h = Harness::new().await;
    let runner = ProjectorRunner::new(
        h.pool().clone(),
        vec![Arc::new(TicketsProjection) as Arc<dyn Projection>],
    );
    runner.ensure_ready().await.unwrap();

    // Act: opened by the bridge, then handled by staff.
    append(
        &h,
        1,
        TicketEvent::Opened(NewTicket {
            number: number(),
            category: Category::NoPower,
            priority: Priority::P1,
            summary: "Customer reports no power.".into(),
            description: "Ha ke na motlakase".into(),
            customer_id: Some(12),
            phone: Some("+26658123456".into()),
            channel: TicketChannel::Whatsapp,
            triaged_by: "rules".into(),
        }),
        None,
    )
    .await;
    append(
        &h,
        2,
        TicketEvent::Commented {
            author: "WhatsApp:+26658123456".into(),
            text: "Still nothing".into(),
            channel: TicketChannel::Whatsapp,
        },
        None,
    )
    .await;
    append(
        &h,
        3,
        TicketEvent::Reclassified {
            category: Category::EquipmentFailure,
            priority: Priority::P1,
            previous_category: Category::NoPower,
            previous_priority: Priority::P1,
        },
        Some("E042"),
    )
    .await;
    append(
        &h,
        4,
        TicketEvent::ForwardedToUgridplan {
            ugridplan_id: "UGP-981".into(),
        },
        None,
    )
    .await;
    append(
        &h,
        5,
        TicketEvent::StatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Resolved,
            reason: Some("Fuse replaced".into()),
        },
        Some("E042"),
    )
    .await;
    runner.catch_up().await.unwrap();

    // Assert
    let ticket: (
        String,
        String,
        String,
        String,
        Option<i64>,
        Option<String>,
        i32,
    ) = sqlx::query_as(
        "select status, category, priority, site, customer_id, ugridplan_id, comments
             from read_model.tickets where ticket_number = 'MAK-2026-0065'",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(
        ticket,
        (
            "resolved".into(),
            "equipment-failure".into(),
            "P1".into(),
            "MAK".into(),
            Some(12),
            Some("UGP-981".into()),
            1
        )
    );
    let activity: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "select kind, actor, text from read_model.ticket_activity
         where ticket_number = 'MAK-2026-0065' order by position",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        activity,
        vec![
            ("opened".into(), some("system"), some("Ha ke na motlakase")),
            (
                "commented".into(),
                some("WhatsApp:+26658123456"),
                some("Still nothing")
            ),
            (
                "reclassified".into(),
                some("E042"),
                some("equipment-failure P1")
            ),
            ("forwarded".into(), some("system"), some("UGP-981")),
            ("status-changed".into(), some("E042"), some("Fuse replaced")),
        ]
    );
    let before = dump(&h).await;
    runner.rebuild(None, &mut |_| {}).await.unwrap();
    assert_eq!(dump(&h).await, before);
}
