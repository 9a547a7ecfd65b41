//! `ccare audit verify` (the hash chain over the whole global log) and `ccare audit replay`
//! (every read model as of an instant).

use adapters::store::EventStore;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use projections::ProjectorRunner;

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

fn parse_instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").with_context(|| {
        format!("--until {text:?} is not an RFC 3339 instant (2026-03-01T08:00:00+02:00) or a date")
    })?;
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

pub async fn replay(settings: Settings, until: &str, schema: Option<String>) -> anyhow::Result<()> {
    let until = parse_instant(until)?;
    let schema = schema.unwrap_or_else(|| format!("replay_{}", until.format("%Y%m%dt%H%M%S")));
    let db = Database::open(&settings).await?;
    let result = async {
        let position: i64 = sqlx::query_scalar(
            "select coalesce(max(position), 0) from event_log where recorded_at <= $1",
        )
        .bind(until)
        .fetch_one(&db.pool)
        .await?;
        let runner = ProjectorRunner::new(db.pool.clone(), projections::all());
        let activity = Activity::counter("replaying", position.max(0) as u64, "positions");
        let applied = runner
            .replay(&schema, position, &mut |_, at| activity.position(at.max(0) as u64))
            .await;
        activity.finish();
        let applied = applied?;
        println!(
            "read models as of {} (log position {position}, {applied} events applied) are in schema {schema}",
            until.to_rfc3339()
        );
        anyhow::Ok(())
    }
    .await;
    db.close().await?;
    result
}
