//! The API over TLS (rustls): `runway serve --tls-cert --tls-key` serves
//! https only, clients trust its certificate with `--ca-file` and refuse
//! it without; beyond loopback a server without TLS needs `--insecure`;
//! hostile or broken certificate files are refused naming them.

use std::process::Command;

use crate::server::{Server, folders};

/// A self-signed certificate for 127.0.0.1 and localhost, as `cert.pem`
/// and `key.pem` in `dir`.
fn certificate(dir: &std::path::Path) {
    runway_tests::self_signed(dir, "cert.pem", "key.pem", "runway test");
}

/// `runway serve ARGS` that is refused at start: its exit code and stderr.
fn refused_serve(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["serve", "--plugins", "plugins", "--inbox", "inbox"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_api_over_tls_is_trusted_with_its_certificate_only() {
    let dir = folders();
    certificate(dir.path());
    let server = Server::start_with(
        dir.path(),
        &["--tls-cert", "cert.pem", "--tls-key", "key.pem"],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    // Trusting its certificate: the verbs work, and the page is not warned.
    let ids = server.file_with(
        "[[runway]]\nid = \"over-tls\"\nagent = \"probe\"\naction = \"ok\"\n",
        &["--ca-file", "cert.pem"],
    );
    let waited = server.client(&["wait", &ids[0], "--ca-file", "cert.pem"]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    let me = server.client(&["list", "--json", "--ca-file", "cert.pem"]);
    assert_eq!(me.code, 0, "{}", me.stderr);
    assert!(me.stdout.contains("over-tls"), "{}", me.stdout);

    // Without it, the certificate is not trusted: nothing is sent.
    let untrusted = server.client(&["list"]);
    assert_eq!(untrusted.code, 4, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("cannot reach the server")
            && untrusted.stderr.to_lowercase().contains("certificate"),
        "{}",
        untrusted.stderr
    );
    // Plain HTTP to the TLS port gets nowhere either.
    let plain = server.url.replace("https://", "http://");
    let out = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(["list", "--server", &plain])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // A file that is not a certificate is refused as one.
    std::fs::write(dir.path().join("not-a-cert.pem"), "hello\n").unwrap();
    let wrong = server.client(&["list", "--ca-file", "not-a-cert.pem"]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("not-a-cert.pem"), "{}", wrong.stderr);
}

#[test]
fn beyond_loopback_needs_tls_or_insecure_and_sound_certificate_files() {
    let dir = folders();
    certificate(dir.path());
    // Beyond loopback without TLS: refused, saying what would do.
    let (code, said) = refused_serve(dir.path(), &["--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("--tls-cert") && said.contains("--insecure"),
        "{said}"
    );
    // A certificate without its key: refused by the command line.
    let (code, said) = refused_serve(dir.path(), &["--tls-cert", "cert.pem"]);
    assert_ne!(code, 0);
    assert!(said.contains("--tls-key"), "{said}");
    // A link where the key should be: refused, naming it, not followed.
    std::os::unix::fs::symlink("key.pem", dir.path().join("linked.pem")).unwrap();
    let (code, said) = refused_serve(
        dir.path(),
        &[
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "linked.pem",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("linked.pem") && said.contains("not a regular file"),
        "{said}"
    );
    // A key that is no key: refused as such.
    std::fs::write(
        dir.path().join("garbage.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (code, said) = refused_serve(
        dir.path(),
        &[
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "garbage.pem",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("TLS certificate or key"), "{said}");
}
