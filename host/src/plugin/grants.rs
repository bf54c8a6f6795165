//! Grants: what an operator allows one plugin to do, read from `NAME.toml`
//! beside `NAME.wasm`. Deny by default: a dataset not listed cannot be
//! locked, and unknown keys are an error naming file and key.
//!
//! ```toml
//! [datasets]
//! "fafsa_*" = "exclusive"   # a name, or a prefix ending in '*'; strongest mode allowed
//! reference = "shared"
//!
//! [limits]                  # all optional; defaults below, maxima in brackets
//! memory_mib = 64           # all memories and tables of a run together [1024]
//! fuel = 10_000_000_000     # CPU budget per run, wasmtime fuel ≈ instructions [10^15]
//! window_secs = 60          # wall-clock per run, commit included [86400]
//! max_output_kib = 1024     # largest output of a run [1024]
//! max_log_kib = 256         # log lines + stdout/stderr kept per run [16384]
//! max_running = 2           # runs of this agent cleared and not yet landed, all plans together [64]; default: none of its own
//!
//! [delegate]                # none by default: the agent may not delegate
//! agents = ["scorer-*"]     # agents it may delegate and hand off to: names, or prefixes ending in '*'
//! depth = 4                 # levels of children below a tree's root [16]
//! children = 100            # children of one run [10000]
//! descendants = 1000        # runways in a tree below its root [100000]
//! tree_fuel = 1_000_000_000_000  # fuel for every run below the root together [10^18]; default: no tree budget
//! tree_wall_secs = 3600     # the tree's wall time, from its root's take-off [86400]; default: none
//!
//! [breaker]                 # none by default (see `super::breaker`)
//! failures = 5              # attempts failed within ...
//! within = "10m"            # ... this long open it; it stays open
//! open_for = "5m"           # this long, then one probe runs
//! [events]                  # none by default: the agent may not publish
//! publish = ["applications.*"]   # topics it may publish to: names, or prefixes ending in '*'
//! ```
//!
//! A child's rights are the intersection of its own grants and its
//! parent's: the depth and descendants of a tree are its root's, narrowed
//! by each child's own, and a child's locks must be granted to it and to
//! every ancestor.
//!
//! Every limit is checked against its maximum when the file is read (naming
//! the key), so no later arithmetic on a limit can overflow or wrap.

use std::collections::BTreeMap;
use std::path::Path;

use runway_audit::LockMode;
use serde::Deserialize;
use thiserror::Error;

use super::breaker::{BreakerFile, BreakerGrant};
use crate::files::{self, FileError, FileKind, Fingerprint, ReadCaps, TomlProblem};
use crate::limits::{
    Limits, MAX_CHILDREN, MAX_DELEGATE_DEPTH, MAX_DESCENDANTS, MAX_FUEL, MAX_LOG_KIB,
    MAX_MEMORY_MIB, MAX_OUTPUT_KIB, MAX_WINDOW_SECS,
};
use crate::names::{self, NameError};
use crate::sandbox::hostcalls::Topics;

/// What one plugin may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    /// Dataset name or `prefix*` → strongest mode allowed.
    pub datasets: BTreeMap<String, LockMode>,
    pub limits: Limits,
    /// Whom it may delegate to, and how far; `None`: it may not.
    pub delegate: Option<Delegate>,
    /// Its circuit breaker; `None`: it has none.
    pub breaker: Option<BreakerGrant>,
    /// The topics it may publish to (`[events] publish`).
    pub topics: Topics,
}

/// What a plugin may publish: the `[events]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Events {
    /// Topics, or prefixes ending in `*`.
    publish: Vec<String>,
}

/// What a plugin may delegate: the `[delegate]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegate {
    /// Agent names, or prefixes ending in `*`.
    pub agents: Vec<String>,
    #[serde(default = "Delegate::default_depth")]
    pub depth: u32,
    #[serde(default = "Delegate::default_children")]
    pub children: u32,
    #[serde(default = "Delegate::default_descendants")]
    pub descendants: u32,
    /// Fuel for all the runs below a tree's root together (a root's).
    pub tree_fuel: Option<u64>,
    /// Wall time for a whole tree, from its root's take-off (a root's).
    pub tree_wall_secs: Option<u64>,
}

impl Delegate {
    fn default_depth() -> u32 {
        4
    }
    fn default_children() -> u32 {
        100
    }
    fn default_descendants() -> u32 {
        1000
    }

    /// Does it name `agent`?
    pub fn names(&self, agent: &str) -> bool {
        self.agents.iter().any(|p| names::matches(p, agent))
    }
}

/// Why a grants file was refused.
#[derive(Debug, Error)]
pub enum GrantsError {
    #[error("{file}: missing: every plugin needs a grants file (deny by default)")]
    Missing { file: String },
    #[error("grants file {0}")]
    File(FileError),
    /// Read but refused: named with its size and SHA-256, never quoted.
    #[error("{source} ({fingerprint})")]
    InFile {
        fingerprint: Fingerprint,
        source: Box<GrantsError>,
    },
    #[error("{file}: not UTF-8 (bad byte at offset {offset})")]
    NotUtf8 { file: String, offset: usize },
    #[error("{file}: {problem}")]
    Syntax { file: String, problem: TomlProblem },
    #[error("{file}: dataset pattern {pattern:?} is not valid: {source}")]
    Pattern {
        file: String,
        pattern: String,
        source: NameError,
    },
    #[error("{file}: delegate agent pattern {pattern:?} is not valid: {source}")]
    AgentPattern {
        file: String,
        pattern: String,
        source: NameError,
    },
    #[error("{file}: {key} {why}")]
    Breaker {
        file: String,
        key: &'static str,
        why: String,
    },
    #[error("{file}: events topic pattern {pattern:?} is not valid: {source}")]
    TopicPattern {
        file: String,
        pattern: String,
        source: NameError,
    },
    #[error("{file}: {key} must be greater than zero")]
    Zero { file: String, key: &'static str },
    #[error("{file}: {key} = {value} exceeds the host's maximum of {max}")]
    TooLarge {
        file: String,
        key: &'static str,
        value: u64,
        max: u64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    #[serde(default)]
    datasets: BTreeMap<String, LockMode>,
    #[serde(default)]
    limits: Limits,
    delegate: Option<Delegate>,
    breaker: Option<BreakerFile>,
    events: Option<Events>,
}

impl Grants {
    /// Reads `path` through [`crate::files`] (a regular file within the
    /// grants cap, no link followed).
    pub fn load(path: &Path, caps: &ReadCaps) -> Result<Grants, GrantsError> {
        let file = path.display().to_string();
        let Some(bytes) =
            files::read_if_present(path, FileKind::Grants, caps).map_err(GrantsError::File)?
        else {
            return Err(GrantsError::Missing { file });
        };
        let parsed = match std::str::from_utf8(&bytes) {
            Ok(text) => Grants::parse(text, &file),
            Err(e) => Err(GrantsError::NotUtf8 {
                file,
                offset: e.valid_up_to(),
            }),
        };
        parsed.map_err(|source| GrantsError::InFile {
            fingerprint: Fingerprint::of(&bytes),
            source: Box::new(source),
        })
    }

    /// Parses grants text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Grants, GrantsError> {
        let file = file.to_string();
        let parsed: GrantsFile = toml::from_str(text).map_err(|e| GrantsError::Syntax {
            file: file.clone(),
            problem: TomlProblem::new(&e, text),
        })?;
        check_patterns(
            parsed.datasets.keys(),
            names::check_dataset,
            |pattern, source| GrantsError::Pattern {
                file: file.clone(),
                pattern,
                source,
            },
        )?;
        let l = parsed.limits;
        let mut bounded = vec![
            ("limits.memory_mib", l.memory_mib, MAX_MEMORY_MIB),
            ("limits.fuel", l.fuel, MAX_FUEL),
            ("limits.window_secs", l.window_secs, MAX_WINDOW_SECS),
            ("limits.max_output_kib", l.max_output_kib, MAX_OUTPUT_KIB),
            ("limits.max_log_kib", l.max_log_kib, MAX_LOG_KIB),
            (
                "limits.max_running",
                l.max_running.unwrap_or(1),
                u64::from(crate::limits::MAX_LIVE_RUNS),
            ),
        ];
        if let Some(d) = &parsed.delegate {
            check_patterns(&d.agents, names::check_agent, |pattern, source| {
                GrantsError::AgentPattern {
                    file: file.clone(),
                    pattern,
                    source,
                }
            })?;
            bounded.extend([
                ("delegate.depth", d.depth.into(), MAX_DELEGATE_DEPTH.into()),
                ("delegate.children", d.children.into(), MAX_CHILDREN.into()),
                (
                    "delegate.descendants",
                    d.descendants.into(),
                    MAX_DESCENDANTS.into(),
                ),
                (
                    "delegate.tree_fuel",
                    d.tree_fuel.unwrap_or(1),
                    MAX_FUEL.saturating_mul(1000),
                ),
                (
                    "delegate.tree_wall_secs",
                    d.tree_wall_secs.unwrap_or(1),
                    MAX_WINDOW_SECS,
                ),
            ]);
        }
        let publish = parsed.events.map(|e| e.publish).unwrap_or_default();
        // `applications.*`: the stem's trailing dot is the prefix's, not a
        // topic's.
        let topic = |stem: &str| match stem.strip_suffix('.').unwrap_or(stem) {
            "" => Ok(()),
            stem => names::check_topic(stem),
        };
        check_patterns(&publish, topic, |pattern, source| {
            GrantsError::TopicPattern {
                file: file.clone(),
                pattern,
                source,
            }
        })?;
        for (key, value, max) in bounded {
            if value == 0 {
                return Err(GrantsError::Zero { file, key });
            }
            if value > max {
                return Err(GrantsError::TooLarge {
                    file,
                    key,
                    value,
                    max,
                });
            }
        }
        let breaker = match &parsed.breaker {
            Some(b) => Some(b.check().map_err(|(key, why)| GrantsError::Breaker {
                file: file.clone(),
                key,
                why,
            })?),
            None => None,
        };
        Ok(Grants {
            datasets: parsed.datasets,
            limits: l,
            delegate: parsed.delegate,
            breaker,
            topics: Topics::new(publish),
        })
    }

    /// The strongest mode granted on `dataset`: an exact entry wins over
    /// patterns; among patterns, the longest prefix wins.
    pub fn allowed(&self, dataset: &str) -> Option<LockMode> {
        if let Some(&mode) = self.datasets.get(dataset) {
            return Some(mode);
        }
        self.datasets
            .iter()
            .filter_map(|(p, &m)| p.strip_suffix('*').map(|stem| (stem, m)))
            .filter(|(stem, _)| dataset.starts_with(stem))
            .max_by_key(|(stem, _)| stem.len())
            .map(|(_, m)| m)
    }

    /// Does the grant cover `mode` on `dataset`?
    pub fn permits(&self, dataset: &str, mode: LockMode) -> bool {
        match self.allowed(dataset) {
            Some(LockMode::Exclusive) => true,
            Some(LockMode::Shared) => mode == LockMode::Shared,
            None => false,
        }
    }
}

/// Checks each pattern (a name, or a prefix ending in `*`) by the rule
/// for the names it stands for; an empty stem (`*`) stands for all.
fn check_patterns<'p>(
    patterns: impl IntoIterator<Item = &'p String>,
    check: impl Fn(&str) -> Result<(), NameError>,
    refuse: impl Fn(String, NameError) -> GrantsError,
) -> Result<(), GrantsError> {
    for pattern in patterns {
        let stem = pattern.strip_suffix('*').unwrap_or(pattern);
        if !stem.is_empty() {
            check(stem).map_err(|source| refuse(pattern.clone(), source))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_modes() {
        let g = Grants::parse(
            "[datasets]\n\"fafsa_*\" = \"exclusive\"\nreference = \"shared\"\n\"fafsa_locked\" = \"shared\"\n",
            "g.toml",
        )
        .unwrap();
        assert!(g.permits("fafsa_2024", LockMode::Exclusive));
        assert!(g.permits("reference", LockMode::Shared));
        assert!(!g.permits("reference", LockMode::Exclusive));
        assert!(
            !g.permits("fafsa_locked", LockMode::Exclusive),
            "exact entry wins"
        );
        assert!(!g.permits("other", LockMode::Shared));
        assert_eq!(g.limits, Limits::default());
        assert_eq!(g.delegate, None, "no delegation unless granted");
    }

    #[test]
    fn delegation_is_granted_by_name_or_prefix() {
        let g = Grants::parse(
            "[delegate]\nagents = [\"scorer-*\", \"appeals\"]\ndepth = 2\n",
            "g.toml",
        )
        .unwrap();
        let d = g.delegate.unwrap();
        assert!(d.names("scorer-a") && d.names("appeals"));
        assert!(!d.names("appeals-2") && !d.names("scorer"));
        assert_eq!((d.depth, d.children, d.descendants), (2, 100, 1000));
    }

    #[test]
    fn bad_files_name_file_and_key() {
        let cases = [
            ("[limits]\nmemory = 3\n", "memory"),
            ("[datasets]\n\"../x\" = \"shared\"\n", "../x"),
            ("[datasets]\nd = \"always\"\n", "always"),
            ("colour = 1\n", "colour"),
            ("[limits]\nfuel = 0\n", "limits.fuel"),
            ("[limits]\nmemory_mib = 999999\n", "exceeds"),
            (
                "[limits]\nfuel = -1\n",
                "line 2, column 8: invalid value: integer `-1`",
            ),
            (
                "[limits]\nwindow_secs = 9223372036854775807\n",
                "limits.window_secs = 9223372036854775807 exceeds the host's maximum of 86400",
            ),
            ("[limits]\nfuel = 18446744073709551615\n", "fuel"),
            ("[limits]\nmax_log_kib = 99999999\n", "limits.max_log_kib"),
            ("[delegate]\ndepth = 2\n", "missing field `agents`"),
            (
                "[delegate]\nagents = [\"a\"]\ndepth = 17\n",
                "delegate.depth = 17 exceeds the host's maximum of 16",
            ),
            (
                "[delegate]\nagents = [\"a\"]\nchildren = 0\n",
                "delegate.children must be",
            ),
            (
                "[delegate]\nagents = [\"../x\"]\n",
                "delegate agent pattern \"../x\"",
            ),
            (
                "[delegate]\nagents = []\nfanout = 3\n",
                "unknown field `fanout`",
            ),
        ];
        for (text, needle) in cases {
            let err = Grants::parse(text, "p.toml").unwrap_err().to_string();
            assert!(err.starts_with("p.toml"), "{err}");
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    /// A grants file is named with its size and digest, never quoted.
    #[test]
    fn a_refused_file_is_fingerprinted_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        let text = "[datasets]\nMARKER-SECRET = \"sometimes\"\n";
        std::fs::write(&path, text).unwrap();
        let err = Grants::load(&path, &ReadCaps::default())
            .unwrap_err()
            .to_string();
        let digest = runway_audit::hex::encode(&runway_audit::sha256(text));
        assert!(
            err.ends_with(&format!("({} bytes, sha256 {digest})", text.len())),
            "{err}"
        );
        assert!(
            err.contains("line 2, column 17: unknown variant `sometimes`"),
            "{err}"
        );
        assert!(!err.contains("MARKER-SECRET"), "{err}");
        let missing = Grants::load(&dir.path().join("none.toml"), &ReadCaps::default());
        assert!(matches!(missing, Err(GrantsError::Missing { .. })));
    }
}
