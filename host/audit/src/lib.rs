//! Runway's tamper-evident audit trail: the record format, the group-commit
//! writer, signed checkpoints, proofs and the offline verifier.
//!
//! Every filing, runway state change, lock change and host call becomes a
//! [`Record`]: the host's [`Entry`] plus a sequence number, a time, the leaf
//! hash of the previous record and of the previous record on the same
//! dataset. Records are postcard-encoded, framed with a length and CRC32C and
//! appended to segment files in an audit folder. Their leaf hashes form an
//! RFC 6962 Merkle tree whose heads are signed with Ed25519 as C2SP
//! checkpoints once they are durable; an auditor holding the public key
//! verifies the folder, and proves a record's inclusion or the log's
//! consistency between two sizes, offline.
//!
//! | concept | file |
//! |---|---|
//! | schema (declared once), canonical encoding, leaf hash | `record.rs` |
//! | what a declaration derives: strict one-pass decoding, size bound, test generation | `codec.rs` |
//! | segment header, `length ‖ CRC32C ‖ bytes` frames | `frame.rs` |
//! | segment file names and listing | `segment.rs` |
//! | what the next record links to (writer and verifier) | `chain.rs` |
//! | [`AuditLog`]: append, wait for durability, writer thread | `writer.rs` |
//! | [`Forward`]: a batch handed on (the shared history) before it counts as durable | `forward.rs` |
//! | one batch: link, encode, write, rotate; its fsync on the sync thread | `commit.rs` |
//! | reopening: read back (from the resume point on), trim a torn tail | `recover.rs` |
//! | the resume point beside the log: its file, checked before use | `resume.rs` |
//! | walking the segments (all, from a resume point, or from a sequence number), [`read_records`], [`for_each_record_from`] | `reader.rs` |
//! | checking a chunk of frames on its own: CRC, decoding, leaf hash, its subtrees | `frame_check.rs` |
//! | checking chunks on several threads, handed back in log order | `check_pool.rs` |
//! | [`verify()`] and its report | `verify.rs` |
//! | shards of hosts sharing a database, checked together: [`check_together`] | `shards.rs` |
//! | what verification finds wrong, and where | `findings.rs` |
//! | timeline lines and JSON | `render.rs` |
//! | writer errors | `error.rs` |
//! | what callers, writer and checkpoint thread share | `shared.rs` |
//! | RFC 6962 tree: node hash, [`Frontier`] | `merkle.rs` |
//! | inclusion and consistency proofs | `proof.rs` |
//! | a proof with its checkpoint as one text file | `proof_file.rs` |
//! | Ed25519 keys, key ids, key files | `keys.rs` |
//! | C2SP signed notes | `note.rs` |
//! | checkpoints, the `checkpoints` and `checkpoint` files | `checkpoint.rs` |
//! | the checkpoint thread | `checkpointer.rs` |
//! | trusted keys with validity ranges | `trust.rs` |
//! | holding a walk to the checkpoints' roots | `tree_check.rs` |

mod chain;
mod check_pool;
pub mod checkpoint;
mod checkpointer;
mod codec;
mod commit;
mod error;
mod findings;
mod forward;
pub mod frame;
mod frame_check;
pub mod hex;
pub mod keys;
pub mod latency;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod proof_file;
mod reader;
pub mod record;
mod recover;
pub mod render;
mod resume;
pub mod segment;
mod shards;
mod shared;
mod state;
mod tail;
mod tree_check;
pub mod trust;
pub mod verify;
mod writer;

#[cfg(test)]
mod tests;

pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use error::{AuditError, WriteFailure};
pub use findings::{CheckpointPlace, TornKind, TornTail, VerifyError, VerifyErrorKind};
pub use forward::{Forward, Forwarder};
pub use keys::{PrivateKey, PublicKey};
pub use merkle::Frontier;
pub use reader::{for_each_record, for_each_record_from, read_records};
pub use record::{
    Accepted, Call, DecodeError, EncodeError, Entry, Event, Hash, JoinedChild, LockGrant, LockMode,
    LockRequest, Outcome, PAYLOAD_MAX, PassedOutput, Record, RouteFigures, ZERO_HASH, leaf_hash,
    sha256,
};
pub use render::{escape, record_json, record_line, timeline_line};
pub use shards::{At, Conflict, Shard, Together, check_together};
pub use state::State;
pub use tail::{Follow, Tail};
pub use trust::Trust;
pub use verify::{VerifyOptions, VerifyReport, verify, verify_with};
pub use writer::{
    Appended, AuditLog, AuditOptions, AuditStats, DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_MAX_UNSIGNED, DEFAULT_SEGMENT_BYTES, Ticket, now_ns,
};
