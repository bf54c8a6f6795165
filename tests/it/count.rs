//! `datasets.count` (WIT 0.1.1) through real wasmtime: the number of keys
//! under a prefix as the calling run sees them — its own staged writes and
//! deletes counted in — under the lock `list` needs, refused as `list` is
//! refused without one, and on the audit record as a COUNT call. The Rust
//! agent is the probe's `count` action; the Python and JavaScript summaries
//! count their records with it too.

use runway_audit::{Call, Event, Outcome, Record, record_line};
use runway_host::{Grants, State};
use runway_tests::{Fixture, bundled_plugins, output, plugins};
use serde_json::json;

/// Twelve applications in `test_apps` and five in `test_work`
/// (`app/000001` …).
fn seeded(f: &Fixture) {
    let report = f.run(
        r#"
        [[runway]]
        id = "seed-apps"
        agent = "import-applications"
        datasets = { test_apps = "exclusive" }
        input = { count = 12 }
        [[runway]]
        id = "seed-work"
        agent = "import-applications"
        datasets = { test_work = "exclusive" }
        input = { count = 5 }
        "#,
    );
    assert_eq!(report.failed(), 0, "{:?}", report.runways);
}

/// The COUNT call records of runway `id`.
fn counts(records: &[Record], id: &str) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.entry.runway == id)
        .filter(|r| {
            matches!(
                r.entry.event,
                Event::Call {
                    call: Call::Count,
                    ..
                }
            )
        })
        .cloned()
        .collect()
}

#[test]
fn a_count_sees_the_runs_own_staged_changes_under_its_lock() {
    let f = Fixture::new();
    seeded(&f);
    let report = f.run(
        r#"
        [[runway]]
        id = "counter"
        agent = "probe"
        action = "count"
        datasets = { test_apps = "shared", test_work = "exclusive" }
        input = { dataset = "test_secret", prefix = "app/" }
        "#,
    );
    let ran = report.get("counter").unwrap();
    assert_eq!(ran.state, State::Succeeded, "{:?}", ran.reason);
    let out = output(&report, "counter");
    // Shared: what is committed. Exclusive: before staging, five; after two
    // new keys, a rewrite, a delete and a key written then deleted, six —
    // what a listing shows too.
    assert_eq!(
        out["held"],
        json!([
            { "dataset": "test_apps", "before": 12, "after": 12, "listed": 12 },
            { "dataset": "test_work", "before": 5, "after": 6, "listed": 6 },
        ]),
        "{out}"
    );
    assert_eq!(
        f.keys("test_work", "app/").len(),
        6,
        "the counted changes landed"
    );

    // A narrower prefix counts only its keys (`app/000010` … `app/000012`).
    let narrow = f.run(
        r#"
        [[runway]]
        id = "narrow"
        agent = "probe"
        action = "count"
        datasets = { test_apps = "shared" }
        input = { prefix = "app/00001" }
        "#,
    );
    let held = &output(&narrow, "narrow")["held"][0];
    assert_eq!((&held["before"], &held["listed"]), (&json!(3), &json!(3)));
}

#[test]
fn a_count_without_a_lock_is_refused_as_a_listing_is_and_audited() {
    let f = Fixture::new();
    seeded(&f);
    let report = f.run(
        r#"
        [[runway]]
        id = "snoop"
        agent = "probe"
        action = "count"
        datasets = { test_apps = "shared" }
        input = { dataset = "test_work" }
        "#,
    );
    let out = output(&report, "snoop");
    let refused = out["unlocked"]["count"].as_str().unwrap();
    assert!(
        refused.starts_with("denied: runway ")
            && refused.ends_with(" holds no lock on dataset test_work"),
        "{out}"
    );
    assert_eq!(
        out["unlocked"]["count"], out["unlocked"]["list"],
        "word for word"
    );

    let records = f.records();
    let calls = counts(&records, "snoop");
    let lines: Vec<String> = calls.iter().map(record_line).collect();
    // Two counts on the held dataset (before and after) and one refused.
    let (ok, denied): (Vec<&Record>, Vec<&Record>) = calls.iter().partition(|r| {
        matches!(
            &r.entry.event,
            Event::Call {
                outcome: Outcome::Ok,
                ..
            }
        )
    });
    assert_eq!((ok.len(), denied.len()), (2, 1), "{lines:#?}");
    for r in &ok {
        assert_eq!(r.entry.dataset.as_deref(), Some("test_apps"));
        let Event::Call { token, key, .. } = &r.entry.event else {
            unreachable!("a call record")
        };
        assert!(token.is_some() && key.is_none(), "{r:?}");
    }
    let Event::Call {
        outcome: Outcome::Denied(why),
        token,
        ..
    } = &denied[0].entry.event
    else {
        unreachable!("a refused call record")
    };
    assert_eq!(token, &None, "a refused call holds no token");
    assert!(refused.ends_with(why.as_str()), "{why} / {refused}");
    assert!(
        records.iter().any(|r| r.entry.runway == "snoop"
            && matches!(&r.entry.event,
                Event::Call { call: Call::List, outcome: Outcome::Denied(w), .. } if w == why)),
        "the refused listing is on the record with the same reason"
    );
    // Rendered as every call is: the call's name, the dataset, the token.
    assert!(
        lines.iter().any(|l| l.contains(" CALL ")
            && l.contains(" count test_apps token ")
            && l.ends_with(" ok")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" DENIED ") && l.contains(" count test_work: runway ")),
        "{lines:#?}"
    );
    assert_eq!(runway_audit::record_json(&calls[0])["call"], "count");
}

#[test]
fn the_python_and_javascript_agents_count_through_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let built = crate::agents::polyglot_plugins(dir.path());
    let mut set = bundled_plugins();
    for agent in ["summary-py", "summary-js"] {
        let wasm = std::fs::read(built.join(format!("{agent}.wasm"))).unwrap();
        let grants = std::fs::read_to_string(built.join(format!("{agent}.toml"))).unwrap();
        let grants = Grants::parse(&grants, agent).unwrap();
        set.insert(&plugins().0, agent, &wasm, grants).unwrap();
    }
    let f = Fixture::with_plugins(2, set);
    seeded(&f);
    let report = f.run(
        r#"
        [[runway]]
        id = "py"
        agent = "summary-py"
        datasets = { test_apps = "shared", test_py = "exclusive" }
        input = { source = "test_apps", target = "test_py" }
        [[runway]]
        id = "js"
        agent = "summary-js"
        datasets = { test_apps = "shared", test_js = "exclusive" }
        input = { source = "test_apps", target = "test_js" }
        "#,
    );
    assert_eq!(report.failed(), 0, "{:?}", report.runways);
    let records = f.records();
    for id in ["py", "js"] {
        assert_eq!(output(&report, id)["records"], 12, "{id}");
        let calls = counts(&records, id);
        assert_eq!(calls.len(), 1, "{id}: one count, however many records");
        assert_eq!(calls[0].entry.dataset.as_deref(), Some("test_apps"));
        assert!(
            matches!(
                &calls[0].entry.event,
                Event::Call {
                    outcome: Outcome::Ok,
                    ..
                }
            ),
            "{id}: {}",
            record_line(&calls[0])
        );
    }
}
