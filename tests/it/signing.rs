//! Signed plugins through the command line: `runway keygen` an author key,
//! `runway sign` a component, and a host with `--require-signed` loads only
//! what a trusted author signed — naming the plugin it refuses.

use std::path::Path;

use runway_tests::drop_plugin;

fn runway(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = crate::cli::runway(dir, args);
    (out.code, out.stdout, out.stderr)
}

#[test]
fn require_signed_loads_only_what_a_trusted_author_signed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("plugins")).unwrap();
    drop_plugin("probe", &d.join("plugins"));
    std::fs::write(
        d.join("plan.toml"),
        "[[runway]]\nid = \"p\"\nagent = \"probe\"\naction = \"ok\"\n",
    )
    .unwrap();
    let (code, _, err) = runway(d, &["keygen", "--out", "authors", "--name", "alice"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = runway(d, &["keygen", "--out", "strangers", "--name", "mallory"]);
    assert_eq!(code, 0, "{err}");
    let host = [
        "run",
        "plan.toml",
        "--plugins",
        "plugins",
        "--require-signed",
        "--author",
        "authors/alice.pub",
    ];

    // Unsigned: refused, naming the plugin and the missing signature.
    let (code, _, err) = runway(d, &host);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("plugin probe: signature:") && err.contains("probe.wasm.sig: missing"),
        "{err}"
    );

    // Signed by someone not trusted: refused, naming the signer.
    let (code, _, err) = runway(
        d,
        &[
            "sign",
            "plugins/probe.wasm",
            "--key",
            "strangers/mallory.key",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = runway(d, &host);
    assert_eq!(code, 2);
    assert!(
        err.contains("no good signature by a trusted author (signed by: mallory+"),
        "{err}"
    );

    // Signed by the trusted author: loads and runs.
    let (code, out, err) = runway(
        d,
        &["sign", "plugins/probe.wasm", "--key", "authors/alice.key"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed plugins/probe.wasm"), "{out}");
    let (code, out, err) = runway(d, &host);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");

    // The component changed after signing: refused.
    let mut bytes = std::fs::read(d.join("plugins/probe.wasm")).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(d.join("plugins/probe.wasm"), bytes).unwrap();
    let (code, _, err) = runway(d, &host);
    assert_eq!(code, 2);
    assert!(err.contains("signs digest"), "{err}");
}
