//! The journal's snapshot: the records the journal folds, kept in the
//! data root, so a start reads only the trail's tail after it (DESIGN.md,
//! "The audit trail is the journal").
//!
//! A [`Snapshot`] holds, up to audit sequence number `seq`, the records
//! the journal's fold reads ([`super::journal::folds`]: filings, moves,
//! plans, pause and resume — never host calls or lock records) and the
//! commit recovery's state. It names the leaf hash of record `seq - 1`,
//! which the trail's record `seq` links to, so a snapshot of another
//! trail, or of a trail cut back, is never used.
//!
//! It is an accelerator, never the only copy: everything in it is in the
//! trail too. A snapshot missing, torn, of another format or not matching
//! the trail is set aside with a warning and the trail read whole. It is
//! written to a temporary file, synced, renamed over the old one, and the
//! folder synced; the file is `magic ‖ CRC32C(body) ‖ body`, the body
//! postcard. The checksum finds a torn or damaged file; it is no seal
//! (whoever can write the data root can write the datasets too), and
//! checking it costs little next to decoding.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runway_audit::{Entry, Hash, ZERO_HASH};
use serde::{Deserialize, Serialize};

use super::commit::Unsettled;
use crate::limits::MAX_SNAPSHOT_BYTES;

/// Its name in the data root.
pub const FILE: &str = "journal.snapshot";
/// Format and version: a new layout gets a new magic, and an old snapshot
/// is then read as missing.
const MAGIC: &[u8; 8] = b"RWJSNP03";

/// What the trail held for the journal up to `seq`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The sequence number of the first record not in it.
    pub seq: u64,
    /// Leaf hash of record `seq - 1` (zeros when `seq` is 0).
    pub head: Hash,
    /// The commit recovery's state after record `seq - 1`.
    pub unsettled: Unsettled,
    /// The records the journal folds, in trail order: (sequence number,
    /// time, entry).
    pub records: Vec<(u64, u64, Entry)>,
}

/// Why a snapshot was set aside (the trail is then read whole).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} is not a journal snapshot of this format")]
    Format { path: PathBuf },
    #[error("{path} is larger than {MAX_SNAPSHOT_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is damaged: its checksum does not match")]
    Damaged { path: PathBuf },
    #[error("{path} does not decode: {why}")]
    Decode { path: PathBuf, why: String },
    #[error("{path} is not the snapshot this host wrote last")]
    Moved { path: PathBuf },
    #[error("the snapshot cannot be encoded: {0}")]
    Encode(String),
}

impl Snapshot {
    /// An empty snapshot: the trail from its first record.
    pub fn start() -> Snapshot {
        Snapshot {
            head: ZERO_HASH,
            ..Snapshot::default()
        }
    }

    /// The snapshot in data root `data`; `None` when there is none.
    pub fn load(data: &Path) -> Result<Option<Snapshot>, SnapshotError> {
        let path = data.join(FILE);
        let io = |action| {
            let path = path.clone();
            move |source| SnapshotError::Io {
                action,
                path,
                source,
            }
        };
        // Not followed through a link, never read from a FIFO.
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(SnapshotError::Format { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("look at")(e)),
        }
        let file = File::open(&path).map_err(io("open"))?;
        let mut bytes = Vec::new();
        file.take(MAX_SNAPSHOT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io("read"))?;
        if bytes.len() as u64 > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge { path });
        }
        let Some((magic, rest)) = bytes.split_first_chunk::<8>() else {
            return Err(SnapshotError::Format { path });
        };
        let Some((sum, body)) = rest.split_first_chunk::<4>() else {
            return Err(SnapshotError::Format { path });
        };
        if magic != MAGIC {
            return Err(SnapshotError::Format { path });
        }
        if crc32c::crc32c(body).to_le_bytes() != *sum {
            return Err(SnapshotError::Damaged { path });
        }
        postcard::from_bytes(body)
            .map(Some)
            .map_err(|e| SnapshotError::Decode {
                path,
                why: e.to_string(),
            })
    }

    /// Writes it as data root `data`'s snapshot, durably, replacing the
    /// one before in one step.
    pub fn write(&self, data: &Path) -> Result<(), SnapshotError> {
        let body = postcard::to_stdvec(self).map_err(|e| SnapshotError::Encode(e.to_string()))?;
        let path = data.join(FILE);
        let temp = data.join(format!("{FILE}.new"));
        // One writer at a time in this process (a host reopened on the same
        // data root); other processes are kept off by the root's claim.
        static WRITING: Mutex<()> = Mutex::new(());
        let _one = WRITING.lock().unwrap_or_else(|p| p.into_inner());
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| SnapshotError::Io {
                action,
                path,
                source,
            }
        };
        // A leftover of a crash goes; a link in its place is not followed.
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io("remove", &temp)(e))?,
            _ => {}
        }
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io("create", &temp))?;
        file.write_all(MAGIC)
            .and_then(|()| file.write_all(&crc32c::crc32c(&body).to_le_bytes()))
            .and_then(|()| file.write_all(&body))
            .and_then(|()| file.sync_all())
            .map_err(io("write", &temp))?;
        fs::rename(&temp, &path).map_err(io("rename into place", &path))?;
        File::open(data)
            .and_then(|dir| dir.sync_all())
            .map_err(io("sync the folder", data))
    }
}
