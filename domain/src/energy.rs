//! Energy in kWh, exact: credited by a purchase, consumed, or left on a meter.

use crate::quantity::decimal_quantity;

decimal_quantity!(
    /// An amount of energy in kilowatt-hours, exact (the ACDB's decimal digits are all kept).
    /// Serialised as a decimal string (`"12.4"`).
    Kwh,
    "kWh"
);

impl Kwh {
    /// The amount in MWh (the legacy site summary reports `kwh / 1000`), exact.
    pub fn to_mwh(self) -> rust_decimal::Decimal {
        self.amount() / rust_decimal::Decimal::ONE_THOUSAND
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn kwh(s: &str) -> Kwh {
        Kwh::from_str(s).unwrap()
    }

    #[test]
    fn consumption_sums_exactly_and_rounds_half_to_even_at_the_edge() {
        let total: Kwh = [kwh("0.1"), kwh("0.2"), kwh("-0.05")].into_iter().sum();
        assert_eq!(total, kwh("0.25"));
        assert_eq!(total.round_dp(1), Decimal::from_str("0.2").unwrap());
    }

    #[test]
    fn megawatt_hours_are_thousands_of_kilowatt_hours() {
        assert_eq!(kwh("1234.5").to_mwh(), Decimal::from_str("1.2345").unwrap());
    }

    #[test]
    fn energy_travels_as_a_decimal_string() {
        assert_eq!(serde_json::to_string(&kwh("3.10")).unwrap(), r#""3.10""#);
        assert_eq!(
            serde_json::from_str::<Kwh>(r#""3.10""#).unwrap(),
            kwh("3.1")
        );
    }
}
