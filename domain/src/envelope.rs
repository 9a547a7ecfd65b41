//! The metadata every event carries: who caused it, through which channel, when, in answer to
//! what, and for captured ACDB changes, which source row it came from.
//!
//! Stored as a flat string map (the shape cqrs-es gives `metadata`), so events written by
//! postgres-es and by the bulk appender read back the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Africa::Maseru;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acdb::RowHash;

/// The metadata key naming the capture step that recorded an ACDB row change: `snapshot`,
/// `poll`, `reconcile`, or `write` (ccare's audited writer).
pub const CDC_PHASE_KEY: &str = "cdc_phase";

/// The metadata key naming the mutation (the event position of the change) a change reverts.
pub const REVERTS_KEY: &str = "reverts_mutation";

/// How a change reached ccare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Portal,
    Api,
    Whatsapp,
    /// Made directly in the ACDB (in Access, or by any program but ccare) and found by the change capture.
    CdcExternal,
    /// Done by ccare itself: the initial import, reconciliation, scheduled work.
    System,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Portal,
        Channel::Api,
        Channel::Whatsapp,
        Channel::CdcExternal,
        Channel::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Portal => "portal",
            Channel::Api => "api",
            Channel::Whatsapp => "whatsapp",
            Channel::CdcExternal => "cdc-external",
            Channel::System => "system",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| EnvelopeError::Invalid {
                field: "channel",
                value: s.to_string(),
            })
    }
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user (employee id, customer account) when a person acted; `None` for the system
    /// and for changes made outside ccare, whose author the ACDB does not record.
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub channel: Channel,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            user_id: None,
            role: None,
            channel: Channel::System,
        }
    }

    pub fn cdc_external() -> Self {
        Actor {
            user_id: None,
            role: None,
            channel: Channel::CdcExternal,
        }
    }
}

/// Where a captured event came from in the ACDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcSource {
    pub table: String,
    /// The row key, in its display form (see `catalog::RowKey`).
    pub key: String,
    /// The hash of the row as captured (of the row before deletion, for a delete).
    pub row_hash: RowHash,
}

/// The envelope of an event (everything but the payload and the store's own columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub actor: Actor,
    /// Shared by every event caused by one request, command or capture cycle.
    pub correlation_id: Uuid,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// When it happened, in the ACDB's local time (Africa/Maseru, UTC+2, no DST).
    pub occurred_at: DateTime<FixedOffset>,
    pub cdc: Option<CdcSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event metadata lacks {0}")]
    Missing(&'static str),
    #[error("event metadata has an invalid {field}: {value:?}")]
    Invalid { field: &'static str, value: String },
}

/// `instant` as Maseru local time with its +02:00 offset.
pub fn maseru_time(instant: DateTime<Utc>) -> DateTime<FixedOffset> {
    instant.with_timezone(&Maseru).fixed_offset()
}

/// The current time in Maseru, +02:00.
pub fn maseru_now() -> DateTime<FixedOffset> {
    maseru_time(Utc::now())
}

impl Envelope {
    /// An envelope for something happening now.
    pub fn now(actor: Actor, correlation_id: Uuid) -> Self {
        Envelope {
            actor,
            correlation_id,
            causation_id: None,
            occurred_at: maseru_now(),
            cdc: None,
        }
    }

    pub fn with_cdc(mut self, source: CdcSource) -> Self {
        self.cdc = Some(source);
        self
    }

    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if let Some(user) = &self.actor.user_id {
            m.insert("actor_user_id".into(), user.clone());
        }
        if let Some(role) = &self.actor.role {
            m.insert("actor_role".into(), role.clone());
        }
        m.insert("channel".into(), self.actor.channel.as_str().into());
        m.insert("correlation_id".into(), self.correlation_id.to_string());
        if let Some(c) = self.causation_id {
            m.insert("causation_id".into(), c.to_string());
        }
        m.insert("occurred_at".into(), self.occurred_at.to_rfc3339());
        if let Some(cdc) = &self.cdc {
            m.insert("cdc_table".into(), cdc.table.clone());
            m.insert("cdc_key".into(), cdc.key.clone());
            m.insert("cdc_row_hash".into(), cdc.row_hash.to_hex());
        }
        m
    }

    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self, EnvelopeError> {
        let get = |k: &'static str| m.get(k).ok_or(EnvelopeError::Missing(k));
        let uuid = |k: &'static str, v: &String| {
            Uuid::parse_str(v).map_err(|_| EnvelopeError::Invalid {
                field: k,
                value: v.clone(),
            })
        };
        let channel: Channel = get("channel")?.parse()?;
        let correlation_id = uuid("correlation_id", get("correlation_id")?)?;
        let causation_id = m
            .get("causation_id")
            .map(|v| uuid("causation_id", v))
            .transpose()?;
        let occurred_raw = get("occurred_at")?;
        let occurred_at =
            DateTime::parse_from_rfc3339(occurred_raw).map_err(|_| EnvelopeError::Invalid {
                field: "occurred_at",
                value: occurred_raw.clone(),
            })?;
        let cdc = match (m.get("cdc_table"), m.get("cdc_key"), m.get("cdc_row_hash")) {
            (Some(table), Some(key), Some(hash)) => Some(CdcSource {
                table: table.clone(),
                key: key.clone(),
                row_hash: RowHash::from_hex(hash).ok_or_else(|| EnvelopeError::Invalid {
                    field: "cdc_row_hash",
                    value: hash.clone(),
                })?,
            }),
            _ => None,
        };
        Ok(Envelope {
            actor: Actor {
                user_id: m.get("actor_user_id").cloned(),
                role: m.get("actor_role").cloned(),
                channel,
            },
            correlation_id,
            causation_id,
            occurred_at,
            cdc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurred_at_is_maseru_local_time() {
        let t = maseru_time("2024-12-31T23:30:00Z".parse().unwrap());
        assert_eq!(t.to_rfc3339(), "2025-01-01T01:30:00+02:00");
    }

    #[test]
    fn an_envelope_survives_the_metadata_map() {
        let env = Envelope {
            actor: Actor {
                user_id: Some("E042".into()),
                role: Some("onm_team".into()),
                channel: Channel::Portal,
            },
            correlation_id: Uuid::new_v4(),
            causation_id: Some(Uuid::new_v4()),
            occurred_at: maseru_time(Utc::now()),
            cdc: Some(CdcSource {
                table: "tblcustomer".into(),
                key: "12".into(),
                row_hash: RowHash([7; 32]),
            }),
        };
        assert_eq!(Envelope::from_metadata(&env.to_metadata()).unwrap(), env);
    }

    #[test]
    fn a_bad_channel_is_named_in_the_error() {
        let mut m = Envelope::now(Actor::system(), Uuid::nil()).to_metadata();
        m.insert("channel".into(), "fax".into());
        assert_eq!(
            Envelope::from_metadata(&m),
            Err(EnvelopeError::Invalid {
                field: "channel",
                value: "fax".into()
            })
        );
    }
}
