//! A transaction of the account ledger (`tblaccounthistory1`, `tblaccounthistoryOriginal`).

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::acdb::{AcdbRow, AcdbValue};
use crate::dates::{parse_legacy_datetime, Month, Quarter};
use crate::energy::Kwh;
use crate::money::Money;
use crate::site::SiteCode;

use super::trimmed;

/// The columns this record reads (an update touching none of them changes nothing here).
pub const COLUMNS: &[&str] = &[
    "ID",
    "accountnumber",
    "meterid",
    "transaction date",
    "transaction amount",
    "kwh value",
    "rate used",
    "payment",
    "current balance",
];

/// When a transaction happened, as far as its row says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransactionDate {
    Dated(NaiveDateTime),
    /// The cell holds text that is no date (kept, trimmed, for reports).
    Unparseable(String),
    /// The cell is NULL or blank.
    Missing,
}

impl TransactionDate {
    /// Reads a date cell: see `dates::parse_legacy_datetime`.
    pub fn from_value(value: &AcdbValue) -> TransactionDate {
        if let Some(at) = parse_legacy_datetime(value) {
            return TransactionDate::Dated(at);
        }
        match value.as_text() {
            Some(text) if !text.is_empty() => TransactionDate::Unparseable(text),
            _ => TransactionDate::Missing,
        }
    }

    pub fn datetime(&self) -> Option<NaiveDateTime> {
        match self {
            TransactionDate::Dated(at) => Some(*at),
            _ => None,
        }
    }

    /// The calendar day (Maseru local, as stored).
    pub fn date(&self) -> Option<NaiveDate> {
        self.datetime().map(|at| at.date())
    }

    /// The quarter, for dated rows only: undated and unparseable rows belong to no quarter
    /// (the figures put both under "Unknown", the intent of legacy bug B2).
    pub fn quarter(&self) -> Option<Quarter> {
        self.date().map(Quarter::of)
    }

    pub fn month(&self) -> Option<Month> {
        self.date().map(Month::of)
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub id: i64,
    /// `accountnumber` trimmed (blank is `None`). The analytics count accounts by this text,
    /// case-sensitively, as the legacy did.
    pub raw_account: Option<String>,
    /// The legacy site of the account (`SiteCode::of_account`): `None` for a 1-character account.
    pub site: Option<SiteCode>,
    pub meter_id: Option<String>,
    pub date: TransactionDate,
    /// LSL; positive for a payment/purchase. NULL counts as 0 (the legacy `float(x or 0)`),
    /// exactly. Text that is no number also counts as 0: the catalogue types the column as a
    /// decimal, so such text only comes from a driver that misreports the column.
    pub amount: Money,
    /// kWh credited or consumed; NULL counts as 0, as for `amount`.
    pub kwh: Kwh,
    /// LSL per kWh used.
    pub rate: Option<Decimal>,
    /// The payment flag (no analytics use it); NULL is false.
    pub payment: bool,
    /// The meter's balance after the transaction, in kWh, when recorded.
    pub balance: Option<Kwh>,
}

impl TransactionRecord {
    /// Reads a ledger row; `None` only when it has no whole-number `ID`.
    pub fn from_row(row: &AcdbRow) -> Option<Self> {
        let id = row.get("ID").as_i64()?;
        let raw_account = trimmed(row, "accountnumber");
        Some(TransactionRecord {
            id,
            site: raw_account.as_deref().and_then(SiteCode::of_account),
            raw_account,
            meter_id: trimmed(row, "meterid"),
            date: TransactionDate::from_value(row.get("transaction date")),
            amount: Money::from_value(row.get("transaction amount")).unwrap_or(Money::ZERO),
            kwh: Kwh::from_value(row.get("kwh value")).unwrap_or(Kwh::ZERO),
            rate: row.get("rate used").as_decimal(),
            payment: row.get("payment").as_bool().unwrap_or(false),
            balance: Kwh::from_value(row.get("current balance")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue::{Bool, DateTime, Int, Null, Text};
    use std::str::FromStr;

    fn dec(s: &str) -> AcdbValue {
        AcdbValue::Decimal {
            decimal: Decimal::from_str(s).unwrap(),
        }
    }

    fn row(account: AcdbValue, date: AcdbValue) -> AcdbRow {
        AcdbRow::new()
            .with("ID", Int(1))
            .with("accountnumber", account)
            .with("transaction date", date)
    }

    #[test]
    fn a_full_ledger_row_is_read_exactly() {
        let at = "2025-03-04T13:45:00".parse().unwrap();
        let ledger = row(Text("0045MAK ".into()), DateTime { datetime: at })
            .with("meterid", Text("SMRSD-26-00000045".into()))
            .with("transaction amount", dec("50.10"))
            .with("kwh value", dec("9.1090"))
            .with("rate used", dec("5.50"))
            .with("payment", Bool(true))
            .with("current balance", dec("12.5"));
        let t = TransactionRecord::from_row(&ledger).unwrap();
        assert_eq!(t.id, 1);
        assert_eq!(t.raw_account.as_deref(), Some("0045MAK"));
        assert_eq!(t.site.as_ref().map(SiteCode::as_str), Some("MAK"));
        assert_eq!(t.meter_id.as_deref(), Some("SMRSD-26-00000045"));
        assert_eq!(t.date, TransactionDate::Dated(at));
        assert_eq!(t.date.quarter().unwrap().to_string(), "2025 Q1");
        assert_eq!(t.date.month().unwrap().to_string(), "2025-03");
        assert_eq!(t.amount, Money::from_str("50.10").unwrap());
        assert_eq!(t.kwh, Kwh::from_str("9.109").unwrap());
        assert_eq!(t.rate, Some(Decimal::from_str("5.5").unwrap()));
        assert!(t.payment);
        assert_eq!(t.balance, Some(Kwh::from_str("12.5").unwrap()));
    }

    #[test]
    fn null_amounts_and_energy_count_as_zero_and_a_null_balance_stays_absent() {
        let t = TransactionRecord::from_row(
            &row(Text("0045MAK".into()), Null).with("transaction amount", Null),
        )
        .unwrap();
        assert_eq!(
            (t.amount, t.kwh, t.balance, t.rate, t.payment),
            (Money::ZERO, Kwh::ZERO, None, None, false)
        );
    }

    #[test]
    fn amounts_in_text_or_integer_cells_are_read_without_floats() {
        let t = TransactionRecord::from_row(
            &row(Text("0045MAK".into()), Null)
                .with("transaction amount", Text("0.1".into()))
                .with("kwh value", Int(3)),
        )
        .unwrap();
        assert_eq!(
            (t.amount, t.kwh),
            (Money::from_str("0.1").unwrap(), Kwh::from_str("3").unwrap())
        );
    }

    #[test]
    fn negative_and_zero_amounts_are_kept_as_they_are() {
        for amount in ["-20.00", "0"] {
            let t = TransactionRecord::from_row(
                &row(Text("0045MAK".into()), Null).with("transaction amount", dec(amount)),
            )
            .unwrap();
            assert_eq!(t.amount, Money::from_str(amount).unwrap());
        }
    }

    #[test]
    fn the_site_follows_the_legacy_rule_for_odd_accounts() {
        let cases = [
            ("0045mak", Some("0045mak"), Some("MAK")),
            ("  0045MAK  ", Some("0045MAK"), Some("MAK")),
            ("AB", Some("AB"), Some("AB")),
            ("A", Some("A"), None),
            ("   ", None, None),
        ];
        for (account, raw, site) in cases {
            let t = TransactionRecord::from_row(&row(Text(account.into()), Null)).unwrap();
            assert_eq!(t.raw_account.as_deref(), raw, "{account:?}");
            assert_eq!(t.site.as_ref().map(SiteCode::as_str), site, "{account:?}");
        }
    }

    #[test]
    fn dates_are_dated_unparseable_or_missing() {
        let cases = [
            (Null, TransactionDate::Missing),
            (Text("".into()), TransactionDate::Missing),
            (Text("   ".into()), TransactionDate::Missing),
            (
                Text("03/04/2025".into()),
                TransactionDate::Dated("2025-03-04T00:00:00".parse().unwrap()),
            ),
            (
                Text("25/12/2024".into()),
                TransactionDate::Dated("2024-12-25T00:00:00".parse().unwrap()),
            ),
            (
                Text(" soon ".into()),
                TransactionDate::Unparseable("soon".into()),
            ),
            (
                Int(20250304),
                TransactionDate::Unparseable("20250304".into()),
            ),
        ];
        for (cell, expected) in cases {
            let t =
                TransactionRecord::from_row(&row(Text("0045MAK".into()), cell.clone())).unwrap();
            assert_eq!(t.date, expected, "{cell:?}");
        }
        assert_eq!(TransactionDate::Unparseable("soon".into()).quarter(), None);
        assert_eq!(TransactionDate::Missing.month(), None);
    }

    #[test]
    fn a_row_without_an_id_is_no_transaction() {
        assert_eq!(
            TransactionRecord::from_row(
                &AcdbRow::new().with("accountnumber", Text("0045MAK".into()))
            ),
            None
        );
    }
}
