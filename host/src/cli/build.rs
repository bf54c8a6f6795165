//! `runway build [DIR] [--out PLUGINS]`: builds every agent under DIR into a
//! plugins folder — `NAME.wasm` (the component) and `NAME.toml` (its
//! grants), named as the loader expects — printing each component's digest.
//!
//! An agent is a folder holding `grants.toml` beside `Cargo.toml` (Rust),
//! `app.py` (Python) or `agent.js` (JavaScript). Rust agents are built with
//! cargo for `wasm32-wasip2` (the target installed if missing); Python ones
//! with `componentize-py`, JavaScript ones with `componentize-js`, each
//! installed into a cache folder on first use (see [`super::guest_tools`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use runway_audit::render::escape;

use super::guest_tools::{self, Tool};
use super::new::Lang;
use super::toolchain::{self, TARGET};
use super::{BAD_INPUT, Failure, plugins};
use crate::files::ReadCaps;
use crate::names;
use crate::plugin::grants::Grants;

#[derive(Args)]
pub struct BuildArgs {
    /// An agent folder, or a folder with agent folders under it.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The plugins folder to write [default: DIR/plugins].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// One agent found under DIR.
struct Agent {
    name: String,
    dir: PathBuf,
    lang: Lang,
}

/// Folders never searched for agents (besides the plugins folder written).
const SKIP: &[&str] = &["target", "node_modules", "vendor", "wit"];
/// How deep under DIR agents are looked for.
const MAX_DEPTH: usize = 3;

pub fn run(args: BuildArgs) -> Result<(), Failure> {
    let bad = |e: String| Failure::new(BAD_INPUT, anyhow::anyhow!(e));
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("plugins"));
    let mut agents = Vec::new();
    let written = std::path::absolute(&out).unwrap_or_else(|_| out.clone());
    find(&args.dir, 0, &written, &mut agents).map_err(&bad)?;
    if agents.is_empty() {
        return Err(bad(format!(
            "no agent under {}: an agent folder holds grants.toml beside Cargo.toml, app.py or agent.js",
            args.dir.display()
        )));
    }
    std::fs::create_dir_all(&out)
        .map_err(|e| bad(format!("cannot make {}: {e}", out.display())))?;
    for agent in &agents {
        let grants_path = agent.dir.join("grants.toml");
        // Refused here with its line, not later by the loader.
        Grants::load(&grants_path, &ReadCaps::default()).map_err(|e| bad(e.to_string()))?;
        let bytes = match agent.lang {
            Lang::Rust => build_rust(agent).and_then(|component| {
                std::fs::read(&component)
                    .map_err(|e| format!("cannot read {}: {e}", component.display()))
            }),
            Lang::Python => guest_tools::build(Tool::ComponentizePy, &agent.dir, &agent.name),
            Lang::Js => guest_tools::build(Tool::ComponentizeJs, &agent.dir, &agent.name),
        }
        .map_err(&bad)?;
        let grants = std::fs::read(&grants_path)
            .map_err(|e| bad(format!("cannot read {}: {e}", grants_path.display())))?;
        plugins::put(&out, &format!("{}.wasm", agent.name), &bytes)?;
        plugins::put(&out, &format!("{}.toml", agent.name), &grants)?;
    }
    println!(
        "{} agent{} in {}",
        agents.len(),
        if agents.len() == 1 { "" } else { "s" },
        escape(&out.display().to_string())
    );
    Ok(())
}

/// The agents in `dir` (itself one, or under it), never looking into the
/// plugins folder `written`.
fn find(dir: &Path, depth: usize, written: &Path, found: &mut Vec<Agent>) -> Result<(), String> {
    if let Some(agent) = agent_in(dir)? {
        found.push(agent);
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        // Real folders only: a link is not followed out of DIR.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && !SKIP.contains(&n))
        })
        .filter(|p| std::path::absolute(p).ok().as_deref() != Some(written))
        .collect();
    dirs.sort();
    for d in dirs {
        find(&d, depth + 1, written, found)?;
    }
    Ok(())
}

/// The agent `dir` is, if it is one.
fn agent_in(dir: &Path) -> Result<Option<Agent>, String> {
    if !dir.join("grants.toml").is_file() {
        return Ok(None);
    }
    let (lang, name) = if dir.join("Cargo.toml").is_file() {
        (Lang::Rust, package_name(&dir.join("Cargo.toml"))?)
    } else {
        let lang = if dir.join("app.py").is_file() {
            Lang::Python
        } else if dir.join("agent.js").is_file() {
            Lang::Js
        } else {
            return Ok(None);
        };
        let name = std::path::absolute(dir)
            .ok()
            .and_then(|d| d.file_name()?.to_str().map(str::to_string))
            .ok_or_else(|| format!("{}: the folder has no usable name", dir.display()))?;
        (lang, name)
    };
    names::check_agent(&name).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(Some(Agent {
        name,
        dir: dir.to_path_buf(),
        lang,
    }))
}

/// `[package] name` of a Cargo manifest.
fn package_name(manifest: &Path) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        package: Option<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
    }
    let shown = manifest.display();
    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let parsed: Manifest = toml::from_str(&text)
        .map_err(|e| format!("{shown}: {}", crate::files::TomlProblem::new(&e, &text)))?;
    parsed.package.map(|p| p.name).ok_or_else(|| {
        format!("{shown}: an agent crate needs a [package] (a workspace is not an agent)")
    })
}

/// `cargo build --release --target wasm32-wasip2` of one agent crate; the
/// component is the cdylib cargo reports.
fn build_rust(agent: &Agent) -> Result<PathBuf, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    toolchain::ensure_target(&rustc, |m| eprintln!("{m}"))?;
    let manifest = agent.dir.join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building {} (Rust, {TARGET})", agent.name);
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} failed (cargo's messages are above)",
            manifest.display()
        ));
    }
    let wanted = std::fs::canonicalize(&manifest).unwrap_or(manifest.clone());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(PathBuf::from).as_ref() == Some(&wanted))
        .filter(|m| {
            m["target"]["crate_types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|x| x == "wasm"))
        .ok_or_else(|| {
            format!(
                "{} built no component: an agent crate has `crate-type = [\"cdylib\"]` under [lib]",
                manifest.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(dir: &Path, entry: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("grants.toml"), "[datasets]\n").unwrap();
        std::fs::write(dir.join(entry), "").unwrap();
    }

    #[test]
    fn agents_are_found_under_a_folder_but_not_in_build_output_or_links() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        agent(&r.join("a-py"), "app.py");
        agent(&r.join("team/b-js"), "agent.js");
        agent(&r.join("plugins/p-py"), "app.py"); // a source folder, not the output
        std::fs::create_dir_all(r.join("c-rs")).unwrap();
        std::fs::write(r.join("c-rs/Cargo.toml"), "[package]\nname = \"c-rs\"\n").unwrap();
        std::fs::write(r.join("c-rs/grants.toml"), "[datasets]\n").unwrap();
        // Not agents: build output (`target/`, the plugins folder written),
        // dependencies, hidden folders, a folder with grants but nothing to
        // build, and a link out of the tree.
        agent(&r.join("node_modules/x"), "agent.js");
        agent(&r.join("c-rs/target/y"), "app.py");
        agent(&r.join("out/z"), "app.py");
        agent(&r.join(".hidden"), "app.py");
        agent(&r.join("grants-only"), "notes.txt");
        let outside = tempfile::tempdir().unwrap();
        agent(&outside.path().join("z"), "app.py");
        std::os::unix::fs::symlink(outside.path(), r.join("link")).unwrap();

        let mut found = Vec::new();
        find(
            r,
            0,
            &std::path::absolute(r.join("out")).unwrap(),
            &mut found,
        )
        .unwrap();
        let got: Vec<(&str, Lang)> = found.iter().map(|a| (a.name.as_str(), a.lang)).collect();
        assert_eq!(
            got,
            [
                ("a-py", Lang::Python),
                ("c-rs", Lang::Rust),
                ("p-py", Lang::Python),
                ("b-js", Lang::Js)
            ]
        );
    }

    #[test]
    fn a_bad_agent_name_or_a_workspace_is_refused_naming_the_folder() {
        let root = tempfile::tempdir().unwrap();
        agent(&root.path().join("bad name"), "app.py");
        let err = find(root.path(), 0, Path::new("/none"), &mut Vec::new())
            .err()
            .unwrap();
        assert!(
            err.contains("bad name") && err.contains("agent name"),
            "{err}"
        );

        let ws = root.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(ws.join("grants.toml"), "[datasets]\n").unwrap();
        let err = agent_in(&ws).err().unwrap();
        assert!(
            err.contains("ws/Cargo.toml") && err.contains("[package]"),
            "{err}"
        );
    }
}
