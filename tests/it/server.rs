//! `runway serve` as operators use it: a real server process on loopback
//! and the CLI verbs as its client — file (TOML, JSON, stdin), list, show,
//! approve, reject, cancel, pause, resume, wait — with human and `--json`
//! output and exit codes; a missing or wrong token is refused (401, exit
//! 5) and audited; runway ids stay unique across filings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runway_audit::Event;
use runway_tests::drop_plugin;

use crate::cli::Output;

/// A `runway serve` child over the folders of `dir`.
pub struct Server {
    pub dir: PathBuf,
    child: Option<Child>,
    pub url: String,
}

impl Server {
    /// Starts a server over `dir` (plugins/ already filled) on a free port
    /// and waits until it answers.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// [`Server::start`] with more `serve` arguments.
    pub fn start_with(dir: &Path, more: &[&str]) -> Server {
        Server::start_with_env(dir, more, &[])
    }

    /// [`Server::start_with`], with more environment variables.
    pub fn start_with_env(dir: &Path, more: &[&str], env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn(dir, more, env, None);
        let started = Instant::now();
        while !server.listening() {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve {more:?} ended before it listened: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Starts a server over `dir` and does not wait for it: a host on a
    /// shared database listens only once it leads ([`Server::listening`]).
    /// Its stderr goes to `log` (appended), or nowhere.
    pub fn spawn(dir: &Path, more: &[&str], env: &[(&str, &str)], log: Option<&Path>) -> Server {
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::null(),
        };
        let _ = std::fs::remove_file(dir.join("runway-serve.addr"));
        // A grace period of 5 s unless `more` names one.
        let grace: &[&str] = match more.contains(&"--grace-secs") {
            true => &[],
            false => &["--grace-secs", "5"],
        };
        // Two workers unless `more` names how many.
        let workers: &[&str] = match more.contains(&"--workers") {
            true => &[],
            false => &["--workers", "2"],
        };
        let child = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(workers)
            .args(["--plugins", "plugins", "--inbox", "inbox"])
            .args(grace)
            .args(more)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("serve starts");
        Server {
            dir: dir.to_path_buf(),
            child: Some(child),
            url: String::new(),
        }
    }

    /// Whether it listens (its address file written); sets [`Self::url`].
    pub fn listening(&mut self) -> bool {
        if self.url.is_empty()
            && let Ok(text) = std::fs::read_to_string(self.dir.join("runway-serve.addr"))
            && text.ends_with('\n')
        {
            self.url = text.trim().to_string();
        }
        !self.url.is_empty()
    }

    /// Whether its process has ended (reaped).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// Runs a client verb against this server.
    pub fn client(&self, args: &[&str]) -> Output {
        self.client_with(args, None)
    }

    /// Runs a client verb with `token` (RUNWAY_TOKEN) instead of the admin's.
    pub fn client_as(&self, token: &str, args: &[&str]) -> Output {
        self.run_client(args, None, Some(token))
    }

    pub fn client_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_client(args, stdin, None)
    }

    /// Runs a client verb in this server's folder (its admin token), but
    /// calling `url`: another host, which relays to this one.
    pub fn client_via(&self, url: &str, args: &[&str]) -> Output {
        let via = Server {
            dir: self.dir.clone(),
            child: None,
            url: url.to_string(),
        };
        via.run_client(args, None, None)
    }

    /// The admin's token, as `serve` wrote it at first start.
    pub fn admin(&self) -> String {
        std::fs::read_to_string(self.dir.join("runway-serve.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The audit trail so far, each record as `runway audit show --json`
    /// prints it.
    pub fn trail(&self) -> Vec<serde_json::Value> {
        // The log is live: a read may meet a frame the writer is still
        // writing (seen once under load); it reads whole a moment later.
        let mut records = Vec::new();
        runway_tests::eventually("the audit trail read whole", || {
            runway_audit::read_records(&self.dir.join("runway-audit"))
                .map(|r| records = r)
                .is_ok()
        });
        records.iter().map(runway_audit::record_json).collect()
    }

    /// `runway token add NAME --role ROLE...`: the new token.
    pub fn token(&self, name: &str, roles: &[&str]) -> String {
        let mut args = vec!["token", "add", name];
        for role in roles {
            args.extend(["--role", role]);
        }
        let out = self.client(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("shown this once"), "{}", out.stderr);
        out.stdout.trim().to_string()
    }

    fn run_client(&self, args: &[&str], stdin: Option<&str>, token: Option<&str>) -> Output {
        use std::io::Write;
        let mut command = Command::new(env!("CARGO_BIN_EXE_runway-cli"));
        if let Some(token) = token {
            command.env("RUNWAY_TOKEN", token);
        }
        let mut child = command
            .args(args)
            .env("RUNWAY_SERVER", &self.url)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A client verb's `--json` answer; the verb must succeed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.client(&all);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }

    /// Every runway the server lists, id → state.
    pub fn states(&self) -> std::collections::HashMap<String, String> {
        self.json(&["list"])["runways"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let id = r["id"].as_str().unwrap().to_string();
                (id, r["state"].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// Waits, two seconds at a time for up to two minutes, until every
    /// runway in `ids` has ended.
    pub fn wait_all(&self, ids: &[String]) {
        let mut last = String::new();
        for _ in 0..60 {
            let mut args = vec!["wait", "--timeout-secs", "2", "--json"];
            args.extend(ids.iter().map(String::as_str));
            let out = self.client(&args);
            if out.code != 4 {
                return;
            }
            last = out.stderr;
        }
        panic!("runways never landed: {last}");
    }

    /// Files `plan` (TOML) and gives back the runway ids.
    pub fn file(&self, plan: &str) -> Vec<String> {
        self.file_with(plan, &[])
    }

    /// [`Server::file`] with more client arguments.
    pub fn file_with(&self, plan: &str, more: &[&str]) -> Vec<String> {
        let path = self.dir.join("filing.toml");
        std::fs::write(&path, plan).unwrap();
        let mut args = vec!["file", "filing.toml"];
        args.extend(more);
        let answer = self.json(&args);
        answer["runways"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// SIGKILL, reaped.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Whether it ended by itself (a crash point) within `within`.
    pub fn ended_within(&mut self, within: Duration) -> bool {
        let started = Instant::now();
        let child = self.child.as_mut().unwrap();
        while started.elapsed() < within {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM, then the exit code once it has stopped.
    pub fn stop(mut self) -> Option<i32> {
        self.term();
        self.child.take().unwrap().wait().unwrap().code()
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Sends `signal` (SIGSTOP and SIGCONT freeze and thaw it).
    pub fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A folder with plugins/ holding probe and import-applications.
pub fn folders() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    drop_plugin("probe", &dir.path().join("plugins"));
    drop_plugin("import-applications", &dir.path().join("plugins"));
    dir
}

/// The raw answer to a GET of `path` carrying no token.
fn without_token(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn state(server: &Server, id: &str) -> String {
    server.json(&["show", id])["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_cli_verbs_drive_a_real_server() {
    let dir = folders();
    let server = Server::start(dir.path());

    // File: a gated import and a check after it; the ids come back.
    let ids = server.file(
        r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = { test_api = "exclusive" }
        input = { count = 5, seed = 1 }
        approval = { required = true }
        [[runway]]
        id = "check"
        agent = "probe"
        action = "ok"
        after = ["import"]
        "#,
    );
    assert_eq!(ids, ["import", "check"]);
    // The same names again get ids of their own.
    let again = server.file("[[runway]]\nid = \"import\"\nagent = \"probe\"\naction = \"ok\"\n");
    assert_eq!(again, ["import-2"]);

    // list --state, in JSON and for people.
    let waiting = server.json(&["list", "--state", "WAITING_APPROVAL"]);
    let waiting: Vec<&str> = waiting["runways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, ["import"]);
    let human = server.client(&["list", "--agent", "probe"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("check") && human.stdout.contains("WAITING_DEPS"));
    assert!(
        !human.stdout.contains("import-applications"),
        "{}",
        human.stdout
    );
    let bad = server.client(&["list", "--state", "FLYING"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("no state \"FLYING\""), "{}", bad.stderr);

    // Tokens of their own: an approver, another, an operator, a viewer.
    let alice = server.token("alice", &["approver"]);
    let bob = server.token("bob", &["approver"]);
    let dave = server.token("dave", &["operator"]);
    let vic = server.token("vic", &["viewer"]);
    assert_eq!(alice.len(), 64);
    let listed = server.client(&["token", "list"]);
    assert!(listed.stdout.contains("alice") && listed.stdout.contains("approver"));
    assert!(
        !listed.stdout.contains(&alice),
        "a token is shown only once"
    );
    let twice = server.client(&["token", "add", "alice", "--role", "viewer"]);
    assert_eq!(twice.code, 2);
    assert!(
        twice.stderr.contains("\"alice\" is there already"),
        "{}",
        twice.stderr
    );

    // Each role its rights: 403 (exit 5) otherwise, naming who and what.
    let no_file = server.client_as(&alice, &["file", "filing.toml"]);
    assert_eq!(no_file.code, 5, "{}", no_file.stderr);
    assert!(
        no_file.stderr.contains("403") && no_file.stderr.contains("alice (approver) may not file"),
        "{}",
        no_file.stderr
    );
    let no_approve = server.client_as(&dave, &["approve", "import"]);
    assert_eq!(no_approve.code, 5, "{}", no_approve.stderr);
    assert!(
        no_approve
            .stderr
            .contains("dave (operator) may not approve")
    );
    let viewer = server.client_as(&vic, &["list", "--json"]);
    assert_eq!(viewer.code, 0, "{}", viewer.stderr);
    assert!(viewer.stdout.contains("import-2"));
    let no_cancel = server.client_as(&vic, &["cancel", "import-2"]);
    assert_eq!(no_cancel.code, 5, "{}", no_cancel.stderr);
    // `--by` may only say the token's own name.
    let posing = server.client_as(&alice, &["approve", "import", "--by", "bob"]);
    assert_eq!(posing.code, 5, "{}", posing.stderr);
    assert!(
        posing.stderr.contains("the token is alice's"),
        "{}",
        posing.stderr
    );
    // Four eyes: whoever filed it may not approve it.
    let own = server.client(&["approve", "import"]);
    assert_eq!(own.code, 5, "{}", own.stderr);
    assert!(
        own.stderr
            .contains("admin filed runway import and may not approve it too"),
        "{}",
        own.stderr
    );

    // A runway waiting for an admin's approval is not an approver's to give.
    let audited = server.file(
        "[[runway]]\nid = \"audited\"\nagent = \"probe\"\naction = \"ok\"\napproval = { required = true, role = \"admin\" }\n",
    );
    let not_hers = server.client_as(&alice, &["approve", &audited[0]]);
    assert_eq!(not_hers.code, 5, "{}", not_hers.stderr);
    assert!(
        not_hers
            .stderr
            .contains("may not approve runway audited: it waits for the role admin"),
        "{}",
        not_hers.stderr
    );
    assert_eq!(server.client(&["cancel", &audited[0]]).code, 0);

    // Approve: refused for what is not waiting for approval, then given.
    let early = server.client_as(&alice, &["approve", "check"]);
    assert_eq!(early.code, 2);
    assert!(early.stderr.contains("409") && early.stderr.contains("not waiting for approval"));
    let approved = server.client_as(
        &alice,
        &["approve", "import", "--by", "alice", "--note", "batch ok"],
    );
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let waited = server.client(&["wait", "import", "check"]);
    assert_eq!(waited.code, 0, "{}{}", waited.stdout, waited.stderr);
    assert!(waited.stdout.contains("SUCCEEDED"));

    // show: history with times and who, locks, attempts, output digest.
    let shown = server.json(&["show", "import"]);
    assert_eq!(shown["state"], "SUCCEEDED");
    assert_eq!(shown["attempts"], 1);
    assert_eq!(shown["approved_by"], "alice");
    assert_eq!(shown["locks"][0]["dataset"], "test_api");
    assert_eq!(shown["output_digest"].as_str().unwrap().len(), 64);
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "QUEUED",
            "WAITING_APPROVAL",
            "WAITING_LOCKS",
            "CLEARED",
            "RUNNING",
            "SUCCEEDED"
        ]
    );
    assert_eq!(shown["history"][2]["by"], "alice");
    assert!(
        shown["history"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("batch ok")
    );
    let human = server.client(&["show", "import"]);
    assert!(
        human.stdout.contains("approved by alice"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("lock     test_api exclusive token"),
        "{}",
        human.stdout
    );

    // JSON on stdin, after a runway filed before; reject with a reason
    // fails its dependent naming the rejecter.
    let filed = server.client_with(
        &["file", "-", "--json"],
        Some(
            r#"[{"id": "gate", "agent": "probe", "action": "ok", "approval": {"required": true}, "after": ["check"]},
                {"id": "later", "agent": "probe", "action": "ok", "after": ["gate"]}]"#,
        ),
    );
    assert_eq!(filed.code, 0, "{}", filed.stderr);
    let no_reason = server.client_as(&bob, &["reject", "gate", "--reason", " "]);
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    assert_eq!(
        server
            .client_as(&bob, &["reject", "gate", "--reason", "not today"])
            .code,
        0
    );
    let waited = server.client(&["wait", "gate", "later"]);
    assert_eq!(waited.code, 1, "{}", waited.stdout);
    let later = server.json(&["show", "later"]);
    assert_eq!(later["reason"], "dependency gate was rejected by bob");

    // Refusals name the culprit: an unknown `after`, an unknown runway.
    let unknown = server.client_with(&["file", "-"], Some("agent = 'probe'\nafter = ['ghost']\n"));
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown runway \"ghost\""),
        "{}",
        unknown.stderr
    );
    let missing = server.client(&["show", "nope"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("404") && missing.stderr.contains("no runway nope"));

    // Pause holds new runways back; cancel ends one at once; resume.
    assert_eq!(server.client_as(&dave, &["pause"]).code, 0);
    let held = server.file("[[runway]]\nid = \"held\"\nagent = \"probe\"\naction = \"ok\"\n");
    let cut = server.file("[[runway]]\nid = \"cut\"\nagent = \"probe\"\naction = \"ok\"\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&server, &held[0]), "WAITING_LOCKS");
    assert_eq!(server.client_as(&dave, &["cancel", &cut[0]]).code, 0);
    assert_eq!(state(&server, &cut[0]), "CANCELLED");
    assert_eq!(server.client_as(&dave, &["resume"]).code, 0);
    assert_eq!(server.client(&["wait", &held[0]]).code, 0);
    let ended = server.client(&["cancel", &held[0]]);
    assert_eq!(ended.code, 2);
    assert!(ended.stderr.contains("already ended"), "{}", ended.stderr);

    // A wrong token, and none at all: 401, exit 5, audited.
    std::fs::write(dir.path().join("wrong.token"), "0".repeat(64)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("wrong.token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let wrong = server.client(&["list", "--token-file", "wrong.token"]);
    assert_eq!(wrong.code, 5, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("401") && wrong.stderr.contains("unknown bearer token"));
    // A removed token is refused from the next request on.
    assert_eq!(server.client(&["token", "remove", "vic"]).code, 0);
    assert_eq!(server.client_as(&vic, &["list"]).code, 5);
    let bare = without_token(&server.url, "/api/runways");
    assert!(bare.starts_with("HTTP/1.1 401"), "{bare}");
    assert!(bare.contains("no bearer token"), "{bare}");
    let token = std::fs::read_to_string(dir.path().join("runway-serve.token")).unwrap();
    let mode = std::fs::metadata(dir.path().join("runway-serve.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(token.trim().len(), 64);

    assert_eq!(server.stop(), Some(0));
    let records = runway_audit::read_records(&dir.path().join("runway-audit")).unwrap();
    let refused: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::Rejected { reason } if reason.starts_with("API request refused") => {
                Some(reason.clone())
            }
            _ => None,
        })
        .collect();
    assert!(
        refused
            .iter()
            .any(|r| r.contains("unknown bearer token (GET /api/runways")),
        "{refused:?}"
    );
    for says in [
        "alice (approver) may not file (POST /api/runways",
        "vic (viewer) may not cancel, pause or resume",
        "`by` names \"bob\" but the token is alice's",
        "admin: admin filed runway import and may not approve it too",
        "alice: runway check is WAITING_DEPS, not waiting for approval",
    ] {
        assert!(
            refused.iter().any(|r| r.contains(says)),
            "{says}: {refused:?}"
        );
    }
    // Moves are in the names of the tokens that made them.
    let by = |to: runway_audit::State| -> Vec<String> {
        records
            .iter()
            .filter_map(|r| match &r.entry.event {
                Event::Moved {
                    to: t,
                    by: Some(by),
                    ..
                } if *t == to => Some(by.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(by(runway_audit::State::Rejected), ["bob"]);
    assert_eq!(by(runway_audit::State::Cancelled), ["admin", "dave"]);
    assert!(
        refused.iter().any(|r| r.contains("no bearer token")),
        "{refused:?}"
    );
    // Every filing is on the record: who filed it, from where.
    let plans = records
        .iter()
        .filter(|r| matches!(&r.entry.event, Event::PlanFiled { by, .. } if by == "admin"))
        .count();
    assert_eq!(plans, 6);
}

#[test]
fn a_second_signal_stops_the_runs_in_flight() {
    let dir = folders();
    let plugins = dir.path().join("plugins");
    std::fs::copy(
        runway_tests::bundled_path("hostile"),
        plugins.join("hostile.wasm"),
    )
    .unwrap();
    std::fs::write(
        plugins.join("hostile.toml"),
        "[limits]\nfuel = 1_000_000_000_000_000\nwindow_secs = 600\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let ids = server.file("[[runway]]\nid = \"spin\"\nagent = \"hostile\"\naction = \"spin\"\n");
    let started = Instant::now();
    while state(&server, &ids[0]) != "RUNNING" {
        assert!(started.elapsed() < Duration::from_secs(30), "never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first signal stops clearing and waits for the spin to land; the
    // second stops it (FAILED, as a crash leaves it: no person cancelled).
    server.term();
    std::thread::sleep(Duration::from_millis(500));
    let stopping = Instant::now();
    assert_eq!(server.stop(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the spin ran on"
    );
    let records = runway_audit::read_records(&dir.path().join("runway-audit")).unwrap();
    let stopped = records.iter().any(|r| {
        r.entry.runway == "spin"
            && matches!(&r.entry.event, Event::Failed { reason }
                if reason == "host stopped during the run; nothing was committed")
    });
    assert!(stopped, "the spin was not stopped by the shutdown");
    let cancelled = records.iter().any(|r| {
        matches!(
            &r.entry.event,
            Event::Moved {
                to: runway_audit::State::Cancelled,
                ..
            }
        )
    });
    assert!(!cancelled, "a shutdown cancelled a run as if a person had");
}

/// A run still in the air when a stop's grace ends is settled like one a
/// crash cut short: FAILED, retried per its policy at the next start, its
/// dependents waiting meanwhile (before, it was CANCELLED for good and its
/// dependents FAILED, while a `kill -9` of the same plan retried it).
#[test]
fn a_stop_past_its_grace_retries_the_run_at_the_next_start() {
    let dir = folders();
    let server = Server::start_with(dir.path(), &["--grace-secs", "1"]);
    let ids = server.file(
        r#"
        [[runway]]
        id = "slow"
        agent = "probe"
        action = "slow-first"
        retry = { attempts = 3, backoff = "fixed", initial = "10ms" }
        [[runway]]
        id = "then"
        agent = "probe"
        action = "ok"
        after = ["slow"]
        "#,
    );
    let started = Instant::now();
    while state(&server, &ids[0]) != "RUNNING" {
        assert!(started.elapsed() < Duration::from_secs(60), "never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.stop(), Some(0));
    let trail = runway_audit::read_records(&dir.path().join("runway-audit")).unwrap();
    let of = |id: &str| -> Vec<&Event> {
        trail
            .iter()
            .filter(|r| r.entry.runway == id)
            .map(|r| &r.entry.event)
            .collect()
    };
    assert!(
        of("slow")
            .iter()
            .any(|e| matches!(e, Event::Failed { reason }
            if reason.contains("host stopped during the run"))),
        "{:?}",
        of("slow")
    );
    assert!(
        !of("then").iter().any(|e| matches!(e, Event::Failed { .. })),
        "a dependent failed at the stop: {:?}",
        of("then")
    );

    let server = Server::start(dir.path());
    assert_eq!(server.client(&["wait", "slow", "then"]).code, 0);
    let slow = server.json(&["show", "slow"]);
    assert_eq!(slow["state"], "SUCCEEDED", "{slow}");
    assert_eq!(slow["attempts"], 2, "{slow}");
    assert_eq!(server.json(&["show", "then"])["state"], "SUCCEEDED");
}

/// One server-sent event: its name, id and data.
#[derive(Debug)]
pub struct Sse {
    pub event: String,
    pub id: Option<u64>,
    pub data: serde_json::Value,
}

/// Opens `GET path` with `token` (and `Last-Event-ID` when given) and reads
/// events until `enough` says so or `secs` pass.
pub fn follow(
    url: &str,
    path: &str,
    token: &str,
    last: Option<u64>,
    secs: u64,
    enough: impl Fn(&[Sse]) -> bool,
) -> Vec<Sse> {
    use std::io::{BufReader, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let resume = last.map_or_else(String::new, |id| format!("Last-Event-ID: {id}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{resume}Accept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    read_events(BufReader::new(stream), secs, enough)
}

/// Reads server-sent events from `reader` until `enough` says so (asked
/// after each event), the stream ends or `secs` pass.
pub fn read_events(
    mut reader: std::io::BufReader<std::net::TcpStream>,
    secs: u64,
    enough: impl Fn(&[Sse]) -> bool,
) -> Vec<Sse> {
    use std::io::BufRead;
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut events = Vec::new();
    let (mut event, mut id, mut data) = (String::new(), None, String::new());
    let mut line = String::new();
    let mut done = enough(&events);
    while Instant::now() < deadline && !done {
        // A read cut by the timeout keeps what it got: the line goes on.
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) if line.ends_with('\n') => {}
            _ => continue,
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if let Some(v) = l.strip_prefix("event: ").or(l.strip_prefix("event:")) {
            event = v.to_string();
        } else if let Some(v) = l.strip_prefix("id: ").or(l.strip_prefix("id:")) {
            id = v.parse().ok();
        } else if let Some(v) = l.strip_prefix("data: ").or(l.strip_prefix("data:")) {
            data.push_str(v);
        } else if l.is_empty() && !data.is_empty() {
            let value =
                serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data.clone()));
            events.push(Sse {
                event: std::mem::take(&mut event),
                id: id.take(),
                data: value,
            });
            data.clear();
            done = enough(&events);
        }
        line.clear();
    }
    events
}

#[test]
fn the_event_stream_follows_the_trail_as_it_grows() {
    let dir = folders();
    let server = Server::start(dir.path());
    let vic = server.token("vic", &["viewer"]);
    let ann = server.token("ann", &["auditor"]);
    let admin = server.admin();
    let ids = server.file(
        r#"
        [[runway]]
        id = "first"
        agent = "import-applications"
        datasets = { test_ev = "exclusive" }
        input = { count = 3, seed = 1 }
        [[runway]]
        id = "elsewhere"
        agent = "probe"
        action = "ok"
        "#,
    );
    assert_eq!(server.client(&["wait", &ids[0], &ids[1]]).code, 0);

    // A viewer sees the transitions of the runways on the dataset, as they
    // are on the trail; an auditor also sees the host calls and commits.
    let ended = |e: &[Sse]| e.iter().any(|e| e.data["event"] == "succeeded");
    let seen = follow(
        &server.url,
        "/api/events?dataset=test_ev",
        &vic,
        None,
        20,
        ended,
    );
    assert!(ended(&seen), "{seen:?}");
    assert!(seen.iter().all(|e| e.event == "transition"), "{seen:?}");
    assert!(seen.iter().all(|e| e.data["runway"] == "first"), "{seen:?}");
    let states: Vec<&str> = seen
        .iter()
        .map(|e| e.data["event"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"filed"), "{states:?}");
    assert!(
        states.contains(&"cleared") && states.contains(&"started"),
        "{states:?}"
    );
    let ids_seen: Vec<u64> = seen.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids_seen.windows(2).all(|w| w[0] < w[1]), "{ids_seen:?}");
    let audited = follow(
        &server.url,
        "/api/events?dataset=test_ev",
        &ann,
        None,
        20,
        ended,
    );
    assert!(
        audited
            .iter()
            .any(|e| e.event == "record" && e.data["event"] == "call"),
        "{audited:?}"
    );
    assert!(audited.len() > seen.len());

    // Live: a second import on the dataset arrives while the stream is open,
    // and a stream resumed with Last-Event-ID starts right after it. (The
    // first import's lock is let go just after it ended: the live stream
    // opens once that is on the trail, so it holds the second's alone.)
    let last = ids_seen.last().copied().unwrap();
    let released = || {
        server
            .trail()
            .iter()
            .any(|r| r["runway"] == ids[0].as_str() && r["event"] == "lock_released")
    };
    let waited = std::time::Instant::now();
    while !released() {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "first never let go"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = server.url.clone();
    let token = admin.to_string();
    let live = std::thread::spawn(move || {
        follow(
            &url,
            "/api/events?dataset=test_ev&backlog=0",
            &token,
            None,
            30,
            |e| e.iter().any(|e| e.data["event"] == "succeeded"),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let second = server.file(
        "[[runway]]\nid = \"second\"\nagent = \"import-applications\"\ndatasets = { test_ev = \"exclusive\" }\ninput = { count = 2, seed = 2 }\n",
    );
    let live = live.join().unwrap();
    assert!(
        live.iter()
            .any(|e| e.data["runway"] == second[0].as_str() && e.data["event"] == "succeeded"),
        "{live:?}"
    );
    assert!(
        live.iter().all(|e| e.data["runway"] == second[0].as_str()),
        "{live:?}"
    );
    let resumed = follow(
        &server.url,
        "/api/events?runway=second",
        &vic,
        Some(last),
        10,
        |e| e.iter().any(|e| e.data["event"] == "succeeded"),
    );
    assert!(resumed.iter().all(|e| e.id.unwrap() > last), "{resumed:?}");
    assert_eq!(
        resumed.first().map(|e| e.data["event"].clone()),
        Some("filed".into())
    );

    // No token: 401, as everywhere.
    assert!(without_token(&server.url, "/api/events").starts_with("HTTP/1.1 401"));
}

/// `GET path` with `token`: the status and body.
pub fn get(url: &str, path: &str, token: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent
        .get(&format!("{url}{path}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.body_mut().read_to_string().unwrap())
}

/// The value of the metric line starting with `name` (labels included).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_waits_runs_outcomes_locks_and_the_audit_writer() {
    let dir = folders();
    runway_tests::drop_plugin("hostile", &dir.path().join("plugins"));
    let server = Server::start(dir.path());
    let vic = server.token("vic", &["viewer"]);
    let ids = server.file(
        r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = { test_m = "exclusive" }
        input = { count = 3, seed = 1 }
        [[runway]]
        id = "broken"
        agent = "probe"
        action = "fail"
        "#,
    );
    server.client(&["wait", &ids[0], &ids[1]]);
    // A sleeper holds test_m; a reader waits behind it.
    let held = server.file(
        "[[runway]]\nid = \"sleeper\"\nagent = \"hostile\"\naction = \"sleep\"\ninput = { secs = 3 }\ndatasets = { test_m = \"exclusive\" }\n[[runway]]\nid = \"reader\"\nagent = \"probe\"\naction = \"ok\"\ndatasets = { test_m = \"shared\" }\n",
    );
    let started = Instant::now();
    while state(&server, &held[0]) != "RUNNING" {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, text) = get(&server.url, "/metrics", &vic);
    assert_eq!(status, 200, "{text}");
    let m = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    assert_eq!(
        m("runway_locks_held{dataset=\"test_m\",mode=\"exclusive\"}"),
        1.0
    );
    assert_eq!(m("runway_lock_waiters{dataset=\"test_m\"}"), 1.0);
    assert_eq!(m("runway_runways{state=\"RUNNING\"}"), 1.0);
    assert_eq!(m("runway_runways{state=\"WAITING_LOCKS\"}"), 1.0);
    assert_eq!(m("runway_runways{state=\"SUCCEEDED\"}"), 1.0);
    assert_eq!(m("runway_runways{state=\"FAILED\"}"), 1.0);
    assert_eq!(
        m("runway_attempt_outcomes_total{agent=\"import-applications\",outcome=\"SUCCEEDED\"}"),
        1.0
    );
    assert_eq!(
        m("runway_attempt_outcomes_total{agent=\"probe\",outcome=\"FAILED\"}"),
        1.0
    );
    assert_eq!(
        m("runway_wait_seconds_count{agent=\"import-applications\"}"),
        1.0
    );
    assert_eq!(m("runway_run_seconds_count{agent=\"probe\"}"), 1.0);
    assert!(m("runway_run_seconds_sum{agent=\"import-applications\"}") > 0.0);
    assert_eq!(m("runway_plugin_loads_total"), 3.0);
    assert!(m("runway_audit_fsync_seconds_count") >= 1.0);
    assert!(m("runway_audit_records_durable_total") > 20.0);
    assert!(
        text.contains("# TYPE runway_wait_seconds histogram"),
        "{text}"
    );

    // Without a token: 401, as everywhere.
    assert!(without_token(&server.url, "/metrics").starts_with("HTTP/1.1 401"));
}

#[test]
fn metrics_drop_to_zero_and_name_the_build_and_the_process() {
    let dir = folders();
    let server = Server::start(dir.path());
    let ids = server.file(
        "[[runway]]\nid = \"gated\"\nagent = \"probe\"\naction = \"ok\"\n\
         datasets = { test_z = \"exclusive\" }\napproval = { required = true }\n",
    );
    let scrape = || {
        let (status, text) = get(&server.url, "/metrics", &server.admin());
        assert_eq!(status, 200, "{text}");
        text
    };
    let text = scrape();
    assert_eq!(
        metric(&text, "runway_runways{state=\"WAITING_APPROVAL\"}"),
        Some(1.0),
        "{text}"
    );
    let alice = server.token("alice", &["approver"]);
    let approved = server.client_as(&alice, &["approve", &ids[0]]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(server.client(&["wait", &ids[0]]).code, 0);

    // Once it has landed, the series it left are there at 0 (the lock's
    // once the metrics' follower has read the grant off the trail).
    let held = "runway_locks_held{dataset=\"test_z\",mode=\"exclusive\"}";
    let started = Instant::now();
    let text = loop {
        let text = scrape();
        if metric(&text, held).is_some() || started.elapsed() > Duration::from_secs(30) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let m = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    assert_eq!(m("runway_runways{state=\"WAITING_APPROVAL\"}"), 0.0);
    assert_eq!(m("runway_runways{state=\"RUNNING\"}"), 0.0);
    assert_eq!(m("runway_runways{state=\"SUCCEEDED\"}"), 1.0);
    assert_eq!(m(held), 0.0);
    assert_eq!(
        m("runway_locks_held{dataset=\"test_z\",mode=\"shared\"}"),
        0.0
    );
    assert_eq!(m("runway_lock_waiters{dataset=\"test_z\"}"), 0.0);

    // The build, and the process's own figures under their usual names.
    let version = format!(
        "runway_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(m(&version), 1.0);
    assert!(m("process_cpu_seconds_total") > 0.0);
    assert!(m("process_resident_memory_bytes") > 1e6);
    assert!(m("process_virtual_memory_bytes") >= m("process_resident_memory_bytes"));
    assert!(m("process_threads") >= 2.0);
    let open = m("process_open_fds");
    assert!(open >= 3.0 && open <= m("process_max_fds"), "{text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = m("process_start_time_seconds");
    assert!(
        start <= now + 1.0 && start > now - 3600.0,
        "{start} vs {now}"
    );
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter"),
        "{text}"
    );
}

/// Runs the CLI with `args` under a pseudo-terminal (util-linux `script`),
/// as a person at a terminal would: what the terminal showed.
fn on_a_terminal(server: &Server, args: &[&str]) -> String {
    let mut line = env!("CARGO_BIN_EXE_runway-cli").to_string();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("RUNWAY_SERVER", &server.url)
        .current_dir(&server.dir)
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn wait_shows_live_progress_on_a_terminal_and_stays_plain_when_piped() {
    let dir = folders();
    let server = Server::start(dir.path());
    let plan = |tag: &str| {
        format!(
            "[[runway]]\nid = \"first-{tag}\"\nagent = \"probe\"\naction = \"ok\"\nearliest_start = \"in 2s\"\n\
             [[runway]]\nid = \"then-{tag}\"\nagent = \"probe\"\naction = \"ok\"\nafter = [\"first-{tag}\"]\n"
        )
    };
    let ids = server.file(&plan("a"));
    let shown = on_a_terminal(&server, &["wait", &ids[0], &ids[1]]);
    // The bar and each runway's state while it waits, then the answer.
    assert!(shown.contains("/2 landed"), "{shown}");
    assert!(shown.contains("WAITING_TIME"), "{shown}");
    assert!(shown.contains("WAITING_DEPS"), "{shown}");
    assert!(shown.contains('\u{1b}'), "no terminal drawing: {shown}");
    let last = shown.lines().rev().find(|l| l.contains("then-a"));
    assert!(last.is_some_and(|l| l.contains("SUCCEEDED")), "{shown}");

    // Piped: the answer only, no drawing.
    let ids = server.file(&plan("b"));
    let piped = server.client(&["wait", &ids[0], &ids[1]]);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(!piped.stderr.contains("landed"), "{}", piped.stderr);
    assert!(!piped.stdout.contains('\u{1b}'), "{}", piped.stdout);
    assert_eq!(piped.stdout.lines().count(), 2, "{}", piped.stdout);
}

#[test]
fn a_client_too_slow_for_the_event_stream_gets_the_rest_from_disk() {
    use std::io::Write;
    let dir = folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/events?backlog=0 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        admin
    )
    .unwrap();
    // The client reads nothing while 40,000 host calls go on the trail:
    // far more than the server keeps in memory and the sockets buffer.
    let ids = server.file(
        "[[runway]]\nid = \"big\"\nagent = \"import-applications\"\n\
         datasets = { test_slow = \"exclusive\" }\ninput = { count = 40000, seed = 3 }\n",
    );
    // The host was not held back by it: the run landed.
    let waited = server.client(&["wait", &ids[0], "--timeout-secs", "300"]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    // Now the client reads: every record since it came, in order, none
    // skipped — what left memory comes from disk — up to the landing.
    let landed = |e: &[Sse]| {
        e.last()
            .is_some_and(|e| e.data["runway"] == "big" && e.data["event"] == "succeeded")
    };
    let got = read_events(std::io::BufReader::new(stream), 240, landed);
    assert!(landed(&got), "{} events, last {:?}", got.len(), got.last());
    assert!(got.len() > 40_000, "{}", got.len());
    assert!(got.iter().all(|e| e.event != "missed"), "nothing is missed");
    let seen: Vec<u64> = got
        .iter()
        .map(|e| e.id.expect("every event has an id"))
        .collect();
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "ids run on without a gap or a repeat"
    );
}

#[test]
fn after_the_nightly_the_metrics_agree_with_the_audit_trail() {
    let dir = folders();
    for agent in ["compliance-check", "grant-calculator"] {
        drop_plugin(agent, &dir.path().join("plugins"));
    }
    let server = Server::start(dir.path());
    let ids = server.file(runway_host::bundled::NIGHTLY_PLAN);
    assert_eq!(ids.len(), 3);
    let mut args = vec!["wait", "--timeout-secs", "600"];
    args.extend(ids.iter().map(String::as_str));
    let waited = server.client(&args);
    assert_eq!(waited.code, 0, "{}", waited.stderr);

    // What the trail says: each agent's runway cleared once and landed once.
    let trail = server.trail();
    let agents = [
        "import-applications",
        "compliance-check",
        "grant-calculator",
    ];
    // The follower may be a moment behind the trail's end.
    let started = Instant::now();
    let text = loop {
        let (status, text) = get(&server.url, "/metrics", &server.admin());
        assert_eq!(status, 200, "{text}");
        let outcomes: f64 = agents
            .iter()
            .filter_map(|a| {
                metric(
                    &text,
                    &format!(
                        "runway_attempt_outcomes_total{{agent=\"{a}\",outcome=\"SUCCEEDED\"}}"
                    ),
                )
            })
            .sum();
        if outcomes == 3.0 || started.elapsed() > Duration::from_secs(30) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let m = |name: String| metric(&text, &name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    let mut waits = 0.0;
    let mut runs = 0.0;
    for agent in agents {
        let of = |event: &str| {
            trail
                .iter()
                .filter(|r| r["event"] == event && r["agent"] == agent)
                .count() as f64
        };
        let succeeded = m(format!(
            "runway_attempt_outcomes_total{{agent=\"{agent}\",outcome=\"SUCCEEDED\"}}"
        ));
        assert_eq!(succeeded, of("succeeded"), "{agent}");
        assert_eq!(succeeded, 1.0, "{agent}");
        let wait = m(format!("runway_wait_seconds_count{{agent=\"{agent}\"}}"));
        let run = m(format!("runway_run_seconds_count{{agent=\"{agent}\"}}"));
        assert_eq!(wait, of("cleared"), "{agent}");
        assert!(m(format!("runway_run_seconds_sum{{agent=\"{agent}\"}}")) > 0.0);
        waits += wait;
        runs += run;
    }
    // Three observations each: one per runway of the nightly.
    assert_eq!((waits, runs), (3.0, 3.0));
    assert_eq!(m("runway_runways{state=\"SUCCEEDED\"}".into()), 3.0);
}
