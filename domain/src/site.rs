//! Sites (mini-grids) and their codes.
//!
//! A site is named by a short upper-case code (`MAK`). The ACDB holds it in
//! `tblcustomer.[Concession name]`, in `community` columns, and as the last three letters of every
//! account number. The legacy analytics take a transaction's site from its account with
//! `acct.strip()[-3:].upper()` ([`SiteCode::of_account`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A site code: 2–4 characters, upper case (`MAK`, `NKU`; `AB` for the odd 2-character account).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteCode(String);

/// Why a text is not a site code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a site code (2 to 4 letters)")]
pub struct SiteCodeError {
    pub input: String,
}

impl SiteCode {
    /// A site code typed by a person or held in a `community`/`Concession name` column:
    /// trimmed, 2–4 ASCII letters, upper-cased.
    pub fn parse(raw: &str) -> Result<SiteCode, SiteCodeError> {
        let code = raw.trim();
        if (2..=4).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(SiteCode(code.to_ascii_uppercase()))
        } else {
            Err(SiteCodeError {
                input: raw.to_string(),
            })
        }
    }

    /// The site of an account as the legacy analytics compute it: the last three characters
    /// of the trimmed account, upper-cased, valid only if at least two characters long.
    ///
    /// So `0045mak ` gives `MAK`, the odd 2-character account `ab` gives the 2-character site
    /// `AB`, and a 1-character or empty account has no site. The characters are not checked to
    /// be letters: a malformed account yields whatever its last three characters are, exactly
    /// as the legacy figures grouped it.
    pub fn of_account(raw: &str) -> Option<SiteCode> {
        let account = raw.trim();
        let count = account.chars().count();
        let last3: String = account.chars().skip(count.saturating_sub(3)).collect();
        if last3.chars().count() < 2 {
            return None;
        }
        Some(SiteCode(last3.to_uppercase()))
    }

    /// The site a customer's `Concession name` names. The column holds the code (`MAK`), so a
    /// code is read with [`SiteCode::parse`]; a full name of a known site (`Ha Makebe`, any case)
    /// is also recognised. Anything else (blank, an unknown name) names no site.
    pub fn from_concession(raw: &str) -> Option<SiteCode> {
        let concession = raw.trim();
        if let Ok(code) = SiteCode::parse(concession) {
            return Some(code);
        }
        KNOWN_SITES
            .iter()
            .find(|site| site.name.eq_ignore_ascii_case(concession))
            .map(|site| SiteCode(site.code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The entry of [`KNOWN_SITES`] for this code, if it is one.
    pub fn known(&self) -> Option<&'static KnownSite> {
        KNOWN_SITES.iter().find(|site| site.code == self.0)
    }

    /// The site's name as the legacy O&M report shows it (`Ha Makebe`), if known.
    pub fn name(&self) -> Option<&'static str> {
        self.known().map(|site| site.name)
    }

    /// The site's district (`Maseru`), if known.
    pub fn district(&self) -> Option<&'static str> {
        self.known().map(|site| site.district)
    }

    /// The name to show: the known name, or the code itself (the legacy `SITE_ABBREV.get(code, code)`).
    pub fn display_name(&self) -> &str {
        self.name().unwrap_or(&self.0)
    }
}

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SiteCode {
    type Err = SiteCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SiteCode::parse(s)
    }
}

impl AsRef<str> for SiteCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Accepts what ccare itself serialises: a code typed as letters, or a site derived from an
/// account by [`SiteCode::of_account`] (2–4 characters of any kind), upper-cased.
impl<'de> Deserialize<'de> for SiteCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if (2..=4).contains(&raw.chars().count()) {
            Ok(SiteCode(raw.to_uppercase()))
        } else {
            Err(serde::de::Error::custom(SiteCodeError { input: raw }))
        }
    }
}

/// A site of the legacy O&M report's table (`om_report.py` `SITE_ABBREV` and `SITE_DISTRICTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSite {
    pub code: &'static str,
    pub name: &'static str,
    pub district: &'static str,
    /// One of the health-clinic sites run with Partners In Health.
    pub clinic: bool,
}

const fn site(
    code: &'static str,
    name: &'static str,
    district: &'static str,
    clinic: bool,
) -> KnownSite {
    KnownSite {
        code,
        name,
        district,
        clinic,
    }
}

/// The sites the legacy O&M report names, in its order (which the concession matching of
/// [`abbreviation_for_concession`] depends on).
///
/// The legacy sources disagree on names (legacy-system.md §2.8: `CONTEXT.md` calls MAT
/// "Matsieng", the WhatsApp bridge calls MAK "Makhunoane"); this table follows the report,
/// because its names appear in the API output ccare must keep.
pub const KNOWN_SITES: &[KnownSite] = &[
    site("MAK", "Ha Makebe", "Maseru", false),
    site("MAS", "Mashai", "Thaba-Tseka", false),
    site("SHG", "Sehonghong", "Thaba-Tseka", false),
    site("LEB", "Lebakeng", "Qacha's Nek", false),
    site("SEH", "Sehlabathebe", "Qacha's Nek", false),
    site("MAT", "Matsoaing", "Mokhotlong", false),
    site("TLH", "Tlhanyaku", "Mokhotlong", false),
    site("TOS", "Tosing", "Quthing", false),
    site("SEB", "Sebapala", "Quthing", false),
    site("RIB", "Ribaneng", "Mafeteng", false),
    site("KET", "Ketane", "Mohale's Hoek", false),
    site("NKU", "Ha Nkau", "Maseru", true),
    site("MET", "Methalaneng", "Thaba-Tseka", true),
    site("BOB", "Bobete", "Thaba-Tseka", true),
    site("MAN", "Manamaneng", "Thaba-Tseka", true),
];

/// The known site a concession name stands for, by the legacy site-overview rule: the first
/// site, in [`KNOWN_SITES`] order, whose full name equals the concession (ignoring case) or whose
/// code, lower-cased, occurs anywhere in the lower-cased concession.
///
/// The substring rule is the legacy's and is kept for parity: `"Makebe"` matches MAK, but so
/// would any name containing "mas". The concession is trimmed first (legacy bug B5's intent).
pub fn abbreviation_for_concession(concession: &str) -> Option<&'static KnownSite> {
    let concession = concession.trim();
    if concession.is_empty() {
        return None;
    }
    let lower = concession.to_lowercase();
    KNOWN_SITES
        .iter()
        .find(|site| site.name.to_lowercase() == lower || lower.contains(&site.code.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_code_is_two_to_four_letters_trimmed_and_upper_cased() {
        let cases = [
            ("MAK", Some("MAK")),
            (" mak ", Some("MAK")),
            ("ab", Some("AB")),
            ("LSBX", Some("LSBX")),
            ("M", None),
            ("MAKEB", None),
            ("M4K", None),
            ("", None),
            ("MA K", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                SiteCode::parse(raw).ok().as_ref().map(SiteCode::as_str),
                expected,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn the_site_of_an_account_is_its_last_three_characters_upper_cased() {
        let cases = [
            ("0045MAK", Some("MAK")),
            ("0045mak", Some("MAK")),
            ("  0045MAK  ", Some("MAK")),
            ("45MAK", Some("MAK")),
            ("AB", Some("AB")),
            ("ab", Some("AB")),
            ("A", None),
            ("", None),
            ("   ", None),
            ("12345", Some("345")),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                SiteCode::of_account(raw).as_ref().map(SiteCode::as_str),
                expected,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn known_sites_have_the_report_names_and_districts_including_the_clinics() {
        let mak = SiteCode::parse("MAK").unwrap();
        assert_eq!(mak.name(), Some("Ha Makebe"));
        assert_eq!(mak.district(), Some("Maseru"));
        let nku = SiteCode::parse("nku").unwrap();
        assert_eq!(
            (nku.name(), nku.district()),
            (Some("Ha Nkau"), Some("Maseru"))
        );
        assert!(nku.known().unwrap().clinic);
        for code in ["MET", "BOB", "MAN"] {
            assert_eq!(
                SiteCode::parse(code).unwrap().district(),
                Some("Thaba-Tseka"),
                "{code}"
            );
        }
        let unknown = SiteCode::parse("RAL").unwrap();
        assert_eq!((unknown.name(), unknown.district()), (None, None));
        assert_eq!(unknown.display_name(), "RAL");
        assert_eq!(KNOWN_SITES.len(), 15);
    }

    #[test]
    fn a_concession_holding_a_code_or_a_known_name_names_its_site() {
        assert_eq!(SiteCode::from_concession(" mak ").unwrap().as_str(), "MAK");
        assert_eq!(
            SiteCode::from_concession("ha makebe").unwrap().as_str(),
            "MAK"
        );
        assert_eq!(SiteCode::from_concession("   "), None);
        assert_eq!(SiteCode::from_concession("Somewhere Else"), None);
    }

    #[test]
    fn the_site_overview_abbreviation_matches_names_then_code_substrings_in_report_order() {
        let code = |c: &str| abbreviation_for_concession(c).map(|s| s.code);
        assert_eq!(code("MAK"), Some("MAK"));
        assert_eq!(code(" Ketane "), Some("KET"));
        assert_eq!(code("sehonghong"), Some("SHG"));
        assert_eq!(code("Tosing village"), Some("TOS"));
        // "Ha Nkau" is NKU's name (no code occurs in it); "Makmas" holds two codes: MAK comes first.
        assert_eq!(code("ha nkau"), Some("NKU"));
        assert_eq!(code("Makmas"), Some("MAK"));
        assert_eq!(code("Nowhere"), None);
        assert_eq!(code("  "), None);
    }

    #[test]
    fn site_codes_travel_as_strings_including_derived_ones() {
        let mak = SiteCode::parse("MAK").unwrap();
        assert_eq!(serde_json::to_string(&mak).unwrap(), r#""MAK""#);
        assert_eq!(serde_json::from_str::<SiteCode>(r#""MAK""#).unwrap(), mak);
        let derived = SiteCode::of_account("12345").unwrap();
        assert_eq!(
            serde_json::from_str::<SiteCode>(&serde_json::to_string(&derived).unwrap()).unwrap(),
            derived
        );
        assert!(serde_json::from_str::<SiteCode>(r#""M""#).is_err());
    }
}
