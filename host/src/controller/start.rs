//! The one start path: how a host comes up, for `runway serve`,
//! `runway run`, the benches and the tests alike (DESIGN.md, "Layout").
//!
//! [`open`] does, in this order:
//! 1. **Claim and open.** The dataset store takes its data root (a second
//!    host on it is refused), the audit log its folder (its writer lock).
//! 2. **One pass over the trail's tail.** The journal's snapshot
//!    ([`super::snapshot`]) holds what the fold and the commit recovery
//!    need up to some record; every record after it is read once,
//!    verified, and handed to both the commit recovery (`Unsettled`) and
//!    the snapshot, whose records then fold into the journal ([`Fold`]).
//!    A start that read many records leaves a new snapshot behind.
//! 3. **Settle.** Commits and runs the crash interrupted are settled
//!    against the store; the records that says are appended (and folded),
//!    so the trail and the store agree before anything new happens.
//! 4. **Plugins.** The first scan of the plugins folder (or the plugins
//!    given) is recorded: LOAD per plugin, a refusal per broken one.
//! 5. **The host**, holding the folded journal for its first controller
//!    ([`super::start`]).
//!
//! On a PostgreSQL database that hosts share, step 1 joins the hosts and
//! waits until this one leads (`standing.rs`); the log then forwards the
//! controller's records into the shared history (`mirror.rs`), and step 2
//! reads that history — every host's records — instead of this host's
//! trail; steps 3–5 are the same.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use runway_audit::{
    AuditError, AuditLog, AuditOptions, EncodeError, Entry, Event, Forwarder, Record, VerifyError,
};

use super::commit::{CommitError as RecoveryError, Settled, Unsettled};
use super::crew::{Crew, CrewSetup};
use super::host::Host;
use super::journal::{Fold, folds};
use super::keeper::{Keeper, Kept};
use super::mirror::Mirror;
use super::place::Place;
use super::snapshot::Snapshot;
use super::standing::{self, LeadKeeper};
use crate::plugin::loader::{LoadError, Plugins};
use crate::plugin::watch::{PluginChange, PluginFolder};
use crate::sandbox::Runtime;
use crate::store::{DatasetStore, Leader, Shared, StoreConfig, StoreError};

/// Where a host keeps its things and what it runs.
pub struct HostSetup {
    /// The data root (datasets, fences, commits).
    pub data: PathBuf,
    /// The audit folder, and how its log is opened (origin, keys, tail).
    pub audit: PathBuf,
    pub audit_options: AuditOptions,
    pub runtime: Arc<Runtime>,
    pub plugins: PluginSource,
    /// Most runs at once.
    pub workers: usize,
    /// Records past the journal's snapshot that make a new one, at start
    /// and while the host runs ([`SNAPSHOT_AFTER`] unless a test wants
    /// more of them).
    pub snapshot_after: u64,
}

/// Where the host's agents come from.
pub enum PluginSource {
    /// A plugins folder, scanned now (and followed later by its caller).
    Folder(PluginFolder),
    /// Plugins loaded already (`runway run`, the embedded agents, tests).
    Loaded(Arc<Plugins>),
}

/// A host that came up, before its controller starts.
pub struct Opened {
    pub host: Arc<Host>,
    /// What the start-up settled of a crash.
    pub settled: Settled,
    /// The plugins folder, scanned, for its caller to follow.
    pub folder: Option<PluginFolder>,
    /// Records of the trail read past the journal's snapshot.
    pub tail: u64,
}

/// Why a host could not come up; nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the data root: {0}")]
    Store(#[from] StoreError),
    #[error("opening the audit trail: {0}")]
    Audit(#[from] AuditError),
    #[error("reading the audit trail: {0}")]
    Read(#[from] VerifyError),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error("record {seq} of the trail does not encode again: {error}")]
    Encode { seq: u64, error: EncodeError },
    #[error("plugins folder: {0}")]
    Plugins(#[from] LoadError),
    #[error("cannot start the landing stage: {0}")]
    Landing(std::io::Error),
    #[error("record at position {pos} of the shared history does not decode: {why}")]
    History { pos: u64, why: String },
    #[error("this host's crew: {0}")]
    Crew(String),
}

/// Brings a host up (see the module doc) on the embedded store.
pub fn open(setup: HostSetup) -> Result<Opened, StartError> {
    open_on(setup, &StoreConfig::Embedded)
}

/// Brings a host up with its datasets in the store `config` names (the
/// journal's snapshot stays in the local data root either way). On a
/// shared database, it first waits until this host leads ([`shared`]).
pub fn open_on(setup: HostSetup, config: &StoreConfig) -> Result<Opened, StartError> {
    let store = DatasetStore::open_with(config, &setup.data)?;
    if let (Some(db), StoreConfig::Postgres { lease, api, .. }) = (store.shared().cloned(), config)
    {
        return shared(setup, store, db, (*lease, api.as_deref()));
    }
    let HostSetup {
        data,
        audit,
        audit_options,
        runtime,
        plugins,
        workers,
        snapshot_after,
    } = setup;
    let audit = AuditLog::open(&audit, audit_options)?;
    let CaughtUp {
        mut snapshot,
        base,
        loaded,
        tail,
    } = catch_up(&data, audit.dir())?;
    let mut fold = Fold::default();
    for (seq, time_ns, entry) in &snapshot.records {
        fold.apply(&Place::new(None, *seq), *time_ns, entry);
    }
    let settled = snapshot.unsettled.clone().settle(&audit, &store)?;
    let kept = Kept {
        data,
        after: snapshot_after.max(1),
        base,
        pending: snapshot.records.split_off(loaded),
        unsettled: snapshot.unsettled,
        next: snapshot.seq,
        head: snapshot.head,
        last: None,
    };
    let keeper = Keeper::start(audit.tail(), kept, tail > 0 && tail >= snapshot_after);
    let up = Up {
        runtime,
        plugins: plugins.scan()?,
        workers,
        store,
        audit,
    };
    up.finish(fold, settled, tail, (keeper, None))
}

/// A host on a shared database: it joins the others and waits until it
/// leads (`standing.rs`), its crew flying what the leader posts meanwhile
/// (`crew.rs`); once it leads, the crew stops and every unfinished claim
/// is taken from the crews. Its log forwards its controller records to
/// the shared history (`mirror.rs`), opened only once it leads, and its
/// LEADING record comes first. Then the whole history is folded — every
/// host's records, in the order the database took them — and what the
/// last leader left unsettled is settled against the database, as a
/// single host does with its own trail after a crash.
fn shared(
    setup: HostSetup,
    store: DatasetStore,
    db: Shared,
    (lease, api): (Duration, Option<&str>),
) -> Result<Opened, StartError> {
    let HostSetup {
        audit,
        mut audit_options,
        runtime,
        plugins,
        workers,
        ..
    } = setup;
    let standing_by = |leader: &Leader| {
        tracing::warn!(
            "standing by: host {} leads (term {}); this host takes over if its lease lapses",
            leader.origin,
            leader.term
        );
    };
    let joining = (audit_options.origin.as_str(), api);
    // While it stands by, the host's crew flies what the leader posts.
    let Scanned(plugins, folder, changes) = plugins.scan()?;
    let crew = std::cell::RefCell::new(None);
    let start = |leader: &Leader| {
        standing_by(leader);
        let mut crew = crew.borrow_mut();
        if crew.is_none() {
            *crew = start_crew(&db, (&audit, &audit_options), &runtime, &plugins, workers);
        }
    };
    let flying = || crew.borrow().as_ref().map_or(0, Crew::in_flight);
    let lead = standing::wait_for_lead(&db, joining, lease, &start, &flying)?;
    // Leading: the crew's runs stop and land (or are taken from it next).
    drop(crew);
    // Every run posted, claimed or committing under an earlier term is
    // taken from its crew before the history is read: no crew lands
    // anything more of it, and the fold settles it.
    db.lose(None)?;
    // What the crew of this host's previous process left behind, if it was
    // killed as it stopped for a lead it never got to hold.
    if let Some((dir, options)) = crew_shard(&db, &audit, &audit_options) {
        super::crew::void_left_behind(&db, &dir, options)?;
    }
    audit_options.forward = Some(Forwarder(Arc::new(Mirror(db.clone()))));
    let audit = AuditLog::open(&audit, audit_options)?;
    let up: Arc<OnceLock<Weak<Host>>> = Arc::default();
    let in_flight = {
        let up = up.clone();
        Box::new(move || {
            up.get()
                .and_then(Weak::upgrade)
                .map_or(0, |host| host.tower.in_air() as u64)
        })
    };
    let keeper = LeadKeeper::start(db.clone(), lease, audit.clone(), in_flight)
        .map_err(StartError::Landing)?;
    audit.append(Entry::of_host(Event::Leading {
        term: lead.term,
        accepted: lead.accepted,
    }))?;
    let mut fold = Fold::default();
    let mut unsettled = Unsettled::default();
    let mut after = 0;
    let mut tail = 0;
    loop {
        let page = db.read_history(after, HISTORY_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.pos;
        for shared in &page {
            let record = Record::decode(&shared.entry).map_err(|e| StartError::History {
                pos: shared.pos,
                why: e.to_string(),
            })?;
            unsettled.observe_from(&shared.origin, &record);
            if folds(&record.entry) {
                let place = Place::new(Some(&shared.origin), record.seq);
                fold.apply(&place, record.time_ns, &record.entry);
            }
            tail += 1;
        }
    }
    let settled = unsettled.settle(&audit, &store)?;
    let opened = Up {
        runtime,
        plugins: Scanned(plugins, folder, changes),
        workers,
        store,
        audit,
    }
    .finish(fold, settled, tail, (None, Some(keeper)))?;
    let _ = up.set(Arc::downgrade(&opened.host));
    Ok(opened)
}

/// The crew of a host standing by on `db` (`crew.rs`): its shard beside
/// the host's audit folder, signed by the host's key; `None`, said once,
/// when it cannot start (the host stands by without one).
fn start_crew(
    db: &Shared,
    (audit, options): (&Path, &AuditOptions),
    runtime: &Arc<Runtime>,
    plugins: &Arc<Plugins>,
    workers: usize,
) -> Option<Crew> {
    let (audit, audit_options) = crew_shard(db, audit, options)?;
    let setup = CrewSetup {
        runtime: runtime.clone(),
        plugins: plugins.clone(),
        audit,
        audit_options,
        workers,
    };
    match Crew::start(db, setup) {
        Ok(crew) => Some(crew),
        Err(e) => {
            tracing::error!("this host stands by without a crew: {e}");
            None
        }
    }
}

/// The folder of this host's crew's shard, beside the host's `audit`
/// folder, and how it is opened (the crew's origin, the host's key).
fn crew_shard(
    db: &Shared,
    audit: &Path,
    options: &AuditOptions,
) -> Option<(PathBuf, AuditOptions)> {
    let origin = db.crew_origin()?;
    let name = audit
        .file_name()
        .map_or("runway-audit".into(), |n| n.to_string_lossy());
    let options = AuditOptions {
        origin,
        forward: None,
        ..options.clone()
    };
    Some((audit.with_file_name(format!("{name}-crew")), options))
}

/// Plugins scanned once: the crew flies them while the host stands by,
/// and the host keeps them when it leads.
struct Scanned(Arc<Plugins>, Option<PluginFolder>, Vec<PluginChange>);

impl PluginSource {
    /// Scans a folder now (a LOAD record for each agent, to append), or
    /// takes the plugins loaded.
    fn scan(self) -> Result<Scanned, StartError> {
        Ok(match self {
            PluginSource::Folder(mut folder) => {
                let (plugins, changes) = folder.rescan(&Plugins::default())?;
                Scanned(Arc::new(plugins), Some(folder), changes)
            }
            PluginSource::Loaded(plugins) => {
                let loaded = plugins.iter().map(|p| PluginChange::Loaded {
                    name: p.name.clone(),
                    digest: p.digest,
                });
                let changes = loaded.collect();
                Scanned(plugins, None, changes)
            }
        })
    }
}

/// Records of the shared history read at a time.
const HISTORY_PAGE: u32 = 10_000;

/// What every start has once its store and log are open.
struct Up {
    runtime: Arc<Runtime>,
    plugins: Scanned,
    workers: usize,
    store: DatasetStore,
    audit: AuditLog,
}

impl Up {
    /// Folds what settling appended, scans the plugins (LOAD records) and
    /// makes the host.
    fn finish(
        self,
        mut fold: Fold,
        settled: Settled,
        tail: u64,
        keepers: (Option<Keeper>, Option<LeadKeeper>),
    ) -> Result<Opened, StartError> {
        let Up {
            runtime,
            plugins,
            workers,
            store,
            audit,
        } = self;
        let now = runway_audit::now_ns();
        for (seq, entry) in &settled.appended {
            let shard = store.shared().and_then(Shared::origin);
            fold.apply(&Place::new(shard, *seq), now, entry);
        }
        let Scanned(plugins, folder, changes) = plugins;
        for change in &changes {
            audit.append(change.entry())?;
        }
        let host = Host::new(
            &runtime,
            plugins,
            Arc::new(store),
            audit,
            workers,
            fold.finish(),
            keepers,
        )
        .map_err(StartError::Landing)?;
        Ok(Opened {
            host: Arc::new(host),
            settled,
            folder,
            tail,
        })
    }
}

/// Records past the journal's snapshot that make a new one, at a start and
/// while the host runs (a tail this short reads in a few milliseconds).
pub const SNAPSHOT_AFTER: u64 = 10_000;

/// A snapshot brought up to the trail's end.
struct CaughtUp {
    snapshot: Snapshot,
    /// The sequence number of the snapshot it started from (0: none).
    base: u64,
    /// How many of its records that snapshot held.
    loaded: usize,
    /// Records read after it.
    tail: u64,
}

/// The snapshot in data root `data` brought up to the end of the trail in
/// `dir`. A snapshot set aside (see [`super::snapshot`]) is said once, as
/// a warning, and the trail read whole.
fn catch_up(data: &Path, dir: &Path) -> Result<CaughtUp, StartError> {
    let snapshot = Snapshot::load(data).unwrap_or_else(|why| {
        tracing::warn!("journal snapshot set aside, reading the whole trail: {why}");
        None
    });
    if let Some(snapshot) = snapshot {
        let (base, loaded) = (snapshot.seq, snapshot.records.len());
        if let Some((snapshot, tail)) = read_from(snapshot, dir)? {
            return Ok(CaughtUp {
                snapshot,
                base,
                loaded,
                tail,
            });
        }
    }
    let (snapshot, tail) =
        read_from(Snapshot::start(), dir)?.expect("the trail's first record links to nothing");
    Ok(CaughtUp {
        snapshot,
        base: 0,
        loaded: 0,
        tail,
    })
}

/// `snapshot` with the records after it, and how many they are; `None`
/// (said as a warning) when it does not belong to the trail in `dir`.
fn read_from(mut snapshot: Snapshot, dir: &Path) -> Result<Option<(Snapshot, u64)>, StartError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let from = snapshot.seq;
    // Record `from - 1` must be the one the snapshot names.
    let mut linked = from == 0;
    let mut last = None;
    let mut failed = None;
    // From record `from - 1`, to check it is the snapshot's last.
    runway_audit::for_each_record_from(dir, from.saturating_sub(1), threads, |record| {
        if failed.is_some() || record.seq + 1 < from {
            return;
        }
        if record.seq + 1 == from {
            match record.leaf_hash() {
                Ok(hash) => linked = hash == snapshot.head,
                Err(error) => failed = Some((record.seq, error)),
            }
            return;
        }
        snapshot.unsettled.observe(&record);
        if folds(&record.entry) {
            snapshot
                .records
                .push((record.seq, record.time_ns, record.entry.clone()));
        }
        last = Some(record);
    })?;
    if let Some((seq, error)) = failed {
        return Err(StartError::Encode { seq, error });
    }
    if !linked {
        tracing::warn!(
            "journal snapshot set aside, reading the whole trail: its record {} is not the \
             trail's (cut back, or another trail)",
            from - 1
        );
        return Ok(None);
    }
    let Some(last) = last else {
        return Ok(Some((snapshot, 0)));
    };
    let tail = last.seq + 1 - from;
    snapshot.seq = last.seq + 1;
    snapshot.head = last.leaf_hash().map_err(|error| StartError::Encode {
        seq: last.seq,
        error,
    })?;
    Ok(Some((snapshot, tail)))
}
