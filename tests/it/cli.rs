//! The `runway` command line as the tests run it: the `runway-cli` binary
//! built beside this test binary, run in a folder.

use std::path::Path;
use std::process::Command;

/// What one `runway` invocation printed, and its exit code.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `runway ARGS` in `dir`.
pub fn runway(dir: &Path, args: &[&str]) -> Output {
    runway_with(dir, args, &[])
}

/// Runs `runway ARGS` in `dir` with more environment variables.
pub fn runway_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_runway-cli"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("runway runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
