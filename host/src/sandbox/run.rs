//! Flying one cleared runway: instantiate its agent in a fresh store with
//! the run's limits on it, call `run`, and hand what it left — outcome,
//! staged writes, call records — as a [`Flown`] run to the controller's
//! commit protocol (`controller::commit`), which commits or drops the
//! writes and reports.
//!
//! A run of an agent that cannot wait on children is a synchronous
//! wasmtime call ([`fly`]): the dispatcher puts it on a worker thread, which
//! takes the next run as soon as this one is handed over. A run of an
//! agent that imports `orchestration` is flown with [`fly_async`]: its
//! guest runs on a fiber, suspended whenever it waits on the controller,
//! so the worker's thread is free meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::{AuditError, AuditLog, Entry, Event, Hash, LockGrant, Ticket};
use wasmtime::{Engine, Store};

use super::cancel::{Cancel, Cancelled};
use super::epoch::EpochClock;
use super::failure::RunFailure;
use super::hostcalls::{
    AgentPre, Delegator, Family, HandoffRequest, HeldLock, Publication, RunEvents, RunInfo, RunLog,
    RunState, Topics,
};
use super::trap;
use crate::limits::{Limits, MAX_TRANSFER};
use crate::store::{DatasetStore, RunCommit, Staged};

/// What runs share in a process: the engine, the datasets, the audit trail.
#[derive(Clone, Copy)]
pub struct Sandbox<'a> {
    pub engine: &'a Engine,
    pub epoch: &'a EpochClock,
    pub store: &'a Arc<DatasetStore>,
    pub audit: &'a AuditLog,
}

/// An agent ready to run: compiled, linked and pre-instantiated, with the
/// digest every audit record of its runs carries and its limits.
#[derive(Clone)]
pub struct Program {
    pub name: String,
    pub digest: Hash,
    pub limits: Limits,
    pub(crate) pre: AgentPre<RunState>,
    /// It imports `orchestration`: it may wait on children, so it flies
    /// with [`fly_async`].
    pub waits: bool,
    /// The topics its runs may publish to (`events.publish`).
    pub topics: Topics,
}

impl Program {
    /// Whether the linked component imports the orchestration interface.
    pub(crate) fn imports_orchestration(pre: &AgentPre<RunState>) -> bool {
        let component = pre.instance_pre().component();
        let engine = component.engine();
        component
            .component_type()
            .imports(engine)
            .any(|(name, _)| name.starts_with("runway:agent/orchestration@"))
    }
}

/// Something that wants to see runway state changes as they happen.
pub type Observer = Arc<dyn Fn(&Entry) + Send + Sync>;

/// What to run.
pub struct RunRequest {
    pub runway: String,
    pub program: Program,
    pub action: String,
    pub input: Vec<u8>,
    pub attempt: u32,
    pub locks: Vec<LockGrant>,
    /// Its cancel switch (the dispatcher keeps the other end).
    pub cancel: Cancel,
    /// Its way to the controller for the orchestration calls; none when
    /// it runs alone.
    pub delegator: Option<Arc<dyn Delegator>>,
    /// Its output is read by others (a child's, by its parent): kept on
    /// the trail (a RETURNED record) when it succeeds.
    pub keep_output: bool,
}

/// How a run ended. A crew sends it to the leader as it is, but for a
/// hand-off (a run that may hand off never flies on a crew).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// The agent's output, or why the run failed.
    pub outcome: Result<Vec<u8>, RunFailure>,
    pub log: RunLog,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From the agent's return to the report: the landing stage's wait,
    /// durable audit records and the store commit included.
    pub landing: Duration,
    /// Who takes over, when the run handed off (`orchestration.handoff`).
    #[serde(skip)]
    pub handoff: Option<Box<HandoffRequest>>,
    /// Fuel the run consumed.
    pub fuel_used: u64,
    /// The events it published (`events.publish`), when it succeeded,
    /// each with the audit sequence of its PUBLISHED record.
    pub published: Vec<(u64, Publication)>,
    /// From take-off (its store made) to its landing, monotonic: the
    /// `wall_us` of its COST record.
    pub wall: Duration,
    /// Keys and values of its change set that committed (0 when none did).
    pub bytes_written: u64,
    /// Its COMMITTED records, one per dataset it landed writes on.
    pub committed: Vec<CommittedTo>,
}

/// A COMMITTED record of a run: the dataset, the record's sequence number
/// and the run's fencing token on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommittedTo {
    pub dataset: String,
    pub seq: u64,
    pub token: u64,
}

/// A run whose agent has returned, on its way to the landing stage: its
/// state (staged writes, call records), locks and outcome.
pub struct Flown {
    pub(crate) state: RunState,
    pub(crate) locks: Vec<LockGrant>,
    pub(crate) outcome: Result<Vec<u8>, RunFailure>,
    /// SHA-256 of the output, when the run succeeded.
    pub(crate) output: Option<Hash>,
    pub(crate) observer: Observer,
    pub(crate) returned: Instant,
    /// Its output goes on the trail (RETURNED) before it lands.
    pub(crate) keep_output: bool,
    pub(crate) fuel_used: u64,
    /// The audit sequence of each PUBLISHED record, once announced.
    pub(crate) published_at: Vec<u64>,
    pub(crate) committed: Vec<CommittedTo>,
}

impl Flown {
    /// Shows `event` to the observer and appends it to the trail.
    pub fn announce(
        &self,
        audit: &AuditLog,
        dataset: Option<String>,
        event: Event,
    ) -> Result<Ticket, AuditError> {
        let entry = self.state.entry(dataset, event);
        (self.observer)(&entry);
        audit.append(entry)
    }

    /// The run's outcome so far: its output, or why it failed.
    pub fn outcome(&self) -> &Result<Vec<u8>, RunFailure> {
        &self.outcome
    }

    /// Ends the run badly after all (its commit did not happen).
    pub fn fail(&mut self, reason: RunFailure) {
        self.outcome = Err(reason);
    }

    /// SHA-256 of the output, when the run succeeded.
    pub fn output_digest(&self) -> Option<Hash> {
        self.output
    }

    /// The locks the run held.
    pub fn locks(&self) -> &[LockGrant] {
        &self.locks
    }

    /// Appends the records the run's success needs on the trail before it
    /// lands (durable with its COMMITTING, or before its SUCCEEDED): its
    /// output when it is kept (RETURNED), then each event it published
    /// (PUBLISHED), whose sequence numbers its report carries. Nothing
    /// when it failed.
    pub fn announce_kept(&mut self, audit: &AuditLog) -> Result<(), AuditError> {
        let Ok(output) = &self.outcome else {
            return Ok(());
        };
        if self.keep_output {
            let returned = Event::Returned {
                output: output.clone(),
            };
            self.announce(audit, None, returned)?;
        }
        for p in &self.state.events.staged {
            let published = Event::Published {
                topic: p.topic.clone(),
                payload: p.payload.clone(),
            };
            let ticket = self.announce(audit, None, published)?;
            self.published_at.push(ticket.seq());
        }
        Ok(())
    }

    /// What the run staged.
    pub fn staged(&self) -> &Staged {
        &self.state.data.staged
    }

    /// Why the run may no longer commit, if it may not: cancelled, or past
    /// its window.
    pub fn stopped(&self) -> Option<RunFailure> {
        if let Some(stop) = self.state.bounds.cancel.stopped() {
            return Some(stop.failure());
        }
        (Instant::now() >= self.state.bounds.deadline).then(|| self.commit_timed_out())
    }

    /// The failure of a commit that did not fit in the run's window.
    pub fn commit_timed_out(&self) -> RunFailure {
        RunFailure::CommitTimedOut {
            window_secs: self.state.bounds.limits.window_secs,
        }
    }

    /// The failure of a store commit that did not land.
    pub fn commit_failed(&self, error: crate::store::StoreError) -> RunFailure {
        RunFailure::commit(error, self.state.bounds.limits.window_secs)
    }

    /// The run's store commit: who it is, its exclusive `tokens`, what it
    /// staged, and `committing_seq`, its durable COMMITTING record.
    /// `seq_of` must be [`Flown::seq_of`] of this run.
    pub fn to_commit<'a>(
        &'a self,
        tokens: &'a BTreeMap<String, u64>,
        seq_of: &'a dyn Fn(u64) -> u64,
        committing_seq: u64,
    ) -> RunCommit<'a> {
        RunCommit {
            runway: &self.state.info.runway,
            agent: &self.state.info.agent,
            plugin: self.state.trail.plugin,
            attempt: self.state.info.attempt,
            tokens,
            staged: &self.state.data.staged,
            seq_of,
            deadline: self.state.bounds.deadline,
            committing_seq,
            output: self.output.unwrap_or_default(),
        }
    }

    /// The audit sequence number of the run's host call number `call`.
    pub fn seq_of(&self, call: u64) -> u64 {
        self.state.seq_of(call)
    }

    /// The run's report, once it has landed.
    pub fn into_report(mut self) -> RunReport {
        let (stdout, stderr) = self.state.stdio();
        let published = match &self.outcome {
            Ok(_) => self
                .published_at
                .iter()
                .copied()
                .zip(std::mem::take(&mut self.state.events.staged))
                .collect(),
            Err(_) => Vec::new(),
        };
        RunReport {
            outcome: self.outcome,
            log: std::mem::take(&mut self.state.output.log),
            stdout,
            stderr,
            landing: self.returned.elapsed(),
            handoff: self
                .state
                .family
                .as_mut()
                .and_then(|f| f.handoff.take())
                .map(Box::new),
            fuel_used: self.fuel_used,
            published,
            wall: Duration::ZERO,
            bytes_written: 0,
            committed: self.committed,
        }
    }

    /// The attempt this run is.
    pub fn attempt(&self) -> u32 {
        self.state.info.attempt
    }

    /// Fuel the run burnt.
    pub fn fuel_used(&self) -> u64 {
        self.fuel_used
    }

    /// When the run took off: its store was made (its window counts from
    /// then).
    pub fn took_off(&self) -> Instant {
        let bounds = &self.state.bounds;
        (bounds.deadline.checked_sub(bounds.limits.window())).unwrap_or(self.returned)
    }
}

impl RunReport {
    /// A run that succeeded on a host that could not report it (its
    /// commit was found landed): its success, and nothing else known.
    pub fn succeeded_elsewhere() -> RunReport {
        RunReport {
            outcome: Ok(Vec::new()),
            ..RunReport::failed(RunFailure::HostStopped)
        }
    }

    /// A run that ended before its agent could say anything.
    pub fn failed(reason: RunFailure) -> RunReport {
        RunReport {
            outcome: Err(reason),
            log: RunLog::new(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
            landing: Duration::ZERO,
            handoff: None,
            fuel_used: 0,
            published: Vec::new(),
            wall: Duration::ZERO,
            bytes_written: 0,
            committed: Vec::new(),
        }
    }
}

/// Flies one runway: STARTED, instantiate, `run`, the call records handed
/// to the trail, the outcome judged against the run's limits. Nothing is
/// committed here.
pub fn fly(host: Sandbox<'_>, req: RunRequest, observer: &Observer) -> Result<Flown, AuditError> {
    let keep = req.keep_output;
    let (mut store, boarded) = board(host, req, observer)?;
    let called = boarded
        .limited
        .and_then(|()| boarded.pre.instantiate(&mut store))
        .and_then(|agent| agent.call_run(&mut store));
    land_flight(store, called, boarded.locks, observer, keep)
}

/// [`fly`] for a program that [`waits`](Program::waits): the guest runs on
/// a fiber and is suspended, its thread given back, while it waits.
pub async fn fly_async(
    host: Sandbox<'_>,
    req: RunRequest,
    observer: &Observer,
) -> Result<Flown, AuditError> {
    let keep = req.keep_output;
    let (mut store, boarded) = board(host, req, observer)?;
    let called = match boarded.limited {
        Ok(()) => match boarded.pre.instantiate_async(&mut store).await {
            Ok(agent) => agent
                .func_run()
                .call_async(&mut store, ())
                .await
                .map(|(r,)| r),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    land_flight(store, called, boarded.locks, observer, keep)
}

/// What [`board`] leaves to the flight besides the store.
struct Boarded {
    limited: wasmtime::Result<()>,
    pre: AgentPre<RunState>,
    locks: Vec<LockGrant>,
}

/// A run's store, its limits on, and its STARTED record appended.
fn board(
    host: Sandbox<'_>,
    req: RunRequest,
    observer: &Observer,
) -> Result<(Store<RunState>, Boarded), AuditError> {
    let info = RunInfo {
        runway: req.runway,
        agent: req.program.name.clone(),
        action: req.action,
        input: req.input,
        attempt: req.attempt,
        locks: req
            .locks
            .iter()
            .map(|l| HeldLock {
                dataset: l.dataset.clone(),
                mode: l.mode.into(),
                token: l.token,
            })
            .collect(),
    };
    let (mut store, limited) = new_store(host, &req.program, info);
    store.data_mut().bounds.cancel = req.cancel;
    store.data_mut().family = req.delegator.map(|d| {
        let returned = d.returned();
        Family::new(d, returned)
    });
    let started = store.data().entry(
        None,
        Event::Started {
            attempt: req.attempt,
        },
    );
    observer(&started);
    host.audit.append(started)?;
    let boarded = Boarded {
        limited,
        pre: req.program.pre,
        locks: req.locks,
    };
    Ok((store, boarded))
}

/// The run's end: the store (and the instance in it) dropped — a trapped
/// instance is never entered again — its records handed to the trail and
/// its outcome judged.
fn land_flight(
    store: Store<RunState>,
    called: wasmtime::Result<Result<Vec<u8>, super::hostcalls::GuestError>>,
    locks: Vec<LockGrant>,
    observer: &Observer,
    keep_output: bool,
) -> Result<Flown, AuditError> {
    let fuel_left = store.get_fuel().unwrap_or(0);
    let mut state = store.into_data();
    let limits = state.bounds.limits;
    let fuel_used = limits.fuel.saturating_sub(fuel_left);
    // The locks its children gave back, with their fresh tokens (none
    // after this: the controller releases those that come later); those
    // still away are not the run's to commit under.
    state.take_back_locks(true);
    let mut locks = locks;
    for lock in &mut locks {
        if let Some(held) = state.lock_on(&lock.dataset) {
            lock.token = held.token;
        }
    }
    if let Some(family) = &state.family {
        locks.retain(|l| !family.away.contains_key(&l.dataset));
    }
    state.end_reads();
    state.info.input = Vec::new();
    state.flush_audit()?;
    let outcome = match called {
        // Stopped from outside: never a success, even when the guest
        // returned before its next epoch check (a cut-short sleep).
        Ok(_) if state.bounds.cancel.stopped().is_some() => {
            let stop = state.bounds.cancel.stopped().expect("just seen");
            Err(stop.failure())
        }
        // The window is wall-clock time, whatever the epoch counter says.
        Ok(_) if Instant::now() > state.bounds.deadline => Err(RunFailure::TimedOut {
            window_secs: limits.window_secs,
        }),
        Ok(Ok(output)) if output.len() > limits.max_output() => Err(RunFailure::Output {
            len: output.len(),
            max: limits.max_output(),
        }),
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(RunFailure::agent(&super::hostcalls::describe(&e))),
        Err(trap) if state.stdio_full() => Err(RunFailure::Flood {
            max: limits.max_log(),
            then: Box::new(trap::explain(&state, &limits, &trap)),
        }),
        Err(trap) => Err(trap::explain(&state, &limits, &trap)),
    };
    Ok(Flown {
        output: outcome.as_ref().ok().map(runway_audit::sha256),
        outcome,
        state,
        locks,
        observer: observer.clone(),
        returned: Instant::now(),
        keep_output,
        fuel_used,
        published_at: Vec::new(),
        committed: Vec::new(),
    })
}

/// A fresh store for one run of `program`: its [`RunState`], its window
/// starting now, and whether its limits could be applied (a run must not
/// start without them).
pub(crate) fn new_store(
    host: Sandbox<'_>,
    program: &Program,
    info: RunInfo,
) -> (Store<RunState>, wasmtime::Result<()>) {
    let limits = program.limits;
    let deadline = Instant::now() + limits.window();
    let state = RunState::new(
        info,
        program.digest,
        limits,
        deadline,
        host.epoch.hold(),
        host.store.clone(),
        host.audit.clone(),
    );
    let mut store = Store::new(host.engine, state);
    store.data_mut().events = RunEvents::new(program.topics.clone());
    let limited = bound(&mut store, &limits, deadline);
    (store, limited)
}

/// Puts `limits` on a fresh store whose window ends at `deadline`: the
/// memory limiter, fuel, the epoch deadline, hostcall fuel.
fn bound(store: &mut Store<RunState>, limits: &Limits, deadline: Instant) -> wasmtime::Result<()> {
    store.limiter(|s| &mut s.bounds.limiter);
    store.set_fuel(limits.fuel)?;
    // Every tick looks at the window and the cancel switch: past the
    // window the run traps as interrupted, cancelled it traps as such.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx| {
        if let Some(stop) = ctx.data().bounds.cancel.stopped() {
            return Err(wasmtime::Error::new(Cancelled(stop.clone())));
        }
        if Instant::now() >= deadline {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
    store.set_hostcall_fuel(MAX_TRANSFER);
    Ok(())
}
