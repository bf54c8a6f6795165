//! Landing: a run is back from the landing stage — its locks are released
//! (one RELEASE record each), its state follows its outcome (the landing
//! stage recorded the move), and a failure with attempts left goes back to
//! QUEUED, not before its backoff. A run host code panicked on FAILS the
//! same way.

use std::sync::Arc;

use runway_audit::{Event, LockGrant, LockMode, State};
use tokio::time::Instant;

use super::DispatchError;
use super::dispatch::Dispatch;
use super::locks::DatasetId;
use crate::sandbox::{RunFailure, RunReport};

impl Dispatch {
    pub(super) fn land(&mut self, i: usize, report: RunReport) -> Result<(), DispatchError> {
        self.land_locks(i);
        let (to, reason, by) = match &report.outcome {
            Ok(_) => (State::Succeeded, String::new(), None),
            Err(reason @ RunFailure::TimedOut { .. }) => {
                (State::TimedOut, reason.to_string(), None)
            }
            Err(reason @ RunFailure::Cancelled { by, .. }) => {
                (State::Cancelled, reason.to_string(), Some(by.clone()))
            }
            Err(reason) => (State::Failed, reason.to_string(), None),
        };
        self.move_runway(i, to, &reason, by)?;
        if to == State::Succeeded {
            let output = report.outcome.as_ref().ok();
            let r = &mut self.book.runways[i];
            r.course.output_digest = output.map(runway_audit::sha256);
            if r.manifest.lineage.is_some() {
                r.course.output = output.cloned();
            }
            if let (Some(to), Some(output)) = (&report.handoff, output) {
                self.take_over(i, to.clone(), output.clone())?;
            }
        }
        self.book.runways[i].run = Some(Arc::new(report));
        self.maybe_retry(i)
    }

    /// A run that host code panicked on: FAILED, and landed with nothing.
    pub(super) fn crashed(&mut self, i: usize, why: String) -> Result<(), DispatchError> {
        let failure = RunFailure::HostFault(why);
        let reason = failure.to_string();
        self.fail(i, reason)?;
        self.land_locks(i);
        self.book.runways[i].run = Some(Arc::new(RunReport::failed(failure)));
        self.maybe_retry(i)
    }

    /// Releases a landed runway's locks (one RELEASE record each).
    fn land_locks(&mut self, i: usize) {
        self.flights.airborne -= 1;
        let locks = std::mem::take(&mut self.book.runways[i].course.locks);
        for g in &locks {
            let event = Event::LockReleased {
                mode: g.mode,
                token: g.token,
            };
            self.record(i, Some(g.dataset.clone()), event);
        }
        self.book.runways[i].course.locks = locks;
        let mut wants = self.wants(i);
        if let Some(p) = self.parent_waiting_for_locks(i) {
            let handed = self.handed_wants(&self.book.runways[i].manifest, &wants);
            wants.retain(|w| !handed.contains(w));
            self.hand_back(i, p, &handed);
        }
        let m = &self.book.runways[i].manifest;
        self.host.tower.release(&wants, &m.id, &m.agent);
    }

    /// The parent of child `i` that handed it locks and is still running
    /// the attempt that did: it takes them back when `i` lands.
    fn parent_waiting_for_locks(&self, i: usize) -> Option<usize> {
        let lineage = self.book.runways[i].manifest.lineage.as_ref()?;
        let p = self.book.parent_of(i)?;
        let pr = &self.book.runways[p];
        let handing = !lineage.handed.is_empty()
            && pr.state() == State::Running
            && pr.course.attempt == lineage.attempt;
        handing.then_some(p)
    }

    /// Child `c`'s `handed` locks go back to its parent `p`, each with a
    /// fresh token (a GRANT record of the parent's on its dataset's chain),
    /// which the parent's run takes at its next call there.
    fn hand_back(&mut self, c: usize, p: usize, handed: &[(DatasetId, LockMode)]) {
        let (child, parent) = (self.book.runways[c].id(), self.book.runways[p].id());
        self.host.tower.hand_back(handed, child, parent);
        let names: Vec<(String, LockMode)> = self.book.runways[c]
            .manifest
            .datasets
            .iter()
            .filter(|(d, _)| {
                let lineage = self.book.runways[c].manifest.lineage.as_ref();
                lineage.is_some_and(|l| l.handed.contains(d))
            })
            .map(|(d, &m)| (d.clone(), m))
            .collect();
        for (dataset, mode) in names {
            // A store that cannot give a token leaves the parent a token
            // every fence refuses: its calls there answer `lock-lost`.
            let token = self.host.store.next_token().unwrap_or(0);
            let grant = LockGrant {
                dataset: dataset.clone(),
                mode,
                token,
            };
            self.book.runways[p].course.locks.push(grant);
            self.record(p, Some(dataset.clone()), Event::LockGranted { mode, token });
            let returned = &self.book.runways[p].returned;
            returned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((dataset, token));
        }
    }

    /// A failed or timed-out runway with attempts left goes back to QUEUED,
    /// not before its backoff is over.
    pub(super) fn maybe_retry(&mut self, i: usize) -> Result<(), DispatchError> {
        let r = &self.book.runways[i];
        let retry = &r.manifest.retry;
        if !matches!(r.state(), State::Failed | State::TimedOut)
            || r.course.attempt >= retry.attempts
        {
            return Ok(());
        }
        let wait = retry.wait_after(r.course.attempt);
        let reason = format!(
            "retry: attempt {} of {} in {:.3} s",
            r.course.attempt + 1,
            retry.attempts,
            wait.as_secs_f64()
        );
        self.enter(i, State::Queued, reason, None)?;
        self.book.runways[i].not_before = Some(Instant::now() + wait);
        self.schedule.timed.insert(i);
        Ok(())
    }
}
