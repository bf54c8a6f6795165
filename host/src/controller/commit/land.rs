//! Landing flown runs together, steps 1–3 of the protocol (see the
//! module doc of `commit`): [`announce`] COMMITTING, [`apply`] in one
//! store transaction, [`record`] COMMITTED and each run's end.

use std::collections::BTreeMap;
use std::time::Duration;

use runway_audit::{AuditError, AuditLog, Event, Hash, LockGrant, LockMode, State, Ticket};

use crate::sandbox::{
    CommittedTo, Flown, Observer, RunFailure, RunReport, RunRequest, Sandbox, fly,
};
use crate::store::{Change, CommitResult, DatasetStore, RunCommit, Staged};

/// Most runs one batch lands; more wait for the next.
pub const MAX_BATCH: usize = 256;

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
    let mut reports = land(host.store, host.audit, vec![flown], &|_| {})?;
    Ok(reports.pop().expect("one report per run"))
}

/// Lands `runs` together and reports each, in order; `reported` sees the
/// reports before their runs' ends are durable (a crew keeps them to go
/// with those records: `controller::crew`). Fails only when the audit
/// trail fails.
pub fn land(
    store: &DatasetStore,
    audit: &AuditLog,
    mut runs: Vec<Flown>,
    reported: &dyn Fn(&[RunReport]),
) -> Result<Vec<RunReport>, AuditError> {
    let committing = announce(audit, &mut runs)?;
    let results = apply(store, &runs, &committing);
    if !committing.is_empty() {
        crash_point("after-store-commit");
    }
    let (costs, last) = record(audit, &mut runs, &committing, results)?;
    let reports = runs.into_iter().map(Flown::into_report).zip(costs);
    let reports: Vec<RunReport> = reports
        .map(|(mut report, (wall, bytes))| {
            report.wall = wall;
            report.bytes_written = bytes;
            report
        })
        .collect();
    reported(&reports);
    if let Some(ticket) = last {
        audit.wait_durable(ticket)?;
    }
    Ok(reports)
}

/// Step 1: COMMITTING for every run that may commit writes, durable before
/// the store is touched. Returns (index into `runs`, COMMITTING seq).
fn announce(audit: &AuditLog, runs: &mut [Flown]) -> Result<Vec<(usize, u64)>, AuditError> {
    let writers: Vec<usize> = (0..runs.len())
        .filter(|&i| runs[i].outcome().is_ok() && runs[i].staged().changes() > 0)
        .collect();
    if !writers.is_empty() {
        crash_point("before-committing");
    }
    let mut committing = Vec::with_capacity(writers.len());
    let mut last = None;
    for i in writers {
        let run = &mut runs[i];
        if let Some(stop) = run.stopped() {
            run.fail(stop);
            continue;
        }
        // A kept output and published events are durable with the
        // COMMITTING, so a commit the next start finds landed has them on
        // the trail.
        run.announce_kept(audit)?;
        let event = Event::Committing {
            locks: exclusive(run.locks()).cloned().collect(),
            changes: change_digest(run.staged()),
        };
        let ticket = run.announce(audit, None, event)?;
        last = Some(ticket);
        committing.push((i, ticket.seq()));
    }
    if let Some(ticket) = last {
        audit.wait_durable(ticket)?;
        crash_point("after-committing");
    }
    Ok(committing)
}

/// Step 2: one store transaction for every run in `committing`, fences
/// first in each run's savepoint; one result per run.
fn apply(store: &DatasetStore, runs: &[Flown], committing: &[(usize, u64)]) -> Vec<CommitResult> {
    if committing.is_empty() {
        return Vec::new();
    }
    let tokens: Vec<BTreeMap<String, u64>> = committing
        .iter()
        .map(|&(i, _)| {
            exclusive(runs[i].locks())
                .map(|l| (l.dataset.clone(), l.token))
                .collect()
        })
        .collect();
    let seqs: Vec<_> = committing
        .iter()
        .map(|&(i, _)| {
            let run = &runs[i];
            move |call| run.seq_of(call)
        })
        .collect();
    let commits: Vec<RunCommit<'_>> = committing
        .iter()
        .zip(&tokens)
        .zip(&seqs)
        .map(|((&(i, seq), tokens), seq_of)| runs[i].to_commit(tokens, seq_of, seq))
        .collect();
    store.commit(&commits)
}

/// Each run's wall time and bytes written, in order.
type Costs = Vec<(Duration, u64)>;

/// Step 3: COMMITTED per dataset each run landed on, then every run's
/// COST and end, to be durable before anything is reported. Gives each
/// run's wall time and bytes written, as its COST record says them, and
/// the ticket of the last record.
fn record(
    audit: &AuditLog,
    runs: &mut [Flown],
    committing: &[(usize, u64)],
    results: Vec<CommitResult>,
) -> Result<(Costs, Option<Ticket>), AuditError> {
    let mut written = vec![0u64; runs.len()];
    for (&(i, _), result) in committing.iter().zip(results) {
        let run = &mut runs[i];
        match result {
            Ok(landed) => {
                written[i] = change_bytes(run.staged());
                let tokens: BTreeMap<String, u64> = exclusive(run.locks())
                    .map(|l| (l.dataset.clone(), l.token))
                    .collect();
                for (dataset, stats) in landed {
                    let token = tokens[&dataset];
                    let event = Event::Committed {
                        token,
                        writes: stats.writes,
                        deletes: stats.deletes,
                    };
                    let ticket = run.announce(audit, Some(dataset.clone()), event)?;
                    let seq = ticket.seq();
                    run.committed.push(CommittedTo {
                        dataset,
                        seq,
                        token,
                    });
                }
            }
            Err(e) => {
                let failure = run.commit_failed(e);
                run.fail(failure);
            }
        }
    }
    if !committing.is_empty() {
        crash_point("after-committed");
    }
    let mut last = None;
    let mut costs = Vec::with_capacity(runs.len());
    let announced: Vec<usize> = committing.iter().map(|&(i, _)| i).collect();
    for (i, run) in runs.iter_mut().enumerate() {
        if !announced.contains(&i) {
            run.announce_kept(audit)?;
        }
        let wall = run.took_off().elapsed();
        let cost = Event::Cost {
            attempt: run.attempt(),
            fuel: run.fuel_used(),
            wall_us: u64::try_from(wall.as_micros()).unwrap_or(u64::MAX),
            bytes: written[i],
        };
        run.announce(audit, None, cost)?;
        costs.push((wall, written[i]));
        let end = match (run.outcome(), run.output_digest()) {
            (Ok(_), Some(output)) => Event::Succeeded { output },
            // Out of its window: RUNNING → TIMED_OUT.
            (Err(reason @ RunFailure::TimedOut { .. }), _) => Event::Moved {
                to: State::TimedOut,
                reason: reason.to_string(),
                by: None,
            },
            (Err(reason @ RunFailure::Cancelled { by, .. }), _) => Event::Moved {
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
    Ok((costs, last))
}

/// The bytes a change set writes: every change's key, and each put's
/// value.
fn change_bytes(staged: &Staged) -> u64 {
    let bytes = staged
        .iter()
        .flat_map(|(_, changes)| changes)
        .map(|(key, staging)| {
            let value = match &staging.change {
                Change::Put(v) => v.len(),
                Change::Delete => 0,
            };
            (key.len() + value) as u64
        });
    bytes.sum()
}

fn exclusive(locks: &[LockGrant]) -> impl Iterator<Item = &LockGrant> {
    locks.iter().filter(|l| l.mode == LockMode::Exclusive)
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

/// Fault injection for the crash tests: with `RUNWAY_CRASH_AT=NAME` in the
/// environment, the process kills itself with SIGKILL at point `NAME` of
/// the protocol, as a power cut would stop it.
fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("RUNWAY_CRASH_AT").ok());
    if at.as_deref() == Some(name) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
