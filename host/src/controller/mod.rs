//! The dispatcher: files a plan's runways and sees each one to its end,
//! moving it through the state machine of [`state`] (one audit record per
//! move).
//!
//! A runway waits for its dependencies (every runway in its `after` list
//! SUCCEEDED), then asks the host's [`tower::Tower`] for its whole lock set,
//! which is granted at once when free (higher priority first among the
//! ready). Cleared runways run in parallel on blocking threads and land
//! through the host's landing stage, which commits many runs at once; a
//! runway's locks are released when it has landed. A failed or timed-out
//! attempt is retried per the manifest's policy, after its backoff, with
//! fresh locks and a fresh token. When a runway ends badly for good, every
//! runway that depends on it (directly or not) fails too, with a reason
//! naming the dependency.

pub mod clock;
pub mod controls;
mod host;
pub mod locks;
pub mod recovery;
pub mod state;
pub mod tower;

pub use host::Host;
pub use runway_audit::State;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use runway_audit::record::{FiledManifest, RetryPolicy};
use runway_audit::{AuditError, Entry, Event, LockGrant, LockRequest};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use clock::{Clock, SystemClock};

use crate::loader::Plugin;
use crate::plan::{Backoff, Manifest, Plan, Retry};
use crate::sandbox::{self, Cancel, LandingError, Observer, RunFailure, RunReport, RunRequest};
use controls::{Command, ControlError, Inbox};
use state::{IllegalMove, Lifecycle};
use tower::{Clearance, Request};

/// The end of one runway.
#[derive(Debug)]
pub struct RunwayReport {
    pub id: String,
    pub agent: String,
    pub state: State,
    /// Why it ended as it did, when it did not succeed.
    pub reason: Option<String>,
    /// Attempts made (0 when it never ran).
    pub attempts: u32,
    /// The locks of its last attempt.
    pub locks: Vec<LockGrant>,
    /// The agent's output bytes, when it succeeded.
    pub output: Option<Vec<u8>>,
    /// The report of its last attempt.
    pub run: Option<RunReport>,
}

/// The end of a whole plan, runways in filing order.
#[derive(Debug)]
pub struct PlanReport {
    pub runways: Vec<RunwayReport>,
}

impl PlanReport {
    /// Runways that did not succeed.
    pub fn failed(&self) -> usize {
        self.runways
            .iter()
            .filter(|r| r.state != State::Succeeded)
            .count()
    }

    pub fn get(&self, id: &str) -> Option<&RunwayReport> {
        self.runways.iter().find(|r| r.id == id)
    }
}

/// Why a plan could not be carried through.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("audit trail failed, stopping: {0}")]
    Audit(#[from] AuditError),
    #[error("audit trail failed, stopping: {0}")]
    Landing(Arc<AuditError>),
    /// A bug: the dispatcher tried a move the state machine does not allow.
    #[error("{0}")]
    Illegal(#[from] IllegalMove),
}

/// Options for [`run_plan`].
#[derive(Clone)]
pub struct DispatchOptions {
    /// Sees every state change (not host calls), e.g. to print a timeline.
    pub observer: Observer,
    /// The wall clock of `earliest_start` and `expires`.
    pub clock: Arc<dyn Clock>,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            observer: Arc::new(|_| {}),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Longest the dispatcher sleeps while a runway waits for a wall-clock
/// time, so a wall clock that jumps is noticed soon.
const WALL_POLL: Duration = Duration::from_millis(250);

struct Runway {
    manifest: Manifest,
    /// The plugin this runway's records name: the one loaded at filing,
    /// then, from take-off on, the very one its run uses.
    plugin: Option<Arc<Plugin>>,
    life: Lifecycle,
    reason: Option<String>,
    /// Attempts taken off so far.
    attempt: u32,
    /// When QUEUED for a retry: not before then.
    not_before: Option<Instant>,
    /// `earliest_start` and `expires`, fixed at filing.
    start_at: Option<jiff::Timestamp>,
    expires_at: Option<jiff::Timestamp>,
    /// Its request in the tower while WAITING_LOCKS.
    ticket: Option<u64>,
    /// Who approved it and their note, once approved.
    approved: Option<(String, String)>,
    /// Who rejected or cancelled it.
    ended_by: Option<String>,
    /// The current attempt's cancel switch.
    cancel: Cancel,
    locks: Vec<LockGrant>,
    run: Option<RunReport>,
}

impl Runway {
    fn state(&self) -> State {
        self.life.state()
    }

    fn move_to(&mut self, to: State) -> Result<(), IllegalMove> {
        self.life.enter(&self.manifest.id, to)
    }

    /// Will not move again: final, or failed with no retry coming.
    fn ended(&self) -> bool {
        let state = self.state();
        state.is_final() || matches!(state, State::Failed | State::TimedOut)
    }

    fn report(self) -> RunwayReport {
        let output = match (self.state(), &self.run) {
            (State::Succeeded, Some(run)) => run.outcome.as_ref().ok().cloned(),
            _ => None,
        };
        RunwayReport {
            id: self.manifest.id,
            agent: self.manifest.agent,
            state: self.life.state(),
            reason: self.reason,
            attempts: self.attempt,
            locks: self.locks,
            output,
            run: self.run,
        }
    }
}

/// Files every runway of `plan` and runs them to their end.
pub async fn run_plan(
    host: Arc<Host>,
    plan: Plan,
    opts: DispatchOptions,
) -> Result<PlanReport, DispatchError> {
    let (_controls, inbox) = controls::channel();
    run_plan_with(host, plan, opts, inbox).await
}

/// [`run_plan`], taking people's commands from `inbox` while it flies.
pub async fn run_plan_with(
    host: Arc<Host>,
    plan: Plan,
    opts: DispatchOptions,
    inbox: Inbox,
) -> Result<PlanReport, DispatchError> {
    let (reply, clearances) = mpsc::unbounded_channel();
    let (landed_tx, landed) = mpsc::unbounded_channel();
    let catalog = host.plugins();
    let index: HashMap<String, usize> = plan
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    let mut dependents = vec![Vec::new(); plan.manifests.len()];
    for (i, m) in plan.manifests.iter().enumerate() {
        for a in &m.after {
            dependents[index[a]].push(i);
        }
    }
    let open = plan.manifests.len();
    let timed = (0..open)
        .filter(|&i| {
            let m = &plan.manifests[i];
            m.earliest_start.is_some() || m.expires.is_some()
        })
        .collect();
    let mut d = Dispatch {
        host,
        observer: opts.observer,
        clock: opts.clock,
        runways: plan
            .manifests
            .into_iter()
            .map(|manifest| Runway {
                plugin: catalog.get(&manifest.agent),
                manifest,
                life: Lifecycle::default(),
                reason: None,
                attempt: 0,
                not_before: None,
                start_at: None,
                expires_at: None,
                ticket: None,
                approved: None,
                ended_by: None,
                cancel: Cancel::default(),
                locks: Vec::new(),
                run: None,
            })
            .collect(),
        index,
        dependents,
        dirty: (0..open).collect(),
        timed,
        open,
        reply,
        clearances,
        landed_tx,
        landed,
        commands: inbox,
        running: JoinSet::new(),
        tasks: HashMap::new(),
        airborne: 0,
    };
    d.file()?;
    d.fly().await?;
    d.host.audit.sync()?;
    Ok(PlanReport {
        runways: d.runways.into_iter().map(Runway::report).collect(),
    })
}

struct Dispatch {
    host: Arc<Host>,
    observer: Observer,
    clock: Arc<dyn Clock>,
    runways: Vec<Runway>,
    index: HashMap<String, usize>,
    /// For each runway, the runways whose `after` names it.
    dependents: Vec<Vec<usize>>,
    /// Runways to look at again (a dependency ended), in filing order.
    dirty: BTreeSet<usize>,
    /// Waiting runways with a time to watch: an earliest start, an expiry,
    /// a retry's backoff.
    timed: BTreeSet<usize>,
    /// Runways that have not ended.
    open: usize,
    reply: mpsc::UnboundedSender<Clearance>,
    clearances: mpsc::UnboundedReceiver<Clearance>,
    /// How runs landed: (runway, report), from the landing stage.
    landed_tx: mpsc::UnboundedSender<(usize, Result<RunReport, LandingError>)>,
    landed: mpsc::UnboundedReceiver<(usize, Result<RunReport, LandingError>)>,
    commands: Inbox,
    /// Runs on a worker: each hands its run to the landing stage.
    running: JoinSet<Result<(), AuditError>>,
    tasks: HashMap<tokio::task::Id, usize>,
    /// Runways taken off and not yet landed.
    airborne: usize,
}

impl Dispatch {
    fn record(&self, i: usize, dataset: Option<String>, event: Event) -> Result<(), AuditError> {
        let r = &self.runways[i];
        let entry = Entry {
            runway: r.manifest.id.clone(),
            agent: r.manifest.agent.clone(),
            plugin: r.plugin.as_ref().map(|p| p.digest),
            dataset,
            event,
        };
        (self.observer)(&entry);
        self.host.audit.append(entry).map(drop)
    }

    /// Moves runway `i` to `to`; `event` is the move's audit record (a
    /// MOVED record with `reason` when `None`).
    fn enter(
        &mut self,
        i: usize,
        to: State,
        reason: String,
        event: Option<Event>,
    ) -> Result<(), DispatchError> {
        let from = self.runways[i].state();
        self.move_runway(i, to)?;
        // Leaving WAITING_APPROVAL is the approval: its record names who.
        let (reason, by) = match (&self.runways[i].approved, from) {
            (Some((by, note)), State::WaitingApproval) => {
                let note = if note.is_empty() {
                    String::new()
                } else {
                    format!(" ({note})")
                };
                (format!("approved{note}; {reason}"), Some(by.clone()))
            }
            _ => (reason, None),
        };
        let event = event.unwrap_or(Event::Moved {
            to,
            reason: reason.clone(),
            by,
        });
        if matches!(to, State::Failed | State::TimedOut) || to.is_final() {
            self.runways[i].reason = (to != State::Succeeded).then_some(reason);
        }
        Ok(self.record(i, None, event)?)
    }

    /// Moves runway `i` to FAILED; its FAILED record says why.
    fn fail(&mut self, i: usize, reason: String) -> Result<(), DispatchError> {
        let event = Event::Failed {
            reason: reason.clone(),
        };
        self.enter(i, State::Failed, reason, Some(event))
    }

    /// Moves runway `i` to `to` in the name of the person `by`.
    fn moved_by(
        &mut self,
        i: usize,
        to: State,
        reason: String,
        by: String,
    ) -> Result<(), DispatchError> {
        self.runways[i].ended_by = Some(by.clone());
        let event = Event::Moved {
            to,
            reason: reason.clone(),
            by: Some(by),
        };
        self.enter(i, to, reason, Some(event))
    }

    /// Moves runway `i` to `to` and keeps the books: an ending wakes its
    /// dependents; a retry opens it again.
    fn move_runway(&mut self, i: usize, to: State) -> Result<(), IllegalMove> {
        let was_ended = self.runways[i].ended();
        self.runways[i].move_to(to)?;
        let ended = self.runways[i].ended();
        if ended && !was_ended {
            self.open -= 1;
            self.timed.remove(&i);
            self.dirty.extend(self.dependents[i].iter().copied());
        } else if was_ended && !ended {
            self.open += 1;
        }
        Ok(())
    }

    fn file(&mut self) -> Result<(), AuditError> {
        let filed = self.clock.now();
        let tz = jiff::tz::TimeZone::system();
        for r in &mut self.runways {
            r.start_at = r.manifest.earliest_start.map(|w| w.resolve(filed, &tz));
            r.expires_at = r.manifest.expires.map(|w| w.resolve(filed, &tz));
        }
        for i in 0..self.runways.len() {
            let event = Event::Filing(as_filed(&self.runways[i]));
            self.record(i, None, event)?;
        }
        Ok(())
    }

    fn dep(&self, id: &str) -> &Runway {
        &self.runways[self.index[id]]
    }

    async fn fly(&mut self) -> Result<(), DispatchError> {
        loop {
            self.settle()?;
            if self.airborne == 0 && self.open == 0 {
                break;
            }
            let retry = self
                .timed
                .iter()
                .filter_map(|&i| self.runways[i].not_before)
                .min();
            let wall = self.next_wall_time().map(|at| {
                let wait = Duration::try_from(at.duration_since(self.clock.now()));
                Instant::now() + wait.unwrap_or(Duration::ZERO).min(WALL_POLL)
            });
            let wake = match (retry, wall) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let clock = self.clock.clone();
            // Clearances first, so runways granted together take off together.
            tokio::select! {
                biased;
                Some(c) = self.clearances.recv() => self.take_off(c)?,
                Some(joined) = self.running.join_next_with_id() => {
                    let id = match &joined {
                        Ok((id, _)) => *id,
                        Err(e) => e.id(),
                    };
                    let i = self.tasks.remove(&id).expect("every task is tracked");
                    self.host.tower.flown();
                    match joined {
                        Ok((_, handed)) => handed?,
                        // A panic in host code fails that run only, never the plan.
                        Err(e) => self.crashed(i, e.to_string())?,
                    }
                }
                Some((i, landed)) = self.landed.recv() => match landed {
                    Ok(report) => self.land(i, report)?,
                    Err(LandingError::Audit(e)) => return Err(DispatchError::Landing(e)),
                    Err(LandingError::Panicked(why)) => self.crashed(i, why)?,
                },
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
                () = clock.moved() => {}
                Some((command, reply)) = self.commands.rx.recv() => {
                    let answer = self.command(command)?;
                    let _ = reply.send(answer);
                }
            }
        }
        Ok(())
    }

    /// Moves every runway that can move on: a dependency that ended badly
    /// fails its dependents (repeatedly, so failure travels down whole
    /// chains); dependencies all succeeded send a runway to the tower; a
    /// retry whose backoff is over goes round again.
    fn settle(&mut self) -> Result<(), DispatchError> {
        let now = Instant::now();
        let wall = self.clock.now();
        self.dirty.extend(self.timed.iter().copied());
        while let Some(i) = self.dirty.pop_first() {
            let r = &self.runways[i];
            let waiting = matches!(
                r.state(),
                State::Queued | State::WaitingDeps | State::WaitingTime | State::WaitingLocks
            );
            if let Some(at) = r.expires_at.filter(|&at| waiting && at <= wall) {
                self.expire(i, at)?;
                continue;
            }
            if r.state() == State::WaitingTime {
                if r.start_at.is_none_or(|at| at <= wall) {
                    self.ask_for_locks(i)?;
                }
                continue;
            }
            if r.state() == State::WaitingApproval {
                if r.approved.is_some() {
                    self.when_time_comes(i, wall)?;
                }
                continue;
            }
            if !matches!(r.state(), State::Queued | State::WaitingDeps) {
                continue;
            }
            if r.not_before.is_some_and(|t| t > now) {
                continue;
            }
            let after = &r.manifest.after;
            let failed = after
                .iter()
                .find(|a| self.dep(a).ended() && self.dep(a).state() != State::Succeeded)
                .map(|a| (a.clone(), self.dep(a).state()));
            let waiting: Vec<&str> = after
                .iter()
                .filter(|a| self.dep(a).state() != State::Succeeded)
                .map(String::as_str)
                .collect();
            if let Some((dep, state)) = failed {
                let by = match &self.dep(&dep).ended_by {
                    Some(by) => format!(" by {by}"),
                    None => String::new(),
                };
                let reason = format!("dependency {dep} {}{by}", ended_as(state));
                self.fail(i, reason)?;
            } else if waiting.is_empty() {
                if self.runways[i].not_before.take().is_some() {
                    let r = &self.runways[i];
                    if r.start_at.is_none() && r.expires_at.is_none() {
                        self.timed.remove(&i);
                    }
                }
                let r = &self.runways[i];
                match (&r.manifest.approval, &r.approved) {
                    (Some(role), None) => {
                        let reason = format!("waiting for approval (role {role})");
                        self.enter(i, State::WaitingApproval, reason, None)?;
                    }
                    _ => self.when_time_comes(i, wall)?,
                }
            } else if r.state() == State::Queued {
                let reason = format!("waiting for {}", waiting.join(", "));
                self.enter(i, State::WaitingDeps, reason, None)?;
            }
        }
        Ok(())
    }

    /// Waits for its earliest start, or asks for its locks now.
    fn when_time_comes(&mut self, i: usize, wall: jiff::Timestamp) -> Result<(), DispatchError> {
        match self.runways[i].start_at.filter(|&at| at > wall) {
            Some(at) => {
                let reason = format!("not before {at}");
                self.enter(i, State::WaitingTime, reason, None)
            }
            None => self.ask_for_locks(i),
        }
    }

    /// Applies a person's command, or says why not.
    fn command(&mut self, command: Command) -> Result<Result<(), ControlError>, DispatchError> {
        let runway = match &command {
            Command::Approve { runway, .. }
            | Command::Reject { runway, .. }
            | Command::Cancel { runway, .. } => runway.clone(),
        };
        let Some(&i) = self.index.get(&runway) else {
            return Ok(Err(ControlError::Unknown(runway)));
        };
        let state = self.runways[i].state();
        if self.runways[i].ended() {
            return Ok(Err(ControlError::Ended { runway, state }));
        }
        match command {
            Command::Approve { .. } | Command::Reject { .. } if state != State::WaitingApproval => {
                return Ok(Err(ControlError::NotAwaitingApproval { runway, state }));
            }
            Command::Approve { by, note, .. } => {
                self.runways[i].approved = Some((by, note));
                self.dirty.insert(i);
            }
            Command::Reject { by, reason, .. } => {
                self.moved_by(i, State::Rejected, format!("rejected: {reason}"), by)?;
            }
            Command::Cancel { by, .. } => match state {
                // In the air: it stops at its next epoch tick, or before
                // its commit, and lands as CANCELLED.
                State::Cleared | State::Running => self.runways[i].cancel.cancel(&by),
                _ => {
                    self.take_back(i);
                    self.moved_by(i, State::Cancelled, "cancelled".into(), by)?;
                }
            },
        }
        Ok(Ok(()))
    }

    fn ask_for_locks(&mut self, i: usize) -> Result<(), DispatchError> {
        let m = &self.runways[i].manifest;
        let request = Request {
            slot: i,
            runway: m.id.clone(),
            wants: m.datasets.clone(),
            priority: m.priority,
            agent: m.agent.clone(),
            agent_limit: self.runways[i]
                .plugin
                .as_ref()
                .and_then(|p| p.grants.limits.max_running),
        };
        let (ticket, why) = self.host.tower.request(request, self.reply.clone());
        self.runways[i].ticket = Some(ticket);
        let reason = why.unwrap_or_else(|| "its locks are free".into());
        self.enter(i, State::WaitingLocks, reason, None)
    }

    /// Not cleared by its `expires`: EXPIRED, its request taken back.
    fn expire(&mut self, i: usize, at: jiff::Timestamp) -> Result<(), DispatchError> {
        self.take_back(i);
        let reason = format!("not cleared by {at}");
        self.enter(i, State::Expired, reason, None)
    }

    /// Withdraws runway `i`'s request from the tower, if it has one there.
    fn take_back(&mut self, i: usize) {
        if let Some(ticket) = self.runways[i].ticket.take() {
            self.host.tower.withdraw(ticket);
        }
    }

    /// The next wall-clock moment a waiting runway waits for.
    fn next_wall_time(&self) -> Option<jiff::Timestamp> {
        self.timed
            .iter()
            .map(|&i| &self.runways[i])
            .filter(|r| !r.ended() && !matches!(r.state(), State::Cleared | State::Running))
            .flat_map(|r| {
                let start = r.start_at.filter(|_| r.state() == State::WaitingTime);
                start.into_iter().chain(r.expires_at)
            })
            .min()
    }

    /// A run that host code panicked on: FAILED, and landed with nothing.
    fn crashed(&mut self, i: usize, why: String) -> Result<(), DispatchError> {
        let failure = RunFailure::HostFault(why);
        let reason = failure.to_string();
        self.fail(i, reason)?;
        self.land_locks(i)?;
        self.runways[i].run = Some(RunReport::failed(failure));
        self.maybe_retry(i)
    }

    fn take_off(&mut self, c: Clearance) -> Result<(), DispatchError> {
        let i = c.slot;
        self.runways[i].ticket = None;
        if self.runways[i].state() != State::WaitingLocks {
            // Expired while its clearance was on the way.
            self.grounded(i);
            return Ok(());
        }
        // The plugin as loaded now: the folder watch may have replaced it
        // since filing; from here on this run keeps this version.
        let agent = &self.runways[i].manifest.agent;
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
        self.runways[i].plugin = Some(plugin.clone());
        let cleared = Event::Cleared {
            locks: grants.clone(),
        };
        self.enter(i, State::Cleared, String::new(), Some(cleared))?;
        for g in &grants {
            let event = Event::LockGranted {
                mode: g.mode,
                token: g.token,
            };
            self.record(i, Some(g.dataset.clone()), event)?;
        }
        // Its STARTED record, appended by the run, is this move's.
        self.move_runway(i, State::Running)?;
        let r = &mut self.runways[i];
        r.attempt += 1;
        r.locks = grants.clone();
        let mut program = plugin.program();
        if let Some(window) = r.manifest.window {
            let secs = window.as_secs_f64().ceil() as u64;
            program.limits.window_secs = program.limits.window_secs.min(secs);
        }
        r.cancel = Cancel::default();
        let req = RunRequest {
            runway: r.manifest.id.clone(),
            program,
            action: r.manifest.action.clone(),
            input: r.manifest.input.clone(),
            attempt: r.attempt,
            locks: grants,
            cancel: r.cancel.clone(),
        };
        let host = self.host.clone();
        let observer = self.observer.clone();
        let landed = self.landed_tx.clone();
        let task = self.running.spawn_blocking(move || {
            let flown = sandbox::fly(host.sandbox(), req, &observer)?;
            // The dispatcher may be gone by the time the run lands (its
            // plan failed); the landing itself is the same.
            let reply = Box::new(move |report| drop(landed.send((i, report))));
            host.landing.submit(flown, reply);
            Ok(())
        });
        self.tasks.insert(task.id(), i);
        self.airborne += 1;
        Ok(())
    }

    /// A cleared runway that could not take off: its worker slot and
    /// locks go straight back.
    fn grounded(&self, i: usize) {
        let m = &self.runways[i].manifest;
        self.host.tower.flown();
        self.host.tower.release(&m.datasets, &m.id, &m.agent);
    }

    /// A run landed: its locks go back, its state follows its outcome (the
    /// landing recorded the move), and a failure may retry.
    fn land(&mut self, i: usize, report: RunReport) -> Result<(), DispatchError> {
        self.land_locks(i)?;
        let (to, reason) = match &report.outcome {
            Ok(_) => (State::Succeeded, String::new()),
            Err(reason @ RunFailure::TimedOut { .. }) => (State::TimedOut, reason.to_string()),
            Err(reason @ RunFailure::Cancelled { by }) => {
                self.runways[i].ended_by = Some(by.clone());
                (State::Cancelled, reason.to_string())
            }
            Err(reason) => (State::Failed, reason.to_string()),
        };
        self.move_runway(i, to)?;
        if to != State::Succeeded {
            self.runways[i].reason = Some(reason);
        }
        self.runways[i].run = Some(report);
        self.maybe_retry(i)
    }

    /// Releases a landed runway's locks (one RELEASE record each).
    fn land_locks(&mut self, i: usize) -> Result<(), AuditError> {
        self.airborne -= 1;
        for g in self.runways[i].locks.clone() {
            let event = Event::LockReleased {
                mode: g.mode,
                token: g.token,
            };
            self.record(i, Some(g.dataset.clone()), event)?;
        }
        let m = &self.runways[i].manifest;
        self.host.tower.release(&m.datasets, &m.id, &m.agent);
        Ok(())
    }

    /// A failed or timed-out runway with attempts left goes back to QUEUED,
    /// not before its backoff is over.
    fn maybe_retry(&mut self, i: usize) -> Result<(), DispatchError> {
        let r = &self.runways[i];
        if !matches!(r.state(), State::Failed | State::TimedOut)
            || r.attempt >= r.manifest.retry.attempts
        {
            return Ok(());
        }
        let wait = backoff(&r.manifest.retry, r.attempt);
        let reason = format!(
            "retry: attempt {} of {} in {:.3} s",
            r.attempt + 1,
            r.manifest.retry.attempts,
            wait.as_secs_f64()
        );
        self.enter(i, State::Queued, reason, None)?;
        let r = &mut self.runways[i];
        r.reason = None;
        r.not_before = Some(Instant::now() + wait);
        self.timed.insert(i);
        Ok(())
    }
}

/// A runway's manifest as its FILED record keeps it.
fn as_filed(r: &Runway) -> FiledManifest {
    let m = &r.manifest;
    let ns = |t: jiff::Timestamp| u64::try_from(t.as_nanosecond()).unwrap_or(0);
    let retry = &m.retry;
    FiledManifest {
        action: m.action.clone(),
        after: m.after.clone(),
        locks: m
            .datasets
            .iter()
            .map(|(d, &mode)| LockRequest {
                dataset: d.clone(),
                mode,
            })
            .collect(),
        priority: m.priority,
        window_ms: m.window.map(|w| w.as_millis() as u64),
        earliest_start_ns: r.start_at.map(ns),
        expires_ns: r.expires_at.map(ns),
        approval: m.approval.clone(),
        retry: (retry.attempts > 1).then_some(RetryPolicy {
            attempts: retry.attempts,
            exponential: retry.backoff == Backoff::Exponential,
            initial_ms: retry.initial.as_millis() as u64,
            max_ms: retry.max.as_millis() as u64,
            jitter: retry.jitter,
        }),
        input_digest: runway_audit::sha256(&m.input),
        input: m.input.clone(),
    }
}

/// How long to wait before the attempt after attempt number `failed`.
fn backoff(retry: &Retry, failed: u32) -> Duration {
    let wait = match retry.backoff {
        Backoff::Fixed => retry.initial,
        Backoff::Exponential => {
            let factor = 2u32.saturating_pow(failed.saturating_sub(1).min(31));
            retry.initial.saturating_mul(factor)
        }
    }
    .min(retry.max);
    if retry.jitter {
        // Equal jitter: somewhere in the upper half of the wait.
        wait / 2 + wait.mul_f64(fastrand::f64() / 2.0)
    } else {
        wait
    }
}

/// How a dependency that ended badly is named in its dependents' reason.
fn ended_as(state: State) -> &'static str {
    match state {
        State::TimedOut => "timed out",
        State::Cancelled => "was cancelled",
        State::Rejected => "was rejected",
        State::Expired => "expired",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_in_the_upper_half() {
        let retry = Retry {
            attempts: 10,
            backoff: Backoff::Exponential,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: false,
        };
        let waits: Vec<u128> = (1..=5).map(|n| backoff(&retry, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        let fixed = Retry {
            backoff: Backoff::Fixed,
            ..retry.clone()
        };
        assert_eq!(backoff(&fixed, 4), Duration::from_millis(100));
        let jittered = Retry {
            jitter: true,
            ..retry
        };
        for _ in 0..100 {
            let w = backoff(&jittered, 2);
            assert!(w >= Duration::from_millis(100) && w <= Duration::from_millis(200));
        }
    }
}
