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

/// The `args` digest of a write, as the README says it is computed:
/// SHA-256 over the dataset name, the key and the value, each preceded by
/// its length in bytes as a little-endian u64.
fn write_args(dataset: &str, key: &str, value: &[u8]) -> String {
    let mut bytes = Vec::new();
    for part in [dataset.as_bytes(), key.as_bytes(), value] {
        bytes.extend((part.len() as u64).to_le_bytes());
        bytes.extend(part);
    }
    runway_audit::hex::encode(&runway_audit::sha256(&bytes))
}

#[test]
fn a_value_read_back_recomputes_the_args_digest_of_its_proven_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("plugins")).unwrap();
    drop_plugin("import-applications", &d.join("plugins"));
    std::fs::write(
        d.join("plan.toml"),
        "[[runway]]\nid = \"import\"\nagent = \"import-applications\"\n\
         datasets = { fafsa_2024_03_16 = \"exclusive\" }\ninput = { count = 3, seed = 5 }\n",
    )
    .unwrap();
    ok(d, &["run", "plan.toml", "--plugins", "plugins", "--json"]);
    let export = ok(d, &["data", "export", DS]);
    let first: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    let key = first["key"].as_str().unwrap();

    // The value as `data get --provenance` reads it back: its first line
    // (JSON text, printed as it is stored), with its SHA-256 beside it.
    let shown = ok(d, &["data", "get", DS, key, "--provenance"]);
    let value = shown.lines().next().unwrap().as_bytes();
    let sha = runway_audit::hex::encode(&runway_audit::sha256(value));
    assert!(shown.contains(&format!("value sha256 {sha} ")), "{shown}");
    let args = write_args(DS, key, value);
    assert!(
        shown.contains(&format!("write args sha256 {args} "))
            && shown.contains(&format!("args {args} (matches)")),
        "{shown}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&ok(d, &["data", "get", DS, key, "--provenance", "--json"])).unwrap();
    let p = &doc["provenance"];
    assert_eq!(p["value_sha256"], sha, "{doc}");
    assert_eq!(p["args_sha256"], args, "{doc}");
    assert_eq!(p["record"]["args"], args, "{doc}");
    assert_eq!(p["args_match"], true, "{doc}");

    // The record `audit prove` proves holds that very digest.
    let seq = p["audit_seq"].as_u64().unwrap().to_string();
    ok(
        d,
        &["audit", "prove", "--seq", &seq, "--out", "write.proof"],
    );
    let proof = std::fs::read_to_string(d.join("write.proof")).unwrap();
    let proof = runway_audit::proof_file::ProofFile::parse(&proof).unwrap();
    let runway_audit::proof_file::Claim::Inclusion { record, .. } = proof.claim else {
        panic!("not an inclusion proof");
    };
    let record = runway_audit::Record::decode(&record).unwrap();
    let runway_audit::Event::Call {
        args: proven,
        key: Some(proven_key),
        ..
    } = &record.entry.event
    else {
        panic!("not a host call: {record:?}");
    };
    assert_eq!(proven_key, key);
    assert_eq!(runway_audit::hex::encode(proven), args);
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
