//! The `wasm32-wasip2` target: installed through rustup when it is missing,
//! or a stop with the exact command to run. Shared by the host's build
//! script (which builds the bundled agents) and `runway build`.

use std::path::PathBuf;
use std::process::Command;

/// The target every agent is built for: its output is already a component.
pub const TARGET: &str = "wasm32-wasip2";

/// Makes sure `rustc` has the target's standard library; `say` tells the
/// user an install is under way. The error is the sentence to print.
pub fn ensure_target(rustc: &str, say: impl Fn(&str)) -> Result<(), String> {
    let installed = || {
        Command::new(rustc)
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .is_some_and(|dir| dir.is_dir())
    };
    if installed() {
        return Ok(());
    }
    say(&format!(
        "installing the {TARGET} target: rustup target add {TARGET}"
    ));
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if ok && installed() {
        Ok(())
    } else {
        Err(format!(
            "the {TARGET} target is missing and could not be installed; run: rustup target add {TARGET}"
        ))
    }
}
