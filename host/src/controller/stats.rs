//! How busy the controller is: each step — one event handled (a clearance,
//! a landing, a request, a timer) and the settling it caused — is timed,
//! and the times kept in power-of-two buckets, so percentiles cost nothing
//! to keep. The step time is the controller's decision latency: how long an
//! event waits, at most, behind the one being handled.

use std::time::Duration;

/// Buckets: `[2^k, 2^(k+1))` nanoseconds.
const BUCKETS: usize = 48;

/// Step times so far.
#[derive(Debug, Clone)]
pub struct Stats {
    pub steps: u64,
    /// Time spent handling events, in all.
    pub busy: Duration,
    buckets: [u64; BUCKETS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            steps: 0,
            busy: Duration::ZERO,
            buckets: [0; BUCKETS],
        }
    }
}

impl Stats {
    pub(super) fn step(&mut self, took: Duration) {
        self.steps += 1;
        self.busy += took;
        let ns = took.as_nanos().max(1) as u64;
        let k = (63 - ns.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[k] += 1;
    }

    /// The step time below which a fraction `q` of steps fall (the upper
    /// edge of its bucket, so at most twice the true value).
    pub fn quantile(&self, q: f64) -> Duration {
        let want = (q * self.steps as f64).ceil() as u64;
        let mut seen = 0;
        for (k, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return Duration::from_nanos(1u64 << (k + 1).min(63));
            }
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut s = Stats::default();
        for _ in 0..99 {
            s.step(Duration::from_nanos(1_000));
        }
        s.step(Duration::from_millis(1));
        assert_eq!(s.steps, 100);
        assert_eq!(s.quantile(0.5), Duration::from_nanos(1024));
        assert_eq!(s.quantile(0.99), Duration::from_nanos(1024));
        assert_eq!(s.quantile(1.0), Duration::from_nanos(1 << 20));
    }
}
