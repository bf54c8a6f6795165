//! `runway keygen`: a key pair for signing audit checkpoints; and where the
//! host and the auditor find keys when none is named.
//!
//! The default key is named after the log's origin, a schema-less URL-like
//! name as C2SP advises: the folder's own for an existing audit folder,
//! `HOSTNAME/runway` for a new one (see [`default_origin`]). Without
//! `--key`, `runway run` signs with `runway-keys/ORIGIN.key` beside the
//! audit folder (`/` in a name becomes `_` in a file name), creating it on
//! first use, and `runway audit verify` checks against
//! `runway-keys/ORIGIN.pub` there, saying so. A folder made when the
//! default origin was `runway` keeps it, and so its `runway.key`.
//!
//! Key and trust files are read here, through [`crate::files`], and parsed
//! from their text.

use std::path::{Path, PathBuf};

use clap::Args;
use runway_audit::Trust;
use runway_audit::keys::{self, KeyError, PrivateKey, PublicKey, write_key_pair};

use super::{BAD_INPUT, Failure, HOST_FAULT};
use crate::files::{self, FileKind, ReadCaps};

/// Folder of the default key, beside the audit folder.
pub const DEFAULT_KEY_DIR: &str = "runway-keys";
/// Where the host name in the default origin comes from.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";
/// The path part of the default origin.
const DEFAULT_ORIGIN_PATH: &str = "runway";

/// The origin (and default key name) of a new audit folder:
/// `HOSTNAME/runway`, the host name lower-cased; `localhost/runway` when
/// the host name is unknown or unfit for a key name.
pub fn default_origin() -> String {
    let host = std::fs::read_to_string(HOSTNAME_FILE)
        .map(|name| name.trim().to_lowercase())
        .ok()
        .filter(|name| !name.is_empty() && !name.contains('/') && keys::check_name(name).is_ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}/{DEFAULT_ORIGIN_PATH}")
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Folder to write NAME.key (private) and NAME.pub (public) into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Key name, as it appears on checkpoint signatures (default: the
    /// default origin of a new audit folder here, HOSTNAME/runway).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: KeygenArgs) -> Result<(), Failure> {
    let name = args.name.unwrap_or_else(default_origin);
    let key = PrivateKey::generate(&name).map_err(|e| Failure::new(BAD_INPUT, e))?;
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
/// default key of `origin` beside the audit folder, created (and announced
/// on stderr) if missing.
pub fn signing_keys(
    audit_dir: &Path,
    origin: &str,
    keys: &[PathBuf],
    caps: &ReadCaps,
) -> Result<Vec<PrivateKey>, Failure> {
    if keys.is_empty() {
        return Ok(vec![default_signing_key(audit_dir, origin, caps)?]);
    }
    keys.iter()
        .map(|path| read_private_key(path, caps))
        .collect()
}

/// The text of a key or trust file, read through [`crate::files`] (a
/// regular file within the key cap, no link followed).
fn read_key_text(path: &Path, caps: &ReadCaps) -> Result<String, Failure> {
    let bytes = files::read(path, FileKind::Key, caps).map_err(|e| Failure::new(BAD_INPUT, e))?;
    String::from_utf8(bytes).map_err(|_| {
        Failure::new(
            BAD_INPUT,
            anyhow::anyhow!("{}: not UTF-8 text", path.display()),
        )
    })
}

/// Parses a key file's text; errors name the file.
fn parse_key<K>(
    path: &Path,
    caps: &ReadCaps,
    parse: fn(&str) -> Result<K, KeyError>,
) -> Result<K, Failure> {
    parse(&read_key_text(path, caps)?).map_err(|error| {
        Failure::new(
            BAD_INPUT,
            KeyError::InFile {
                path: path.to_owned(),
                error: Box::new(error),
            },
        )
    })
}

/// A public key file (`NAME.pub`).
pub fn read_public_key(path: &Path, caps: &ReadCaps) -> Result<PublicKey, Failure> {
    parse_key(path, caps, PublicKey::parse)
}

/// A private key file (`NAME.key`).
pub fn read_private_key(path: &Path, caps: &ReadCaps) -> Result<PrivateKey, Failure> {
    parse_key(path, caps, PrivateKey::parse)
}

/// `runway-keys/ORIGIN.key` beside the audit folder, made (named `origin`)
/// if missing.
fn default_signing_key(
    audit_dir: &Path,
    origin: &str,
    caps: &ReadCaps,
) -> Result<PrivateKey, Failure> {
    let bad = |e| Failure::new(BAD_INPUT, e);
    let dir = default_key_dir(audit_dir);
    let path = keys::private_key_path(&dir, origin);
    if std::fs::symlink_metadata(&path).is_ok() {
        return read_private_key(&path, caps);
    }
    let key = PrivateKey::generate(origin).map_err(bad)?;
    let files = write_key_pair(&dir, &key).map_err(|e| Failure::new(HOST_FAULT, e))?;
    eprintln!(
        "runway: created signing key {} (public key for auditors: {})",
        files.private.display(),
        files.public.display()
    );
    Ok(key)
}

/// The keys an auditor checks against: a trust file, a public key file, or
/// the default public key of the log `origin` beside the audit folder; and
/// a line saying which.
pub fn auditor_trust(
    trust: Option<&Path>,
    key: Option<&Path>,
    audit_dir: &Path,
    origin: &str,
) -> Result<(Trust, String), Failure> {
    let bad = |e: anyhow::Error| Failure::new(BAD_INPUT, e);
    let caps = ReadCaps::default();
    if let Some(path) = trust {
        let text = read_key_text(path, &caps)?;
        let trust = Trust::parse(&text, &path.display().to_string()).map_err(|e| bad(e.into()))?;
        return Ok((
            trust.clone(),
            format!("trust file {} ({trust})", path.display()),
        ));
    }
    if let Some(path) = key {
        let public = read_public_key(path, &caps)?;
        let line = format!("public key {} ({})", path.display(), public.label());
        return Ok((Trust::single(public), line));
    }
    let mut path = keys::public_key_path(&default_key_dir(audit_dir), origin);
    // A crew's shard is signed by its host's key.
    if std::fs::symlink_metadata(&path).is_err()
        && let Some(host) = origin.strip_suffix(crate::store::CREW)
    {
        path = keys::public_key_path(&default_key_dir(audit_dir), host);
    }
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(bad(anyhow::anyhow!(
            "no key to verify with: pass --trust FILE or --key NAME.pub (no default key at {})",
            path.display()
        )));
    }
    let public = read_public_key(&path, &caps)?;
    let line = format!(
        "public key {} ({}), found beside the audit folder; pass --trust or --key to use your own",
        path.display(),
        public.label()
    );
    Ok((Trust::single(public), line))
}
