//! Host faults are traps, and a fenced commit is its own failure: a store
//! that fails under a host call never reaches the guest as `not-found` or
//! `denied` — the run traps and FAILS naming the fault, and the host goes
//! on; a commit whose token a newer holder fenced off fails as
//! [`RunFailure::Fenced`], which a retry can tell from an I/O failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::{Event, LockGrant, LockMode};
use runway_host::State;
use runway_host::controller as commit;
use runway_host::sandbox::{self, Observer, RunFailure, RunRequest};
use runway_host::store::{Change, RunCommit, Staged};
use runway_tests::Fixture;

const LISTS: &str = r#"
[[runway]]
id = "checks"
agent = "compliance-check"
action = "check"
datasets = { fafsa_host_fault = "exclusive" }
"#;

const NEXT: &str = r#"
[[runway]]
id = "next"
agent = "probe"
action = "ok"
"#;

/// The database file goes away under a running host: the run's first
/// `datasets.list` cannot open its reader. The agent handles `not-found`
/// as data (it would have reported it as its own error); it gets a trap
/// instead, and the run fails as a host fault naming the call and the
/// store's error. The next plan on the same host runs.
#[test]
fn a_store_failure_under_a_host_call_fails_the_run_as_a_host_fault() {
    let f = Fixture::new();
    // Tokens reserved and the fence read while the file is there: only the
    // run's reader, opened at its first read, finds it gone.
    f.host.store.next_token().unwrap();
    f.host.store.fence("fafsa_host_fault").unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(f.data.join(format!("runway.db{suffix}")));
    }
    let report = f.run(LISTS);
    let run = report.get("checks").expect("runway");
    assert_eq!(run.state, State::Failed, "{run:?}");
    let reason = run.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with(
            "host fault during run: datasets.list on fafsa_host_fault: the dataset store failed: "
        ),
        "{reason}"
    );
    assert!(!reason.contains("not-found"), "{reason}");
    let failed = f
        .records()
        .into_iter()
        .find(|r| r.entry.runway == run.id && matches!(r.entry.event, Event::Failed { .. }))
        .expect("FAILED recorded");
    assert!(
        matches!(&failed.entry.event, Event::Failed { reason: r } if r == &reason),
        "{failed:?}"
    );
    // The host goes on.
    assert_eq!(f.run(NEXT).failed(), 0);
}

/// A run holding token T on a dataset lands after a newer holder committed
/// with token T' > T: nothing of it lands, and its failure says so as a
/// type, with both tokens — not a commit failure's text.
#[test]
fn a_fenced_commit_is_its_own_failure() {
    let f = Fixture::new();
    let store = &f.host.store;
    let dataset = "fenced_commit_test";
    let plugin = f.host.plugins().get("import-applications").expect("plugin");
    let token = store.next_token().unwrap();
    let req = RunRequest {
        runway: "stale".into(),
        program: plugin.program(),
        action: "import".into(),
        input: br#"{"count": 3}"#.to_vec(),
        attempt: 1,
        locks: vec![LockGrant {
            dataset: dataset.into(),
            mode: LockMode::Exclusive,
            token,
        }],
        cancel: Default::default(),
        delegator: None,
        keep_output: false,
    };
    let observer: Observer = Arc::new(|_| {});
    let flown = sandbox::fly(f.host.sandbox(), req, &observer).expect("flies");
    assert!(flown.outcome().is_ok(), "{:?}", flown.outcome());

    // A newer holder of the lock commits first.
    let newer = store.next_token().unwrap();
    let mut staged = Staged::default();
    staged.stage(dataset, "app/000001", Change::Put(b"newer".to_vec()), 0);
    let tokens = BTreeMap::from([(dataset.to_string(), newer)]);
    let landed = store.commit(&[RunCommit {
        runway: "newer",
        agent: "import-applications",
        plugin: [0; 32],
        attempt: 1,
        tokens: &tokens,
        staged: &staged,
        seq_of: &|_| 0,
        deadline: Instant::now() + Duration::from_secs(60),
        committing_seq: 1 << 40,
        output: [0; 32],
    }]);
    assert!(landed[0].is_ok(), "{landed:?}");

    let mut reports = commit::land(store, &f.host.audit, vec![flown], &|_| {}).expect("lands");
    let outcome = reports.pop().unwrap().outcome;
    assert_eq!(
        outcome,
        Err(RunFailure::Fenced {
            dataset: dataset.into(),
            token,
            fence: newer,
        })
    );
    assert_eq!(
        f.keys(dataset, "app/"),
        ["app/000001"],
        "the stale run landed nothing"
    );
    assert_eq!(
        store.read(dataset, "app/000001").unwrap().as_deref(),
        Some(&b"newer"[..])
    );
}
