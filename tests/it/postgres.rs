//! The PostgreSQL backend on its own terms, against a real server the
//! tests start (`runway_tests::postgres`): its schema migrated from an
//! empty database and a newer one refused, a deposed leader refused, fencing
//! under concurrent commits, the connection string's password in no error,
//! and a host running a plan on it through the library's start path.

use std::sync::{Arc, Barrier};

use runway_host::State;
use runway_host::store::{
    DatabaseUrl, DatasetStore, POSTGRES_SCHEMA_VERSION, Standing, StoreError,
};
use runway_tests::postgres::{self, PASSWORD};
use runway_tests::{Fixture, output};

use crate::store::commit;

/// The store at `url`, opened and leading (as this test binary's one host).
fn open(url: &str, root: &std::path::Path) -> Result<DatasetStore, StoreError> {
    postgres::leading(url, root, "postgres-test")
}

/// An empty database is migrated to the newest schema (once: reopening
/// applies nothing again); a database whose schema is newer than this
/// host knows is refused, naming both versions, and left untouched.
#[test]
fn an_empty_database_is_migrated_and_a_newer_schema_refused() {
    let db = postgres::server().database();
    let root = tempfile::tempdir().unwrap();
    drop(open(&db.url(), root.path()).unwrap());
    drop(open(&db.url(), root.path()).unwrap());
    assert_eq!(
        db.psql("SELECT string_agg(version || ':' || name, ',') FROM refinery_schema_history"),
        "1:datasets,2:hosts,3:record_shard,4:work,5:record_room"
    );
    assert_eq!(POSTGRES_SCHEMA_VERSION, 5);
    // Records leave room for their next version (HOT updates).
    assert_eq!(
        db.psql("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'records'"),
        "fillfactor=50"
    );
    let tables = db.psql(
        "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S')",
    );
    assert_eq!(
        tables,
        "commit_datasets,commits,fences,fencing_tokens,history,history_pos_seq,hosts,leadership,\
         records,refinery_schema_history,work,work_id_seq"
    );

    let newer = POSTGRES_SCHEMA_VERSION + 1;
    db.psql(&format!(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         VALUES ({newer}, 'from_the_future', '2027-01-01T00:00:00Z', '1')"
    ));
    let err = open(&db.url(), root.path()).err().expect("refused");
    assert!(
        matches!(err, StoreError::NewerSchema { found, known, .. }
            if found == newer && known == POSTGRES_SCHEMA_VERSION),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("schema version {newer}"))
            && text.contains(&format!("knows up to {POSTGRES_SCHEMA_VERSION}"))
            && text.contains(&db.name),
        "{text}"
    );
}

/// Two hosts on one database: the first leads, the second stands by and
/// is told who leads. Once the first's lease lapses (its renewals stop, as
/// a frozen host's would), the second takes over with the next term and
/// learns how far the history took the first's shard — and from then on
/// the database refuses every write of the deposed leader: a commit, a
/// fencing token, history, a renewal. The new leader's writes land.
#[test]
fn a_deposed_leaders_writes_are_refused_by_the_database() {
    let db = postgres::server().database();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lease = runway_host::controller::LEASE;
    let first = postgres::leading(&db.url(), a.path(), "host-a").unwrap();
    let first_db = first.shared().unwrap().clone();
    assert_eq!(first_db.term(), Some(1));
    let token = first.next_token().unwrap();
    commit(&first, &[("d", token)], &[("d", "k", b"a")]).unwrap();
    first_db
        .append_history(&[(7, 1, b"seven".to_vec()), (9, 2, b"nine".to_vec())])
        .unwrap();

    let second = DatasetStore::open_postgres(&DatabaseUrl::new(db.url()), b.path()).unwrap();
    let second_db = second.shared().unwrap().clone();
    second_db
        .join(("host-b", std::process::id() + 1), lease, None)
        .unwrap();
    match second_db.take_lead(lease).unwrap() {
        Standing::Standby(leader) => {
            assert_eq!((leader.term, leader.origin.as_str()), (1, "host-a"));
            assert!(leader.expires_in_ms > 0, "{leader:?}");
        }
        other => panic!("the second host should stand by: {other:?}"),
    }
    // An origin a live host uses is refused to another process.
    let other = second_db.join(("host-a", std::process::id() + 2), lease, None);
    let err = other.expect_err("origin refused").to_string();
    assert!(
        err.contains("\"host-a\" is already a live host's")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );

    db.psql("UPDATE leadership SET expires_at = now() - interval '1 second'");
    match second_db.take_lead(lease).unwrap() {
        Standing::Leading { term, accepted } => {
            assert_eq!(term, 2);
            assert_eq!(accepted.len(), 1, "{accepted:?}");
            assert_eq!(
                (accepted[0].origin.as_str(), accepted[0].seq),
                ("host-a", 9)
            );
        }
        other => panic!("the second host should lead: {other:?}"),
    }
    assert_eq!(second_db.leader().unwrap().unwrap().origin, "host-b");

    let refused = |what: &str, err: StoreError| {
        assert!(
            matches!(err, StoreError::NotLeading { .. }),
            "{what}: {err}"
        );
        assert!(err.to_string().contains("term 1 is over"), "{what}: {err}");
    };
    let stale = commit(&first, &[("d", token + 100)], &[("d", "k", b"stale")]);
    refused(
        "commit",
        stale.expect_err("a deposed leader commits nothing"),
    );
    // Refused here already: the first host knows it no longer leads.
    assert_eq!(first_db.term(), None);
    assert!(!first_db.renew(lease, 0).unwrap());
    let err = first
        .next_token()
        .expect_err("no token for a deposed leader");
    assert!(matches!(err, StoreError::NotLeading { .. }), "{err}");
    assert!(
        first_db
            .append_history(&[(10, 3, b"ten".to_vec())])
            .is_err()
    );
    assert_eq!(first.read("d", "k").unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(
        db.psql("SELECT count(*) FROM history WHERE origin = 'host-a'"),
        "2"
    );

    let token = second.next_token().unwrap();
    commit(&second, &[("d", token)], &[("d", "k", b"b")]).unwrap();
    assert_eq!(second.read("d", "k").unwrap().as_deref(), Some(&b"b"[..]));
    let hosts = second_db.hosts().unwrap();
    let origins: Vec<&str> = hosts.iter().map(|h| h.origin.as_str()).collect();
    assert_eq!(origins, ["host-a", "host-b"]);
}

/// Two commits to one dataset at the same moment, on two connections: a
/// stale token (t) and a fresh one (t + 1). Whatever the order the server
/// takes them in, the fresh one's write is what stays and the fence is
/// t + 1: the stale one either landed first (then overwritten) or was
/// fenced — never after the fresh one. A check read before the write
/// would let the stale one land last now and then.
/// Hosts starting together on an empty database: exactly one leads term
/// 1, the others stand by naming it. (The first lead has no row to lock:
/// found by the auditor's check of shards, two hosts once both led term
/// 1.)
#[test]
fn hosts_starting_together_elect_one_leader() {
    let lease = runway_host::controller::LEASE;
    for round in 0..8 {
        let db = postgres::server().database();
        let hosts: Vec<_> = (0..3)
            .map(|k| {
                let root = tempfile::tempdir().unwrap();
                let url = DatabaseUrl::new(db.url());
                let store = DatasetStore::open_postgres(&url, root.path()).unwrap();
                let shared = store.shared().unwrap().clone();
                let origin = format!("host-{k}");
                shared
                    .join((&origin, std::process::id() + 10 + k), lease, None)
                    .unwrap();
                (root, store, shared)
            })
            .collect();
        let start = std::sync::Barrier::new(hosts.len());
        let standings: Vec<Standing> = std::thread::scope(|s| {
            let taking: Vec<_> = hosts
                .iter()
                .map(|(_, _, shared)| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        shared.take_lead(lease).unwrap()
                    })
                })
                .collect();
            taking.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let leading: Vec<u64> = standings
            .iter()
            .filter_map(|s| match s {
                Standing::Leading { term, .. } => Some(*term),
                Standing::Standby(_) => None,
            })
            .collect();
        assert_eq!(leading, [1], "round {round}: {standings:?}");
        for s in &standings {
            if let Standing::Standby(leader) = s {
                assert_eq!(leader.term, 1, "round {round}: {standings:?}");
            }
        }
    }
}

#[test]
fn concurrent_commits_fence_the_stale_token() {
    let db = postgres::server().database();
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&db.url(), root.path()).unwrap());
    let mut fenced = 0;
    for round in 0..40u64 {
        let stale = 10 + 2 * round;
        let fresh = stale + 1;
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [stale, fresh]
            .into_iter()
            .map(|token| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let value = token.to_string();
                    barrier.wait();
                    commit(&store, &[("d", token)], &[("d", "k", value.as_bytes())])
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(results[1].is_ok(), "round {round}: {:?}", results[1]);
        match &results[0] {
            Ok(_) => {}
            Err(StoreError::Fenced { token, fence, .. }) if *token == stale && *fence == fresh => {
                fenced += 1
            }
            Err(e) => panic!("round {round}: {e}"),
        }
        let p = store.provenance("d", "k").unwrap().unwrap();
        assert_eq!(p.token, fresh, "round {round}: the stale write landed last");
        assert_eq!(
            store.read("d", "k").unwrap().as_deref(),
            Some(fresh.to_string().as_bytes())
        );
        assert_eq!(
            db.psql("SELECT token FROM fences WHERE dataset = 'd'"),
            fresh.to_string()
        );
    }
    eprintln!("the stale commit was fenced in {fenced} of 40 rounds");
}

/// The connection string's password shows in no error: not with a wrong
/// password, not for a missing database, not for a string that does not
/// parse — neither in the message nor in the debug form; the database is
/// named (without it). The right password connects.
#[test]
fn the_password_never_shows_in_an_error() {
    let db = postgres::server().database();
    let root = tempfile::tempdir().unwrap();
    let wrong = "Wr0ng-and-secret-too";
    let cases = [
        (
            db.url_with_password(wrong),
            "password authentication failed",
        ),
        (
            db.url_with_password(PASSWORD)
                .replace(&format!("/{}?", db.name), "/no_such_database?"),
            "no_such_database",
        ),
        (
            format!("postgresql://someone:{PASSWORD}@/x?nonsense_option=1"),
            "unknown option `nonsense_option`",
        ),
        (
            format!(
                "postgresql://someone:{PASSWORD}@localhost/x?sslmode=verify-full&sslrootcert=/no/such/ca.pem"
            ),
            "sslrootcert /no/such/ca.pem",
        ),
    ];
    for (url, says) in cases {
        // A root of its own each time: a refused open lets go of its root,
        // but a child another test forks meanwhile may hold it a moment.
        let root = tempfile::tempdir().unwrap();
        let err = open(&url, root.path()).err().expect("refused");
        let (text, debug) = (err.to_string(), format!("{err:?}"));
        for shown in [&text, &debug] {
            assert!(
                !shown.contains(PASSWORD) && !shown.contains(wrong),
                "the password shows: {shown}"
            );
        }
        assert!(text.contains(says), "{text}");
        let debug_url = format!("{:?}", DatabaseUrl::new(url));
        assert!(!debug_url.contains(PASSWORD), "{debug_url}");
    }
    let store = open(&db.url_with_password(PASSWORD), root.path()).unwrap();
    assert_eq!(store.fence("d").unwrap(), 0);
}

/// A host brought up through the library's start path on PostgreSQL runs
/// the nightly's import and check: the records are in the database, with
/// provenance; a restart finds them and the fences where they were.
#[test]
fn a_host_runs_a_plan_on_postgres_and_finds_it_after_a_restart() {
    let f = Fixture::on_postgres();
    let plan = r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = { fafsa_pg = "exclusive" }
        input = { count = 200, seed = 7 }

        [[runway]]
        id = "compliance"
        agent = "compliance-check"
        datasets = { fafsa_pg = "exclusive" }
        after = ["import"]
    "#;
    let report = f.run(plan);
    for r in &report.runways {
        assert_eq!(r.state, State::Succeeded, "{}", r.id);
    }
    assert_eq!(output(&report, "import")["written"], 200);
    let db = f.database().expect("on PostgreSQL");
    assert_eq!(
        db.psql("SELECT count(*) FROM records WHERE dataset = 'fafsa_pg' AND key LIKE 'app/%'"),
        "200"
    );
    assert_eq!(
        db.psql("SELECT count(DISTINCT runway) FROM records WHERE dataset = 'fafsa_pg'"),
        "2"
    );
    let fence = f.host.store.fence("fafsa_pg").unwrap();
    assert!(fence > 0);
    assert_eq!(db.psql("SELECT count(*) FROM commits"), "2");
    let f = f.reopen();
    assert_eq!(f.keys("fafsa_pg", "app/").len(), 200);
    assert_eq!(f.host.store.fence("fafsa_pg").unwrap(), fence);
    assert!(f.host.store.next_token().unwrap() > fence);
    // The embedded database was never made.
    assert!(!f.data.join("runway.db").exists());
}

/// `runway serve --database-file` keeps the datasets in PostgreSQL; a
/// second `serve` on the same database with the same origin is refused
/// (each host signs its own shard), and one given a wrong
/// password in RUNWAY_DATABASE_URL stops naming the database: neither the
/// password nor the connection string shows in their output, in the audit
/// trail or in any file the hosts wrote.
#[test]
fn serve_on_postgres_never_shows_the_password() {
    let db = postgres::server().database();
    let dir = crate::server::folders();
    let url = db.url_with_password(PASSWORD);
    std::fs::write(dir.path().join("db.url"), format!("{url}\n")).unwrap();
    let server = crate::server::Server::start_with(dir.path(), &["--database-file", "db.url"]);
    let ids = server.file(
        r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = { test_pg = "exclusive" }
        input = { count = 5, seed = 1 }
        "#,
    );
    let waited = server.client(&["wait", &ids[0]]);
    assert_eq!(waited.code, 0, "{}{}", waited.stdout, waited.stderr);
    assert_eq!(
        db.psql("SELECT count(*) FROM records WHERE dataset = 'test_pg'"),
        "5"
    );
    // Each record's provenance names the shard (the host) holding its
    // write's record, and that shard's record matches the value.
    let origin = runway_audit::segment::folder_origin(&dir.path().join("runway-audit")).unwrap();
    let data = ["--database-file", "db.url"];
    let exported = crate::cli::runway(
        dir.path(),
        &[&["data", "export", "test_pg"][..], &data].concat(),
    );
    let first: serde_json::Value =
        serde_json::from_str(exported.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["provenance"]["shard"], origin.as_str(), "{first}");
    let key = first["key"].as_str().unwrap();
    let get = [&["data", "get", "test_pg", key, "--provenance"][..], &data].concat();
    let shown = crate::cli::runway(dir.path(), &get);
    assert_eq!(shown.code, 0, "{}{}", shown.stdout, shown.stderr);
    assert!(
        shown
            .stdout
            .contains(&format!("in the shard of host {origin}"))
            && shown.stdout.contains("(matches)"),
        "{}",
        shown.stdout
    );

    // A second host on the same database, from a folder of its own but
    // with the same (default) origin.
    let other = crate::server::folders();
    std::fs::write(other.path().join("db.url"), &url).unwrap();
    let refused = serve_until_exit(other.path(), &["--database-file", "db.url"], &[]);
    assert!(
        refused.contains("is already a live host's") && refused.contains(&db.name),
        "{refused}"
    );
    // A wrong password, from the environment.
    let wrong = db.url_with_password("Wr0ng-Pa55");
    let denied = serve_until_exit(other.path(), &[], &[("RUNWAY_DATABASE_URL", &wrong)]);
    assert!(
        denied.contains("password authentication failed") && denied.contains(&db.name),
        "{denied}"
    );
    assert_eq!(server.stop(), Some(0));
    for (shown, what) in [(&refused, "refusal"), (&denied, "denial")] {
        assert!(
            !shown.contains(PASSWORD) && !shown.contains("Wr0ng-Pa55"),
            "the {what} shows the password: {shown}"
        );
    }
    for folder in [dir.path(), other.path()] {
        assert_no_password_in(folder, &[PASSWORD, "Wr0ng-Pa55"], Some("db.url"));
    }
}

/// `runway serve` in `dir` with `more` arguments and `env`, expected to
/// stop by itself within a minute: its stdout and stderr.
fn serve_until_exit(dir: &std::path::Path, more: &[&str], env: &[(&str, &str)]) -> String {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
        .args(["--plugins", "plugins", "--inbox", "inbox"])
        .args(more)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("serve {more:?} did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "serve {more:?} should have failed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No file under `folder` (but `except`) holds any of `secrets`.
fn assert_no_password_in(folder: &std::path::Path, secrets: &[&str], except: Option<&str>) {
    for entry in std::fs::read_dir(folder).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            assert_no_password_in(&path, secrets, except);
        } else if except.is_none_or(|e| path.file_name().is_none_or(|n| n != e)) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            for secret in secrets {
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "{} holds the password", path.display());
            }
        }
    }
}
