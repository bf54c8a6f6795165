//! Runway: a WebAssembly plugin host for sandboxed agents.
//!
//! An agent is a wasm component ([`loader`]) that reaches datasets only
//! through host calls ([`sandbox::hostcalls`]) checked against the locks its
//! runway holds. The [`controller`] files [`plan`]s and clears runways when
//! their dependencies succeeded and their whole lock set is free; the
//! [`sandbox`] runs one runway in a fresh store and commits its staged writes
//! to the [`store`] only if it succeeds. Every filing, state change and host call is
//! a record in the hash-chained audit trail (`runway-audit`). [`cli`] is the
//! `runway` command line (the binary edge: the only place using `anyhow`).

pub mod api;
#[doc(hidden)]
pub mod bench_support;
pub mod bundled;
pub mod cli;
pub mod controller;
pub mod files;
pub mod grants;
pub mod limits;
pub mod loader;
pub mod names;
pub mod plan;
pub mod sandbox;
pub mod serve;
pub mod signing;
pub mod store;
pub mod watch;

pub use controller::{DispatchOptions, Host, PlanReport, RunwayReport, State, run_plan};
pub use grants::{Grants, Limits};
pub use loader::{Plugin, Plugins};
pub use plan::{Catalog, Manifest, Plan, PlanError};
pub use sandbox::Runtime;
pub use store::DatasetStore;
