//! `ccare audit verify`: the hash chain over the whole global log.

use std::io::IsTerminal;

use adapters::store::EventStore;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::database::Database;

pub async fn verify(settings: Settings) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let store = EventStore::new(db.pool.clone());
    let head = store.head().await?;
    let bar = std::io::stderr().is_terminal().then(|| {
        crate::progress::bars()
            .add(ProgressBar::new(head.position.max(0) as u64))
            .with_style(
                ProgressStyle::with_template(
                    "verifying [{bar:30}] {human_pos}/{human_len} events  {per_sec}",
                )
                .expect("the template is valid"),
            )
    });
    let report = store
        .verify_chain(&mut |checked| {
            if let Some(bar) = &bar {
                bar.set_position(checked);
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
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
