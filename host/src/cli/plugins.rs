//! `runway plugins export DIR`: the agents built into the binary (the
//! nightly's three) as a plugins folder — `NAME.wasm` and its grants
//! `NAME.toml`, named as the loader expects — and the nightly plan beside
//! them as `nightly.toml`, so an operator starts from real files:
//! `runway serve --plugins DIR`, `runway run DIR/nightly.toml --plugins DIR`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use runway_audit::render::escape;

use super::{BAD_INPUT, Failure};
use crate::{bundled, files};

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Write the built-in agents (NAME.wasm + NAME.toml) and the nightly
    /// plan (nightly.toml) into DIR, replacing files of those names.
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
    let bad = |e: anyhow::Error| Failure::new(BAD_INPUT, e);
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(anyhow::anyhow!("cannot make {}: {e}", dir.display())))?;
    let put = |name: String, bytes: &[u8]| {
        files::replace(&dir.join(&name), bytes, 0o644).map_err(|e| bad(e.into()))?;
        let digest = runway_audit::hex::encode(&runway_audit::sha256(bytes));
        println!("{:<28} sha256 {digest}", escape(&name));
        Ok::<_, Failure>(())
    };
    for (name, component, grants) in bundled::EMBEDDED_PLUGINS {
        put(format!("{name}.wasm"), component)?;
        put(format!("{name}.toml"), grants.as_bytes())?;
    }
    put("nightly.toml".into(), bundled::NIGHTLY_PLAN.as_bytes())?;
    Ok(())
}
