//! # runway-sdk: write Runway agents in Rust
//!
//! An agent is a `wasm32-wasip2` component exporting the `runway:agent`
//! world (`wit/agent.wit`). With this crate it is a type implementing
//! [`Agent`] plus one [`export_agent!`] line; the crate re-exports what an
//! agent needs, so it depends on `runway-sdk` and `serde`, not on
//! `wit-bindgen`. Every dataset call is checked by the host against the
//! locks the run holds, and audited.
//!
//! ## From nothing to a running agent
//!
//! ```text
//! runway new agent tally            # a crate: agent, grants, plan, native test
//! cd tally && cargo test            # unit tests, natively (feature `testing`)
//! runway build                      # plugins/tally.wasm + plugins/tally.toml
//! runway run plan.toml --plugins plugins
//! ```
//!
//! ## The summary agent
//!
//! Reads every record of one dataset (held shared), writes one record to
//! another (held exclusive); the datasets come from the manifest's `input`:
//!
//! ```no_run
//! use runway_sdk::{Agent, Context, Error, export_agent, log};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { source: String, target: String }
//!
//! #[derive(Serialize, Default)]
//! struct Counts { records: u64, bytes: u64 }
//!
//! struct Summary;
//!
//! impl Agent for Summary {
//!     fn run(ctx: &Context) -> Result<impl Serialize, Error> {
//!         let Input { source, target } = ctx.input()?;
//!         let (data, mut counts) = (ctx.dataset(&source), Counts::default());
//!         for key in data.keys("") {
//!             counts.records += 1;
//!             counts.bytes += data.read(&key?)?.len() as u64;
//!         }
//!         ctx.dataset(&target).put("summary", &counts)?;
//!         log::info!("summarised {} records of {source}", counts.records);
//!         Ok(counts)
//!     }
//! }
//!
//! export_agent!(Summary);
//! ```
//!
//! ## Input
//!
//! The manifest's `input` reaches the run as JSON; [`Context::input`]
//! decodes it into your type, and a missing or mistyped field is
//! [`Error::Invalid`] naming it (`input: missing field `target``). Empty
//! input reads as `{}`, so all-optional fields get their defaults.
//!
//! ## Locks
//!
//! A run holds the locks its manifest asked for, all granted at once, each
//! with a fencing token, kept in the manifest's order:
//!
//! ```no_run
//! # use runway_sdk::{Context, LockMode};
//! # fn f(ctx: &Context) {
//! let token = ctx.lock("fafsa_2024_03_16").map(|l| l.token);   // by dataset
//! let first_x = ctx.first_lock(LockMode::Exclusive);            // by mode
//! for lock in ctx.locks() { /* in manifest order */ }
//! # }
//! ```
//!
//! ## Datasets
//!
//! [`Context::dataset`] gives a [`Dataset`] handle (no host call). Reads and
//! listings need a shared or exclusive lock; writes and deletes an exclusive
//! one. Writes are staged and land all together when `run` returns `Ok`;
//! an `Err` or a trap discards them.
//!
//! ```no_run
//! # use runway_sdk::{Context, Error};
//! # #[derive(serde::Serialize, serde::Deserialize, Default)] struct Counter { hits: u64 }
//! # fn f(ctx: &Context) -> Result<(), Error> {
//! let data = ctx.dataset("counters");
//! let mut c: Counter = data.get_opt("hits")?.unwrap_or_default(); // JSON, None if missing
//! c.hits += 1;
//! data.put("hits", &c)?;                                  // JSON
//! let raw: Vec<u8> = data.read("blob")?;                  // bytes; NotFound if missing
//! data.write("blob", &raw)?;
//! for key in data.keys("app/") {                         // every key under a prefix, in order,
//!     let key = key?;                                     // paged lazily (500 per host call)
//! }
//! let apps: u64 = data.count("app/")?;                    // how many: one host call
//! data.delete("old")?;
//! # Ok(()) }
//! ```
//!
//! Keys are segments of ASCII letters, digits, `_`, `-`, `.` joined by `/`
//! (`app/000017`), at most 200 bytes; no segment starts with `.`.
//!
//! ## Output
//!
//! `run` returns any [`serde::Serialize`] value; it becomes the run's
//! output as JSON (shown in the timeline, digested in the audit). An agent
//! whose output is exact bytes implements [`RawAgent`] instead and is
//! exported with `export_agent!(raw MyAgent)`.
//!
//! ## Logging
//!
//! [`log`] has one function and one `format!`-style macro per level:
//! `log::info!("wrote {n} records")`. Lines are kept with the run (capped by
//! the grants' log budget) and audited.
//!
//! ## Delegating
//!
//! A run may have other agents do part of its work. Each child is a runway
//! of its own, filed by the host for this run — its own grants (narrowed
//! to this run's), limits, locks and audit records — and joined when the
//! run needs it; waiting in a join holds no worker. A [`Delegation`] says
//! what a child is asked: agent, action, input, locks, window, retries,
//! idempotency key.
//!
//! ```no_run
//! use runway_sdk::{Agent, Context, Delegation, Error, Handoff, LockMode, export_agent};
//! use serde::Serialize;
//! use std::time::Duration;
//!
//! struct Planner;
//!
//! impl Agent for Planner {
//!     fn run(ctx: &Context) -> Result<impl Serialize, Error> {
//!         // Scatter: a reviewer per shard, all at once; gather their outputs.
//!         let mut shards = Vec::new();
//!         for shard in 0..4 {
//!             shards.push(Delegation::to("reviewer").action("review").input(&shard)?);
//!         }
//!         let reviews = ctx.parallel(shards)?.timeout(Duration::from_secs(60)).join_all()?;
//!         let flagged = reviews.iter().map(|r| r.json()).collect::<Result<Vec<u32>, _>>()?;
//!         ctx.progress(4, 6, "reviewed");
//!
//!         // Race two redundant scorers: the first success wins, the other is cancelled.
//!         let winner = ctx.first_success([
//!             Delegation::to("scorer-a").input(&flagged)?,
//!             Delegation::to("scorer-b").input(&flagged)?,
//!         ])?;
//!         let score: f64 = winner.json()?;
//!
//!         // A pipeline: each step's input is the previous step's output. This
//!         // run's `summaries` lock is handed down to the aggregator.
//!         ctx.chain([
//!             Delegation::to("normalise").input(&score)?,
//!             Delegation::to("aggregator").lock("summaries", LockMode::Exclusive),
//!         ])?;
//!         ctx.progress(6, 6, "summarised");
//!
//!         // Appeals takes over when this run ends, with its output as input.
//!         ctx.handoff(Handoff::to("appeals").action("review"))?;
//!         Ok(flagged)
//!     }
//! }
//!
//! export_agent!(Planner);
//! ```
//!
//! One child at a time: [`Context::delegate`] gives a [`Child`],
//! [`Context::join`] waits for children in a [`JoinMode`] (`All`, `Any`,
//! `FirstSuccess`, `Quorum(n)`) with an optional timeout, and
//! [`Context::cancel`] stops those that have not ended (a [`Parallel`]'s
//! too: `ctx.cancel(fan_out.children())`). Every join gives
//! back each child's [`ChildResult`] in the order asked — its
//! [`ChildState`], and its output or the reason it did not succeed — on a
//! timeout too, so nothing a finished child produced is lost. A child that
//! did not succeed is a value, not an error; the helpers that need a
//! success ([`ChildResult::json`], `first_success`, `chain`) make its
//! absence an [`Error::Invalid`] saying which child ended how.
//!
//! Locks: a dataset this run holds, named in a delegation, is handed down —
//! the child gets it with a fresh, higher token, and this run's calls there
//! answer [`Error::LockLost`] until the child has ended, when the lock
//! comes back with a fresh token. Any other lock is taken at once if free,
//! or the delegation is refused naming the holder; nothing waits. A
//! delegation given a key ([`Delegation::key`]; by default the host uses
//! this runway and the call's position) is filed once: asked again, in a
//! retried attempt too, it gives back the same child and its result.
//!
//! `testing::TestHost` runs delegating agents natively, children as other
//! agents or closures; see the `testing` module.
//!
//! ## Errors
//!
//! [`Error`] is the WIT `error` variant: `Denied`, `LockLost`, `NotFound`,
//! `Invalid`, `Limit`. Host calls return them as values; returning one from
//! `run` fails the run with `agent returned error: KIND: MESSAGE`. A panic
//! traps the instance and fails the run too.
//!
//! ## Testing natively
//!
//! With the `testing` feature (in `[dev-dependencies]`), `testing::TestHost`
//! runs `run` with plain `cargo test` against an in-memory host that makes
//! the real host's lock checks, with its messages; see the `testing` module.
//! (`cargo doc --features testing` shows it.)

mod agent;
#[doc(hidden)]
pub mod bindings;
mod children;
mod context;
mod dataset;
mod delegation;
mod error;
mod events;
mod host;
pub mod log;
mod orchestration;
// Native only: in a component the WIT imports are the host.
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use agent::{__run, __run_raw, Agent, RawAgent};
pub use bindings::runway::agent::orchestration::{
    ChildResult, ChildState, Delegation, HandoffRequest as Handoff, JoinMode, LockRequest,
    RetryPolicy,
};
pub use bindings::runway::agent::types::{HeldLock, LockMode, RunInfo};
pub use children::Child;
pub use context::Context;
pub use dataset::{Dataset, Keys, PAGE_SIZE};
pub use error::Error;
pub use orchestration::Parallel;
