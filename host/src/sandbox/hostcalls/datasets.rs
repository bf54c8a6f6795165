//! `runway:agent/datasets`: records, reachable only under a lock the run holds.
//!
//! Every call, in this order: names valid → run holds a lock on the dataset →
//! the lock's mode suffices (writes need exclusive) → the lock's token is not
//! fenced off by a newer writer → effect. Writes and deletes are staged in
//! the run; reads, listings and counts see the run's own staged changes. A store
//! that fails under a call is the host's fault, never the guest's
//! `not-found` or `denied`: the call traps with a [`HostFault`].

use std::sync::Arc;

use runway_audit::{Call, Hash, LockMode};

use super::runway::agent::datasets::Host;
use super::runway::agent::types::Page;
use super::{CallError, GuestError, NO_DATA, RunState, Target, WitLockMode, digest_parts};
use crate::limits::{MAX_STAGED, MAX_STAGED_KEYS, MAX_VALUE};
use crate::names;
use crate::sandbox::failure::HostFault;
use crate::store::{Change, DatasetStore, ENTRY_BYTES, Staged, StoreError, StoreReader};

/// Most keys returned by one `list` call.
pub const MAX_PAGE: u32 = 1000;

/// A run's side of the datasets: its reads, from one snapshot opened at
/// its first read and closed when its agent returns, and its staged writes.
pub(crate) struct RunData {
    store: Arc<DatasetStore>,
    reader: Option<StoreReader>,
    pub staged: Staged,
}

impl RunData {
    pub fn new(store: Arc<DatasetStore>) -> RunData {
        RunData {
            store,
            reader: None,
            staged: Staged::default(),
        }
    }

    /// The run's reader (opened on first use) and what it staged.
    pub fn reader(&mut self) -> Result<(&StoreReader, &Staged), StoreError> {
        if self.reader.is_none() {
            self.reader = Some(self.store.reader()?);
        }
        let reader = self.reader.as_ref().expect("opened just above");
        Ok((reader, &self.staged))
    }

    /// Closes the run's reader (its agent has returned).
    pub fn end_reads(&mut self) {
        self.reader = None;
    }
}

impl RunState {
    /// Checks names, lock, mode and fence for call `call` on `dataset`;
    /// returns the lock's token. `key` is checked when given.
    fn check(
        &mut self,
        call: &'static str,
        dataset: &str,
        key: Option<&str>,
        need: LockMode,
    ) -> Result<u64, CallError> {
        let invalid = |e: names::NameError| CallError::Guest(GuestError::Invalid(e.to_string()));
        names::check_dataset(dataset).map_err(invalid)?;
        if let Some(key) = key {
            names::check_key(key).map_err(invalid)?;
        }
        if let Some(child) = self.handed_to(dataset) {
            return Err(GuestError::LockLost(format!(
                "runway {}'s lock on {dataset} is delegated to {child} until it lands",
                self.info.runway
            ))
            .into());
        }
        let Some(lock) = self.lock_on(dataset) else {
            return Err(GuestError::Denied(format!(
                "runway {} holds no lock on dataset {dataset}",
                self.info.runway
            ))
            .into());
        };
        if need == LockMode::Exclusive && lock.mode != WitLockMode::Exclusive {
            return Err(GuestError::Denied(format!(
                "writing to {dataset} needs an exclusive lock; runway {} holds it shared",
                self.info.runway
            ))
            .into());
        }
        let fence = self
            .data
            .store
            .fence(dataset)
            .map_err(|e| HostFault::store(call, dataset, e))?;
        if lock.token < fence {
            return Err(GuestError::LockLost(format!(
                "token {} on {dataset} is fenced off by token {fence}",
                lock.token
            ))
            .into());
        }
        Ok(lock.token)
    }

    /// [`check`](Self::check) for a call over the keys under `prefix`
    /// (`list`, `count`): a read, and a valid prefix.
    fn check_under(
        &mut self,
        call: &'static str,
        dataset: &str,
        prefix: &str,
    ) -> Result<u64, CallError> {
        let token = self.check(call, dataset, None, LockMode::Shared)?;
        names::check_prefix(prefix).map_err(|e| GuestError::Invalid(e.to_string()))?;
        Ok(token)
    }

    /// Names the call's target in the audit record: the dataset only when its
    /// name is valid, so hostile names never become a dataset timeline.
    /// A passed check already proved the names valid; only a failed one
    /// makes them worth checking again.
    fn target<'a>(
        dataset: &'a str,
        key: Option<&'a str>,
        checked: &Result<u64, CallError>,
    ) -> Target<'a> {
        let token = checked.as_ref().ok().copied();
        let valid = token.is_some() || names::check_dataset(dataset).is_ok();
        Target {
            dataset: valid.then_some(dataset),
            key: key.filter(|k| token.is_some() || (valid && names::check_key(k).is_ok())),
            token,
        }
    }

    fn change(
        &mut self,
        dataset: String,
        key: String,
        change: Change,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        let (call, name, args) = match &change {
            Change::Put(v) => (
                Call::Write,
                "datasets.write",
                digest_parts(&[dataset.as_bytes(), key.as_bytes(), v]),
            ),
            Change::Delete => (
                Call::Delete,
                "datasets.delete",
                digest_parts(&[dataset.as_bytes(), key.as_bytes()]),
            ),
        };
        let checked = self.check(name, &dataset, Some(&key), LockMode::Exclusive);
        let target = Self::target(&dataset, Some(&key), &checked);
        let result = checked.and_then(|_| {
            if let Change::Put(v) = &change
                && v.len() > MAX_VALUE
            {
                return Err(GuestError::Limit(format!(
                    "value of {} bytes exceeds the {MAX_VALUE}-byte limit",
                    v.len()
                ))
                .into());
            }
            let (changes, bytes) = self.data.staged.after(&dataset, &key, &change);
            if changes > MAX_STAGED_KEYS {
                return Err(GuestError::Limit(format!(
                    "the run's staged changes would exceed {MAX_STAGED_KEYS} keys"
                ))
                .into());
            }
            if bytes > MAX_STAGED {
                return Err(GuestError::Limit(format!(
                    "the run's staged changes would exceed {MAX_STAGED} bytes \
                     (keys, values and {ENTRY_BYTES} bytes each)"
                ))
                .into());
            }
            if change == Change::Delete && self.lookup(name, &dataset, &key)?.is_none() {
                return Err(GuestError::NotFound(format!("{dataset}/{key}")).into());
            }
            // This call is the run's next audited one.
            self.data
                .staged
                .stage(&dataset, &key, change, self.trail.calls);
            Ok(())
        });
        self.audited(call, target, args, result, |_| NO_DATA)
    }

    /// The value of `key` as the run sees it: staged, or committed.
    fn lookup(
        &mut self,
        call: &'static str,
        dataset: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, HostFault> {
        match self.data.staged.get(dataset, key) {
            Some(Change::Put(v)) => Ok(Some(v.clone())),
            Some(Change::Delete) => Ok(None),
            None => self
                .data
                .reader()
                .and_then(|(r, _)| r.read(dataset, key))
                .map_err(|e| HostFault::store(call, dataset, e)),
        }
    }
}

impl Host for RunState {
    fn read(
        &mut self,
        dataset: String,
        key: String,
    ) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        let args = digest_parts(&[dataset.as_bytes(), key.as_bytes()]);
        let checked = self.check("datasets.read", &dataset, Some(&key), LockMode::Shared);
        let target = Self::target(&dataset, Some(&key), &checked);
        let result = checked.and_then(|_| {
            self.lookup("datasets.read", &dataset, &key)?
                .ok_or_else(|| GuestError::NotFound(format!("{dataset}/{key}")).into())
        });
        self.audited(Call::Read, target, args, result, |v| digest_parts(&[v]))
    }

    fn write(
        &mut self,
        dataset: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.change(dataset, key, Change::Put(value))
    }

    fn delete(&mut self, dataset: String, key: String) -> wasmtime::Result<Result<(), GuestError>> {
        self.change(dataset, key, Change::Delete)
    }

    fn list(
        &mut self,
        dataset: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Page, GuestError>> {
        let cursor_bytes = cursor.as_deref().unwrap_or("").as_bytes();
        let args = digest_parts(&[
            dataset.as_bytes(),
            prefix.as_bytes(),
            cursor_bytes,
            &limit.to_le_bytes(),
        ]);
        let checked = self.check_under("datasets.list", &dataset, &prefix);
        let target = Self::target(&dataset, None, &checked);
        let result = checked.and_then(|_| {
            let limit = limit.clamp(1, MAX_PAGE) as usize;
            let unavailable = |e: StoreError| HostFault::store("datasets.list", &dataset, e);
            let (reader, staged) = self.data.reader().map_err(unavailable)?;
            let (keys, more) = reader
                .list(
                    &dataset,
                    &prefix,
                    cursor.as_deref(),
                    limit,
                    staged.dataset(&dataset),
                )
                .map_err(unavailable)?;
            let next_cursor = if more { keys.last().cloned() } else { None };
            Ok(Page { keys, next_cursor })
        });
        self.audited(Call::List, target, args, result, page_digest)
    }

    fn count(
        &mut self,
        dataset: String,
        prefix: String,
    ) -> wasmtime::Result<Result<u64, GuestError>> {
        let args = digest_parts(&[dataset.as_bytes(), prefix.as_bytes()]);
        let checked = self.check_under("datasets.count", &dataset, &prefix);
        let target = Self::target(&dataset, None, &checked);
        let result = checked.and_then(|_| {
            let unavailable = |e: StoreError| HostFault::store("datasets.count", &dataset, e);
            let (reader, staged) = self.data.reader().map_err(unavailable)?;
            Ok(reader
                .count(&dataset, &prefix, staged.dataset(&dataset))
                .map_err(unavailable)?)
        });
        self.audited(Call::Count, target, args, result, |n| {
            digest_parts(&[&n.to_le_bytes()])
        })
    }
}

fn page_digest(page: &Page) -> Hash {
    let parts: Vec<&[u8]> = page.keys.iter().map(|k| k.as_bytes()).collect();
    digest_parts(&parts)
}
