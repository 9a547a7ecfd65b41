//! A customer (`tblcustomer`).

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::descriptive;
use crate::acdb::AcdbRow;
use crate::dates::parse_legacy_datetime;
use crate::phone::PhoneNumber;
use crate::site::SiteCode;

/// The columns this record reads (an update touching none of them changes nothing here).
pub const COLUMNS: &[&str] = &[
    "CUSTOMER ID",
    "FIRST NAME",
    "MIDDLE NAME",
    "LAST NAME",
    "PHONE",
    "CELL PHONE 1",
    "CELL PHONE 2",
    "EMAIL",
    "PLOT NUMBER",
    "STREET ADDRESS",
    "CITY",
    "DISTRICT",
    "Concession name",
    "DATE SERVICE CONNECTED",
    "DATE SERVICE TERMINATED",
    "ID NUMBER",
    "CUSTOMER POSITION",
    "GENDER",
    "COUNTRY",
];

/// A customer as its `tblcustomer` row describes them. Text is trimmed; blank text, NULL and
/// the legacy's literal "None" are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub customer_id: i64,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    /// `PHONE`, `CELL PHONE 1`, `CELL PHONE 2` in that order, normalised to E.164, each number
    /// once; values that are no phone number are left out.
    pub phones: Vec<PhoneNumber>,
    pub email: Option<String>,
    pub plot_number: Option<String>,
    pub street_address: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    /// `Concession name` as written (trimmed): it holds the site code.
    pub concession: Option<String>,
    /// The site the concession names (see `SiteCode::from_concession`).
    pub site: Option<SiteCode>,
    pub date_connected: Option<NaiveDateTime>,
    pub date_terminated: Option<NaiveDateTime>,
    /// Whether `DATE SERVICE TERMINATED` holds anything. Blank after trimming means active,
    /// everywhere (the intent of legacy bug B3, where one figure counted `' '` as terminated
    /// and another did not). A value that is not a date still means terminated.
    pub terminated: bool,
    pub id_number: Option<String>,
    /// `CUSTOMER POSITION`: the customer type code (HH, SME, CHU, SCP, SCH, GOV, COM, IND).
    pub customer_type: Option<String>,
    pub gender: Option<String>,
    pub country: Option<String>,
}

impl CustomerRecord {
    /// Reads a `tblcustomer` row; `None` only when it has no whole-number `CUSTOMER ID`.
    pub fn from_row(row: &AcdbRow) -> Option<Self> {
        let customer_id = row.get("CUSTOMER ID").as_i64()?;
        let mut phones: Vec<PhoneNumber> = Vec::with_capacity(3);
        for column in ["PHONE", "CELL PHONE 1", "CELL PHONE 2"] {
            if let Some(phone) = PhoneNumber::from_value(row.get(column)) {
                if !phones.contains(&phone) {
                    phones.push(phone);
                }
            }
        }
        let concession = descriptive(row, "Concession name");
        let terminated_cell = row.get("DATE SERVICE TERMINATED");
        Some(CustomerRecord {
            customer_id,
            first_name: descriptive(row, "FIRST NAME"),
            middle_name: descriptive(row, "MIDDLE NAME"),
            last_name: descriptive(row, "LAST NAME"),
            phones,
            email: descriptive(row, "EMAIL"),
            plot_number: descriptive(row, "PLOT NUMBER"),
            street_address: descriptive(row, "STREET ADDRESS"),
            city: descriptive(row, "CITY"),
            district: descriptive(row, "DISTRICT"),
            site: concession.as_deref().and_then(SiteCode::from_concession),
            concession,
            date_connected: parse_legacy_datetime(row.get("DATE SERVICE CONNECTED")),
            date_terminated: parse_legacy_datetime(terminated_cell),
            terminated: descriptive(row, "DATE SERVICE TERMINATED").is_some(),
            id_number: descriptive(row, "ID NUMBER"),
            customer_type: descriptive(row, "CUSTOMER POSITION"),
            gender: descriptive(row, "GENDER"),
            country: descriptive(row, "COUNTRY"),
        })
    }

    /// First, middle and last name, those present, joined by single spaces (empty if none).
    pub fn full_name(&self) -> String {
        [&self.first_name, &self.middle_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue::{self, DateTime, Int, Null, Text};

    fn text(s: &str) -> AcdbValue {
        Text(s.into())
    }

    fn base() -> AcdbRow {
        AcdbRow::new().with("CUSTOMER ID", Int(45))
    }

    #[test]
    fn a_full_row_is_read_trimmed_and_typed() {
        let connected = "2024-03-01T09:00:00".parse().unwrap();
        let row = base()
            .with("FIRST NAME", text(" Mpho "))
            .with("MIDDLE NAME", Null)
            .with("LAST NAME", text("Mokoena"))
            .with("PHONE", Int(58123456))
            .with("CELL PHONE 1", text("+266 5812 3456"))
            .with("CELL PHONE 2", text("27821234567"))
            .with("EMAIL", text("mpho@example.org"))
            .with("PLOT NUMBER", text("MAK 0045 HH"))
            .with("STREET ADDRESS", text(""))
            .with("CITY", text("Maseru"))
            .with("DISTRICT", text("Maseru"))
            .with("Concession name", text(" mak "))
            .with(
                "DATE SERVICE CONNECTED",
                DateTime {
                    datetime: connected,
                },
            )
            .with("DATE SERVICE TERMINATED", Null)
            .with("ID NUMBER", text("012345678"))
            .with("CUSTOMER POSITION", text("HH"))
            .with("GENDER", text("Female"))
            .with("COUNTRY", text("Lesotho"));
        let customer = CustomerRecord::from_row(&row).unwrap();
        assert_eq!(customer.customer_id, 45);
        assert_eq!(customer.full_name(), "Mpho Mokoena");
        assert_eq!(customer.middle_name, None);
        let phones: Vec<&str> = customer.phones.iter().map(PhoneNumber::as_str).collect();
        assert_eq!(phones, ["+26658123456", "+27821234567"]);
        assert_eq!(customer.street_address, None);
        assert_eq!(customer.concession.as_deref(), Some("mak"));
        assert_eq!(customer.site.as_ref().map(SiteCode::as_str), Some("MAK"));
        assert_eq!(customer.date_connected, Some(connected));
        assert!(!customer.terminated);
        assert_eq!(customer.customer_type.as_deref(), Some("HH"));
        assert_eq!(customer.plot_number.as_deref(), Some("MAK 0045 HH"));
    }

    #[test]
    fn a_row_without_a_customer_id_is_no_customer() {
        assert_eq!(
            CustomerRecord::from_row(&AcdbRow::new().with("FIRST NAME", text("Mpho"))),
            None
        );
        assert_eq!(
            CustomerRecord::from_row(&AcdbRow::new().with("CUSTOMER ID", text("abc"))),
            None
        );
        assert_eq!(
            CustomerRecord::from_row(&AcdbRow::new().with("CUSTOMER ID", text(" 12 ")))
                .unwrap()
                .customer_id,
            12
        );
    }

    #[test]
    fn null_never_becomes_the_string_none() {
        let row = base()
            .with("FIRST NAME", text("None"))
            .with("LAST NAME", Null)
            .with("Concession name", text("NONE"));
        let customer = CustomerRecord::from_row(&row).unwrap();
        assert_eq!(
            (customer.first_name, customer.last_name, customer.concession),
            (None, None, None)
        );
        assert_eq!(customer.site, None);
    }

    #[test]
    fn termination_follows_the_intent_blank_after_trimming_is_active() {
        let terminated_on = "2024-06-30T00:00:00".parse().unwrap();
        let cases = [
            (Null, false, None),
            (text(""), false, None),
            (text("   "), false, None),
            (text("None"), false, None),
            (
                DateTime {
                    datetime: terminated_on,
                },
                true,
                Some(terminated_on),
            ),
            (text("2024-06-30"), true, Some(terminated_on)),
            (text("left the village"), true, None),
        ];
        for (cell, terminated, date) in cases {
            let customer =
                CustomerRecord::from_row(&base().with("DATE SERVICE TERMINATED", cell.clone()))
                    .unwrap();
            assert_eq!(
                (customer.terminated, customer.date_terminated),
                (terminated, date),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn the_same_phone_written_three_ways_is_listed_once_and_junk_is_skipped() {
        let row = base()
            .with("PHONE", text("058123456"))
            .with("CELL PHONE 1", Int(26658123456))
            .with("CELL PHONE 2", text("123"));
        let customer = CustomerRecord::from_row(&row).unwrap();
        assert_eq!(
            customer.phones,
            vec![PhoneNumber::parse("58123456").unwrap()]
        );
    }

    #[test]
    fn a_connection_date_written_as_text_is_read_in_the_legacy_formats() {
        let row = base().with("DATE SERVICE CONNECTED", text("2025-01-15"));
        let customer = CustomerRecord::from_row(&row).unwrap();
        assert_eq!(
            customer.date_connected,
            Some("2025-01-15T00:00:00".parse().unwrap())
        );
        let row = base().with("DATE SERVICE CONNECTED", text("sometime"));
        assert_eq!(CustomerRecord::from_row(&row).unwrap().date_connected, None);
    }

    #[test]
    fn a_concession_holding_a_known_full_name_still_names_its_site() {
        let customer =
            CustomerRecord::from_row(&base().with("Concession name", text("Ha Makebe"))).unwrap();
        assert_eq!(customer.concession.as_deref(), Some("Ha Makebe"));
        assert_eq!(customer.site.unwrap().as_str(), "MAK");
    }

    #[test]
    fn column_names_match_whatever_case_the_driver_reports() {
        let row = AcdbRow::new()
            .with("customer id", Int(7))
            .with("first name", text("Lerato"));
        let customer = CustomerRecord::from_row(&row).unwrap();
        assert_eq!(
            (customer.customer_id, customer.full_name().as_str()),
            (7, "Lerato")
        );
    }
}
