//! The dataset store's semantics, on both backends: every test here runs
//! on the embedded SQLite store and on PostgreSQL (a real server the
//! tests start, `runway_tests::postgres`), through the same
//! `DatasetStore` — commits all-or-nothing per run, fences, commits rows,
//! provenance, listing and counting with staged changes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use runway_host::store::{
    Change, CommitStats, DatasetStore, LandedDataset, RunCommit, Staged, StoreConfig, StoreError,
};
use runway_tests::postgres::{self, Database};

/// One backend under test: how to open it (again) over a data root.
pub struct Backend {
    pub name: &'static str,
    pub config: StoreConfig,
    pub root: tempfile::TempDir,
    _db: Option<Database>,
}

impl Backend {
    /// Opens the store, waiting while it is still held: a reopen may meet
    /// the lock of the store just dropped (a PostgreSQL session closing),
    /// or a child another test forked holding the root's lock until it
    /// execs.
    pub fn open(&self) -> DatasetStore {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let opened = match (&self.config, &self._db) {
                (_, Some(db)) => postgres::leading(&db.url(), self.root.path(), "store-suite"),
                (config, None) => DatasetStore::open_with(config, self.root.path()),
            };
            match opened {
                Ok(store) => return store,
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{}: {e}", self.name),
            }
        }
    }
}

/// The embedded store and PostgreSQL, each fresh.
pub fn backends() -> Vec<Backend> {
    let db = postgres::server().database();
    vec![
        Backend {
            name: "sqlite",
            config: StoreConfig::Embedded,
            root: tempfile::tempdir().unwrap(),
            _db: None,
        },
        Backend {
            name: "postgres",
            config: db.config(),
            root: tempfile::tempdir().unwrap(),
            _db: Some(db),
        },
    ]
}

fn tokens(t: &[(&str, u64)]) -> BTreeMap<String, u64> {
    t.iter().map(|(d, t)| (d.to_string(), *t)).collect()
}

fn staged(writes: &[(&str, &str, &[u8])]) -> Staged {
    let mut staged = Staged::default();
    for (i, (dataset, key, value)) in writes.iter().enumerate() {
        staged.stage(dataset, key, Change::Put(value.to_vec()), i as u64);
    }
    staged
}

fn run<'a>(
    runway: &'a str,
    staged: &'a Staged,
    tokens: &'a BTreeMap<String, u64>,
    committing_seq: u64,
) -> RunCommit<'a> {
    RunCommit {
        runway,
        agent: "a",
        plugin: [7; 32],
        attempt: 1,
        tokens,
        staged,
        seq_of: &|call| 100 + call,
        deadline: Instant::now() + Duration::from_secs(60),
        committing_seq,
        output: [3; 32],
    }
}

/// One run's commit, found later by COMMITTING seq = its lowest token × 10.
pub fn commit(
    store: &DatasetStore,
    t: &[(&str, u64)],
    writes: &[(&str, &str, &[u8])],
) -> Result<BTreeMap<String, CommitStats>, StoreError> {
    let (staged, tokens) = (staged(writes), tokens(t));
    let seq = tokens.values().min().copied().unwrap_or(0) * 10;
    let r = run("r", &staged, &tokens, seq);
    store
        .commit(std::slice::from_ref(&r))
        .pop()
        .expect("one result per run")
}

/// Runs landing in one transaction: each is all-or-nothing on its own,
/// and a fence raised by an earlier run of the batch holds for the later.
#[test]
fn a_batch_lands_each_run_or_none_of_it() {
    for b in backends() {
        let store = b.open();
        let (s1, t1) = (staged(&[("a", "1", b"v")]), tokens(&[("a", 5)]));
        // Holds "a" with an older token than run 1 (a stale holder) and
        // also writes "b": it must leave "b" alone too.
        let (s2, t2) = (
            staged(&[("a", "2", b"v"), ("b", "2", b"v")]),
            tokens(&[("a", 3), ("b", 3)]),
        );
        let (s3, t3) = (staged(&[("c", "3", b"v")]), tokens(&[("c", 4)]));
        let results = store.commit(&[
            run("r1", &s1, &t1, 10),
            run("r2", &s2, &t2, 11),
            run("r3", &s3, &t3, 12),
        ]);
        let name = b.name;
        assert!(results[0].is_ok(), "{name}: {:?}", results[0]);
        assert!(
            matches!(
                results[1],
                Err(StoreError::Fenced {
                    token: 3,
                    fence: 5,
                    ..
                })
            ),
            "{name}: {:?}",
            results[1]
        );
        assert!(results[2].is_ok(), "{name}: {:?}", results[2]);
        assert!(store.read("a", "1").unwrap().is_some(), "{name}");
        assert_eq!(store.read("a", "2").unwrap(), None, "{name}");
        assert_eq!(store.read("b", "2").unwrap(), None, "{name}");
        assert_eq!(store.fence("b").unwrap(), 0, "{name}");
        assert!(store.read("c", "3").unwrap().is_some(), "{name}");
        assert!(store.landed("store-suite", 10).unwrap().is_some(), "{name}");
        assert_eq!(store.landed("store-suite", 11).unwrap(), None, "{name}");
        assert!(store.landed("store-suite", 12).unwrap().is_some(), "{name}");
    }
}

#[test]
fn a_fenced_dataset_commits_nothing_anywhere() {
    for b in backends() {
        let store = b.open();
        commit(&store, &[("b", 5)], &[("b", "k", b"first")]).unwrap();
        // Token 3 on "b" is below its fence 5: neither "a" nor "b" changes.
        let err = commit(
            &store,
            &[("a", 3), ("b", 3)],
            &[("a", "k", b"new"), ("b", "k", b"new")],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Fenced {
                    token: 3,
                    fence: 5,
                    ..
                }
            ),
            "{}: {err}",
            b.name
        );
        assert_eq!(store.read("a", "k").unwrap(), None, "{}", b.name);
        assert_eq!(
            store.read("b", "k").unwrap().as_deref(),
            Some(&b"first"[..]),
            "{}",
            b.name
        );
        assert_eq!(store.fence("a").unwrap(), 0, "{}", b.name);
        // Deletes land too, and count only keys that were there.
        let mut deletes = Staged::default();
        deletes.stage("b", "k", Change::Delete, 0);
        deletes.stage("b", "never", Change::Delete, 1);
        let t = tokens(&[("b", 6)]);
        let landed = store.commit(&[run("r", &deletes, &t, 60)]).pop().unwrap();
        let stats = landed.unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert_eq!(
            stats["b"],
            CommitStats {
                writes: 0,
                deletes: 1
            },
            "{}",
            b.name
        );
        assert_eq!(store.read("b", "k").unwrap(), None, "{}", b.name);
        assert_eq!(store.fence("b").unwrap(), 6, "{}", b.name);
    }
}

/// Staged writes to a dataset the run holds no exclusive token on land
/// nothing; a run past its deadline lands nothing.
#[test]
fn no_token_or_no_time_lands_nothing() {
    for b in backends() {
        let store = b.open();
        let err = commit(&store, &[("a", 3)], &[("a", "k", b"v"), ("z", "k", b"v")]).unwrap_err();
        assert!(
            matches!(err, StoreError::NoExclusiveLock { .. }),
            "{}: {err}",
            b.name
        );
        let (s, t) = (staged(&[("a", "k", b"v")]), tokens(&[("a", 3)]));
        let mut late = run("r", &s, &t, 30);
        late.deadline = Instant::now() - Duration::from_millis(1);
        let err = store.commit(&[late]).pop().unwrap().unwrap_err();
        assert!(matches!(err, StoreError::PastDeadline), "{}: {err}", b.name);
        assert_eq!(store.read("a", "k").unwrap(), None, "{}", b.name);
        assert_eq!(store.landed("store-suite", 30).unwrap(), None, "{}", b.name);
        assert_eq!(store.fence("a").unwrap(), 0, "{}", b.name);
    }
}

#[test]
fn records_carry_their_provenance_and_survive_a_reopen() {
    for b in backends() {
        let name = b.name;
        let first = {
            let store = b.open();
            let first = store.next_token().unwrap();
            assert!(first >= 1, "{name}");
            commit(&store, &[("d", 9)], &[("d", "x", b"1"), ("d", "y", b"2")]).unwrap();
            first
        };
        let store = b.open();
        let p = store.provenance("d", "y").unwrap().unwrap();
        assert_eq!((p.runway.as_str(), p.agent.as_str()), ("r", "a"), "{name}");
        assert_eq!(
            (p.token, p.attempt, p.audit_seq, p.plugin),
            (9, 1, 101, [7; 32]),
            "{name}"
        );
        assert_eq!(store.fence("d").unwrap(), 9, "{name}");
        // The commit is found by its COMMITTING record (token 9 → seq 90 here).
        let landed = store.landed("store-suite", 90).unwrap().expect("landed");
        let stats = CommitStats {
            writes: 2,
            deletes: 0,
        };
        assert_eq!(
            landed.datasets,
            [LandedDataset {
                dataset: "d".into(),
                token: 9,
                stats
            }],
            "{name}"
        );
        assert_eq!((landed.runway.as_str(), landed.attempt), ("r", 1), "{name}");
        assert_eq!(landed.output, [3; 32], "{name}");
        assert_eq!(store.landed("store-suite", 91).unwrap(), None, "{name}");
        assert!(
            store.next_token().unwrap() > first,
            "{name}: tokens are never reused across a reopen"
        );
        let (keys, more) = store.list("d", "", None, 10, None).unwrap();
        assert_eq!(
            (keys, more),
            (vec!["x".to_string(), "y".to_string()], false),
            "{name}"
        );
        let records = store.records("d").unwrap();
        assert_eq!(records.len(), 2, "{name}");
        assert_eq!(
            (records[0].0.as_str(), &records[0].1[..]),
            ("x", &b"1"[..]),
            "{name}"
        );
        let summary = store.datasets().unwrap();
        assert_eq!(summary.len(), 1, "{name}");
        assert_eq!((summary[0].records, summary[0].fence), (2, 9), "{name}");
    }
}

#[test]
fn listing_pages_through_many_keys_and_staged_changes() {
    for b in backends() {
        let name = b.name;
        let store = b.open();
        let keys: Vec<String> = (0..1200).map(|i| format!("k/{i:05}")).collect();
        let writes: Vec<(&str, &str, &[u8])> =
            keys.iter().map(|k| ("d", k.as_str(), &b"v"[..])).collect();
        commit(&store, &[("d", 1)], &writes).unwrap();
        let mut staged = Staged::default();
        staged.stage("d", "k/00001", Change::Delete, 0);
        staged.stage("d", "k/00600a", Change::Put(b"new".to_vec()), 1);
        let (all, more) = store
            .list("d", "k/", None, usize::MAX, staged.dataset("d"))
            .unwrap();
        assert!(!more, "{name}");
        assert_eq!(all.len(), 1200, "{name}");
        assert!(!all.contains(&"k/00001".to_string()), "{name}");
        assert!(all.contains(&"k/00600a".to_string()), "{name}");
        let (page, more) = store.list("d", "k/", Some("k/01100"), 50, None).unwrap();
        assert_eq!((page.len(), more), (50, true), "{name}");
        assert_eq!(page[0], "k/01101", "{name}");

        // Counts agree with the listings: committed keys counted by the
        // store, the run's staged changes counted in.
        staged.stage("d", "k/00002", Change::Put(b"again".to_vec()), 2);
        staged.stage("d", "k/00700b", Change::Delete, 3);
        let reader = store.reader().unwrap();
        let count = |prefix: &str, staged: Option<&Staged>| {
            reader
                .count("d", prefix, staged.and_then(|s| s.dataset("d")))
                .unwrap()
        };
        assert_eq!(count("k/", Some(&staged)), all.len() as u64, "{name}");
        assert_eq!(count("k/006", Some(&staged)), 101, "{name}");
        assert_eq!(count("k/006", None), 100, "{name}");
        assert_eq!(count("", None), 1200, "{name}");
        assert_eq!(count("k/00001", Some(&staged)), 0, "{name}");
        assert_eq!(count("x", Some(&staged)), 0, "{name}");
        // Point reads in order and out of order (the read-ahead's paths).
        for i in (0..1200).step_by(7).chain([3, 1199, 0]) {
            let key = format!("k/{i:05}");
            assert_eq!(
                reader.read("d", &key).unwrap().as_deref(),
                Some(&b"v"[..]),
                "{name}"
            );
        }
        assert_eq!(reader.read("d", "k/00000a").unwrap(), None, "{name}");
        assert_eq!(store.len("d").unwrap(), 1200, "{name}");
        assert_eq!(store.len("elsewhere").unwrap(), 0, "{name}");
    }
}

/// Keys order byte by byte on both backends (PostgreSQL's text collation
/// would put "B" after "a"; the store's columns are COLLATE "C").
#[test]
fn keys_order_byte_by_byte() {
    for b in backends() {
        let store = b.open();
        let keys = ["a", "B", "_", "a-b", "a.b", "aB", "Z9", "0"];
        let writes: Vec<(&str, &str, &[u8])> = keys.iter().map(|k| ("d", *k, &b"v"[..])).collect();
        commit(&store, &[("d", 1)], &writes).unwrap();
        let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        want.sort();
        let (got, _) = store.list("d", "", None, 100, None).unwrap();
        assert_eq!(got, want, "{}", b.name);
        let (got, _) = store.list("d", "a", None, 100, None).unwrap();
        assert_eq!(got, ["a", "a-b", "a.b", "aB"], "{}", b.name);
    }
}
