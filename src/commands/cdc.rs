//! `ccare cdc`: import the ACDB, then follow its changes.

use std::sync::Arc;

use adapters::acdb;
use adapters::cdc::{Cdc, CdcConfig};
use adapters::store::EventStore;
use adapters::writer::{AuditedWriter, WriterClaims};
use domain::catalog::{table_spec, TableSpec, CAPTURED_TABLES};
use sqlx::PgPool;

use crate::cli::{CdcArgs, CdcCommand};
use crate::config::{AcdbLocation, Settings};
use crate::database::Database;
use crate::progress::CdcProgress;

/// Rows per import transaction: large enough for COPY to dominate, small enough that a killed
/// import loses little work.
pub const CHUNK_ROWS: usize = 10_000;

pub async fn run(settings: Settings, args: CdcArgs) -> anyhow::Result<()> {
    let location = settings.require_acdb()?.clone();
    let db = Database::open(&settings).await?;
    let cdc = build(&settings, db.pool.clone(), &location);
    let result = match args.command {
        Some(CdcCommand::Confirm { table }) => {
            cdc.confirm(&table).await?;
            println!("{table}: the change that paused it will be emitted by the next cycle");
            Ok(())
        }
        Some(CdcCommand::Reconcile) => {
            cdc.check_source().await?;
            let report = cdc.reconcile().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        None if args.once => {
            cdc.check_source().await?;
            let report = cdc.run_cycle().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        None => {
            cdc.check_source().await?;
            cdc.run(crate::shutdown::signal()).await.map_err(Into::into)
        }
    };
    db.close().await?;
    result
}

/// The change capture configured from the settings.
pub fn build(settings: &Settings, pool: PgPool, location: &AcdbLocation) -> Cdc {
    let location = location.clone();
    let config = CdcConfig {
        tables: captured_tables(settings),
        chunk_rows: CHUNK_ROWS,
        poll_interval: settings.cdc_poll_interval,
        reconcile_interval: settings.cdc_reconcile_interval,
        safety_share: settings.cdc_safety_share,
    };
    let open = Arc::new(move || acdb::open(&location));
    Cdc::new(
        pool.clone(),
        EventStore::new(pool),
        open,
        config,
        Arc::new(CdcProgress::new()),
    )
    // Changes the audited writer made are attributed to their command, not to Access.
    .with_own_writes(Arc::new(WriterClaims))
}

/// The audited writer over the ACDB at `location` (it runs with the capture: in production both
/// live on the Windows host next to the ACDB).
pub fn writer(pool: PgPool, location: &AcdbLocation) -> AuditedWriter {
    let location = location.clone();
    AuditedWriter::new(pool, Arc::new(move || acdb::open_writer(&location)))
}

fn captured_tables(settings: &Settings) -> Vec<&'static TableSpec> {
    match &settings.cdc_tables {
        // Names were checked against the catalogue when the settings were read.
        Some(names) => names.iter().filter_map(|n| table_spec(n)).collect(),
        None => CAPTURED_TABLES.iter().collect(),
    }
}
