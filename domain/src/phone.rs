//! Phone numbers, normalised once to E.164 (`+26658123456`).
//!
//! The legacy system normalised phones four different ways (ACDB lookup, CRUD write coercion,
//! SMS, WhatsApp bridge; legacy-system.md §2.5) and stored them as text or as INTEGER with the
//! country code stripped. [`PhoneNumber::parse`] folds the four into one rule, so a number written
//! any of those ways is the same number:
//!
//! 1. keep the digits (spaces, dashes, dots, brackets and a leading `+` are dropped);
//! 2. a leading `00` (international prefix) is dropped;
//! 3. fewer than 5 digits is [`PhoneError::TooShort`] (the legacy lookup's limit), more than 15
//!    (E.164's limit) [`PhoneError::TooLong`];
//! 4. `266` followed by the 8-digit national number (optionally with its trunk `0`) is Lesotho;
//! 5. a bare 8-digit national number, or `0` and 8 digits, is Lesotho (+266): Lesotho numbers
//!    have 8 digits, never starting with 0, and the INTEGER columns hold them without the
//!    country code;
//! 6. a number starting with another dial code of the legacy table ([`DIAL_CODES`]: South Africa
//!    27, Zambia 260, …) keeps it;
//! 7. a number written as international (`+…` or `00…`) with any other code keeps it;
//! 8. anything else is [`PhoneError::Unrecognised`]: ccare does not guess.
//!
//! Errors say how many digits there were, never the number (it is personal data).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::acdb::AcdbValue;

/// Lesotho's country calling code.
pub const LESOTHO: &str = "266";

/// A country of the legacy CRUD coercion table (`crud.py` `_COUNTRY_DIAL_CODES`) and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialCode {
    pub country: &'static str,
    pub code: &'static str,
}

const fn dial(country: &'static str, code: &'static str) -> DialCode {
    DialCode { country, code }
}

/// The legacy table of 16 country names (15 codes: "drc" and "dr congo" share 243), by which
/// the CRUD coercion stripped the code of the record's `COUNTRY`. ccare recognises these codes
/// at the start of a number written without `+`/`00`.
pub const DIAL_CODES: &[DialCode] = &[
    dial("lesotho", "266"),
    dial("benin", "229"),
    dial("zambia", "260"),
    dial("south africa", "27"),
    dial("mozambique", "258"),
    dial("tanzania", "255"),
    dial("kenya", "254"),
    dial("nigeria", "234"),
    dial("ghana", "233"),
    dial("senegal", "221"),
    dial("madagascar", "261"),
    dial("malawi", "265"),
    dial("rwanda", "250"),
    dial("uganda", "256"),
    dial("drc", "243"),
    dial("dr congo", "243"),
];

/// Digits in a Lesotho national number.
const LESOTHO_NATIONAL_DIGITS: usize = 8;
/// The fewest digits the legacy lookup accepted.
const MIN_DIGITS: usize = 5;
/// E.164's limit, country code included.
const MAX_DIGITS: usize = 15;
/// The fewest subscriber digits accepted after a foreign country code (no country in the table
/// has shorter numbers).
const MIN_FOREIGN_SUBSCRIBER_DIGITS: usize = 7;

/// The Lesotho national number in `digits`: 8 digits, optionally after the trunk prefix `0`.
/// A national number never starts with 0 (Lesotho numbers start 2, 5, 6 or 8), so `05812345`
/// is a mistyped 7-digit number, not a number to invent a digit for.
fn lesotho_national(digits: &str) -> Option<&str> {
    let national = if digits.len() == LESOTHO_NATIONAL_DIGITS + 1 {
        digits.strip_prefix('0')?
    } else {
        digits
    };
    (national.len() == LESOTHO_NATIONAL_DIGITS && !national.starts_with('0')).then_some(national)
}

/// A phone number in E.164: `+`, the country code, the subscriber number (`+26658123456`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(String);

/// Why a text is not a phone number. Carries the digit count only, never the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number has {digits} digits; at least 5 are needed")]
    TooShort { digits: usize },
    #[error("the phone number has {digits} digits; at most 15 are possible")]
    TooLong { digits: usize },
    #[error("the phone number has {digits} digits, which is neither a Lesotho number nor one with a country code")]
    Unrecognised { digits: usize },
}

impl PhoneNumber {
    /// Normalises a phone number written any of the legacy ways (see the module documentation).
    pub fn parse(raw: &str) -> Result<PhoneNumber, PhoneError> {
        let mut international = raw.trim_start().starts_with('+');
        let all: String = raw.chars().filter(char::is_ascii_digit).collect();
        let digits = match all.strip_prefix("00") {
            Some(rest) => {
                international = true;
                rest
            }
            None => all.as_str(),
        };
        let count = digits.len();
        if count < MIN_DIGITS {
            return Err(PhoneError::TooShort { digits: count });
        }
        if count > MAX_DIGITS {
            return Err(PhoneError::TooLong { digits: count });
        }
        // The legacy lookup's rule: 266 counts as the country code only in a number longer than
        // 9 digits, so an 8-digit national number that happens to start with 266 stays national.
        if let Some(national) = digits.strip_prefix(LESOTHO).filter(|_| count > 9) {
            return lesotho_national(national)
                .map(PhoneNumber::lesotho)
                .ok_or(PhoneError::Unrecognised { digits: count });
        }
        if let Some(national) = lesotho_national(digits) {
            return Ok(PhoneNumber::lesotho(national));
        }
        let known_foreign = DIAL_CODES.iter().any(|d| {
            d.code != LESOTHO
                && digits.starts_with(d.code)
                && count >= d.code.len() + MIN_FOREIGN_SUBSCRIBER_DIGITS
        });
        if known_foreign
            || (international && count > LESOTHO_NATIONAL_DIGITS && !digits.starts_with('0'))
        {
            return Ok(PhoneNumber(format!("+{digits}")));
        }
        Err(PhoneError::Unrecognised { digits: count })
    }

    fn lesotho(national: &str) -> PhoneNumber {
        PhoneNumber(format!("+{LESOTHO}{national}"))
    }

    /// The phone held by an ACDB cell: text as [`PhoneNumber::parse`] reads it, or a number from
    /// an INTEGER (or DOUBLE) column, where the legacy stored `58123456` for `+266 5812 3456`.
    /// NULL, blank, negative, fractional and unparseable values give `None`.
    pub fn from_value(value: &AcdbValue) -> Option<PhoneNumber> {
        match value {
            AcdbValue::Text(s) => PhoneNumber::parse(s).ok(),
            AcdbValue::Int(_) | AcdbValue::Decimal { .. } => {
                let number = value.as_i64().filter(|n| *n > 0)?;
                PhoneNumber::parse(&number.to_string()).ok()
            }
            _ => None,
        }
    }

    /// The E.164 form, `+26658123456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+` (`26658123456`): WhatsApp's `wa_id` form.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The last 8 digits, which the legacy lookup matched with `LIKE '%<last 8>'`: for a
    /// Lesotho number, its national number.
    pub fn last8(&self) -> &str {
        &self.0[self.0.len() - LESOTHO_NATIONAL_DIGITS..]
    }

    /// True for a Lesotho (+266) number.
    pub fn is_lesotho(&self) -> bool {
        self.digits().starts_with(LESOTHO)
    }

    /// The country of the number's dial code, if the legacy table knows it (the first name for
    /// a shared code).
    pub fn dial_code(&self) -> Option<&'static DialCode> {
        DIAL_CODES
            .iter()
            .find(|d| self.digits().starts_with(d.code))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        PhoneNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    #[test]
    fn every_legacy_spelling_of_a_lesotho_number_is_the_same_e164_number() {
        let spellings = [
            "+26658123456",
            "266 5812 3456",
            "+266-5812-3456",
            "0026658123456",
            "+266 (0) 5812 3456",
            "266058123456",
            "58123456",
            "5812 3456",
            "058123456",
            "0058123456",
            "+58123456",
            " 5812-3456 ",
            "266.5812.3456",
        ];
        for raw in spellings {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.to_string()),
                Ok("+26658123456".into()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn numbers_with_another_known_dial_code_keep_it() {
        let cases = [
            ("27821234567", "+27821234567"),
            ("+27 82 123 4567", "+27821234567"),
            ("0027821234567", "+27821234567"),
            ("260971234567", "+260971234567"),
            ("+260 97 123 4567", "+260971234567"),
            ("255712345678", "+255712345678"),
            ("243812345678", "+243812345678"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.to_string()),
                Ok(expected.into()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn an_international_number_with_a_code_outside_the_table_is_kept_only_when_written_as_international(
    ) {
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            PhoneNumber::parse("0044 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            PhoneNumber::parse("442079460958"),
            Err(PhoneError::Unrecognised { digits: 12 })
        );
    }

    #[test]
    fn an_eight_digit_number_starting_with_or_containing_266_is_a_national_number() {
        // The legacy lookup strips 266 only from numbers longer than 9 digits; the legacy SMS
        // left any number containing "266" unprefixed, which sent 58266123 nowhere.
        assert_eq!(
            PhoneNumber::parse("26612345").unwrap().as_str(),
            "+26626612345"
        );
        assert_eq!(
            PhoneNumber::parse("58266123").unwrap().as_str(),
            "+26658266123"
        );
    }

    #[test]
    fn short_long_and_shapeless_numbers_are_errors_that_count_digits_only() {
        let cases = [
            ("123", PhoneError::TooShort { digits: 3 }),
            ("", PhoneError::TooShort { digits: 0 }),
            ("n/a", PhoneError::TooShort { digits: 0 }),
            ("0000", PhoneError::TooShort { digits: 2 }),
            ("1234567", PhoneError::Unrecognised { digits: 7 }),
            ("581234567", PhoneError::Unrecognised { digits: 9 }),
            ("2665812345", PhoneError::Unrecognised { digits: 10 }),
            ("0821234567", PhoneError::Unrecognised { digits: 10 }),
            ("2781234", PhoneError::Unrecognised { digits: 7 }),
            ("1234567890123456", PhoneError::TooLong { digits: 16 }),
            ("05812345", PhoneError::Unrecognised { digits: 8 }),
            ("+266 0581 2345", PhoneError::Unrecognised { digits: 11 }),
        ];
        for (raw, expected) in cases {
            let err = PhoneNumber::parse(raw).unwrap_err();
            assert_eq!(err, expected, "{raw:?}");
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            assert!(
                digits.is_empty() || !err.to_string().contains(&digits),
                "{err} shows the number"
            );
        }
    }

    #[test]
    fn phones_in_integer_and_double_columns_are_lesotho_numbers_without_their_code() {
        let cases = [
            (AcdbValue::Int(58123456), Some("+26658123456")),
            (AcdbValue::Int(26658123456), Some("+26658123456")),
            (
                AcdbValue::Decimal {
                    decimal: Decimal::from_str("58123456.0").unwrap(),
                },
                Some("+26658123456"),
            ),
            (
                AcdbValue::Text(" +266 5812 3456 ".into()),
                Some("+26658123456"),
            ),
            (
                AcdbValue::Decimal {
                    decimal: Decimal::from_str("58123456.5").unwrap(),
                },
                None,
            ),
            (AcdbValue::Int(-58123456), None),
            (AcdbValue::Int(0), None),
            (AcdbValue::Text("".into()), None),
            (AcdbValue::Text("None".into()), None),
            (AcdbValue::Null, None),
            (AcdbValue::Bool(true), None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                PhoneNumber::from_value(&value)
                    .as_ref()
                    .map(PhoneNumber::as_str),
                expected,
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_last_eight_digits_are_the_legacy_match_key() {
        let lesotho = PhoneNumber::parse("266 5812 3456").unwrap();
        assert_eq!(lesotho.last8(), "58123456");
        assert_eq!(lesotho.digits(), "26658123456");
        assert!(lesotho.is_lesotho());
        let za = PhoneNumber::parse("27821234567").unwrap();
        assert_eq!(za.last8(), "21234567");
        assert!(!za.is_lesotho());
        assert_eq!(za.dial_code().unwrap().country, "south africa");
    }

    #[test]
    fn the_legacy_dial_code_table_has_sixteen_countries() {
        assert_eq!(DIAL_CODES.len(), 16);
        for d in DIAL_CODES {
            assert!(d.code.bytes().all(|b| b.is_ascii_digit()), "{d:?}");
        }
    }

    #[test]
    fn phone_numbers_travel_as_e164_strings() {
        let phone = PhoneNumber::parse("58123456").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), r#""+26658123456""#);
        assert_eq!(
            serde_json::from_str::<PhoneNumber>(r#""+26658123456""#).unwrap(),
            phone
        );
        assert!(serde_json::from_str::<PhoneNumber>(r#""123""#).is_err());
    }
}
