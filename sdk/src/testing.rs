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
//!
//! ## Delegating agents
//!
//! The agents a run delegates to are registered on the host, as agent
//! types ([`TestHost::agent`]) or closures ([`TestHost::agent_fn`]); a
//! delegation to any other is [`Error::Denied`] naming it, as the host
//! denies an agent the grants do not name. Each child is a nested run with
//! its own [`RunInfo`] (runway `test-1.1`, `test-1.2`, ... under its
//! parent; the delegation's action and input; its locks with fresh,
//! higher tokens; attempt 1, counting up through its retry policy) and its
//! own staged writes, committed when it succeeds.
//!
//! ```
//! use runway_sdk::testing::TestHost;
//! use runway_sdk::{Agent, ChildState, Context, Delegation, Error, LockMode};
//! use serde::Serialize;
//!
//! /// Asks two scorers; keeps the first good score.
//! struct Race;
//!
//! impl Agent for Race {
//!     fn run(ctx: &Context) -> Result<impl Serialize, Error> {
//!         let winner = ctx.first_success([
//!             Delegation::to("flaky").input(&7)?,
//!             Delegation::to("steady").input(&7)?.lock("scores", LockMode::Exclusive),
//!         ])?;
//!         winner.json::<u64>()
//!     }
//! }
//!
//! let mut host = TestHost::new()
//!     .lock("scores", LockMode::Exclusive)
//!     .agent_fn("flaky", |_ctx: &Context| -> Result<u64, Error> {
//!         Err(Error::Limit("out of fuel".into()))
//!     })
//!     .agent_fn("steady", |ctx: &Context| {
//!         let n: u64 = ctx.input()?;
//!         ctx.dataset("scores").put("last", &(n * 6))?; // under the lock handed down
//!         Ok(n * 6)
//!     });
//! let run = host.run::<Race>();
//! assert_eq!(run.json::<u64>(), 42);
//! let states: Vec<_> = run.children().iter().map(|c| (c.runway.as_str(), c.state)).collect();
//! assert_eq!(states, [("test-1.1", ChildState::Failed), ("test-1.2", ChildState::Succeeded)]);
//! assert_eq!(host.get::<u64>("scores", "last"), Some(42));
//! ```
//!
//! Natively, children run one at a time, in the order joined, when a join
//! needs them; a child never joined never runs, and a join's timeout is
//! not kept (nothing runs beside the joining run, so each child runs to its
//! end). `all` runs every child still waiting; `any` runs the first waiting
//! one, unless one has ended already; `first-success` runs them in order
//! until one succeeds and reports the rest `cancelled` (they never run);
//! `quorum(n)` runs them in order until `n` succeeded or too few are left
//! to. A child joined again gives back how it ended. A child that fails is
//! run again as its retry policy says (no backoff waited), its attempt
//! number counting up. [`Context::cancel`](crate::Context::cancel) ends
//! the children named that are still waiting `cancelled` (they never run)
//! and gives back the locks handed down to them; those that ended are left
//! as they are. A join or cancel naming a runway the run did not file (or
//! one twice) is [`Error::Invalid`], in the host's words.
//!
//! Locks go as on the real host: a dataset the parent holds is handed down
//! (shared to any number of children, exclusive to one) and the parent's
//! calls there answer [`Error::LockLost`] (`... delegated to test-1.1 ...`)
//! until the child has ended, when the parent gets it back with a fresh
//! token; any other dataset is taken if free, or the delegation refused
//! naming its holder (a lock an ancestor holds and did not hand down is
//! refused). A tree is at most 16 runs deep natively ([`Error::Limit`]
//! past that), so a cycle of delegations stops.
//!
//! A [`Context::handoff`](crate::Context::handoff) is recorded on the
//! [`Run`] ([`Run::handoff`]) when the run succeeds, whether or not the
//! test registered the agent it names; if it did, that agent then runs in
//! the run's place (with the locks the handoff asks for), its input
//! the run's output, its runway id the run's and `.handoff`
//! ([`Run::successor`]): a parent joining a child that handed off gets the
//! last of the line's results (its agent, state and output). Progress
//! reports are recorded in order ([`Run::progress`]), and so are the events
//! a run that succeeded published ([`Run::published`]); the children a run
//! filed are listed as they stood when it ended ([`Run::children`]).

#[cfg(test)]
mod delegation_tests;
pub(crate) mod door;
#[cfg(test)]
mod event_tests;
mod frame;
#[cfg(test)]
mod handoff_tests;
mod join;
#[cfg(test)]
mod lock_tests;
mod locks;
mod run;
mod session;

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::agent::encode_output;
use crate::{Agent, Context, Error, HeldLock, LockMode, RunInfo};
use frame::Datasets;
pub use run::Run;
use session::{Body, Session};

/// An in-memory host: the run's identity, input and locks, the datasets'
/// committed records, and the agents it may delegate to. Build it, then
/// [`run`](Self::run) an agent against it.
#[derive(Debug, Clone)]
pub struct TestHost {
    info: RunInfo,
    datasets: Datasets,
    agents: Agents,
}

/// Agent `A`'s `run`, as `export_agent!` calls it.
fn body<A: Agent>() -> Body {
    let run: fn() -> Result<Vec<u8>, Error> = crate::__run::<A>;
    Rc::new(run)
}

/// The agents a run may delegate (or hand off) to, by name.
#[derive(Clone, Default)]
struct Agents(BTreeMap<String, Body>);

impl fmt::Debug for Agents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// Runway `test-1` of agent `test`, action `run`, attempt 1, empty
    /// input, no locks, no datasets, no agents to delegate to.
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
            agents: Agents::default(),
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

    /// An agent runs may delegate or hand off to under `name`: agent type
    /// `A`, as it would be exported.
    pub fn agent<A: Agent>(mut self, name: &str) -> Self {
        self.agents.0.insert(name.into(), body::<A>());
        self
    }

    /// An agent runs may delegate or hand off to under `name`, as a
    /// closure: it gets the child's [`Context`] and returns its output, as
    /// [`Agent::run`] does.
    pub fn agent_fn<T, F>(mut self, name: &str, run: F) -> Self
    where
        T: Serialize,
        F: Fn(&Context) -> Result<T, Error> + 'static,
    {
        let body = move || encode_output(&run(&Context::from_host())?);
        self.agents.0.insert(name.into(), Rc::new(body));
        self
    }

    /// Runs agent `A` once: its staged writes are committed if it returns
    /// `Ok`, discarded if it returns `Err`; the children it joins run
    /// inside it, and the agent it hands off to (if registered) after it.
    /// A panic in an agent propagates (in a component it traps and fails
    /// the run).
    pub fn run<A: Agent>(&mut self) -> Run {
        let installed = session::install(Session {
            committed: std::mem::take(&mut self.datasets),
            agents: self.agents.0.clone(),
            stack: Vec::new(),
            tokens: self.info.locks.iter().map(|l| l.token).max().unwrap_or(0),
        });
        let run = session::run_line(self.info.clone(), body::<A>(), 1);
        self.datasets = installed.finish().committed;
        run
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
