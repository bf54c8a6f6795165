//! The wasmtime engine and linker shared by every run, and the compiled
//! component cache.
//!
//! One [`Runtime`] per process: a pooling-allocator engine (instances come
//! from pre-reserved slots, so instantiation takes microseconds) with fuel
//! and epoch interruption on, an epoch ticker thread, and a linker holding
//! the Runway host calls plus a WASI that grants nothing. Components are
//! compiled once per digest: kept in memory, and — with a cache folder — on
//! disk, keyed by digest and engine configuration, so a restart does not
//! recompile.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runway_audit::Hash;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::compiler::Compiler;
use super::epoch::{EpochClock, Ticker};
use super::hostcalls::{Agent, AgentPre, RunState};
use crate::limits::{
    MAX_CORE_INSTANCES_PER_RUN, MAX_LIVE_RUNS, MAX_MEMORIES_PER_RUN, MAX_MEMORY_BYTES,
    MAX_TABLES_PER_RUN, MAX_WAITING_PARENTS,
};

/// Bytes of each pool slot kept resident between runs.
const KEEP_RESIDENT: usize = 2 << 20;

/// The pooling allocator's slots: [`MAX_LIVE_RUNS`] runs working and
/// [`MAX_WAITING_PARENTS`] waiting on their children, each at most its
/// per-run share of core instances, memories and tables; a fiber stack
/// for each of them.
pub fn pool_config() -> PoolingAllocationConfig {
    let runs = MAX_LIVE_RUNS + MAX_WAITING_PARENTS;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(runs)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_RUN)
        .total_core_instances(runs * MAX_CORE_INSTANCES_PER_RUN)
        .max_memories_per_component(MAX_MEMORIES_PER_RUN)
        .total_memories(runs * MAX_MEMORIES_PER_RUN)
        .max_tables_per_component(MAX_TABLES_PER_RUN)
        .total_tables(runs * MAX_TABLES_PER_RUN)
        .total_stacks(runs)
        .max_memory_size(MAX_MEMORY_BYTES);
    pool
}

/// Compiling a component at least this large is announced on stderr (by
/// the command line's runtime, which compiles in a process of its own).
const SAY_COMPILING_BYTES: usize = 2 << 20;

/// Engine + linker + epoch ticker + compiled components.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    compiled: Mutex<HashMap<Hash, Component>>,
    cache_dir: Option<PathBuf>,
    compiler: Option<Compiler>,
    ticker: Ticker,
}

/// The engine or linker could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the wasm runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// A runtime compiling in this process, keeping compiled components in
    /// memory only.
    pub fn new() -> Result<Runtime, RuntimeError> {
        Runtime::build(None, None)
    }

    /// A runtime that also keeps compiled components in `dir`. The folder
    /// must be writable by this host only: its files are loaded as code.
    pub fn with_cache(dir: &Path) -> Result<Runtime, RuntimeError> {
        Runtime::with_cache_and_compiler(dir, None)
    }

    /// Like [`with_cache`](Self::with_cache), compiling in a capped process
    /// of its own when `compiler` is given (what `runway` does).
    pub fn with_cache_and_compiler(
        dir: &Path,
        compiler: Option<Compiler>,
    ) -> Result<Runtime, RuntimeError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| RuntimeError(format!("cache folder {}: {e}", dir.display())))?;
        Runtime::build(Some(dir.to_path_buf()), compiler)
    }

    fn build(
        cache_dir: Option<PathBuf>,
        compiler: Option<Compiler>,
    ) -> Result<Runtime, RuntimeError> {
        let err = |e: wasmtime::Error| RuntimeError(format!("{e:#}"));
        let mut pool = pool_config();
        // Reset a slot's first pages in place instead of unmapping them,
        // and only the pages a run dirtied (measured: bare run 29.7 µs →
        // 10.9 µs).
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        let mut config = super::compiler::code_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(err)?;
        super::hostcalls::add_bounded_clock_to_linker(&mut linker).map_err(err)?;
        Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(err)?;
        Ok(Runtime {
            ticker: Ticker::start(engine.clone())
                .map_err(|e| RuntimeError(format!("epoch ticker: {e}")))?,
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            cache_dir,
            compiler,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What runs hold to keep the epoch ticking.
    pub fn epoch(&self) -> EpochClock {
        self.ticker.clock()
    }

    /// Links a compiled component against the host calls and WASI, once,
    /// so each run only instantiates.
    pub(crate) fn link(&self, component: &Component) -> wasmtime::Result<AgentPre<RunState>> {
        AgentPre::new(self.linker.instantiate_pre(component)?)
    }

    /// The compiled component for plugin `name`'s `bytes` (whose SHA-256
    /// is `digest`): from memory, from the disk cache, or compiled now (and
    /// cached).
    pub(crate) fn component(
        &self,
        name: &str,
        digest: &Hash,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = compiled.get(digest) {
            return Ok(c.clone());
        }
        let cached = self.cache_path(digest);
        let component = match cached.as_deref().and_then(|p| self.load_cached(p)) {
            Some(c) => c,
            None => {
                // A large component takes seconds to tens of seconds (an
                // 18 MB Python agent: 11–39 s): say so, or a piped `runway
                // run` looks hung.
                if self.compiler.is_some() && bytes.len() >= SAY_COMPILING_BYTES {
                    eprintln!(
                        "runway: compiling plugin {name} ({:.1} MB); a large component's first load takes a while, it is cached after",
                        bytes.len() as f64 / 1e6
                    );
                }
                let c = self.compile(bytes)?;
                if let Some(path) = &cached {
                    store_cached(path, &c);
                }
                c
            }
        };
        compiled.insert(*digest, component.clone());
        Ok(component)
    }

    /// Compiles in the capped compiler process, or here without one.
    fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(compiler) = &self.compiler else {
            return Component::new(&self.engine, bytes);
        };
        let artifact = compiler.compile(bytes)?;
        // SAFETY: the artifact comes from our own compiler process (the
        // `runway` binary with the same code settings), never from a file
        // others can write; wasmtime checks it fits this engine.
        unsafe { Component::deserialize(&self.engine, &artifact) }
    }

    fn cache_path(&self, digest: &Hash) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let name = format!(
            "{}-{:016x}.cwasm",
            runway_audit::hex::encode(digest),
            h.finish()
        );
        Some(dir.join(name))
    }

    fn load_cached(&self, path: &Path) -> Option<Component> {
        if !path.is_file() {
            return None;
        }
        // SAFETY: the cache folder holds only what `store_cached` wrote with
        // this engine configuration (the file name carries its hash), and
        // `with_cache` documents that it must not be writable by others.
        match unsafe { Component::deserialize_file(&self.engine, path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled cache entry: {e:#}");
                None
            }
        }
    }
}

/// Writes a compiled component to the cache by temp + rename; a failure
/// only costs a recompile next time.
fn store_cached(path: &Path, component: &Component) {
    let write = || -> Result<(), Box<dyn std::error::Error>> {
        let bytes = component.serialize()?;
        // The cache may be shared by several hosts of one user: each writes
        // a temporary of its own, so no two can interleave in one file.
        let dir = path.parent().ok_or("cache entry without a folder")?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.persist(path)?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
    }
}
