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
use runway_audit::{
    AuditLog, AuditOptions, Checkpoint, Entry, Event, PrivateKey, SignedCheckpoint,
};
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
            out.stderr.contains("created signing key runway-keys/"),
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

/// The origin of the trail in `dir`: the first line of its latest checkpoint.
fn origin(dir: &Path) -> String {
    let latest = fs::read_to_string(dir.join("runway-audit/checkpoint")).expect("checkpoint");
    latest.lines().next().expect("origin line").to_owned()
}

/// The default public key of the trail in `dir`, relative to `dir`: named
/// after its origin.
fn public_key(dir: &Path) -> std::path::PathBuf {
    Path::new("runway-keys").join(format!("{}.pub", origin(dir).replace('/', "_")))
}

/// Cuts the last `n` records off the trail in `dir`: (records kept, records
/// there were).
fn cut_last_records(dir: &Path, n: usize) -> (usize, usize) {
    let path = last_segment(&dir.join("runway-audit"));
    let bytes = fs::read(&path).expect("read");
    let frames = frames(&bytes);
    let keep = frames.len() - n;
    fs::write(&path, &bytes[..frames[keep].0]).expect("write");
    (keep, frames.len())
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Appends `n` records to the trail in `dir` without signing them, as a
/// host that crashed before its checkpoint would leave them.
fn append_unsigned(dir: &Path, n: u64) {
    let audit = dir.join("runway-audit");
    let log = AuditLog::open(&audit, AuditOptions::new(origin(dir))).expect("open");
    for i in 0..n {
        log.append(Entry {
            runway: "late".into(),
            agent: "late-agent".into(),
            plugin: None,
            dataset: None,
            event: Event::Started { attempt: i as u32 },
        })
        .expect("append");
    }
    log.close().expect("close");
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
    let origin = origin(dir.path());
    assert!(
        out.stdout.starts_with(&format!(
            "trusting public key {} ({origin}+",
            public_key(dir.path()).display()
        )),
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
    let key = public_key(dir.path());
    let out = runway(dir.path(), &["audit", "verify", "--key", path_str(&key)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("trusting public key {}", key.display()))
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
    let (keep, total) = cut_last_records(dir.path(), 3);
    verify_fails(
        dir.path(),
        &[],
        &format!("the log holds only {keep}: records {keep}..{total} were removed"),
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
        &format!(
            "signed only by keys outside the trust file ({}+",
            origin(dir.path())
        ),
    );
}

#[test]
fn a_key_outside_its_validity_range_is_refused() {
    let dir = trail();
    let public = fs::read_to_string(dir.path().join(public_key(dir.path()))).expect("read");
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
    let key = public_key(dir.path());
    for file in [Path::new("seven.proof"), Path::new("grew.proof"), &key] {
        let name = file.file_name().expect("name");
        fs::copy(dir.path().join(file), auditor.path().join(name)).expect("copy");
    }
    fs::rename(
        auditor.path().join(key.file_name().expect("name")),
        auditor.path().join("runway.pub"),
    )
    .expect("rename");
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
        // One line, and its cause said once.
        let message = out.stderr.trim_end();
        let cause = message.rsplit(": ").next().expect("cause");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert_eq!(message.matches(cause).count(), 1, "{message}");
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
    // A run's trail opens with the loading of its plugins, then its filings.
    let first_filing = lines.iter().position(|l| l["event"] == "filed");
    let loads = lines.iter().take_while(|l| l["event"] == "plugin-loaded");
    assert_eq!(Some(loads.count()), first_filing, "{:?}", &lines[..4]);
}

#[test]
fn deleted_checkpoints_then_cut_records_fail_with_a_key() {
    let dir = trail();
    let key = public_key(dir.path());
    for file in ["checkpoints", "checkpoint"] {
        fs::remove_file(dir.path().join("runway-audit").join(file)).expect("remove");
    }
    let (keep, _) = cut_last_records(dir.path(), 3);
    verify_fails(
        dir.path(),
        &["--key", path_str(&key)],
        &format!("audit folder: no signed checkpoint covers the log's {keep} records"),
    );
}

#[test]
fn an_unsigned_tail_past_the_allowance_fails() {
    let dir = trail();
    let signed =
        frames(&fs::read(last_segment(&dir.path().join("runway-audit"))).expect("read")).len();
    append_unsigned(dir.path(), 5);
    let out = runway(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "unsigned tail: 5 records after the latest checkpoint (seq {signed}..{})",
            signed + 5
        )),
        "{}",
        out.stdout
    );
    verify_fails(
        dir.path(),
        &["--allow-unsigned-tail", "4"],
        &format!(
            "records {signed}..{} follow the last signed checkpoint: 5 unsigned records, more than the 4 allowed",
            signed + 5
        ),
    );

    // `audit show` marks them; the signed ones are not marked.
    let out = runway(dir.path(), &["audit", "show"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let (before, unsigned) = lines.split_at(lines.len() - 5);
    assert!(
        unsigned
            .iter()
            .all(|l| l.starts_with('#') && l.ends_with("  (unsigned)")),
        "{unsigned:?}"
    );
    assert!(
        before.iter().all(|l| !l.contains("(unsigned)")),
        "{before:?}"
    );
    let json = runway(dir.path(), &["audit", "show", "--json"]);
    let last: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().expect("line")).expect("json");
    assert_eq!(last["signed"], false);
}

#[test]
fn a_crlf_checkpoints_file_is_refused() {
    let dir = trail();
    let path = dir.path().join("runway-audit/checkpoints");
    let text = fs::read_to_string(&path).expect("read");
    fs::write(&path, text.replace('\n', "\r\n")).expect("write");
    verify_fails(
        dir.path(),
        &[],
        "audit folder: checkpoints line 1 ends in a carriage return (CRLF line endings?)",
    );
}

#[test]
fn a_checkpoint_with_an_extension_line_verifies() {
    let dir = trail();
    let audit = dir.path().join("runway-audit");
    let private = dir
        .path()
        .join(public_key(dir.path()).with_extension("key"));
    let key = PrivateKey::parse(&fs::read_to_string(private).expect("key")).expect("parse");
    let latest =
        SignedCheckpoint::parse(&fs::read_to_string(audit.join("checkpoint")).expect("read"))
            .expect("parse");
    let extended = Checkpoint {
        extensions: vec!["witness.example/w1 ts=1710550800".into()],
        ..latest.checkpoint.clone()
    };
    let extended = SignedCheckpoint::sign(extended, &[key])
        .expect("sign")
        .to_string();
    let checkpoints = fs::read_to_string(audit.join("checkpoints")).expect("read");
    let checkpoints = checkpoints.replace(&latest.to_string(), &extended);
    fs::write(audit.join("checkpoints"), checkpoints).expect("write");
    fs::write(audit.join("checkpoint"), &extended).expect("write");
    let out = runway(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    fs::write(
        audit.join("checkpoint"),
        extended.replace("ts=1710550800", "ts=1710550801"),
    )
    .expect("write");
    verify_fails(dir.path(), &[], "does not verify");
}

#[test]
fn a_new_trail_is_named_like_a_url_and_signed_by_a_key_of_that_name() {
    let dir = trail();
    let origin = origin(dir.path());
    let (host, path) = origin.split_once('/').expect("host/path");
    assert!(!host.is_empty() && path == "runway", "{origin}");
    let public = fs::read_to_string(dir.path().join(public_key(dir.path()))).expect("key");
    assert!(public.starts_with(&format!("{origin}+")), "{public}");
    let signature = fs::read_to_string(dir.path().join("runway-audit/checkpoint")).expect("read");
    assert!(
        signature.contains(&format!("\n\u{2014} {origin} ")),
        "{signature}"
    );
}

#[test]
fn an_existing_trail_keeps_its_origin_and_key() {
    // A folder made when the default origin and key name were `runway`.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = PrivateKey::generate("runway").expect("key");
    runway_audit::keys::write_key_pair(&dir.path().join("runway-keys"), &key).expect("write");
    let log = AuditLog::open(
        &dir.path().join("runway-audit"),
        AuditOptions::new("runway").signed_by(key.clone()),
    )
    .expect("open");
    log.append(Entry {
        runway: String::new(),
        agent: "host".into(),
        plugin: None,
        dataset: None,
        event: Event::PluginUnloaded,
    })
    .expect("append");
    log.close().expect("close");
    fs::write(dir.path().join("plan.toml"), PLAN).expect("plan");
    let out = runway(dir.path(), &["run", "plan.toml", "--workers", "1"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("created signing key"),
        "{}",
        out.stderr
    );
    assert_eq!(origin(dir.path()), "runway");
    let out = runway(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("trusting public key runway-keys/runway.pub (runway+"),
        "{}",
        out.stdout
    );
}
