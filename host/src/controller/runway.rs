//! One runway as the controller keeps it — its manifest, its place in the
//! state machine, its attempts and its history — and the report of it a
//! caller sees ([`RunwayReport`]).

use std::sync::Arc;
use std::time::Duration;

use runway_audit::record::FiledManifest;
use runway_audit::{Event, Hash, LockGrant, State};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::attempts::{AttemptReport, Kept, KeptAttempts, attempts};
use super::budget::Budget;
use super::cost::{Account, Spent};
use super::family::Progress;
use super::locks::Wants;
use super::state::{IllegalMove, Lifecycle};
use crate::controller::plan::{Backoff, Manifest, Retry};
use crate::plugin::loader::Plugin;
use crate::sandbox::hostcalls::Returned;
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
    /// The runways it delegated, in filing order (in `show` only).
    pub children: Vec<String>,
    /// What its run last said of its progress, summed with its
    /// children's (in `show` only).
    pub progress: Option<Progress>,
    /// What its condition (`when`) gave, once read.
    pub decided: Option<bool>,
    /// When it was filed, first ran and ended, from its history (kept in
    /// lists too, which leave the history out).
    pub times: Times,
    /// What its own attempts cost.
    pub cost: Spent,
    /// Its filing's budget, if the plan set one.
    pub budget: Option<Budget>,
    /// What its filing's runs have spent so far (its plan's runways, the
    /// runways delegated below them and those taking over from them).
    pub spent: Spent,
    /// Each attempt, oldest first, with what this process kept of its run
    /// (in `show` only: empty in lists).
    pub runs: Vec<AttemptReport>,
    /// The input its agent is handed, once the outputs it takes were put
    /// in (in `show` only; `None` before, and when it takes none: its
    /// manifest's input is handed as it is).
    pub resolved: Option<Vec<u8>>,
}

/// A runway's times, as its history says them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub filed: Option<jiff::Timestamp>,
    /// Its first move to RUNNING.
    pub started: Option<jiff::Timestamp>,
    /// Its last move, once it has ended for good.
    pub ended: Option<jiff::Timestamp>,
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
    /// Its output, when it is kept on the trail (a child's) and it
    /// returned one (RETURNED).
    pub output: Option<Vec<u8>>,
    /// Every move so far, oldest first.
    pub history: Vec<Transition>,
    /// What its condition (`when`) gave, once read (DECIDED).
    pub decided: Option<bool>,
    /// What its attempts cost (runs taken off, and their COST records).
    pub cost: Spent,
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
    /// Its lock set as the tower numbers it, once it first asked.
    pub wants: Option<Wants>,
    /// An approval given and not applied yet: who, and their note.
    pub approval: Option<(String, String)>,
    /// The current attempt's cancel switch.
    pub cancel: Cancel,
    /// Locks its children handed back to the current attempt, with their
    /// fresh tokens, until its run takes them (shared with its run).
    pub returned: Returned,
    pub run: Option<Arc<RunReport>>,
    /// What this process kept of its attempts' runs (log lines, output).
    pub kept: KeptAttempts,
    /// Another runway reads its output: its runs keep it on the trail.
    pub read: bool,
    /// Its input once its dependencies ended and its condition held, the
    /// outputs it takes put in (see `decide`); `None` until then, and for
    /// a runway that reads no output (its manifest's input is handed over).
    pub resolved: Option<Vec<u8>>,
    /// Its filing's budget and spend, once the controller knows it.
    pub account: Option<Account>,
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
            wants: None,
            approval: None,
            cancel: Cancel::default(),
            returned: Returned::default(),
            run: None,
            kept: KeptAttempts::default(),
            read: false,
            resolved: None,
            account: None,
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

    /// Its current attempt's run is back: its report is the last run's,
    /// and what is kept of each attempt keeps this one's.
    pub fn keep_run(&mut self, run: RunReport) {
        let kept = Kept::of(self.course.attempt, &run, self.handed());
        self.kept.keep(kept);
        self.run = Some(Arc::new(run));
    }

    /// The input its agent is handed: as resolved, or its manifest's.
    pub fn handed(&self) -> &[u8] {
        self.resolved.as_deref().unwrap_or(&self.manifest.input)
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
            children: Vec::new(),
            progress: None,
            decided: self.course.decided,
            times: self.times(),
            cost: self.course.cost,
            budget: self.account.as_ref().and_then(|a| a.budget),
            spent: self
                .account
                .as_ref()
                .map(Account::spent)
                .unwrap_or_default(),
            runs: if with_history {
                let moves = self.course.history.iter();
                attempts(
                    moves.map(|t| (t.at, t.state, t.reason.as_str())),
                    &self.kept,
                )
            } else {
                Vec::new()
            },
            resolved: with_history
                .then(|| self.resolved.clone())
                .flatten()
                .filter(|r| *r != self.manifest.input),
        }
    }

    /// When it was filed, first ran and ended.
    pub fn times(&self) -> Times {
        let history = &self.course.history;
        Times {
            filed: history.first().map(|t| t.at),
            started: history
                .iter()
                .find(|t| t.state == State::Running)
                .map(|t| t.at),
            ended: history.last().filter(|_| self.ended()).map(|t| t.at),
        }
    }

    /// Its FILING record: the whole manifest, its times resolved.
    pub fn filing(&self) -> Event {
        // Filing refuses times outside 1970..=LATEST_TIME_SECS, so every one
        // fits (exactly) in unsigned nanoseconds.
        let ns = |t: jiff::Timestamp| {
            u64::try_from(t.as_nanosecond()).expect("filed times lie between 1970 and 2500")
        };
        let layout = Layout {
            manifest: &*self.manifest,
            earliest_start_ns: self.start_at.map(ns),
            expires_ns: self.expires_at.map(ns),
        };
        Event::Filing {
            schema: MANIFEST_SCHEMA,
            manifest: serde_json::to_string(&layout).expect("a manifest is JSON"),
            input: self.manifest.input.clone(),
        }
    }
}

/// The layout of the manifest in the FILING records this host writes: the
/// serde form of [`Manifest`] and the times resolved at filing, as JSON.
pub const MANIFEST_SCHEMA: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Layout<M> {
    #[serde(flatten)]
    manifest: M,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    earliest_start_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_ns: Option<u64>,
}

/// A manifest as its FILING record gives it back, times resolved.
#[derive(Debug, Clone)]
pub struct Unfiled {
    pub manifest: Manifest,
    pub start_at: Option<jiff::Timestamp>,
    pub expires_at: Option<jiff::Timestamp>,
}

/// The manifest of runway `id` of `agent` a FILING record holds (of either
/// layout); `None` for any other record, `Err` naming what is wrong when
/// this host cannot read it.
pub(super) fn unfile(id: &str, agent: &str, event: &Event) -> Option<Result<Unfiled, String>> {
    match event {
        Event::FilingV1(filed) => Some(Ok(Unfiled {
            manifest: first_layout(id, agent, filed),
            start_at: filed.earliest_start_ns.map(timestamp),
            expires_at: filed.expires_ns.map(timestamp),
        })),
        Event::Filing {
            schema: MANIFEST_SCHEMA,
            manifest,
            input,
        } => Some(
            serde_json::from_str::<Layout<Manifest>>(manifest)
                .map(|layout| Unfiled {
                    manifest: Manifest {
                        id: id.to_string(),
                        agent: agent.to_string(),
                        input: input.clone(),
                        ..layout.manifest
                    },
                    start_at: layout.earliest_start_ns.map(timestamp),
                    expires_at: layout.expires_ns.map(timestamp),
                })
                .map_err(|e| format!("its manifest does not read: {e}")),
        ),
        Event::Filing { schema, .. } => Some(Err(format!(
            "its manifest has layout {schema}; this host reads up to {MANIFEST_SCHEMA}"
        ))),
        _ => None,
    }
}

/// The manifest a FILING record holds (either layout), when this host can
/// read it — for readers of the trail such as the event streams' dataset
/// filter.
pub fn filed_manifest(event: &Event) -> Option<Manifest> {
    let unfiled = unfile("", "", event)?.ok()?;
    Some(unfiled.manifest)
}

/// The manifest a FILING record of the first layout kept, for runway `id`
/// of `agent` (times come back resolved, beside it).
fn first_layout(id: &str, agent: &str, filed: &FiledManifest) -> Manifest {
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
        approval: filed.approval.clone(),
        // Keys the first layout did not have.
        ..Manifest::default()
    }
}

/// Unix nanoseconds as a timestamp (the epoch when out of range).
pub(super) fn timestamp(ns: u64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
