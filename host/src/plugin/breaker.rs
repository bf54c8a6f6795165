//! An agent's circuit breaker as its grants file sets it (the `[breaker]`
//! table; none by default, so an agent without one is never taken out of
//! rotation):
//!
//! ```toml
//! [breaker]
//! failures = 5        # attempts failed or timed out ...
//! within = "10m"      # ... within this long open the breaker
//! open_for = "5m"     # then it stays open this long, then lets one probe run
//! ```
//!
//! Durations are jiff's friendly format or ISO 8601, whole milliseconds,
//! at most [`MAX_BREAKER_SPAN`]; `failures` between 1 and
//! [`MAX_BREAKER_FAILURES`]. What the controller does with it is
//! `controller::breaker`'s.

use std::time::Duration;

use serde::Deserialize;

use crate::limits::{MAX_BREAKER_FAILURES, MAX_BREAKER_SPAN};

/// An agent's breaker settings, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerGrant {
    pub failures: u32,
    pub within: Duration,
    pub open_for: Duration,
}

/// The `[breaker]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BreakerFile {
    failures: u32,
    within: String,
    open_for: String,
}

impl BreakerFile {
    /// The settings, or which key is wrong and why.
    pub(super) fn check(&self) -> Result<BreakerGrant, (&'static str, String)> {
        if self.failures == 0 || self.failures > MAX_BREAKER_FAILURES {
            return Err((
                "breaker.failures",
                format!("must be between 1 and {MAX_BREAKER_FAILURES}"),
            ));
        }
        Ok(BreakerGrant {
            failures: self.failures,
            within: span("breaker.within", &self.within)?,
            open_for: span("breaker.open_for", &self.open_for)?,
        })
    }
}

/// A breaker's duration: positive, whole milliseconds, at most a day.
fn span(key: &'static str, text: &str) -> Result<Duration, (&'static str, String)> {
    let bad = |why: String| (key, why);
    let parsed: jiff::SignedDuration = text
        .parse()
        .map_err(|e: jiff::Error| bad(format!("{text:?} is not a duration: {e}")))?;
    let d = Duration::try_from(parsed).map_err(|_| bad("must not be negative".into()))?;
    if d.is_zero() || d > MAX_BREAKER_SPAN || d.subsec_nanos() % 1_000_000 != 0 {
        return Err(bad(format!(
            "must be a whole number of milliseconds between 1ms and {}s",
            MAX_BREAKER_SPAN.as_secs()
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(failures: u32, within: &str, open_for: &str) -> BreakerFile {
        BreakerFile {
            failures,
            within: within.into(),
            open_for: open_for.into(),
        }
    }

    #[test]
    fn reads_and_refuses_naming_the_key() {
        let ok = file(5, "10m", "5m").check().unwrap();
        assert_eq!(ok.within, Duration::from_secs(600));
        assert_eq!(ok.open_for, Duration::from_secs(300));
        assert_eq!(
            file(0, "1m", "1m").check().unwrap_err().0,
            "breaker.failures"
        );
        assert_eq!(
            file(1, "soon", "1m").check().unwrap_err().0,
            "breaker.within"
        );
        assert_eq!(
            file(1, "1m", "2d").check().unwrap_err().0,
            "breaker.open_for"
        );
        assert_eq!(file(1, "0s", "1m").check().unwrap_err().0, "breaker.within");
    }
}
