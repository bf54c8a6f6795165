//! Hand-offs: a run that called `orchestration.handoff` and succeeded ends
//! its part, and the agent it named takes over the rest — filed here, when
//! the run lands, with the run's output as its input (unless the hand-off
//! gave one), its FILING naming whom it took over from (`handoff_from`).
//!
//! - A child's successor takes the child's place in its tree: it is its
//!   parent's child too (filed as a delegation is, the parent's limits and
//!   rights applying; the child's own grants named the agent at the call),
//!   and a join of the parent that waits on the child waits on the line's
//!   last runway and reports it ([`Dispatch::line_end`]). If the parent's
//!   attempt is over, nothing is filed: the child was its last part.
//! - A root's successor is a new root, queued as any filed runway is, its
//!   tree's count of descendants carried over.
//! - A successor that cannot be filed (a limit, a lock held) is filed and
//!   FAILED at once, saying why, so the line ends visibly.

use runway_audit::State;

use super::DispatchError;
use super::delegation::lock_mode;
use super::dispatch::Dispatch;
use super::family::Budget;
use super::plan::{Backoff, Manifest, Retry};
use super::runway::{Runway, Transition};
use crate::sandbox::hostcalls::{Delegation, HandoffRequest};

impl Dispatch {
    /// Runway `c` succeeded with `output` having handed off `to`: its
    /// successor is filed.
    pub(super) fn take_over(
        &mut self,
        c: usize,
        to: HandoffRequest,
        output: Vec<u8>,
    ) -> Result<(), DispatchError> {
        let input = to.input.clone().unwrap_or(output);
        let lineage = self.book.runways[c].manifest.lineage.clone();
        let Some(lineage) = lineage else {
            return self.file_root_successor(c, to, input);
        };
        let Some(p) = self.book.parent_of(c) else {
            return Ok(());
        };
        let pr = &self.book.runways[p];
        if pr.state() != State::Running || pr.course.attempt != lineage.attempt {
            return Ok(());
        }
        let request = Delegation {
            agent: to.agent.clone(),
            action: to.action.clone(),
            input,
            locks: to.locks.clone(),
            window_secs: to.window_secs,
            retry: to.retry,
            key: None,
        };
        let key = format!("{}>", lineage.key);
        match self.file_child(p, lineage.attempt, key, request, Some(c))? {
            Ok(successor) => {
                let s = self.book.index[&successor];
                self.family.successors.insert(c, s);
            }
            Err(refused) => {
                let from = self.book.runways[c].id().to_string();
                let manifest = Manifest {
                    id: self.book.fresh_id(&format!("{from}.next")),
                    agent: to.agent,
                    action: to.action,
                    handoff_from: Some(from),
                    lineage: Some(lineage),
                    ..Manifest::default()
                };
                let s = self.file_successor(manifest)?;
                self.family.successors.insert(c, s);
                let why = crate::sandbox::hostcalls::describe(&refused);
                self.fail(s, format!("the hand-off was refused: {why}"))?;
            }
        }
        Ok(())
    }

    /// A root's successor: a new root, queued as a filed runway is.
    fn file_root_successor(
        &mut self,
        c: usize,
        to: HandoffRequest,
        input: Vec<u8>,
    ) -> Result<(), DispatchError> {
        let from = self.book.runways[c].id().to_string();
        let manifest = Manifest {
            id: self.book.fresh_id(&format!("{from}.next")),
            agent: to.agent,
            action: to.action,
            datasets: to
                .locks
                .iter()
                .map(|l| (l.dataset.clone(), lock_mode(l.mode)))
                .collect(),
            input,
            priority: self.book.runways[c].manifest.priority,
            window: to
                .window_secs
                .map(|s| std::time::Duration::from_secs(s.min(crate::limits::MAX_WINDOW_SECS))),
            retry: match to.retry {
                None => Retry::default(),
                Some(r) => Retry {
                    attempts: r.attempts.clamp(1, crate::limits::MAX_ATTEMPTS),
                    backoff: Backoff::Exponential,
                    initial: std::time::Duration::from_millis(r.backoff_ms),
                    ..Retry::default()
                },
            },
            handoff_from: Some(from),
            ..Manifest::default()
        };
        let carried = self.family.descendants.get(&c).copied().unwrap_or(0);
        let s = self.file_successor(manifest)?;
        self.family.descendants.insert(s, carried);
        self.family.successors.insert(c, s);
        Ok(())
    }

    /// Adds `manifest` as a runway with its FILING record.
    fn file_successor(&mut self, manifest: Manifest) -> Result<usize, DispatchError> {
        let plugin = self.host.plugins().get(&manifest.agent);
        let name = manifest.id.clone();
        let from = manifest.handoff_from.clone().unwrap_or_default();
        let mut runway = Runway::new(manifest, name, plugin);
        runway.course.history.push(Transition {
            at: self.clock.now(),
            state: State::Queued,
            reason: format!("taking over from {from}"),
            by: None,
        });
        let s = self.add(runway);
        let event = self.book.runways[s].filing();
        self.record(s, None, event);
        Ok(s)
    }

    /// Narrows `limits` (runway `i`'s run's) to what is left of its tree's
    /// budget — fuel, and the window to the tree's end — setting the budget
    /// up when `i` is a root whose grants give one; or says it is spent.
    pub(super) fn within_budget(
        &mut self,
        i: usize,
        limits: &mut crate::limits::Limits,
    ) -> Result<(), String> {
        let now = tokio::time::Instant::now();
        let root = self.root_of(i);
        if root == i && !self.family.budgets.contains_key(&i) {
            let may = self.book.runways[i].plugin.as_ref();
            let may = may.and_then(|p| p.grants.delegate.as_ref());
            if let Some(d) = may.filter(|d| d.tree_fuel.is_some() || d.tree_wall_secs.is_some()) {
                let until = d
                    .tree_wall_secs
                    .map(|s| now + std::time::Duration::from_secs(s));
                let budget = Budget {
                    fuel_left: d.tree_fuel,
                    until,
                };
                self.family.budgets.insert(i, budget);
            }
            return Ok(());
        }
        let Some(budget) = self
            .family
            .budgets
            .get(&root)
            .copied()
            .filter(|_| root != i)
        else {
            return Ok(());
        };
        let root_id = self.book.runways[root].id();
        if let Some(why) = budget.spent(now) {
            return Err(format!("the tree of {root_id}: {why}"));
        }
        if let Some(left) = budget.fuel_left {
            // Taken from the tree now, what is not burnt given back at the
            // landing: runs taking off together never share the same fuel.
            limits.fuel = limits.fuel.min(left);
            let budget = self.family.budgets.get_mut(&root).expect("just found");
            budget.fuel_left = Some(left - limits.fuel);
            self.family.reserved.insert(i, limits.fuel);
        }
        if let Some(until) = budget.until {
            let secs = until.duration_since(now).as_secs_f64().ceil() as u64;
            limits.window_secs = limits.window_secs.min(secs.max(1));
        }
        Ok(())
    }

    /// Runway `i`'s run burnt `fuel`: what it took from its tree's budget
    /// and did not burn goes back.
    pub(super) fn spend(&mut self, i: usize, fuel: u64) {
        let Some(reserved) = self.family.reserved.remove(&i) else {
            return;
        };
        let root = self.root_of(i);
        let budget = self.family.budgets.get_mut(&root);
        if let Some(left) = budget.and_then(|b| b.fuel_left.as_mut()) {
            *left = left.saturating_add(reserved.saturating_sub(fuel));
        }
    }

    /// The last runway of the line that starts at `c` (`c` itself when it
    /// handed off to none).
    pub(super) fn line_end(&self, mut c: usize) -> usize {
        while let Some(&s) = self.family.successors.get(&c) {
            c = s;
        }
        c
    }
}
