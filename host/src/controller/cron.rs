//! The times a schedule trigger fires at: a cron pattern (the `croner`
//! crate, five fields or six with seconds) in a time zone, and what is due
//! when the controller looks at a given moment after an earlier one.
//!
//! **Daylight-saving time.** Patterns are read in the wall clock of the
//! schedule's zone, and a time is fired at most once:
//! - a wall-clock time that does not exist (02:30 on spring-forward day,
//!   when clocks jump from 02:00 to 03:00) fires at the first moment after
//!   the gap that day (03:00) for a pattern with fixed hours and minutes;
//!   a pattern of steps or wildcards (`*/15 * * * *`) skips the times in
//!   the gap;
//! - a wall-clock time that happens twice (01:30 on fall-back day) fires
//!   once, at its first pass (01:30 before the clocks go back) for a fixed
//!   pattern; a stepped pattern fires at each instant it matches in both
//!   passes (each is another moment, with its own key).
//!
//! These are croner's rules (the Open Cron Pattern Specification's and
//! Vixie cron's). Times are walked forward only, from the last time the
//! schedule fired, so the choice between a repeated hour's passes is made
//! once, the same way on every start.
//!
//! **Catching up.** [`Cron::due`] gives the times to fire when the
//! controller looks at `now`, the last one it looked at (or fired) being
//! `after`: the newest time due is *on time* when it is at most
//! [`SCHEDULE_GRACE`] old, else it was missed (the host was down, or the
//! clock jumped). `latest` fires the newest time due, on time or not;
//! `all` fires every time due, oldest first, at most [`MAX_CATCH_UP`] of
//! them (the most recent); `none` fires only an on-time one.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_CATCH_UP, SCHEDULE_GRACE};

/// What a schedule does about the times it missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// One firing, for the most recent time missed.
    #[default]
    Latest,
    /// One firing per time missed (capped at [`MAX_CATCH_UP`]).
    All,
    /// None: only times fired on time.
    None,
}

/// A cron pattern in a time zone.
#[derive(Debug, Clone)]
pub struct Cron {
    pattern: croner::Cron,
    zone: TimeZone,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("schedule {pattern:?} is not a cron pattern: {why}")]
    Pattern { pattern: String, why: String },
    #[error("zone {0:?} is not a time zone this host knows")]
    Zone(String),
}

impl Cron {
    /// `pattern` in zone `zone` (an IANA name; the host's zone when
    /// `None`).
    pub fn parse(pattern: &str, zone: Option<&str>) -> Result<Cron, CronError> {
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| CronError::Pattern {
                pattern: pattern.to_string(),
                why: e.to_string(),
            })?;
        let zone = match zone {
            None => TimeZone::system(),
            Some(name) => TimeZone::get(name).map_err(|_| CronError::Zone(name.to_string()))?,
        };
        Ok(Cron {
            pattern: parsed,
            zone,
        })
    }

    /// The first time after `t` (strictly), if the pattern has one.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(self.zone.clone());
        let next = self.pattern.find_next_occurrence(&zoned, false).ok()?;
        Some(next.timestamp())
    }

    /// Up to `n` times after `t`, in order.
    pub fn upcoming(&self, t: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut times = Vec::with_capacity(n);
        let mut at = t;
        while times.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    times.push(next);
                    at = next;
                }
                None => break,
            }
        }
        times
    }

    /// The times to fire at `now` (see the module doc), oldest first; the
    /// last fired (or looked at) was `after`.
    pub fn due(&self, after: Timestamp, now: Timestamp, catch_up: CatchUp) -> Vec<Timestamp> {
        // After a long downtime, walk forward from a little before `now`
        // only: from the time MAX_CATCH_UP + 1 occurrences back.
        let mut start = after;
        let zoned = now.to_zoned(self.zone.clone());
        let back = self.pattern.iter_before(zoned).nth(MAX_CATCH_UP);
        if let Some(back) = back.map(|z| z.timestamp()).filter(|&b| b > after) {
            start = back;
        }
        let mut times = Vec::new();
        let mut at = start;
        while let Some(next) = self.next_after(at).filter(|&next| next <= now) {
            times.push(next);
            at = next;
        }
        let Some(&newest) = times.last() else {
            return times;
        };
        let late = now.duration_since(newest);
        let on_time = late <= jiff::SignedDuration::try_from(SCHEDULE_GRACE).unwrap_or_default();
        match catch_up {
            CatchUp::Latest => vec![newest],
            CatchUp::None if on_time => vec![newest],
            CatchUp::None => Vec::new(),
            CatchUp::All => {
                let skip = times.len().saturating_sub(MAX_CATCH_UP);
                times.split_off(skip)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn ny(pattern: &str) -> Cron {
        Cron::parse(pattern, Some("America/New_York")).unwrap()
    }

    #[test]
    fn a_nightly_fires_at_one_in_its_zone() {
        let cron = ny("0 1 * * *");
        // 2026-12-07 is in EST (UTC-5).
        let next = cron.next_after(at("2026-12-07T12:00:00Z")).unwrap();
        assert_eq!(next, at("2026-12-08T06:00:00Z"));
        let five = cron.upcoming(at("2026-12-07T12:00:00Z"), 5);
        assert_eq!(five.len(), 5);
        assert_eq!(five[4], at("2026-12-12T06:00:00Z"));
    }

    #[test]
    fn a_time_in_the_spring_gap_fires_once_just_after_it() {
        // 2027-03-14: New York jumps from 02:00 EST to 03:00 EDT.
        let cron = ny("30 2 * * *");
        let times = cron.upcoming(at("2027-03-13T12:00:00Z"), 3);
        // 03:00 EDT that day is 07:00 UTC; the days around it fire at 02:30.
        assert_eq!(
            times,
            vec![
                at("2027-03-14T07:00:00Z"),
                at("2027-03-15T06:30:00Z"),
                at("2027-03-16T06:30:00Z"),
            ]
        );
    }

    #[test]
    fn a_time_that_happens_twice_in_the_fall_fires_once_at_its_first_pass() {
        // 2026-11-01: New York goes back from 02:00 EDT to 01:00 EST.
        let cron = ny("30 1 * * *");
        let times = cron.upcoming(at("2026-10-31T12:00:00Z"), 2);
        // 01:30 EDT is 05:30 UTC; 01:30 EST (06:30 UTC) does not fire.
        assert_eq!(
            times,
            vec![at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z")]
        );
        // Looking at every minute of the repeated hour fires it once.
        let mut fired = Vec::new();
        let mut after = at("2026-11-01T04:00:00Z");
        let mut now = after;
        while now < at("2026-11-01T08:00:00Z") {
            now = now
                .checked_add(jiff::SignedDuration::from_secs(60))
                .unwrap();
            let due = cron.due(after, now, CatchUp::All);
            if let Some(&last) = due.last() {
                after = last;
            }
            fired.extend(due);
        }
        assert_eq!(fired, vec![at("2026-11-01T05:30:00Z")]);
    }

    #[test]
    fn catch_up_after_downtime_follows_the_policy() {
        let cron = ny("0 1 * * *");
        // Fired last on Dec 1; back up on Dec 5 at noon: Dec 2..5 missed.
        let after = at("2026-12-01T06:00:00Z");
        let now = at("2026-12-05T17:00:00Z");
        assert_eq!(
            cron.due(after, now, CatchUp::Latest),
            vec![at("2026-12-05T06:00:00Z")]
        );
        assert_eq!(cron.due(after, now, CatchUp::None), vec![]);
        let all = cron.due(after, now, CatchUp::All);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], at("2026-12-02T06:00:00Z"));
        // On time (within the grace), `none` fires too.
        let now = at("2026-12-05T06:00:30Z");
        assert_eq!(
            cron.due(after, now, CatchUp::None),
            vec![at("2026-12-05T06:00:00Z")]
        );
        // Nothing due twice.
        assert_eq!(
            cron.due(at("2026-12-05T06:00:00Z"), now, CatchUp::All),
            vec![]
        );
    }

    #[test]
    fn all_is_capped_to_the_most_recent() {
        let cron = Cron::parse("* * * * *", Some("UTC")).unwrap();
        let after = at("2026-12-01T00:00:00Z");
        let now = at("2026-12-02T00:00:00Z");
        let all = cron.due(after, now, CatchUp::All);
        assert_eq!(all.len(), MAX_CATCH_UP);
        assert_eq!(*all.last().unwrap(), now);
    }

    #[test]
    fn bad_patterns_and_zones_are_refused() {
        assert!(matches!(
            Cron::parse("0 25 * * *", None),
            Err(CronError::Pattern { .. })
        ));
        assert_eq!(
            Cron::parse("0 1 * * *", Some("Mars/Olympus")).unwrap_err(),
            CronError::Zone("Mars/Olympus".into())
        );
    }
}
