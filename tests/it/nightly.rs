//! The nightly student-aid plan end to end: records imported, checked,
//! awarded; counts agree; each step ran only after the one before it.

use runway_audit::Event;
use runway_host::State;
use runway_tests::{Fixture, is, output, position};

const DS: &str = "fafsa_2024_03_16";

fn nightly(count: u32) -> String {
    format!(
        r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = {{ {DS} = "exclusive" }}
        input = {{ count = {count}, seed = 7 }}

        [[runway]]
        id = "compliance"
        agent = "compliance-check"
        datasets = {{ {DS} = "exclusive" }}
        after = ["import"]

        [[runway]]
        id = "awards"
        agent = "grant-calculator"
        datasets = {{ {DS} = "exclusive" }}
        after = ["compliance"]
        "#
    )
}

#[test]
fn nightly_plan_imports_checks_and_awards() {
    let f = Fixture::new();
    let report = f.run(&nightly(500));
    for r in &report.runways {
        assert_eq!(r.state, State::Succeeded, "{}", r.id);
    }

    assert_eq!(output(&report, "import")["written"], 500);
    assert_eq!(f.keys(DS, "app/").len(), 500);

    let checked = output(&report, "compliance");
    let passed = checked["passed"].as_u64().unwrap();
    assert_eq!(checked["checked"], 500);
    assert_eq!(passed + checked["failed"].as_u64().unwrap(), 500);
    assert!(
        passed > 0 && passed < 500,
        "rules should pass some and fail some: {passed}"
    );
    let flags = f.keys(DS, "compliance/");
    assert_eq!(flags.len(), 500);
    let passed_flags = flags
        .iter()
        .filter(|k| f.json(DS, k)["passed"] == true)
        .count();
    assert_eq!(passed_flags as u64, passed);

    // One award record per application that passed; `awarded` counts the non-zero ones.
    let awards = f.keys(DS, "award/");
    let granted = output(&report, "awards");
    assert_eq!(awards.len() as u64, passed);
    assert_eq!(granted["considered"].as_u64().unwrap(), passed);
    let amounts: Vec<u64> = awards
        .iter()
        .map(|k| f.json(DS, k)["amount"].as_u64().unwrap())
        .collect();
    let nonzero = amounts.iter().filter(|&&a| a > 0).count() as u64;
    assert_eq!(granted["awarded"].as_u64().unwrap(), nonzero);
    assert!(nonzero > 0);
    assert_eq!(
        granted["total"].as_u64().unwrap(),
        amounts.iter().sum::<u64>()
    );
    // Only applications that passed compliance get an award.
    for k in &awards {
        let id = k.strip_prefix("award/").unwrap();
        assert_eq!(
            f.json(DS, &format!("compliance/{id}"))["passed"],
            true,
            "{k}"
        );
    }
}

#[test]
fn each_step_starts_only_after_the_one_before_succeeded() {
    let f = Fixture::with_workers(4);
    let report = f.run(&nightly(50));
    assert_eq!(report.failed(), 0);
    let records = f.records();
    let succeeded = |id: &'static str| {
        position(&records, |r| {
            is(r, id, |e| matches!(e, Event::Succeeded { .. }))
        })
    };
    let started = |id: &'static str| {
        position(&records, |r| {
            is(r, id, |e| matches!(e, Event::Started { .. }))
        })
    };
    let first_call =
        |id: &'static str| position(&records, |r| is(r, id, |e| matches!(e, Event::Call { .. })));
    assert!(succeeded("import") < started("compliance"));
    assert!(succeeded("compliance") < started("awards"));
    assert!(succeeded("import") < first_call("compliance"));
    // Every state change of the import is on the record, in order.
    let import: Vec<&str> = records
        .iter()
        .filter(|r| r.entry.runway == "import" && !matches!(r.entry.event, Event::Call { .. }))
        .map(|r| event_name(&r.entry.event))
        .collect();
    assert_eq!(
        import,
        [
            "filed",
            "WAITING_LOCKS",
            "cleared",
            "granted",
            "started",
            "committing",
            "committed",
            "cost",
            "succeeded",
            "released"
        ]
    );
}

#[test]
fn a_failed_runway_fails_its_dependents_with_a_reason() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "broken"
        agent = "probe"
        action = "fail"
        [[runway]]
        id = "next"
        agent = "probe"
        action = "ok"
        after = ["broken"]
        [[runway]]
        id = "after-next"
        agent = "probe"
        action = "ok"
        after = ["next"]
        [[runway]]
        id = "independent"
        agent = "probe"
        action = "ok"
        "#,
    );
    let state = |id| {
        let r = report.get(id).unwrap();
        (r.state, r.reason.clone())
    };
    assert!(
        matches!(state("broken"), (State::Failed, Some(why)) if why.contains("agent returned error"))
    );
    assert_eq!(
        state("next"),
        (State::Failed, Some("dependency broken failed".into()))
    );
    assert_eq!(
        state("after-next"),
        (State::Failed, Some("dependency next failed".into()))
    );
    assert_eq!(state("independent"), (State::Succeeded, None));
    let records = f.records();
    assert!(records.iter().any(|r| is(
        r,
        "after-next",
        |e| matches!(e, Event::Failed { reason } if reason == "dependency next failed")
    )));
    assert!(
        !records
            .iter()
            .any(|r| is(r, "next", |e| matches!(e, Event::Started { .. })))
    );
}

#[test]
fn a_trapping_agent_fails_and_its_writes_are_discarded() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "trap"
        agent = "probe"
        action = "trap"
        datasets = { test_scratch = "exclusive" }
        "#,
    );
    let r = report.get("trap").unwrap();
    assert!(
        matches!((r.state, &r.reason), (State::Failed, Some(why)) if why.contains("trapped")),
        "{:?}",
        r.reason
    );
    assert_eq!(f.host.store.len("test_scratch").unwrap(), 0);
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Filed { .. } | Event::FilingV1(_) | Event::Filing { .. } => "filed",
        Event::Rejected { .. } => "rejected",
        Event::Cleared { .. } => "cleared",
        Event::LockGranted { .. } => "granted",
        Event::Started { .. } => "started",
        Event::Call { .. } => "call",
        Event::Committed { .. } => "committed",
        Event::LockReleased { .. } => "released",
        Event::Succeeded { .. } => "succeeded",
        Event::Failed { .. } => "failed",
        Event::PluginLoaded => "plugin-loaded",
        Event::PluginUnloaded => "plugin-unloaded",
        Event::Committing { .. } => "committing",
        Event::Recovered { .. } => "recovered",
        Event::Moved { to, .. } => to.name(),
        Event::Paused { .. } => "paused",
        Event::Resumed { .. } => "resumed",
        Event::PlanFiled { .. } => "plan-filed",
        Event::Joined { .. } => "joined",
        Event::Returned { .. } => "returned",
        Event::Published { .. } => "published",
        Event::Cost { .. } => "cost",
        Event::Passed { .. } => "passed",
        Event::Decided { .. } => "decided",
        Event::BreakerMoved { .. } => "breaker",
        Event::Routed { .. } => "routed",
        Event::TriggerFiled { .. }
        | Event::TriggerPaused { .. }
        | Event::TriggerResumed { .. }
        | Event::TriggerRemoved { .. }
        | Event::TriggerFired { .. }
        | Event::TriggerChainCut { .. } => "trigger",
        Event::Leading { .. } => "leading",
        Event::Abandoned { .. } => "abandoned",
    }
}
