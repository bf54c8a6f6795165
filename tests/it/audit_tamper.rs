//! End to end: a trail written by `runway run`, signed with the default key
//! it makes, verified by `runway audit verify` with nothing but the folder
//! and the public key; every kind of tampering ends in exit code 3 and a
//! message naming the record or checkpoint at fault. Proofs made by
//! `runway audit prove` check with `runway audit check-proof` alone.
//!
//! The finer cases (every bit of every field, re-chained forgeries, proof
//! corruptions) are unit tests of `runway-audit`; here the binary is on the
//! line: its exit codes, its messages, its default key handling.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use runway_audit::frame::FRAME_HEAD_LEN;
use runway_tests::{frames, last_segment};

/// A small plan: one import of 300 records, a few thousand audit records.
const PLAN: &str = r#"
[[runway]]
id = "import"
agent = "import-applications"
datasets = { fafsa_2024_03_16 = "exclusive" }
input = { count = 300, seed = 7 }
"#;

/// The `runway` command line, built by cargo for this test binary.
use crate::cli::runway;

/// The folder a pristine `runway run` left: `runway-audit/`, `runway-keys/`.
fn pristine() -> &'static Path {
    static RUN: OnceLock<tempfile::TempDir> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("plan.toml"), PLAN).expect("plan");
        let out = runway(dir.path(), &["run", "plan.toml", "--workers", "1"]);
        assert_eq!(out.code, 0, "runway run: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr
                .contains("created signing key runway-keys/runway.key"),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout.contains("checkpoints up to size"),
            "{}",
            out.stdout
        );
        dir
    })
    .path()
}

/// A copy of the pristine trail and keys, to tamper with.
fn trail() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["runway-audit", "runway-keys"] {
        fs::create_dir(dir.path().join(sub)).expect("mkdir");
        for file in fs::read_dir(pristine().join(sub)).expect("read dir") {
            let file = file.expect("entry").path();
            let name = file.file_name().expect("name");
            fs::copy(&file, dir.path().join(sub).join(name)).expect("copy");
        }
    }
    dir
}

/// `runway audit verify` must fail with exit code 3 and `expected` in its message.
fn verify_fails(dir: &Path, extra: &[&str], expected: &str) -> String {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let out = runway(dir, &args);
    assert_eq!(
        out.code, 3,
        "expected failure: {}\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(expected),
        "expected {expected:?} in: {}",
        out.stderr
    );
    out.stderr
}

#[test]
fn a_run_leaves_a_signed_trail_that_verifies_with_the_default_key() {
    let dir = trail();
    let out = runway(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("trusting public key runway-keys/runway.pub (runway+"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("found beside the audit folder"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ok: runway-audit verifies:"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("unsigned tail"), "{}", out.stdout);

    let json = runway(dir.path(), &["audit", "verify", "--json"]);
    assert_eq!(json.code, 0);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let records = report["report"]["records"].as_u64().expect("records");
    assert!(records > 300, "{records}");
    assert_eq!(report["report"]["signed_size"].as_u64(), Some(records));
    assert_eq!(report["report"]["unsigned_records"].as_u64(), Some(0));
}

#[test]
fn a_second_run_reuses_the_key_and_extends_the_trail() {
    let dir = trail();
    fs::write(
        dir.path().join("plan.toml"),
        PLAN.replace("import\"", "again\""),
    )
    .expect("plan");
    let out = runway(dir.path(), &["run", "plan.toml", "--workers", "1"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("created signing key"),
        "{}",
        out.stderr
    );
    let out = runway(
        dir.path(),
        &["audit", "verify", "--key", "runway-keys/runway.pub"],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("trusting public key runway-keys/runway.pub")
    );
}

#[test]
fn a_flipped_byte_in_a_signed_record_is_named() {
    let dir = trail();
    let path = last_segment(&dir.path().join("runway-audit"));
    let mut bytes = fs::read(&path).expect("read");
    let frames = frames(&bytes);
    let k = frames.len() / 2;
    bytes[frames[k].0 + FRAME_HEAD_LEN + 2] ^= 0x20;
    fs::write(&path, bytes).expect("write");
    let message = verify_fails(dir.path(), &[], &format!("record {k} (seg-"));
    assert!(message.contains("CRC mismatch"), "{message}");
}

#[test]
fn a_removed_record_is_named() {
    let dir = trail();
    let path = last_segment(&dir.path().join("runway-audit"));
    let bytes = fs::read(&path).expect("read");
    let (start, end) = frames(&bytes)[5];
    let mut cut = bytes[..start].to_vec();
    cut.extend_from_slice(&bytes[end..]);
    fs::write(&path, cut).expect("write");
    verify_fails(dir.path(), &[], "record 5 (");
}

#[test]
fn truncation_below_the_latest_checkpoint_is_caught() {
    let dir = trail();
    let path = last_segment(&dir.path().join("runway-audit"));
    let bytes = fs::read(&path).expect("read");
    let frames = frames(&bytes);
    let keep = frames.len() - 3;
    fs::write(&path, &bytes[..frames[keep].0]).expect("write");
    verify_fails(
        dir.path(),
        &[],
        &format!(
            "the log holds only {keep}: records {keep}..{} were removed",
            frames.len()
        ),
    );
}

#[test]
fn a_torn_record_beyond_the_checkpoint_is_not_tampering() {
    let dir = trail();
    let path = last_segment(&dir.path().join("runway-audit"));
    let mut bytes = fs::read(&path).expect("read");
    // Half of a frame the writer never finished: a length and a few bytes.
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
    fs::write(&path, bytes).expect("write");
    let out = runway(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("torn tail (a write cut short, not tampering)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_flipped_bit_in_a_checkpoint_is_named() {
    let dir = trail();
    let path = dir.path().join("runway-audit/checkpoints");
    let text = fs::read_to_string(&path).expect("read");
    // The root line of the first checkpoint.
    let root_line = text.lines().nth(2).expect("root line").to_owned();
    let mut flipped = root_line.clone().into_bytes();
    flipped[5] ^= 0x01;
    let flipped = String::from_utf8(flipped).expect("utf-8");
    fs::write(&path, text.replacen(&root_line, &flipped, 1)).expect("write");
    verify_fails(dir.path(), &[], "checkpoint #1 in checkpoints");
}

#[test]
fn a_checkpoint_by_an_unknown_key_is_refused() {
    let dir = trail();
    let out = runway(
        dir.path(),
        &["keygen", "--out", "other-keys", "--name", "stranger"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("wrote other-keys/stranger.key"),
        "{}",
        out.stdout
    );
    verify_fails(
        dir.path(),
        &["--key", "other-keys/stranger.pub"],
        "signed only by keys outside the trust file (runway+",
    );
}

#[test]
fn a_key_outside_its_validity_range_is_refused() {
    let dir = trail();
    let public = fs::read_to_string(dir.path().join("runway-keys/runway.pub")).expect("read");
    let trust = format!("[[key]]\npublic = \"{}\"\nuntil_size = 10\n", public.trim());
    fs::write(dir.path().join("trust.toml"), trust).expect("write");
    verify_fails(
        dir.path(),
        &["--trust", "trust.toml"],
        "which is trusted for sizes 0..=10 only",
    );
}

#[test]
fn a_rollback_is_caught_with_a_checkpoint_the_auditor_kept() {
    let dir = trail();
    let audit = dir.path().join("runway-audit");
    let old = tempfile::tempdir().expect("tempdir");
    for file in fs::read_dir(&audit).expect("read dir") {
        let file = file.expect("entry").path();
        fs::copy(&file, old.path().join(file.file_name().expect("name"))).expect("copy");
    }
    fs::write(
        dir.path().join("plan.toml"),
        PLAN.replace("import\"", "later\""),
    )
    .expect("plan");
    let out = runway(dir.path(), &["run", "plan.toml", "--workers", "1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    fs::copy(audit.join("checkpoint"), dir.path().join("kept.checkpoint")).expect("keep");

    // Log and checkpoints put back to the older, self-consistent state.
    for file in fs::read_dir(old.path()).expect("read dir") {
        let file = file.expect("entry").path();
        fs::copy(&file, audit.join(file.file_name().expect("name"))).expect("copy");
    }
    let out = runway(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    verify_fails(
        dir.path(),
        &["--checkpoint", "kept.checkpoint"],
        "checkpoint in kept.checkpoint",
    );
}

#[test]
fn proofs_check_with_the_public_key_alone() {
    let dir = trail();
    let out = runway(
        dir.path(),
        &["audit", "prove", "--seq", "7", "--out", "seven.proof"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = runway(
        dir.path(),
        &["audit", "prove", "--from", "20", "--out", "grew.proof"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The auditor's side: the proofs and the public key, no audit folder.
    let auditor = tempfile::tempdir().expect("tempdir");
    for file in ["seven.proof", "grew.proof", "runway-keys/runway.pub"] {
        let name = Path::new(file).file_name().expect("name");
        fs::copy(dir.path().join(file), auditor.path().join(name)).expect("copy");
    }
    let out = runway(
        auditor.path(),
        &["audit", "check-proof", "seven.proof", "--key", "runway.pub"],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("ok: record 7 is in the log at tree size"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("#7 "), "{}", out.stdout);
    let out = runway(
        auditor.path(),
        &["audit", "check-proof", "grew.proof", "--key", "runway.pub"],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("ok: the log of 20 records"),
        "{}",
        out.stdout
    );

    // A hash flipped, a hash dropped, the wrong index: refused.
    let text = fs::read_to_string(auditor.path().join("seven.proof")).expect("read");
    let hash_line = text
        .lines()
        .find(|l| l.starts_with("hash "))
        .expect("hash")
        .to_owned();
    let mut flipped: Vec<char> = hash_line.chars().collect();
    flipped[6] = if flipped[6] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let corrupted = [
        text.replacen(&hash_line, &flipped, 1),
        text.replacen(&format!("{hash_line}\n"), "", 1),
        text.replacen("inclusion 7 ", "inclusion 6 ", 1),
    ];
    for bad in corrupted {
        fs::write(auditor.path().join("bad.proof"), &bad).expect("write");
        let out = runway(
            auditor.path(),
            &["audit", "check-proof", "bad.proof", "--key", "runway.pub"],
        );
        assert_eq!(out.code, 3, "accepted:\n{bad}\n{}", out.stdout);
        assert!(
            out.stderr.contains("bad.proof does not hold"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn export_marks_signed_records() {
    let dir = trail();
    let out = runway(dir.path(), &["audit", "export", "--jsonl"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(lines.len() > 300);
    assert!(lines.iter().all(|l| l["signed"] == true));
    assert_eq!(lines[0]["seq"], 0);
    assert_eq!(lines[0]["event"], "filed");
}
