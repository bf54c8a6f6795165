//! Each agent's health as the controller measures it: attempts, how they
//! ended, run times, runs in the air and the last failure — what
//! routing picks by ([`super::routing`]), breakers count
//! ([`super::breaker`]) and `runway agents` shows.
//!
//! An attempt counts once it took off (STARTED) and when it ends
//! SUCCEEDED, FAILED or TIMED_OUT (a cancelled one counts in neither);
//! its run time is from take-off to its end, on the system clock (the
//! trail's time). Totals are since the trail began; the median and p95
//! run times and the window's success ratio are over each agent's last
//! [`FIGURES_WINDOW_RUNS`] attempts.
//!
//! After a restart the figures are folded again from the trail
//! ([`super::journal`] feeds [`Figures::took_off`] and [`Figures::ended`]
//! with each record's time), so they survive `kill -9`. What its runs
//! cost (fuel, wall time, bytes, and fuel per run from them) is the
//! controller's ledger's ([`super::cost`]), folded from the COST records
//! alike.

use std::collections::{BTreeMap, HashMap, VecDeque};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cost::{Spent, SpentView};
use crate::limits::{FIGURES_WINDOW_RUNS, MAX_BREAKER_FAILURES};

/// One attempt in an agent's window.
#[derive(Debug, Clone, Copy)]
struct Ran {
    ok: bool,
    ms: u64,
}

/// An agent's last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastFailure {
    pub runway: String,
    /// Why it failed (capped; escaped where a person reads it).
    pub reason: String,
    /// When, RFC 3339 to the millisecond (the system clock, the trail's).
    pub at: String,
}

/// One agent's figures.
#[derive(Debug, Clone, Default)]
pub struct AgentFigures {
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    window: VecDeque<Ran>,
    /// When its recent failures happened (the controller's clock live,
    /// the trail's when folded), newest last, as many as a breaker may
    /// count, since its breaker last closed.
    failures_at: VecDeque<Timestamp>,
    pub in_flight: u32,
    pub last_failure: Option<LastFailure>,
}

impl AgentFigures {
    /// Attempts in the window.
    pub fn window_runs(&self) -> u32 {
        self.window.len() as u32
    }

    /// Successes in the window.
    pub fn window_succeeded(&self) -> u32 {
        self.window.iter().filter(|r| r.ok).count() as u32
    }

    /// The window's success ratio (none without runs).
    pub fn window_ratio(&self) -> Option<f64> {
        let runs = self.window_runs();
        (runs > 0).then(|| f64::from(self.window_succeeded()) / f64::from(runs))
    }

    /// The `q`-quantile (0..=1, nearest rank) of the window's run times.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let mut ms: Vec<u64> = self.window.iter().map(|r| r.ms).collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_unstable();
        let rank = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
        Some(ms[rank - 1])
    }

    /// Failures at or after `since`.
    pub fn failures_since(&self, since: Timestamp) -> u32 {
        self.failures_at
            .iter()
            .rev()
            .take_while(|&&at| at >= since)
            .count() as u32
    }
}

/// One agent's health, as the doors show it (`GET /api/agents`, MCP
/// `list_agents`, `runway agents`, the page's agent badges): declared
/// once, here. Totals are since the trail began (folded again at each
/// start); p50/p95 over its last [`FIGURES_WINDOW_RUNS`] attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentHealth {
    pub agent: String,
    /// Attempts landed: succeeded, failed or timed out.
    pub runs: u64,
    pub succeeded: u64,
    /// Failed or timed out.
    pub failed: u64,
    /// `succeeded / runs`; null without runs.
    pub success_ratio: Option<f64>,
    /// Median and 95th percentile run time, in milliseconds.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Fuel burnt per attempt taken off (`spent.fuel / spent.runs`);
    /// null without runs.
    pub fuel_per_run: Option<u64>,
    /// What its attempts cost since the trail began: attempts taken off,
    /// fuel, wall time and bytes committed — the sum of its COST records.
    pub spent: SpentView,
    /// Runs in the air now.
    pub in_flight: u32,
    pub last_failure: Option<LastFailure>,
    /// `closed`, `open` or `half-open`.
    pub breaker: String,
    /// When an open breaker goes half-open, RFC 3339 to the millisecond.
    pub breaker_until: Option<String>,
}

impl AgentHealth {
    /// `agent`'s health from its figures, what its runs spent and its
    /// breaker's state.
    pub fn of(
        agent: &str,
        f: &AgentFigures,
        spent: Spent,
        breaker: &str,
        breaker_until: Option<Timestamp>,
    ) -> AgentHealth {
        AgentHealth {
            agent: agent.to_string(),
            runs: f.runs,
            succeeded: f.succeeded,
            failed: f.failed,
            success_ratio: (f.runs > 0).then(|| f.succeeded as f64 / f.runs as f64),
            p50_ms: f.quantile_ms(0.5),
            p95_ms: f.quantile_ms(0.95),
            fuel_per_run: spent.fuel.checked_div(spent.runs),
            spent: spent.into(),
            in_flight: f.in_flight,
            last_failure: f.last_failure.clone(),
            breaker: breaker.to_string(),
            breaker_until: breaker_until.map(|t| format!("{t:.3}")),
        }
    }
}

/// How an attempt ended, as the figures count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Succeeded,
    /// Failed or timed out.
    Failed,
    /// Cancelled: counted in neither.
    Cancelled,
}

/// Every agent's figures, and the attempts in the air.
#[derive(Debug, Default)]
pub struct Figures {
    agents: BTreeMap<String, AgentFigures>,
    /// Runway id → its agent and take-off time (Unix ns).
    flying: HashMap<String, (String, u64)>,
}

impl Figures {
    /// Runway `runway`'s attempt of `agent` took off at `at_ns`.
    pub fn took_off(&mut self, runway: &str, agent: &str, at_ns: u64) {
        if let Some((was, _)) = self
            .flying
            .insert(runway.to_string(), (agent.to_string(), at_ns))
        {
            self.agent(&was).in_flight -= 1;
        }
        self.agent(agent).in_flight += 1;
    }

    /// Runway `runway`'s attempt in the air ended at `at_ns` (system) /
    /// `at` (the controller's clock); `false` when none was in the air.
    /// Its agent is the one it took off with.
    pub fn ended(
        &mut self,
        runway: &str,
        how: Ended,
        reason: &str,
        at_ns: u64,
        at: Timestamp,
    ) -> Option<String> {
        let (agent, started) = self.flying.remove(runway)?;
        let f = self.agent(&agent);
        f.in_flight -= 1;
        let ms = at_ns.saturating_sub(started) / 1_000_000;
        let ok = match how {
            Ended::Cancelled => return Some(agent),
            Ended::Succeeded => true,
            Ended::Failed => false,
        };
        f.runs += 1;
        if ok {
            f.succeeded += 1;
        } else {
            f.failed += 1;
            f.failures_at.push_back(at);
            if f.failures_at.len() > MAX_BREAKER_FAILURES as usize {
                f.failures_at.pop_front();
            }
            f.last_failure = Some(LastFailure {
                runway: runway.to_string(),
                reason: crate::limits::cut(reason, crate::limits::MAX_REASON),
                at: format!(
                    "{:.3}",
                    Timestamp::from_nanosecond(i128::from(at_ns)).unwrap_or(at)
                ),
            });
        }
        f.window.push_back(Ran { ok, ms });
        if f.window.len() > FIGURES_WINDOW_RUNS {
            f.window.pop_front();
        }
        Some(agent)
    }

    /// `agent`'s breaker closed: its failures so far never count again.
    pub fn forgive(&mut self, agent: &str) {
        if let Some(f) = self.agents.get_mut(agent) {
            f.failures_at.clear();
        }
    }

    /// `agent`'s figures (empty when it never ran).
    pub fn of(&self, agent: &str) -> AgentFigures {
        self.agents.get(agent).cloned().unwrap_or_default()
    }

    /// Every agent that ever ran, by name.
    pub fn agents(&self) -> impl Iterator<Item = (&String, &AgentFigures)> {
        self.agents.iter()
    }

    fn agent(&mut self, agent: &str) -> &mut AgentFigures {
        self.agents.entry(agent.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_windows_and_quantiles() {
        let mut f = Figures::default();
        let t0 = Timestamp::UNIX_EPOCH;
        for (i, ms) in [10u64, 20, 30, 40].into_iter().enumerate() {
            let id = format!("r{i}");
            f.took_off(&id, "a", 0);
            assert_eq!(f.of("a").in_flight, 1);
            let how = if i == 3 {
                Ended::Failed
            } else {
                Ended::Succeeded
            };
            f.ended(&id, how, "boom", ms * 1_000_000, t0);
        }
        let a = f.of("a");
        assert_eq!((a.runs, a.succeeded, a.failed, a.in_flight), (4, 3, 1, 0));
        assert_eq!(a.quantile_ms(0.5), Some(20));
        assert_eq!(a.quantile_ms(0.95), Some(40));
        assert_eq!(a.window_ratio(), Some(0.75));
        assert_eq!(a.last_failure.unwrap().runway, "r3");
        // A cancelled attempt counts in neither.
        f.took_off("c", "a", 0);
        f.ended("c", Ended::Cancelled, "", 1, t0);
        assert_eq!(f.of("a").runs, 4);
        assert!(f.ended("never", Ended::Failed, "", 1, t0).is_none());
    }
}
