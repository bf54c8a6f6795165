//! Signed plugins: an author signs a component, an operator who asks for it
//! (`--require-signed`) loads only components signed by a trusted author.
//!
//! The signature sits beside the component as `NAME.wasm.sig`: a C2SP
//! signed note (the format of the audit checkpoints) over
//!
//! ```text
//! runway plugin v1
//! sha256 <hex digest of NAME.wasm>
//! ```
//!
//! signed with the author's Ed25519 key (`runway keygen`, `runway sign`).
//! The name is not signed, so an operator may deploy the component under
//! any name; the digest pins the bytes.

use std::path::{Path, PathBuf};

use runway_audit::note::Note;
use runway_audit::render::excerpt;
use runway_audit::{Hash, PrivateKey, PublicKey};
use thiserror::Error;

use crate::files::{self, FileError, FileKind, ReadCaps};

/// Which plugins may load.
#[derive(Clone, Debug, Default)]
pub struct PluginPolicy {
    /// Authors whose signature admits a plugin; with [`Self::require_signed`]
    /// unset they are not consulted.
    pub authors: Vec<PublicKey>,
    /// Refuse any plugin without a good signature by one of `authors`.
    pub require_signed: bool,
}

/// Why a plugin's signature does not admit it.
#[derive(Debug, Error)]
pub enum SignatureError {
    #[error("{path}: missing (signatures are required)")]
    Missing { path: String },
    #[error("signature file {0}")]
    File(FileError),
    #[error("{path}: not a signed note: {why}")]
    Malformed { path: String, why: String },
    #[error("{path}: signs digest {signed}, but the component's digest is {actual}")]
    WrongDigest {
        path: String,
        signed: String,
        actual: String,
    },
    #[error("{path}: no good signature by a trusted author (signed by: {by})")]
    Untrusted { path: String, by: String },
}

/// The text an author signs for a component with this digest.
pub fn signed_text(digest: &Hash) -> String {
    format!(
        "runway plugin v1\nsha256 {}\n",
        runway_audit::hex::encode(digest)
    )
}

/// `NAME.wasm` → `NAME.wasm.sig`.
pub fn signature_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Signs a component's digest; the note to store as `NAME.wasm.sig`.
pub fn sign(digest: &Hash, key: &PrivateKey) -> Result<String, runway_audit::note::NoteError> {
    Note::sign(&signed_text(digest), std::slice::from_ref(key)).map(|n| n.to_string())
}

impl PluginPolicy {
    /// Admits the component at `wasm` with `digest`, or says why not; the
    /// signature is read through [`crate::files`]. Admitted for a good
    /// signature: who signed it (`name+id`).
    pub fn check(
        &self,
        wasm: &Path,
        digest: &Hash,
        caps: &ReadCaps,
    ) -> Result<Option<String>, SignatureError> {
        if !self.require_signed {
            return Ok(None);
        }
        let sig = signature_path(wasm);
        let path = sig.display().to_string();
        let Some(bytes) =
            files::read_if_present(&sig, FileKind::Key, caps).map_err(SignatureError::File)?
        else {
            return Err(SignatureError::Missing { path });
        };
        let text = String::from_utf8(bytes).map_err(|_| SignatureError::Malformed {
            path: path.clone(),
            why: "not UTF-8".to_string(),
        })?;
        let note = Note::parse(&text).map_err(|e| SignatureError::Malformed {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if note.text != signed_text(digest) {
            let signed = note
                .text
                .lines()
                .find_map(|l| l.strip_prefix("sha256 "))
                // A digest is 64 hex digits: never quote more of the file.
                .map_or_else(|| "?".to_string(), |d| excerpt(d, 64));
            return Err(SignatureError::WrongDigest {
                path,
                signed,
                actual: runway_audit::hex::encode(digest),
            });
        }
        let good = note.signatures.iter().find(|s| {
            self.authors.iter().any(|a| {
                a.name() == s.name
                    && a.id() == s.id
                    && s.ed25519()
                        .is_some_and(|sig| a.verifies(note.text.as_bytes(), &sig))
            })
        });
        if let Some(good) = good {
            return Ok(Some(good.label()));
        }
        let by: Vec<String> = note.signatures.iter().map(|s| s.label()).collect();
        Err(SignatureError::Untrusted {
            path,
            by: by.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_good_signatures_by_trusted_authors() {
        let caps = ReadCaps::default();
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("agent.wasm");
        std::fs::write(&wasm, b"component bytes").unwrap();
        let digest = runway_audit::sha256(b"component bytes");
        let author = PrivateKey::generate("alice").unwrap();
        let stranger = PrivateKey::generate("mallory").unwrap();
        let policy = PluginPolicy {
            authors: vec![author.public()],
            require_signed: true,
        };
        assert!(matches!(
            policy.check(&wasm, &digest, &caps),
            Err(SignatureError::Missing { .. })
        ));
        std::fs::write(signature_path(&wasm), sign(&digest, &stranger).unwrap()).unwrap();
        let err = policy.check(&wasm, &digest, &caps).unwrap_err().to_string();
        assert!(
            err.contains("no good signature by a trusted author (signed by: mallory+"),
            "{err}"
        );
        std::fs::write(signature_path(&wasm), sign(&digest, &author).unwrap()).unwrap();
        let signer = policy.check(&wasm, &digest, &caps).unwrap().unwrap();
        assert!(signer.starts_with("alice+"), "{signer}");
        // A changed component no longer matches its signature.
        let other = runway_audit::sha256(b"changed bytes");
        assert!(matches!(
            policy.check(&wasm, &other, &caps),
            Err(SignatureError::WrongDigest { .. })
        ));
        // A flipped bit in the signature is caught.
        let mut text = sign(&digest, &author).unwrap().into_bytes();
        let n = text.len();
        text[n - 6] ^= 1;
        std::fs::write(signature_path(&wasm), &text).unwrap();
        assert!(policy.check(&wasm, &digest, &caps).is_err());
        // Without --require-signed nothing is checked.
        assert!(PluginPolicy::default().check(&wasm, &other, &caps).is_ok());
    }
}
