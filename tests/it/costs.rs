//! Costs summed per agent and per trigger, and the filings, at every door
//! of a real `runway serve` (issue 23, point 6): after runs of two agents
//! and a trigger's firings, each agent's spend (`runway agents`, `GET
//! /api/agents`, MCP `list_agents`) and the trigger's (`runway triggers
//! show`, `GET /api/triggers/{id}`, MCP `show_trigger`) equal the sums of
//! the COST and STARTED records on the trail, and `GET /api/filings`
//! lists exactly the trail's PLAN records — all of it the same again
//! after a restart, which rebuilds the sums and the filings from the
//! trail.

use std::collections::BTreeMap;
use std::path::Path;

use runway_audit::{Event, Record};
use serde_json::{Value, json};

use crate::mcp::call;
use crate::server::{Server, folders};

/// A commit trigger on `test_costs_*` whose runway imports into `test_spent`.
const TRIGGER: &str = r#"
[[trigger]]
id = "spend"
on = { commit = "test_costs_*" }

[[trigger.runway]]
id = "restock"
agent = "import-applications"
datasets = { test_spent = "exclusive" }
input = { count = 3, seed = 2 }
"#;

/// Runs of both agents: two commits the trigger fires for, one it does
/// not see.
const RUNS: &str = r#"
[[runway]]
id = "counter"
agent = "probe"
action = "count"
datasets = { test_costs_a = "exclusive" }

[[runway]]
id = "importer"
agent = "import-applications"
datasets = { test_costs_b = "exclusive" }
input = { count = 5, seed = 1 }

[[runway]]
id = "bystander"
agent = "import-applications"
datasets = { test_other = "exclusive" }
input = { count = 2, seed = 3 }

[[runway]]
id = "idle"
agent = "probe"
action = "ok"
"#;

/// What a door shows of a spend.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Spend {
    runs: u64,
    fuel: u64,
    wall_us: u64,
    bytes: u64,
}

impl Spend {
    fn add(&mut self, event: &Event) {
        match *event {
            Event::Started { .. } => self.runs += 1,
            Event::Cost {
                fuel,
                wall_us,
                bytes,
                ..
            } => {
                self.fuel += fuel;
                self.wall_us += wall_us;
                self.bytes += bytes;
            }
            _ => {}
        }
    }

    /// As the doors' JSON says it (`SpentView`).
    fn json(&self) -> Value {
        json!({
            "runs": self.runs,
            "fuel": self.fuel,
            "wall_ms": self.wall_us / 1000,
            "bytes": self.bytes,
        })
    }
}

/// What the trail says: each agent's spend, the trigger's runways and
/// their spend, and the PLAN records (seq, time, by, source, digest,
/// runways).
struct Trail {
    agents: BTreeMap<String, Spend>,
    fired: Vec<String>,
    trigger: Spend,
    filings: Vec<Value>,
}

fn trail(dir: &Path) -> Trail {
    // The log is live: a read may meet a frame still being written.
    let mut records: Vec<Record> = Vec::new();
    runway_tests::eventually("the audit trail read whole", || {
        runway_audit::read_records(&dir.join("runway-audit"))
            .map(|r| records = r)
            .is_ok()
    });
    let mut agents: BTreeMap<String, Spend> = BTreeMap::new();
    let mut fired = Vec::new();
    let mut filings = Vec::new();
    for r in &records {
        if !r.entry.runway.is_empty() {
            agents
                .entry(r.entry.agent.clone())
                .or_default()
                .add(&r.entry.event);
        }
        if let Event::PlanFiled {
            by,
            source,
            digest,
            runways,
        } = &r.entry.event
        {
            if source == "trigger spend" {
                fired.extend(runways.iter().cloned());
            }
            filings.push(json!({
                "seq": r.seq,
                "at": runway_audit::render::clock(r.time_ns),
                "by": by,
                "source": source,
                "digest": runway_audit::hex::encode(digest),
                "runways": runways,
            }));
        }
    }
    agents.retain(|_, s| s.runs > 0);
    let mut trigger = Spend::default();
    for r in records.iter().filter(|r| fired.contains(&r.entry.runway)) {
        trigger.add(&r.entry.event);
    }
    Trail {
        agents,
        fired,
        trigger,
        filings,
    }
}

/// `GET path` with the admin's token.
fn get(server: &Server, path: &str) -> Value {
    let mut answer = ureq::get(&format!("{}{path}", server.url))
        .header("Authorization", &format!("Bearer {}", server.admin()))
        .call()
        .unwrap();
    serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap()
}

/// Every door agrees with the trail.
fn doors_match_the_trail(server: &Server, t: &Trail) {
    let admin = server.admin();
    // Agents: the API, the CLI's JSON (the API's answer read back) and MCP.
    let (mcp_agents, failed) = call(server, &admin, "list_agents", json!({}));
    assert!(!failed, "{mcp_agents}");
    for answer in [
        get(server, "/api/agents"),
        server.json(&["agents"]),
        mcp_agents,
    ] {
        let listed = answer["agents"].as_array().unwrap();
        for (agent, spend) in &t.agents {
            let a = listed.iter().find(|a| a["agent"] == agent.as_str());
            let a = a.unwrap_or_else(|| panic!("{agent} not in {answer}"));
            assert_eq!(a["spent"], spend.json(), "{agent}: {a}");
            assert_eq!(a["fuel_per_run"], json!(spend.fuel / spend.runs), "{agent}");
        }
    }
    // The CLI's table shows each agent's fuel, wall time and bytes.
    let table = server.client(&["agents"]).stdout;
    for (agent, s) in &t.agents {
        let row = table.lines().find(|l| l.starts_with(agent.as_str()));
        let row = row.unwrap_or_else(|| panic!("{table}"));
        let cells: Vec<String> = row.split_whitespace().map(String::from).collect();
        let want = [s.fuel, s.wall_us / 1000, s.bytes].map(|n| n.to_string());
        assert_eq!(cells[6..9], want, "{table}");
    }

    // The trigger: the API, the CLI's JSON and text, MCP.
    let (mcp_trigger, failed) = call(server, &admin, "show_trigger", json!({ "id": "spend" }));
    assert!(!failed, "{mcp_trigger}");
    let cli = server.json(&["triggers", "show", "spend"]);
    for shown in [get(server, "/api/triggers/spend"), cli, mcp_trigger] {
        assert_eq!(shown["spent"], t.trigger.json(), "{shown}");
        assert_eq!(shown["filed"], json!(t.fired.len()), "{shown}");
    }
    let text = server.client(&["triggers", "show", "spend"]).stdout;
    let want = format!(
        "spent     runs {}, fuel {}, wall {} ms, {} bytes written",
        t.trigger.runs,
        t.trigger.fuel,
        t.trigger.wall_us / 1000,
        t.trigger.bytes
    );
    assert!(text.contains(&want), "{want}\n{text}");
    assert!(
        text.contains(&format!("filed     {} runway(s)", t.fired.len())),
        "{text}"
    );

    // The filings: exactly the trail's PLAN records, oldest first.
    let filings = get(server, "/api/filings");
    assert_eq!(filings["filings"], Value::Array(t.filings.clone()));
}

/// Waits until every runway has ended and the trigger has filed `n`.
fn settle(server: &Server, n: u64) {
    runway_tests::eventually("every runway landed, the trigger's too", || {
        let listed = server.json(&["list"]);
        let runways = listed["runways"].as_array().unwrap();
        let fired = server.json(&["triggers", "show", "spend"])["filed"].as_u64();
        fired == Some(n)
            && runways
                .iter()
                .all(|r| ["SUCCEEDED", "FAILED"].contains(&r["state"].as_str().unwrap()))
    });
}

#[test]
fn spend_per_agent_and_per_trigger_and_the_filings_match_the_trail_across_a_restart() {
    let dir = folders();
    let server = Server::start(dir.path());
    assert!(server.file(TRIGGER).is_empty());
    let ids = server.file(RUNS);
    assert_eq!(ids.len(), 4);
    // Two commits to `test_costs_*`: two firings, one runway each.
    settle(&server, 2);
    let before = trail(dir.path());
    assert_eq!(before.fired.len(), 2);
    assert_eq!(
        before.agents.keys().collect::<Vec<_>>(),
        ["import-applications", "probe"]
    );
    for (agent, s) in &before.agents {
        assert!(s.fuel > 0 && s.wall_us > 0, "{agent}: {s:?}");
    }
    assert!(before.agents["import-applications"].bytes > 0);
    // The trigger's runs import too: they wrote, and burnt fuel.
    assert_eq!(before.trigger.runs, 2);
    assert!(before.trigger.fuel > 0 && before.trigger.bytes > 0);
    // Three plans: the runs and each firing's.
    assert_eq!(before.filings.len(), 3, "{:?}", before.filings);
    doors_match_the_trail(&server, &before);
    assert_eq!(server.stop(), Some(0));

    // A restart folds it all again from the trail: the same answers.
    let server = Server::start(dir.path());
    let after = trail(dir.path());
    assert_eq!(after.agents, before.agents);
    assert_eq!(after.trigger, before.trigger);
    assert_eq!(after.filings, before.filings);
    doors_match_the_trail(&server, &after);

    // And the sums go on from there: one more run of each agent, one
    // more firing.
    let more = RUNS.replace("id = \"", "id = \"more-");
    server.file(&more);
    settle(&server, 4);
    let later = trail(dir.path());
    assert!(later.agents["probe"].runs > before.agents["probe"].runs);
    assert_eq!(later.filings.len(), 6);
    doors_match_the_trail(&server, &later);
}
