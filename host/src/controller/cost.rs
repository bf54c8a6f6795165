//! What runs cost, and the sums the controller keeps of it.
//!
//! Every attempt that lands has a COST record (fuel burnt, wall time from
//! take-off to landing, bytes its change set committed), written by the
//! landing stage right before the attempt's end record; a run counts from
//! its STARTED. A runway's own [`Spent`] is folded from those records (the
//! journal) or added as its runs land (live), and summed here:
//! - per **filing**: the runways a plan filed together (its PLAN record),
//!   with every runway delegated below them (a child counts toward its
//!   tree's root) and every runway taking over by a hand-off (toward the
//!   runway it took over from). A filing is named by the place of its
//!   first runway; its budget ([`super::budget`]) is held against its sum;
//! - per **agent**;
//! - per **trigger**: the runways a trigger fired (their manifest's
//!   `fired_by`).
//!
//! The sums are rebuilt at start from the runways the journal folded:
//! nothing here is kept anywhere but the trail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::budget::Budget;
use super::plan::Manifest;

/// What runs spent, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Run attempts taken off.
    pub runs: u64,
    /// Fuel burnt.
    pub fuel: u64,
    /// Wall time, take-off to landing, summed over the runs (µs).
    pub wall_us: u64,
    /// Keys and values committed.
    pub bytes: u64,
}

impl Spent {
    /// Adds `other` to this sum.
    pub fn add(&mut self, other: &Spent) {
        self.runs = self.runs.saturating_add(other.runs);
        self.fuel = self.fuel.saturating_add(other.fuel);
        self.wall_us = self.wall_us.saturating_add(other.wall_us);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    /// One landed attempt's cost (its run was counted at take-off).
    pub fn landed(fuel: u64, wall_us: u64, bytes: u64) -> Spent {
        Spent {
            runs: 0,
            fuel,
            wall_us,
            bytes,
        }
    }

    /// One run taken off.
    pub fn one_run() -> Spent {
        Spent {
            runs: 1,
            ..Spent::default()
        }
    }
}

/// Which trigger fired a runway, if one did.
pub fn trigger_of(manifest: &Manifest) -> Option<&str> {
    manifest.fired_by.as_ref().map(|f| f.trigger.as_str())
}

/// A runway's filing as its reports see it: the filing's budget and what
/// it has spent so far (shared with the controller's ledger).
#[derive(Debug, Clone)]
pub struct Account {
    /// The place of the filing's first runway.
    pub filing: usize,
    pub budget: Option<Budget>,
    pub spent: Arc<Mutex<Spent>>,
}

impl Account {
    /// What the filing has spent so far.
    pub fn spent(&self) -> Spent {
        *self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sums per filing, agent and trigger.
#[derive(Default)]
pub(super) struct Ledger {
    /// Runway place → the place of the first runway of the plan that filed
    /// it (for every runway a plan filed but its first), until it is
    /// enrolled.
    pub first: HashMap<usize, usize>,
    /// Filing (its first runway's place) → its account.
    pub filings: HashMap<usize, Account>,
    pub agents: HashMap<String, Spent>,
    pub triggers: HashMap<String, Spent>,
    /// Filings whose budget is spent and whose waiting runways were ended.
    pub exhausted: std::collections::HashSet<usize>,
}

impl Ledger {
    /// The account of filing `filing` (opened with `budget` the first
    /// time).
    pub fn open(&mut self, filing: usize, budget: Option<Budget>) -> Account {
        self.filings
            .entry(filing)
            .or_insert_with(|| Account {
                filing,
                budget,
                spent: Arc::default(),
            })
            .clone()
    }

    /// Charges `cost` to `account`'s filing, to `agent` and to the
    /// runway's trigger.
    pub fn charge(&mut self, account: &Account, manifest: &Manifest, cost: &Spent) {
        account
            .spent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(cost);
        add_to(&mut self.agents, &manifest.agent, cost);
        if let Some(trigger) = trigger_of(manifest) {
            add_to(&mut self.triggers, trigger, cost);
        }
    }
}

/// Adds `cost` to `sums[key]` (the key copied only the first time).
fn add_to(sums: &mut HashMap<String, Spent>, key: &str, cost: &Spent) {
    match sums.get_mut(key) {
        Some(sum) => sum.add(cost),
        None => drop(sums.insert(key.to_string(), *cost)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_per_filing_agent_and_trigger() {
        let mut ledger = Ledger::default();
        let account = ledger.open(0, None);
        let mut m = Manifest {
            agent: "bench".into(),
            ..Manifest::default()
        };
        ledger.charge(&account, &m, &Spent::one_run());
        m.fired_by = Some(super::super::trigger::FiredBy {
            trigger: "nightly".into(),
            key: "2026-12-07T06:00:00Z".into(),
            runway: "import".into(),
            depth: 1,
        });
        ledger.charge(&account, &m, &Spent::landed(10, 20, 30));
        let again = ledger.open(0, None);
        let want = Spent {
            runs: 1,
            fuel: 10,
            wall_us: 20,
            bytes: 30,
        };
        assert_eq!(again.spent(), want);
        assert_eq!(ledger.agents["bench"], want);
        assert_eq!(ledger.triggers["nightly"], Spent::landed(10, 20, 30));
    }
}
