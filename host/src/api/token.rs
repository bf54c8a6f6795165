//! The bearer token of `runway serve`: made at first start (32 random
//! bytes, hex) and written to a file only its owner can read (mode 0600),
//! then read back at every start. It is the admin's (`super::access`).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::files::{self, FileError, FileKind, ReadCaps};

/// The token file's name, beside the audit folder.
pub const TOKEN_FILE: &str = "runway-serve.token";

/// Why the token could not be had.
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("token file {0}")]
    Read(#[from] FileError),
    #[error("token file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path} can be read by others (mode {mode:04o}); `chmod 600` it")]
    Open { path: String, mode: u32 },
    #[error("token file {0} holds no token (one line of at least 32 characters)")]
    Empty(String),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// Where the token of a server whose audit folder is `audit` lives.
pub fn beside(audit: &Path) -> PathBuf {
    audit
        .parent()
        .map_or_else(|| PathBuf::from(TOKEN_FILE), |p| p.join(TOKEN_FILE))
}

/// The token in `path`, made (and written, mode 0600) if there is none.
pub fn ensure(path: &Path, caps: &ReadCaps) -> Result<String, TokenError> {
    let shown = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
            let token = runway_audit::hex::encode(&bytes);
            let write = || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(format!("{token}\n").as_bytes())?;
                file.sync_all()
            };
            write().map_err(|source| TokenError::Write {
                path: shown(),
                source,
            })?;
            Ok(token)
        }
        _ => read(path, caps),
    }
}

/// The token in `path`: a regular file no one else can read.
pub fn read(path: &Path, caps: &ReadCaps) -> Result<String, TokenError> {
    let bytes = files::read(path, FileKind::Key, caps)?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.mode() & 0o077 != 0
    {
        return Err(TokenError::Open {
            path: path.display().to_string(),
            mode: meta.mode() & 0o7777,
        });
    }
    let token = String::from_utf8_lossy(&bytes).trim().to_string();
    if token.len() < 32 || token.contains(char::is_whitespace) {
        return Err(TokenError::Empty(path.display().to_string()));
    }
    Ok(token)
}
