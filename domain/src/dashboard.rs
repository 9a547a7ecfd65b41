//! The per-customer dashboard figures (legacy-system.md §3.12): balance, last payment, daily
//! average, estimated time to the next recharge, and the 7-day, 30-day and 12-month charts.
//!
//! The legacy had two implementations that disagreed (weakness 26); this is one, the one the
//! customer's own dashboard used: the latest balance is the most recent *recorded* one (a NULL
//! balance is not taken as 0). "Now" is Maseru local time, like the ledger's dates (the legacy
//! compared UTC "now" with local dates, weakness 25), and the 12 months are the 12 calendar months
//! ending with the current one (the legacy stepped back 30 days at a time and could repeat or skip
//! a month, weakness 24).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};
use rust_decimal::Decimal;

use crate::dates::Month;

/// One ledger row of the account, as the dashboard reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub at: Option<NaiveDateTime>,
    pub amount: Decimal,
    pub kwh: Decimal,
    pub balance: Option<Decimal>,
}

/// The most recent payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastPayment {
    pub amount: Decimal,
    pub date: NaiveDate,
    pub kwh: Decimal,
}

/// The dashboard, exact (rounded by whoever shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub balance_kwh: Decimal,
    pub last_payment: Option<LastPayment>,
    pub avg_kwh_per_day: Decimal,
    pub estimated_recharge_seconds: i64,
    pub total_kwh: Decimal,
    pub total_lsl: Decimal,
    pub daily_7d: Vec<(NaiveDate, Decimal)>,
    pub daily_30d: Vec<(NaiveDate, Decimal)>,
    pub monthly_12m: Vec<(Month, Decimal)>,
}

impl Dashboard {
    /// The dashboard of the account whose rows are `entries`, most recent first (dated rows by
    /// date, then undated ones), at `now` (Maseru local).
    pub fn compute(entries: &[LedgerEntry], now: NaiveDateTime) -> Dashboard {
        let today = now.date();
        let positive = |e: &&LedgerEntry| e.kwh > Decimal::ZERO;
        let since = |days: i64| now - TimeDelta::days(days);

        let mut daily: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
        for entry in entries.iter().filter(positive) {
            if let Some(at) = entry.at.filter(|at| *at >= since(30)) {
                *daily.entry(at.date()).or_insert(Decimal::ZERO) += entry.kwh;
            }
        }
        let days_with_data = Decimal::from(daily.len().max(1) as u64);
        let avg_kwh_per_day = daily.values().copied().sum::<Decimal>() / days_with_data;

        let balance_kwh = match entries.iter().find_map(|e| e.balance) {
            Some(latest) => latest.max(Decimal::ZERO),
            None => {
                let purchased: Decimal = entries
                    .iter()
                    .filter(|e| e.amount > Decimal::ZERO)
                    .map(|e| e.kwh)
                    .sum();
                let consumed: Decimal = entries
                    .iter()
                    .filter(|e| e.amount <= Decimal::ZERO)
                    .map(|e| e.kwh)
                    .sum();
                if consumed.is_zero() {
                    entries
                        .first()
                        .map_or(Decimal::ZERO, |e| e.kwh.max(Decimal::ZERO))
                } else {
                    (purchased - consumed.abs()).max(Decimal::ZERO)
                }
            }
        };
        let estimated_recharge_seconds =
            if balance_kwh > Decimal::ZERO && avg_kwh_per_day > Decimal::ZERO {
                use rust_decimal::prelude::ToPrimitive;
                (balance_kwh / avg_kwh_per_day * Decimal::from(86_400))
                    .trunc()
                    .to_i64()
                    .unwrap_or(i64::MAX)
            } else {
                0
            };

        let last_payment = entries.iter().find_map(|e| match e.at {
            Some(at) if e.amount > Decimal::ZERO => Some(LastPayment {
                amount: e.amount,
                date: at.date(),
                kwh: e.kwh,
            }),
            _ => None,
        });

        let window = |days: i64| -> Vec<(NaiveDate, Decimal)> {
            (0..days)
                .rev()
                .map(|i| {
                    let date = today - TimeDelta::days(i);
                    (date, daily.get(&date).copied().unwrap_or(Decimal::ZERO))
                })
                .collect()
        };

        let mut monthly: BTreeMap<Month, Decimal> = BTreeMap::new();
        for entry in entries.iter().filter(positive) {
            if let Some(at) = entry.at.filter(|at| *at >= since(365)) {
                *monthly.entry(Month::of(at.date())).or_insert(Decimal::ZERO) += entry.kwh;
            }
        }
        let this_month =
            Month::of(NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today));
        let mut months = Vec::with_capacity(12);
        let mut month = this_month;
        for _ in 0..12 {
            months.push(month);
            month = month.previous();
        }
        months.reverse();

        Dashboard {
            balance_kwh,
            last_payment,
            avg_kwh_per_day,
            estimated_recharge_seconds,
            total_kwh: entries.iter().map(|e| e.kwh).sum(),
            total_lsl: entries.iter().map(|e| e.amount).sum(),
            daily_7d: window(7),
            daily_30d: window(30),
            monthly_12m: months
                .into_iter()
                .map(|m| (m, monthly.get(&m).copied().unwrap_or(Decimal::ZERO)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(s: &str) -> Option<NaiveDateTime> {
        Some(s.parse().unwrap())
    }

    fn entry(
        when: Option<NaiveDateTime>,
        amount: &str,
        kwh: &str,
        balance: Option<&str>,
    ) -> LedgerEntry {
        LedgerEntry {
            at: when,
            amount: d(amount),
            kwh: d(kwh),
            balance: balance.map(d),
        }
    }

    fn now() -> NaiveDateTime {
        "2026-03-15T12:00:00".parse().unwrap()
    }

    #[test]
    fn the_latest_recorded_balance_wins_and_a_null_one_is_not_zero() {
        let entries = [
            entry(at("2026-03-14T10:00:00"), "0", "2", None),
            entry(at("2026-03-10T10:00:00"), "50", "10", Some("8.5")),
            entry(at("2026-03-01T10:00:00"), "50", "10", Some("3")),
        ];
        let board = Dashboard::compute(&entries, now());
        assert_eq!(board.balance_kwh, d("8.5"));
        assert_eq!(
            board.last_payment,
            Some(LastPayment {
                amount: d("50"),
                date: "2026-03-10".parse().unwrap(),
                kwh: d("10")
            })
        );
    }

    #[test]
    fn without_recorded_balances_the_balance_is_purchased_minus_consumed() {
        let entries = [
            entry(at("2026-03-14T10:00:00"), "-1", "-4", None),
            entry(at("2026-03-10T10:00:00"), "50", "10", None),
        ];
        assert_eq!(Dashboard::compute(&entries, now()).balance_kwh, d("6"));
        let only_purchases = [entry(at("2026-03-10T10:00:00"), "50", "10", None)];
        assert_eq!(
            Dashboard::compute(&only_purchases, now()).balance_kwh,
            d("10")
        );
        assert_eq!(Dashboard::compute(&[], now()).balance_kwh, d("0"));
    }

    #[test]
    fn the_daily_average_is_over_days_with_data_and_drives_the_recharge_estimate() {
        let entries = [
            entry(at("2026-03-14T10:00:00"), "20", "4", Some("12")),
            entry(at("2026-03-14T18:00:00"), "10", "2", None),
            entry(at("2026-03-12T10:00:00"), "30", "6", None),
            entry(at("2026-01-01T10:00:00"), "30", "600", None),
        ];
        let board = Dashboard::compute(&entries, now());
        assert_eq!(board.avg_kwh_per_day, d("6"), "(4 + 2 + 6) kWh over 2 days");
        assert_eq!(
            board.estimated_recharge_seconds,
            2 * 86_400,
            "12 kWh at 6 a day"
        );
        assert_eq!(board.daily_7d.len(), 7);
        assert_eq!(board.daily_7d[6].0, "2026-03-15".parse().unwrap());
        assert_eq!(board.daily_7d[5].1, d("6"));
        assert_eq!(board.daily_30d.len(), 30);
        assert_eq!(board.total_kwh, d("612"));
        assert_eq!(board.total_lsl, d("90"));
    }

    #[test]
    fn the_twelve_months_are_calendar_months_ending_with_this_one() {
        let entries = [
            entry(at("2026-03-01T00:10:00"), "10", "1", None),
            entry(at("2025-04-20T10:00:00"), "10", "2", None),
            entry(at("2025-03-01T10:00:00"), "10", "9", None),
        ];
        let board = Dashboard::compute(&entries, now());
        let months: Vec<String> = board
            .monthly_12m
            .iter()
            .map(|(m, _)| m.to_string())
            .collect();
        assert_eq!(months.first().map(String::as_str), Some("2025-04"));
        assert_eq!(months.last().map(String::as_str), Some("2026-03"));
        assert_eq!(months.len(), 12);
        let mut unique = months.clone();
        unique.dedup();
        assert_eq!(unique.len(), 12, "no month repeated or skipped");
        assert_eq!(board.monthly_12m[11].1, d("1"));
        assert_eq!(board.monthly_12m[0].1, d("2"));
    }
}
