//! Keeps the journal's snapshot ([`super::snapshot`]) near the trail's end
//! while the host runs, so a start after a crash reads a short tail.
//!
//! The keeper follows the trail's live end (the audit log's in-memory
//! [`Tail`], which `runway serve` keeps) on a thread of its own: every
//! durable record is observed by the commit recovery's state and, when
//! the journal folds it, kept. Once enough records came after the
//! snapshot on disk — the start's threshold, or a quarter of the trail
//! when that is more, so writing snapshots costs a constant per record
//! however long the trail — that snapshot is read, the kept records added
//! and the whole written back (the snapshot's own atomic write). When the
//! host goes, whatever came after the last snapshot is written too. A
//! keeper that falls behind the live end stops keeping (said once); the
//! next start then reads the longer tail. A host without a live end (a
//! `runway run`) has no keeper: its next start catches up.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use runway_audit::{Entry, Follow, Hash, Record, Tail};

use super::commit::Unsettled;
use super::journal::folds;
use super::snapshot::{Snapshot, SnapshotError};

/// How long the keeper sleeps when the trail is quiet.
const IDLE: Duration = Duration::from_secs(1);

/// Most records taken from the live end at once.
const BATCH: usize = 4096;

/// What comes after the snapshot on disk, as far as the keeper has read.
pub(super) struct Kept {
    /// Data root the snapshot lives in.
    pub data: PathBuf,
    /// Records after the snapshot on disk that make a new one (at least).
    pub after: u64,
    /// Sequence number of the snapshot on disk (0: there is none to build
    /// on, the next one starts from the trail's first record).
    pub base: u64,
    /// The records the journal folds, after `base`.
    pub pending: Vec<(u64, u64, Entry)>,
    /// The commit recovery's state at `next`.
    pub unsettled: Unsettled,
    /// The first record not read yet.
    pub next: u64,
    /// Leaf hash of record `next - 1`, once known…
    pub head: Hash,
    /// …or the record itself, its hash taken when it is needed.
    pub last: Option<Arc<Record>>,
}

impl Kept {
    /// Writes the snapshot on disk and what came after it as the new
    /// snapshot, when anything did.
    fn write(&mut self) -> Result<(), SnapshotError> {
        if self.next == self.base {
            return Ok(());
        }
        let mut snapshot = match self.base {
            0 => Snapshot::start(),
            base => match Snapshot::load(&self.data)? {
                Some(on_disk) if on_disk.seq == base => on_disk,
                _ => {
                    return Err(SnapshotError::Moved {
                        path: self.data.clone(),
                    });
                }
            },
        };
        if let Some(last) = self.last.take() {
            self.head = last
                .leaf_hash()
                .map_err(|e| SnapshotError::Encode(e.to_string()))?;
        }
        snapshot.records.append(&mut self.pending);
        snapshot.unsettled = self.unsettled.clone();
        snapshot.seq = self.next;
        snapshot.head = self.head;
        snapshot.write(&self.data)?;
        self.base = self.next;
        Ok(())
    }

    /// Takes one record in, in trail order.
    fn observe(&mut self, record: Arc<Record>) {
        self.unsettled.observe(&record);
        if folds(&record.entry) {
            let kept = (record.seq, record.time_ns, record.entry.clone());
            self.pending.push(kept);
        }
        self.next = record.seq + 1;
        self.last = Some(record);
    }
}

/// The keeper's thread; stopping it (dropping) writes what it kept.
pub(super) struct Keeper {
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts keeping `kept` up to date from `tail`, writing it at once
    /// when `now` (and only then, when there is no live end to follow);
    /// `None` when there is nothing to do or no thread could be started
    /// (said as a warning: only speed is lost).
    pub fn start(tail: Option<&Tail>, mut kept: Kept, now: bool) -> Option<Keeper> {
        if tail.is_none() && !now {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = sync_channel(1);
        let waker = wake.clone();
        if let Some(tail) = tail {
            tail.watch(move |_| {
                let _ = waker.try_send(());
            });
        }
        let (tail, halt) = (tail.cloned(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("journal-keeper".into())
            .spawn(move || {
                if now && let Err(why) = kept.write() {
                    tracing::warn!("journal snapshot not written: {why}");
                    return;
                }
                if let Some(tail) = tail {
                    keep(&tail, kept, &halt, &woken);
                }
            });
        match spawned {
            Ok(thread) => Some(Keeper {
                stop,
                wake,
                thread: Some(thread),
            }),
            Err(why) => {
                tracing::warn!("journal snapshots are not kept while the host runs: {why}");
                None
            }
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The keeper's loop (see the module doc).
fn keep(tail: &Tail, mut kept: Kept, stop: &AtomicBool, woken: &Receiver<()>) {
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let written = match tail.from(kept.next, BATCH) {
            Follow::Records(records) if !records.is_empty() => {
                for record in records {
                    kept.observe(record);
                }
                if kept.next - kept.base < kept.after.max(kept.base / 4) {
                    continue;
                }
                kept.write()
            }
            Follow::Records(_) if stopping => {
                if let Err(why) = kept.write() {
                    tracing::warn!("the journal's last snapshot was not written: {why}");
                }
                return;
            }
            Follow::Records(_) => {
                let _ = woken.recv_timeout(IDLE);
                continue;
            }
            Follow::Behind { oldest } => {
                tracing::warn!(
                    "journal snapshots are no longer kept: the trail's live end moved on to {oldest} \
                     before record {} was read; the next start reads from {}",
                    kept.next,
                    kept.base
                );
                return;
            }
        };
        if let Err(why) = written {
            tracing::warn!("journal snapshots are no longer kept: {why}");
            return;
        }
    }
}
