//! Delegation trees on view, through a real `runway serve` running a real
//! tree (the `orchestrator` agent delegating `probe` children and another
//! orchestrator, which races two probes): the API's show names each
//! runway's parent, root and depth, lists its children with their states
//! and its tree's progress; lists filter by tree; `runway show` prints the
//! children and the progress; MCP's `show_runway` (and the runway resource)
//! carries the same; the event stream's `tree=` filter follows a tree —
//! resumed past its children's filings, and live as children are filed —
//! with join outcomes as transitions; and `runway audit show --tree`
//! prints the tree from the audit folder alone, exactly (times masked),
//! and refuses an unknown root naming it.

use runway_tests::drop_plugin;
use serde_json::{Value, json};

use crate::cli::runway;
use crate::mcp;
use crate::server::{Server, Sse, folders, follow};

/// A tree: `boss` delegates a probe that succeeds, one that fails, and an
/// orchestrator (`boss.3`) racing a probe that sleeps (`boss.4`, filed
/// first, so it is running when it loses) against one that succeeds at
/// once (`boss.5`).
pub const TREE: &str = r#"
[[runway]]
id = "boss"
agent = "orchestrator"
input = { progress = true, children = [
    { agent = "probe", action = "ok" },
    { agent = "probe", action = "fail" },
    { agent = "orchestrator", input = { join = "first-success", children = [
        { agent = "probe", action = "slow-first" },
        { agent = "probe", action = "ok" },
    ] } },
] }
"#;

/// A relay: `relay` delegates an orchestrator that hands off to a probe,
/// then hands off to a probe itself.
const RELAY: &str = r#"
[[runway]]
id = "relay"
agent = "orchestrator"
input = { handoff = { agent = "probe" }, children = [
    { agent = "orchestrator", input = { handoff = { agent = "probe" } } },
] }
"#;

const ALL: [&str; 6] = ["boss", "boss.1", "boss.2", "boss.3", "boss.4", "boss.5"];

/// Folders with probe and orchestrator among the plugins.
pub fn tree_folders() -> tempfile::TempDir {
    let dir = folders();
    drop_plugin("orchestrator", &dir.path().join("plugins"));
    dir
}

/// `TREE` filed and run to its end: every runway of it has ended.
pub fn grown(server: &Server) {
    assert_eq!(server.file(TREE), ["boss"]);
    // Its children are filed as it runs: waited for once it has ended.
    let boss = server.client(&["wait", "--timeout-secs", "120", "boss"]);
    assert_eq!(boss.code, 0, "{}{}", boss.stdout, boss.stderr);
    let mut wait = vec!["wait", "--timeout-secs", "120"];
    wait.extend(ALL);
    // boss.2 fails on purpose: `wait` exits 1.
    let waited = server.client(&wait);
    assert_eq!(waited.code, 1, "{}{}", waited.stdout, waited.stderr);
}

fn ids(list: &Value) -> Vec<&str> {
    let runways = list["runways"].as_array().unwrap();
    runways.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

/// Times (`2026-12-07T06:58:53.915Z`) and durations (`(17 ms)`,
/// `(1.500 s)`) in `text` masked: `T` and `(D)`.
fn masked(text: &str) -> String {
    let time = |s: &str| {
        let b = s.as_bytes();
        b.len() >= 24
            && b[..24].iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                23 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    };
    let duration = |s: &str| {
        let inner = s.strip_prefix('(').and_then(|s| s.split_once(')'))?;
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit() || c == b'.');
        let ok = inner
            .0
            .strip_suffix(" ms")
            .or(inner.0.strip_suffix(" s"))
            .is_some_and(digits);
        ok.then_some(inner.0.len() + 2)
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if time(rest) {
            out.push('T');
            rest = &rest[24..];
        } else if let Some(n) = duration(rest) {
            out.push_str("(D)");
            rest = &rest[n..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[test]
fn a_delegation_tree_is_on_view_at_every_door() {
    let dir = tree_folders();
    let server = Server::start(dir.path());
    grown(&server);

    // The root: no parent, its three children with their states, and its
    // tree's progress — its own report (3 of 3 delegated) plus one unit
    // per child ended.
    let boss = server.json(&["show", "boss"]);
    assert_eq!(boss["state"], "SUCCEEDED", "{boss}");
    assert_eq!(
        (&boss["parent"], &boss["root"], &boss["depth"]),
        (&Value::Null, &Value::Null, &json!(0)),
        "{boss}"
    );
    assert_eq!(
        boss["children"],
        json!([
            { "id": "boss.1", "agent": "probe", "state": "SUCCEEDED", "reason": null },
            { "id": "boss.2", "agent": "probe", "state": "FAILED",
              "reason": boss["children"][1]["reason"] },
            { "id": "boss.3", "agent": "orchestrator", "state": "SUCCEEDED", "reason": null },
        ]),
        "{boss}"
    );
    let failed = boss["children"][1]["reason"].as_str().unwrap();
    assert!(failed.contains("failing on purpose"), "{failed}");
    assert_eq!(
        boss["progress"],
        json!({ "done": 6, "total": 6, "message": "delegating" })
    );

    // A child in the middle: its parent and root, the race's winner and
    // loser, progress counted from its children alone.
    let middle = server.json(&["show", "boss.3"]);
    assert_eq!(
        (&middle["parent"], &middle["root"], &middle["depth"]),
        (&json!("boss"), &json!("boss"), &json!(1)),
        "{middle}"
    );
    let states: Vec<(&Value, &Value)> = (middle["children"].as_array().unwrap().iter())
        .map(|c| (&c["id"], &c["state"]))
        .collect();
    assert_eq!(
        states,
        [
            (&json!("boss.4"), &json!("CANCELLED")),
            (&json!("boss.5"), &json!("SUCCEEDED"))
        ],
        "{middle}"
    );
    assert_eq!(
        middle["progress"],
        json!({ "done": 2, "total": 2, "message": "" })
    );
    // A leaf: depth 2, no children, nothing reported.
    let leaf = server.json(&["show", "boss.5"]);
    assert_eq!(
        (&leaf["parent"], &leaf["root"], &leaf["depth"]),
        (&json!("boss.3"), &json!("boss"), &json!(2)),
        "{leaf}"
    );
    assert_eq!(leaf["children"], json!([]), "{leaf}");
    assert_eq!(leaf["progress"], Value::Null, "{leaf}");

    // Lists name parent, root and depth (no children: they are show's),
    // and filter by tree: a runway and everything below it.
    let whole = server.json(&["list", "--tree", "boss"]);
    assert_eq!(ids(&whole), ALL);
    let below = server.json(&["list", "--tree", "boss.3"]);
    assert_eq!(ids(&below), ["boss.3", "boss.4", "boss.5"]);
    let listed = &below["runways"][2];
    assert_eq!(
        (&listed["parent"], &listed["root"], &listed["depth"]),
        (&json!("boss.3"), &json!("boss"), &json!(2)),
        "{listed}"
    );
    assert!(listed.get("children").is_none(), "{listed}");
    assert_eq!(listed["progress"], Value::Null, "{listed}");
    let nobody = server.json(&["list", "--tree", "nobody"]);
    assert_eq!(ids(&nobody), Vec::<&str>::new());

    // `runway show`, for people.
    let shown = server.client(&["show", "boss.3"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let lines: Vec<&str> = shown.stdout.lines().collect();
    for expected in [
        "parent   boss (root boss, depth 1)",
        "progress 2 of 2",
        "children 2",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected:?} in\n{}",
            shown.stdout
        );
    }
    let child = |id: &str| {
        let line = lines.iter().find(|l| l.trim_start().starts_with(id));
        let line = line.unwrap_or_else(|| panic!("{id} in\n{}", shown.stdout));
        assert_eq!(*line, line.trim_end(), "no trailing blanks");
        line.split_whitespace().collect::<Vec<_>>()
    };
    assert_eq!(child("boss.5"), ["boss.5", "probe", "SUCCEEDED"]);
    assert_eq!(child("boss.4")[..3], ["boss.4", "probe", "CANCELLED"]);
    let root = server.client(&["show", "boss"]);
    assert!(
        root.stdout
            .lines()
            .any(|l| l == "progress 6 of 6: delegating"),
        "{}",
        root.stdout
    );
    assert!(!root.stdout.contains("parent "), "{}", root.stdout);

    // MCP: show_runway and the runway resource carry the same tree.
    let vic = server.token("vic", &["viewer"]);
    let (shown, error) = mcp::call(&server, &vic, "show_runway", json!({ "id": "boss.3" }));
    assert!(!error, "{shown}");
    assert_eq!(shown["children"], middle["children"]);
    assert_eq!(shown["parent"], "boss");
    assert_eq!(shown["root"], "boss");
    assert_eq!(shown["progress"], middle["progress"]);
    let (_, read) = mcp::rpc(
        &server,
        &vic,
        "resources/read",
        json!({ "uri": "runway://boss" }),
    );
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    let read: Value = serde_json::from_str(text).unwrap();
    assert_eq!(read["children"], boss["children"]);
    let (listed, _) = mcp::call(&server, &vic, "list_runways", json!({ "tree": "boss.3" }));
    assert_eq!(ids(&listed), ["boss.3", "boss.4", "boss.5"]);
    let (timeline, _) = mcp::call(&server, &vic, "audit_timeline", json!({ "tree": "boss.3" }));
    let records = timeline["records"].as_array().unwrap();
    let runways: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["runway"].as_str().unwrap())
        .collect();
    assert_eq!(runways, ["boss.3", "boss.4", "boss.5"].into());
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "joined" && r["kind"] == "transition"),
        "a viewer sees the join: {timeline}"
    );
}

#[test]
fn the_event_stream_follows_a_tree() {
    let dir = tree_folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    let vic = server.token("vic", &["viewer"]);

    // Live: a stream opened before the tree is filed gets its children's
    // filings and moves as they come (learnt from their lineage), and
    // nothing of another runway.
    let url = server.url.clone();
    let viewer = vic.clone();
    let live = std::thread::spawn(move || {
        follow(
            &url,
            "/api/events?tree=boss&backlog=0",
            &viewer,
            None,
            120,
            |e| {
                let ended = |id: &str| {
                    e.iter().any(|e| {
                        e.data["runway"] == id
                            && matches!(e.data["event"].as_str(), Some("succeeded" | "failed"))
                    })
                };
                let cancelled = e
                    .iter()
                    .any(|e| e.data["runway"] == "boss.4" && e.data["to"] == "CANCELLED");
                ended("boss") && ended("boss.2") && ended("boss.5") && cancelled
            },
        )
    });
    // (The stream is open once the server has answered its headers: give
    // it a moment, then file.)
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.file("[[runway]]\nid = \"bystander\"\nagent = \"probe\"\naction = \"ok\"\n");
    grown(&server);
    let seen = live.join().unwrap();
    let runways: std::collections::BTreeSet<&str> = seen
        .iter()
        .map(|e| e.data["runway"].as_str().unwrap())
        .collect();
    assert_eq!(runways, ALL.into(), "{seen:?}");
    let joins: Vec<&Sse> = seen
        .iter()
        .filter(|e| e.data["event"] == "joined")
        .collect();
    assert_eq!(joins.len(), 2, "{seen:?}");
    assert!(joins.iter().all(|e| e.event == "transition"), "{joins:?}");
    let race = joins.iter().find(|e| e.data["runway"] == "boss.3").unwrap();
    assert_eq!(race.data["mode"], "first-success");
    // As the join found them: the loser still going, its own record
    // saying how it ended.
    let children = &race.data["children"];
    assert_eq!(
        children[1],
        json!({ "runway": "boss.5", "state": "SUCCEEDED" })
    );
    assert_eq!(children[0]["runway"], "boss.4");
    assert_ne!(children[0]["state"], "SUCCEEDED", "{children}");

    // Resumed past every filing of the subtree below boss.3: its runways
    // are known all the same (from the controller), so the stream gives
    // exactly their records from there on, and nothing else.
    let trail = server.trail();
    let filed = |id: &str| {
        let r = trail
            .iter()
            .find(|r| r["runway"] == id && r["event"] == "filed");
        r.unwrap_or_else(|| panic!("{id}'s filing"))["seq"]
            .as_u64()
            .unwrap()
    };
    let since = filed("boss.5") + 1;
    let below = ["boss.3", "boss.4", "boss.5"];
    let expected: Vec<u64> = trail
        .iter()
        .filter(|r| r["seq"].as_u64().unwrap() >= since)
        .filter(|r| below.iter().any(|id| r["runway"] == *id))
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let last = *expected.last().unwrap();
    let path = format!("/api/events?tree=boss.3&since={since}");
    let resumed = follow(&server.url, &path, &admin, None, 60, |e| {
        e.last().and_then(|e| e.id) >= Some(last)
    });
    let got: Vec<u64> = resumed.iter().filter_map(|e| e.id).collect();
    assert_eq!(got, expected, "{resumed:?}");
    // `runway=` keeps one runway's own records: its join among them.
    let one = format!("/api/events?runway=boss.3&since={since}");
    let own = follow(&server.url, &one, &admin, None, 60, |e| {
        e.iter().any(|e| e.data["event"] == "joined")
    });
    assert!(own.iter().all(|e| e.data["runway"] == "boss.3"), "{own:?}");
}

#[test]
fn the_audit_folder_alone_draws_the_tree() {
    let dir = tree_folders();
    let server = Server::start(dir.path());
    grown(&server);
    server.file("[[runway]]\nid = \"bystander\"\nagent = \"probe\"\naction = \"ok\"\n");
    assert_eq!(server.client(&["wait", "bystander"]).code, 0);
    // A relay: a child hands off to a probe (its successor takes its
    // place under the root), then the root hands off to another.
    server.file(RELAY);
    assert_eq!(server.client(&["wait", "relay"]).code, 0);
    runway_tests::eventually("relay.next filed", || {
        server.client(&["show", "relay.next"]).code == 0
    });
    assert_eq!(server.client(&["wait", "relay.next"]).code, 0);
    // The API says who took over from whom, and a tree goes on past a
    // root's hand-off.
    let successor = server.json(&["show", "relay.2"]);
    assert_eq!(successor["handoff_from"], "relay.1", "{successor}");
    assert_eq!(successor["parent"], "relay", "{successor}");
    let relayed = server.json(&["list", "--tree", "relay"]);
    assert_eq!(ids(&relayed), ["relay", "relay.1", "relay.2", "relay.next"]);
    // Stopped: every record signed, nothing left to move.
    assert_eq!(server.stop(), Some(0));

    let tree = runway(dir.path(), &["audit", "show", "--tree", "boss"]);
    assert_eq!(tree.code, 0, "{}", tree.stderr);
    let expected = "\
tree of boss: 6 runways
boss  orchestrator  SUCCEEDED  T → T (D)
│ join all: boss.1 SUCCEEDED, boss.2 FAILED, boss.3 SUCCEEDED
├─ boss.1  probe  SUCCEEDED  T → T (D)
├─ boss.2  probe  FAILED  T → T (D): agent returned error: invalid: probe: failing on purpose
└─ boss.3  orchestrator  SUCCEEDED  T → T (D)
   │ join first-success: boss.4 (lost), boss.5 SUCCEEDED (won)
   ├─ boss.4  probe  CANCELLED  T → T (D): cancelled by runway boss.3: lost the race to boss.5
   └─ boss.5  probe  SUCCEEDED  T → T (D)
";
    assert_eq!(masked(&tree.stdout), expected, "{}", tree.stdout);

    // The tree below a child names who delegated it.
    let below = runway(dir.path(), &["audit", "show", "--tree", "boss.3"]);
    assert_eq!(below.code, 0, "{}", below.stderr);
    let head = below.stdout.lines().next().unwrap();
    assert_eq!(head, "tree of boss.3 (delegated by boss): 3 runways");
    assert_eq!(below.stdout.lines().count(), 5, "{}", below.stdout);

    // As JSON: the same runways in the same order, times and durations
    // consistent.
    let json = runway(dir.path(), &["audit", "show", "--tree", "boss", "--json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let tree: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(tree["root"], "boss");
    let runways = tree["runways"].as_array().unwrap();
    let order: Vec<(&str, u64)> = runways
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["level"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            ("boss", 0),
            ("boss.1", 1),
            ("boss.2", 1),
            ("boss.3", 1),
            ("boss.4", 2),
            ("boss.5", 2)
        ]
    );
    for r in runways {
        let (started, ended) = (r["started"].as_str().unwrap(), r["ended"].as_str().unwrap());
        assert!(started <= ended, "{r}");
        assert!(r["duration_ms"].as_u64().is_some(), "{r}");
    }
    let race = &runways[3]["joins"][0]["children"];
    assert_eq!(race[0]["outcome"], "lost");
    assert_eq!(race[1]["outcome"], "won");

    // An unknown root is refused, named, with the bad-input code.
    let unknown = runway(dir.path(), &["audit", "show", "--tree", "no-such"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stdout);
    assert!(
        unknown.stderr.contains("no runway no-such"),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stdout.is_empty(), "{}", unknown.stdout);

    // Hand-offs: a child's successor beside it, a root's under it.
    let relay = runway(dir.path(), &["audit", "show", "--tree", "relay"]);
    assert_eq!(relay.code, 0, "{}", relay.stderr);
    let expected = "\
tree of relay: 4 runways
relay  orchestrator  SUCCEEDED  T → T (D)
│ join all: relay.2 SUCCEEDED
├─ relay.1  orchestrator  SUCCEEDED  T → T (D)
├─ relay.2  probe  SUCCEEDED  T → T (D), took over from relay.1
└─ relay.next  probe  SUCCEEDED  T → T (D), took over from relay
";
    assert_eq!(masked(&relay.stdout), expected, "{}", relay.stdout);
    let next = runway(dir.path(), &["audit", "show", "--tree", "relay.next"]);
    assert_eq!(
        next.stdout.lines().next(),
        Some("tree of relay.next (taking over from relay): 1 runway")
    );

    // A runway no one delegated to is a tree of one.
    let alone = runway(dir.path(), &["audit", "show", "--tree", "bystander"]);
    assert_eq!(
        masked(&alone.stdout),
        "tree of bystander: 1 runway\nbystander  probe  SUCCEEDED  T → T (D)\n"
    );
}
