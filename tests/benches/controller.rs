//! How the dispatcher scales: chains of `after` dependencies of no-op runs
//! (the `bench` agent's `noop`), 1,000 and 10,000 long, through `run_plan`
//! with data and audit on tmpfs (`/dev/shm`, so no `fsync` hides the
//! dispatcher's own cost), and a wide plan of independent runways on
//! 2 workers. Near-linear scaling means the time per runway stays flat as
//! the plan grows; the baseline is a 10,000-runway chain taking
//! 25.9 s (the dispatcher looked at every runway on every event).
//!
//! Run with `cargo bench -p runway-tests --bench controller` (release).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use runway_audit::{AuditLog, AuditOptions};
use runway_host::{DatasetStore, DispatchOptions, Host, Plan, Plugins, Runtime, bundled};

fn main() {
    let (_, path) = bundled::PLUGIN_PATHS
        .iter()
        .find(|(name, _)| *name == "bench")
        .expect("plugins/bench is built");
    let wasm = std::fs::read(path).expect("bench.wasm");
    let grants = std::fs::read_to_string(Path::new(path).with_extension("toml")).expect("grants");
    let runtime = Runtime::new().expect("runtime");
    let plugins = Arc::new(
        Plugins::from_bytes(&runtime, [("bench", &wasm[..], &grants[..])]).expect("bench loads"),
    );
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let fly = |text: &str, runways: usize| {
        let parsed = Instant::now();
        let plan = Plan::parse(text, &*plugins).expect("plan");
        let parse = parsed.elapsed();
        let root = match Path::new("/dev/shm").is_dir() {
            true => tempfile::tempdir_in("/dev/shm").expect("tmpfs dir"),
            false => tempfile::tempdir().expect("tempdir"),
        };
        let store = DatasetStore::open(&root.path().join("data")).expect("store");
        let audit =
            AuditLog::open(&root.path().join("audit"), AuditOptions::new("bench")).expect("audit");
        let host = Arc::new(
            Host::new(&runtime, plugins.clone(), Arc::new(store), audit, 2).expect("landing stage"),
        );
        let t = Instant::now();
        let report = tokio
            .block_on(runway_host::run_plan(
                host,
                plan,
                DispatchOptions::default(),
            ))
            .expect("plan ran");
        let wall = t.elapsed();
        assert_eq!(report.failed(), 0);
        let per = wall.as_secs_f64() * 1e6 / runways as f64;
        (parse, wall, per)
    };
    println!("dispatcher scaling, no-op runs, data + audit on tmpfs");
    let mut per_chain = Vec::new();
    for n in [1_000, 10_000] {
        let mut text = String::new();
        for i in 0..n {
            let _ = write!(
                text,
                "[[runway]]\nid = \"r{i}\"\nagent = \"bench\"\naction = \"noop\"\n"
            );
            if i > 0 {
                let _ = writeln!(text, "after = [\"r{}\"]", i - 1);
            }
        }
        let (parse, wall, per) = fly(&text, n);
        println!(
            "  chain of {n:>6}: {:>7.3} s ({per:.1} µs per runway; plan parsed in {:.3} s)",
            wall.as_secs_f64(),
            parse.as_secs_f64()
        );
        per_chain.push(per);
    }
    println!(
        "  per-runway time, 10,000 vs 1,000: {:.2}x (1.0 = linear; the issue's baseline chain of 10,000: 25.9 s)",
        per_chain[1] / per_chain[0]
    );
    let n = 10_000;
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            "[[runway]]\nid = \"w{i}\"\nagent = \"bench\"\naction = \"noop\"\n"
        );
    }
    let (_, wall, per) = fly(&text, n);
    println!(
        "  {n} independent runways on 2 workers: {:.3} s ({per:.1} µs per runway)",
        wall.as_secs_f64()
    );
}
