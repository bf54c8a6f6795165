//! What a child runway costs: delegation against direct runs, side by side.
//!
//! 1. `children`: a parent (`plugins/bench-parent`, action `fan`) delegates
//!    K children running the `bench` agent's `noop` and joins them all,
//!    against a plan of K direct `noop` runways — both filed with one
//!    controller (as `runway serve` files them) on a host with 2 workers,
//!    data and audit durable on the disk (and the same on tmpfs, so no
//!    `fsync` hides the controller's own cost), in rounds that alternate
//!    which goes first; the median round of each, µs
//!    per child, children per second and their ratio. The parent's own run
//!    is counted in the delegated side's wall time.
//! 2. `first-success`: a parent (action `race`) delegates 8 children of
//!    `bench`'s `spin`, the first sized to about [`WIN`], the other 7 to
//!    about [`LOSE`], and joins them `first-success`. From the trail (record
//!    times, stamped at append): from the winner's SUCCEEDED record to its
//!    parent's JOINED record, and to the last loser's final record
//!    (CANCELLED), over [`RACES`] races, on 2 workers (one loser spinning on
//!    a worker, six waiting for one) with the audit on the disk and on tmpfs
//!    (the winner is reported only once its SUCCEEDED is durable: one
//!    `fsync` of the disk's), and on 9 workers (every loser spinning, on
//!    however many cores there are); target: every loser stopped within one
//!    epoch tick (10 ms).
//!
//! Run with `cargo bench -p runway-tests --bench delegation` (release);
//! `-- children` or `-- first-success` runs that part alone,
//! `-- children=10000` at that one size. `DELEGATION_PROFILE=SECS` loops
//! the delegated side of the first size (tmpfs) for that long, for
//! `perf record -e cpu-clock --call-graph dwarf`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::{Event, Record, State};
use runway_host::controller;
use runway_host::sandbox::hostcalls::RunInfo;
use runway_host::{DispatchOptions, Host, Plan, Plugins, Runtime, bench_support};
use runway_tests::Started;
use runway_tests::timing::{interleaved, load_average};

/// The allocator the `runway` binary runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rounds per comparison; the median round counts.
const ROUNDS: usize = 5;
/// Children per parent in the `children` part (the second is the most one
/// parent may have, and the most runways one plan may file).
const FAN: [usize; 2] = [1_000, 10_000];
/// Children per race.
const RACERS: u32 = 8;
/// Races per configuration of the `first-success` part.
const RACES: usize = 30;
/// About how long the winner of a race spins.
const WIN: Duration = Duration::from_millis(5);
/// About how long a loser would spin if nobody stopped it.
const LOSE: Duration = Duration::from_secs(5);
/// One epoch tick (`runway_host::limits::TICK`): the target of a race.
const TICK: Duration = Duration::from_millis(10);
/// Target of the `children` part.
const CHILDREN_PER_SEC: f64 = 20_000.0;

fn main() {
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let plugins = plugins(&runtime);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let bench = Bench {
        runtime,
        plugins,
        tokio,
    };
    let asked = runway_tests::timing::parts_asked();
    let part = |name: &str| runway_tests::timing::wanted(&asked, name);
    let sizes: Vec<usize> = match asked.iter().find_map(|a| a.strip_prefix("children=")) {
        Some(n) => vec![n.parse().expect("children=K")],
        None => FAN.to_vec(),
    };
    if let Ok(secs) = std::env::var("DELEGATION_PROFILE") {
        bench.profile(sizes[0], secs.parse().expect("DELEGATION_PROFILE=SECS"));
        return;
    }
    let load = load_average();
    let started = Instant::now();
    if part("children") {
        bench.children(&sizes);
    }
    if part("first-success") {
        bench.first_success();
    }
    println!(
        "\n(whole benchmark: {:.1} s; load average {load} before, {} after, {} CPUs)",
        started.elapsed().as_secs_f64(),
        load_average(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
}

/// The `bench` agent and its parent, compiled by `runtime`.
fn plugins(runtime: &Arc<Runtime>) -> Arc<Plugins> {
    let read = |name: &str| {
        let path = runway_tests::bundled_path(name);
        let wasm = std::fs::read(&path).expect("component");
        let grants = std::fs::read_to_string(path.with_extension("toml")).expect("grants");
        (wasm, grants)
    };
    let (bench, bench_grants) = read("bench");
    let (parent, parent_grants) = read("bench-parent");
    let plugins = Plugins::from_bytes(
        runtime,
        [
            ("bench", &bench[..], &bench_grants[..]),
            ("bench-parent", &parent[..], &parent_grants[..]),
        ],
    );
    Arc::new(plugins.expect("bench and bench-parent load"))
}

struct Bench {
    runtime: Arc<Runtime>,
    plugins: Arc<Plugins>,
    tokio: tokio::runtime::Runtime,
}

/// A host with `workers` workers over `root`/data and `root`/audit, and
/// its one controller, serving every plan of the site as `runway serve`
/// does (a second controller on a host would fold the whole trail again
/// at its start, which `run_plan` per round would time too).
struct Site {
    root: tempfile::TempDir,
    host: Arc<Host>,
    controller: Started,
}

impl Bench {
    fn site(&self, root: tempfile::TempDir, workers: usize) -> Site {
        let (data, audit) = (root.path().join("data"), root.path().join("audit"));
        let host = runway_tests::open_host_with(
            &self.runtime,
            &data,
            &audit,
            self.plugins.clone(),
            workers,
        );
        let controller = {
            let _in = self.tokio.enter();
            controller::start(host.clone(), DispatchOptions::default()).expect("controller")
        };
        Site {
            root,
            host,
            controller,
        }
    }

    /// Waits until every runway `site`'s controller knows has ended (a
    /// cancelled loser lands after its parent may have).
    fn settle(&self, site: &Site) {
        let c = &site.controller.0;
        self.tokio.block_on(async {
            let all = c.list().await.expect("list");
            let going: Vec<String> = all
                .into_iter()
                .filter(|r| !r.state.is_final())
                .map(|r| r.id)
                .collect();
            c.wait(going).await.expect("all ended");
        });
    }

    /// Stops `site`'s controller.
    fn close(&self, site: Site) {
        let (c, task) = site.controller;
        c.stop(false);
        let ended = self.tokio.block_on(task).expect("controller task");
        ended.expect("controller ends well");
    }

    /// Parses `text`, files it with `site`'s controller and waits for its
    /// runways to end: its report and wall time, every runway having
    /// succeeded.
    fn fly(&self, site: &Site, text: &str) -> (runway_host::PlanReport, Duration) {
        let plan = Plan::parse(text, &*self.plugins).expect("plan");
        let t = Instant::now();
        let report = self
            .tokio
            .block_on(controller::file_and_wait(
                &site.controller.0,
                runway_tests::filing(plan),
            ))
            .expect("plan ran");
        let wall = t.elapsed();
        if let Some(r) = report.runways.iter().find(|r| r.state != State::Succeeded) {
            panic!("runway {} ended {:?}: {:?}", r.id, r.state, r.reason);
        }
        (report, wall)
    }

    /// Part 1: K delegated children against K direct runs.
    fn children(&self, sizes: &[usize]) {
        println!(
            "-- children: delegate + join all of K no-op children vs K direct no-op runs, 2 workers, one controller"
        );
        println!(
            "   {:<34} {:>12} {:>12} {:>12} {:>12} {:>9}  target",
            "K, data + audit on", "µs/child", "children/s", "direct µs", "direct /s", "ratio",
        );
        let mut verdicts = Vec::new();
        for &k in sizes {
            for (medium, root) in [
                ("disk", tempfile::tempdir().expect("tempdir")),
                ("tmpfs", runway_tests::tmpfs_dir()),
            ] {
                let site = self.site(root, 2);
                let fan = fan_plan(k);
                let direct = direct_plan(k);
                let mut delegated = || self.fly(&site, &fan).1.as_secs_f64();
                let mut plain = || self.fly(&site, &direct).1.as_secs_f64();
                let m = interleaved(ROUNDS, &mut [&mut delegated, &mut plain]);
                let (per, per_direct) = (m[0] / k as f64, m[1] / k as f64);
                let rate = 1.0 / per;
                let pass = rate >= CHILDREN_PER_SEC;
                verdicts.push(pass);
                println!(
                    "   {:<34} {:>12.1} {:>12.0} {:>12.1} {:>12.0} {:>8.2}×  ≥ {CHILDREN_PER_SEC} children/s: {}",
                    format!("{k} children, {medium}"),
                    per * 1e6,
                    rate,
                    per_direct * 1e6,
                    1.0 / per_direct,
                    per / per_direct,
                    if pass { "PASS" } else { "MISS" },
                );
                self.close(site);
            }
        }
        let pass = verdicts.iter().filter(|v| **v).count();
        println!(
            "   targets: {pass} PASS, {} MISS (ratio: delegated µs per child / direct µs per run)",
            verdicts.len() - pass
        );
    }

    /// `DELEGATION_PROFILE`: the delegated side of `k` children on tmpfs,
    /// over and over for `secs` seconds.
    fn profile(&self, k: usize, secs: f64) {
        let site = self.site(runway_tests::tmpfs_dir(), 2);
        let fan = fan_plan(k);
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let (mut n, mut busy) = (0usize, Duration::ZERO);
        while Instant::now() < until {
            busy += self.fly(&site, &fan).1;
            n += 1;
        }
        self.close(site);
        println!(
            "profile: {n} parents of {k} children in {:.2} s: {:.1} µs per child",
            busy.as_secs_f64(),
            busy.as_secs_f64() * 1e6 / (n * k) as f64
        );
    }

    /// Part 2: first-success over [`RACERS`] children, on 2 and 9 workers.
    fn first_success(&self) {
        println!(
            "\n-- first-success: {RACERS} children (1 spins ~{WIN:?}, {} spin ~{LOSE:?}), join first-success, {RACES} races",
            RACERS - 1
        );
        let (win, lose) = self.spin_iters();
        let configs = [
            (2, "disk", tempfile::tempdir().expect("tempdir")),
            (2, "tmpfs", runway_tests::tmpfs_dir()),
            (9, "disk", tempfile::tempdir().expect("tempdir")),
        ];
        for (workers, medium, root) in configs {
            let site = self.site(root, workers);
            let mut text = String::new();
            for r in 0..RACES {
                let _ = write!(
                    text,
                    "[[runway]]\nid = \"race{r}\"\nagent = \"bench-parent\"\naction = \"race\"\n\
                     input = {{ n = {RACERS}, win_iters = {win}, lose_iters = {lose} }}\n"
                );
                if r > 0 {
                    // One race at a time: each its own workers.
                    let _ = writeln!(text, "after = [\"race{}\"]", r - 1);
                }
            }
            let (report, wall) = self.fly(&site, &text);
            self.settle(&site);
            site.host.audit.sync().expect("audit sync");
            let records = runway_audit::read_records(&site.root.path().join("audit"))
                .expect("audit verifies");
            let mut joined = Vec::new();
            let mut stopped = Vec::new();
            let mut waiting = Vec::new();
            for r in 0..RACES {
                let parent = &report.get(&format!("race{r}")).expect("race").id;
                let winner = runway_tests::output(&report, parent);
                let winner = winner.as_str().expect("the winner's id");
                let race = Race::read(&records, parent, winner);
                joined.push(race.joined);
                stopped.push(race.last_loser);
                waiting.push(race.waiting_losers as f64);
            }
            let tick = TICK.as_nanos() as f64;
            println!(
                "   {workers} workers, audit on {medium} ({:.2} s for {RACES} races; losers that never took off: {:.1} per race on average):",
                wall.as_secs_f64(),
                waiting.iter().sum::<f64>() / RACES as f64
            );
            print_spread("winner SUCCEEDED → parent JOINED", &mut joined, tick, false);
            print_spread(
                "winner SUCCEEDED → last loser CANCELLED",
                &mut stopped,
                tick,
                true,
            );
            self.close(site);
        }
    }

    /// `spin` iterations for about [`WIN`] and about [`LOSE`], sized on
    /// the sandbox alone (best of three probes).
    fn spin_iters(&self) -> (u64, u64) {
        let site = self.site(runway_tests::tmpfs_dir(), 1);
        let plugin = self.plugins.get("bench").expect("bench");
        let probe = 2_000_000u64;
        let info = RunInfo {
            runway: "probe-1".into(),
            agent: "bench".into(),
            action: "spin".into(),
            input: format!(r#"{{"iters": {probe}}}"#).into_bytes(),
            attempt: 1,
            locks: Vec::new(),
        };
        let took = (0..3)
            .map(|_| {
                let t = Instant::now();
                bench_support::instantiate_and_call(&site.host, &plugin, info.clone())
                    .expect("no trap")
                    .expect("spin runs");
                t.elapsed()
            })
            .min()
            .expect("three probes");
        self.close(site);
        let per_sec = probe as f64 / took.as_secs_f64();
        (
            (per_sec * WIN.as_secs_f64()) as u64,
            (per_sec * LOSE.as_secs_f64()) as u64,
        )
    }
}

/// One parent delegating `k` no-op children.
fn fan_plan(k: usize) -> String {
    format!(
        "[[runway]]\nid = \"fan\"\nagent = \"bench-parent\"\naction = \"fan\"\ninput = {{ n = {k} }}\n"
    )
}

/// `k` direct no-op runways.
fn direct_plan(k: usize) -> String {
    let mut text = String::new();
    for i in 0..k {
        let _ = write!(
            text,
            "[[runway]]\nid = \"d{i}\"\nagent = \"bench\"\naction = \"noop\"\n"
        );
    }
    text
}

/// One race as the trail tells it (times in ns from the winner's success).
struct Race {
    joined: f64,
    last_loser: f64,
    /// Losers cancelled before they took off.
    waiting_losers: usize,
}

impl Race {
    fn read(records: &[Record], parent: &str, winner: &str) -> Race {
        let children = format!("{parent}.");
        let won = records
            .iter()
            .find(|r| r.entry.runway == winner && matches!(r.entry.event, Event::Succeeded { .. }))
            .expect("the winner's SUCCEEDED record")
            .time_ns;
        let since = |t: u64| t as f64 - won as f64;
        let joined = records
            .iter()
            .find(|r| r.entry.runway == parent && matches!(r.entry.event, Event::Joined { .. }))
            .expect("the parent's JOINED record")
            .time_ns;
        let mut losers: Vec<&str> = records
            .iter()
            .map(|r| r.entry.runway.as_str())
            .filter(|id| id.starts_with(&children) && *id != winner)
            .collect();
        losers.sort_unstable();
        losers.dedup();
        assert_eq!(losers.len(), RACERS as usize - 1, "{parent}: {losers:?}");
        let mut last = 0.0f64;
        let mut waiting = 0;
        for loser in losers {
            let mine = || records.iter().filter(move |r| r.entry.runway == loser);
            let (at, state) = mine()
                .filter_map(|r| match &r.entry.event {
                    Event::Moved { to, .. } if to.is_final() => Some((r.time_ns, *to)),
                    Event::Failed { .. } => Some((r.time_ns, State::Failed)),
                    Event::Succeeded { .. } => Some((r.time_ns, State::Succeeded)),
                    _ => None,
                })
                .next_back()
                .unwrap_or_else(|| panic!("{loser} never ended"));
            assert_eq!(state, State::Cancelled, "{loser} lost the race");
            if !mine().any(|r| matches!(r.entry.event, Event::Started { .. })) {
                waiting += 1;
            }
            last = last.max(since(at));
        }
        Race {
            joined: since(joined),
            last_loser: last,
            waiting_losers: waiting,
        }
    }
}

/// Prints p50, p90 and the largest of `ns` against one tick.
fn print_spread(what: &str, ns: &mut [f64], tick: f64, target: bool) {
    ns.sort_by(f64::total_cmp);
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize];
    let max = ns[ns.len() - 1];
    let verdict = match (target, max <= tick) {
        (false, _) => "info".to_string(),
        (true, true) => "≤ 1 tick: PASS".to_string(),
        (true, false) => format!(
            "≤ 1 tick: MISS ({} of {} races over)",
            ns.iter().filter(|&&n| n > tick).count(),
            ns.len()
        ),
    };
    println!(
        "     {what:<42} p50 {:>8}  p90 {:>8}  max {:>8}  (max / tick {:.2}×)  {verdict}",
        fmt_ns(at(0.5)),
        fmt_ns(at(0.9)),
        fmt_ns(max),
        max / tick,
    );
}

fn fmt_ns(ns: f64) -> String {
    if ns.abs() < 1e3 {
        format!("{ns:.0} ns")
    } else if ns.abs() < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}
