//! Writes into the ACDB, validated before anything is recorded or sent: which table, which row,
//! which columns, and every value coerced to its column's type (legacy-system.md §2.6) — with a
//! clear error naming the column where the legacy silently wrote NULL or dropped the column.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::acdb::{AcdbRow, AcdbValue};
use crate::auth::writable_table;
use crate::catalog::{table_spec, ColumnKind, KeyPart, RowKey, TableSpec};
use crate::phone::PhoneNumber;

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteAction {
    Create,
    Update,
    Delete,
}

impl WriteAction {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAction::Create => "create",
            WriteAction::Update => "update",
            WriteAction::Delete => "delete",
        }
    }
}

/// A value as a request sent it, before it meets its column. Numbers keep their exact text: a
/// JSON number is never read through a binary float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputValue {
    Null,
    Bool(bool),
    /// A JSON number's text, e.g. `12.50`.
    Number(String),
    Text(String),
}

/// A validated write of one ACDB row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWrite {
    /// The table's name as the catalogue spells it.
    pub table: String,
    pub action: WriteAction,
    /// The row: given for updates and deletes, and for creates of tables whose key is not
    /// assigned by the ACDB.
    pub key: Option<RowKey>,
    /// The columns to set (creates and updates), coerced to their types. Empty for deletes.
    pub values: AcdbRow,
}

impl TableWrite {
    pub fn spec(&self) -> &'static TableSpec {
        table_spec(&self.table).expect("a validated write names a catalogued table")
    }
}

/// Why a write was refused before anything was recorded. `field` names the request field or
/// column at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("Table {0:?} not found")]
    UnknownTable(String),
    #[error("{table} cannot be written here: {reason}")]
    NotWritable { table: String, reason: &'static str },
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

impl WriteError {
    fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        WriteError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Whether the ACDB assigns the key of new rows of `spec` (an AutoNumber column: `CUSTOMER ID`,
/// the history tables' `ID`).
pub fn key_is_assigned_by_the_acdb(spec: &TableSpec) -> bool {
    spec.key.len() == 1 && spec.column_kind(spec.key[0]) == Some(ColumnKind::Int)
}

/// Money columns: Access Currency keeps four decimal places.
const MONEY_COLUMNS: &[&str] = &["transaction amount", "rate used", "therate"];

/// Phone columns, stored in the ACDB as digits (the legacy stripped them so they fit the
/// INTEGER columns of the live file).
const PHONE_COLUMNS: &[&str] = &["PHONE", "CELL PHONE 1", "CELL PHONE 2"];

/// Short Text in Access holds at most 255 characters.
const MAX_TEXT_CHARS: usize = 255;

/// Access Long Integer.
const INT_RANGE: std::ops::RangeInclusive<i64> = (i32::MIN as i64)..=(i32::MAX as i64);

/// The catalogued table `name` (any case), if generic writes may change it.
pub fn writable_spec(name: &str) -> Result<&'static TableSpec, WriteError> {
    let spec = table_spec(name).ok_or_else(|| WriteError::UnknownTable(name.to_string()))?;
    if !writable_table(spec.table) {
        let reason = match spec.aggregate_type {
            "TariffConfig" => "the global tariff is set with PUT /api/tariff/global",
            _ => "meter readings come from the meters and are read-only",
        };
        return Err(WriteError::NotWritable {
            table: spec.table.to_string(),
            reason,
        });
    }
    Ok(spec)
}

/// Reads a record id from a URL (`/api/tables/tblcustomer/12`) as the table's key.
pub fn parse_record_id(spec: &TableSpec, raw: &str) -> Result<RowKey, WriteError> {
    if spec.key.len() != 1 {
        return Err(WriteError::NotWritable {
            table: spec.table.to_string(),
            reason: "its rows have a composite key",
        });
    }
    let column = spec.key[0];
    let text = raw.trim();
    if text.is_empty() {
        return Err(WriteError::invalid("id", "must not be empty"));
    }
    let part = match spec.column_kind(column) {
        Some(ColumnKind::Int) => KeyPart::Int(text.parse::<i64>().map_err(|_| {
            WriteError::invalid("id", format!("{text:?} is not a {column} (a whole number)"))
        })?),
        _ => KeyPart::Text(text.to_string()),
    };
    Ok(RowKey(vec![part]))
}

/// Validates a create, update or delete of `table` from request input. `columns` are the
/// table's columns as the change capture last saw them (the catalogue's plus any added in
/// Access); `data` is the request's `{column: value}` map (ignored for deletes).
pub fn validate(
    table: &str,
    action: WriteAction,
    record_id: Option<&str>,
    data: &BTreeMap<String, InputValue>,
    columns: &[String],
) -> Result<TableWrite, WriteError> {
    let spec = writable_spec(table)?;
    let key = record_id.map(|id| parse_record_id(spec, id)).transpose()?;
    let mut values = AcdbRow::new();
    if action != WriteAction::Delete {
        for (name, value) in data {
            let column = resolve_column(spec, columns, name)?;
            let is_key = spec.key.iter().any(|k| k.eq_ignore_ascii_case(&column));
            if is_key && (action == WriteAction::Update || key_is_assigned_by_the_acdb(spec)) {
                if action == WriteAction::Update {
                    let unchanged = key.as_ref().is_some_and(|k| {
                        coerce(spec, &column, value)
                            .is_ok_and(|v| key_part_matches(&k.parts()[0], &v))
                    });
                    if unchanged {
                        continue;
                    }
                    return Err(WriteError::invalid(
                        column,
                        "is the record's key and cannot be changed; create a new record instead",
                    ));
                }
                return Err(WriteError::invalid(
                    column,
                    "is assigned by the ACDB (AutoNumber); leave it out",
                ));
            }
            values.insert(column.clone(), coerce(spec, &column, value)?);
        }
    }
    let key = match action {
        WriteAction::Create if key_is_assigned_by_the_acdb(spec) => None,
        WriteAction::Create => {
            let mut parts = Vec::with_capacity(spec.key.len());
            for column in spec.key {
                match values.get(column) {
                    AcdbValue::Null => {
                        return Err(WriteError::invalid(
                            *column,
                            "is the record's key and is required",
                        ))
                    }
                    value => parts.push(value_key_part(value)),
                }
            }
            Some(RowKey(parts))
        }
        WriteAction::Update | WriteAction::Delete => {
            Some(key.ok_or_else(|| WriteError::invalid("id", "the record id is required"))?)
        }
    };
    if action == WriteAction::Update && values.is_empty() {
        return Err(WriteError::invalid("data", "names no column to change"));
    }
    if action == WriteAction::Create && values.is_empty() {
        return Err(WriteError::invalid("data", "names no column to set"));
    }
    Ok(TableWrite {
        table: spec.table.to_string(),
        action,
        key,
        values,
    })
}

/// The column `name` as the table spells it (Access matches names ignoring case).
fn resolve_column(spec: &TableSpec, columns: &[String], name: &str) -> Result<String, WriteError> {
    let known = spec
        .columns
        .iter()
        .map(|c| c.name)
        .chain(columns.iter().map(String::as_str))
        .find(|c| c.eq_ignore_ascii_case(name.trim()));
    known
        .map(str::to_string)
        .ok_or_else(|| WriteError::invalid(name, format!("is not a column of {}", spec.table)))
}

fn key_part_matches(part: &KeyPart, value: &AcdbValue) -> bool {
    value_key_part(value) == *part
}

fn value_key_part(value: &AcdbValue) -> KeyPart {
    match value {
        AcdbValue::Int(i) => KeyPart::Int(*i),
        AcdbValue::DateTime { datetime } => KeyPart::DateTime(*datetime),
        other => KeyPart::Text(other.as_text().unwrap_or_default()),
    }
}

/// `value` coerced to the type of `column` of `spec`.
pub fn coerce(spec: &TableSpec, column: &str, value: &InputValue) -> Result<AcdbValue, WriteError> {
    let blank = match value {
        InputValue::Null => true,
        InputValue::Text(s) => s.trim().is_empty(),
        _ => false,
    };
    if blank {
        return Ok(AcdbValue::Null);
    }
    let text = match value {
        InputValue::Bool(b) => b.to_string(),
        InputValue::Number(n) => n.clone(),
        InputValue::Text(s) => s.trim().to_string(),
        InputValue::Null => unreachable!("handled above"),
    };
    let invalid = |problem: String| WriteError::invalid(column, problem);
    if PHONE_COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(column)) {
        let phone = PhoneNumber::parse(&text)
            .map_err(|e| invalid(format!("{text:?} is not a phone number: {e}")))?;
        let digits = if phone.is_lesotho() {
            phone.last8().to_string()
        } else {
            phone.digits().to_string()
        };
        return Ok(AcdbValue::Text(digits));
    }
    match spec.column_kind(column) {
        Some(ColumnKind::Int) => {
            let number = match value {
                InputValue::Bool(_) => None,
                _ => text.parse::<i64>().ok(),
            };
            let number = number.ok_or_else(|| invalid(format!("{text:?} is not a whole number")))?;
            if !INT_RANGE.contains(&number) {
                return Err(invalid(format!(
                    "{number} is out of range for an Access Long Integer ({} to {})",
                    i32::MIN,
                    i32::MAX
                )));
            }
            Ok(AcdbValue::Int(number))
        }
        Some(ColumnKind::Decimal) => {
            if matches!(value, InputValue::Bool(_)) {
                return Err(invalid("is a number, not true/false".into()));
            }
            let decimal = Decimal::from_str_exact(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .map_err(|_| invalid(format!("{text:?} is not a number")))?;
            let money = MONEY_COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(column));
            if money && decimal.normalize().scale() > 4 {
                return Err(invalid(format!(
                    "{text} has more than 4 decimal places (Access Currency keeps 4)"
                )));
            }
            Ok(AcdbValue::Decimal { decimal })
        }
        Some(ColumnKind::Bool) => match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(AcdbValue::Bool(true)),
            "0" | "false" | "no" => Ok(AcdbValue::Bool(false)),
            _ => Err(invalid(format!("{text:?} is not true/false (or 1/0)"))),
        },
        Some(ColumnKind::DateTime) => parse_input_datetime(&text).map(|datetime| AcdbValue::DateTime { datetime }).ok_or_else(|| {
            invalid(format!(
                "{text:?} is not a date; write YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS] (03/04/2025 could be March or April)"
            ))
        }),
        Some(ColumnKind::Text) | None => {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(invalid(format!(
                    "is longer than {MAX_TEXT_CHARS} characters (Access Short Text)"
                )));
            }
            Ok(AcdbValue::Text(text))
        }
    }
}

/// An ISO date or date-time as forms send them: `2025-03-04`, `2025-03-04 10:30[:15]` or the
/// browser's `2025-03-04T10:30`. Day-first and month-first forms are refused: they are ambiguous.
pub fn parse_input_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at);
        }
    }
    NaiveDate::from_str(text)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Whether a stored cell holds the value a write asked for, whatever the driver's representation
/// (`12.5` and `12.5000`, an integer read back as a decimal, surrounding spaces).
pub fn cell_matches(requested: &AcdbValue, stored: &AcdbValue) -> bool {
    use AcdbValue as V;
    match (requested, stored) {
        (V::Null, V::Null) => true,
        (V::Null, V::Text(s)) | (V::Text(s), V::Null) => s.trim().is_empty(),
        (V::Decimal { decimal: a }, V::Decimal { decimal: b }) => a == b,
        (V::Int(a), V::Decimal { decimal }) | (V::Decimal { decimal }, V::Int(a)) => {
            Decimal::from(*a) == *decimal
        }
        (V::Int(a), V::Int(b)) => a == b,
        (V::Bool(a), V::Bool(b)) => a == b,
        (V::Bool(a), V::Int(b)) | (V::Int(b), V::Bool(a)) => i64::from(*a) == *b,
        (V::DateTime { datetime: a }, V::DateTime { datetime: b }) => a == b,
        (a, b) => match (a.as_text(), b.as_text()) {
            (Some(x), Some(y)) => x.trim() == y.trim(),
            _ => false,
        },
    }
}

/// Whether every column `write` sets holds its value in `row`.
pub fn row_has_values(values: &AcdbRow, row: &AcdbRow) -> bool {
    values
        .columns()
        .all(|(column, value)| cell_matches(value, row.get(column)))
}

impl fmt::Display for TableWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action.as_str(), self.table)?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        Ok(())
    }
}

/// The aggregate type of write commands into the ACDB. Permanent: stored in every event.
pub const ACDB_WRITE: &str = "AcdbWrite";

/// The version of [`WriteEvent`]'s payload shapes.
pub const WRITE_EVENT_VERSION: &str = "1";

/// The life of one write command, as the audit keeps it: requested with its actor, then applied
/// to the ACDB or failed with the ACDB's reason. The row's own change event (`CustomerUpdated`…)
/// names the command as its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteEvent {
    WriteRequested {
        write: TableWrite,
        /// The mutation (event position) this write reverts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reverts: Option<i64>,
    },
    WriteApplied {
        /// The row key's display form.
        key: String,
    },
    WriteFailed {
        reason: String,
    },
}

impl WriteEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            WriteEvent::WriteRequested { .. } => "WriteRequested",
            WriteEvent::WriteApplied { .. } => "WriteApplied",
            WriteEvent::WriteFailed { .. } => "WriteFailed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, InputValue)]) -> BTreeMap<String, InputValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn text(s: &str) -> InputValue {
        InputValue::Text(s.into())
    }

    fn number(s: &str) -> InputValue {
        InputValue::Number(s.into())
    }

    fn field_of(err: WriteError) -> String {
        match err {
            WriteError::Invalid { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn an_update_is_coerced_column_by_column() {
        let write = validate(
            "tblaccounthistory1",
            WriteAction::Update,
            Some("42"),
            &data(&[
                ("transaction amount", number("12.50")),
                ("kwh value", text(" 3.125 ")),
                ("payment", text("yes")),
                ("transaction date", text("2025-03-04T10:30")),
                ("meterid", text("  ")),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(write.key, Some(RowKey(vec![KeyPart::Int(42)])));
        let v = &write.values;
        assert_eq!(
            v.get("transaction amount"),
            &AcdbValue::Decimal {
                decimal: "12.50".parse().unwrap()
            }
        );
        assert_eq!(v.get("payment"), &AcdbValue::Bool(true));
        assert_eq!(
            v.get("transaction date"),
            &AcdbValue::DateTime {
                datetime: "2025-03-04T10:30:00".parse().unwrap()
            }
        );
        assert_eq!(v.get("meterid"), &AcdbValue::Null, "blank means NULL");
    }

    #[test]
    fn column_names_are_matched_ignoring_case_and_unknown_ones_are_refused() {
        let write = validate(
            "TBLCUSTOMER",
            WriteAction::Update,
            Some("7"),
            &data(&[("first name", text("Mpho"))]),
            &[],
        )
        .unwrap();
        assert_eq!(write.table, "tblcustomer");
        assert_eq!(
            write.values.get("FIRST NAME"),
            &AcdbValue::Text("Mpho".into())
        );
        let err = validate(
            "tblcustomer",
            WriteAction::Update,
            Some("7"),
            &data(&[("FIRST NAME]; DROP TABLE x; --", text("x"))]),
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("is not a column of tblcustomer"),
            "{err}"
        );
    }

    #[test]
    fn a_column_added_in_access_is_writable_once_the_capture_has_seen_it() {
        let added = vec!["WHATSAPP OPT IN".to_string()];
        let write = validate(
            "tblcustomer",
            WriteAction::Update,
            Some("7"),
            &data(&[("whatsapp opt in", text("Y"))]),
            &added,
        )
        .unwrap();
        assert_eq!(
            write.values.get("WHATSAPP OPT IN"),
            &AcdbValue::Text("Y".into())
        );
    }

    #[test]
    fn bad_values_name_their_column() {
        let cases = [
            ("transaction amount", number("12.12345")),
            ("transaction amount", text("twelve")),
            ("kwh value", InputValue::Bool(true)),
            ("payment", text("maybe")),
            ("transaction date", text("03/04/2025")),
            ("ID", number("1")),
        ];
        for (column, value) in cases {
            let err = validate(
                "tblaccounthistory1",
                WriteAction::Create,
                None,
                &data(&[("accountnumber", text("0045MAK")), (column, value.clone())]),
                &[],
            )
            .unwrap_err();
            assert_eq!(field_of(err), column, "{value:?}");
        }
        let err = validate(
            "tblcustomer",
            WriteAction::Update,
            Some("7"),
            &data(&[("CUSTOMER ID", number("8"))]),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot be changed"), "{err}");
        let too_big = validate(
            "tblaccountnumbers",
            WriteAction::Update,
            Some("0045MAK"),
            &data(&[("customerid", number("99999999999"))]),
            &[],
        )
        .unwrap_err();
        assert!(too_big.to_string().contains("Long Integer"), "{too_big}");
    }

    #[test]
    fn the_config_readings_and_unknown_tables_are_refused() {
        let none = BTreeMap::new();
        assert!(matches!(
            validate("tblconfig", WriteAction::Update, Some("1"), &none, &[]),
            Err(WriteError::NotWritable { .. })
        ));
        assert!(matches!(
            validate("tblmeterdata1", WriteAction::Delete, Some("x"), &none, &[]),
            Err(WriteError::NotWritable { .. })
        ));
        assert_eq!(
            validate("MSysObjects", WriteAction::Delete, Some("1"), &none, &[]),
            Err(WriteError::UnknownTable("MSysObjects".into()))
        );
    }

    #[test]
    fn a_create_needs_its_key_unless_the_acdb_assigns_it() {
        let err = validate(
            "tblaccountnumbers",
            WriteAction::Create,
            None,
            &data(&[("customerid", number("7"))]),
            &[],
        )
        .unwrap_err();
        assert_eq!(field_of(err), "accountnumber");
        let ok = validate(
            "tblaccountnumbers",
            WriteAction::Create,
            None,
            &data(&[
                ("accountnumber", text("0045MAK")),
                ("customerid", number("7")),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(ok.key, Some(RowKey(vec![KeyPart::Text("0045MAK".into())])));
        let customer = validate(
            "tblcustomer",
            WriteAction::Create,
            None,
            &data(&[("FIRST NAME", text("Mpho"))]),
            &[],
        )
        .unwrap();
        assert_eq!(customer.key, None);
    }

    #[test]
    fn an_update_without_columns_and_an_id_that_is_not_a_number_are_refused() {
        let err = validate(
            "tblcustomer",
            WriteAction::Update,
            Some("7"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err();
        assert_eq!(field_of(err), "data");
        let err = validate(
            "tblcustomer",
            WriteAction::Delete,
            Some("seven"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err();
        assert_eq!(field_of(err), "id");
    }

    #[test]
    fn phones_are_checked_and_stored_as_digits() {
        let write = validate(
            "tblcustomer",
            WriteAction::Update,
            Some("7"),
            &data(&[
                ("PHONE", text("+266 5812 3456")),
                ("CELL PHONE 1", text("0027 82 123 4567")),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            write.values.get("PHONE"),
            &AcdbValue::Text("58123456".into())
        );
        assert_eq!(
            write.values.get("CELL PHONE 1"),
            &AcdbValue::Text("27821234567".into())
        );
        let err = validate(
            "tblcustomer",
            WriteAction::Update,
            Some("7"),
            &data(&[("PHONE", text("12"))]),
            &[],
        )
        .unwrap_err();
        assert_eq!(field_of(err), "PHONE");
    }

    #[test]
    fn stored_cells_match_requested_values_across_representations() {
        let dec = |s: &str| AcdbValue::Decimal {
            decimal: s.parse().unwrap(),
        };
        assert!(cell_matches(&dec("12.5"), &dec("12.5000")));
        assert!(cell_matches(&AcdbValue::Int(3), &dec("3.0")));
        assert!(cell_matches(
            &AcdbValue::Text("a".into()),
            &AcdbValue::Text(" a ".into())
        ));
        assert!(cell_matches(&AcdbValue::Null, &AcdbValue::Text("".into())));
        assert!(!cell_matches(&dec("12.5"), &dec("12.51")));
        assert!(cell_matches(&AcdbValue::Bool(true), &AcdbValue::Int(1)));
    }
}
