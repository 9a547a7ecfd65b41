//! Tariffs (legacy-system.md §6.1): the global rate (`tblconfig.therate`, in the ACDB) and the
//! per-site and per-customer overrides ccare owns, each a schedule of rates by effective date.
//!
//! The legacy kept one row per override, so a future-dated override replaced the current one at
//! once (weakness 15); it never applied a future global rate (14); and it compared effective
//! dates as strings in mixed formats and time zones (16). Here every scope keeps a schedule:
//! each entry takes effect at its own date (Africa/Maseru local time) and the earlier ones stay
//! in force until then. An entry without a rate ends an override from its date on.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The aggregate type of tariff schedules. Permanent: stored in every event.
pub const TARIFF_SCHEDULE: &str = "TariffSchedule";

/// The version of [`TariffEvent`]'s payload shapes.
pub const TARIFF_EVENT_VERSION: &str = "1";

/// The highest rate accepted, LSL per kWh: far above any real tariff, low enough to catch a
/// misplaced decimal point.
pub const MAX_RATE: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// Which rates a schedule sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TariffScope {
    /// The global rate: its schedule holds future rates until they are written to `tblconfig`.
    Global,
    /// A site, by its code (`MAK`).
    Concession(String),
    /// A customer, by `CUSTOMER ID`.
    Customer(i64),
}

impl TariffScope {
    /// The legacy scope name: `global`, `concession`, `customer`.
    pub fn kind(&self) -> &'static str {
        match self {
            TariffScope::Global => "global",
            TariffScope::Concession(_) => "concession",
            TariffScope::Customer(_) => "customer",
        }
    }

    /// The legacy `scope_key`: the site code or the customer id (`therate` for global).
    pub fn key(&self) -> String {
        match self {
            TariffScope::Global => "therate".into(),
            TariffScope::Concession(code) => code.clone(),
            TariffScope::Customer(id) => id.to_string(),
        }
    }

    /// The aggregate id: `global`, `concession:MAK`, `customer:123`.
    pub fn aggregate_id(&self) -> String {
        match self {
            TariffScope::Global => "global".into(),
            other => format!("{}:{}", other.kind(), other.key()),
        }
    }

    pub fn from_aggregate_id(id: &str) -> Option<TariffScope> {
        match id.split_once(':') {
            None if id == "global" => Some(TariffScope::Global),
            Some(("concession", code)) => Some(TariffScope::Concession(code.to_string())),
            Some(("customer", customer)) => customer.parse().ok().map(TariffScope::Customer),
            _ => None,
        }
    }
}

impl fmt::Display for TariffScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.aggregate_id())
    }
}

/// One entry of a schedule: from its date, this rate (or, with none, no override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEntry {
    /// LSL per kWh; `None` ends the override.
    pub rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The events of a schedule. Each carries what it replaced, so it can be reverted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TariffEvent {
    EntrySet {
        /// Maseru local time.
        effective_from: NaiveDateTime,
        entry: ScheduleEntry,
        /// The entry at the same date this one replaced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<ScheduleEntry>,
    },
    /// An entry withdrawn (by a revert): the schedule is as if it had never been set.
    EntryCleared {
        effective_from: NaiveDateTime,
        previous: ScheduleEntry,
    },
    /// A global entry was written to `tblconfig` when it fell due.
    GlobalRateApplied { effective_from: NaiveDateTime },
}

impl TariffEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            TariffEvent::EntrySet { .. } => "TariffEntrySet",
            TariffEvent::EntryCleared { .. } => "TariffEntryCleared",
            TariffEvent::GlobalRateApplied { .. } => "GlobalRateApplied",
        }
    }
}

impl DomainEvent for TariffEvent {
    fn event_type(&self) -> String {
        self.kind().to_string()
    }

    fn event_version(&self) -> String {
        TARIFF_EVENT_VERSION.to_string()
    }
}

/// What can be asked of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TariffCommand {
    Set {
        effective_from: NaiveDateTime,
        rate: Option<Decimal>,
        notes: Option<String>,
    },
    Clear {
        effective_from: NaiveDateTime,
    },
    MarkApplied {
        effective_from: NaiveDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("no override is set for {0}")]
    NoOverride(String),
}

/// A schedule of rates by effective date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffSchedule {
    pub entries: BTreeMap<NaiveDateTime, ScheduleEntry>,
    /// Global entries already written to `tblconfig`.
    pub applied: Vec<NaiveDateTime>,
}

impl TariffSchedule {
    /// The entry in force at `at`: the latest one dated at or before it.
    pub fn in_force(&self, at: NaiveDateTime) -> Option<(NaiveDateTime, &ScheduleEntry)> {
        self.entries
            .range(..=at)
            .next_back()
            .map(|(date, entry)| (*date, entry))
    }

    /// The rate in force at `at` (`None`: no override).
    pub fn rate_at(&self, at: NaiveDateTime) -> Option<(NaiveDateTime, Decimal)> {
        self.in_force(at)
            .and_then(|(date, entry)| entry.rate.map(|rate| (date, rate)))
    }

    /// Entries dated after `at`, earliest first.
    pub fn pending(
        &self,
        at: NaiveDateTime,
    ) -> impl Iterator<Item = (&NaiveDateTime, &ScheduleEntry)> {
        self.entries
            .range(at..)
            .filter(move |(date, _)| **date > at)
    }

    /// Global entries due at `at` and not yet written to `tblconfig`.
    pub fn due(&self, at: NaiveDateTime) -> Vec<(NaiveDateTime, Decimal)> {
        self.entries
            .range(..=at)
            .filter(|(date, _)| !self.applied.contains(date))
            .filter_map(|(date, entry)| entry.rate.map(|rate| (*date, rate)))
            .collect()
    }

    pub fn apply_event(&mut self, event: TariffEvent) {
        match event {
            TariffEvent::EntrySet {
                effective_from,
                entry,
                ..
            } => {
                self.applied.retain(|d| *d != effective_from);
                self.entries.insert(effective_from, entry);
            }
            TariffEvent::EntryCleared { effective_from, .. } => {
                self.entries.remove(&effective_from);
            }
            TariffEvent::GlobalRateApplied { effective_from } => {
                self.applied.push(effective_from);
            }
        }
    }

    pub fn decide(&self, command: TariffCommand) -> Result<Vec<TariffEvent>, TariffError> {
        Ok(match command {
            TariffCommand::Set {
                effective_from,
                rate,
                notes,
            } => {
                if let Some(rate) = rate {
                    check_rate(rate)?;
                }
                let notes = notes
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty());
                if notes.as_ref().is_some_and(|n| n.chars().count() > 500) {
                    return Err(TariffError::Invalid {
                        field: "notes",
                        problem: "must be at most 500 characters".into(),
                    });
                }
                let entry = ScheduleEntry { rate, notes };
                let previous = self.entries.get(&effective_from).cloned();
                if previous.as_ref() == Some(&entry) {
                    vec![]
                } else {
                    vec![TariffEvent::EntrySet {
                        effective_from,
                        entry,
                        previous,
                    }]
                }
            }
            TariffCommand::Clear { effective_from } => match self.entries.get(&effective_from) {
                Some(previous) => vec![TariffEvent::EntryCleared {
                    effective_from,
                    previous: previous.clone(),
                }],
                None => vec![],
            },
            TariffCommand::MarkApplied { effective_from } => {
                if self.applied.contains(&effective_from) {
                    vec![]
                } else {
                    vec![TariffEvent::GlobalRateApplied { effective_from }]
                }
            }
        })
    }
}

/// A rate must be positive and plausible, with at most four decimals (Access Currency).
pub fn check_rate(rate: Decimal) -> Result<(), TariffError> {
    let invalid = |problem: String| TariffError::Invalid {
        field: "rate_lsl",
        problem,
    };
    if rate <= Decimal::ZERO {
        return Err(invalid("must be greater than 0".into()));
    }
    if rate > MAX_RATE {
        return Err(invalid(format!("must be at most {MAX_RATE} LSL/kWh")));
    }
    if rate.normalize().scale() > 4 {
        return Err(invalid("has more than 4 decimal places".into()));
    }
    Ok(())
}

/// An effective date as clients send it, as Maseru local time: `2026-03-01` (midnight),
/// the browser's `2026-03-01T08:00`, `2026-03-01 08:00:00`, or an RFC 3339 instant with its
/// offset (converted). `None` when it is none of these.
pub fn parse_effective_from(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(crate::dates::maseru_local(instant.to_utc()));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Where a resolved rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateSource {
    Customer,
    Concession,
    Global,
}

/// The rate in force for a customer at a moment: customer override, else site override, else
/// the global rate (legacy `resolve_rate`, with dates compared as dates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRate {
    pub rate: Decimal,
    pub source: RateSource,
    pub source_key: String,
    pub effective_from: Option<NaiveDateTime>,
}

/// Resolves the rate at `at` from the customer's schedule, their site's, and the global rate in
/// force then (`global`: the rate and since when).
pub fn resolve(
    at: NaiveDateTime,
    customer: Option<(i64, &TariffSchedule)>,
    concession: Option<(&str, &TariffSchedule)>,
    global: (Decimal, Option<NaiveDateTime>),
) -> ResolvedRate {
    if let Some((id, schedule)) = customer {
        if let Some((from, rate)) = schedule.rate_at(at) {
            return ResolvedRate {
                rate,
                source: RateSource::Customer,
                source_key: id.to_string(),
                effective_from: Some(from),
            };
        }
    }
    if let Some((code, schedule)) = concession {
        if let Some((from, rate)) = schedule.rate_at(at) {
            return ResolvedRate {
                rate,
                source: RateSource::Concession,
                source_key: code.to_string(),
                effective_from: Some(from),
            };
        }
    }
    ResolvedRate {
        rate: global.0,
        source: RateSource::Global,
        source_key: "therate".into(),
        effective_from: global.1,
    }
}

aggregate_by_decide!(
    TariffSchedule,
    TARIFF_SCHEDULE,
    TariffCommand,
    TariffEvent,
    TariffError
);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        parse_effective_from(s).unwrap()
    }

    fn rate(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn set(schedule: &mut TariffSchedule, from: &str, r: Option<&str>) {
        for e in schedule
            .decide(TariffCommand::Set {
                effective_from: at(from),
                rate: r.map(rate),
                notes: None,
            })
            .unwrap()
        {
            schedule.apply_event(e);
        }
    }

    #[test]
    fn a_future_override_does_not_replace_the_current_one_before_its_date() {
        let mut s = TariffSchedule::default();
        set(&mut s, "2026-01-01", Some("6.50"));
        set(&mut s, "2026-07-01", Some("7.00"));
        assert_eq!(
            s.rate_at(at("2026-06-30T23:59")),
            Some((at("2026-01-01"), rate("6.50")))
        );
        assert_eq!(
            s.rate_at(at("2026-07-01")),
            Some((at("2026-07-01"), rate("7.00")))
        );
        assert_eq!(s.rate_at(at("2025-12-31")), None);
        assert_eq!(s.pending(at("2026-03-01")).count(), 1);
    }

    #[test]
    fn an_entry_without_a_rate_ends_the_override_from_its_date() {
        let mut s = TariffSchedule::default();
        set(&mut s, "2026-01-01", Some("6.50"));
        set(&mut s, "2026-02-01", None);
        assert_eq!(s.rate_at(at("2026-01-15")).map(|r| r.1), Some(rate("6.50")));
        assert_eq!(s.rate_at(at("2026-02-15")), None);
    }

    #[test]
    fn a_same_day_browser_time_is_in_force_from_that_minute_in_maseru() {
        // The legacy compared "2026-03-01T08:00" with "2026-03-01 10:00:00" as strings and
        // found it pending until the next day (legacy weakness 16).
        let mut s = TariffSchedule::default();
        set(&mut s, "2026-03-01T08:00", Some("6.00"));
        assert!(s.rate_at(at("2026-03-01 10:00:00")).is_some());
        assert_eq!(
            at("2026-03-01T06:00:00Z"),
            at("2026-03-01T08:00"),
            "UTC is converted"
        );
    }

    #[test]
    fn rates_are_checked() {
        for bad in ["0", "-1", "1000.5", "6.12345"] {
            assert!(check_rate(rate(bad)).is_err(), "{bad}");
        }
        assert!(check_rate(rate("6.1234")).is_ok());
    }

    #[test]
    fn setting_and_clearing_carry_what_they_replaced_for_a_revert() {
        let mut s = TariffSchedule::default();
        set(&mut s, "2026-01-01", Some("6.50"));
        let events = s
            .decide(TariffCommand::Set {
                effective_from: at("2026-01-01"),
                rate: Some(rate("7.00")),
                notes: Some("  ".into()),
            })
            .unwrap();
        assert_eq!(
            events,
            vec![TariffEvent::EntrySet {
                effective_from: at("2026-01-01"),
                entry: ScheduleEntry {
                    rate: Some(rate("7.00")),
                    notes: None
                },
                previous: Some(ScheduleEntry {
                    rate: Some(rate("6.50")),
                    notes: None
                }),
            }]
        );
        let cleared = s
            .decide(TariffCommand::Clear {
                effective_from: at("2026-01-01"),
            })
            .unwrap();
        assert!(matches!(cleared[0], TariffEvent::EntryCleared { .. }));
    }

    #[test]
    fn resolution_prefers_the_customer_then_the_site_then_the_global_rate() {
        let mut customer = TariffSchedule::default();
        let mut site = TariffSchedule::default();
        set(&mut site, "2026-01-01", Some("6.00"));
        set(&mut customer, "2026-03-01", Some("4.00"));
        let global = (rate("5.00"), None);
        let r = |when: &str| resolve(at(when), Some((7, &customer)), Some(("MAK", &site)), global);
        assert_eq!(r("2026-02-01").source, RateSource::Concession);
        assert_eq!(r("2026-03-02").rate, rate("4.00"));
        assert_eq!(r("2025-06-01").source, RateSource::Global);
    }

    #[test]
    fn a_due_global_entry_is_reported_until_it_is_marked_applied() {
        let mut g = TariffSchedule::default();
        set(&mut g, "2026-05-01", Some("5.75"));
        assert!(g.due(at("2026-04-30")).is_empty());
        assert_eq!(
            g.due(at("2026-05-01")),
            vec![(at("2026-05-01"), rate("5.75"))]
        );
        for e in g
            .decide(TariffCommand::MarkApplied {
                effective_from: at("2026-05-01"),
            })
            .unwrap()
        {
            g.apply_event(e);
        }
        assert!(g.due(at("2026-06-01")).is_empty());
    }

    #[test]
    fn scopes_round_trip_through_their_aggregate_ids() {
        for scope in [
            TariffScope::Global,
            TariffScope::Concession("MAK".into()),
            TariffScope::Customer(123),
        ] {
            assert_eq!(
                TariffScope::from_aggregate_id(&scope.aggregate_id()),
                Some(scope)
            );
        }
        assert_eq!(TariffScope::from_aggregate_id("customer:x"), None);
    }
}
