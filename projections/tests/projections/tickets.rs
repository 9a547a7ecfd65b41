//! The tickets read model, from events of the Ticket aggregate appended to the log, and its
//! queries: the list with its filters, a ticket's page and the summary of active tickets.

use std::sync::Arc;

use chrono::{Duration, Utc};
use cqrs_es::DomainEvent;
use domain::conversation::ConversationCommand;
use domain::envelope::{Actor, Channel, Envelope};
use domain::event::NewEvent;
use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use domain::ticket::{
    Category, NewTicket, Priority, TicketChannel, TicketCommand, TicketEvent, TicketNumber,
    TicketStatus, TICKET, TICKET_EVENT_VERSION,
};
use projections::tickets::{TicketFilter, TicketSort, TicketsProjection};
use projections::{Projection, ProjectorRunner};
use uuid::Uuid;

use crate::support::{CareDesk, Harness};

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

fn all_tickets() -> TicketFilter {
    TicketFilter::default()
}

async fn numbers(desk: &CareDesk, filter: &TicketFilter, sort: TicketSort) -> (Vec<String>, i64) {
    let (tickets, total) = desk.read_models.tickets(filter, sort, 50, 0).await.unwrap();
    (
        tickets.into_iter().map(|t| t.ticket_number).collect(),
        total,
    )
}

#[tokio::test]
async fn the_ticket_list_filters_on_every_field_pages_and_shows_the_newest_first() {
    // Arrange
    let h = Harness::new().await;
    let desk = h.care_desk().await;
    let phone = "+26658123456";
    let mak1 = desk
        .open_ticket(
            "MAK",
            Priority::P1,
            "No power at all",
            Some(phone),
            Some(12),
        )
        .await;
    let mak2 = desk
        .open_ticket("MAK", Priority::P3, "Meter beeps", None, Some(13))
        .await;
    let sha1 = desk
        .open_ticket("SHA", Priority::P1, "Pole down", None, None)
        .await;
    desk.ticket(
        &mak2,
        TicketCommand::ChangeStatus {
            to: TicketStatus::InProgress,
            reason: None,
        },
    )
    .await;
    desk.ticket(
        &sha1,
        TicketCommand::ChangeStatus {
            to: TicketStatus::Closed,
            reason: Some("Fixed".into()),
        },
    )
    .await;
    desk.catch_up().await;
    let [mak1, mak2, sha1] = [mak1, mak2, sha1].map(|n| n.to_string());

    // Act / Assert
    let all = numbers(&desk, &all_tickets(), TicketSort::Newest).await;
    assert_eq!(all, (vec![sha1.clone(), mak2.clone(), mak1.clone()], 3));
    let oldest = numbers(&desk, &all_tickets(), TicketSort::Oldest).await;
    assert_eq!(oldest.0, vec![mak1.clone(), mak2.clone(), sha1.clone()]);
    let urgent = numbers(&desk, &all_tickets(), TicketSort::Priority).await;
    assert_eq!(urgent.0, vec![mak1.clone(), sha1.clone(), mak2.clone()]);
    let updated = numbers(&desk, &all_tickets(), TicketSort::Updated).await;
    assert_eq!(updated.0, vec![sha1.clone(), mak2.clone(), mak1.clone()]);

    let cases: Vec<(TicketFilter, Vec<&String>)> = vec![
        (
            TicketFilter {
                statuses: vec![TicketStatus::Open, TicketStatus::InProgress],
                ..all_tickets()
            },
            vec![&mak2, &mak1],
        ),
        (
            TicketFilter {
                statuses: vec![TicketStatus::Closed],
                ..all_tickets()
            },
            vec![&sha1],
        ),
        (
            TicketFilter {
                site: Some(SiteCode::parse("mak").unwrap()),
                ..all_tickets()
            },
            vec![&mak2, &mak1],
        ),
        (
            TicketFilter {
                priority: Some(Priority::P1),
                ..all_tickets()
            },
            vec![&sha1, &mak1],
        ),
        (
            TicketFilter {
                category: Some(Category::Billing),
                ..all_tickets()
            },
            vec![],
        ),
        (
            TicketFilter {
                customer_id: Some(13),
                ..all_tickets()
            },
            vec![&mak2],
        ),
        (
            TicketFilter {
                phone: Some(PhoneNumber::parse("58123456").unwrap()),
                ..all_tickets()
            },
            vec![&mak1],
        ),
        (
            TicketFilter {
                text: Some("POLE".into()),
                ..all_tickets()
            },
            vec![&sha1],
        ),
        (
            TicketFilter {
                text: Some("sha-2026".into()),
                ..all_tickets()
            },
            vec![&sha1],
        ),
        (
            TicketFilter {
                text: Some("customer's words".into()),
                ..all_tickets()
            },
            vec![&sha1, &mak2, &mak1],
        ),
        (
            TicketFilter {
                text: Some("100%".into()),
                ..all_tickets()
            },
            vec![],
        ),
        (
            TicketFilter {
                opened_from: Some(Utc::now() + Duration::hours(1)),
                ..all_tickets()
            },
            vec![],
        ),
        (
            TicketFilter {
                opened_from: Some(Utc::now() - Duration::hours(1)),
                opened_before: Some(Utc::now() + Duration::hours(1)),
                ..all_tickets()
            },
            vec![&sha1, &mak2, &mak1],
        ),
    ];
    for (filter, expected) in cases {
        let (found, total) = numbers(&desk, &filter, TicketSort::Newest).await;
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(total, expected.len() as i64, "{filter:?}");
        assert_eq!(found, expected, "{filter:?}");
    }

    let (page, total) = desk
        .read_models
        .tickets(&all_tickets(), TicketSort::Newest, 2, 2)
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        page.iter().map(|t| &t.ticket_number).collect::<Vec<_>>(),
        vec![&mak1]
    );
    assert_eq!(page[0].customer_id, Some(12));
    assert_eq!(page[0].phone.as_deref(), Some(phone));
}

#[tokio::test]
async fn a_tickets_page_has_its_history_and_the_messages_of_its_phone_from_a_day_before_it_opened()
{
    // Arrange: the customer wrote two days ago, an hour ago, and after the ticket was opened.
    let h = Harness::new().await;
    let desk = h.care_desk().await;
    let phone = "+26658123456";
    let receive =
        |id: &str, text: &str, sent_at: chrono::DateTime<Utc>| ConversationCommand::Receive {
            message_id: id.into(),
            text: Some(text.into()),
            media: None,
            profile_name: None,
            sent_at,
        };
    desk.converse(
        phone,
        receive(
            "wamid.old",
            "Last week's question",
            Utc::now() - Duration::hours(48),
        ),
    )
    .await;
    desk.converse(
        phone,
        receive(
            "wamid.1",
            "Ha ke na motlakase",
            Utc::now() - Duration::hours(1),
        ),
    )
    .await;
    let number = desk
        .open_ticket("MAK", Priority::P1, "No power", Some(phone), Some(12))
        .await;
    desk.converse(
        phone,
        ConversationCommand::LinkTicket {
            number: number.clone(),
        },
    )
    .await;
    desk.converse(
        phone,
        receive(
            "wamid.2",
            "Still nothing",
            Utc::now() + Duration::seconds(1),
        ),
    )
    .await;
    desk.ticket(
        &number,
        TicketCommand::Comment {
            author: "E042".into(),
            text: "A technician is on the way".into(),
            channel: TicketChannel::Portal,
        },
    )
    .await;
    let portal_ticket = desk
        .open_ticket("MAK", Priority::P4, "Move my meter", None, Some(12))
        .await;
    desk.catch_up().await;

    // Act
    let detail = desk
        .read_models
        .ticket(&number.to_string(), 200)
        .await
        .unwrap()
        .unwrap();
    let capped = desk
        .read_models
        .ticket(&number.to_string(), 1)
        .await
        .unwrap()
        .unwrap();
    let without_phone = desk
        .read_models
        .ticket(&portal_ticket.to_string(), 200)
        .await
        .unwrap()
        .unwrap();
    let missing = desk.read_models.ticket("MAK-2026-0999", 200).await.unwrap();

    // Assert
    assert_eq!(detail.ticket.ticket_number, number.to_string());
    assert_eq!(detail.ticket.status, "open");
    assert_eq!(detail.ticket.comments, 1);
    let kinds: Vec<(&str, Option<&str>)> = detail
        .activity
        .iter()
        .map(|a| (a.kind.as_str(), a.actor.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        vec![("opened", Some("system")), ("commented", Some("E042"))]
    );
    let texts: Vec<Option<&str>> = detail.messages.iter().map(|m| m.text.as_deref()).collect();
    assert_eq!(
        texts,
        vec![Some("Ha ke na motlakase"), Some("Still nothing")]
    );
    assert_eq!(detail.messages_total, 2);
    assert_eq!(detail.messages[1].ticket_number, Some(number.to_string()));
    assert_eq!(capped.messages.len(), 1);
    assert_eq!(capped.messages_total, 2);
    assert!(without_phone.messages.is_empty());
    assert_eq!(missing, None);
    let last = detail.activity.last().unwrap();
    let at = desk
        .read_models
        .ticket_activity_at(last.position)
        .await
        .unwrap();
    assert_eq!(at.as_ref(), Some(last));
}

#[tokio::test]
async fn the_summary_counts_the_active_tickets_per_site_and_priority_with_the_oldest() {
    // Arrange
    let h = Harness::new().await;
    let desk = h.care_desk().await;
    let first = desk
        .open_ticket("MAK", Priority::P1, "No power", None, None)
        .await;
    let second = desk
        .open_ticket("MAK", Priority::P1, "No power either", None, None)
        .await;
    desk.open_ticket("MAK", Priority::P3, "Slow meter", None, None)
        .await;
    let closed = desk
        .open_ticket("SHA", Priority::P2, "Sparks", None, None)
        .await;
    desk.ticket(
        &second,
        TicketCommand::ChangeStatus {
            to: TicketStatus::InProgress,
            reason: None,
        },
    )
    .await;
    desk.ticket(
        &closed,
        TicketCommand::ChangeStatus {
            to: TicketStatus::Resolved,
            reason: None,
        },
    )
    .await;
    desk.catch_up().await;

    // Act
    let summary = desk.read_models.active_tickets().await.unwrap();

    // Assert
    let groups: Vec<(&str, &str, i64, i64, i64)> = summary
        .iter()
        .map(|g| {
            (
                g.site.as_str(),
                g.priority.as_str(),
                g.open,
                g.in_progress,
                g.count,
            )
        })
        .collect();
    assert_eq!(groups, vec![("MAK", "P1", 1, 1, 2), ("MAK", "P3", 1, 0, 1)]);
    let opened = desk
        .read_models
        .ticket(&first.to_string(), 0)
        .await
        .unwrap()
        .unwrap()
        .ticket
        .opened_at;
    assert_eq!(summary[0].oldest_opened_at, opened);
}
