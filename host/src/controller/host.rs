//! [`Host`]: what runs need from the process — the loaded plugins, the
//! dataset store, the audit trail, the tower that grants locks and the
//! landing stage that commits runs — bundled so every plan and run can
//! share it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use runway_audit::{AuditError, AuditLog, Entry, Event};

use super::commit::LandingStage;
use super::journal::Journal;
use super::keeper::Keeper;
use super::standing::LeadKeeper;
use super::tower::Tower;
use super::workers::Workers;
use crate::plugin::loader::Plugins;
use crate::sandbox::epoch::EpochClock;
use crate::sandbox::{Runtime, Sandbox};
use crate::store::{DatasetStore, Shared};

/// Plugins + store + audit + tower, shared by every plan and run.
pub struct Host {
    plugins: RwLock<Arc<Plugins>>,
    pub store: Arc<DatasetStore>,
    pub audit: AuditLog,
    pub tower: Tower,
    pub landing: LandingStage,
    /// The threads runs fly on, one per run that may be in the air.
    pub(super) workers: Workers,
    engine: wasmtime::Engine,
    epoch: EpochClock,
    /// A controller runs on this host.
    controlled: AtomicBool,
    /// The trail as the start-up folded it, for the first controller.
    journal: Mutex<Option<Journal>>,
    /// Keeps the journal's snapshot near the trail's end; writes it last
    /// when the host goes.
    _keeper: Option<Keeper>,
    /// On a shared database: keeps this host's lead, and gives it up when
    /// the host goes (after the log, whose last records it forwards).
    _lead: Option<LeadKeeper>,
}

impl Host {
    /// A host running at most `workers` runs at once, its trail folded
    /// into `journal`, its snapshot kept by `keeper` (only the start path
    /// makes one: [`super::start`]).
    /// Fails only when the landing stage's thread cannot start.
    pub(super) fn new(
        runtime: &Runtime,
        plugins: Arc<Plugins>,
        store: Arc<DatasetStore>,
        audit: AuditLog,
        workers: usize,
        journal: Journal,
        (keeper, lead): (Option<Keeper>, Option<LeadKeeper>),
    ) -> std::io::Result<Host> {
        Ok(Host {
            tower: Tower::new(store.clone(), workers),
            landing: LandingStage::start(store.clone(), audit.clone())?,
            workers: Workers::start(workers)?,
            plugins: RwLock::new(plugins),
            store,
            audit,
            engine: runtime.engine().clone(),
            epoch: runtime.epoch(),
            controlled: AtomicBool::new(false),
            journal: Mutex::new(Some(journal)),
            _keeper: keeper,
            _lead: lead,
        })
    }

    /// The shard this host's records are in, on a shared database (its
    /// origin): the places of its records name it ([`super::place`]).
    pub(super) fn shard(&self) -> Option<&str> {
        self.store.shared().and_then(Shared::origin)
    }

    /// The plugins loaded now. A run keeps the plugin it started with even
    /// when the catalog changes under it.
    pub fn plugins(&self) -> Arc<Plugins> {
        self.plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the catalog (the folder watch does this between runs).
    pub fn set_plugins(&self, plugins: Arc<Plugins>) {
        *self.plugins.write().unwrap_or_else(|p| p.into_inner()) = plugins;
    }

    /// Stops clearing runways, in the name of `by` (audited); runs in the
    /// air land as usual.
    pub fn pause(&self, by: &str) -> Result<(), AuditError> {
        self.audit
            .append(Entry::of_host(Event::Paused { by: by.into() }))?;
        self.tower.set_paused(true);
        Ok(())
    }

    /// Clears runways again, in the name of `by` (audited).
    pub fn resume(&self, by: &str) -> Result<(), AuditError> {
        self.audit
            .append(Entry::of_host(Event::Resumed { by: by.into() }))?;
        self.tower.set_paused(false);
        Ok(())
    }

    /// The journal the start-up folded, once: a later controller on the
    /// same host folds the trail again.
    pub(super) fn take_journal(&self) -> Option<Journal> {
        self.journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// What a run needs from this host.
    pub fn sandbox(&self) -> Sandbox<'_> {
        Sandbox {
            engine: &self.engine,
            epoch: &self.epoch,
            store: &self.store,
            audit: &self.audit,
        }
    }
}

/// The one controller's hold on a host, given back when dropped.
pub(super) struct Claim(Arc<Host>);

impl Claim {
    /// `None` when another controller holds `host`.
    pub fn new(host: Arc<Host>) -> Option<Claim> {
        let free = host
            .controlled
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        free.then_some(Claim(host))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.tower.set_paused(false);
        self.0.controlled.store(false, Ordering::Release);
    }
}
