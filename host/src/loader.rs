//! Plugins: components loaded from a folder (or the embedded defaults) with
//! their grants, digested, compiled once and pre-instantiated.
//!
//! A plugin named `NAME` is `NAME.wasm` plus its grants `NAME.toml`
//! ([`crate::grants`]); a component without grants is refused. Its SHA-256
//! digest goes into every audit record of its runs, so an auditor can tell
//! exactly which build touched the data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use runway_audit::{Hash, sha256};

use crate::grants::{Grants, GrantsError};
use crate::names;
use crate::sandbox::Program;
use crate::sandbox::Runtime;
use crate::sandbox::hostcalls::{AgentPre, RunState};
use crate::signing::{PluginPolicy, SignatureError};

/// One loaded agent.
pub struct Plugin {
    pub name: String,
    pub digest: Hash,
    pub grants: Grants,
    pub(crate) pre: AgentPre<RunState>,
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
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
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
        source: Box<SignatureError>,
    },
    #[error("plugin {name}: not a valid Runway agent component: {reason}")]
    Component { name: String, reason: String },
}

impl Plugin {
    /// What the sandbox runs: this plugin's component, digest and limits.
    pub fn program(&self) -> Program {
        Program {
            name: self.name.clone(),
            digest: self.digest,
            limits: self.grants.limits,
            pre: self.pre.clone(),
        }
    }
}

impl Plugins {
    /// Loads every `NAME.wasm` in `dir`, each with its `NAME.toml`.
    pub fn load_dir(runtime: &Runtime, dir: &Path) -> Result<Plugins, LoadError> {
        Plugins::load_dir_with(runtime, dir, &PluginPolicy::default())
    }

    /// Loads every `NAME.wasm` in `dir` that `policy` admits (signatures).
    pub fn load_dir_with(
        runtime: &Runtime,
        dir: &Path,
        policy: &PluginPolicy,
    ) -> Result<Plugins, LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| LoadError::Folder {
                    path: dir.display().to_string(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|x| x == "wasm") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut plugins = Plugins::default();
        for path in paths {
            let shown = path.display().to_string();
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            names::check_dataset(&name).map_err(|source| LoadError::Name {
                path: shown.clone(),
                source,
            })?;
            let grants =
                Grants::load(&path.with_extension("toml")).map_err(|source| LoadError::Grants {
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
                path: shown,
                source,
            })?;
            policy
                .check(&path, &sha256(&bytes))
                .map_err(|source| LoadError::Signature {
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            plugins.insert(runtime, &name, &bytes, grants)?;
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
        let bad = |e: wasmtime::Error| LoadError::Component {
            name: name.to_string(),
            reason: format!("{e:#}"),
        };
        let digest = sha256(bytes);
        let component = runtime.component(&digest, bytes).map_err(bad)?;
        let pre = runtime.link(&component).map_err(bad)?;
        tracing::info!(plugin = name, digest = %runway_audit::hex::encode(&digest), "loaded");
        let plugin = Plugin {
            name: name.to_string(),
            digest,
            grants,
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

    /// Plugin names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

impl crate::plan::Catalog for Plugins {
    fn names(&self) -> Vec<String> {
        self.names()
    }
    fn grants(&self, agent: &str) -> Option<&Grants> {
        self.by_name.get(agent).map(|p| &p.grants)
    }
}
