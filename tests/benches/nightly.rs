//! The nightly plan through Runway against the same three components on
//! bare wasmtime, side by side in one process.
//!
//! Runway's side is what an operator gets: `run_plan` of the embedded
//! nightly plan (40,000 applications: import, compliance, awards) over a
//! fresh SQLite data root and a durable audit trail, then the same plan run
//! again over the existing dataset. The bare side instantiates the same
//! compiled components from an `InstancePre` in an engine with the host's
//! pool, and answers their host calls from an in-memory `BTreeMap` (reads,
//! writes, deletes and listings with the same semantics, applied at once:
//! no staging, no locks, no audit, nothing durable). Rounds alternate which
//! side goes first; the median round counts.
//!
//! With `-- --database`, Runway's side also runs on PostgreSQL (a server
//! the bench starts, `fsync` on like SQLite's `synchronous = FULL`, on a
//! Unix socket on this machine; a fresh database per round) and the
//! PostgreSQL run is printed as a ratio of the SQLite one.
//!
//! Run with `cargo bench -p runway-tests --bench nightly` (release).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_host::sandbox::hostcalls::runway::agent::{context, datasets, log, types};
use runway_host::sandbox::hostcalls::{AgentPre, GuestError, HeldLock, RunInfo, WitLockMode};
use runway_host::store::StoreConfig;
use runway_host::{DispatchOptions, Plan, Plugins, Runtime, bundled};
use runway_tests::postgres::Server;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const ROUNDS: usize = 3;
const DATASET: &str = "fafsa_2024_03_16";

/// The allocator the `runway` binary runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let plugins =
        Plugins::from_bytes(&runtime, bundled::EMBEDDED_PLUGINS.iter().copied()).expect("plugins");
    let plugins = Arc::new(plugins);
    let bare = Bare::new(&plan_steps());
    let postgres = std::env::args()
        .any(|a| a == "--database")
        .then(|| Server::start(true));
    let (mut first, mut again, mut base) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pg_first, mut pg_again) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut runway = || {
            let (a, b) = runway_twice(&runtime, &plugins, &StoreConfig::Embedded);
            first.push(a);
            again.push(b);
        };
        if round % 2 == 0 {
            runway();
            base.push(bare.run());
        } else {
            base.push(bare.run());
            runway();
        }
        if let Some(server) = &postgres {
            let db = server.database();
            let config = db.config();
            let (a, b) = runway_twice(&runtime, &plugins, &config);
            pg_first.push(a);
            pg_again.push(b);
        }
    }
    let (first, again, base) = (median(first), median(again), median(base));
    let ratio = |d: Duration| d.as_secs_f64() / base.as_secs_f64();
    println!("nightly plan, 40,000 applications, median of {ROUNDS} rounds");
    println!(
        "  bare wasmtime, in-memory map, no audit : {:>8.3} s",
        base.as_secs_f64()
    );
    println!(
        "  Runway, fresh data root               : {:>8.3} s  {:.2}x bare (target <= 2.0x)",
        first.as_secs_f64(),
        ratio(first)
    );
    println!(
        "  Runway, again over the existing data  : {:>8.3} s  {:.2}x the first run (target <= 1.1x)",
        again.as_secs_f64(),
        again.as_secs_f64() / first.as_secs_f64()
    );
    if postgres.is_some() {
        let (pg_first, pg_again) = (median(pg_first), median(pg_again));
        println!(
            "  Runway on PostgreSQL, fresh database  : {:>8.3} s  {:.2}x SQLite's first run (target <= 2.0x)",
            pg_first.as_secs_f64(),
            pg_first.as_secs_f64() / first.as_secs_f64()
        );
        println!(
            "  Runway on PostgreSQL, again           : {:>8.3} s  {:.2}x SQLite's second run (target <= 2.0x)",
            pg_again.as_secs_f64(),
            pg_again.as_secs_f64() / again.as_secs_f64()
        );
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The nightly plan through Runway twice over one fresh data root, its
/// datasets in `store`.
fn runway_twice(
    runtime: &Arc<Runtime>,
    plugins: &Arc<Plugins>,
    store: &StoreConfig,
) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, audit) = (dir.path().join("data"), dir.path().join("audit"));
    let setup = || runway_tests::setup(runtime, &data, &audit, plugins.clone(), 2);
    let host = runway_tests::open_when_free_on(setup, store).host;
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let once = || {
        let plan = Plan::parse(bundled::NIGHTLY_PLAN, &**plugins).expect("nightly plan");
        let started = Instant::now();
        let report = tokio
            .block_on(runway_host::run_plan(
                host.clone(),
                plan,
                DispatchOptions::default(),
            ))
            .expect("plan flies");
        assert_eq!(report.failed(), 0, "{report:?}");
        started.elapsed()
    };
    (once(), once())
}

/// (agent, action, input JSON) of each nightly step, in order.
fn plan_steps() -> Vec<(String, String, Vec<u8>)> {
    let plan = toml::from_str::<toml::Value>(bundled::NIGHTLY_PLAN).expect("plan TOML");
    plan["runway"]
        .as_array()
        .expect("runways")
        .iter()
        .map(|r| {
            let input = r
                .get("input")
                .map_or_else(Vec::new, |v| serde_json::to_vec(v).expect("input as JSON"));
            (
                r["agent"].as_str().expect("agent").to_string(),
                r["action"].as_str().unwrap_or("run").to_string(),
                input,
            )
        })
        .collect()
}

/// The three components on a bare engine, their datasets in a map.
struct Bare {
    engine: Engine,
    steps: Vec<(AgentPre<MapState>, RunInfo)>,
}

impl Bare {
    fn new(steps: &[(String, String, Vec<u8>)]) -> Bare {
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            runway_host::sandbox::pool_config(),
        ));
        let engine = Engine::new(&config).expect("bare engine");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi links");
        runway_host::sandbox::hostcalls::Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .expect("runway:agent links");
        let steps = steps
            .iter()
            .map(|(agent, action, input)| {
                let (_, bytes, _) = bundled::EMBEDDED_PLUGINS
                    .iter()
                    .find(|(n, _, _)| n == agent)
                    .expect("embedded agent");
                let component = Component::new(&engine, bytes).expect("compiles");
                let pre = AgentPre::new(linker.instantiate_pre(&component).expect("links"))
                    .expect("agent exports");
                let info = RunInfo {
                    runway: agent.clone(),
                    agent: agent.clone(),
                    action: action.clone(),
                    input: input.clone(),
                    attempt: 1,
                    locks: vec![HeldLock {
                        dataset: DATASET.into(),
                        mode: WitLockMode::Exclusive,
                        token: 1,
                    }],
                };
                (pre, info)
            })
            .collect();
        Bare { engine, steps }
    }

    fn run(&self) -> Duration {
        let started = Instant::now();
        let mut data = BTreeMap::new();
        for (pre, info) in &self.steps {
            let state = MapState {
                info: info.clone(),
                data: std::mem::take(&mut data),
                wasi: None,
                table: ResourceTable::new(),
            };
            let mut store = Store::new(&self.engine, state);
            let agent = pre.instantiate(&mut store).expect("instantiates");
            agent
                .call_run(&mut store)
                .expect("no trap")
                .expect("step succeeds");
            data = store.into_data().data;
        }
        started.elapsed()
    }
}

/// A bare run's state: its info and the datasets, keyed (dataset, key).
struct MapState {
    info: RunInfo,
    data: BTreeMap<(String, String), Vec<u8>>,
    wasi: Option<WasiCtx>,
    table: ResourceTable,
}

impl WasiView for MapState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

impl types::Host for MapState {}

impl context::Host for MapState {
    fn info(&mut self) -> wasmtime::Result<RunInfo> {
        Ok(self.info.clone())
    }
}

runway_tests::deny_orchestration!(MapState);

impl log::Host for MapState {
    fn log(&mut self, _: log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl datasets::Host for MapState {
    fn read(&mut self, d: String, k: String) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
        Ok(self
            .data
            .get(&(d, k))
            .cloned()
            .ok_or_else(|| GuestError::NotFound(String::new())))
    }
    fn write(
        &mut self,
        d: String,
        k: String,
        v: Vec<u8>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.data.insert((d, k), v);
        Ok(Ok(()))
    }
    fn delete(&mut self, d: String, k: String) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(self
            .data
            .remove(&(d, k))
            .map(drop)
            .ok_or_else(|| GuestError::NotFound(String::new())))
    }
    fn list(
        &mut self,
        d: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<types::Page, GuestError>> {
        let limit = limit.clamp(1, 1000) as usize;
        let from = match &cursor {
            Some(c) if c.as_str() >= prefix.as_str() => Bound::Excluded((d.clone(), c.clone())),
            _ => Bound::Included((d.clone(), prefix.clone())),
        };
        let mut keys: Vec<String> = self
            .data
            .range((from, Bound::Unbounded))
            .take_while(|((ds, k), _)| *ds == d && k.starts_with(&prefix))
            .take(limit + 1)
            .map(|((_, k), _)| k.clone())
            .collect();
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next_cursor = if more { keys.last().cloned() } else { None };
        Ok(Ok(types::Page { keys, next_cursor }))
    }
    fn count(&mut self, d: String, prefix: String) -> wasmtime::Result<Result<u64, GuestError>> {
        let from = Bound::Included((d.clone(), prefix.clone()));
        let n = self
            .data
            .range((from, Bound::Unbounded))
            .take_while(|((ds, k), _)| *ds == d && k.starts_with(&prefix))
            .count();
        Ok(Ok(n as u64))
    }
}
