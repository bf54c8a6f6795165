//! `runway sign PLUGIN.wasm --key AUTHOR.key`: writes `PLUGIN.wasm.sig`,
//! which hosts started with `--require-signed --author AUTHOR.pub` check
//! before loading the component.

use std::path::PathBuf;

use clap::Args;

use super::keygen::read_private_key;
use super::{BAD_INPUT, Failure, HOST_FAULT};
use crate::files::{self, FileKind, ReadCaps};
use crate::plugin::signing;

#[derive(Args)]
pub struct SignArgs {
    /// The component to sign.
    plugin: PathBuf,
    /// The author's private key (`runway keygen --name AUTHOR`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

pub fn run(args: SignArgs) -> Result<(), Failure> {
    let caps = ReadCaps::default();
    let key = read_private_key(&args.key, &caps)?;
    let bytes = files::read(&args.plugin, FileKind::Component, &caps)
        .map_err(|e| Failure::new(BAD_INPUT, e))?;
    let digest = runway_audit::sha256(&bytes);
    let note = signing::sign(&digest, &key).map_err(|e| Failure::new(BAD_INPUT, e))?;
    let out = signing::signature_path(&args.plugin);
    std::fs::write(&out, note).map_err(|e| {
        Failure::new(
            HOST_FAULT,
            anyhow::Error::new(e).context(format!("writing {}", out.display())),
        )
    })?;
    println!(
        "signed {} (sha256 {}) as {}: {}",
        args.plugin.display(),
        runway_audit::hex::encode(&digest),
        key.public().label(),
        out.display()
    );
    Ok(())
}
