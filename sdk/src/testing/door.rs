//! The in-memory host's side of [`crate::host`]: a function of the same name
//! and arguments for each WIT import, answering for the run that calls (the
//! innermost run in progress).

use super::frame::{Filed, Frame};
use super::join::{Step, next};
use super::locks;
use super::session::{Session, run_child, with};
use crate::bindings::runway::agent::log::Level;
use crate::bindings::runway::agent::types::Page;
use crate::{ChildResult, ChildState, Delegation, Error, Handoff, JoinMode, LockMode, RunInfo};

/// Most keys one `list` call returns (the real host's limit).
const MAX_PAGE: u32 = 1000;

/// How deep a tree of runs goes natively, the top run counted: a cycle of
/// delegations stops here with `limit` (the real host's depth comes from
/// the grants).
pub(super) const MAX_DEPTH: usize = 16;

pub(crate) fn info() -> RunInfo {
    with(|s| s.caller().info.clone())
}

pub(crate) fn read(dataset: &str, key: &str) -> Result<Vec<u8>, Error> {
    with(|s| {
        let (run, committed) = s.caller_and_committed();
        run.check(dataset, LockMode::Shared)?;
        run.lookup(committed, dataset, key)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| Error::NotFound(format!("{dataset}/{key}")))
    })
}

pub(crate) fn write(dataset: &str, key: &str, value: &[u8]) -> Result<(), Error> {
    with(|s| {
        let run = s.caller();
        run.check(dataset, LockMode::Exclusive)?;
        run.staged
            .entry(dataset.into())
            .or_default()
            .insert(key.into(), Some(value.to_vec()));
        Ok(())
    })
}

pub(crate) fn delete(dataset: &str, key: &str) -> Result<(), Error> {
    with(|s| {
        let (run, committed) = s.caller_and_committed();
        run.check(dataset, LockMode::Exclusive)?;
        if run.lookup(committed, dataset, key).is_none() {
            return Err(Error::NotFound(format!("{dataset}/{key}")));
        }
        run.staged
            .entry(dataset.into())
            .or_default()
            .insert(key.into(), None);
        Ok(())
    })
}

pub(crate) fn list(
    dataset: &str,
    prefix: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page, Error> {
    with(|s| {
        let (run, committed) = s.caller_and_committed();
        run.check(dataset, LockMode::Shared)?;
        let mut keys = run.keys_after(committed, dataset, prefix, cursor);
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next_cursor = if more { keys.last().cloned() } else { None };
        Ok(Page { keys, next_cursor })
    })
}

pub(crate) fn count(dataset: &str, prefix: &str) -> Result<u64, Error> {
    with(|s| {
        let (run, committed) = s.caller_and_committed();
        run.check(dataset, LockMode::Shared)?;
        Ok(run.keys_after(committed, dataset, prefix, None).len() as u64)
    })
}

pub(crate) fn log(level: Level, message: &str) {
    with(|s| s.caller().logs.push((level, message.into())));
}

/// Files a child: `denied` for an agent the test did not register (as the
/// host denies one the grants do not name), `limit` past [`MAX_DEPTH`], the
/// lock refusals of [`locks::grant`]. A key given before gives back the
/// child it filed.
pub(crate) fn delegate(request: &Delegation) -> Result<String, Error> {
    with(|s| {
        let depth = s.stack.len();
        let parent = s.caller();
        let runway = parent.info.runway.clone();
        if let Some(key) = &request.key
            && let Some(filed) = parent.children.iter().find(|c| c.key.as_ref() == Some(key))
        {
            return Ok(filed.info.runway.clone());
        }
        let id = format!("{runway}.{}", parent.children.len() + 1);
        let agent = &request.agent;
        if !s.agents.contains_key(agent) {
            return Err(Error::Denied(format!(
                "runway {runway} may not delegate to agent {agent}: its grants do not name it \
                 (natively: the test did not register it with TestHost::agent or agent_fn)"
            )));
        }
        if depth >= MAX_DEPTH {
            return Err(Error::Limit(format!(
                "runway {runway} may not delegate to agent {agent}: the tree would be more \
                 than {MAX_DEPTH} runs deep"
            )));
        }
        let locks = locks::grant(&mut s.stack, &mut s.tokens, &id, &request.locks)?;
        let info = RunInfo {
            runway: id.clone(),
            agent: agent.clone(),
            action: request.action.clone(),
            input: request.input.clone(),
            attempt: 1,
            locks,
        };
        let attempts = request.retry.map_or(1, |r| r.attempts);
        s.caller()
            .children
            .push(Filed::new(info, request.key.clone(), attempts));
        Ok(id)
    })
}

/// Joins children of the calling run, running them natively as
/// [`super::join`] says; `invalid` for one it did not file, one named
/// twice, or a quorum larger than the children (the host's words). The timeout is not kept: every child run ends
/// before the join returns.
pub(crate) fn join(
    children: &[String],
    mode: JoinMode,
    _timeout_ms: Option<u64>,
) -> Result<Vec<ChildResult>, Error> {
    with(|s| own_children(s.caller(), "join", children))?;
    if let JoinMode::Quorum(n) = mode
        && n as usize > children.len()
    {
        return Err(Error::Invalid(format!(
            "join: a quorum of {n} among {} children can never be met",
            children.len()
        )));
    }
    loop {
        let states: Vec<ChildState> = with(|s| {
            let run = s.caller();
            let state = |id: &String| run.child(id).map(|c| c.result.state);
            children.iter().filter_map(state).collect()
        });
        match next(mode, &states) {
            Step::Run(i) => run_child(&children[i]),
            Step::CancelWaiting => with(|s| lost_the_race(s, children)),
            Step::Done => break,
        }
    }
    Ok(with(|s| {
        let run = s.caller();
        let results = children.iter().filter_map(|id| run.child(id));
        results.map(|c| c.result.clone()).collect()
    }))
}

pub(crate) fn handoff(to: &Handoff) -> Result<(), Error> {
    with(|s| {
        let run = s.caller();
        if let Some(before) = &run.handoff {
            return Err(Error::Invalid(format!(
                "runway {} already handed off to agent {}",
                run.info.runway, before.agent
            )));
        }
        run.handoff = Some(to.clone());
        Ok(())
    })
}

/// Keeps the event with the calling run: a run that succeeds shows it in
/// [`Run::published`](super::Run::published). The topic is checked as the
/// host checks it (its grants are the host's to check, not the test's).
pub(crate) fn publish(topic: &str, payload: &[u8]) -> Result<(), Error> {
    let valid = !topic.is_empty()
        && topic.len() <= 128
        && !topic.starts_with('.')
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(Error::Invalid(format!(
            "publish: topic {topic:?} is not valid"
        )));
    }
    if payload.len() > 64 << 10 {
        return Err(Error::Limit(format!(
            "publish: payload of {} bytes is over the cap of {}",
            payload.len(),
            64 << 10
        )));
    }
    with(|s| s.caller().published.push((topic.into(), payload.to_vec())));
    Ok(())
}

pub(crate) fn progress(done: u64, total: u64, message: &str) {
    with(|s| s.caller().progress.push((done, total, message.into())));
}

/// Cancels those of the calling run's `children` that have not ended:
/// natively they are all waiting (a child runs only inside its parent's
/// join), so they never run, and the locks handed down to them go back.
/// `invalid` for one the run did not file, or named twice.
pub(crate) fn cancel(children: &[String]) -> Result<(), Error> {
    with(|s| {
        own_children(s.caller(), "cancel", children)?;
        cancel_waiting(s, children, "cancelled: its parent cancelled it");
        Ok(())
    })
}

/// `Ok` when every one of `children` is a child of `run`, named once; else
/// `invalid`, in the host's words for the call `verb`.
fn own_children(run: &Frame, verb: &str, children: &[String]) -> Result<(), Error> {
    let parent = &run.info.runway;
    for (i, id) in children.iter().enumerate() {
        if run.child(id).is_none() {
            return Err(Error::Invalid(format!(
                "{verb}: {id} is not a child of {parent}"
            )));
        }
        if children[..i].contains(id) {
            return Err(Error::Invalid(format!("{verb}: {id} is named twice")));
        }
    }
    Ok(())
}

/// A `first-success` join was won: the joined children still waiting are
/// cancelled, naming the winner.
fn lost_the_race(s: &mut Session, children: &[String]) {
    let run = s.caller();
    let winner = children
        .iter()
        .filter_map(|id| run.child(id))
        .find(|c| c.result.state == ChildState::Succeeded)
        .map(|c| c.info.runway.clone())
        .unwrap_or_default();
    cancel_waiting(s, children, &format!("cancelled: {winner} succeeded first"));
}

/// The calling run's `children` still waiting end `cancelled` (they never
/// run) with `reason`, and the locks they were handed go back.
fn cancel_waiting(s: &mut Session, children: &[String], reason: &str) {
    let run = s.caller();
    let mut cancelled = Vec::new();
    for id in children {
        if let Some(child) = run.child_mut(id)
            && child.result.state == ChildState::Waiting
        {
            child.result.state = ChildState::Cancelled;
            child.result.reason = Some(reason.into());
            cancelled.push(id);
        }
    }
    for id in cancelled {
        locks::land(&mut s.stack, &mut s.tokens, id);
    }
}
