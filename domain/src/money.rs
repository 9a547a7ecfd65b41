//! Money in maloti (LSL), exact.
//!
//! The ACDB keeps amounts as Access numbers and the legacy code summed them as binary doubles;
//! ccare reads them as exact decimals, sums them without loss and rounds once, at the edge, to the
//! legacy's number of decimals (see [`Money::round_dp`]).

use crate::energy::Kwh;
use crate::quantity::decimal_quantity;

decimal_quantity!(
    /// An amount of money in Lesotho loti (LSL), exact. Serialised as a decimal string (`"12.50"`).
    Money,
    "LSL"
);

decimal_quantity!(
    /// A tariff: LSL per kWh, exact. Serialised as a decimal string (`"5.50"`).
    Rate,
    "LSL per kWh"
);

impl std::ops::Mul<Kwh> for Rate {
    type Output = Money;
    /// The price of `energy` at this rate.
    fn mul(self, energy: Kwh) -> Money {
        Money::from_decimal(self.amount() * energy.amount())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acdb::AcdbValue;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn lsl(s: &str) -> Money {
        Money::from_str(s).unwrap()
    }

    #[test]
    fn a_sum_of_tenths_is_exact_where_binary_doubles_drift() {
        let total: Money = std::iter::repeat_n(lsl("0.1"), 10).sum();
        assert_eq!(total, lsl("1"));
        assert_eq!(total.amount(), Decimal::from_str("1.0").unwrap());
    }

    #[test]
    fn rounding_at_the_edge_is_half_to_even() {
        let cases = [
            ("2.675", 2, "2.68"),
            ("2.665", 2, "2.66"),
            ("0.125", 2, "0.12"),
            ("-1.005", 2, "-1.00"),
            ("7.5", 0, "8"),
            ("8.5", 0, "8"),
        ];
        for (amount, dp, expected) in cases {
            assert_eq!(
                lsl(amount).round_dp(dp),
                Decimal::from_str(expected).unwrap(),
                "{amount} to {dp}"
            );
        }
    }

    #[test]
    fn arithmetic_keeps_every_digit_and_negatives() {
        let mut balance = lsl("100.00");
        balance -= lsl("30.25");
        balance += -lsl("0.75");
        assert_eq!(balance, lsl("69"));
        assert_eq!(lsl("5") - lsl("7.5"), lsl("-2.5"));
        assert!(lsl("-2.5").abs().is_positive());
        assert!(lsl("0.00").is_zero());
        let refs = [lsl("1.1"), lsl("2.2")];
        assert_eq!(refs.iter().sum::<Money>(), lsl("3.3"));
    }

    #[test]
    fn an_average_over_no_customers_is_absent_rather_than_a_division_by_zero() {
        assert_eq!(lsl("100").average_over(0), None);
        assert_eq!(
            lsl("100").average_over(3).unwrap().round_dp(2),
            Decimal::from_str("33.33").unwrap()
        );
    }

    #[test]
    fn money_travels_as_a_decimal_string_and_refuses_json_floats() {
        let json = serde_json::to_string(&lsl("12.50")).unwrap();
        assert_eq!(json, r#""12.50""#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), lsl("12.50"));
        assert!(serde_json::from_str::<Money>("12.5").is_err());
    }

    #[test]
    fn a_rate_times_energy_is_money() {
        let rate = Rate::from_str("5.50").unwrap();
        let energy = Kwh::from_str("12.4").unwrap();
        assert_eq!(rate * energy, lsl("68.2"));
    }

    #[test]
    fn amounts_read_from_acdb_cells_are_exact() {
        let cell = AcdbValue::Decimal {
            decimal: Decimal::from_str("19.99").unwrap(),
        };
        assert_eq!(Money::from_value(&cell), Some(lsl("19.99")));
        assert_eq!(Money::from_value(&AcdbValue::Int(20)), Some(lsl("20")));
        assert_eq!(Money::from_value(&AcdbValue::Null), None);
    }
}
