//! The wasmtime engine and linker shared by every run.
//!
//! One [`Runtime`] per process: a pooling-allocator engine (instances are
//! carved from pre-reserved slots, so instantiation is a few microseconds)
//! and a linker holding the Runway host calls plus a WASI that grants
//! nothing. Components are compiled once by [`crate::loader`] and
//! pre-instantiated against this linker.

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::hostcalls::{Agent, RunState};

/// Most runs alive at once (pool slots).
pub const MAX_LIVE_RUNS: u32 = 256;
/// Most linear memory one run may grow to.
pub const MAX_MEMORY_BYTES: usize = 512 << 20;

/// Engine + linker.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RunState>,
}

/// The engine or linker could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the wasm runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    pub fn new() -> Result<Runtime, RuntimeError> {
        let err = |e: wasmtime::Error| RuntimeError(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_LIVE_RUNS)
            .total_core_instances(MAX_LIVE_RUNS * 4)
            .total_memories(MAX_LIVE_RUNS)
            .total_tables(MAX_LIVE_RUNS * 4)
            .max_memory_size(MAX_MEMORY_BYTES);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(err)?;
        Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(err)?;
        Ok(Runtime { engine, linker })
    }
}
