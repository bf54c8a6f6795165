//! `runway keygen`: a key pair for signing audit checkpoints; and where the
//! host and the auditor find keys when none is named.
//!
//! Without `--key`, `runway run` signs with `runway-keys/runway.key` beside
//! the audit folder, creating it on first use, and `runway audit verify`
//! checks against `runway-keys/runway.pub` there, saying so.

use std::path::{Path, PathBuf};

use clap::Args;
use runway_audit::Trust;
use runway_audit::keys::{self, PrivateKey, PublicKey, write_key_pair};

use super::{BAD_INPUT, Failure, HOST_FAULT};

/// Name of the key made when none is given.
pub const DEFAULT_KEY_NAME: &str = "runway";
/// Folder of the default key, beside the audit folder.
pub const DEFAULT_KEY_DIR: &str = "runway-keys";

#[derive(Args)]
pub struct KeygenArgs {
    /// Folder to write NAME.key (private) and NAME.pub (public) into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Key name, as it appears on checkpoint signatures.
    #[arg(long, default_value = DEFAULT_KEY_NAME)]
    name: String,
}

pub fn run(args: KeygenArgs) -> Result<(), Failure> {
    let key = PrivateKey::generate(&args.name).map_err(|e| Failure::new(BAD_INPUT, e))?;
    let files = write_key_pair(&args.out, &key).map_err(|e| Failure::new(HOST_FAULT, e))?;
    let public = key.public();
    println!(
        "wrote {} (private: keep it with the host; `runway run --key {0}`)",
        files.private.display()
    );
    println!(
        "wrote {} (public: give it to auditors; `runway audit verify --key {0}`)",
        files.public.display()
    );
    println!("key id {}", public.label());
    println!("\nfor a trust file:\n[[key]]\npublic = \"{public}\"");
    Ok(())
}

/// The default key folder for the audit folder `audit_dir`: beside it.
pub fn default_key_dir(audit_dir: &Path) -> PathBuf {
    audit_dir
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(DEFAULT_KEY_DIR)
}

/// The keys `runway run` signs with: the `keys` files given, else the
/// default key beside the audit folder, created (and announced on stderr)
/// if missing.
pub fn signing_keys(audit_dir: &Path, keys: &[PathBuf]) -> Result<Vec<PrivateKey>, Failure> {
    let bad = |e| Failure::new(BAD_INPUT, e);
    if keys.is_empty() {
        return Ok(vec![default_signing_key(audit_dir)?]);
    }
    keys.iter()
        .map(|path| PrivateKey::read(path).map_err(bad))
        .collect()
}

/// `runway-keys/runway.key` beside the audit folder, made if missing.
fn default_signing_key(audit_dir: &Path) -> Result<PrivateKey, Failure> {
    let bad = |e| Failure::new(BAD_INPUT, e);
    let dir = default_key_dir(audit_dir);
    let path = keys::private_key_path(&dir, DEFAULT_KEY_NAME);
    if path.exists() {
        return PrivateKey::read(&path).map_err(bad);
    }
    let key = PrivateKey::generate(DEFAULT_KEY_NAME).map_err(bad)?;
    let files = write_key_pair(&dir, &key).map_err(|e| Failure::new(HOST_FAULT, e))?;
    eprintln!(
        "runway: created signing key {} (public key for auditors: {})",
        files.private.display(),
        files.public.display()
    );
    Ok(key)
}

/// The keys an auditor checks against: a trust file, a public key file, or
/// the default public key beside the audit folder; and a line saying which.
pub fn auditor_trust(
    trust: Option<&Path>,
    key: Option<&Path>,
    audit_dir: &Path,
) -> Result<(Trust, String), Failure> {
    let bad = |e: anyhow::Error| Failure::new(BAD_INPUT, e);
    if let Some(path) = trust {
        let trust = Trust::read(path).map_err(|e| bad(e.into()))?;
        return Ok((
            trust.clone(),
            format!("trust file {} ({trust})", path.display()),
        ));
    }
    if let Some(path) = key {
        let public = PublicKey::read(path).map_err(|e| bad(e.into()))?;
        let line = format!("public key {} ({})", path.display(), public.label());
        return Ok((Trust::single(public), line));
    }
    let path = keys::public_key_path(&default_key_dir(audit_dir), DEFAULT_KEY_NAME);
    if !path.exists() {
        return Err(bad(anyhow::anyhow!(
            "no key to verify with: pass --trust FILE or --key NAME.pub (no default key at {})",
            path.display()
        )));
    }
    let public = PublicKey::read(&path).map_err(|e| bad(e.into()))?;
    let line = format!(
        "public key {} ({}), found beside the audit folder; pass --trust or --key to use your own",
        path.display(),
        public.label()
    );
    Ok((Trust::single(public), line))
}
