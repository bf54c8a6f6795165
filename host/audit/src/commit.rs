//! The disk half of group commit: a batch of pending entries becomes linked
//! records, framed into one buffer and written with one write
//! ([`Committer::write`]); a [`SyncJob`] then makes it durable with one
//! `fdatasync`, on the [`Syncer`] thread, so that the writer links, encodes
//! and hashes the next batch while the disk syncs this one. A batch counts
//! as durable only once its own sync returned (and every earlier batch's:
//! the writer publishes them in order). The segment being left when one is
//! full is written and synced in place before the next is created.
//!
//! A new segment's header goes out in the same write as its first records;
//! the folder is synced after a segment is created so its name is durable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::chain::Chain;
use crate::error::{AuditError, WriteFailure};
use crate::frame::{FRAME_HEAD_LEN, SegmentHeader, begin_frame, seal_frame};
use crate::merkle::Frontier;
use crate::reader::LastSegment;
use crate::record::{Entry, Hash, Record, leaf_hash};
use crate::resume::ResumePoint;
use crate::segment::{parse_segment_file_name, segment_file_name, sync_dir};

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
    pub syncs: [Option<Duration>; 2],
}

/// A batch written but not yet synced.
#[derive(Debug)]
pub(crate) struct Written {
    pub committed: Committed,
    /// The root of the tree over every record up to this batch's last.
    pub root: Hash,
    /// What makes it durable; `None` when nothing was left to write.
    pub sync: Option<SyncJob>,
}

/// One `fdatasync` of a segment (and of the folder, for a new segment).
#[derive(Debug)]
pub(crate) struct SyncJob {
    file: Arc<File>,
    path: PathBuf,
    /// The folder to sync after the file: the segment is new.
    new_in: Option<PathBuf>,
    /// The batch's records, once written: freed on the sync thread, not
    /// the writer's (freeing their strings was a fifth of its time).
    spent: Vec<Record>,
    #[cfg(test)]
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl SyncJob {
    /// Syncs, and says how long it took.
    pub fn run(self) -> Result<Duration, WriteFailure> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |error| WriteFailure::Io {
                action,
                path,
                error,
            }
        };
        #[cfg(test)]
        if self.fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(WriteFailure::Io {
                action: "fdatasync",
                path: self.path,
                error: std::io::Error::other("injected fsync failure"),
            });
        }
        let started = Instant::now();
        self.file.sync_data().map_err(io("fdatasync", &self.path))?;
        if let Some(dir) = &self.new_in {
            sync_dir(dir).map_err(io("fsync folder", dir))?;
        }
        Ok(started.elapsed())
    }
}

/// A thread that runs [`SyncJob`]s one after the other, answering each in
/// order; it ends when its [`Syncer`] is dropped.
pub(crate) struct Syncer {
    jobs: Option<Sender<SyncJob>>,
    done: Receiver<Result<Duration, WriteFailure>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Syncer {
    pub fn start() -> std::io::Result<Syncer> {
        let (jobs, queue) = mpsc::channel::<SyncJob>();
        let (answer, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("runway-audit-sync".into())
            .spawn(move || {
                for mut job in queue {
                    // Freed once the writer has its answer.
                    let spent = std::mem::take(&mut job.spent);
                    if answer.send(job.run()).is_err() {
                        return;
                    }
                    drop(spent);
                }
            })?;
        Ok(Syncer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Starts `job`; [`Syncer::wait`] answers it.
    pub fn start_job(&self, job: SyncJob) {
        // A send fails only if the thread is gone; `wait` then says so.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// The answer to the oldest job not yet answered.
    pub fn wait(&self) -> Result<Duration, WriteFailure> {
        self.done.recv().unwrap_or_else(|_| {
            Err(WriteFailure::Io {
                action: "fdatasync",
                path: PathBuf::from("(audit sync thread)"),
                error: std::io::Error::other("the audit sync thread stopped"),
            })
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The segment being appended to.
struct Active {
    path: PathBuf,
    /// Its first record's sequence number (its name).
    first_seq: u64,
    file: Arc<File>,
    /// Bytes already written to the file.
    len: u64,
    /// Offset of the last record's frame (0 while it holds none).
    last_frame: u64,
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
                let first_seq = last
                    .path
                    .file_name()
                    .and_then(|name| parse_segment_file_name(name.to_str()?))
                    .unwrap_or_default();
                Some(Active {
                    first_seq,
                    path: last.path,
                    file: Arc::new(file),
                    len: last.len,
                    last_frame: last.last_frame,
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

    /// Links, encodes and writes every entry of `batch` (emptying it),
    /// keeping the records in `kept` when given; the batch is durable once
    /// the returned job has run. On error the log must not be written again.
    pub fn write(
        &mut self,
        batch: &mut Vec<Pending>,
        mut kept: Option<&mut Vec<Record>>,
    ) -> Result<Written, WriteFailure> {
        let mut committed = Committed::default();
        let mut spent = Vec::with_capacity(if kept.is_some() { 0 } else { batch.len() });
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
            if let Some(active) = &mut self.active {
                active.last_frame = active.len + (self.buf.len() - frame_len) as u64;
            }
            let payload = &self.buf[self.buf.len() - frame_len + FRAME_HEAD_LEN..];
            let leaf = leaf_hash(payload);
            self.chain.advance(&record, leaf);
            self.frontier.push(leaf);
            match kept.as_deref_mut() {
                Some(kept) => kept.push(record),
                None => spent.push(record),
            }
        }
        let (bytes, mut sync) = self.write_buf()?;
        if let Some(job) = &mut sync {
            job.spent = spent;
        }
        committed.bytes += bytes;
        Ok(Written {
            committed,
            root: self.frontier.root(),
            sync,
        })
    }

    /// Where the log stands after everything written so far: a resume
    /// point once it is durable. `None` before the first record.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        let active = self.active.as_ref().filter(|_| self.chain.next_seq > 0)?;
        Some(ResumePoint {
            chain: self.chain.clone(),
            frontier: self.frontier.clone(),
            segment: active.first_seq,
            offset: active.len,
            last_frame: active.last_frame,
            // Filled in by the checkpoint thread, which knows the entry.
            checkpoints_at: crate::checkpoint::EntryAt::FIRST,
        })
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
            first_seq,
            path,
            file: Arc::new(file),
            len: 0,
            last_frame: 0,
            header_len: bytes.len() as u64,
            new: true,
        });
        Ok(())
    }

    /// Writes the buffer to the active segment with one write and makes it
    /// durable; returns the bytes written, and how long the sync took in
    /// `synced`.
    fn flush(&mut self, synced: &mut Option<Duration>) -> Result<u64, WriteFailure> {
        let (written, job) = self.write_buf()?;
        if let Some(job) = job {
            *synced = Some(job.run()?);
        }
        Ok(written)
    }

    /// Writes the buffer to the active segment with one write; returns the
    /// bytes written and the sync that makes them durable.
    fn write_buf(&mut self) -> Result<(u64, Option<SyncJob>), WriteFailure> {
        let Some(active) = &mut self.active else {
            return Ok((0, None));
        };
        if self.buf.is_empty() {
            return Ok((0, None));
        }
        (&*active.file)
            .write_all(&self.buf)
            .map_err(|error| WriteFailure::Io {
                action: "write",
                path: active.path.clone(),
                error,
            })?;
        let job = SyncJob {
            file: active.file.clone(),
            path: active.path.clone(),
            new_in: std::mem::take(&mut active.new).then(|| self.dir.clone()),
            spent: Vec::new(),
            #[cfg(test)]
            fail: self.fail_next_sync.clone(),
        };
        let written = self.buf.len() as u64;
        active.len += written;
        self.buf.clear();
        Ok((written, Some(job)))
    }
}
