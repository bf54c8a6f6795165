//! Errors of the audit writer: opening the log, and the write failure that
//! stops it for good.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::findings::VerifyError;
use crate::frame::FrameTooLong;
use crate::record::EncodeError;

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// Another process (or another `AuditLog` in this one) writes this folder.
    #[error("audit folder {0} is already open for writing")]
    Locked(PathBuf),
    /// Damage inside the log, before any torn tail; nothing was changed.
    #[error("audit log is damaged: {0}")]
    Damaged(#[from] VerifyError),
    #[error("audit folder {dir} belongs to origin {found:?}, not {expected:?}")]
    OriginMismatch {
        dir: PathBuf,
        expected: String,
        found: String,
    },
    #[error("invalid audit origin {0:?}: need one non-empty line of at most 65535 bytes")]
    InvalidOrigin(String),
    #[error("cannot start the audit writer thread: {0}")]
    Spawn(io::Error),
    /// The writer hit an error and stopped; nothing more will be written.
    #[error("audit writer stopped: {0}")]
    WriterFailed(Arc<WriteFailure>),
    /// An entry that could encode past the frame limit was refused at
    /// append; the writer goes on.
    #[error("audit entry refused: could take {bound} bytes, over the {max}-byte record limit")]
    EntryTooLarge { bound: usize, max: usize },
    /// A FILING's manifest or a RETURNED output over its cap
    /// was refused at append; the writer goes on.
    #[error("audit entry refused: a manifest or output of {len} bytes, over the {max}-byte limit")]
    FieldTooLarge { len: usize, max: usize },
    /// A ticket that no `append` of this log handed out.
    #[error("ticket for record {0} was not issued by this audit log")]
    ForeignTicket(u64),
    #[error("invalid signing key: {0}")]
    Key(#[from] crate::keys::KeyError),
}

/// The error that stopped the writer. It is never retried: after a failed
/// `fsync` the kernel may have dropped the dirty pages and a retry could
/// falsely succeed.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    #[error("{action} {path} failed: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("record {seq}: {error}")]
    Encode { seq: u64, error: EncodeError },
    #[error("record {seq}: {error}")]
    TooLarge { seq: u64, error: FrameTooLong },
    #[error("cannot sign a checkpoint: {0}")]
    Sign(String),
    #[error("an audit thread panicked")]
    Panicked,
    /// [`AuditLog::halt`](crate::AuditLog::halt) stopped the log.
    #[error("the log was halted, as by a crash")]
    Halted,
    /// The [`Forward`](crate::Forward) refused records `first..=last`.
    #[error("records {first}..={last} were refused where they are forwarded: {why}")]
    Forward { first: u64, last: u64, why: String },
}
