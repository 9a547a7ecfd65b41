//! The shared shape of ccare's exact quantities ([`crate::money::Money`], [`crate::energy::Kwh`]):
//! a `Decimal` newtype with arithmetic, exact sums and one rounding rule at the edge.

/// Defines an exact decimal quantity `$name` measured in `$unit`.
///
/// Every figure is kept exact while it is computed (sums never lose a digit, whatever the order
/// of the rows) and rounded once, when it leaves ccare, with [`round_dp`](#method.round_dp).
macro_rules! decimal_quantity {
    ($(#[$meta:meta])* $name:ident, $unit:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(#[serde(with = "rust_decimal::serde::str")] rust_decimal::Decimal);

        impl $name {
            #[doc = concat!("Zero ", $unit, ".")]
            pub const ZERO: $name = $name(rust_decimal::Decimal::ZERO);

            #[doc = concat!("An amount of ", $unit, ", kept exactly as given (scale included).")]
            pub const fn from_decimal(amount: rust_decimal::Decimal) -> Self {
                $name(amount)
            }

            #[doc = concat!("The exact amount in ", $unit, ".")]
            pub const fn amount(self) -> rust_decimal::Decimal {
                self.0
            }

            /// The amount rounded to `dp` decimals, half to even (banker's rounding, as Python's
            /// `round` does). ccare rounds once, here, at the edge; the legacy code rounded binary
            /// doubles, so a value such as 2.675 (stored by a double as 2.67499…) came out 2.67
            /// there and comes out 2.68 here. Such cents are the documented differences.
            pub fn round_dp(self, dp: u32) -> rust_decimal::Decimal {
                self.0.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointNearestEven)
            }

            /// The amount shared equally among `count` (a per-customer or per-day average);
            /// `None` when `count` is zero. The quotient keeps Decimal's 28 significant digits.
            pub fn average_over(self, count: u64) -> Option<Self> {
                if count == 0 {
                    return None;
                }
                self.0.checked_div(rust_decimal::Decimal::from(count)).map($name)
            }

            /// True for an amount above zero.
            pub fn is_positive(self) -> bool {
                self.0 > rust_decimal::Decimal::ZERO
            }

            /// True for exactly zero (of any scale: `0.00` is zero).
            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }

            /// The absolute amount.
            pub fn abs(self) -> Self {
                $name(self.0.abs())
            }

            #[doc = concat!("The exact number held by an ACDB cell, as ", $unit, " (see `AcdbValue::as_decimal`).")]
            pub fn from_value(value: &crate::acdb::AcdbValue) -> Option<Self> {
                value.as_decimal().map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = rust_decimal::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse::<rust_decimal::Decimal>().map($name)
            }
        }

        impl From<rust_decimal::Decimal> for $name {
            fn from(amount: rust_decimal::Decimal) -> Self {
                $name(amount)
            }
        }

        impl std::ops::Add for $name {
            type Output = $name;
            fn add(self, rhs: $name) -> $name {
                $name(self.0 + rhs.0)
            }
        }

        impl std::ops::Sub for $name {
            type Output = $name;
            fn sub(self, rhs: $name) -> $name {
                $name(self.0 - rhs.0)
            }
        }

        impl std::ops::Neg for $name {
            type Output = $name;
            fn neg(self) -> $name {
                $name(-self.0)
            }
        }

        impl std::ops::AddAssign for $name {
            fn add_assign(&mut self, rhs: $name) {
                self.0 += rhs.0;
            }
        }

        impl std::ops::SubAssign for $name {
            fn sub_assign(&mut self, rhs: $name) {
                self.0 -= rhs.0;
            }
        }

        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = $name>>(iter: I) -> $name {
                iter.fold($name::ZERO, |acc, x| acc + x)
            }
        }

        impl<'a> std::iter::Sum<&'a $name> for $name {
            fn sum<I: Iterator<Item = &'a $name>>(iter: I) -> $name {
                iter.fold($name::ZERO, |acc, x| acc + *x)
            }
        }
    };
}

pub(crate) use decimal_quantity;
