//! Executing one cleared runway: instantiate its agent in a fresh store,
//! call `run`, then commit its staged writes (success) or drop them
//! (failure, trap), and make every audit record durable before reporting.
//!
//! Runs are synchronous wasmtime calls; the dispatcher puts each on a
//! blocking thread.

use std::sync::Arc;
use std::time::Instant;

use runway_audit::{AuditError, AuditLog, Entry, Event, Hash, LockGrant, LockMode};
use wasmtime::{Engine, Store};

use super::epoch::EpochClock;
use super::failure::RunFailure;
use super::hostcalls::{AgentPre, HeldLock, RunInfo, RunLog, RunState};
use super::limiter;
use crate::grants::Limits;
use crate::store::{Change, DatasetStore, RunCommit, StoreError};

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
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The agent's output, or why the run failed.
    pub outcome: Result<Vec<u8>, RunFailure>,
    pub log: RunLog,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl RunReport {
    /// A run that ended before its agent could say anything.
    pub fn failed(reason: RunFailure) -> RunReport {
        RunReport {
            outcome: Err(reason),
            log: RunLog::new(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }
}

/// Runs one runway to its end. Fails only when the audit trail fails: then
/// nothing about the run may be reported as done.
pub fn execute(
    host: Sandbox<'_>,
    req: RunRequest,
    observer: &Observer,
) -> Result<RunReport, AuditError> {
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
    let announce =
        |state: &RunState, dataset: Option<String>, event: Event| -> Result<(), AuditError> {
            let entry = state.entry(dataset, event);
            observer(&entry);
            host.audit.append(entry).map(drop)
        };
    announce(
        store.data(),
        None,
        Event::Started {
            attempt: req.attempt,
        },
    )?;

    let called = limited
        .and_then(|()| req.program.pre.instantiate(&mut store))
        .and_then(|agent| agent.call_run(&mut store));
    // The store (and the instance in it) is dropped here: a trapped
    // instance is never entered again.
    let mut state = store.into_data();
    state.flush_audit()?;
    let mut outcome = match called {
        // The window is wall-clock time, whatever the epoch counter says.
        Ok(_) if Instant::now() > state.deadline => Err(RunFailure::TimedOut {
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
    let output = outcome.as_ref().ok().map(runway_audit::sha256);
    // A run with writes commits them; its COMMITTING record is made durable
    // first, and with it every call record before it, so no data changes
    // before the audit records of the calls that made them are on disk.
    if let Some(digest) = output
        && state.staged.changes() > 0
        && let Err(reason) = commit(host, &state, &req.locks, digest, &announce)
    {
        outcome = Err(reason);
    }
    let end = match &outcome {
        Err(reason) => Event::Failed {
            reason: reason.to_string(),
        },
        // `output` was taken from this very success.
        Ok(_) => Event::Succeeded {
            output: output.unwrap_or_default(),
        },
    };
    announce(&state, None, end)?;
    host.audit.sync()?;
    let (stdout, stderr) = state.stdio();
    Ok(RunReport {
        outcome,
        log: std::mem::take(&mut state.log),
        stdout,
        stderr,
    })
}

/// SHA-256 over the run's change set, in store order: dataset, key, and
/// the value (or a delete mark) of every staged change.
fn change_digest(staged: &crate::store::Staged) -> Hash {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (dataset, changes) in staged.iter() {
        for (key, staging) in changes {
            for part in [dataset.as_bytes(), key.as_bytes()] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
            match &staging.change {
                Change::Put(v) => {
                    h.update([1]);
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v);
                }
                Change::Delete => h.update([0]),
            }
        }
    }
    h.finalize().into()
}

/// Fault injection for the crash tests: with `RUNWAY_CRASH_AT=NAME` in the
/// environment, the process kills itself with SIGKILL at point `NAME` of
/// the commit protocol, as a power cut would stop it.
fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("RUNWAY_CRASH_AT").ok());
    if at.as_deref() == Some(name) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
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

/// Commits the run's staged changes, the protocol of DESIGN.md
/// ("Datasets"): (1) COMMITTING is appended and made durable; (2) one store
/// transaction checks every fence, applies every change and writes a
/// commits row keyed by COMMITTING's seq; (3) COMMITTED per dataset. A crash
/// between (1) and (3) is settled at the next start
/// (`controller::recovery`): the commits row says whether (2) happened.
fn commit(
    host: Sandbox<'_>,
    state: &RunState,
    locks: &[LockGrant],
    output: Hash,
    announce: &impl Fn(&RunState, Option<String>, Event) -> Result<(), AuditError>,
) -> Result<(), RunFailure> {
    let window_secs = state.limits.window_secs;
    if Instant::now() >= state.deadline {
        return Err(RunFailure::CommitTimedOut { window_secs });
    }
    let tokens = locks
        .iter()
        .filter(|l| l.mode == LockMode::Exclusive)
        .map(|l| (l.dataset.clone(), l.token))
        .collect();
    // Step 1: COMMITTING, durable before the store is touched.
    let grants: Vec<LockGrant> = locks
        .iter()
        .filter(|l| l.mode == LockMode::Exclusive)
        .cloned()
        .collect();
    let changes = change_digest(&state.staged);
    crash_point("before-committing");
    let committing = host
        .audit
        .append_durable(state.entry(
            None,
            Event::Committing {
                locks: grants,
                changes,
            },
        ))
        .map_err(|e| RunFailure::Commit(e.to_string()))?;
    crash_point("after-committing");
    // Step 2: one store transaction, fences first, with the commits row.
    let seq_of = |call| state.seq_of(call);
    let run = RunCommit {
        runway: &state.info.runway,
        agent: &state.info.agent,
        plugin: state.plugin,
        attempt: state.info.attempt,
        tokens: &tokens,
        staged: &state.staged,
        seq_of: &seq_of,
        deadline: state.deadline,
        committing_seq: committing,
        output,
    };
    let committed = host.store.commit(&run).map_err(|e| match e {
        StoreError::PastDeadline => RunFailure::CommitTimedOut { window_secs },
        e => RunFailure::Commit(e.to_string()),
    })?;
    crash_point("after-store-commit");
    // Step 3: COMMITTED per dataset (SUCCEEDED follows in `execute`).
    for (dataset, stats) in committed {
        let event = Event::Committed {
            token: tokens[&dataset],
            writes: stats.writes,
            deletes: stats.deletes,
        };
        announce(state, Some(dataset), event).map_err(|e| RunFailure::Commit(e.to_string()))?;
    }
    crash_point("after-committed");
    Ok(())
}
