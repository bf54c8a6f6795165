//! The disk half of group commit: a batch of pending entries becomes linked
//! records, framed into one buffer, written with one write and made durable
//! with one `fdatasync`, rotating to a new segment when the current one is
//! full.
//!
//! A new segment's header goes out in the same write as its first records;
//! the folder is synced after a segment is created so its name is durable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::error::{AuditError, WriteFailure};
use crate::frame::{FRAME_HEAD_LEN, SegmentHeader, begin_frame, seal_frame};
use crate::merkle::Frontier;
use crate::reader::LastSegment;
use crate::record::{Entry, Hash, leaf_hash};
use crate::segment::{segment_file_name, sync_dir};

/// An appended entry waiting for the writer, with the time it was appended.
#[derive(Debug)]
pub(crate) struct Pending {
    pub time_ns: u64,
    pub entry: Entry,
}

/// What one committed batch wrote.
#[derive(Clone, Debug, Default)]
pub(crate) struct Committed {
    pub bytes: u64,
    pub segments_created: u64,
    /// Time spent in `fdatasync` (and folder syncs), one entry per sync.
    pub syncs: [Option<std::time::Duration>; 2],
}

/// The segment being appended to.
struct Active {
    path: PathBuf,
    file: File,
    /// Bytes already written to the file.
    len: u64,
    header_len: u64,
    /// Created by this writer and its folder entry not yet synced.
    new: bool,
}

/// Turns batches into durable records; owned by the writer thread.
pub(crate) struct Committer {
    dir: PathBuf,
    origin: String,
    segment_bytes: u64,
    chain: Chain,
    /// The Merkle tree over every record written.
    frontier: Frontier,
    active: Option<Active>,
    /// Bytes of the current batch not yet written to `active`.
    buf: Vec<u8>,
    #[cfg(test)]
    pub fail_next_sync: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Committer {
    /// A committer continuing after `chain` and `frontier`, appending to
    /// `last` if given.
    pub fn new(
        dir: &Path,
        origin: String,
        segment_bytes: u64,
        (chain, frontier): (Chain, Frontier),
        last: Option<LastSegment>,
    ) -> Result<Committer, AuditError> {
        let active = match last {
            None => None,
            Some(last) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(|error| AuditError::Io {
                        action: "open for appending",
                        path: last.path.clone(),
                        error,
                    })?;
                Some(Active {
                    path: last.path,
                    file,
                    len: last.len,
                    header_len: last.header_len,
                    new: false,
                })
            }
        };
        Ok(Committer {
            dir: dir.to_owned(),
            origin,
            segment_bytes,
            chain,
            frontier,
            active,
            buf: Vec::new(),
            #[cfg(test)]
            fail_next_sync: Default::default(),
        })
    }

    /// Links, encodes, writes and syncs every entry of `batch` (emptying
    /// it), keeping the records in `kept` when given. On error the log must
    /// not be written again.
    pub fn commit(
        &mut self,
        batch: &mut Vec<Pending>,
        mut kept: Option<&mut Vec<crate::record::Record>>,
    ) -> Result<Committed, WriteFailure> {
        let mut committed = Committed::default();
        self.buf.clear();
        for pending in batch.drain(..) {
            let record = self.chain.link(pending.time_ns, pending.entry);
            let seq = record.seq;
            let start = begin_frame(&mut self.buf);
            record
                .encode_into(&mut self.buf)
                .map_err(|error| WriteFailure::Encode { seq, error })?;
            seal_frame(&mut self.buf, start)
                .map_err(|error| WriteFailure::TooLarge { seq, error })?;
            let frame_len = self.buf.len() - start;

            if self.needs_new_segment(start, frame_len) {
                let frame = self.buf.split_off(start);
                committed.bytes += self.flush(&mut committed.syncs[0])?;
                self.start_segment(seq)?;
                committed.segments_created += 1;
                self.buf.extend_from_slice(&frame);
            }
            let payload = &self.buf[self.buf.len() - frame_len + FRAME_HEAD_LEN..];
            let leaf = leaf_hash(payload);
            self.chain.advance(&record, leaf);
            self.frontier.push(leaf);
            if let Some(kept) = kept.as_deref_mut() {
                kept.push(record);
            }
        }
        committed.bytes += self.flush(&mut committed.syncs[1])?;
        Ok(committed)
    }

    /// The root of the tree over every record committed so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Whether the frame about to be added (after `pending` buffered bytes)
    /// must go to a new segment: there is none yet, or the current one holds
    /// records and would grow past the limit.
    fn needs_new_segment(&self, pending: usize, frame_len: usize) -> bool {
        match &self.active {
            None => true,
            Some(active) => {
                let before = active.len + pending as u64;
                before > active.header_len && before + frame_len as u64 > self.segment_bytes
            }
        }
    }

    /// Creates the segment starting at `first_seq` and buffers its header.
    fn start_segment(&mut self, first_seq: u64) -> Result<(), WriteFailure> {
        let path = self.dir.join(segment_file_name(first_seq));
        let header = SegmentHeader {
            origin: self.origin.clone(),
            first_seq,
            prev_segment: self.chain.last_hash,
        };
        let bytes = header.encode().map_err(|e| WriteFailure::Io {
            action: "encode the header of",
            path: path.clone(),
            error: std::io::Error::other(e),
        })?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|error| WriteFailure::Io {
                action: "create",
                path: path.clone(),
                error,
            })?;
        self.buf.extend_from_slice(&bytes);
        self.active = Some(Active {
            path,
            file,
            len: 0,
            header_len: bytes.len() as u64,
            new: true,
        });
        Ok(())
    }

    /// Writes the buffer to the active segment with one write and makes it
    /// durable; returns the bytes written, and how long the sync took in
    /// `synced`.
    fn flush(&mut self, synced: &mut Option<std::time::Duration>) -> Result<u64, WriteFailure> {
        let Some(active) = &mut self.active else {
            return Ok(0);
        };
        if self.buf.is_empty() {
            return Ok(0);
        }
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |error| WriteFailure::Io {
                action,
                path,
                error,
            }
        };
        active
            .file
            .write_all(&self.buf)
            .map_err(io("write", &active.path))?;
        #[cfg(test)]
        if self
            .fail_next_sync
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(WriteFailure::Io {
                action: "fdatasync",
                path: active.path.clone(),
                error: std::io::Error::other("injected fsync failure"),
            });
        }
        let started = std::time::Instant::now();
        active
            .file
            .sync_data()
            .map_err(io("fdatasync", &active.path))?;
        if active.new {
            sync_dir(&self.dir).map_err(io("fsync folder", &self.dir))?;
            active.new = false;
        }
        *synced = Some(started.elapsed());
        let written = self.buf.len() as u64;
        active.len += written;
        self.buf.clear();
        Ok(written)
    }
}
