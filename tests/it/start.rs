//! The one start path (`controller::start::open`): the tests, the benches,
//! `runway serve` and `runway run` all bring a host up through it, so a
//! restart in a test is a restart as production does it — interrupted runs
//! and commits settled against the store, the journal folded in the same
//! single pass over the trail, the plugins' loading recorded. And a trail
//! written by an older host (the committed fixture) still folds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use runway_audit::{AuditOptions, Entry, Event, LockGrant, LockMode, State};
use runway_host::DispatchOptions;
use runway_host::controller::{self, RunwayReport};
use runway_host::controller::{HostSetup, PluginSource};
use runway_tests::{Fixture, filing, plugins};

/// A gated runway (it never runs), filed and left waiting.
fn file_gated(f: &Fixture) {
    let plan = f.plan(
        r#"
        [[runway]]
        id = "cut-short"
        agent = "probe"
        action = "ok"
        datasets = { test_start = "exclusive" }
        approval = { required = true }
        [[runway]]
        id = "mid-commit"
        agent = "probe"
        action = "ok"
        datasets = { test_start_2 = "exclusive" }
        approval = { required = true }
        "#,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        c.file(filing(plan)).await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
    });
}

fn list(f: &Fixture) -> HashMap<String, RunwayReport> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        let all = c.list().await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        all.into_iter().map(|r| (r.id.clone(), r)).collect()
    })
}

#[test]
fn a_crashed_host_restarts_through_the_one_start_path_and_recovery_runs() {
    let f = Fixture::new();
    file_gated(&f);
    // The host dies with one run in the air (STARTED, nothing after) and
    // one mid-commit (COMMITTING durable, no commits row in the store).
    let lock = LockGrant {
        dataset: "test_start_2".into(),
        mode: LockMode::Exclusive,
        token: 1,
    };
    for (runway, event) in [
        ("cut-short", Event::Started { attempt: 1 }),
        ("mid-commit", Event::Started { attempt: 1 }),
        (
            "mid-commit",
            Event::Committing {
                locks: vec![lock],
                changes: [7; 32],
            },
        ),
    ] {
        f.host
            .audit
            .append(Entry {
                runway: runway.into(),
                agent: "probe".into(),
                plugin: None,
                dataset: None,
                event,
            })
            .unwrap();
    }
    f.host.audit.sync().unwrap();
    let f = f.reopen();
    // Recovery ran before the fold: its records are in the trail, right
    // after what the crash left, and the fold saw them.
    let records = f.records();
    let failed: Vec<(&str, &str)> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::Failed { reason } => Some((r.entry.runway.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [
            (
                "cut-short",
                "host crashed during the run; nothing was committed"
            ),
            (
                "mid-commit",
                "host crashed during the commit; nothing was applied"
            ),
        ]
    );
    let recovered = records.iter().any(|r| {
        r.entry.runway == "mid-commit"
            && matches!(r.entry.event, Event::Recovered { landed: false, .. })
    });
    assert!(recovered, "a RECOVER record for the open commit");
    // The plugins' loading is on the record of each start.
    let loads = records
        .iter()
        .filter(|r| r.entry.agent == "probe" && r.entry.event == Event::PluginLoaded)
        .count();
    assert_eq!(loads, 2, "one LOAD of probe per start");
    let runways = list(&f);
    for id in ["cut-short", "mid-commit"] {
        let r = &runways[id];
        assert_eq!(r.state, State::Failed, "{id}: {r:?}");
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with("host crashed during the"),
            "{id}: {reason}"
        );
    }
    // A second start finds nothing left to settle.
    let before = f.records().len();
    let f = f.reopen();
    let settled_again = f.records()[before..].iter().any(|r| {
        matches!(
            r.entry.event,
            Event::Recovered { .. } | Event::Failed { .. }
        )
    });
    assert!(!settled_again, "settled once, never twice");
}

/// The committed trail of an older host (FILING of the first manifest
/// layout), copied to `dir`, opened through the start path.
fn open_fixture_trail(dir: &Path) -> Arc<runway_host::Host> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trail-0.1.0");
    let audit = dir.join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    for entry in std::fs::read_dir(fixture.join("audit")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), audit.join(entry.file_name())).unwrap();
    }
    let origin = runway_audit::segment::folder_origin(&audit).expect("the fixture's origin");
    let (runtime, plugins) = plugins();
    let setup = HostSetup {
        data: dir.join("data"),
        audit,
        audit_options: AuditOptions::new(origin),
        runtime: runtime.clone(),
        plugins: PluginSource::Loaded(plugins.clone()),
        workers: 2,
        snapshot_after: 0,
    };
    controller::open(setup).expect("the old trail opens").host
}

#[test]
fn a_trail_written_by_the_first_host_still_folds() {
    let dir = tempfile::tempdir().unwrap();
    let host = open_fixture_trail(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let runways = rt.block_on(async {
        let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
        let all = c.list().await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        all
    });
    let got: Vec<(&str, State, &str)> = runways
        .iter()
        .map(|r| (r.id.as_str(), r.state, r.note.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("import", State::Succeeded, ""),
            (
                "compliance",
                State::WaitingApproval,
                "waiting for approval (role approver)"
            ),
            (
                "later",
                State::WaitingTime,
                "not before 2400-01-01T00:00:00Z"
            ),
        ]
    );
    let import = &runways[0];
    assert_eq!(import.attempts, 1);
    assert!(import.output_digest.is_some());
    let m = &import.manifest;
    assert_eq!((m.priority, m.retry.attempts), (3, 3));
    assert_eq!(m.window, Some(std::time::Duration::from_secs(60)));
    assert_eq!(m.input, br#"{"count":5,"seed":7}"#);
    let compliance = &runways[1];
    assert_eq!(compliance.manifest.after, ["import"]);
    assert_eq!(compliance.manifest.approval.as_deref(), Some("approver"));
    let later = &runways[2];
    assert_eq!(
        later.start_at.map(|t| t.to_string()).as_deref(),
        Some("2400-01-01T00:00:00Z")
    );
    assert_eq!(
        later.expires_at.map(|t| t.to_string()).as_deref(),
        Some("2450-06-01T12:30:00.123456789Z")
    );
    let locks: Vec<(&str, LockMode)> = later
        .manifest
        .datasets
        .iter()
        .map(|(d, &m)| (d.as_str(), m))
        .collect();
    assert_eq!(
        locks,
        [
            ("test_fixture", LockMode::Shared),
            ("test_other", LockMode::Exclusive)
        ]
    );
}
