//! The trail and the store agree after a crash at every step of a commit:
//! the host is killed (SIGKILL, through `RUNWAY_CRASH_AT`) in the landing
//! stage before COMMITTING, after COMMITTING is durable, after the store
//! transaction, and after COMMITTED, while three writers land alone or
//! together; the next start settles every interrupted commit, and the
//! records say exactly what the store holds. A run killed before it began
//! to commit is failed at the next start, so the trail never ends at its
//! START.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use runway_audit::Event;
use runway_tests::drop_plugin;

use crate::cli::runway;

/// Three writers on datasets of their own, on two workers: the landing
/// stage may land them one at a time or together.
const CRASHING: &str = r#"
[[runway]]
id = "crashing-1"
agent = "import-applications"
datasets = { test_crash_1 = "exclusive" }
input = { count = 20, seed = 1 }

[[runway]]
id = "crashing-2"
agent = "import-applications"
datasets = { test_crash_2 = "exclusive" }
input = { count = 20, seed = 2 }

[[runway]]
id = "crashing-3"
agent = "import-applications"
datasets = { test_crash_3 = "exclusive" }
input = { count = 20, seed = 3 }
"#;

const NEXT: &str = r#"
[[runway]]
id = "next"
agent = "probe"
action = "ok"
"#;

fn crash_at(point: &str) -> (tempfile::TempDir, Vec<runway_audit::Record>, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("plugins")).unwrap();
    drop_plugin("import-applications", &d.join("plugins"));
    drop_plugin("probe", &d.join("plugins"));
    std::fs::write(d.join("crashing.toml"), CRASHING).unwrap();
    std::fs::write(d.join("next.toml"), NEXT).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["run", "crashing.toml", "--plugins", "plugins", "--json"])
        .env("RUNWAY_CRASH_AT", point)
        .current_dir(d)
        .output()
        .unwrap()
        .status;
    assert_eq!(status.signal(), Some(9), "{point}: not killed: {status}");
    let next = runway(d, &["run", "next.toml", "--plugins", "plugins"]);
    assert_eq!(next.code, 0, "{point}: {}{}", next.stdout, next.stderr);
    let records = runway_audit::read_records(&d.join("runway-audit")).unwrap();
    (dir, records, next.stderr)
}

fn records_in_store(d: &Path, dataset: &str) -> u64 {
    let list = runway(d, &["data", "list", "--json"]).stdout;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == dataset)
        .map_or(0, |d| d["records"].as_u64().unwrap())
}

#[test]
fn a_crash_at_every_step_of_a_commit_leaves_trail_and_store_agreeing() {
    for point in [
        "before-committing",
        "after-committing",
        "after-store-commit",
        "after-committed",
    ] {
        let (dir, records, stderr) = crash_at(point);
        let recovered: Vec<(&str, bool)> = records
            .iter()
            .filter_map(|r| match r.entry.event {
                Event::Recovered { landed, .. } => Some((r.entry.runway.as_str(), landed)),
                _ => None,
            })
            .collect();
        // The crash cut the first batch to land: before its COMMITTING
        // records nothing is left to settle, after them each of its runs is.
        if point == "before-committing" {
            assert!(recovered.is_empty(), "{point}: {recovered:?}");
        } else {
            assert!(!recovered.is_empty(), "{point}: no RECOVER");
            let settled = format!("settled {} commit(s)", recovered.len());
            assert!(stderr.contains(&settled), "{point}: {stderr}");
            let landed = point != "after-committing";
            assert!(
                recovered.iter().all(|&(_, l)| l == landed),
                "{point}: {recovered:?}"
            );
        }
        // Every dataset is before or after its run, and the trail says which.
        for n in 1..=3 {
            let runway = format!("crashing-{n}");
            let of_run: Vec<&Event> = records
                .iter()
                .filter(|r| r.entry.runway == runway)
                .map(|r| &r.entry.event)
                .collect();
            let count = |f: fn(&Event) -> bool| of_run.iter().filter(|e| f(e)).count();
            let committed = count(|e| matches!(e, Event::Committed { .. }));
            let succeeded = count(|e| matches!(e, Event::Succeeded { .. }));
            let crashed = count(
                |e| matches!(e, Event::Failed { reason } if reason.starts_with("host crashed during the commit")),
            );
            let stored = records_in_store(dir.path(), &format!("test_crash_{n}"));
            match stored {
                20 => assert_eq!(
                    (committed, succeeded, crashed),
                    (1, 1, 0),
                    "{point} {runway}"
                ),
                0 => assert_eq!((committed, succeeded), (0, 0), "{point} {runway}"),
                other => panic!("{point} {runway}: {other} records, a partial commit"),
            }
            if recovered.iter().any(|&(r, l)| r == runway && !l) {
                assert_eq!(crashed, 1, "{point} {runway}");
            }
        }
        // A second start finds nothing more to settle.
        let again = runway(dir.path(), &["run", "next.toml", "--plugins", "plugins"]);
        assert!(
            !again.stderr.contains("settled"),
            "{point}: {}",
            again.stderr
        );
        assert_eq!(
            runway(dir.path(), &["audit", "verify"]).code,
            0,
            "{point}: the trail verifies"
        );
    }
}

#[test]
fn a_run_cut_short_by_a_crash_is_failed_at_the_next_start() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("plugins")).unwrap();
    drop_plugin("hostile", &d.join("plugins"));
    drop_plugin("probe", &d.join("plugins"));
    std::fs::write(
        d.join("sleep.toml"),
        "[[runway]]\nid = \"sleeper\"\nagent = \"hostile\"\naction = \"sleep\"\n\
         datasets = { test_sleep = \"exclusive\" }\ninput = { secs = 30 }\n",
    )
    .unwrap();
    std::fs::write(d.join("next.toml"), NEXT).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["run", "sleep.toml", "--plugins", "plugins"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains("START") && line.contains("sleeper") {
            break;
        }
    }
    // The timeline shows START as it is appended; give the writer a moment
    // to put it in the file (a SIGKILL keeps what reached the kernel).
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL, mid-run
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    let next = runway(d, &["run", "next.toml", "--plugins", "plugins"]);
    assert_eq!(next.code, 0, "{}{}", next.stdout, next.stderr);
    assert!(
        next.stderr
            .contains("failed 1 run(s) a crash had cut short"),
        "{}",
        next.stderr
    );
    let records = runway_audit::read_records(&d.join("runway-audit")).unwrap();
    let last = records
        .iter()
        .rev()
        .find(|r| r.entry.runway == "sleeper")
        .unwrap();
    assert!(
        matches!(&last.entry.event, Event::Failed { reason }
            if reason.starts_with("host crashed during the run")),
        "{:?}",
        last.entry.event
    );
    let again = runway(d, &["run", "next.toml", "--plugins", "plugins"]);
    assert!(!again.stderr.contains("cut short"), "{}", again.stderr);
    assert_eq!(runway(d, &["audit", "verify"]).code, 0);
}
