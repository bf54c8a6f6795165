//! Operators see their data: `runway data list | get | export` over the
//! SQLite store, and a record's provenance leads to an audit proof that
//! verifies.

use std::path::Path;

use runway_tests::drop_plugin;

use crate::cli::runway;

const DS: &str = "fafsa_2024_03_16";

const PLAN: &str = r#"
[[runway]]
id = "import"
agent = "import-applications"
datasets = { fafsa_2024_03_16 = "exclusive" }
input = { count = 60, seed = 7 }

[[runway]]
id = "compliance"
agent = "compliance-check"
datasets = { fafsa_2024_03_16 = "exclusive" }
after = ["import"]

[[runway]]
id = "awards"
agent = "grant-calculator"
datasets = { fafsa_2024_03_16 = "exclusive" }
after = ["compliance"]
"#;

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = runway(dir, args);
    assert_eq!(out.code, 0, "runway {args:?}: {}{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn a_records_provenance_names_its_writer_and_its_proof_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("plugins")).unwrap();
    for agent in [
        "import-applications",
        "compliance-check",
        "grant-calculator",
    ] {
        drop_plugin(agent, &d.join("plugins"));
    }
    std::fs::write(d.join("plan.toml"), PLAN).unwrap();
    ok(d, &["run", "plan.toml", "--plugins", "plugins", "--json"]);

    // Every award was written by the awards runway, under its token.
    let export = ok(d, &["data", "export", DS]);
    let records: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let awards: Vec<_> = records
        .iter()
        .filter(|r| r["key"].as_str().unwrap().starts_with("award/"))
        .collect();
    assert!(!awards.is_empty(), "{export}");
    let token = &awards[0]["provenance"]["token"];
    for a in &awards {
        assert_eq!(a["provenance"]["runway"], "awards", "{a}");
        assert_eq!(a["provenance"]["agent"], "grant-calculator", "{a}");
        assert_eq!(&a["provenance"]["token"], token, "{a}");
    }
    let list: serde_json::Value =
        serde_json::from_str(&ok(d, &["data", "list", "--json"])).unwrap();
    assert_eq!(list[0]["name"], DS);
    assert_eq!(list[0]["records"], records.len());
    assert_eq!(&list[0]["fence"], token, "the last writer set the fence");

    // `data get --provenance` names the writer and the command that proves it.
    let key = awards[awards.len() / 2]["key"].as_str().unwrap();
    let shown = ok(d, &["data", "get", DS, key, "--provenance"]);
    assert!(
        shown.contains("written by runway awards (agent grant-calculator, plugin ")
            && shown.contains(&format!("token {token}")),
        "{shown}"
    );
    let prove = shown
        .lines()
        .find_map(|l| l.strip_prefix("prove it: runway "))
        .expect("a prove command");
    let mut args: Vec<&str> = prove.split(' ').collect();
    args.extend(["--out", "award.proof"]);
    ok(d, &args);
    // The host's public key, as an auditor would be handed it.
    let public = std::fs::read_dir(d.join("runway-keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pub"))
        .expect("the host's public key");
    let public = public.to_str().unwrap();
    let checked = ok(d, &["audit", "check-proof", "award.proof", "--key", public]);
    // The proven record is the write of this very key.
    assert!(
        checked.contains(&format!("write {DS}/{key} token {token} ok")),
        "{checked}"
    );
}

#[test]
fn data_commands_name_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = runway(dir.path(), &["data", "list"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("no datasets at runway-data"),
        "{}",
        out.stderr
    );
    let out = runway(dir.path(), &["data", "get", "../x", "k"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("dataset name"), "{}", out.stderr);
}

#[test]
fn a_second_host_on_the_same_data_root_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["plugins", "inbox", "inbox2"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["serve", "--plugins", "plugins", "--inbox", "inbox"])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    runway_tests::eventually("the first host holds its data root", || {
        std::fs::read_to_string(d.join("runway-data/runway.lock"))
            .is_ok_and(|pid| pid.trim() == first.id().to_string())
    });
    // Another audit folder too, so only the data root is shared.
    let second = runway(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plugins",
            "plugins",
            "--inbox",
            "inbox2",
            "--audit",
            "audit2",
        ],
    );
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!(
            "data root runway-data is in use by another Runway host (pid {})",
            first.id()
        )),
        "{}",
        second.stderr
    );
}
