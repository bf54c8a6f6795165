//! The sandbox: the one place a component is compiled, instantiated and
//! called.
//!
//! | concept | file |
//! |---|---|
//! | engine, pool, linker, epoch ticker, compiled-component cache | `runtime.rs` |
//! | compiling in a capped process of its own | `compiler.rs` |
//! | the epoch ticker, asleep while no run is alive | `epoch.rs` |
//! | one run: fresh store, `run`, judged against its limits | `run.rs` |
//! | landing flown runs in groups: commit or discard, end, report | `landing.rs` |
//! | the run's limits on its store, traps explained | `limiter.rs` |
//! | why a run failed, as a type | `failure.rs` |
//! | a run's cancel switch | `cancel.rs` |
//! | run state and host calls, one file per WIT interface | `hostcalls/` |
//!
//! It depends on `limits`, `grants` (a plugin's limits), `store` and the
//! audit trail, never on the layers that schedule runs.

pub mod cancel;
pub mod compiler;
pub mod epoch;
pub mod failure;
pub mod hostcalls;
pub mod landing;
pub mod limiter;
pub mod run;
pub mod runtime;

pub use cancel::Cancel;
pub use failure::RunFailure;
pub use landing::{LandingError, LandingStage};
pub use run::{Flown, Observer, Program, RunReport, RunRequest, Sandbox, execute, fly};
pub use runtime::Runtime;
