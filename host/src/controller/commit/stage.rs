//! The landing stage: a thread of its own where flown runs queue up and
//! are landed many at a time (`land.rs`): a worker hands its run over and
//! takes the next one.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use runway_audit::{AuditError, AuditLog};

use super::super::workers::panic_text;
use super::land::{MAX_BATCH, land};
use crate::sandbox::{Flown, RunReport};
use crate::store::DatasetStore;

/// Flown runs that may wait for the stage before a worker handing one
/// over waits too (the back-pressure that keeps memory bounded).
const QUEUE: usize = 2 * MAX_BATCH;

/// Why the stage could not land a run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LandingError {
    /// The audit trail failed: nothing about the run may be reported done.
    #[error("audit trail failed, stopping: {0}")]
    Audit(Arc<AuditError>),
    /// A bug in the host while landing; the run's writes did not land
    /// unless its COMMITTED records say so.
    #[error("the landing stage failed: {0}")]
    Panicked(String),
}

/// Hears how one run landed.
pub type Reply = Box<dyn FnOnce(Result<RunReport, LandingError>) + Send>;

/// The stage's thread and the queue to it.
pub struct LandingStage {
    queue: Option<SyncSender<(Flown, Reply)>>,
    thread: Option<JoinHandle<()>>,
}

impl LandingStage {
    /// Starts the stage's thread, landing into `store` and `audit`.
    pub fn start(store: Arc<DatasetStore>, audit: AuditLog) -> std::io::Result<LandingStage> {
        let (queue, arrivals) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("runway-landing".into())
            .spawn(move || serve(&store, &audit, &arrivals))?;
        Ok(LandingStage {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Hands a flown run over; `reply` hears how it landed. Blocks only
    /// while the stage is [`QUEUE`] runs behind.
    pub fn submit(&self, flown: Flown, reply: Reply) {
        let sent = match &self.queue {
            Some(queue) => queue.send((flown, reply)),
            None => Err(std::sync::mpsc::SendError((flown, reply))),
        };
        // Only a stage whose thread died refuses; the run is told so.
        if let Err(std::sync::mpsc::SendError((_, reply))) = sent {
            reply(Err(LandingError::Panicked(
                "the landing stage is gone".into(),
            )));
        }
    }
}

impl Drop for LandingStage {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has landed the rest.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(store: &DatasetStore, audit: &AuditLog, arrivals: &Receiver<(Flown, Reply)>) {
    while let Ok(first) = arrivals.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (runs, replies): (Vec<Flown>, Vec<Reply>) = batch.into_iter().unzip();
        match catch_unwind(AssertUnwindSafe(|| land(store, audit, runs, &|_| {}))) {
            Ok(Ok(reports)) => {
                for (report, reply) in reports.into_iter().zip(replies) {
                    reply(Ok(report));
                }
            }
            Ok(Err(e)) => {
                let e = LandingError::Audit(Arc::new(e));
                for reply in replies {
                    reply(Err(e.clone()));
                }
            }
            Err(panic) => {
                let e = LandingError::Panicked(panic_text(&*panic));
                for reply in replies {
                    reply(Err(e.clone()));
                }
            }
        }
    }
}
