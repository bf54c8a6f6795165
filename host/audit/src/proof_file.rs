//! A proof as one text file, with the signed checkpoint it is against, so
//! that it can be checked with nothing but a trusted public key.
//!
//! ```text
//! runway audit proof v1
//! inclusion <seq> <tree size>
//! record <base64 of the record's bytes>
//! hash <base64>
//! ...
//!
//! <the signed checkpoint of that tree size>
//! ```
//!
//! A consistency proof has `consistency <old size> <tree size>` and an
//! `old-root <base64>` line instead of the record. The first blank line ends
//! the proof; the signed checkpoint follows as stored.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::checkpoint::{CheckpointSyntax, SignedCheckpoint};
use crate::findings::VerifyError;
use crate::proof::{
    ProofError, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion,
};
use crate::reader::{TailMode, walk};
use crate::record::{Hash, Record, leaf_hash};
use crate::tree_check::{CheckpointSources, TreeCheck, load_checkpoints};
use crate::trust::{SignatureProblem, Trust};

const MAGIC_LINE: &str = "runway audit proof v1";

/// What a proof file proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// `record` (its canonical bytes) is number `seq` of the log.
    Inclusion { seq: u64, record: Vec<u8> },
    /// The log of `old_size` records with root `old_root` is a prefix.
    Consistency { old_size: u64, old_root: Hash },
}

/// A proof and the checkpoint it is against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofFile {
    pub claim: Claim,
    /// The tree size the proof is for: the checkpoint's.
    pub size: u64,
    pub hashes: Vec<Hash>,
    pub checkpoint: SignedCheckpoint,
}

/// Why a proof could not be made or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProofFileError {
    #[error("the audit folder does not verify: {0}")]
    Log(#[from] VerifyError),
    #[error("the log has no checkpoint{}", .0.map(|s| format!(" of size {s}")).unwrap_or_default())]
    NoCheckpoint(Option<u64>),
    #[error("record {seq} is not below the checkpoint's size {size}")]
    NotCovered { seq: u64, size: u64 },
    #[error("malformed proof file: {0}")]
    Malformed(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointSyntax),
    #[error("checkpoint (size {size}): {problem}")]
    Signature {
        size: u64,
        problem: SignatureProblem,
    },
    #[error("the proof is for tree size {proof}, the checkpoint is of size {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("the record in the proof is not a canonical record numbered {seq}")]
    BadRecord { seq: u64 },
    #[error("the old checkpoint (size {size}) does not match the proof's old size and root")]
    OldCheckpointMismatch { size: u64 },
    #[error("proof does not verify: {0}")]
    Proof(#[from] ProofError),
}

/// What a proof that checked out showed.
#[derive(Clone, Debug)]
pub struct CheckedProof {
    /// The record, for an inclusion proof.
    pub record: Option<Record>,
    /// Keys whose signatures on the checkpoint were accepted.
    pub signers: Vec<String>,
}

impl ProofFile {
    /// Proves that record `seq` is in the log, against the latest checkpoint
    /// or the one of size `at`.
    pub fn inclusion(dir: &Path, seq: u64, at: Option<u64>) -> Result<ProofFile, ProofFileError> {
        let LogForProof {
            leaves,
            checkpoint,
            record,
        } = read_log(dir, at, Some(seq))?;
        let size = checkpoint.checkpoint.size;
        let record = record
            .filter(|_| seq < size)
            .ok_or(ProofFileError::NotCovered { seq, size })?;
        Ok(ProofFile {
            claim: Claim::Inclusion { seq, record },
            size,
            hashes: inclusion_proof(&leaves, seq, size)?,
            checkpoint,
        })
    }

    /// Proves that the log of `old_size` records is a prefix of the log at
    /// the latest checkpoint, or the one of size `at`.
    pub fn consistency(
        dir: &Path,
        old_size: u64,
        at: Option<u64>,
    ) -> Result<ProofFile, ProofFileError> {
        let LogForProof {
            leaves, checkpoint, ..
        } = read_log(dir, at, None)?;
        let size = checkpoint.checkpoint.size;
        let hashes = consistency_proof(&leaves, old_size, size)?;
        let old_root = crate::merkle::root_of(&leaves[..old_size as usize]);
        Ok(ProofFile {
            claim: Claim::Consistency { old_size, old_root },
            size,
            hashes,
            checkpoint,
        })
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{MAGIC_LINE}\n");
        match &self.claim {
            Claim::Inclusion { seq, record } => {
                let _ = writeln!(out, "inclusion {seq} {}", self.size);
                let _ = writeln!(out, "record {}", BASE64.encode(record));
            }
            Claim::Consistency { old_size, old_root } => {
                let _ = writeln!(out, "consistency {old_size} {}", self.size);
                let _ = writeln!(out, "old-root {}", BASE64.encode(old_root));
            }
        }
        for hash in &self.hashes {
            let _ = writeln!(out, "hash {}", BASE64.encode(hash));
        }
        out.push('\n');
        out.push_str(&self.checkpoint.to_string());
        out
    }

    /// Parses [`to_text`](Self::to_text)'s form strictly.
    pub fn parse(text: &str) -> Result<ProofFile, ProofFileError> {
        let malformed = |why: &str| ProofFileError::Malformed(why.to_owned());
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let checkpoint = SignedCheckpoint::parse(note)?;
        let mut lines = head.split('\n');
        if lines.next() != Some(MAGIC_LINE) {
            return Err(malformed("does not start with 'runway audit proof v1'"));
        }
        let kind_line = lines.next().ok_or_else(|| malformed("no proof kind"))?;
        let fields: Vec<&str> = kind_line.split(' ').collect();
        let [kind, first, size] = fields.as_slice() else {
            return Err(malformed(
                "expected 'inclusion SEQ SIZE' or 'consistency OLD SIZE'",
            ));
        };
        let number = |text: &str| {
            text.parse::<u64>()
                .ok()
                .filter(|n| n.to_string() == text)
                .ok_or_else(|| malformed("bad number"))
        };
        let (first, size) = (number(first)?, number(size)?);
        let data_line = lines.next().ok_or_else(|| malformed("missing line"))?;
        let claim = match *kind {
            "inclusion" => Claim::Inclusion {
                seq: first,
                record: tagged(data_line, "record").ok_or_else(|| malformed("bad record line"))?,
            },
            "consistency" => Claim::Consistency {
                old_size: first,
                old_root: tagged(data_line, "old-root")
                    .and_then(|b| Hash::try_from(b.as_slice()).ok())
                    .ok_or_else(|| malformed("bad old-root line"))?,
            },
            _ => return Err(malformed("unknown proof kind")),
        };
        let hashes = lines
            .map(|line| {
                tagged(line, "hash")
                    .and_then(|b| Hash::try_from(b.as_slice()).ok())
                    .ok_or_else(|| malformed("bad hash line"))
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        Ok(ProofFile {
            claim,
            size,
            hashes,
            checkpoint,
        })
    }

    /// Checks the proof against its checkpoint (or `checkpoint`, when the
    /// auditor brings one), whose signature must be by a key in `trust`.
    /// For a consistency proof, `old` is a signed checkpoint the auditor
    /// kept of the old size, to hold the old root to.
    pub fn check(
        &self,
        trust: &Trust,
        checkpoint: Option<&SignedCheckpoint>,
        old: Option<&SignedCheckpoint>,
    ) -> Result<CheckedProof, ProofFileError> {
        let signed = checkpoint.unwrap_or(&self.checkpoint);
        let signature = |signed: &SignedCheckpoint| {
            trust
                .check(signed)
                .map_err(|problem| ProofFileError::Signature {
                    size: signed.checkpoint.size,
                    problem,
                })
        };
        let signers = signature(signed)?;
        let head = &signed.checkpoint;
        if head.size != self.size {
            return Err(ProofFileError::SizeMismatch {
                proof: self.size,
                checkpoint: head.size,
            });
        }
        match &self.claim {
            Claim::Inclusion { seq, record } => {
                let decoded = Record::decode(record)
                    .ok()
                    .filter(|r| r.seq == *seq)
                    .ok_or(ProofFileError::BadRecord { seq: *seq })?;
                verify_inclusion(
                    &leaf_hash(record),
                    *seq,
                    self.size,
                    &self.hashes,
                    &head.root,
                )?;
                Ok(CheckedProof {
                    record: Some(decoded),
                    signers,
                })
            }
            Claim::Consistency { old_size, old_root } => {
                if let Some(old) = old {
                    signature(old)?;
                    if old.checkpoint.size != *old_size || old.checkpoint.root != *old_root {
                        return Err(ProofFileError::OldCheckpointMismatch {
                            size: old.checkpoint.size,
                        });
                    }
                }
                verify_consistency(*old_size, self.size, &self.hashes, old_root, &head.root)?;
                Ok(CheckedProof {
                    record: None,
                    signers,
                })
            }
        }
    }
}

/// `TAG base64` → the bytes.
fn tagged(line: &str, tag: &str) -> Option<Vec<u8>> {
    let value = line.strip_prefix(tag)?.strip_prefix(' ')?;
    BASE64.decode(value).ok()
}

/// What a proof is made from.
struct LogForProof {
    /// Every record's leaf hash.
    leaves: Vec<Hash>,
    /// The checkpoint the proof is against.
    checkpoint: SignedCheckpoint,
    /// The bytes of the record asked for.
    record: Option<Vec<u8>>,
}

/// The leaf hashes of the whole log, verified against its checkpoints; the
/// checkpoint of size `at` (or the latest); and the bytes of record `seq`.
fn read_log(dir: &Path, at: Option<u64>, seq: Option<u64>) -> Result<LogForProof, ProofFileError> {
    let sources = CheckpointSources {
        trust: None,
        kept: &[],
    };
    let loaded = load_checkpoints(dir, &sources)?;
    let checkpoint = match at {
        Some(size) => loaded.with_size(size),
        None => loaded.latest.clone().or_else(|| loaded.last_entry.clone()),
    }
    .ok_or(ProofFileError::NoCheckpoint(at))?;
    let mut tree = TreeCheck::new(&loaded);
    tree.check_empty()?;
    let mut leaves = Vec::new();
    let mut record = None;
    walk(dir, TailMode::Verify, 1, Some(&mut tree), |r, leaf| {
        if Some(r.seq) == seq {
            record = r.encode().ok();
        }
        leaves.push(leaf);
        Ok(())
    })?;
    tree.finish(leaves.len() as u64)?;
    Ok(LogForProof {
        leaves,
        checkpoint,
        record,
    })
}
