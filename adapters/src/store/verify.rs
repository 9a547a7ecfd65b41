//! Verifying the hash chain of the global log.
//!
//! Every link is recomputed from the stored columns (payload and metadata as their stored text,
//! recorded_at in microseconds) and compared with the stored `link_hash`; the walk also checks
//! that positions run without a gap and that `event_log_head` names the last event and its link.
//! The log is read in pages inside one repeatable-read snapshot, so memory stays bounded and
//! appends running meanwhile neither disturb nor extend the walk.
//!
//! The outcome of every verification is recorded in `event_chain_verification`, so
//! [`EventStore::chain_status`] can say cheaply how far the chain is known to be intact and
//! [`EventStore::verify_chain_since_checkpoint`] only has to walk the events appended since.

use chrono::{DateTime, Utc};
use domain::chain::{link_hash, LinkedContent, GENESIS_LINK};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::{link_array, EventStore, LogHead};
use crate::{Error, Result};

/// Events read per page: a few megabytes at most, whatever the size of the log.
const PAGE_SIZE: i64 = 5_000;

/// The outcome of a chain verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events whose link was recomputed and matched, in this run.
    pub checked: u64,
    /// The head position when the verification started.
    pub head_position: i64,
    /// The first problem found (the verification stops there), or `None` if the chain is intact.
    pub first_broken: Option<BrokenLink>,
}

/// Where the chain breaks and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub position: i64,
    pub problem: String,
}

/// What the last recorded verification established (read without verifying anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The log's current head position.
    pub head_position: i64,
    /// The chain is known to be intact from the first event up to this position (0: nothing verified yet).
    pub verified_position: i64,
    /// When the chain was last verified up to `verified_position`.
    pub verified_at: Option<DateTime<Utc>>,
    /// The break found by the last verification, if it found one.
    pub broken: Option<BrokenLink>,
}

impl ChainStatus {
    /// Whether the last verification covered every event and found the chain intact.
    pub fn verified_to_head(&self) -> bool {
        self.broken.is_none() && self.verified_position == self.head_position
    }
}

/// A point of the chain: a position and the link hash ending there.
#[derive(Debug, Clone, Copy)]
struct ChainPoint {
    position: i64,
    link: [u8; 32],
}

const GENESIS: ChainPoint = ChainPoint {
    position: 0,
    link: GENESIS_LINK,
};

/// The result of walking the chain from a trusted point.
struct Walk {
    checked: u64,
    /// The last point verified (the starting point if nothing was).
    last_good: ChainPoint,
    broken: Option<BrokenLink>,
}

impl EventStore {
    /// Recomputes the whole chain from the first event and reports the first broken link.
    /// `progress` is called now and then with the number of events checked so far.
    pub async fn verify_chain(
        &self,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ChainReport> {
        let mut tx = begin_snapshot(&self.pool).await?;
        let head = super::read_head(&mut tx).await?;
        let walk = walk(&mut tx, GENESIS, head, progress).await?;
        tx.commit().await?;
        self.record(walk, head).await
    }

    /// Verifies only the events appended since the last successful verification, starting
    /// from the link it recorded (after checking that the stored link there is still the one
    /// verified). Cheap enough for `ccare status`; a full [`EventStore::verify_chain`] remains
    /// the audit, since an event before the checkpoint rewritten together with every later link
    /// would only be caught by it.
    pub async fn verify_chain_since_checkpoint(&self) -> Result<ChainReport> {
        let mut tx = begin_snapshot(&self.pool).await?;
        let head = super::read_head(&mut tx).await?;
        let row =
            sqlx::query("select verified_position, verified_link from event_chain_verification")
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(missing_verification_row)?;
        let checkpoint = ChainPoint {
            position: row.try_get(0)?,
            link: link_array(row.try_get(1)?, "event_chain_verification")?,
        };

        let walk = match checkpoint_problem(&mut tx, checkpoint, head).await? {
            Some(broken) => Walk {
                checked: 0,
                last_good: GENESIS,
                broken: Some(broken),
            },
            None => walk(&mut tx, checkpoint, head, &mut |_| {}).await?,
        };
        tx.commit().await?;
        self.record(walk, head).await
    }

    /// The last recorded verification against the current head, without verifying anything.
    pub async fn chain_status(&self) -> Result<ChainStatus> {
        let row = sqlx::query(
            "select h.position, v.verified_position, v.verified_at, v.broken_position, v.broken_problem \
             from event_log_head h cross join event_chain_verification v",
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(missing_verification_row)?;
        let broken_position: Option<i64> = row.try_get(3)?;
        let broken_problem: Option<String> = row.try_get(4)?;
        Ok(ChainStatus {
            head_position: row.try_get(0)?,
            verified_position: row.try_get(1)?,
            verified_at: row.try_get(2)?,
            broken: broken_position.map(|position| BrokenLink {
                position,
                problem: broken_problem.unwrap_or_default(),
            }),
        })
    }

    /// Stores how far the chain is known to be intact, and the break if one was found; returns
    /// the report of the run that walked it.
    async fn record(&self, walk: Walk, head: LogHead) -> Result<ChainReport> {
        let verified = match &walk.broken {
            None => ChainPoint {
                position: head.position,
                link: head.link_hash,
            },
            Some(_) => walk.last_good,
        };
        sqlx::query(
            "update event_chain_verification \
             set verified_position = $1, verified_link = $2, verified_at = now(), \
                 broken_position = $3, broken_problem = $4",
        )
        .bind(verified.position)
        .bind(&verified.link[..])
        .bind(walk.broken.as_ref().map(|b| b.position))
        .bind(walk.broken.as_ref().map(|b| b.problem.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(ChainReport {
            checked: walk.checked,
            head_position: head.position,
            first_broken: walk.broken,
        })
    }
}

#[async_trait::async_trait]
impl domain::command::ChainVerifier for EventStore {
    async fn verify(&self, full: bool) -> std::result::Result<domain::command::ChainCheck, String> {
        let report = if full {
            self.verify_chain(&mut |_| {}).await
        } else {
            self.verify_chain_since_checkpoint().await
        }
        .map_err(|e| e.to_string())?;
        Ok(domain::command::ChainCheck {
            checked: report.checked,
            head_position: report.head_position,
            first_broken: report.first_broken.map(|b| (b.position, b.problem)),
        })
    }
}

/// A read-only transaction whose every statement sees the same snapshot.
async fn begin_snapshot(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = crate::postgres::begin(pool).await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

fn missing_verification_row() -> Error {
    Error::Store(
        "event_chain_verification has no row: the event-store migrations have not run on this database".into(),
    )
}

/// Whether the recorded checkpoint still stands: its event is there with the link verified then.
async fn checkpoint_problem(
    conn: &mut PgConnection,
    checkpoint: ChainPoint,
    head: LogHead,
) -> Result<Option<BrokenLink>> {
    if checkpoint.position == 0 {
        return Ok(None);
    }
    if checkpoint.position > head.position {
        return Ok(Some(BrokenLink {
            position: head.position + 1,
            problem: format!(
                "the head is at position {} but the chain was verified up to {}: events were removed",
                head.position, checkpoint.position
            ),
        }));
    }
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("select link_hash from event_log where position = $1")
            .bind(checkpoint.position)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match stored {
        None => Some(BrokenLink {
            position: checkpoint.position,
            problem: "the event is missing (it was there when the chain was last verified)".into(),
        }),
        Some(link) if link[..] != checkpoint.link[..] => Some(BrokenLink {
            position: checkpoint.position,
            problem:
                "the stored link hash differs from the one verified earlier: the log was rewritten"
                    .into(),
        }),
        Some(_) => None,
    })
}

/// Walks the chain from the trusted point `from` to the head, page by page, stopping at the
/// first problem.
async fn walk(
    conn: &mut PgConnection,
    from: ChainPoint,
    head: LogHead,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Walk> {
    let mut walk = Walk {
        checked: 0,
        last_good: from,
        broken: None,
    };
    progress(0);
    'pages: loop {
        let rows = sqlx::query(
            "select position, event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload::text, metadata::text, \
                    (extract(epoch from recorded_at) * 1000000)::bigint, link_hash \
             from event_log where position > $1 order by position limit $2",
        )
        .bind(walk.last_good.position)
        .bind(PAGE_SIZE)
        .fetch_all(&mut *conn)
        .await?;
        let page_len = rows.len();
        for row in rows {
            let position: i64 = row.try_get(0)?;
            let expected = walk.last_good.position + 1;
            if position > head.position {
                walk.broken = Some(BrokenLink {
                    position,
                    problem: format!(
                        "the event lies beyond the head, which records position {}",
                        head.position
                    ),
                });
                break 'pages;
            }
            if position != expected {
                walk.broken = Some(BrokenLink {
                    position: expected,
                    problem: format!(
                        "the event is missing: the log jumps from position {} to {position}",
                        walk.last_good.position
                    ),
                });
                break 'pages;
            }
            let event_id: Uuid = row.try_get(1)?;
            let aggregate_type: String = row.try_get(2)?;
            let aggregate_id: String = row.try_get(3)?;
            let event_type: String = row.try_get(5)?;
            let event_version: String = row.try_get(6)?;
            let payload: String = row.try_get(7)?;
            let metadata: String = row.try_get(8)?;
            let stored_link: Vec<u8> = row.try_get(10)?;
            let computed = link_hash(
                &walk.last_good.link,
                &LinkedContent {
                    position,
                    event_id,
                    aggregate_type: &aggregate_type,
                    aggregate_id: &aggregate_id,
                    sequence: row.try_get(4)?,
                    event_type: &event_type,
                    event_version: &event_version,
                    payload: &payload,
                    metadata: &metadata,
                    recorded_at_micros: row.try_get(9)?,
                },
            );
            if stored_link[..] != computed[..] {
                walk.broken = Some(BrokenLink {
                    position,
                    problem: "the stored link hash does not match the event's content: the event or its link \
                              was altered"
                        .into(),
                });
                break 'pages;
            }
            walk.last_good = ChainPoint {
                position,
                link: computed,
            };
            walk.checked += 1;
        }
        progress(walk.checked);
        if (page_len as i64) < PAGE_SIZE {
            break;
        }
    }
    if walk.broken.is_none() {
        if walk.last_good.position < head.position {
            walk.broken = Some(BrokenLink {
                position: walk.last_good.position + 1,
                problem: format!(
                    "the event is missing: the head records position {} but the log ends at {}",
                    head.position, walk.last_good.position
                ),
            });
        } else if walk.last_good.link != head.link_hash {
            walk.broken = Some(BrokenLink {
                position: head.position,
                problem: "event_log_head records a link hash other than the last event's".into(),
            });
        }
    }
    Ok(walk)
}
