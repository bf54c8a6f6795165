//! Builds the agents in `../plugins` for `wasm32-wasip2` (already components)
//! and writes `$OUT_DIR/bundled.rs`: the nightly agents embedded as bytes
//! (the binary's defaults) and the path of every built plugin (for tests).
//!
//! The pattern is wasmtime's `crates/test-programs/artifacts/build.rs`: a
//! nested cargo with its own target dir (no lock fight with the outer build),
//! host-only flags and wrappers removed from its environment, and
//! `rerun-if-changed` for every guest source from the dep-info files.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// The agents of the nightly student-aid plan, embedded into the binary.
const EMBEDDED: &[&str] = &[
    "import-applications",
    "compliance-check",
    "grant-calculator",
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let plugins_dir = root.join("plugins");
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = out_dir.join("plugins-target");

    ensure_target();
    for p in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", plugins_dir.join(p).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins_dir)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    // Nothing meant for the host build may leak into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cannot run cargo for the plugins");
    assert!(status.success(), "building the plugins for {TARGET} failed");

    let release = target_dir.join(TARGET).join("release");
    let bundle = out_dir.join("plugins");
    std::fs::create_dir_all(&bundle).expect("create plugin bundle dir");
    let mut paths = Vec::new();
    for member in plugin_members(&plugins_dir) {
        let stem = member.replace('-', "_");
        let wasm = release.join(format!("{stem}.wasm"));
        let dest = bundle.join(format!("{member}.wasm"));
        std::fs::copy(&wasm, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", wasm.display()));
        // The plugin's default grants travel with it as NAME.toml.
        let grants = plugins_dir.join(&member).join("grants.toml");
        println!("cargo:rerun-if-changed={}", grants.display());
        std::fs::copy(&grants, bundle.join(format!("{member}.toml")))
            .unwrap_or_else(|e| panic!("plugins/{member}/grants.toml: {e}"));
        rerun_from_dep_info(&release.join(format!("{stem}.d")));
        paths.push((member, dest));
    }

    let mut code = String::new();
    code.push_str("/// Folder holding every plugin built from `plugins/`.\n");
    code.push_str(&format!(
        "pub const PLUGIN_DIR: &str = {:?};\n",
        bundle.display().to_string()
    ));
    code.push_str("/// Every plugin built from `plugins/`: (name, path of its component).\n");
    code.push_str("pub const PLUGIN_PATHS: &[(&str, &str)] = &[\n");
    for (name, path) in &paths {
        code.push_str(&format!(
            "    ({name:?}, {:?}),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n/// The nightly agents, embedded: (name, component bytes, grants TOML).\n");
    code.push_str("pub static EMBEDDED_PLUGINS: &[(&str, &[u8], &str)] = &[\n");
    for name in EMBEDDED {
        let (_, path) = paths
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("embedded plugin {name} is not in plugins/"));
        let grants = bundle.join(format!("{name}.toml"));
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}), include_str!({:?})),\n",
            path.display().to_string(),
            grants.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("bundled.rs"), code).expect("write bundled.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// The `wasm32-wasip2` standard library must be installed; install it with
/// rustup when it is missing, or stop with the exact command to run.
fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let installed = || {
        Command::new(&rustc)
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .is_some_and(|dir| dir.is_dir())
    };
    if installed() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target: rustup target add {TARGET}");
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !installed() {
        panic!(
            "the {TARGET} target is missing and could not be installed; run: rustup target add {TARGET}"
        );
    }
}

/// Plugin crates: the folders of `plugins/` holding a `Cargo.toml`.
fn plugin_members(plugins_dir: &Path) -> Vec<String> {
    let mut members: Vec<String> = std::fs::read_dir(plugins_dir)
        .expect("read plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    members.sort();
    members
}

fn rerun_from_dep_info(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    // Format: `target: dep dep dep`, spaces in paths escaped with `\ `.
    let Some((_, deps)) = text.split_once(": ") else {
        return;
    };
    let mut current = String::new();
    let mut chars = deps.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' | '\n' => {
                if !current.is_empty() {
                    println!("cargo:rerun-if-changed={current}");
                    current.clear();
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        println!("cargo:rerun-if-changed={current}");
    }
}
