//! The trail's live end: the records last made durable, kept in memory for
//! readers that follow the trail as it grows (a status page, a stream of
//! events), so they never read the segment files while the writer writes.
//!
//! Off unless [`AuditOptions::tail`](crate::AuditOptions) asks for it. The
//! writer pushes each durable batch and then calls the watchers; a reader
//! asks for the records from some sequence number on and is told when the
//! ring no longer holds them (it then reads the rest from disk, or says it
//! missed them).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::Record;

/// The live end of one log; cheap to clone.
#[derive(Clone)]
pub struct Tail {
    inner: Arc<Inner>,
}

/// Told the next sequence number after each durable batch.
type Watcher = Box<dyn Fn(u64) + Send + Sync>;

struct Inner {
    capacity: usize,
    ring: Mutex<Ring>,
    watchers: Mutex<Vec<Watcher>>,
}

struct Ring {
    records: VecDeque<Arc<Record>>,
    /// The sequence number the next durable record gets.
    next: u64,
}

/// What a reader gets from [`Tail::from`].
#[derive(Debug)]
pub enum Follow {
    /// The durable records from the one asked for on, oldest first (none
    /// when the reader is up to date).
    Records(Vec<Arc<Record>>),
    /// The ring starts later than asked: records `asked..oldest` are only
    /// on disk.
    Behind { oldest: u64 },
}

impl Tail {
    pub(crate) fn new(capacity: usize, next: u64) -> Tail {
        Tail {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                ring: Mutex::new(Ring {
                    records: VecDeque::new(),
                    next,
                }),
                watchers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Keeps a durable batch (contiguous, in order) and tells the watchers.
    pub(crate) fn push(&self, batch: Vec<Record>) {
        let next = {
            let mut ring = self
                .inner
                .ring
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for record in batch {
                debug_assert_eq!(record.seq, ring.next);
                ring.next = record.seq + 1;
                if ring.records.len() == self.inner.capacity {
                    ring.records.pop_front();
                }
                ring.records.push_back(Arc::new(record));
            }
            ring.next
        };
        let watchers = self
            .inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for watcher in watchers.iter() {
            watcher(next);
        }
    }

    /// Calls `watcher` with the next sequence number after every durable
    /// batch, on the writer's thread: it must return at once.
    pub fn watch(&self, watcher: impl Fn(u64) + Send + Sync + 'static) {
        self.inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(watcher));
    }

    /// The sequence number the next durable record gets.
    pub fn next_seq(&self) -> u64 {
        self.inner
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next
    }

    /// The durable records from `seq` on, at most `max` of them.
    pub fn from(&self, seq: u64, max: usize) -> Follow {
        let ring = self
            .inner
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let oldest = ring.next - ring.records.len() as u64;
        if seq < oldest {
            return Follow::Behind { oldest };
        }
        let skip = usize::try_from(seq - oldest).unwrap_or(usize::MAX);
        Follow::Records(ring.records.iter().skip(skip).take(max).cloned().collect())
    }
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("capacity", &self.inner.capacity)
            .field("next", &self.next_seq())
            .finish_non_exhaustive()
    }
}
