//! Login attempt limits, per account and per client address (legacy-system.md §4.1: the legacy
//! had none). Kept in memory: each API process limits what reaches it; the budget is small
//! enough that a few processes still make password guessing hopeless.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Attempts one account may take: a burst of this many, then one more every [`ACCOUNT_PERIOD`].
const ACCOUNT_BURST: u32 = 5;
const ACCOUNT_PERIOD: Duration = Duration::from_secs(60);
/// Attempts one address may take (an office behind one address logs in many people).
const ADDRESS_BURST: u32 = 30;
const ADDRESS_PERIOD: Duration = Duration::from_secs(10);

/// The login limits.
pub struct LoginLimiter {
    accounts: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter").finish_non_exhaustive()
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new()
    }
}

fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("the periods above are not zero")
        .allow_burst(NonZeroU32::new(burst).expect("the bursts above are not zero"))
}

impl LoginLimiter {
    pub fn new() -> Self {
        LoginLimiter {
            accounts: RateLimiter::keyed(quota(ACCOUNT_PERIOD, ACCOUNT_BURST)),
            addresses: RateLimiter::keyed(quota(ADDRESS_PERIOD, ADDRESS_BURST)),
        }
    }

    /// Counts one login attempt for `account` from `address`; 429 when either is over its limit.
    pub fn attempt(&self, account: &str, address: Option<IpAddr>) -> Result<(), ApiError> {
        let now = DefaultClock::default().now();
        let wait = |not_until: governor::NotUntil<_>| ApiError::TooManyRequests {
            retry_after_s: not_until.wait_time_from(now).as_secs().max(1),
        };
        if let Some(address) = address {
            self.addresses.check_key(&address).map_err(wait)?;
        }
        self.accounts
            .check_key(&account.trim().to_lowercase())
            .map_err(wait)?;
        // Forget keys whose budget is full again, so the maps do not grow with every name tried.
        if self.accounts.len() > 10_000 {
            self.accounts.retain_recent();
        }
        if self.addresses.len() > 10_000 {
            self.addresses.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_gets_a_burst_of_attempts_then_429() {
        let limiter = LoginLimiter::new();
        for _ in 0..ACCOUNT_BURST {
            limiter.attempt("00123", None).unwrap();
        }
        let refused = limiter.attempt("00123", None).unwrap_err();
        assert!(
            matches!(refused, ApiError::TooManyRequests { retry_after_s } if retry_after_s >= 1)
        );
        limiter.attempt("00124", None).unwrap();
    }

    #[test]
    fn one_address_trying_many_accounts_is_limited_too() {
        let limiter = LoginLimiter::new();
        let address: IpAddr = "10.0.0.7".parse().unwrap();
        for i in 0..ADDRESS_BURST {
            limiter.attempt(&format!("user{i}"), Some(address)).unwrap();
        }
        assert!(limiter.attempt("another", Some(address)).is_err());
        limiter
            .attempt("another", Some("10.0.0.8".parse().unwrap()))
            .unwrap();
    }
}
