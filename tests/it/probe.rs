//! The `probe` agent tries what it must not; every attempt is refused with the
//! right error, changes nothing, and is on the audit record.

use runway_audit::{Call, Event, Outcome};
use runway_host::State;
use runway_tests::{Fixture, output};

fn attempts(out: &serde_json::Value) -> Vec<(String, String)> {
    out["attempts"]
        .as_array()
        .expect("attempts list")
        .iter()
        .map(|a| {
            (
                a["what"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn read_without_a_lock_is_denied_and_audited() {
    let f = Fixture::new();
    f.run(
        r#"
        [[runway]]
        id = "owner"
        agent = "import-applications"
        datasets = { test_secret = "exclusive" }
        input = { count = 3 }
        "#,
    );
    let report = f.run(
        r#"
        [[runway]]
        id = "snoop"
        agent = "probe"
        action = "read-unlocked"
        datasets = { test_mine = "shared" }
        input = { dataset = "test_secret" }
        "#,
    );
    assert_eq!(report.get("snoop").unwrap().state, State::Succeeded);
    let tried = attempts(&output(&report, "snoop"));
    assert!(!tried.is_empty());
    assert!(
        tried.iter().all(|(_, outcome)| outcome == "denied"),
        "{tried:?}"
    );
    let denied: Vec<_> = f
        .records()
        .into_iter()
        .filter(|r| r.entry.runway == "snoop")
        .filter_map(|r| match r.entry.event {
            Event::Call {
                call: Call::Read,
                outcome: Outcome::Denied(why),
                token,
                ..
            } => Some((r.entry.dataset, why, token)),
            _ => None,
        })
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].0.as_deref(), Some("test_secret"));
    assert!(
        denied[0].1.contains("no lock on dataset test_secret"),
        "{}",
        denied[0].1
    );
    assert_eq!(denied[0].2, None, "no token for a lock not held");
}

#[test]
fn write_under_a_shared_lock_is_denied_and_changes_nothing() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "seed"
        agent = "import-applications"
        datasets = { test_books = "exclusive" }
        input = { count = 5 }
        [[runway]]
        id = "sneaky"
        agent = "probe"
        action = "write-shared"
        datasets = { test_books = "shared" }
        after = ["seed"]
        "#,
    );
    assert_eq!(report.failed(), 0);
    let tried = attempts(&output(&report, "sneaky"));
    assert!(tried.iter().all(|(_, o)| o == "denied"), "{tried:?}");
    assert_eq!(f.keys("test_books", "").len(), 5, "nothing was added");
    let records = f.records();
    let refused = records.iter().filter(|r| {
        r.entry.runway == "sneaky"
            && matches!(&r.entry.event, Event::Call { call: Call::Write | Call::Delete, outcome: Outcome::Denied(why), .. } if why.contains("needs an exclusive lock"))
    });
    assert!(refused.count() >= 1);
    assert!(!records.iter().any(|r| r.entry.runway == "sneaky" && matches!(r.entry.event, Event::Committed { .. })));
}

#[test]
fn bad_names_are_invalid_and_never_touch_the_disk() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "names"
        agent = "probe"
        action = "bad-names"
        datasets = { test_sandbox = "exclusive" }
        "#,
    );
    assert_eq!(report.failed(), 0, "{:?}", report.runways[0].state);
    let tried = attempts(&output(&report, "names"));
    assert!(tried.len() >= 6, "{tried:?}");
    for (what, outcome) in &tried {
        assert!(
            outcome == "invalid" || outcome == "denied",
            "{what}: {outcome}"
        );
    }
    // Nothing but the store's own files in the data root, and only the
    // test_sandbox dataset in the store.
    let entries: Vec<_> = std::fs::read_dir(&f.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("runway."))
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
    // Invalid names never become a dataset timeline in the audit.
    let records = f.records();
    let invalid: Vec<_> = records
        .iter()
        .filter(|r| {
            matches!(
                r.entry.event,
                Event::Call {
                    outcome: Outcome::Invalid(_),
                    ..
                }
            )
        })
        .collect();
    assert!(!invalid.is_empty());
    assert!(
        invalid.iter().all(
            |r| r.entry.dataset.is_none() || r.entry.dataset.as_deref() == Some("test_sandbox")
        )
    );
}

#[test]
fn every_host_call_is_audited() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "all"
        agent = "probe"
        action = "all"
        datasets = { a = "exclusive", b = "shared" }
        input = { dataset = "elsewhere" }
        "#,
    );
    assert_eq!(report.failed(), 0, "{:?}", report.runways[0].state);
    let tried = attempts(&output(&report, "all"));
    let calls = f
        .records()
        .into_iter()
        .filter(|r| {
            r.entry.runway == "all"
                && matches!(
                    r.entry.event,
                    Event::Call {
                        call: Call::Read | Call::Write | Call::Delete | Call::List,
                        ..
                    }
                )
        })
        .count();
    // One record per attempted dataset call, none missing, allowed or not.
    assert!(
        calls >= tried.len(),
        "{calls} records for {} attempts",
        tried.len()
    );
}

#[test]
fn locks_reach_the_run_in_manifest_order() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "ordered"
        agent = "probe"
        action = "locks"
        datasets = { test_zeta = "shared", test_alpha = "exclusive", test_mid = "shared" }
        "#,
    );
    let told = output(&report, "ordered");
    let told: Vec<(&str, &str)> = told
        .as_array()
        .expect("a list of locks")
        .iter()
        .map(|l| (l["dataset"].as_str().unwrap(), l["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        told,
        [
            ("test_zeta", "shared"),
            ("test_alpha", "exclusive"),
            ("test_mid", "shared")
        ],
        "the manifest's order, not the datasets' names"
    );
    let tokens = output(&report, "ordered");
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["token"].is_u64()),
        "each lock is found by its name: {tokens}"
    );
}
