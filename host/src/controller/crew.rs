//! A standby's crew (DESIGN.md, "Beyond one machine"): while a host on a
//! shared database stands by, its crew flies the runs the leader posted
//! for want of a free worker (`remote.rs`), so every host is a worker.
//!
//! - **Claiming.** The crew claims what it has workers for, of the agents
//!   it loaded (same digest), woken by the database's `NOTIFY` when work
//!   is posted and when one of its runs ends; a slow look every
//!   [`LOOK`] covers a notification lost with its connection.
//! - **Flying.** A claimed run flies in this host's sandbox, exactly as on
//!   the leader, but its records go into a shard of the crew's own (the
//!   host's origin + `+crew`, signed by the host's key), and it lands
//!   through a store that checks the claim in the commit's transaction.
//! - **Recording.** The crew's log forwards each run's records to the
//!   shared history under its claim ([`CrewForward`]); the batch holding
//!   the run's end carries the run's report, and ends the work, in the
//!   same transaction — the leader lands the run from that report. A
//!   claim lost meanwhile (this host stopped beating, or the lead changed
//!   hands) refuses the records: they stay in the crew's shard alone, and
//!   the leader settles the run from the history.
//! - **Cancelling.** A cancel the leader posts reaches the run at once.
//!
//! The crew stops when its host takes the lead: its runs in flight are
//! stopped, and the new leader takes every unfinished claim away.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use runway_audit::{AuditLog, AuditOptions, Entry, Event, Forward, Forwarder, Hash, Record};

use super::commit::land;
use super::mirror::in_history;
use super::order::Order;
use super::workers::Workers;
use crate::plugin::{Plugin, Plugins};
use crate::sandbox::{Cancel, Observer, RunFailure, RunReport, RunRequest, Runtime, Sandbox, fly};
use crate::store::{CANCELLED, Claimed, CrewRecord, DatasetStore, POSTED, Shared};

/// How often a crew looks for work without being told of any.
const LOOK: Duration = Duration::from_secs(1);

/// Longest the crew's log waits for a run's report to go with its end.
const REPORT_WAIT: Duration = Duration::from_secs(30);

/// What a crew needs from its host.
pub struct CrewSetup {
    pub runtime: Arc<Runtime>,
    pub plugins: Arc<Plugins>,
    /// The crew's audit folder, and its options (origin: the crew's).
    pub audit: PathBuf,
    pub audit_options: AuditOptions,
    pub workers: usize,
}

/// A crew at work; stopped when dropped.
pub struct Crew {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

/// What the crew's loop, its runs and its log share.
struct Inner {
    shared: Shared,
    stop: AtomicBool,
    /// Wakes the loop (a notification, a run done, a stop).
    wake: Sender<(String, String)>,
    /// Runs in flight, by runway (one attempt of each at most).
    flights: Mutex<HashMap<String, Flight>>,
    /// Reports of runs ending, by work, until their end is recorded.
    reports: Mutex<HashMap<u64, Vec<u8>>>,
    reported: Condvar,
}

struct Flight {
    work: u64,
    cancel: Cancel,
    /// Its claim was taken away: the history refused its records.
    lost: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Crew {
    /// Opens the crew's shard and starts claiming work on `shared`.
    pub fn start(shared: &Shared, setup: CrewSetup) -> Result<Crew, super::StartError> {
        let store = DatasetStore::crew(shared)
            .map(Arc::new)
            .ok_or_else(|| super::StartError::Crew("the host has not joined".into()))?;
        let (wake, woken) = channel();
        let inner = Arc::new(Inner {
            shared: shared.clone(),
            stop: AtomicBool::new(false),
            wake,
            flights: Mutex::default(),
            reports: Mutex::default(),
            reported: Condvar::new(),
        });
        let CrewSetup {
            runtime,
            plugins,
            audit,
            mut audit_options,
            workers,
        } = setup;
        audit_options.forward = Some(Forwarder(Arc::new(CrewForward(inner.clone()))));
        let left = left_behind(shared, &audit)?;
        let audit = AuditLog::open(&audit, audit_options)?;
        void(&audit, &left)?;
        let pool = Workers::start(workers).map_err(super::StartError::Landing)?;
        if let Err(e) = shared.offer(workers) {
            tracing::warn!("could not offer this host's crew: {e}");
        }
        let crew = Flying {
            inner: inner.clone(),
            store,
            audit,
            runtime,
            plugins,
            pool,
            workers: workers.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("runway-crew".into())
            .spawn(move || crew.work(&woken))
            .map_err(super::StartError::Landing)?;
        Ok(Crew {
            inner,
            thread: Some(thread),
        })
    }
}

impl Crew {
    /// Runs it flies now.
    pub fn in_flight(&self) -> u64 {
        lock(&self.inner.flights).len() as u64
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        for flight in lock(&self.inner.flights).values() {
            flight.cancel.host_stopping();
        }
        let _ = self.inner.wake.send((String::new(), String::new()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Err(e) = self.inner.shared.offer(0) {
            tracing::warn!("could not withdraw this host's crew: {e}");
        }
    }
}

/// The crew's loop and what its runs fly with.
struct Flying {
    inner: Arc<Inner>,
    store: Arc<DatasetStore>,
    audit: AuditLog,
    runtime: Arc<Runtime>,
    plugins: Arc<Plugins>,
    pool: Workers,
    workers: usize,
}

impl Flying {
    fn work(self, woken: &std::sync::mpsc::Receiver<(String, String)>) {
        let me = Arc::new(self);
        let digests: Vec<Hash> = me.plugins.iter().map(|p| p.digest).collect();
        let mut listening = None;
        while !me.inner.stop.load(Ordering::Acquire) {
            if listening
                .as_ref()
                .is_none_or(crate::store::Listening::closed)
            {
                let channels = [POSTED, CANCELLED];
                listening = match me.inner.shared.listen(&channels, me.inner.wake.clone()) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!(
                            "the crew cannot listen for work (looking every second): {e}"
                        );
                        None
                    }
                };
            }
            // A crew whose log stopped (its disk failed, or the history
            // refused a batch) can record nothing more: it claims no
            // more, and gives up what it holds for the leader to retry.
            if let Err(e) = me.audit.health() {
                tracing::error!("this host's crew stops: its shard takes no more records ({e})");
                me.give_up();
                break;
            }
            // One attempt of a runway at a time here: the shard's records
            // name the runway, not the attempt.
            let (free, busy) = {
                let flights = lock(&me.inner.flights);
                let busy: Vec<String> = flights.keys().cloned().collect();
                (me.workers.saturating_sub(flights.len()), busy)
            };
            if free > 0 {
                match me.inner.shared.claim(&digests, free, &busy) {
                    Ok(claimed) => {
                        for claim in claimed {
                            Flying::take_off(&me, claim);
                        }
                    }
                    Err(e) => tracing::warn!("the crew could not claim work: {e}"),
                }
            }
            if let Ok((channel, payload)) = woken.recv_timeout(LOOK)
                && channel == CANCELLED
            {
                me.cancelled(&payload);
            }
        }
        // Stopping: the runs in flight were told to stop; they land first,
        // and their workers let go of the crew, so that its shard is
        // closed here, before the crew counts as stopped (a host taking
        // the lead opens it next).
        while !lock(&me.inner.flights).is_empty() || Arc::strong_count(&me) > 1 {
            let _ = woken.recv_timeout(Duration::from_millis(20));
        }
    }

    /// Gives up every claim of this crew's and withdraws its workers: its
    /// runs stop, the leader hears each was lost and retries it, and posts
    /// nothing more for this crew.
    fn give_up(&self) {
        for flight in lock(&self.inner.flights).values() {
            flight.cancel.host_stopping();
        }
        if let Err(e) = self.inner.shared.offer(0) {
            tracing::error!("this host's crew could not withdraw its workers: {e}");
        }
        match self.inner.shared.abandon() {
            Ok(runways) if !runways.is_empty() => {
                tracing::warn!("this host's crew gave up runways {}", runways.join(", "));
            }
            Ok(_) => {}
            Err(e) => tracing::error!("this host's crew could not give up its claims: {e}"),
        }
    }

    /// Work `payload` was cancelled: its run stops, if it flies here.
    fn cancelled(&self, payload: &str) {
        let Ok(id) = payload.parse::<u64>() else {
            return;
        };
        let flights = lock(&self.inner.flights);
        let Some(flight) = flights.values().find(|f| f.work == id) else {
            return;
        };
        match self.inner.shared.work_cancelled(id) {
            Ok(Some(by)) => flight.cancel.cancel(&by),
            Ok(None) => {}
            Err(e) => tracing::warn!("could not read who cancelled work {id}: {e}"),
        }
    }

    /// Flies `claim` on one of the crew's workers.
    fn take_off(me: &Arc<Flying>, claim: Claimed) {
        let Some(plugin) = me
            .plugins
            .iter()
            .find(|p| p.digest == claim.digest)
            .cloned()
        else {
            return;
        };
        let cancel = Cancel::default();
        let flight = Flight {
            work: claim.id,
            cancel: cancel.clone(),
            lost: false,
        };
        lock(&me.inner.flights).insert(claim.runway.clone(), flight);
        let (job, done) = (me.clone(), me.clone());
        let (runway, work) = (claim.runway.clone(), claim.id);
        me.pool.run(
            move || job.fly(&claim, &plugin, cancel),
            move |flown| {
                if let Err(why) = flown.and_then(|f| f.map_err(|e| e.to_string())) {
                    tracing::warn!("the crew's run of {runway} did not land: {why}");
                }
                // Its next attempt may already fly here (the leader heard
                // of this one's end and posted a retry): that one's
                // flight stays.
                let flight = {
                    let mut flights = lock(&done.inner.flights);
                    match flights.get(&runway) {
                        Some(f) if f.work == work => flights.remove(&runway),
                        _ => None,
                    }
                };
                if flight.is_some_and(|f| f.lost)
                    && let Err(e) = abandon(&done.audit, &runway, "its claim was taken away")
                {
                    tracing::warn!("could not record that runway {runway} was abandoned: {e}");
                }
                let _ = done.inner.wake.send((String::new(), String::new()));
            },
        );
    }

    /// One claimed run, flown and landed; its report goes with its end.
    fn fly(
        &self,
        claim: &Claimed,
        plugin: &Arc<Plugin>,
        cancel: Cancel,
    ) -> Result<(), runway_audit::AuditError> {
        let keep = |reports: &[RunReport]| {
            if let Some(report) = reports.first() {
                self.inner.keep(claim.id, report);
            }
        };
        let order = match Order::decode(&claim.request) {
            Ok(order) => order,
            Err(e) => {
                // Another Runway's order: the run fails, saying so.
                let failure = RunFailure::HostFault(format!("the posted run does not read: {e}"));
                keep(&[RunReport::failed(failure.clone())]);
                let ticket = self.audit.append(Entry {
                    runway: claim.runway.clone(),
                    agent: plugin.name.clone(),
                    plugin: Some(plugin.digest),
                    dataset: None,
                    event: Event::Failed {
                        reason: failure.to_string(),
                    },
                })?;
                self.audit.wait_durable(ticket)?;
                return Ok(());
            }
        };
        let mut program = plugin.program();
        program.limits = order.limits;
        let req = RunRequest {
            runway: claim.runway.clone(),
            program,
            action: order.action,
            input: order.input,
            attempt: claim.attempt,
            locks: order.locks,
            cancel,
            delegator: None,
            keep_output: order.keep_output,
        };
        let epoch = self.runtime.epoch();
        let sandbox = Sandbox {
            engine: self.runtime.engine(),
            epoch: &epoch,
            store: &self.store,
            audit: &self.audit,
        };
        let observer: Observer = Arc::new(|_: &Entry| {});
        let flown = fly(sandbox, req, &observer)?;
        land(&self.store, &self.audit, vec![flown], &keep)?;
        Ok(())
    }
}

impl Inner {
    /// Keeps `report` of work `work` for its end record.
    fn keep(&self, work: u64, report: &RunReport) {
        match postcard::to_allocvec(report) {
            Ok(bytes) => {
                lock(&self.reports).insert(work, bytes);
                self.reported.notify_all();
            }
            Err(e) => tracing::error!("the report of work {work} does not encode: {e}"),
        }
    }

    /// The report of work `work`, waiting for it a while.
    fn report(&self, work: u64) -> Result<Vec<u8>, String> {
        let reports = lock(&self.reports);
        let (mut reports, _) = self
            .reported
            .wait_timeout_while(reports, REPORT_WAIT, |r| !r.contains_key(&work))
            .unwrap_or_else(|p| p.into_inner());
        reports
            .remove(&work)
            .ok_or_else(|| format!("no report of work {work} came with its end"))
    }
}

/// Voids, in the crew's shard at `dir`, what an earlier process of this
/// host's crew left behind ([`left_behind`]): called by a host that takes
/// the lead, once its own crew has stopped and every claim was taken — the
/// crew of its previous process may have been killed as it stopped, and
/// only its next start would otherwise say so.
pub fn void_left_behind(
    shared: &Shared,
    dir: &std::path::Path,
    options: AuditOptions,
) -> Result<(), super::StartError> {
    if !dir.exists() {
        return Ok(());
    }
    let left = left_behind(shared, dir)?;
    if left.is_empty() {
        return Ok(());
    }
    let audit = AuditLog::open(dir, options)?;
    void(&audit, &left)?;
    audit.close()?;
    Ok(())
}

/// The runways whose attempt an earlier process of this host's crew left
/// behind: what it claimed died with it (given up now, the leader hears),
/// and so did any run it ended on its disk whose end the history never
/// took (it died between the two).
fn left_behind(shared: &Shared, dir: &std::path::Path) -> Result<Vec<String>, super::StartError> {
    let crew_err = |e: crate::store::StoreError| super::StartError::Crew(e.to_string());
    let mut left = shared.abandon().map_err(crew_err)?;
    for runway in untaken(dir, shared).map_err(crew_err)? {
        if !left.contains(&runway) {
            left.push(runway);
        }
    }
    Ok(left)
}

/// Records each of `runways`' attempt void in the crew's shard `audit`.
fn void(audit: &AuditLog, runways: &[String]) -> Result<(), runway_audit::AuditError> {
    for runway in runways {
        tracing::warn!(
            "this host's crew gave up runway {runway}, which it flew before it restarted"
        );
        abandon(audit, runway, "the crew restarted")?;
    }
    Ok(())
}

/// Records in the crew's shard that its attempt of `runway` is void: the
/// history did not take its records (`runway_audit::check_together` sets
/// them aside).
fn abandon(audit: &AuditLog, runway: &str, why: &str) -> Result<(), runway_audit::AuditError> {
    let ticket = audit.append(Entry {
        runway: runway.to_string(),
        agent: String::new(),
        plugin: None,
        dataset: None,
        event: Event::Abandoned {
            reason: format!(
                "{why}; this attempt's records here were not taken by the shared history"
            ),
        },
    })?;
    audit.wait_durable(ticket).map(drop)
}

/// The runways of the crew's shard at `dir` whose last attempt ended
/// there, not abandoned, with an end record the shared history never took.
fn untaken(
    dir: &std::path::Path,
    shared: &Shared,
) -> Result<Vec<String>, crate::store::StoreError> {
    let records = match dir.exists() {
        true => runway_audit::read_records(dir).unwrap_or_else(|e| {
            tracing::warn!("the crew's shard does not read back ({e}); not reconciled");
            Vec::new()
        }),
        false => Vec::new(),
    };
    // Runway → the end record of its last attempt.
    let mut ended: HashMap<String, u64> = HashMap::new();
    for r in &records {
        match &r.entry.event {
            Event::Started { .. } | Event::Abandoned { .. } => {
                ended.remove(&r.entry.runway);
            }
            e if ends(e) => {
                ended.insert(r.entry.runway.clone(), r.seq);
            }
            _ => {}
        }
    }
    let seqs: Vec<u64> = ended.values().copied().collect();
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let taken: std::collections::HashSet<u64> = shared.taken_of_crew(&seqs)?.into_iter().collect();
    Ok(ended
        .into_iter()
        .filter(|(_, seq)| !taken.contains(seq))
        .map(|(runway, _)| runway)
        .collect())
}

/// Whether `event` ends a run's attempt.
fn ends(event: &Event) -> bool {
    matches!(
        event,
        Event::Succeeded { .. } | Event::Failed { .. } | Event::Moved { .. }
    )
}

/// The crew's log's door to the shared history: each claimed run's
/// records, under its claim, one transaction per run.
struct CrewForward(Arc<Inner>);

impl Forward for CrewForward {
    fn forward(&self, records: &[Record]) -> Result<(), String> {
        let mut works: BTreeMap<u64, Vec<&Record>> = BTreeMap::new();
        {
            let flights = lock(&self.0.flights);
            for record in records.iter().filter(|r| in_history(&r.entry)) {
                match flights.get(&record.entry.runway) {
                    Some(flight) => works.entry(flight.work).or_default().push(record),
                    None => tracing::warn!(
                        "record {} of runway {} is of no run flying on this crew: the history does not take it",
                        record.seq,
                        record.entry.runway
                    ),
                }
            }
        }
        for (work, records) in works {
            let mut rows = Vec::with_capacity(records.len());
            for record in records {
                let report = match ends(&record.entry.event) {
                    true => Some(self.0.report(work)?),
                    false => None,
                };
                rows.push(CrewRecord {
                    work,
                    seq: record.seq,
                    time_ns: record.time_ns,
                    entry: record
                        .encode()
                        .map_err(|e| format!("record {}: {e}", record.seq))?,
                    report,
                });
            }
            match self.0.shared.record_claimed(&rows) {
                Ok(true) => {}
                // Lost: its records stay in this shard alone; the leader
                // settles the run from the history.
                Ok(false) => {
                    tracing::warn!(
                        "work {work} was taken from this host's crew: its records stay in the crew's shard"
                    );
                    for flight in lock(&self.0.flights)
                        .values_mut()
                        .filter(|f| f.work == work)
                    {
                        flight.cancel.host_stopping();
                        flight.lost = true;
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}
