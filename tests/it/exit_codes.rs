//! Exit codes as the README's table gives them, one test per code, and each
//! user-facing error said exactly once, naming its culprit (file, line, key).

use std::path::Path;

use crate::cli::{Output, runway};
use crate::server::{Server, folders};

/// The error line(s) `runway` printed: each starts with `runway: `.
fn errors(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("runway: ") && !l.contains("created signing key"))
        .collect()
}

/// `out` failed with `code`, said one error, once, and it says each of
/// `says`.
fn said_once(out: &Output, code: i32, says: &[&str]) {
    assert_eq!(out.code, code, "{}\n{}", out.stdout, out.stderr);
    let errors = errors(out);
    assert_eq!(
        errors.len(),
        1,
        "one error line: {errors:?}\n{}",
        out.stderr
    );
    for part in says {
        assert!(
            errors[0].contains(part),
            "{:?} should say {part:?}",
            errors[0]
        );
    }
    // The culprit's text stands once in all the output, not again elsewhere.
    let all = format!("{}{}", out.stdout, out.stderr);
    let culprit = says[says.len() - 1];
    assert_eq!(
        all.matches(culprit).count(),
        1,
        "{culprit:?} said once:\n{all}"
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn exit_0_when_all_went_well() {
    let dir = tempfile::tempdir().unwrap();
    let out = runway(dir.path(), &["plugins", "export", "out"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(errors(&out).is_empty(), "{}", out.stderr);
}

#[test]
fn exit_1_when_a_runway_failed_its_reason_said_once() {
    let dir = folders();
    write(
        dir.path(),
        "fail.toml",
        "[[runway]]\nid = \"p\"\nagent = \"probe\"\naction = \"fail\"\n",
    );
    let out = runway(dir.path(), &["run", "fail.toml", "--plugins", "plugins"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(errors(&out), ["runway: 1 of 1 runways failed"]);
    // Said on its timeline line and on its summary row, where a reader
    // looks first (the timeline may have scrolled away).
    let reason = "probe: failing on purpose";
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("p ") && l.contains("FAILED"))
        .unwrap_or_else(|| panic!("no summary row: {}", out.stdout));
    assert!(row.contains(reason), "{row}");

    // A trap: the FAILED line says where; what the guest printed (its
    // panic message) follows the summary, once.
    write(
        dir.path(),
        "trap.toml",
        "[[runway]]\nid = \"t\"\nagent = \"probe\"\naction = \"trap\"\n",
    );
    let out = runway(dir.path(), &["run", "trap.toml", "--plugins", "plugins"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("t wrote to stderr"), "{}", out.stdout);
    let panic = "probe: trapping on purpose";
    assert_eq!(out.stdout.matches(panic).count(), 1, "{}", out.stdout);
}

#[test]
fn exit_2_for_usage_and_bad_files_naming_file_line_and_key() {
    let dir = folders();
    let d = dir.path();
    // Usage: clap's own message, exit 2.
    let usage = runway(d, &["run", "--bogus"]);
    assert_eq!(usage.code, 2);
    assert_eq!(
        usage
            .stderr
            .matches("unexpected argument '--bogus'")
            .count(),
        1,
        "{}",
        usage.stderr
    );

    write(d, "syntax.toml", "[[runway]]\nid = \"x\"\nagent = \n");
    let out = runway(d, &["run", "syntax.toml", "--plugins", "plugins"]);
    said_once(
        &out,
        2,
        &["syntax.toml", "line 3", "string values must be quoted"],
    );

    write(
        d,
        "key.toml",
        "[[runway]]\nid = \"x\"\nagent = \"probe\"\ncolour = \"red\"\n",
    );
    let out = runway(d, &["run", "key.toml", "--plugins", "plugins"]);
    said_once(&out, 2, &["key.toml", "line 4", "unknown field `colour`"]);

    write(
        d,
        "id.toml",
        "[[runway]]\nid = \"a b\"\nagent = \"probe\"\n",
    );
    let out = runway(d, &["run", "id.toml", "--plugins", "plugins"]);
    said_once(&out, 2, &["id.toml", "runway id \"a b\" contains ' '"]);
    assert!(!out.stderr.contains("dataset name"), "{}", out.stderr);

    write(
        d,
        "plugins/probe.toml",
        "[datasets]\n\"*\" = \"sometimes\"\n",
    );
    write(d, "ok.toml", "[[runway]]\nid = \"x\"\nagent = \"probe\"\n");
    let out = runway(d, &["run", "ok.toml", "--plugins", "plugins"]);
    said_once(&out, 2, &["probe.toml", "line 2", "sometimes"]);

    let out = runway(d, &["run", "missing.toml"]);
    said_once(&out, 2, &["missing.toml"]);

    // A token file that is not there is a file error too.
    let out = runway(d, &["list", "--token-file", "nope.token"]);
    said_once(&out, 2, &["nope.token"]);
}

#[test]
fn exit_3_when_the_audit_does_not_verify() {
    let dir = folders();
    write(
        dir.path(),
        "ok.toml",
        "[[runway]]\nid = \"x\"\nagent = \"probe\"\naction = \"ok\"\n",
    );
    let out = runway(dir.path(), &["run", "ok.toml", "--plugins", "plugins"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let segment = runway_tests::last_segment(&dir.path().join("runway-audit"));
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&segment, bytes).unwrap();
    let out = runway(dir.path(), &["audit", "verify"]);
    said_once(&out, 3, &["does not verify"]);
}

#[test]
fn exit_4_when_the_server_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.token", &"0".repeat(64));
    use std::os::unix::fs::PermissionsExt;
    let perms = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(dir.path().join("t.token"), perms).unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let args = [
        "list",
        "--server",
        "http://127.0.0.1:9",
        "--token-file",
        "t.token",
    ];
    let out = runway(dir.path(), &args);
    said_once(&out, 4, &["127.0.0.1:9"]);
}

#[test]
fn exit_5_when_the_server_refuses_the_token() {
    let dir = folders();
    let server = Server::start(dir.path());
    let out = server.client_as(&"0".repeat(64), &["list"]);
    said_once(&out, 5, &["401", "unknown bearer token"]);
}

/// What a newcomer tripped over: a failed runway's summary row empty, ids
/// longer than 12 characters breaking the summary's columns, "1 segments",
/// and `runway data export … | head` printing `Broken pipe`.
#[test]
fn the_summary_and_a_closed_pipe_read_as_a_newcomer_expects() {
    let dir = folders();
    write(
        dir.path(),
        "plan.toml",
        "[[runway]]\nid = \"import-the-applications\"\nagent = \"import-applications\"\n\
         datasets = { test_newcomer = \"exclusive\" }\ninput = { count = 5000, seed = 1 }\n\
         [[runway]]\nid = \"p\"\nagent = \"probe\"\naction = \"fail\"\n",
    );
    let out = runway(dir.path(), &["run", "plan.toml", "--plugins", "plugins"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("import-the-applications ") || l.starts_with("p "))
        .filter(|l| l.contains("SUCCEEDED") || l.contains("FAILED"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    let column = |row: &str| row.find("SUCCEEDED").or_else(|| row.find("FAILED"));
    assert_eq!(column(rows[0]), column(rows[1]), "{rows:#?}");
    assert!(rows[1].contains("probe: failing on purpose"), "{rows:#?}");
    assert!(out.stdout.contains(" in 1 segment, "), "{}", out.stdout);

    // A reader that stops after one line: no complaint; the export ends
    // as any Unix filter does (SIGPIPE).
    let mut export = std::process::Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["data", "export", "test_newcomer"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(export.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.contains("app/"), "{first}");
    drop(stdout);
    let done = export.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    use std::os::unix::process::ExitStatusExt as _;
    assert!(
        done.status.code() == Some(0) || done.status.signal() == Some(13),
        "{:?}: {stderr}",
        done.status
    );
}
