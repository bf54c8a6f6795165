//! Checking chunks of frames on several threads while handing them back in
//! log order: a walk submits each [`Chunk`] it has read and gets every
//! checked chunk back, in the order submitted, through its `consume`
//! closure, so whatever links records to each other is still checked one
//! record after the other and the first bad record found is the same one a
//! single thread finds.
//!
//! With one thread, a chunk is checked and consumed when submitted. With
//! `n`, `n - 1` scoped workers take chunks from a queue, and the walking
//! thread checks queued chunks itself while the next one it needs is not
//! back yet, so all `n` threads share the work. At most [`IN_FLIGHT`]
//! chunks per thread are out at once.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Scope};

use crate::frame_check::Chunk;

/// The most threads chosen by default (see [`thread_count`]).
pub const MAX_DEFAULT_THREADS: usize = 8;
/// Chunks out at once, per thread.
const IN_FLIGHT: usize = 4;

/// `requested`, or the cores available up to [`MAX_DEFAULT_THREADS`].
pub(crate) fn thread_count(requested: Option<NonZeroUsize>) -> usize {
    match requested {
        Some(n) => n.get(),
        None => thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .min(MAX_DEFAULT_THREADS),
    }
}

/// Checks submitted chunks and hands them back in order.
pub(crate) struct CheckPool {
    workers: Option<Workers>,
    /// Consumed chunks, for reuse.
    spare: Vec<Chunk>,
}

/// The queue the workers take chunks from, and what they hand back.
struct Workers {
    shared: Arc<Shared>,
    done: Receiver<(u64, Chunk)>,
    /// Checked chunks back before their turn, by number.
    back: BTreeMap<u64, Chunk>,
    submitted: u64,
    consumed: u64,
    max_in_flight: u64,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(u64, Chunk)>,
    closed: bool,
}

impl CheckPool {
    /// A pool of `threads` threads in all (the caller's included), its
    /// workers spawned in `scope`. Workers that cannot be spawned are done
    /// without: the caller's thread alone still checks everything.
    pub fn start<'scope>(scope: &'scope Scope<'scope, '_>, threads: usize) -> CheckPool {
        let mut pool = CheckPool {
            workers: None,
            spare: Vec::new(),
        };
        if threads <= 1 {
            return pool;
        }
        let shared = Arc::new(Shared::default());
        let (tx, done) = mpsc::channel();
        for i in 1..threads {
            let (shared, tx) = (shared.clone(), tx.clone());
            let spawned = thread::Builder::new()
                .name(format!("audit-verify-{i}"))
                .spawn_scoped(scope, move || work(&shared, &tx));
            if spawned.is_err() {
                break;
            }
        }
        pool.workers = Some(Workers {
            shared,
            done,
            back: BTreeMap::new(),
            submitted: 0,
            consumed: 0,
            max_in_flight: (threads * IN_FLIGHT) as u64,
        });
        pool
    }

    /// An empty chunk to fill.
    pub fn chunk(&mut self) -> Chunk {
        self.spare.pop().unwrap_or_default()
    }

    /// Hands `chunk` on to be checked; `consume` gets it (or earlier ones)
    /// back, checked, in order. Stops at `consume`'s first error.
    pub fn submit<E>(
        &mut self,
        mut chunk: Chunk,
        consume: &mut impl FnMut(&mut Chunk) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(workers) = &mut self.workers else {
            chunk.check();
            return self.consumed(chunk, consume);
        };
        workers
            .shared
            .lock()
            .jobs
            .push_back((workers.submitted, chunk));
        workers.shared.wake.notify_one();
        workers.submitted += 1;
        while let Ok((number, chunk)) = workers.done.try_recv() {
            workers.back.insert(number, chunk);
        }
        loop {
            let Some(workers) = &mut self.workers else {
                unreachable!("checked above");
            };
            let next = workers.back.remove(&workers.consumed);
            let in_flight = workers.submitted - workers.consumed;
            match next {
                Some(chunk) => {
                    workers.consumed += 1;
                    self.consumed(chunk, consume)?;
                }
                None if in_flight > workers.max_in_flight => {
                    let chunk = workers.next_checked();
                    workers.consumed += 1;
                    self.consumed(chunk, consume)?;
                }
                None => return Ok(()),
            }
        }
    }

    /// Waits for every submitted chunk and consumes it, in order.
    pub fn drain<E>(
        &mut self,
        consume: &mut impl FnMut(&mut Chunk) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            let Some(workers) = &mut self.workers else {
                return Ok(());
            };
            if workers.consumed == workers.submitted {
                return Ok(());
            }
            let chunk = workers.next_checked();
            workers.consumed += 1;
            self.consumed(chunk, consume)?;
        }
    }

    fn consumed<E>(
        &mut self,
        mut chunk: Chunk,
        consume: &mut impl FnMut(&mut Chunk) -> Result<(), E>,
    ) -> Result<(), E> {
        let result = consume(&mut chunk);
        chunk.clear();
        self.spare.push(chunk);
        result
    }
}

impl Drop for CheckPool {
    /// Stops the workers: queued chunks are dropped, running ones finish.
    fn drop(&mut self) {
        if let Some(workers) = &self.workers {
            workers.shared.close();
        }
    }
}

impl Workers {
    /// The next chunk in order, checked: checking queued chunks on this
    /// thread while it is not back.
    fn next_checked(&mut self) -> Chunk {
        loop {
            if let Some(chunk) = self.back.remove(&self.consumed) {
                return chunk;
            }
            let job = self.shared.lock().jobs.pop_front();
            if let Some((number, mut chunk)) = job {
                chunk.check();
                self.back.insert(number, chunk);
                continue;
            }
            // Taken by a worker, which sends it back or panics; a panic
            // ends every worker and so the channel, and the scope then
            // passes it on.
            match self.done.recv() {
                Ok((number, chunk)) => {
                    self.back.insert(number, chunk);
                }
                Err(_) => panic!("every audit verify worker stopped"),
            }
        }
    }
}

/// Closes the queue if its worker panics, so that the other workers end
/// too and the walking thread, left waiting for the lost chunk, sees the
/// channel close.
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.close();
        }
    }
}

impl Shared {
    /// Drops queued chunks and wakes every worker to end.
    fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.jobs.clear();
        drop(queue);
        self.wake.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker: checks queued chunks and sends them back until closed.
fn work(shared: &Shared, done: &Sender<(u64, Chunk)>) {
    let _stop_all_on_panic = StopOnPanic(shared);
    loop {
        let mut queue = shared.lock();
        let job = loop {
            if let Some(job) = queue.jobs.pop_front() {
                break job;
            }
            if queue.closed {
                return;
            }
            queue = shared
                .wake
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(queue);
        let (number, mut chunk) = job;
        chunk.check();
        if done.send((number, chunk)).is_err() {
            return;
        }
    }
}
