//! Every read model rebuilt from the log equals the incrementally built one, after the ACDB
//! changed under it (edits, inserts, deletes), after writes through the API, and after the
//! WhatsApp bridge's tickets and conversations.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use domain::auth::Role;
use domain::conversation::{
    reply_id_for, ConversationCommand, Identification, MediaRef, ReplyKind,
};
use domain::ticket::Priority;
use serde_json::{json, Value};

use crate::support::TestApp;

/// Every row of every view of read model `projection`, in a stable order.
async fn dump(app: &TestApp, projection: &str) -> BTreeMap<String, Value> {
    let views: Vec<String> = sqlx::query_scalar(
        "select view_name from projection_views where projection = $1 order by 1",
    )
    .bind(projection)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mut dump = BTreeMap::new();
    for view in views {
        let rows: Value = sqlx::query_scalar(&format!(
            "select coalesce(jsonb_agg(to_jsonb(v) order by to_jsonb(v)::text), '[]'::jsonb) from read_model.\"{view}\" v"
        ))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        dump.insert(view, rows);
    }
    dump
}

/// A customer's WhatsApp conversation that opens a ticket, and staff handling it: events of the
/// Conversation and Ticket aggregates for the `conversations` and `tickets` read models.
async fn bridge_and_staff_handle_a_ticket(app: &TestApp, admin: &str, customer: i64) {
    let phone = "+26658123456";
    let receive = |id: &str, text: Option<&str>, minutes_ago: i64| ConversationCommand::Receive {
        message_id: id.into(),
        text: text.map(str::to_string),
        media: text.is_none().then(|| MediaRef {
            kind: "image".into(),
            media_id: format!("media.{id}"),
            mime_type: Some("image/jpeg".into()),
        }),
        profile_name: Some("Mpho".into()),
        sent_at: Utc::now() - Duration::minutes(minutes_ago),
    };
    app.converse(phone, receive("wamid.1", Some("Ha ke na motlakase"), 5))
        .await;
    app.converse(phone, ConversationCommand::AskForAccount)
        .await;
    app.converse(
        phone,
        ConversationCommand::Identify {
            customer_id: customer,
            how: Identification::Account,
        },
    )
    .await;
    let number = app
        .open_ticket("MAK", Priority::P1, Some(phone), Some(customer))
        .await;
    app.converse(
        phone,
        ConversationCommand::LinkTicket {
            number: number.clone(),
        },
    )
    .await;
    app.converse(
        phone,
        ConversationCommand::QueueReply {
            reply_id: reply_id_for("wamid.1"),
            text: format!("Tikete ea hao {number} e thehiloe."),
            kind: ReplyKind::Text,
            at: Utc::now(),
        },
    )
    .await;
    app.converse(
        phone,
        ConversationCommand::RecordSent {
            reply_id: reply_id_for("wamid.1"),
            wamid: "wamid.out.1".into(),
        },
    )
    .await;
    for status in ["read", "delivered"] {
        app.converse(
            phone,
            ConversationCommand::RecordStatus {
                wamid: "wamid.out.1".into(),
                status: status.into(),
                at: Utc::now(),
            },
        )
        .await;
    }
    app.converse(phone, receive("wamid.2", None, 0)).await;
    let comment = app
        .post(
            &format!("/api/tickets/{number}/comments"),
            Some(admin),
            json!({"text": "A technician is on the way"}),
        )
        .await;
    assert!(comment.status.is_success(), "{}", comment.body);
    let status = app
        .post(
            &format!("/api/tickets/{number}/status"),
            Some(admin),
            json!({"status": "resolved", "reason": "Fuse replaced"}),
        )
        .await;
    assert!(status.status.is_success(), "{}", status.body);
}

#[tokio::test]
async fn every_read_model_rebuilt_from_the_log_equals_the_incrementally_built_one() {
    let app = TestApp::start().await;
    let admin = app.employee("00100", Role::Superadmin).await;
    let customer = app.some_customer().await;
    app.acdb.execute(
        &format!(
            "UPDATE [tblcustomer] SET [FIRST NAME] = 'Rebuilt' WHERE [CUSTOMER ID] = {customer}"
        ),
        &[],
    );
    app.acdb.execute(
        "DELETE FROM [tblaccounthistory1] WHERE [ID] = (SELECT MIN([ID]) FROM [tblaccounthistory1])",
        &[],
    );
    app.acdb.execute(
        "INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [transaction date], [transaction amount], [kwh value]) VALUES (990001, '0001MAK', '2026-01-05 10:00:00', 12.34, 1.5)",
        &[],
    );
    let written = app
        .put(
            &format!("/api/tables/tblcustomer/{customer}"),
            Some(&admin),
            json!({"data": {"CITY": "Maseru"}}),
        )
        .await;
    assert!(written.status.is_success(), "{}", written.body);
    let tariff = app
        .put(
            "/api/tariff/concession/MAK",
            Some(&admin),
            json!({"rate_lsl": "5.25", "notes": "rebuild test"}),
        )
        .await;
    assert!(tariff.status.is_success(), "{}", tariff.body);
    bridge_and_staff_handle_a_ticket(&app, &admin, customer).await;

    // Wait until every read model has applied the whole log.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let behind: i64 = sqlx::query_scalar(
            "select count(*) from projection_registry r where r.position < (select coalesce(max(position), 0) from event_log)",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        let seen: Option<String> = sqlx::query_scalar(
            "select row ->> 'FIRST NAME' from read_model.mirror_rows where table_name = 'tblcustomer' and row_key = $1",
        )
        .bind(customer.to_string())
        .fetch_optional(&app.db.pool)
        .await
        .unwrap();
        let inserted: i64 = sqlx::query_scalar(
            "select count(*) from read_model.transactions where txn_id = 990001",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if behind == 0 && seen.as_deref() == Some("Rebuilt") && inserted == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read models did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let runner = projections::ProjectorRunner::new(app.db.pool.clone(), projections::all());
    for projection in projections::all() {
        let name = projection.name();
        let incremental = dump(&app, name).await;
        if matches!(name, "tickets" | "conversations") {
            for (view, rows) in &incremental {
                assert!(
                    rows.as_array().is_some_and(|rows| !rows.is_empty()),
                    "read model {name}, view {view} has rows to rebuild"
                );
            }
        }
        runner.rebuild(Some(name), &mut |_| {}).await.unwrap();
        let rebuilt = dump(&app, name).await;
        assert_eq!(
            incremental.keys().collect::<Vec<_>>(),
            rebuilt.keys().collect::<Vec<_>>()
        );
        for (view, rows) in &incremental {
            assert_eq!(rows, &rebuilt[view], "read model {name}, view {view}");
        }
    }
}
