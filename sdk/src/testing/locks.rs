//! Locks across the in-memory host's tree of runs, by the rules of the WIT
//! `orchestration` interface: a child's locks are granted when it is filed,
//! all or none, each with a fresh token higher than any before —
//!
//! - a dataset its parent holds is handed down (shared to any number of
//!   children, exclusive to one, never more than the parent holds), and the
//!   parent's calls there answer `lock-lost` until every child holding it
//!   has ended, when it gets the lock back with a fresh token;
//! - any other dataset is taken at once if free, or refused naming its
//!   holder: an ancestor that did not hand it down, or a child not ended
//!   yet. Nothing ever waits for a lock, so no cycle of waits can form.
//!
//! The stack is the runs in progress, innermost (the parent) last.

use super::frame::Frame;
use crate::{Error, HeldLock, LockMode, LockRequest};

/// Grants `requests` to `child`, a new child of the innermost run of
/// `stack` (of no run when `stack` is empty: a top-level handoff's
/// successor), in the order asked; see the module doc.
pub(super) fn grant(
    stack: &mut [Frame],
    tokens: &mut u64,
    child: &str,
    requests: &[LockRequest],
) -> Result<Vec<HeldLock>, Error> {
    for (i, request) in requests.iter().enumerate() {
        if requests[..i].iter().any(|r| r.dataset == request.dataset) {
            return Err(Error::Invalid(format!(
                "dataset {} is asked for twice",
                request.dataset
            )));
        }
        refusal(stack, request)?;
    }
    let mut granted = Vec::with_capacity(requests.len());
    for LockRequest { dataset, mode } in requests {
        if let Some(parent) = stack.last_mut()
            && parent.info.locks.iter().any(|l| l.dataset == *dataset)
        {
            let holders = parent.lent.entry(dataset.clone()).or_default();
            holders.push((child.into(), *mode));
        }
        *tokens += 1;
        granted.push(HeldLock {
            dataset: dataset.clone(),
            mode: *mode,
            token: *tokens,
        });
    }
    Ok(granted)
}

/// `child`, a child of the innermost run of `stack`, has ended: it holds
/// no lock any more, and the locks it was handed go back to that run, each
/// with a fresh token once no other child holds it.
pub(super) fn land(stack: &mut [Frame], tokens: &mut u64, child: &str) {
    let Some(parent) = stack.last_mut() else {
        return;
    };
    if let Some(filed) = parent.child_mut(child) {
        filed.info.locks.clear();
    }
    let Frame { info, lent, .. } = parent;
    lent.retain(|dataset, holders| {
        holders.retain(|(holder, _)| holder != child);
        if !holders.is_empty() {
            return true;
        }
        *tokens += 1;
        if let Some(lock) = info.locks.iter_mut().find(|l| l.dataset == *dataset) {
            lock.token = *tokens;
        }
        false
    });
}

/// Why `request` cannot be granted to a new child of the innermost run of
/// `stack`, if it cannot.
fn refusal(stack: &[Frame], request: &LockRequest) -> Result<(), Error> {
    let dataset = &request.dataset;
    let exclusive = request.mode == LockMode::Exclusive;
    if let Some(parent) = stack.last()
        && let Some(held) = parent.info.locks.iter().find(|l| l.dataset == *dataset)
    {
        let runway = &parent.info.runway;
        if exclusive && held.mode == LockMode::Shared {
            return Err(Error::Denied(format!(
                "runway {runway} holds {dataset} shared: it cannot hand it down exclusive"
            )));
        }
        let lent = parent.lent.get(dataset).into_iter().flatten();
        if let Some((holder, _)) = lent
            .into_iter()
            .find(|(_, mode)| exclusive || *mode == LockMode::Exclusive)
        {
            return Err(Error::LockLost(format!(
                "{dataset} is delegated to runway {holder}"
            )));
        }
        return Ok(());
    }
    if let Some(ancestor) = stack
        .iter()
        .find(|f| f.info.locks.iter().any(|l| l.dataset == *dataset))
    {
        return Err(Error::LockLost(format!(
            "{dataset} is held by runway {}, an ancestor that did not hand it down",
            ancestor.info.runway
        )));
    }
    for child in stack.iter().flat_map(Frame::live_children) {
        let held = child.info.locks.iter().find(|l| l.dataset == *dataset);
        if held.is_some_and(|l| exclusive || l.mode == LockMode::Exclusive) {
            return Err(Error::LockLost(format!(
                "{dataset} is held by runway {}",
                child.info.runway
            )));
        }
    }
    Ok(())
}
