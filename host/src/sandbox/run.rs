//! Flying one cleared runway: instantiate its agent in a fresh store, call
//! `run`, and hand what it left — outcome, staged writes, call records — to
//! the landing stage (`landing.rs`), which commits or drops the writes and
//! reports.
//!
//! Runs are synchronous wasmtime calls; the dispatcher puts each on a
//! blocking thread, which takes the next run as soon as this one is handed
//! over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::{AuditError, AuditLog, Entry, Event, Hash, LockGrant, Ticket};
use wasmtime::{Engine, Store};

use super::cancel::Cancel;
use super::epoch::EpochClock;
use super::failure::RunFailure;
use super::hostcalls::{AgentPre, HeldLock, RunInfo, RunLog, RunState};
use super::landing;
use super::limiter;
use crate::limits::Limits;
use crate::store::DatasetStore;

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
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The agent's output, or why the run failed.
    pub outcome: Result<Vec<u8>, RunFailure>,
    pub log: RunLog,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From the agent's return to the report: the landing stage's wait,
    /// durable audit records and the store commit included.
    pub landing: Duration,
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
}

impl Flown {
    /// Shows `event` to the observer and appends it to the trail.
    pub(crate) fn announce(
        &self,
        audit: &AuditLog,
        dataset: Option<String>,
        event: Event,
    ) -> Result<Ticket, AuditError> {
        let entry = self.state.entry(dataset, event);
        (self.observer)(&entry);
        audit.append(entry)
    }
}

impl RunReport {
    /// A run that ended before its agent could say anything.
    pub fn failed(reason: RunFailure) -> RunReport {
        RunReport {
            outcome: Err(reason),
            log: RunLog::new(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
            landing: Duration::ZERO,
        }
    }
}

/// Runs one runway to its end and lands it alone (the dispatcher flies
/// with [`fly`] and lands through the shared landing stage instead). Fails
/// only when the audit trail fails: then nothing about the run may be
/// reported as done.
pub fn execute(
    host: Sandbox<'_>,
    req: RunRequest,
    observer: &Observer,
) -> Result<RunReport, AuditError> {
    let flown = fly(host, req, observer)?;
    let mut reports = landing::land(host.store, host.audit, vec![flown])?;
    Ok(reports.pop().expect("one report per run"))
}

/// Flies one runway: STARTED, instantiate, `run`, the call records handed
/// to the trail, the outcome judged against the run's limits. Nothing is
/// committed here.
pub fn fly(host: Sandbox<'_>, req: RunRequest, observer: &Observer) -> Result<Flown, AuditError> {
    let info = RunInfo {
        runway: req.runway.clone(),
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
    let limits = req.program.limits;
    let (mut store, limited) = new_store(host, &req.program, info);
    store.data_mut().bounds.cancel = req.cancel.clone();
    let started = store.data().entry(
        None,
        Event::Started {
            attempt: req.attempt,
        },
    );
    observer(&started);
    host.audit.append(started)?;

    let called = limited
        .and_then(|()| req.program.pre.instantiate(&mut store))
        .and_then(|agent| agent.call_run(&mut store));
    // The store (and the instance in it) is dropped here: a trapped
    // instance is never entered again.
    let mut state = store.into_data();
    state.end_reads();
    state.info.input = Vec::new();
    state.flush_audit()?;
    let outcome = match called {
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
            then: Box::new(limiter::explain_trap(&state, &limits, &trap)),
        }),
        Err(trap) => Err(limiter::explain_trap(&state, &limits, &trap)),
    };
    Ok(Flown {
        output: outcome.as_ref().ok().map(runway_audit::sha256),
        outcome,
        state,
        locks: req.locks,
        observer: observer.clone(),
        returned: Instant::now(),
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
    let limited = limiter::apply(&mut store, &limits, deadline);
    (store, limited)
}
