//! How triggers scale: 10,000 of them on one host, data and audit on
//! tmpfs, the `bench` agent's `noop` as every fired runway.
//!
//! - **schedules**: 10,000 schedules (`* * * * *`, UTC) on the test clock;
//!   the clock moved one minute fires all of them in one controller step.
//!   Timed from the move until every fired runway has ended, against the
//!   same 10,000 runways filed as one plan (the baseline, same process).
//! - **commits**: 10,000 commit triggers, each on one dataset; 2,000
//!   writers each commit to one of them and fire it. Timed from filing the
//!   writers until every runway (the fired ones too) has ended, against
//!   the writers alone with no trigger standing.
//!
//! Each prints firings/s and the ratio to its baseline, and the
//! controller's step (decision) latency p50/p99 from its own `Stats`.
//! Run with `cargo bench -p runway-tests --bench triggers` (release);
//! `-- schedules` or `-- commits` runs that part alone.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use runway_host::controller::{self, Controller, ManualClock, Stats};
use runway_host::{DispatchOptions, Plan, Plugins, Runtime};
use runway_tests::{filing, open_host_with};

/// The allocator the `runway` binary runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRIGGERS: usize = 10_000;
const WRITERS: usize = 2_000;

fn main() {
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let plugins = runway_tests::bench_plugins(&runtime);
    let asked = runway_tests::timing::parts_asked();
    let part = |name: &str| runway_tests::timing::wanted(&asked, name);
    let bench = Bench { runtime, plugins };
    println!("load average: {}", runway_tests::timing::load_average());
    if part("schedules") {
        bench.schedules();
    }
    if part("commits") {
        bench.commits();
    }
}

struct Bench {
    runtime: Arc<Runtime>,
    plugins: Arc<Plugins>,
}

/// A controller on a fresh host on tmpfs, on the test clock.
struct Up {
    _root: tempfile::TempDir,
    tokio: tokio::runtime::Runtime,
    clock: Arc<ManualClock>,
    controller: Controller,
    task: tokio::task::JoinHandle<Result<(), controller::DispatchError>>,
}

impl Bench {
    fn up(&self) -> Up {
        let root = runway_tests::tmpfs_dir();
        let (data, audit) = (root.path().join("data"), root.path().join("audit"));
        let host = open_host_with(&self.runtime, &data, &audit, self.plugins.clone(), 2);
        let tokio = tokio::runtime::Runtime::new().expect("tokio");
        let clock = Arc::new(ManualClock::new("2026-12-07T00:00:30Z".parse().unwrap()));
        let opts = DispatchOptions {
            clock: clock.clone(),
            ..DispatchOptions::default()
        };
        let (controller, task) = {
            let _in = tokio.enter();
            controller::start(host, opts).expect("controller")
        };
        Up {
            _root: root,
            tokio,
            clock,
            controller,
            task,
        }
    }

    fn file(&self, up: &Up, text: &str) {
        let plan = Plan::parse(text, &*self.plugins).expect("plan");
        up.tokio
            .block_on(up.controller.file(filing(plan)))
            .expect("filed");
    }

    /// Waits until every runway has ended; gives how many there are.
    fn drain(&self, up: &Up, at_least: usize) -> usize {
        up.tokio.block_on(async {
            loop {
                let all = up.controller.list().await.unwrap();
                if all.len() >= at_least {
                    let ids = all.into_iter().map(|r| r.id).collect::<Vec<_>>();
                    let n = ids.len();
                    up.controller.wait(ids).await.unwrap();
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    }

    fn down(&self, up: Up) -> Stats {
        let stats = up.tokio.block_on(up.controller.stats()).unwrap();
        up.controller.stop(false);
        up.tokio.block_on(up.task).unwrap().unwrap();
        stats
    }

    fn schedules(&self) {
        let mut triggers = String::new();
        let mut runways = String::new();
        for i in 0..TRIGGERS {
            let _ = write!(
                triggers,
                "[[trigger]]\nid = \"s{i}\"\non = {{ schedule = \"* * * * *\", zone = \"UTC\" }}\n\
                 [[trigger.runway]]\nid = \"tick\"\nagent = \"bench\"\naction = \"noop\"\n"
            );
            let _ = writeln!(
                runways,
                "[[runway]]\nid = \"r{i}\"\nagent = \"bench\"\naction = \"noop\""
            );
        }
        // Baseline: the same runways filed as one plan.
        let up = self.up();
        let t = Instant::now();
        self.file(&up, &runways);
        self.drain(&up, TRIGGERS);
        let filed = t.elapsed();
        self.down(up);
        // The schedules, all due at the same minute.
        let up = self.up();
        self.file(&up, &triggers);
        let t = Instant::now();
        up.clock.advance(SignedDuration::from_secs(30));
        let n = self.drain(&up, TRIGGERS);
        let fired = t.elapsed();
        let stats = self.down(up);
        assert_eq!(n, TRIGGERS);
        report("schedules", TRIGGERS, fired, filed, &stats);
    }

    fn commits(&self) {
        let mut triggers = String::new();
        for i in 0..TRIGGERS {
            let _ = write!(
                triggers,
                "[[trigger]]\nid = \"c{i}\"\non = {{ commit = \"bench_c{i}\" }}\n\
                 [[trigger.runway]]\nid = \"check\"\nagent = \"bench\"\naction = \"noop\"\n"
            );
        }
        let mut writers = String::new();
        for i in 0..WRITERS {
            let _ = writeln!(
                writers,
                "[[runway]]\nid = \"w{i}\"\nagent = \"bench\"\naction = \"write\"\n\
                 datasets = {{ bench_c{} = \"exclusive\" }}\ninput = {{ n = 1, bytes = 16 }}",
                i * (TRIGGERS / WRITERS)
            );
        }
        // Baseline: the writers alone, no trigger standing.
        let up = self.up();
        let t = Instant::now();
        self.file(&up, &writers);
        self.drain(&up, WRITERS);
        let alone = t.elapsed();
        self.down(up);
        let up = self.up();
        self.file(&up, &triggers);
        let t = Instant::now();
        self.file(&up, &writers);
        let n = self.drain(&up, 2 * WRITERS);
        let fired = t.elapsed();
        let stats = self.down(up);
        assert_eq!(n, 2 * WRITERS, "one firing per commit");
        report("commits", WRITERS, fired, alone, &stats);
    }
}

fn report(what: &str, firings: usize, took: Duration, baseline: Duration, stats: &Stats) {
    let per_sec = firings as f64 / took.as_secs_f64();
    println!(
        "{what}: {firings} firings of {TRIGGERS} triggers in {:.2} s = {per_sec:.0} firings/s \
         (runways filed and run included); baseline {:.2} s, ratio {:.2}x; \
         decision latency p50 {:?} p99 {:?} over {} steps",
        took.as_secs_f64(),
        baseline.as_secs_f64(),
        took.as_secs_f64() / baseline.as_secs_f64(),
        stats.quantile(0.5),
        stats.quantile(0.99),
        stats.count
    );
}
