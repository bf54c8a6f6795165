//! Spending: each runway charged to its filing's account ([`super::cost`])
//! — one run as it takes off, its COST as it lands — and each filing held
//! to its budget ([`super::budget`]): a runway whose filing's budget is
//! spent does not take off but ends BUDGET_EXHAUSTED, and once a budget is
//! spent every runway of its filing not yet cleared (retries included)
//! ends so at once, with a reason naming the budget and what was spent.
//! Runs in the air land.
//!
//! A runway's filing is its plan's (the place of the plan's first
//! runway); a delegated runway's is its tree root's, a runway taking over
//! by a hand-off that of the runway it took over from. Every runway is
//! enrolled as it is added — filed, delegated, handed off to, or restored
//! (then with what its attempts cost so far, so the sums come back whole
//! after a restart).
//!
//! The same costs make the delegation trees' budgets (a root's grants'
//! `[delegate] tree_fuel`, `tree_wall_secs`, [`super::family::Budget`])
//! durable: at start, a root that has taken off gets its tree's budget
//! back — its fuel less what the COST records of the runways below it
//! say they burnt, its wall time counted from its first take-off (the
//! time of its first STARTED record).

use std::collections::HashMap;
use std::time::Duration;

use runway_audit::State;

use super::DispatchError;
use super::cost::Spent;
use super::dispatch::Dispatch;
use super::family::Budget;
use crate::sandbox::RunReport;

impl Dispatch {
    /// Opens runway `i`'s account (its filing's) and charges to it (and
    /// to the filing's trigger) what the runway has cost so far: something only
    /// when it is restored.
    pub(super) fn enroll(&mut self, i: usize) {
        let filing = self.filing_of(i);
        let account = self.costs.open(filing, &self.book.runways[filing].manifest);
        let r = &mut self.book.runways[i];
        self.costs.enrolled(&r.manifest);
        let cost = r.course.cost;
        if cost != Spent::default() {
            self.costs.restored(&account, &cost);
        }
        r.account = Some(account);
    }

    /// The place of the first runway of runway `i`'s filing (asked once,
    /// as it is enrolled).
    fn filing_of(&mut self, i: usize) -> usize {
        let plan = self.costs.first.remove(&i);
        let m = &self.book.runways[i].manifest;
        let from = match (&m.lineage, &m.handoff_from) {
            (Some(l), _) => Some(&l.root),
            (None, Some(from)) => Some(from),
            (None, None) => None,
        };
        let account = from
            .and_then(|id| self.book.index.get(id))
            .and_then(|&a| self.book.runways[a].account.as_ref());
        match account {
            Some(account) => account.filing,
            None => plan.unwrap_or(i),
        }
    }

    /// Why runway `i` may not take off, if its filing's budget is spent.
    pub(super) fn over_budget(&self, i: usize) -> Option<String> {
        let account = self.book.runways[i].account.as_ref()?;
        let budget = account.budget?;
        let spent = account.spent();
        let wall = Duration::from_micros(spent.wall_us);
        budget.spent(spent.runs, spent.fuel, wall)
    }

    /// Runway `i` took off: one run charged; a budget spent by it stops
    /// the rest of its filing.
    pub(super) fn charge_run(&mut self, i: usize) -> Result<(), DispatchError> {
        self.charge(i, &Spent::one_run());
        self.hold_to_budget(i)
    }

    /// Runway `i`'s run landed: its COST charged.
    pub(super) fn charge_landing(&mut self, i: usize, report: &RunReport) {
        let wall_us = u64::try_from(report.wall.as_micros()).unwrap_or(u64::MAX);
        let cost = Spent::landed(report.fuel_used, wall_us, report.bytes_written);
        self.charge(i, &cost);
    }

    fn charge(&mut self, i: usize, cost: &Spent) {
        let r = &mut self.book.runways[i];
        r.course.cost.add(cost);
        if let Some(account) = &r.account {
            self.costs.charge(account, &r.manifest.agent, cost);
        }
    }

    /// When runway `i`'s filing's budget is spent: the first time, every
    /// runway of the filing not yet cleared ends BUDGET_EXHAUSTED; after
    /// that, `i` itself does if it waits (a retry).
    pub(super) fn hold_to_budget(&mut self, i: usize) -> Result<(), DispatchError> {
        let Some(why) = self.over_budget(i) else {
            return Ok(());
        };
        let Some(filing) = self.book.runways[i].account.as_ref().map(|a| a.filing) else {
            return Ok(());
        };
        if self.costs.exhausted.insert(filing) {
            // A filing's runways all come after its first.
            for j in filing..self.book.runways.len() {
                let of = self.book.runways[j].account.as_ref().map(|a| a.filing);
                if of == Some(filing) {
                    self.exhaust(j, &why)?;
                }
            }
        } else {
            self.exhaust(i, &why)?;
        }
        Ok(())
    }

    /// Every filing whose budget the trail shows spent stops (at start).
    pub(super) fn hold_all_to_budgets(&mut self) -> Result<(), DispatchError> {
        let mut filings: Vec<usize> = self.costs.filings.keys().copied().collect();
        filings.sort_unstable();
        for filing in filings {
            self.hold_to_budget(filing)?;
        }
        Ok(())
    }

    /// Ends runway `j` BUDGET_EXHAUSTED if it waits (is not yet cleared).
    fn exhaust(&mut self, j: usize, why: &str) -> Result<(), DispatchError> {
        let waiting = matches!(
            self.book.runways[j].state(),
            State::Queued
                | State::WaitingDeps
                | State::WaitingApproval
                | State::WaitingTime
                | State::WaitingBreaker
                | State::WaitingLocks
        );
        if waiting {
            self.take_back(j);
            self.enter(j, State::BudgetExhausted, why.to_string(), None)?;
        }
        Ok(())
    }

    /// The delegation trees' budgets, as the runways' costs leave them
    /// (at start, once the runways are restored).
    pub(super) fn restore_tree_budgets(&mut self) {
        let mut burnt: HashMap<usize, u64> = HashMap::new();
        for r in &self.book.runways {
            let root = r.manifest.lineage.as_ref();
            if let Some(&root) = root.and_then(|l| self.book.index.get(&l.root)) {
                let fuel = burnt.entry(root).or_default();
                *fuel = fuel.saturating_add(r.course.cost.fuel);
            }
        }
        let (now, wall) = (tokio::time::Instant::now(), self.clock.now());
        for (i, r) in self.book.runways.iter().enumerate() {
            let grants = r.plugin.as_ref().and_then(|p| p.grants.delegate.as_ref());
            let Some(d) = grants.filter(|d| d.tree_fuel.is_some() || d.tree_wall_secs.is_some())
            else {
                continue;
            };
            let took_off = r.course.history.iter().find(|t| t.state == State::Running);
            let Some(took_off) = took_off.filter(|_| r.manifest.lineage.is_none()) else {
                continue;
            };
            let until = d.tree_wall_secs.map(|secs| {
                let tree = jiff::SignedDuration::from_secs(secs.min(i64::MAX as u64) as i64);
                let end = took_off.at.saturating_add(tree).unwrap_or(took_off.at);
                let left = Duration::try_from(end.duration_since(wall));
                now + left.unwrap_or(Duration::ZERO)
            });
            let fuel_left =
                (d.tree_fuel).map(|f| f.saturating_sub(burnt.get(&i).copied().unwrap_or(0)));
            self.family.budgets.insert(i, Budget { fuel_left, until });
        }
    }
}
