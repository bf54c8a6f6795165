//! Landing: a run is back from the landing stage — its locks are released
//! (one RELEASE record each), its state follows its outcome (the landing
//! stage recorded the move), and a failure with attempts left goes back to
//! QUEUED, not before its backoff. A run host code panicked on FAILS the
//! same way.

use runway_audit::{Event, LockGrant, LockMode, State};
use tokio::time::Instant;

use super::DispatchError;
use super::dispatch::Dispatch;
use super::locks::DatasetId;

/// A lock going back up a tree: its number, mode and dataset.
type Handed = (DatasetId, LockMode, String);
use crate::sandbox::{RunFailure, RunReport};

impl Dispatch {
    pub(super) fn land(&mut self, i: usize, report: RunReport) -> Result<(), DispatchError> {
        self.land_locks(i);
        self.spend(i, report.fuel_used);
        self.charge_landing(i, &report);
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
            if r.manifest.lineage.is_some() || r.read {
                r.course.output = output.cloned();
            }
            if let (Some(to), Some(output)) = (&report.handoff, output) {
                self.take_over(i, (**to).clone(), output.clone())?;
            }
            let runway = self.book.runways[i].id().to_string();
            self.commits_landed(&runway, &report.committed)?;
            self.events_delivered(&runway, &report.published)?;
        }
        self.book.runways[i].keep_run(report);
        self.maybe_retry(i)?;
        self.hold_to_budget(i)
    }

    /// A run that host code panicked on, or whose crew was lost: FAILED,
    /// and landed with nothing.
    pub(super) fn crashed(&mut self, i: usize, failure: RunFailure) -> Result<(), DispatchError> {
        let reason = failure.to_string();
        self.fail(i, reason)?;
        self.land_locks(i);
        self.spend(i, 0);
        self.book.runways[i].keep_run(RunReport::failed(failure));
        self.maybe_retry(i)?;
        self.hold_to_budget(i)
    }

    /// Releases a landed runway's locks (one RELEASE record each). Those
    /// it was handed go back up its tree instead ([`Dispatch::taker`]);
    /// those it handed further down and did not get back are its
    /// descendant's now, and go back from there.
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
        let wants = self.wants(i);
        let names: Vec<String> = self.book.runways[i]
            .manifest
            .datasets
            .keys()
            .cloned()
            .collect();
        let mut released = Vec::with_capacity(wants.len());
        let mut back: Vec<(usize, Vec<Handed>)> = Vec::new();
        for (want, name) in wants.into_iter().zip(names) {
            if !locks.iter().any(|l| l.dataset == name) {
                continue;
            }
            match self.taker(i, &name) {
                Some(a) => match back.iter_mut().find(|(t, _)| *t == a) {
                    Some((_, list)) => list.push((want.0, want.1, name)),
                    None => back.push((a, vec![(want.0, want.1, name)])),
                },
                None => released.push(want),
            }
        }
        self.book.runways[i].course.locks = locks;
        for (a, list) in back {
            if !self.hand_back(i, a, &list) {
                released.extend(list.iter().map(|&(d, m, _)| (d, m)));
            }
        }
        let m = &self.book.runways[i].manifest;
        self.host.tower.release(&released, &m.id, &m.agent);
    }

    /// Who takes `dataset` back when runway `i` lands: the nearest
    /// ancestor that handed it down and still runs the attempt that did
    /// (an ancestor in between that ended passes it up); none when no one
    /// is waiting for it.
    fn taker(&self, i: usize, dataset: &str) -> Option<usize> {
        let mut c = i;
        loop {
            let lineage = self.book.runways[c].manifest.lineage.as_ref()?;
            if !lineage.handed.iter().any(|d| d == dataset) {
                return None;
            }
            let p = self.book.parent_of(c)?;
            let pr = &self.book.runways[p];
            if pr.state() == State::Running && pr.course.attempt == lineage.attempt {
                return Some(p);
            }
            c = p;
        }
    }

    /// Locks `c` held go back to its ancestor `a`, each with a fresh token
    /// (a GRANT record of `a`'s on its dataset's chain, on the trail before
    /// `a`'s run can end), which `a`'s run takes at its next call there. An
    /// ancestor whose run has returned takes none: `false`, and they are
    /// released instead.
    fn hand_back(&mut self, c: usize, a: usize, locks: &[Handed]) -> bool {
        let returned = self.book.runways[a].returned.clone();
        let mut hand_back = returned.lock().unwrap_or_else(|e| e.into_inner());
        if hand_back.closed {
            return false;
        }
        let wants: Vec<(DatasetId, LockMode)> = locks.iter().map(|&(d, m, _)| (d, m)).collect();
        let (child, ancestor) = (self.book.runways[c].id(), self.book.runways[a].id());
        self.host.tower.hand_back(&wants, child, ancestor);
        for (_, mode, dataset) in locks {
            // A store that cannot give a token leaves the ancestor a token
            // every fence refuses: its calls there answer `lock-lost`.
            let token = self.host.store.next_token().unwrap_or(0);
            let grant = LockGrant {
                dataset: dataset.clone(),
                mode: *mode,
                token,
            };
            self.book.runways[a].course.locks.push(grant);
            let event = Event::LockGranted { mode: *mode, token };
            self.record(a, Some(dataset.clone()), event);
            hand_back.give(dataset.clone(), token);
        }
        // The GRANT records are on the trail while the run cannot have
        // ended (it would have closed the hand-back first).
        if let Err(e) = self.flush() {
            tracing::error!("audit trail failed handing locks back: {e}");
        }
        true
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
