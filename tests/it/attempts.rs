//! Each attempt of a runway at the doors: a probe that fails its first
//! attempt and succeeds its second shows both attempts — times, how each
//! ended and why, each one's own log lines, the second's output — at the
//! API (`GET /api/runways/{id}`) and the CLI (`runway show`, human and
//! `--json`), its markup kept as data and escaped on the terminal; after
//! a restart the attempts are still listed from the trail, each saying
//! its log was not kept here. A runway that takes an output shows the
//! input it was handed, that output put in, and each attempt its digest.

use serde_json::Value;

use crate::server::Server;
use crate::trees::tree_folders;

const FLAKY: &str = r#"
[[runway]]
id = "flaky"
agent = "probe"
action = "flaky"
input = { say = "<img src=x onerror=alert(1)>" }
retry = { attempts = 2, initial = "10ms", max = "10ms" }
[[runway]]
id = "use"
agent = "orchestrator"
after = ["flaky"]
input = { output = { got = { from = "flaky" } } }
"#;

const SAID: &str = "<img src=x onerror=alert(1)>";

/// The `runs` of a runway's view.
fn runs(view: &Value) -> &Vec<Value> {
    view["runs"].as_array().expect("runs in show")
}

#[test]
fn show_gives_each_attempt_of_a_flaky_probe_with_its_own_log() {
    let dir = tree_folders();
    let server = Server::start(dir.path());
    let ids = server.file(FLAKY);
    assert_eq!(server.client(&["wait", &ids[0], &ids[1]]).code, 0);

    // The API.
    let (status, body) = crate::server::get(&server.url, "/api/runways/flaky", &server.admin());
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (view["state"].as_str(), view["attempts"].as_u64()),
        (Some("SUCCEEDED"), Some(2))
    );
    let tries = runs(&view);
    assert_eq!(tries.len(), 2, "{tries:?}");
    let first = &tries[0];
    assert_eq!(
        (first["attempt"].as_u64(), first["state"].as_str()),
        (Some(1), Some("FAILED"))
    );
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .contains("flaky, first attempt"),
        "{first}"
    );
    assert_eq!(first["kept"], true);
    assert_eq!(
        first["log"],
        serde_json::json!([format!("Level::Info flaky: attempt 1 {SAID}")])
    );
    assert_eq!(first["output"], Value::Null);
    assert!(first["ended_at"].as_str().unwrap() >= first["started_at"].as_str().unwrap());
    let second = &tries[1];
    assert_eq!(
        (second["attempt"].as_u64(), second["state"].as_str()),
        (Some(2), Some("SUCCEEDED"))
    );
    assert_eq!(
        second["log"],
        serde_json::json!([format!("Level::Info flaky: attempt 2 {SAID}")])
    );
    assert_eq!(second["output"], "{\"attempt\":2}");
    assert_eq!(second["output_digest"], view["output_digest"]);
    assert_eq!(second["output_bytes"], 13);
    assert!(second["started_at"].as_str().unwrap() >= first["ended_at"].as_str().unwrap());
    // Both were handed the same input: the one shown.
    let input = runway_audit::hex::encode(&runway_audit::sha256(
        view["input"].as_str().unwrap().as_bytes(),
    ));
    assert!(
        tries.iter().all(|a| a["input_digest"] == input.as_str()),
        "{input} {tries:?}"
    );
    // The last attempt's log, as before.
    assert_eq!(view["log"], second["log"]);
    // The input handed to a runway taking an output, that output put in.
    let used = server.json(&["show", "use"]);
    let handed: Value = serde_json::from_str(used["input"].as_str().unwrap()).unwrap();
    assert_eq!(
        handed,
        serde_json::json!({ "output": { "got": { "attempt": 2 } } })
    );
    let digest = runway_audit::sha256(used["input"].as_str().unwrap().as_bytes());
    assert_eq!(
        runs(&used)[0]["input_digest"],
        runway_audit::hex::encode(&digest)
    );
    // Lists leave them out.
    let (_, list) = crate::server::get(&server.url, "/api/runways", &server.admin());
    let list: Value = serde_json::from_str(&list).unwrap();
    assert!(list["runways"][0].get("runs").is_none(), "{list}");

    // The CLI, as JSON: the same attempts.
    let shown = server.json(&["show", "flaky"]);
    assert_eq!(runs(&shown), tries);
    // And for a person: each attempt, each with its own line, in order.
    let out = server.client(&["show", "flaky"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout[out.stdout.find("\nruns\n").expect("a runs section")..];
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what:?} not in:\n{text}"))
    };
    assert!(at("  attempt 1  ") < at("FAILED: "));
    assert!(at("FAILED: ") < at("flaky, first attempt"));
    assert!(at("| Level::Info flaky: attempt 1 <img") < at("  attempt 2  "));
    assert!(at("  attempt 2  ") < at("| Level::Info flaky: attempt 2 <img"));
    assert!(at("| Level::Info flaky: attempt 2") < at("output (13 bytes): {\"attempt\":2}"));

    // After a restart the trail still tells of both attempts; their logs
    // were this process's, and it says so.
    server.stop();
    let server = Server::start(dir.path());
    let again = server.json(&["show", "flaky"]);
    let tries = runs(&again);
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(
        (tries[0]["state"].as_str(), tries[1]["state"].as_str()),
        (Some("FAILED"), Some("SUCCEEDED"))
    );
    assert!(
        tries
            .iter()
            .all(|a| a["kept"] == false && a["log"] == serde_json::json!([]))
    );
    assert_eq!(again.get("log"), None);
    let out = server.client(&["show", "flaky"]);
    assert!(out.stdout.contains("no log kept here"), "{}", out.stdout);
}
