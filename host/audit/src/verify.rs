//! The offline verifier: walks the whole audit folder and either returns a
//! [`VerifyReport`] or names the first bad record in a [`VerifyError`].
//!
//! Checked, in log order: each segment header (CRC, magic, version, the first
//! seq in its name, origin, continuity with the previous segment), each
//! frame's length and CRC32C, strict canonical decoding, sequence numbers
//! contiguous from 0, the `prev` chain, each dataset's `prev_dataset` chain,
//! and time never going backwards.
//!
//! An incomplete frame (or segment header) at the very end of the last
//! segment is what a crash mid-write leaves; it is reported as
//! [`VerifyReport::torn_tail`] rather than as tampering. Until checkpoints
//! are signed, the chains cannot tell a clean truncation at a frame boundary,
//! or a rewrite of the last record, from the real thing.

use std::fmt;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::hex;
use crate::reader::{TailMode, walk};
use crate::record::DecodeError;

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
    pub kind: VerifyErrorKind,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    /// A torn write at the end of the log, not counted as damage.
    pub torn_tail: Option<TornTail>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records in {} segments, {} datasets, last hash {}",
            self.records, self.segments, self.datasets, self.last_hash
        )?;
        if let Some(torn) = &self.torn_tail {
            write!(f, "; torn tail: {torn}")?;
        }
        Ok(())
    }
}

/// Verifies the audit folder `dir` end to end.
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let end = walk(dir, TailMode::Verify, |_, _| {})?;
    Ok(VerifyReport {
        origin: end.origin,
        records: end.chain.next_seq,
        segments: end.segments,
        datasets: end.chain.dataset_count(),
        last_hash: hex::encode(&end.chain.last_hash),
        torn_tail: end.torn_tail,
    })
}
