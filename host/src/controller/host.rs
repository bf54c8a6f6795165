//! [`Host`]: what runs need from the process — the loaded plugins, the
//! dataset store, the audit trail and the tower that grants locks — bundled
//! so every plan and run can share it.

use std::sync::{Arc, RwLock};

use runway_audit::AuditLog;

use super::tower::Tower;
use crate::loader::Plugins;
use crate::sandbox::epoch::EpochClock;
use crate::sandbox::{Runtime, Sandbox};
use crate::store::DatasetStore;

/// Plugins + store + audit + tower, shared by every plan and run.
pub struct Host {
    plugins: RwLock<Arc<Plugins>>,
    pub store: Arc<DatasetStore>,
    pub audit: AuditLog,
    pub tower: Tower,
    engine: wasmtime::Engine,
    epoch: EpochClock,
}

impl Host {
    /// A host running at most `workers` runs at once.
    pub fn new(
        runtime: &Runtime,
        plugins: Arc<Plugins>,
        store: Arc<DatasetStore>,
        audit: AuditLog,
        workers: usize,
    ) -> Host {
        Host {
            tower: Tower::new(store.clone(), workers),
            plugins: RwLock::new(plugins),
            store,
            audit,
            engine: runtime.engine().clone(),
            epoch: runtime.epoch(),
        }
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
