//! Native tests for agents (feature `testing`): run an agent's
//! [`Agent::run`] with plain `cargo test`, no wasm, against an in-memory host
//! that makes the same lock checks as the real one.
//!
//! ```
//! use runway_sdk::testing::TestHost;
//! use runway_sdk::{Agent, Context, Error, LockMode};
//! use serde::Serialize;
//!
//! struct Copy;
//!
//! impl Agent for Copy {
//!     fn run(ctx: &Context) -> Result<impl Serialize, Error> {
//!         let value = ctx.dataset("src").read("k")?;
//!         ctx.dataset("dst").write("k", &value)?;
//!         Ok(value.len())
//!     }
//! }
//!
//! let mut host = TestHost::new()
//!     .record("src", "k", "hello")
//!     .lock("src", LockMode::Shared)
//!     .lock("dst", LockMode::Exclusive);
//! let run = host.run::<Copy>();
//! assert_eq!(run.json::<usize>(), 7); // "hello" as JSON is 7 bytes
//! assert_eq!(host.read("dst", "k"), Some(&b"\"hello\""[..]));
//!
//! // Without an exclusive lock the write is denied, as the host denies it,
//! // and the run's staged writes are discarded.
//! let mut host = TestHost::new()
//!     .record("src", "k", "hello")
//!     .lock("src", LockMode::Shared)
//!     .lock("dst", LockMode::Shared);
//! assert!(matches!(host.run::<Copy>().error(), Error::Denied(_)));
//! assert_eq!(host.read("dst", "k"), None);
//! ```
//!
//! What the in-memory host checks, as the real one does: a read, listing
//! or count needs a lock on the dataset (shared or exclusive), a write or
//! delete an exclusive one; a run sees (and counts) its own staged writes;
//! writes are committed
//! only when `run` returns `Ok`. What it leaves to the real host: name
//! rules, size and fuel limits, windows, fencing by newer tokens, audit.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::runway::agent::log::Level;
use crate::bindings::runway::agent::types::Page;
use crate::{Agent, Error, HeldLock, LockMode, RunInfo};

/// Records of one dataset, by key.
type Records = BTreeMap<String, Vec<u8>>;

/// Most keys one `list` call returns (the real host's limit).
const MAX_PAGE: u32 = 1000;

/// An in-memory host: the run's identity, input and locks, and the datasets'
/// committed records. Build it, then [`run`](Self::run) an agent against it.
#[derive(Debug, Clone)]
pub struct TestHost {
    info: RunInfo,
    datasets: BTreeMap<String, Records>,
}

/// What one run did: its output or error, and its log.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's output (JSON bytes) or the error that failed it.
    pub output: Result<Vec<u8>, Error>,
    /// Messages the run logged, in order.
    pub logs: Vec<(Level, String)>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// Runway `test-1` of agent `test`, action `run`, attempt 1, empty
    /// input, no locks, no datasets.
    pub fn new() -> Self {
        Self {
            info: RunInfo {
                runway: "test-1".into(),
                agent: "test".into(),
                action: "run".into(),
                input: Vec::new(),
                attempt: 1,
                locks: Vec::new(),
            },
            datasets: BTreeMap::new(),
        }
    }

    /// The runway id the run is told (`run-info.runway`).
    pub fn runway(mut self, id: &str) -> Self {
        self.info.runway = id.into();
        self
    }

    /// The action the manifest names.
    pub fn action(mut self, action: &str) -> Self {
        self.info.action = action.into();
        self
    }

    /// The attempt number (1 for the first try).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.info.attempt = attempt;
        self
    }

    /// The manifest's input, as JSON.
    pub fn input(mut self, input: impl Serialize) -> Self {
        self.info.input = serde_json::to_vec(&input).expect("input serializes as JSON");
        self
    }

    /// A lock the run holds, after those given before (manifest order). Its
    /// fencing token is the next of one counter, as the tower's are.
    pub fn lock(mut self, dataset: &str, mode: LockMode) -> Self {
        let token = self.info.locks.iter().map(|l| l.token).max().unwrap_or(0) + 1;
        self.info.locks.push(HeldLock {
            dataset: dataset.into(),
            mode,
            token,
        });
        self
    }

    /// A committed record, as JSON.
    pub fn record(self, dataset: &str, key: &str, value: impl Serialize) -> Self {
        let bytes = serde_json::to_vec(&value).expect("record serializes as JSON");
        self.raw_record(dataset, key, &bytes)
    }

    /// A committed record, as raw bytes.
    pub fn raw_record(mut self, dataset: &str, key: &str, value: &[u8]) -> Self {
        self.datasets
            .entry(dataset.into())
            .or_default()
            .insert(key.into(), value.to_vec());
        self
    }

    /// Runs agent `A` once: its staged writes are committed if it returns
    /// `Ok`, discarded if it returns `Err`. A panic in the agent propagates
    /// (in a component it traps and fails the run).
    pub fn run<A: Agent>(&mut self) -> Run {
        ACTIVE.with(|a| {
            let mut a = a.borrow_mut();
            assert!(a.is_none(), "TestHost::run called inside a run");
            *a = Some(Active {
                info: self.info.clone(),
                committed: std::mem::take(&mut self.datasets),
                staged: BTreeMap::new(),
                logs: Vec::new(),
            });
        });
        let output = crate::__run::<A>();
        let active = ACTIVE
            .with(|a| a.borrow_mut().take())
            .expect("the run's state is still there");
        self.datasets = active.committed;
        if output.is_ok() {
            for (dataset, changes) in active.staged {
                let records = self.datasets.entry(dataset).or_default();
                for (key, change) in changes {
                    match change {
                        Some(value) => records.insert(key, value),
                        None => records.remove(&key),
                    };
                }
            }
        }
        Run {
            output,
            logs: active.logs,
        }
    }

    /// The committed bytes under `key`.
    pub fn read(&self, dataset: &str, key: &str) -> Option<&[u8]> {
        self.datasets.get(dataset)?.get(key).map(Vec::as_slice)
    }

    /// The committed JSON record under `key`, decoded (panics if it does
    /// not decode as `T`).
    pub fn get<T: DeserializeOwned>(&self, dataset: &str, key: &str) -> Option<T> {
        let bytes = self.read(dataset, key)?;
        Some(serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!("{dataset}/{key} is not the JSON expected: {e}");
        }))
    }

    /// The committed keys of `dataset`, in order.
    pub fn keys(&self, dataset: &str) -> Vec<&str> {
        self.datasets
            .get(dataset)
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

impl Run {
    /// The output decoded from JSON; panics, naming the error, if the run
    /// failed.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match &self.output {
            Ok(bytes) => serde_json::from_slice(bytes).expect("output is the JSON expected"),
            Err(e) => panic!("the run failed: {e}"),
        }
    }

    /// The error that failed the run; panics if it succeeded.
    pub fn error(&self) -> &Error {
        match &self.output {
            Ok(bytes) => panic!("the run succeeded with {}", String::from_utf8_lossy(bytes)),
            Err(e) => e,
        }
    }

    /// The logged messages, without their levels.
    pub fn messages(&self) -> Vec<&str> {
        self.logs.iter().map(|(_, m)| m.as_str()).collect()
    }
}

/// The state of the run in progress on this thread.
struct Active {
    info: RunInfo,
    committed: BTreeMap<String, Records>,
    /// Changes staged by the run: `None` deletes.
    staged: BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>>,
    logs: Vec<(Level, String)>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

impl Active {
    /// The lock checks the real host makes, with its messages.
    fn check(&self, dataset: &str, need: LockMode) -> Result<(), Error> {
        let runway = &self.info.runway;
        let Some(lock) = self.info.locks.iter().find(|l| l.dataset == dataset) else {
            return Err(Error::Denied(format!(
                "runway {runway} holds no lock on dataset {dataset}"
            )));
        };
        if need == LockMode::Exclusive && lock.mode != LockMode::Exclusive {
            return Err(Error::Denied(format!(
                "writing to {dataset} needs an exclusive lock; runway {runway} holds it shared"
            )));
        }
        Ok(())
    }

    /// The value the run sees under `key`: its own staged change, else the
    /// committed one.
    fn lookup(&self, dataset: &str, key: &str) -> Option<&[u8]> {
        match self.staged.get(dataset).and_then(|s| s.get(key)) {
            Some(change) => change.as_deref(),
            None => self.committed.get(dataset)?.get(key).map(Vec::as_slice),
        }
    }

    /// Keys of `dataset` with `prefix` strictly after `cursor`, staged
    /// changes merged in.
    fn keys_after(&self, dataset: &str, prefix: &str, cursor: Option<&str>) -> Vec<String> {
        let wanted = |k: &&String| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c);
        let mut keys: BTreeSet<&String> = self
            .committed
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

/// The in-memory host's side of [`crate::host`]: the same functions as the
/// WIT imports.
pub(crate) mod door {
    use super::*;

    fn with<T>(f: impl FnOnce(&mut Active) -> T) -> T {
        ACTIVE.with(|a| {
            let mut a = a.borrow_mut();
            let active = a.as_mut().expect(
                "runway-sdk (feature `testing`) was called outside TestHost::run: \
                 run the agent through TestHost",
            );
            f(active)
        })
    }

    pub(crate) fn info() -> RunInfo {
        with(|a| a.info.clone())
    }

    pub(crate) fn read(dataset: &str, key: &str) -> Result<Vec<u8>, Error> {
        with(|a| {
            a.check(dataset, LockMode::Shared)?;
            a.lookup(dataset, key)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::NotFound(format!("{dataset}/{key}")))
        })
    }

    pub(crate) fn write(dataset: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        with(|a| {
            a.check(dataset, LockMode::Exclusive)?;
            a.staged
                .entry(dataset.into())
                .or_default()
                .insert(key.into(), Some(value.to_vec()));
            Ok(())
        })
    }

    pub(crate) fn delete(dataset: &str, key: &str) -> Result<(), Error> {
        with(|a| {
            a.check(dataset, LockMode::Exclusive)?;
            if a.lookup(dataset, key).is_none() {
                return Err(Error::NotFound(format!("{dataset}/{key}")));
            }
            a.staged
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
        with(|a| {
            a.check(dataset, LockMode::Shared)?;
            let mut keys = a.keys_after(dataset, prefix, cursor);
            let limit = limit.clamp(1, MAX_PAGE) as usize;
            let more = keys.len() > limit;
            keys.truncate(limit);
            let next_cursor = if more { keys.last().cloned() } else { None };
            Ok(Page { keys, next_cursor })
        })
    }

    pub(crate) fn count(dataset: &str, prefix: &str) -> Result<u64, Error> {
        with(|a| {
            a.check(dataset, LockMode::Shared)?;
            Ok(a.keys_after(dataset, prefix, None).len() as u64)
        })
    }

    pub(crate) fn log(level: Level, message: &str) {
        with(|a| a.logs.push((level, message.into())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;

    /// Writes 1,200 keys, deletes one, then reads its own writes back and
    /// lists them (three pages of `keys`), committed and staged merged.
    struct Churn;

    impl Agent for Churn {
        fn run(ctx: &Context) -> Result<impl Serialize, Error> {
            let data = ctx.dataset("d");
            for i in 0..1200 {
                data.write(&format!("k/{i:04}"), b"v")?;
            }
            data.delete("k/0007")?;
            data.delete("old")?;
            let seen = data.read("k/0001")?;
            let missing = matches!(data.read("k/0007"), Err(Error::NotFound(_)));
            let keys: Vec<String> = data.keys("").collect::<Result<_, _>>()?;
            Ok((keys, seen, missing))
        }
    }

    #[test]
    fn a_run_sees_its_own_writes_and_lists_past_a_page() {
        let mut host = TestHost::new()
            .raw_record("d", "old", b"x")
            .raw_record("d", "z", b"y")
            .lock("d", LockMode::Exclusive);
        let (keys, seen, missing): (Vec<String>, Vec<u8>, bool) = host.run::<Churn>().json();
        assert_eq!(keys.len(), 1200, "1,199 written and kept, `z` committed");
        assert_eq!(keys.first().map(String::as_str), Some("k/0000"));
        assert_eq!(keys.last().map(String::as_str), Some("z"));
        assert!(!keys.iter().any(|k| k == "k/0007" || k == "old"));
        assert_eq!(seen, b"v");
        assert!(missing, "a deleted key reads as not found");
        assert_eq!(host.keys("d").len(), 1200, "committed on Ok");
        assert_eq!(host.read("d", "old"), None);
    }

    /// Counts `k/` before and after staging: two new keys, one rewritten,
    /// one committed key deleted, one key written and deleted again; then
    /// everything, and a narrower prefix.
    struct Tally;

    impl Agent for Tally {
        fn run(ctx: &Context) -> Result<impl Serialize, Error> {
            let data = ctx.dataset("d");
            let before = data.count("k/")?;
            data.write("k/new1", b"v")?;
            data.write("k/new2", b"v")?;
            data.write("k/1", b"w")?;
            data.delete("k/2")?;
            data.write("k/tmp", b"t")?;
            data.delete("k/tmp")?;
            Ok([
                before,
                data.count("k/")?,
                data.count("")?,
                data.count("k/n")?,
            ])
        }
    }

    /// Counts every key of `d`.
    struct CountAll;

    impl Agent for CountAll {
        fn run(ctx: &Context) -> Result<impl Serialize, Error> {
            ctx.dataset("d").count("")
        }
    }

    /// Lists every key of `d`.
    struct ListAll;

    impl Agent for ListAll {
        fn run(ctx: &Context) -> Result<impl Serialize, Error> {
            ctx.dataset("d").keys("").collect::<Result<Vec<_>, _>>()
        }
    }

    fn committed() -> TestHost {
        TestHost::new()
            .raw_record("d", "k/1", b"a")
            .raw_record("d", "k/2", b"b")
            .raw_record("d", "k/3", b"c")
            .raw_record("d", "z", b"d")
    }

    #[test]
    fn a_count_sees_the_runs_own_staged_writes_and_deletes() {
        let mut host = committed().lock("d", LockMode::Exclusive);
        assert_eq!(host.run::<Tally>().json::<[u64; 4]>(), [3, 4, 5, 2]);
        assert_eq!(host.keys("d").len(), 5, "the counts were of what landed");
    }

    #[test]
    fn a_count_needs_the_lock_a_listing_needs() {
        let mut host = committed().lock("d", LockMode::Shared);
        assert_eq!(host.run::<CountAll>().json::<u64>(), 4);
        assert_eq!(host.run::<ListAll>().json::<Vec<String>>().len(), 4);
        let mut host = committed().lock("other", LockMode::Exclusive);
        let refused = host.run::<CountAll>().error().clone();
        assert!(matches!(&refused, Error::Denied(_)), "{refused}");
        assert_eq!(&refused, host.run::<ListAll>().error(), "word for word");
    }
}
