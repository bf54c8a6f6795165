//! Plugins: components loaded from a folder (or the embedded defaults) with
//! their grants, digested, compiled once and pre-instantiated.
//!
//! A plugin named `NAME` is `NAME.wasm` plus its grants `NAME.toml`
//! ([`crate::plugin::grants`]); a component without grants is refused. Its SHA-256
//! digest goes into every audit record of its runs, so an auditor can tell
//! exactly which build touched the data.
//!
//! [`read_plugin`] is the one way a plugin's files are read — by
//! [`Plugins::load_dir_with`] and by the folder watch alike — each through
//! [`crate::files`] (no links, no FIFOs, capped before reading).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runway_audit::{Hash, sha256};

use crate::files::{self, FileError, FileKind, ReadCaps};
use crate::names;
use crate::plugin::grants::{Grants, GrantsError};
use crate::plugin::signing::{PluginPolicy, SignatureError};
use crate::sandbox::Program;
use crate::sandbox::Runtime;
use crate::sandbox::hostcalls::{AgentPre, RunState};

/// One loaded agent.
pub struct Plugin {
    pub name: String,
    pub digest: Hash,
    pub grants: Grants,
    /// The trusted author whose signature admitted it, when signatures
    /// are required.
    pub signed_by: Option<String>,
    pub(crate) pre: AgentPre<RunState>,
    /// It imports `orchestration` ([`Program::waits`]), found once at load:
    /// walking the component's imports costs a run ~0.5 µs (5 % of the
    /// sandbox part of a no-op run).
    waits: bool,
}

/// The loaded plugins, by name.
#[derive(Default)]
pub struct Plugins {
    by_name: BTreeMap<String, Arc<Plugin>>,
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugins folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("plugin {name}: component {source}")]
    File { name: String, source: FileError },
    #[error("plugin {name}: reading its files took longer than {} s; not loaded", .after.as_secs())]
    TimedOut { name: String, after: Duration },
    #[error("plugin file {path}: name is not valid: {source}")]
    Name {
        path: String,
        source: names::NameError,
    },
    #[error("plugin {name}: {source}")]
    Grants {
        name: String,
        source: Box<GrantsError>,
    },
    #[error("plugin {name}: signature: {source}")]
    Signature {
        name: String,
        /// The component read, whose signature does not admit it.
        digest: Hash,
        source: Box<SignatureError>,
    },
    #[error("plugin {name}: not a valid Runway agent component: {reason}")]
    Component {
        name: String,
        digest: Hash,
        reason: String,
    },
}

/// A plugin's files as read from its folder, checked but not compiled.
pub struct PluginFiles {
    pub name: String,
    pub bytes: Vec<u8>,
    pub digest: Hash,
    pub grants: Grants,
    pub signed_by: Option<String>,
}

/// Reads plugin `name` from `dir`: checks the name, reads `NAME.toml`, then
/// `NAME.wasm`, then checks its signature against `policy` — every file
/// through [`crate::files`] with `caps`.
pub fn read_plugin(
    dir: &Path,
    name: &str,
    policy: &PluginPolicy,
    caps: &ReadCaps,
) -> Result<PluginFiles, LoadError> {
    let wasm = dir.join(format!("{name}.wasm"));
    names::check_agent(name).map_err(|source| LoadError::Name {
        path: wasm.display().to_string(),
        source,
    })?;
    let grants =
        Grants::load(&wasm.with_extension("toml"), caps).map_err(|source| LoadError::Grants {
            name: name.to_string(),
            source: Box::new(source),
        })?;
    let bytes =
        files::read(&wasm, FileKind::Component, caps).map_err(|source| LoadError::File {
            name: name.to_string(),
            source,
        })?;
    let digest = sha256(&bytes);
    let signed_by = policy
        .check(&wasm, &digest, caps)
        .map_err(|source| LoadError::Signature {
            name: name.to_string(),
            digest,
            source: Box::new(source),
        })?;
    Ok(PluginFiles {
        name: name.to_string(),
        bytes,
        digest,
        grants,
        signed_by,
    })
}

/// Names of the plugins in `dir`: the stems of its `*.wasm` entries, of
/// whatever kind (a directory or FIFO so named is refused when read), sorted.
pub fn plugin_names(dir: &Path) -> Result<Vec<String>, LoadError> {
    let folder = |source| LoadError::Folder {
        path: dir.display().to_string(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder)? {
        let path = entry.map_err(folder)?.path();
        if path.extension().is_some_and(|x| x == "wasm")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

impl LoadError {
    /// The digest of the component refused, when it was read.
    pub fn digest(&self) -> Option<Hash> {
        match self {
            LoadError::Signature { digest, .. } | LoadError::Component { digest, .. } => {
                Some(*digest)
            }
            _ => None,
        }
    }
}

impl Plugin {
    /// What the sandbox runs: this plugin's component, digest and limits.
    pub fn program(&self) -> Program {
        Program {
            name: self.name.clone(),
            digest: self.digest,
            limits: self.grants.limits,
            waits: self.waits,
            topics: self.grants.topics.clone(),
            pre: self.pre.clone(),
        }
    }
}

impl Plugins {
    /// Loads every `NAME.wasm` in `dir`, each with its `NAME.toml`.
    pub fn load_dir(runtime: &Runtime, dir: &Path) -> Result<Plugins, LoadError> {
        Plugins::load_dir_with(runtime, dir, &PluginPolicy::default(), &ReadCaps::default())
    }

    /// Loads every `NAME.wasm` in `dir` that `policy` admits (signatures),
    /// each file within `caps`.
    pub fn load_dir_with(
        runtime: &Runtime,
        dir: &Path,
        policy: &PluginPolicy,
        caps: &ReadCaps,
    ) -> Result<Plugins, LoadError> {
        let mut plugins = Plugins::default();
        for name in plugin_names(dir)? {
            let files = read_plugin(dir, &name, policy, caps)?;
            plugins.insert_files(runtime, files)?;
        }
        Ok(plugins)
    }

    /// Loads plugins from `(name, component bytes, grants text)`.
    pub fn from_bytes<'a>(
        runtime: &Runtime,
        items: impl IntoIterator<Item = (&'a str, &'a [u8], &'a str)>,
    ) -> Result<Plugins, LoadError> {
        let mut plugins = Plugins::default();
        for (name, bytes, grants) in items {
            let grants = Grants::parse(grants, &format!("{name}.toml")).map_err(|source| {
                LoadError::Grants {
                    name: name.to_string(),
                    source: Box::new(source),
                }
            })?;
            plugins.insert(runtime, name, bytes, grants)?;
        }
        Ok(plugins)
    }

    /// Compiles (or fetches from the cache) and pre-instantiates one plugin.
    pub fn insert(
        &mut self,
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        grants: Grants,
    ) -> Result<(), LoadError> {
        self.add(runtime, name, bytes, grants, None)
    }

    /// [`insert`](Self::insert)s a plugin read from its folder.
    pub fn insert_files(&mut self, runtime: &Runtime, files: PluginFiles) -> Result<(), LoadError> {
        self.add(
            runtime,
            &files.name,
            &files.bytes,
            files.grants,
            files.signed_by,
        )
    }

    fn add(
        &mut self,
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        grants: Grants,
        signed_by: Option<String>,
    ) -> Result<(), LoadError> {
        let digest = sha256(bytes);
        let bad = |e: wasmtime::Error| LoadError::Component {
            name: name.to_string(),
            digest,
            reason: format!("{e:#}"),
        };
        let component = runtime.component(name, &digest, bytes).map_err(bad)?;
        let pre = runtime.link(&component).map_err(bad)?;
        tracing::info!(plugin = name, digest = %runway_audit::hex::encode(&digest), "loaded");
        let plugin = Plugin {
            name: name.to_string(),
            digest,
            grants,
            signed_by,
            waits: Program::imports_orchestration(&pre),
            pre,
        };
        self.by_name.insert(name.to_string(), Arc::new(plugin));
        Ok(())
    }

    /// Adds an already loaded plugin (the folder watch keeps unchanged ones).
    pub fn keep(&mut self, plugin: Arc<Plugin>) {
        self.by_name.insert(plugin.name.clone(), plugin);
    }

    /// Loaded plugins in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.by_name.values()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.by_name.get(name).cloned()
    }

    /// The grants of plugin `name`.
    pub fn grants(&self, name: &str) -> Option<&Grants> {
        self.by_name.get(name).map(|p| &p.grants)
    }

    /// Plugin names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}
