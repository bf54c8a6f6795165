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
//! - per **trigger**: the filings a trigger fired (their first runway's
//!   `fired_by`), so what their delegated and handed-off runways spent
//!   counts too, as it does for the filing.
//!
//! The sums are rebuilt at start from the trail: per filing and per
//! trigger from the runways the journal folded (a runway's filing and
//! trigger never change), per agent from the STARTED and COST records
//! themselves, each charged to the agent it names (a routed runway's
//! retries may fly as another agent). Nothing here is kept anywhere but
//! the trail, so every door's sums survive a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use runway_audit::{Entry, Event};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// What runs spent, as the doors show it (a runway's own cost and its
/// filing's, an agent's, a trigger's): attempts taken off, fuel burnt,
/// run time (take-off to landing, summed) and bytes committed (keys and
/// values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpentView {
    pub fuel: u64,
    pub wall_ms: u64,
    pub runs: u64,
    pub bytes: u64,
}

impl From<Spent> for SpentView {
    fn from(s: Spent) -> SpentView {
        SpentView {
            fuel: s.fuel,
            wall_ms: s.wall_us / 1000,
            runs: s.runs,
            bytes: s.bytes,
        }
    }
}

/// What record `entry` adds to its agent's sum: one run for a STARTED,
/// its cost for a COST (none for any other, or for a host record).
pub fn of_record(entry: &Entry) -> Option<Spent> {
    if entry.runway.is_empty() {
        return None;
    }
    match entry.event {
        Event::Started { .. } => Some(Spent::one_run()),
        Event::Cost {
            fuel,
            wall_us,
            bytes,
            ..
        } => Some(Spent::landed(fuel, wall_us, bytes)),
        _ => None,
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
    /// The trigger that fired the filing, if one did.
    pub trigger: Option<String>,
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
    /// Trigger id → what the runways it fired spent, and how many it
    /// filed.
    pub triggers: HashMap<String, (u64, Spent)>,
    /// Filings whose budget is spent and whose waiting runways were ended.
    pub exhausted: std::collections::HashSet<usize>,
}

impl Ledger {
    /// The account of filing `filing` (opened with `budget` the first
    /// time).
    /// The account of the filing whose first runway is at `filing` and
    /// has `manifest`.
    pub fn open(&mut self, filing: usize, manifest: &Manifest) -> Account {
        self.filings
            .entry(filing)
            .or_insert_with(|| Account {
                filing,
                budget: manifest.budget,
                trigger: trigger_of(manifest).map(str::to_string),
                spent: Arc::default(),
            })
            .clone()
    }

    /// A runway of `manifest` is enrolled: one more filed by its trigger.
    pub fn enrolled(&mut self, manifest: &Manifest) {
        if let Some(trigger) = trigger_of(manifest) {
            entry(&mut self.triggers, trigger).0 += 1;
        }
    }

    /// Charges `cost` to `account`'s filing and its trigger, and to
    /// `agent`.
    pub fn charge(&mut self, account: &Account, agent: &str, cost: &Spent) {
        self.restored(account, cost);
        entry(&mut self.agents, agent).add(cost);
    }

    /// Charges what a restored runway's attempts cost to its filing and
    /// the filing's trigger (its agents' sums come from the records:
    /// [`of_record`]).
    pub fn restored(&mut self, account: &Account, cost: &Spent) {
        account
            .spent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(cost);
        if let Some(trigger) = &account.trigger {
            entry(&mut self.triggers, trigger).1.add(cost);
        }
    }

    /// What `agent`'s runs spent.
    pub fn agent(&self, agent: &str) -> Spent {
        self.agents.get(agent).copied().unwrap_or_default()
    }

    /// How many runways trigger `id` filed, and what their runs spent.
    pub fn trigger(&self, id: &str) -> (u64, Spent) {
        self.triggers.get(id).copied().unwrap_or_default()
    }
}

/// `sums[key]`, made the first time (the key copied only then).
fn entry<'a, T: Default>(sums: &'a mut HashMap<String, T>, key: &str) -> &'a mut T {
    if !sums.contains_key(key) {
        sums.insert(key.to_string(), T::default());
    }
    sums.get_mut(key).expect("just made")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_per_filing_agent_and_trigger() {
        let mut ledger = Ledger::default();
        let plain = Manifest {
            agent: "bench".into(),
            ..Manifest::default()
        };
        let unfired = ledger.open(1, &plain);
        ledger.charge(&unfired, "bench", &Spent::one_run());
        let mut fired = plain.clone();
        fired.fired_by = Some(super::super::trigger::FiredBy {
            trigger: "nightly".into(),
            key: "2026-12-07T06:00:00Z".into(),
            runway: "import".into(),
            depth: 1,
        });
        let account = ledger.open(0, &fired);
        // The firing's runway, and a child of it (its manifest names no
        // trigger; its filing's account does).
        ledger.charge(&account, "bench", &Spent::landed(10, 20, 30));
        ledger.charge(&account, "child", &Spent::landed(5, 0, 0));
        let again = ledger.open(0, &plain);
        let want = Spent {
            runs: 0,
            fuel: 15,
            wall_us: 20,
            bytes: 30,
        };
        assert_eq!(again.spent(), want);
        assert_eq!(unfired.spent(), Spent::one_run());
        assert_eq!(ledger.agent("bench").fuel, 10);
        assert_eq!(ledger.agent("child").fuel, 5);
        assert_eq!(ledger.trigger("nightly"), (0, want));
        ledger.enrolled(&fired);
        assert_eq!(ledger.trigger("nightly").0, 1);
        // A restored runway's cost is its filing's and its trigger's; its
        // agent's comes from the records.
        ledger.restored(&account, &Spent::landed(1, 0, 0));
        assert_eq!(ledger.agent("bench").fuel, 10);
        assert_eq!(ledger.trigger("nightly").1.fuel, 16);
        assert_eq!(account.spent().fuel, 16);
    }
}
