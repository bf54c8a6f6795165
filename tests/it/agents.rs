//! Agent authors' side: the SDK's native test harness and the real host
//! agree on the same agent (`plugins/summary`): same output, same record
//! written, same log, same denials.

use runway_host::State;
use runway_sdk::LockMode::{Exclusive, Shared};
use runway_sdk::testing::{Run, TestHost};
use runway_tests::{Fixture, output};
use summary::Summary;

/// A host whose `test_apps` holds 25 imported applications.
fn seeded() -> Fixture {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "seed"
        agent = "import-applications"
        datasets = { test_apps = "exclusive" }
        input = { count = 25 }
        "#,
    );
    assert_eq!(report.get("seed").unwrap().state, State::Succeeded);
    f
}

/// The same runway, natively: runway id, input, locks and `test_apps`'s
/// records as the real host has them.
fn native(f: &Fixture, id: &str, locks: &[(&str, runway_sdk::LockMode)]) -> (TestHost, Run) {
    let mut host = TestHost::new()
        .runway(id)
        .input(serde_json::json!({ "source": "test_apps", "target": "test_stats" }));
    for (key, value) in f.snapshot("test_apps") {
        host = host.raw_record("test_apps", &key, &value);
    }
    for &(dataset, mode) in locks {
        host = host.lock(dataset, mode);
    }
    let run = host.run::<Summary>();
    (host, run)
}

fn plan(locks: &str) -> String {
    format!(
        "[[runway]]\nid = \"sum\"\nagent = \"summary\"\ndatasets = {{ {locks} }}\n\
         input = {{ source = \"test_apps\", target = \"test_stats\" }}\n"
    )
}

#[test]
fn the_harness_and_the_host_agree_on_a_run() {
    let f = seeded();
    let report = f.run(&plan(r#"test_apps = "shared", test_stats = "exclusive""#));
    let real = report.get("sum").unwrap();
    assert_eq!(real.state, State::Succeeded, "{:?}", real.reason);

    let (host, run) = native(
        &f,
        &real.id,
        &[("test_apps", Shared), ("test_stats", Exclusive)],
    );
    let counts: serde_json::Value = run.json();
    assert_eq!(counts["records"], 25);
    assert_eq!(output(&report, "sum"), counts, "same output");
    assert_eq!(
        real.output.as_deref(),
        run.output.as_deref().ok(),
        "same bytes"
    );
    assert_eq!(
        f.snapshot("test_stats"),
        [(
            "summary".to_string(),
            host.read("test_stats", "summary").unwrap().to_vec()
        )],
        "same record written"
    );
    let real_log = &real.run.as_ref().expect("its run's report").log.lines;
    let native_log: Vec<String> = run
        .logs
        .iter()
        .map(|(level, m)| format!("{level:?} {m}"))
        .collect();
    assert_eq!(real_log, &native_log, "same log");
}

#[test]
fn the_harness_and_the_host_deny_alike() {
    let f = seeded();
    let cases: [(&str, &[(&str, runway_sdk::LockMode)]); 2] = [
        // No lock on the source: reading it is denied.
        (r#"test_stats = "exclusive""#, &[("test_stats", Exclusive)]),
        // The target held shared: writing it is denied.
        (
            r#"test_apps = "shared", test_stats = "shared""#,
            &[("test_apps", Shared), ("test_stats", Shared)],
        ),
    ];
    for (real_locks, native_locks) in cases {
        let report = f.run(&plan(real_locks));
        let real = report.get("sum").unwrap();
        assert_eq!(real.state, State::Failed, "{real_locks}");
        let (host, run) = native(&f, &real.id, native_locks);
        let denied = run.error();
        assert!(matches!(denied, runway_sdk::Error::Denied(_)), "{denied}");
        assert_eq!(
            real.reason.as_deref(),
            Some(format!("agent returned error: {denied}").as_str()),
            "{real_locks}: the same denial, word for word"
        );
        assert!(
            f.snapshot("test_stats").is_empty(),
            "{real_locks}: nothing landed"
        );
        assert!(
            host.keys("test_stats").is_empty(),
            "{real_locks}: nothing landed natively"
        );
    }
}
