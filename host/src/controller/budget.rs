//! A plan's budget: the `[budget]` table of a plan file, and when it is
//! spent.
//!
//! ```toml
//! [budget]
//! fuel = 1e12      # fuel its runs may burn, summed (an integer, or a float that is one)
//! wall = "2h"      # run time, summed over its runs (not the plan's elapsed time)
//! runs = 500       # run attempts taken off, retries included
//! ```
//!
//! Each key is optional; a table with none is refused. What counts is what
//! the plan's runs *cost* (see [`super::cost`]): every attempt of every
//! runway the plan filed, of every runway delegated below them (a child's
//! run counts toward its root's plan) and of every runway taking over by
//! a hand-off. `wall` is the sum of those runs' wall times (take-off to
//! landing), so runs flying side by side each count in full.
//!
//! A budget is checked before a runway takes off: once any of its figures
//! is reached — `runs` taken off, `fuel` burnt, `wall` run time used — the
//! plan's runways not yet cleared end BUDGET_EXHAUSTED with a reason naming
//! the figure and what was spent, and a retry does too. Runs already in the
//! air land (so fuel and wall may go past the budget by what they burn).
//!
//! The budget is kept durable on each of the plan's runways (a manifest
//! key, in its FILING record), so a restart holds the plan to it again.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::limits::MAX_BUDGET_WALL_SECS;

/// A plan's budget, as filed. `None` figures are not limited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Run time, summed over the plan's runs (whole milliseconds).
    #[serde(
        default,
        rename = "wall_ms",
        with = "wall_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub wall: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
}

/// Why a `[budget]` table was refused.
#[derive(Debug, Error)]
pub enum BudgetError {
    #[error("[budget] sets none of fuel, wall, runs")]
    Empty,
    #[error("[budget] {key} must be {bound}")]
    OutOfRange { key: &'static str, bound: String },
    #[error("[budget] wall {value:?} is not a duration ({reason}); e.g. \"90s\", \"2h\"")]
    BadWall { value: String, reason: String },
}

/// The `[budget]` table as written in a plan file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BudgetFile {
    fuel: Option<Number>,
    wall: Option<String>,
    runs: Option<u32>,
}

/// TOML writes `1e12` as a float: either is taken, if it is a whole
/// number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Float(f64),
}

impl BudgetFile {
    /// The budget it asks for, checked.
    pub fn check(self) -> Result<Budget, BudgetError> {
        let range = |key, bound: &str| BudgetError::OutOfRange {
            key,
            bound: bound.to_string(),
        };
        let fuel = match self.fuel {
            None => None,
            Some(Number::Int(n)) => Some(n),
            // Every whole f64 up to 2^64 converts exactly; `as` saturates.
            Some(Number::Float(f)) if f.is_finite() && f.fract() == 0.0 && f >= 0.0 => {
                if f >= u64::MAX as f64 {
                    return Err(range("fuel", "below 2^64"));
                }
                Some(f as u64)
            }
            Some(Number::Float(_)) => return Err(range("fuel", "a whole number")),
        };
        if fuel == Some(0) {
            return Err(range("fuel", "at least 1"));
        }
        if self.runs == Some(0) {
            return Err(range("runs", "at least 1"));
        }
        let wall = match &self.wall {
            None => None,
            Some(text) => {
                let bad = |reason: String| BudgetError::BadWall {
                    value: crate::limits::cut(text, 64),
                    reason,
                };
                let parsed: jiff::SignedDuration =
                    text.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
                let wall = Duration::try_from(parsed).map_err(|_| bad("it is negative".into()))?;
                if wall < Duration::from_millis(1)
                    || wall > Duration::from_secs(MAX_BUDGET_WALL_SECS)
                {
                    return Err(range("wall", "between 1ms and 366 days"));
                }
                // Kept whole milliseconds: what the trail keeps, exactly.
                Some(Duration::from_millis(wall.as_millis() as u64))
            }
        };
        if fuel.is_none() && wall.is_none() && self.runs.is_none() {
            return Err(BudgetError::Empty);
        }
        Ok(Budget {
            fuel,
            wall,
            runs: self.runs,
        })
    }
}

impl Budget {
    /// Why nothing more may take off against it once `runs` have taken
    /// off, burnt `fuel` and used `wall` run time: the first figure
    /// reached, named with what was spent.
    pub fn spent(&self, runs: u64, fuel: u64, used: Duration) -> Option<String> {
        if let Some(budget) = self.runs.filter(|&r| runs >= u64::from(r)) {
            return Some(format!(
                "plan budget runs = {budget} is spent: {runs} runs have taken off"
            ));
        }
        if let Some(budget) = self.fuel.filter(|&f| fuel >= f) {
            return Some(format!(
                "plan budget fuel = {budget} is spent: its runs burnt {fuel} fuel"
            ));
        }
        if let Some(wall) = self.wall.filter(|&w| used >= w) {
            return Some(format!(
                "plan budget wall = {:#} is spent: its runs took {:.3} s",
                jiff::SignedDuration::try_from(wall).unwrap_or_default(),
                used.as_secs_f64()
            ));
        }
        None
    }
}

/// `Option<Duration>` as whole milliseconds.
mod wall_ms {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.as_millis() as u64).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Budget, BudgetError> {
        #[derive(Deserialize)]
        struct Plan {
            budget: BudgetFile,
        }
        toml::from_str::<Plan>(text).unwrap().budget.check()
    }

    #[test]
    fn a_budget_reads_as_written() {
        let b = parse("[budget]\nfuel = 1e12\nwall = \"2h\"\nruns = 500\n").unwrap();
        assert_eq!(b.fuel, Some(1_000_000_000_000));
        assert_eq!(b.wall, Some(Duration::from_secs(7200)));
        assert_eq!(b.runs, Some(500));
        assert_eq!(parse("[budget]\nfuel = 70\n").unwrap().fuel, Some(70));
    }

    #[test]
    fn a_bad_budget_is_refused_naming_the_key() {
        for (text, says) in [
            ("[budget]\n", "none of fuel, wall, runs"),
            ("[budget]\nfuel = 1.5\n", "fuel must be a whole number"),
            ("[budget]\nfuel = -1.0\n", "fuel must be a whole number"),
            ("[budget]\nfuel = 1e30\n", "fuel must be below 2^64"),
            ("[budget]\nruns = 0\n", "runs must be at least 1"),
            (
                "[budget]\nwall = \"soon\"\n",
                "wall \"soon\" is not a duration",
            ),
            ("[budget]\nwall = \"0s\"\n", "wall must be between"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn a_budget_is_spent_at_its_first_figure_reached() {
        let b = Budget {
            fuel: Some(100),
            wall: Some(Duration::from_secs(1)),
            runs: Some(3),
        };
        let almost = Duration::from_micros(999_999);
        assert_eq!(b.spent(2, 99, almost), None);
        let why = b.spent(2, 100, almost).unwrap();
        assert_eq!(
            why,
            "plan budget fuel = 100 is spent: its runs burnt 100 fuel"
        );
        let why = b.spent(3, 100, almost).unwrap();
        assert!(why.contains("runs = 3 is spent: 3 runs"), "{why}");
        let why = b.spent(0, 0, Duration::from_secs(1)).unwrap();
        assert!(
            why.contains("wall = 1s is spent: its runs took 1.000 s"),
            "{why}"
        );
    }

    #[test]
    fn a_budget_keeps_its_figures_through_the_filing_record() {
        let b = Budget {
            fuel: Some(5),
            wall: Some(Duration::from_millis(1500)),
            runs: None,
        };
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#"{"fuel":5,"wall_ms":1500}"#);
        assert_eq!(serde_json::from_str::<Budget>(&json).unwrap(), b);
    }
}
