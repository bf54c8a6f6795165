//! One run in progress on the in-memory host (a frame of the stack of runs
//! a delegating test builds): who it is and the locks it holds, the writes
//! it staged, what it logged and reported, the children it filed and the
//! locks it handed down to them, its handoff. And the checks its dataset
//! calls go through, with the real host's messages.

use std::collections::{BTreeMap, BTreeSet};

use crate::bindings::runway::agent::log::Level;
use crate::{ChildResult, ChildState, Error, Handoff, LockMode, RunInfo};

/// Records of one dataset, by key.
pub(super) type Records = BTreeMap<String, Vec<u8>>;

/// Committed records, by dataset.
pub(super) type Datasets = BTreeMap<String, Records>;

/// One run in progress.
pub(super) struct Frame {
    pub(super) info: RunInfo,
    /// Changes staged by the run: `None` deletes.
    pub(super) staged: BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>>,
    pub(super) logs: Vec<(Level, String)>,
    pub(super) progress: Vec<(u64, u64, String)>,
    /// Events it published, in order: `(topic, payload)`.
    pub(super) published: Vec<(String, Vec<u8>)>,
    /// The children this run filed, in order.
    pub(super) children: Vec<Filed>,
    /// Datasets of this run's locks handed down, to the children holding
    /// them (and how) until they end.
    pub(super) lent: BTreeMap<String, Vec<(String, LockMode)>>,
    pub(super) handoff: Option<Handoff>,
}

/// A child a run filed: what it is to run as, and how it stands.
pub(super) struct Filed {
    /// Its runway id, agent, action, input and the locks granted it.
    pub(super) info: RunInfo,
    /// Its idempotency key, when the delegation gave one.
    pub(super) key: Option<String>,
    /// Attempts in all (its retry policy's, else 1).
    pub(super) attempts: u32,
    /// `waiting` until it runs, as it ended after.
    pub(super) result: ChildResult,
}

impl Frame {
    pub(super) fn new(info: RunInfo) -> Self {
        Self {
            info,
            staged: BTreeMap::new(),
            logs: Vec::new(),
            progress: Vec::new(),
            published: Vec::new(),
            children: Vec::new(),
            lent: BTreeMap::new(),
            handoff: None,
        }
    }

    /// The child `id` of this run, if it filed one.
    pub(super) fn child(&self, id: &str) -> Option<&Filed> {
        self.children.iter().find(|c| c.info.runway == id)
    }

    /// The child `id` of this run, to update.
    pub(super) fn child_mut(&mut self, id: &str) -> Option<&mut Filed> {
        self.children.iter_mut().find(|c| c.info.runway == id)
    }

    /// Children filed and not ended: they hold their locks.
    pub(super) fn live_children(&self) -> impl Iterator<Item = &Filed> {
        self.children.iter().filter(|c| !c.result.state.ended())
    }

    /// The lock checks the real host makes, with its messages; a lock
    /// handed down answers `lock-lost` until every child holding it ended.
    pub(super) fn check(&self, dataset: &str, need: LockMode) -> Result<(), Error> {
        let runway = &self.info.runway;
        let Some(lock) = self.info.locks.iter().find(|l| l.dataset == dataset) else {
            return Err(Error::Denied(format!(
                "runway {runway} holds no lock on dataset {dataset}"
            )));
        };
        if let Some(holders) = self.lent.get(dataset) {
            let children: Vec<&str> = holders.iter().map(|(c, _)| c.as_str()).collect();
            return Err(Error::LockLost(format!(
                "the lock of runway {runway} on {dataset} is delegated to {} until it ends",
                children.join(", ")
            )));
        }
        if need == LockMode::Exclusive && lock.mode != LockMode::Exclusive {
            return Err(Error::Denied(format!(
                "writing to {dataset} needs an exclusive lock; runway {runway} holds it shared"
            )));
        }
        Ok(())
    }

    /// The value the run sees under `key`: its own staged change, else the
    /// committed one.
    pub(super) fn lookup<'a>(
        &'a self,
        committed: &'a Datasets,
        dataset: &str,
        key: &str,
    ) -> Option<&'a [u8]> {
        match self.staged.get(dataset).and_then(|s| s.get(key)) {
            Some(change) => change.as_deref(),
            None => committed.get(dataset)?.get(key).map(Vec::as_slice),
        }
    }

    /// Keys of `dataset` with `prefix` strictly after `cursor`, staged
    /// changes merged in.
    pub(super) fn keys_after(
        &self,
        committed: &Datasets,
        dataset: &str,
        prefix: &str,
        cursor: Option<&str>,
    ) -> Vec<String> {
        let wanted = |k: &&String| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c);
        let mut keys: BTreeSet<&String> = committed
            .get(dataset)
            .map(|r| r.keys().filter(wanted).collect())
            .unwrap_or_default();
        for (key, change) in self.staged.get(dataset).into_iter().flatten() {
            if wanted(&key) {
                match change {
                    Some(_) => keys.insert(key),
                    None => keys.remove(key),
                };
            }
        }
        keys.into_iter().cloned().collect()
    }
}

impl Filed {
    /// A child filed as `info`, waiting to run.
    pub(super) fn new(info: RunInfo, key: Option<String>, attempts: u32) -> Self {
        let result = ChildResult {
            runway: info.runway.clone(),
            agent: info.agent.clone(),
            state: ChildState::Waiting,
            output: None,
            reason: None,
        };
        Self {
            info,
            key,
            attempts,
            result,
        }
    }
}
