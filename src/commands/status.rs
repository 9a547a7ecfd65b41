//! `ccare status`: the change capture per table, the log head, and the hash chain.

use adapters::cdc::{self, CdcStatus};
use adapters::nats::{relay_progress, RelayProgress};
use adapters::outbox::{bridge_status, BridgeStatus};
use adapters::store::{ChainStatus, EventStore};
use serde::Serialize;

use crate::config::Settings;
use crate::database::Database;

#[derive(Serialize)]
struct Status {
    log_head: i64,
    chain: Chain,
    cdc: CdcStatus,
    /// The NATS relay's progress per stream (empty without NATS).
    nats: Vec<RelayProgress>,
    /// The WhatsApp bridge's inbox and outbox.
    whatsapp: BridgeStatus,
}

/// The hash chain as `ccare status` reports it.
#[derive(Serialize)]
struct Chain {
    /// The last verification covered every event and found no break.
    intact: bool,
    verified_position: i64,
    verified_at: Option<chrono::DateTime<chrono::Utc>>,
    broken_at: Option<i64>,
    problem: Option<String>,
}

impl From<&ChainStatus> for Chain {
    fn from(c: &ChainStatus) -> Self {
        Chain {
            intact: c.verified_to_head(),
            verified_position: c.verified_position,
            verified_at: c.verified_at,
            broken_at: c.broken.as_ref().map(|b| b.position),
            problem: c.broken.as_ref().map(|b| b.problem.clone()),
        }
    }
}

pub async fn run(settings: Settings, json: bool) -> anyhow::Result<()> {
    let db = Database::open(&settings).await?;
    let status = gather(&db).await;
    db.close().await?;
    let status = status?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_table(&status);
    }
    Ok(())
}

async fn gather(db: &Database) -> anyhow::Result<Status> {
    let store = EventStore::new(db.pool.clone());
    // Verifies only the events appended since the last verification, so status stays cheap.
    store.verify_chain_since_checkpoint().await?;
    let chain = store.chain_status().await?;
    Ok(Status {
        log_head: chain.head_position,
        chain: Chain::from(&chain),
        cdc: cdc::status(&db.pool).await?,
        nats: relay_progress(&db.pool).await?,
        whatsapp: bridge_status(&db.pool, bridge::worker::MAX_DELIVERY_ATTEMPTS).await?,
    })
}

fn print_table(s: &Status) {
    println!(
        "{:<26} {:<9} {:>9} {:>9} {:>10} {:>9}  {:<20} {:<19}",
        "table", "phase", "seen", "events", "events(all)", "rejected", "checkpoint", "last poll"
    );
    for t in &s.cdc.tables {
        let checkpoint = t
            .watermark
            .clone()
            .or_else(|| t.snapshot_checkpoint.clone())
            .unwrap_or_default();
        let last_poll = t
            .last_poll_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        println!(
            "{:<26} {:<9} {:>9} {:>9} {:>10} {:>9}  {:<20} {:<19}",
            t.table,
            t.phase.as_str(),
            t.rows_seen_last_cycle,
            t.events_last_cycle,
            t.events_total,
            t.rejected_total,
            truncate(&checkpoint, 20),
            last_poll
        );
        for (reason, n) in &t.rejected_by_reason {
            println!("{:<26}   rejected: {n} × {reason}", "");
        }
        if let Some(reason) = &t.paused_reason {
            println!(
                "{:<26}   PAUSED: {reason}  (accept with: ccare cdc confirm {:?})",
                "", t.table
            );
        }
        if let Some(e) = &t.last_error {
            println!("{:<26}   last error: {e}", "");
        }
        if let Some(note) = &t.schema_note {
            println!("{:<26}   schema: {note}", "");
        }
    }
    if s.cdc.tables.is_empty() {
        println!("(nothing captured yet: run `ccare cdc` or `ccare demo`)");
    }
    println!();
    println!("event log head: {}", s.log_head);
    match (s.chain.broken_at, s.chain.intact) {
        (Some(at), _) => println!(
            "hash chain: BROKEN at position {at}: {} (run `ccare audit verify`)",
            s.chain.problem.as_deref().unwrap_or_default()
        ),
        (None, true) => println!(
            "hash chain: intact up to position {}",
            s.chain.verified_position
        ),
        (None, false) => println!(
            "hash chain: verified up to position {} of {}",
            s.chain.verified_position, s.log_head
        ),
    }
    print_bridge(&s.whatsapp);
    for relay in &s.nats {
        println!(
            "NATS stream {}: published up to position {} of {} (at {})",
            relay.stream,
            relay.position,
            s.log_head,
            relay.updated_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
}

fn print_bridge(b: &BridgeStatus) {
    if b.inbox_waiting + b.inbox_left > 0 {
        println!(
            "WhatsApp inbox: {} waiting ({} failing, tried again), {} left after {} failures (once the cause is fixed: ccare bridge replay)",
            b.inbox_waiting,
            b.inbox_failing,
            b.inbox_left,
            bridge::worker::MAX_DELIVERY_ATTEMPTS
        );
    }
    for o in &b.outbox {
        let oldest = o
            .oldest_pending
            .map(|t| format!(", oldest queued {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        println!(
            "WhatsApp outbox {}: {} sent, {} pending ({} retrying{oldest}), {} given up",
            o.channel, o.sent, o.pending, o.retrying, o.given_up
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
