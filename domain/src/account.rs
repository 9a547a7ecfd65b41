//! Account numbers: `NNNNXXX`, four zero-padded digits and the three-letter site code (`0045MAK`).
//!
//! The ACDB does not enforce the format: captured rows keep whatever text they hold (see
//! `catalog::plausible_account_key`), and the record modules parse it with
//! [`AccountNumber::parse`] where a canonical number is needed. The rules here are the legacy
//! system's (legacy-system.md §2.4), each cited where it is implemented.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::site::SiteCode;

/// A canonical account number: four ASCII digits then three upper-case ASCII letters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountNumber(String);

/// Why an account number could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNumberError {
    #[error("{input:?} is not an account number (4 digits and a 3-letter site, like 0045MAK)")]
    Malformed { input: String },
    #[error("site {site} cannot end an account number: it needs exactly 3 letters")]
    UnsuitableSite { site: String },
    #[error("site {site} has no 4-digit account number left")]
    Exhausted { site: String },
}

impl AccountNumber {
    /// Reads an account number the way the customer login normalises it (`auth.py:182-204`):
    /// the input is trimmed; `0045mak` becomes `0045MAK`; the reversed form `mak0045` becomes
    /// `0045MAK`. Anything else (wrong length, spaces inside, 3-digit numbers) is an error
    /// naming the input — where the legacy passed it on unchanged and let the lookup fail.
    pub fn parse(raw: &str) -> Result<AccountNumber, AccountNumberError> {
        let text = raw.trim();
        let bytes = text.as_bytes();
        let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
        let letters = |b: &[u8]| b.iter().all(u8::is_ascii_alphabetic);
        if bytes.len() == 7 {
            let (head, tail) = bytes.split_at(4);
            if digits(head) && letters(tail) {
                return Ok(AccountNumber(format!(
                    "{}{}",
                    &text[..4],
                    text[4..].to_ascii_uppercase()
                )));
            }
            let (head, tail) = bytes.split_at(3);
            if letters(head) && digits(tail) {
                return Ok(AccountNumber(format!(
                    "{}{}",
                    &text[3..],
                    text[..3].to_ascii_uppercase()
                )));
            }
        }
        Err(AccountNumberError::Malformed {
            input: raw.to_string(),
        })
    }

    /// The account `number` (0–9999) of `site`.
    pub fn new(number: u16, site: &SiteCode) -> Result<AccountNumber, AccountNumberError> {
        let code = site.as_str();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(AccountNumberError::UnsuitableSite {
                site: code.to_string(),
            });
        }
        if number > 9999 {
            return Err(AccountNumberError::Exhausted {
                site: code.to_string(),
            });
        }
        Ok(AccountNumber(format!("{number:04}{code}")))
    }

    /// The canonical text, e.g. `0045MAK`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The site: the last three letters.
    pub fn site(&self) -> SiteCode {
        // The canonical form ends in three upper-case letters, which is always a valid code.
        SiteCode::parse(&self.0[4..]).expect("a canonical account number ends in a site code")
    }

    /// The number within the site: `0045MAK` is 45.
    pub fn number(&self) -> u16 {
        self.0[..4]
            .parse()
            .expect("a canonical account number starts with 4 digits")
    }
}

impl AccountNumber {
    /// Same as the free function [`derive_from_plot`].
    pub fn derive_from_plot(plot: &str, concession: &str) -> Option<AccountNumber> {
        derive_from_plot(plot, concession)
    }

    /// Same as the free function [`from_survey_id`].
    pub fn from_survey_id(survey_id: &str) -> Option<AccountNumber> {
        from_survey_id(survey_id)
    }
}

/// What an employee typed to open a customer's data (`/api/customer-data/{acct}`): the input is
/// trimmed and upper-cased; all digits means a customer id (the legacy then opens that
/// customer's first account, sorted), anything else an account as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerLookup {
    CustomerId(i64),
    Account(String),
}

impl CustomerLookup {
    /// `None` for blank input.
    pub fn parse(raw: &str) -> Option<CustomerLookup> {
        let text = raw.trim().to_uppercase();
        if text.is_empty() {
            return None;
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = text.parse() {
                return Some(CustomerLookup::CustomerId(id));
            }
        }
        Some(CustomerLookup::Account(text))
    }
}

/// The plot numbers an account points back to, when no row links it to a customer
/// (`crud.py:832-850`): an account of 3–4 digits and 2–4 letters (`0045MAK`, `045MAK`) names
/// the customers of concession `MAK` whose plot number starts with `MAK 0045` (`MAK 045`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotSearch {
    /// The site letters, upper-cased.
    pub site: String,
    /// The plot number, digits as written in the account.
    pub number: String,
}

impl PlotSearch {
    /// The search an account text implies, if it has the shape `^(\d{3,4})([A-Za-z]{2,4})$`
    /// after trimming.
    pub fn for_account(raw: &str) -> Option<PlotSearch> {
        let text = raw.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let letters = &text[digits..];
        let shaped = (3..=4).contains(&digits)
            && (2..=4).contains(&letters.len())
            && letters.bytes().all(|b| b.is_ascii_alphabetic());
        shaped.then(|| PlotSearch {
            site: letters.to_ascii_uppercase(),
            number: text[..digits].to_string(),
        })
    }

    /// The plot-number prefix searched for (`MAK 0045`): the legacy `LIKE '<SITE> <num>%'`.
    pub fn plot_prefix(&self) -> String {
        format!("{} {}", self.site, self.number)
    }

    /// Whether a customer with this plot number and concession is one the search finds.
    /// Like Access's `LIKE` and `=`, the comparison ignores case; the concession is trimmed.
    pub fn matches(&self, plot: &str, concession: &str) -> bool {
        let prefix = self.plot_prefix();
        plot.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&prefix))
            && concession.trim().eq_ignore_ascii_case(&self.site)
    }
}

/// The account a customer's plot number implies, the legacy fallback when no account row or
/// meter names the customer (`customer_api.py:162-218`).
///
/// The plot must match `^[A-Za-z]{2,4}\s+(\d{3,4})[A-Za-z]?\s+\S+` (site letters, the plot
/// number with an optional sub-plot letter, then a customer-type suffix); the account is the
/// number padded to 4 digits followed by the customer's concession, upper-cased. So
/// `KET 0914B HH` with concession `KET` gives `0914KET` (the sub-plot letter is dropped), and a
/// plot without the type suffix (`KET 0914`) gives nothing. A concession that is not three
/// letters (blank, the legacy's literal "None") gives nothing too.
pub fn derive_from_plot(plot: &str, concession: &str) -> Option<AccountNumber> {
    let rest = plot.trim_start();
    let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    if !(2..=4).contains(&letters) {
        return None;
    }
    let rest = &rest[letters..];
    let rest = skip_whitespace(rest)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(3..=4).contains(&digits) {
        return None;
    }
    let number: u16 = rest[..digits].parse().ok()?;
    let mut rest = &rest[digits..];
    if rest.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        rest = &rest[1..];
    }
    // After the whitespace comes the type suffix (`\S+`): anything at all but the end.
    if skip_whitespace(rest)?.is_empty() {
        return None;
    }
    let site = SiteCode::parse(concession).ok()?;
    AccountNumber::new(number, &site).ok()
}

/// `s` after at least one leading whitespace character, or `None` if it does not start with one.
fn skip_whitespace(s: &str) -> Option<&str> {
    let trimmed = s.trim_start();
    (trimmed.len() < s.len()).then_some(trimmed)
}

/// The account a uGridPlan `Survey_ID` names (`sync_ugridplan.py:401-418`): `MAK 0047 HH`
/// gives `0047MAK`. The first word is the site, the second the number, which must be all digits
/// and is **not** padded: `MAK 47 HH` names no canonical account, `MAK 0134A HH` none at all.
pub fn from_survey_id(survey_id: &str) -> Option<AccountNumber> {
    let mut words = survey_id.split_whitespace();
    let site = words.next()?;
    let number = words.next()?;
    if number.len() != 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    AccountNumber::parse(&format!("{number}{site}")).ok()
}

/// The account number the Assign Meter page proposes for a new meter of `site`
/// (`AssignMeterPage.tsx:69-107`): one more than `highest_existing`, the site's highest account
/// number (the legacy takes it from `tblmeter`, else `Copy Of tblmeter`, sorting as strings),
/// padded to 4 digits; `0001<SITE>` when the site has none.
///
/// A canonical (or reversed) highest account is read as such. Other text is read as the
/// legacy did: trailing letters stripped, then the leading digits (none counting as 0).
/// Past 9999 there is no 4-digit number left, which is an error rather than a 5-digit account.
/// The number is a proposal: nothing reserves it, so a writer must still check it is free.
pub fn next_account_number(
    highest_existing: Option<&str>,
    site: &SiteCode,
) -> Result<AccountNumber, AccountNumberError> {
    let highest: u64 = match highest_existing {
        None => 0,
        Some(raw) => match AccountNumber::parse(raw) {
            Ok(account) => u64::from(account.number()),
            Err(_) => legacy_numeric_prefix(raw),
        },
    };
    let next = highest.saturating_add(1);
    let next = u16::try_from(next).map_err(|_| AccountNumberError::Exhausted {
        site: site.to_string(),
    })?;
    AccountNumber::new(next, site)
}

/// `parseInt(acct.replace(/[A-Za-z]+$/, ''), 10) || 0` without a sign: the digits at the start.
fn legacy_numeric_prefix(raw: &str) -> u64 {
    let stripped = raw
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .trim_start();
    let digits: String = stripped.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return 0;
    }
    // More digits than a u64 holds is far past 9999 anyway.
    digits.parse().unwrap_or(u64::MAX)
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountNumber({})", self.0)
    }
}

impl FromStr for AccountNumber {
    type Err = AccountNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountNumber::parse(s)
    }
}

impl AsRef<str> for AccountNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for AccountNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        AccountNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(code: &str) -> SiteCode {
        SiteCode::parse(code).unwrap()
    }

    #[test]
    fn the_login_normaliser_accepts_canonical_lower_case_and_reversed_accounts() {
        let cases = [
            ("0045MAK", Some("0045MAK")),
            ("0045mak", Some("0045MAK")),
            ("  0045MaK\t", Some("0045MAK")),
            ("mak0045", Some("0045MAK")),
            ("MAK0045", Some("0045MAK")),
            ("45MAK", None),
            ("045MAK", None),
            ("00045MAK", None),
            ("0045MA", None),
            ("0045 MAK", None),
            ("MAK 0045", None),
            ("0045MAKX", None),
            ("12", None),
            ("", None),
            ("0045MA1", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                AccountNumber::parse(raw)
                    .ok()
                    .as_ref()
                    .map(AccountNumber::as_str),
                expected,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn a_malformed_account_is_an_error_naming_the_input() {
        let err = AccountNumber::parse("45MAK").unwrap_err();
        assert_eq!(
            err,
            AccountNumberError::Malformed {
                input: "45MAK".into()
            }
        );
        assert!(err.to_string().contains("\"45MAK\""), "{err}");
    }

    #[test]
    fn an_account_knows_its_site_and_number() {
        let account: AccountNumber = "0045mak".parse().unwrap();
        assert_eq!(account.site(), site("MAK"));
        assert_eq!(account.number(), 45);
        assert_eq!(account.to_string(), "0045MAK");
    }

    #[test]
    fn the_plot_number_implies_an_account_only_with_a_type_suffix() {
        let cases = [
            ("KET 0914B HH", "KET", Some("0914KET")),
            ("KET 0914 HH", "KET", Some("0914KET")),
            ("MAK 045 HH", "MAK", Some("0045MAK")),
            ("mak   0045 SME extra", "mak", Some("0045MAK")),
            ("  MAK 0045 HH", " MAK ", Some("0045MAK")),
            ("KET 0914", "KET", None),
            ("KET 0914B", "KET", None),
            ("KET 0914BC HH", "KET", None),
            ("KET 91 HH", "KET", None),
            ("KET 09145 HH", "KET", None),
            ("K 0914 HH", "KET", None),
            ("KETAN 0914 HH", "KET", None),
            ("KET0914 HH", "KET", None),
            ("KET 0914 HH", "", None),
            ("KET 0914 HH", "None", None),
            ("", "KET", None),
        ];
        for (plot, concession, expected) in cases {
            assert_eq!(
                derive_from_plot(plot, concession)
                    .as_ref()
                    .map(AccountNumber::as_str),
                expected,
                "{plot:?} + {concession:?}"
            );
        }
    }

    #[test]
    fn the_plot_derivation_takes_the_site_from_the_concession_not_the_plot() {
        assert_eq!(
            derive_from_plot("MAK 0045 HH", "SHG").unwrap().as_str(),
            "0045SHG"
        );
    }

    #[test]
    fn a_survey_id_names_an_account_only_with_four_plain_digits() {
        let cases = [
            ("MAK 0047 HH", Some("0047MAK")),
            ("mak 0047 HH", Some("0047MAK")),
            (" MAK  0047 ", Some("0047MAK")),
            ("MAK 0047", Some("0047MAK")),
            ("MAK 47 HH", None),
            ("MAK 0134A HH", None),
            ("MAK", None),
            ("", None),
            ("MA 0047 HH", None),
        ];
        for (survey_id, expected) in cases {
            assert_eq!(
                from_survey_id(survey_id)
                    .as_ref()
                    .map(AccountNumber::as_str),
                expected,
                "{survey_id:?}"
            );
        }
    }

    #[test]
    fn the_next_account_number_follows_the_sites_highest() {
        let mak = site("MAK");
        let next =
            |highest: Option<&str>| next_account_number(highest, &mak).map(|a| a.to_string());
        assert_eq!(next(None), Ok("0001MAK".into()));
        assert_eq!(next(Some("0045MAK")), Ok("0046MAK".into()));
        assert_eq!(next(Some("0045mak")), Ok("0046MAK".into()));
        assert_eq!(next(Some("mak0045")), Ok("0046MAK".into()));
        assert_eq!(next(Some("0999MAK")), Ok("1000MAK".into()));
        // Non-canonical text as the legacy read it: trailing letters off, leading digits.
        assert_eq!(next(Some("45MAK")), Ok("0046MAK".into()));
        assert_eq!(next(Some("12A3")), Ok("0013MAK".into()));
        assert_eq!(next(Some("MAK")), Ok("0001MAK".into()));
        assert_eq!(next(Some("")), Ok("0001MAK".into()));
    }

    #[test]
    fn the_next_account_number_refuses_to_run_past_9999_or_use_a_non_three_letter_site() {
        assert_eq!(
            next_account_number(Some("9999MAK"), &site("MAK")),
            Err(AccountNumberError::Exhausted { site: "MAK".into() })
        );
        assert!(matches!(
            next_account_number(Some("99999999999999999999999MAK"), &site("MAK")),
            Err(AccountNumberError::Exhausted { .. })
        ));
        assert_eq!(
            next_account_number(None, &site("AB")),
            Err(AccountNumberError::UnsuitableSite { site: "AB".into() })
        );
    }

    #[test]
    fn the_employee_lookup_reads_digits_as_a_customer_id_and_the_rest_as_an_account() {
        let cases = [
            ("45", Some(CustomerLookup::CustomerId(45))),
            (" 0045 ", Some(CustomerLookup::CustomerId(45))),
            ("0045mak", Some(CustomerLookup::Account("0045MAK".into()))),
            (" 45mak ", Some(CustomerLookup::Account("45MAK".into()))),
            (
                "99999999999999999999",
                Some(CustomerLookup::Account("99999999999999999999".into())),
            ),
            ("   ", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(CustomerLookup::parse(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn an_account_points_back_to_plots_of_its_concession() {
        let search = PlotSearch::for_account(" 0045mak ").unwrap();
        assert_eq!(search.plot_prefix(), "MAK 0045");
        assert!(search.matches("MAK 0045 HH", "MAK"));
        assert!(search.matches("mak 0045B HH", " mak "));
        assert!(!search.matches("MAK 0045 HH", "SHG"));
        assert!(!search.matches("MAK 0046 HH", "MAK"));
        assert!(!search.matches("MAK", "MAK"));
        assert_eq!(
            PlotSearch::for_account("045MAK").unwrap().plot_prefix(),
            "MAK 045"
        );
        assert_eq!(PlotSearch::for_account("0045AB").unwrap().site, "AB");
        for odd in [
            "45MAK",
            "00045MAK",
            "0045M",
            "0045MAKEB",
            "0045 MAK",
            "MAK0045",
            "",
        ] {
            assert_eq!(PlotSearch::for_account(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn the_derivations_are_also_reachable_from_the_type() {
        assert_eq!(
            AccountNumber::derive_from_plot("KET 0914B HH", "KET")
                .unwrap()
                .as_str(),
            "0914KET"
        );
        assert_eq!(
            AccountNumber::from_survey_id("MAK 0047 HH")
                .unwrap()
                .as_str(),
            "0047MAK"
        );
    }

    #[test]
    fn account_numbers_travel_as_canonical_strings() {
        let account = AccountNumber::parse("mak0045").unwrap();
        assert_eq!(serde_json::to_string(&account).unwrap(), r#""0045MAK""#);
        assert_eq!(
            serde_json::from_str::<AccountNumber>(r#""0045MAK""#).unwrap(),
            account
        );
        assert!(serde_json::from_str::<AccountNumber>(r#""45MAK""#).is_err());
    }

    #[test]
    fn canonical_accounts_sort_by_number_as_the_legacy_string_sort_does() {
        let mut accounts: Vec<AccountNumber> = ["0100MAK", "0009MAK", "0045KET"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        accounts.sort();
        let sorted: Vec<&str> = accounts.iter().map(AccountNumber::as_str).collect();
        assert_eq!(sorted, ["0009MAK", "0045KET", "0100MAK"]);
    }
}
