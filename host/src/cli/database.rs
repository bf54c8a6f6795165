//! Where `runway serve` keeps its datasets (and `runway data` reads them):
//! the embedded store, or the PostgreSQL database whose connection string
//! is in `--database-file` or the environment variable
//! `RUNWAY_DATABASE_URL` — never on the command line, where `ps` and shell
//! histories would show its password.

use std::path::Path;
use std::time::Duration;

use super::{BAD_INPUT, Failure};
use crate::files::{self, FileKind, ReadCaps};
use crate::store::{DatabaseUrl, StoreConfig};

/// The environment variable that may hold the connection string.
pub const DATABASE_URL_ENV: &str = "RUNWAY_DATABASE_URL";

/// The store `--database-file` (read as a key file: a regular file within
/// the key cap) or [`DATABASE_URL_ENV`] names, its lead held under `lease`;
/// the embedded one otherwise.
pub fn store_config(
    file: Option<&Path>,
    caps: &ReadCaps,
    lease: Duration,
) -> Result<StoreConfig, Failure> {
    let postgres = |url: String| StoreConfig::Postgres {
        url: DatabaseUrl::new(url),
        lease,
        api: None,
    };
    if let Some(path) = file {
        let bytes =
            files::read(path, FileKind::Key, caps).map_err(|e| Failure::new(BAD_INPUT, e))?;
        let url = String::from_utf8(bytes).map_err(|_| {
            Failure::new(
                BAD_INPUT,
                anyhow::anyhow!("--database-file {}: not UTF-8 text", path.display()),
            )
        })?;
        return Ok(postgres(url));
    }
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Ok(postgres(url)),
        _ => Ok(StoreConfig::Embedded),
    }
}
