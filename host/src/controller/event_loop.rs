//! The controller's loop: it sleeps until something happens — a clearance
//! from the tower, a run handed to the landing stage or landed, a time
//! reached, a request from a [`Controller`](super::Controller) — handles
//! it, settles every runway that can move on, answers the waiters, and
//! acknowledges once the step's records are durable. Each step is timed
//! into the controller's [`Stats`](super::Stats).

use std::time::Duration;

use runway_audit::{AuditError, State};
use tokio::time::Instant;

use super::DispatchError;
use super::commit::LandingError;
use super::controls::{Orchestration, Request as Asked};
use super::dispatch::Dispatch;
use super::family::Progress;
use super::tower::Clearance;
use super::yard::Remote;
use crate::sandbox::{RunFailure, RunReport};

/// Longest the controller sleeps while a runway waits for a wall-clock
/// time, so a wall clock that jumps is noticed soon.
const WALL_POLL: Duration = Duration::from_millis(250);

/// What woke the controller.
enum Woke {
    Cleared(Clearance),
    Handed(usize, Result<Result<(), AuditError>, String>),
    Landed(usize, Result<RunReport, LandingError>),
    Remote(Remote),
    Time,
    Asked(Option<Asked>),
}

impl Dispatch {
    pub(super) async fn fly(&mut self) -> Result<(), DispatchError> {
        self.fire_due()?;
        self.tend_families()?;
        self.settle()?;
        self.flush()?;
        self.waiters.tell(&self.book.runways);
        loop {
            if self.done() {
                break;
            }
            let retry = self
                .schedule
                .timed
                .iter()
                .filter_map(|&i| self.book.runways[i].not_before)
                .min();
            let wall = self.next_wall_time().map(|at| {
                let wait = Duration::try_from(at.duration_since(self.clock.now()));
                Instant::now() + wait.unwrap_or(Duration::ZERO).min(WALL_POLL)
            });
            let schedules = self.next_trigger_time().map(|at| {
                let wait = Duration::try_from(at.duration_since(self.clock.now()));
                Instant::now() + wait.unwrap_or(Duration::ZERO).min(WALL_POLL)
            });
            let joins = self.family.next_deadline();
            let beats = self.next_heartbeat();
            let wake = [retry, wall, schedules, joins, beats]
                .into_iter()
                .flatten()
                .min();
            let clock = self.clock.clone();
            let flights = &mut self.flights;
            // Clearances first, so runways granted together take off together.
            let woke = tokio::select! {
                biased;
                Some(c) = flights.clearances.recv() => Woke::Cleared(c),
                Some((i, handed)) = flights.handed.recv() => Woke::Handed(i, handed),
                Some((i, landed)) = flights.landed.recv() => Woke::Landed(i, landed),
                Some(remote) = flights.remotes.recv() => Woke::Remote(remote),
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Woke::Time,
                () = clock.moved() => Woke::Time,
                asked = self.inbox.rx.recv(), if !self.closed => Woke::Asked(asked),
            };
            let started = std::time::Instant::now();
            self.handle(woke)?;
            self.fire_due()?;
            self.tend_families()?;
            self.settle()?;
            self.flush()?;
            self.waiters.tell(&self.book.runways);
            self.waiters.acknowledge(&self.host.audit);
            self.stats.record(started.elapsed());
        }
        Ok(())
    }

    fn handle(&mut self, woke: Woke) -> Result<(), DispatchError> {
        match woke {
            Woke::Cleared(c) => self.take_off(c)?,
            Woke::Handed(i, handed) => {
                self.flights.on_workers -= 1;
                self.host.tower.flown();
                match handed {
                    Ok(handed) => handed?,
                    // A panic in host code fails that run only, never the plan.
                    Err(panic) => self.crashed(i, RunFailure::HostFault(panic))?,
                }
            }
            Woke::Landed(i, landed) => match landed {
                Ok(report) => self.land(i, report)?,
                Err(LandingError::Audit(e)) => return Err(DispatchError::Landing(e)),
                Err(LandingError::Panicked(why)) => self.crashed(i, RunFailure::HostFault(why))?,
            },
            Woke::Remote(remote) => self.remote(remote)?,
            Woke::Time => {}
            Woke::Asked(Some(asked)) => self.answer(asked)?,
            // Nobody can reach the controller any more.
            Woke::Asked(None) => {
                self.closed = true;
                self.stop(false);
            }
        }
        Ok(())
    }

    /// Answers one request.
    fn answer(&mut self, asked: Asked) -> Result<(), DispatchError> {
        match asked {
            Asked::Command(command, reply) => {
                let answer = self.command(command)?;
                self.waiters.ack(answer, reply);
            }
            Asked::File(filing, reply) => {
                let answer = self.file(*filing)?;
                self.waiters.ack(answer, reply);
            }
            Asked::List(reply) => {
                let all = self.book.runways.iter().map(|r| r.report(false)).collect();
                let _ = reply.send(Ok(all));
            }
            Asked::Show(id, reply) => {
                let found = match self.book.index.get(&id) {
                    Some(&i) => Ok(self.shown(i)),
                    None => Err(super::controls::ControlError::Unknown(id)),
                };
                let _ = reply.send(found);
            }
            Asked::Wait(ids, reply) => {
                let mut runways = Vec::with_capacity(ids.len());
                for id in ids {
                    match self.book.index.get(&id) {
                        Some(&i) => runways.push(i),
                        None => {
                            let _ = reply.send(Err(super::controls::ControlError::Unknown(id)));
                            return Ok(());
                        }
                    }
                }
                self.waiters.wait(runways, &self.book.runways, reply);
            }
            Asked::Stop { cancel } => self.stop(cancel),
            Asked::Stats(reply) => drop(reply.send(Ok(self.stats.clone()))),
            Asked::Orchestration(call) => self.orchestrate(call)?,
            Asked::Agents(reply) => drop(reply.send(Ok(self.agents_health()))),
            Asked::Triggers(reply) => drop(reply.send(Ok(self.trigger_reports()))),
            Asked::Trigger(id, reply) => drop(reply.send(self.trigger_report(&id))),
            Asked::Filings(reply) => drop(reply.send(Ok(self.book.filings.list()))),
        }
        Ok(())
    }

    /// Answers a run's orchestration call.
    fn orchestrate(&mut self, call: Orchestration) -> Result<(), DispatchError> {
        match call {
            Orchestration::Delegate {
                parent,
                attempt,
                position,
                request,
                reply,
            } => {
                let answer = self.delegate(&parent, attempt, position, *request)?;
                // The child's id goes out once its FILING record is on the
                // trail (not waiting for it to be durable: whatever the
                // parent does with the id is recorded after it, so durable
                // only after it too).
                self.flush()?;
                let _ = reply.send(answer);
            }
            Orchestration::Join {
                parent,
                children,
                mode,
                until,
                reply,
            } => self.join(&parent, children, mode, until, reply)?,
            Orchestration::Cancel {
                parent,
                children,
                reply,
            } => {
                let answer = self.cancel_children(&parent, &children)?;
                self.flush()?;
                let _ = reply.send(answer);
            }
            Orchestration::Handoff {
                parent,
                attempt,
                to,
                reply,
            } => {
                let _ = reply.send(self.check_handoff(&parent, attempt, &to));
            }
            Orchestration::Progress {
                runway,
                done,
                total,
                message,
            } => {
                if let Some(&i) = self.book.index.get(&runway) {
                    if let Some(beat) = self.family.beats.get_mut(&i) {
                        *beat = tokio::time::Instant::now();
                    }
                    let progress = Progress {
                        done,
                        total,
                        message,
                    };
                    self.family.progress.insert(i, progress);
                }
            }
        }
        Ok(())
    }

    /// Stops clearing for good; with `cancel`, the runs in the air are
    /// stopped too: they FAIL as a crash would leave them, and are retried
    /// by their policy at the next start.
    pub(super) fn stop(&mut self, cancel: bool) {
        self.stopping = true;
        self.host.tower.set_paused(true);
        if cancel {
            for i in 0..self.book.runways.len() {
                let r = &self.book.runways[i];
                if matches!(r.state(), State::Cleared | State::Running) {
                    r.cancel.host_stopping();
                    self.stop_waiting(i);
                }
            }
        }
    }
}
