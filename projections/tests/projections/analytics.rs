//! The analytics read model's own write paths (its figures are tested through the API).

use std::sync::Arc;

use domain::event::EventPayload;
use projections::analytics::AnalyticsProjection;
use projections::{Projection, ProjectorRunner};

use crate::support::Harness;

async fn ledger_amounts(h: &Harness) -> Vec<(i64, String)> {
    sqlx::query_as(
        "select txn_id, amount::text from read_model.transactions \
         where source = 'tblaccounthistory1' order by txn_id",
    )
    .fetch_all(h.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn ledger_rows_created_in_a_batch_are_copied_in_and_a_row_created_twice_ends_as_its_latest_state(
) {
    // Arrange: two ledger rows, built incrementally (their creation copies them in).
    let mut h = Harness::new().await;
    let runner = ProjectorRunner::new(
        h.pool().clone(),
        vec![Arc::new(AnalyticsProjection) as Arc<dyn Projection>],
    );
    runner.ensure_ready().await.unwrap();
    h.capture.transaction(1, "0045MAK", "50.00").await;
    h.capture.transaction(2, "0045MAK", "20.00").await;
    runner.catch_up().await.unwrap();
    assert_eq!(
        ledger_amounts(&h).await,
        vec![(1, "50.00".to_string()), (2, "20.00".to_string())]
    );

    // Act: a batch that creates row 1 again, with another amount — a log that created a row
    // twice. The copy meets the row already there and must fall back to replacing it.
    let events = h.capture.store().read_after(0, 10).await.unwrap();
    let mut again = events
        .iter()
        .find(|e| e.aggregate_id == "1")
        .unwrap()
        .clone();
    let json = again.payload.json().replace("50.00", "70.00");
    assert_ne!(json, again.payload.json(), "the amount is in the payload");
    again.payload = EventPayload::from_json(json).unwrap();
    let mut tx = h.pool().begin().await.unwrap();
    AnalyticsProjection
        .apply(&mut tx, "rm_analytics_1", &[again])
        .await
        .unwrap();
    // The transaction is still usable after the undone copy.
    let rows: i64 = sqlx::query_scalar("select count(*) from rm_analytics_1.transactions")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Assert
    assert_eq!(rows, 2);
    assert_eq!(
        ledger_amounts(&h).await,
        vec![(1, "70.00".to_string()), (2, "20.00".to_string())]
    );
}
