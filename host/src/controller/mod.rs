//! The controller ("tower"): a long-running dispatcher that files plans'
//! runways and sees each one to its end, moving it through the state
//! machine of [`state`] (one audit record per move). [`start`] starts it on
//! a [`Host`] and gives back its [`Controller`] handle; [`run_plan`] is the
//! same controller embedded for one plan.
//!
//! A runway waits for its dependencies (every runway in its `after` list
//! SUCCEEDED, or SKIPPED), then its condition is read and the outputs its
//! input takes are put in ([`decide`]; false skips it), then it waits for
//! its approval, its earliest start, then asks the host's
//! [`tower::Tower`] for its whole lock set, which is granted at once when
//! free (higher priority first among the ready). Cleared runways run in
//! parallel on blocking threads and land through the host's landing stage,
//! which commits many runs at once; a runway's locks are released when it
//! has landed. A failed or timed-out attempt is retried per the manifest's
//! policy, after its backoff, with fresh locks and a fresh token. When a
//! runway ends badly for good, every runway that depends on it (directly or
//! not) fails too, with a reason naming the dependency.
//!
//! A running agent may delegate (WIT `orchestration`): its children are
//! runways filed by the controller on its behalf ([`delegation`]), taking
//! locks handed down from it or free at once, cleared before runways that
//! are not children; its joins are answered here ([`joins`]) while it holds
//! no worker; a hand-off's successor is filed when it succeeds
//! ([`handoff`]); the trees' state is [`family`]'s, and the sandbox
//! reaches the controller through a [`liaison`].
//!
//! Every attempt that lands has a COST record (fuel, wall time, bytes
//! committed); the controller sums costs per filing, agent and trigger
//! ([`cost`]) and holds a plan to its `[budget]` ([`budget`], [`spend`]):
//! once spent, the plan's runways not yet cleared end BUDGET_EXHAUSTED.
//!
//! At start the controller folds the audit trail ([`journal`]) back into
//! its runways, so a restart — after `kill -9` too — goes on where the
//! trail left off: waiting runways wait again, approvals stay given, a run
//! the crash cut short retries per its policy. Hosts sharing a PostgreSQL
//! database take turns: one leads ([`standing`]) and forwards its records
//! to the shared history ([`mirror`]); the next leader folds that history
//! the same way. Meanwhile the others' crews ([`crew`]) fly what the
//! leader has no worker free for: it posts those runs ([`remote`]) and
//! hears how they ended, or that their crew was lost ([`yard`]).

mod agents;
mod attempts;
mod book;
mod breaker;
mod budget;
pub(crate) mod clock;
mod commands;
pub(crate) mod commit;
mod condition;
pub(crate) mod controls;
mod cost;
mod crew;
mod cron;
mod decide;
mod delegation;
mod dispatch;
mod event_loop;
mod family;
mod filing;
mod filings;
mod flights;
mod flow;
mod gate;
mod handoff;
pub(crate) mod health;
mod host;
mod joins;
pub(crate) mod journal;
mod keeper;
mod landed;
mod liaison;
pub(crate) mod locks;
mod mirror;
mod order;
mod place;
pub(crate) mod plan;
pub(crate) mod policy;
mod remote;
mod restore;
mod route;
mod routing;
mod runway;
mod settle;
mod snapshot;
mod spend;
mod standing;
pub(crate) mod start;
pub(crate) mod state;
mod stats;
mod takeoff;
pub(crate) mod tower;
pub(crate) mod tree;
pub(crate) mod trigger;
mod trigger_book;
mod triggers;
mod waiters;
mod workers;
mod yard;

pub use attempts::AttemptReport;
pub use budget::Budget;
pub use clock::ManualClock;
pub use commit::{execute, land};
pub use condition::Condition;
pub use controls::{Command, ControlError, Controller, Filed, Filing};
pub use cost::{Spent, SpentView};
pub use family::Progress;
pub use filings::FilingReport;
pub use health::{AgentHealth, LastFailure};
pub use host::Host;
pub use locks::LockSet;
pub use plan::{Catalog, Lineage, Manifest, Plan, PlanError, When};
pub use route::{OnOpen, Prefer, Route};
pub use runway::{RunwayReport, Transition, filed_manifest};
pub use runway_audit::State;
pub use standing::LEASE;
pub use start::{HostSetup, Opened, PluginSource, SNAPSHOT_AFTER, StartError, open, open_on};
pub use stats::Stats;
pub use tower::{Clearance, Request, Tower};
pub use trigger::FiredBy;
pub use trigger_book::TriggerReport;

use std::sync::Arc;

use runway_audit::{AuditError, VerifyError};
use tokio::task::JoinHandle;

use clock::{Clock, SystemClock};

use crate::sandbox::Observer;
use dispatch::Dispatch;
use state::IllegalMove;

/// The end of a whole plan, runways in filing order.
#[derive(Debug)]
pub struct PlanReport {
    pub runways: Vec<RunwayReport>,
}

impl PlanReport {
    /// Runways that did not succeed (a runway skipped by its condition
    /// did not fail).
    pub fn failed(&self) -> usize {
        self.runways
            .iter()
            .filter(|r| !matches!(r.state, State::Succeeded | State::Skipped))
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
    /// A run whose crew was lost after its commit could not be settled.
    #[error("settling a run whose crew was lost: {0}")]
    Settle(String),
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

/// Starts the controller on `host` (one per host at a time): folds the
/// audit trail back into runways, then serves its [`Controller`] until
/// stopped. The task ends once the runs in the air have landed.
pub fn start(
    host: Arc<Host>,
    opts: DispatchOptions,
) -> Result<(Controller, JoinHandle<Result<(), DispatchError>>), DispatchError> {
    let claim = host::Claim::new(host.clone()).ok_or(DispatchError::Busy)?;
    host.audit.sync()?;
    let journal = match host.take_journal() {
        Some(journal) => journal,
        None => journal::read(host.audit.dir())?,
    };
    let (controller, inbox) = controls::channel();
    let mut d = Dispatch::new(host, opts, inbox);
    d.flights.yard = yard::Yard::start(&d.host, d.flights.remote_tx.clone());
    d.restore(journal)?;
    let task = tokio::spawn(async move {
        let _claim = claim;
        let flown = d.fly().await;
        // Whoever still waits learns that the controller stopped.
        d.waiters.drop_all();
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

/// Files `filing` and waits for all its runways to end, and for the roots
/// that take over from them by a hand-off (`ID.next`, filed as the runway
/// handing off succeeds), reported after them.
pub async fn file_and_wait(
    controller: &Controller,
    filing: Filing,
) -> Result<PlanReport, DispatchError> {
    let filed = controller.file(filing).await?;
    let ids = filed.into_iter().map(|f| f.id).collect();
    let mut runways = controller.wait(ids).await?;
    let mut seen = 0;
    while runways[seen..].iter().any(|r| r.state == State::Succeeded) {
        let ended: std::collections::HashSet<&str> =
            runways[seen..].iter().map(|r| r.id.as_str()).collect();
        let successors: Vec<String> = controller
            .list()
            .await?
            .into_iter()
            .filter(|r| r.manifest.lineage.is_none())
            .filter(|r| (r.manifest.handoff_from.as_deref()).is_some_and(|f| ended.contains(f)))
            .map(|r| r.id)
            .collect();
        if successors.is_empty() {
            break;
        }
        seen = runways.len();
        runways.extend(controller.wait(successors).await?);
    }
    Ok(PlanReport { runways })
}
