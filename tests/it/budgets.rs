//! Run costs and plan budgets (issue 23, point 6): every attempt's COST
//! record — fuel, wall time, bytes committed — sits right before its end
//! record and says what the run cost; costs are summed per filing (a
//! delegated child counts toward its root's plan); a plan's `[budget]`
//! (`runs`, `fuel`) stops it — the runways not yet cleared end
//! BUDGET_EXHAUSTED naming the budget and what was spent, and nothing
//! runs beyond it — and holds after a restart, which rebuilds the spend
//! from the trail; `wall` counts the runs' wall times; `runway show`
//! shows spend against budget; a delegation tree's `tree_fuel` stays
//! spent across a restart.

use std::time::Duration;

use runway_audit::{Call, Event, Outcome, Record, State};
use runway_host::DispatchOptions;
use runway_host::controller::{self, Command, RunwayReport};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, drop_plugin, filing};

use crate::server::{Server, folders};

/// The COST records of runway `id`, each with the record right after it.
fn costs<'a>(records: &'a [Record], id: &str) -> Vec<(&'a Event, &'a Event)> {
    let own: Vec<&Record> = records.iter().filter(|r| r.entry.runway == id).collect();
    own.windows(2)
        .filter(|w| matches!(w[0].entry.event, Event::Cost { .. }))
        .map(|w| (&w[0].entry.event, &w[1].entry.event))
        .collect()
}

fn started(records: &[Record], id: &str) -> usize {
    let starts = records.iter().filter(|r| r.entry.runway == id);
    starts
        .filter(|r| matches!(r.entry.event, Event::Started { .. }))
        .count()
}

#[test]
fn every_attempt_lands_with_its_cost_right_before_its_end() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "writer"
        agent = "bench"
        action = "touch"
        datasets = { bench_costs = "exclusive" }
        input = { bytes = 100, key = "key-7" }
        [[runway]]
        id = "spinner"
        agent = "bench"
        action = "spin"
        input = { iters = 20000 }
        [[runway]]
        id = "flaky"
        agent = "probe"
        action = "flaky"
        retry = { attempts = 2, initial = "10ms", max = "10ms" }
        [[runway]]
        id = "spoilt"
        agent = "orchestrator"
        datasets = { test_costs = "exclusive" }
        input = { write = ["test_costs", "k", "never"], fail_after_join = true }
        "#,
    );
    let records = f.records();
    let state = |id: &str| report.get(id).unwrap().state;
    assert_eq!(state("writer"), State::Succeeded);
    assert_eq!(state("spinner"), State::Succeeded);
    assert_eq!(state("flaky"), State::Succeeded);
    assert_eq!(state("spoilt"), State::Failed);

    // The writer: its key and value (5 + 100 bytes) committed; its fuel
    // is the run's.
    let writer = report.get("writer").unwrap();
    let [(cost, end)] = costs(&records, "writer")[..] else {
        panic!("one COST for the writer");
    };
    assert!(matches!(end, Event::Succeeded { .. }), "{end:?}");
    let Event::Cost {
        attempt,
        fuel,
        wall_us,
        bytes,
    } = *cost
    else {
        unreachable!()
    };
    let run = writer.run.as_ref().unwrap();
    assert_eq!(attempt, 1);
    assert_eq!(bytes, 105);
    assert!(fuel > 0);
    assert_eq!(fuel, run.fuel_used);
    assert!(wall_us > 0);
    assert_eq!(u128::from(wall_us), run.wall.as_micros());
    assert_eq!(
        (writer.cost.runs, writer.cost.fuel, writer.cost.bytes),
        (1, fuel, 105)
    );
    assert_eq!(writer.cost.wall_us, wall_us);

    // A run that writes nothing costs no bytes; the spinner burns more
    // fuel than the writer.
    let spinner = report.get("spinner").unwrap();
    let [(Event::Cost { fuel, bytes: 0, .. }, _)] = costs(&records, "spinner")[..] else {
        panic!("one COST for the spinner, no bytes");
    };
    assert_eq!(*fuel, spinner.run.as_ref().unwrap().fuel_used);
    assert!(spinner.cost.fuel > writer.cost.fuel);

    // Each attempt has its own, the failed one before its FAILED.
    let flaky = costs(&records, "flaky");
    assert_eq!(flaky.len(), 2);
    assert!(matches!(
        flaky[0],
        (Event::Cost { attempt: 1, .. }, Event::Failed { .. })
    ));
    assert!(matches!(
        flaky[1],
        (Event::Cost { attempt: 2, .. }, Event::Succeeded { .. })
    ));
    assert_eq!(report.get("flaky").unwrap().cost.runs, 2);

    // Staged writes of a run that failed did not commit: 0 bytes.
    let spoilt = costs(&records, "spoilt");
    assert!(
        matches!(
            spoilt[..],
            [(Event::Cost { bytes: 0, .. }, Event::Failed { .. })]
        ),
        "{spoilt:?}"
    );
    assert!(f.keys("test_costs", "").is_empty());

    // The filing's sum is its runways' costs, as every one of them says.
    let total = report.runways.iter().fold((0, 0, 0, 0), |s, r| {
        (
            s.0 + r.cost.runs,
            s.1 + r.cost.fuel,
            s.2 + r.cost.wall_us,
            s.3 + r.cost.bytes,
        )
    });
    assert_eq!(total.0, 5);
    for r in &report.runways {
        let s = r.spent;
        assert_eq!((s.runs, s.fuel, s.wall_us, s.bytes), total, "{}", r.id);
        assert_eq!(r.budget, None);
    }
}

#[test]
fn a_runs_budget_stops_a_plan_and_its_retries() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [budget]
        runs = 2
        [[runway]]
        id = "one"
        agent = "bench"
        action = "noop"
        [[runway]]
        id = "two"
        agent = "bench"
        action = "noop"
        [[runway]]
        id = "three"
        agent = "bench"
        action = "noop"
        [[runway]]
        id = "four"
        agent = "bench"
        action = "noop"
        after = ["three"]
        "#,
    );
    let records = f.records();
    let ran: Vec<&RunwayReport> = report
        .runways
        .iter()
        .filter(|r| r.state == State::Succeeded)
        .collect();
    assert_eq!(ran.len(), 2, "{:?}", report.runways);
    for r in report
        .runways
        .iter()
        .filter(|r| r.state != State::Succeeded)
    {
        assert_eq!(r.state, State::BudgetExhausted, "{}", r.id);
        let why = r.reason.as_deref().unwrap();
        assert_eq!(
            why, "plan budget runs = 2 is spent: 2 runs have taken off",
            "{}",
            r.id
        );
        assert_eq!(started(&records, &r.id), 0, "{} never ran", r.id);
        assert_eq!(r.attempts, 0);
    }
    let starts = records
        .iter()
        .filter(|r| matches!(r.entry.event, Event::Started { .. }))
        .count();
    assert_eq!(starts, 2, "nothing ran beyond the budget");
    assert_eq!(report.runways[0].spent.runs, 2);
    let budget = report.runways[3].budget.unwrap();
    assert_eq!(
        (budget.runs, budget.fuel, budget.wall),
        (Some(2), None, None)
    );

    // A retry that would go past it ends so too.
    let f = Fixture::new();
    let report = f.run(
        r#"
        [budget]
        runs = 1
        [[runway]]
        id = "flaky"
        agent = "probe"
        action = "flaky"
        retry = { attempts = 3, initial = "10ms", max = "10ms" }
        "#,
    );
    let flaky = report.get("flaky").unwrap();
    assert_eq!(flaky.state, State::BudgetExhausted);
    assert_eq!(flaky.attempts, 1);
    assert!(
        flaky
            .reason
            .as_deref()
            .unwrap()
            .contains("runs = 1 is spent")
    );
    assert_eq!(started(&f.records(), "flaky"), 1);
}

#[test]
fn a_fuel_budget_stops_a_plan_once_burnt() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [budget]
        fuel = 1e3
        [[runway]]
        id = "burn"
        agent = "bench"
        action = "spin"
        input = { iters = 20000 }
        [[runway]]
        id = "next"
        agent = "bench"
        action = "spin"
        input = { iters = 20000 }
        after = ["burn"]
        [[runway]]
        id = "last"
        agent = "bench"
        action = "noop"
        after = ["next"]
        "#,
    );
    let burn = report.get("burn").unwrap();
    assert_eq!(burn.state, State::Succeeded);
    let burnt = burn.cost.fuel;
    assert!(burnt > 1000, "{burnt}");
    for id in ["next", "last"] {
        let r = report.get(id).unwrap();
        assert_eq!(r.state, State::BudgetExhausted, "{id}");
        assert_eq!(
            r.reason.as_deref(),
            Some(format!("plan budget fuel = 1000 is spent: its runs burnt {burnt} fuel").as_str())
        );
    }
    let records = f.records();
    assert_eq!(started(&records, "next") + started(&records, "last"), 0);
}

#[test]
fn a_wall_budget_counts_its_runs_wall_time() {
    let f = Fixture::new();
    // A run that commits 200 kB — staged, hashed, written to the store,
    // its COMMITTING made durable first — takes more than a millisecond.
    let report = f.run(
        r#"
        [budget]
        wall = "1ms"
        [[runway]]
        id = "slow"
        agent = "bench"
        action = "touch"
        datasets = { bench_wall = "exclusive" }
        input = { bytes = 200000, key = "k" }
        [[runway]]
        id = "late"
        agent = "bench"
        action = "noop"
        after = ["slow"]
        "#,
    );
    let slow = report.get("slow").unwrap();
    assert_eq!(slow.state, State::Succeeded);
    assert!(slow.cost.wall_us >= 1000, "{:?}", slow.cost);
    let late = report.get("late").unwrap();
    assert_eq!(late.state, State::BudgetExhausted);
    let why = late.reason.as_deref().unwrap();
    let took = why.strip_prefix("plan budget wall = 1ms is spent: its runs took ");
    let secs: f64 = took
        .and_then(|t| t.strip_suffix(" s"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (secs - slow.cost.wall_us as f64 / 1e6).abs() < 0.001,
        "{why}"
    );
}

#[test]
fn a_delegated_childs_cost_counts_toward_its_roots_plan() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [budget]
        runs = 2
        [[runway]]
        id = "root"
        agent = "orchestrator"
        input = { children = [{ agent = "probe", key = "a" }, { agent = "probe", key = "b" }], join = "all" }
        "#,
    );
    let root = report.get("root").unwrap();
    assert_eq!(root.state, State::Succeeded);
    // The root and its first child took off; the second child could not.
    let output: serde_json::Value =
        serde_json::from_slice(root.output.as_deref().unwrap()).unwrap();
    let states: Vec<&str> = output["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "failed"], "{output}");
    let reason = output["results"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("plan budget runs = 2 is spent"), "{reason}");
    assert_eq!(root.spent.runs, 2);
    assert!(root.spent.fuel > root.cost.fuel, "the child's fuel counts");
}

#[test]
fn spend_survives_a_restart_and_the_budget_still_holds() {
    let f = Fixture::new();
    let plan = f.plan(
        r#"
        [budget]
        runs = 2
        wall = "1h"
        [[runway]]
        id = "a"
        agent = "bench"
        action = "touch"
        datasets = { bench_restart = "exclusive" }
        input = { bytes = 10, key = "k" }
        [[runway]]
        id = "b"
        agent = "bench"
        action = "noop"
        approval = { required = true }
        [[runway]]
        id = "c"
        agent = "bench"
        action = "noop"
        after = ["b"]
        "#,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let before = rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        c.file(filing(plan)).await.unwrap();
        c.wait(vec!["a".into()]).await.unwrap();
        let a = c.show("a").await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
        a
    });
    assert_eq!(before.spent.runs, 1);
    assert_eq!(before.spent.bytes, 11);
    assert!(before.spent.fuel > 0 && before.spent.wall_us > 0);
    assert_eq!(before.cost, before.spent);

    let f = f.reopen();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        let a = c.show("a").await.unwrap();
        assert_eq!(a.cost, before.cost, "folded from the trail");
        assert_eq!(a.spent, before.spent);
        let b = c.show("b").await.unwrap();
        assert_eq!(b.spent, before.spent, "one filing, one sum");
        assert_eq!(b.budget, before.budget);
        assert_eq!(b.budget.unwrap().wall, Some(Duration::from_secs(3600)));
        c.send(Command::Approve {
            runway: "b".into(),
            by: Caller::new("alice", [Role::Admin]),
            note: String::new(),
        })
        .await
        .unwrap();
        let ended = c.wait(vec!["b".into(), "c".into()]).await.unwrap();
        assert_eq!(ended[0].state, State::Succeeded);
        assert_eq!(ended[1].state, State::BudgetExhausted);
        let why = ended[1].reason.as_deref().unwrap();
        assert_eq!(why, "plan budget runs = 2 is spent: 2 runs have taken off");
        assert_eq!(ended[1].spent.runs, 2);
        c.stop(false);
        task.await.unwrap().unwrap();
    });

    // Once more: the plan stays spent, nothing is charged twice.
    let f = f.reopen();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        let c_ = c.show("c").await.unwrap();
        assert_eq!(c_.state, State::BudgetExhausted);
        assert_eq!(c_.spent.runs, 2);
        assert_eq!(c_.spent.bytes, 11);
        c.stop(false);
        task.await.unwrap().unwrap();
    });
    assert_eq!(started(&f.records(), "c"), 0);
}

#[test]
fn runway_show_shows_spend_against_budget() {
    let dir = folders();
    drop_plugin("bench", &dir.path().join("plugins"));
    let server = Server::start(dir.path());
    server.file(
        r#"
        [budget]
        runs = 1
        fuel = 1e12
        [[runway]]
        id = "paid"
        agent = "bench"
        action = "touch"
        datasets = { bench_show = "exclusive" }
        input = { bytes = 3, key = "k" }
        [[runway]]
        id = "unpaid"
        agent = "bench"
        action = "noop"
        after = ["paid"]
        "#,
    );
    server.client(&["wait", "paid", "unpaid"]);
    let shown = server.json(&["show", "unpaid"]);
    assert_eq!(shown["state"], "BUDGET_EXHAUSTED");
    assert_eq!(
        shown["budget"],
        serde_json::json!({ "fuel": 1_000_000_000_000u64, "wall_ms": null, "runs": 1 })
    );
    let spent = &shown["spent"];
    assert_eq!(spent["runs"], 1);
    assert_eq!(spent["bytes"], 4);
    let fuel = spent["fuel"].as_u64().unwrap();
    assert!(fuel > 0);
    assert_eq!(shown["cost"]["runs"], 0);

    let text = server.client(&["show", "unpaid"]).stdout;
    let wall = spent["wall_ms"].as_u64().unwrap();
    let line = format!(
        "spent    runs 1 of 1, fuel {fuel} of 1000000000000, wall {wall} ms, 4 bytes written (its filing)"
    );
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("reason   plan budget runs = 1 is spent: 1 runs have taken off"),
        "{text}"
    );
}

/// A delegation tree's budget (its root's `[delegate] tree_fuel`) is
/// rebuilt from the trail's COST records: a root retried after a restart
/// finds its tree's fuel as used up as it left it.
#[test]
fn a_trees_fuel_stays_spent_across_a_restart() {
    let grants =
        "[datasets]\n\"*\" = \"exclusive\"\n\n[delegate]\nagents = [\"probe\"]\ntree_fuel = 1\n";
    let f = Fixture::with_grants(&[("orchestrator", grants)]);
    // Its child runs out of the tree's one unit of fuel; it traps after
    // the join, and retries an hour later.
    let plan = f.plan(
        r#"
        [[runway]]
        id = "root"
        agent = "orchestrator"
        input = { children = [{ agent = "probe", key = "a" }], trap = true }
        retry = { attempts = 2, initial = "1h", max = "1h" }
        "#,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        c.file(filing(plan)).await.unwrap();
        loop {
            let root = c.show("root").await.unwrap();
            if root.state == State::Queued && root.attempts == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        c.stop(false);
        task.await.unwrap().unwrap();
    });
    let children = |records: &[Record]| {
        let filed = records
            .iter()
            .filter(|r| r.entry.runway.starts_with("root."));
        filed
            .filter(|r| matches!(r.entry.event, Event::Filing { .. }))
            .count()
    };
    assert_eq!(children(&f.records()), 1);

    // Two hours on, the retry is due at once.
    let f = f.reopen();
    let clock = std::sync::Arc::new(controller::ManualClock::new(
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2),
    ));
    let opts = DispatchOptions {
        clock,
        ..DispatchOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), opts).unwrap();
        let root = c.wait(vec!["root".into()]).await.unwrap().remove(0);
        c.stop(false);
        task.await.unwrap().unwrap();
        root
    });
    assert_eq!((root.state, root.attempts), (State::Failed, 2));
    let records = f.records();
    assert_eq!(children(&records), 1, "no second child was filed");
    let refused = records.iter().filter(|r| r.entry.runway == "root").any(|r| {
        matches!(&r.entry.event, Event::Call { call: Call::Delegate, outcome: Outcome::Limit(why), .. }
            if why == "budget: the tree of root: its tree_fuel is used up")
    });
    assert!(refused, "the second attempt's delegation was refused");
}

/// `kill -9` while a run flies: the attempt cut short has no COST (the
/// host could not measure it) but counts as a run — its STARTED is on
/// the trail — so the plan's `runs` budget holds across the crash.
#[test]
fn a_run_cut_short_by_kill_9_still_counts_as_a_run() {
    let dir = folders();
    let server = Server::start(dir.path());
    server.file(
        r#"
        [budget]
        runs = 2
        [[runway]]
        id = "sleeper"
        agent = "probe"
        action = "slow-first"
        retry = { attempts = 3, initial = "10ms", max = "10ms" }
        [[runway]]
        id = "after"
        agent = "probe"
        action = "ok"
        after = ["sleeper"]
        "#,
    );
    runway_tests::eventually("the sleeper flies", || {
        server.json(&["show", "sleeper"])["state"] == "RUNNING"
    });
    server.kill();

    let server = Server::start(dir.path());
    server.client(&["wait", "sleeper", "after"]);
    let sleeper = server.json(&["show", "sleeper"]);
    assert_eq!(sleeper["state"], "SUCCEEDED", "{sleeper}");
    assert_eq!(sleeper["attempts"], 2);
    assert_eq!(sleeper["cost"]["runs"], 2);
    let after = server.json(&["show", "after"]);
    assert_eq!(after["state"], "BUDGET_EXHAUSTED", "{after}");
    assert_eq!(
        after["reason"],
        "plan budget runs = 2 is spent: 2 runs have taken off"
    );
    assert_eq!(after["spent"]["runs"], 2);
    let costs: Vec<u64> = server
        .trail()
        .iter()
        .filter(|r| r["runway"] == "sleeper" && r["event"] == "cost")
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(costs, [2], "only the attempt that landed has a COST");
}
