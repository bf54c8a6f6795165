//! The hostile-plugin suite: every attack of the `hostile` agent is stopped
//! with a specific reason, audited, and a healthy neighbour running beside it
//! finishes correctly.

use runway_audit::Event;
use runway_host::{PlanError, PlanReport, State};
use runway_tests::{Fixture, output};

/// Grants for `hostile` in these tests: generous unless a test tightens one.
fn grants(limits: &str) -> String {
    format!(
        "[datasets]\n\"hostile_*\" = \"exclusive\"\n\"test_*\" = \"exclusive\"\n[limits]\n{limits}\n"
    )
}

/// Runs `action` of `hostile` beside a healthy import of 200 records, and
/// checks the neighbour.
fn attack(f: &Fixture, action: &str, input: &str) -> PlanReport {
    attack_with(f, "hostile", action, input)
}

/// Runs `agent`'s `action` as runway "attack" beside the healthy neighbour.
fn attack_with(f: &Fixture, agent: &str, action: &str, input: &str) -> PlanReport {
    let report = f.run(&format!(
        r#"
        [[runway]]
        id = "attack"
        agent = "{agent}"
        action = "{action}"
        datasets = {{ hostile_target = "exclusive" }}
        input = {input}
        [[runway]]
        id = "neighbour"
        agent = "import-applications"
        datasets = {{ test_neighbour = "exclusive" }}
        input = {{ count = 200, seed = 3 }}
        "#
    ));
    assert_eq!(
        report.get("neighbour").unwrap().state,
        State::Succeeded,
        "{action}"
    );
    assert_eq!(output(&report, "neighbour")["written"], 200);
    assert_eq!(f.keys("test_neighbour", "app/").len(), 200);
    report
}

fn failure(report: &PlanReport) -> String {
    let r = report.get("attack").unwrap();
    match (r.state, &r.reason) {
        (State::Succeeded, _) | (_, None) => panic!("attack was not stopped: {:?}", r.state),
        (_, Some(why)) => why.clone(),
    }
}

/// The attack's failure, checked to be on the audit record too.
fn stopped(f: &Fixture, report: &PlanReport, needle: &str) -> String {
    let why = failure(report);
    assert!(why.contains(needle), "reason {why:?} lacks {needle:?}");
    let audited = f.records().into_iter().any(|r| {
        r.entry.runway == "attack"
            && matches!(&r.entry.event,
                Event::Failed { reason } | Event::Moved { reason, .. } if *reason == why)
    });
    assert!(audited, "failure not audited: {why}");
    why
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let f = Fixture::with_grants(&[("hostile", &grants("fuel = 50_000_000\nwindow_secs = 60"))]);
    let report = attack(&f, "spin", "{}");
    stopped(&f, &report, "CPU budget exhausted");
}

#[test]
fn an_infinite_loop_is_stopped_at_its_window() {
    let f = Fixture::with_grants(&[(
        "hostile",
        &grants("fuel = 1_000_000_000_000_000\nwindow_secs = 1"),
    )]);
    let report = attack(&f, "spin", "{}");
    stopped(&f, &report, "timed out: wall-clock window of 1 s exceeded");
}

#[test]
fn a_loop_of_host_calls_is_stopped_at_its_window() {
    let f = Fixture::with_grants(&[(
        "hostile",
        &grants("fuel = 1_000_000_000_000_000\nwindow_secs = 1"),
    )]);
    let report = attack(&f, "spin-calls", "{}");
    stopped(&f, &report, "timed out");
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let f = Fixture::with_grants(&[("hostile", &grants("memory_mib = 32"))]);
    let report = attack(&f, "grow-memory", "{}");
    stopped(
        &f,
        &report,
        "memory limit exceeded: the run's memories and tables together would need",
    );
    stopped(&f, &report, "over its cap of 32 MiB");
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let f = Fixture::with_grants(&[("hostile", &grants(""))]);
    let report = attack(&f, "recurse", "{}");
    stopped(&f, &report, "stack overflow");
}

#[test]
fn a_huge_value_never_reaches_the_host() {
    let f = Fixture::with_grants(&[("hostile", &grants("memory_mib = 256"))]);
    let report = attack(&f, "huge-value", "{ mib = 64 }");
    stopped(
        &f,
        &report,
        "limit: a host call carried more than 1114112 bytes",
    );
    assert_eq!(f.host.store.len("hostile_target").unwrap(), 0);
}

#[test]
fn a_forged_length_traps_without_reading_host_memory() {
    let f = Fixture::with_grants(&[("hostile", &grants(""))]);
    let report = attack(&f, "forged-length", "{}");
    let why = failure(&report);
    assert!(why.contains("trapped") || why.contains("limit"), "{why}");
}

#[test]
fn a_flood_of_logs_and_prints_is_capped_and_neutralised() {
    let f = Fixture::with_grants(&[("hostile", &grants("max_log_kib = 64"))]);
    let report = attack(&f, "log-flood", "{}");
    let run = report.get("attack").unwrap().run.as_ref().unwrap();
    assert!(
        run.log.bytes <= 64 * 1024,
        "log kept {} bytes",
        run.log.bytes
    );
    assert!(run.log.dropped > 0, "the flood was not cut");
    assert!(run.stdout.len() <= 64 * 1024 && run.stderr.len() <= 64 * 1024);
    for line in &run.log.lines {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "control character in {line:?}"
        );
    }
    if let Some(why) = &report.get("attack").unwrap().reason {
        assert!(why.contains("output flood"), "{why}");
    }
}

#[test]
fn a_trap_halfway_through_writes_leaves_the_dataset_byte_identical() {
    let f = Fixture::with_grants(&[("hostile", &grants(""))]);
    f.run(
        r#"
        [[runway]]
        id = "seed"
        agent = "import-applications"
        datasets = { test_midway = "exclusive" }
        input = { count = 50 }
        "#,
    );
    let before = f.snapshot("test_midway");
    assert!(before.len() >= 50);
    let report = f.run(
        r#"
        [[runway]]
        id = "attack"
        agent = "hostile"
        action = "trap-midway"
        datasets = { test_midway = "exclusive" }
        "#,
    );
    stopped(&f, &report, "trapped");
    assert_eq!(
        f.snapshot("test_midway"),
        before,
        "dataset changed by a trapped run"
    );
}

#[test]
fn a_panic_fails_the_run_only() {
    let f = Fixture::with_grants(&[("hostile", &grants(""))]);
    let report = attack(&f, "panic", "{}");
    stopped(&f, &report, "panic");
}

#[test]
fn an_oversized_output_is_refused() {
    let f = Fixture::with_grants(&[("hostile", &grants("max_output_kib = 256"))]);
    let report = attack(&f, "big-output", "{ kib = 512 }");
    stopped(&f, &report, "exceeds the 262144-byte limit");
}

#[test]
fn wasi_grants_nothing() {
    let f = Fixture::with_grants(&[("hostile", &grants(""))]);
    let report = attack(&f, "wasi-escape", "{}");
    assert_eq!(report.get("attack").unwrap().state, State::Succeeded);
    let out = output(&report, "attack");
    let attempts = out["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 6, "{out}");
    for a in attempts {
        assert_ne!(a["outcome"], "ok", "{a}");
    }
    assert!(!std::path::Path::new("/tmp/runway-escape").exists());
}

#[test]
fn a_dataset_beyond_the_grant_is_refused_at_filing() {
    let f = Fixture::with_grants(&[("hostile", &grants(""))]);
    let plan = "[[runway]]\nid = 'grab'\nagent = 'hostile'\ndatasets = { fafsa_2024_03_16 = 'exclusive' }\n";
    let err = runway_host::Plan::parse(plan, &*f.host.plugins()).unwrap_err();
    assert!(
        matches!(&err, PlanError::BeyondGrant { dataset, .. } if dataset == "fafsa_2024_03_16"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "runway \"grab\": agent hostile is not granted exclusive on fafsa_2024_03_16 \
         (its grants allow: hostile_* exclusive, test_* exclusive); to allow it, add \
         `\"fafsa_2024_03_16\" = \"exclusive\"` under [datasets] in hostile.toml \
         beside hostile.wasm in the plugins folder"
    );
}

#[test]
fn a_symlink_planted_in_the_data_root_leads_nowhere() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(&f.data).unwrap();
    std::os::unix::fs::symlink(outside.path(), f.data.join("test_escape")).unwrap();
    let report = f.run(
        r#"
        [[runway]]
        id = "escape"
        agent = "import-applications"
        datasets = { test_escape = "exclusive" }
        input = { count = 5 }
        "#,
    );
    // A dataset is its name in the database, never a path: the link is
    // never followed, the run lands, and nothing is written outside.
    assert_eq!(report.get("escape").unwrap().state, State::Succeeded);
    assert_eq!(f.host.store.len("test_escape").unwrap(), 5);
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "wrote outside the data root"
    );
}

#[test]
fn the_host_survives_many_hostile_runs_with_bounded_memory() {
    let f = Fixture::with_grants(&[("hostile", &grants("memory_mib = 32"))]);
    attack(&f, "grow-memory", "{}");
    let before = resident_kib();
    for _ in 0..8 {
        let report = attack(&f, "grow-memory", "{}");
        assert!(failure(&report).contains("memory limit"));
    }
    let grown = resident_kib().saturating_sub(before);
    assert!(
        grown < 96 * 1024,
        "resident memory grew by {grown} KiB over 8 memory bombs"
    );
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_million_byte_value_and_an_unbounded_listing_are_capped() {
    let f = Fixture::with_grants(&[("hostile", &grants("memory_mib = 64"))]);
    let report = attack(&f, "million-keys", "{ keys = 3000 }");
    assert_eq!(report.get("attack").unwrap().state, State::Succeeded);
    let out = output(&report, "attack");
    // 1,000,000 bytes is under the 1 MiB value cap; the listing is cut to a page.
    assert_eq!(out["write"]["outcome"], "ok", "{out}");
    assert_eq!(out["keys"]["written"], 3000, "{out}");
    let returned = out["list"]["returned"].as_u64().unwrap();
    assert_eq!(
        returned,
        u64::from(runway_host::sandbox::hostcalls::MAX_PAGE),
        "{out}"
    );
    assert_eq!(
        out["list"]["next_cursor"], true,
        "a cursor for the rest: {out}"
    );
}

#[test]
fn forbidden_calls_beside_a_neighbour_are_denied_and_change_nothing() {
    let f = Fixture::new();
    for action in ["read-unlocked", "write-shared", "bad-names", "all"] {
        let report = attack_with(&f, "probe", action, "{ dataset = \"test_neighbour\" }");
        let r = report.get("attack").unwrap();
        // probe fails its own run if any forbidden call was allowed.
        let allowed = matches!(&r.reason, Some(why) if why.contains("forbidden call allowed"));
        assert!(!allowed, "{action}: {:?} {:?}", r.state, r.reason);
        if let Some(out) = &report.get("attack").unwrap().output {
            let out: serde_json::Value = serde_json::from_slice(out).unwrap();
            for a in out["attempts"].as_array().into_iter().flatten() {
                assert_ne!(a["outcome"], "ok", "{action}: {a}");
            }
        }
    }
}
