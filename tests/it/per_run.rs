//! Limits that hold per run, not per piece: memory summed over every memory
//! of every instance, pool slots shared so no run starves a neighbour, the
//! window holding while the guest sleeps in WASI, staging counted in keys,
//! guest text capped where it is kept, a full data disk, the plugin digest a
//! run's records carry, and compile bombs.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::{Entry, Event, Record};
use runway_host::State;
use runway_host::limits::MAX_LIVE_RUNS;
use runway_host::limits::{MAX_MEMORIES_PER_RUN, MAX_REASON, MAX_STAGED_KEYS};
use runway_host::{DispatchOptions, Grants, PlanReport, Plugins, Runtime};
use runway_tests::{
    Fixture, Tmpfs, bundled_path, bundled_plugins, components, drop_plugin, eventually, plugins,
};

fn grants(limits: &str) -> Grants {
    let text = format!("[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\n{limits}\n");
    Grants::parse(&text, "test grants").expect("test grants")
}

fn reason(report: &PlanReport, id: &str) -> String {
    let r = report.get(id).unwrap_or_else(|| panic!("no {id}"));
    match (r.state, &r.reason) {
        (State::Succeeded, _) | (_, None) => panic!("{id} was not stopped: {:?}", r.state),
        (_, Some(why)) => why.clone(),
    }
}

fn succeeded(report: &PlanReport, id: &str) {
    let state = &report.get(id).unwrap_or_else(|| panic!("no {id}")).state;
    assert_eq!(*state, State::Succeeded, "{id}");
}

/// A plan of one runway per `(id, agent, action, dataset, input)`.
fn plan(runways: &[(&str, &str, &str, &str, &str)]) -> String {
    runways
        .iter()
        .map(|(id, agent, action, dataset, input)| {
            let datasets = if dataset.is_empty() {
                String::new()
            } else {
                format!("datasets = {{ {dataset} = \"exclusive\" }}\n")
            };
            format!(
                "[[runway]]\nid = \"{id}\"\nagent = \"{agent}\"\naction = \"{action}\"\n{datasets}input = {input}\n"
            )
        })
        .collect()
}

#[test]
fn memory_is_capped_for_all_memories_of_a_run_together() {
    let (runtime, _) = plugins();
    let mut set = bundled_plugins();
    // Three instances with 30 MiB memories each, plus the main memory.
    let wasm = components::multi_memory(MAX_MEMORIES_PER_RUN - 1, 30);
    set.insert(runtime, "multimem", &wasm, grants("memory_mib = 64"))
        .unwrap();
    set.insert(runtime, "multimem-roomy", &wasm, grants("memory_mib = 128"))
        .unwrap();
    let f = Fixture::with_plugins(2, set);
    let report = f.run(&plan(&[
        ("capped", "multimem", "run", "", "{}"),
        ("roomy", "multimem-roomy", "run", "", "{}"),
        ("neighbour", "probe", "ok", "", "{}"),
    ]));
    let why = reason(&report, "capped");
    assert!(
        why.starts_with("memory limit exceeded: the run's memories and tables together would need")
            && why.ends_with("over its cap of 64 MiB"),
        "{why}"
    );
    succeeded(&report, "roomy");
    succeeded(&report, "neighbour");
}

#[test]
fn host_memory_stays_bounded_when_many_memories_grow() {
    // Three memories of 200 MiB each, every page touched, under a 256 MiB
    // cap: capped per memory, the host would hold 600 MiB for the run.
    let served = Served::folders();
    std::fs::write(
        served.plugins().join("multimem.toml"),
        "[limits]\nmemory_mib = 256\n",
    )
    .unwrap();
    std::fs::write(
        served.plugins().join("multimem.wasm"),
        components::multi_memory(MAX_MEMORIES_PER_RUN - 1, 200),
    )
    .unwrap();
    let mut served = served.start(&[]);
    served.fly("grow", &plan(&[("grow", "multimem", "run", "", "{}")]));
    let json = served.report("grow");
    // Peak resident memory of the serving process over its whole life.
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    served.stop();
    let why = json["runways"][0]["reason"].as_str().unwrap_or_default();
    assert!(why.ends_with("over its cap of 256 MiB"), "{json}");
    assert!(
        peak_kib < 450 << 10,
        "the host peaked at {} MiB",
        peak_kib >> 10
    );
}

#[test]
fn a_component_with_more_memories_than_a_run_may_have_is_refused_at_load() {
    let (runtime, _) = plugins();
    let mut set = Plugins::default();
    let err = set
        .insert(
            runtime,
            "greedy",
            &components::multi_memory(31, 1),
            grants(""),
        )
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("32 Wasm linear memories, which exceeds the configured maximum of 4"),
        "{err}"
    );
}

#[test]
fn slot_hungry_runs_never_starve_a_neighbour() {
    // A runtime of its own: every worker slot-hungry at once, beside one
    // healthy run, with nothing else sharing the pool.
    let runtime = Arc::new(Runtime::new().unwrap());
    let mut set = Plugins::default();
    let hungry = components::slot_hungry(
        MAX_MEMORIES_PER_RUN,
        runway_host::limits::MAX_CORE_INSTANCES_PER_RUN,
    );
    set.insert(
        &runtime,
        "hungry",
        &hungry,
        grants("window_secs = 2\nfuel = 1_000_000_000_000"),
    )
    .unwrap();
    let probe = std::fs::read(bundled_path("probe")).unwrap();
    set.insert(&runtime, "probe", &probe, grants("")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = runway_tests::open_host_with(
        &runtime,
        &dir.path().join("data"),
        &dir.path().join("audit"),
        Arc::new(set),
        MAX_LIVE_RUNS as usize,
    );
    let hungry_ids: Vec<String> = (1..MAX_LIVE_RUNS).map(|i| format!("hungry{i}")).collect();
    let mut runways: Vec<_> = hungry_ids
        .iter()
        .map(|id| (id.as_str(), "hungry", "run", "", "{}"))
        .collect();
    runways.push(("healthy", "probe", "ok", "", "{}"));
    let plan = runway_host::Plan::parse(&plan(&runways), &*host.plugins()).unwrap();
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(runway_host::run_plan(
            host,
            plan,
            DispatchOptions::default(),
        ))
        .unwrap();
    succeeded(&report, "healthy");
    for id in &hungry_ids {
        let why = reason(&report, id);
        assert!(
            why.starts_with("timed out") || why.starts_with("CPU budget"),
            "{id} did not get to run: {why}"
        );
    }
}

#[test]
fn a_wasi_sleep_past_the_window_ends_at_the_window() {
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 1\n",
    )]);
    let started = Instant::now();
    let report = f.run(&plan(&[
        ("sleeper", "hostile", "sleep", "test_sleep", "{ secs = 30 }"),
        ("next", "probe", "ok", "test_sleep", "{}"),
    ]));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a 30 s sleep held the plan for {:?}",
        started.elapsed()
    );
    assert_eq!(
        reason(&report, "sleeper"),
        "timed out: wall-clock window of 1 s exceeded"
    );
    succeeded(&report, "next");
    // The lock was released at the window, not after the sleep.
    let records = f.records();
    let time = |runway: &str, pred: fn(&Event) -> bool| {
        records
            .iter()
            .find(|r| r.entry.runway == runway && pred(&r.entry.event))
            .map(|r| r.time_ns)
            .unwrap_or_else(|| panic!("no such record of {runway}"))
    };
    let held = time("sleeper", |e| matches!(e, Event::LockReleased { .. }))
        - time("sleeper", |e| matches!(e, Event::LockGranted { .. }));
    assert!(
        held < Duration::from_secs(10).as_nanos() as u64,
        "lock held {held} ns"
    );
    assert!(
        time("next", |e| matches!(e, Event::LockGranted { .. }))
            > time("sleeper", |e| matches!(e, Event::LockReleased { .. }))
    );
}

#[test]
fn a_key_flood_hits_the_staging_cap_and_commits_nothing() {
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 600\nfuel = 1_000_000_000_000\n",
    )]);
    let report = f.run(&plan(&[(
        "flood",
        "hostile",
        "key-flood",
        "test_flood",
        "{ keys = 1_000_000, key_len = 191 }",
    )]));
    assert_eq!(
        reason(&report, "flood"),
        format!(
            "agent returned error: limit: the run's staged changes would exceed {MAX_STAGED_KEYS} keys"
        )
    );
    assert!(f.keys("test_flood", "").is_empty());
}

#[test]
fn staging_and_commit_fit_in_the_window() {
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 2\nfuel = 1_000_000_000_000\n",
    )]);
    let started = Instant::now();
    let report = f.run(&plan(&[(
        "bulk",
        "hostile",
        "key-flood",
        "test_bulk",
        "{ keys = 200_000, key_len = 20 }",
    )]));
    // Staged within the window or not, 200,000 files cannot be committed
    // in what is left of 2 s: either way the run times out, commits
    // nothing and leaves nothing behind.
    let why = reason(&report, "bulk");
    assert!(why.starts_with("timed out"), "{why}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(f.keys("test_bulk", "").is_empty());
}

#[test]
fn a_trap_keeps_its_cause_and_where_it_happened() {
    let f = Fixture::new();
    let report = f.run(&plan(&[(
        "trap",
        "hostile",
        "trap-midway",
        "test_trap",
        "{}",
    )]));
    let why = reason(&report, "trap");
    assert!(
        why.starts_with("agent trapped: unreachable (a panic or abort in the guest) in "),
        "{why}"
    );
}

#[test]
fn guest_text_is_capped_where_it_is_kept() {
    let f = Fixture::new();
    let report = f.run(&plan(&[
        (
            "loud",
            "hostile",
            "ansi-error",
            "test_loud",
            "{ kib = 900 }",
        ),
        (
            "chatty",
            "hostile",
            "ansi-output",
            "test_chatty",
            "{ kib = 64 }",
        ),
    ]));
    let why = reason(&report, "loud");
    assert!(why.len() <= MAX_REASON, "{} bytes kept", why.len());
    assert!(
        why.starts_with("agent returned error: invalid: \u{1b}[2J"),
        "{why:?}"
    );
    assert!(why.ends_with("more bytes]"), "{why:?}");
    let audited = f
        .records()
        .into_iter()
        .find_map(|r| match r.entry.event {
            Event::Failed { reason } if r.entry.runway == "loud" => Some(reason),
            _ => None,
        })
        .expect("FAILED record");
    assert_eq!(audited, why);
    succeeded(&report, "chatty");
}

#[test]
fn a_full_data_disk_fails_the_commit_and_leaves_nothing_behind() {
    let mut mounted = None;
    let f = Fixture::with_data_root(|data| mounted = Tmpfs::mount(data, "512k"));
    let Some(_tmpfs) = mounted else { return };
    let write = |id: &str, key_len: u32| {
        plan(&[(
            id,
            "hostile",
            "key-flood",
            "test_disk",
            &format!("{{ keys = 5, key_len = {key_len} }}"),
        )])
    };
    succeeded(&f.run(&write("before", 20)), "before");
    // A 1 MB value does not fit on the 512 KiB disk.
    let report = f.run(&plan(&[(
        "too-big",
        "hostile",
        "million-keys",
        "test_disk",
        "{ keys = 0 }",
    )]));
    let why = reason(&report, "too-big");
    assert!(
        why.starts_with("commit failed") && why.contains("database or disk is full"),
        "{why}"
    );
    assert_eq!(f.keys("test_disk", "").len(), 5);
    // Space is back (the failed commit removed what it wrote): the next run
    // commits, without a restart.
    succeeded(&f.run(&write("after", 30)), "after");
    assert_eq!(f.keys("test_disk", "").len(), 10);
}

#[test]
fn every_record_of_a_run_names_the_plugin_it_ran_with() {
    let f = Fixture::new();
    let before = f.host.plugins();
    let old = before.get("probe").unwrap().digest;
    // The catalog a reload brings: "probe" is now another component.
    let (runtime, _) = plugins();
    let mut swapped = Plugins::default();
    let other = bundled_path("compliance-check");
    let probe_grants = before.get("probe").unwrap().grants.clone();
    swapped
        .insert(
            runtime,
            "probe",
            &std::fs::read(other).unwrap(),
            probe_grants,
        )
        .unwrap();
    let swapped = Arc::new(swapped);
    let new = swapped.get("probe").unwrap().digest;
    assert_ne!(old, new);
    // The reload lands right after the runway is cleared, before it lands.
    let host = f.host.clone();
    let observer = Arc::new(move |entry: &Entry| {
        if matches!(entry.event, Event::Cleared { .. }) {
            host.set_plugins(swapped.clone());
        }
    });
    let plan = f.plan(&plan(&[("swap", "probe", "ok", "test_swap", "{}")]));
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(runway_host::run_plan(
            f.host.clone(),
            plan,
            DispatchOptions {
                observer,
                ..DispatchOptions::default()
            },
        ))
        .unwrap();
    succeeded(&report, "swap");
    assert_eq!(f.host.plugins().get("probe").unwrap().digest, new);
    let records: Vec<Record> = f
        .records()
        .into_iter()
        .filter(|r| r.entry.runway == "swap")
        .collect();
    assert!(records.len() >= 6, "{records:?}");
    for r in &records {
        assert_eq!(r.entry.plugin, Some(old), "{:?}", r.entry.event);
    }
}

#[test]
fn a_compile_bomb_is_refused_without_stalling_other_plans() {
    let served = Served::folders();
    drop_plugin("probe", &served.plugins());
    let mut served = served.start(&["--compile-timeout-secs", "5"]);
    let healthy = |name: &str| plan(&[(name, "probe", "ok", "test_healthy", "{}")]);
    let landed = |json: serde_json::Value| json["runways"][0]["state"] == "SUCCEEDED";
    served.fly("first", &healthy("first"));
    let first = landed(served.report("first"));
    // A component taking far longer than 5 s to compile (12 s on a quiet
    // core here), dropped together with another plan.
    std::fs::write(served.plugins().join("bomb.toml"), "[datasets]\n").unwrap();
    std::fs::write(
        served.plugins().join("bomb.wasm"),
        components::compile_bomb(4000, 1000),
    )
    .unwrap();
    served.fly("second", &healthy("second"));
    let second = landed(served.report("second"));
    // The refusal comes once the compiler process is stopped at its cap.
    let refused = |records: &[Record]| {
        records.iter().position(|r| {
            r.entry.agent == "bomb" && matches!(r.entry.event, Event::Rejected { .. })
        })
    };
    let mut records = Vec::new();
    eventually("the bomb's refusal", || {
        records = runway_audit::read_records(&served.path("audit")).unwrap_or_default();
        refused(&records).is_some()
    });
    let status = served.stop();
    assert!(
        first && second,
        "a plan did not land (first {first}, second {second})"
    );
    assert!(status.success(), "serve ended with {status}");
    let at = refused(&records).unwrap();
    let Event::Rejected { reason } = &records[at].entry.event else {
        unreachable!()
    };
    assert!(
        reason.contains("compiling took longer than the compile time cap of 5 s"),
        "{reason}"
    );
    // The plan dropped beside the bomb did not wait for its compile.
    let second_landed = records
        .iter()
        .position(|r| {
            r.entry.runway == "second" && matches!(r.entry.event, Event::Succeeded { .. })
        })
        .expect("second succeeded");
    assert!(second_landed < at, "the second plan waited for the bomb");
    assert!(
        !records
            .iter()
            .any(|r| r.entry.agent == "bomb" && matches!(r.entry.event, Event::PluginLoaded))
    );
}

/// `runway serve` over a folder of its own: `plugins/`, `inbox/`, and the
/// audit, data and cache folders beside them.
struct Served {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Served {
    /// The folders, before the server starts (to fill `plugins/`).
    fn folders() -> Served {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["plugins", "inbox"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Served { dir, child: None }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn plugins(&self) -> std::path::PathBuf {
        self.path("plugins")
    }

    fn start(mut self, extra: &[&str]) -> Served {
        let child = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
            .arg("serve")
            .args(extra)
            .args(["--plugins", "plugins", "--inbox", "inbox"])
            .args(["--audit", "audit", "--data", "data", "--cache", "cache"])
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// Drops a plan into the inbox the way operators should: written beside
    /// it, then renamed in, so it is never taken half-written.
    fn fly(&self, name: &str, text: &str) {
        let staging = self.path(&format!("{name}.toml.part"));
        std::fs::write(&staging, text).unwrap();
        std::fs::rename(&staging, self.path(&format!("inbox/{name}.toml"))).unwrap();
    }

    /// The plan's report once it landed.
    fn report(&self, name: &str) -> serde_json::Value {
        let done = self.path(&format!("inbox/done/{name}.json"));
        eventually(&format!("{name} landed"), || done.exists());
        serde_json::from_slice(&std::fs::read(&done).unwrap()).unwrap()
    }

    /// Stops the server as Ctrl-C would.
    fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("-INT")
    }

    /// Sends the server `signal` (as `kill` spells it) and waits for its exit.
    fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("started");
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn sigterm_stops_taking_plans_and_lets_the_run_in_flight_land() {
    let served = Served::folders();
    drop_plugin("hostile", &served.plugins());
    let mut served = served.start(&[]);
    served.fly(
        "slow",
        &plan(&[("sleeper", "hostile", "sleep", "test_term", "{ secs = 2 }")]),
    );
    let filed = served.path("inbox/filed/slow.toml");
    eventually("the plan is filed", || filed.exists());
    std::thread::sleep(Duration::from_millis(300));
    // As `systemctl stop` would: the run in flight lands before the exit.
    let status = served.signal("-TERM");
    assert!(status.success(), "{status}");
    let json = served.report("slow");
    assert_eq!(json["runways"][0]["state"], "SUCCEEDED", "{json}");
    for left in ["flying", "filed"] {
        let path = served.path(&format!("inbox/{left}/slow.toml"));
        assert!(!path.exists(), "a plan was left in {left}/");
    }
}
