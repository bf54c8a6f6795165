//! The toolchains of agents not written in Rust: `componentize-py` (PyPI)
//! for Python, `componentize-js` (npm) for JavaScript. Each is installed on
//! first use into a cache folder — `$RUNWAY_TOOLS`, else
//! `$XDG_CACHE_HOME/runway/tools`, else `~/.cache/runway/tools` — at a
//! pinned version, as the wasm target is installed for Rust; when Python or
//! Node.js itself is missing, the build stops with the exact command to run.
//!
//! Both bind the WIT this binary was built with (written into the cache), so
//! an agent is built against the contract of the host that runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bundled;

/// `componentize-py`, pinned.
pub const COMPONENTIZE_PY: &str = "0.19.3";
/// `@bytecodealliance/componentize-js`, pinned.
pub const COMPONENTIZE_JS: &str = "0.18.4";

/// A guest toolchain.
#[derive(Clone, Copy, Debug)]
pub enum Tool {
    ComponentizePy,
    Jco,
}

/// The cache folder toolchains are installed in.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNWAY_TOOLS") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("runway").join("tools")
}

/// Builds the agent in `dir` with `tool` into a component named `name`
/// (under the cache), installing the tool first if needed; returns the
/// component's path.
pub fn build(tool: Tool, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let cache = cache_dir();
    let wit = write_wit(&cache)?;
    let out_dir = cache.join("out");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot make {}: {e}", out_dir.display()))?;
    let out = out_dir.join(format!("{name}.wasm"));
    let mut cmd = match tool {
        Tool::ComponentizePy => {
            let exe = install_py(&cache)?;
            eprintln!("building {name} (Python, componentize-py {COMPONENTIZE_PY})");
            let mut cmd = Command::new(exe);
            cmd.arg("-d")
                .arg(&wit)
                .args(["-w", "agent", "componentize", "app", "-o"]);
            cmd.arg(&out);
            cmd
        }
        Tool::Jco => {
            let exe = install_js(&cache)?;
            eprintln!("building {name} (JavaScript, componentize-js {COMPONENTIZE_JS})");
            let mut cmd = Command::new("node");
            cmd.arg(exe)
                .arg("--wit")
                .arg(&wit)
                .args(["-n", "agent", "-o"]);
            cmd.arg(&out).arg("agent.js");
            cmd
        }
    };
    let status = cmd
        .current_dir(dir)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !status.success() {
        return Err(format!(
            "building {} failed (the toolchain's messages are above)",
            dir.display()
        ));
    }
    Ok(out)
}

/// The bundled WIT, at `cache/wit/agent.wit`.
fn write_wit(cache: &Path) -> Result<PathBuf, String> {
    let dir = cache.join("wit");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let (_, text) = bundled::SDK_FILES
        .iter()
        .find(|(p, _)| *p == "wit/agent.wit")
        .expect("the WIT is bundled");
    crate::files::replace(&dir.join("agent.wit"), text.as_bytes(), 0o644)
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

/// `componentize-py` in a venv of its own under the cache.
fn install_py(cache: &Path) -> Result<PathBuf, String> {
    let venv = cache.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let exe = venv.join("bin").join("componentize-py");
    if exe.is_file() {
        return Ok(exe);
    }
    let commands = format!(
        "python3 -m venv {v} && {v}/bin/pip install componentize-py=={COMPONENTIZE_PY}",
        v = venv.display()
    );
    eprintln!("installing componentize-py {COMPONENTIZE_PY}: {commands}");
    let ok = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status();
    let ok = ok.is_ok_and(|s| s.success())
        && Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
            .status()
            .is_ok_and(|s| s.success());
    if ok && exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "componentize-py {COMPONENTIZE_PY} is missing and could not be installed; run: {commands}"
        ))
    }
}

/// `componentize-js` in an npm prefix of its own under the cache; returns
/// its command-line script (run with `node`).
fn install_js(cache: &Path) -> Result<PathBuf, String> {
    let prefix = cache.join(format!("componentize-js-{COMPONENTIZE_JS}"));
    let exe = prefix
        .join("node_modules")
        .join("@bytecodealliance")
        .join("componentize-js")
        .join("src")
        .join("cli.js");
    if exe.is_file() {
        return Ok(exe);
    }
    let package = format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}");
    let commands = format!(
        "npm install --prefix {} --no-audit --no-fund {package}",
        prefix.display()
    );
    eprintln!("installing componentize-js {COMPONENTIZE_JS}: {commands}");
    let ok = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&prefix)
        .args(["--no-audit", "--no-fund", "--silent", &package])
        .status()
        .is_ok_and(|s| s.success());
    if ok && exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "componentize-js {COMPONENTIZE_JS} is missing and could not be installed (it needs Node.js and npm); run: {commands}"
        ))
    }
}
