//! Outputs that flow and conditions, end to end with real components
//! (`orchestrator` returns the JSON its input's `output` holds, references
//! resolved): whole outputs and fields passed by value, with their digests
//! on the trail (PASSED); a missing output or path fails a runway before it
//! starts, naming them; a reference outside `after` and a condition that
//! does not parse are refused at filing; a condition's decision is a record
//! (DECIDED) with the outputs it read; false skips a runway, whose
//! dependents go on unless their own condition asks `!skipped(...)`;
//! routing is two branches with opposite conditions; a restart resolves
//! the very same input.

use runway_audit::{Event, PassedOutput, Record, State, sha256};
use runway_host::DispatchOptions;
use runway_host::controller::{self, Command};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, filing, output};
use serde_json::{Value, json};

/// The PASSED records of `runway`: (outputs passed, input digest).
fn passed(records: &[Record], runway: &str) -> Vec<(Vec<PassedOutput>, [u8; 32])> {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .filter_map(|r| match &r.entry.event {
            Event::Passed { inputs, input } => Some((inputs.clone(), *input)),
            _ => None,
        })
        .collect()
}

/// The DECIDED records of `runway`: (expression, outputs read, value).
fn decided(records: &[Record], runway: &str) -> Vec<(String, Vec<PassedOutput>, String)> {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .filter_map(|r| match &r.entry.event {
            Event::Decided {
                expression,
                read,
                value,
            } => Some((expression.clone(), read.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// Whether `runway` ever started a run.
fn started(records: &[Record], runway: &str) -> bool {
    records
        .iter()
        .any(|r| r.entry.runway == runway && matches!(r.entry.event, Event::Started { .. }))
}

/// Why runway `id` of `report` FAILED (it must have).
fn failed_for(report: &runway_host::PlanReport, id: &str) -> String {
    let r = report.get(id).unwrap();
    assert_eq!(r.state, State::Failed, "{id}: {:?}", r.reason);
    r.reason.clone().unwrap()
}

/// The digest its SUCCEEDED record gives `runway`'s output.
fn output_digest(records: &[Record], runway: &str) -> [u8; 32] {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .find_map(|r| match r.entry.event {
            Event::Succeeded { output } => Some(output),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{runway} did not succeed"))
}

/// The sources: `score` returns a nested object, `import` a list.
const SOURCES: &str = r#"
[[runway]]
id = "score"
agent = "orchestrator"
input = { output = { risk = { level = 7, tags = ["a", "b"] }, name = "s" } }
[[runway]]
id = "import"
agent = "orchestrator"
input = { output = [1, 2, 3] }
"#;

#[test]
fn whole_outputs_and_fields_flow_by_value_with_their_digests_on_the_trail() {
    let f = Fixture::new();
    let report = f.run(&format!(
        r#"{SOURCES}
        [[runway]]
        id = "use"
        agent = "orchestrator"
        after = ["score", "import"]
        input = {{ output = {{ apps = {{ from = "import" }}, level = {{ from = "score", path = "risk.level" }}, tag = {{ from = "score", path = "risk.tags.1" }}, deep = [{{ whole = {{ from = "score" }} }}], threshold = 3 }} }}
        "#
    ));
    let expected = json!({
        "apps": [1, 2, 3],
        "level": 7,
        "tag": "b",
        "deep": [{"whole": {"risk": {"level": 7, "tags": ["a", "b"]}, "name": "s"}}],
        "threshold": 3,
    });
    assert_eq!(output(&report, "use"), expected);
    let records = f.records();
    let passed = passed(&records, "use");
    assert_eq!(passed.len(), 1, "{passed:?}");
    let (inputs, input) = &passed[0];
    let mut got: Vec<(String, String, [u8; 32])> = inputs
        .iter()
        .map(|p| (p.runway.clone(), p.path.clone(), p.digest))
        .collect();
    got.sort();
    let (score, import) = (
        output_digest(&records, "score"),
        output_digest(&records, "import"),
    );
    let mut want = vec![
        ("import".to_string(), String::new(), import),
        ("score".to_string(), "risk.level".to_string(), score),
        ("score".to_string(), "risk.tags.1".to_string(), score),
        ("score".to_string(), String::new(), score),
    ];
    want.sort();
    assert_eq!(got, want);
    // The digest is of the input the run was handed: its `output`, the
    // resolved tree, came back as its output.
    let handed = json!({ "output": expected });
    assert_eq!(*input, sha256(serde_json::to_vec(&handed).unwrap()));
    // The FILING record keeps the references as filed.
    let filing = records
        .iter()
        .find_map(|r| match &r.entry.event {
            Event::Filing { input, .. } if r.entry.runway == "use" => Some(input.clone()),
            _ => None,
        })
        .unwrap();
    let filed: Value = serde_json::from_slice(&filing).unwrap();
    assert_eq!(filed["output"]["apps"], json!({"from": "import"}));
    // PASSED comes before the run is cleared.
    let at = |pred: &dyn Fn(&Event) -> bool| {
        records
            .iter()
            .position(|r| r.entry.runway == "use" && pred(&r.entry.event))
            .unwrap()
    };
    assert!(
        at(&|e| matches!(e, Event::Passed { .. })) < at(&|e| matches!(e, Event::Cleared { .. }))
    );
}

#[test]
fn a_missing_output_or_path_fails_the_runway_before_it_starts_naming_both() {
    let f = Fixture::new();
    let report = f.run(&format!(
        r#"{SOURCES}
        [[runway]]
        id = "text"
        agent = "orchestrator"
        input = {{ raw = "plain words" }}
        [[runway]]
        id = "gate"
        agent = "orchestrator"
        when = "false"
        [[runway]]
        id = "no-path"
        agent = "orchestrator"
        after = ["score"]
        input = {{ output = {{ r = {{ from = "score", path = "risk.nope" }} }} }}
        [[runway]]
        id = "no-index"
        agent = "orchestrator"
        after = ["import"]
        input = {{ output = {{ r = {{ from = "import", path = "7" }} }} }}
        [[runway]]
        id = "not-json"
        agent = "orchestrator"
        after = ["text"]
        input = {{ output = {{ r = {{ from = "text" }} }} }}
        [[runway]]
        id = "from-skipped"
        agent = "orchestrator"
        after = ["gate"]
        input = {{ output = {{ r = {{ from = "gate" }} }} }}
        "#
    ));
    let reason = |id: &str| failed_for(&report, id);
    assert_eq!(
        reason("no-path"),
        "input: the output of score has no \"risk.nope\" (no \"nope\" there)"
    );
    assert_eq!(
        reason("no-index"),
        "input: the output of import has no \"7\" (no \"7\" there)"
    );
    assert!(
        reason("not-json").starts_with("input: the output of text is missing: it is not JSON"),
        "{}",
        reason("not-json")
    );
    assert_eq!(
        reason("from-skipped"),
        "input: the output of gate is missing: it was skipped"
    );
    let records = f.records();
    for id in ["no-path", "no-index", "not-json", "from-skipped"] {
        assert!(!started(&records, id), "{id} started");
        assert!(passed(&records, id).is_empty(), "{id} passed something");
    }
}

#[test]
fn a_reference_outside_after_and_a_condition_that_does_not_parse_are_refused_at_filing() {
    let f = Fixture::new();
    let refused = |text: &str| {
        let plan = format!("{SOURCES}\n{text}");
        runway_host::Plan::parse(&plan, &*f.host.plugins())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused(
            r#"[[runway]]
            id = "use"
            agent = "orchestrator"
            after = ["import"]
            input = { r = { from = "score", path = "risk" } }"#
        ),
        "runway \"use\": input takes the output of \"score\", which is not in its `after`"
    );
    let parse = refused(
        r#"[[runway]]
        id = "use"
        agent = "orchestrator"
        after = ["score"]
        when = "outputs.score.risk >""#,
    );
    assert!(
        parse.starts_with("runway \"use\": when does not parse: "),
        "{parse}"
    );
}

#[test]
fn two_branches_with_opposite_conditions_route_and_each_decision_is_a_record() {
    let f = Fixture::new();
    let report = f.run(&format!(
        r#"{SOURCES}
        [[runway]]
        id = "appeal"
        agent = "orchestrator"
        after = ["score"]
        when = "outputs.score.risk.level > input.output.threshold"
        input = {{ output = {{ branch = "appeal", threshold = 5 }} }}
        [[runway]]
        id = "approve"
        agent = "orchestrator"
        after = ["score"]
        when = "!(outputs.score.risk.level > 5)"
        input = {{ output = {{ branch = "approve" }} }}
        [[runway]]
        id = "notify"
        agent = "orchestrator"
        after = ["appeal", "approve"]
        input = {{ output = {{ done = true }} }}
        "#
    ));
    assert_eq!(
        output(&report, "appeal"),
        json!({"branch": "appeal", "threshold": 5})
    );
    let approve = report.get("approve").unwrap();
    assert_eq!(approve.state, State::Skipped);
    assert_eq!(
        approve.reason.as_deref(),
        Some("its condition is false: !(outputs.score.risk.level > 5)")
    );
    // A skipped dependency is done: the join after both branches runs.
    assert_eq!(report.get("notify").unwrap().state, State::Succeeded);
    assert_eq!(report.failed(), 0, "a skipped runway is not a failure");
    let records = f.records();
    assert!(!started(&records, "approve"));
    let score = output_digest(&records, "score");
    let read = vec![PassedOutput {
        runway: "score".into(),
        path: String::new(),
        digest: score,
    }];
    assert_eq!(
        decided(&records, "appeal"),
        [(
            "outputs.score.risk.level > input.output.threshold".to_string(),
            read.clone(),
            "true".to_string()
        )]
    );
    assert_eq!(
        decided(&records, "approve"),
        [(
            "!(outputs.score.risk.level > 5)".to_string(),
            read,
            "false".to_string()
        )]
    );
    assert!(decided(&records, "notify").is_empty());
}

#[test]
fn a_condition_that_fails_to_evaluate_or_is_not_a_bool_fails_the_runway_naming_why() {
    let f = Fixture::new();
    let report = f.run(&format!(
        r#"{SOURCES}
        [[runway]]
        id = "no-field"
        agent = "orchestrator"
        after = ["score"]
        when = "outputs.score.nope > 1"
        [[runway]]
        id = "a-number"
        agent = "orchestrator"
        after = ["score"]
        when = "outputs.score.risk.level"
        [[runway]]
        id = "a-stranger"
        agent = "orchestrator"
        after = ["score"]
        when = "skipped('import')"
        "#
    ));
    let reason = |id: &str| failed_for(&report, id);
    let no_field = reason("no-field");
    assert!(
        no_field.starts_with("its condition outputs.score.nope > 1 failed: ")
            && no_field.contains("nope"),
        "{no_field}"
    );
    assert_eq!(
        reason("a-number"),
        "its condition outputs.score.risk.level failed: gave 7, not a bool"
    );
    assert!(
        reason("a-stranger").contains("\"import\" is not a runway it runs after"),
        "{}",
        reason("a-stranger")
    );
    let records = f.records();
    let (_, _, value) = &decided(&records, "a-number")[0];
    assert_eq!(value, "gave 7, not a bool");
    for id in ["no-field", "a-number", "a-stranger"] {
        assert!(!started(&records, id), "{id} started");
    }
}

#[test]
fn skipped_travels_through_not_skipped_and_stops_where_no_condition_asks() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "gate"
        agent = "orchestrator"
        when = "1 > 2"
        [[runway]]
        id = "follow"
        agent = "orchestrator"
        after = ["gate"]
        when = "!skipped('gate')"
        [[runway]]
        id = "follow-on"
        agent = "orchestrator"
        after = ["follow"]
        when = "!skipped('follow')"
        [[runway]]
        id = "plain"
        agent = "orchestrator"
        after = ["gate"]
        input = { output = { ran = true } }
        [[runway]]
        id = "after-chain"
        agent = "orchestrator"
        after = ["follow-on"]
        when = "!('follow-on' in outputs)"
        input = { output = { ran = true } }
        "#,
    );
    let state = |id: &str| report.get(id).unwrap().state;
    assert_eq!(state("gate"), State::Skipped);
    assert_eq!(state("follow"), State::Skipped);
    assert_eq!(state("follow-on"), State::Skipped);
    assert_eq!(output(&report, "plain"), json!({"ran": true}));
    assert_eq!(output(&report, "after-chain"), json!({"ran": true}));
    let records = f.records();
    for id in ["gate", "follow", "follow-on"] {
        assert!(!started(&records, id), "{id} started");
    }
    // A condition with no dependencies is read at once.
    assert_eq!(decided(&records, "gate")[0].2, "false");
}

#[test]
fn a_restart_resolves_the_same_input_from_the_outputs_on_the_trail() {
    let f = Fixture::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sources = f.plan(SOURCES);
    // Filed after its sources landed, so their outputs are kept on the
    // trail only once it reads them; it waits for approval after its
    // input was resolved.
    let reader = f.plan(
        r#"
        [[runway]]
        id = "use"
        agent = "orchestrator"
        after = ["score", "import"]
        approval = { required = true }
        when = "size(outputs.import) == 3"
        input = { output = { level = { from = "score", path = "risk.level" }, apps = { from = "import" } } }
        "#,
    );
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        controller::file_and_wait(&c, filing(sources))
            .await
            .unwrap();
        c.file(filing(reader)).await.unwrap();
        let mut waits = false;
        for _ in 0..1000 {
            waits = c.show("use").await.unwrap().state == State::WaitingApproval;
            if waits {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(waits, "use waits for approval");
        c.stop(false);
        task.await.unwrap().unwrap();
    });
    let before = passed(&f.records(), "use");
    assert_eq!(before.len(), 1);
    let f = f.reopen();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        assert_eq!(c.show("use").await.unwrap().decided, Some(true));
        c.send(Command::Approve {
            runway: "use".into(),
            by: Caller::new("alice", [Role::Admin]),
            note: String::new(),
        })
        .await
        .unwrap();
        let report = c.wait(vec!["use".into()]).await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        report
    });
    assert_eq!(report[0].state, State::Succeeded, "{:?}", report[0].reason);
    let out: Value = serde_json::from_slice(report[0].output.as_ref().unwrap()).unwrap();
    assert_eq!(out, json!({"level": 7, "apps": [1, 2, 3]}));
    // Resolved again at take-off from the RETURNED records: the same
    // outputs, the same input digest.
    let records = f.records();
    let after = passed(&records, "use");
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0], after[1]);
    assert_eq!(after[0], before[0]);
    for id in ["score", "import"] {
        let returned = records
            .iter()
            .filter(|r| r.entry.runway == id && matches!(r.entry.event, Event::Returned { .. }));
        assert_eq!(returned.count(), 1, "{id}'s output kept once");
    }
}

/// The same across `kill -9` of a serving host, through its doors: the
/// reader waits for approval with its input resolved when the host is
/// killed; the next host resolves the same input at take-off (same
/// digest), and `show` gives its condition, what it decided and where its
/// input comes from.
#[test]
fn kill_9_of_a_serving_host_resolves_the_same_input_and_show_tells_the_flow() {
    let dir = crate::server::folders();
    runway_tests::drop_plugin("orchestrator", &dir.path().join("plugins"));
    let server = crate::server::Server::start(dir.path());
    let reader = r#"
        [[runway]]
        id = "use"
        agent = "orchestrator"
        after = ["score", "import"]
        approval = { required = true }
        when = "outputs.score.risk.level > 5"
        input = { output = { level = { from = "score", path = "risk.level" }, apps = { from = "import" } } }
        "#;
    server.file(&format!("{SOURCES}\n{reader}"));
    runway_tests::eventually("use waits for approval", || {
        server.json(&["show", "use"])["state"] == "WAITING_APPROVAL"
    });
    server.kill();
    let before = passed(&crate::restart::read_verified(dir.path()), "use");
    assert_eq!(before.len(), 1, "{before:?}");

    let server = crate::server::Server::start(dir.path());
    let shown = server.json(&["show", "use"]);
    assert_eq!(shown["when"], "outputs.score.risk.level > 5", "{shown}");
    assert_eq!(shown["decided"], true, "{shown}");
    assert_eq!(shown["takes_from"], json!(["score", "import"]), "{shown}");
    let human = server.client(&["show", "use"]);
    assert!(
        human
            .stdout
            .contains("when     outputs.score.risk.level > 5 → true: it went on"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("input    takes the output of score, import"),
        "{}",
        human.stdout
    );
    let alice = server.token("alice", &["approver"]);
    let approved = server.client_as(&alice, &["approve", "use"]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let out = server.client(&["wait", "--timeout-secs", "60", "--json", "use"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let shown = server.json(&["show", "use"]);
    assert_eq!(shown["state"], "SUCCEEDED", "{shown}");
    let output: Value = serde_json::from_str(shown["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"level": 7, "apps": [1, 2, 3]}));
    assert_eq!(server.stop(), Some(0));
    let after = passed(&crate::restart::read_verified(dir.path()), "use");
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0], before[0]);
    assert_eq!(
        after[1], before[0],
        "the same outputs, the same input digest"
    );
}
