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

use std::fmt;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::checkpoint::CheckpointSyntax;
use crate::hex;
use crate::reader::{TailMode, walk};
use crate::record::DecodeError;
use crate::tree_check::{CheckpointSources, TreeCheck, load_checkpoints};
use crate::trust::{SignatureProblem, Trust};

/// What is wrong at the place a [`VerifyError`] points to.
#[derive(Debug, thiserror::Error)]
pub enum VerifyErrorKind {
    #[error("I/O error: {0}")]
    Io(io::Error),
    #[error("bad header: {0}")]
    BadHeader(String),
    /// A segment does not start where the previous one ended (a segment is
    /// missing, or the first one is).
    #[error("segment gap: expected first seq {expected}, found {found}")]
    SegmentGap { expected: u64, found: u64 },
    /// A segment's header does not carry the previous segment's last leaf hash.
    #[error("segment prev-hash mismatch")]
    SegmentHashMismatch,
    #[error("frame length {0} exceeds the 16 MiB limit")]
    FrameTooLong(u32),
    #[error("zero-length frame")]
    EmptyFrame,
    /// The frame claims more bytes than the file has left, yet a whole
    /// record fits in what is there: the length was altered, not torn.
    #[error("frame length {claimed} does not match the {actual}-byte record in it")]
    FrameLengthMismatch { claimed: u32, actual: usize },
    #[error("CRC mismatch")]
    CrcMismatch,
    /// A frame is cut short before the end of the log.
    #[error("truncated frame")]
    TruncatedFrame,
    /// The frame's bytes are not one canonical record.
    #[error(transparent)]
    Decode(DecodeError),
    #[error("sequence gap: expected {expected}, found {found}")]
    SequenceGap { expected: u64, found: u64 },
    /// `prev` is not the leaf hash of the record before: that record was
    /// altered, or this one was moved, or records in between were removed.
    #[error("prev-hash mismatch")]
    PrevHashMismatch,
    /// `prev_dataset` is not the leaf hash of the dataset's previous record.
    #[error("prev-dataset-hash mismatch on dataset {dataset:?}")]
    DatasetHashMismatch { dataset: String },
    #[error("time went backwards: {found_ns} ns is before {previous_ns} ns")]
    TimeBackwards { previous_ns: u64, found_ns: u64 },
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(CheckpointSyntax),
    #[error("origin {found:?} is not the log's origin {expected:?}")]
    CheckpointOrigin { expected: String, found: String },
    #[error("{0}")]
    Signature(Box<SignatureProblem>),
    #[error("size {found} is below size {previous} of the checkpoint before it")]
    SizeDecreased { previous: u64, found: u64 },
    #[error("same size {size} as {other} but a different root")]
    ConflictingRoots { size: u64, other: String },
    /// The tree over the log's records differs from the signed one. The
    /// checkpoint before matched, so the first record that differs from what
    /// was signed lies in `from..size`.
    #[error(
        "root does not match the log's tree at size {size}: a record in seq {from}..{size} differs from the one signed"
    )]
    RootMismatch { size: u64, from: u64 },
    #[error(
        "covers {size} records but the log holds only {records}: records {records}..{size} were removed (truncated or rolled back)"
    )]
    MissingRecords { records: u64, size: u64 },
    #[error(
        "is ahead of the checkpoints file, which ends at size {last}: checkpoints were removed"
    )]
    LatestAhead { last: u64 },
}

/// A checkpoint a [`VerifyError`] is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointPlace {
    /// `checkpoints`, `checkpoint`, or the file the auditor supplied.
    pub file: String,
    /// Position in `checkpoints`, from 1; `None` for a file of its own.
    pub index: Option<usize>,
    /// The size it claims, when it parsed.
    pub size: Option<u64>,
}

impl fmt::Display for CheckpointPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "checkpoint #{index} in {}", self.file)?,
            None if self.file == crate::checkpoint::LATEST_FILE => {
                write!(f, "latest checkpoint (file {})", self.file)?;
            }
            None => write!(f, "checkpoint in {}", self.file)?,
        }
        if let Some(size) = self.size {
            write!(f, " (size {size})")?;
        }
        Ok(())
    }
}

/// The first problem found, and where.
#[derive(Debug)]
pub struct VerifyError {
    /// The position of the bad record in the log: the sequence number that
    /// belongs there (a record found there with another number is named in
    /// `kind`). `None` for problems with a segment as a whole.
    pub seq: Option<u64>,
    /// The segment file name; `None` when the folder itself cannot be read.
    pub segment: Option<String>,
    /// Byte offset in the segment of the frame (0 for header problems).
    pub offset: u64,
    /// The checkpoint at fault, for checkpoint problems.
    pub checkpoint: Option<Box<CheckpointPlace>>,
    pub kind: VerifyErrorKind,
}

impl VerifyError {
    /// A problem with a checkpoint.
    pub(crate) fn at_checkpoint(place: &CheckpointPlace, kind: VerifyErrorKind) -> VerifyError {
        VerifyError {
            seq: None,
            segment: None,
            offset: 0,
            checkpoint: Some(Box::new(place.clone())),
            kind,
        }
    }

    /// A problem with the audit folder as a whole.
    pub(crate) fn folder(kind: VerifyErrorKind) -> VerifyError {
        VerifyError {
            seq: None,
            segment: None,
            offset: 0,
            checkpoint: None,
            kind,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(place) = &self.checkpoint {
            return write!(f, "{place}: {}", self.kind);
        }
        match (&self.seq, &self.segment) {
            (Some(seq), Some(segment)) => {
                write!(
                    f,
                    "record {seq} ({segment} @ {}): {}",
                    self.offset, self.kind
                )
            }
            (None, Some(segment)) => write!(f, "{segment} @ {}: {}", self.offset, self.kind),
            (_, None) => write!(f, "audit folder: {}", self.kind),
        }
    }
}

impl std::error::Error for VerifyError {}

/// How a torn tail was recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TornKind {
    /// The last segment ends inside its header (crash while creating it):
    /// what is there is the start of the header the log expects.
    IncompleteHeader,
    /// The last segment ends inside a frame.
    IncompleteFrame,
    /// The last segment ends in zeros where a frame should start (the file
    /// grew but the data never reached the disk).
    ZeroFill,
    /// The last frame, which ends exactly at the end of the file, fails its
    /// CRC and its bytes are not a record that links in place. Only opening
    /// the log for writing treats this as torn; the verifier calls it a CRC
    /// mismatch.
    CrcMismatch,
}

impl fmt::Display for TornKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TornKind::IncompleteHeader => "an incomplete segment header",
            TornKind::IncompleteFrame => "an incomplete frame",
            TornKind::ZeroFill => "zeros",
            TornKind::CrcMismatch => "a last frame failing its CRC",
        })
    }
}

/// The remains of a write cut short at the end of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// Segment file name.
    pub segment: String,
    /// Where the torn bytes start.
    pub offset: u64,
    /// How many bytes are torn (everything from `offset` to the end of file).
    pub bytes: u64,
    /// The sequence number the torn record would have had.
    pub seq: u64,
    pub kind: TornKind,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} @ {}: {} bytes of {} where record {} would be",
            self.segment, self.offset, self.bytes, self.kind, self.seq
        )
    }
}

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
        write!(
            f,
            "{} records in {} segments, {} datasets, last hash {}",
            self.records, self.segments, self.datasets, self.last_hash
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
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The keys checkpoints must be signed by; `None` checks everything but
    /// signatures.
    pub trust: Option<Trust>,
    /// Checkpoints the auditor kept from earlier, as (name, file bytes): the
    /// log must still contain what they cover.
    pub kept_checkpoints: Vec<(String, Vec<u8>)>,
}

impl From<Trust> for VerifyOptions {
    /// Checking signatures against `trust`, with no kept checkpoints.
    fn from(trust: Trust) -> VerifyOptions {
        VerifyOptions {
            trust: Some(trust),
            kept_checkpoints: Vec::new(),
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
    let end = walk(dir, TailMode::Verify, |_, leaf| tree.push(leaf))?;
    if let Some(origin) = &end.origin {
        loaded.check_origin(origin)?;
    }
    let records = end.chain.next_seq;
    tree.finish(records)?;
    let signed_size = loaded.signed_size();
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
