//! The neutral shape of an ACDB row as captured: column name → typed value.
//!
//! Rows are kept whole (every column, known or not) so that a column added in Access shows up in
//! events without a code change. Interpretation of known columns lives in the record modules.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One value of an ACDB cell.
///
/// Serialised untagged so payloads stay readable: `null`, `true`, `12`, `"text"`,
/// `{"decimal":"12.5000"}`, `{"datetime":"2024-01-15T10:00:00"}`, `{"bytes":"00ff"}`.
/// Money and every non-integer number are exact decimals: a binary float never enters the domain.
///
/// Deserialisation is hand-written (see the `Deserialize` impl below): serde's untagged enums
/// buffer every value and try each variant in turn, which made decoding a captured row cost tens
/// of microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AcdbValue {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    Decimal {
        #[serde(with = "rust_decimal::serde::str")]
        decimal: Decimal,
    },
    DateTime {
        datetime: NaiveDateTime,
    },
    Bytes {
        #[serde(with = "hex::serde")]
        bytes: Vec<u8>,
    },
}

impl<'de> Deserialize<'de> for AcdbValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AcdbValueVisitor)
    }
}

struct AcdbValueVisitor;

impl<'de> serde::de::Visitor<'de> for AcdbValueVisitor {
    type Value = AcdbValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, a boolean, an integer, a string, or {\"decimal\"|\"datetime\"|\"bytes\": string}")
    }

    fn visit_unit<E>(self) -> Result<AcdbValue, E> {
        Ok(AcdbValue::Null)
    }

    fn visit_none<E>(self) -> Result<AcdbValue, E> {
        Ok(AcdbValue::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<AcdbValue, E> {
        Ok(AcdbValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<AcdbValue, E> {
        Ok(AcdbValue::Int(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AcdbValue, E> {
        i64::try_from(v)
            .map(AcdbValue::Int)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<AcdbValue, E> {
        // ccare never writes a JSON float: a float here is foreign input, refused rather than
        // silently rounded into money.
        Err(E::custom(format!(
            "{v} is a floating-point number; decimals are written as {{\"decimal\": \"…\"}}"
        )))
    }

    fn visit_str<E>(self, v: &str) -> Result<AcdbValue, E> {
        Ok(AcdbValue::Text(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<AcdbValue, E> {
        Ok(AcdbValue::Text(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AcdbValue, A::Error> {
        use serde::de::Error;
        let Some(tag) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
            return Err(A::Error::custom("an empty object is not an ACDB value"));
        };
        let raw: std::borrow::Cow<'de, str> = map.next_value()?;
        let value = match tag.as_ref() {
            "decimal" => AcdbValue::Decimal {
                decimal: raw
                    .parse()
                    .map_err(|_| A::Error::custom(format!("{raw:?} is not a decimal")))?,
            },
            "datetime" => AcdbValue::DateTime {
                datetime: raw
                    .parse()
                    .map_err(|_| A::Error::custom(format!("{raw:?} is not a date-time")))?,
            },
            "bytes" => AcdbValue::Bytes {
                bytes: hex::decode(raw.as_bytes())
                    .map_err(|_| A::Error::custom("bytes are not hexadecimal"))?,
            },
            other => {
                return Err(A::Error::custom(format!(
                    "unknown ACDB value tag {other:?}"
                )))
            }
        };
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom("an ACDB value object has exactly one key"));
        }
        Ok(value)
    }
}

impl AcdbValue {
    pub fn is_null(&self) -> bool {
        matches!(self, AcdbValue::Null)
    }

    /// The value as trimmed text, the way the legacy code saw every cell (`str(value).strip()`),
    /// except that NULL is `None` rather than the string "None".
    pub fn as_text(&self) -> Option<String> {
        match self {
            AcdbValue::Null => None,
            AcdbValue::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
            AcdbValue::Int(i) => Some(i.to_string()),
            AcdbValue::Text(s) => Some(s.trim().to_string()),
            AcdbValue::Decimal { decimal } => Some(decimal.normalize().to_string()),
            AcdbValue::DateTime { datetime } => {
                Some(datetime.format("%Y-%m-%d %H:%M:%S").to_string())
            }
            AcdbValue::Bytes { bytes } => Some(hex::encode(bytes)),
        }
    }

    /// The value as plain JSON, as the legacy API showed cells: NULL as `null` (the legacy wrote
    /// `"None"`), numbers with a fraction as exact decimal strings (never a float), dates as
    /// `YYYY-MM-DD HH:MM:SS`, bytes as hex.
    pub fn to_plain_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            AcdbValue::Null => Value::Null,
            AcdbValue::Bool(b) => Value::Bool(*b),
            AcdbValue::Int(i) => Value::from(*i),
            other => other.as_text().map_or(Value::Null, Value::String),
        }
    }

    /// The value as an exact decimal: a `Decimal` as is, an `Int` widened, a `Text` parsed
    /// (plain or scientific notation) without ever passing through a binary float.
    /// NULL, blank text, text that is not a number, and non-numeric types give `None`.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            AcdbValue::Decimal { decimal } => Some(*decimal),
            AcdbValue::Int(i) => Some(Decimal::from(*i)),
            AcdbValue::Text(s) => {
                let s = s.trim();
                if s.is_empty() {
                    return None;
                }
                s.parse::<Decimal>()
                    .ok()
                    .or_else(|| Decimal::from_scientific(s).ok())
            }
            _ => None,
        }
    }

    /// The value as a whole number: an `Int` as is, a `Text` of digits (trimmed), a `Decimal`
    /// with no fractional part. Anything else, including `12.5`, gives `None`.
    pub fn as_i64(&self) -> Option<i64> {
        use rust_decimal::prelude::ToPrimitive;
        match self {
            AcdbValue::Int(i) => Some(*i),
            AcdbValue::Text(s) => s.trim().parse::<i64>().ok(),
            AcdbValue::Decimal { decimal } if decimal.fract().is_zero() => decimal.to_i64(),
            _ => None,
        }
    }

    /// The value as a yes/no flag. Access stores True as -1, the legacy portal wrote 1/0, and
    /// text columns hold `true`/`yes`/`1`: every non-zero number is true. Text that is neither
    /// a known yes nor a known no gives `None` (Python's `bool("0")` being true is not followed).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AcdbValue::Bool(b) => Some(*b),
            AcdbValue::Int(i) => Some(*i != 0),
            AcdbValue::Decimal { decimal } => Some(!decimal.is_zero()),
            AcdbValue::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "-1" | "true" | "yes" | "y" => Some(true),
                "0" | "false" | "no" | "n" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    fn hash_into(&self, hasher: &mut Sha256) {
        fn lp(hasher: &mut Sha256, bytes: &[u8]) {
            hasher.update((bytes.len() as u32).to_be_bytes());
            hasher.update(bytes);
        }
        match self {
            AcdbValue::Null => hasher.update([0u8]),
            AcdbValue::Bool(b) => hasher.update([1u8, u8::from(*b)]),
            AcdbValue::Int(i) => {
                hasher.update([2u8]);
                hasher.update(i.to_be_bytes());
            }
            AcdbValue::Text(s) => {
                hasher.update([3u8]);
                lp(hasher, s.as_bytes());
            }
            AcdbValue::Decimal { decimal } => {
                // 12.5 and 12.5000 are the same amount: normalise so a driver that pads decimals
                // differently does not look like an edit.
                hasher.update([4u8]);
                lp(hasher, decimal.normalize().to_string().as_bytes());
            }
            AcdbValue::DateTime { datetime } => {
                hasher.update([5u8]);
                lp(
                    hasher,
                    datetime
                        .format("%Y-%m-%dT%H:%M:%S%.f")
                        .to_string()
                        .as_bytes(),
                );
            }
            AcdbValue::Bytes { bytes } => {
                hasher.update([6u8]);
                lp(hasher, bytes);
            }
        }
    }
}

/// A captured row: every column the source returned, by its name as the source spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AcdbRow {
    columns: BTreeMap<String, AcdbValue>,
}

impl AcdbRow {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, column: impl Into<String>, value: AcdbValue) {
        self.columns.insert(column.into(), value);
    }

    pub fn with(mut self, column: impl Into<String>, value: AcdbValue) -> Self {
        self.insert(column, value);
        self
    }

    /// The value of a column, matching its name case-insensitively as Access does.
    /// A column the row does not have reads as `Null`.
    pub fn get(&self, column: &str) -> &AcdbValue {
        static NULL: AcdbValue = AcdbValue::Null;
        if let Some(v) = self.columns.get(column) {
            return v;
        }
        self.columns
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(column))
            .map(|(_, v)| v)
            .unwrap_or(&NULL)
    }

    pub fn columns(&self) -> impl Iterator<Item = (&str, &AcdbValue)> {
        self.columns.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The row's content hash. NULL cells are left out, so a column added in Access (NULL in
    /// every existing row) does not turn every row into an update; names are hashed in sorted
    /// order, so column order does not matter either.
    pub fn content_hash(&self) -> RowHash {
        let mut hasher = Sha256::new();
        for (name, value) in &self.columns {
            if value.is_null() {
                continue;
            }
            hasher.update((name.len() as u32).to_be_bytes());
            hasher.update(name.as_bytes());
            value.hash_into(&mut hasher);
        }
        RowHash(hasher.finalize().into())
    }

    /// The row as a plain JSON object (see [`AcdbValue::to_plain_json`]).
    pub fn to_plain_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.columns
                .iter()
                .map(|(k, v)| (k.clone(), v.to_plain_json()))
                .collect(),
        )
    }

    /// Names of the columns whose values differ between `self` (before) and `after`,
    /// a column missing on one side counting as NULL.
    pub fn changed_columns(&self, after: &AcdbRow) -> Vec<String> {
        let mut names: Vec<&String> = self.columns.keys().chain(after.columns.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|name| self.get(name) != after.get(name))
            .cloned()
            .collect()
    }
}

/// SHA-256 of a row's canonical content (see [`AcdbRow::content_hash`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowHash(pub [u8; 32]);

impl RowHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        Some(RowHash(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for RowHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RowHash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for RowHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> AcdbValue {
        AcdbValue::Decimal {
            decimal: Decimal::from_str(s).unwrap(),
        }
    }

    #[test]
    fn values_round_trip_through_json_with_their_types() {
        let row = AcdbRow::new()
            .with("ID", AcdbValue::Int(7))
            .with("transaction amount", dec("12.5000"))
            .with(
                "transaction date",
                AcdbValue::DateTime {
                    datetime: NaiveDateTime::from_str("2024-01-15T10:00:00").unwrap(),
                },
            )
            .with("accountnumber", AcdbValue::Text("0045MAK".into()))
            .with("payment", AcdbValue::Bool(true))
            .with("current balance", AcdbValue::Null);
        let json = serde_json::to_string(&row).unwrap();
        let back: AcdbRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, row);
        assert!(
            json.contains(r#""transaction amount":{"decimal":"12.5000"}"#),
            "{json}"
        );
    }

    #[test]
    fn decoding_refuses_floats_unknown_tags_and_extra_keys() {
        for bad in [
            "1.5",
            r#"{"money":"1"}"#,
            r#"{"decimal":"1","x":"2"}"#,
            r#"{"decimal":"abc"}"#,
            "{}",
        ] {
            assert!(serde_json::from_str::<AcdbValue>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::from_str::<AcdbValue>("null").unwrap(),
            AcdbValue::Null
        );
        assert_eq!(
            serde_json::from_str::<AcdbValue>("-3").unwrap(),
            AcdbValue::Int(-3)
        );
    }

    #[test]
    fn bytes_round_trip_as_hex() {
        let v = AcdbValue::Bytes {
            bytes: vec![0, 255, 16],
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"bytes":"00ff10"}"#);
        assert_eq!(serde_json::from_str::<AcdbValue>(&json).unwrap(), v);
    }

    #[test]
    fn a_column_added_with_nulls_does_not_change_the_hash() {
        let before = AcdbRow::new().with("ID", AcdbValue::Int(1));
        let after = before.clone().with("NEW COLUMN", AcdbValue::Null);
        assert_eq!(before.content_hash(), after.content_hash());
    }

    #[test]
    fn the_same_amount_written_with_more_decimals_hashes_the_same() {
        let a = AcdbRow::new().with("x", dec("12.5"));
        let b = AcdbRow::new().with("x", dec("12.5000"));
        assert_eq!(a.content_hash(), b.content_hash());
        let c = AcdbRow::new().with("x", dec("12.51"));
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn a_text_and_an_integer_with_the_same_digits_hash_differently() {
        let a = AcdbRow::new().with("PHONE", AcdbValue::Int(58123456));
        let b = AcdbRow::new().with("PHONE", AcdbValue::Text("58123456".into()));
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn numbers_are_read_exactly_from_decimals_integers_and_text() {
        let cases = [
            (dec("12.5000"), Some("12.5000")),
            (AcdbValue::Int(-3), Some("-3")),
            (AcdbValue::Text(" 0.1 ".into()), Some("0.1")),
            (AcdbValue::Text("1.5e2".into()), Some("150")),
            (AcdbValue::Text("   ".into()), None),
            (AcdbValue::Text("abc".into()), None),
            (AcdbValue::Null, None),
            (AcdbValue::Bool(true), None),
        ];
        for (value, expected) in cases {
            let expected = expected.map(|e| Decimal::from_str(e).unwrap());
            assert_eq!(value.as_decimal(), expected, "{value:?}");
        }
    }

    #[test]
    fn whole_numbers_come_from_integers_digit_text_and_integral_decimals_only() {
        assert_eq!(AcdbValue::Int(7).as_i64(), Some(7));
        assert_eq!(AcdbValue::Text(" 42 ".into()).as_i64(), Some(42));
        assert_eq!(dec("58123456.0").as_i64(), Some(58123456));
        assert_eq!(dec("12.5").as_i64(), None);
        assert_eq!(AcdbValue::Text("12a".into()).as_i64(), None);
        assert_eq!(AcdbValue::Null.as_i64(), None);
    }

    #[test]
    fn flags_follow_access_where_true_is_minus_one() {
        assert_eq!(AcdbValue::Int(-1).as_bool(), Some(true));
        assert_eq!(AcdbValue::Int(0).as_bool(), Some(false));
        assert_eq!(AcdbValue::Bool(true).as_bool(), Some(true));
        assert_eq!(AcdbValue::Text(" Yes ".into()).as_bool(), Some(true));
        assert_eq!(AcdbValue::Text("0".into()).as_bool(), Some(false));
        assert_eq!(AcdbValue::Text("maybe".into()).as_bool(), None);
        assert_eq!(AcdbValue::Null.as_bool(), None);
    }

    #[test]
    fn column_lookup_ignores_case_like_access() {
        let row = AcdbRow::new().with("CUSTOMER ID", AcdbValue::Int(3));
        assert_eq!(row.get("customer id"), &AcdbValue::Int(3));
        assert_eq!(row.get("missing"), &AcdbValue::Null);
    }

    #[test]
    fn changed_columns_lists_only_the_differences() {
        let before = AcdbRow::new()
            .with("a", AcdbValue::Int(1))
            .with("b", AcdbValue::Int(2));
        let after = AcdbRow::new()
            .with("a", AcdbValue::Int(1))
            .with("b", AcdbValue::Int(3))
            .with("c", AcdbValue::Null);
        assert_eq!(before.changed_columns(&after), vec!["b".to_string()]);
    }
}
