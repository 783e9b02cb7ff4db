//! [`RetryPolicy`] and the arithmetic of waiting: `Retry-After` parsing and capped exponential backoff
//! with full jitter.

use std::time::Duration;

/// How a client retries throttled (429, 423) and failed (5xx, timeout, connection) requests.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Most attempts per call, the first included (0 is read as 1).
    pub max_attempts: u32,
    /// First backoff step for 5xx, timeouts and connection errors.
    pub base_delay: Duration,
    /// Largest backoff step.
    pub max_delay: Duration,
    /// Most time one call spends waiting between attempts, all waits together.
    pub max_total_wait: Duration,
    /// Wait used when a 429/423 has no usable `Retry-After` (missing, malformed, negative or huge).
    pub fallback_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_total_wait: Duration::from_secs(60),
            fallback_retry_after: Duration::from_secs(15),
        }
    }
}

/// `Retry-After` values above this are treated as nonsense and replaced by the fallback.
const MAX_RETRY_AFTER_SECS: u64 = 3600;

impl RetryPolicy {
    /// Attempts allowed per call (at least one).
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The wait a 429/423 asks for: its `Retry-After` in whole seconds when that is a plain
    /// non-negative integer of sane size, otherwise `fallback_retry_after`.
    ///
    /// Webex has been seen sending `Retry-After: rand(30),add(30)`; HTTP dates are not used by Webex
    /// and also get the fallback.
    pub(crate) fn retry_after(&self, header: Option<&[u8]>) -> Duration {
        header
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .map(str::trim)
            .filter(|value| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|value| value.parse::<u64>().ok())
            .filter(|secs| *secs <= MAX_RETRY_AFTER_SECS)
            .map(Duration::from_secs)
            .unwrap_or(self.fallback_retry_after)
    }

    /// The backoff before retry number `retry` (1 for the first retry): a uniformly random time
    /// between zero and `min(max_delay, base_delay × 2^(retry-1))` ("full jitter"), so that many
    /// clients failing together do not come back together.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            fallback_retry_after: Duration::from_secs(7),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn retry_after_integer_seconds() {
        let p = policy();
        assert_eq!(p.retry_after(Some(b"1")), Duration::from_secs(1));
        assert_eq!(p.retry_after(Some(b" 30 ")), Duration::from_secs(30));
        assert_eq!(p.retry_after(Some(b"0")), Duration::ZERO);
        assert_eq!(p.retry_after(Some(b"3600")), Duration::from_secs(3600));
    }

    #[test]
    fn retry_after_malformed_uses_fallback() {
        let p = policy();
        let fallback = Duration::from_secs(7);
        for raw in [
            &b"rand(30),add(30)"[..],
            b"-5",
            b"+5",
            b"1.5",
            b"",
            b"  ",
            b"3601",
            b"99999999999999999999999999",
            b"Wed, 21 Oct 2015 07:28:00 GMT",
            b"\xff\xfe",
            b"5 5",
        ] {
            assert_eq!(p.retry_after(Some(raw)), fallback, "{raw:?}");
        }
        assert_eq!(p.retry_after(None), fallback);
    }

    #[test]
    fn backoff_is_capped_and_grows() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(450),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            assert!(p.backoff(1) <= Duration::from_millis(100));
            assert!(p.backoff(2) <= Duration::from_millis(200));
            assert!(p.backoff(3) <= Duration::from_millis(400));
            assert!(p.backoff(4) <= Duration::from_millis(450));
            assert!(p.backoff(u32::MAX) <= Duration::from_millis(450));
        }
        // Full jitter spreads the waits: 200 draws are not all the same.
        let draws: std::collections::HashSet<_> = (0..200).map(|_| p.backoff(3)).collect();
        assert!(draws.len() > 10);
    }

    #[test]
    fn backoff_survives_extreme_policies() {
        let p = RetryPolicy {
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..RetryPolicy::default()
        };
        let _ = p.backoff(40);
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.backoff(3), Duration::ZERO);
        assert_eq!(
            RetryPolicy {
                max_attempts: 0,
                ..RetryPolicy::default()
            }
            .attempts(),
            1
        );
    }
}
