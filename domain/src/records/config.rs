//! The tariff configuration (`tblconfig`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::acdb::AcdbRow;
use crate::money::Rate;

/// The columns this record reads (an update touching none of them changes nothing here).
pub const COLUMNS: &[&str] = &["therate"];

/// A `tblconfig` row: the global tariff. The legacy writes `therate` with no WHERE, so every
/// row holds the same rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffConfigRecord {
    /// `therate`, LSL per kWh; `None` when NULL or not a number.
    pub rate: Option<Decimal>,
}

impl TariffConfigRecord {
    pub fn from_row(row: &AcdbRow) -> Self {
        TariffConfigRecord {
            rate: row.get("therate").as_decimal(),
        }
    }

    /// The rate as a [`Rate`].
    pub fn tariff(&self) -> Option<Rate> {
        self.rate.map(Rate::from_decimal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue::{self, Int, Null, Text};
    use std::str::FromStr;

    #[test]
    fn the_global_rate_is_read_exactly_from_any_numeric_cell() {
        let cases = [
            (
                AcdbValue::Decimal {
                    decimal: Decimal::from_str("5.50").unwrap(),
                },
                Some("5.50"),
            ),
            (Text("5.5".into()), Some("5.5")),
            (Int(6), Some("6")),
            (Null, None),
            (Text("n/a".into()), None),
        ];
        for (cell, expected) in cases {
            let record = TariffConfigRecord::from_row(
                &AcdbRow::new()
                    .with("ID", Int(1))
                    .with("therate", cell.clone()),
            );
            assert_eq!(
                record.rate,
                expected.map(|e| Decimal::from_str(e).unwrap()),
                "{cell:?}"
            );
        }
        let record =
            TariffConfigRecord::from_row(&AcdbRow::new().with("therate", Text("5.5".into())));
        assert_eq!(record.tariff(), Some(Rate::from_str("5.5").unwrap()));
    }
}
