//! `/api/tickets` and `/api/conversations`: the tickets and WhatsApp conversations for staff,
//! their role rules, and the commands staff run on tickets.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use domain::auth::Role;
use domain::conversation::{reply_id_for, ConversationCommand, Identification, ReplyKind};
use domain::ticket::{Priority, TicketNumber, MAX_TEXT_CHARS};
use serde_json::{json, Value};

use crate::support::TestApp;

const PHONE: &str = "+26658123456";

fn receive(id: &str, text: &str, minutes_ago: i64) -> ConversationCommand {
    ConversationCommand::Receive {
        message_id: id.into(),
        text: Some(text.into()),
        media: None,
        profile_name: Some("Mpho".into()),
        sent_at: Utc::now() - Duration::minutes(minutes_ago),
    }
}

fn numbers(body: &Value) -> Vec<String> {
    body["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_number"].as_str().unwrap().to_string())
        .collect()
}

fn texts(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A ticket with one message before it and one after, from customer 12's phone.
async fn ticket_with_messages(app: &TestApp) -> TicketNumber {
    app.converse(PHONE, receive("wamid.1", "Ha ke na motlakase", 30))
        .await;
    app.converse(
        PHONE,
        ConversationCommand::Identify {
            customer_id: 12,
            how: Identification::Phone,
        },
    )
    .await;
    let number = app
        .open_ticket("MAK", Priority::P1, Some(PHONE), Some(12))
        .await;
    app.converse(
        PHONE,
        ConversationCommand::LinkTicket {
            number: number.clone(),
        },
    )
    .await;
    app.converse(
        PHONE,
        ConversationCommand::QueueReply {
            reply_id: reply_id_for("wamid.1"),
            text: format!("Tikete ea hao {number} e thehiloe."),
            kind: ReplyKind::Text,
            at: Utc::now(),
        },
    )
    .await;
    number
}

#[tokio::test]
async fn every_employee_role_reads_tickets_and_conversations_and_comments_and_a_customer_gets_403()
{
    // Arrange
    let app = TestApp::start().await;
    let number = ticket_with_messages(&app).await;
    let account = app.some_account().await;
    let customer = app.customer_token(&account).await;
    let reads = [
        "/api/tickets".to_string(),
        "/api/tickets/summary".to_string(),
        format!("/api/tickets/{number}"),
        "/api/conversations?customer_id=12".to_string(),
    ];

    for (id, role) in [
        ("00901", Role::Superadmin),
        ("00902", Role::OnmTeam),
        ("00903", Role::FinanceTeam),
        ("00904", Role::Generic),
    ] {
        // Act
        let token = app.employee(id, role).await;
        for path in &reads {
            let reply = app.get(path, Some(&token)).await;
            // Assert
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{role:?} {path}: {}",
                reply.body
            );
        }
        let reply = app
            .post(
                &format!("/api/tickets/{number}/comments"),
                Some(&token),
                json!({"text": format!("Seen by {id}")}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{role:?}: {}",
            reply.body
        );
    }

    for path in &reads {
        let reply = app.get(path, Some(&customer)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
    }
    let comment = app
        .post(
            &format!("/api/tickets/{number}/comments"),
            Some(&customer),
            json!({"text": "Is it fixed?"}),
        )
        .await;
    assert_eq!(comment.status, StatusCode::FORBIDDEN, "{}", comment.body);
    let status = app
        .post(
            &format!("/api/tickets/{number}/status"),
            Some(&customer),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(status.status, StatusCode::FORBIDDEN, "{}", status.body);
    let unauthenticated = app.get("/api/tickets", None).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_superadmin_and_onm_team_change_a_tickets_status() {
    // Arrange
    let app = TestApp::start().await;
    let number = app.open_ticket("MAK", Priority::P2, None, None).await;
    let path = format!("/api/tickets/{number}/status");

    for (id, role) in [("00903", Role::FinanceTeam), ("00904", Role::Generic)] {
        // Act
        let token = app.employee(id, role).await;
        let reply = app
            .post(&path, Some(&token), json!({"status": "in-progress"}))
            .await;
        // Assert
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{role:?}: {}",
            reply.body
        );
        assert_eq!(reply.detail(), "Requires one of: [superadmin, onm_team]");
    }
    let onm = app.employee("00902", Role::OnmTeam).await;
    let reply = app
        .post(&path, Some(&onm), json!({"status": "in-progress"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let admin = app.employee("00901", Role::Superadmin).await;
    let reply = app
        .post(
            &path,
            Some(&admin),
            json!({"status": "resolved", "reason": "Fuse replaced"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["ticket"]["status"], "resolved");
}

#[tokio::test]
async fn the_ticket_list_filters_pages_and_shows_the_newest_first() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00902", Role::OnmTeam).await;
    let first = app
        .open_ticket("MAK", Priority::P1, Some(PHONE), Some(12))
        .await;
    let second = app.open_ticket("MAK", Priority::P3, None, Some(13)).await;
    let third = app.open_ticket("SHA", Priority::P1, None, None).await;
    let moved = app
        .post(
            &format!("/api/tickets/{second}/status"),
            Some(&token),
            json!({"status": "in-progress"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let [first, second, third] = [first, second, third].map(|n| n.to_string());
    let [first, second, third] = [first.as_str(), second.as_str(), third.as_str()];
    let today = domain::dates::maseru_local(Utc::now()).date();
    let tomorrow = today.succ_opt().unwrap();

    // Act / Assert
    let all = app.get("/api/tickets", Some(&token)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(numbers(&all.body), vec![third, second, first]);
    assert_eq!(all.body["total"], 3);
    assert_eq!(all.body["page"], 1);
    assert_eq!(all.body["page_size"], 50);
    let ticket = &all.body["tickets"][2];
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["priority"], "P1");
    assert_eq!(ticket["site"], "MAK");
    assert_eq!(ticket["phone"], PHONE);
    assert_eq!(ticket["customer_id"], 12);
    assert_eq!(ticket["channel"], "whatsapp");

    let cases = [
        ("status=open", vec![third, first]),
        ("status=open,in-progress", vec![third, second, first]),
        ("status=in-progress&status=resolved", vec![second]),
        ("site=sha", vec![third]),
        ("priority=p1&site=MAK", vec![first]),
        ("category=no-power", vec![third, second, first]),
        ("category=billing", vec![]),
        ("customer_id=13", vec![second]),
        ("phone=58123456", vec![first]),
        ("q=sha-", vec![third]),
        ("q=MOTLAKASE", vec![third, second, first]),
        ("sort=oldest", vec![first, second, third]),
        ("sort=priority", vec![first, third, second]),
        ("sort=updated", vec![second, third, first]),
    ];
    for (query, expected) in cases {
        let reply = app
            .get(&format!("/api/tickets?{query}"), Some(&token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
        assert_eq!(numbers(&reply.body), expected, "{query}");
        assert_eq!(reply.body["total"], expected.len(), "{query}");
    }
    let dated = app
        .get(
            &format!("/api/tickets?from={today}&to={today}"),
            Some(&token),
        )
        .await;
    assert_eq!(numbers(&dated.body).len(), 3, "{}", dated.body);
    let later = app
        .get(&format!("/api/tickets?from={tomorrow}"), Some(&token))
        .await;
    assert_eq!(later.body["total"], 0, "{}", later.body);

    let page = app
        .get("/api/tickets?page=2&page_size=2", Some(&token))
        .await;
    assert_eq!(numbers(&page.body), vec![first]);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["pages"], 2);
}

#[tokio::test]
async fn bad_list_parameters_are_refused_naming_the_parameter() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00904", Role::Generic).await;
    let cases = [
        ("/api/tickets?status=done", "status"),
        ("/api/tickets?status=open,later", "status"),
        ("/api/tickets?site=M4K", "site"),
        ("/api/tickets?priority=P9", "priority"),
        ("/api/tickets?category=fire", "category"),
        ("/api/tickets?customer_id=twelve", "customer_id"),
        ("/api/tickets?phone=12", "phone"),
        ("/api/tickets?from=yesterday", "from"),
        ("/api/tickets?from=2026-03-02&to=2026-03-01", "to"),
        ("/api/tickets?sort=loudest", "sort"),
        ("/api/tickets?page=0", "page"),
        ("/api/tickets?page_size=500", "page_size"),
        ("/api/tickets?page_size=ten", "page_size"),
        ("/api/tickets?site=MAK&site=SHA", "site"),
        ("/api/conversations", "customer_id"),
        ("/api/conversations?customer_id=12&phone=58123456", "phone"),
        ("/api/conversations?customer_id=x", "customer_id"),
        ("/api/conversations?phone=abc", "phone"),
        ("/api/conversations?phone=58123456&page_size=0", "page_size"),
    ];
    let long_query = format!("/api/tickets?q={}", "a".repeat(201));

    for (path, field) in cases.iter().copied().chain([(long_query.as_str(), "q")]) {
        // Act
        let reply = app.get(path, Some(&token)).await;

        // Assert
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.body["field"], field, "{path}: {}", reply.body);
        assert!(
            reply.detail().starts_with(&format!("{field}: ")),
            "{path}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn a_tickets_page_shows_its_history_and_the_messages_of_its_phone() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00904", Role::Generic).await;
    let number = ticket_with_messages(&app).await;

    // Act: the number as a customer might type it.
    let reply = app
        .get(
            &format!("/api/tickets/{}", number.to_string().to_lowercase()),
            Some(&token),
        )
        .await;

    // Assert
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["ticket"]["ticket_number"], number.to_string());
    assert_eq!(body["ticket"]["summary"], "Customer reports no power.");
    assert_eq!(body["ticket"]["comments"], 0);
    assert!(body["ticket"]["age_seconds"].as_i64().unwrap() >= 0);
    let activity = body["activity"].as_array().unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0]["kind"], "opened");
    assert_eq!(activity[0]["actor"], "whatsapp");
    assert_eq!(
        texts(body),
        vec![
            "Ha ke na motlakase".to_string(),
            format!("Tikete ea hao {number} e thehiloe.")
        ],
        "in order, from before the ticket opened"
    );
    assert_eq!(body["messages_total"], 2);
    assert_eq!(body["messages"][0]["direction"], "in");
    assert_eq!(body["messages"][0]["ticket_number"], Value::Null);
    assert_eq!(body["messages"][1]["direction"], "out");
    assert_eq!(body["messages"][1]["ticket_number"], number.to_string());
}

#[tokio::test]
async fn an_unknown_or_malformed_ticket_number_finds_no_ticket() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00902", Role::OnmTeam).await;

    for number in ["MAK-2026-0999", "nonsense", "MAK-2026-99"] {
        // Act
        let detail = app
            .get(&format!("/api/tickets/{number}"), Some(&token))
            .await;
        let comment = app
            .post(
                &format!("/api/tickets/{number}/comments"),
                Some(&token),
                json!({"text": "Anyone?"}),
            )
            .await;
        let status = app
            .post(
                &format!("/api/tickets/{number}/status"),
                Some(&token),
                json!({"status": "closed"}),
            )
            .await;

        // Assert
        for reply in [detail, comment, status] {
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{number}: {}",
                reply.body
            );
            assert_eq!(reply.body, json!({"detail": "no such ticket"}));
        }
    }
}

#[tokio::test]
async fn a_comment_is_the_callers_and_shown_at_once_and_an_empty_or_too_long_one_is_refused() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00904", Role::Generic).await;
    let number = app
        .open_ticket("MAK", Priority::P1, Some(PHONE), None)
        .await;
    let path = format!("/api/tickets/{number}/comments");

    // Act
    let reply = app
        .post(
            &path,
            Some(&token),
            json!({"text": "  A technician is on the way  "}),
        )
        .await;

    // Assert
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["ticket"]["comments"], 1);
    let comment = &reply.body["activity"];
    assert_eq!(comment["kind"], "commented");
    assert_eq!(comment["actor"], "00904");
    assert_eq!(comment["channel"], "portal");
    assert_eq!(comment["text"], "A technician is on the way");
    let detail = app
        .get(&format!("/api/tickets/{number}"), Some(&token))
        .await;
    assert_eq!(detail.body["activity"][1], *comment, "read your writes");

    for (body, status, field) in [
        (
            json!({"text": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "text",
        ),
        (
            json!({"text": "a".repeat(MAX_TEXT_CHARS + 1)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "text",
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "text"),
        (json!({"text": 5}), StatusCode::UNPROCESSABLE_ENTITY, "body"),
    ] {
        let reply = app.post(&path, Some(&token), body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.body["field"], field, "{body}: {}", reply.body);
    }
    let unchanged = app
        .get(&format!("/api/tickets/{number}"), Some(&token))
        .await;
    assert_eq!(unchanged.body["ticket"]["comments"], 1);
}

#[tokio::test]
async fn a_status_change_is_shown_at_once_and_what_the_ticket_refuses_answers_409() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00902", Role::OnmTeam).await;
    let number = app.open_ticket("MAK", Priority::P1, None, None).await;
    let status_path = format!("/api/tickets/{number}/status");
    let comment_path = format!("/api/tickets/{number}/comments");

    // Act
    let started = app
        .post(&status_path, Some(&token), json!({"status": "in-progress"}))
        .await;
    let again = app
        .post(&status_path, Some(&token), json!({"status": "in-progress"}))
        .await;
    let bad = app
        .post(&status_path, Some(&token), json!({"status": "done"}))
        .await;
    let missing = app.post(&status_path, Some(&token), json!({})).await;
    let long_reason = app
        .post(
            &status_path,
            Some(&token),
            json!({"status": "closed", "reason": "a".repeat(MAX_TEXT_CHARS + 1)}),
        )
        .await;
    let closed = app
        .post(
            &status_path,
            Some(&token),
            json!({"status": "closed", "reason": "Restored"}),
        )
        .await;
    let late_comment = app
        .post(&comment_path, Some(&token), json!({"text": "Thanks"}))
        .await;
    let reopened = app
        .post(&status_path, Some(&token), json!({"status": "open"}))
        .await;
    let comment_after = app
        .post(&comment_path, Some(&token), json!({"text": "Off again"}))
        .await;

    // Assert
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.body["ticket"]["status"], "in-progress");
    assert_eq!(started.body["activity"]["kind"], "status-changed");
    assert_eq!(started.body["activity"]["from_status"], "open");
    assert_eq!(started.body["activity"]["to_status"], "in-progress");
    assert_eq!(started.body["activity"]["actor"], "00902");
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.detail(), "the ticket is already in-progress");
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["field"], "status");
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["field"], "status");
    assert_eq!(long_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long_reason.body["field"], "reason");
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["activity"]["text"], "Restored");
    assert_eq!(late_comment.status, StatusCode::CONFLICT);
    assert_eq!(
        late_comment.detail(),
        "the ticket is closed: reopen it first"
    );
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.body);
    assert_eq!(
        comment_after.status,
        StatusCode::CREATED,
        "{}",
        comment_after.body
    );
    let listed = app.get("/api/tickets?status=open", Some(&token)).await;
    assert_eq!(numbers(&listed.body), vec![number.to_string()]);
}

#[tokio::test]
async fn the_summary_counts_the_active_tickets_per_site_and_priority() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00902", Role::OnmTeam).await;
    app.open_ticket("MAK", Priority::P1, None, None).await;
    let second = app.open_ticket("MAK", Priority::P1, None, None).await;
    app.open_ticket("SHA", Priority::P3, None, None).await;
    let done = app.open_ticket("SHA", Priority::P2, None, None).await;
    for (number, status) in [(&second, "in-progress"), (&done, "closed")] {
        let reply = app
            .post(
                &format!("/api/tickets/{number}/status"),
                Some(&token),
                json!({"status": status}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    // Act
    let reply = app.get("/api/tickets/summary", Some(&token)).await;

    // Assert
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["active"], 3);
    let groups: Vec<(String, String, i64, i64, i64)> = reply.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["site"].as_str().unwrap().to_string(),
                g["priority"].as_str().unwrap().to_string(),
                g["open"].as_i64().unwrap(),
                g["in_progress"].as_i64().unwrap(),
                g["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("MAK".into(), "P1".into(), 1, 1, 2),
            ("SHA".into(), "P3".into(), 1, 0, 1)
        ]
    );
    assert!(
        reply.body["groups"][0]["oldest_age_seconds"]
            .as_i64()
            .unwrap()
            >= 0
    );
    assert!(reply.body["groups"][0]["oldest_opened_at"].is_string());
}

#[tokio::test]
async fn a_customers_conversation_history_is_paged_newest_first_by_customer_or_by_phone() {
    // Arrange
    let app = TestApp::start().await;
    let token = app.employee("00904", Role::Generic).await;
    let number = ticket_with_messages(&app).await;
    app.converse(PHONE, receive("wamid.2", "Still nothing", 0))
        .await;

    // Act
    let by_customer = app
        .get(
            "/api/conversations?customer_id=12&page_size=2",
            Some(&token),
        )
        .await;
    let second_page = app
        .get(
            "/api/conversations?customer_id=12&page_size=2&page=2",
            Some(&token),
        )
        .await;
    // The phone as the legacy wrote it, without the country code.
    let by_phone = app
        .get("/api/conversations?phone=58123456", Some(&token))
        .await;
    let nobody = app
        .get("/api/conversations?customer_id=99999", Some(&token))
        .await;

    // Assert
    assert_eq!(by_customer.status, StatusCode::OK, "{}", by_customer.body);
    assert_eq!(
        texts(&by_customer.body),
        vec![
            "Still nothing".to_string(),
            format!("Tikete ea hao {number} e thehiloe.")
        ]
    );
    assert_eq!(by_customer.body["total"], 3);
    assert_eq!(by_customer.body["pages"], 2);
    assert_eq!(texts(&second_page.body), vec!["Ha ke na motlakase"]);
    let conversation = &by_customer.body["conversations"][0];
    assert_eq!(conversation["phone"], PHONE);
    assert_eq!(conversation["customer_id"], 12);
    assert_eq!(conversation["profile_name"], "Mpho");
    assert_eq!(conversation["ticket_number"], number.to_string());
    assert_eq!(conversation["messages_in"], 2);
    assert_eq!(conversation["messages_out"], 1);
    assert_eq!(conversation["within_service_window"], true);
    assert_eq!(by_phone.status, StatusCode::OK, "{}", by_phone.body);
    assert_eq!(by_phone.body["total"], 3);
    assert_eq!(by_phone.body["messages"][0]["phone"], PHONE);
    assert_eq!(nobody.status, StatusCode::OK, "{}", nobody.body);
    assert_eq!(nobody.body["total"], 0);
    assert_eq!(nobody.body["conversations"], json!([]));
}
