//! `ccare projections status|rebuild`.

use projections::ProjectorRunner;

use crate::config::Settings;
use crate::database::Database;
use crate::progress::Activity;

pub async fn status(settings: Settings, json: bool) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let runner = ProjectorRunner::new(db.pool.clone(), projections::all());
    runner.ensure_ready().await?;
    let status = runner.status().await;
    db.close().await?;
    let status = status?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!(
            "{:<20} {:<10} {:>10} {:>12} {:>10}",
            "read model", "state", "generation", "position", "lag"
        );
        for s in &status {
            println!(
                "{:<20} {:<10} {:>10} {:>12} {:>10}",
                s.name,
                s.state.as_str(),
                s.live_generation,
                s.position,
                s.lag
            );
            if let Some(e) = &s.last_error {
                println!("{:<20} last error: {e}", "");
            }
        }
    }
    Ok(())
}

pub async fn rebuild(settings: Settings, name: Option<String>) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let runner = ProjectorRunner::new(db.pool.clone(), projections::all());
    runner.ensure_ready().await?;
    let activity = Activity::spinner("rebuilding");
    let result = runner
        .rebuild(name.as_deref(), &mut |p| activity.message(p))
        .await;
    activity.finish();
    db.close().await?;
    result?;
    println!(
        "rebuilt and swapped in: {}",
        name.as_deref().unwrap_or("all read models")
    );
    Ok(())
}
