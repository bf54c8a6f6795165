//! [`AuditLog`]: the handle the host appends through, and the group-commit
//! writer thread behind it.
//!
//! `append` is on every host call's path, so it only takes a mutex, pushes
//! the entry with the current time and wakes the writer: no hashing, no
//! encoding, no I/O. The writer thread takes everything pending at once,
//! links, encodes and writes it with one write and one `fdatasync`
//! ([`commit`](crate::commit)), then publishes how far the log is durable.
//! Callers that must not go on before their record is on disk wait on the
//! [`Ticket`] `append` returned.
//!
//! A write or sync error stops the writer for good; every later `append`,
//! `wait_durable` and `sync` reports [`AuditError::WriterFailed`].

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::commit::{Committer, Pending};
use crate::error::{AuditError, WriteFailure};
use crate::record::Entry;
use crate::recover::recover;
use crate::segment::sync_dir;
use crate::verify::TornTail;

/// Default size past which a new segment is started (64 MiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Name of the file a writer holds locked in the audit folder.
const LOCK_FILE: &str = "writer.lock";

/// How to open an audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// The log's origin line, written in every segment header (and later in
    /// every checkpoint); reopening with another origin is an error.
    pub origin: String,
    /// A segment holding records is closed once the next record would take
    /// it past this many bytes.
    pub segment_bytes: u64,
}

impl AuditOptions {
    /// Options with `origin` and the default segment size.
    pub fn new(origin: impl Into<String>) -> AuditOptions {
        AuditOptions {
            origin: origin.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// Proof of an append: the sequence number the entry gets once durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The sequence number the entry will carry.
    pub fn seq(self) -> u64 {
        self.0
    }
}

/// Counters of this session (since `open`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Entries appended.
    pub appended: u64,
    /// Entries written and synced.
    pub durable: u64,
    /// Group commits: rounds of one write and one sync (more when a batch
    /// crosses into a new segment).
    pub batches: u64,
    /// Bytes written, headers included.
    pub bytes_written: u64,
    pub segments_created: u64,
    /// The sequence number the next append gets.
    pub next_seq: u64,
}

/// A tamper-evident, append-only audit log in a folder of segment files.
///
/// Cheap to clone; all clones share one writer thread, which is flushed and
/// joined when the last clone is dropped.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    dir: PathBuf,
    recovered: Option<TornTail>,
    /// Held (locked) for as long as the log is open; released after the
    /// writer thread has been joined.
    _lock: File,
    #[cfg(test)]
    fail_next_sync: Arc<std::sync::atomic::AtomicBool>,
}

/// What `append` callers and the writer thread share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when entries are pending or the log is closing.
    work: Condvar,
    /// Signalled when the durable point moved or the writer failed.
    progress: Condvar,
}

struct State {
    pending: Vec<Pending>,
    /// The sequence number the next append gets.
    next_seq: u64,
    /// Every record below this sequence number is durable.
    durable_seq: u64,
    /// The sequence number of the first append of this session.
    session_seq: u64,
    failure: Option<Arc<WriteFailure>>,
    closing: bool,
    batches: u64,
    bytes_written: u64,
    segments_created: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters and a queue; a panic elsewhere cannot
        // leave it half-updated in a way that matters.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, condvar: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn failed(&self) -> Result<(), AuditError> {
        match &self.failure {
            Some(failure) => Err(AuditError::WriterFailed(failure.clone())),
            None => Ok(()),
        }
    }
}

impl AuditLog {
    /// Opens (creating if needed) the audit folder `dir`: reads back and
    /// verifies what is there, trims a torn tail (see
    /// [`recovered`](Self::recovered)), and starts the writer thread.
    pub fn open(dir: &Path, options: AuditOptions) -> Result<AuditLog, AuditError> {
        check_origin(&options.origin)?;
        create_folder(dir)?;
        let lock = lock_folder(dir)?;
        let recovered = recover(dir, &options.origin)?;
        let next_seq = recovered.chain.next_seq;
        let committer = Committer::new(
            dir,
            options.origin,
            options.segment_bytes,
            recovered.chain,
            recovered.last,
        )?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                next_seq,
                durable_seq: next_seq,
                session_seq: next_seq,
                failure: None,
                closing: false,
                batches: 0,
                bytes_written: 0,
                segments_created: 0,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        #[cfg(test)]
        let fail_next_sync = committer.fail_next_sync.clone();
        let writer = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("runway-audit".into())
                .spawn(move || write_loop(&shared, committer))
                .map_err(AuditError::Spawn)?
        };
        Ok(AuditLog {
            inner: Arc::new(Inner {
                shared,
                writer: Some(writer),
                dir: dir.to_owned(),
                recovered: recovered.trimmed,
                _lock: lock,
                #[cfg(test)]
                fail_next_sync,
            }),
        })
    }

    /// Queues `entry` and returns its ticket at once; the record is durable
    /// when [`wait_durable`](Self::wait_durable) on the ticket returns.
    pub fn append(&self, entry: Entry) -> Result<Ticket, AuditError> {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        state.failed()?;
        let time_ns = now_ns();
        state.pending.push(Pending { time_ns, entry });
        let seq = state.next_seq;
        state.next_seq += 1;
        drop(state);
        shared.work.notify_one();
        Ok(Ticket(seq))
    }

    /// Blocks until the ticket's record is durable and returns its sequence number.
    pub fn wait_durable(&self, ticket: Ticket) -> Result<u64, AuditError> {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        if ticket.0 >= state.next_seq {
            return Err(AuditError::ForeignTicket(ticket.0));
        }
        while ticket.0 >= state.durable_seq {
            state.failed()?;
            state = shared.wait(&shared.progress, state);
        }
        Ok(ticket.0)
    }

    /// Appends `entry` and waits until it is durable; returns its sequence number.
    pub fn append_durable(&self, entry: Entry) -> Result<u64, AuditError> {
        let ticket = self.append(entry)?;
        self.wait_durable(ticket)
    }

    /// Blocks until everything appended so far is durable.
    pub fn sync(&self) -> Result<(), AuditError> {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        let target = state.next_seq;
        while state.durable_seq < target {
            state.failed()?;
            state = shared.wait(&shared.progress, state);
        }
        Ok(())
    }

    /// Syncs, then drops this handle; the writer thread is joined once the
    /// last clone is gone.
    pub fn close(self) -> Result<(), AuditError> {
        self.sync()
    }

    /// The torn tail that `open` found and trimmed, if any.
    pub fn recovered(&self) -> Option<&TornTail> {
        self.inner.recovered.as_ref()
    }

    /// The audit folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters of this session.
    pub fn stats(&self) -> AuditStats {
        let state = self.inner.shared.lock();
        AuditStats {
            appended: state.next_seq - state.session_seq,
            durable: state.durable_seq - state.session_seq,
            batches: state.batches,
            bytes_written: state.bytes_written,
            segments_created: state.segments_created,
            next_seq: state.next_seq,
        }
    }

    /// Makes the writer's next sync fail, as a failing disk would.
    #[cfg(test)]
    pub(crate) fn fail_next_sync(&self) {
        (self.inner.fail_next_sync).store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.inner.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        if let Some(writer) = self.writer.take() {
            // A panic in the writer is already recorded as its failure.
            let _ = writer.join();
        }
    }
}

/// The writer thread: commit whatever is pending, publish, repeat; drain and
/// stop when closing; stop for good on the first failure.
fn write_loop(shared: &Shared, mut committer: Committer) {
    let mut panic_guard = PanicGuard {
        shared,
        armed: true,
    };
    let mut batch = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            while state.pending.is_empty() && !state.closing {
                state = shared.wait(&shared.work, state);
            }
            if state.pending.is_empty() {
                break;
            }
            std::mem::swap(&mut state.pending, &mut batch);
        }
        let records = batch.len() as u64;
        let result = committer.commit(&mut batch);
        let mut state = shared.lock();
        let stop = match result {
            Ok(committed) => {
                state.durable_seq += records;
                state.batches += 1;
                state.bytes_written += committed.bytes;
                state.segments_created += committed.segments_created;
                false
            }
            Err(failure) => {
                state.failure = Some(Arc::new(failure));
                state.pending.clear();
                true
            }
        };
        drop(state);
        shared.progress.notify_all();
        if stop {
            break;
        }
    }
    panic_guard.armed = false;
}

/// Turns a panic of the writer thread into a failure waiters can see,
/// instead of leaving them blocked forever.
struct PanicGuard<'a> {
    shared: &'a Shared,
    armed: bool,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.shared.lock();
            state
                .failure
                .get_or_insert_with(|| Arc::new(WriteFailure::Panicked));
            drop(state);
            self.shared.progress.notify_all();
        }
    }
}

/// Unix time in nanoseconds (0 before 1970, saturating after 2554).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn check_origin(origin: &str) -> Result<(), AuditError> {
    if origin.is_empty()
        || origin.len() > usize::from(u16::MAX)
        || origin.chars().any(char::is_control)
    {
        return Err(AuditError::InvalidOrigin(origin.to_owned()));
    }
    Ok(())
}

/// Creates the audit folder if missing, durably.
fn create_folder(dir: &Path) -> Result<(), AuditError> {
    if dir.is_dir() {
        return Ok(());
    }
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |error| AuditError::Io {
            action,
            path,
            error,
        }
    };
    fs::create_dir_all(dir).map_err(io("create audit folder", dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent).map_err(io("fsync folder", parent))?;
    }
    Ok(())
}

/// Takes the folder's writer lock so that two writers never interleave.
fn lock_folder(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| AuditError::Io {
            action: "open",
            path: path.clone(),
            error,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(AuditError::Locked(dir.to_owned())),
        Err(TryLockError::Error(error)) => Err(AuditError::Io {
            action: "lock",
            path,
            error,
        }),
    }
}
