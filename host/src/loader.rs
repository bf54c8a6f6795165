//! Plugins: components loaded from a folder (or the embedded defaults),
//! digested, compiled once and pre-instantiated.
//!
//! A plugin named `NAME` is the file `NAME.wasm`. Its SHA-256 digest goes
//! into every audit record of its runs, so an auditor can tell exactly which
//! build touched the data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use runway_audit::{Hash, sha256};
use wasmtime::component::Component;

use crate::hostcalls::AgentPre;
use crate::names;
use crate::runtime::Runtime;

/// One loaded agent.
pub struct Plugin {
    pub name: String,
    pub digest: Hash,
    pub(crate) pre: AgentPre<crate::hostcalls::RunState>,
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
    #[error("plugin {name}: not a valid Runway agent component: {reason}")]
    Component { name: String, reason: String },
}

impl Plugins {
    /// Loads every `*.wasm` in `dir`.
    pub fn load_dir(runtime: &Runtime, dir: &Path) -> Result<Plugins, LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
        let mut plugins = Plugins::default();
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
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
            let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
                path: shown,
                source,
            })?;
            plugins.insert(runtime, &name, &bytes)?;
        }
        Ok(plugins)
    }

    /// Loads plugins from `(name, component bytes)` pairs.
    pub fn from_bytes<'a>(
        runtime: &Runtime,
        items: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Plugins, LoadError> {
        let mut plugins = Plugins::default();
        for (name, bytes) in items {
            plugins.insert(runtime, name, bytes)?;
        }
        Ok(plugins)
    }

    fn insert(&mut self, runtime: &Runtime, name: &str, bytes: &[u8]) -> Result<(), LoadError> {
        let bad = |e: wasmtime::Error| LoadError::Component {
            name: name.to_string(),
            reason: format!("{e:#}"),
        };
        let component = Component::new(&runtime.engine, bytes).map_err(bad)?;
        let instance_pre = runtime.linker.instantiate_pre(&component).map_err(bad)?;
        let pre = AgentPre::new(instance_pre).map_err(bad)?;
        let plugin = Plugin {
            name: name.to_string(),
            digest: sha256(bytes),
            pre,
        };
        tracing::info!(plugin = name, digest = %runway_audit::hex::encode(&plugin.digest), "loaded");
        self.by_name.insert(name.to_string(), Arc::new(plugin));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.by_name.get(name).cloned()
    }

    /// Plugin names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}
