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

#[path = "src/cli/toolchain.rs"]
mod toolchain;

use toolchain::TARGET;
/// The agents of the nightly student-aid plan and of the review pipeline
/// over its dataset, embedded into the binary.
const EMBEDDED: &[&str] = &[
    "import-applications",
    "compliance-check",
    "grant-calculator",
    "review-planner",
    "review-shard",
    "review-scorer",
    "review-summary",
    "review-appeals",
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

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Err(stop) = toolchain::ensure_target(&rustc, |m| println!("cargo:warning={m}")) {
        panic!("{stop}");
    }
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
    code.push_str(&sdk_files(&root));
    std::fs::write(out_dir.join("bundled.rs"), code).expect("write bundled.rs");
}

/// `SDK_FILES`: the SDK's sources and the WIT contract, as `runway new
/// agent` vendors them (paths relative to the new crate's `vendor/`, so the
/// SDK's `../wit` still finds the contract).
fn sdk_files(root: &Path) -> String {
    let sdk = root.join("sdk");
    let mut files = vec![
        ("runway-sdk/Cargo.toml".to_string(), sdk.join("Cargo.toml")),
        (
            "wit/agent.wit".to_string(),
            root.join("wit").join("agent.wit"),
        ),
    ];
    let src = sdk.join("src");
    let mut sources = Vec::new();
    rust_files(&src, &mut sources);
    sources.sort();
    for path in sources {
        let rel = path.strip_prefix(&src).expect("under sdk/src");
        let rel = rel.to_string_lossy().replace('\\', "/");
        files.push((format!("runway-sdk/src/{rel}"), path));
    }
    println!("cargo:rerun-if-changed={}", sdk.display());
    let mut code = String::from(
        "/// The SDK and the WIT, as `runway new agent` vendors them: (path under `vendor/`, text).\n\
         pub static SDK_FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, path) in files {
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    code
}

/// Every `.rs` file under `dir`, its folders' too (`sdk/src/testing/`).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read sdk/src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
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
