//! Runs flown by crews, on the leader's side (DESIGN.md, "Beyond one
//! machine"): a cleared run this host has no worker free for is posted to
//! the shared database for a standby's crew (`crew.rs`), when it may fly
//! alone — it does not delegate (no `orchestration` import), is nobody's
//! child and reports no heartbeat. The yard (`yard.rs`) hears how it
//! ended and the controller lands it from the crew's report, as it lands
//! its own runs; a run whose crew was lost before its commit FAILS
//! ("host … lost during the run") and is retried by its policy; one lost
//! after its commit is settled from the commits row, as a restart would.

use runway_audit::{Entry, Event};

use super::DispatchError;
use super::commit::Unsettled;
use super::dispatch::Dispatch;
use super::order::Order;
use super::yard::Remote;
use crate::sandbox::{RunFailure, RunReport, RunRequest};
use crate::store::{Lost, Posting};

impl Dispatch {
    /// Posts runway `i`'s run for the crews when it may fly there and no
    /// worker of this host is free; gives it back to fly here otherwise
    /// (or when the database refuses it).
    pub(super) fn post_remote(&mut self, i: usize, req: RunRequest) -> Option<RunRequest> {
        let (Some(shared), Some(_)) = (self.host.store.shared(), &self.flights.yard) else {
            return Some(req);
        };
        let alone = !req.program.waits
            && self.book.parents[i].is_none()
            && self.book.runways[i].manifest.heartbeat.is_none();
        if !alone || self.flights.on_workers < self.host.tower.workers() {
            return Some(req);
        }
        // Its clearance (and every record before it) goes into the shared
        // history first: a crew's STARTED must follow it there, or a new
        // leader folding the history would find the run cleared again
        // after it ended, and fly it twice.
        if let Some(ticket) = self.host.audit.last_ticket()
            && let Err(e) = self.host.audit.wait_durable(ticket)
        {
            tracing::warn!(
                "runway {}: not posted for a crew, flies here: {e}",
                req.runway
            );
            return Some(req);
        }
        let order = Order {
            action: req.action.clone(),
            input: req.input.clone(),
            locks: req.locks.clone(),
            limits: req.program.limits,
            keep_output: req.keep_output,
        }
        .encode();
        let posting = Posting {
            runway: &req.runway,
            attempt: req.attempt,
            digest: req.program.digest,
            request: &order,
        };
        match shared.post(&posting) {
            Ok(id) => {
                self.flights.remote.insert(id, i);
                self.flights.airborne += 1;
                None
            }
            Err(e) => {
                tracing::warn!(
                    "runway {}: not posted for a crew, flies here: {e}",
                    req.runway
                );
                Some(req)
            }
        }
    }

    /// What the yard heard of a run on a crew.
    pub(super) fn remote(&mut self, remote: Remote) -> Result<(), DispatchError> {
        match remote {
            Remote::Landed(id, report) => {
                let Some(i) = self.flights.remote.remove(&id) else {
                    return Ok(());
                };
                self.host.tower.flown();
                self.land(i, *report)
            }
            Remote::Lost(lost) => {
                let Some(i) = self.flights.remote.remove(&lost.id) else {
                    return Ok(());
                };
                self.host.tower.flown();
                let host = lost
                    .crew
                    .clone()
                    .unwrap_or_else(|| "(none claimed it)".into());
                match lost.committed {
                    None => self.crashed(i, RunFailure::HostLost { host }),
                    Some(seq) => self.settle_lost(i, &lost, seq),
                }
            }
        }
    }

    /// Runway `i`'s crew was lost after its commit (COMMITTING `seq` of
    /// its shard) and before its end: settled from the commits row as a
    /// restart settles a commit a crash interrupted.
    fn settle_lost(&mut self, i: usize, lost: &Lost, seq: u64) -> Result<(), DispatchError> {
        self.flush()?;
        let r = &self.book.runways[i];
        let entry = Entry {
            runway: lost.runway.clone(),
            agent: r.manifest.agent.clone(),
            plugin: r.plugin.as_ref().map(|p| p.digest),
            dataset: None,
            event: Event::Committing {
                locks: r.course.locks.clone(),
                changes: [0; 32],
            },
        };
        let crew = lost.crew.as_deref().unwrap_or_default();
        let settled = Unsettled::begun(crew, seq, entry)
            .settle(&self.host.audit, &self.host.store)
            .map_err(|e| DispatchError::Settle(e.to_string()))?;
        match settled.appended.last().map(|(_, e)| &e.event) {
            Some(Event::Succeeded { output }) => {
                let output = *output;
                self.land(i, RunReport::succeeded_elsewhere())?;
                self.book.runways[i].course.output_digest = Some(output);
                Ok(())
            }
            _ => self.crashed(
                i,
                RunFailure::HostLost {
                    host: crew.to_string(),
                },
            ),
        }
    }

    /// Runway `i`'s run, if it flies on a crew, is cancelled there too.
    pub(super) fn cancel_remote(&self, i: usize, by: &str) {
        let Some(shared) = self.host.store.shared() else {
            return;
        };
        let Some((&id, _)) = self.flights.remote.iter().find(|&(_, &j)| j == i) else {
            return;
        };
        if let Err(e) = shared.cancel_work(id, by) {
            tracing::warn!("could not cancel work {id} on its crew: {e}");
        }
    }
}
