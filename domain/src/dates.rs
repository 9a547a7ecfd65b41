//! Dates as the ACDB holds them, and the periods the analytics bucket them into.
//!
//! Every ACDB date is a naive local time in Africa/Maseru (UTC+2, no daylight saving): the
//! office enters Maseru wall-clock times and Access stores no zone. Bucketing by day, month or
//! quarter therefore uses the value's own date as it stands, never a UTC conversion — converting
//! first would move every row of the first two hours of a month into the previous month. "Now"
//! for comparisons with ACDB values is [`maseru_local`] of the current instant (the legacy used
//! `utcnow()`, two hours behind the data).
//!
//! Dates stored as text are read by [`parse_legacy_text`], with the legacy's formats in the
//! legacy's order (legacy-system.md §2.7).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::acdb::AcdbValue;
use crate::envelope::maseru_time;

/// The date and time an ACDB cell holds: a date/time value as is, text read by
/// [`parse_legacy_text`]; NULL, blank or unparseable text, and other types give `None`.
pub fn parse_legacy_datetime(value: &AcdbValue) -> Option<NaiveDateTime> {
    match value {
        AcdbValue::DateTime { datetime } => Some(*datetime),
        AcdbValue::Text(text) => parse_legacy_text(text),
        _ => None,
    }
}

/// Reads a date written as text, trying in order (the legacy `om_report` order):
///
/// 1. `YYYY-MM-DD HH:MM:SS` (and the ISO forms `YYYY-MM-DDTHH:MM:SS`, with fractional seconds,
///    or without seconds, which the legacy sync read with `fromisoformat`);
/// 2. `YYYY-MM-DD` (midnight);
/// 3. `MM/DD/YYYY`, so the ambiguous `03/04/2025` is **4 March** 2025;
/// 4. `DD/MM/YYYY`, reached only when the first reading is no date (`25/12/2024`).
///
/// Months, days and time fields may have one or two digits (as Python's `strptime` allows);
/// years have four. Surrounding whitespace is ignored. Anything else — time-zone suffixes, two-digit
/// years, impossible dates like `2024-02-30` — is no date (`None`).
pub fn parse_legacy_text(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    parse_iso(text).or_else(|| parse_slashed(text).map(|date| date.and_time(NaiveTime::MIN)))
}

/// The Maseru wall-clock time of `instant`, naive like every ACDB value.
pub fn maseru_local(instant: DateTime<Utc>) -> NaiveDateTime {
    maseru_time(instant).naive_local()
}

/// A cursor over the characters of a date text.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// Between `min` and `max` ASCII digits, as a number.
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if len < min || len > max {
            return None;
        }
        let (digits, rest) = self.rest.split_at(len);
        self.rest = rest;
        digits.parse().ok()
    }

    /// Between `min` and `max` digits as a fraction of a second, in nanoseconds.
    fn nanos(&mut self, min: usize, max: usize) -> Option<u32> {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if len < min || len > max {
            return None;
        }
        let (digits, rest) = self.rest.split_at(len);
        self.rest = rest;
        let value: u32 = digits.parse().ok()?;
        Some(value * 10u32.pow((9 - len) as u32))
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn at_end(&self) -> bool {
        self.rest.is_empty()
    }
}

fn parse_iso(text: &str) -> Option<NaiveDateTime> {
    let mut c = Cursor { rest: text };
    let year = c.number(4, 4)?;
    let month = c.eat('-').then(|| c.number(1, 2))??;
    let day = c.eat('-').then(|| c.number(1, 2))??;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if c.at_end() {
        return Some(date.and_time(NaiveTime::MIN));
    }
    if !(c.eat(' ') || c.eat('T')) {
        return None;
    }
    let hour = c.number(1, 2)?;
    let minute = c.eat(':').then(|| c.number(1, 2))??;
    let (second, nanos) = if c.eat(':') {
        let second = c.number(1, 2)?;
        let nanos = if c.eat('.') { c.nanos(1, 9)? } else { 0 };
        (second, nanos)
    } else {
        (0, 0)
    };
    if !c.at_end() {
        return None;
    }
    Some(date.and_time(NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?))
}

fn parse_slashed(text: &str) -> Option<NaiveDate> {
    let mut c = Cursor { rest: text };
    let first = c.number(1, 2)?;
    let second = c.eat('/').then(|| c.number(1, 2))??;
    let year = c.eat('/').then(|| c.number(4, 4))??;
    if !c.at_end() {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    NaiveDate::from_ymd_opt(year, first, second)
        .or_else(|| NaiveDate::from_ymd_opt(year, second, first))
}

/// Why a text is not a period key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a {expected} (like {example})")]
pub struct PeriodError {
    pub input: String,
    pub expected: &'static str,
    pub example: &'static str,
}

/// A calendar quarter, displayed as the legacy key `2025 Q4`. Orders chronologically (as the
/// legacy keys sort lexicographically).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub q: u8,
}

impl Quarter {
    /// Quarter `q` (1–4) of `year`.
    pub fn new(year: i32, q: u8) -> Option<Quarter> {
        (1..=4).contains(&q).then_some(Quarter { year, q })
    }

    /// The quarter `date` falls in: `(month - 1) / 3 + 1`.
    pub fn of(date: NaiveDate) -> Quarter {
        // month0() is 0..=11, so the quotient is 0..=3 and fits a u8.
        Quarter {
            year: date.year(),
            q: (date.month0() / 3 + 1) as u8,
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, u32::from(self.q) * 3 - 2, 1)
            .expect("a quarter starts on a valid date")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next()
            .first_day()
            .pred_opt()
            .expect("a quarter ends on a valid date")
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        Quarter::of(date) == self
    }

    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
        }
    }

    pub fn previous(self) -> Quarter {
        if self.q == 1 {
            Quarter {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q - 1,
            }
        }
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04} Q{}", self.year, self.q)
    }
}

impl FromStr for Quarter {
    type Err = PeriodError;
    /// Reads the legacy key `2025 Q4` (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodError {
            input: s.to_string(),
            expected: "quarter",
            example: "2025 Q4",
        };
        let mut c = Cursor { rest: s.trim() };
        let year = c.number(4, 4).ok_or_else(err)?;
        if !(c.eat(' ') && c.eat('Q')) {
            return Err(err());
        }
        let q = c.number(1, 1).ok_or_else(err)?;
        if !c.at_end() {
            return Err(err());
        }
        Quarter::new(
            i32::try_from(year).map_err(|_| err())?,
            u8::try_from(q).map_err(|_| err())?,
        )
        .ok_or_else(err)
    }
}

/// A calendar month, displayed as the legacy key `2025-03`. Orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    /// Month `month` (1–12) of `year`.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    /// The month `date` falls in.
    pub fn of(date: NaiveDate) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The quarter the month belongs to (the legacy monthly ARPU's `quarter` field).
    pub fn quarter(self) -> Quarter {
        Quarter::of(self.first_day())
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a month starts on a valid date")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next()
            .first_day()
            .pred_opt()
            .expect("a month ends on a valid date")
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = PeriodError;
    /// Reads the legacy key `2025-03` (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodError {
            input: s.to_string(),
            expected: "month",
            example: "2025-03",
        };
        let mut c = Cursor { rest: s.trim() };
        let year = c.number(4, 4).ok_or_else(err)?;
        let month = c
            .eat('-')
            .then(|| c.number(2, 2))
            .flatten()
            .ok_or_else(err)?;
        if !c.at_end() {
            return Err(err());
        }
        Month::new(i32::try_from(year).map_err(|_| err())?, month).ok_or_else(err)
    }
}

macro_rules! serde_as_display {
    ($($ty:ty),+) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

serde_as_display!(Quarter, Month);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn text_dates_are_read_in_the_legacy_formats_and_order() {
        let cases = [
            ("2025-03-04 13:45:10", Some("2025-03-04 13:45:10")),
            ("2025-03-04", Some("2025-03-04 00:00:00")),
            ("2025-3-4", Some("2025-03-04 00:00:00")),
            ("03/04/2025", Some("2025-03-04 00:00:00")),
            ("3/4/2025", Some("2025-03-04 00:00:00")),
            ("12/31/2024", Some("2024-12-31 00:00:00")),
            ("25/12/2024", Some("2024-12-25 00:00:00")),
            ("31/01/2025", Some("2025-01-31 00:00:00")),
            ("  2025-03-04 13:45:10  ", Some("2025-03-04 13:45:10")),
            ("2025-03-04T13:45:10", Some("2025-03-04 13:45:10")),
            (
                "2025-03-04T13:45:10.123456",
                Some("2025-03-04 13:45:10.123456"),
            ),
            ("2025-03-04 13:45:10.5", Some("2025-03-04 13:45:10.5")),
            ("2025-03-04T13:45", Some("2025-03-04 13:45:00")),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_legacy_text(text), expected.map(at), "{text:?}");
        }
    }

    #[test]
    fn an_ambiguous_slashed_date_is_month_first() {
        assert_eq!(
            parse_legacy_text("03/04/2025"),
            Some(at("2025-03-04 00:00:00"))
        );
        assert_eq!(
            parse_legacy_text("04/03/2025"),
            Some(at("2025-04-03 00:00:00"))
        );
    }

    #[test]
    fn text_that_is_no_date_is_none() {
        let cases = [
            "",
            "   ",
            "None",
            "garbage",
            "2024-02-30",
            "31/31/2024",
            "13/13/2024",
            "03/04/25",
            "2025-03-04 25:00:00",
            "2025-03-04 10:61:00",
            "2025-03-04T10:00:00Z",
            "2025-03-04T10:00:00+02:00",
            "2025-03-04 10",
            "25-03-04",
            "2025/03/04",
            "2025-03-04 13:45:10.",
            "03/04/2025 10:00:00",
        ];
        for text in cases {
            assert_eq!(parse_legacy_text(text), None, "{text:?}");
        }
    }

    #[test]
    fn acdb_cells_give_their_date_whatever_the_driver_returned() {
        let datetime = at("2024-01-15 10:00:00");
        assert_eq!(
            parse_legacy_datetime(&AcdbValue::DateTime { datetime }),
            Some(datetime)
        );
        assert_eq!(
            parse_legacy_datetime(&AcdbValue::Text("2024-01-15 10:00:00".into())),
            Some(datetime)
        );
        assert_eq!(
            parse_legacy_datetime(&AcdbValue::Text("1/15/2024".into())),
            Some(at("2024-01-15 00:00:00"))
        );
        assert_eq!(
            parse_legacy_datetime(&AcdbValue::Text("not a date".into())),
            None
        );
        assert_eq!(parse_legacy_datetime(&AcdbValue::Null), None);
        assert_eq!(parse_legacy_datetime(&AcdbValue::Int(20240115)), None);
    }

    #[test]
    fn quarters_follow_the_legacy_key_and_month_arithmetic() {
        let cases = [
            ("2025-01-01", "2025 Q1"),
            ("2025-03-31", "2025 Q1"),
            ("2025-04-01", "2025 Q2"),
            ("2025-09-30", "2025 Q3"),
            ("2025-10-01", "2025 Q4"),
            ("2025-12-31", "2025 Q4"),
        ];
        for (date, expected) in cases {
            let date: NaiveDate = date.parse().unwrap();
            assert_eq!(Quarter::of(date).to_string(), expected, "{date}");
        }
    }

    #[test]
    fn a_row_in_the_first_hours_of_a_quarter_stays_in_that_quarter() {
        // 00:30 on 1 October in Maseru is 22:30 on 30 September UTC: bucketing by the naive
        // local date keeps it in Q4, where the office entered it.
        let entered = at("2025-10-01 00:30:00");
        assert_eq!(Quarter::of(entered.date()).to_string(), "2025 Q4");
        assert_eq!(Month::of(entered.date()).to_string(), "2025-10");
    }

    #[test]
    fn maseru_local_time_is_two_hours_ahead_of_utc() {
        let instant: DateTime<Utc> = "2025-09-30T22:30:00Z".parse().unwrap();
        assert_eq!(maseru_local(instant), at("2025-10-01 00:30:00"));
    }

    #[test]
    fn quarters_order_chronologically_and_step_across_years() {
        let q4 = Quarter::new(2024, 4).unwrap();
        let q1 = Quarter::new(2025, 1).unwrap();
        assert!(q4 < q1);
        assert!(Quarter::new(2025, 2).unwrap() > Quarter::new(2024, 3).unwrap());
        assert_eq!(q4.next(), q1);
        assert_eq!(q1.previous(), q4);
        assert_eq!(q1.first_day(), NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        assert_eq!(
            q4.last_day(),
            NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()
        );
        assert!(q1.contains(NaiveDate::from_ymd_opt(2025, 3, 31).unwrap()));
        assert_eq!(Quarter::new(2025, 5), None);
        assert_eq!(Quarter::new(2025, 0), None);
    }

    #[test]
    fn quarter_keys_parse_back_and_reject_other_text() {
        assert_eq!(
            "2025 Q4".parse::<Quarter>(),
            Ok(Quarter { year: 2025, q: 4 })
        );
        assert_eq!(
            " 2025 Q1 ".parse::<Quarter>(),
            Ok(Quarter { year: 2025, q: 1 })
        );
        for bad in [
            "Unknown", "", "2025 Q5", "2025 Q0", "2025Q4", "2025 q4", "25 Q4", "2025 Q44",
        ] {
            let err = bad.parse::<Quarter>().unwrap_err();
            assert_eq!(err.input, bad, "{bad:?}");
        }
    }

    #[test]
    fn months_display_as_year_dash_month_and_know_their_quarter() {
        let month = Month::of(NaiveDate::from_ymd_opt(2025, 3, 9).unwrap());
        assert_eq!(month.to_string(), "2025-03");
        assert_eq!(month.quarter().to_string(), "2025 Q1");
        assert_eq!("2025-03".parse::<Month>(), Ok(month));
        assert!("2025-3".parse::<Month>().is_err());
        assert!("2025-13".parse::<Month>().is_err());
        assert_eq!(
            Month::new(2024, 12).unwrap().next(),
            Month::new(2025, 1).unwrap()
        );
        assert_eq!(
            Month::new(2025, 1).unwrap().previous(),
            Month::new(2024, 12).unwrap()
        );
        assert_eq!(
            Month::new(2024, 2).unwrap().last_day(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert!(Month::new(2024, 12).unwrap() < Month::new(2025, 1).unwrap());
    }

    #[test]
    fn period_keys_sort_as_text_the_same_way_as_periods() {
        let quarters = [
            Quarter::new(999, 4).unwrap(),
            Quarter::new(2024, 4).unwrap(),
            Quarter::new(2025, 1).unwrap(),
        ];
        let mut keys: Vec<String> = quarters.iter().map(Quarter::to_string).collect();
        keys.sort();
        assert_eq!(keys, ["0999 Q4", "2024 Q4", "2025 Q1"]);
    }

    #[test]
    fn periods_travel_as_their_keys() {
        let q = Quarter::new(2025, 4).unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), r#""2025 Q4""#);
        assert_eq!(serde_json::from_str::<Quarter>(r#""2025 Q4""#).unwrap(), q);
        let m = Month::new(2025, 3).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#""2025-03""#);
        assert_eq!(serde_json::from_str::<Month>(r#""2025-03""#).unwrap(), m);
        assert!(serde_json::from_str::<Month>(r#""March""#).is_err());
    }
}
