//! The embedded dataset store: one directory per dataset under a data root,
//! one file per record.
//!
//! The root is opened with `cap-std`, so no name can reach outside it, even
//! through a symlink planted inside. Names are validated by [`crate::names`]
//! before they get here. Each dataset keeps an in-memory index of its keys
//! (loaded on first use) so listing is ordered and cheap, and the highest
//! exclusive token that ever committed to it (its *fence*, kept in `.fence`).
//!
//! Runs never write here directly: their writes are [`Staged`] and
//! [`DatasetStore::commit`]ted when the run succeeds, atomically even across
//! a crash (see `commit`).

mod commit;
mod staging;
mod tokens;

pub use staging::{Change, ENTRY_BYTES, Staged};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use thiserror::Error;

use crate::names;
use tokens::TokenCounter;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open data root {path}: {source}")]
    OpenRoot {
        path: String,
        source: std::io::Error,
    },
    #[error("dataset {dataset}: {op} failed: {source}")]
    Io {
        dataset: String,
        op: &'static str,
        source: std::io::Error,
    },
    #[error(
        "dataset {dataset}: token {token} is fenced off (a holder with token {fence} already wrote)"
    )]
    Fenced {
        dataset: String,
        token: u64,
        fence: u64,
    },
    #[error("dataset {dataset}: .fence holds {content:?}, not a token")]
    BadFence { dataset: String, content: String },
    #[error("token counter: {0}")]
    Tokens(String),
}

/// What a commit did to one dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub writes: u32,
    pub deletes: u32,
}

/// One dataset's in-memory state.
struct Dataset {
    dir: Option<Dir>,
    keys: BTreeSet<String>,
    fence: u64,
}

/// The store under one data root.
pub struct DatasetStore {
    root: Dir,
    datasets: Mutex<HashMap<String, Arc<Mutex<Dataset>>>>,
    tokens: Mutex<TokenCounter>,
}

impl DatasetStore {
    /// Opens (creating if needed) the data root at `path`.
    pub fn open(path: &Path) -> Result<DatasetStore, StoreError> {
        let open_err = |source| StoreError::OpenRoot {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(open_err)?;
        let root = Dir::open_ambient_dir(path, ambient_authority()).map_err(open_err)?;
        let tokens = TokenCounter::open(&root)?;
        Ok(DatasetStore {
            root,
            datasets: Mutex::new(HashMap::new()),
            tokens: Mutex::new(tokens),
        })
    }

    /// The next fencing token: unique and larger than any handed out before,
    /// across restarts.
    pub fn next_token(&self) -> Result<u64, StoreError> {
        lock(&self.tokens).next(&self.root)
    }

    /// The value of `key`, or `None` when there is none.
    pub fn read(&self, dataset: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let ds = self.dataset(dataset)?;
        let ds = lock(&ds);
        let Some(dir) = ds.dir.as_ref().filter(|_| ds.keys.contains(key)) else {
            return Ok(None);
        };
        match dir.read(names::key_to_file(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io_err(dataset, "read", source)),
        }
    }

    /// Keys with `prefix`, strictly after `after`, at most `limit`, merged
    /// with a run's own staged `changes` to this dataset. The flag says
    /// whether more keys follow.
    pub fn list(
        &self,
        dataset: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        changes: Option<&BTreeMap<String, Change>>,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let ds = self.dataset(dataset)?;
        let ds = lock(&ds);
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let empty = BTreeMap::new();
        let changes = changes.unwrap_or(&empty);
        let mut committed = ds
            .keys
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            .peekable();
        let mut staged = changes
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut out = Vec::new();
        loop {
            // Merge two ordered streams; a staged change overrides the committed key.
            let next = match (committed.peek(), staged.peek()) {
                (None, None) => break,
                (Some(c), Some((s, _))) if c.as_str() < s.as_str() => {
                    committed.next().map(|k| (k, true))
                }
                (Some(_), None) => committed.next().map(|k| (k, true)),
                (c, Some((s, _))) => {
                    if c.is_some_and(|c| *c == *s) {
                        committed.next();
                    }
                    staged
                        .next()
                        .map(|(k, ch)| (k, matches!(ch, Change::Put(_))))
                }
            };
            let Some((key, present)) = next else { break };
            if !present {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(key.clone());
        }
        Ok((out, false))
    }

    /// The dataset's fence: the highest exclusive token that committed to it.
    pub fn fence(&self, dataset: &str) -> Result<u64, StoreError> {
        Ok(lock(&*self.dataset(dataset)?).fence)
    }

    /// Applies a run's staged changes to `dataset` under exclusive `token`:
    /// refused when a newer token already committed; otherwise temporaries
    /// are written and flushed, renamed into place, the fence raised and the
    /// directory flushed. Refused past `deadline` (the end of the run's
    /// window). A failed commit leaves the dataset as it was: what it wrote
    /// is removed, or, past the commit point, finished by recovery on the
    /// dataset's next use — no restart needed.
    pub fn commit(
        &self,
        dataset: &str,
        token: u64,
        changes: &BTreeMap<String, Change>,
        deadline: Instant,
    ) -> Result<CommitStats, StoreError> {
        let ds = self.dataset(dataset)?;
        let mut ds = lock(&ds);
        if token < ds.fence {
            return Err(StoreError::Fenced {
                dataset: dataset.to_string(),
                token,
                fence: ds.fence,
            });
        }
        let err = |op| move |source| io_err(dataset, op, source);
        if ds.dir.is_none() {
            self.root.create_dir(dataset).map_err(err("create"))?;
            ds.dir = Some(self.root.open_dir(dataset).map_err(err("open"))?);
            sync_dir(&self.root).map_err(err("flush root"))?;
        }
        let dir = ds.dir.as_ref().expect("dataset dir exists");
        let stats = match commit::commit(dir, token, changes, deadline) {
            Ok(stats) => stats,
            Err(source) => {
                // Forget the cached state: the next use reloads the dataset
                // from disk, finishing a commit that passed its commit point.
                lock(&self.datasets).remove(dataset);
                return Err(io_err(dataset, "commit", source));
            }
        };
        ds.fence = token;
        for (key, change) in changes {
            match change {
                Change::Put(_) => ds.keys.insert(key.clone()),
                Change::Delete => ds.keys.remove(key),
            };
        }
        Ok(stats)
    }

    /// Number of records in a dataset (for reports and tests).
    pub fn len(&self, dataset: &str) -> Result<usize, StoreError> {
        Ok(lock(&*self.dataset(dataset)?).keys.len())
    }

    /// The dataset's state, loaded from disk on first use.
    fn dataset(&self, name: &str) -> Result<Arc<Mutex<Dataset>>, StoreError> {
        if let Some(ds) = lock(&self.datasets).get(name) {
            return Ok(ds.clone());
        }
        let loaded = Arc::new(Mutex::new(self.load(name)?));
        Ok(lock(&self.datasets)
            .entry(name.to_string())
            .or_insert(loaded)
            .clone())
    }

    fn load(&self, name: &str) -> Result<Dataset, StoreError> {
        let err = |op| move |source| io_err(name, op, source);
        let dir = match self.root.open_dir(name) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Dataset {
                    dir: None,
                    keys: BTreeSet::new(),
                    fence: 0,
                });
            }
            Err(source) => return Err(io_err(name, "open", source)),
        };
        if commit::recover(&dir).map_err(err("recover"))? {
            tracing::warn!(dataset = name, "finished a commit interrupted by a crash");
        }
        let mut keys = BTreeSet::new();
        for entry in dir.entries().map_err(err("list"))? {
            let entry = entry.map_err(err("list"))?;
            if let Some(key) = entry.file_name().to_str().and_then(names::file_to_key) {
                keys.insert(key);
            }
        }
        let fence = match dir.read_to_string(".fence") {
            Ok(s) => s.trim().parse().map_err(|_| StoreError::BadFence {
                dataset: name.to_string(),
                content: s,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(io_err(name, "read fence", source)),
        };
        Ok(Dataset {
            dir: Some(dir),
            keys,
            fence,
        })
    }
}

/// fsync of a directory (cap-std's own handles cannot be synced: they are
/// opened as paths only, so the directory is opened again for reading).
pub(crate) fn sync_dir(dir: &Dir) -> std::io::Result<()> {
    dir.open(".")?.sync_all()
}

fn io_err(dataset: &str, op: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        dataset: dataset.to_string(),
        op,
        source,
    }
}

/// Locks a mutex, recovering from poisoning: every guarded structure here is
/// left consistent before any operation that can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
