//! `runway data` on PostgreSQL (`--database-file` / RUNWAY_DATABASE_URL):
//! read-only beside the running host — no host lock taken, no migration,
//! nothing written — with the same answers as on SQLite, and the password
//! in none of its output or errors.

use serde_json::Value;

use runway_tests::postgres::{self, PASSWORD};

use crate::cli::{Output, runway, runway_with};
use crate::server::{Server, folders};

const DS: &str = "test_pg_data";

const PLAN: &str = r#"
[[runway]]
id = "import"
agent = "import-applications"
datasets = { test_pg_data = "exclusive" }
input = { count = 20, seed = 3 }

[[runway]]
id = "compliance"
agent = "compliance-check"
datasets = { test_pg_data = "exclusive" }
after = ["import"]
"#;

/// Files [`PLAN`] on `server` and waits for each of its runways.
fn run_plan(server: &Server) {
    for id in server.file(PLAN) {
        let waited = server.client(&["wait", &id]);
        assert_eq!(waited.code, 0, "{}{}", waited.stdout, waited.stderr);
    }
}

fn ok(out: Output, what: &str) -> String {
    assert_eq!(out.code, 0, "{what}: {}{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "{what} shows the password"
    );
    out.stdout
}

/// The fields of `data get --provenance --json` that do not depend on
/// the store's token numbering (tokens and audit seqs are compared with
/// the same store's own list and audit trail instead).
fn comparable(doc: &Value) -> Value {
    let p = &doc["provenance"];
    serde_json::json!({
        "value": doc["value"],
        "runway": p["runway"],
        "agent": p["agent"],
        "plugin": p["plugin"],
        "attempt": p["attempt"],
        "value_sha256": p["value_sha256"],
        "args_sha256": p["args_sha256"],
        "args_match": p["args_match"],
        "record_kind": p["record"]["event"]["kind"],
    })
}

/// A host on PostgreSQL runs a plan; while it still runs, `runway data
/// list` and `get --provenance` on the same database (its connection
/// string in a file, then in RUNWAY_DATABASE_URL) answer what the same
/// plan's SQLite store answers; the host keeps its lock and commits after
/// (nothing was taken or written); a database no host has set up is
/// refused and left empty; a wrong password is refused without showing.
#[test]
fn runway_data_reads_postgres_beside_the_running_host() {
    let db = postgres::server().database();
    let (pg_dir, sqlite_dir) = (folders(), folders());
    let (pg, lite) = (pg_dir.path(), sqlite_dir.path());
    let url = db.url_with_password(PASSWORD);
    std::fs::write(pg.join("db.url"), &url).unwrap();
    for dir in [pg, lite] {
        runway_tests::drop_plugin("compliance-check", &dir.join("plugins"));
    }
    let host = Server::start_with(pg, &["--database-file", "db.url"]);
    let lite_host = Server::start(lite);
    run_plan(&host);
    run_plan(&lite_host);

    let list = |dir: &std::path::Path, more: &[&str], env: &[(&str, &str)]| -> Value {
        let args = [&["data", "list", "--json"][..], more].concat();
        serde_json::from_str(&ok(runway_with(dir, &args, env), "data list")).unwrap()
    };
    let on_pg = list(pg, &["--database-file", "db.url"], &[]);
    let from_env = list(pg, &[], &[("RUNWAY_DATABASE_URL", &url)]);
    let on_sqlite = list(lite, &[], &[]);
    assert_eq!(on_pg, from_env);
    assert_eq!(on_pg[0]["name"], DS, "{on_pg}");
    assert_eq!(on_pg[0]["records"], on_sqlite[0]["records"]);
    assert_eq!(on_pg.as_array().unwrap().len(), 1);
    // Without the database, `data` reads the (empty) local data root.
    let local = runway(pg, &["data", "list", "--json"]);
    assert!(!local.stdout.contains(DS), "{}", local.stdout);

    let keys: Vec<String> = db
        .psql(&format!(
            "SELECT string_agg(key, ',' ORDER BY key) FROM records WHERE dataset = '{DS}'"
        ))
        .split(',')
        .map(str::to_string)
        .collect();
    assert!(keys.len() > 20, "{keys:?}");
    for key in [&keys[0], &keys[keys.len() / 2], &keys[keys.len() - 1]] {
        let get = |dir: &std::path::Path, more: &[&str]| -> Value {
            let args = [
                &["data", "get", DS, key, "--provenance", "--json"][..],
                more,
            ]
            .concat();
            serde_json::from_str(&ok(runway(dir, &args), "data get")).unwrap()
        };
        let (p, s) = (get(pg, &["--database-file", "db.url"]), get(lite, &[]));
        assert_eq!(comparable(&p), comparable(&s), "{key}");
        assert_eq!(p["provenance"]["args_match"], true, "{p}");
        assert_eq!(
            p["provenance"]["record"]["seq"], p["provenance"]["audit_seq"],
            "{p}"
        );
        let text = ok(
            runway(
                pg,
                &[
                    "data",
                    "get",
                    DS,
                    key,
                    "--provenance",
                    "--database-file",
                    "db.url",
                ],
            ),
            "data get",
        );
        assert!(text.contains("matches"), "{text}");
    }
    let fence = on_pg[0]["fence"].as_u64().unwrap();
    let last = db.psql(&format!(
        "SELECT max(token) FROM records WHERE dataset = '{DS}'"
    ));
    assert_eq!(fence.to_string(), last, "the last writer set the fence");

    // The host still leads and commits.
    assert_eq!(
        db.psql("SELECT count(*) FROM leadership WHERE expires_at > now()"),
        "1"
    );
    let commits = db.psql("SELECT count(*) FROM commits");
    run_plan(&host);
    assert_ne!(db.psql("SELECT count(*) FROM commits"), commits);
    assert_eq!(host.stop(), Some(0));
    assert_eq!(lite_host.stop(), Some(0));

    // A database no host has run on: refused, and nothing created there.
    let empty = postgres::server().database();
    std::fs::write(pg.join("empty.url"), empty.url_with_password(PASSWORD)).unwrap();
    let refused = runway(pg, &["data", "list", "--database-file", "empty.url"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("no host has run on this database yet")
            && refused.stderr.contains(&empty.name),
        "{}",
        refused.stderr
    );
    assert_eq!(
        empty.psql("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"),
        "0"
    );
    // A wrong password: refused, naming the database, showing neither.
    let wrong = db.url_with_password("Wr0ng-Pa55");
    let denied = runway_with(
        pg,
        &["data", "list"],
        &[("RUNWAY_DATABASE_URL", wrong.as_str())],
    );
    assert_ne!(denied.code, 0);
    let shown = format!("{}{}", denied.stdout, denied.stderr);
    assert!(
        shown.contains("password authentication failed") && shown.contains(&db.name),
        "{shown}"
    );
    assert!(
        !shown.contains("Wr0ng-Pa55") && !shown.contains(PASSWORD),
        "{shown}"
    );
}
