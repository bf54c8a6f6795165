//! # runway-sdk: write Runway agents in Rust
//!
//! An agent is a `wasm32-wasip2` component exporting the `runway:agent` world.
//! With this crate it is a type implementing [`Agent`] plus one
//! [`export_agent!`] line; the crate re-exports everything needed, so an agent
//! depends on `runway-sdk` (and usually `serde`/`serde_json`), not on
//! `wit-bindgen`.
//!
//! - [`Context`]: the run's identity, input (JSON) and locks, and
//!   [`Dataset`] handles.
//! - [`Dataset`]: read, write, delete and list records; typed records are
//!   JSON.
//! - [`log`]: the run's log, one function per level.
//! - [`Error`]: the WIT `error` variant, with its case names.
//!
//! Every dataset call is checked by the host against the locks the run
//! holds, and audited. Build with
//! `cargo build --release --target wasm32-wasip2` in a `cdylib` crate.
//!
//! ## Example
//!
//! An agent that bumps a counter record in the first dataset it holds
//! exclusively:
//!
//! ```no_run
//! use runway_sdk::{Agent, Context, Error, LockMode, export_agent, log};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Deserialize, Serialize)]
//! struct Counter { hits: u64 }
//!
//! struct Tally;
//!
//! impl Agent for Tally {
//!     fn run(ctx: &Context) -> Result<Vec<u8>, Error> {
//!         let lock = ctx.first_lock(LockMode::Exclusive)
//!             .ok_or_else(|| Error::Denied("needs an exclusive lock".into()))?;
//!         let data = ctx.dataset(&lock.dataset);
//!         let mut counter = match data.get::<Counter>("counter") {
//!             Err(Error::NotFound(_)) => Counter::default(),
//!             other => other?,
//!         };
//!         counter.hits += 1;
//!         data.put("counter", &counter)?;
//!         log::info(&format!("hits = {}", counter.hits));
//!         Ok(serde_json::to_vec(&counter)?)
//!     }
//! }
//!
//! export_agent!(Tally);
//! ```

mod agent;
#[doc(hidden)]
pub mod bindings;
mod context;
mod dataset;
mod error;
mod host;
pub mod log;
// Native only: in a component the WIT imports are the host.
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use agent::{__run, __run_raw, Agent, RawAgent};
pub use bindings::runway::agent::types::{HeldLock, LockMode, RunInfo};
pub use context::Context;
pub use dataset::{Dataset, Keys, PAGE_SIZE};
pub use error::Error;
