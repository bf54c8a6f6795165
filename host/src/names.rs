//! Dataset and key names: what is allowed, and why.
//!
//! Names come from plan files and from guests, so they are hostile input.
//! A dataset name is one path component: ASCII letters, digits, `_`, `-`
//! and `.`, not starting with `.`, at most [`MAX_DATASET`] bytes. A key is
//! one or more such segments joined by `/` (so `app/000017` is fine), at most
//! [`MAX_KEY`] bytes. Nothing else passes: no `..`, no absolute paths, no
//! empty segments, no NUL or control bytes, no backslashes.
//!
//! Names reach the dataset store only as bound parameters: a name is an
//! identity there, never a path. So `..` *inside* a name (`fafsa_..x`) is
//! allowed and harmless; only a segment *starting* with `.` is refused.
//!
//! Runway ids, agent (plugin) names and token names follow the dataset
//! rules; each has its own check, so an error says which kind of name it is.

use thiserror::Error;

/// Longest dataset name accepted, in bytes.
pub const MAX_DATASET: usize = 64;
/// Longest key accepted, in bytes.
pub const MAX_KEY: usize = 200;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} bytes long (at most {max})")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} {name:?} has an empty segment or a segment starting with '.'")]
    BadSegment { what: &'static str, name: String },
    #[error(
        "{what} {name:?} contains {found:?}; allowed are ASCII letters, digits, '_', '-', '.'{slash}"
    )]
    BadChar {
        what: &'static str,
        name: String,
        found: char,
        slash: &'static str,
    },
}

/// Checks a dataset name.
pub fn check_dataset(name: &str) -> Result<(), NameError> {
    check(name, "dataset name", MAX_DATASET, false)
}

/// Checks a runway id (in a plan, in `after`, or asked for by a client).
pub fn check_runway_id(id: &str) -> Result<(), NameError> {
    check(id, "runway id", MAX_DATASET, false)
}

/// Checks an agent's name: a plugin's file stem, and what manifests name.
pub fn check_agent(name: &str) -> Result<(), NameError> {
    check(name, "agent name", MAX_DATASET, false)
}

/// Whether `pattern` — a name, or a prefix ending in `*` — stands for
/// `name` (grants name datasets, agents and topics so).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => name.starts_with(stem),
        None => pattern == name,
    }
}

/// Longest event topic (`events.publish`, a trigger's `on.topic`).
pub const MAX_TOPIC: usize = 128;

/// Checks an event topic (`applications.flagged`).
pub fn check_topic(topic: &str) -> Result<(), NameError> {
    check(topic, "topic", MAX_TOPIC, false)
}

/// Checks the name of an API token.
pub fn check_token_name(name: &str) -> Result<(), NameError> {
    check(name, "token name", MAX_DATASET, false)
}

/// Checks a record key.
pub fn check_key(key: &str) -> Result<(), NameError> {
    check(key, "key", MAX_KEY, true)
}

/// Checks a key prefix for listing: like a key, but may be empty or end in `/`.
pub fn check_prefix(prefix: &str) -> Result<(), NameError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    check(body, "key prefix", MAX_KEY, true)
}

fn check(name: &str, what: &'static str, max: usize, slashes: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            what,
            len: name.len(),
            max,
        });
    }
    if let Some(found) = name.chars().find(|&c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || (slashes && c == '/'))
    }) {
        return Err(NameError::BadChar {
            what,
            name: name.escape_debug().to_string(),
            found,
            slash: if slashes {
                ", '/' between segments"
            } else {
                ""
            },
        });
    }
    if name
        .split('/')
        .any(|seg| seg.is_empty() || seg.starts_with('.'))
    {
        return Err(NameError::BadSegment {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        check_dataset("fafsa_2024_03_16").unwrap();
        check_dataset("a.b-c").unwrap();
        check_key("app/000017").unwrap();
        check_key("x").unwrap();
        check_prefix("").unwrap();
        check_prefix("app/").unwrap();
    }

    #[test]
    fn dots_inside_a_name_are_allowed_and_errors_name_the_kind() {
        check_dataset("fafsa_..x").unwrap();
        check_key("a/b..c").unwrap();
        assert!(check_dataset("a/..").is_err());
        let kinds = [
            (check_runway_id("a b").unwrap_err(), "runway id \"a b\""),
            (check_agent("").unwrap_err(), "agent name is empty"),
            (check_dataset(".x").unwrap_err(), "dataset name \".x\""),
            (check_token_name("a/b").unwrap_err(), "token name \"a/b\""),
            (check_key("a//b").unwrap_err(), "key \"a//b\""),
        ];
        for (error, says) in kinds {
            assert!(error.to_string().starts_with(says), "{error}");
        }
    }

    #[test]
    fn refuses_escapes_and_junk() {
        for bad in [
            "", "..", ".", "../x", "/etc", "a/b", "a\0b", "a\\b", ".hidden", "a b",
        ] {
            assert!(check_dataset(bad).is_err(), "{bad:?} accepted as dataset");
        }
        for bad in [
            "", "..", "a/../b", "/abs", "a//b", "a/", "a\0", "a:b", "é", ".x/y",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted as key");
        }
        assert!(matches!(
            check_dataset(&"d".repeat(MAX_DATASET + 1)),
            Err(NameError::TooLong { .. })
        ));
        assert!(check_key(&"k".repeat(MAX_KEY + 1)).is_err());
    }
}
