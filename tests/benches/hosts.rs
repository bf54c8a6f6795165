//! Hosts on one PostgreSQL database against the embedded store, on the
//! same work, as whole `runway serve` processes on loopback (release
//! build), each with its own data root and audit shard:
//! - *throughput*: runways per second through 1, 2 and 3 hosts (filings
//!   spread over the hosts, a standby relaying its share to the leader)
//!   and through one embedded host; 2 cores cannot show scaling, so the
//!   figure is the overhead of the database against the embedded store;
//! - *clearance*: from a runway's FILING record to its CLEARED record, one
//!   runway at a time (nothing queued behind a busy worker), p50 and p99;
//! - *failover*: from `kill -9` of the leader to the first CLEARED record
//!   of the next leader, with a runway filed as soon as a host answers.
//!
//! `cargo bench -p runway-tests --bench hosts` (`-- runways=N` for the
//! throughput's size, `kills=N` for the failover's rounds). The database
//! server is started by the bench (`runway_tests::postgres`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runway_audit::{Event, Record};
use runway_tests::postgres::{self, Database};

const CLI: &str = env!("CARGO_BIN_EXE_runway-cli");
/// The lease of the hosts on the database: failover is about this long.
const LEASE_MS: u64 = 2000;

fn main() {
    let arg = |name: &str, default: usize| {
        std::env::args()
            .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_string))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let (runways, kills) = (arg("runways", 1500), arg("kills", 5));
    let server = postgres::server();
    println!(
        "runways/s, {runways} runways (one small exclusive write each), 2 workers a host, \
         median (min-max) of {ROUNDS} rounds:"
    );
    let (embedded, low, high) = rounds(|| throughput(None, 1, runways));
    println!("  embedded store, 1 host : {embedded:>7.1} /s ({low:.1}-{high:.1})");
    for n in 1..=3 {
        let (got, low, high) = rounds(|| throughput(Some(&server.database()), n, runways));
        println!(
            "  PostgreSQL, {n} host{}     : {got:>7.1} /s ({low:.1}-{high:.1})  {:.2}x the embedded store's",
            if n == 1 { " " } else { "s" },
            got / embedded
        );
    }
    println!("filing to clearance, one runway at a time (100 runways):");
    let (p50, p99) = clearance(None);
    println!("  embedded store : p50 {p50:>6.1} ms  p99 {p99:>6.1} ms");
    let db = server.database();
    let (pg50, pg99) = clearance(Some(&db));
    println!(
        "  PostgreSQL     : p50 {pg50:>6.1} ms  p99 {pg99:>6.1} ms  ({:.2}x, {:.2}x)",
        pg50 / p50,
        pg99 / p99
    );
    let db = server.database();
    let mut took = failover(&db, kills);
    took.sort();
    println!(
        "failover, leader kill to the next leader's first clearance ({kills} kills, {LEASE_MS} ms lease): \
         median {:.2} s, max {:.2} s",
        took[took.len() / 2].as_secs_f64(),
        took[took.len() - 1].as_secs_f64()
    );
}

/// Rounds of each throughput figure.
const ROUNDS: usize = 3;

/// The median, least and most of [`ROUNDS`] runs of `f`.
fn rounds(f: impl Fn() -> f64) -> (f64, f64, f64) {
    let mut got: Vec<f64> = (0..ROUNDS).map(|_| f()).collect();
    got.sort_by(f64::total_cmp);
    (got[ROUNDS / 2], got[0], got[ROUNDS - 1])
}

/// A `runway serve` with its own folder, on `db` or the embedded store.
struct Host {
    dir: tempfile::TempDir,
    child: Child,
    origin: String,
    port: u16,
}

impl Host {
    fn start(db: Option<&Database>, origin: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        runway_tests::drop_plugin("import-applications", &plugins);
        let mut host = Host {
            dir,
            child: Command::new("true").spawn().unwrap(),
            origin: origin.to_string(),
            // A port free now, kept across restarts.
            port: std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port(),
        };
        if let Some(db) = db {
            std::fs::write(host.dir.path().join("db.url"), db.url()).unwrap();
        }
        host.spawn(db.is_some());
        host
    }

    fn spawn(&mut self, shared: bool) {
        let lease = LEASE_MS.to_string();
        let listen = format!("127.0.0.1:{}", self.port);
        let mut args = vec!["serve", "--listen", &listen, "--workers", "2"];
        args.extend(["--plugins", "plugins", "--origin", &self.origin]);
        if shared {
            args.extend(["--database-file", "db.url", "--lease-ms", &lease]);
        }
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        self.child = Command::new(CLI)
            .args(&args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
    }

    /// Its address, once it listens (a standby listens too, relaying; only
    /// a leader writes its address file, so the port is chosen here).
    fn url(&self) -> String {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(self.dir.path().join("serve.log"));
                panic!(
                    "{} never listened: {}",
                    self.origin,
                    log.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client verb, called at `url` with this host's admin token.
    fn client(&self, url: &str, args: &[&str]) -> (i32, String) {
        let out = Command::new(CLI)
            .args(args)
            .env("RUNWAY_SERVER", url)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    /// Whether the database names this host its leader.
    fn leads(&self) -> bool {
        let (code, out) = self.client("", &["hosts", "--json", "--database-file", "db.url"]);
        code == 0
            && out.lines().any(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                v["host"] == self.origin.as_str() && v["role"] == "leader"
            })
    }

    fn records(&self) -> Vec<Record> {
        runway_audit::read_records(&self.dir.path().join("runway-audit")).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `n` hosts, on `db` or (one) on the embedded store, the leader first.
/// With `one_token`, every host's folder holds the leader's admin token
/// (the leader checks every relayed call's); else each keeps its own.
fn hosts(db: Option<&Database>, n: usize, name: &str, one_token: bool) -> Vec<Host> {
    let mut hosts: Vec<Host> = (0..n)
        .map(|i| Host::start(db, &format!("{name}-{i}/runway")))
        .collect();
    let started = Instant::now();
    let lead = loop {
        for host in &hosts {
            host.url();
        }
        if db.is_none() {
            break 0;
        }
        if let Some(i) = hosts.iter().position(Host::leads) {
            break i;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no leader");
        std::thread::sleep(Duration::from_millis(100));
    };
    hosts.swap(0, lead);
    let token = hosts[0].dir.path().join("runway-serve.token");
    for host in hosts[1..].iter().filter(|_| one_token) {
        std::fs::copy(&token, host.dir.path().join("runway-serve.token")).unwrap();
    }
    hosts
}

/// `k` runways, each writing a few records to a dataset of its own.
fn plan(from: usize, k: usize) -> String {
    (from..from + k)
        .map(|i| {
            format!(
                "[[runway]]\nid = \"r{i}\"\nagent = \"import-applications\"\n\
                 datasets = {{ test_b{i} = \"exclusive\" }}\ninput = {{ count = 5, seed = {i} }}\n"
            )
        })
        .collect()
}

/// Runways per second: `runways` filed 100 at a time, round robin over
/// the hosts, until every one has ended.
fn throughput(db: Option<&Database>, n: usize, runways: usize) -> f64 {
    let hosts = hosts(db, n, &format!("through{n}"), true);
    let urls: Vec<String> = hosts.iter().map(Host::url).collect();
    let started = Instant::now();
    for (k, from) in (0..runways).step_by(100).enumerate() {
        let host = &hosts[k % n];
        let file = format!("plan{k}.toml");
        std::fs::write(
            host.dir.path().join(&file),
            plan(from, 100.min(runways - from)),
        )
        .unwrap();
        let (code, out) = host.client(&urls[k % n], &["file", &file]);
        assert_eq!(code, 0, "{out}");
    }
    wait_all(&hosts[0], &urls[0], runways);
    runways as f64 / started.elapsed().as_secs_f64()
}

/// Waits until `runways` runways have ended well.
fn wait_all(host: &Host, url: &str, runways: usize) {
    let started = Instant::now();
    loop {
        let (code, out) = host.client(url, &["list", "--json", "--state", "SUCCEEDED"]);
        if code == 0 {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            if v["runways"].as_array().map_or(0, Vec::len) >= runways {
                return;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// p50 and p99 (ms) from FILED to CLEARED, over 100 runways filed and
/// waited for one at a time.
fn clearance(db: Option<&Database>) -> (f64, f64) {
    let hosts = hosts(db, 1, "clear", true);
    let url = hosts[0].url();
    for i in 0..100 {
        std::fs::write(hosts[0].dir.path().join("one.toml"), plan(i, 1)).unwrap();
        let (code, out) = hosts[0].client(&url, &["file", "one.toml"]);
        assert_eq!(code, 0, "{out}");
        let id = format!("r{i}");
        let (code, out) = hosts[0].client(&url, &["wait", "--timeout-secs", "60", &id]);
        assert_eq!(code, 0, "{out}");
    }
    let mut filed = std::collections::HashMap::new();
    let mut took: Vec<f64> = Vec::new();
    for r in hosts[0].records() {
        match &r.entry.event {
            Event::Filing { .. } => {
                filed.insert(r.entry.runway.clone(), r.time_ns);
            }
            Event::Cleared { .. } => {
                if let Some(at) = filed.remove(&r.entry.runway) {
                    took.push((r.time_ns - at) as f64 / 1e6);
                }
            }
            _ => {}
        }
    }
    assert_eq!(took.len(), 100, "cleared runways on the trail");
    took.sort_by(f64::total_cmp);
    (took[49], took[98])
}

/// For each of `kills` rounds: kill the leader, file a runway at the
/// other hosts until one takes it, and time from the kill to the next
/// leader's CLEARED record of it. The killed host comes back a standby.
fn failover(db: &Database, kills: usize) -> Vec<Duration> {
    let mut hosts = hosts(Some(db), 3, "failover", false);
    let mut took = Vec::new();
    for k in 0..kills {
        let lead = hosts.iter().position(Host::leads).expect("a leader");
        let id = format!("r{}", 10_000 + k);
        let killed = runway_audit::now_ns();
        hosts[lead].kill();
        // Each host calls itself with its own token: only the next
        // leader takes the filing (a standby relays it to a leader that
        // does not know its token, or answers 503 while none leads).
        'filed: loop {
            for host in hosts
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != lead)
                .map(|(_, h)| h)
            {
                std::fs::write(host.dir.path().join("one.toml"), plan(10_000 + k, 1)).unwrap();
                let url = host.url();
                if host.client(&url, &["file", "one.toml"]).0 == 0 {
                    let (code, out) = host.client(&url, &["wait", "--timeout-secs", "60", &id]);
                    assert_eq!(code, 0, "{out}");
                    let cleared = host
                        .records()
                        .into_iter()
                        .find(|r| {
                            r.entry.runway == id && matches!(r.entry.event, Event::Cleared { .. })
                        })
                        .expect("its CLEARED record, in the shard of the host that took it");
                    took.push(Duration::from_nanos(cleared.time_ns - killed));
                    break 'filed;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        hosts[lead].spawn(true);
        let _ = hosts[lead].url();
    }
    took
}
