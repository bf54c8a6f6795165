//! The controller ("tower"): a long-running dispatcher that files plans'
//! runways and sees each one to its end, moving it through the state
//! machine of [`state`] (one audit record per move). [`start`] starts it on
//! a [`Host`] and gives back its [`Controller`] handle; [`run_plan`] is the
//! same controller embedded for one plan.
//!
//! A runway waits for its dependencies (every runway in its `after` list
//! SUCCEEDED), its approval, its earliest start, then asks the host's
//! [`tower::Tower`] for its whole lock set, which is granted at once when
//! free (higher priority first among the ready). Cleared runways run in
//! parallel on blocking threads and land through the host's landing stage,
//! which commits many runs at once; a runway's locks are released when it
//! has landed. A failed or timed-out attempt is retried per the manifest's
//! policy, after its backoff, with fresh locks and a fresh token. When a
//! runway ends badly for good, every runway that depends on it (directly or
//! not) fails too, with a reason naming the dependency.
//!
//! At start the controller folds the audit trail ([`journal`]) back into
//! its runways, so a restart — after `kill -9` too — goes on where the
//! trail left off: waiting runways wait again, approvals stay given, a run
//! the crash cut short retries per its policy.

pub mod clock;
pub mod commit;
pub mod controls;
mod host;
pub mod journal;
pub mod locks;
pub mod plan;
mod runway;
pub mod state;
mod stats;
pub mod tower;

pub use controls::{Command, ControlError, Controller, Filed, Filing};
pub use host::Host;
pub use runway::{RunwayReport, Transition};
pub use runway_audit::State;
pub use stats::Stats;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use runway_audit::{AuditError, Entry, Event, Ticket, VerifyError};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use clock::{Clock, SystemClock};

use crate::controller::plan::{Backoff, Plan, Retry, When};
use crate::names::MAX_DATASET;
use crate::sandbox::{self, Cancel, Observer, RunFailure, RunReport, RunRequest};
use commit::LandingError;
use controls::{Inbox, Request as Asked};
use journal::Journal;
use runway::{Runway, manifest_of, timestamp};
use state::{IllegalMove, Lifecycle};
use tower::{Clearance, Request};

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

    /// The runway its plan named `name` (or whose runway id is `name`).
    pub fn get(&self, name: &str) -> Option<&RunwayReport> {
        let named = self.runways.iter().find(|r| r.name == name);
        named.or_else(|| self.runways.iter().find(|r| r.id == name))
    }
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("audit trail failed, stopping: {0}")]
    Audit(#[from] AuditError),
    #[error("audit trail failed, stopping: {0}")]
    Landing(Arc<AuditError>),
    #[error("reading the audit trail to rebuild the queue: {0}")]
    Journal(#[from] VerifyError),
    #[error("another controller runs on this host")]
    Busy,
    /// A bug: the dispatcher tried a move the state machine does not allow.
    #[error("{0}")]
    Illegal(#[from] IllegalMove),
    #[error("the controller stopped before the plan landed: {0}")]
    Control(#[from] ControlError),
    #[error("the controller's task panicked: {0}")]
    Panicked(String),
}

/// Options for [`start`] and [`run_plan`].
#[derive(Clone)]
pub struct DispatchOptions {
    /// Sees every state change (not host calls), e.g. to print a timeline.
    pub observer: Observer,
    /// The wall clock of `earliest_start` and `expires`.
    pub clock: Arc<dyn Clock>,
    /// Whoever filed a runway may not approve it (four eyes).
    pub four_eyes: bool,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            observer: Arc::new(|_| {}),
            clock: Arc::new(SystemClock),
            four_eyes: true,
        }
    }
}

/// Longest the dispatcher sleeps while a runway waits for a wall-clock
/// time, so a wall clock that jumps is noticed soon.
const WALL_POLL: Duration = Duration::from_millis(250);

/// Starts the controller on `host` (one per host at a time): folds the
/// audit trail back into runways, then serves its [`Controller`] until
/// stopped. The task ends once the runs in the air have landed.
pub fn start(
    host: Arc<Host>,
    opts: DispatchOptions,
) -> Result<(Controller, JoinHandle<Result<(), DispatchError>>), DispatchError> {
    let claim = host::Claim::new(host.clone()).ok_or(DispatchError::Busy)?;
    host.audit.sync()?;
    let journal = journal::read(host.audit.dir())?;
    let (controller, inbox) = controls::channel();
    let mut d = Dispatch::new(host, opts, inbox);
    d.restore(journal)?;
    let task = tokio::spawn(async move {
        let _claim = claim;
        let flown = d.fly().await;
        // Whoever still waits learns that the controller stopped.
        d.waiters.clear();
        flown?;
        d.host.audit.sync()?;
        Ok(())
    });
    Ok((controller, task))
}

/// Files every runway of `plan` on a controller of its own and runs them to
/// their end.
pub async fn run_plan(
    host: Arc<Host>,
    plan: Plan,
    opts: DispatchOptions,
) -> Result<PlanReport, DispatchError> {
    let filing = Filing {
        // No plan text here to digest.
        digest: [0; 32],
        once: false,
        plan,
        by: "runway run".into(),
        source: "runway run".into(),
    };
    run_embedded(host, opts, filing).await
}

/// Starts a controller on `host` for `filing` alone: files it, waits for
/// its runways to end, stops.
pub async fn run_embedded(
    host: Arc<Host>,
    opts: DispatchOptions,
    filing: Filing,
) -> Result<PlanReport, DispatchError> {
    let (controller, task) = start(host, opts)?;
    let report = file_and_wait(&controller, filing).await;
    controller.stop(false);
    let ended = task
        .await
        .map_err(|e| DispatchError::Panicked(e.to_string()));
    let report = report?;
    ended??;
    Ok(report)
}

/// Files `filing` and waits for all its runways to end.
pub async fn file_and_wait(
    controller: &Controller,
    filing: Filing,
) -> Result<PlanReport, DispatchError> {
    let filed = controller.file(filing).await?;
    let ids = filed.into_iter().map(|f| f.id).collect();
    let runways = controller.wait(ids).await?;
    Ok(PlanReport { runways })
}

/// What woke the controller.
enum Woke {
    Cleared(Clearance),
    Handed(Result<(tokio::task::Id, Result<(), AuditError>), tokio::task::JoinError>),
    Landed(usize, Result<RunReport, LandingError>),
    Time,
    Asked(Option<Asked>),
}

/// An answer to send once this step's records are durable (`true`), or
/// once the trail failed (`false`).
type Ack = Box<dyn FnOnce(bool) + Send>;

/// A caller of [`Controller::wait`]: its runways, and how many have not
/// ended yet.
struct Waiter {
    runways: Vec<usize>,
    open: usize,
    reply: tokio::sync::oneshot::Sender<Result<Vec<RunwayReport>, ControlError>>,
}

struct Dispatch {
    host: Arc<Host>,
    observer: Observer,
    clock: Arc<dyn Clock>,
    runways: Vec<Runway>,
    /// Runway id → its place in `runways`.
    index: HashMap<String, usize>,
    /// Ids not to give again (runways the trail cannot rebuild).
    reserved: HashSet<String>,
    /// Plans filed: (source, digest) → their runway ids.
    plans: HashMap<(String, runway_audit::Hash), Vec<String>>,
    /// The last suffix tried for a plan-local id already taken.
    suffixes: HashMap<String, u32>,
    /// For each runway, the runways whose `after` names it.
    dependents: Vec<Vec<usize>>,
    /// Runways to look at again (filed, a dependency ended), in filing order.
    dirty: BTreeSet<usize>,
    /// Waiting runways with a time to watch: an earliest start, an expiry,
    /// a retry's backoff.
    timed: BTreeSet<usize>,
    /// Runways that ended since the waiters were last told.
    ended: Vec<usize>,
    waiters: HashMap<u64, Waiter>,
    /// Runway → the waiters waiting for it.
    watchers: HashMap<usize, Vec<u64>>,
    next_waiter: u64,
    reply: mpsc::UnboundedSender<Clearance>,
    clearances: mpsc::UnboundedReceiver<Clearance>,
    /// How runs landed: (runway, report), from the landing stage.
    landed_tx: mpsc::UnboundedSender<(usize, Result<RunReport, LandingError>)>,
    landed: mpsc::UnboundedReceiver<(usize, Result<RunReport, LandingError>)>,
    inbox: Inbox,
    /// Answers of this step's filings and commands: sent once their
    /// records are durable, so nothing acknowledged is lost in a crash.
    acks: Vec<Ack>,
    four_eyes: bool,
    /// Every handle is gone.
    closed: bool,
    /// Clearing stopped for good; the controller ends once nothing flies.
    stopping: bool,
    /// Runs on a worker: each hands its run to the landing stage.
    running: JoinSet<Result<(), AuditError>>,
    tasks: HashMap<tokio::task::Id, usize>,
    /// Runways taken off and not yet landed.
    airborne: usize,
    stats: Stats,
}

impl Dispatch {
    fn new(host: Arc<Host>, opts: DispatchOptions, inbox: Inbox) -> Dispatch {
        let (reply, clearances) = mpsc::unbounded_channel();
        let (landed_tx, landed) = mpsc::unbounded_channel();
        Dispatch {
            host,
            observer: opts.observer,
            clock: opts.clock,
            runways: Vec::new(),
            index: HashMap::new(),
            reserved: HashSet::new(),
            plans: HashMap::new(),
            suffixes: HashMap::new(),
            dependents: Vec::new(),
            dirty: BTreeSet::new(),
            timed: BTreeSet::new(),
            ended: Vec::new(),
            waiters: HashMap::new(),
            watchers: HashMap::new(),
            next_waiter: 0,
            reply,
            clearances,
            landed_tx,
            landed,
            inbox,
            acks: Vec::new(),
            four_eyes: opts.four_eyes,
            closed: false,
            stopping: false,
            running: JoinSet::new(),
            tasks: HashMap::new(),
            airborne: 0,
            stats: Stats::default(),
        }
    }

    fn record(
        &self,
        i: usize,
        dataset: Option<String>,
        event: Event,
    ) -> Result<Ticket, AuditError> {
        let r = &self.runways[i];
        let entry = Entry {
            runway: r.id().to_string(),
            agent: r.manifest.agent.clone(),
            plugin: r.plugin.as_ref().map(|p| p.digest),
            dataset,
            event,
        };
        (self.observer)(&entry);
        self.host.audit.append(entry)
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
            by: by.clone(),
        });
        let by = match &event {
            Event::Moved { by, .. } => by.clone(),
            _ => by,
        };
        self.move_runway(i, to, &reason, by)?;
        if matches!(to, State::Failed | State::TimedOut) || to.is_final() {
            self.runways[i].reason = (to != State::Succeeded).then_some(reason);
        }
        self.record(i, None, event)?;
        Ok(())
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

    /// Moves runway `i` to `to` and keeps the books: its history, an
    /// ending wakes its dependents and waiters, a retry opens it again.
    fn move_runway(
        &mut self,
        i: usize,
        to: State,
        reason: &str,
        by: Option<String>,
    ) -> Result<(), IllegalMove> {
        let was_ended = self.runways[i].ended();
        self.runways[i].move_to(to)?;
        let at = self.clock.now();
        self.runways[i].history.push(Transition {
            at,
            state: to,
            reason: reason.to_string(),
            by,
        });
        if self.runways[i].ended() && !was_ended {
            self.timed.remove(&i);
            self.dirty.extend(self.dependents[i].iter().copied());
            self.ended.push(i);
        }
        Ok(())
    }

    /// A runway id for the plan-local id `name`: `name` itself when free,
    /// else `name-2`, `name-3`, ... (cut so it stays a name).
    fn fresh_id(&mut self, name: &str) -> String {
        let taken = |d: &Dispatch, id: &str| d.index.contains_key(id) || d.reserved.contains(id);
        if !taken(self, name) {
            return name.to_string();
        }
        let mut n = self.suffixes.get(name).copied().unwrap_or(1);
        loop {
            n += 1;
            let suffix = format!("-{n}");
            let mut base = MAX_DATASET.saturating_sub(suffix.len()).min(name.len());
            while !name.is_char_boundary(base) {
                base -= 1;
            }
            let id = format!("{}{suffix}", &name[..base]);
            if !taken(self, &id) {
                self.suffixes.insert(name.to_string(), n);
                return id;
            }
        }
    }

    /// Adds a runway and its dependency edges; it is looked at next round.
    fn add(&mut self, runway: Runway) -> usize {
        let i = self.runways.len();
        self.index.insert(runway.id().to_string(), i);
        self.dependents.push(Vec::new());
        for a in &runway.manifest.after {
            if let Some(&d) = self.index.get(a) {
                self.dependents[d].push(i);
            }
        }
        if !runway.ended() && (runway.start_at.is_some() || runway.expires_at.is_some()) {
            self.timed.insert(i);
        }
        self.runways.push(runway);
        self.dirty.insert(i);
        i
    }

    /// Files a plan: runway ids given, `after` resolved (plan-local ids
    /// first, then runways filed before), times resolved, one FILING
    /// record per runway and a PLAN record.
    fn file(&mut self, filing: Filing) -> Result<Result<Vec<Filed>, ControlError>, DispatchError> {
        if self.stopping {
            return Ok(Err(ControlError::Stopping));
        }
        let Filing {
            plan,
            by,
            source,
            digest,
            once,
        } = filing;
        let key = (source, digest);
        if let Some(ids) = self.plans.get(&key).filter(|_| once) {
            let filed = ids
                .iter()
                .map(|id| Filed {
                    name: self.runways[self.index[id]].name.clone(),
                    id: id.clone(),
                })
                .collect();
            return Ok(Ok(filed));
        }
        let (source, digest) = key;
        let local: HashSet<&str> = plan.manifests.iter().map(|m| m.id.as_str()).collect();
        for m in &plan.manifests {
            let unknown = m
                .after
                .iter()
                .find(|a| !local.contains(a.as_str()) && !self.index.contains_key(a.as_str()));
            if let Some(after) = unknown {
                return Ok(Err(ControlError::UnknownAfter {
                    runway: m.id.clone(),
                    after: after.clone(),
                }));
            }
        }
        let now = self.clock.now();
        let tz = jiff::tz::TimeZone::system();
        let mut times = Vec::with_capacity(plan.manifests.len());
        for m in &plan.manifests {
            let resolve = |key: &'static str, when: Option<When>| match when {
                None => Ok(None),
                Some(w) => w.resolve(now, &tz).map(Some).ok_or(ControlError::TooLate {
                    runway: m.id.clone(),
                    key,
                    latest: plan::latest(),
                }),
            };
            match (
                resolve("earliest_start", m.earliest_start),
                resolve("expires", m.expires),
            ) {
                (Ok(start), Ok(expires)) => times.push((start, expires)),
                (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            }
        }
        let mut ids = HashMap::new();
        let mut filed = Vec::with_capacity(plan.manifests.len());
        for m in &plan.manifests {
            let id = self.fresh_id(&m.id);
            ids.insert(m.id.clone(), id.clone());
            // Held so a later runway of this plan cannot take it.
            self.reserved.insert(id.clone());
            filed.push(Filed {
                name: m.id.clone(),
                id,
            });
        }
        let catalog = self.host.plugins();
        let first = self.runways.len();
        for (mut m, (start_at, expires_at)) in plan.manifests.into_iter().zip(times) {
            let id = ids[&m.id].clone();
            let name = std::mem::replace(&mut m.id, id);
            self.reserved.remove(&m.id);
            for a in &mut m.after {
                if let Some(id) = ids.get(a) {
                    *a = id.clone();
                }
            }
            let plugin = catalog.get(&m.agent);
            let mut runway = Runway::new(m, name, plugin);
            runway.start_at = start_at;
            runway.expires_at = expires_at;
            runway.history.push(Transition {
                at: now,
                state: State::Queued,
                reason: "filed".into(),
                by: Some(by.clone()),
            });
            self.add(runway);
        }
        for i in first..self.runways.len() {
            let event = Event::Filing(self.runways[i].as_filed());
            self.record(i, None, event)?;
        }
        let ids: Vec<String> = filed.iter().map(|f| f.id.clone()).collect();
        let plan = Event::PlanFiled {
            by,
            source: source.clone(),
            digest,
            runways: ids.clone(),
        };
        self.host.audit.append(Entry::of_host(plan))?;
        self.plans.insert((source, digest), ids);
        Ok(Ok(filed))
    }

    /// Rebuilds the runways the trail holds: ended ones as they ended,
    /// waiting ones waiting again, a run a crash cut short FAILED (and
    /// retried per its policy).
    fn restore(&mut self, journal: Journal) -> Result<(), DispatchError> {
        let journal_ids: HashSet<String> = journal.runways.iter().map(|f| f.id.clone()).collect();
        self.reserved = journal.reserved;
        for (key, ids) in journal.plans {
            // Only plans whose runways the trail holds can be answered.
            if ids.iter().all(|id| journal_ids.contains(id)) {
                self.plans.insert(key, ids);
            }
        }
        let catalog = self.host.plugins();
        for f in journal.runways {
            let manifest = manifest_of(&f.id, &f.agent, &f.filed);
            let plugin = catalog.get(&f.agent);
            let mut r = Runway::new(manifest, f.id.clone(), plugin);
            r.life = Lifecycle::restored(f.state);
            r.attempt = f.attempts;
            r.start_at = f.filed.earliest_start_ns.map(timestamp);
            r.expires_at = f.filed.expires_ns.map(timestamp);
            r.approved = f.approved_by.map(|by| (by, String::new()));
            r.ended_by = f.ended_by;
            r.reason = f.reason;
            r.locks = f.locks;
            r.output_digest = f.output;
            r.history = f.history;
            self.add(r);
        }
        if let Some(by) = &journal.paused {
            tracing::info!("clearing stays paused (paused by {by})");
            self.host.tower.set_paused(true);
        }
        for i in 0..self.runways.len() {
            let r = &self.runways[i];
            let missing = r
                .manifest
                .after
                .iter()
                .find(|a| !self.index.contains_key(*a));
            let waits_for_deps = matches!(r.state(), State::Queued | State::WaitingDeps);
            if let (Some(a), true) = (missing, waits_for_deps) {
                let reason = format!("dependency {a} cannot be rebuilt from the trail");
                self.fail(i, reason)?;
                continue;
            }
            match r.state() {
                State::Cleared => {
                    self.fail(i, "host crashed before the run began".into())?;
                    self.maybe_retry(i)?;
                }
                State::Running => {
                    self.fail(i, "host crashed during the run".into())?;
                    self.maybe_retry(i)?;
                }
                State::Failed | State::TimedOut => self.maybe_retry(i)?,
                State::WaitingLocks => {
                    self.request_locks(i);
                }
                // A retry waits out what is left of its backoff, counted
                // from its move back to QUEUED (the wait is drawn again):
                // never less than nothing, never more than the whole wait
                // (a wall clock set back while the host was down must not
                // hold a retry for as long).
                State::Queued if r.attempt > 0 => {
                    let queued = r.history.last().map(|t| t.at);
                    let wait = backoff(&r.manifest.retry, r.attempt);
                    let due = queued.and_then(|at| at.checked_add(wait).ok());
                    let left = due.map_or(wait, |due| {
                        let left = Duration::try_from(due.duration_since(self.clock.now()));
                        left.unwrap_or(Duration::ZERO).min(wait)
                    });
                    self.runways[i].not_before = Some(Instant::now() + left);
                    self.timed.insert(i);
                }
                _ => {}
            }
        }
        // Nothing to tell anyone yet.
        self.ended.clear();
        Ok(())
    }

    fn dep(&self, id: &str) -> &Runway {
        &self.runways[self.index[id]]
    }

    /// Whether the controller has work that keeps it up: it serves until
    /// stopped, then until the last run in the air has landed.
    fn done(&self) -> bool {
        self.stopping && self.airborne == 0
    }

    async fn fly(&mut self) -> Result<(), DispatchError> {
        self.settle()?;
        self.tell_waiters();
        loop {
            if self.done() {
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
            let woke = tokio::select! {
                biased;
                Some(c) = self.clearances.recv() => Woke::Cleared(c),
                Some(joined) = self.running.join_next_with_id() => Woke::Handed(joined),
                Some((i, landed)) = self.landed.recv() => Woke::Landed(i, landed),
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Woke::Time,
                () = clock.moved() => Woke::Time,
                asked = self.inbox.rx.recv(), if !self.closed => Woke::Asked(asked),
            };
            let started = std::time::Instant::now();
            self.handle(woke)?;
            self.settle()?;
            self.tell_waiters();
            self.acknowledge();
            self.stats.record(started.elapsed());
        }
        Ok(())
    }

    fn handle(&mut self, woke: Woke) -> Result<(), DispatchError> {
        match woke {
            Woke::Cleared(c) => self.take_off(c)?,
            Woke::Handed(joined) => {
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
            Woke::Landed(i, landed) => match landed {
                Ok(report) => self.land(i, report)?,
                Err(LandingError::Audit(e)) => return Err(DispatchError::Landing(e)),
                Err(LandingError::Panicked(why)) => self.crashed(i, why)?,
            },
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
                self.ack(answer, reply);
            }
            Asked::File(filing, reply) => {
                let answer = self.file(*filing)?;
                self.ack(answer, reply);
            }
            Asked::List(reply) => {
                let all = self.runways.iter().map(|r| r.report(false)).collect();
                let _ = reply.send(Ok(all));
            }
            Asked::Show(id, reply) => {
                let found = match self.index.get(&id) {
                    Some(&i) => Ok(self.runways[i].report(true)),
                    None => Err(ControlError::Unknown(id)),
                };
                let _ = reply.send(found);
            }
            Asked::Wait(ids, reply) => {
                let mut runways = Vec::with_capacity(ids.len());
                for id in ids {
                    match self.index.get(&id) {
                        Some(&i) => runways.push(i),
                        None => {
                            let _ = reply.send(Err(ControlError::Unknown(id)));
                            return Ok(());
                        }
                    }
                }
                let open: Vec<usize> = runways
                    .iter()
                    .copied()
                    .filter(|&i| !self.runways[i].ended())
                    .collect();
                let waiter = Waiter {
                    open: open.len(),
                    runways,
                    reply,
                };
                if waiter.open == 0 {
                    self.tell(waiter);
                } else {
                    let w = self.next_waiter;
                    self.next_waiter += 1;
                    for i in open {
                        self.watchers.entry(i).or_default().push(w);
                    }
                    self.waiters.insert(w, waiter);
                }
            }
            Asked::Stop { cancel } => self.stop(cancel),
            Asked::Stats(reply) => drop(reply.send(Ok(self.stats.clone()))),
        }
        Ok(())
    }

    /// Answers `reply` with `answer`: a refusal at once (nothing changed),
    /// what was done once its records are durable.
    fn ack<T: Send + 'static>(
        &mut self,
        answer: Result<T, ControlError>,
        reply: tokio::sync::oneshot::Sender<Result<T, ControlError>>,
    ) {
        match answer {
            Err(refused) => drop(reply.send(Err(refused))),
            Ok(done) => self.acks.push(Box::new(move |durable| {
                let _ = reply.send(if durable {
                    Ok(done)
                } else {
                    Err(ControlError::Stopped)
                });
            })),
        }
    }

    /// Sends this step's answers once everything appended so far is
    /// durable, without holding the loop (one wait for all of them).
    fn acknowledge(&mut self) {
        if self.acks.is_empty() {
            return;
        }
        let acks = std::mem::take(&mut self.acks);
        let audit = self.host.audit.clone();
        let last = audit.last_ticket();
        tokio::task::spawn_blocking(move || {
            let durable = last.is_none_or(|t| audit.wait_durable(t).is_ok());
            for ack in acks {
                ack(durable);
            }
        });
    }

    /// Stops clearing for good; with `cancel`, the runs in the air are
    /// stopped too: they FAIL as a crash would leave them, and are retried
    /// by their policy at the next start.
    fn stop(&mut self, cancel: bool) {
        self.stopping = true;
        self.host.tower.set_paused(true);
        if cancel {
            for r in &self.runways {
                if matches!(r.state(), State::Cleared | State::Running) {
                    r.cancel.host_stopping();
                }
            }
        }
    }

    /// Answers every waiter whose runways have all ended now.
    fn tell_waiters(&mut self) {
        for i in std::mem::take(&mut self.ended) {
            if !self.runways[i].ended() {
                continue; // it went round again
            }
            for w in self.watchers.remove(&i).unwrap_or_default() {
                let Some(waiter) = self.waiters.get_mut(&w) else {
                    continue;
                };
                waiter.open -= 1;
                if waiter.open == 0 {
                    let waiter = self.waiters.remove(&w).expect("just found");
                    self.tell(waiter);
                }
            }
        }
    }

    fn tell(&self, waiter: Waiter) {
        let reports = waiter
            .runways
            .iter()
            .map(|&i| self.runways[i].report(true))
            .collect();
        let _ = waiter.reply.send(Ok(reports));
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
                State::Queued
                    | State::WaitingDeps
                    | State::WaitingApproval
                    | State::WaitingTime
                    | State::WaitingLocks
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
            Command::Pause { by } => {
                self.host.pause(by)?;
                return Ok(Ok(()));
            }
            Command::Resume { by } => {
                if !self.stopping {
                    self.host.resume(by)?;
                }
                return Ok(Ok(()));
            }
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
            Command::Approve { by, .. }
                if self.four_eyes && self.runways[i].filed_by() == Some(by.as_str()) =>
            {
                return Ok(Err(ControlError::OwnFiling { runway, by }));
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
            Command::Pause { .. } | Command::Resume { .. } => unreachable!("answered above"),
        }
        Ok(Ok(()))
    }

    fn ask_for_locks(&mut self, i: usize) -> Result<(), DispatchError> {
        let why = self.request_locks(i);
        let reason = why.unwrap_or_else(|| "its locks are free".into());
        self.enter(i, State::WaitingLocks, reason, None)
    }

    /// Files runway `i`'s request with the tower; says what it waits
    /// behind, if anything.
    fn request_locks(&mut self, i: usize) -> Option<String> {
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
        why
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
        self.runways[i].run = Some(Arc::new(RunReport::failed(failure)));
        self.maybe_retry(i)
    }

    fn take_off(&mut self, c: Clearance) -> Result<(), DispatchError> {
        let i = c.slot;
        self.runways[i].ticket = None;
        if self.runways[i].state() != State::WaitingLocks || self.stopping {
            // Expired while its clearance was on the way, or the host is
            // stopping: it waits again after a restart.
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
        let attempt = self.runways[i].attempt + 1;
        self.move_runway(i, State::Running, &format!("attempt {attempt}"), None)?;
        let r = &mut self.runways[i];
        r.attempt = attempt;
        r.locks = grants.clone();
        let mut program = plugin.program();
        if let Some(window) = r.manifest.window {
            let secs = window.as_secs_f64().ceil() as u64;
            program.limits.window_secs = program.limits.window_secs.min(secs);
        }
        r.cancel = Cancel::default();
        let req = RunRequest {
            runway: r.id().to_string(),
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
        let by = self.runways[i]
            .ended_by
            .clone()
            .filter(|_| to == State::Cancelled);
        self.move_runway(i, to, &reason, by)?;
        if to != State::Succeeded {
            self.runways[i].reason = Some(reason);
        } else {
            let output = report.outcome.as_ref().ok();
            self.runways[i].output_digest = output.map(runway_audit::sha256);
        }
        self.runways[i].run = Some(Arc::new(report));
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
    use crate::controller::plan::Backoff;

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
