//! How the dispatcher scales: chains of `after` dependencies of no-op runs
//! (the `bench` agent's `noop`), 1,000 and 10,000 long, through `run_plan`
//! with data and audit on tmpfs (`/dev/shm`, so no `fsync` hides the
//! dispatcher's own cost), and a wide plan of independent runways on
//! 2 workers. Near-linear scaling means the time per runway stays flat as
//! the plan grows; the baseline is a 10,000-runway chain taking
//! 25.9 s (the dispatcher looked at every runway on every event).
//!
//! Then the random DAG (plans of up to 10,000, `after` reaching
//! into earlier plans) with mixed shared/exclusive lock sets over 1,000
//! datasets, 10 % with an `after`, 1 % gated on an approval (given as soon
//! as they wait for it), on 64 workers: the controller's busy time and its
//! step (decision) latency p50/p99, from its own [`Stats`], at 1,000,
//! 10,000 and 100,000 runways; the restart of a controller over the trail of 100,000
//! filed runways (recovery + folding it back); and `POST /api/runways` →
//! FILING durable → acknowledged over loopback, on a real disk.
//!
//! The same random DAG with a fifth more runways each after an earlier one,
//! once plainly and once with those runways conditional (`when` true, over
//! that dependency's output) and taking its output into their input
//! (`from`): the ratio of the two (the target: at most 1.2×).
//!
//! Run with `cargo bench -p runway-tests --bench controller` (release);
//! `-- dag` (or `chain`, `restart`, `latency`, `flow`) runs that part
//! alone, `-- dag=100000` the DAG at that one size (to profile it alone),
//! and `-- flow=100000` the flow comparison at that size.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_host::controller::{self, Command, Stats};
use runway_host::roles::{Caller, Role};
use runway_host::{DispatchOptions, Plan, Plugins, Runtime};
use runway_tests::{filing, open_host_with};

/// The allocator the `runway` binary runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let plugins = runway_tests::bench_plugins(&runtime);
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let asked = runway_tests::timing::parts_asked();
    let part = |name: &str| runway_tests::timing::wanted(&asked, name);
    let dag_sizes: Vec<usize> = match asked.iter().find_map(|a| a.strip_prefix("dag=")) {
        Some(n) => vec![n.parse().expect("dag=SIZE")],
        None => vec![1_000, 10_000, 100_000],
    };
    let fly = |text: &str, runways: usize| {
        let parsed = Instant::now();
        let plan = Plan::parse(text, &*plugins).expect("plan");
        let parse = parsed.elapsed();
        let root = runway_tests::tmpfs_dir();
        let (data, audit) = (root.path().join("data"), root.path().join("audit"));
        let host = open_host_with(&runtime, &data, &audit, plugins.clone(), 2);
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
    if part("chain") {
        chains(&fly);
    }
    if part("dag") {
        println!(
            "\nrandom DAG (1,000 datasets, 10 % after, 1 % approval-gated), 64 workers, tmpfs"
        );
        random_dag(&runtime, &plugins, &tokio, &dag_sizes);
    }
    if part("flow") {
        let n = match asked.iter().find_map(|a| a.strip_prefix("flow=")) {
            Some(n) => n.parse().expect("flow=SIZE"),
            None => 10_000,
        };
        flow(&runtime, &plugins, &tokio, n);
    }
    if part("restart") {
        restart(&runtime, &plugins, &tokio);
    }
    if part("latency") {
        file_latency(&runtime, &plugins, &tokio);
    }
}

/// Chains of 1,000 and 10,000, and 10,000 independent runways.
fn chains(fly: &dyn Fn(&str, usize) -> (Duration, Duration, f64)) {
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

fn open(runtime: &Arc<Runtime>, plugins: &Arc<Plugins>, root: &Path) -> Arc<runway_host::Host> {
    open_host_with(
        runtime,
        &root.join("data"),
        &root.join("audit"),
        plugins.clone(),
        64,
    )
}

/// The random DAG at each of `sizes`: the controller's busy time and step latency.
fn random_dag(
    runtime: &Arc<Runtime>,
    plugins: &Arc<Plugins>,
    tokio: &tokio::runtime::Runtime,
    sizes: &[usize],
) {
    let mut per_dag = Vec::new();
    for &n in sizes {
        let (wall, stats) = fly_dag(runtime, plugins, tokio, &dag(n, 0.01, 0.0, false));
        per_dag.push(wall.as_secs_f64() / n as f64);
        report_dag(n, wall, &stats);
    }
    if let [one, ten, hundred] = per_dag[..] {
        println!(
            "  wall time per runway, 10,000 vs 1,000: {:.2}x; 100,000 vs 1,000: {:.2}x (1.0 = linear)",
            ten / one,
            hundred / one
        );
    }
}

/// Files `plans` on a fresh host's controller (approving the gated
/// runways as they are filed) and waits until all have succeeded: the
/// wall time and the controller's step figures.
fn fly_dag(
    runtime: &Arc<Runtime>,
    plugins: &Arc<Plugins>,
    tokio: &tokio::runtime::Runtime,
    plans: &[(String, Vec<String>)],
) -> (Duration, Stats) {
    let root = runway_tests::tmpfs_dir();
    let host = open(runtime, plugins, root.path());
    let t = Instant::now();
    let stats = tokio.block_on(async {
        let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
        let mut ids = Vec::new();
        for (text, gated) in plans {
            let plan = Plan::parse(text, &**plugins).expect("plan");
            let filed = c.file(filing(plan)).await.expect("filed");
            ids.extend(filed.into_iter().map(|f| f.id));
            for runway in gated {
                let approve = Command::Approve {
                    runway: runway.clone(),
                    by: Caller::new("bench", [Role::Admin]),
                    note: String::new(),
                };
                c.send(approve).await.expect("approved");
            }
        }
        let ended = c.wait(ids).await.expect("all landed");
        assert!(
            ended
                .iter()
                .all(|r| r.state == runway_host::State::Succeeded)
        );
        let stats = c.stats().await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        stats
    });
    (t.elapsed(), stats)
}

/// The random DAG of `n` with a fifth more runways after an earlier one,
/// plain and with those conditional (`when` over that one's output) and
/// taking its output (`from`), twice each, interleaved: the best of each
/// and their ratio.
fn flow(runtime: &Arc<Runtime>, plugins: &Arc<Plugins>, tokio: &tokio::runtime::Runtime, n: usize) {
    println!(
        "
random DAG of {n} + 20 % runways after an earlier one: plain vs conditional (`when`) and taking its output (`from`), 64 workers, tmpfs"
    );
    let plain = dag(n, 0.01, 0.2, false);
    let flowing = dag(n, 0.01, 0.2, true);
    let mut best = [(Duration::MAX, Duration::MAX); 2];
    for round in 0..4 {
        let which = round % 2;
        let plans = if which == 0 { &plain } else { &flowing };
        let (wall, stats) = fly_dag(runtime, plugins, tokio, plans);
        let b = &mut best[which];
        *b = (b.0.min(wall), b.1.min(stats.sum));
        let name = if which == 0 { "plain  " } else { "flowing" };
        print!("  {name}");
        report_dag(n, wall, &stats);
    }
    let [(plain_wall, plain_busy), (flow_wall, flow_busy)] = best;
    println!(
        "  conditions + data passing vs plain (best of 2 each): wall {:.2}x, controller busy {:.2}x (target <= 1.2x)",
        flow_wall.as_secs_f64() / plain_wall.as_secs_f64(),
        flow_busy.as_secs_f64() / plain_busy.as_secs_f64()
    );
}

/// Restart over a trail of 100,000 filed runways, all still waiting
/// (gated on an approval): recovery, then folding the trail back.
fn restart(runtime: &Arc<Runtime>, plugins: &Arc<Plugins>, tokio: &tokio::runtime::Runtime) {
    let open = |root: &Path| open(runtime, plugins, root);
    let n = 100_000;
    let root = runway_tests::tmpfs_dir();
    let host = open(root.path());
    let filed_in = Instant::now();
    tokio.block_on(async {
        let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
        for (text, _) in dag(n, 1.0, 0.0, false) {
            let plan = Plan::parse(&text, &**plugins).expect("plan");
            c.file(filing(plan)).await.expect("filed");
        }
        c.stop(false);
        task.await.unwrap().unwrap();
    });
    let filed_in = filed_in.elapsed();
    let records = host.audit.stats().appended;
    drop(host);
    let t = Instant::now();
    let host = open(root.path());
    let restored = tokio.block_on(async {
        let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
        let waiting = c.list().await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        waiting
            .iter()
            .filter(|r| r.state == runway_host::State::WaitingApproval)
            .count()
    });
    let restart = t.elapsed();
    assert_eq!(restored, n);
    println!(
        "  {n} runways filed (and waiting for approval) in {:.2} s; restart over their trail ({records} records): {:.2} s (target <= 2 s)",
        filed_in.as_secs_f64(),
        restart.as_secs_f64()
    );
}

/// `n` runways as plans of 10,000: each plan's text and its gated ids (a
/// share `gated` of all; 10 % of the rest have an `after`, and a share
/// `extra` more, each with a condition over that dependency's output and
/// taking it into its input when `flow`).
fn dag(n: usize, gated_share: f64, extra: f64, flow: bool) -> Vec<(String, Vec<String>)> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut plans = Vec::new();
    for start in (0..n).step_by(10_000) {
        let mut text = String::new();
        let mut gated = Vec::new();
        for i in start..(start + 10_000).min(n) {
            let _ = write!(
                text,
                "[[runway]]\nid = \"r{i}\"\nagent = \"bench\"\naction = \"noop\"\ndatasets = {{ "
            );
            let locks = 1 + rng.usize(..3);
            let mut seen = Vec::new();
            for l in 0..locks {
                let d = rng.usize(..1_000);
                if seen.contains(&d) {
                    continue;
                }
                seen.push(d);
                let mode = if rng.f64() < 0.3 {
                    "exclusive"
                } else {
                    "shared"
                };
                let comma = if l == 0 { "" } else { ", " };
                let _ = write!(text, "{comma}bench_{d} = \"{mode}\"");
            }
            text.push_str(" }\n");
            let roll = rng.f64();
            if roll < gated_share {
                text.push_str("approval = { required = true }\n");
                gated.push(format!("r{i}"));
            } else if roll < gated_share + 0.10 && i > 0 {
                let _ = writeln!(text, "after = [\"r{}\"]", rng.usize(..i));
            } else if roll < gated_share + 0.10 + extra && i > 0 {
                let k = rng.usize(..i);
                let _ = writeln!(text, "after = [\"r{k}\"]");
                if flow {
                    let _ = writeln!(
                        text,
                        "when = \"outputs.r{k} == 0\"\ninput = {{ n = {{ from = \"r{k}\" }} }}"
                    );
                }
            }
        }
        plans.push((text, gated));
    }
    plans
}

fn report_dag(n: usize, wall: std::time::Duration, stats: &Stats) {
    println!(
        "  {n:>7} runways: {:.2} s wall; controller busy {:.3} s in {} steps \
         ({:.1} µs per runway; target <= 1 s for 100,000); step latency p50 {:?}, p99 {:?} (target p99 <= 50 µs)",
        wall.as_secs_f64(),
        stats.sum.as_secs_f64(),
        stats.count,
        stats.sum.as_secs_f64() * 1e6 / n as f64,
        stats.quantile(0.5),
        stats.quantile(0.99),
    );
}

/// `POST /api/runways` of one manifest → acknowledged (FILING durable), over
/// loopback, on a real disk: p50 / p99 of 300 filings one after another.
fn file_latency(runtime: &Arc<Runtime>, plugins: &Arc<Plugins>, tokio: &tokio::runtime::Runtime) {
    let root = tempfile::tempdir().expect("tempdir on disk");
    let (data, audit) = (root.path().join("data"), root.path().join("audit"));
    let host = open_host_with(runtime, &data, &audit, plugins.clone(), 2);
    let token = "b".repeat(64);
    let (c, task) = {
        let _in = tokio.enter();
        controller::start(host.clone(), DispatchOptions::default()).unwrap()
    };
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/api/runways", listener.local_addr().unwrap());
    let access =
        runway_host::api::Access::new(&token, root.path().join("tokens.toml"), Default::default())
            .unwrap();
    let api = runway_host::api::Api::new(host.clone(), c.clone(), access, 1 << 20);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio.spawn(runway_host::api::serve(listener, api, None, async {
        let _ = stopped.await;
    }));
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let mut took = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let answer = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .send("agent = \"bench\"\naction = \"noop\"\n")
            .expect("filed");
        assert_eq!(answer.status().as_u16(), 201);
        took.push(t.elapsed());
    }
    took.sort();
    println!(
        "\nfile -> FILING durable -> acknowledged, loopback HTTP, real disk: p50 {:.2} ms, p99 {:.2} ms",
        took[took.len() / 2].as_secs_f64() * 1e3,
        took[took.len() * 99 / 100].as_secs_f64() * 1e3
    );
    let _ = stop.send(());
    c.stop(false);
    tokio.block_on(async {
        let _ = server.await;
        task.await.unwrap().unwrap();
    });
}
