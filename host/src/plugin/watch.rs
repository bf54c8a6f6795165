//! The plugins folder, watched: operators drop `NAME.wasm` + `NAME.toml` in,
//! replace or remove them, and the host follows between runs.
//!
//! [`PluginFolder::rescan`] compares the folder with the loaded catalog and
//! builds the next one: unchanged plugins are kept as they are — not even
//! read, when the metadata of their files (device, inode, size, mtime,
//! ctime) did not change — new or changed ones read ([`read_plugin`], each
//! on its own thread within [`PLUGIN_READ_TIMEOUT`]) and loaded (compiled
//! once per digest), missing ones dropped. A
//! file that fails to load is refused with its reason and the version loaded
//! before, if any, stays — a half-copied component never replaces a working
//! one. A run in flight holds its own `Arc<Plugin>`, so swapping the catalog
//! never touches it. [`watch`] turns filesystem events (the `notify` crate)
//! into rescans, ignoring the ones the host's own reads cause.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use runway_audit::{Entry, Event, Hash};

use crate::files::{ReadCaps, Stamp, stamp};
use crate::plugin::loader::{LoadError, Plugin, PluginFiles, Plugins, plugin_names, read_plugin};
use crate::plugin::signing::{PluginPolicy, signature_path};
use crate::sandbox::Runtime;

/// Longest a plugin's files may take to read; past it the plugin is
/// refused for this rescan and the others go on.
pub const PLUGIN_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What one rescan changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginChange {
    /// A new plugin, or a new version (digest or grants) of a loaded one.
    Loaded { name: String, digest: Hash },
    /// Its files are gone.
    Unloaded { name: String, digest: Hash },
    /// Its files are there but could not be loaded; any earlier version
    /// stays. `digest` is the refused component's, when it was read.
    Refused {
        name: String,
        digest: Option<Hash>,
        reason: String,
    },
}

impl PluginChange {
    /// Its audit record (LOAD, UNLOAD, or a refusal naming the plugin and,
    /// when its component was read, its digest; the reason capped).
    pub fn entry(&self) -> Entry {
        let (agent, plugin, event) = match self {
            PluginChange::Loaded { name, digest } => (name, Some(*digest), Event::PluginLoaded),
            PluginChange::Unloaded { name, digest } => (name, Some(*digest), Event::PluginUnloaded),
            PluginChange::Refused {
                name,
                digest,
                reason,
            } => (
                name,
                *digest,
                Event::Rejected {
                    reason: crate::limits::cut(reason, crate::limits::MAX_REASON),
                },
            ),
        };
        Entry {
            runway: String::new(),
            agent: agent.clone(),
            plugin,
            dataset: None,
            event,
        }
    }
}

/// The metadata of one plugin's files (component, grants, signature): a
/// plugin whose stamps did not change since it was last read is not read
/// again.
type PluginStamps = [Option<Stamp>; 3];

fn plugin_stamps(dir: &Path, name: &str) -> PluginStamps {
    let wasm = dir.join(format!("{name}.wasm"));
    [
        stamp(&wasm),
        stamp(&wasm.with_extension("toml")),
        stamp(&signature_path(&wasm)),
    ]
}

/// How old a file's last change must be for its stamp to be trusted: file
/// times are coarse (a clock tick), so a same-size rewrite within one tick
/// of a read could keep the stamp the read saw ("racy" stamps, as in git).
const SETTLED: Duration = Duration::from_secs(2);

/// Were all these files last changed at least [`SETTLED`] ago?
fn settled(stamps: &PluginStamps) -> bool {
    let ns = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, ns);
    let settled_ns = ns(SETTLED);
    stamps
        .iter()
        .flatten()
        .all(|s| now - s.ctime_ns.max(s.mtime_ns) >= settled_ns)
}

/// A plugins folder and the runtime that compiles what it holds.
pub struct PluginFolder {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    /// Refused plugins and the reason, so a broken file is reported once,
    /// not at every rescan, until it changes.
    refused: HashMap<String, String>,
    /// What each plugin's files looked like when last read.
    stamps: HashMap<String, PluginStamps>,
    policy: PluginPolicy,
    caps: ReadCaps,
}

impl PluginFolder {
    pub fn new(dir: &Path, runtime: Arc<Runtime>) -> PluginFolder {
        PluginFolder {
            dir: dir.to_path_buf(),
            runtime,
            refused: HashMap::new(),
            stamps: HashMap::new(),
            policy: PluginPolicy::default(),
            caps: ReadCaps::default(),
        }
    }

    /// Loads only what `policy` admits (e.g. signed by a trusted author).
    pub fn with_policy(mut self, policy: PluginPolicy) -> PluginFolder {
        self.policy = policy;
        self
    }

    /// Reads each file within `caps` (component, grants, signature sizes).
    pub fn with_caps(mut self, caps: ReadCaps) -> PluginFolder {
        self.caps = caps;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The catalog the folder holds now, and how it differs from `current`.
    /// Only plugins whose files changed (by their [`Stamp`]s) are read.
    /// Fails only when the folder itself cannot be read.
    pub fn rescan(&mut self, current: &Plugins) -> Result<(Plugins, Vec<PluginChange>), LoadError> {
        let names: BTreeSet<String> = plugin_names(&self.dir)?.into_iter().collect();
        let mut next = Plugins::default();
        let mut changes = Vec::new();
        let mut refused = HashMap::new();
        for name in &names {
            let loaded = current.get(name);
            let stamps = plugin_stamps(&self.dir, name);
            let known = loaded.is_some() || self.refused.contains_key(name);
            if known && self.stamps.get(name) == Some(&stamps) {
                // Unchanged since read: as it was, loaded or refused.
                if let Some(old) = loaded {
                    next.keep(old);
                }
                if let Some(reason) = self.refused.remove(name) {
                    refused.insert(name.clone(), reason);
                }
                continue;
            }
            let read = self.read_bounded(name);
            // A timed-out read, or files changed so recently that a rewrite
            // might keep the same stamp, are read again next time.
            if !matches!(read, Err(LoadError::TimedOut { .. })) && settled(&stamps) {
                self.stamps.insert(name.clone(), stamps);
            } else {
                self.stamps.remove(name);
            }
            let outcome = read.and_then(|files| self.take(&mut next, loaded.clone(), files));
            match outcome {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(e) => {
                    if let Some(old) = loaded {
                        next.keep(old);
                    }
                    let reason = e.to_string();
                    // A refusal is news only when it differs from the last one seen.
                    if self.refused.get(name) != Some(&reason) {
                        changes.push(PluginChange::Refused {
                            name: name.clone(),
                            digest: e.digest(),
                            reason: reason.clone(),
                        });
                    }
                    refused.insert(name.clone(), reason);
                }
            }
        }
        self.refused = refused;
        self.stamps.retain(|name, _| names.contains(name));
        for old in current.iter().filter(|p| !names.contains(&p.name)) {
            changes.push(PluginChange::Unloaded {
                name: old.name.clone(),
                digest: old.digest,
            });
        }
        Ok((next, changes))
    }

    /// Puts a read plugin into `next`: kept when it is what is loaded,
    /// compiled when new.
    fn take(
        &self,
        next: &mut Plugins,
        loaded: Option<Arc<Plugin>>,
        files: PluginFiles,
    ) -> Result<Option<PluginChange>, LoadError> {
        match loaded {
            Some(old) if old.digest == files.digest && old.grants == files.grants => {
                next.keep(old);
                Ok(None)
            }
            _ => {
                let (name, digest) = (files.name.clone(), files.digest);
                next.insert_files(&self.runtime, files)?;
                Ok(Some(PluginChange::Loaded { name, digest }))
            }
        }
    }

    /// [`read_plugin`] on its own thread, given [`PLUGIN_READ_TIMEOUT`]:
    /// a slow or stuck file holds up only its own plugin.
    fn read_bounded(&self, name: &str) -> Result<PluginFiles, LoadError> {
        let (tx, rx) = mpsc::channel();
        let (dir, policy, caps) = (self.dir.clone(), self.policy.clone(), self.caps);
        let owned = name.to_string();
        let spawned = std::thread::Builder::new()
            .name("runway-plugin-read".into())
            .spawn(move || {
                let _ = tx.send(read_plugin(&dir, &owned, &policy, &caps));
            });
        if spawned.is_err() {
            return read_plugin(&self.dir, name, &self.policy, &self.caps);
        }
        rx.recv_timeout(PLUGIN_READ_TIMEOUT)
            .unwrap_or(Err(LoadError::TimedOut {
                name: name.to_string(),
                after: PLUGIN_READ_TIMEOUT,
            }))
    }
}

/// Does this event say a file's content or name changed? Events the host's
/// own reads cause (open, access, close without writing) and metadata-only
/// changes do not; the periodic full rescan catches anything else.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Watches `dir` (not recursively); every change (see [`is_change`]) sends
/// `()` down the returned channel. Keep the watcher alive as long as events
/// are wanted.
pub fn watch(dir: &Path) -> notify::Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    use notify::Watcher as _;
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| is_change(&e.kind)) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}
