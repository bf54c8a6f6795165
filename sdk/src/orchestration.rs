//! Delegating from a run: the [`Context`] calls over the WIT
//! `orchestration` interface — one child ([`Context::delegate`],
//! [`Context::join`]), a fan-out ([`Context::parallel`] and its
//! [`Parallel`] joins), a race ([`Context::first_success`]), a pipeline
//! ([`Context::chain`]), the end of this run's part ([`Context::handoff`]) —
//! and [`Context::progress`].
//!
//! Every child is a runway of its own, checked against its grants and this
//! run's, and audited. Children that did not succeed are values (a
//! [`ChildResult`] in its [`ChildState`]), not errors; the helpers that need
//! a success (`first_success`, `chain`, [`ChildResult::json`]) turn their
//! absence into [`Error::Invalid`] naming the children and how they ended.

use std::time::Duration;

use crate::delegation::millis;
use crate::{Child, ChildResult, Context, Delegation, Error, Handoff, JoinMode, host};

/// Most children an error about a join names one by one.
const NAMED_CHILDREN: usize = 8;

impl Context {
    /// Files a child runway (see [`Delegation`]); it runs as soon as a
    /// worker is free. [`Error::Denied`] when this run's grants do not name
    /// the agent or a lock, [`Error::Limit`] past the depth, children or
    /// descendants they allow, [`Error::LockLost`] when a lock it asks for
    /// is held by another.
    pub fn delegate(&self, delegation: Delegation) -> Result<Child, Error> {
        host::delegate(&delegation).map(Child)
    }

    /// Waits for `children` as `mode` says, at most `timeout` (and this
    /// run's window in any case), holding no worker. Gives back every
    /// child's state in the order asked, with the outputs of those that
    /// succeeded — on a timeout too.
    pub fn join(
        &self,
        children: &[Child],
        mode: JoinMode,
        timeout: Option<Duration>,
    ) -> Result<Vec<ChildResult>, Error> {
        join(children, mode, timeout)
    }

    /// Cancels those of `children` (this run's own) that have not ended:
    /// waiting ones at once, running ones at their next epoch tick; their
    /// staged writes are discarded and the locks handed down to them come
    /// back. Those that ended are left as they are. [`Error::Invalid`] when
    /// one is not this run's child (or is named twice).
    pub fn cancel(&self, children: &[Child]) -> Result<(), Error> {
        host::cancel(&ids(children))
    }

    /// Delegates every one of `delegations`, in order, and gives them back
    /// as one [`Parallel`] to join: `ctx.parallel(shards)?.join_all()?`.
    /// A delegation refused is the error, of its kind, saying which
    /// (`delegation 2 of 3 (agent scorer): ...`); those filed before it run
    /// anyway.
    pub fn parallel(
        &self,
        delegations: impl IntoIterator<Item = Delegation>,
    ) -> Result<Parallel, Error> {
        let delegations: Vec<Delegation> = delegations.into_iter().collect();
        let n = delegations.len();
        let children = delegations
            .into_iter()
            .enumerate()
            .map(|(i, d)| self.delegate_as(&format!("delegation {} of {n}", i + 1), d))
            .collect::<Result<_, _>>()?;
        Ok(Parallel {
            children,
            timeout: None,
        })
    }

    /// Races `delegations`: the first child to succeed wins, the others are
    /// cancelled (their staged writes discarded, their tokens fenced).
    /// Shorthand for `ctx.parallel(delegations)?.first_success()`.
    pub fn first_success(
        &self,
        delegations: impl IntoIterator<Item = Delegation>,
    ) -> Result<ChildResult, Error> {
        self.parallel(delegations)?.first_success()
    }

    /// Runs `delegations` one after the other, each step's input replaced
    /// by the previous step's output (the first keeps its own), and gives
    /// back the last step's result. Stops at the first step that does not
    /// succeed, with [`Error::Invalid`] naming it (`chain step 2 of 3:
    /// child test-1.2 (scorer): failed: ...`); a step refused is its error,
    /// of its kind, naming the step. No steps is [`Error::Invalid`].
    pub fn chain(
        &self,
        delegations: impl IntoIterator<Item = Delegation>,
    ) -> Result<ChildResult, Error> {
        let delegations: Vec<Delegation> = delegations.into_iter().collect();
        let n = delegations.len();
        let mut last: Option<ChildResult> = None;
        for (i, mut step) in delegations.into_iter().enumerate() {
            if let Some(previous) = last.take() {
                step.input = previous.output.unwrap_or_default();
            }
            let what = format!("chain step {} of {n}", i + 1);
            let child = self.delegate_as(&what, step)?;
            let result = self.join_one(child)?;
            if !result.succeeded() {
                return Err(Error::Invalid(format!("{what}: {}", result.summary())));
            }
            last = Some(result);
        }
        last.ok_or_else(|| Error::Invalid("a chain of no steps".into()))
    }

    /// Ends this run's part: when `run` then returns its output, the run
    /// succeeds and the agent named takes over the rest, with that output
    /// as its input, in this run's place in its tree (a parent joining this
    /// run gets the last of the line's results). At most once per run.
    pub fn handoff(&self, to: Handoff) -> Result<(), Error> {
        host::handoff(&to)
    }

    /// Reports how far the run is (`done` of `total`, and what it is
    /// doing): shown and summed up its tree, and a heartbeat for a
    /// manifest's `heartbeat`.
    pub fn progress(&self, done: u64, total: u64, message: &str) {
        host::progress(done, total, message);
    }

    /// [`delegate`](Self::delegate), a refusal saying which delegation it
    /// was: `WHAT (agent AGENT): ...`, of the same kind.
    fn delegate_as(&self, what: &str, delegation: Delegation) -> Result<Child, Error> {
        let what = format!("{what} (agent {})", delegation.agent);
        self.delegate(delegation).map_err(|e| e.within(&what))
    }

    /// Waits for one child to end, however it ends.
    fn join_one(&self, child: Child) -> Result<ChildResult, Error> {
        let results = self.join(std::slice::from_ref(&child), JoinMode::All, None)?;
        results
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid(format!("the join of {child} gave back no result")))
    }
}

/// Children delegated together by [`Context::parallel`], to join as one.
/// Each join gives back every child's state in the order delegated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "children run whether joined or not; join them to see how they ended"]
pub struct Parallel {
    children: Vec<Child>,
    timeout: Option<Duration>,
}

impl Parallel {
    /// Wait at most `timeout` in each join (this run's window in any case);
    /// a join that times out gives back every child's state as it stands,
    /// the outputs of those that succeeded among them.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The children, in the order delegated.
    pub fn children(&self) -> &[Child] {
        &self.children
    }

    /// Waits until every child has ended.
    pub fn join_all(&self) -> Result<Vec<ChildResult>, Error> {
        self.join(JoinMode::All)
    }

    /// Waits until one child has ended, however it ended.
    pub fn join_any(&self) -> Result<Vec<ChildResult>, Error> {
        self.join(JoinMode::Any)
    }

    /// Waits until `n` children have succeeded, or too few still can.
    pub fn quorum(&self, n: u32) -> Result<Vec<ChildResult>, Error> {
        self.join(JoinMode::Quorum(n))
    }

    /// Waits until one child succeeds, cancels the others, and gives back
    /// the winner. [`Error::Invalid`] when none succeeded, saying how each
    /// ended (the first few, each reason cut short).
    pub fn first_success(&self) -> Result<ChildResult, Error> {
        let mut results = self.join(JoinMode::FirstSuccess)?;
        match results.iter().position(ChildResult::succeeded) {
            Some(winner) => Ok(results.swap_remove(winner)),
            None => Err(Error::Invalid(no_success(&results))),
        }
    }

    fn join(&self, mode: JoinMode) -> Result<Vec<ChildResult>, Error> {
        join(&self.children, mode, self.timeout)
    }
}

/// The one `join` host call, children by id.
fn join(
    children: &[Child],
    mode: JoinMode,
    timeout: Option<Duration>,
) -> Result<Vec<ChildResult>, Error> {
    host::join(&ids(children), mode, timeout.map(millis))
}

/// The children's runway ids, as the host calls take them.
fn ids(children: &[Child]) -> Vec<String> {
    children.iter().map(|c| c.0.clone()).collect()
}

/// `no child succeeded: child A (x): failed: ...; child B (y): ...; and 3
/// more`, at most [`NAMED_CHILDREN`] named.
fn no_success(results: &[ChildResult]) -> String {
    if results.is_empty() {
        return "no child succeeded: there were no children".into();
    }
    let named: Vec<String> = results
        .iter()
        .take(NAMED_CHILDREN)
        .map(ChildResult::summary)
        .collect();
    let mut message = format!("no child succeeded: {}", named.join("; "));
    if let Some(more) = results.len().checked_sub(NAMED_CHILDREN).filter(|&m| m > 0) {
        message.push_str(&format!("; and {more} more"));
    }
    message
}
