//! Who may do what through the API: roles, the rights each grants, and the
//! tokens file naming every caller.
//!
//! The token `runway serve` makes at first start ([`super::token`]) is the
//! admin's. Every other caller has a line in the tokens file
//! (`runway-tokens.toml` beside it; `runway token add NAME --role ROLE`),
//! which holds each token's name, roles and SHA-256 — never the token:
//!
//! ```toml
//! [[token]]
//! name = "alice"
//! roles = ["approver"]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! Deny by default: a request needs a [`Right`], and only a role that
//! grants it lets the request in. The file is read again whenever it
//! changes; a file that does not parse keeps the tokens it replaced (said
//! once per change) so a typo locks nobody out and lets nobody in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runway_audit::{Hash, hex, sha256};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::files::{self, FileError, FileKind, ReadCaps, Stamp, TomlProblem};
pub use crate::roles::{Caller, Right, Role};

/// The tokens file's name, beside the admin's token file.
pub const TOKENS_FILE: &str = "runway-tokens.toml";

/// The name the admin's token goes by in the audit trail.
pub const ADMIN: &str = "admin";

/// Why the tokens file could not be read or written.
#[derive(Debug, Error)]
pub enum TokensError {
    #[error("tokens file {0}")]
    Read(#[from] FileError),
    #[error("tokens file {path}: {problem}")]
    Toml { path: String, problem: TomlProblem },
    #[error("tokens file {path}: token {index}: {why}")]
    Entry {
        path: String,
        index: usize,
        why: String,
    },
    #[error("tokens file {path}: {why}")]
    Refused { path: String, why: String },
    #[error("tokens file {0}")]
    Write(crate::files::FileError),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// One line of the tokens file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub roles: Vec<Role>,
    /// SHA-256 of the token, hex.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensToml {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

/// Where the tokens file of a server whose admin token is `token_file`
/// lives.
pub fn tokens_beside(token_file: &Path) -> PathBuf {
    token_file.with_file_name(TOKENS_FILE)
}

/// The entries of the tokens file at `path` (none when it does not exist),
/// each checked: a name, at least one role, a SHA-256 in hex, no name twice
/// and none called `admin` (the admin's token is its own file).
pub fn read_tokens(path: &Path, caps: &ReadCaps) -> Result<Vec<TokenEntry>, TokensError> {
    let shown = || path.display().to_string();
    let Some(bytes) = files::read_if_present(path, FileKind::Key, caps)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    let parsed: TokensToml = toml::from_str(&text).map_err(|e| TokensError::Toml {
        path: shown(),
        problem: TomlProblem::new(&e, &text),
    })?;
    let mut seen = HashMap::new();
    for (index, entry) in parsed.token.iter().enumerate() {
        let why = if let Err(e) = crate::names::check_token_name(&entry.name) {
            Some(e.to_string())
        } else if entry.name == ADMIN {
            Some(format!(
                "{ADMIN:?} is the name of the server's own token; choose another"
            ))
        } else if entry.roles.is_empty() {
            Some(format!("{:?} has no roles", entry.name))
        } else if hex::decode_hash(&entry.sha256).is_none() {
            Some(format!("{:?}: sha256 is not 64 hex digits", entry.name))
        } else {
            seen.insert(entry.name.clone(), index)
                .map(|first| format!("{:?} is named twice (also token {})", entry.name, first + 1))
        };
        if let Some(why) = why {
            return Err(TokensError::Entry {
                path: shown(),
                index: index + 1,
                why,
            });
        }
    }
    Ok(parsed.token)
}

/// Adds a token called `name` with `roles` to the tokens file at `path`
/// (written whole to a temporary file, synced, renamed over; mode 0600) and
/// returns the new token: shown once, kept nowhere.
pub fn add_token(
    path: &Path,
    name: &str,
    roles: &[Role],
    caps: &ReadCaps,
) -> Result<String, TokensError> {
    let refused = |why: String| TokensError::Refused {
        path: path.display().to_string(),
        why,
    };
    crate::names::check_token_name(name).map_err(|e| refused(e.to_string()))?;
    if roles.is_empty() {
        return Err(refused(format!("{name:?} needs at least one --role")));
    }
    let mut entries = read_tokens(path, caps)?;
    if name == ADMIN || entries.iter().any(|e| e.name == name) {
        return Err(refused(format!(
            "a token called {name:?} is there already; remove it first"
        )));
    }
    let token = new_token()?;
    let mut roles = roles.to_vec();
    roles.dedup();
    entries.push(TokenEntry {
        name: name.to_string(),
        roles,
        sha256: hex::encode(&sha256(token.as_bytes())),
    });
    write_tokens(path, &entries)?;
    Ok(token)
}

/// Removes the token called `name`; whether there was one.
pub fn remove_token(path: &Path, name: &str, caps: &ReadCaps) -> Result<bool, TokensError> {
    let mut entries = read_tokens(path, caps)?;
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        return Ok(false);
    }
    write_tokens(path, &entries)?;
    Ok(true)
}

/// A fresh token: 32 random bytes in hex.
pub fn new_token() -> Result<String, TokensError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokensError::Random(e.to_string()))?;
    Ok(hex::encode(&bytes))
}

fn write_tokens(path: &Path, entries: &[TokenEntry]) -> Result<(), TokensError> {
    let shown = path.display().to_string();
    let body = toml::to_string(&TokensToml {
        token: entries.to_vec(),
    })
    .map_err(|e| TokensError::Refused {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    let text = format!(
        "# API tokens of `runway serve`: name, roles and SHA-256 of each token\n\
         # (`runway token add NAME --role ROLE`). The tokens themselves are kept nowhere.\n\n{body}"
    );
    crate::files::replace(path, text.as_bytes(), 0o600).map_err(TokensError::Write)
}

/// The callers a server knows: the admin's token and the tokens file, read
/// again whenever its stamp changes.
pub struct Access {
    admin: Hash,
    path: PathBuf,
    caps: ReadCaps,
    known: Mutex<Known>,
}

struct Known {
    stamp: Option<Stamp>,
    callers: HashMap<Hash, Caller>,
}

impl Access {
    /// The admin's `token` and the tokens file at `path`, which must read
    /// now (a bad one stops the server from starting).
    pub fn new(token: &str, path: PathBuf, caps: ReadCaps) -> Result<Access, TokensError> {
        let stamp = files::stamp(&path);
        let callers = callers(&read_tokens(&path, &caps)?);
        Ok(Access {
            admin: sha256(token.as_bytes()),
            path,
            caps,
            known: Mutex::new(Known { stamp, callers }),
        })
    }

    /// The tokens file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds `token`, if anyone.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let hash = sha256(token.as_bytes());
        if hash == self.admin {
            return Some(Caller {
                name: ADMIN.into(),
                roles: vec![Role::Admin],
            });
        }
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stamp = files::stamp(&self.path);
        if stamp != known.stamp {
            known.stamp = stamp;
            match read_tokens(&self.path, &self.caps) {
                Ok(entries) => known.callers = callers(&entries),
                Err(e) => tracing::warn!("{e}; the tokens read before stay in force"),
            }
        }
        known.callers.get(&hash).cloned()
    }
}

fn callers(entries: &[TokenEntry]) -> HashMap<Hash, Caller> {
    entries
        .iter()
        .filter_map(|e| {
            Some((
                hex::decode_hash(&e.sha256)?,
                Caller {
                    name: e.name.clone(),
                    roles: e.roles.clone(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_tokens_are_known_by_hash_and_reread_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKENS_FILE);
        let caps = ReadCaps::default();
        let admin = new_token().unwrap();
        let access = Access::new(&admin, path.clone(), caps).unwrap();
        assert_eq!(access.caller(&admin).unwrap().name, ADMIN);

        let alice = add_token(&path, "alice", &[Role::Approver], &caps).unwrap();
        assert_eq!(
            access.caller(&alice),
            Some(Caller {
                name: "alice".into(),
                roles: vec![Role::Approver]
            })
        );
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&alice));
        assert!(access.caller(&new_token().unwrap()).is_none());

        // A name twice, or the admin's name, is refused.
        assert!(add_token(&path, "alice", &[Role::Viewer], &caps).is_err());
        assert!(add_token(&path, ADMIN, &[Role::Viewer], &caps).is_err());

        // A broken file keeps the tokens it replaced.
        std::fs::write(&path, "[[token]]\nname = \"alice\"\nroles = [\"root\"]\n").unwrap();
        assert_eq!(access.caller(&alice).unwrap().name, "alice");
        let err = read_tokens(&path, &caps).unwrap_err().to_string();
        assert!(err.contains("root"), "{err}");

        // Removed, it is refused.
        std::fs::remove_file(&path).unwrap();
        add_token(&path, "bob", &[Role::Viewer], &caps).unwrap();
        assert!(access.caller(&alice).is_none());
        assert!(remove_token(&path, "bob", &caps).unwrap());
        assert!(!remove_token(&path, "bob", &caps).unwrap());
    }

    #[test]
    fn bad_entries_are_refused_naming_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKENS_FILE);
        let caps = ReadCaps::default();
        let hash = "a".repeat(64);
        for (body, says) in [
            (
                format!("[[token]]\nname = \"a b\"\nroles = [\"viewer\"]\nsha256 = \"{hash}\"\n"),
                "token 1: token name \"a b\"",
            ),
            (
                format!("[[token]]\nname = \"x\"\nroles = []\nsha256 = \"{hash}\"\n"),
                "no roles",
            ),
            (
                "[[token]]\nname = \"x\"\nroles = [\"viewer\"]\nsha256 = \"abc\"\n".to_string(),
                "64 hex",
            ),
            (
                format!(
                    "[[token]]\nname = \"x\"\nroles = [\"viewer\"]\nsha256 = \"{hash}\"\n[[token]]\nname = \"x\"\nroles = [\"viewer\"]\nsha256 = \"{hash}\"\n"
                ),
                "token 2: \"x\" is named twice",
            ),
            (
                format!(
                    "[[token]]\nname = \"x\"\nroles = [\"viewer\"]\nsha256 = \"{hash}\"\ncolour = 1\n"
                ),
                "colour",
            ),
        ] {
            std::fs::write(&path, body).unwrap();
            let err = read_tokens(&path, &caps).unwrap_err().to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }
}
