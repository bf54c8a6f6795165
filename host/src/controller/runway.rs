//! One runway as the controller keeps it — its manifest, its place in the
//! state machine, its attempts and its history — and the report of it a
//! caller sees ([`RunwayReport`]).

use std::sync::Arc;
use std::time::Duration;

use runway_audit::record::{FiledManifest, RetryPolicy};
use runway_audit::{Hash, LockGrant, LockRequest, State};
use tokio::time::Instant;

use super::state::{IllegalMove, Lifecycle};
use crate::controller::plan::{Backoff, Manifest, Retry};
use crate::plugin::loader::Plugin;
use crate::sandbox::{Cancel, RunReport};

/// One move of a runway, as `show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub at: jiff::Timestamp,
    pub state: State,
    pub reason: String,
    /// The person who made the move (approve, reject, cancel).
    pub by: Option<String>,
}

/// Where a runway stands, or how it ended.
#[derive(Debug, Clone)]
pub struct RunwayReport {
    /// Its runway id, unique on this host.
    pub id: String,
    /// The id its plan gave it (the same as `id` unless that was taken).
    pub name: String,
    pub agent: String,
    pub manifest: Arc<Manifest>,
    pub state: State,
    /// Why it ended as it did, when it did not succeed.
    pub reason: Option<String>,
    /// Attempts made (0 when it never ran).
    pub attempts: u32,
    /// The locks of its last attempt.
    pub locks: Vec<LockGrant>,
    /// The agent's output bytes, when it succeeded in this process.
    pub output: Option<Vec<u8>>,
    /// SHA-256 of the output, when it succeeded.
    pub output_digest: Option<Hash>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Not cleared before (its `earliest_start`, resolved at filing).
    pub start_at: Option<jiff::Timestamp>,
    /// Not cleared by then: EXPIRED (its `expires`, resolved at filing).
    pub expires_at: Option<jiff::Timestamp>,
    /// The reason of its last move: where it stands.
    pub note: String,
    /// Every move so far, oldest first (empty in lists).
    pub history: Vec<Transition>,
    /// The report of its last attempt in this process.
    pub run: Option<Arc<RunReport>>,
}

/// The course a runway has taken, as its audit records tell it: all the
/// trail keeps of it beside its manifest, so folding the trail after a
/// restart ([`super::journal`]) gives back exactly this, and who approved,
/// ended or failed it is read from its history, never kept twice.
#[derive(Debug, Clone, Default)]
pub struct Course {
    pub life: Lifecycle,
    /// Attempts taken off so far.
    pub attempt: u32,
    /// The locks of its last attempt.
    pub locks: Vec<LockGrant>,
    /// SHA-256 of its output, once it succeeded.
    pub output_digest: Option<Hash>,
    /// Every move so far, oldest first.
    pub history: Vec<Transition>,
}

impl Course {
    pub fn state(&self) -> State {
        self.life.state()
    }

    /// Will not move again: final, or failed with no retry coming.
    pub fn ended(&self) -> bool {
        ended_badly(self.state()) || self.state() == State::Succeeded
    }

    /// Why it ended as it did, when that was not a success: the reason of
    /// its last move.
    pub fn reason(&self) -> Option<&str> {
        let last = self.history.last().filter(|_| ended_badly(self.state()));
        last.map(|t| t.reason.as_str())
    }

    /// Who rejected or cancelled it.
    pub fn ended_by(&self) -> Option<&str> {
        let by_hand = matches!(self.state(), State::Rejected | State::Cancelled);
        let last = self.history.last().filter(|_| by_hand);
        last.and_then(|t| t.by.as_deref())
    }

    /// Who approved it: whoever moved it on from WAITING_APPROVAL (not
    /// ending it).
    pub fn approved_by(&self) -> Option<&str> {
        self.history
            .windows(2)
            .filter(|w| w[0].state == State::WaitingApproval)
            .filter(|w| {
                !matches!(
                    w[1].state,
                    State::Rejected | State::Cancelled | State::Expired
                )
            })
            .filter_map(|w| w[1].by.as_deref())
            .next_back()
    }

    /// Who filed it.
    pub fn filed_by(&self) -> Option<&str> {
        self.history.first().and_then(|t| t.by.as_deref())
    }
}

/// Ended and not a success: final, or FAILED / TIMED_OUT (a retry may
/// still take it round again).
fn ended_badly(state: State) -> bool {
    (state.is_final() && state != State::Succeeded)
        || matches!(state, State::Failed | State::TimedOut)
}

pub(super) struct Runway {
    /// The manifest with `id` the runway id and `after` naming runway ids.
    pub manifest: Arc<Manifest>,
    pub name: String,
    /// The plugin this runway's records name: the one loaded at filing,
    /// then, from take-off on, the very one its run uses.
    pub plugin: Option<Arc<Plugin>>,
    pub course: Course,
    /// When QUEUED for a retry: not before then.
    pub not_before: Option<Instant>,
    /// `earliest_start` and `expires`, fixed at filing.
    pub start_at: Option<jiff::Timestamp>,
    pub expires_at: Option<jiff::Timestamp>,
    /// Its request in the tower while WAITING_LOCKS.
    pub ticket: Option<u64>,
    /// An approval given and not applied yet: who, and their note.
    pub approval: Option<(String, String)>,
    /// The current attempt's cancel switch.
    pub cancel: Cancel,
    pub run: Option<Arc<RunReport>>,
}

impl Runway {
    pub fn new(manifest: Manifest, name: String, plugin: Option<Arc<Plugin>>) -> Runway {
        Runway {
            manifest: Arc::new(manifest),
            name,
            plugin,
            course: Course::default(),
            not_before: None,
            start_at: None,
            expires_at: None,
            ticket: None,
            approval: None,
            cancel: Cancel::default(),
            run: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn state(&self) -> State {
        self.course.state()
    }

    pub fn move_to(&mut self, to: State) -> Result<(), IllegalMove> {
        self.course.life.enter(&self.manifest.id, to)
    }

    /// Will not move again: final, or failed with no retry coming.
    pub fn ended(&self) -> bool {
        self.course.ended()
    }

    pub fn report(&self, with_history: bool) -> RunwayReport {
        let output = match (self.state(), &self.run) {
            (State::Succeeded, Some(run)) => run.outcome.as_ref().ok().cloned(),
            _ => None,
        };
        RunwayReport {
            id: self.manifest.id.clone(),
            name: self.name.clone(),
            agent: self.manifest.agent.clone(),
            manifest: self.manifest.clone(),
            state: self.state(),
            reason: self.course.reason().map(str::to_string),
            attempts: self.course.attempt,
            locks: self.course.locks.clone(),
            output,
            output_digest: self.course.output_digest,
            approved_by: self.course.approved_by().map(str::to_string),
            start_at: self.start_at,
            expires_at: self.expires_at,
            note: self
                .course
                .history
                .last()
                .map_or_else(String::new, |t| t.reason.clone()),
            history: if with_history {
                self.course.history.clone()
            } else {
                Vec::new()
            },
            run: self.run.clone(),
        }
    }

    /// Its manifest as its FILING record keeps it.
    pub fn as_filed(&self) -> FiledManifest {
        let m = &self.manifest;
        // Filing refuses times outside 1970..=LATEST_TIME_SECS, so every one
        // fits (exactly) in the record's unsigned nanoseconds.
        let ns = |t: jiff::Timestamp| {
            u64::try_from(t.as_nanosecond()).expect("filed times lie between 1970 and 2500")
        };
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
            window_ms: m.window.map(millis),
            earliest_start_ns: self.start_at.map(ns),
            expires_ns: self.expires_at.map(ns),
            approval: m.approval.clone(),
            retry: (retry.attempts > 1).then_some(RetryPolicy {
                attempts: retry.attempts,
                exponential: retry.backoff == Backoff::Exponential,
                initial_ms: millis(retry.initial),
                max_ms: millis(retry.max),
                jitter: retry.jitter,
            }),
            input_digest: runway_audit::sha256(&m.input),
            input: m.input.clone(),
        }
    }
}

/// The manifest a FILING record kept, for runway `id` of `agent`: the
/// inverse of [`Runway::as_filed`] (times come back resolved, so
/// `earliest_start` and `expires` are left to the caller).
pub(super) fn manifest_of(id: &str, agent: &str, filed: &FiledManifest) -> Manifest {
    let retry = match filed.retry {
        Some(r) => Retry {
            attempts: r.attempts,
            backoff: if r.exponential {
                Backoff::Exponential
            } else {
                Backoff::Fixed
            },
            initial: Duration::from_millis(r.initial_ms),
            max: Duration::from_millis(r.max_ms),
            jitter: r.jitter,
        },
        None => Retry::default(),
    };
    Manifest {
        id: id.to_string(),
        agent: agent.to_string(),
        action: filed.action.clone(),
        datasets: filed
            .locks
            .iter()
            .map(|l| (l.dataset.clone(), l.mode))
            .collect(),
        after: filed.after.clone(),
        input: filed.input.clone(),
        priority: filed.priority,
        window: filed.window_ms.map(Duration::from_millis),
        retry,
        earliest_start: None,
        expires: None,
        approval: filed.approval.clone(),
    }
}

/// A window or a retry's wait in whole milliseconds, as the trail keeps
/// it (filing refuses others, and any longer than a day).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).expect("manifest durations are at most a day")
}

/// Unix nanoseconds as a timestamp (the epoch when out of range).
pub(super) fn timestamp(ns: u64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
