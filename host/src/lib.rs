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

//! The public surface is deliberately small: each layer's module names
//! what the binary, the benches and the tests use (the `pub use` lines
//! in its `mod.rs`); everything else is the crate's own. The test
//! `surface` holds the list, so a change to it is a decision.

pub mod api;
#[doc(hidden)]
pub mod bench_support;
pub mod bundled;
mod cli;
pub mod controller;
mod files;
pub mod limits;
mod names;
pub mod plugin;
pub mod roles;
pub mod sandbox;
pub mod store;

pub use cli::main;
pub use controller::{
    DispatchOptions, Host, Manifest, Plan, PlanError, PlanReport, RunwayReport, State, run_plan,
};
pub use plugin::{Grants, Plugin, Plugins};
pub use sandbox::Runtime;
pub use store::DatasetStore;
