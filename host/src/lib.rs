//! Runway: a WebAssembly plugin host for sandboxed agents.
//!
//! The folders are the layers, each using only those before it:
//! [`names`] and [`limits`] (leaves; [`files`] reads operator files), the
//! dataset [`store`], the [`sandbox`] (the one place a component is
//! instantiated and called, its host calls checked against the locks its
//! runway holds), [`plugin`] (grants, signatures, the loader and the folder
//! watch), the [`controller`] (plans, the state machine, the lock tower,
//! the journal it rebuilds itself from), then its doors — [`api`] (HTTP,
//! the plans inbox) and [`cli`], the `runway` command line (the binary
//! edge: the only place using `anyhow`). Every filing, state change and
//! host call is a record in the hash-chained audit trail (`runway-audit`).

pub mod api;
#[doc(hidden)]
pub mod bench_support;
pub mod bundled;
pub mod cli;
pub mod controller;
pub mod files;
pub mod limits;
pub mod names;
pub mod plugin;
pub mod roles;
pub mod sandbox;
pub mod store;

pub use controller::plan::{Catalog, Manifest, Plan, PlanError};
pub use controller::{DispatchOptions, Host, PlanReport, RunwayReport, State, run_plan};
pub use limits::Limits;
pub use plugin::grants::Grants;
pub use plugin::loader::{Plugin, Plugins};
pub use sandbox::Runtime;
pub use store::DatasetStore;
