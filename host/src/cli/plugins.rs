//! `runway plugins export DIR`: the agents built into the binary (the
//! nightly's three and the review pipeline's five) as a plugins folder —
//! `NAME.wasm` and its grants `NAME.toml`, named as the loader expects — and
//! the plans beside them (`nightly.toml`, `review.toml`, `workflows.toml`),
//! so an operator starts from real files: `runway serve --plugins DIR`,
//! `runway run DIR/review.toml --plugins DIR`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use runway_audit::render::escape;

use super::{BAD_INPUT, Failure};
use crate::{bundled, files};

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Write the built-in agents (NAME.wasm + NAME.toml) and the plans
    /// (nightly.toml, review.toml, workflows.toml) into DIR, replacing files of those names.
    Export {
        /// The plugins folder to write (made if missing).
        dir: PathBuf,
    },
}

pub fn run(cmd: PluginsCommand) -> Result<(), Failure> {
    match cmd {
        PluginsCommand::Export { dir } => export(&dir),
    }
}

fn export(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::new(
            BAD_INPUT,
            anyhow::anyhow!("cannot make {}: {e}", dir.display()),
        )
    })?;
    for (name, component, grants) in bundled::EMBEDDED_PLUGINS {
        put(dir, &format!("{name}.wasm"), component)?;
        put(dir, &format!("{name}.toml"), grants.as_bytes())?;
    }
    for (name, plan) in bundled::PLANS {
        put(dir, name, plan.as_bytes())?;
    }
    Ok(())
}

/// Writes one file of a plugins folder whole (temp + fsync + rename: a link
/// planted there is replaced, never written through) and prints its name,
/// size and SHA-256.
pub(super) fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Failure> {
    files::replace(&dir.join(name), bytes, 0o644).map_err(|e| Failure::new(BAD_INPUT, e))?;
    let digest = runway_audit::hex::encode(&runway_audit::sha256(bytes));
    println!(
        "{:<28} {:>9} bytes  sha256 {digest}",
        escape(name),
        bytes.len()
    );
    Ok(())
}
