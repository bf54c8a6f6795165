//! Runway: a WebAssembly plugin host for sandboxed agents.
//!
//! An agent is a wasm component ([`loader`]) that reaches datasets only
//! through host calls ([`hostcalls`]) checked against the locks its runway
//! holds. The [`dispatcher`] files [`plan`]s and clears runways when their
//! dependencies succeeded and their whole lock set is free; the [`executor`]
//! runs one runway in a fresh store and commits its staged writes to the
//! [`store`] only if it succeeds. Every filing, state change and host call is
//! a record in the hash-chained audit trail (`runway-audit`). [`cli`] is the
//! `runway` command line (the binary edge: the only place using `anyhow`).

#[doc(hidden)]
pub mod bench_support;
pub mod bundled;
pub mod cli;
pub mod dispatcher;
pub mod executor;
pub mod files;
pub mod grants;
pub mod host;
pub mod hostcalls;
pub mod limits;
pub mod loader;
pub mod names;
pub mod plan;
pub mod runtime;
pub mod serve;
pub mod signing;
pub mod store;
pub mod watch;

pub use dispatcher::{DispatchOptions, PlanReport, RunwayReport, RunwayState, run_plan};
pub use grants::{Grants, Limits};
pub use host::Host;
pub use loader::{Plugin, Plugins};
pub use plan::{Catalog, Manifest, Plan, PlanError};
pub use runtime::Runtime;
pub use store::DatasetStore;
