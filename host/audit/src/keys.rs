//! Ed25519 keys of the log, named and identified as in C2SP signed-note, and
//! their text files.
//!
//! A key has a name (no spaces, no `+`) and a key id: the first four bytes of
//! `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`, 0x01 being Ed25519's
//! signature type. The files use the encodings of Go's `sumdb/note`, so the
//! ecosystem's tools read them:
//!
//! ```text
//! NAME.pub  NAME+KEYID+base64(0x01 ‖ public key)
//! NAME.key  PRIVATE+KEY+NAME+KEYID+base64(0x01 ‖ 32-byte seed)
//! ```

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _};
use sha2::{Digest, Sha256};

use crate::segment::sync_dir;

/// Signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// Prefix of a private key's text.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// The four-byte key id of signed-note.
pub type KeyId = [u8; 4];

/// Why a key could not be made, read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key name {0:?}: need a non-empty name without spaces or '+'")]
    InvalidName(String),
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("{0} already exists; not overwriting a key")]
    Exists(PathBuf),
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("{path}: {error}")]
    InFile { path: PathBuf, error: Box<KeyError> },
}

/// A key's public half, the one auditors hold.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    id: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

/// A key's private half, the one the host signs with.
#[derive(Clone)]
pub struct PrivateKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

/// Checks a key name as signed-note requires.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(KeyError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// The signed-note key id of an Ed25519 key.
pub fn key_id(name: &str, public: &[u8; 32]) -> KeyId {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ED25519])
        .chain_update(public)
        .finalize();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    id
}

impl PublicKey {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// `NAME+KEYID`, how reports name a key.
    pub fn label(&self) -> String {
        format!("{}+{}", self.name, crate::hex::encode(&self.id))
    }

    /// The 32 bytes of the Ed25519 public key.
    pub fn bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` over `message` is this key's (strict Ed25519:
    /// no malleable or small-order encodings).
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }

    /// Parses `NAME+KEYID+base64(0x01 ‖ key)`, checking the id.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let malformed = |why: &str| KeyError::Malformed {
            what: "public key",
            why: why.to_owned(),
        };
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected NAME+KEYID+KEY"));
        };
        check_name(name)?;
        let bytes = typed_key_bytes(key_b64).ok_or_else(|| malformed("bad key bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| malformed("not an Ed25519 public key"))?;
        let public = PublicKey {
            name: name.to_owned(),
            id: key_id(name, &bytes),
            key,
        };
        if id_hex != crate::hex::encode(&public.id) {
            return Err(malformed("key id does not match name and key"));
        }
        Ok(public)
    }

    /// Reads a `.pub` file.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_text(path)?;
        PublicKey::parse(&text).map_err(|e| in_file(path, e))
    }
}

impl fmt::Display for PublicKey {
    /// `NAME+KEYID+base64(0x01 ‖ key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut typed = vec![ED25519];
        typed.extend_from_slice(&self.key.to_bytes());
        write!(f, "{}+{}", self.label(), BASE64.encode(typed))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl PrivateKey {
    /// A new key from the operating system's randomness.
    pub fn generate(name: &str) -> Result<PrivateKey, KeyError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        PrivateKey::from_seed(name, &seed)
    }

    /// The key whose 32-byte Ed25519 seed is `seed`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<PrivateKey, KeyError> {
        check_name(name)?;
        Ok(PrivateKey {
            name: name.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public(&self) -> PublicKey {
        let key = self.key.verifying_key();
        PublicKey {
            name: self.name.clone(),
            id: key_id(&self.name, &key.to_bytes()),
            key,
        }
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// `PRIVATE+KEY+NAME+KEYID+base64(0x01 ‖ seed)`.
    pub fn to_text(&self) -> String {
        let mut typed = vec![ED25519];
        typed.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{}",
            self.public().label(),
            BASE64.encode(typed)
        )
    }

    /// Parses [`to_text`](Self::to_text)'s form, checking the id.
    pub fn parse(text: &str) -> Result<PrivateKey, KeyError> {
        let malformed = |why: &str| KeyError::Malformed {
            what: "private key",
            why: why.to_owned(),
        };
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or_else(|| malformed("expected PRIVATE+KEY+NAME+KEYID+KEY"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected PRIVATE+KEY+NAME+KEYID+KEY"));
        };
        let seed = typed_key_bytes(key_b64).ok_or_else(|| malformed("bad key bytes"))?;
        let key = PrivateKey::from_seed(name, &seed)?;
        if id_hex != crate::hex::encode(&key.public().id) {
            return Err(malformed("key id does not match name and key"));
        }
        Ok(key)
    }

    /// Reads a `.key` file.
    pub fn read(path: &Path) -> Result<PrivateKey, KeyError> {
        let text = read_text(path)?;
        PrivateKey::parse(&text).map_err(|e| in_file(path, e))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public().label())
    }
}

/// The files a new key pair was written to.
#[derive(Clone, Debug)]
pub struct KeyFiles {
    pub private: PathBuf,
    pub public: PathBuf,
}

/// The private key file `NAME.key` in `dir` (a `/` in the name, as in
/// `example.com/log`, becomes `_`).
pub fn private_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.key", file_stem(name)))
}

/// The public key file `NAME.pub` in `dir`.
pub fn public_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.pub", file_stem(name)))
}

/// A key name as a file name.
fn file_stem(name: &str) -> String {
    name.replace(['/', '\\'], "_")
}

/// Writes `key` as `NAME.key` (owner-only) and `NAME.pub` into `dir`,
/// creating it; never overwrites. Both files and the folder are synced.
pub fn write_key_pair(dir: &Path, key: &PrivateKey) -> Result<KeyFiles, KeyError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |error| KeyError::Io {
            action,
            path,
            error,
        }
    };
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let files = KeyFiles {
        private: private_key_path(dir, key.name()),
        public: public_key_path(dir, key.name()),
    };
    for path in [&files.private, &files.public] {
        if path.exists() {
            return Err(KeyError::Exists(path.clone()));
        }
    }
    write_new(&files.private, &key.to_text(), true).map_err(io("write", &files.private))?;
    write_new(&files.public, &key.public().to_string(), false)
        .map_err(io("write", &files.public))?;
    sync_dir(dir).map_err(io("fsync", dir))?;
    Ok(files)
}

/// Creates `path` (failing if it exists) holding `text` and a newline, synced.
fn write_new(path: &Path, text: &str, private: bool) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|error| KeyError::Io {
        action: "read",
        path: path.to_owned(),
        error,
    })
}

fn in_file(path: &Path, error: KeyError) -> KeyError {
    KeyError::InFile {
        path: path.to_owned(),
        error: Box::new(error),
    }
}

/// The 32 key bytes of `base64(0x01 ‖ key)`, strictly decoded.
fn typed_key_bytes(text: &str) -> Option<[u8; 32]> {
    let bytes = BASE64.decode(text).ok()?;
    let (&kind, key) = bytes.split_first()?;
    if kind != ED25519 {
        return None;
    }
    key.try_into().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Go's `sumdb/note` example key pair.
    pub(crate) const GO_PRIVATE: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    pub(crate) const GO_PUBLIC: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    /// A fixed test key.
    pub(crate) fn test_key(name: &str, n: u8) -> PrivateKey {
        PrivateKey::from_seed(name, &[n; 32]).expect("key")
    }

    #[test]
    fn go_example_keys_round_trip() {
        let private = PrivateKey::parse(GO_PRIVATE).expect("private");
        assert_eq!(private.to_text(), GO_PRIVATE);
        let public = PublicKey::parse(GO_PUBLIC).expect("public");
        assert_eq!(private.public(), public);
        assert_eq!(public.to_string(), GO_PUBLIC);
        assert_eq!(public.label(), "PeterNeumann+c74f20a3");
        assert_eq!(public.id(), [0xc7, 0x4f, 0x20, 0xa3]);
    }

    #[test]
    fn mangled_keys_are_refused() {
        for bad in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AQpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
            "PeterNeumann+c74f20a3",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "",
        ] {
            assert!(PublicKey::parse(bad).is_err(), "{bad:?}");
        }
        let mut private = GO_PRIVATE.to_owned();
        private.replace_range(12..13, "p");
        assert!(PrivateKey::parse(&private).is_err());
        assert!(PrivateKey::parse(GO_PUBLIC).is_err());
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let key = test_key("runway", 1);
        let sig = key.sign(b"hello");
        assert!(key.public().verifies(b"hello", &sig));
        assert!(!key.public().verifies(b"hellp", &sig));
        assert!(!test_key("runway", 2).public().verifies(b"hello", &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!key.public().verifies(b"hello", &flipped));
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "a b", "a+b", "a\nb", "tab\t"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("runway.example/audit").expect("valid");
    }

    #[test]
    fn key_pairs_are_written_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = PrivateKey::generate("runway").expect("generate");
        let files = write_key_pair(dir.path(), &key).expect("write");
        let slashed = PrivateKey::generate("example.com/log").expect("generate");
        let slashed = write_key_pair(dir.path(), &slashed).expect("write");
        assert!(slashed.public.ends_with("example.com_log.pub"));
        assert_eq!(
            PrivateKey::read(&files.private).expect("read").to_text(),
            key.to_text()
        );
        assert_eq!(PublicKey::read(&files.public).expect("read"), key.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&files.private)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            write_key_pair(dir.path(), &key),
            Err(KeyError::Exists(_))
        ));
        assert_ne!(
            PrivateKey::generate("runway").expect("generate").to_text(),
            key.to_text()
        );
    }
}
