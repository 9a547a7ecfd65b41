//! The conversations read model, from the commands the bridge runs on the Conversation
//! aggregate (through the adapters' executor), and a customer's history read back.

use chrono::{DateTime, Duration, Utc};
use domain::conversation::{
    reply_id_for, ConversationCommand, Identification, MediaRef, ReplyKind,
};
use domain::phone::PhoneNumber;
use domain::ticket::Priority;
use projections::conversations::{Message, Party, NAME};

use crate::support::{dump_views, CareDesk, Harness};

const PHONE: &str = "+26658123456";

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap() + Duration::minutes(minute)
}

fn receive(id: &str, text: &str, minute: i64) -> ConversationCommand {
    ConversationCommand::Receive {
        message_id: id.into(),
        text: Some(text.into()),
        media: None,
        profile_name: Some("Mpho".into()),
        sent_at: at(minute),
    }
}

async fn reply(desk: &CareDesk, phone: &str, to: &str, text: &str, minute: i64) {
    desk.converse(
        phone,
        ConversationCommand::QueueReply {
            reply_id: reply_id_for(to),
            text: text.into(),
            kind: ReplyKind::Text,
            at: at(minute),
        },
    )
    .await;
}

async fn status(desk: &CareDesk, wamid: &str, status: &str, minute: i64) {
    desk.converse(
        PHONE,
        ConversationCommand::RecordStatus {
            wamid: wamid.into(),
            status: status.into(),
            at: at(minute),
        },
    )
    .await;
}

fn texts(messages: &[Message]) -> Vec<(&str, &str)> {
    messages
        .iter()
        .map(|m| (m.direction.as_str(), m.text.as_deref().unwrap_or("")))
        .collect()
}

#[tokio::test]
async fn a_conversation_and_its_messages_follow_its_events_and_a_rebuild_gives_the_same() {
    // Arrange
    let h = Harness::new().await;
    let desk = h.care_desk().await;
    let ticket = desk
        .open_ticket("MAK", Priority::P1, "No power", Some(PHONE), Some(12))
        .await;

    // Act: an unknown customer writes, is asked for the account, answers, gets a ticket.
    desk.converse(PHONE, receive("wamid.1", "Ha ke na motlakase", 0))
        .await;
    desk.converse(PHONE, ConversationCommand::AskForAccount)
        .await;
    reply(&desk, PHONE, "wamid.1", "Re fe nomoro ea akhaonto", 1).await;
    desk.converse(
        PHONE,
        ConversationCommand::Receive {
            message_id: "wamid.2".into(),
            text: None,
            media: Some(MediaRef {
                kind: "image".into(),
                media_id: "media.7".into(),
                mime_type: Some("image/jpeg".into()),
            }),
            profile_name: Some("Mpho M.".into()),
            sent_at: at(5),
        },
    )
    .await;
    desk.converse(
        PHONE,
        ConversationCommand::Identify {
            customer_id: 12,
            how: Identification::Account,
        },
    )
    .await;
    desk.converse(
        PHONE,
        ConversationCommand::LinkTicket {
            number: ticket.clone(),
        },
    )
    .await;
    reply(&desk, PHONE, "wamid.2", "Tikete ea hao e thehiloe", 6).await;
    desk.converse(
        PHONE,
        ConversationCommand::RecordSent {
            reply_id: reply_id_for("wamid.2"),
            wamid: "wamid.out.2".into(),
        },
    )
    .await;
    // The statuses come in out of order; a late delivery of an older message comes last.
    status(&desk, "wamid.out.2", "read", 8).await;
    status(&desk, "wamid.out.2", "sent", 6).await;
    status(&desk, "wamid.out.2", "delivered", 7).await;
    desk.converse(PHONE, receive("wamid.0", "Lumela", -3)).await;
    desk.catch_up().await;

    // Assert
    let conversations = desk
        .read_models
        .conversations(&Party::Phone(PhoneNumber::parse(PHONE).unwrap()))
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
    let c = &conversations[0];
    assert_eq!(c.phone, PHONE);
    assert_eq!(c.customer_id, Some(12));
    assert_eq!(
        c.profile_name.as_deref(),
        Some("Mpho"),
        "the one recorded last"
    );
    assert_eq!(
        c.last_inbound_at,
        Some(at(5)),
        "an older message moves nothing"
    );
    assert_eq!(c.last_exchange_at, Some(at(6)));
    assert_eq!(
        c.ticket_number.as_deref(),
        Some(ticket.to_string().as_str())
    );
    assert_eq!((c.messages_in, c.messages_out), (3, 2));
    assert!(!c.asked_for_account, "identified since");

    let (messages, total) = desk
        .read_models
        .conversation_history(&Party::Customer(12), 10, 0)
        .await
        .unwrap();
    assert_eq!(total, 5);
    assert_eq!(
        texts(&messages),
        vec![
            ("out", "Tikete ea hao e thehiloe"),
            ("in", ""),
            ("out", "Re fe nomoro ea akhaonto"),
            ("in", "Ha ke na motlakase"),
            ("in", "Lumela"),
        ],
        "newest first"
    );
    let sent = &messages[0];
    assert_eq!(sent.message_id, reply_id_for("wamid.2"));
    assert_eq!(sent.wamid.as_deref(), Some("wamid.out.2"));
    assert_eq!(sent.status.as_deref(), Some("read"), "the furthest reached");
    assert_eq!(sent.status_at, Some(at(8)));
    assert_eq!(sent.reply_kind.as_deref(), Some("text"));
    assert_eq!(
        sent.ticket_number.as_deref(),
        Some(ticket.to_string().as_str())
    );
    let image = &messages[1];
    assert_eq!(image.message_id, "wamid.2");
    assert_eq!(
        (image.media_kind.as_deref(), image.media_id.as_deref()),
        (Some("image"), Some("media.7"))
    );
    assert_eq!(image.ticket_number, None, "linked after it came");
    let unsent = &messages[2];
    assert_eq!(
        (unsent.wamid.as_deref(), unsent.status.as_deref()),
        (None, None)
    );

    // A failure reported after the read is what staff must see.
    status(&desk, "wamid.out.2", "failed", 9).await;
    desk.catch_up().await;
    let (messages, _) = desk
        .read_models
        .conversation_history(&Party::Customer(12), 1, 0)
        .await
        .unwrap();
    assert_eq!(messages[0].status.as_deref(), Some("failed"));

    let before = dump_views(h.pool(), NAME).await;
    desk.runner.rebuild(Some(NAME), &mut |_| {}).await.unwrap();
    assert_eq!(dump_views(h.pool(), NAME).await, before);
}

#[tokio::test]
async fn a_customers_history_gathers_every_phone_identified_as_theirs_and_pages_newest_first() {
    // Arrange: customer 7 writes from two phones; someone else from a third.
    let h = Harness::new().await;
    let desk = h.care_desk().await;
    let other_phone = "+26662000001";
    let stranger = "+26657000002";
    for (phone, minute) in [(PHONE, 0), (other_phone, 10), (stranger, 20)] {
        desk.converse(phone, receive(&format!("wamid.{phone}"), phone, minute))
            .await;
    }
    for phone in [PHONE, other_phone] {
        desk.converse(
            phone,
            ConversationCommand::Identify {
                customer_id: 7,
                how: Identification::Phone,
            },
        )
        .await;
    }
    reply(
        &desk,
        PHONE,
        &format!("wamid.{PHONE}"),
        "Re u thusa joang?",
        30,
    )
    .await;
    desk.catch_up().await;

    // Act
    let customer = Party::Customer(7);
    let conversations = desk.read_models.conversations(&customer).await.unwrap();
    let (first, total) = desk
        .read_models
        .conversation_history(&customer, 2, 0)
        .await
        .unwrap();
    let (second, _) = desk
        .read_models
        .conversation_history(&customer, 2, 2)
        .await
        .unwrap();
    let (nobody, none) = desk
        .read_models
        .conversation_history(&Party::Customer(8), 2, 0)
        .await
        .unwrap();

    // Assert
    let phones: Vec<&str> = conversations.iter().map(|c| c.phone.as_str()).collect();
    assert_eq!(
        phones,
        vec![PHONE, other_phone],
        "the latest exchange first"
    );
    assert_eq!(total, 3);
    assert_eq!(
        texts(&first),
        vec![("out", "Re u thusa joang?"), ("in", other_phone)]
    );
    assert_eq!(texts(&second), vec![("in", PHONE)]);
    assert!(nobody.is_empty());
    assert_eq!(none, 0);
}

#[tokio::test]
async fn a_status_that_overtakes_the_senders_record_shows_once_the_reply_is_recorded_as_sent() {
    let h = Harness::new().await;
    let desk = h.care_desk().await;
    desk.converse(PHONE, receive("wamid.1", "Lumela", 0)).await;
    reply(&desk, PHONE, "wamid.1", "Lumela! Re ka u thusa joang?", 1).await;
    // Meta's webhook for the reply arrives before the sender has recorded the reply as sent.
    status(&desk, "wamid.out.1", "delivered", 2).await;
    status(&desk, "wamid.out.1", "sent", 2).await;
    desk.converse(
        PHONE,
        ConversationCommand::RecordSent {
            reply_id: reply_id_for("wamid.1"),
            wamid: "wamid.out.1".into(),
        },
    )
    .await;
    desk.catch_up().await;

    let (messages, _) = desk
        .read_models
        .conversation_history(&Party::Phone(PhoneNumber::parse(PHONE).unwrap()), 10, 0)
        .await
        .unwrap();
    let sent = messages.iter().find(|m| m.direction == "out").unwrap();
    assert_eq!(sent.wamid.as_deref(), Some("wamid.out.1"));
    assert_eq!(
        sent.status.as_deref(),
        Some("delivered"),
        "the furthest of both"
    );
    assert_eq!(sent.status_at, Some(at(2)));
}
