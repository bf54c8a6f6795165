//! What verification finds wrong, and where: [`VerifyError`] (the place and
//! the [`VerifyErrorKind`]), checkpoint places, and torn tails. Shared by the
//! verifier, the reader, the chain check and recovery, so none of them has
//! to import another for its error types.

use std::fmt;
use std::io;

use serde::Serialize;

use crate::checkpoint::{CheckpointFileError, CheckpointSyntax};
use crate::record::DecodeError;
use crate::trust::SignatureProblem;

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
    /// Verifying against trusted keys, a log no checkpoint covers (its
    /// checkpoint files were removed, or it was never signed).
    #[error(
        "no signed checkpoint covers the log's {records} records (were the checkpoint files removed?)"
    )]
    NoCheckpoint { records: u64 },
    /// More records follow the last signed checkpoint than an honest writer
    /// leaves unsigned.
    #[error(
        "records {signed}..{records} follow the last signed checkpoint: {} unsigned records, more than the {allowed} allowed", records - signed
    )]
    UnsignedTail {
        signed: u64,
        records: u64,
        allowed: u64,
    },
    /// A checkpoint file that cannot be read, or not as checkpoints (CRLF).
    #[error(transparent)]
    CheckpointFile(CheckpointFileError),
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
