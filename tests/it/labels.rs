//! Labels: an operator's own tags on a manifest (`labels = { team = "aid" }`,
//! at most 16), kept in its FILING record (so a restart keeps them), shown
//! by `list` and `show`, and filtered on at every door — `runway list
//! --label team=aid`, `GET /api/runways?label=team=aid`, MCP's
//! `list_runways`, the page (tests/it/page.rs). Bad labels are refused at
//! filing, naming the runway and the label.

use serde_json::json;

use crate::mcp::call;
use crate::server::{Server, folders, get};

const PLAN: &str = r#"
[[runway]]
id = "aid-one"
agent = "probe"
action = "ok"
labels = { team = "aid", cycle = "2024" }
[[runway]]
id = "ops-one"
agent = "probe"
action = "ok"
labels = { team = "ops" }
[[runway]]
id = "plain"
agent = "probe"
action = "ok"
"#;

fn ids(list: &serde_json::Value) -> Vec<&str> {
    let runways = list["runways"].as_array().expect("runways");
    runways.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

#[test]
fn labels_are_kept_shown_and_filtered_at_every_door() {
    let dir = folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    server.file(PLAN);
    let waited = server.client(&["wait", "aid-one", "ops-one", "plain"]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);

    // The CLI: the filter, the labels under each row, and `show`.
    let listed = server.client(&["list", "--label", "team=aid"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("aid-one"), "{}", listed.stdout);
    assert!(!listed.stdout.contains("ops-one"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("labels cycle=2024, team=aid"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("1 runway(s)"), "{}", listed.stdout);
    let shown = server.client(&["show", "aid-one"]);
    assert!(
        shown.stdout.contains("labels   cycle=2024, team=aid"),
        "{}",
        shown.stdout
    );
    let json = server.json(&["list", "--label", "team=ops"]);
    assert_eq!(ids(&json), ["ops-one"]);
    assert_eq!(
        json["runways"][0]["manifest"]["labels"],
        json!({ "team": "ops" })
    );

    // The API: the query, and a filter that is no key=value refused.
    let (status, body) = get(&server.url, "/api/runways?label=cycle%3D2024", &admin);
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ids(&body), ["aid-one"]);
    let (status, body) = get(&server.url, "/api/runways?label=team", &admin);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("key=value"), "{body}");

    // MCP: the same filter among the tool's arguments.
    let (listed, error) = call(
        &server,
        &admin,
        "list_runways",
        json!({ "label": "team=aid" }),
    );
    assert!(!error, "{listed}");
    assert_eq!(ids(&listed), ["aid-one"]);

    // A restart folds them back from the trail.
    drop(server);
    let server = Server::start(dir.path());
    let json = server.json(&["list", "--label", "team=aid"]);
    assert_eq!(ids(&json), ["aid-one"]);
    assert_eq!(
        json["runways"][0]["manifest"]["labels"],
        json!({ "team": "aid", "cycle": "2024" })
    );
}

#[test]
fn bad_labels_are_refused_at_filing_naming_runway_and_label() {
    let dir = folders();
    let server = Server::start(dir.path());
    let many: Vec<String> = (0..17).map(|i| format!("k{i} = \"v\"")).collect();
    for (labels, said) in [
        (
            "{ \"a=b\" = \"x\" }".to_string(),
            "label \"a=b\": a key is not empty and has no '='",
        ),
        (
            format!("{{ team = \"{}\" }}", "x".repeat(129)),
            "keys and values are at most 128 bytes",
        ),
        (
            "{ team = \"a\\u001bb\" }".to_string(),
            "keys and values are printable",
        ),
        (format!("{{ {} }}", many.join(", ")), "labels"),
    ] {
        let plan = format!("[[runway]]\nid = \"bad\"\nagent = \"probe\"\nlabels = {labels}\n");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, plan).unwrap();
        let out = server.client(&["file", path.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{labels}: {}", out.stderr);
        assert!(out.stderr.contains("\"bad\""), "{}", out.stderr);
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
    }
    let listed = server.json(&["list"]);
    assert_eq!(ids(&listed), Vec::<&str>::new(), "nothing was filed");
}
