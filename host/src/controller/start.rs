//! The one start path: how a host comes up, for `runway serve`,
//! `runway run`, the benches and the tests alike (DESIGN.md, "Layout").
//!
//! [`open`] does, in this order:
//! 1. **Claim and open.** The dataset store takes its data root (a second
//!    host on it is refused), the audit log its folder (its writer lock).
//! 2. **One pass over the trail.** Every record is read once, verified,
//!    and handed to both the commit recovery ([`Unsettled`]) and the
//!    journal's [`Fold`].
//! 3. **Settle.** Commits and runs the crash interrupted are settled
//!    against the store; the records that says are appended (and folded),
//!    so the trail and the store agree before anything new happens.
//! 4. **Plugins.** The first scan of the plugins folder (or the plugins
//!    given) is recorded: LOAD per plugin, a refusal per broken one.
//! 5. **The host**, holding the folded journal for its first controller
//!    ([`super::start`]).

use std::path::PathBuf;
use std::sync::Arc;

use runway_audit::{AuditError, AuditLog, AuditOptions, VerifyError};

use super::commit::{CommitError as RecoveryError, Settled, Unsettled};
use super::host::Host;
use super::journal::Fold;
use crate::plugin::loader::{LoadError, Plugins};
use crate::plugin::watch::{PluginChange, PluginFolder};
use crate::sandbox::Runtime;
use crate::store::{DatasetStore, StoreError};

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
    #[error("plugins folder: {0}")]
    Plugins(#[from] LoadError),
    #[error("cannot start the landing stage: {0}")]
    Landing(std::io::Error),
}

/// Brings a host up (see the module doc).
pub fn open(setup: HostSetup) -> Result<Opened, StartError> {
    let HostSetup {
        data,
        audit,
        audit_options,
        runtime,
        plugins,
        workers,
    } = setup;
    let store = DatasetStore::open(&data)?;
    let audit = AuditLog::open(&audit, audit_options)?;
    let mut fold = Fold::default();
    let mut unsettled = Unsettled::default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    runway_audit::for_each_record(audit.dir(), threads, |record| {
        unsettled.observe(&record);
        fold.apply(record.time_ns, record.entry);
    })?;
    let settled = unsettled.settle(&audit, &store)?;
    let now = runway_audit::now_ns();
    for entry in &settled.appended {
        fold.apply(now, entry.clone());
    }
    let (plugins, folder, changes) = match plugins {
        PluginSource::Folder(mut folder) => {
            let (plugins, changes) = folder.rescan(&Plugins::default())?;
            (Arc::new(plugins), Some(folder), changes)
        }
        PluginSource::Loaded(plugins) => {
            let loaded = plugins.iter().map(|p| PluginChange::Loaded {
                name: p.name.clone(),
                digest: p.digest,
            });
            let changes = loaded.collect();
            (plugins, None, changes)
        }
    };
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
    )
    .map_err(StartError::Landing)?;
    Ok(Opened {
        host: Arc::new(host),
        settled,
        folder,
    })
}
