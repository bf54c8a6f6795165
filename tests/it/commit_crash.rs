//! The trail and the store agree after a crash at every step of a commit:
//! the host is killed (SIGKILL, through `RUNWAY_CRASH_AT`) after COMMITTING
//! is durable, after the store transaction, and after COMMITTED; the next
//! start settles the commit, and the records say exactly what the store
//! holds.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use runway_audit::Event;
use runway_tests::drop_plugin;

use crate::cli::runway;

const CRASHING: &str = r#"
[[runway]]
id = "crashing"
agent = "import-applications"
datasets = { test_crash = "exclusive" }
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

fn records_in_store(d: &Path) -> u64 {
    let list = runway(d, &["data", "list", "--json"]).stdout;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "test_crash")
        .map_or(0, |d| d["records"].as_u64().unwrap())
}

#[test]
fn a_crash_at_every_step_of_a_commit_leaves_trail_and_store_agreeing() {
    for (point, landed) in [
        ("after-committing", false),
        ("after-store-commit", true),
        ("after-committed", true),
    ] {
        let (dir, records, stderr) = crash_at(point);
        assert!(stderr.contains("settled 1 commit(s)"), "{point}: {stderr}");
        let of_crashing: Vec<&Event> = records
            .iter()
            .filter(|r| r.entry.runway == "crashing")
            .map(|r| &r.entry.event)
            .collect();
        let recovered = of_crashing
            .iter()
            .find_map(|e| match e {
                Event::Recovered { landed, .. } => Some(*landed),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{point}: no RECOVER"));
        assert_eq!(recovered, landed, "{point}");
        let committed = of_crashing
            .iter()
            .filter(|e| matches!(e, Event::Committed { .. }))
            .count();
        let succeeded = of_crashing
            .iter()
            .filter(|e| matches!(e, Event::Succeeded { .. }))
            .count();
        let failed = of_crashing
            .iter()
            .filter(|e| matches!(e, Event::Failed { reason } if reason.starts_with("host crashed during the commit")))
            .count();
        let stored = records_in_store(dir.path());
        if landed {
            assert_eq!(
                (committed, succeeded, failed, stored),
                (1, 1, 0, 20),
                "{point}"
            );
        } else {
            assert_eq!(
                (committed, succeeded, failed, stored),
                (0, 0, 1, 0),
                "{point}"
            );
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
