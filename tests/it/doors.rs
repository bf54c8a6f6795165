//! Hostile input at the doors: what an operator-adjacent user drops into
//! the inbox or the plugins folder — symlinks to secrets, FIFOs, devices,
//! directories, oversized components and fields, a full audit disk, bidi
//! controls — against a real `runway serve` process.
//!
//! Each test starts the command-line binary on its own temporary folders,
//! drops real files (real FIFOs, a real tmpfs) and checks the exact outcome
//! in `done/`, `rejected/`, the audit trail and the process's output.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use runway_audit::{Event, Record};
use runway_host::api::FULL_RESCAN;
use runway_host::bundled;
use runway_tests::{bundled_path, drop_plugin, eventually};

const MARKER: &str = "MARKER-SECRET-7f3a";
const CLI: &str = env!("CARGO_BIN_EXE_runway-cli");

/// Drops `text` into the inbox as `NAME.toml` the way an operator should:
/// written beside it, then renamed in, so it is never seen half-written.
fn drop_plan(inbox: &Path, name: &str, text: &str) {
    let part = inbox.join(format!(".{name}.part"));
    std::fs::write(&part, text).unwrap();
    std::fs::rename(&part, inbox.join(format!("{name}.toml"))).unwrap();
}

/// A healthy plan for the probe.
fn healthy_plan(id: &str) -> String {
    format!(
        "[[runway]]\nid = \"{id}\"\nagent = \"probe\"\naction = \"ok\"\ndatasets = {{ doors = \"exclusive\" }}\n"
    )
}

/// A `runway serve` process over its own folders under one temporary dir.
struct Server {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// Folders made, nothing started yet: drop plugins first.
    fn new() -> Server {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["plugins", "inbox"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Server { dir, child: None }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn plugins(&self) -> PathBuf {
        self.path("plugins")
    }

    fn inbox(&self) -> PathBuf {
        self.path("inbox")
    }

    fn audit(&self) -> PathBuf {
        self.path("audit")
    }

    /// Starts `runway serve` with `extra` arguments; output goes to
    /// `out.txt` and `err.txt`.
    fn start(&mut self, extra: &[&str]) {
        let out = std::fs::File::create(self.path("out.txt")).unwrap();
        let err = std::fs::File::create(self.path("err.txt")).unwrap();
        let child = Command::new(CLI)
            .arg("serve")
            .arg("--plugins")
            .arg(self.plugins())
            .arg("--inbox")
            .arg(self.inbox())
            .arg("--audit")
            .arg(self.audit())
            .arg("--data")
            .arg(self.path("data"))
            .arg("--cache")
            .arg(self.path("cache"))
            .args(["--workers", "2", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("runway serve starts");
        self.child = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// Drops `text` as `inbox/NAME.toml` and waits for its report; the
    /// report's first runway state.
    fn fly(&self, name: &str, text: &str) -> String {
        drop_plan(&self.inbox(), name, text);
        let report = self.inbox().join(format!("done/{name}.json"));
        eventually(&format!("report of {name}"), || report.exists());
        // Written in one go, but maybe not yet complete when seen.
        let mut json = serde_json::Value::Null;
        eventually(&format!("complete report of {name}"), || {
            json = serde_json::from_slice(&std::fs::read(&report).unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
            !json.is_null()
        });
        json["runways"][0]["state"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    /// Waits for `inbox/rejected/NAME.error.txt` and returns it.
    fn rejected(&self, name: &str) -> String {
        let path = self.inbox().join(format!("rejected/{name}.error.txt"));
        eventually(&format!("{name} rejected"), || {
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0)
        });
        std::fs::read_to_string(&path).unwrap()
    }

    /// The records so far (the log is live: a read may race the writer).
    fn records(&self) -> Vec<Record> {
        runway_audit::read_records(&self.audit()).unwrap_or_default()
    }

    /// Waits for a refusal of plugin `name` in the audit and returns its reason.
    fn refusal_of(&self, name: &str) -> String {
        let mut reason = String::new();
        eventually(&format!("refusal of plugin {name}"), || {
            let found = self
                .records()
                .into_iter()
                .find_map(|r| match r.entry.event {
                    Event::Rejected { reason } if r.entry.agent == name => Some(reason),
                    _ => None,
                });
            found.map(|r| reason = r).is_some()
        });
        reason
    }

    /// Ctrl-C, then the exit status.
    fn stop(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        self.wait_exit(Duration::from_secs(60))
    }

    /// Waits (bounded) for the process to end by itself.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("started");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(start.elapsed() < limit, "runway serve did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        let read = |f| std::fs::read_to_string(self.path(f)).unwrap_or_default();
        format!("{}{}", read("out.txt"), read("err.txt"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every regular file under `dir`, recursively, links not followed.
fn regular_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            found.extend(regular_files(&path));
        } else if meta.is_file() {
            found.push(path);
        }
    }
    found
}

/// Asserts `needle` is in no regular file under `dir`.
fn assert_nowhere_under(dir: &Path, needle: &str) {
    let files = regular_files(dir);
    assert!(!files.is_empty(), "nothing under {}", dir.display());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!found, "{needle} found in {}", file.display());
    }
}

#[test]
fn doors_symlinked_plan_and_grants_files_are_refused_and_their_secret_never_copied() {
    let mut server = Server::new();
    let secret = server.path("secret.toml");
    // Shaped like TOML, so a parser that followed the link would quote it.
    std::fs::write(&secret, format!("{MARKER} = \"{MARKER}\"\n")).unwrap();
    drop_plugin("probe", &server.plugins());
    std::fs::copy(bundled_path("probe"), server.plugins().join("leak.wasm")).unwrap();
    std::os::unix::fs::symlink(&secret, server.plugins().join("leak.toml")).unwrap();
    server.start(&[]);
    assert_eq!(server.fly("first", &healthy_plan("first")), "SUCCEEDED");

    std::os::unix::fs::symlink(&secret, server.inbox().join("s.toml")).unwrap();
    let error = server.rejected("s");
    assert!(
        error.contains("s.toml: is a symbolic link, not a regular file"),
        "{error}"
    );
    let leak = server.refusal_of("leak");
    assert!(
        leak.contains("leak.toml: is a symbolic link, not a regular file"),
        "{leak}"
    );
    assert_eq!(server.fly("after", &healthy_plan("after")), "SUCCEEDED");
    assert!(server.stop().success(), "{}", server.output());

    let records = runway_audit::read_records(&server.audit()).unwrap();
    let plan_refusal = records.iter().any(|r| {
        matches!(&r.entry.event, Event::Rejected { reason }
            if reason.starts_with("plan s: plan file ") && reason.contains("is a symbolic link"))
    });
    assert!(plan_refusal, "the refusal of s.toml is audited");
    assert_nowhere_under(&server.audit(), MARKER);
    assert_nowhere_under(&server.inbox(), MARKER);
    assert!(!server.output().contains(MARKER), "{}", server.output());
}

/// A temporary folder holding `plugins/` with one bundled plugin, for
/// `runway run`.
fn folder_with(plugin: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    drop_plugin(plugin, &dir.path().join("plugins"));
    dir
}

/// `runway run PLAN` in `dir` over its `plugins/`, `audit/`, `data/`, `cache/`.
fn run_plan_in(dir: &Path, plan: &str) -> std::process::Output {
    Command::new(CLI)
        .args(["run", plan, "--plugins", "plugins", "--audit", "audit"])
        .args(["--data", "data", "--cache", "cache"])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn doors_run_refuses_a_symlinked_plan_with_exit_code_2() {
    let dir = folder_with("probe");
    let d = dir.path();
    std::fs::write(d.join("secret"), format!("{MARKER} = 1\n")).unwrap();
    std::os::unix::fs::symlink(d.join("secret"), d.join("plan.toml")).unwrap();
    let run = run_plan_in(d, "plan.toml");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("plan.toml: is a symbolic link, not a regular file"),
        "{stderr}"
    );
    assert!(!stderr.contains(MARKER) && !String::from_utf8_lossy(&run.stdout).contains(MARKER));
    // The refusal is on the record, without the secret.
    let records = runway_audit::read_records(&d.join("audit")).unwrap();
    assert!(records.iter().any(|r| matches!(&r.entry.event,
        Event::Rejected { reason } if reason.contains("is a symbolic link"))));
    assert_nowhere_under(&d.join("audit"), MARKER);
}

#[test]
fn doors_fifo_dev_zero_directory_and_oversized_components_are_refused_while_plans_land() {
    let mut server = Server::new();
    drop_plugin("probe", &server.plugins());
    let probe_size = std::fs::metadata(bundled_path("probe")).unwrap().len();
    let cap = probe_size + 1024;
    server.start(&["--max-component-bytes", &cap.to_string()]);
    assert_eq!(server.fly("first", &healthy_plan("first")), "SUCCEEDED");

    let plugins = server.plugins();
    let grants = bundled_path("probe").with_extension("toml");
    for name in ["f", "z", "x", "big", "evil\u{202e}gpj"] {
        std::fs::copy(&grants, plugins.join(format!("{name}.toml"))).unwrap();
    }
    let fifo = Command::new("mkfifo")
        .arg(plugins.join("f.wasm"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::symlink("/dev/zero", plugins.join("z.wasm")).unwrap();
    std::fs::create_dir(plugins.join("x.wasm")).unwrap();
    let mut big = std::fs::read(bundled_path("probe")).unwrap();
    big.resize(usize::try_from(cap).unwrap() + 1, 0);
    std::fs::write(plugins.join("big.wasm"), &big).unwrap();
    std::fs::copy(bundled_path("probe"), plugins.join("evil\u{202e}gpj.wasm")).unwrap();
    // A healthy plan dropped right after lands.
    assert_eq!(server.fly("second", &healthy_plan("second")), "SUCCEEDED");

    let expected = [
        ("f", "f.wasm: is a FIFO, not a regular file".to_string()),
        (
            "z",
            "z.wasm: is a symbolic link, not a regular file".to_string(),
        ),
        (
            "x",
            "x.wasm: is a directory, not a regular file".to_string(),
        ),
        (
            "big",
            format!(
                "big.wasm: is {} bytes, over the {cap}-byte cap for components; not read",
                cap + 1
            ),
        ),
        ("evil\u{202e}gpj", "name is not valid".to_string()),
    ];
    for (name, why) in &expected {
        let reason = server.refusal_of(name);
        // A name that is not valid is named by its file.
        let about = if name.starts_with("evil") {
            "plugin file "
        } else {
            &format!("plugin {name}: ")
        };
        assert!(
            reason.starts_with(about) && reason.contains(why.as_str()),
            "{name}: {reason}"
        );
    }
    // Still taking plans, after every refusal.
    assert_eq!(server.fly("third", &healthy_plan("third")), "SUCCEEDED");
    assert!(server.stop().success(), "{}", server.output());

    // `audit show` names each refused plugin, escaped.
    let show = Command::new(CLI)
        .args(["audit", "show", "--audit"])
        .arg(server.audit())
        .output()
        .unwrap();
    let show = String::from_utf8(show.stdout).unwrap();
    for name in ["f", "z", "x", "big"] {
        let line = format!("REFUSE  -       plugin {name} digest ?: plugin {name}: ");
        assert!(show.contains(&line), "{line:?} not in\n{show}");
    }
    assert!(
        show.contains("REFUSE  -       plugin evil\\u{202e}gpj digest ?: plugin file "),
        "{show}"
    );
    assert!(!show.contains('\u{202e}'), "{show}");
    assert!(
        show.contains("LOAD    -       plugin probe digest "),
        "{show}"
    );
}

#[test]
fn doors_a_17_mib_action_or_unknown_key_is_refused_and_the_next_plan_lands() {
    let mut server = Server::new();
    drop_plugin("probe", &server.plugins());
    // Plan files up to 64 MiB are read, so the field caps are what refuses.
    server.start(&["--max-plan-bytes", &(64u64 << 20).to_string()]);
    assert_eq!(server.fly("first", &healthy_plan("first")), "SUCCEEDED");

    let huge = "A".repeat(17 << 20);
    drop_plan(
        &server.inbox(),
        "action",
        &format!("[[runway]]\nid = \"big\"\nagent = \"probe\"\naction = \"{huge}\"\n"),
    );
    let error = server.rejected("action");
    assert!(
        error.contains("runway \"big\": action is 17825792 bytes (at most 128)"),
        "{}",
        &error[..error.len().min(400)]
    );
    assert!(error.len() < 1024, "{} bytes", error.len());

    drop_plan(
        &server.inbox(),
        "key",
        &format!("[[runway]]\nid = \"big\"\nagent = \"probe\"\n{huge} = 1\n"),
    );
    let error = server.rejected("key");
    assert!(
        error.contains("plan is not valid: line 4, column 1: unknown field `AAAA"),
        "{}",
        &error[..error.len().min(400)]
    );
    assert!(error.len() < 1024, "{} bytes", error.len());

    // The writer still runs: the next plan lands, and serve ends well.
    assert_eq!(server.fly("next", &healthy_plan("next")), "SUCCEEDED");
    assert!(server.stop().success(), "{}", server.output());
    let records = runway_audit::read_records(&server.audit()).unwrap();
    let refusals: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::Rejected { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r.len() <= runway_host::limits::MAX_REASON)
    );
    runway_audit::verify(&server.audit()).expect("the trail verifies");
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.write_all(&[0]);
    path
}

/// Grants for hostile's endless loop: it runs until its 8 s window ends.
const SPIN_GRANTS: &str = "[limits]\nfuel = 100_000_000_000\nwindow_secs = 8\n";

#[test]
fn doors_a_full_audit_disk_stops_serve_taking_plans_and_keeps_what_was_acknowledged() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let mut server = Server::new();
    drop_plugin("probe", &server.plugins());
    std::fs::write(server.plugins().join("hostile.toml"), SPIN_GRANTS).unwrap();
    std::fs::copy(
        bundled_path("hostile"),
        server.plugins().join("hostile.wasm"),
    )
    .unwrap();
    let _tmpfs = Tmpfs::mount(&server.audit(), "2m");
    server.start(&[]);
    assert_eq!(server.fly("first", &healthy_plan("first")), "SUCCEEDED");
    // A long run in flight when the disk fills: serve waits for it to land.
    drop_plan(
        &server.inbox(),
        "long",
        "[[runway]]\nid = \"long\"\nagent = \"hostile\"\naction = \"spin\"\n",
    );
    let mut acknowledged = Vec::new();
    eventually("long started, durably", || {
        acknowledged = server.records();
        acknowledged
            .iter()
            .any(|r| r.entry.runway == "long" && matches!(r.entry.event, Event::Started { .. }))
    });
    assert!(
        acknowledged
            .iter()
            .any(|r| r.entry.runway == "first" && matches!(r.entry.event, Event::Succeeded { .. }))
    );

    let filler = fill(&server.audit());
    // A plugin change: its LOAD record is the write that fails.
    std::fs::copy(bundled_path("probe"), server.plugins().join("other.wasm")).unwrap();
    std::fs::copy(
        bundled_path("probe").with_extension("toml"),
        server.plugins().join("other.toml"),
    )
    .unwrap();
    // Well after the writer stopped (its next checkpoint is due in 0.1 s),
    // while the long run still flies: this plan must not be taken.
    std::thread::sleep(Duration::from_secs(2));
    drop_plan(&server.inbox(), "late", &healthy_plan("late"));
    let status = server.wait_exit(Duration::from_secs(60));
    let output = server.output();
    assert_eq!(status.code(), Some(4), "{output}");
    assert_eq!(
        output.matches("audit writer stopped").count(),
        1,
        "said once: {output}"
    );
    assert!(
        output.contains("runway: no more plans are taken: audit writer stopped: "),
        "{output}"
    );

    // Nothing was consumed while the writer was down.
    let inbox = server.inbox();
    let mut done: Vec<_> = std::fs::read_dir(inbox.join("done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    done.sort();
    assert_eq!(done, ["first.json", "first.toml"]);
    assert_eq!(
        std::fs::read_dir(inbox.join("rejected")).unwrap().count(),
        0
    );
    assert!(
        inbox.join("filed/long.toml").exists(),
        "filed before: stays in filed/"
    );
    assert!(
        inbox.join("late.toml").exists(),
        "dropped after: stays in the inbox"
    );

    // Every acknowledged record is still there, and the trail verifies.
    std::fs::remove_file(filler).unwrap();
    let records = runway_audit::read_records(&server.audit()).unwrap();
    assert_eq!(records[..acknowledged.len()], acknowledged[..]);
    let origin = runway_audit::segment::folder_origin(&server.audit()).expect("origin");
    let key = server.path(&format!("runway-keys/{}.pub", origin.replace('/', "_")));
    let trust = runway_audit::Trust::read(&key).unwrap();
    let report = runway_audit::verify_with(&server.audit(), &trust.into()).expect("verifies");
    assert!(report.records >= acknowledged.len() as u64, "{report}");
}

#[test]
fn doors_a_right_to_left_override_in_a_plan_name_is_shown_escaped() {
    let dir = folder_with("probe");
    let d = dir.path();
    let name = "evil\u{202e}lmot.toml";
    std::fs::write(
        d.join(name),
        "[[runway]]\nid = \"bad id!\"\nagent = \"probe\"\n",
    )
    .unwrap();
    let run = run_plan_in(d, name);
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("evil\\u{202e}lmot.toml"), "{stderr}");
    assert!(!stderr.contains('\u{202e}'), "{stderr}");
    let show = Command::new(CLI)
        .args(["audit", "show", "--audit", "audit"])
        .current_dir(d)
        .output()
        .unwrap();
    let show = String::from_utf8(show.stdout).unwrap();
    assert!(
        show.contains("REJECT  -       plan file evil\\u{202e}lmot.toml ("),
        "{show}"
    );
    assert!(!show.contains('\u{202e}'), "{show}");
}

/// `rchar` of `/proc/PID/io`: bytes the process read, from files or not.
fn read_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .expect("rchar")
        .parse()
        .unwrap()
}

#[test]
fn doors_an_idle_server_reads_next_to_nothing() {
    let mut server = Server::new();
    let mut plugin_bytes = 0;
    for (name, path) in bundled::PLUGIN_PATHS {
        drop_plugin(name, &server.plugins());
        plugin_bytes += std::fs::metadata(path).unwrap().len();
    }
    server.start(&[]);
    // Plans are taken once the first rescan loaded the folder.
    assert_eq!(server.fly("first", &healthy_plan("first")), "SUCCEEDED");
    // Files just copied are read once more when they have settled (their
    // times are coarse); wait for that full rescan to pass.
    std::thread::sleep(FULL_RESCAN + Duration::from_secs(1));
    let before = read_bytes(server.pid());
    // Longer than a full rescan period: at least one full rescan happens.
    std::thread::sleep(FULL_RESCAN + Duration::from_secs(1));
    let read = read_bytes(server.pid()) - before;
    assert!(plugin_bytes > 10 * (64 << 10), "{plugin_bytes}");
    assert!(
        read < 64 << 10,
        "idle for {:?}, read {read} bytes (plugins: {plugin_bytes})",
        FULL_RESCAN + Duration::from_secs(1)
    );
    assert!(server.stop().success(), "{}", server.output());
}

#[test]
fn doors_the_run_summary_shows_outputs_escaped_and_cut() {
    let dir = folder_with("hostile");
    let d = dir.path();
    std::fs::write(
        d.join("plan.toml"),
        "[[runway]]\nid = \"wide\"\nagent = \"hostile\"\naction = \"big-output\"\ninput = { kib = 8 }\n",
    )
    .unwrap();
    let run = run_plan_in(d, "plan.toml");
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert_eq!(run.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("wide "))
        .expect("summary line");
    let detail = line
        .strip_prefix(&format!("{:<12} {:<10} ", "wide", "SUCCEEDED"))
        .expect("id and state");
    // 8 KiB of output, shown as its first 199 characters and a marker.
    assert_eq!(detail.chars().count(), 200, "{detail}");
    assert!(
        detail.starts_with("{\"pad\":\"xxx") && detail.ends_with('…'),
        "{detail}"
    );
}

/// The HTTP statuses `serve` (its address in `runway-serve.addr` under
/// `dir`) answers `n` requests carrying a junk token.
fn junk_requests(dir: &Path, n: usize) -> Vec<u16> {
    let addr = dir.join("runway-serve.addr");
    let mut url = String::new();
    eventually("serve listening", || {
        url = std::fs::read_to_string(&addr).unwrap_or_default();
        url.ends_with('\n')
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    (0..n)
        .map(|_| {
            agent
                .get(&format!("{}/api/runways", url.trim()))
                .header("Authorization", "Bearer junk")
                .call()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect()
}

#[test]
fn doors_refusal_records_stop_at_the_audit_disk_reserve_while_runways_land() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let refusals = |server: &Server, prefix: &str| -> Vec<String> {
        server
            .records()
            .into_iter()
            .filter_map(|r| match r.entry.event {
                Event::Rejected { reason } if reason.starts_with(prefix) => Some(reason),
                _ => None,
            })
            .collect()
    };
    const ONE: &str = "API request refused: ";
    const SUMMARY: &str = "API requests refused and not audited one by one: ";
    let mut server = Server::new();
    drop_plugin("probe", &server.plugins());
    // An 8 MiB audit disk, 4 MiB of it kept for the runways' own records.
    let _tmpfs = Tmpfs::mount(&server.audit(), "8m");
    server.start(&["--audit-reserve-mib", "4"]);

    // Above the reserve: each refusal on the trail.
    assert_eq!(junk_requests(server.dir.path(), 3), [401; 3]);
    eventually("three refusals audited", || {
        refusals(&server, ONE).len() == 3
    });

    // Below it (about 3 MiB free): refusals are answered as before (401,
    // then 429 past the bucket) but only counted...
    let filler = server.audit().join("filler");
    std::fs::write(&filler, vec![0u8; 5 << 20]).unwrap();
    let answers = junk_requests(server.dir.path(), 30);
    assert!(
        answers.iter().all(|s| [401, 429].contains(s)),
        "{answers:?}"
    );
    // ...while a runway files and lands, its records in the reserve.
    assert_eq!(server.fly("landing", &healthy_plan("landing")), "SUCCEEDED");
    assert!(
        server.records().iter().any(
            |r| r.entry.runway == "landing" && matches!(r.entry.event, Event::Succeeded { .. })
        )
    );
    assert_eq!(
        refusals(&server, ONE).len(),
        3,
        "no refusal past the reserve"
    );
    assert!(refusals(&server, SUMMARY).is_empty());

    // Room again: at shutdown the 30 are summed in one record.
    std::fs::remove_file(&filler).unwrap();
    assert!(server.stop().success(), "{}", server.output());
    let summaries = refusals(&server, SUMMARY);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert!(
        summaries[0].contains(": 30 from 127.0.0.1 between "),
        "{}",
        summaries[0]
    );
    assert!(
        summaries[0].contains("GET /api/runways ×30"),
        "{}",
        summaries[0]
    );
}
