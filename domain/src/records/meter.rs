//! A meter (`tblmeter`, `Copy Of tblmeter`) and changes of whom it is assigned to.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::{descriptive, trimmed};
use crate::account::AccountNumber;
use crate::acdb::AcdbRow;
use crate::dates::parse_legacy_datetime;

/// The columns this record reads (an update touching none of them changes nothing here).
pub const COLUMNS: &[&str] = &[
    "meterid",
    "accountnumber",
    "customer id",
    "customer type",
    "community",
    "Village name",
    "current status",
    "customer connect date",
];

/// A meter as its row in `tblmeter` or `Copy Of tblmeter` (the same shape) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterRecord {
    /// The meter serial, trimmed (`SMRSD-26-00000045`).
    pub meter_id: String,
    /// `accountnumber` as written, trimmed.
    pub raw_account: Option<String>,
    /// The canonical account number, when `raw_account` is one.
    pub account: Option<AccountNumber>,
    pub customer_id: Option<i64>,
    /// HH, SME, … (drives the load curves by customer type).
    pub customer_type: Option<String>,
    pub community: Option<String>,
    pub village: Option<String>,
    pub status: Option<i64>,
    pub connect_date: Option<NaiveDateTime>,
}

impl MeterRecord {
    /// Reads a meter row; `None` only when `meterid` is blank.
    pub fn from_row(row: &AcdbRow) -> Option<Self> {
        let meter_id = trimmed(row, "meterid")?;
        let raw_account = trimmed(row, "accountnumber");
        Some(MeterRecord {
            meter_id,
            account: raw_account
                .as_deref()
                .and_then(|raw| AccountNumber::parse(raw).ok()),
            raw_account,
            customer_id: row.get("customer id").as_i64(),
            customer_type: descriptive(row, "customer type"),
            community: trimmed(row, "community"),
            village: descriptive(row, "Village name"),
            status: row.get("current status").as_i64(),
            connect_date: parse_legacy_datetime(row.get("customer connect date")),
        })
    }

    /// Whom the meter is assigned to, if anyone.
    pub fn holder(&self) -> Option<MeterHolder> {
        let holder = MeterHolder {
            raw_account: self.raw_account.clone(),
            account: self.account.clone(),
            customer_id: self.customer_id,
        };
        (holder.raw_account.is_some() || holder.customer_id.is_some()).then_some(holder)
    }
}

/// Whom a meter is assigned to: an account, a customer, or both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeterHolder {
    pub raw_account: Option<String>,
    pub account: Option<AccountNumber>,
    pub customer_id: Option<i64>,
}

impl MeterHolder {
    /// The account as compared: canonical when it is one, so `0045mak` and `0045MAK` are the
    /// same holder; the written text otherwise.
    fn account_key(&self) -> Option<&str> {
        self.account
            .as_ref()
            .map(AccountNumber::as_str)
            .or(self.raw_account.as_deref())
    }
}

impl PartialEq for MeterHolder {
    fn eq(&self, other: &Self) -> bool {
        self.account_key() == other.account_key() && self.customer_id == other.customer_id
    }
}

impl Eq for MeterHolder {}

/// A change of whom a meter is assigned to, found by comparing two versions of its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeterAssignment {
    /// The meter had no holder (or did not exist) and now has one.
    Assigned { meter_id: String, to: MeterHolder },
    /// The meter had a holder and now has none (or was deleted).
    Unassigned { meter_id: String, from: MeterHolder },
    /// The meter moved to another account or customer.
    Reassigned {
        meter_id: String,
        from: MeterHolder,
        to: MeterHolder,
    },
}

impl MeterAssignment {
    pub fn meter_id(&self) -> &str {
        match self {
            MeterAssignment::Assigned { meter_id, .. }
            | MeterAssignment::Unassigned { meter_id, .. }
            | MeterAssignment::Reassigned { meter_id, .. } => meter_id,
        }
    }
}

/// The assignment change between two versions of one meter's row (`None` before it was created,
/// `None` after it was deleted); `None` when whom it is assigned to did not change — an edit of
/// its village or status is no assignment change, nor is re-spelling `0045mak` as `0045MAK`.
pub fn assignment_change(
    before: Option<&MeterRecord>,
    after: Option<&MeterRecord>,
) -> Option<MeterAssignment> {
    let meter_id = after.or(before)?.meter_id.clone();
    match (
        before.and_then(MeterRecord::holder),
        after.and_then(MeterRecord::holder),
    ) {
        (None, None) => None,
        (None, Some(to)) => Some(MeterAssignment::Assigned { meter_id, to }),
        (Some(from), None) => Some(MeterAssignment::Unassigned { meter_id, from }),
        (Some(from), Some(to)) if from == to => None,
        (Some(from), Some(to)) => Some(MeterAssignment::Reassigned { meter_id, from, to }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue::{Decimal as Dec, Int, Null, Text};
    use rust_decimal::Decimal;

    fn meter(account: Option<&str>, customer: Option<i64>) -> MeterRecord {
        let row = AcdbRow::new()
            .with("meterid", Text("SMRSD-26-00000045".into()))
            .with("accountnumber", account.map_or(Null, |a| Text(a.into())))
            .with("customer id", customer.map_or(Null, Int));
        MeterRecord::from_row(&row).unwrap()
    }

    #[test]
    fn a_meter_row_is_read_trimmed_and_typed() {
        let row = AcdbRow::new()
            .with("meterid", Text(" SMRSD-26-00000045 ".into()))
            .with("accountnumber", Text("0045mak".into()))
            .with("customer id", Text("45".into()))
            .with("customer type", Text(" HH ".into()))
            .with("community", Text("MAK".into()))
            .with("Village name", Text("Ha Makebe".into()))
            .with(
                "current status",
                Dec {
                    decimal: Decimal::ONE,
                },
            )
            .with("customer connect date", Text("2024-03-01 08:00:00".into()));
        let record = MeterRecord::from_row(&row).unwrap();
        assert_eq!(record.meter_id, "SMRSD-26-00000045");
        assert_eq!(record.raw_account.as_deref(), Some("0045mak"));
        assert_eq!(
            record.account.as_ref().map(AccountNumber::as_str),
            Some("0045MAK")
        );
        assert_eq!(record.customer_id, Some(45));
        assert_eq!(record.customer_type.as_deref(), Some("HH"));
        assert_eq!(record.village.as_deref(), Some("Ha Makebe"));
        assert_eq!(record.status, Some(1));
        assert_eq!(
            record.connect_date,
            Some("2024-03-01T08:00:00".parse().unwrap())
        );
    }

    #[test]
    fn a_row_without_a_meter_id_is_no_meter() {
        assert_eq!(
            MeterRecord::from_row(&AcdbRow::new().with("accountnumber", Text("0045MAK".into()))),
            None
        );
    }

    #[test]
    fn assignment_changes_are_named_by_what_happened_to_the_holder() {
        let unassigned = meter(None, None);
        let to_45 = meter(Some("0045MAK"), Some(45));
        let to_46 = meter(Some("0046MAK"), Some(46));
        let customer_only = meter(None, Some(45));

        let change = assignment_change(None, Some(&to_45)).unwrap();
        assert!(
            matches!(&change, MeterAssignment::Assigned { to, .. } if to.customer_id == Some(45))
        );
        assert_eq!(change.meter_id(), "SMRSD-26-00000045");
        assert!(matches!(
            assignment_change(Some(&unassigned), Some(&to_45)),
            Some(MeterAssignment::Assigned { .. })
        ));
        assert!(matches!(
            assignment_change(Some(&to_45), Some(&unassigned)),
            Some(MeterAssignment::Unassigned { .. })
        ));
        assert!(matches!(
            assignment_change(Some(&to_45), None),
            Some(MeterAssignment::Unassigned { .. })
        ));
        assert!(matches!(
            assignment_change(Some(&to_45), Some(&to_46)),
            Some(MeterAssignment::Reassigned { from, to, .. }) if from.customer_id == Some(45) && to.customer_id == Some(46)
        ));
        assert!(matches!(
            assignment_change(Some(&to_45), Some(&customer_only)),
            Some(MeterAssignment::Reassigned { .. })
        ));
    }

    #[test]
    fn edits_that_keep_the_holder_are_no_assignment_change() {
        let to_45 = meter(Some("0045MAK"), Some(45));
        let mut moved_village = to_45.clone();
        moved_village.village = Some("Elsewhere".into());
        assert_eq!(assignment_change(Some(&to_45), Some(&moved_village)), None);
        assert_eq!(
            assignment_change(Some(&meter(Some("0045mak"), Some(45))), Some(&to_45)),
            None
        );
        assert_eq!(
            assignment_change(Some(&meter(None, None)), Some(&meter(None, None))),
            None
        );
        assert_eq!(assignment_change(None, Some(&meter(None, None))), None);
        assert_eq!(assignment_change(None, None), None);
    }

    #[test]
    fn odd_account_texts_are_compared_as_written() {
        assert!(matches!(
            assignment_change(
                Some(&meter(Some("45MAK"), None)),
                Some(&meter(Some("46MAK"), None))
            ),
            Some(MeterAssignment::Reassigned { .. })
        ));
        assert_eq!(
            assignment_change(
                Some(&meter(Some("45MAK"), None)),
                Some(&meter(Some("45MAK"), None))
            ),
            None
        );
    }
}
