//! What the appending callers, the writer thread and the checkpoint thread
//! share: one mutex over the log's progress and three condition variables.
//!
//! Progress only moves forward, in this order: `next_seq` (appended) ≥
//! `durable_seq` (written and synced) ≥ `checkpointed` (covered by a signed
//! checkpoint that is itself durable), and `durable_seq - checkpointed`
//! never above `max_unsigned`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::commit::Pending;
use crate::error::{AuditError, WriteFailure};
use crate::record::Hash;

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when entries are pending or the log is closing (writer).
    pub work: Condvar,
    /// Signalled when the durable or checkpointed point moved, or a thread
    /// failed (callers).
    pub progress: Condvar,
    /// Signalled when a checkpoint may be due (checkpoint thread).
    pub checkpoint: Condvar,
}

pub(crate) struct State {
    pub pending: Vec<Pending>,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    /// The time of the newest record appended: times never go backwards,
    /// so no later append is written earlier.
    pub last_time_ns: u64,
    /// Every record below this sequence number is durable.
    pub durable_seq: u64,
    /// The Merkle root over the first `durable_seq` records.
    pub durable_root: Hash,
    /// Every record below this is covered by a durable signed checkpoint.
    pub checkpointed: u64,
    /// The size some `sync` waits to see covered by a checkpoint.
    pub checkpoint_wanted: u64,
    /// The sequence number of the first append of this session.
    pub session_seq: u64,
    pub failure: Option<Arc<WriteFailure>>,
    pub closing: bool,
    /// The writer thread has stopped (drained and closing, or failed).
    pub writer_done: bool,
    pub batches: u64,
    pub bytes_written: u64,
    pub segments_created: u64,
    pub checkpoints: u64,
    /// How long the writer's syncs took.
    pub syncs: crate::latency::Latency,
    /// At most this many records are durable and not checkpointed
    /// (`u64::MAX` for an unsigned log).
    pub max_unsigned: u64,
    /// The newest resume point the writer published (durable), for the
    /// checkpoint thread to write once a checkpoint covers it.
    pub resume: Option<Box<crate::resume::ResumePoint>>,
}

impl Shared {
    pub fn new(state: State) -> Shared {
        Shared {
            state: Mutex::new(state),
            work: Condvar::new(),
            progress: Condvar::new(),
            checkpoint: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters and a queue; a panic elsewhere cannot
        // leave it half-updated in a way that matters.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn wait<'a>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    pub fn wait_for<'a>(
        &self,
        condvar: &Condvar,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        match condvar.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Records the first failure of either thread and wakes everyone.
    pub fn fail(&self, failure: WriteFailure) {
        let mut state = self.lock();
        state.failure.get_or_insert_with(|| Arc::new(failure));
        state.pending.clear();
        drop(state);
        self.progress.notify_all();
        self.checkpoint.notify_all();
    }
}

impl State {
    /// How many more records may become durable before a checkpoint must.
    pub fn unsigned_room(&self) -> u64 {
        let unsigned = self.durable_seq - self.checkpointed;
        self.max_unsigned.saturating_sub(unsigned)
    }

    pub fn failed(&self) -> Result<(), AuditError> {
        match &self.failure {
            Some(failure) => Err(AuditError::WriterFailed(failure.clone())),
            None => Ok(()),
        }
    }
}

/// Turns a panic of a thread into a failure waiters can see, instead of
/// leaving them blocked forever.
pub(crate) struct PanicGuard<'a> {
    pub shared: &'a Shared,
    pub armed: bool,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.fail(WriteFailure::Panicked);
        }
    }
}
