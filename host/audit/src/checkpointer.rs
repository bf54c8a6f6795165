//! The checkpoint thread: signs the tree head of what the writer has made
//! durable, and makes the signed checkpoint durable in turn.
//!
//! It only ever signs `(durable_seq, durable_root)`, which the writer
//! publishes after a batch's `fdatasync`, so no checkpoint covers a record
//! that is not on disk. It runs beside the writer, so the next batch is
//! written while a checkpoint is synced; and since it takes the newest tree
//! head each time, checkpoints never outnumber batches. A checkpoint is
//! made when a [`sync`](crate::AuditLog::sync) asks for one, when the
//! writer closes, when half of the unsigned bound
//! ([`AuditOptions::max_unsigned`](crate::AuditOptions::max_unsigned)) is
//! durable and unsigned, or otherwise at most once per `interval`.
//!
//! It also writes the resume point ([`resume`](crate::resume)) the writer
//! published last, once a durable checkpoint covers it, so that the next
//! open reads only what came after. A resume point it fails to write is
//! said on the log and skipped: it only saves time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, CheckpointWriter, SignedCheckpoint};
use crate::error::WriteFailure;
use crate::keys::PrivateKey;
use crate::resume::{self, ResumePoint};
use crate::shared::{PanicGuard, Shared};

/// What the checkpoint thread owns.
pub(crate) struct Checkpointer {
    /// The audit folder, where the resume point is written.
    pub dir: PathBuf,
    pub writer: CheckpointWriter,
    pub keys: Vec<PrivateKey>,
    pub origin: String,
    pub interval: Duration,
}

/// The checkpoint thread's body.
pub(crate) fn checkpoint_loop(shared: &Shared, mut checkpointer: Checkpointer) {
    let mut panic_guard = PanicGuard {
        shared,
        armed: true,
    };
    // The interval counts from the start too, so that a burst of appends
    // right after opening is not checkpointed batch by batch.
    let mut last_made = Instant::now();
    loop {
        let (size, root) = {
            let mut state = shared.lock();
            loop {
                let checkpointed = state.checkpointed;
                let covered = state.failure.is_none()
                    && state
                        .resume
                        .as_ref()
                        .is_some_and(|p| p.size() <= checkpointed);
                if covered && let Some(point) = state.resume.take() {
                    drop(state);
                    write_resume(&checkpointer, *point);
                    state = shared.lock();
                    continue;
                }
                let fresh = state.durable_seq > state.checkpointed;
                let stopping = state.writer_done || state.failure.is_some();
                if !fresh && stopping {
                    panic_guard.armed = false;
                    return;
                }
                let requested = state.checkpoint_wanted > state.checkpointed
                    && (state.durable_seq >= state.checkpoint_wanted || stopping);
                let wait = checkpointer.interval.saturating_sub(last_made.elapsed());
                let crowded = state.unsigned_room() <= state.max_unsigned / 2;
                if fresh && (requested || stopping || crowded || wait.is_zero()) {
                    break (state.durable_seq, state.durable_root);
                }
                state = if fresh {
                    shared.wait_for(&shared.checkpoint, state, wait)
                } else {
                    shared.wait(&shared.checkpoint, state)
                };
            }
        };
        let checkpoint = Checkpoint {
            origin: checkpointer.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        };
        let published = SignedCheckpoint::sign(checkpoint, &checkpointer.keys)
            .map_err(|e| WriteFailure::Sign(e.to_string()))
            .and_then(|signed| {
                checkpointer
                    .writer
                    .publish(&signed)
                    .map_err(|(action, path, error)| WriteFailure::Io {
                        action,
                        path,
                        error,
                    })
            });
        last_made = Instant::now();
        match published {
            Ok(()) => {
                let mut state = shared.lock();
                state.checkpointed = size;
                state.checkpoints += 1;
                drop(state);
                shared.progress.notify_all();
            }
            Err(failure) => {
                shared.fail(failure);
                panic_guard.armed = false;
                return;
            }
        }
    }
}

/// Writes `point` as the folder's resume point, signed by the first key
/// and naming the last entry of `checkpoints` (which covers it); a failure
/// is only said on the log.
fn write_resume(checkpointer: &Checkpointer, mut point: ResumePoint) {
    let (Some(key), Some(at)) = (checkpointer.keys.first(), checkpointer.writer.last_entry())
    else {
        return;
    };
    point.checkpoints_at = at;
    if let Err(error) = resume::write(&checkpointer.dir, &point, &checkpointer.origin, key) {
        tracing::warn!(
            "audit {}: could not write the resume point at record {}: {error}",
            checkpointer.dir.display(),
            point.size()
        );
    }
}
