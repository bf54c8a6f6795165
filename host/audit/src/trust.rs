//! The keys an auditor trusts, each for a range of tree sizes, and the
//! check of a checkpoint's signatures against them.
//!
//! A trust file is TOML:
//!
//! ```toml
//! [[key]]
//! public = "runway+1f2e3d4c+AbC..."   # the contents of NAME.pub
//! until_size = 5000                   # optional: the largest size it may sign
//!
//! [[key]]
//! public = "runway-2025+9a8b7c6d+AdE..."
//! from_size = 4800                    # optional: the smallest size it may sign
//! ```
//!
//! A checkpoint is accepted when at least one signature by a trusted key
//! verifies and the key is valid at the checkpoint's size. Signatures by
//! keys the file does not name are ignored (C2SP signed-note); a signature
//! by a trusted key that does not verify rejects the checkpoint outright.
//! A bare `.pub` file works as a trust file of one key valid at every size.

use std::fmt;
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::checkpoint::SignedCheckpoint;
use crate::keys::{KeyError, PublicKey};

/// One trusted key and the tree sizes it may sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub key: PublicKey,
    /// Smallest tree size this key may sign.
    pub from_size: u64,
    /// Largest tree size this key may sign; `None` for no limit.
    pub until_size: Option<u64>,
}

impl TrustedKey {
    /// Whether the key may sign a checkpoint of `size`.
    pub fn valid_at(&self, size: u64) -> bool {
        size >= self.from_size && self.until_size.is_none_or(|until| size <= until)
    }

    /// `sizes 0..=5000`, `sizes 4800..`.
    pub fn range(&self) -> String {
        match self.until_size {
            Some(until) => format!("sizes {}..={until}", self.from_size),
            None => format!("sizes {}..", self.from_size),
        }
    }
}

/// The keys an auditor trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    pub keys: Vec<TrustedKey>,
}

/// Why a trust file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read trust file {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("trust file {path}: {why}")]
    Invalid { path: String, why: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Why no signature on a checkpoint is one the auditor can accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("signature by {key} does not verify")]
    BadSignature { key: String },
    #[error("signed only by keys outside the trust file ({})", .keys.join(", "))]
    UnknownKeys { keys: Vec<String> },
    #[error("signed by {key}, which is trusted for {range} only, not for size {size}")]
    OutsideValidity {
        key: String,
        range: String,
        size: u64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustToml {
    #[serde(default)]
    key: Vec<KeyToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    public: String,
    #[serde(default)]
    from_size: u64,
    until_size: Option<u64>,
}

impl Trust {
    /// One key, valid at every size.
    pub fn single(key: PublicKey) -> Trust {
        Trust {
            keys: vec![TrustedKey {
                key,
                from_size: 0,
                until_size: None,
            }],
        }
    }

    /// Parses a trust file's text: TOML, or a single public key line.
    pub fn parse(text: &str, path: &str) -> Result<Trust, TrustError> {
        let invalid = |why: String| TrustError::Invalid {
            path: path.to_owned(),
            why,
        };
        if let Ok(key) = PublicKey::parse(text) {
            return Ok(Trust::single(key));
        }
        let parsed: TrustToml = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut keys = Vec::new();
        for entry in parsed.key {
            let key = PublicKey::parse(&entry.public).map_err(|e| invalid(e.to_string()))?;
            if entry
                .until_size
                .is_some_and(|until| until < entry.from_size)
            {
                return Err(invalid(format!(
                    "{}: until_size is below from_size",
                    key.label()
                )));
            }
            keys.push(TrustedKey {
                key,
                from_size: entry.from_size,
                until_size: entry.until_size,
            });
        }
        if keys.is_empty() {
            return Err(invalid("no [[key]] entries".into()));
        }
        Ok(Trust { keys })
    }

    /// Reads a trust file or a `.pub` file.
    pub fn read(path: &Path) -> Result<Trust, TrustError> {
        let text = fs::read_to_string(path).map_err(|error| TrustError::Io {
            path: path.display().to_string(),
            error,
        })?;
        Trust::parse(&text, &path.display().to_string())
    }

    /// The labels of the trusted keys whose signatures on `signed` verify
    /// and who may sign its size; or why there is none.
    pub fn check(&self, signed: &SignedCheckpoint) -> Result<Vec<String>, SignatureProblem> {
        let message = signed.note.text.as_bytes();
        let size = signed.checkpoint.size;
        let mut good = Vec::new();
        let mut outside = None;
        let mut unknown = Vec::new();
        for sig in &signed.note.signatures {
            let matching: Vec<&TrustedKey> = self
                .keys
                .iter()
                .filter(|t| t.key.name() == sig.name && t.key.id() == sig.id)
                .collect();
            if matching.is_empty() {
                unknown.push(sig.label());
                continue;
            }
            let signers: Vec<&TrustedKey> = match sig.ed25519() {
                Some(bytes) => matching
                    .into_iter()
                    .filter(|t| t.key.verifies(message, &bytes))
                    .collect(),
                None => Vec::new(),
            };
            if signers.is_empty() {
                return Err(SignatureProblem::BadSignature { key: sig.label() });
            }
            match signers.iter().find(|t| t.valid_at(size)) {
                Some(trusted) => good.push(trusted.key.label()),
                None => {
                    let ranges: Vec<String> = signers.iter().map(|t| t.range()).collect();
                    outside.get_or_insert(SignatureProblem::OutsideValidity {
                        key: sig.label(),
                        range: ranges.join(", "),
                        size,
                    });
                }
            }
        }
        if !good.is_empty() {
            return Ok(good);
        }
        Err(outside.unwrap_or(SignatureProblem::UnknownKeys { keys: unknown }))
    }
}

impl fmt::Display for Trust {
    /// `runway+1f2e3d4c (sizes 0..), ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|t| format!("{} ({})", t.key.label(), t.range()))
            .collect();
        f.write_str(&keys.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::keys::tests::test_key;

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint {
            origin: "o".into(),
            size,
            root: [1; 32],
            extensions: Vec::new(),
        }
    }

    fn trust_file(entries: &[(u8, Option<u64>, Option<u64>)]) -> String {
        let mut text = String::new();
        for (n, from, until) in entries {
            text.push_str(&format!(
                "[[key]]\npublic = \"{}\"\n",
                test_key("runway", *n).public()
            ));
            if let Some(from) = from {
                text.push_str(&format!("from_size = {from}\n"));
            }
            if let Some(until) = until {
                text.push_str(&format!("until_size = {until}\n"));
            }
        }
        text
    }

    #[test]
    fn rotation_with_overlapping_ranges() {
        let trust = Trust::parse(
            &trust_file(&[(1, None, Some(100)), (2, Some(90), None)]),
            "t",
        )
        .expect("trust");
        let (old, new) = (test_key("runway", 1), test_key("runway", 2));
        let sign = |size, keys: &[_]| SignedCheckpoint::sign(checkpoint(size), keys).expect("sign");

        assert!(trust.check(&sign(50, std::slice::from_ref(&old))).is_ok());
        assert!(trust.check(&sign(95, &[old.clone(), new.clone()])).is_ok());
        assert!(trust.check(&sign(500, std::slice::from_ref(&new))).is_ok());
        // Old key after its range, alone: refused. With the new key: fine.
        assert!(matches!(
            trust.check(&sign(101, std::slice::from_ref(&old))),
            Err(SignatureProblem::OutsideValidity { size: 101, .. })
        ));
        assert!(trust.check(&sign(101, &[old.clone(), new.clone()])).is_ok());
        // New key before its range.
        let err = trust.check(&sign(10, &[new])).expect_err("too early");
        assert!(err.to_string().contains("sizes 90.."), "{err}");
    }

    #[test]
    fn unknown_and_bad_signatures() {
        let trust = Trust::single(test_key("runway", 1).public());
        let stranger = test_key("runway", 9);
        let err = trust
            .check(
                &SignedCheckpoint::sign(checkpoint(5), std::slice::from_ref(&stranger))
                    .expect("sign"),
            )
            .expect_err("unknown");
        assert_eq!(
            err,
            SignatureProblem::UnknownKeys {
                keys: vec![stranger.public().label()]
            }
        );
        let mut signed =
            SignedCheckpoint::sign(checkpoint(5), &[test_key("runway", 1)]).expect("sign");
        signed.note.signatures[0].signature[3] ^= 1;
        assert!(matches!(
            trust.check(&signed),
            Err(SignatureProblem::BadSignature { .. })
        ));
    }

    #[test]
    fn trust_files_are_checked() {
        assert!(Trust::parse("", "t").is_err());
        assert!(Trust::parse("[[key]]\npublic = \"x\"\n", "t").is_err());
        assert!(Trust::parse(&trust_file(&[(1, Some(10), Some(5))]), "t").is_err());
        let typo = trust_file(&[(1, None, None)]).replace("public", "pubic");
        assert!(Trust::parse(&typo, "t").is_err());
        let bare = test_key("runway", 1).public().to_string();
        assert_eq!(
            Trust::parse(&format!("{bare}\n"), "t").expect("bare key"),
            Trust::single(test_key("runway", 1).public())
        );
    }
}
