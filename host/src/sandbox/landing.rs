//! The landing stage: where flown runs commit their writes, end and are
//! reported, many at a time.
//!
//! A worker hands its [`Flown`] run over and takes the next one; the stage
//! lands whatever has gathered since its last batch with the commit
//! protocol of DESIGN.md ("Datasets"), grouped:
//! 1. COMMITTING for every run with writes, then **one** durable wait, which
//!    also covers every call record before them;
//! 2. **one** store transaction, each run in a savepoint of its own (a
//!    fenced or failed run lands nothing and never takes the others down);
//! 3. COMMITTED per dataset, then each run's SUCCEEDED or FAILED, and one
//!    more durable wait before anything is reported.
//!
//! Locks stay held until the report: the dispatcher releases them when it
//! hears of the landing. A crash between (1) and (3) is settled at the
//! next start (`controller::recovery`): the commits row says whether (2)
//! happened.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use runway_audit::{AuditError, AuditLog, Event, Hash, LockGrant, LockMode, State};

use super::failure::RunFailure;
use super::run::{Flown, RunReport};
use crate::store::{Change, CommitResult, DatasetStore, RunCommit, Staged, StoreError};

/// Most runs one batch lands; more wait for the next.
pub const MAX_BATCH: usize = 256;

/// Flown runs that may wait for the stage before a worker handing one
/// over waits too (the back-pressure that keeps memory bounded).
const QUEUE: usize = 2 * MAX_BATCH;

/// Why the stage could not land a run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LandingError {
    /// The audit trail failed: nothing about the run may be reported done.
    #[error("audit trail failed, stopping: {0}")]
    Audit(Arc<AuditError>),
    /// A bug in the host while landing; the run's writes did not land
    /// unless its COMMITTED records say so.
    #[error("the landing stage failed: {0}")]
    Panicked(String),
}

/// Hears how one run landed.
pub type Reply = Box<dyn FnOnce(Result<RunReport, LandingError>) + Send>;

/// The stage's thread and the queue to it.
pub struct LandingStage {
    queue: Option<SyncSender<(Flown, Reply)>>,
    thread: Option<JoinHandle<()>>,
}

impl LandingStage {
    /// Starts the stage's thread, landing into `store` and `audit`.
    pub fn start(store: Arc<DatasetStore>, audit: AuditLog) -> std::io::Result<LandingStage> {
        let (queue, arrivals) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("runway-landing".into())
            .spawn(move || serve(&store, &audit, &arrivals))?;
        Ok(LandingStage {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Hands a flown run over; `reply` hears how it landed. Blocks only
    /// while the stage is [`QUEUE`] runs behind.
    pub fn submit(&self, flown: Flown, reply: Reply) {
        let sent = match &self.queue {
            Some(queue) => queue.send((flown, reply)),
            None => Err(std::sync::mpsc::SendError((flown, reply))),
        };
        // Only a stage whose thread died refuses; the run is told so.
        if let Err(std::sync::mpsc::SendError((_, reply))) = sent {
            reply(Err(LandingError::Panicked(
                "the landing stage is gone".into(),
            )));
        }
    }
}

impl Drop for LandingStage {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has landed the rest.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(store: &DatasetStore, audit: &AuditLog, arrivals: &Receiver<(Flown, Reply)>) {
    while let Ok(first) = arrivals.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (runs, replies): (Vec<Flown>, Vec<Reply>) = batch.into_iter().unzip();
        match catch_unwind(AssertUnwindSafe(|| land(store, audit, runs))) {
            Ok(Ok(reports)) => {
                for (report, reply) in reports.into_iter().zip(replies) {
                    reply(Ok(report));
                }
            }
            Ok(Err(e)) => {
                let e = LandingError::Audit(Arc::new(e));
                for reply in replies {
                    reply(Err(e.clone()));
                }
            }
            Err(panic) => {
                let e = LandingError::Panicked(panic_text(&*panic));
                for reply in replies {
                    reply(Err(e.clone()));
                }
            }
        }
    }
}

/// Lands `runs` together (see the module doc) and reports each, in order.
/// Fails only when the audit trail fails.
pub fn land(
    store: &DatasetStore,
    audit: &AuditLog,
    mut runs: Vec<Flown>,
) -> Result<Vec<RunReport>, AuditError> {
    let writers: Vec<usize> = (0..runs.len())
        .filter(|&i| runs[i].outcome.is_ok() && runs[i].state.data.staged.changes() > 0)
        .collect();
    if !writers.is_empty() {
        crash_point("before-committing");
    }
    // Step 1: COMMITTING, durable before the store is touched.
    let mut committing = Vec::with_capacity(writers.len());
    let mut last = None;
    for i in writers {
        let run = &mut runs[i];
        if let Some(stop) = run.state.bounds.cancel.stopped() {
            run.outcome = Err(stop.failure());
            continue;
        }
        if Instant::now() >= run.state.bounds.deadline {
            run.outcome = Err(commit_timed_out(run));
            continue;
        }
        let event = Event::Committing {
            locks: exclusive(&run.locks).cloned().collect(),
            changes: change_digest(&run.state.data.staged),
        };
        let ticket = run.announce(audit, None, event)?;
        last = Some(ticket);
        committing.push((i, ticket.seq()));
    }
    if let Some(ticket) = last {
        audit.wait_durable(ticket)?;
        crash_point("after-committing");
    }
    // Step 2: one store transaction, fences first in each run's savepoint.
    let results = commit(store, &runs, &committing);
    if !committing.is_empty() {
        crash_point("after-store-commit");
    }
    // Step 3: COMMITTED per dataset, then each run's end.
    for (&(i, _), result) in committing.iter().zip(results) {
        let run = &mut runs[i];
        match result {
            Ok(landed) => {
                let tokens: BTreeMap<&str, u64> = exclusive(&run.locks)
                    .map(|l| (l.dataset.as_str(), l.token))
                    .collect();
                for (dataset, stats) in landed {
                    let event = Event::Committed {
                        token: tokens[dataset.as_str()],
                        writes: stats.writes,
                        deletes: stats.deletes,
                    };
                    run.announce(audit, Some(dataset), event)?;
                }
            }
            Err(StoreError::PastDeadline) => run.outcome = Err(commit_timed_out(run)),
            Err(e) => run.outcome = Err(RunFailure::Commit(e.to_string())),
        }
    }
    if !committing.is_empty() {
        crash_point("after-committed");
    }
    let mut last = None;
    for run in &runs {
        let end = match (&run.outcome, run.output) {
            (Ok(_), Some(output)) => Event::Succeeded { output },
            // Out of its window: RUNNING → TIMED_OUT.
            (Err(reason @ RunFailure::TimedOut { .. }), _) => Event::Moved {
                to: State::TimedOut,
                reason: reason.to_string(),
                by: None,
            },
            (Err(reason @ RunFailure::Cancelled { by }), _) => Event::Moved {
                to: State::Cancelled,
                reason: reason.to_string(),
                by: Some(by.clone()),
            },
            (Err(reason), _) => Event::Failed {
                reason: reason.to_string(),
            },
            (Ok(_), None) => unreachable!("a flown success carries its output digest"),
        };
        last = Some(run.announce(audit, None, end)?);
    }
    if let Some(ticket) = last {
        audit.wait_durable(ticket)?;
    }
    Ok(runs.into_iter().map(report).collect())
}

/// One store transaction for every run in `committing` (index into
/// `runs`, seq of its COMMITTING record).
fn commit(store: &DatasetStore, runs: &[Flown], committing: &[(usize, u64)]) -> Vec<CommitResult> {
    if committing.is_empty() {
        return Vec::new();
    }
    let tokens: Vec<BTreeMap<String, u64>> = committing
        .iter()
        .map(|&(i, _)| {
            exclusive(&runs[i].locks)
                .map(|l| (l.dataset.clone(), l.token))
                .collect()
        })
        .collect();
    let seqs: Vec<_> = committing
        .iter()
        .map(|&(i, _)| {
            let state = &runs[i].state;
            move |call| state.seq_of(call)
        })
        .collect();
    let commits: Vec<RunCommit<'_>> = committing
        .iter()
        .zip(&tokens)
        .zip(&seqs)
        .map(|((&(i, seq), tokens), seq_of)| {
            let run = &runs[i];
            RunCommit {
                runway: &run.state.info.runway,
                agent: &run.state.info.agent,
                plugin: run.state.trail.plugin,
                attempt: run.state.info.attempt,
                tokens,
                staged: &run.state.data.staged,
                seq_of,
                deadline: run.state.bounds.deadline,
                committing_seq: seq,
                output: run.output.unwrap_or_default(),
            }
        })
        .collect();
    store.commit(&commits)
}

fn report(mut run: Flown) -> RunReport {
    let (stdout, stderr) = run.state.stdio();
    RunReport {
        outcome: run.outcome,
        log: std::mem::take(&mut run.state.output.log),
        stdout,
        stderr,
        landing: run.returned.elapsed(),
    }
}

fn exclusive(locks: &[LockGrant]) -> impl Iterator<Item = &LockGrant> {
    locks.iter().filter(|l| l.mode == LockMode::Exclusive)
}

fn commit_timed_out(run: &Flown) -> RunFailure {
    RunFailure::CommitTimedOut {
        window_secs: run.state.bounds.limits.window_secs,
    }
}

/// SHA-256 over the run's change set, in store order: dataset, key, and
/// the value (or a delete mark) of every staged change.
fn change_digest(staged: &Staged) -> Hash {
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

/// What a panic said, when it said it as text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".into(),
    }
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
