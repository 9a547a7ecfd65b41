//! An account row (`tblaccountnumbers`): the link between an account, a customer and a meter.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::trimmed;
use crate::account::AccountNumber;
use crate::acdb::AcdbRow;
use crate::dates::parse_legacy_datetime;

/// The columns this record reads (an update touching none of them changes nothing here).
pub const COLUMNS: &[&str] = &[
    "accountnumber",
    "customerid",
    "meterid",
    "community",
    "opened date",
];

/// An account as its `tblaccountnumbers` row describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// `accountnumber` as written, trimmed: the row's identity, odd forms included (`45MAK`).
    pub raw: String,
    /// The canonical account number, when `raw` is one (`0045mak` reads as `0045MAK`).
    pub account: Option<AccountNumber>,
    pub customer_id: Option<i64>,
    pub meter_id: Option<String>,
    /// The site code the row names, trimmed as written.
    pub community: Option<String>,
    pub opened: Option<NaiveDateTime>,
}

impl AccountRecord {
    /// Reads a `tblaccountnumbers` row; `None` only when `accountnumber` is blank.
    pub fn from_row(row: &AcdbRow) -> Option<Self> {
        let raw = trimmed(row, "accountnumber")?;
        Some(AccountRecord {
            account: AccountNumber::parse(&raw).ok(),
            raw,
            customer_id: row.get("customerid").as_i64(),
            meter_id: trimmed(row, "meterid"),
            community: trimmed(row, "community"),
            opened: parse_legacy_datetime(row.get("opened date")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue::{DateTime, Int, Null, Text};

    #[test]
    fn an_account_row_links_account_customer_and_meter() {
        let opened = "2024-02-01T00:00:00".parse().unwrap();
        let row = AcdbRow::new()
            .with("accountnumber", Text(" 0045mak ".into()))
            .with("customerid", Int(45))
            .with("meterid", Text("SMRSD-26-00000045".into()))
            .with("community", Text("MAK".into()))
            .with("opened date", DateTime { datetime: opened });
        let record = AccountRecord::from_row(&row).unwrap();
        assert_eq!(record.raw, "0045mak");
        assert_eq!(record.account.unwrap().as_str(), "0045MAK");
        assert_eq!(record.customer_id, Some(45));
        assert_eq!(record.meter_id.as_deref(), Some("SMRSD-26-00000045"));
        assert_eq!(record.community.as_deref(), Some("MAK"));
        assert_eq!(record.opened, Some(opened));
    }

    #[test]
    fn an_odd_account_keeps_its_text_without_a_canonical_number() {
        let row = AcdbRow::new()
            .with("accountnumber", Text("45MAK".into()))
            .with("customerid", Text("x".into()));
        let record = AccountRecord::from_row(&row).unwrap();
        assert_eq!(
            (record.raw.as_str(), record.account, record.customer_id),
            ("45MAK", None, None)
        );
    }

    #[test]
    fn a_row_without_an_account_number_is_no_account() {
        assert_eq!(
            AccountRecord::from_row(&AcdbRow::new().with("accountnumber", Text("  ".into()))),
            None
        );
        assert_eq!(
            AccountRecord::from_row(&AcdbRow::new().with("accountnumber", Null)),
            None
        );
    }
}
