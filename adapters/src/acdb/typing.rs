//! Turning what a source hands over into typed [`AcdbValue`]s, the same way for every reader.
//!
//! The ODBC reader fetches every cell as text (drivers disagree on types: SQLite reports DECIMAL
//! as CHAR) and types it here with the column's kind. The file reader gets native values and
//! brings them to the catalogue's kind through the same text rules, so a row hashes the same
//! whichever reader produced it.
//!
//! A value that does not parse as its kind is kept as [`AcdbValue::Text`] with the raw string:
//! readers never drop or reject a value; deciding what an odd value means is the domain's job.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use domain::acdb::AcdbValue;
use domain::catalog::ColumnKind;
use rust_decimal::Decimal;

/// Types the text of a cell as `kind`; `None` (a type ccare does not map) keeps the text.
pub(crate) fn type_text(kind: Option<ColumnKind>, raw: String) -> AcdbValue {
    let typed = match kind {
        Some(ColumnKind::Int) => raw.parse::<i64>().ok().map(AcdbValue::Int),
        Some(ColumnKind::Decimal) => {
            parse_decimal(&raw).map(|decimal| AcdbValue::Decimal { decimal })
        }
        Some(ColumnKind::DateTime) => {
            parse_datetime(&raw).map(|datetime| AcdbValue::DateTime { datetime })
        }
        Some(ColumnKind::Bool) => parse_bool(&raw).map(AcdbValue::Bool),
        Some(ColumnKind::Text) | None => None,
    };
    typed.unwrap_or(AcdbValue::Text(raw))
}

/// Brings a natively typed value to the catalogue's `kind` through its text form, exactly as
/// the ODBC reader would have typed that text. Values already of the kind, NULLs and bytes are
/// kept as they are.
pub(crate) fn coerce(value: AcdbValue, kind: ColumnKind) -> AcdbValue {
    let text = match (&value, kind) {
        (AcdbValue::Null | AcdbValue::Bytes { .. }, _)
        | (AcdbValue::Int(_), ColumnKind::Int)
        | (AcdbValue::Decimal { .. }, ColumnKind::Decimal)
        | (AcdbValue::DateTime { .. }, ColumnKind::DateTime)
        | (AcdbValue::Bool(_), ColumnKind::Bool)
        | (AcdbValue::Text(_), ColumnKind::Text) => return value,
        // An integer in a decimal column is the same number: no text round trip needed.
        (AcdbValue::Int(i), ColumnKind::Decimal) => {
            return AcdbValue::Decimal {
                decimal: Decimal::from(*i),
            }
        }
        (AcdbValue::Int(i), _) => i.to_string(),
        (AcdbValue::Decimal { decimal }, _) => decimal.to_string(),
        (AcdbValue::DateTime { datetime }, _) => format_datetime(datetime),
        (AcdbValue::Bool(b), _) => if *b { "1" } else { "0" }.to_string(),
        (AcdbValue::Text(s), _) => s.clone(),
    };
    type_text(Some(kind), text)
}

/// `YYYY-MM-DD HH:MM:SS`, with the fraction only when there is one.
pub(crate) fn format_datetime(datetime: &NaiveDateTime) -> String {
    datetime.format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// An exact decimal from plain (`-12.5000`) or scientific (`1.5e-05`, as SQLite prints a REAL)
/// notation; `None` if the text is not a number or does not fit a `Decimal` exactly.
pub(crate) fn parse_decimal(raw: &str) -> Option<Decimal> {
    Decimal::from_str_exact(raw).ok().or_else(|| {
        if raw.contains(['e', 'E']) {
            Decimal::from_scientific(raw).ok()
        } else {
            None
        }
    })
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` or `YYYY-MM-DD` (midnight): the forms the drivers give for a
/// date/time column. Anything else (`03/04/2025`, `2024-02-30`) is not a date here.
pub(crate) fn parse_datetime(raw: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .or_else(|| {
            // chrono accepts a date followed by nothing only through NaiveDate.
            (raw.len() == 10)
                .then(|| NaiveDate::from_str(raw).ok())
                .flatten()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
}

/// Access stores True as -1; SQLite and the legacy portal write 1; some drivers spell it out.
fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "-1" => Some(true),
        "0" => Some(false),
        _ if raw.eq_ignore_ascii_case("true") => Some(true),
        _ if raw.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> AcdbValue {
        AcdbValue::Decimal {
            decimal: Decimal::from_str(s).unwrap(),
        }
    }

    fn dt(s: &str) -> AcdbValue {
        AcdbValue::DateTime {
            datetime: NaiveDateTime::from_str(s).unwrap(),
        }
    }

    #[test]
    fn text_is_typed_by_kind_and_kept_raw_when_it_does_not_parse() {
        use ColumnKind::*;
        let cases = [
            (Some(Int), "42", AcdbValue::Int(42)),
            (Some(Int), " 42", AcdbValue::Text(" 42".into())),
            (Some(Int), "12.5", AcdbValue::Text("12.5".into())),
            (Some(Decimal), "1995.5000", dec("1995.5000")),
            (Some(Decimal), "-20.1", dec("-20.1")),
            (Some(Decimal), "1.5e-05", dec("0.000015")),
            (Some(Decimal), "n/a", AcdbValue::Text("n/a".into())),
            (
                Some(DateTime),
                "2024-01-15 10:00:00",
                dt("2024-01-15T10:00:00"),
            ),
            (
                Some(DateTime),
                "2024-01-16 08:30:00.250",
                dt("2024-01-16T08:30:00.250"),
            ),
            (Some(DateTime), "2024-05-01", dt("2024-05-01T00:00:00")),
            (
                Some(DateTime),
                "03/04/2025",
                AcdbValue::Text("03/04/2025".into()),
            ),
            (
                Some(DateTime),
                "2024-02-30",
                AcdbValue::Text("2024-02-30".into()),
            ),
            (Some(DateTime), "", AcdbValue::Text("".into())),
            (Some(Bool), "-1", AcdbValue::Bool(true)),
            (Some(Bool), "1", AcdbValue::Bool(true)),
            (Some(Bool), "0", AcdbValue::Bool(false)),
            (Some(Bool), "TRUE", AcdbValue::Bool(true)),
            (
                Some(Bool),
                "yes please",
                AcdbValue::Text("yes please".into()),
            ),
            (Some(Text), " Thabo ", AcdbValue::Text(" Thabo ".into())),
            (None, "58123456", AcdbValue::Text("58123456".into())),
        ];
        for (kind, raw, expected) in cases {
            assert_eq!(
                type_text(kind, raw.to_string()),
                expected,
                "{kind:?} {raw:?}"
            );
        }
    }

    #[test]
    fn decimals_keep_their_scale_and_never_round() {
        assert_eq!(parse_decimal("12.5000").unwrap().to_string(), "12.5000");
        assert_eq!(
            parse_decimal("0.1234567890123456789012345678"),
            Some(Decimal::from_str("0.1234567890123456789012345678").unwrap())
        );
        assert_eq!(parse_decimal("0.12345678901234567890123456789"), None);
    }

    #[test]
    fn native_values_are_brought_to_the_catalogue_kind_through_their_text() {
        assert_eq!(
            coerce(AcdbValue::Int(58123456), ColumnKind::Text),
            AcdbValue::Text("58123456".into())
        );
        assert_eq!(coerce(AcdbValue::Int(3), ColumnKind::Decimal), dec("3"));
        assert_eq!(
            coerce(dec("7.0000"), ColumnKind::Int),
            AcdbValue::Text("7.0000".into())
        );
        assert_eq!(
            coerce(AcdbValue::Text("12".into()), ColumnKind::Int),
            AcdbValue::Int(12)
        );
        assert_eq!(
            coerce(AcdbValue::Int(-1), ColumnKind::Bool),
            AcdbValue::Bool(true)
        );
        assert_eq!(
            coerce(dt("2021-12-02T00:00:00"), ColumnKind::Text),
            AcdbValue::Text("2021-12-02 00:00:00".into())
        );
        assert_eq!(coerce(AcdbValue::Null, ColumnKind::Int), AcdbValue::Null);
    }
}
