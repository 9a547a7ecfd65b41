//! Typed, read-only readings of captured ACDB rows.
//!
//! A captured row keeps every column as the ACDB held it ([`crate::acdb::AcdbRow`]); these
//! records interpret the known columns once — trimming, typing, normalising phones, parsing
//! dates, deriving sites — so projections hold no rules. They never fail on odd content: a value
//! that cannot be read is absent, and only a row without its identity is no record at all.
//!
//! Column names are the catalogue's (`crate::catalog`), matched case-insensitively as Access does.

pub mod account;
pub mod config;
pub mod customer;
pub mod meter;
pub mod reading;
pub mod transaction;

use crate::acdb::AcdbRow;

/// The trimmed text of `column`; NULL and blank give `None`.
fn trimmed(row: &AcdbRow, column: &str) -> Option<String> {
    row.get(column).as_text().filter(|s| !s.is_empty())
}

/// The trimmed text of a descriptive `column` (a name, an address). Besides NULL and blank,
/// the literal `None` is absent too: the legacy code turned NULL into the string "None"
/// (`str(value)`) and wrote it back in places, so the ACDB holds it where nothing was entered.
fn descriptive(row: &AcdbRow, column: &str) -> Option<String> {
    trimmed(row, column).filter(|s| !s.eq_ignore_ascii_case("none"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::table_spec;

    #[test]
    fn every_column_a_record_reads_is_a_column_of_its_table() {
        let reads: [(&str, &[&str]); 6] = [
            ("tblcustomer", customer::COLUMNS),
            ("tblaccountnumbers", account::COLUMNS),
            ("tblmeter", meter::COLUMNS),
            ("tblaccounthistory1", transaction::COLUMNS),
            ("tblmeterdata1", reading::COLUMNS),
            ("tblconfig", config::COLUMNS),
        ];
        for (table, columns) in reads {
            let spec = table_spec(table).unwrap();
            for column in columns {
                assert!(
                    spec.columns.iter().any(|c| c.name == *column),
                    "{table} has no column {column:?}"
                );
            }
        }
    }

    #[test]
    fn descriptive_text_is_trimmed_and_blank_or_none_is_absent() {
        use crate::acdb::AcdbValue::{Null, Text};
        let row = AcdbRow::new()
            .with("a", Text("  Mpho ".into()))
            .with("b", Text("   ".into()))
            .with("c", Text("None".into()))
            .with("d", Null);
        assert_eq!(descriptive(&row, "a").as_deref(), Some("Mpho"));
        for column in ["b", "c", "d", "missing"] {
            assert_eq!(descriptive(&row, column), None, "{column}");
        }
        assert_eq!(trimmed(&row, "c").as_deref(), Some("None"));
    }
}
