//! Runway's tamper-evident audit trail: the record format, the group-commit
//! writer and the offline verifier.
//!
//! Every filing, runway state change, lock change and host call becomes a
//! [`Record`]: the host's [`Entry`] plus a sequence number, a time, the leaf
//! hash of the previous record and of the previous record on the same
//! dataset. Records are postcard-encoded, framed with a length and CRC32C and
//! appended to segment files in an audit folder.
//!
//! | concept | file |
//! |---|---|
//! | schema, canonical encoding, strict decoding, leaf hash | `record.rs` |
//! | segment header, `length ‖ CRC32C ‖ bytes` frames | `frame.rs` |
//! | segment file names and listing | `segment.rs` |
//! | what the next record links to (writer and verifier) | `chain.rs` |
//! | [`AuditLog`]: append, wait for durability, writer thread | `writer.rs` |
//! | one batch: link, encode, write, fsync, rotate | `commit.rs` |
//! | reopening: read back, trim a torn tail | `recover.rs` |
//! | walking all segments, [`read_records`] | `reader.rs` |
//! | [`verify()`], its report and errors | `verify.rs` |
//! | timeline lines and JSON | `render.rs` |
//! | writer errors | `error.rs` |
//!
//! Merkle checkpoints and their signatures build on the leaf hashes here.

mod chain;
mod commit;
mod error;
pub mod frame;
pub mod hex;
mod reader;
pub mod record;
mod recover;
pub mod render;
pub mod segment;
pub mod verify;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{AuditError, WriteFailure};
pub use reader::read_records;
pub use record::{
    Call, DecodeError, EncodeError, Entry, Event, Hash, LockGrant, LockMode, LockRequest, Outcome,
    Record, ZERO_HASH, leaf_hash, sha256,
};
pub use render::{record_json, record_line, timeline_line};
pub use verify::{TornKind, TornTail, VerifyError, VerifyErrorKind, VerifyReport, verify};
pub use writer::{AuditLog, AuditOptions, AuditStats, DEFAULT_SEGMENT_BYTES, Ticket};
