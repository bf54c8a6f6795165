//! The plugins folder, watched: operators drop `NAME.wasm` + `NAME.toml` in,
//! replace or remove them, and the host follows between runs.
//!
//! [`PluginFolder::rescan`] compares the folder with the loaded catalog and
//! builds the next one: unchanged plugins are kept as they are, new or
//! changed ones loaded (compiled once per digest), missing ones dropped. A
//! file that fails to load is refused with its reason and the version loaded
//! before, if any, stays — a half-copied component never replaces a working
//! one. A run in flight holds its own `Arc<Plugin>`, so swapping the catalog
//! never touches it. [`watch`] turns filesystem events (the `notify` crate)
//! into rescans.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use runway_audit::{Hash, sha256};

use crate::grants::Grants;
use crate::loader::{LoadError, Plugins};
use crate::sandbox::Runtime;
use crate::signing::PluginPolicy;

/// What one rescan changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginChange {
    /// A new plugin, or a new version (digest or grants) of a loaded one.
    Loaded { name: String, digest: Hash },
    /// Its files are gone.
    Unloaded { name: String, digest: Hash },
    /// Its files are there but could not be loaded; any earlier version stays.
    Refused { name: String, reason: String },
}

/// A plugins folder and the runtime that compiles what it holds.
pub struct PluginFolder {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    /// Refused plugins and the reason, so a broken file is reported once,
    /// not at every rescan, until it changes.
    refused: HashMap<String, String>,
    policy: PluginPolicy,
}

impl PluginFolder {
    pub fn new(dir: &Path, runtime: Arc<Runtime>) -> PluginFolder {
        PluginFolder {
            dir: dir.to_path_buf(),
            runtime,
            refused: HashMap::new(),
            policy: PluginPolicy::default(),
        }
    }

    /// Loads only what `policy` admits (e.g. signed by a trusted author).
    pub fn with_policy(mut self, policy: PluginPolicy) -> PluginFolder {
        self.policy = policy;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The catalog the folder holds now, and how it differs from `current`.
    /// Fails only when the folder itself cannot be read.
    pub fn rescan(&mut self, current: &Plugins) -> Result<(Plugins, Vec<PluginChange>), LoadError> {
        let folder_err = |source| LoadError::Folder {
            path: self.dir.display().to_string(),
            source,
        };
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(&self.dir).map_err(folder_err)? {
            let path = entry.map_err(folder_err)?.path();
            if path.extension().is_some_and(|x| x == "wasm")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                names.insert(stem.to_string());
            }
        }
        let mut next = Plugins::default();
        let mut changes = Vec::new();
        for name in &names {
            let loaded = current.get(name);
            match self.read(name) {
                Ok((bytes, grants)) => {
                    let digest = sha256(&bytes);
                    match loaded {
                        Some(old) if old.digest == digest && old.grants == grants => next.keep(old),
                        _ => match next.insert(&self.runtime, name, &bytes, grants) {
                            Ok(()) => changes.push(PluginChange::Loaded {
                                name: name.clone(),
                                digest,
                            }),
                            Err(e) => refuse(&mut next, &mut changes, name, loaded, e.to_string()),
                        },
                    }
                }
                Err(reason) => refuse(&mut next, &mut changes, name, loaded, reason),
            }
        }
        // A refusal is news only when it differs from the last one seen.
        let mut refused = HashMap::new();
        changes.retain(|c| match c {
            PluginChange::Refused { name, reason } => {
                refused.insert(name.clone(), reason.clone());
                self.refused.get(name) != Some(reason)
            }
            _ => true,
        });
        self.refused = refused;
        for old in current.iter().filter(|p| !names.contains(&p.name)) {
            changes.push(PluginChange::Unloaded {
                name: old.name.clone(),
                digest: old.digest,
            });
        }
        Ok((next, changes))
    }

    fn read(&self, name: &str) -> Result<(Vec<u8>, Grants), String> {
        crate::names::check_dataset(name).map_err(|e| format!("plugin name: {e}"))?;
        let wasm = self.dir.join(format!("{name}.wasm"));
        let grants = Grants::load(&wasm.with_extension("toml")).map_err(|e| e.to_string())?;
        let bytes =
            std::fs::read(&wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
        self.policy
            .check(&wasm, &sha256(&bytes))
            .map_err(|e| format!("signature: {e}"))?;
        Ok((bytes, grants))
    }
}

fn refuse(
    next: &mut Plugins,
    changes: &mut Vec<PluginChange>,
    name: &str,
    loaded: Option<Arc<crate::loader::Plugin>>,
    reason: String,
) {
    if let Some(old) = loaded {
        next.keep(old);
    }
    changes.push(PluginChange::Refused {
        name: name.to_string(),
        reason,
    });
}

/// Watches `dir` (not recursively); every filesystem event sends `()` down
/// the returned channel. Keep the watcher alive as long as events are wanted.
pub fn watch(dir: &Path) -> notify::Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    use notify::Watcher as _;
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}
