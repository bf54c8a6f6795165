//! Agents that delegate (WIT 0.1.2 `orchestration`), through real
//! wasmtime: the `orchestrator` test agent files children (the `probe`
//! agent, or itself) as its input says and joins them. Each child is a
//! runway of its own on the trail, linked to its parent and root; joins
//! answer every child's state and the outputs of those that succeeded, on
//! a timeout too; a first success's losers are cancelled; rights only
//! narrow; a parent waiting on its children holds no worker.

use runway_audit::{Event, JoinedChild, Record, State};
use runway_host::Manifest;
use runway_tests::{Fixture, output};
use serde_json::{Value, json};

/// A plan of one orchestrator runway `id` with `input` (a TOML inline
/// table).
fn one(id: &str, input: &str) -> String {
    format!("[[runway]]\nid = \"{id}\"\nagent = \"orchestrator\"\ninput = {input}\n")
}

/// The manifests of the children the trail holds, by runway id.
fn children(records: &[Record]) -> Vec<(String, Manifest)> {
    records
        .iter()
        .filter_map(|r| {
            let m = runway_host::controller::filed_manifest(&r.entry.event)?;
            m.lineage.is_some().then(|| (r.entry.runway.clone(), m))
        })
        .collect()
}

/// The last state runway `id` moved to on the trail.
fn last_state(records: &[Record], id: &str) -> State {
    records
        .iter()
        .filter(|r| r.entry.runway == id)
        .filter_map(|r| match &r.entry.event {
            Event::Succeeded { .. } => Some(State::Succeeded),
            Event::Failed { .. } => Some(State::Failed),
            Event::Moved { to, .. } => Some(*to),
            _ => None,
        })
        .next_back()
        .unwrap_or(State::Queued)
}

fn joined(records: &[Record], parent: &str) -> Vec<(String, Vec<JoinedChild>, bool)> {
    records
        .iter()
        .filter(|r| r.entry.runway == parent)
        .filter_map(|r| match &r.entry.event {
            Event::Joined {
                mode,
                children,
                timed_out,
            } => Some((mode.clone(), children.clone(), *timed_out)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_parent_delegates_and_joins_all_its_children() {
    let f = Fixture::new();
    let report = f.run(&one(
        "boss",
        r#"{ children = [
            { agent = "probe", action = "ok" },
            { agent = "probe", action = "locks", locks = [["test_deleg", "exclusive"], ["test_ref", "shared"]] },
        ] }"#,
    ));
    let boss = report.get("boss").unwrap();
    assert_eq!(boss.state, State::Succeeded, "{:?}", boss.reason);
    let out = output(&report, "boss");
    assert_eq!(out["delegated"], json!(["boss.1", "boss.2"]), "{out}");
    assert_eq!(out["join"], Value::Null, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{out}");
    assert_eq!(results[0]["state"], "succeeded");
    assert_eq!(results[0]["output"], json!({}), "the child's own output");
    let locks = &results[1]["output"];
    assert_eq!(locks[0]["dataset"], "test_deleg", "{locks}");
    assert_eq!(locks[0]["mode"], "exclusive", "{locks}");
    assert_eq!(locks[1]["dataset"], "test_ref", "{locks}");
    assert!(locks[0]["token"].as_u64().unwrap() > 0);

    // On the trail: each child filed with its lineage, ran, succeeded; the
    // join is a record of the parent's.
    let records = f.records();
    let kids = children(&records);
    assert_eq!(kids.len(), 2);
    for (id, m) in &kids {
        let l = m.lineage.as_ref().unwrap();
        assert_eq!(
            (l.parent.as_str(), l.root.as_str(), l.depth),
            ("boss", "boss", 1)
        );
        assert_eq!(l.attempt, 1);
        assert_eq!(last_state(&records, id), State::Succeeded, "{id}");
    }
    let joins = joined(&records, "boss");
    assert_eq!(joins.len(), 1);
    let (mode, seen, timed_out) = &joins[0];
    assert_eq!((mode.as_str(), *timed_out), ("all", false));
    let states: Vec<State> = seen.iter().map(|c| c.state).collect();
    assert_eq!(states, [State::Succeeded, State::Succeeded]);
}

#[test]
fn first_success_cancels_the_rest_and_no_loser_writes_after_the_win() {
    let f = Fixture::with_workers(4);
    // A failure, a success, and one that would sleep for ten minutes: the
    // sleeper must be cancelled the moment the success is in.
    let report = f.run(&one(
        "race",
        r#"{ join = "first-success", children = [
            { agent = "probe", action = "fail" },
            { agent = "probe", action = "ok" },
            { agent = "probe", action = "slow-first", locks = [["test_race", "exclusive"]] },
        ] }"#,
    ));
    let race = report.get("race").unwrap();
    assert_eq!(race.state, State::Succeeded, "{:?}", race.reason);
    let out = output(&report, "race");
    let results = out["results"].as_array().unwrap();
    let states: Vec<&str> = results
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states[1], "succeeded", "{out}");
    assert_eq!(states[2], "cancelled", "{out}");
    assert!(
        results[2]["reason"]
            .as_str()
            .unwrap()
            .contains("lost the race to race.2"),
        "{out}"
    );
    let records = f.records();
    assert_eq!(last_state(&records, "race.3"), State::Cancelled);
    // After the winner's success, no write by a loser: no COMMITTING or
    // COMMITTED of race.1 or race.3 anywhere after it.
    let won = records
        .iter()
        .position(|r| {
            r.entry.runway == "race.2" && matches!(r.entry.event, Event::Succeeded { .. })
        })
        .expect("the winner succeeded");
    let joined_at = records
        .iter()
        .position(|r| r.entry.runway == "race" && matches!(r.entry.event, Event::Joined { .. }))
        .expect("the join is on the trail");
    assert!(joined_at > won);
    for r in &records[won..] {
        let loser = r.entry.runway == "race.1" || r.entry.runway == "race.3";
        let writes = matches!(
            r.entry.event,
            Event::Committing { .. } | Event::Committed { .. }
        );
        assert!(!(loser && writes), "a loser wrote after the win: {r:?}");
    }
}

#[test]
fn a_join_that_times_out_keeps_what_finished_children_produced() {
    let f = Fixture::with_workers(3);
    let report = f.run(&one(
        "patient",
        r#"{ timeout_ms = 400, children = [
            { agent = "probe", action = "locks" },
            { agent = "probe", action = "slow-first" },
        ] }"#,
    ));
    let out = output(&report, "patient");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results[0]["state"], "succeeded", "{out}");
    assert_eq!(
        results[0]["output"],
        json!([]),
        "a finished child's output is kept"
    );
    assert_eq!(results[1]["state"], "running", "{out}");
    assert_eq!(results[1]["output"], Value::Null);
    let records = f.records();
    let joins = joined(&records, "patient");
    assert!(joins[0].2, "the JOINED record says the wait ran out");
    // The parent ended: its child still going is cancelled with it.
    assert_eq!(last_state(&records, "patient.2"), State::Cancelled);
}

#[test]
fn a_quorum_is_met_by_enough_successes() {
    let f = Fixture::with_workers(3);
    let report = f.run(&one(
        "vote",
        r#"{ join = { quorum = 2 }, children = [
            { agent = "probe", action = "ok" },
            { agent = "probe", action = "fail" },
            { agent = "probe", action = "ok" },
        ] }"#,
    ));
    let out = output(&report, "vote");
    let ok = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "succeeded")
        .count();
    assert_eq!(ok, 2, "{out}");
    let joins = joined(&f.records(), "vote");
    assert_eq!(joins[0].0, "quorum(2)");
}

#[test]
fn rights_only_narrow() {
    let f = Fixture::new();
    let report = f.run(&one(
        "narrow",
        r#"{ children = [
            { agent = "summary", action = "ok" },
            { agent = "nobody-loaded", action = "ok" },
            { agent = "orchestrator", locks = [["secret", "exclusive"]] },
            { agent = "probe", locks = [["x", "exclusive"], ["x", "shared"]] },
        ] }"#,
    ));
    let out = output(&report, "narrow");
    let said: Vec<&str> = out["delegated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        said[0].starts_with("denied:") && said[0].contains("may not delegate to summary"),
        "{said:?}"
    );
    // The orchestrator's grants name only probe and itself.
    assert!(said[1].starts_with("denied:"), "{said:?}");
    // `secret` is granted to the orchestrator, and to its parent: allowed.
    assert_eq!(said[2], "narrow.1", "{said:?}");
    assert!(said[3].contains("named twice"), "{said:?}");
}

#[test]
fn a_fork_bomb_stops_at_the_depth_its_grants_allow() {
    let f = Fixture::with_workers(2);
    let report = f.run(&one("bomb", "{ bomb = 2 }"));
    assert_eq!(report.get("bomb").unwrap().state, State::Succeeded);
    let records = f.records();
    let kids = children(&records);
    // depth 4, two children each: 2 + 4 + 8 + 16 runways below the root.
    assert_eq!(kids.len(), 30);
    assert!(
        kids.iter()
            .all(|(_, m)| m.lineage.as_ref().unwrap().depth <= 4)
    );
    assert!(
        kids.iter()
            .all(|(_, m)| m.lineage.as_ref().unwrap().root == "bomb")
    );
    // The deepest say why they could go no deeper.
    let deepest = kids
        .iter()
        .find(|(_, m)| m.lineage.as_ref().unwrap().depth == 4)
        .unwrap();
    let said = records
        .iter()
        .filter(|r| r.entry.runway == deepest.0)
        .any(|r| match &r.entry.event {
            Event::Call { outcome, .. } => {
                outcome.reason().is_some_and(|m| m.starts_with("depth:"))
            }
            _ => false,
        });
    assert!(
        said,
        "the deepest child's delegate call was refused for depth"
    );
}

#[test]
fn a_thousand_parents_waiting_on_children_need_no_worker_each() {
    let f = Fixture::with_workers(2);
    let mut plan = String::new();
    for n in 0..1000 {
        plan.push_str(&one(
            &format!("p{n}"),
            r#"{ children = [{ agent = "probe", action = "ok" }] }"#,
        ));
    }
    let report = f.run(&plan);
    assert_eq!(report.failed(), 0);
    let out = output(&report, "p999");
    assert_eq!(out["results"][0]["state"], "succeeded", "{out}");
}

#[test]
fn a_failed_parent_takes_its_children_with_it() {
    let f = Fixture::with_workers(3);
    let report = f.run(&one(
        "doomed",
        r#"{ join = "none", fail_after_join = true, children = [
            { agent = "probe", action = "slow-first" },
        ] }"#,
    ));
    let doomed = report.get("doomed").unwrap();
    assert_eq!(doomed.state, State::Failed);
    let records = f.records();
    assert_eq!(last_state(&records, "doomed.1"), State::Cancelled);
    let why = records
        .iter()
        .filter(|r| r.entry.runway == "doomed.1")
        .find_map(|r| match &r.entry.event {
            Event::Moved {
                to: State::Cancelled,
                reason,
                by,
            } => Some((reason.clone(), by.clone())),
            _ => None,
        })
        .expect("a CANCELLED record");
    assert!(
        why.0.contains("its parent doomed's attempt 1 ended"),
        "{why:?}"
    );
    assert_eq!(why.1.as_deref(), Some("runway doomed"));
}

#[test]
fn a_lock_handed_down_comes_back_with_a_fresh_token() {
    let f = Fixture::with_workers(2);
    let report = f.run(
        r#"
        [[runway]]
        id = "owner"
        agent = "orchestrator"
        datasets = { test_handed = "exclusive" }
        input = { touch = "test_handed", children = [
            { agent = "orchestrator", locks = [["test_handed", "exclusive"]],
              input = { write = ["test_handed", "k", "from the child"] } },
        ] }
        "#,
    );
    let owner = report.get("owner").unwrap();
    assert_eq!(owner.state, State::Succeeded, "{:?}", owner.reason);
    let out = output(&report, "owner");
    let touched = out["touched"].as_array().unwrap();
    // While the child holds it, the parent's calls there answer lock-lost,
    // saying where the lock went; after the join the parent reads what the
    // child committed, and writes under its fresh token.
    assert!(
        touched[0]
            .as_str()
            .unwrap()
            .starts_with("lock-lost: runway owner's lock on test_handed is delegated to owner.1"),
        "{out}"
    );
    assert_eq!(touched[1], "ok: from the child", "{out}");
    assert_eq!(touched[2], "ok", "{out}");
    let parent_wrote = f.host.store.read("test_handed", "parent").unwrap();
    assert_eq!(parent_wrote.as_deref(), Some(&b"after"[..]));

    // On the dataset's chain: the parent's token, handed over (released),
    // the child's fresh higher one, its commit, released; the parent's
    // fresh one again, higher still, and its commit — never two holders of
    // the exclusive lock at once.
    let records = f.records();
    let chain: Vec<(String, &'static str, u64)> = records
        .iter()
        .filter(|r| r.entry.dataset.as_deref() == Some("test_handed"))
        .filter_map(|r| {
            let (what, token) = match &r.entry.event {
                Event::LockGranted { token, .. } => ("grant", *token),
                Event::LockReleased { token, .. } => ("release", *token),
                Event::Committed { token, .. } => ("commit", *token),
                _ => return None,
            };
            Some((r.entry.runway.clone(), what, token))
        })
        .collect();
    let steps: Vec<(&str, &str)> = chain.iter().map(|(r, w, _)| (r.as_str(), *w)).collect();
    assert_eq!(
        steps,
        [
            ("owner", "grant"),
            ("owner", "release"),
            ("owner.1", "grant"),
            ("owner.1", "commit"),
            ("owner.1", "release"),
            ("owner", "grant"),
            ("owner", "commit"),
            ("owner", "release"),
        ],
        "{chain:?}"
    );
    let tokens: Vec<u64> = chain.iter().map(|c| c.2).collect();
    assert!(tokens[0] < tokens[2] && tokens[2] < tokens[5], "{tokens:?}");
}

#[test]
fn a_lock_is_handed_down_only_as_held_and_never_taken_from_an_ancestor() {
    let f = Fixture::with_workers(3);
    let report = f.run(
        r#"
        [[runway]]
        id = "elder"
        agent = "orchestrator"
        datasets = { test_elder = "exclusive", test_ro = "shared" }
        input = { children = [
            { agent = "probe", action = "locks", locks = [["test_ro", "exclusive"]] },
            { agent = "orchestrator", input = { children = [
                { agent = "probe", action = "locks", locks = [["test_elder", "exclusive"]] },
            ] } },
        ] }
        "#,
    );
    let out = output(&report, "elder");
    let said = out["delegated"][0].as_str().unwrap();
    assert!(
        said.starts_with("denied: test_ro is held shared by elder"),
        "{out}"
    );
    // The grandchild asks for what its grandparent holds and its parent
    // did not hand down: refused at once, naming the holder, no wait.
    let child = &out["results"][0]["output"];
    let said = child["delegated"][0].as_str().unwrap();
    assert!(
        said.starts_with("denied: test_elder is held by ancestor elder"),
        "{out}"
    );
}

#[test]
fn a_child_that_hands_off_is_joined_as_the_last_of_its_line() {
    let f = Fixture::with_workers(2);
    let report = f.run(&one(
        "desk",
        r#"{ children = [
            { agent = "orchestrator", input = { handoff = { agent = "probe", action = "locks" } } },
        ] }"#,
    ));
    let desk = report.get("desk").unwrap();
    assert_eq!(desk.state, State::Succeeded, "{:?}", desk.reason);
    let out = output(&report, "desk");
    let result = &out["results"][0];
    assert_eq!(result["runway"], "desk.2", "the successor's result: {out}");
    assert_eq!(result["agent"], "probe", "{out}");
    assert_eq!(result["state"], "succeeded", "{out}");
    assert_eq!(result["output"], json!([]), "{out}");
    let records = f.records();
    let kids = children(&records);
    let (id, successor) = &kids[1];
    assert_eq!(id, "desk.2");
    assert_eq!(successor.handoff_from.as_deref(), Some("desk.1"));
    let l = successor.lineage.as_ref().unwrap();
    assert_eq!((l.parent.as_str(), l.depth), ("desk", 1));
    // Its input is what the child that handed off returned.
    let filed_input = records
        .iter()
        .find_map(|r| match &r.entry.event {
            Event::Filing { input, .. } if r.entry.runway == "desk.2" => Some(input.clone()),
            _ => None,
        })
        .unwrap();
    let handed: Value = serde_json::from_slice(&filed_input).unwrap();
    assert_eq!(handed["delegated"], json!([]), "{handed}");
}

#[test]
fn a_root_that_hands_off_is_taken_over_by_a_new_root() {
    let f = Fixture::with_workers(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let states = rt.block_on(async {
        let (controller, task) =
            runway_host::controller::start(f.host.clone(), runway_host::DispatchOptions::default())
                .unwrap();
        let plan = f.plan(&one(
            "shift",
            r#"{ handoff = { agent = "probe", action = "ok" } }"#,
        ));
        controller.file(runway_tests::filing(plan)).await.unwrap();
        runway_tests::eventually("shift.next filed", || {
            f.records().iter().any(|r| r.entry.runway == "shift.next")
        });
        let done = controller
            .wait(vec!["shift".into(), "shift.next".into()])
            .await
            .unwrap();
        controller.stop(false);
        task.await.unwrap().unwrap();
        done.into_iter()
            .map(|r| (r.id, r.state, r.manifest))
            .collect::<Vec<_>>()
    });
    assert_eq!(states[0].1, State::Succeeded);
    assert_eq!(states[1].1, State::Succeeded);
    assert_eq!(states[1].2.handoff_from.as_deref(), Some("shift"));
    assert!(
        states[1].2.lineage.is_none(),
        "a root's successor is a root"
    );
}

#[test]
fn a_run_that_stops_reporting_progress_fails_by_its_heartbeat() {
    let f = Fixture::with_workers(2);
    let report = f.run(
        r#"
        [[runway]]
        id = "quiet"
        agent = "probe"
        action = "slow-first"
        heartbeat = "300ms"

        # Waiting on its children is not silence: the host knows what it
        # waits for.
        [[runway]]
        id = "waiting"
        agent = "orchestrator"
        heartbeat = "300ms"
        input = { progress = true, timeout_ms = 1000, children = [{ agent = "probe", action = "slow-first" }] }
        "#,
    );
    let quiet = report.get("quiet").unwrap();
    assert_eq!(quiet.state, State::Failed);
    assert_eq!(
        quiet.reason.as_deref(),
        Some("no progress reported for 300 ms (the manifest's heartbeat)")
    );
    let waiting = report.get("waiting").unwrap();
    assert_eq!(waiting.state, State::Succeeded, "{:?}", waiting.reason);
    let out = output(&report, "waiting");
    assert_eq!(out["results"][0]["state"], "running", "{out}");
}
