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
pub(crate) fn last_state(records: &[Record], id: &str) -> State {
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
        why.0.contains("doomed's attempt 1 ended") || why.1.as_deref() == Some("runway doomed"),
        "{why:?}"
    );
}
