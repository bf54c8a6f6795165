//! The sandbox: the one place a component is compiled, instantiated and
//! called.
//!
//! | concept | file |
//! |---|---|
//! | engine, pool, linker, epoch ticker, compiled-component cache | `runtime.rs` |
//! | compiling in a capped process of its own | `compiler.rs` |
//! | the epoch ticker, asleep while no run is alive | `epoch.rs` |
//! | one run: fresh store with its limits, `run`, judged; handed on flown (a run that may wait on children flies on a fiber) | `run.rs` |
//! | one memory budget for all the run's memories and tables | `limiter.rs` |
//! | a trap explained by its type and code, never by its text | `trap.rs` |
//! | why a run failed, and a host fault, as types | `failure.rs` |
//! | a run's cancel switch | `cancel.rs` |
//! | run state and host calls, one file per WIT interface | `hostcalls/` |
//!
//! It depends on `limits`, `grants` (a plugin's limits), `store` and the
//! audit trail, never on the layers that schedule runs: a flown run is
//! committed or dropped by the controller's commit protocol
//! (`controller::commit`).

pub(crate) mod cancel;
pub(crate) mod compiler;
pub(crate) mod epoch;
pub(crate) mod failure;
pub mod hostcalls;
pub(crate) mod limiter;
pub(crate) mod run;
pub(crate) mod runtime;
mod trap;

pub use cancel::Cancel;
pub use failure::{HostFault, RunFailure};
pub use run::{
    CommittedTo, Flown, Observer, Program, RunReport, RunRequest, Sandbox, fly, fly_async,
};
pub use runtime::{Runtime, pool_config};
