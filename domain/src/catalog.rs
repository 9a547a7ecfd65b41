//! The ACDB tables ccare captures: names spelled exactly as in Access (spaces and case included),
//! the key that identifies a row, how the table changes, and the aggregate type its rows become.
//!
//! Aggregate type names are stored in every event: never rename one.

use std::cmp::Ordering;
use std::fmt;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::acdb::{AcdbRow, AcdbValue};

/// How a table changes, which decides how the change capture follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableKind {
    /// Rows are edited in place (customers, accounts, meters, config): every cycle compares
    /// each row's hash with the last one captured.
    Mutable,
    /// Rows are mostly appended (transaction history, meter readings): a watermark on `column`
    /// finds new rows; a trailing window is re-checked for late arrivals and edits;
    /// older edits and deletes are found by reconciliation.
    AppendOnly { watermark: &'static str },
}

/// The type a column's values are expected to have. Drivers do not always say (SQLite reports
/// DECIMAL as text), so the reader uses this to type a known column; unknown columns keep
/// whatever type the driver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnKind {
    Int,
    Decimal,
    Text,
    DateTime,
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub kind: ColumnKind,
}

const fn col(name: &'static str, kind: ColumnKind) -> ColumnSpec {
    ColumnSpec { name, kind }
}

/// One captured table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name in Access.
    pub table: &'static str,
    /// The aggregate type its rows become. Permanent: stored in every event.
    pub aggregate_type: &'static str,
    pub kind: TableKind,
    /// The columns that identify a row, in key order (all must be present in `columns`).
    pub key: &'static [&'static str],
    /// The columns ccare knows (the legacy system's columns, legacy-system.md §2.2).
    pub columns: &'static [ColumnSpec],
}

use ColumnKind::{Bool, DateTime, Decimal, Int, Text};

const CUSTOMER_COLUMNS: &[ColumnSpec] = &[
    col("CUSTOMER ID", Int),
    col("FIRST NAME", Text),
    col("MIDDLE NAME", Text),
    col("LAST NAME", Text),
    col("PHONE", Text),
    col("CELL PHONE 1", Text),
    col("CELL PHONE 2", Text),
    col("EMAIL", Text),
    col("PLOT NUMBER", Text),
    col("STREET ADDRESS", Text),
    col("CITY", Text),
    col("DISTRICT", Text),
    col("Concession name", Text),
    col("DATE SERVICE CONNECTED", DateTime),
    col("DATE SERVICE TERMINATED", DateTime),
    col("ID NUMBER", Text),
    col("CUSTOMER POSITION", Text),
    col("GPS X", Decimal),
    col("GPS Y", Decimal),
    col("GENDER", Text),
    col("COUNTRY", Text),
    col("RECORD CREATE DATE", DateTime),
    col("RECORD CREATED BY", Text),
];

const ACCOUNT_COLUMNS: &[ColumnSpec] = &[
    col("accountnumber", Text),
    col("customerid", Int),
    col("meterid", Text),
    col("community", Text),
    col("opened date", DateTime),
    col("created by", Text),
];

const METER_COLUMNS: &[ColumnSpec] = &[
    col("meterid", Text),
    col("accountnumber", Text),
    col("customer id", Int),
    col("customer type", Text),
    col("community", Text),
    col("latitude", Decimal),
    col("longitude", Decimal),
    col("Village name", Text),
    col("current status", Int),
    col("customer connect date", DateTime),
    col("RECORD CREATE DATE", DateTime),
    col("RECORD CREATED BY", Text),
];

const HISTORY_COLUMNS: &[ColumnSpec] = &[
    col("ID", Int),
    col("accountnumber", Text),
    col("meterid", Text),
    col("transaction date", DateTime),
    col("transaction amount", Decimal),
    col("kwh value", Decimal),
    col("rate used", Decimal),
    col("payment", Bool),
    col("current balance", Decimal),
];

const CONFIG_COLUMNS: &[ColumnSpec] = &[col("ID", Int), col("therate", Decimal)];

const READING_COLUMNS: &[ColumnSpec] = &[
    col("meterid", Text),
    col("whdatetime", DateTime),
    col("powerkW", Decimal),
    col("community", Text),
];

/// Every table ccare captures, in the order an import takes them (masters before history).
pub const CAPTURED_TABLES: &[TableSpec] = &[
    TableSpec {
        table: "tblconfig",
        aggregate_type: "TariffConfig",
        kind: TableKind::Mutable,
        key: &["ID"],
        columns: CONFIG_COLUMNS,
    },
    TableSpec {
        table: "tblcustomer",
        aggregate_type: "Customer",
        kind: TableKind::Mutable,
        key: &["CUSTOMER ID"],
        columns: CUSTOMER_COLUMNS,
    },
    TableSpec {
        table: "tblaccountnumbers",
        aggregate_type: "Account",
        kind: TableKind::Mutable,
        key: &["accountnumber"],
        columns: ACCOUNT_COLUMNS,
    },
    TableSpec {
        table: "tblmeter",
        aggregate_type: "Meter",
        kind: TableKind::Mutable,
        key: &["meterid"],
        columns: METER_COLUMNS,
    },
    TableSpec {
        table: "Copy Of tblmeter",
        aggregate_type: "MeterRegisterCopy",
        kind: TableKind::Mutable,
        key: &["meterid"],
        columns: METER_COLUMNS,
    },
    TableSpec {
        table: "tblaccounthistory1",
        aggregate_type: "AccountTransaction",
        kind: TableKind::AppendOnly { watermark: "ID" },
        key: &["ID"],
        columns: HISTORY_COLUMNS,
    },
    TableSpec {
        table: "tblaccounthistoryOriginal",
        aggregate_type: "ArchivedAccountTransaction",
        kind: TableKind::AppendOnly { watermark: "ID" },
        key: &["ID"],
        columns: HISTORY_COLUMNS,
    },
    TableSpec {
        table: "tblmeterdata1",
        aggregate_type: "MeterReading",
        kind: TableKind::AppendOnly {
            watermark: "whdatetime",
        },
        key: &["meterid", "whdatetime"],
        columns: READING_COLUMNS,
    },
];

/// The spec of a captured table, by its Access name (case-insensitive, as Access compares names).
pub fn table_spec(table: &str) -> Option<&'static TableSpec> {
    CAPTURED_TABLES
        .iter()
        .find(|t| t.table.eq_ignore_ascii_case(table))
}

/// The spec of the table whose rows become `aggregate_type`.
pub fn spec_for_aggregate(aggregate_type: &str) -> Option<&'static TableSpec> {
    CAPTURED_TABLES
        .iter()
        .find(|t| t.aggregate_type == aggregate_type)
}

impl TableSpec {
    pub fn column_kind(&self, column: &str) -> Option<ColumnKind> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))
            .map(|c| c.kind)
    }

    /// The identity of `row` in this table, or why it has none.
    pub fn row_key(&self, row: &AcdbRow) -> Result<RowKey, RejectReason> {
        let mut parts = Vec::with_capacity(self.key.len());
        for &column in self.key {
            let value = row.get(column);
            let part = match (self.column_kind(column), value) {
                (_, AcdbValue::Null) => {
                    return Err(RejectReason::MissingKey {
                        column: column.to_string(),
                    })
                }
                (_, AcdbValue::Text(s)) if s.trim().is_empty() => {
                    return Err(RejectReason::MissingKey {
                        column: column.to_string(),
                    })
                }
                (Some(ColumnKind::DateTime), AcdbValue::DateTime { datetime }) => {
                    KeyPart::DateTime(*datetime)
                }
                (Some(ColumnKind::DateTime), other) => {
                    return Err(RejectReason::UnparseableDate {
                        column: column.to_string(),
                        value: other.as_text().unwrap_or_default(),
                    })
                }
                (_, AcdbValue::Int(i)) => KeyPart::Int(*i),
                (Some(ColumnKind::Int), AcdbValue::Text(s)) => match s.trim().parse::<i64>() {
                    Ok(i) => KeyPart::Int(i),
                    Err(_) => {
                        return Err(RejectReason::MalformedKey {
                            column: column.to_string(),
                            value: s.clone(),
                        })
                    }
                },
                (_, AcdbValue::Text(s)) => KeyPart::Text(s.trim().to_string()),
                (_, other) => KeyPart::Text(other.as_text().unwrap_or_default()),
            };
            parts.push(part);
        }
        if self.aggregate_type == "Account" {
            if let [KeyPart::Text(account)] = parts.as_slice() {
                if !plausible_account_key(account) {
                    return Err(RejectReason::ImpossibleAccountNumber {
                        value: account.clone(),
                    });
                }
            }
        }
        Ok(RowKey(parts))
    }
}

/// An account number that can identify an account row: 1–16 letters and digits. Odd but
/// usable forms (lower case, short, missing padding) are kept; the analytics need them.
fn plausible_account_key(account: &str) -> bool {
    !account.is_empty() && account.len() <= 16 && account.chars().all(|c| c.is_ascii_alphanumeric())
}

/// One column of a row key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyPart {
    Int(i64),
    Text(String),
    DateTime(NaiveDateTime),
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPart::Int(i) => write!(f, "{i}"),
            KeyPart::Text(s) => f.write_str(s),
            KeyPart::DateTime(d) => write!(f, "{}", d.format("%Y-%m-%d %H:%M:%S")),
        }
    }
}

/// The identity of a row within its table. Its display form (`|`-joined parts) is the
/// aggregate id of the row's events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RowKey(pub Vec<KeyPart>);

impl RowKey {
    pub fn parts(&self) -> &[KeyPart] {
        &self.0
    }

    pub fn aggregate_id(&self) -> String {
        self.to_string()
    }
}

impl PartialOrd for RowKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RowKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// Why a source row could not become an event. Recorded with the table and key; the import goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum RejectReason {
    #[error("key column {column:?} is empty")]
    MissingKey { column: String },
    #[error("key column {column:?} holds {value:?}, which is not a whole number")]
    MalformedKey { column: String, value: String },
    #[error("column {column:?} holds {value:?}, which is not a date")]
    UnparseableDate { column: String, value: String },
    #[error("{value:?} is not an account number")]
    ImpossibleAccountNumber { value: String },
    #[error("another row of the table has the same key")]
    DuplicateKey,
}

impl RejectReason {
    /// A short stable code for grouping in status output.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::MissingKey { .. } => "missing-key",
            RejectReason::MalformedKey { .. } => "malformed-key",
            RejectReason::UnparseableDate { .. } => "unparseable-date",
            RejectReason::ImpossibleAccountNumber { .. } => "impossible-account-number",
            RejectReason::DuplicateKey => "duplicate-key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_is_a_known_column_and_aggregate_types_are_unique() {
        for spec in CAPTURED_TABLES {
            for key in spec.key {
                assert!(
                    spec.column_kind(key).is_some(),
                    "{}: key {key} not in columns",
                    spec.table
                );
            }
            let same = CAPTURED_TABLES
                .iter()
                .filter(|t| t.aggregate_type == spec.aggregate_type)
                .count();
            assert_eq!(same, 1, "{} shares its aggregate type", spec.table);
        }
    }

    #[test]
    fn table_names_are_found_case_insensitively() {
        assert_eq!(
            table_spec("copy of TBLMETER").unwrap().table,
            "Copy Of tblmeter"
        );
        assert!(table_spec("tblnothing").is_none());
    }

    #[test]
    fn a_customer_without_an_id_is_rejected_as_missing_key() {
        let spec = table_spec("tblcustomer").unwrap();
        let row = AcdbRow::new().with("FIRST NAME", AcdbValue::Text("Mpho".into()));
        assert_eq!(
            spec.row_key(&row),
            Err(RejectReason::MissingKey {
                column: "CUSTOMER ID".into()
            })
        );
    }

    #[test]
    fn a_reading_with_an_unparseable_timestamp_is_rejected() {
        let spec = table_spec("tblmeterdata1").unwrap();
        let row = AcdbRow::new()
            .with("meterid", AcdbValue::Text("SMRSD-1".into()))
            .with("whdatetime", AcdbValue::Text("31/31/2024".into()));
        assert!(matches!(
            spec.row_key(&row),
            Err(RejectReason::UnparseableDate { .. })
        ));
    }

    #[test]
    fn account_keys_keep_odd_but_usable_forms_and_reject_impossible_ones() {
        let spec = table_spec("tblaccountnumbers").unwrap();
        let key = |s: &str| {
            spec.row_key(&AcdbRow::new().with("accountnumber", AcdbValue::Text(s.into())))
        };
        assert_eq!(key(" 0045mak ").unwrap().aggregate_id(), "0045mak");
        assert_eq!(key("45MAK").unwrap().aggregate_id(), "45MAK");
        assert!(matches!(
            key("00 45/MAK"),
            Err(RejectReason::ImpossibleAccountNumber { .. })
        ));
        assert!(matches!(key("   "), Err(RejectReason::MissingKey { .. })));
    }

    #[test]
    fn composite_keys_display_as_the_aggregate_id() {
        let spec = table_spec("tblmeterdata1").unwrap();
        let row = AcdbRow::new()
            .with("meterid", AcdbValue::Text("SMRSD-26-1".into()))
            .with(
                "whdatetime",
                AcdbValue::DateTime {
                    datetime: "2024-03-01T13:40:00".parse().unwrap(),
                },
            );
        assert_eq!(
            spec.row_key(&row).unwrap().aggregate_id(),
            "SMRSD-26-1|2024-03-01 13:40:00"
        );
    }

    #[test]
    fn integer_keys_order_numerically() {
        let a = RowKey(vec![KeyPart::Int(9)]);
        let b = RowKey(vec![KeyPart::Int(10)]);
        assert!(a < b);
    }
}
