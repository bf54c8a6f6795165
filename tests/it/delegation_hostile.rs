//! Hostile delegation: a fork bomb stops at its tree's descendant budget
//! with a clear reason while the host serves others; a child asking for a
//! dataset outside its own grants is refused; a parent that traps, times
//! out waiting or is cancelled by a person while it waits takes its running
//! children with it; 10,000 children of one parent all run, and the trail
//! holds each once.

use std::time::Duration;

use runway_audit::{Event, State};
use runway_host::controller::{self, Command};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, filing, output};

use crate::delegation::last_state;

/// The orchestrator's own grants, with a deep tree and a small budget.
const SMALL_BUDGET: &str = r#"
[datasets]
"*" = "exclusive"

[delegate]
agents = ["probe", "orchestrator"]
depth = 16
descendants = 50
"#;

#[test]
fn a_fork_bomb_stops_at_its_descendant_budget_while_others_are_served() {
    let f = Fixture::with_grants(&[("orchestrator", SMALL_BUDGET)]);
    let reports = f.run_many(&[
        "[[runway]]\nid = \"bomb\"\nagent = \"orchestrator\"\ninput = { bomb = 2 }\n",
        "[[runway]]\nid = \"bystander\"\nagent = \"import-applications\"\ndatasets = { test_bystander = \"exclusive\" }\ninput = { count = 50 }\n",
    ]);
    assert_eq!(reports[0].get("bomb").unwrap().state, State::Succeeded);
    let bystander = reports[1].get("bystander").unwrap();
    assert_eq!(bystander.state, State::Succeeded, "{:?}", bystander.reason);
    assert_eq!(f.keys("test_bystander", "app/").len(), 50);
    let records = f.records();
    let filed = records
        .iter()
        .filter(|r| {
            r.entry.runway.starts_with("bomb.") && matches!(r.entry.event, Event::Filing { .. })
        })
        .count();
    assert_eq!(filed, 50, "exactly the budget of runways below the root");
    let refused = records.iter().any(|r| match &r.entry.event {
        Event::Call { outcome, .. } => outcome.reason().is_some_and(|m| {
            m == "descendants: the tree of bomb has 50 runways below its root, its grants allow 50"
        }),
        _ => false,
    });
    assert!(refused, "a delegation past the budget says so");
}

#[test]
fn a_child_never_gets_a_dataset_outside_its_own_grants() {
    let f = Fixture::with_grants(&[("probe", "[datasets]\n\"test_*\" = \"exclusive\"\n")]);
    let report = f.run(
        r#"
        [[runway]]
        id = "asker"
        agent = "orchestrator"
        input = { children = [{ agent = "probe", action = "locks", locks = [["secret_payroll", "shared"]] }] }
        "#,
    );
    let out = output(&report, "asker");
    let said = out["delegated"][0].as_str().unwrap();
    assert!(
        said.starts_with("denied:") && said.contains("secret_payroll"),
        "{said}"
    );
    assert!(f.records().iter().all(|r| r.entry.runway != "asker.1"));
}

#[test]
fn a_parent_that_traps_or_times_out_waiting_takes_its_children_with_it() {
    let f = Fixture::with_workers(3);
    let report = f.run(
        r#"
        [[runway]]
        id = "trapper"
        agent = "orchestrator"
        input = { join = "none", trap = true, children = [{ agent = "probe", action = "slow-first" }] }

        [[runway]]
        id = "sleeper"
        agent = "orchestrator"
        window = "1s"
        input = { children = [{ agent = "probe", action = "slow-first" }] }
        "#,
    );
    let trapper = report.get("trapper").unwrap();
    assert_eq!(trapper.state, State::Failed);
    assert!(
        trapper.reason.as_deref().unwrap().contains("trap"),
        "{:?}",
        trapper.reason
    );
    let sleeper = report.get("sleeper").unwrap();
    assert_eq!(sleeper.state, State::TimedOut, "{:?}", sleeper.reason);
    let records = f.records();
    assert_eq!(last_state(&records, "trapper.1"), State::Cancelled);
    assert_eq!(last_state(&records, "sleeper.1"), State::Cancelled);
}

#[test]
fn a_parent_cancelled_while_it_waits_takes_its_children_with_it() {
    let f = Fixture::with_workers(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let plan = f.plan(
        r#"
        [[runway]]
        id = "waiter"
        agent = "orchestrator"
        input = { children = [{ agent = "probe", action = "slow-first" }] }
        "#,
    );
    let state = rt.block_on(async {
        let (c, task) =
            controller::start(f.host.clone(), runway_host::DispatchOptions::default()).unwrap();
        c.file(filing(plan)).await.unwrap();
        // Once the child runs, the parent waits on it, holding no worker.
        loop {
            let child = c.show("waiter.1").await;
            if child.is_ok_and(|r| r.state == State::Running) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dave = Caller::new("dave", [Role::Operator]);
        c.send(Command::Cancel {
            runway: "waiter".into(),
            by: dave,
        })
        .await
        .unwrap();
        let ended = c
            .wait(vec!["waiter".into(), "waiter.1".into()])
            .await
            .unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        ended
            .into_iter()
            .map(|r| (r.state, r.reason))
            .collect::<Vec<_>>()
    });
    assert_eq!(state[0].0, State::Cancelled, "{state:?}");
    assert_eq!(state[1].0, State::Cancelled, "{state:?}");
    let why = state[1].1.as_deref().unwrap();
    assert!(why.contains("its parent waiter's attempt 1 ended"), "{why}");
}

#[test]
fn ten_thousand_children_of_one_parent_all_run_once() {
    let f = Fixture::with_workers(2);
    let report = f.run(
        r#"
        [[runway]]
        id = "crowd"
        agent = "orchestrator"
        input = { count = 10000, tally = true }
        "#,
    );
    let crowd = report.get("crowd").unwrap();
    assert_eq!(crowd.state, State::Succeeded, "{:?}", crowd.reason);
    let out = output(&report, "crowd");
    assert_eq!(
        out["results"],
        serde_json::json!({ "succeeded": 10000 }),
        "{}",
        out["join"]
    );
    let records = f.records();
    let started = records
        .iter()
        .filter(|r| {
            r.entry.runway.starts_with("crowd.") && matches!(r.entry.event, Event::Started { .. })
        })
        .count();
    assert_eq!(started, 10000, "each child ran once");
}

/// The orchestrator's own grants with a tree budget (`tree_fuel = 1` or
/// `tree_wall_secs = 1`).
fn budgeted(budget: &str) -> String {
    format!(
        "[datasets]\n\"*\" = \"exclusive\"\n\n[delegate]\nagents = [\"probe\", \"orchestrator\"]\n{budget}\n"
    )
}

#[test]
fn a_tree_lives_within_its_roots_fuel() {
    let f = Fixture::with_grants(&[("orchestrator", &budgeted("tree_fuel = 1"))]);
    let report = f.run("[[runway]]\nid = \"frugal\"\nagent = \"orchestrator\"\ninput = { count = 3, tally = true }\n");
    // One unit of fuel for the whole tree: the first child runs out at
    // once; the others never start, or are not even filed, depending on
    // whether the parent was still delegating when the fuel went.
    let out = output(&report, "frugal");
    let delegated = out["delegated"].as_array().unwrap();
    let filed = delegated
        .iter()
        .filter(|d| d.as_str().unwrap().starts_with("frugal."))
        .count();
    assert_eq!(
        out["results"],
        serde_json::json!({ "failed": filed }),
        "{out}"
    );
    let refused: Vec<&str> = delegated
        .iter()
        .map(|d| d.as_str().unwrap())
        .filter(|d| !d.starts_with("frugal."))
        .collect();
    let spent = "the tree of frugal: its tree_fuel is used up";
    assert!(
        refused
            .iter()
            .all(|r| *r == format!("limit: budget: {spent}")),
        "{refused:?}"
    );
    let records = f.records();
    let reasons: Vec<String> = records
        .iter()
        .filter(|r| r.entry.runway.starts_with("frugal."))
        .filter_map(|r| match &r.entry.event {
            Event::Failed { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    let burnt = reasons
        .iter()
        .filter(|r| *r == "CPU budget exhausted: fuel 1 used up");
    assert_eq!(burnt.count(), 1, "{reasons:?}");
    let not_started = reasons
        .iter()
        .filter(|r| **r == format!("not started: {spent}"));
    assert_eq!(
        not_started.count() + refused.len(),
        2,
        "{reasons:?} {refused:?}"
    );
}

#[test]
fn a_tree_lives_within_its_roots_wall_time() {
    let f = Fixture::with_grants(&[("orchestrator", &budgeted("tree_wall_secs = 1"))]);
    let report = f.run("[[runway]]\nid = \"hasty\"\nagent = \"orchestrator\"\ninput = { children = [{ agent = \"probe\", action = \"slow-first\" }] }\n");
    // One second for the whole tree: the sleeper's own 60 s window is cut
    // to what is left of it.
    let out = output(&report, "hasty");
    assert_eq!(out["results"][0]["state"], "timed-out", "{out}");
    assert_eq!(
        out["results"][0]["reason"], "timed out: wall-clock window of 1 s exceeded",
        "{out}"
    );
}
