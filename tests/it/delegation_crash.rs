//! Exactly once, across `kill -9`: a serving host is killed while a parent
//! waits on its children, one of which has succeeded (and written). The
//! next start settles the whole tree — the parent's attempt failed by the
//! crash and retried, its child still running cancelled — and the retried
//! parent's delegation with the same key gets the recorded child and its
//! output back from the trail instead of running it again.

use runway_audit::{Event, State};

use crate::restart::read_verified;
use crate::server::{Server, folders};

/// The parent: two attempts; a child that writes once, and one that
/// sleeps (so the parent is still waiting when the kill comes).
const TREE: &str = r#"
[[runway]]
id = "tree"
agent = "orchestrator"
retry = { attempts = 2, initial = "10ms" }
input = { timeout_ms = 3000, children = [
    { agent = "orchestrator", locks = [["test_tree", "exclusive"]],
      input = { write = ["test_tree", "k", "written once"] } },
    { agent = "probe", action = "slow-first" },
] }
"#;

#[test]
fn kill_9_with_a_tree_in_flight_runs_no_succeeded_child_twice() {
    let dir = folders();
    runway_tests::drop_plugin("orchestrator", &dir.path().join("plugins"));
    let server = Server::start(dir.path());
    let filed = server.file(TREE);
    assert_eq!(filed, ["tree"]);
    // Killed once the first child has succeeded, while the parent waits
    // on the sleeper.
    runway_tests::eventually("tree.1 succeeded and tree.2 runs", || {
        let trail = server.trail();
        let seen = |runway: &str, event: &str| {
            trail
                .iter()
                .any(|r| r["runway"] == runway && r["event"] == event)
        };
        seen("tree.1", "succeeded") && seen("tree.2", "started")
    });
    server.kill();

    let server = Server::start(dir.path());
    // The parent, then the sleeper's replacement it filed and left behind
    // (cancelled as its attempt ended).
    for id in ["tree", "tree.3"] {
        let out = server.client(&["wait", "--timeout-secs", "60", "--json", id]);
        let waited: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(waited["done"], true, "{id}: {}{}", out.stdout, out.stderr);
    }
    let shown = server.json(&["show", "tree"]);
    assert_eq!(shown["state"], "SUCCEEDED", "{shown}");
    let states = server.states();
    assert_eq!(server.stop(), Some(0));

    let records = read_verified(dir.path());
    // The retried parent's report: tree.1 as the first attempt left it,
    // its output from the trail; the sleeper's replacement still going
    // when the join's wait ran out.
    let text = shown["output"].as_str().expect("the parent's output");
    let report: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        report["delegated"],
        serde_json::json!(["tree.1", "tree.3"]),
        "{report}"
    );
    assert_eq!(report["results"][0]["state"], "succeeded", "{report}");
    assert_eq!(
        report["results"][0]["output"]["delegated"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(report["results"][1]["state"], "running", "{report}");
    // The first child ran once: one START, one commit, its record once.
    let started = |id: &str| {
        records
            .iter()
            .filter(|r| r.entry.runway == id && matches!(r.entry.event, Event::Started { .. }))
            .count()
    };
    assert_eq!(started("tree.1"), 1, "the succeeded child ran again");
    assert_eq!(started("tree"), 2, "the parent's two attempts");
    // The parent's second attempt got tree.1 back for the same key, with
    // the output its RETURNED record kept, and a new child for the one the
    // crash cut short.
    let filed: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::Filing { .. } => Some(r.entry.runway.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(filed, ["tree", "tree.1", "tree.2", "tree.3"], "{states:?}");
    // Every runway of the tree has ended: the child the crash cut short
    // failed by it (no retry left), its replacement cancelled when the
    // parent's second attempt ended without waiting for it.
    assert_eq!(states["tree.1"], "SUCCEEDED");
    assert_eq!(states["tree.2"], "FAILED");
    assert_eq!(states["tree.3"], "CANCELLED");
    let last = |id: &str| {
        records
            .iter()
            .filter(|r| r.entry.runway == id)
            .filter_map(|r| match &r.entry.event {
                Event::Moved { to, reason, .. } => Some((*to, reason.clone())),
                Event::Failed { reason } => Some((State::Failed, reason.clone())),
                _ => None,
            })
            .next_back()
    };
    let (_, why) = last("tree.2").unwrap();
    assert!(why.contains("host crashed during the run"), "{why}");
    let (to, why) = last("tree.3").unwrap();
    assert_eq!(to, State::Cancelled);
    assert!(why.contains("tree's attempt 2 ended"), "{why}");
}
