//! `ccare audit verify`: the hash chain over the whole global log.

use adapters::store::EventStore;

use crate::config::Settings;
use crate::database::Database;
use crate::progress::Activity;

pub async fn verify(settings: Settings) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let store = EventStore::new(db.pool.clone());
    let head = store.head().await?;
    let activity = Activity::counter("verifying", head.position.max(0) as u64, "events");
    let report = store
        .verify_chain(&mut |checked| activity.position(checked))
        .await;
    activity.finish();
    db.close().await?;
    let report = report?;
    match report.first_broken {
        None => {
            println!(
                "hash chain intact: {} events verified up to position {}",
                report.checked, report.head_position
            );
            Ok(())
        }
        Some(broken) => anyhow::bail!(
            "hash chain broken at position {}: {} ({} events verified before it)",
            broken.position,
            broken.problem,
            report.checked
        ),
    }
}
