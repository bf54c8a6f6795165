//! The controller's door: a [`Controller`] handle files plans, answers
//! where runways stand, waits for them to land, and carries people's
//! commands (approve, reject, cancel, pause, resume). Each request is
//! answered once it was applied and its audit records (with who) are
//! durable, so nothing acknowledged is lost in a crash — or refused at once
//! with a [`ControlError`] naming why, nothing changed. Every client (the HTTP API, the plans
//! inbox, `runway run`) goes through this one handle.

use runway_audit::Hash;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::State;
use super::Stats;
use super::filings::FilingReport;
use super::health::AgentHealth;
use super::runway::RunwayReport;
use super::trigger_book::TriggerReport;
use crate::controller::plan::Plan;
use crate::roles::{Caller, Right};
use crate::sandbox::hostcalls::{
    Child, ChildResult, Delegation, GuestError, HandoffRequest, JoinMode,
};

/// A person's command, carrying its caller (name and roles): whether the
/// caller may give it is the controller's to decide ([`super::policy`]),
/// whichever door it came through.
#[derive(Debug, Clone)]
pub enum Command {
    Approve {
        runway: String,
        by: Caller,
        note: String,
    },
    Reject {
        runway: String,
        by: Caller,
        reason: String,
    },
    Cancel {
        runway: String,
        by: Caller,
    },
    /// Stop clearing runways; those in the air land as usual.
    Pause {
        by: Caller,
    },
    Resume {
        by: Caller,
    },
    /// Stop firing a trigger until it is resumed.
    PauseTrigger {
        trigger: String,
        by: Caller,
    },
    ResumeTrigger {
        trigger: String,
        by: Caller,
    },
    /// Remove a trigger for good.
    RemoveTrigger {
        trigger: String,
        by: Caller,
    },
}

impl Command {
    /// Who gives it.
    pub fn by(&self) -> &Caller {
        match self {
            Command::Approve { by, .. }
            | Command::Reject { by, .. }
            | Command::Cancel { by, .. }
            | Command::Pause { by }
            | Command::Resume { by }
            | Command::PauseTrigger { by, .. }
            | Command::ResumeTrigger { by, .. }
            | Command::RemoveTrigger { by, .. } => by,
        }
    }

    /// The runway it names (pause and resume name none).
    pub fn runway(&self) -> Option<&str> {
        match self {
            Command::Approve { runway, .. }
            | Command::Reject { runway, .. }
            | Command::Cancel { runway, .. } => Some(runway),
            Command::Pause { .. }
            | Command::Resume { .. }
            | Command::PauseTrigger { .. }
            | Command::ResumeTrigger { .. }
            | Command::RemoveTrigger { .. } => None,
        }
    }
}

/// Why a request was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    #[error("no runway {0}")]
    Unknown(String),
    #[error("runway {runway} is {}, not waiting for approval", .state.name())]
    NotAwaitingApproval { runway: String, state: State },
    #[error("runway {runway} has already ended ({})", .state.name())]
    Ended { runway: String, state: State },
    #[error("{by} filed runway {runway} and may not approve it too (four eyes)")]
    OwnFiling { runway: String, by: String },
    /// The caller's roles lack the right the command needs.
    #[error("{by} ({roles}) may not {}", .right.verb())]
    Lacks {
        by: String,
        roles: String,
        right: Right,
    },
    /// The runway waits for the approval of a role the caller does not
    /// hold.
    #[error("{by} ({roles}) may not approve runway {runway}: it waits for the role {role}")]
    NotTheRole {
        runway: String,
        by: String,
        roles: String,
        role: String,
    },
    #[error("runway {runway:?}: `after` names unknown runway {after:?}")]
    UnknownAfter { runway: String, after: String },
    #[error("runway {runway:?}: {key} resolves past {latest}, the latest time a manifest may name")]
    TooLate {
        runway: String,
        key: &'static str,
        latest: jiff::Timestamp,
    },
    #[error("the controller is stopping and files nothing more")]
    Stopping,
    #[error("the controller has stopped")]
    Stopped,
    #[error("no trigger {0}")]
    UnknownTrigger(String),
    /// A trigger was refused at filing (too many, a duplicate id).
    #[error("{0}")]
    TriggerRefused(String),
}

/// A plan to file, and who files it from where (its PLAN record says so).
#[derive(Debug, Clone)]
pub struct Filing {
    pub plan: Plan,
    pub by: String,
    /// Where it came from: `inbox NAME.toml`, `api`, `runway run`.
    pub source: String,
    /// SHA-256 of the plan as received.
    pub digest: Hash,
    /// Filed at most once: a filing with the same source and digest as an
    /// earlier one (before a restart too) gets that one's runway ids back
    /// and files nothing. The inbox files this way, so a plan taken again
    /// after a crash does not run twice.
    pub once: bool,
}

/// One filed runway: the id its plan gave it and its runway id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub name: String,
    pub id: String,
}

type Reply<T> = oneshot::Sender<Result<T, ControlError>>;

pub(super) enum Request {
    Command(Command, Reply<()>),
    File(Box<Filing>, Reply<Vec<Filed>>),
    List(Reply<Vec<RunwayReport>>),
    Show(String, Reply<RunwayReport>),
    Wait(Vec<String>, Reply<Vec<RunwayReport>>),
    Stop {
        cancel: bool,
    },
    Stats(Reply<Stats>),
    /// A run's orchestration call.
    Orchestration(Orchestration),
    Agents(Reply<Vec<AgentHealth>>),
    /// Every trigger, by id.
    Triggers(Reply<Vec<TriggerReport>>),
    Trigger(String, Reply<TriggerReport>),
    /// Every plan filed, oldest first.
    Filings(Reply<Vec<FilingReport>>),
}

/// A run's orchestration call, as the controller gets it (from its
/// `Liaison`).
pub(super) enum Orchestration {
    Delegate {
        parent: String,
        attempt: u32,
        position: u32,
        request: Box<Delegation>,
        reply: oneshot::Sender<Result<Child, GuestError>>,
    },
    Join {
        parent: String,
        children: Vec<Child>,
        mode: JoinMode,
        until: tokio::time::Instant,
        reply: oneshot::Sender<Result<Vec<ChildResult>, GuestError>>,
    },
    Cancel {
        parent: String,
        children: Vec<Child>,
        reply: oneshot::Sender<Result<(), GuestError>>,
    },
    Handoff {
        parent: String,
        attempt: u32,
        to: Box<HandoffRequest>,
        reply: oneshot::Sender<Result<(), GuestError>>,
    },
    Progress {
        runway: String,
        done: u64,
        total: u64,
        message: String,
    },
}

/// A handle on the controller; clones share it.
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::UnboundedSender<Request>,
}

/// The controller's end, and a weak way in for its runs' orchestration
/// calls.
pub(super) struct Inbox {
    pub rx: mpsc::UnboundedReceiver<Request>,
    pub weak: mpsc::WeakUnboundedSender<Request>,
}

pub(super) fn channel() -> (Controller, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let weak = tx.downgrade();
    (Controller { tx }, Inbox { rx, weak })
}

impl Controller {
    async fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(request(reply))
            .map_err(|_| ControlError::Stopped)?;
        answer.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Applies `command` (answered once its records are durable), or says
    /// why not.
    pub async fn send(&self, command: Command) -> Result<(), ControlError> {
        self.ask(|reply| Request::Command(command, reply)).await
    }

    /// Files a plan; answers with its runway ids once their FILING records
    /// are durable.
    pub async fn file(&self, filing: Filing) -> Result<Vec<Filed>, ControlError> {
        self.ask(|reply| Request::File(Box::new(filing), reply))
            .await
    }

    /// Every runway in filing order (without histories).
    pub async fn list(&self) -> Result<Vec<RunwayReport>, ControlError> {
        self.ask(Request::List).await
    }

    /// One runway with its history.
    pub async fn show(&self, id: &str) -> Result<RunwayReport, ControlError> {
        self.ask(|reply| Request::Show(id.to_string(), reply)).await
    }

    /// Waits until every runway in `ids` has ended for good, then reports
    /// them (with histories) in that order.
    pub async fn wait(&self, ids: Vec<String>) -> Result<Vec<RunwayReport>, ControlError> {
        self.ask(|reply| Request::Wait(ids, reply)).await
    }

    /// Every trigger, by id.
    pub async fn triggers(&self) -> Result<Vec<TriggerReport>, ControlError> {
        self.ask(Request::Triggers).await
    }

    /// One trigger.
    pub async fn trigger(&self, id: &str) -> Result<TriggerReport, ControlError> {
        self.ask(|reply| Request::Trigger(id.to_string(), reply))
            .await
    }

    /// How busy the controller has been.
    pub async fn stats(&self) -> Result<Stats, ControlError> {
        self.ask(Request::Stats).await
    }

    /// Every agent's health: its figures and its breaker.
    pub async fn agents(&self) -> Result<Vec<AgentHealth>, ControlError> {
        self.ask(Request::Agents).await
    }

    /// Every plan filed, oldest first, as its PLAN record says it.
    pub async fn filings(&self) -> Result<Vec<FilingReport>, ControlError> {
        self.ask(Request::Filings).await
    }

    /// Stops clearing; the controller ends once the runs in the air have
    /// landed. With `cancel`, those runs are cancelled first.
    pub fn stop(&self, cancel: bool) {
        let _ = self.tx.send(Request::Stop { cancel });
    }
}
