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
use rustix::process::Signal;

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

/// Hosts `PREFIX-NAME/runway` on `db`, each in a folder of its own (the
/// hostile agent among its plugins), started.
fn on(db: &postgres::Database, prefix: &str, names: &[&str]) -> Vec<Host> {
    let start = |name: &&str| {
        let dir = folders();
        runway_tests::drop_plugin("hostile", &dir.path().join("plugins"));
        std::fs::write(dir.path().join("db.url"), db.url()).unwrap();
        Host::start(dir, &format!("{prefix}-{name}/runway"))
    };
    names.iter().map(start).collect()
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
        if started.elapsed() > within {
            let logs: Vec<String> = hosts
                .iter()
                .map(|h| {
                    std::fs::read_to_string(h.dir.path().join("serve.log")).unwrap_or_default()
                })
                .collect();
            panic!(
                "no host took the lead within {within:?}: {}",
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One round's plan: a sleeper still running when the kill comes (filed
/// first, so the leader flies it), a writer (retried), and a flaky runway
/// that succeeds on its second attempt (often on a standby's crew: the
/// leader has two workers).
fn round(i: usize) -> String {
    format!(
        r#"
        [[runway]]
        id = "s{i}"
        agent = "hostile"
        action = "sleep"
        input = {{ secs = 1 }}
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
        "#
    )
}

#[test]
fn killing_the_leader_again_and_again_loses_nothing_and_runs_nothing_twice() {
    const KILLS: usize = 20;
    let db = postgres::server().database();
    let mut hosts = on(&db, "host", &["a", "b", "c"]);
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
    // Every shard verifies with its own key, and the auditor's check of
    // the three together finds one history: each term led once, nothing
    // filed or succeeded twice, no token given twice, no two exclusive
    // holders at once, every COMMITTED with its COMMITTING.
    let together = verify_together(&hosts);
    let terms = together["terms"].as_array().unwrap().len();
    assert!(terms > KILLS, "{terms} terms for {KILLS} kills");
    eprintln!(
        "{} records of deposed terms the database never took",
        together["set_aside"]
    );
    // In the hosts' shards, or their crews' (verified above).
    let crews = hosts.iter().map(|h| h.dir.path().join("runway-audit-crew"));
    let succeeded: HashSet<String> = hosts
        .iter()
        .flat_map(|h| read_verified(h.dir.path()))
        .chain(
            crews
                .filter(|c| c.exists())
                .flat_map(|c| runway_audit::read_records(&c).unwrap()),
        )
        .filter(|r| matches!(r.entry.event, Event::Succeeded { .. }))
        .map(|r| r.entry.runway)
        .collect();
    for id in acked.iter().filter(|id| states[*id] == "SUCCEEDED") {
        assert!(succeeded.contains(id), "{id} has no SUCCEEDED record");
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

/// A leader frozen (SIGSTOP) past its lease while its runs write: another
/// host takes over; thawed (SIGCONT), the frozen host finds its lead gone
/// and stops by itself, having cleared and committed nothing since: no
/// CLEARED record of its shard is dated after the thaw, and no commit of
/// its shard landed that the history had not taken by the takeover (the
/// new leader's LEADING record says how far). Its runs cut short are
/// retried and land on the new leader, whose lease renewals never wait
/// behind its own long commits.
#[test]
fn a_frozen_leader_wakes_to_find_it_leads_no_more() {
    let db = postgres::server().database();
    let mut hosts = on(&db, "frozen", &["a", "b"]);
    let first = leader(&mut hosts, Duration::from_secs(60));
    let plan: String = (0..6)
        .map(|i| round(100 + i))
        .collect::<Vec<_>>()
        .join("\n");
    let plan = plan.replace("agent = \"hostile\"", "agent = \"probe\"");
    let plan = plan.replace("action = \"sleep\"", "action = \"ok\"");
    // Writers long enough to be in flight when the freeze comes.
    let plan = plan.replace("count = 200,", "count = 20000,");
    let acked = hosts[first].server().file(&plan);
    std::thread::sleep(Duration::from_millis(300));
    hosts[first].server().signal(Signal::STOP);
    let frozen_at = Instant::now();
    let second = 1 - first;
    while !hosts[second].server().listening() {
        assert!(
            frozen_at.elapsed() < Duration::from_secs(30),
            "no takeover while the leader is frozen: {}",
            std::fs::read_to_string(hosts[second].dir.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // `runway hosts` names the new leader, its term and its API.
    let out = crate::cli::runway(
        hosts[second].dir.path(),
        &["hosts", "--database-file", "db.url", "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |origin: &str| listed.iter().find(|h| h["host"] == origin).unwrap();
    let new = row(&hosts[second].origin);
    assert_eq!(new["role"], "leader", "{listed:?}");
    assert_eq!(new["term"], 2, "{listed:?}");
    assert_eq!(
        new["api"].as_str(),
        Some(hosts[second].server().url.as_str())
    );
    assert_ne!(row(&hosts[first].origin)["role"], "leader", "{listed:?}");
    // Frozen a while past the takeover, then thawed: it must stop itself.
    std::thread::sleep(Duration::from_millis(500));
    let thawed_ns = runway_audit::now_ns();
    hosts[first].server().signal(Signal::CONT);
    let thawed = Instant::now();
    while !hosts[first].server().exited() {
        assert!(
            thawed.elapsed() < Duration::from_secs(20),
            "the thawed host goes on as if it led"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(hosts[first].dir.path().join("serve.log")).unwrap();
    assert!(log.contains("lost the lead"), "{log}");
    let server = hosts[second].server.take().unwrap();
    server.wait_all(&acked);
    let states = server.states();
    assert_eq!(server.stop(), Some(0));
    for host in &mut hosts {
        host.kill();
    }
    for id in acked.iter().filter(|id| !id.starts_with('s')) {
        assert_eq!(states[id], "SUCCEEDED", "{id}");
    }

    let frozen = &hosts[first].origin;
    let taken = read_verified(hosts[second].dir.path())
        .iter()
        .find_map(|r| match &r.entry.event {
            Event::Leading { accepted, .. } => Some(
                accepted
                    .iter()
                    .find(|a| &a.origin == frozen)
                    .map_or(0, |a| a.seq),
            ),
            _ => None,
        })
        .expect("the new leader's LEADING record");
    // Beyond what the history took are records made before the freeze
    // that it never forwarded, and the runs' host calls after the thaw
    // until the log stopped: no clearance after the thaw, and no commit
    // the database did not take before the takeover.
    let shard = read_verified(hosts[first].dir.path());
    let beyond: Vec<&Record> = shard.iter().filter(|r| r.seq > taken).collect();
    eprintln!(
        "the frozen host's shard: {} records, {} beyond the {taken} the history took",
        shard.len(),
        beyond.len()
    );
    for r in &beyond {
        match &r.entry.event {
            Event::Cleared { .. } => assert!(
                r.time_ns < thawed_ns,
                "#{} cleared {} after the thaw",
                r.seq,
                r.entry.runway
            ),
            Event::Committed { .. } => {
                let committing = shard
                    .iter()
                    .rev()
                    .find(|c| {
                        c.seq < r.seq
                            && c.entry.runway == r.entry.runway
                            && matches!(c.entry.event, Event::Committing { .. })
                    })
                    .expect("its COMMITTING");
                assert!(committing.seq <= taken, "#{} committed unseen", r.seq);
            }
            _ => {}
        }
    }
    assert_eq!(
        db.psql(&format!(
            "SELECT count(*) FROM commits WHERE origin = '{frozen}' AND committing_seq > {taken}"
        )),
        "0"
    );
    for i in 100..106 {
        let held = db.psql(&format!(
            "SELECT count(*) FROM records WHERE dataset = 'test_f{i}'"
        ));
        assert_eq!(held, "20000", "test_f{i}");
    }
    // The auditor sees the frozen host's records past the takeover set
    // aside, and the two shards agree.
    let together = verify_together(&hosts);
    assert_eq!(together["terms"], serde_json::json!([1, 2]));
    assert!(together["set_aside"].as_u64().unwrap() > 0, "{together}");
}

/// `runway audit verify` over every host's shard at once (each with its
/// own key, found beside it), and the folder of a host that never led
/// (none: it is skipped, saying so), each shard against the latest
/// checkpoint the auditor kept of it: what it found, checked together.
/// A kept checkpoint of a shard not given is refused, naming it.
fn verify_together(hosts: &[Host]) -> serde_json::Value {
    let never_led = hosts[0].dir.path().join("never-led/runway-audit");
    // Each host's shard, and its crew's when it flew work standing by.
    let audits: Vec<String> = hosts
        .iter()
        .flat_map(|h| ["runway-audit", "runway-audit-crew"].map(|a| h.dir.path().join(a)))
        .filter(|dir| dir.exists())
        .chain([never_led])
        .map(|dir| dir.display().to_string())
        .collect();
    // (shard folder, the checkpoint kept of it)
    let kept: Vec<(&str, String)> = audits
        .iter()
        .enumerate()
        .filter(|(_, audit)| Path::new(audit).join("checkpoint").exists())
        .map(|(i, audit)| {
            let kept = hosts[0].dir.path().join(format!("kept-{i}.checkpoint"));
            std::fs::copy(Path::new(audit).join("checkpoint"), &kept).expect("keep");
            (audit.as_str(), kept.display().to_string())
        })
        .collect();
    assert!(kept.len() >= 2, "shards that led: {}", kept.len());
    let verify = |shards: &[&str], checkpoints: &[&str]| {
        let mut args = vec!["audit", "verify", "--json"];
        for audit in shards {
            args.extend(["--audit", audit]);
        }
        for checkpoint in checkpoints {
            args.extend(["--checkpoint", checkpoint]);
        }
        crate::cli::runway(hosts[0].dir.path(), &args)
    };
    let all: Vec<&str> = audits.iter().map(String::as_str).collect();
    let checkpoints: Vec<&str> = kept.iter().map(|(_, c)| c.as_str()).collect();
    let out = verify(&all, &checkpoints);
    // On a disagreement, what the hosts warned of says why.
    let warned = || -> String {
        hosts
            .iter()
            .map(|h| {
                let log = std::fs::read_to_string(h.dir.path().join("serve.log"));
                let lines = log.unwrap_or_default();
                let warned = lines
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"));
                format!(
                    "--- {}:\n{}",
                    h.origin,
                    warned.collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    };
    assert_eq!(out.code, 0, "{}{}{}", out.stdout, out.stderr, warned());
    // Without its shard, a kept checkpoint vouches for nothing given.
    let (shard, last) = kept.last().unwrap();
    let others: Vec<&str> = all.iter().copied().filter(|a| a != shard).collect();
    let no = verify(&others, &[last.as_str()]);
    assert_eq!(no.code, 2, "{}{}", no.stdout, no.stderr);
    assert!(no.stderr.contains(last.as_str()), "{}", no.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let shards = json["shards"].as_array().unwrap();
    assert_eq!(shards.len(), audits.len());
    assert!(shards[audits.len() - 1]["skipped"].is_string(), "{json}");
    json["together"].clone()
}

/// Operators see one system: a standby listens from its start and relays
/// every request to the leader — the CLI's list, show and file, the API
/// (saying which host relayed), the page, metrics, MCP's door and the
/// event stream — and a wrong token is refused by the leader through it.
/// When the leader dies, the standby takes over on the same address and
/// answers itself, and the restarted host relays in its turn.
#[test]
fn a_standby_answers_as_the_leader_does() {
    let db = postgres::server().database();
    let mut hosts = on(&db, "relay", &["a", "b"]);
    let lead = leader(&mut hosts, Duration::from_secs(60));
    let standby = 1 - lead;
    // Every host is listed with its API, the standby's too.
    let api_of = |hosts: &mut [Host], i: usize| -> String {
        let listed = crate::cli::runway(
            hosts[i].dir.path(),
            &["hosts", "--json", "--database-file", "db.url"],
        );
        let origin = hosts[i].origin.clone();
        let row = listed
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["host"] == origin.as_str())
            .unwrap_or_else(|| panic!("{origin} not in {}", listed.stdout));
        row["api"].as_str().expect("an api").to_string()
    };
    let relay = api_of(&mut hosts, standby);
    assert_eq!(api_of(&mut hosts, lead), hosts[lead].server().url);

    let server = hosts[lead].server();
    let quick = round(0).replace("agent = \"hostile\"", "agent = \"probe\"");
    let ids = server.file(&quick.replace("action = \"sleep\"", "action = \"ok\""));
    // Filed through the standby: acknowledged by the leader.
    let plan = "[[runway]]\nid = \"via\"\nagent = \"probe\"\naction = \"ok\"\n";
    std::fs::write(server.dir.join("via.toml"), plan).unwrap();
    let filed = server.client_via(&relay, &["file", "via.toml"]);
    assert_eq!(filed.code, 0, "{}{}", filed.stdout, filed.stderr);
    let waited = server.client_via(&relay, &["wait", "--timeout-secs", "60", "via"]);
    assert_eq!(waited.code, 0, "{}{}", waited.stdout, waited.stderr);
    server.wait_all(&ids);
    for args in [&["list", "--json"][..], &["show", "via", "--json"]] {
        let direct = server.client(args);
        let relayed = server.client_via(&relay, args);
        assert_eq!(relayed.code, 0, "{}", relayed.stderr);
        assert_eq!(relayed.stdout, direct.stdout, "{args:?}");
    }
    // The API says who relayed it; the page, metrics and MCP's door answer.
    let admin = server.admin();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let answer = agent
        .get(&format!("{relay}/api/runways/via"))
        .header("Authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let by = answer.headers().get("runway-relayed-by").unwrap();
    assert_eq!(by.to_str().unwrap(), hosts[standby].origin);
    for (path, status) in [("/", 200), ("/metrics", 200), ("/api/runways", 200)] {
        let (got, body) = crate::server::get(&relay, path, &admin);
        assert_eq!(got, status, "{path}: {body}");
    }
    // The figures are the leader's, and say so.
    let (_, metrics) = crate::server::get(&relay, "/metrics", &admin);
    let info = format!("runway_host_info{{host=\"{}\"}} 1", hosts[lead].origin);
    assert!(metrics.contains(&info), "{info} not in\n{metrics}");
    let (refused, body) = crate::server::get(&relay, "/api/runways", "not-a-token");
    assert_eq!(refused, 401, "{body}");
    // MCP through the relay: the leader's handshake, and a tool's answer.
    let hello = serde_json::json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": { "name": "relayed", "version": "1" },
    });
    let (status, hello) = crate::mcp::rpc_at(&relay, &admin, "initialize", hello);
    assert_eq!(status, 200, "{hello}");
    assert_eq!(hello["result"]["serverInfo"]["name"], "runway", "{hello}");
    let show = serde_json::json!({ "name": "show_runway", "arguments": { "id": "via" } });
    let (status, shown) = crate::mcp::rpc_at(&relay, &admin, "tools/call", show);
    assert_eq!(status, 200, "{shown}");
    let shown = &shown["result"]["structuredContent"];
    assert_eq!(shown["id"], "via", "{shown}");
    // The event stream, through the relay, from the first record on.
    let events = crate::server::follow(&relay, "/api/events", &admin, Some(0), 20, |seen| {
        seen.iter().any(|e| e.data["runway"] == "via")
    });
    assert!(
        events.iter().any(|e| e.data["runway"] == "via"),
        "{} events",
        events.len()
    );

    // The leader dies: the standby takes over on the address it relayed
    // from, and answers itself; the restarted host relays to it.
    hosts[lead].kill();
    hosts[lead].restart();
    let next = leader(&mut hosts, Duration::from_secs(60));
    assert_eq!(next, standby);
    assert_eq!(hosts[next].server().url, relay);
    let answer = agent
        .get(&format!("{relay}/api/runways/via"))
        .header(
            "Authorization",
            &format!("Bearer {}", hosts[next].server().admin()),
        )
        .call()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("runway-relayed-by").is_none());
    // (It lists its new address once it joins: the killed process's
    // lease lapses first.)
    runway_tests::eventually("the restarted host relays to the new leader", || {
        let again = api_of(&mut hosts, lead);
        let new_leader = hosts[next].server();
        let relayed = new_leader.client_via(&again, &["list", "--json"]);
        relayed.code == 0 && relayed.stdout == new_leader.client(&["list", "--json"]).stdout
    });
    for host in &mut hosts {
        host.kill();
    }
}

/// `n` sleepers of about a second each and `n` writers of `test_cROUND_K`,
/// each writer retried.
fn busy(round: usize, n: usize) -> String {
    let mut plan = String::new();
    for k in 0..n {
        plan += &format!(
            r#"
            [[runway]]
            id = "s{round}_{k}"
            agent = "hostile"
            action = "sleep"
            input = {{ secs = 1 }}
            retry = {{ attempts = 5, backoff = "fixed", initial = "50ms" }}
            [[runway]]
            id = "w{round}_{k}"
            agent = "import-applications"
            datasets = {{ test_c{round}_{k} = "exclusive" }}
            input = {{ count = 300, seed = {k} }}
            retry = {{ attempts = 5, backoff = "fixed", initial = "50ms" }}
            "#
        );
    }
    plan
}

/// Every runway in `ids` SUCCEEDED, and each writer of [`busy`]'s
/// `rounds` rounds of `n` holds all its records.
fn busy_landed(
    db: &postgres::Database,
    states: &std::collections::HashMap<String, String>,
    ids: &[String],
    (rounds, n): (usize, usize),
) {
    for id in ids {
        let state = states.get(id).unwrap_or_else(|| panic!("{id} was lost"));
        assert_eq!(state, "SUCCEEDED", "{id}");
    }
    for i in 0..rounds {
        for k in 0..n {
            let held = db.psql(&format!(
                "SELECT count(*) FROM records WHERE dataset = 'test_c{i}_{k}'"
            ));
            assert_eq!(held, "300", "test_c{i}_{k}");
        }
    }
}

/// Once the crew of `hosts` (two: the leader and one standby) flies
/// `flying` runways, freezes it (SIGSTOP) for `ms`, thaws it, and waits
/// for `ids` to land on the leader and the thawed crew to have its moment;
/// the last states, and the crew's shard. Every host is stopped after.
fn freeze_crew(
    hosts: &mut [Host],
    ids: &[String],
    flying: usize,
    ms: u64,
) -> (
    std::collections::HashMap<String, String>,
    std::path::PathBuf,
) {
    let lead = leader(hosts, Duration::from_secs(60));
    let crew = 1 - lead;
    let crew_shard = hosts[crew].dir.path().join("runway-audit-crew");
    let started = Instant::now();
    while flown_in(&crew_shard).len() < flying {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the crew flew {} of {flying}",
            flown_in(&crew_shard).len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    hosts[crew].server().signal(Signal::STOP);
    std::thread::sleep(Duration::from_millis(ms));
    hosts[crew].server().signal(Signal::CONT);
    let server = hosts[lead].server.take().expect("the leader");
    server.wait_all(ids);
    let states = server.states();
    // Give the thawed crew its moment to try.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.stop(), Some(0));
    for host in hosts.iter_mut() {
        host.kill();
    }
    (states, crew_shard)
}

/// The runways of shard `dir` that its records say flew there (STARTED).
fn flown_in(dir: &Path) -> HashSet<String> {
    if !dir.exists() {
        return HashSet::new();
    }
    runway_audit::read_records(dir)
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.entry.event, Event::Started { .. }))
        .map(|r| r.entry.runway)
        .collect()
}

/// Every host is a worker: what the leader has no worker free for is
/// posted, and the standbys' crews claim it, fly it in their own sandbox
/// and land it under their claim; each crew keeps its own shard, which
/// verifies with its host's key and agrees with the others.
#[test]
fn standbys_fly_what_the_leader_has_no_worker_for() {
    let db = postgres::server().database();
    let mut hosts = on(&db, "crew", &["a", "b", "c"]);
    let lead = leader(&mut hosts, Duration::from_secs(60));
    let server = hosts[lead].server.take().expect("the leader");
    let ids = server.file(&busy(0, 4));
    server.wait_all(&ids);
    busy_landed(&db, &server.states(), &ids, (1, 4));
    // The leader's two workers could not fly eight runways at once: the
    // crews flew the rest.
    let by_crews: HashSet<String> = hosts
        .iter()
        .flat_map(|h| flown_in(&h.dir.path().join("runway-audit-crew")))
        .collect();
    assert!(by_crews.len() >= 2, "crews flew {by_crews:?}");
    let crew_writes =
        db.psql("SELECT count(DISTINCT dataset) FROM records WHERE origin LIKE '%+crew'");
    eprintln!("crews flew {by_crews:?}, wrote {crew_writes} dataset(s)");
    assert_eq!(server.stop(), Some(0));
    for host in &mut hosts {
        host.kill();
    }
    let together = verify_together(&hosts);
    assert_eq!(together["set_aside"], 0, "{together}");
}

/// Crews killed with SIGKILL mid-run, again and again: each run a dead
/// crew held is taken from it ("host …+crew lost during the run") and
/// retried; nothing acknowledged is lost, no writer's dataset holds part
/// of a run, and the shards — the crews' among them — agree.
#[test]
fn killing_crews_mid_run_loses_nothing() {
    const KILLS: usize = 20;
    let db = postgres::server().database();
    let mut hosts = on(&db, "crewkill", &["a", "b", "c"]);
    let lead = leader(&mut hosts, Duration::from_secs(60));
    let mut acked = Vec::new();
    for i in 0..KILLS {
        acked.extend(hosts[lead].server().file(&busy(i, 3)));
        std::thread::sleep(Duration::from_millis(300 + fastrand::u64(0..500)));
        // A standby whose crew flies something, if any does.
        let standbys: Vec<usize> = (0..hosts.len()).filter(|&h| h != lead).collect();
        let victim = standbys[i % standbys.len()];
        hosts[victim].kill();
        hosts[victim].restart();
    }
    let server = hosts[lead].server.take().expect("the leader");
    server.wait_all(&acked);
    let states = server.states();
    assert_eq!(server.stop(), Some(0), "the leader stops cleanly");
    for host in &mut hosts {
        host.kill();
    }
    busy_landed(&db, &states, &acked, (KILLS, 3));
    let lost = db.psql(
        "SELECT count(*) FROM history WHERE position('+crew lost during the run' in \
         encode(entry, 'escape')) > 0",
    );
    eprintln!("{lost} crew runs cut short by {KILLS} kills");
    assert_ne!(lost, "0", "no kill caught a crew's run in flight");
    verify_together(&hosts);
}

/// A crew thawed (SIGCONT) after the leader took its claims still flies
/// the attempts it began, now void, while their retries wait posted (the
/// leader's own workers are busy). The crew flies one attempt of a runway
/// at a time: it claims a retry only once its void attempt ended and was
/// marked ABANDONED, and the retry's records, not the void one's, are what
/// the history takes.
#[test]
fn a_thawed_crew_flies_one_attempt_of_a_runway_at_a_time() {
    let db = postgres::server().database();
    let mut hosts = on(&db, "zombie", &["a", "b"]);
    let lead = leader(&mut hosts, Duration::from_secs(60));
    // Two sleepers for the leader's two workers, two for the crew's.
    let plan: String = (0..4)
        .map(|k| {
            format!(
                r#"
                [[runway]]
                id = "z{k}"
                agent = "hostile"
                action = "sleep"
                input = {{ secs = 4 }}
                retry = {{ attempts = 5, backoff = "fixed", initial = "50ms" }}
                "#
            )
        })
        .collect();
    let ids = hosts[lead].server().file(&plan);
    // Past the lease (2 s) and the leader's next look at the hosts: the
    // crew's runs are retried and posted, the leader's workers still busy
    // (the hostile agent's window is 5 s: the sleepers end within it).
    let (states, crew_shard) = freeze_crew(&mut hosts, &ids, 2, 3200);
    for id in &ids {
        assert_eq!(states[id], "SUCCEEDED", "{id}");
    }
    // In the crew's shard, no attempt of a runway starts while an earlier
    // one of it is still open there.
    let records = runway_audit::read_records(&crew_shard).unwrap();
    let mut open: HashSet<String> = HashSet::new();
    for r in &records {
        match r.entry.event {
            Event::Started { .. } => assert!(
                open.insert(r.entry.runway.clone()),
                "record {}: {} started again on the crew while an attempt of it flew there",
                r.seq,
                r.entry.runway
            ),
            Event::Succeeded { .. }
            | Event::Failed { .. }
            | Event::Moved { .. }
            | Event::Abandoned { .. } => {
                open.remove(&r.entry.runway);
            }
            _ => {}
        }
    }
    let abandoned = records
        .iter()
        .filter(|r| matches!(r.entry.event, Event::Abandoned { .. }))
        .count();
    assert!(abandoned > 0, "the thawed crew abandoned nothing");
    verify_together(&hosts);
}

/// A crew frozen (SIGSTOP) past its host's lease while it flies: the
/// leader takes its claims and retries their runs elsewhere; thawed
/// (SIGCONT), the crew finds its claims gone — its commits refused, its
/// records of those attempts kept in its shard alone and marked ABANDONED
/// — and lands nothing of them.
#[test]
fn a_frozen_crew_wakes_to_find_its_claims_gone() {
    let db = postgres::server().database();
    let mut hosts = on(&db, "frozencrew", &["a", "b"]);
    let lead = leader(&mut hosts, Duration::from_secs(60));
    let ids = hosts[lead].server().file(&busy(0, 3));
    let (states, crew_shard) = freeze_crew(&mut hosts, &ids, 1, 4000);
    busy_landed(&db, &states, &ids, (1, 3));
    // The crew's shard: what it flew while frozen was abandoned, and no
    // abandoned attempt committed anything.
    let records = runway_audit::read_records(&crew_shard).unwrap();
    let abandoned: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.entry.event, Event::Abandoned { .. }))
        .collect();
    assert!(!abandoned.is_empty(), "the thawed crew abandoned nothing");
    for a in &abandoned {
        let attempt = records
            .iter()
            .rev()
            .skip_while(|r| r.seq >= a.seq)
            .filter(|r| r.entry.runway == a.entry.runway)
            .take_while(|r| !matches!(r.entry.event, Event::Started { .. }));
        for r in attempt {
            assert!(
                !matches!(r.entry.event, Event::Committed { .. }),
                "abandoned runway {} committed: record {}",
                a.entry.runway,
                r.seq
            );
        }
    }
    let lost = db.psql(
        "SELECT count(*) FROM history WHERE position('+crew lost during the run' in \
         encode(entry, 'escape')) > 0",
    );
    assert_ne!(lost, "0", "the leader never took the frozen crew's claims");
    verify_together(&hosts);
}
