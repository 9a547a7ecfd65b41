//! A 10-minute meter reading (`tblmeterdata1`).

use chrono::{NaiveDateTime, Timelike};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::trimmed;
use crate::acdb::AcdbRow;
use crate::dates::parse_legacy_datetime;

/// The columns this record reads (an update touching none of them changes nothing here).
pub const COLUMNS: &[&str] = &["meterid", "whdatetime", "powerkW", "community"];

/// One reading of a meter's power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterReadingRecord {
    pub meter_id: String,
    /// When it was read, Maseru local time as stored.
    pub at: NaiveDateTime,
    /// Power in kW; `None` when NULL (the load profiles skip such readings).
    pub power_kw: Option<Decimal>,
    pub community: Option<String>,
}

impl MeterReadingRecord {
    /// Reads a reading row; `None` when it has no meter or no readable time (its key).
    pub fn from_row(row: &AcdbRow) -> Option<Self> {
        Some(MeterReadingRecord {
            meter_id: trimmed(row, "meterid")?,
            at: parse_legacy_datetime(row.get("whdatetime"))?,
            power_kw: row.get("powerkW").as_decimal(),
            community: trimmed(row, "community"),
        })
    }

    /// The hour of the day (0–23) the reading falls in, for the 24-hour load profiles.
    pub fn hour(&self) -> u32 {
        self.at.hour()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue::{self, DateTime, Null, Text};
    use std::str::FromStr;

    #[test]
    fn a_reading_has_its_meter_time_power_and_hour() {
        let at = "2024-03-01T13:40:00".parse().unwrap();
        let row = AcdbRow::new()
            .with("meterid", Text("SMRSD-26-1".into()))
            .with("whdatetime", DateTime { datetime: at })
            .with(
                "powerkw",
                AcdbValue::Decimal {
                    decimal: Decimal::from_str("0.125").unwrap(),
                },
            )
            .with("community", Text("MAK".into()));
        let reading = MeterReadingRecord::from_row(&row).unwrap();
        assert_eq!(reading.meter_id, "SMRSD-26-1");
        assert_eq!(reading.at, at);
        assert_eq!(reading.power_kw, Some(Decimal::from_str("0.125").unwrap()));
        assert_eq!(reading.community.as_deref(), Some("MAK"));
        assert_eq!(reading.hour(), 13);
    }

    #[test]
    fn a_reading_time_written_as_text_gives_its_hour() {
        let row = AcdbRow::new()
            .with("meterid", Text("SMRSD-26-1".into()))
            .with("whdatetime", Text("2024-03-01 07:10:00".into()))
            .with("powerkW", Null);
        let reading = MeterReadingRecord::from_row(&row).unwrap();
        assert_eq!((reading.hour(), reading.power_kw), (7, None));
    }

    #[test]
    fn a_reading_without_a_meter_or_a_readable_time_is_none() {
        let no_time = AcdbRow::new()
            .with("meterid", Text("SMRSD-26-1".into()))
            .with("whdatetime", Text("x".into()));
        assert_eq!(MeterReadingRecord::from_row(&no_time), None);
        let no_meter = AcdbRow::new().with("whdatetime", Text("2024-03-01 07:10:00".into()));
        assert_eq!(MeterReadingRecord::from_row(&no_meter), None);
    }
}
