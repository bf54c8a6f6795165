//! The offline verifier: walks the whole audit folder and either returns a
//! [`VerifyReport`] or names the first bad record or checkpoint in a
//! [`VerifyError`].
//!
//! Checked, in this order: every checkpoint in `checkpoints`, the latest in
//! `checkpoint` and any the auditor kept (syntax, one origin, signatures by
//! trusted keys valid at their size, sizes never going down, never two roots
//! for one size, the latest not ahead of `checkpoints`); then, in log order,
//! each segment header (CRC, magic, version, the first seq in its name,
//! origin, continuity with the previous segment), each frame's length and
//! CRC32C, strict canonical decoding, sequence numbers contiguous from 0,
//! the `prev` chain, each dataset's `prev_dataset` chain, time never going
//! backwards, and the Merkle root at every checkpoint's size; finally that
//! the log reaches the largest checkpoint's size.
//!
//! An incomplete frame (or segment header) at the very end of the last
//! segment is what a crash mid-write leaves; beyond the last checkpoint it
//! is reported as [`VerifyReport::torn_tail`] rather than as tampering, and
//! the records after the last checkpoint as unsigned.
//!
//! With trusted keys, an unsigned log is not a verified one: some signed
//! checkpoint must cover the log, and at most
//! [`VerifyOptions::allow_unsigned_tail`] records may follow the last one
//! (by default [`DEFAULT_MAX_UNSIGNED`], the most the writer ever leaves
//! durable but unsigned). Otherwise deleting the checkpoint files and then
//! cutting records would go unnoticed.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;

use serde::Serialize;

pub use crate::check_pool::MAX_DEFAULT_THREADS;
use crate::check_pool::thread_count;
use crate::findings::{TornTail, VerifyError, VerifyErrorKind};
use crate::hex;
use crate::reader::{TailMode, walk};
use crate::tree_check::{CheckpointSources, TreeCheck, load_checkpoints};
use crate::trust::Trust;
use crate::writer::DEFAULT_MAX_UNSIGNED;

/// What a successful verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The log's origin, from the segment headers (`None` for an empty folder).
    pub origin: Option<String>,
    /// Number of records (also the next sequence number).
    pub records: u64,
    /// Number of segment files with an intact header.
    pub segments: usize,
    /// Number of distinct datasets with records.
    pub datasets: usize,
    /// Hex leaf hash of the last record (zeros when there is none).
    pub last_hash: String,
    /// Hex Merkle root over all records.
    pub root: String,
    /// A torn write at the end of the log, not counted as damage.
    pub torn_tail: Option<TornTail>,
    /// Entries in the `checkpoints` file, all checked.
    pub checkpoints: usize,
    /// Whether their signatures were checked against trusted keys.
    pub signatures_checked: bool,
    /// The largest size a checkpoint covers: records below it are signed.
    pub signed_size: u64,
    /// Records after the last checkpoint, not (yet) signed.
    pub unsigned_records: u64,
    /// Trusted keys whose signatures were accepted, as `NAME+KEYID`.
    pub signers: Vec<String>,
    /// An incomplete last entry of the `checkpoints` file: (offset, bytes).
    pub torn_checkpoint: Option<(u64, u64)>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        write!(
            f,
            "{} in {}, {}, last hash {}",
            count(self.records as usize, "record"),
            count(self.segments, "segment"),
            count(self.datasets, "dataset"),
            self.last_hash
        )?;
        if self.checkpoints > 0 {
            let how = if self.signatures_checked {
                format!("signed by {}", self.signers.join(", "))
            } else {
                "signatures not checked".to_owned()
            };
            write!(
                f,
                "; {} checkpoints up to size {} ({how})",
                self.checkpoints, self.signed_size
            )?;
        }
        if self.unsigned_records > 0 {
            write!(f, "; unsigned tail: {} records", self.unsigned_records)?;
        }
        if let Some(torn) = &self.torn_tail {
            write!(f, "; torn tail: {torn}")?;
        }
        if let Some((offset, bytes)) = self.torn_checkpoint {
            write!(f, "; torn checkpoint entry: {bytes} bytes at {offset}")?;
        }
        Ok(())
    }
}

/// What an auditor verifies with.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The keys checkpoints must be signed by; `None` checks everything but
    /// signatures (and accepts a log no checkpoint covers).
    pub trust: Option<Trust>,
    /// Checkpoints the auditor kept from earlier, as (name, file bytes): the
    /// log must still contain what they cover.
    pub kept_checkpoints: Vec<(String, Vec<u8>)>,
    /// With `trust`: the most records allowed after the last signed
    /// checkpoint. Default [`DEFAULT_MAX_UNSIGNED`].
    pub allow_unsigned_tail: u64,
    /// Threads that check records (CRC, decoding, leaf hash) while this
    /// one links them in order; `None`: one per core, at most
    /// [`MAX_DEFAULT_THREADS`]. The result, and the first error, are the
    /// same for any number.
    pub threads: Option<NonZeroUsize>,
}

impl Default for VerifyOptions {
    /// No trust, no kept checkpoints, the writer's unsigned-tail bound, a
    /// thread per core.
    fn default() -> VerifyOptions {
        VerifyOptions {
            trust: None,
            kept_checkpoints: Vec::new(),
            allow_unsigned_tail: DEFAULT_MAX_UNSIGNED,
            threads: None,
        }
    }
}

impl From<Trust> for VerifyOptions {
    /// Checking signatures against `trust`, with no kept checkpoints.
    fn from(trust: Trust) -> VerifyOptions {
        VerifyOptions {
            trust: Some(trust),
            ..VerifyOptions::default()
        }
    }
}

/// Verifies the audit folder `dir` end to end, except checkpoint signatures
/// (see [`verify_with`]).
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    verify_with(dir, &VerifyOptions::default())
}

/// Verifies the audit folder `dir` end to end, checkpoint signatures
/// against `options.trust`.
pub fn verify_with(dir: &Path, options: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let sources = CheckpointSources {
        trust: options.trust.as_ref(),
        kept: &options.kept_checkpoints,
    };
    let loaded = load_checkpoints(dir, &sources)?;
    let mut tree = TreeCheck::new(&loaded);
    tree.check_empty()?;
    let threads = thread_count(options.threads);
    let end = walk(dir, TailMode::Verify, threads, Some(&mut tree), |_, _| {
        Ok(())
    })?;
    if let Some(origin) = &end.origin {
        loaded.check_origin(origin)?;
    }
    let records = end.chain.next_seq;
    tree.finish(records)?;
    let signed_size = loaded.signed_size();
    if options.trust.is_some() {
        check_signed_cover(records, signed_size, options.allow_unsigned_tail)?;
    }
    Ok(VerifyReport {
        origin: end.origin,
        records,
        segments: end.segments,
        datasets: end.chain.dataset_count(),
        last_hash: hex::encode(&end.chain.last_hash),
        root: hex::encode(&tree.root()),
        torn_tail: end.torn_tail,
        checkpoints: loaded.entries(),
        signatures_checked: options.trust.is_some(),
        signed_size,
        unsigned_records: records - signed_size,
        signers: loaded.signers(),
        torn_checkpoint: loaded.torn,
    })
}

/// With trusted keys: a signed checkpoint covers the log, and no more than
/// `allowed` records follow the largest one.
fn check_signed_cover(records: u64, signed: u64, allowed: u64) -> Result<(), VerifyError> {
    let unsigned = records - signed;
    let kind = if records > 0 && signed == 0 {
        VerifyErrorKind::NoCheckpoint { records }
    } else if unsigned > allowed {
        VerifyErrorKind::UnsignedTail {
            signed,
            records,
            allowed,
        }
    } else {
        return Ok(());
    };
    let mut err = VerifyError::folder(kind);
    err.seq = Some(signed);
    Err(err)
}
