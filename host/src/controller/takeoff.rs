//! Take-off: a runway the tower cleared is recorded CLEARED with its
//! grants (one LOCK record each on its dataset's chain), moves to RUNNING
//! and is handed to one of the host's workers with the plugin loaded now (a
//! run keeps it to the end); the worker hands the finished run to the
//! landing stage. On a shared database, a run with no worker of this host
//! free goes to a standby's crew instead ([`super::remote`]). A
//! clearance that comes too late (the runway expired, the host is stopping)
//! or without tokens gives its worker slot and locks straight back.

use runway_audit::{Event, State};

use super::DispatchError;
use super::dispatch::Dispatch;
use super::tower::Clearance;
use std::sync::Arc;

use super::liaison::Liaison;
use crate::sandbox::{self, Cancel, RunRequest};

impl Dispatch {
    pub(super) fn take_off(&mut self, c: Clearance) -> Result<(), DispatchError> {
        let i = c.slot;
        self.book.runways[i].ticket = None;
        if self.book.runways[i].state() != State::WaitingLocks || self.stopping {
            // Expired while its clearance was on the way, or the host is
            // stopping: it waits again after a restart.
            self.grounded(i);
            return Ok(());
        }
        if self.held_at_take_off(i) {
            // Its breaker opened while the clearance was on the way: it
            // waits for its locks again (the tower now holds it).
            self.grounded(i);
            if let Err(refused) = self.request_locks(i) {
                return self.fail(i, refused);
            }
            return Ok(());
        }
        // The plugin as loaded now: the folder watch may have replaced it
        // since filing; from here on this run keeps this version.
        let agent = &self.book.runways[i].manifest.agent;
        let (grants, plugin) = match (c.grants, self.host.plugins().get(agent)) {
            (Ok(grants), Some(plugin)) => (grants, plugin),
            (Err(e), _) => {
                self.grounded(i);
                let reason = format!("no fencing token: {e}");
                return self.fail(i, reason);
            }
            (_, None) => {
                let reason = format!("agent {agent} was unloaded before take-off");
                self.grounded(i);
                return self.fail(i, reason);
            }
        };
        self.book.runways[i].plugin = Some(plugin.clone());
        let mut program = plugin.program();
        if let Some(window) = self.book.runways[i].manifest.window {
            let secs = window.as_secs_f64().ceil() as u64;
            program.limits.window_secs = program.limits.window_secs.min(secs);
        }
        if let Some(spent) = self.over_budget(i) {
            self.grounded(i);
            return self.enter(i, State::BudgetExhausted, spent, None);
        }
        if let Err(spent) = self.within_budget(i, &mut program.limits) {
            self.grounded(i);
            return self.fail(i, format!("not started: {spent}"));
        }
        if let Err(missing) = self.ready_input(i) {
            self.grounded(i);
            return self.fail(i, missing);
        }
        let cleared = Event::Cleared {
            locks: grants.clone(),
        };
        self.enter(i, State::Cleared, String::new(), Some(cleared))?;
        for g in &grants {
            let event = Event::LockGranted {
                mode: g.mode,
                token: g.token,
            };
            self.record(i, Some(g.dataset.clone()), event);
        }
        // Its STARTED record, appended by the run, is this move's.
        let attempt = self.book.runways[i].course.attempt + 1;
        self.move_runway(i, State::Running, &format!("attempt {attempt}"), None)?;
        let r = &mut self.book.runways[i];
        r.course.attempt = attempt;
        r.course.locks = grants.clone();
        r.cancel = Cancel::default();
        r.returned = Default::default();
        self.charge_run(i)?;
        let r = &mut self.book.runways[i];
        let liaison = Liaison {
            inbox: self.inbox.weak.clone(),
            returned: r.returned.clone(),
        };
        let req = RunRequest {
            runway: r.id().to_string(),
            program,
            action: r.manifest.action.clone(),
            input: r.handed().to_vec(),
            attempt,
            locks: grants,
            cancel: r.cancel.clone(),
            delegator: Some(Arc::new(liaison)),
            keep_output: r.manifest.lineage.is_some() || r.read,
        };
        // The run's own records (STARTED first) come after these.
        self.flush()?;
        let Some(req) = self.post_remote(i, req) else {
            // Posted for a crew: it lands when the yard hears it did.
            return Ok(());
        };
        let host = self.host.clone();
        let observer = self.observer.clone();
        let landed = self.flights.landed_tx.clone();
        let handed = self.flights.handed_tx.clone();
        let done = move |ran| drop(handed.send((i, ran)));
        // The dispatcher may be gone by the time the run lands (its plan
        // failed); the landing itself is the same.
        let reply = Box::new(move |report| drop(landed.send((i, report))));
        if req.program.waits {
            let fly = async move {
                let flown = sandbox::fly_async(host.sandbox(), req, &observer).await?;
                host.landing.submit(flown, reply);
                Ok(())
            };
            self.host.workers.spawn(fly, done);
        } else {
            let fly = move || {
                let flown = sandbox::fly(host.sandbox(), req, &observer)?;
                host.landing.submit(flown, reply);
                Ok(())
            };
            self.host.workers.run(fly, done);
        }
        self.flights.airborne += 1;
        self.flights.on_workers += 1;
        if self.book.runways[i].manifest.heartbeat.is_some() {
            self.family.beats.insert(i, tokio::time::Instant::now());
        }
        Ok(())
    }

    /// A cleared runway that could not take off: its worker slot and
    /// locks go straight back.
    fn grounded(&mut self, i: usize) {
        let wants = self.wants(i);
        let m = &self.book.runways[i].manifest;
        self.host.tower.flown();
        self.host.tower.release(&wants, &m.id, &m.agent);
    }
}
