//! `runway:agent/orchestration`: other agents run as child runways on this
//! run's behalf — `delegate`, `join`, `handoff`, `progress`.
//!
//! The sandbox sits below the controller, so it reaches it through the
//! [`Delegator`] trait, which the controller implements: a run carries one
//! (`RunState::family`) when it flies under a controller, none when it
//! runs alone (then every call here is `denied`). `delegate` and `join`
//! are async host calls: the guest is suspended on its fiber while the
//! controller files the child or waits for the children, and the thread
//! goes back to the workers. Every call leaves one audit record, as every
//! host call does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use runway_audit::Call;
use tokio::sync::oneshot;

use super::runway::agent::orchestration::{
    Child, ChildResult, Delegation, HandoffRequest, Host, JoinMode,
};
use super::{GuestError, NO_DATA, RunState, Target, digest_parts};
use crate::limits::{MAX_JOIN, MAX_PROGRESS_MESSAGE, cut};
use crate::sandbox::cancel::{Cancel, Cancelled};
use crate::sandbox::failure::HostFault;

/// What a run's orchestration calls reach: the controller, seen from the
/// sandbox. Each answer comes down a oneshot channel; a dropped sender
/// means the run was stopped (its cancel switch says so) or the
/// controller is gone.
pub trait Delegator: Send + Sync {
    /// Files a child of runway `parent`'s attempt `attempt`, this being
    /// the attempt's delegation number `position` (from 0); the answer
    /// comes once its FILING record is durable.
    fn delegate(
        &self,
        parent: &str,
        attempt: u32,
        position: u32,
        request: Delegation,
    ) -> oneshot::Receiver<Result<Child, GuestError>>;

    /// Waits for `children` of `parent` as `mode` says, until `until` at
    /// the latest (the join's timeout or the run's window, whichever ends
    /// first); answers every child's state.
    fn join(
        &self,
        parent: &str,
        children: Vec<Child>,
        mode: JoinMode,
        until: Instant,
    ) -> oneshot::Receiver<Result<Vec<ChildResult>, GuestError>>;

    /// Cancels `children` of `parent` that have not ended.
    fn cancel(
        &self,
        parent: &str,
        children: Vec<Child>,
    ) -> oneshot::Receiver<Result<(), GuestError>>;

    /// Checks the hand-off `to` of `parent`'s attempt `attempt` as a
    /// delegation is checked; the controller files it when the run
    /// succeeds (from its report).
    fn handoff(
        &self,
        parent: &str,
        attempt: u32,
        to: &HandoffRequest,
    ) -> oneshot::Receiver<Result<(), GuestError>>;

    /// Where the controller puts the locks the run's children hand back.
    fn returned(&self) -> Returned;

    /// Reports `parent`'s progress.
    fn progress(&self, parent: &str, done: u64, total: u64, message: String);
}

/// Locks a run's children handed back to it, each with its fresh token,
/// put here by the controller when the child lands and taken by the run at
/// its next call on a dataset (or when it returns).
pub type Returned = Arc<Mutex<Vec<(String, u64)>>>;

/// A run's part in a tree: its way to the controller, the delegations it
/// made so far, the locks it handed down and has not taken back, and the
/// hand-off it asked for.
pub struct Family {
    pub delegator: Arc<dyn Delegator>,
    delegations: u32,
    /// Dataset → the child it was handed down to.
    pub away: BTreeMap<String, String>,
    pub returned: Returned,
    pub handoff: Option<HandoffRequest>,
}

impl Family {
    pub fn new(delegator: Arc<dyn Delegator>, returned: Returned) -> Family {
        Family {
            delegator,
            delegations: 0,
            away: BTreeMap::new(),
            returned,
            handoff: None,
        }
    }
}

/// Why a run without a controller may not delegate.
const ALONE: &str = "this run has no controller (it runs alone): it cannot delegate";

/// The answer of `rx`, or the trap of a run that was stopped while it
/// waited (its `cancel` switch says so) or whose controller went away.
async fn answer<T>(rx: oneshot::Receiver<T>, cancel: Cancel) -> wasmtime::Result<T> {
    match rx.await {
        Ok(v) => Ok(v),
        Err(_) => match cancel.stopped() {
            Some(stop) => Err(wasmtime::Error::new(Cancelled(stop.clone()))),
            None => Err(wasmtime::Error::new(HostFault::Controller)),
        },
    }
}

impl RunState {
    /// The child `dataset`'s lock is handed down to, if it has not come
    /// back; locks that came back are taken first (their fresh tokens, and
    /// a new read snapshot that sees what the children committed).
    pub(crate) fn handed_to(&mut self, dataset: &str) -> Option<String> {
        self.take_back_locks();
        let family = self.family.as_ref()?;
        family.away.get(dataset).cloned()
    }

    /// Takes the locks the run's children handed back.
    pub(crate) fn take_back_locks(&mut self) {
        let Some(family) = self.family.as_mut().filter(|f| !f.away.is_empty()) else {
            return;
        };
        let back = std::mem::take(&mut *family.returned.lock().unwrap_or_else(|p| p.into_inner()));
        if back.is_empty() {
            return;
        }
        for (dataset, token) in back {
            family.away.remove(&dataset);
            if let Some(lock) = self.info.locks.iter_mut().find(|l| l.dataset == dataset) {
                lock.token = token;
            }
        }
        self.data.end_reads();
    }

    /// The datasets of `request`'s lock set this run holds (handed down
    /// if the delegation goes through), or why one may not be: it has
    /// staged changes there.
    fn to_hand_down(&self, request: &Delegation) -> Result<Vec<String>, GuestError> {
        let mut handed = Vec::new();
        for l in &request.locks {
            if self.lock_on(&l.dataset).is_none() {
                continue;
            }
            if self.data.staged.has_changes(&l.dataset) {
                return Err(GuestError::Invalid(format!(
                    "{} has this run's staged changes: hand it down before writing to it",
                    l.dataset
                )));
            }
            handed.push(l.dataset.clone());
        }
        Ok(handed)
    }
}

impl Host for RunState {
    async fn delegate(
        &mut self,
        request: Delegation,
    ) -> wasmtime::Result<Result<Child, GuestError>> {
        let args = digest_parts(&[
            request.agent.as_bytes(),
            request.action.as_bytes(),
            &request.input,
            request.key.as_deref().unwrap_or_default().as_bytes(),
        ]);
        self.take_back_locks();
        let handed = self.to_hand_down(&request);
        let answer = match (&mut self.family, handed) {
            (None, _) => Err(GuestError::Denied(ALONE.into())),
            (Some(family), Err(refused)) => {
                family.delegations += 1;
                Err(refused)
            }
            (Some(family), Ok(handed)) => {
                let position = family.delegations;
                family.delegations += 1;
                let rx = family.delegator.delegate(
                    &self.info.runway,
                    self.info.attempt,
                    position,
                    request,
                );
                let answer = answer(rx, self.bounds.cancel.clone()).await?;
                if let (Ok(child), Some(family)) = (&answer, &mut self.family) {
                    for dataset in handed {
                        family.away.insert(dataset, child.clone());
                    }
                }
                answer
            }
        };
        self.audited(Call::Delegate, Target::default(), args, answer, |child| {
            digest_parts(&[child.as_bytes()])
        })
    }

    async fn join(
        &mut self,
        children: Vec<Child>,
        mode: JoinMode,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<ChildResult>, GuestError>> {
        let parts: Vec<&[u8]> = children.iter().map(|c| c.as_bytes()).collect();
        let args = digest_parts(&parts);
        let window_end = self.bounds.deadline;
        let until = timeout_ms
            .and_then(|ms| Instant::now().checked_add(std::time::Duration::from_millis(ms)))
            .map_or(window_end, |t| t.min(window_end));
        let answer = match &self.family {
            None => Err(GuestError::Denied(ALONE.into())),
            Some(_) if children.is_empty() => {
                Err(GuestError::Invalid("join: no children named".into()))
            }
            Some(_) if children.len() > MAX_JOIN => Err(GuestError::Limit(format!(
                "join: {} children named, at most {MAX_JOIN} may be",
                children.len()
            ))),
            Some(family) => {
                let rx = family
                    .delegator
                    .join(&self.info.runway, children, mode, until);
                answer(rx, self.bounds.cancel.clone()).await?
            }
        };
        self.audited(Call::Join, Target::default(), args, answer, |results| {
            let outputs: Vec<&[u8]> = results
                .iter()
                .flat_map(|r| [r.runway.as_bytes(), r.output.as_deref().unwrap_or_default()])
                .collect();
            digest_parts(&outputs)
        })
    }

    async fn cancel(&mut self, children: Vec<Child>) -> wasmtime::Result<Result<(), GuestError>> {
        let parts: Vec<&[u8]> = children.iter().map(|c| c.as_bytes()).collect();
        let args = digest_parts(&parts);
        let answer = match &self.family {
            None => Err(GuestError::Denied(ALONE.into())),
            Some(_) if children.len() > MAX_JOIN => Err(GuestError::Limit(format!(
                "cancel: {} children named, at most {MAX_JOIN} may be",
                children.len()
            ))),
            Some(family) => {
                let rx = family.delegator.cancel(&self.info.runway, children);
                answer(rx, self.bounds.cancel.clone()).await?
            }
        };
        self.audited(Call::Cancel, Target::default(), args, answer, |()| NO_DATA)
    }

    async fn handoff(&mut self, to: HandoffRequest) -> wasmtime::Result<Result<(), GuestError>> {
        let args = digest_parts(&[
            to.agent.as_bytes(),
            to.action.as_bytes(),
            to.input.as_deref().unwrap_or_default(),
        ]);
        let answer = match &self.family {
            None => Err(GuestError::Denied(ALONE.into())),
            Some(family) if family.handoff.is_some() => Err(GuestError::Invalid(
                "handoff: this run already hands off; at most once per run".into(),
            )),
            Some(family) => {
                let rx = family
                    .delegator
                    .handoff(&self.info.runway, self.info.attempt, &to);
                answer(rx, self.bounds.cancel.clone()).await?
            }
        };
        if let (Ok(()), Some(family)) = (&answer, &mut self.family) {
            family.handoff = Some(to);
        }
        self.audited(Call::Handoff, Target::default(), args, answer, |()| NO_DATA)
    }

    fn progress(&mut self, done: u64, total: u64, message: String) -> wasmtime::Result<()> {
        let message = cut(&message, MAX_PROGRESS_MESSAGE);
        let args = digest_parts(&[
            &done.to_le_bytes(),
            &total.to_le_bytes(),
            message.as_bytes(),
        ]);
        if let Some(family) = &self.family {
            family
                .delegator
                .progress(&self.info.runway, done, total, message);
        }
        let ok: Result<(), GuestError> = Ok(());
        let _ = self.audited(Call::Progress, Target::default(), args, ok, |()| NO_DATA)?;
        Ok(())
    }
}
