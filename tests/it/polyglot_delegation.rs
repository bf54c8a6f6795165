//! Python and JavaScript agents that delegate (WIT 0.1.2 `orchestration`),
//! built by `runway build` (componentize-py, componentize-js) and run by
//! the real host: `plugins/fanout-py` and `plugins/fanout-js` file `probe`
//! children through their `orchestrate` helpers, join them (`all`; a
//! `first-success` race; a quorum), chain them, cancel one, and report
//! every child's state and output — the same results the Rust
//! `orchestrator` reports for the same children — and what the host
//! refused, in its words. Their components import the whole world, so they fly on the host's
//! async path (fibers). Each child is on the trail: its FILING with its
//! lineage (parent and root: the agent's runway), its end, the join.

use std::sync::OnceLock;

use runway_audit::{Event, Record, State};
use runway_host::controller::{Manifest, filed_manifest};
use runway_host::{Grants, Plugins};
use runway_tests::{Fixture, output};
use serde_json::{Value, json};

use crate::agents::TOOLS;
use crate::cli::runway_with;
use crate::delegation::last_state;

/// The agents under test, by plan-local runway id.
const AGENTS: [(&str, &str); 2] = [("py", "fanout-py"), ("js", "fanout-js")];

/// `runway build` of both agents, once per test process: each one's
/// component and grants.
fn built() -> &'static [(String, Vec<u8>, String)] {
    static BUILT: OnceLock<Vec<(String, Vec<u8>, String)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plugins");
        let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins");
        AGENTS
            .iter()
            .map(|&(_, agent)| {
                let source = format!("{repo}/{agent}");
                let args = ["build", &source, "--out", out.to_str().unwrap()];
                let made = runway_with(dir.path(), &args, TOOLS);
                assert_eq!(made.code, 0, "{agent}: {}{}", made.stdout, made.stderr);
                let read = |ext: &str| std::fs::read(out.join(format!("{agent}.{ext}"))).unwrap();
                let grants = String::from_utf8(read("toml")).unwrap();
                (agent.to_string(), read("wasm"), grants)
            })
            .collect()
    })
}

/// A host with one worker (so children run in the order filed) over the
/// bundled plugins and both agents.
fn fixture() -> Fixture {
    let (runtime, _) = runway_tests::plugins();
    let mut plugins: Plugins = runway_tests::bundled_plugins();
    for (name, wasm, grants) in built() {
        let grants = Grants::parse(grants, name).expect("grants parse");
        plugins.insert(runtime, name, wasm, grants).expect("loads");
    }
    Fixture::with_plugins(1, plugins)
}

/// One runway `id` of `agent` with `action`, its input asking the `locks`
/// child to take `test_poly` exclusive.
fn plan(id: &str, agent: &str, action: &str) -> String {
    format!(
        "[[runway]]\nid = \"{id}\"\nagent = \"{agent}\"\naction = \"{action}\"\n\
         input = {{ locks = [[\"test_poly\", \"exclusive\"]] }}\n"
    )
}

/// Runs `agent` as runway `id` with `action`; it succeeds: its output.
fn succeeded(f: &Fixture, id: &str, agent: &str, action: &str) -> Value {
    let report = f.run(&plan(id, agent, action));
    let run = report.get(id).unwrap();
    assert_eq!(run.state, State::Succeeded, "{agent}: {:?}", run.reason);
    output(&report, id)
}

/// The children the trail holds of runway `parent`, filed in order: id and
/// manifest (its agent the record's).
fn children_of(records: &[Record], parent: &str) -> Vec<(String, Manifest)> {
    records
        .iter()
        .filter_map(|r| {
            let agent = r.entry.agent.clone();
            let m = filed_manifest(&r.entry.event)?;
            Some((r.entry.runway.clone(), Manifest { agent, ..m }))
        })
        .filter(|(_, m)| m.lineage.as_ref().is_some_and(|l| l.parent == parent))
        .collect()
}

/// The token runway `id` was cleared with on `dataset`, as the trail says.
fn token(records: &[Record], id: &str, dataset: &str) -> u64 {
    records
        .iter()
        .filter(|r| r.entry.runway == id)
        .find_map(|r| match &r.entry.event {
            Event::Cleared { locks } => locks.iter().find(|l| l.dataset == dataset),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} was cleared with {dataset}"))
        .token
}

/// The joins of runway `parent` on the trail: mode, children and states.
fn joins(records: &[Record], parent: &str) -> Vec<(String, Vec<(String, State)>)> {
    records
        .iter()
        .filter(|r| r.entry.runway == parent)
        .filter_map(|r| match &r.entry.event {
            Event::Joined { mode, children, .. } => Some((
                mode.clone(),
                children
                    .iter()
                    .map(|c| (c.runway.clone(), c.state))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// A child as the agents report it.
fn child(runway: &str, state: &str, output: Value, reason: Option<&str>) -> Value {
    json!({ "runway": runway, "agent": "probe", "state": state, "output": output, "reason": reason })
}

/// The results of joining all of runway `id`'s children `ok` and `locks`,
/// the second granted `test_poly` with token `handed`.
fn all_results(id: &str, handed: u64) -> Value {
    let locks = json!([{ "dataset": "test_poly", "mode": "exclusive", "token": handed }]);
    json!([
        child(&format!("{id}.1"), "succeeded", json!({}), None),
        child(&format!("{id}.2"), "succeeded", locks, None),
    ])
}

#[test]
fn python_and_javascript_agents_fan_out_and_join_all_their_children() {
    let f = fixture();
    for (id, agent) in AGENTS {
        let said = succeeded(&f, id, agent, "all");

        let records = f.records();
        let handed = token(&records, &format!("{id}.2"), "test_poly");
        assert_eq!(
            said,
            json!({ "winner": null, "results": all_results(id, handed), "refused": [] }),
            "{agent}"
        );

        // On the trail: each child filed with its lineage, parent and root
        // the agent's runway, asked what the agent asked; each succeeded;
        // the join is the agent's record.
        let kids = children_of(&records, id);
        let asked: Vec<(&str, &str, &str)> = kids
            .iter()
            .map(|(c, m)| (c.as_str(), m.agent.as_str(), m.action.as_str()))
            .collect();
        let (one, two) = (format!("{id}.1"), format!("{id}.2"));
        assert_eq!(
            asked,
            [(&*one, "probe", "ok"), (&*two, "probe", "locks")],
            "{agent}"
        );
        for (c, m) in &kids {
            let l = m.lineage.as_ref().unwrap();
            assert_eq!((&*l.root, l.depth, l.attempt), (id, 1, 1), "{agent}: {c}");
            assert_eq!(last_state(&records, c), State::Succeeded, "{agent}: {c}");
        }
        assert_eq!(
            joins(&records, id),
            [(
                "all".to_string(),
                vec![(one, State::Succeeded), (two, State::Succeeded)]
            )],
            "{agent}"
        );
    }

    // The Rust orchestrator, asked for the same children, reports the
    // same results.
    let report = f.run(
        "[[runway]]\nid = \"rs\"\nagent = \"orchestrator\"\n\
         input = { children = [{ agent = \"probe\", action = \"ok\" }, \
         { agent = \"probe\", action = \"locks\", locks = [[\"test_poly\", \"exclusive\"]] }] }\n",
    );
    let handed = token(&f.records(), "rs.2", "test_poly");
    assert_eq!(output(&report, "rs")["results"], all_results("rs", handed));
}

#[test]
fn python_and_javascript_agents_race_children_to_a_first_success() {
    let f = fixture();
    for (id, agent) in AGENTS {
        let said = succeeded(&f, id, agent, "first-success");
        let (one, two) = (format!("{id}.1"), format!("{id}.2"));
        let winner = child(&two, "succeeded", json!({}), None);
        let failed = "agent returned error: invalid: probe: failing on purpose";
        assert_eq!(
            said,
            json!({
                "winner": winner,
                "results": [child(&one, "failed", Value::Null, Some(failed)), winner],
                "refused": [],
            }),
            "{agent}"
        );
        let records = f.records();
        let kids = children_of(&records, id);
        let asked: Vec<(&str, &str)> = kids
            .iter()
            .map(|(c, m)| (c.as_str(), m.action.as_str()))
            .collect();
        assert_eq!(asked, [(&*one, "fail"), (&*two, "ok")], "{agent}");
        assert!(
            kids.iter()
                .all(|(_, m)| m.lineage.as_ref().unwrap().root == id)
        );
        assert_eq!(last_state(&records, &one), State::Failed);
        assert_eq!(last_state(&records, &two), State::Succeeded);
        let states = vec![(one, State::Failed), (two, State::Succeeded)];
        assert_eq!(
            joins(&records, id),
            [
                ("first-success".to_string(), states.clone()),
                ("all".to_string(), states)
            ],
            "{agent}: the race, then the join that looks again"
        );
    }
}

#[test]
fn python_and_javascript_agents_cancel_a_child_and_are_refused_in_the_hosts_words() {
    let f = fixture();
    for (id, agent) in AGENTS {
        let said = succeeded(&f, id, agent, "cancel");
        let sleeper = format!("{id}.1");
        let why = "cancelled: its parent cancelled it";
        assert_eq!(
            said,
            json!({
                "winner": null,
                "results": [child(&sleeper, "cancelled", Value::Null, Some(why))],
                "refused": [
                    format!(
                        "denied: delegation 1 of 1 (agent summary): agent {agent} may not \
                         delegate to summary: its grants' [delegate] agents do not name it"
                    ),
                    format!("invalid: cancel: {id}.99 is not a child of {id}"),
                ],
            }),
            "{agent}"
        );
        let records = f.records();
        assert_eq!(
            children_of(&records, id).len(),
            1,
            "{agent}: the refused one was never filed"
        );
        assert_eq!(last_state(&records, &sleeper), State::Cancelled);
        let by = records
            .iter()
            .filter(|r| r.entry.runway == sleeper)
            .find_map(|r| match &r.entry.event {
                Event::Moved {
                    to: State::Cancelled,
                    by,
                    ..
                } => by.clone(),
                _ => None,
            });
        assert_eq!(
            by,
            Some(format!("runway {id}")),
            "{agent}: cancelled by its parent"
        );
        assert!(
            !records.iter().any(
                |r| r.entry.runway == sleeper && matches!(r.entry.event, Event::Started { .. })
            ),
            "{agent}: cancelled before it ever ran"
        );
        assert_eq!(
            joins(&records, id),
            [("all".to_string(), vec![(sleeper, State::Cancelled)])],
            "{agent}"
        );
    }
}

#[test]
fn python_and_javascript_agents_reach_a_quorum_and_chain_steps() {
    let f = fixture();
    for (id, agent) in AGENTS {
        let at = |n: u32| format!("{id}.{n}");
        let failed = "agent returned error: invalid: probe: failing on purpose";
        assert_eq!(
            succeeded(&f, id, agent, "quorum"),
            json!({
                "winner": null,
                "results": [
                    child(&at(1), "succeeded", json!({}), None),
                    child(&at(2), "failed", Value::Null, Some(failed)),
                    child(&at(3), "succeeded", json!({}), None),
                ],
                "refused": [],
            }),
            "{agent}"
        );
        let records = f.records();
        assert_eq!(joins(&records, id)[0].0, "quorum(2)", "{agent}");

        // A chain: the second step is filed with the first one's output as
        // its input, after the first ended.
        let piped = format!("{id}-chain");
        assert_eq!(
            succeeded(&f, &piped, agent, "chain"),
            json!({
                "winner": child(&format!("{piped}.2"), "succeeded", json!({}), None),
                "results": [],
                "refused": [],
            }),
            "{agent}"
        );
        let records = f.records();
        let steps = children_of(&records, &piped);
        let inputs: Vec<Value> = steps
            .iter()
            .map(|(_, m)| serde_json::from_slice(&m.input).unwrap_or(Value::Null))
            .collect();
        let handed = token(&records, &format!("{piped}.1"), "test_poly");
        let locks = json!([{ "dataset": "test_poly", "mode": "exclusive", "token": handed }]);
        assert_eq!(inputs, [Value::Null, locks], "{agent}: step 2's input");
        let one_by_one: Vec<usize> = joins(&records, &piped)
            .iter()
            .map(|(_, c)| c.len())
            .collect();
        assert_eq!(one_by_one, [1, 1], "{agent}: each step joined alone");
    }
}
