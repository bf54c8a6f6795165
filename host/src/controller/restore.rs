//! Restore: the runways the trail holds ([`super::journal`]) taken up
//! again at start — ended ones as they ended, waiting ones waiting again,
//! approvals still given, a run a crash cut short FAILED and retried per
//! its policy, a retry waiting out what is left of its backoff.

use std::collections::HashSet;
use std::time::Duration;

use runway_audit::State;
use tokio::time::Instant;

use super::DispatchError;
use super::dispatch::Dispatch;
use super::journal::Journal;
use super::runway::{Runway, Unfiled};

impl Dispatch {
    pub(super) fn restore(&mut self, journal: Journal) -> Result<(), DispatchError> {
        let journal_ids: HashSet<String> = journal
            .runways
            .iter()
            .map(|f| f.filed.manifest.id.clone())
            .collect();
        self.book.reserved = journal.reserved;
        for (key, ids) in journal.plans {
            // Only plans whose runways the trail holds can be answered.
            if ids.iter().all(|id| journal_ids.contains(id)) {
                self.book.plans.insert(key, ids);
            }
        }
        self.breakers = journal.breakers;
        self.figures = journal.figures;
        self.costs.agents = journal.spent;
        self.book.filings = journal.filings;
        self.hold_tripped();
        let catalog = self.host.plugins();
        // Each runway's filing, by place, as the PLAN records grouped them.
        let first = self.book.runways.len();
        let places: std::collections::HashMap<&str, usize> = (journal.runways.iter())
            .enumerate()
            .map(|(k, f)| (f.filed.manifest.id.as_str(), first + k))
            .collect();
        for (id, of) in &journal.first {
            if let (Some(&i), Some(&f)) = (places.get(id.as_str()), places.get(of.as_str())) {
                self.costs.first.insert(i, f);
            }
        }
        for f in journal.runways {
            let Unfiled {
                manifest,
                start_at,
                expires_at,
            } = f.filed;
            let plugin = catalog.get(&manifest.agent);
            let name = manifest.id.clone();
            let mut r = Runway::new(manifest, name, plugin);
            r.course = f.course;
            r.start_at = start_at;
            r.expires_at = expires_at;
            self.add(r);
        }
        for i in 0..self.book.runways.len() {
            let (Some(p), Some(l)) = (
                self.book.parent_of(i),
                &self.book.runways[i].manifest.lineage,
            ) else {
                continue;
            };
            self.family.keys.insert((p, l.key.clone()), i);
            let root = self.root_of(i);
            *self.family.descendants.entry(root).or_insert(0) += 1;
        }
        for i in 0..self.book.runways.len() {
            let from = self.book.runways[i].manifest.handoff_from.as_ref();
            if let Some(&c) = from.and_then(|f| self.book.index.get(f)) {
                self.family.successors.insert(c, i);
            }
        }
        for i in 0..self.book.runways.len() {
            self.mark_read(i);
        }
        if let Some(by) = &journal.paused {
            tracing::info!("clearing stays paused (paused by {by})");
            self.host.tower.set_paused(true);
        }
        for i in 0..self.book.runways.len() {
            let r = &self.book.runways[i];
            let missing = r
                .manifest
                .after
                .iter()
                .find(|a| !self.book.index.contains_key(*a));
            let waits_for_deps = matches!(r.state(), State::Queued | State::WaitingDeps);
            if let (Some(a), true) = (missing, waits_for_deps) {
                let reason = format!("dependency {a} cannot be rebuilt from the trail");
                self.fail(i, reason)?;
                continue;
            }
            match r.state() {
                State::Cleared => {
                    self.fail(i, "host crashed before the run began".into())?;
                    self.maybe_retry(i)?;
                }
                State::Running => {
                    self.fail(i, "host crashed during the run".into())?;
                    self.maybe_retry(i)?;
                }
                State::Failed | State::TimedOut => self.maybe_retry(i)?,
                State::WaitingLocks => {
                    if let Err(refused) = self.request_locks(i) {
                        self.fail(i, refused)?;
                    }
                }
                // A retry waits out what is left of its backoff, counted
                // from its move back to QUEUED (the wait is drawn again):
                // never less than nothing, never more than the whole wait
                // (a wall clock set back while the host was down must not
                // hold a retry for as long).
                State::Queued if r.course.attempt > 0 => {
                    let queued = r.course.history.last().map(|t| t.at);
                    let wait = r.manifest.retry.wait_after(r.course.attempt);
                    let due = queued.and_then(|at| at.checked_add(wait).ok());
                    let left = due.map_or(wait, |due| {
                        let left = Duration::try_from(due.duration_since(self.clock.now()));
                        left.unwrap_or(Duration::ZERO).min(wait)
                    });
                    self.book.runways[i].not_before = Some(Instant::now() + left);
                    self.schedule.timed.insert(i);
                }
                _ => {}
            }
        }
        self.restore_tree_budgets();
        self.hold_all_to_budgets()?;
        self.restore_triggers(journal.triggers)?;
        // Nothing to tell anyone yet.
        self.waiters.forget_endings();
        Ok(())
    }
}
