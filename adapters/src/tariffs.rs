//! Future global rates: when one falls due, it is written to `tblconfig` through the audited
//! writer (the legacy recorded them and never applied them, weakness 14).

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{table_spec, KeyPart, RowKey};
use domain::command::{AcdbWrites, CommandContext, CommandError, TariffCommands, WriteOutcome};
use domain::dates::maseru_local;
use domain::envelope::{Actor, Channel, Envelope};
use domain::tariff::{TariffCommand, TariffEvent, TariffSchedule, TariffScope, TARIFF_SCHEDULE};
use domain::write::{TableWrite, WriteAction};

use crate::commands::TariffSchedules;
use crate::writer::WriteQueue;
use crate::{Error, Result};

/// How often due rates are looked for.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// The global schedule and, for each entry, who set it (from its event's envelope).
async fn global_schedule(
    pool: &PgPool,
) -> Result<(TariffSchedule, Vec<(chrono::NaiveDateTime, Actor)>)> {
    let rows: Vec<(
        serde_json::Value,
        sqlx::types::Json<std::collections::BTreeMap<String, String>>,
    )> = sqlx::query_as(
        "select payload::jsonb, metadata::jsonb from event_log
             where aggregate_type = $1 and aggregate_id = $2 order by sequence",
    )
    .bind(TARIFF_SCHEDULE)
    .bind(TariffScope::Global.aggregate_id())
    .fetch_all(pool)
    .await?;
    let mut schedule = TariffSchedule::default();
    let mut setters = Vec::new();
    for (payload, metadata) in rows {
        let event: TariffEvent = serde_json::from_value(payload)
            .map_err(|e| Error::Store(format!("a global tariff event cannot be read: {e}")))?;
        if let TariffEvent::EntrySet { effective_from, .. } = &event {
            if let Ok(envelope) = Envelope::from_metadata(&metadata.0) {
                setters.push((*effective_from, envelope.actor));
            }
        }
        schedule.apply_event(event);
    }
    Ok((schedule, setters))
}

/// Writes every due global rate to `tblconfig`; returns how many were applied.
pub async fn apply_due_global_rates(
    pool: &PgPool,
    writes: &WriteQueue,
    schedules: &TariffSchedules,
) -> Result<u32> {
    let (schedule, setters) = global_schedule(pool).await?;
    let due = schedule.due(maseru_local(Utc::now()));
    if due.is_empty() {
        return Ok(0);
    }
    let spec = table_spec("tblconfig").expect("tblconfig is captured");
    let row: Option<String> = sqlx::query_scalar(
        "select row_key from cdc_row_state where table_name = $1 and live
         order by case when row_key ~ '^[0-9]+$' then row_key::bigint end nulls last, row_key limit 1",
    )
    .bind(spec.table)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        tracing::warn!("a global rate is due, but tblconfig has no row to write it to");
        return Ok(0);
    };
    let key = match row.parse::<i64>() {
        Ok(id) => RowKey(vec![KeyPart::Int(id)]),
        Err(_) => RowKey(vec![KeyPart::Text(row)]),
    };
    let mut applied = 0;
    for (effective_from, rate) in due {
        let setter = setters
            .iter()
            .rev()
            .find(|(date, _)| *date == effective_from)
            .map(|(_, actor)| actor.clone());
        let context = CommandContext::new(Actor {
            channel: Channel::System,
            ..setter.unwrap_or_else(Actor::system)
        });
        let write = TableWrite {
            table: spec.table.to_string(),
            action: WriteAction::Update,
            key: Some(key.clone()),
            values: AcdbRow::new().with("therate", AcdbValue::Decimal { decimal: rate }),
        };
        let outcome = writes
            .submit(write, &context)
            .await
            .map_err(|e| Error::Store(format!("writing the due global rate: {e}")))?;
        match outcome {
            WriteOutcome::Applied { .. } => {
                schedules
                    .execute(
                        &TariffScope::Global,
                        TariffCommand::MarkApplied { effective_from },
                        &context,
                    )
                    .await
                    .map_err(|e: CommandError<_>| {
                        Error::Store(format!("marking the global rate applied: {e}"))
                    })?;
                tracing::info!(%rate, %effective_from, "a scheduled global rate took effect in tblconfig");
                applied += 1;
            }
            WriteOutcome::Failed { reason, .. } => {
                tracing::error!(%rate, %effective_from, reason, "writing a scheduled global rate failed; retrying later");
            }
            WriteOutcome::Pending { .. } => {
                tracing::warn!(%rate, %effective_from, "a scheduled global rate is waiting for the writer");
            }
        }
    }
    Ok(applied)
}

/// Applies due global rates every [`CHECK_EVERY`] until `shutdown`.
pub async fn run(
    pool: PgPool,
    writes: WriteQueue,
    schedules: TariffSchedules,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = apply_due_global_rates(&pool, &writes, &schedules).await {
            tracing::error!(error = %error, "applying due global rates failed; retrying");
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
