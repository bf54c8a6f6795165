//! Many hosts on one PostgreSQL database (DESIGN.md, "Beyond one
//! machine"): three `runway serve` processes, each with its own folder,
//! origin, key and audit shard. One leads and listens; the others stand
//! by. The leader is killed with SIGKILL again and again under load; each
//! time another host takes over, folds the shared history and goes on.
//! Every acknowledged runway ends, nothing succeeds twice, each writer's
//! dataset holds all of its records or none, every shard verifies with
//! its own key, and the shards' LEADING records name each term once.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use runway_audit::{Event, Record};
use runway_tests::postgres;

use crate::restart::read_verified;
use crate::server::{Server, folders};

/// How long a lead lasts unrenewed in this test (renewed every quarter).
const LEASE_MS: &str = "2000";

/// One host: its folder, its origin and its current process.
struct Host {
    dir: tempfile::TempDir,
    origin: String,
    server: Option<Server>,
}

impl Host {
    fn start(dir: tempfile::TempDir, origin: &str) -> Host {
        let server = spawn(dir.path(), origin);
        Host {
            dir,
            origin: origin.to_string(),
            server: Some(server),
        }
    }

    fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("a process")
    }

    /// Starts its process again (after a kill, or after it stopped
    /// itself on losing the lead).
    fn restart(&mut self) {
        self.server = Some(spawn(self.dir.path(), &self.origin));
    }

    /// SIGKILL, and its address file gone with it.
    fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill();
        }
        let _ = std::fs::remove_file(self.dir.path().join("runway-serve.addr"));
    }
}

fn spawn(dir: &Path, origin: &str) -> Server {
    let args = [
        "--database-file",
        "db.url",
        "--origin",
        origin,
        "--lease-ms",
        LEASE_MS,
    ];
    Server::spawn(dir, &args, &[], Some(&dir.join("serve.log")))
}

/// The host that leads and listens, waiting up to `within`; hosts whose
/// process ended meanwhile are started again.
fn leader(hosts: &mut [Host], within: Duration) -> usize {
    let started = Instant::now();
    loop {
        for (i, host) in hosts.iter_mut().enumerate() {
            if host.server().exited() {
                host.kill();
                host.restart();
                continue;
            }
            if host.server().listening() {
                return i;
            }
        }
        assert!(
            started.elapsed() < within,
            "no host took the lead within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One round's plan: a writer (retried), a flaky runway that succeeds on
/// its second attempt, and a sleeper still running when the kill comes.
fn round(i: usize) -> String {
    format!(
        r#"
        [[runway]]
        id = "w{i}"
        agent = "import-applications"
        datasets = {{ test_f{i} = "exclusive" }}
        input = {{ count = 200, seed = {i} }}
        retry = {{ attempts = 5, backoff = "fixed", initial = "50ms" }}
        [[runway]]
        id = "f{i}"
        agent = "probe"
        action = "flaky"
        retry = {{ attempts = 3, backoff = "fixed", initial = "50ms" }}
        [[runway]]
        id = "s{i}"
        agent = "hostile"
        action = "sleep"
        input = {{ secs = 1 }}
        "#
    )
}

#[test]
fn killing_the_leader_again_and_again_loses_nothing_and_runs_nothing_twice() {
    const KILLS: usize = 20;
    let db = postgres::server().database();
    let mut hosts: Vec<Host> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let dir = folders();
            runway_tests::drop_plugin("hostile", &dir.path().join("plugins"));
            std::fs::write(dir.path().join("db.url"), db.url()).unwrap();
            Host::start(dir, &format!("host-{name}/runway"))
        })
        .collect();
    let mut acked: Vec<String> = Vec::new();
    let mut takeovers = Vec::new();
    for i in 0..KILLS {
        let lead = leader(&mut hosts, Duration::from_secs(60));
        acked.extend(hosts[lead].server().file(&round(i)));
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..400)));
        let killed = Instant::now();
        hosts[lead].kill();
        hosts[lead].restart();
        let next = leader(&mut hosts, Duration::from_secs(60));
        takeovers.push((lead, next, killed.elapsed()));
    }
    // Let everything land on the last leader.
    let lead = leader(&mut hosts, Duration::from_secs(60));
    let server = hosts[lead].server.take().expect("the leader");
    server.wait_all(&acked);
    let states = server.states();
    assert_eq!(server.stop(), Some(0), "the last leader stops cleanly");
    for host in &mut hosts {
        host.kill();
    }

    let ended = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"];
    for id in &acked {
        let state = states.get(id).unwrap_or_else(|| panic!("{id} was lost"));
        assert!(ended.contains(&state.as_str()), "{id} is {state}");
    }
    // Every shard verifies with its own key; across them, nothing
    // succeeded twice and no token was given twice. A term is led once.
    let shards: Vec<(String, Vec<Record>)> = hosts
        .iter()
        .map(|h| (h.origin.clone(), read_verified(h.dir.path())))
        .collect();
    let mut succeeded = HashSet::new();
    let mut tokens = HashSet::new();
    let mut terms = HashSet::new();
    let mut void = 0;
    for (origin, records) in &shards {
        for r in records {
            if refused(&shards, origin, r) {
                void += 1;
                continue;
            }
            match &r.entry.event {
                Event::Succeeded { .. } => assert!(
                    succeeded.insert(r.entry.runway.clone()),
                    "{} succeeded twice",
                    r.entry.runway
                ),
                Event::LockGranted { token, .. } => {
                    assert!(tokens.insert(*token), "token {token} given twice")
                }
                Event::Leading { term, .. } => {
                    assert!(terms.insert(*term), "term {term} led twice")
                }
                _ => {}
            }
        }
    }
    assert!(
        terms.len() > KILLS,
        "{} terms for {KILLS} kills",
        terms.len()
    );
    eprintln!("{void} records of deposed terms the database never took");
    for id in &acked {
        assert_eq!(succeeded.contains(id), states[id] == "SUCCEEDED", "{id}");
    }
    // Every writer's dataset holds all its records or none.
    for i in 0..KILLS {
        let held = db.psql(&format!(
            "SELECT count(*) FROM records WHERE dataset = 'test_f{i}'"
        ));
        let writer = &states[&format!("w{i}")];
        let expected = if writer == "SUCCEEDED" { "200" } else { "0" };
        assert_eq!(held, expected, "test_f{i} with w{i} {writer}");
    }
    // The kills were real: runs were cut short and named their host.
    let lost = db.psql(
        "SELECT count(*) FROM history WHERE position('lost during the run' in \
         encode(entry, 'escape')) > 0",
    );
    assert_ne!(lost, "0", "no kill caught a run in flight");
    let slowest = takeovers.iter().map(|t| t.2).max().unwrap();
    eprintln!("{KILLS} leader kills; slowest takeover {slowest:?}; takeovers {takeovers:?}");
    assert!(
        slowest < Duration::from_secs(10),
        "a takeover took {slowest:?}"
    );
}

/// Whether record `r` of shard `origin` was made under a term that a later
/// takeover ended before the shared history took it: some LEADING record
/// of a later term names how far the history took this shard, and `r` is
/// beyond that (or the shard is not named at all). Such a record happened
/// on its host only (a leader killed between its disk and the database):
/// the other hosts never saw it, and its run may have run again.
fn refused(shards: &[(String, Vec<Record>)], origin: &str, r: &Record) -> bool {
    let term_of = |records: &[Record], seq: u64| {
        records
            .iter()
            .take_while(|x| x.seq <= seq)
            .filter_map(|x| match &x.entry.event {
                Event::Leading { term, .. } => Some(*term),
                _ => None,
            })
            .last()
    };
    let mine = &shards.iter().find(|(o, _)| o == origin).unwrap().1;
    let Some(term) = term_of(mine, r.seq) else {
        return false;
    };
    shards
        .iter()
        .flat_map(|(_, records)| records)
        .any(|x| match &x.entry.event {
            Event::Leading {
                term: later,
                accepted,
            } if *later > term => accepted
                .iter()
                .find(|a| a.origin == origin)
                .is_none_or(|a| r.seq > a.seq),
            _ => false,
        })
}
