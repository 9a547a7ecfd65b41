//! The inbox worker on real PostgreSQL: tickets, conversations and the outbox from stored
//! deliveries.

use bridge::outbox_items::{UgridplanItem, WhatsappItem};
use bridge::triage;
use bridge::worker::WorkerSettings;
use chrono::{Duration, Utc};
use domain::phone::PhoneNumber;
use domain::ticket::{TicketCommand, TicketStatus};

use crate::support::{
    photo_message, status_update, text_message, Bridge, MPHO_PHONE, MPHO_WA_ID, STRANGER_WA_ID,
};

fn forwarding() -> WorkerSettings {
    WorkerSettings {
        forward_to_ugridplan: true,
        ops_recipients: vec![PhoneNumber::parse("+26622001122").unwrap()],
        ..WorkerSettings::default()
    }
}

fn replies(rows: &[crate::support::OutboxRow]) -> Vec<WhatsappItem> {
    rows.iter()
        .filter(|r| r.channel == "whatsapp")
        .map(|r| serde_json::from_value(r.payload.clone()).unwrap())
        .filter(|item| matches!(item, WhatsappItem::Reply { .. }))
        .collect()
}

#[tokio::test]
async fn an_outage_reported_by_a_known_customer_opens_a_numbered_ticket_at_their_site_and_queues_the_reply_the_forward_and_the_ops_notice(
) {
    let bridge = Bridge::new().await;
    bridge
        .deliver(text_message(
            MPHO_WA_ID,
            "wamid.1",
            "Ha ke na motlakase ho tloha hoseng",
            Utc::now(),
        ))
        .await;

    let pass = bridge.worker(forwarding()).process_pending().await.unwrap();

    assert_eq!((pass.deliveries, pass.failed), (1, 0));
    let year = Utc::now().format("%Y").to_string();
    let number = format!("MAK-{year}-0001");
    assert_eq!(bridge.ticket_numbers().await, vec![number.clone()]);
    let ticket = bridge.ticket(&number).await;
    assert_eq!(ticket.status, Some(TicketStatus::Open));
    assert_eq!(ticket.priority, Some(domain::ticket::Priority::P1));
    let conversation = bridge.conversation(MPHO_PHONE).await;
    assert_eq!(conversation.customer_id, Some(12));
    assert_eq!(
        conversation.ticket.as_ref().map(ToString::to_string),
        Some(number.clone())
    );
    assert!(conversation.answered("wamid.1"));

    let outbox = bridge.outbox().await;
    let [WhatsappItem::Reply { phone, text, .. }] = &replies(&outbox)[..] else {
        panic!("one reply: {outbox:?}")
    };
    assert_eq!(phone, MPHO_PHONE);
    assert!(text.contains(&number), "{text}");
    assert!(
        !text.contains(&triage::ask_for_account_reply()),
        "Mpho is known: {text}"
    );
    let forwarded: Vec<UgridplanItem> = outbox
        .iter()
        .filter(|r| r.channel == "ugridplan")
        .map(|r| serde_json::from_value(r.payload.clone()).unwrap())
        .collect();
    let [UgridplanItem::Ticket { ticket, .. }] = &forwarded[..] else {
        panic!("the ticket is forwarded: {forwarded:?}")
    };
    assert_eq!(ticket.site_id, "MAK");
    assert_eq!(ticket.reported_by, "Mpho Mokoena (WhatsApp)");
    assert_eq!(ticket.customer_id.as_deref(), Some("12"));
    let notice = outbox
        .iter()
        .find(|r| r.recipient == "+26622001122")
        .expect("the operations team is told");
    assert_eq!(notice.payload["ticket"], number.as_str());
    assert_eq!(notice.payload["phone"], MPHO_PHONE);
}

#[tokio::test]
async fn a_delivery_handled_again_after_a_crash_or_sent_again_by_meta_changes_nothing() {
    let bridge = Bridge::new().await;
    let message = text_message(MPHO_WA_ID, "wamid.1", "Ha ke na motlakase", Utc::now());
    bridge.deliver(message.clone()).await;
    let worker = bridge.worker(forwarding());
    worker.process_pending().await.unwrap();
    let events = bridge.bridge_events().await;
    let outbox = bridge.outbox().await.len();

    // Meta sends it again, and the worker dies before marking anything processed.
    bridge.deliver(message).await;
    bridge.forget_processing().await;
    let pass = worker.process_pending().await.unwrap();

    assert_eq!(pass.deliveries, 2);
    assert_eq!(bridge.bridge_events().await, events);
    assert_eq!(bridge.outbox().await.len(), outbox);
    assert_eq!(bridge.ticket_numbers().await.len(), 1);
}

#[tokio::test]
async fn a_follow_up_within_the_window_is_a_comment_on_the_ticket_and_after_it_is_closed_a_new_ticket_opens(
) {
    let bridge = Bridge::new().await;
    let worker = bridge.worker(forwarding());
    let start = Utc::now() - Duration::minutes(20);
    bridge
        .deliver(text_message(
            MPHO_WA_ID,
            "wamid.1",
            "Ha ke na motlakase",
            start,
        ))
        .await;
    worker.process_pending().await.unwrap();
    bridge
        .deliver(text_message(
            MPHO_WA_ID,
            "wamid.2",
            "Le joale ha ho motlakase",
            start + Duration::minutes(10),
        ))
        .await;
    worker.process_pending().await.unwrap();

    let numbers = bridge.ticket_numbers().await;
    assert_eq!(numbers.len(), 1, "a follow-up opens no ticket");
    assert_eq!(bridge.ticket(&numbers[0]).await.comments, 1);
    let outbox = bridge.outbox().await;
    let texts: Vec<String> = replies(&outbox)
        .into_iter()
        .map(|r| match r {
            WhatsappItem::Reply { text, .. } => text,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts[1], triage::ticket_updated_reply(&numbers[0]));
    assert!(
        outbox
            .iter()
            .any(|r| r.key.starts_with("ugridplan:comment:")),
        "the follow-up goes to uGridPlan too"
    );

    // Staff close the ticket; the customer writes again within the window.
    bridge
        .tickets
        .execute(
            &numbers[0].parse().unwrap(),
            TicketCommand::ChangeStatus {
                to: TicketStatus::Closed,
                reason: Some("restored".into()),
            },
            &domain::command::CommandContext::new(domain::envelope::Actor::system()),
        )
        .await
        .unwrap();
    bridge
        .deliver(text_message(
            MPHO_WA_ID,
            "wamid.3",
            "Ha ke na motlakase hape",
            start + Duration::minutes(15),
        ))
        .await;
    worker.process_pending().await.unwrap();
    assert_eq!(
        bridge.ticket_numbers().await.len(),
        2,
        "a closed ticket takes no follow-ups"
    );
}

#[tokio::test]
async fn an_unknown_sender_is_asked_for_their_account_and_the_answer_links_them() {
    let bridge = Bridge::new().await;
    let worker = bridge.worker(WorkerSettings::default());
    bridge
        .deliver(text_message(
            STRANGER_WA_ID,
            "wamid.1",
            "Lumela",
            Utc::now(),
        ))
        .await;
    worker.process_pending().await.unwrap();
    let stranger = "+26662999888";
    let conversation = bridge.conversation(stranger).await;
    assert!(conversation.asked_for_account);
    assert_eq!(conversation.customer_id, None);
    let first = replies(&bridge.outbox().await);
    let WhatsappItem::Reply { text, .. } = &first[0] else {
        panic!()
    };
    assert!(text.ends_with(&triage::ask_for_account_reply()), "{text}");

    bridge
        .deliver(text_message(
            STRANGER_WA_ID,
            "wamid.2",
            "Ke 0045 mak",
            Utc::now(),
        ))
        .await;
    worker.process_pending().await.unwrap();

    let conversation = bridge.conversation(stranger).await;
    assert_eq!(conversation.customer_id, Some(12));
    assert!(!conversation.asked_for_account);
    let all = replies(&bridge.outbox().await);
    let WhatsappItem::Reply { text, .. } = &all[1] else {
        panic!()
    };
    assert_eq!(text, &triage::account_found_reply("Mpho Mokoena"));

    // Linked by the account, the next report is hers: her site and her name.
    bridge
        .deliver(text_message(
            STRANGER_WA_ID,
            "wamid.3",
            "Ha ke na motlakase",
            Utc::now(),
        ))
        .await;
    worker.process_pending().await.unwrap();
    let numbers = bridge.ticket_numbers().await;
    assert!(numbers[0].starts_with("MAK-"), "{numbers:?}");
}

#[tokio::test]
async fn a_photo_without_words_is_asked_to_be_described_and_opens_nothing() {
    let bridge = Bridge::new().await;
    bridge
        .deliver(photo_message(MPHO_WA_ID, "wamid.1", Utc::now()))
        .await;
    bridge.worker(forwarding()).process_pending().await.unwrap();
    assert!(bridge.ticket_numbers().await.is_empty());
    let all = replies(&bridge.outbox().await);
    let [WhatsappItem::Reply { text, .. }] = &all[..] else {
        panic!("{all:?}")
    };
    assert_eq!(text, &triage::media_only_reply());
}

#[tokio::test]
async fn delivery_statuses_of_a_reply_are_recorded_in_its_conversation_in_any_order() {
    let bridge = Bridge::new().await;
    bridge
        .deliver(text_message(MPHO_WA_ID, "wamid.1", "Lumela", Utc::now()))
        .await;
    let worker = bridge.worker(WorkerSettings::default());
    worker.process_pending().await.unwrap();
    bridge
        .deliver(status_update(MPHO_WA_ID, "wamid.out.1", "read"))
        .await;
    bridge
        .deliver(status_update(MPHO_WA_ID, "wamid.out.1", "delivered"))
        .await;
    worker.process_pending().await.unwrap();
    let conversation = bridge.conversation(MPHO_PHONE).await;
    assert_eq!(conversation.deliveries.len(), 1);
    assert_eq!(conversation.deliveries[0].status, "read");
    assert_eq!(conversation.deliveries[0].reported, ["read", "delivered"]);
}

#[tokio::test]
async fn replies_to_one_customer_are_spaced_by_the_rate_limit_rather_than_dropped() {
    let bridge = Bridge::new().await;
    let now = Utc::now();
    for (i, text) in ["Lumela", "U phela joang?", "Ke kopa thuso"]
        .iter()
        .enumerate()
    {
        bridge
            .deliver(text_message(MPHO_WA_ID, &format!("wamid.{i}"), text, now))
            .await;
    }
    bridge
        .worker(WorkerSettings {
            reply_spacing: Duration::seconds(30),
            ..WorkerSettings::default()
        })
        .process_pending()
        .await
        .unwrap();
    let outbox = bridge.outbox().await;
    assert_eq!(outbox.len(), 3, "every message gets its reply queued");
    let gaps: Vec<i64> = outbox
        .windows(2)
        .map(|w| (w[1].not_before - w[0].not_before).num_seconds())
        .collect();
    assert!(gaps.iter().all(|gap| *gap >= 29), "{gaps:?}");
}

#[tokio::test]
async fn an_unknown_sender_who_names_their_village_gets_tickets_at_its_site() {
    let bridge = Bridge::new().await;
    let settings = WorkerSettings::default;
    bridge
        .receive(STRANGER_WA_ID, "wamid.1", "Lumela", Utc::now(), settings())
        .await;
    bridge
        .receive(
            STRANGER_WA_ID,
            "wamid.2",
            "Ke lula Mashai",
            Utc::now(),
            settings(),
        )
        .await;
    bridge
        .receive(
            STRANGER_WA_ID,
            "wamid.3",
            "Ha ke na motlakase",
            Utc::now(),
            settings(),
        )
        .await;

    let texts: Vec<String> = replies(&bridge.outbox().await)
        .into_iter()
        .map(|r| match r {
            WhatsappItem::Reply { text, .. } => text,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts[1], triage::village_noted_reply("Mashai"));
    assert!(
        !texts[2].contains(&triage::ask_for_account_reply()),
        "the village answered the question: {}",
        texts[2]
    );
    let numbers = bridge.ticket_numbers().await;
    assert!(numbers[0].starts_with("MAS-"), "{numbers:?}");
    assert_eq!(
        bridge
            .conversation("+26662999888")
            .await
            .named_site
            .as_deref(),
        Some("MAS")
    );
}

#[tokio::test]
async fn a_report_as_long_as_whatsapp_allows_still_opens_its_ticket() {
    let bridge = Bridge::new().await;
    let long = format!("Ha ke na motlakase. {}", "Ho lefifi. ".repeat(370));
    assert!(long.chars().count() > domain::ticket::MAX_TEXT_CHARS);
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.1",
            &long,
            Utc::now(),
            WorkerSettings::default(),
        )
        .await;
    assert_eq!(bridge.ticket_numbers().await.len(), 1);
}

#[tokio::test]
async fn a_message_after_the_follow_up_window_is_a_new_matter_and_the_window_is_configurable() {
    let bridge = Bridge::new().await;
    let settings = || WorkerSettings {
        follow_up_window: Duration::seconds(1),
        ..WorkerSettings::default()
    };
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.1",
            "Ha ke na motlakase",
            Utc::now(),
            settings(),
        )
        .await;
    // Webhook timestamps are whole seconds: a message's time may read up to a second early, so
    // the second one comes well past the 1 s window.
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    bridge
        .receive(
            MPHO_WA_ID,
            "wamid.2",
            "Mabone a timile hape",
            Utc::now(),
            settings(),
        )
        .await;

    let numbers = bridge.ticket_numbers().await;
    assert_eq!(
        numbers.len(),
        2,
        "past the window, a second ticket: {numbers:?}"
    );
    assert_eq!(bridge.ticket(&numbers[0]).await.comments, 0);
}
