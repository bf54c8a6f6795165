//! A restart over a long trail: how long a host takes from `open` to a
//! controller that has every runway back, over a trail of at least
//! 1,000,000 records (no-op runs of the `bench` agent, each with a
//! dataset lock, data and a signed audit trail on tmpfs so no `fsync`
//! hides the reading).
//!
//! Twice, in one process: with the trail read whole (no journal snapshot:
//! the baseline), and from the snapshot that start left behind plus a
//! short tail of runs made after it (the target: ≤ 1 s). The tail's
//! length is printed with the figure.
//!
//! Run with `cargo bench -p runway-tests --bench restart` (release).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::{AuditOptions, PrivateKey};
use runway_host::controller::{self, HostSetup};
use runway_host::{DispatchOptions, Host, Plan, Runtime};

/// Records the trail is grown to before the restarts.
const TRAIL: u64 = 1_000_000;
/// Runways per plan.
const PLAN: usize = 10_000;
/// Runways run after the snapshot: the tail.
const TAIL_RUNWAYS: usize = 100;

/// The allocator the `runway` binary runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let plugins = runway_tests::bench_plugins(&runtime);
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let root = runway_tests::tmpfs_dir();
    // Signed, as `runway serve` and `runway run` keep it (an unsigned log
    // is always read whole at open).
    let key = PrivateKey::generate("runway-bench").expect("a key");
    let open = || {
        let (data, audit) = (root.path().join("data"), root.path().join("audit"));
        let setup = HostSetup {
            audit_options: AuditOptions::new("runway-bench").signed_by(key.clone()),
            ..runway_tests::setup(&runtime, &data, &audit, plugins.clone(), 2)
        };
        controller::open(setup).expect("the host comes up")
    };
    let run = |host: &Arc<Host>, first: usize, n: usize| {
        let mut text = String::new();
        for i in first..first + n {
            let _ = write!(
                text,
                "[[runway]]\nid = \"r{i}\"\nagent = \"bench\"\naction = \"noop\"\n\
                 datasets = {{ bench_{} = \"shared\" }}\n",
                i % 1_000
            );
        }
        let plan = Plan::parse(&text, &*plugins).expect("plan");
        let report = tokio
            .block_on(runway_host::run_plan(
                host.clone(),
                plan,
                DispatchOptions::default(),
            ))
            .expect("plan ran");
        assert_eq!(report.failed(), 0);
    };
    // Restarts: the time until a controller has every runway back and
    // answers; then counts them (not timed: listing 100,000 runways is a
    // query, not the restart).
    let restart = || {
        let t = Instant::now();
        let opened = open();
        let host = opened.host;
        tokio.block_on(async {
            let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
            c.stats().await.unwrap();
            let ready = t.elapsed();
            let all = c.list().await.unwrap().len();
            c.stop(false);
            task.await.unwrap().unwrap();
            (ready, host.clone(), all, opened.tail)
        })
    };

    println!("restart over a long trail, no-op runs with a shared lock each, tmpfs");
    let host = open().host;
    let grown = Instant::now();
    let mut runways = 0;
    while host.audit.stats().appended < TRAIL {
        run(&host, runways, PLAN);
        runways += PLAN;
    }
    host.audit.sync().expect("sync");
    let records = host.audit.stats().appended;
    println!(
        "  {runways} runways run, {records} records, in {:.1} s",
        grown.elapsed().as_secs_f64()
    );
    drop(host);

    // The trail read whole; this start leaves a snapshot behind (written
    // on its own thread, done when the host goes).
    let (whole, host, restored, read) = restart();
    assert_eq!(restored, runways);
    assert_eq!(read, records, "no snapshot yet: the whole trail");
    run(&host, runways, TAIL_RUNWAYS);
    runways += TAIL_RUNWAYS;
    host.audit.sync().expect("sync");
    drop(host);

    let (snapshot, host, restored, tail) = restart();
    assert_eq!(restored, runways);
    drop(host);
    let trail = runway_audit::read_records(&root.path().join("audit"))
        .expect("trail")
        .len();
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "  restart, trail read whole ({records} records): {:.2} s",
        secs(whole)
    );
    println!(
        "  restart from the snapshot ({trail} records, a tail of {tail} records: {TAIL_RUNWAYS} \
         runs after it): {:.2} s (target <= 1 s); {:.2}x the whole read",
        secs(snapshot),
        secs(snapshot) / secs(whole)
    );
}
