//! What the sandbox costs: Runway against bare wasmtime, side by side.
//!
//! Modelled on wasmtime's own `benches/instantiation.rs` (instantiate from an
//! `InstancePre` in a pooling allocator, sequentially and on parallel
//! threads) and `benches/call.rs` (wasm → host calls with typed arguments):
//! every measurement runs in the same process as its baseline, in rounds that
//! alternate which of the two goes first, and the table shows the median
//! round of each, their ratio (or difference) and the target.
//!
//! The bare baselines use their own `wasmtime::Engine` with the host's
//! pooling configuration, fuel and epochs off unless the row says otherwise,
//! and a `Linker` whose `runway:agent` imports are trivial host functions
//! returning constants (`BareState`), plus a WASI that is built only if the
//! guest touches it. Both run the same component: the `bench` plugin
//! (`plugins/bench`), compiled from the same bytes.
//!
//! Host-call and argument costs are timed by the guest around its own loop
//! (WASI monotonic clock), so they exclude run set-up, commit and the
//! run's wait for its audit records to be durable.
//!
//! Runway's side is measured as deep as each target needs: a run through
//! `run_plan` (what an operator gets) and through `commit::execute` (one
//! cleared runway), each waiting for its audit records to be durable as the
//! host does; then, to show where the time goes, the same run with data and
//! audit on tmpfs and the sandbox part alone (`bench_support`).
//!
//! Run with `cargo bench -p runway-tests --bench sandbox` (release; about
//! 20 s on 2 cores). Only `std::time::Instant`; no harness. Other work on
//! the machine skews the rows (worker scaling above all), so the footer
//! prints the load average. `SANDBOX_BENCH=runs,workers` runs only those
//! sections; `SANDBOX_PROFILE=runway-read` (see `Bench::profile`) loops one
//! case for `perf record -e cpu-clock -g`. (Callgrind cannot run it: the
//! host's pool reserves more address space than valgrind can map.)

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runway_audit::{LockGrant, LockMode};
use runway_host::controller as commit;
use runway_host::sandbox::hostcalls::runway::agent::{context, datasets, log, types};
use runway_host::sandbox::hostcalls::{AgentPre, GuestError, HeldLock, RunInfo, WitLockMode};
use runway_host::sandbox::{Observer, RunRequest};
use runway_host::{DispatchOptions, Host, Plan, Plugin, Plugins, Runtime, bench_support, bundled};
use runway_tests::timing::{interleaved, load_average};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Rounds per comparison; the median round counts.
const ROUNDS: usize = 5;
/// Wall time one side of one round aims for (at least one operation).
const BATCH: Duration = Duration::from_millis(60);
/// Live instances for the resident-memory measurement.
const LIVE: usize = 1000;
/// Runs in the plan of the worker-scaling measurement.
const PLAN_RUNS: usize = 16;
/// Linear memory (and table) bytes the keep-resident rows keep per slot.
const KEEP_RESIDENT: usize = 2 << 20;
/// Runs in the plan of the small-runs (landing) measurement, each on a
/// dataset of its own (no lock waits: workers and landing are measured).
const SMALL_RUNS: usize = 400;
/// Wall time one `spin` run aims for.
const SPIN_RUN: Duration = Duration::from_millis(20);

/// The allocator the `runway` binary runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let started = Instant::now();
    // `SANDBOX_BENCH=runs,host-calls` runs only those sections (for profiling).
    let only = std::env::var("SANDBOX_BENCH").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
    let load = load_average();
    let bench = Bench::setup();
    if let Ok(what) = std::env::var("SANDBOX_PROFILE") {
        bench.profile(&what);
        return;
    }
    let mut table = Table::default();

    let sections: [(&str, Section); 8] = [
        ("runs", Bench::runs),
        ("small-runs", Bench::small_runs),
        ("host-calls", Bench::host_calls),
        ("arguments", Bench::arguments),
        ("loading", Bench::loading),
        ("workers", Bench::workers),
        ("interruption", Bench::interruption),
        ("resident", Bench::resident),
    ];
    for (name, section) in sections {
        if wanted(name) {
            section(&bench, &mut table);
        }
    }

    table.print();
    println!(
        "(whole benchmark: {:.1} s; load average {load} before, {} after, {} CPUs)",
        started.elapsed().as_secs_f64(),
        load_average(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
}

/// One part of the benchmark, adding its rows to the table.
type Section = fn(&Bench, &mut Table);

// ---------------------------------------------------------------------------
// The bare baseline: a minimal host for the same world.

/// A bare host's per-store state: the run info `context.info` returns, and
/// a WASI that is only built if the guest touches it.
struct BareState {
    info: RunInfo,
    wasi: Option<WasiCtx>,
    table: ResourceTable,
}

impl BareState {
    fn new(info: RunInfo) -> BareState {
        BareState {
            info,
            wasi: None,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

impl types::Host for BareState {}

impl context::Host for BareState {
    fn info(&mut self) -> wasmtime::Result<RunInfo> {
        Ok(self.info.clone())
    }
}

impl datasets::Host for BareState {
    fn read(&mut self, _: String, _: String) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        Ok(Err(GuestError::NotFound(String::new())))
    }
    fn write(
        &mut self,
        _: String,
        _: String,
        _: Vec<u8>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(Ok(()))
    }
    fn delete(&mut self, _: String, _: String) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(Ok(()))
    }
    fn list(
        &mut self,
        _: String,
        _: String,
        _: Option<String>,
        _: u32,
    ) -> wasmtime::Result<Result<types::Page, GuestError>> {
        Ok(Ok(types::Page {
            keys: Vec::new(),
            next_cursor: None,
        }))
    }
    fn count(&mut self, _: String, _: String) -> wasmtime::Result<Result<u64, GuestError>> {
        Ok(Ok(0))
    }
}

runway_tests::deny_orchestration!(BareState);

impl log::Host for BareState {
    fn log(&mut self, _: log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// Which of the run-time checks a bare engine compiles in.
#[derive(Clone, Copy)]
struct Knobs {
    epoch: bool,
    fuel: bool,
}

const PLAIN: Knobs = Knobs {
    epoch: false,
    fuel: false,
};

/// The host's pool (`runway_host::sandbox::runtime`): its slot counts, its memory cap.
fn host_pool() -> PoolingAllocationConfig {
    runway_host::sandbox::pool_config()
}

/// A pooling engine; `component-model-async` is not compiled into this
/// workspace's wasmtime at all (see the workspace `Cargo.toml`).
fn engine(pool: PoolingAllocationConfig, knobs: Knobs, tweak: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(knobs.epoch)
        .consume_fuel(knobs.fuel);
    tweak(&mut config);
    Engine::new(&config).expect("bare engine")
}

/// A bare host: engine, linker, the component pre-instantiated.
struct Bare {
    engine: Engine,
    knobs: Knobs,
    pre: AgentPre<BareState>,
}

impl Bare {
    fn new(engine: Engine, knobs: Knobs, component: &Component) -> Bare {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi links");
        runway_host::sandbox::hostcalls::Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .expect("runway:agent links");
        let pre = AgentPre::new(linker.instantiate_pre(component).expect("instantiate_pre"))
            .expect("agent exports");
        Bare { engine, knobs, pre }
    }

    /// Compiles `wasm` for a fresh engine with `knobs` and the host's pool.
    fn compile(knobs: Knobs, wasm: &[u8]) -> Bare {
        Bare::compile_in(host_pool(), knobs, wasm)
    }

    fn compile_in(pool: PoolingAllocationConfig, knobs: Knobs, wasm: &[u8]) -> Bare {
        let engine = engine(pool, knobs, |_| {});
        let component = Component::new(&engine, wasm).expect("bench compiles");
        Bare::new(engine, knobs, &component)
    }

    fn store(&self, info: RunInfo) -> Store<BareState> {
        let mut store = Store::new(&self.engine, BareState::new(info));
        if self.knobs.fuel {
            store.set_fuel(10_000_000_000).expect("fuel");
        }
        if self.knobs.epoch {
            store.set_epoch_deadline(1 << 40);
        }
        store
    }

    /// New store, instantiate, call `run`, drop: one bare run.
    fn run(&self, info: RunInfo) -> Vec<u8> {
        let mut store = self.store(info);
        let agent = self.pre.instantiate(&mut store).expect("instantiate");
        agent
            .call_run(&mut store)
            .expect("no trap")
            .unwrap_or_else(|e| panic!("bare run failed: {e:?}"))
    }
}

/// Advances the epoch of some engines every 10 ms (as the host's ticker
/// does) until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engines: Vec<Engine>) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                engines.iter().for_each(Engine::increment_epoch);
            }
        });
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Runway's side.

/// A Runway host over its own data root and (unsigned) audit folder.
fn runway_host(
    runtime: &Arc<Runtime>,
    plugins: &Arc<Plugins>,
    root: &Path,
    workers: usize,
) -> Arc<Host> {
    let (data, audit) = (root.join("data"), root.join("audit"));
    runway_tests::open_host_with(runtime, &data, &audit, plugins.clone(), workers)
}

/// The `bench` agent's run info, as both hosts hand it over.
fn info(action: &str, input: &str, locks: &[(&str, LockMode)]) -> RunInfo {
    RunInfo {
        runway: "bench-1".into(),
        agent: "bench".into(),
        action: action.into(),
        input: input.as_bytes().to_vec(),
        attempt: 1,
        locks: locks
            .iter()
            .map(|&(dataset, mode)| HeldLock {
                dataset: dataset.into(),
                mode: mode.into(),
                token: 1,
            })
            .collect(),
    }
}

/// One run through [`commit::execute`] (what the dispatcher does for a
/// cleared runway): records, instantiate, call, commit, wait until durable.
fn execute(host: &Host, plugin: &Arc<Plugin>, info: &RunInfo) -> Vec<u8> {
    let locks = info
        .locks
        .iter()
        .map(|l| LockGrant {
            dataset: l.dataset.clone(),
            mode: match l.mode {
                WitLockMode::Shared => LockMode::Shared,
                WitLockMode::Exclusive => LockMode::Exclusive,
            },
            token: host.store.next_token().expect("token"),
        })
        .collect();
    let req = RunRequest {
        runway: info.runway.clone(),
        program: plugin.program(),
        action: info.action.clone(),
        input: info.input.clone(),
        attempt: 1,
        locks,
        cancel: Default::default(),
        delegator: None,
        keep_output: false,
    };
    let observer: Observer = Arc::new(|_| {});
    let report = commit::execute(host.sandbox(), req, &observer).expect("audit trail works");
    report
        .outcome
        .unwrap_or_else(|e| panic!("Runway run failed: {e}"))
}

/// Nanoseconds the guest measured around its loop.
fn guest_ns(output: &[u8]) -> f64 {
    let ns: u64 = serde_json::from_slice(output).expect("nanoseconds as a JSON number");
    ns as f64
}

// ---------------------------------------------------------------------------
// Timing.

/// Runs `op` for about [`BATCH`] (at least once); nanoseconds per call.
/// The clock is read after chunks of calls that double in size, so reading
/// it does not weigh on operations of a few nanoseconds.
fn per_op(mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    let mut chunk = 1u64;
    loop {
        for _ in 0..chunk {
            op();
        }
        n += chunk;
        if start.elapsed() >= BATCH {
            break;
        }
        chunk = (chunk * 2).min(1 << 16);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

// ---------------------------------------------------------------------------
// The table.

enum Target {
    /// Informational: no target.
    None,
    /// Informational: shown as baseline / measured ("× faster").
    Faster,
    /// measured / baseline at most this.
    MaxRatio(f64),
    /// baseline / measured at least this.
    MinSpeedup(f64),
    /// measured − baseline at most this many ns.
    MaxExtraNs(f64),
    /// measured at most this many ns, whatever the baseline.
    MaxNs(f64),
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 6]>,
    verdicts: Vec<Option<bool>>,
    sections: Vec<(usize, String)>,
}

impl Table {
    fn section(&mut self, title: &str) {
        println!("-- {title}");
        self.sections.push((self.rows.len(), title.to_string()));
    }

    /// A row comparing two times (ns).
    fn time(
        &mut self,
        what: &str,
        measured: f64,
        baseline_name: &str,
        baseline: f64,
        target: Target,
    ) {
        let (result, target_text, verdict) = match target {
            Target::None => (
                format!("{:.2}×", measured / baseline),
                "—".to_string(),
                None,
            ),
            Target::Faster => (
                format!("{:.2}× faster", baseline / measured),
                "—".to_string(),
                None,
            ),
            Target::MaxRatio(max) => {
                let r = measured / baseline;
                (format!("{r:.2}×"), format!("≤ {max}×"), Some(r <= max))
            }
            Target::MinSpeedup(min) => {
                let r = baseline / measured;
                (
                    format!("{r:.2}× faster"),
                    format!("≥ {min}× faster"),
                    Some(r >= min),
                )
            }
            Target::MaxNs(max) => (
                format!("{:.2}×", measured / baseline),
                format!("≤ {}", fmt_ns(max)),
                Some(measured <= max),
            ),
            Target::MaxExtraNs(max) => {
                let d = measured - baseline;
                (
                    format!("{d:+.0} ns"),
                    format!("≤ +{max} ns"),
                    Some(d <= max),
                )
            }
        };
        self.row(
            [
                what.to_string(),
                fmt_ns(measured),
                format!("{baseline_name}: {}", fmt_ns(baseline)),
                result,
                target_text,
            ],
            verdict,
        );
    }

    fn row(&mut self, cells: [String; 5], verdict: Option<bool>) {
        let v = match verdict {
            None => "info",
            Some(true) => "PASS",
            Some(false) => "MISS",
        };
        let [a, b, c, d, e] = cells;
        let row = [a, b, c, d, e, v.to_string()];
        println!("   {}", row.join(" | "));
        self.rows.push(row);
        self.verdicts.push(verdict);
    }

    fn print(&self) {
        let heads = [
            "measurement",
            "measured",
            "baseline",
            "result",
            "target",
            "",
        ];
        let mut widths = heads.map(|h| h.chars().count());
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                // Numbers right-aligned, words left-aligned.
                if i == 1 || i == 3 {
                    let _ = write!(s, "{}{cell}  ", " ".repeat(pad));
                } else {
                    let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
                }
            }
            s.trim_end().to_string()
        };
        println!();
        println!("{}", line(&heads.map(String::from)));
        println!(
            "{}",
            "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len())
        );
        for (i, row) in self.rows.iter().enumerate() {
            if let Some((_, title)) = self.sections.iter().find(|(at, _)| *at == i) {
                println!("[{title}]");
            }
            println!("{}", line(row));
        }
        let pass = self.verdicts.iter().filter(|v| **v == Some(true)).count();
        let miss = self.verdicts.iter().filter(|v| **v == Some(false)).count();
        println!();
        println!("targets: {pass} PASS, {miss} MISS");
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

// ---------------------------------------------------------------------------
// The measurements.

struct Bench {
    dir: tempfile::TempDir,
    /// Folder on tmpfs (or the disk when there is none) for the rows that
    /// take fsync out of the picture.
    _shm: tempfile::TempDir,
    wasm: Vec<u8>,
    /// The component compiled by the plain bare engine, serialized.
    cwasm: PathBuf,
    /// Folder holding only `bench.wasm` + `bench.toml`.
    plugin_dir: PathBuf,
    runtime: Arc<Runtime>,
    plugins: Arc<Plugins>,
    plugin: Arc<Plugin>,
    /// Runway host, data and audit on the disk.
    disk: Arc<Host>,
    /// Runway host, data and audit on tmpfs.
    tmpfs: Arc<Host>,
    bare: Bare,
    tokio: tokio::runtime::Runtime,
}

impl Bench {
    fn setup() -> Bench {
        let (_, path) = bundled::PLUGIN_PATHS
            .iter()
            .find(|(name, _)| *name == "bench")
            .expect("plugins/bench is built");
        let wasm = std::fs::read(path).expect("bench.wasm");
        let grants =
            std::fs::read_to_string(Path::new(path).with_extension("toml")).expect("bench.toml");

        let dir = tempfile::tempdir().expect("tempdir");
        let shm = match Path::new("/dev/shm").is_dir() {
            true => tempfile::tempdir_in("/dev/shm").expect("tempdir on /dev/shm"),
            false => tempfile::tempdir().expect("tempdir"),
        };
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
        std::fs::write(plugin_dir.join("bench.wasm"), &wasm).expect("copy bench.wasm");
        std::fs::write(plugin_dir.join("bench.toml"), &grants).expect("copy bench.toml");

        let runtime = Arc::new(Runtime::new().expect("runtime"));
        let plugins = Arc::new(
            Plugins::from_bytes(&runtime, [("bench", &wasm[..], &grants[..])])
                .expect("bench loads"),
        );
        let plugin = plugins.get("bench").expect("bench plugin");
        let disk = runway_host(&runtime, &plugins, &dir.path().join("disk"), 2);
        let tmpfs = runway_host(&runtime, &plugins, &shm.path().join("tmpfs"), 2);

        let plain = engine(host_pool(), PLAIN, |_| {});
        let component = Component::new(&plain, &wasm).expect("bench compiles");
        let cwasm = dir.path().join("bench.cwasm");
        std::fs::write(&cwasm, component.serialize().expect("serialize")).expect("write cwasm");
        // The bare host runs what the load comparison deserializes.
        // SAFETY: written just above by this engine's configuration.
        let component =
            unsafe { Component::deserialize_file(&plain, &cwasm) }.expect("deserialize");
        let bare = Bare::new(plain, PLAIN, &component);

        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        println!(
            "bench component: {} KiB wasm, {} KiB compiled; data+audit on {} and {}",
            wasm.len() / 1024,
            std::fs::metadata(&cwasm)
                .map(|m| m.len() / 1024)
                .unwrap_or(0),
            dir.path().display(),
            shm.path().display(),
        );
        Bench {
            dir,
            _shm: shm,
            wasm,
            cwasm,
            plugin_dir,
            runtime,
            plugins,
            plugin,
            disk,
            tmpfs,
            bare,
            tokio,
        }
    }

    /// `SANDBOX_PROFILE=WHAT`: only WHAT, over and over for `SANDBOX_SECS`
    /// (3) seconds, for `perf record` or `valgrind --tool=callgrind`. WHAT
    /// is `sandbox-noop` or `bare-`/`runway-` followed by `noop`, `read`,
    /// `write` or `log` (`SANDBOX_BYTES`, 4096, per write or message);
    /// Runway runs keep data and audit on tmpfs.
    fn profile(&self, what: &str) {
        let noop = info("noop", "", &[]);
        let read = info(
            "calls",
            r#"{"n": 20000, "dataset": "bench_data", "key": "k"}"#,
            &[("bench_data", LockMode::Shared)],
        );
        let bytes: usize = std::env::var("SANDBOX_BYTES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4096);
        let n = (64 << 20) / (bytes + 1024);
        let lock = [("bench_data", LockMode::Exclusive)];
        let write = info(
            "write",
            &format!(r#"{{"n": {n}, "bytes": {bytes}, "dataset": "bench_data"}}"#),
            &lock,
        );
        let log = info("log", &format!(r#"{{"n": {n}, "bytes": {bytes}}}"#), &lock);
        let secs = std::env::var("SANDBOX_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0);
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let mut n = 0u64;
        while Instant::now() < until {
            match what {
                "bare-noop" => drop(self.bare.run(noop.clone())),
                "sandbox-noop" => drop(
                    bench_support::instantiate_and_call(&self.tmpfs, &self.plugin, noop.clone())
                        .expect("no trap"),
                ),
                "runway-noop" => drop(execute(&self.tmpfs, &self.plugin, &noop)),
                "bare-read" => drop(self.bare.run(read.clone())),
                "runway-read" => drop(execute(&self.tmpfs, &self.plugin, &read)),
                "bare-write" => drop(self.bare.run(write.clone())),
                "runway-write" => drop(execute(&self.tmpfs, &self.plugin, &write)),
                "bare-log" => drop(self.bare.run(log.clone())),
                "runway-log" => drop(execute(&self.tmpfs, &self.plugin, &log)),
                other => panic!("SANDBOX_PROFILE={other}: unknown"),
            }
            n += 1;
        }
        println!("{what}: {n} runs in {secs} s");
    }

    /// A whole run of the empty agent, each way it can be had.
    fn runs(&self, table: &mut Table) {
        table.section("one run of the noop agent (instantiate + call run)");
        let noop = info("noop", "", &[]);
        let runway_like = Bare::compile(
            Knobs {
                epoch: true,
                fuel: true,
            },
            &self.wasm,
        );
        let _ticker = Ticker::start(vec![runway_like.engine.clone()]);
        // What the host's pool would give with memory kept resident between
        // runs (memset instead of madvise + page faults), and with Linux's
        // PAGEMAP_SCAN resetting only the pages a run dirtied.
        let mut pool = host_pool();
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let resident = Bare::compile_in(pool.clone(), PLAIN, &self.wasm);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        let scanned = Bare::compile_in(pool, PLAIN, &self.wasm);
        let plan = Plan::parse(
            "[[runway]]\nid = \"noop\"\nagent = \"bench\"\naction = \"noop\"\n",
            &*self.plugins,
        )
        .expect("plan");
        let mut bare = || per_op(|| drop(black_box(self.bare.run(noop.clone()))));
        let mut bare_knobs = || per_op(|| drop(black_box(runway_like.run(noop.clone()))));
        let mut bare_resident = || per_op(|| drop(black_box(resident.run(noop.clone()))));
        let mut bare_scanned = || per_op(|| drop(black_box(scanned.run(noop.clone()))));
        let mut sandbox = || {
            per_op(|| {
                bench_support::instantiate_and_call(&self.disk, &self.plugin, noop.clone())
                    .expect("no trap")
                    .expect("noop succeeds");
            })
        };
        let mut exec_tmpfs = || per_op(|| drop(execute(&self.tmpfs, &self.plugin, &noop)));
        let mut exec_disk = || per_op(|| drop(execute(&self.disk, &self.plugin, &noop)));
        let mut plan_disk = || {
            per_op(|| {
                let report = self
                    .tokio
                    .block_on(runway_host::run_plan(
                        self.disk.clone(),
                        plan.clone(),
                        DispatchOptions::default(),
                    ))
                    .expect("plan ran");
                assert_eq!(report.failed(), 0);
            })
        };
        let mut spawn = || {
            per_op(|| {
                let status = std::process::Command::new("/bin/true")
                    .status()
                    .expect("spawn /bin/true");
                assert!(status.success());
            })
        };
        let m = interleaved(
            ROUNDS,
            &mut [
                &mut bare,
                &mut bare_knobs,
                &mut bare_resident,
                &mut bare_scanned,
                &mut sandbox,
                &mut exec_tmpfs,
                &mut exec_disk,
                &mut plan_disk,
                &mut spawn,
            ],
        );
        let [
            bare,
            knobs,
            resident,
            scanned,
            sandbox,
            tmpfs,
            disk,
            plan,
            spawn,
        ] = m[..]
        else {
            unreachable!()
        };
        let base = "bare InstancePre+call";
        table.time(
            "Runway run: commit::execute (audit durable on disk)",
            disk,
            base,
            bare,
            Target::MaxRatio(1.3),
        );
        table.time(
            "Runway run: run_plan, 1 runway (audit on disk)",
            plan,
            base,
            bare,
            Target::MaxRatio(1.3),
        );
        table.time(
            "  same run, data + audit on tmpfs (no disk fsync)",
            tmpfs,
            base,
            bare,
            Target::None,
        );
        table.time(
            "  sandbox only: RunState+limits+instantiate+call",
            sandbox,
            base,
            bare,
            Target::None,
        );
        table.time(
            "  bare, with Runway's fuel + epoch on",
            knobs,
            base,
            bare,
            Target::None,
        );
        table.time(
            &format!("  bare, pool keeps {} MiB resident", KEEP_RESIDENT >> 20),
            resident,
            base,
            bare,
            Target::None,
        );
        table.time(
            "  bare, same + PAGEMAP_SCAN",
            scanned,
            base,
            bare,
            Target::None,
        );
        table.time(
            "process spawn (/bin/true) vs Runway run (execute, disk)",
            disk,
            "spawn",
            spawn,
            Target::MinSpeedup(150.0),
        );
        table.time(
            "  vs Runway run on tmpfs",
            tmpfs,
            "spawn",
            spawn,
            Target::MinSpeedup(150.0),
        );
        table.time(
            "  vs bare InstancePre+call",
            bare,
            "spawn",
            spawn,
            Target::Faster,
        );
    }

    /// One audited, lock-checked `datasets.read` against a bare one.
    fn host_calls(&self, table: &mut Table) {
        table.section("host call: datasets.read (not found), timed in the guest");
        const N: u32 = 20_000;
        let input = format!(r#"{{"n": {N}, "dataset": "bench_data", "key": "k"}}"#);
        let calls = info("calls", &input, &[("bench_data", LockMode::Shared)]);
        let mut runway = || guest_ns(&execute(&self.disk, &self.plugin, &calls)) / f64::from(N);
        let mut bare = || guest_ns(&self.bare.run(calls.clone())) / f64::from(N);
        let m = interleaved(ROUNDS, &mut [&mut runway, &mut bare]);
        table.time(
            "audited, lock-checked read vs bare func_wrap read",
            m[0],
            "bare",
            m[1],
            Target::MaxExtraNs(100.0),
        );
    }

    /// `list<u8>` and `string` arguments of growing size against a memcpy.
    fn arguments(&self, table: &mut Table) {
        table.section("arguments: per call, timed in the guest, vs memcpy of the bytes");
        for (bytes, n) in [(32usize, 20_000u32), (4096, 5_000), (65536, 500)] {
            let lock = [("bench_data", LockMode::Exclusive)];
            let write = info(
                "write",
                &format!(r#"{{"n": {n}, "bytes": {bytes}, "dataset": "bench_data"}}"#),
                &lock,
            );
            let log = info("log", &format!(r#"{{"n": {n}, "bytes": {bytes}}}"#), &lock);
            // Source and destination half a page apart: when they sit at the
            // same offset within a page (as two fresh allocations of the same
            // size often do) `rep movsb` on this AMD CPU is ~15× slower, which
            // would flatter everything compared with it.
            let mut buf = vec![0x5au8; 2 * bytes + 2048];
            let (src, dst) = buf.split_at_mut(bytes + 2048);
            let (src, dst) = (&src[..bytes], &mut dst[..bytes]);
            let mut memcpy = || {
                per_op(|| {
                    dst.copy_from_slice(black_box(src));
                    black_box(&mut *dst);
                })
            };
            let per_call = |out: Vec<u8>| guest_ns(&out) / f64::from(n);
            let mut runway_write = || per_call(execute(&self.disk, &self.plugin, &write));
            let mut bare_write = || per_call(self.bare.run(write.clone()));
            let mut runway_log = || per_call(execute(&self.disk, &self.plugin, &log));
            let mut bare_log = || per_call(self.bare.run(log.clone()));
            let m = interleaved(
                ROUNDS,
                &mut [
                    &mut memcpy,
                    &mut runway_write,
                    &mut bare_write,
                    &mut runway_log,
                    &mut bare_log,
                ],
            );
            let size = match bytes {
                32 => "32 B".to_string(),
                b => format!("{} KiB", b / 1024),
            };
            let base = format!("memcpy {size}");
            table.time(
                &format!("list<u8> {size}: Runway datasets.write"),
                m[1],
                &base,
                m[0],
                Target::None,
            );
            table.time(
                &format!("list<u8> {size}: bare datasets.write"),
                m[2],
                &base,
                m[0],
                Target::None,
            );
            table.time(
                &format!("string {size}: Runway log.log"),
                m[3],
                &base,
                m[0],
                Target::None,
            );
            table.time(
                &format!("string {size}: bare log.log"),
                m[4],
                &base,
                m[0],
                Target::None,
            );
        }
    }

    /// Loading a plugin against deserializing its compiled component.
    fn loading(&self, table: &mut Table) {
        table.section("plugin load (fresh engine each time, not timed)");
        let cache = self.dir.path().join("cache");
        {
            // Fill the compiled-component cache.
            let runtime = Runtime::with_cache(&cache).expect("runtime");
            Plugins::load_dir(&runtime, &self.plugin_dir).expect("load");
        }
        let fresh_bare = || engine(host_pool(), PLAIN, |_| {});
        let timed = |f: &mut dyn FnMut() -> Duration| {
            let start = Instant::now();
            let mut total = Duration::ZERO;
            let mut n = 0u32;
            while n == 0 || start.elapsed() < BATCH * 2 {
                total += f();
                n += 1;
            }
            total.as_nanos() as f64 / f64::from(n)
        };
        let mut warm = || {
            timed(&mut || {
                let runtime = Runtime::with_cache(&cache).expect("runtime");
                let t = Instant::now();
                let plugins = Plugins::load_dir(&runtime, &self.plugin_dir).expect("load");
                let d = t.elapsed();
                drop(black_box(plugins));
                d
            })
        };
        let mut deserialize = || {
            timed(&mut || {
                let engine = fresh_bare();
                let t = Instant::now();
                // SAFETY: written by `setup` with this configuration.
                let c = unsafe { Component::deserialize_file(&engine, &self.cwasm) };
                let d = t.elapsed();
                drop(black_box(c.expect("deserialize")));
                d
            })
        };
        let m = interleaved(ROUNDS, &mut [&mut warm, &mut deserialize]);
        table.time(
            "Plugins::load_dir, compiled cache warm",
            m[0],
            "deserialize_file",
            m[1],
            Target::None,
        );
        let mut cold = || {
            let runtime = Runtime::new().expect("runtime");
            let t = Instant::now();
            let plugins = Plugins::load_dir(&runtime, &self.plugin_dir).expect("load");
            let d = t.elapsed();
            drop(black_box(plugins));
            d.as_nanos() as f64
        };
        let mut deserialize_once = || {
            let engine = fresh_bare();
            let t = Instant::now();
            // SAFETY: as above.
            let c = unsafe { Component::deserialize_file(&engine, &self.cwasm) };
            let d = t.elapsed();
            drop(black_box(c.expect("deserialize")));
            d.as_nanos() as f64
        };
        let m = interleaved(3, &mut [&mut cold, &mut deserialize_once]);
        table.time(
            "Plugins::load_dir, no cache (compiles)",
            m[0],
            "deserialize_file",
            m[1],
            Target::None,
        );
    }

    /// A plan of independent compute-bound runs on 1 and on 2 workers.
    fn workers(&self, table: &mut Table) {
        table.section(&format!("{PLAN_RUNS} spin runs in one plan, run_plan"));
        // Size a spin run to about SPIN_RUN under Runway's fuel + epoch
        // (best of three probes).
        let probe = 2_000_000u64;
        let probe_info = info("spin", &format!(r#"{{"iters": {probe}}}"#), &[]);
        let took = (0..3)
            .map(|_| {
                let t = Instant::now();
                bench_support::instantiate_and_call(&self.disk, &self.plugin, probe_info.clone())
                    .expect("no trap")
                    .expect("spin runs");
                t.elapsed()
            })
            .min()
            .expect("three probes");
        let iters = (probe as f64 * SPIN_RUN.as_secs_f64() / took.as_secs_f64()) as u64;
        let mut text = String::new();
        for i in 0..PLAN_RUNS {
            let _ = write!(
                text,
                "[[runway]]\nid = \"spin{i}\"\nagent = \"bench\"\naction = \"spin\"\ninput = {{ iters = {iters} }}\n\n"
            );
        }
        let plan = Plan::parse(&text, &*self.plugins).expect("plan");
        let dir = self.dir.path();
        let one = runway_host(&self.runtime, &self.plugins, &dir.join("w1"), 1);
        let two = runway_host(&self.runtime, &self.plugins, &dir.join("w2"), 2);
        let fly = |host: &Arc<Host>| {
            let t = Instant::now();
            let report = self
                .tokio
                .block_on(runway_host::run_plan(
                    host.clone(),
                    plan.clone(),
                    DispatchOptions::default(),
                ))
                .expect("plan ran");
            assert_eq!(report.failed(), 0);
            t.elapsed().as_nanos() as f64
        };
        // The machine's own scaling: the same runs on bare wasmtime (fuel
        // and epoch on, as in Runway), on 1 and 2 plain threads pulling
        // from one counter, as wasmtime's `benches/instantiation.rs` does.
        let bare = Bare::compile(
            Knobs {
                epoch: true,
                fuel: true,
            },
            &self.wasm,
        );
        let _ticker = Ticker::start(vec![bare.engine.clone()]);
        let spin = info("spin", &format!(r#"{{"iters": {iters}}}"#), &[]);
        let threads = |n: usize| {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let t = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..n {
                    scope.spawn(|| {
                        while next.fetch_add(1, Ordering::Relaxed) < PLAN_RUNS {
                            black_box(bare.run(spin.clone()));
                        }
                    });
                }
            });
            t.elapsed().as_nanos() as f64
        };
        let mut w1 = || fly(&one);
        let mut w2 = || fly(&two);
        let mut t1 = || threads(1);
        let mut t2 = || threads(2);
        let m = interleaved(ROUNDS, &mut [&mut w1, &mut w2, &mut t1, &mut t2]);
        table.time(
            &format!("2 workers vs 1 (plan wall time, {iters} iters/run)"),
            m[1],
            "1 worker",
            m[0],
            Target::MinSpeedup(1.8),
        );
        table.time(
            "  bare wasmtime: 2 threads vs 1 (same runs)",
            m[3],
            "1 thread",
            m[2],
            Target::Faster,
        );
        table.time(
            "  Runway 1 worker vs bare 1 thread",
            m[0],
            "bare",
            m[2],
            Target::None,
        );
    }

    /// Many small runs (one read + one write each) through `run_plan` on 2
    /// workers, durable store and audit on the disk, against the best bare
    /// pool running the same component on 2 threads; and how long each run
    /// waited from its agent's return to its report (the landing stage).
    fn small_runs(&self, table: &mut Table) {
        table.section(&format!(
            "{SMALL_RUNS} small runs (read + write), 2 workers, run_plan"
        ));
        let mut text = String::new();
        for i in 0..SMALL_RUNS {
            let _ = write!(
                text,
                "[[runway]]\nid = \"s{i}\"\nagent = \"bench\"\naction = \"touch\"\n\
                 datasets = {{ bench_s{i} = \"exclusive\" }}\ninput = {{ key = \"k{i}\", bytes = 64 }}\n\n",
            );
        }
        let plan = Plan::parse(&text, &*self.plugins).expect("plan");
        let host = runway_host(
            &self.runtime,
            &self.plugins,
            &self.dir.path().join("small"),
            2,
        );
        let mut landings = Vec::new();
        let mut runway = || {
            let t = Instant::now();
            let report = self
                .tokio
                .block_on(runway_host::run_plan(
                    host.clone(),
                    plan.clone(),
                    DispatchOptions::default(),
                ))
                .expect("plan ran");
            let wall = t.elapsed().as_nanos() as f64;
            assert_eq!(report.failed(), 0);
            landings.extend(
                report
                    .runways
                    .iter()
                    .filter_map(|r| r.run.as_ref())
                    .map(|r| r.landing.as_nanos() as f64),
            );
            wall / SMALL_RUNS as f64
        };
        // The best bare configuration this bench knows, on 2 threads.
        let mut pool = host_pool();
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let resident = Bare::compile_in(pool.clone(), PLAIN, &self.wasm);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        let scanned = Bare::compile_in(pool, PLAIN, &self.wasm);
        let touch = info(
            "touch",
            r#"{"key": "k1", "bytes": 64}"#,
            &[("bench_s1", LockMode::Exclusive)],
        );
        let two_threads = |bare: &Bare| {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let t = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        while next.fetch_add(1, Ordering::Relaxed) < SMALL_RUNS {
                            black_box(bare.run(touch.clone()));
                        }
                    });
                }
            });
            t.elapsed().as_nanos() as f64 / SMALL_RUNS as f64
        };
        let mut plain = || two_threads(&self.bare);
        let mut kept = || two_threads(&resident);
        let mut scan = || two_threads(&scanned);
        let m = interleaved(ROUNDS, &mut [&mut runway, &mut plain, &mut kept, &mut scan]);
        let (best, name) = [
            (m[1], "bare pool"),
            (m[2], "bare resident"),
            (m[3], "bare PAGEMAP_SCAN"),
        ]
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("three bare rows");
        table.time(
            "Runway per run (wall / runs), durable store + audit",
            m[0],
            name,
            best,
            // Throughput at least 0.7× bare: time per run at most 1/0.7×.
            Target::MaxRatio(1.0 / 0.7),
        );
        for (what, bare) in [
            ("  bare pool, 2 threads", m[1]),
            ("  bare resident, 2 threads", m[2]),
            ("  bare PAGEMAP_SCAN, 2 threads", m[3]),
        ] {
            table.time(what, bare, name, best, Target::None);
        }
        landings.sort_by(f64::total_cmp);
        let p50 = landings[landings.len() / 2];
        let p99 = landings[landings.len() * 99 / 100];
        table.time(
            "landing p99 (agent return → report)",
            p99,
            "p50",
            p50,
            Target::MaxNs(10e6),
        );
    }

    /// The same compute loop with epoch interruption (and fuel) on and off.
    fn interruption(&self, table: &mut Table) {
        table.section("spin run (bare), interruption checks on vs off");
        let epoch = Bare::compile(
            Knobs {
                epoch: true,
                fuel: false,
            },
            &self.wasm,
        );
        let fuel = Bare::compile(
            Knobs {
                epoch: false,
                fuel: true,
            },
            &self.wasm,
        );
        let both = Bare::compile(
            Knobs {
                epoch: true,
                fuel: true,
            },
            &self.wasm,
        );
        let _ticker = Ticker::start(vec![epoch.engine.clone(), both.engine.clone()]);
        // About SPIN_RUN with everything off.
        let probe = 2_000_000u64;
        let t = Instant::now();
        self.bare
            .run(info("spin", &format!(r#"{{"iters": {probe}}}"#), &[]));
        let iters = (probe as f64 * SPIN_RUN.as_secs_f64() / t.elapsed().as_secs_f64()) as u64;
        let spin = info("spin", &format!(r#"{{"iters": {iters}}}"#), &[]);
        let mut off = || per_op(|| drop(black_box(self.bare.run(spin.clone()))));
        let mut on = || per_op(|| drop(black_box(epoch.run(spin.clone()))));
        let mut fuel_on = || per_op(|| drop(black_box(fuel.run(spin.clone()))));
        let mut both_on = || per_op(|| drop(black_box(both.run(spin.clone()))));
        let m = interleaved(ROUNDS, &mut [&mut off, &mut on, &mut fuel_on, &mut both_on]);
        table.time(
            &format!("epoch interruption on vs off ({iters} iters)"),
            m[1],
            "off",
            m[0],
            Target::MaxRatio(1.10),
        );
        table.time("  fuel on vs off", m[2], "off", m[0], Target::None);
        table.time(
            "  fuel + epoch (Runway's engine) vs off",
            m[3],
            "off",
            m[0],
            Target::None,
        );
    }

    /// Resident memory of many live instances of the noop agent.
    fn resident(&self, table: &mut Table) {
        table.section(&format!(
            "{LIVE} live bare instances of bench, each in its own Store"
        ));
        let slots = LIVE as u32 + 8;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 4)
            .total_memories(slots)
            .total_tables(slots * 4)
            .max_memory_size(64 << 20);
        // 64 MiB memories with a 64 MiB reservation each, so a thousand
        // slots fit in the address space (the host's 1 GiB / 4 GiB would
        // need 4 TiB).
        let engine = engine(pool, PLAIN, |c| {
            c.memory_reservation(64 << 20);
        });
        let component = Component::new(&engine, &self.wasm).expect("compiles");
        let bare = Bare::new(engine, PLAIN, &component);
        let noop = info("noop", "", &[]);
        bare.run(noop.clone());
        let before = vm_rss_kib();
        let mut live = Vec::with_capacity(LIVE);
        for _ in 0..LIVE {
            let mut store = bare.store(noop.clone());
            let agent = bare.pre.instantiate(&mut store).expect("instantiate");
            live.push((store, agent));
        }
        let instantiated = vm_rss_kib();
        for (store, agent) in &mut live {
            agent
                .call_run(&mut *store)
                .expect("no trap")
                .expect("noop succeeds");
        }
        let called = vm_rss_kib();
        let per = |kib: u64| (kib.saturating_sub(before)) as f64 / LIVE as f64;
        table.row(
            [
                "resident memory per live instance".into(),
                format!("{:.1} KiB", per(instantiated)),
                format!("VmRSS {} MiB before", before / 1024),
                format!(
                    "{} MiB for {LIVE}",
                    instantiated.saturating_sub(before) / 1024
                ),
                "—".into(),
            ],
            None,
        );
        table.row(
            [
                "  after each called run() once".into(),
                format!("{:.1} KiB", per(called)),
                format!("VmRSS {} MiB before", before / 1024),
                format!("{} MiB for {LIVE}", called.saturating_sub(before) / 1024),
                "—".into(),
            ],
            None,
        );
        drop(live);
    }
}

/// This process's resident set, KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}
