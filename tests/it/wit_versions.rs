//! The host serves components built against every released version of
//! `runway:agent`: the probe as built against `@0.1.0` (committed, never
//! rebuilt: tests/fixtures/agent-0.1.0) keeps running unchanged — its
//! dataset calls checked, audited and refused as today's are — however the
//! package grows.

use std::path::Path;

use runway_audit::{Call, Event, Outcome};
use runway_host::Grants;
use runway_tests::{Fixture, bundled_plugins, output, plugins};

#[test]
fn a_component_built_against_0_1_0_still_runs() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agent-0.1.0/probe.wasm");
    let wasm = std::fs::read(&fixture).expect("the 0.1.0 component");
    let grants = Grants::parse(
        "[datasets]\n\"test_*\" = \"exclusive\"\n",
        "grants of the 0.1.0 probe",
    )
    .unwrap();
    let mut set = bundled_plugins();
    set.insert(&plugins().0, "probe-0-1-0", &wasm, grants)
        .expect("a 0.1.0 component loads");
    let f = Fixture::with_plugins(2, set);
    let report = f.run(
        r#"
        [[runway]]
        id = "old-ok"
        agent = "probe-0-1-0"
        action = "ok"
        [[runway]]
        id = "old-locks"
        agent = "probe-0-1-0"
        action = "locks"
        datasets = { test_b = "shared", test_a = "exclusive" }
        [[runway]]
        id = "old-all"
        agent = "probe-0-1-0"
        action = "all"
        datasets = { test_a = "exclusive", test_b = "shared" }
        input = { dataset = "test_elsewhere" }
        "#,
    );
    assert_eq!(report.failed(), 0, "{:?}", report.runways);
    // Its context calls answer as they did: the locks in manifest order,
    // each with its fencing token.
    let locks = output(&report, "old-locks");
    let told: Vec<&str> = locks
        .as_array()
        .expect("a list")
        .iter()
        .map(|l| l["dataset"].as_str().unwrap())
        .collect();
    assert_eq!(told, ["test_b", "test_a"]);
    assert!(locks[0]["token"].as_u64().is_some(), "{locks}");
    // Its forbidden dataset calls are refused and on the record.
    let refused = f
        .records()
        .into_iter()
        .filter(|r| r.entry.runway == "old-all")
        .filter(|r| {
            matches!(
                &r.entry.event,
                Event::Call { call: Call::Read | Call::Write | Call::List | Call::Delete, outcome, .. }
                    if *outcome != Outcome::Ok
            )
        })
        .count();
    assert!(refused > 0, "the 0.1.0 probe's forbidden calls are refused");
}
