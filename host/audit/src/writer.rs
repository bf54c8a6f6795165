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
//! With signing keys, a second thread ([`checkpointer`](crate::checkpointer))
//! signs checkpoints of what is durable; [`sync`](AuditLog::sync) returns
//! once a durable checkpoint covers everything appended before it.
//!
//! An entry whose record could exceed the frame limit is refused by
//! `append` itself ([`AuditError::EntryTooLarge`], a cheap bound over its
//! strings and lists): it never reaches the writer. Only a write or sync
//! error stops the writer, for good; every later `append`, `wait_durable`
//! and `sync` reports [`AuditError::WriterFailed`], and
//! [`health`](AuditLog::health) says so without appending.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::checkpoint::{CheckpointWriter, write_latest};
use crate::checkpointer::{Checkpointer, checkpoint_loop};
use crate::commit::{Committer, Pending, Syncer, Written};
use crate::error::{AuditError, WriteFailure};
use crate::findings::TornTail;
use crate::forward::Forwarder;
use crate::frame::MAX_FRAME_LEN;
use crate::keys::PrivateKey;
use crate::latency::Latency;
use crate::record::Entry;
use crate::recover::{Recovered, recover};
use crate::resume::ResumePoint;
use crate::segment::sync_dir;
use crate::shared::{PanicGuard, Shared, State};
use crate::tail::Tail;

/// Default size past which a new segment is started (64 MiB).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default least time between two checkpoints no `sync` asked for.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);
/// Default bound on records durable but not yet under a signed checkpoint:
/// the most a crash can leave unsigned, and so what the verifier accepts
/// after the last checkpoint by default. 2^17 records (26 MB of 200-byte
/// records) is over 0.1 s of appends at 1M records/s: the checkpoint thread
/// (which signs early once half of it is waiting) keeps well inside it, and
/// the writer waits only if signing falls that far behind.
pub const DEFAULT_MAX_UNSIGNED: u64 = 1 << 17;

/// Name of the file a writer holds locked in the audit folder.
const LOCK_FILE: &str = "writer.lock";

/// How to open an audit log.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The log's origin line, written in every segment header and every
    /// checkpoint; reopening with another origin is an error.
    pub origin: String,
    /// A segment holding records is closed once the next record would take
    /// it past this many bytes.
    pub segment_bytes: u64,
    /// Keys that sign every checkpoint (two while rotating); none makes an
    /// unsigned log without checkpoints.
    pub signing_keys: Vec<PrivateKey>,
    /// Least time between two checkpoints that no `sync` asked for.
    pub checkpoint_interval: Duration,
    /// With signing keys: the writer never lets more records than this be
    /// durable without a durable signed checkpoint over them.
    pub max_unsigned: u64,
    /// Keep this many of the last durable records in memory for live
    /// readers ([`AuditLog::tail`]); 0 keeps none.
    pub tail: usize,
    /// Takes every batch once it is on disk, before it counts as durable
    /// (see [`Forward`](crate::Forward)); none by default.
    pub forward: Option<Forwarder>,
}

impl AuditOptions {
    /// Options with `origin`, the default segment size, and no signing key.
    pub fn new(origin: impl Into<String>) -> AuditOptions {
        AuditOptions {
            origin: origin.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            signing_keys: Vec::new(),
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            max_unsigned: DEFAULT_MAX_UNSIGNED,
            tail: 0,
            forward: None,
        }
    }

    /// Adds a key that signs checkpoints.
    pub fn signed_by(mut self, key: PrivateKey) -> AuditOptions {
        self.signing_keys.push(key);
        self
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

/// Where a batch went ([`AuditLog::append_batch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The ticket of the batch's last entry.
    pub last: Ticket,
    /// The time of the record before the batch. Each entry of the batch
    /// is written at the latest of this, its own time and the times of
    /// the entries before it in the batch.
    pub after_ns: u64,
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
    /// Checkpoints signed and made durable.
    pub checkpoints: u64,
    /// Records covered by the latest durable checkpoint (since ever).
    pub checkpointed: u64,
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
    checkpointer: Option<JoinHandle<()>>,
    signing: bool,
    dir: PathBuf,
    origin: String,
    recovered: Option<TornTail>,
    resumed_from: Option<u64>,
    torn_checkpoint: Option<(u64, u64)>,
    tail: Option<Tail>,
    /// Held (locked) for as long as the log is open; released after the
    /// writer thread has been joined.
    _lock: File,
    #[cfg(test)]
    fail_next_sync: Arc<std::sync::atomic::AtomicBool>,
}

impl AuditLog {
    /// Opens (creating if needed) the audit folder `dir`: reads back and
    /// verifies what is there (from the resume point on, when there is one
    /// that holds: see [`resumed_from`](Self::resumed_from)), trims a torn tail (see
    /// [`recovered`](Self::recovered)), and starts the writer thread (and
    /// the checkpoint thread, with signing keys).
    pub fn open(dir: &Path, options: AuditOptions) -> Result<AuditLog, AuditError> {
        check_origin(&options.origin)?;
        create_folder(dir)?;
        let lock = lock_folder(dir)?;
        let recovered = recover(dir, &options.origin, &options.signing_keys)?;
        report_recovery(dir, &recovered);
        let next_seq = recovered.chain.next_seq;
        let last_time_ns = recovered.chain.last_time_ns;
        let signing = !options.signing_keys.is_empty();
        let checkpointer = if signing {
            Some(prepare_checkpoints(dir, &options, &recovered)?)
        } else {
            None
        };
        let Recovered {
            chain,
            frontier,
            last,
            trimmed,
            signed_size,
            torn_checkpoint,
            resumed_from,
            ..
        } = recovered;
        let durable_root = frontier.root();
        let committer = Committer::new(
            dir,
            options.origin.clone(),
            options.segment_bytes,
            (chain, frontier),
            last,
        )?;
        let shared = Arc::new(Shared::new(State {
            pending: Vec::new(),
            next_seq,
            last_time_ns,
            durable_seq: next_seq,
            durable_root,
            checkpointed: signed_size.min(next_seq),
            // Records a previous session left unsigned are signed at once.
            checkpoint_wanted: next_seq,
            session_seq: next_seq,
            failure: None,
            closing: false,
            writer_done: false,
            batches: 0,
            bytes_written: 0,
            segments_created: 0,
            checkpoints: 0,
            syncs: Default::default(),
            max_unsigned: if signing {
                options.max_unsigned.max(1)
            } else {
                u64::MAX
            },
            resume: None,
        }));
        #[cfg(test)]
        let fail_next_sync = committer.fail_next_sync.clone();
        let tail = (options.tail > 0).then(|| Tail::new(options.tail, next_seq));
        let writer = {
            let shared = shared.clone();
            let out = Out {
                tail: tail.clone(),
                forward: options.forward.clone(),
            };
            thread::Builder::new()
                .name("runway-audit".into())
                .spawn(move || write_loop(&shared, committer, out))
                .map_err(AuditError::Spawn)?
        };
        let checkpointer = match checkpointer {
            None => None,
            Some(checkpointer) => {
                let shared_for_thread = shared.clone();
                let spawned = thread::Builder::new()
                    .name("runway-audit-checkpoint".into())
                    .spawn(move || checkpoint_loop(&shared_for_thread, checkpointer));
                match spawned {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        stop_writer(&shared, writer);
                        return Err(AuditError::Spawn(e));
                    }
                }
            }
        };
        Ok(AuditLog {
            inner: Arc::new(Inner {
                shared,
                writer: Some(writer),
                checkpointer,
                signing,
                dir: dir.to_owned(),
                origin: options.origin,
                recovered: trimmed,
                resumed_from,
                torn_checkpoint,
                tail,
                _lock: lock,
                #[cfg(test)]
                fail_next_sync,
            }),
        })
    }

    /// Queues `entry` and returns its ticket at once; the record is durable
    /// when [`wait_durable`](Self::wait_durable) on the ticket returns.
    pub fn append(&self, entry: Entry) -> Result<Ticket, AuditError> {
        check_size(&entry)?;
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        state.failed()?;
        let time_ns = now_ns().max(state.last_time_ns);
        state.last_time_ns = time_ns;
        state.pending.push(Pending { time_ns, entry });
        let seq = state.next_seq;
        state.next_seq += 1;
        drop(state);
        shared.work.notify_one();
        Ok(Ticket(seq))
    }

    /// Appends many entries at once, each with the time it happened (a run
    /// buffers its host calls and hands them over in batches: one lock and
    /// one wake-up per batch). Times never go backwards in the log: see
    /// [`Appended`] for the time each entry is written at. Returns where
    /// the batch went, unless it was empty.
    pub fn append_batch(&self, batch: Vec<(u64, Entry)>) -> Result<Option<Appended>, AuditError> {
        if batch.is_empty() {
            return Ok(None);
        }
        for (_, entry) in &batch {
            check_size(entry)?;
        }
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        state.failed()?;
        let n = batch.len() as u64;
        let after_ns = state.last_time_ns;
        let mut latest = after_ns;
        state
            .pending
            .extend(batch.into_iter().map(|(time_ns, entry)| {
                latest = latest.max(time_ns);
                Pending {
                    time_ns: latest,
                    entry,
                }
            }));
        state.last_time_ns = latest;
        state.next_seq += n;
        let last = Ticket(state.next_seq - 1);
        drop(state);
        shared.work.notify_one();
        Ok(Some(Appended { last, after_ns }))
    }

    /// The ticket of the newest record appended so far, by anyone: once
    /// it is durable, so is everything appended before it.
    pub fn last_ticket(&self) -> Option<Ticket> {
        let next = self.inner.shared.lock().next_seq;
        next.checked_sub(1).map(Ticket)
    }

    /// Stops the log the way a crash of the host would: every append from
    /// now on is refused, records not yet written are dropped, whoever
    /// waits for them is told the log stopped, and what is durable stays.
    /// Crash tests stop a host mid-work with it without killing their own
    /// process.
    pub fn halt(&self) {
        self.inner.shared.fail(WriteFailure::Halted);
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

    /// Blocks until everything appended so far is durable and, when the
    /// log is signed, covered by a durable signed checkpoint. A stopped
    /// log answers its failure, even when nothing was pending.
    pub fn sync(&self) -> Result<(), AuditError> {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        state.failed()?;
        let target = state.next_seq;
        if self.inner.signing {
            if state.checkpoint_wanted < target {
                state.checkpoint_wanted = target;
                shared.checkpoint.notify_one();
            }
            while state.checkpointed < target {
                state.failed()?;
                state = shared.wait(&shared.progress, state);
            }
        } else {
            while state.durable_seq < target {
                state.failed()?;
                state = shared.wait(&shared.progress, state);
            }
        }
        Ok(())
    }

    /// Ok while the writer runs; once it stopped (an I/O failure), the
    /// failure that stopped it.
    pub fn health(&self) -> Result<(), AuditError> {
        self.inner.shared.lock().failed()
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

    /// The sequence number the next append gets (the number of records
    /// appended so far, by anyone, since the log began).
    pub fn next_seq(&self) -> u64 {
        self.inner.shared.lock().next_seq
    }

    /// The size of the resume point `open` read the log from (it read and
    /// checked only the records after it), or `None` if it read the whole
    /// log (no usable resume point; the log says why).
    pub fn resumed_from(&self) -> Option<u64> {
        self.inner.resumed_from
    }

    /// The incomplete last entry of `checkpoints` that `open` found, as
    /// (offset, bytes); trimmed when the log is signed.
    pub fn recovered_checkpoint(&self) -> Option<(u64, u64)> {
        self.inner.torn_checkpoint
    }

    /// How long the writer's syncs (`fdatasync` of a batch) have taken.
    pub fn sync_latency(&self) -> Latency {
        self.inner.shared.lock().syncs.clone()
    }

    /// The live end of the trail, when opened with [`AuditOptions::tail`].
    pub fn tail(&self) -> Option<&Tail> {
        self.inner.tail.as_ref()
    }

    /// The audit folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The log's origin: the name of the host's shard.
    pub fn origin(&self) -> &str {
        &self.inner.origin
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
            checkpoints: state.checkpoints,
            checkpointed: state.checkpointed,
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
        if let Some(writer) = self.writer.take() {
            stop_writer(&self.shared, writer);
        }
        if let Some(checkpointer) = self.checkpointer.take() {
            // It signs what the writer drained, then stops; a panic is
            // already recorded as its failure.
            let _ = checkpointer.join();
        }
    }
}

/// Tells the writer to drain and stop, and waits for it.
fn stop_writer(shared: &Shared, writer: JoinHandle<()>) {
    shared.lock().closing = true;
    shared.work.notify_all();
    // A panic in the writer is already recorded as its failure.
    let _ = writer.join();
}

/// Opens `checkpoints` for appending (trimming a torn entry) and puts the
/// latest checkpoint back in `checkpoint` if a crash left it behind.
fn prepare_checkpoints(
    dir: &Path,
    options: &AuditOptions,
    recovered: &Recovered,
) -> Result<Checkpointer, AuditError> {
    let step = |(action, path, error)| AuditError::Io {
        action,
        path,
        error,
    };
    let writer =
        CheckpointWriter::open(dir, recovered.checkpoints_len, recovered.last_checkpoint_at)
            .map_err(step)?;
    if let Some(latest) = &recovered.stale_latest {
        write_latest(dir, latest.to_string().as_bytes()).map_err(step)?;
    }
    Ok(Checkpointer {
        dir: dir.to_owned(),
        writer,
        keys: options.signing_keys.clone(),
        origin: options.origin.clone(),
        interval: options.checkpoint_interval,
    })
}

/// Says on the log what recovery cut off.
fn report_recovery(dir: &Path, recovered: &Recovered) {
    if let Some(torn) = &recovered.trimmed {
        tracing::warn!(
            "audit {}: trimmed a torn tail beyond the last checkpoint: {torn}",
            dir.display()
        );
    }
    if let Some((offset, bytes)) = recovered.torn_checkpoint {
        tracing::warn!(
            "audit {}: found a torn checkpoint entry ({bytes} bytes at {offset} of checkpoints)",
            dir.display()
        );
    }
}

/// A batch written, its sync running: published once the sync returns.
struct InFlight {
    records: u64,
    written: Written,
    kept: Option<Vec<crate::record::Record>>,
    /// Where the log stands after this batch, when the writer took it.
    point: Option<ResumePoint>,
}

/// Least time between two resume points the writer takes while appending
/// (it takes one more when it closes): a crash leaves at most about this
/// much of appending, plus what no checkpoint covers yet, to be read again
/// by the next open.
const RESUME_INTERVAL: Duration = Duration::from_millis(250);

/// The writer thread: write whatever is pending, and while its sync runs
/// write the next; publish each batch once synced, in order; drain and stop
/// when closing; stop for good on the first failure.
fn write_loop(shared: &Shared, mut committer: Committer, out: Out) {
    let mut panic_guard = PanicGuard {
        shared,
        armed: true,
    };
    let syncer = match Syncer::start() {
        Ok(syncer) => syncer,
        Err(error) => {
            shared.fail(WriteFailure::Io {
                action: "start the sync thread for",
                path: PathBuf::from("the audit folder"),
                error,
            });
            shared.lock().writer_done = true;
            panic_guard.armed = false;
            return;
        }
    };
    let mut batch = Vec::new();
    let mut in_flight: Option<InFlight> = None;
    let mut last_point: Option<Instant> = None;
    loop {
        {
            let mut state = shared.lock();
            let room = loop {
                // The batch being synced counts as durable already.
                let flying = in_flight.as_ref().map_or(0, |f| f.records);
                let room = state.unsigned_room().saturating_sub(flying);
                if state.pending.is_empty() || room == 0 {
                    if in_flight.is_some() {
                        break 0;
                    }
                    if state.pending.is_empty() {
                        if state.closing {
                            break 0;
                        }
                        state = shared.wait(&shared.work, state);
                    } else {
                        // Too much is durable and unsigned: wait for a checkpoint.
                        state = shared.wait(&shared.progress, state);
                    }
                } else {
                    break room;
                }
            };
            if room == 0 {
                drop(state);
                match in_flight.take() {
                    // Nothing to write meanwhile: publish what is syncing.
                    Some(flying) => {
                        if !publish(shared, &syncer, flying, &out) {
                            break;
                        }
                        continue;
                    }
                    None => {
                        // Closing, everything durable: where the next open
                        // resumes.
                        keep_final_point(shared, &committer);
                        break;
                    }
                }
            }
            if room >= state.pending.len() as u64 {
                std::mem::swap(&mut state.pending, &mut batch);
            } else {
                batch.extend(state.pending.drain(..room as usize));
            }
        }
        let records = batch.len() as u64;
        let mut kept = out.keeps().then(|| Vec::with_capacity(batch.len()));
        let written = committer.write(&mut batch, kept.as_mut());
        let point = if last_point.is_none_or(|at| at.elapsed() >= RESUME_INTERVAL) {
            last_point = Some(Instant::now());
            committer.resume_point()
        } else {
            None
        };
        // The previous batch, synced while this one was written.
        if let Some(flying) = in_flight.take()
            && !publish(shared, &syncer, flying, &out)
        {
            break;
        }
        match written {
            Ok(mut written) => {
                if let Some(job) = written.sync.take() {
                    syncer.start_job(job);
                    in_flight = Some(InFlight {
                        records,
                        written,
                        kept,
                        point,
                    });
                } else {
                    let flying = InFlight {
                        records,
                        written,
                        kept,
                        point,
                    };
                    if !publish_synced(shared, flying, &out) {
                        break;
                    }
                }
            }
            Err(failure) => {
                shared.fail(failure);
                break;
            }
        }
    }
    drop(syncer);
    shared.lock().writer_done = true;
    shared.checkpoint.notify_all();
    panic_guard.armed = false;
}

/// Where a durable batch goes besides the waiters.
struct Out {
    tail: Option<Tail>,
    forward: Option<Forwarder>,
}

impl Out {
    /// Whether batches must keep their records for the tail or the forward.
    fn keeps(&self) -> bool {
        self.tail.is_some() || self.forward.is_some()
    }
}

/// Waits for the sync of `flying` and publishes it as durable; `false`
/// (and the writer failed) if the sync failed or the forward refused it.
fn publish(shared: &Shared, syncer: &Syncer, mut flying: InFlight, out: &Out) -> bool {
    match syncer.wait() {
        Ok(took) => {
            flying.written.committed.syncs[1] = Some(took);
            publish_synced(shared, flying, out)
        }
        Err(failure) => {
            shared.fail(failure);
            false
        }
    }
}

/// Publishes a synced batch: forwarded, in the tail, then durable for
/// waiters and the checkpoint thread; `false` (and the writer failed) if
/// the forward refused it.
fn publish_synced(shared: &Shared, flying: InFlight, out: &Out) -> bool {
    // Forwarded and in the tail before anyone is told they are durable.
    if let (Some(forward), Some(kept)) = (&out.forward, &flying.kept)
        && let (Some(first), Some(last)) = (kept.first(), kept.last())
        && let Err(why) = forward.0.forward(kept)
    {
        shared.fail(WriteFailure::Forward {
            first: first.seq,
            last: last.seq,
            why,
        });
        return false;
    }
    if let (Some(tail), Some(kept)) = (&out.tail, flying.kept) {
        tail.push(kept);
    }
    let committed = flying.written.committed;
    let mut state = shared.lock();
    state.durable_seq += flying.records;
    state.durable_root = flying.written.root;
    state.batches += 1;
    state.bytes_written += committed.bytes;
    state.segments_created += committed.segments_created;
    for took in committed.syncs.into_iter().flatten() {
        state.syncs.record(took);
    }
    if let Some(point) = flying.point {
        state.resume = Some(Box::new(point));
    }
    drop(state);
    shared.progress.notify_all();
    shared.checkpoint.notify_one();
    true
}

/// Publishes where the log stands once the writer drained everything, if
/// it stopped cleanly and is ahead of the newest resume point.
fn keep_final_point(shared: &Shared, committer: &Committer) {
    let Some(point) = committer.resume_point() else {
        return;
    };
    let mut state = shared.lock();
    let newer = state
        .resume
        .as_ref()
        .is_none_or(|p| p.size() < point.size());
    if state.failure.is_none() && newer {
        state.resume = Some(Box::new(point));
    }
}

/// Refuses an entry whose record could be too large to frame, so that it
/// never reaches (and stops) the writer.
fn check_size(entry: &Entry) -> Result<(), AuditError> {
    if let Some((len, max)) = entry.event.over_cap() {
        return Err(AuditError::FieldTooLarge { len, max });
    }
    let bound = entry.encoded_bound();
    let max = MAX_FRAME_LEN as usize;
    if bound > max {
        return Err(AuditError::EntryTooLarge { bound, max });
    }
    Ok(())
}

/// Unix time in nanoseconds (0 before 1970, saturating after 2554).
pub fn now_ns() -> u64 {
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
