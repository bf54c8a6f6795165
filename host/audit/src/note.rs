//! C2SP signed notes: a text ending in a newline, a blank line, and one or
//! more signature lines `— NAME base64(key id ‖ signature)`.
//!
//! The signature covers the text including its final newline. Parsing is
//! strict: UTF-8, no control characters but newline, the text split from the
//! signatures at the last blank line, canonical base64, at most
//! [`MAX_SIGNATURES`] lines. Whether a signature is good is for the caller
//! to decide against the keys it trusts (see [`trust`](crate::trust)).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::{KeyId, PrivateKey, check_name};

/// Start of every signature line: an em dash and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// More signature lines than this make a note malformed (as in Go's `note`).
pub const MAX_SIGNATURES: usize = 100;

/// A note that parsed; its signatures are not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// One signature line.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name on the line.
    pub name: String,
    /// The key id: the first four bytes of the line's blob.
    pub id: KeyId,
    /// The rest of the blob: 64 bytes for Ed25519.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// `NAME+KEYID`.
    pub fn label(&self) -> String {
        format!("{}+{}", self.name, crate::hex::encode(&self.id))
    }

    /// The Ed25519 signature, if the blob has that size.
    pub fn ed25519(&self) -> Option<[u8; 64]> {
        self.signature.as_slice().try_into().ok()
    }
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSignature({})", self.label())
    }
}

/// Why a note is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed signature line {line}: {why}")]
    BadSignatureLine { line: usize, why: &'static str },
    #[error("cannot sign: {0}")]
    Unsignable(&'static str),
}

impl Note {
    /// Signs `text` (which must end in a newline and hold no blank line)
    /// with every key in `keys`.
    pub fn sign(text: &str, keys: &[PrivateKey]) -> Result<Note, NoteError> {
        check_text(text).map_err(NoteError::Unsignable)?;
        if keys.is_empty() {
            return Err(NoteError::Unsignable("no signing key"));
        }
        let signatures = keys
            .iter()
            .map(|key| NoteSignature {
                name: key.name().to_owned(),
                id: key.public().id(),
                signature: key.sign(text.as_bytes()).to_vec(),
            })
            .collect();
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Parses a signed note strictly.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, block) = (&note[..=split], &note[split + 2..]);
        check_text(text).map_err(NoteError::Malformed)?;
        let lines = block
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("does not end in a newline"))?;
        let mut signatures = Vec::new();
        for (i, line) in lines.split('\n').enumerate() {
            let bad = |why| NoteError::BadSignatureLine { line: i + 1, why };
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or(bad("does not start with an em dash and a space"))?;
            let (name, blob) = rest.split_once(' ').ok_or(bad("no signature"))?;
            check_name(name).map_err(|_| bad("invalid key name"))?;
            let blob = BASE64.decode(blob).map_err(|_| bad("bad base64"))?;
            if blob.len() < 5 {
                return Err(bad("signature too short"));
            }
            let (id, signature) = blob.split_at(4);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: [id[0], id[1], id[2], id[3]],
                signature: signature.to_vec(),
            });
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }
}

impl fmt::Display for Note {
    /// The note as stored: text, blank line, signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)?;
        for sig in &self.signatures {
            let mut blob = sig.id.to_vec();
            blob.extend_from_slice(&sig.signature);
            writeln!(f, "{SIGNATURE_PREFIX}{} {}", sig.name, BASE64.encode(blob))?;
        }
        Ok(())
    }
}

/// A note's text must end in one newline and hold no empty line.
fn check_text(text: &str) -> Result<(), &'static str> {
    if !text.ends_with('\n') {
        return Err("text does not end in a newline");
    }
    if text.starts_with('\n') || text.contains("\n\n") {
        return Err("text holds an empty line");
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("text holds a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{GO_PRIVATE, GO_PUBLIC};
    use crate::keys::{PrivateKey, PublicKey};

    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIGNATURE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_exactly_as_go_sumdb_note() {
        let key = PrivateKey::parse(GO_PRIVATE).expect("key");
        let note = Note::sign(GO_TEXT, &[key]).expect("sign");
        assert_eq!(note.to_string(), format!("{GO_TEXT}\n{GO_SIGNATURE}"));
    }

    #[test]
    fn parses_go_sumdb_note() {
        let note = Note::parse(&format!("{GO_TEXT}\n{GO_SIGNATURE}")).expect("parse");
        assert_eq!(note.text, GO_TEXT);
        let public = PublicKey::parse(GO_PUBLIC).expect("key");
        let [sig] = note.signatures.as_slice() else {
            panic!("one signature")
        };
        assert_eq!((sig.name.as_str(), sig.id), ("PeterNeumann", public.id()));
        let sig = sig.ed25519().expect("ed25519");
        assert!(public.verifies(note.text.as_bytes(), &sig));
        assert!(!public.verifies(b"other", &sig));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let good = format!("{GO_TEXT}\n{GO_SIGNATURE}");
        for bad in [
            GO_TEXT.to_owned(),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{}", GO_SIGNATURE.trim_end()),
            format!(
                "{GO_TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/!!\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann AAAA\n"),
            good.replace("problem,", "problem,\t"),
            format!("\n{good}"),
        ] {
            assert!(Note::parse(&bad).is_err(), "{bad:?}");
        }
        let many = format!("{GO_TEXT}\n{}", GO_SIGNATURE.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            Note::parse(&many),
            Err(NoteError::Malformed("too many signatures"))
        );
    }

    #[test]
    fn a_note_may_carry_several_signatures() {
        let old = crate::keys::tests::test_key("runway", 1);
        let new = crate::keys::tests::test_key("runway", 2);
        let note = Note::sign("a\nb\n", &[old.clone(), new.clone()]).expect("sign");
        let parsed = Note::parse(&note.to_string()).expect("parse");
        assert_eq!(parsed, note);
        for (key, sig) in [old, new].iter().zip(&parsed.signatures) {
            assert_eq!(sig.id, key.public().id());
            assert!(
                key.public()
                    .verifies(b"a\nb\n", &sig.ed25519().expect("64"))
            );
        }
    }
}
