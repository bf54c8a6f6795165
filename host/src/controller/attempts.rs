//! Each attempt of a runway, as `show` and the page list it: when it flew
//! and how it ended — read from the runway's history, where every RUNNING
//! move starts an attempt and the move after it ends it — and what this
//! process kept of its run: its first log lines and its output's digest
//! and first bytes ([`Kept`]).
//!
//! A runway retried after a failure keeps the failed attempt's log, the
//! one an operator needs, beside the later ones. Memory stays bounded:
//! at most [`ATTEMPTS_KEPT`] attempts per runway (the first and the
//! latest), each with at most [`ATTEMPT_LOG_LINES`] lines and
//! [`ATTEMPT_LOG_BYTES`] of them, and [`ATTEMPT_OUTPUT_BYTES`] of output.
//! An attempt flown before this process started (its history came from
//! the trail) is listed without a [`Kept`]: the trail holds no log lines.

use std::sync::Arc;

use runway_audit::{Hash, State};

use crate::limits::{
    ATTEMPT_LOG_BYTES, ATTEMPT_LOG_LINES, ATTEMPT_OUTPUT_BYTES, ATTEMPTS_KEPT, cut,
};
use crate::sandbox::RunReport;

/// What this process kept of one attempt's run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Its first log lines, as its run kept them (already neutralised by
    /// the sandbox: no control characters).
    pub log: Vec<String>,
    /// Lines it logged that `log` leaves out: past the caps here, or
    /// dropped by its run beyond its grant's `max_log_kib`.
    pub log_left_out: usize,
    /// SHA-256 of the input it was handed.
    pub input_digest: Hash,
    /// SHA-256 of its output, when it returned one.
    pub output_digest: Option<Hash>,
    /// Its output's first [`ATTEMPT_OUTPUT_BYTES`] as text (cut at a
    /// character boundary, ending in `…` when cut).
    pub output: Option<String>,
    /// Its output's whole length, in bytes (0 without one).
    pub output_bytes: usize,
}

impl Kept {
    /// What is kept of attempt `attempt`'s run `run`, handed `input`.
    pub fn of(attempt: u32, run: &RunReport, input: &[u8]) -> Kept {
        let mut log = Vec::new();
        let mut bytes = 0;
        for line in run.log.lines.iter().take(ATTEMPT_LOG_LINES) {
            if bytes + line.len() > ATTEMPT_LOG_BYTES {
                break;
            }
            bytes += line.len();
            log.push(line.clone());
        }
        let output = run.outcome.as_ref().ok();
        Kept {
            attempt,
            log_left_out: run.log.lines.len() - log.len() + run.log.dropped,
            log,
            input_digest: runway_audit::sha256(input),
            output_digest: output.map(runway_audit::sha256),
            output: output.map(|o| cut(&String::from_utf8_lossy(o), ATTEMPT_OUTPUT_BYTES)),
            output_bytes: output.map_or(0, Vec::len),
        }
    }
}

/// The attempts kept of one runway, oldest first: at most
/// [`ATTEMPTS_KEPT`], the first always among them.
#[derive(Debug, Clone, Default)]
pub struct KeptAttempts {
    kept: Vec<Arc<Kept>>,
}

// The first is kept beside at least one latest.
const _: () = assert!(ATTEMPTS_KEPT >= 2);

impl KeptAttempts {
    /// Keeps `attempt`, making room by forgetting the oldest but the first.
    pub fn keep(&mut self, attempt: Kept) {
        if self.kept.len() >= ATTEMPTS_KEPT {
            self.kept.remove(1);
        }
        self.kept.push(Arc::new(attempt));
    }

    /// What is kept of attempt `n`, if anything.
    fn get(&self, n: u32) -> Option<Arc<Kept>> {
        self.kept.iter().find(|k| k.attempt == n).cloned()
    }
}

/// One attempt of a runway: when it flew, how it ended, what was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// Its move to RUNNING.
    pub started: jiff::Timestamp,
    /// The move that ended it; `None` while it flies.
    pub ended: Option<jiff::Timestamp>,
    /// How it ended: SUCCEEDED, FAILED, TIMED_OUT or CANCELLED; `None`
    /// while it flies.
    pub state: Option<State>,
    /// The reason of the move that ended it (empty for a success).
    pub reason: String,
    /// What this process kept of its run: `None` when it flew before this
    /// process started, is still flying, or was one of the middle
    /// attempts forgotten past [`ATTEMPTS_KEPT`].
    pub kept: Option<Arc<Kept>>,
}

/// The attempts of a runway whose moves, oldest first, are `moves` (time,
/// state entered, reason): one per RUNNING move, numbered from 1, each
/// with what `kept` holds of it.
pub fn attempts<'a>(
    moves: impl IntoIterator<Item = (jiff::Timestamp, State, &'a str)>,
    kept: &KeptAttempts,
) -> Vec<AttemptReport> {
    let mut out: Vec<AttemptReport> = Vec::new();
    let mut flying = false;
    for (at, state, reason) in moves {
        if state == State::Running {
            let attempt = out.len() as u32 + 1;
            out.push(AttemptReport {
                attempt,
                started: at,
                ended: None,
                state: None,
                reason: String::new(),
                kept: kept.get(attempt),
            });
            flying = true;
        } else if std::mem::take(&mut flying)
            && let Some(last) = out.last_mut()
        {
            last.ended = Some(at);
            last.state = Some(state);
            last.reason = reason.to_string();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::RunFailure;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap()
    }

    fn run(lines: &[&str], outcome: Result<Vec<u8>, RunFailure>) -> RunReport {
        let mut report = RunReport::failed(RunFailure::HostFault("x".into()));
        report.log.lines = lines.iter().map(|l| l.to_string()).collect();
        report.outcome = outcome;
        report
    }

    #[test]
    fn each_running_move_is_an_attempt_with_what_was_kept_of_it() {
        let mut kept = KeptAttempts::default();
        let failed = run(
            &["Info first try"],
            Err(RunFailure::HostFault("boom".into())),
        );
        kept.keep(Kept::of(1, &failed, b"{}"));
        let second = run(&["Info second try"], Ok(b"{\"ok\":1}".to_vec()));
        kept.keep(Kept::of(2, &second, b"{}"));
        let moves = [
            (at(1), State::Queued, "filed"),
            (at(2), State::Running, "attempt 1"),
            (at(3), State::Failed, "boom"),
            (at(4), State::Queued, "retry: attempt 2 of 2 in 0.000 s"),
            (at(5), State::Running, "attempt 2"),
            (at(7), State::Succeeded, ""),
        ];
        let got = attempts(moves, &kept);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].started, got[0].ended), (at(2), Some(at(3))));
        assert_eq!(
            (got[0].state, got[0].reason.as_str()),
            (Some(State::Failed), "boom")
        );
        let first = got[0].kept.as_ref().unwrap();
        assert_eq!(first.log, ["Info first try"]);
        assert_eq!((first.output.as_deref(), first.output_digest), (None, None));
        assert_eq!(first.input_digest, runway_audit::sha256(b"{}"));
        assert_eq!(got[1].state, Some(State::Succeeded));
        let second = got[1].kept.as_ref().unwrap();
        assert_eq!(second.log, ["Info second try"]);
        assert_eq!(second.output.as_deref(), Some("{\"ok\":1}"));
        assert_eq!(
            second.output_digest,
            Some(runway_audit::sha256(b"{\"ok\":1}"))
        );
        // In flight, and flown before this process: no end, nothing kept.
        let moves = [
            (at(2), State::Running, "attempt 1"),
            (at(9), State::Running, "attempt 2"),
        ];
        let got = attempts(moves, &KeptAttempts::default());
        assert_eq!(
            (got[1].attempt, got[1].ended, got[1].state),
            (2, None, None)
        );
        assert!(got.iter().all(|a| a.kept.is_none()));
    }

    #[test]
    fn memory_stays_bounded_and_the_first_attempt_is_kept() {
        let mut kept = KeptAttempts::default();
        let long = "x".repeat(4000);
        let lines: Vec<&str> = (0..2 * ATTEMPT_LOG_LINES).map(|_| long.as_str()).collect();
        let big = vec![b'y'; 4 * ATTEMPT_OUTPUT_BYTES];
        for n in 1..=3 * ATTEMPTS_KEPT as u32 {
            kept.keep(Kept::of(n, &run(&lines, Ok(big.clone())), b"{}"));
        }
        let numbers: Vec<u32> = kept.kept.iter().map(|k| k.attempt).collect();
        let last = 3 * ATTEMPTS_KEPT as u32;
        let mut want = vec![1];
        want.extend(last + 2 - ATTEMPTS_KEPT as u32..=last);
        assert_eq!(numbers, want);
        for k in &kept.kept {
            let bytes: usize = k.log.iter().map(String::len).sum();
            assert!(bytes <= ATTEMPT_LOG_BYTES && k.log.len() <= ATTEMPT_LOG_LINES);
            assert_eq!(k.log.len() + k.log_left_out, lines.len());
            assert!(k.output.as_ref().unwrap().len() <= ATTEMPT_OUTPUT_BYTES);
            assert_eq!(k.output_bytes, big.len());
        }
    }
}
