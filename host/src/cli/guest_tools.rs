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
const COMPONENTIZE_PY: &str = "0.25.1";
/// `@bytecodealliance/componentize-js`, pinned.
const COMPONENTIZE_JS: &str = "0.23.0";

/// A guest toolchain.
#[derive(Clone, Copy, Debug)]
pub enum Tool {
    ComponentizePy,
    ComponentizeJs,
}

/// The cache folder toolchains are installed in.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNWAY_TOOLS") {
        return PathBuf::from(dir);
    }
    crate::files::user_cache("tools")
}

/// Builds the agent in `dir` with `tool` into a component named `name`,
/// installing the tool first if needed; returns the component. Each build
/// works in a folder of its own under the cache, so two builds at once
/// (of the same agent too) never share a file.
pub fn build(tool: Tool, dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let cache = cache_dir();
    let wit = write_wit(&cache)?;
    let work_dir = cache.join("work");
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| format!("cannot make {}: {e}", work_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(&work_dir)
        .map_err(|e| format!("cannot make a folder in {}: {e}", work_dir.display()))?;
    let out = work.path().join(format!("{name}.wasm"));
    let mut cmd = match tool {
        Tool::ComponentizePy => {
            let exe = install_py(&cache)?;
            eprintln!("building {name} (Python, componentize-py {COMPONENTIZE_PY})");
            let mut cmd = Command::new(exe);
            cmd.arg("-d").arg(&wit);
            cmd.args(["-w", "agent", "componentize", "app", "-o"])
                .arg(&out);
            // From a copy: componentize-py leaves `__pycache__` beside the
            // sources it imports.
            cmd.current_dir(copy_sources(dir, &work.path().join("src"), "py")?);
            cmd
        }
        Tool::ComponentizeJs => {
            let exe = install_js(&cache)?;
            eprintln!("building {name} (JavaScript, componentize-js {COMPONENTIZE_JS})");
            let mut cmd = Command::new("node");
            // The host links WASI's CLI worlds, not HTTP: leave it out.
            cmd.arg(exe).arg("agent.js").arg("--wit").arg(&wit);
            cmd.args(["-n", "agent", "-d", "http", "fetch-event", "-o"])
                .arg(&out);
            cmd.current_dir(dir);
            cmd
        }
    };
    let status = cmd
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
    std::fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display()))
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
    let pip = venv.join("bin").join("pip");
    let package = format!("componentize-py=={COMPONENTIZE_PY}");
    let mut make_venv = Command::new("python3");
    make_venv.args(["-m", "venv"]).arg(&venv);
    let mut pip_install = Command::new(&pip);
    pip_install.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &package,
    ]);
    install(
        cache,
        &format!("componentize-py {COMPONENTIZE_PY}"),
        venv.join("bin").join("componentize-py"),
        &format!(
            "python3 -m venv {} && {} install {package}",
            venv.display(),
            pip.display()
        ),
        [make_venv, pip_install],
    )
}

/// `componentize-js` in an npm prefix of its own under the cache; returns
/// its command-line script (run with `node`).
fn install_js(cache: &Path) -> Result<PathBuf, String> {
    let prefix = cache.join(format!("componentize-js-{COMPONENTIZE_JS}"));
    let package = format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}");
    let mut npm = Command::new("npm");
    npm.arg("install").arg("--prefix").arg(&prefix);
    npm.args(["--no-audit", "--no-fund", "--silent", &package]);
    let script = [
        "node_modules",
        "@bytecodealliance",
        "componentize-js",
        "src",
        "cli.js",
    ];
    install(
        cache,
        &format!("componentize-js {COMPONENTIZE_JS} (it needs Node.js and npm)"),
        script.iter().fold(prefix.clone(), |p, part| p.join(part)),
        &format!(
            "npm install --prefix {} --no-audit --no-fund {package}",
            prefix.display()
        ),
        [npm],
    )
}

/// `exe` if it is there; else runs `steps` (the install, said as
/// `commands`), then `exe` — or a stop with the commands to run. One
/// install at a time per cache (a lock file in it): two builds at once
/// must not both install, nor run a tool the other is still unpacking.
fn install<const N: usize>(
    cache: &Path,
    what: &str,
    exe: PathBuf,
    commands: &str,
    steps: [Command; N],
) -> Result<PathBuf, String> {
    let lock_path = cache.join(".install.lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if exe.is_file() {
        return Ok(exe);
    }
    eprintln!("installing {what}: {commands}");
    let ok = steps
        .into_iter()
        .all(|mut step| step.status().is_ok_and(|s| s.success()));
    if ok && exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{what} is missing and could not be installed; run: {commands}"
        ))
    }
}

/// Copies the `.ext` files of `dir` (not its folders) into a fresh `to`.
fn copy_sources(dir: &Path, to: &Path, ext: &str) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(|e| format!("cannot make {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && path.extension().is_some_and(|x| x == ext) {
            std::fs::copy(&path, to.join(entry.file_name()))
                .map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    Ok(to.to_path_buf())
}
