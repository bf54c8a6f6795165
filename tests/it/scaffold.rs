//! An author's first minutes: `runway new agent demo`, its native unit
//! tests, `runway build`, and its plan run under the real host — outside
//! this repository, from the vendored SDK. Slow (two cargo builds of a new
//! crate), so it is the only test of its kind.

use std::process::Command;

use crate::cli::{runway, runway_with};

#[test]
fn a_new_agent_tests_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let made = runway(dir.path(), &["new", "agent", "demo"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let crate_dir = dir.path().join("demo");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "grants.toml",
        "plan.toml",
        "vendor/wit/agent.wit",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} written");
    }
    // Shared across runs of this test, so only the first is cold.
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/scaffold-target");

    let tested = Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    let said = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(
        said.contains("2 passed"),
        "the scaffold's native tests ran: {said}"
    );

    let built = runway_with(&crate_dir, &["build"], &[("CARGO_TARGET_DIR", target)]);
    let said = &built.stdout;
    assert_eq!(built.code, 0, "{said}{}", built.stderr);
    assert!(
        said.contains("demo.wasm") && said.contains("sha256 "),
        "{said}"
    );
    for file in ["plugins/demo.wasm", "plugins/demo.toml"] {
        assert!(crate_dir.join(file).is_file(), "{file} placed");
    }

    let ran = runway(&crate_dir, &["run", "plan.toml", "--plugins", "plugins"]);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains(r#"demo         SUCCEEDED  {"count":1}"#),
        "{}",
        ran.stdout
    );

    // A second `new` over the same name changes nothing and says so once.
    let again = runway(dir.path(), &["new", "agent", "demo"]);
    assert_eq!(again.code, 2);
    assert_eq!(
        again.stderr.matches("exists").count(),
        1,
        "{}",
        again.stderr
    );
}
