//! A latency histogram in power-of-two buckets: recording costs a count and
//! an add, percentiles cost nothing to keep, and the buckets export as a
//! Prometheus histogram as they are. The audit writer keeps one of its
//! syncs; the host's controller one of its steps.

use std::time::Duration;

/// Buckets: `[2^k, 2^(k+1))` nanoseconds.
const BUCKETS: usize = 48;

/// Durations seen so far.
#[derive(Debug, Clone)]
pub struct Latency {
    pub count: u64,
    /// All of them added up.
    pub sum: Duration,
    buckets: [u64; BUCKETS],
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            count: 0,
            sum: Duration::ZERO,
            buckets: [0; BUCKETS],
        }
    }
}

impl Latency {
    pub fn record(&mut self, took: Duration) {
        self.count += 1;
        self.sum += took;
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let k = (63 - ns.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[k] += 1;
    }

    /// The duration below which a fraction `q` of them fall (the upper edge
    /// of its bucket, so at most twice the true value).
    pub fn quantile(&self, q: f64) -> Duration {
        let want = (q * self.count as f64).ceil() as u64;
        let mut seen = 0;
        for (k, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return upper(k);
            }
        }
        Duration::ZERO
    }

    /// `(upper bound, how many fell in its bucket)` for each bucket up to
    /// the last one used, as a Prometheus histogram is encoded.
    pub fn buckets(&self) -> Vec<(Duration, u64)> {
        let last = self.buckets.iter().rposition(|&n| n > 0).unwrap_or(0);
        self.buckets[..=last]
            .iter()
            .enumerate()
            .map(|(k, &n)| (upper(k), n))
            .collect()
    }
}

fn upper(k: usize) -> Duration {
    Duration::from_nanos(1u64 << (k + 1).min(63))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_bucket_counts_come_from_the_buckets() {
        let mut s = Latency::default();
        for _ in 0..99 {
            s.record(Duration::from_nanos(1_000));
        }
        s.record(Duration::from_millis(1));
        assert_eq!(s.count, 100);
        assert_eq!(s.quantile(0.5), Duration::from_nanos(1024));
        assert_eq!(s.quantile(0.99), Duration::from_nanos(1024));
        assert_eq!(s.quantile(1.0), Duration::from_nanos(1 << 20));
        let b = s.buckets();
        assert_eq!(b.len(), 20);
        assert_eq!(b[19], (Duration::from_nanos(1 << 20), 1));
        assert_eq!(b[9], (Duration::from_nanos(1024), 99));
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 100);
    }
}
