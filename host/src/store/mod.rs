//! The dataset store: records keyed by (dataset, key), each with its
//! provenance, each dataset with its fence, and the fencing-token counter —
//! behind a small [`Backend`] trait with two implementations: an embedded
//! SQLite database ([`sqlite`], the default) and PostgreSQL (`postgres`:
//! a row per record, a fence column moved under a row lock, one
//! transaction per commit), chosen by [`StoreConfig`].
//!
//! Runs never write here directly: their writes are [`Staged`] in the host
//! and [`DatasetStore::commit`]ted when the run succeeds, in **one**
//! transaction across all the run's datasets that first checks every
//! fence: all of a run's writes land or none do, even across a crash.
//! Names are validated by [`crate::names`] before they get here and reach
//! SQL only as bound parameters, so a name is an identity, never a path the
//! file system could alias.
//!
//! One host process per data root: [`DatasetStore::open`] takes an
//! exclusive lock on it (`lock.rs`) and a second host is refused, naming
//! the holder's pid. Many hosts share one PostgreSQL database, each with
//! its own data root; only the one that leads writes ([`Shared`]).

mod lock;
mod postgres;
mod read_ahead;
pub(crate) mod sqlite;
mod staging;

pub(crate) use postgres::{
    CANCELLED, CREW, Claimed, CrewRecord, ENDED, Listening, Lost, POSTED, Posting, WorkStanding,
    crew_of,
};
pub use postgres::{
    DatabaseUrl, HostRow, Leader, Recorded, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION, Shared,
    Standing,
};
pub use staging::{Change, ENTRY_BYTES, Staged, Staging};

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::Instant;

use runway_audit::Hash;
use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open data root {path}: {source}")]
    OpenRoot {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "data root {path} is in use by another Runway host (pid {pid}); one host per data root"
    )]
    Locked { path: String, pid: String },
    #[error(
        "data root {path} holds the file-per-record layout of an earlier Runway (dataset \
         folders{found}); this version keeps datasets in {path}/runway.db: move the old root \
         aside (or start on an empty one) and re-run the plans that made it"
    )]
    OldLayout { path: String, found: String },
    #[error("dataset database {path}: {source}")]
    Database {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "dataset {dataset}: token {token} is fenced off (a holder with token {fence} already wrote)"
    )]
    Fenced {
        dataset: String,
        token: u64,
        fence: u64,
    },
    #[error("staged writes to {dataset} without an exclusive lock")]
    NoExclusiveLock { dataset: String },
    #[error("the commit did not fit in the run's window")]
    PastDeadline,
    #[error("dataset database {path}: the commit failed, nothing landed: {reason}")]
    CommitFailed { path: String, reason: String },
    #[error("no datasets at {path}: {path}/runway.db does not exist")]
    NoDatabase { path: String },
    /// A commits row (what a commit landed, which recovery trusts) does not
    /// hold what a commit writes: never read as zeros or skipped.
    #[error(
        "dataset database {path}: the commits row of the COMMITTING record {committing_seq} \
         (runway {runway}) is corrupt: {why}"
    )]
    CorruptCommit {
        path: String,
        committing_seq: u64,
        runway: String,
        why: String,
    },
    #[error(
        "dataset database {path} has schema version {found}; this Runway knows up to {known}: \
         use the newer Runway that wrote it"
    )]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    /// An error of the PostgreSQL backend: `target` names the database,
    /// host and user, never the password.
    #[error("PostgreSQL {target}: {}", postgres::describe(source))]
    Postgres {
        target: String,
        source: tokio_postgres::Error,
    },
    /// The connection string does not parse (the error names an option,
    /// never a value).
    #[error("the PostgreSQL connection string does not parse: {why}")]
    DatabaseUrl { why: String },
    /// The connection's TLS cannot be set up as the sslmode asks (its
    /// root certificate file unreadable, say).
    #[error("PostgreSQL {target}: TLS: {why}")]
    PostgresTls { target: String, why: String },
    /// `runway data` on a database no host has set up, or on an older
    /// schema (only a host migrates).
    #[error("PostgreSQL {target}: {why}")]
    NoPostgresSchema { target: String, why: String },
    #[error("PostgreSQL {target}: cannot start the connections' runtime: {source}")]
    PostgresRuntime {
        target: String,
        source: std::io::Error,
    },
    /// Another live host on the database signs a shard of the same
    /// origin: each host needs its own.
    #[error(
        "PostgreSQL {target}: origin {origin:?} is already a live host's (pid {pid}); give each \
         host sharing a database its own --origin"
    )]
    OriginTaken {
        target: String,
        origin: String,
        pid: i64,
    },
    /// A write only the leader makes, by a host that does not lead (any
    /// more): refused by the database, nothing written.
    #[error("PostgreSQL {target}: {why}")]
    NotLeading { target: String, why: String },
    /// A crew's claim on a run was taken away (its host stopped beating,
    /// or the lead changed hands): nothing of the run lands.
    #[error(
        "the claim on runway {runway} (attempt {attempt}) was lost: its host stopped beating \
         or the lead changed hands; nothing landed"
    )]
    ClaimLost { runway: String, attempt: u32 },
    #[error("PostgreSQL {target}: the schema migration failed: {why}")]
    Migration { target: String, why: String },
}

/// What one run's commit did to each of its datasets, or why it landed
/// nothing.
pub type CommitResult = Result<BTreeMap<String, CommitStats>, StoreError>;

/// What a commit did to one dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub writes: u32,
    pub deletes: u32,
}

/// Who wrote a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub runway: String,
    pub agent: String,
    pub plugin: Hash,
    pub attempt: u32,
    pub token: u64,
    /// Sequence number of the write's audit record.
    pub audit_seq: u64,
    /// On a shared database, the audit shard holding that record: the
    /// origin of the host that committed the write.
    pub shard: Option<String>,
}

/// A dataset as `runway data list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetSummary {
    pub name: String,
    pub records: u64,
    pub fence: u64,
}

/// One run's commit: who it is, the tokens it holds, what it staged.
pub struct RunCommit<'a> {
    pub runway: &'a str,
    pub agent: &'a str,
    pub plugin: Hash,
    pub attempt: u32,
    /// Exclusive tokens by dataset.
    pub tokens: &'a BTreeMap<String, u64>,
    pub staged: &'a Staged,
    /// The audit sequence number of the run's host call number `call`.
    pub seq_of: &'a dyn Fn(u64) -> u64,
    /// Past it, nothing is committed.
    pub deadline: Instant,
    /// Audit seq of the run's COMMITTING record, durable before the
    /// transaction: the commit is found by it after a crash.
    pub committing_seq: u64,
    /// Digest of the run's output, for the SUCCEEDED a recovery appends.
    pub output: Hash,
}

/// A commits row, read back: which run's commit landed, each dataset with
/// the token it landed under and its counts, and the run's output digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub runway: String,
    pub attempt: u32,
    /// At least one: a commit with nothing to land writes no row.
    pub datasets: Vec<LandedDataset>,
    pub output: Hash,
}

/// What one commit landed on one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedDataset {
    pub dataset: String,
    pub token: u64,
    pub stats: CommitStats,
}

/// What a dataset store does; every method is one transaction.
pub trait Backend: Send + Sync {
    /// The next fencing token: unique and larger than any handed out
    /// before, across restarts.
    fn next_token(&self) -> Result<u64, StoreError>;
    /// Reads for one run (or one operator command), from one snapshot.
    fn reader(&self) -> Result<Box<dyn Reader>, StoreError>;
    /// The highest exclusive token that committed to `dataset` (0: none).
    fn fence(&self, dataset: &str) -> Result<u64, StoreError>;
    /// Lands many runs in one transaction, each in a savepoint of its own:
    /// a run's fences are checked first, then all its changes applied, or
    /// none of them. One result per run, in order; when the transaction
    /// itself fails, no run landed.
    fn commit(&self, runs: &[RunCommit<'_>]) -> Vec<CommitResult>;
    /// The commit whose COMMITTING record is `committing_seq` of the shard
    /// `origin` (the embedded store has one shard and ignores it), if its
    /// transaction committed; a row that does not read back whole is
    /// [`StoreError::CorruptCommit`].
    fn landed(&self, origin: &str, committing_seq: u64) -> Result<Option<Landed>, StoreError>;
    /// Every dataset with records or a fence, by name.
    fn datasets(&self) -> Result<Vec<DatasetSummary>, StoreError>;
    fn provenance(&self, dataset: &str, key: &str) -> Result<Option<Provenance>, StoreError>;
    /// Every record of `dataset` with its provenance, in key order.
    fn scan(&self, dataset: &str) -> Result<Vec<(String, Vec<u8>, Provenance)>, StoreError>;
}

/// Committed records as one run reads them: one consistent snapshot
/// (renewed as the backend sees fit: a run reads only datasets it holds a
/// lock on, so no one commits to them meanwhile).
pub trait Reader: Send {
    fn read(&self, dataset: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Committed keys of `dataset` in `[from, to)` (`to` unbounded when
    /// `None`), `from` excluded when `exclusive`, in order, at most `limit`.
    fn keys(
        &self,
        dataset: &str,
        from: &str,
        exclusive: bool,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// How many committed keys of `dataset` lie in `[from, to)` (`to`
    /// unbounded when `None`): one count in the store, no keys fetched.
    fn count(&self, dataset: &str, from: &str, to: Option<&str>) -> Result<u64, StoreError>;
}

/// A run's reads of the store, staged changes merged in by the caller.
pub struct StoreReader {
    reader: Box<dyn Reader>,
}

/// Where a host keeps its datasets.
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// SQLite under the data root (the default).
    #[default]
    Embedded,
    /// A PostgreSQL database that hosts may share: one leads at a time,
    /// under a lease this long (see `controller::standing`); `api` is
    /// where this host's API listens, listed with it when it joins.
    Postgres {
        url: DatabaseUrl,
        lease: std::time::Duration,
        api: Option<String>,
    },
}

/// The store under one data root.
pub struct DatasetStore {
    backend: Box<dyn Backend>,
    /// On PostgreSQL: how this host joins the others and leads.
    shared: Option<Shared>,
}

/// How many committed keys a listing fetches at a time.
const KEYS_CHUNK: usize = 512;

impl DatasetStore {
    /// Opens (creating if needed) the data root at `path`: its SQLite
    /// database, held by this process alone.
    pub fn open(path: &Path) -> Result<DatasetStore, StoreError> {
        Ok(DatasetStore {
            backend: Box::new(sqlite::Sqlite::open(path)?),
            shared: None,
        })
    }

    /// Opens the PostgreSQL database at `url`, migrating its schema;
    /// `root` is the host's local data root, still its own. Nothing is
    /// written until this host joins and leads ([`Self::shared`]).
    pub fn open_postgres(url: &DatabaseUrl, root: &Path) -> Result<DatasetStore, StoreError> {
        let backend = postgres::Postgres::open(url, root)?;
        Ok(DatasetStore {
            shared: Some(backend.shared()),
            backend: Box::new(backend),
        })
    }

    /// The store a standby's crew lands its claimed runs through, on a
    /// shared database (`controller::crew`).
    pub(crate) fn crew(shared: &Shared) -> Option<DatasetStore> {
        let backend = shared.crew_backend()?;
        Some(DatasetStore {
            shared: Some(shared.clone()),
            backend: Box::new(backend),
        })
    }

    /// On PostgreSQL, how this host joins the others and leads.
    pub fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// Whether this host may write (and so clear runways): always on the
    /// embedded store; on a shared database, while it leads and its lease
    /// has not lapsed by its own clock.
    pub fn may_write(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| s.term().is_some())
    }

    /// Opens the store `config` names, over the local data root `root`.
    pub fn open_with(config: &StoreConfig, root: &Path) -> Result<DatasetStore, StoreError> {
        match config {
            StoreConfig::Embedded => DatasetStore::open(root),
            StoreConfig::Postgres { url, .. } => DatasetStore::open_postgres(url, root),
        }
    }

    /// Opens an existing data root for reading only, beside a host that
    /// may be running on it (operators' `runway data`): no lock taken,
    /// nothing written.
    pub fn open_read_only(path: &Path) -> Result<DatasetStore, StoreError> {
        Ok(DatasetStore {
            backend: Box::new(sqlite::Sqlite::open_read_only(path)?),
            shared: None,
        })
    }

    /// The PostgreSQL database at `url`, read-only beside a running host
    /// (no host lock, no migration).
    pub fn open_postgres_read_only(url: &DatabaseUrl) -> Result<DatasetStore, StoreError> {
        let backend = postgres::Postgres::open_read_only(url)?;
        Ok(DatasetStore {
            shared: Some(backend.shared()),
            backend: Box::new(backend),
        })
    }

    /// See [`Backend::landed`].
    pub fn landed(&self, origin: &str, committing_seq: u64) -> Result<Option<Landed>, StoreError> {
        self.backend.landed(origin, committing_seq)
    }

    /// See [`Backend::datasets`].
    pub fn datasets(&self) -> Result<Vec<DatasetSummary>, StoreError> {
        self.backend.datasets()
    }

    /// See [`Backend::next_token`].
    pub fn next_token(&self) -> Result<u64, StoreError> {
        self.backend.next_token()
    }

    /// The value of `key`, or `None` when there is none.
    pub fn read(&self, dataset: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader()?.read(dataset, key)
    }

    /// Reads from one snapshot, for a run's host calls.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        Ok(StoreReader {
            reader: self.backend.reader()?,
        })
    }

    /// See [`StoreReader::list`].
    pub fn list(
        &self,
        dataset: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        changes: Option<&BTreeMap<String, Staging>>,
    ) -> Result<(Vec<String>, bool), StoreError> {
        self.reader()?.list(dataset, prefix, after, limit, changes)
    }

    /// See [`Backend::fence`].
    pub fn fence(&self, dataset: &str) -> Result<u64, StoreError> {
        self.backend.fence(dataset)
    }

    /// See [`Backend::commit`].
    pub fn commit(&self, runs: &[RunCommit<'_>]) -> Vec<CommitResult> {
        self.backend.commit(runs)
    }

    /// Number of records in a dataset (for reports and tests).
    pub fn len(&self, dataset: &str) -> Result<u64, StoreError> {
        self.reader()?.count(dataset, "", None)
    }

    /// Who wrote `key`, when it exists.
    pub fn provenance(&self, dataset: &str, key: &str) -> Result<Option<Provenance>, StoreError> {
        self.backend.provenance(dataset, key)
    }

    /// Every record of a dataset with who wrote it, in key order (for
    /// exports and tests).
    pub fn records(&self, dataset: &str) -> Result<Vec<(String, Vec<u8>, Provenance)>, StoreError> {
        self.backend.scan(dataset)
    }
}

impl StoreReader {
    /// The committed value of `key`, or `None` when there is none.
    pub fn read(&self, dataset: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reader.read(dataset, key)
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
        changes: Option<&BTreeMap<String, Staging>>,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let (from, exclusive) = match after {
            Some(a) if a >= prefix => (a, true),
            _ => (prefix, false),
        };
        let upper = prefix_end(prefix);
        let lower = if exclusive {
            Bound::Excluded(from)
        } else {
            Bound::Included(from)
        };
        let empty = BTreeMap::new();
        let mut staged = changes
            .unwrap_or(&empty)
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut committed = Committed {
            reader: &*self.reader,
            dataset,
            to: upper.as_deref(),
            chunk: Vec::new().into_iter().peekable(),
            next_from: Some((from.to_string(), exclusive)),
        };
        let mut out = Vec::new();
        loop {
            // Merge two ordered streams; a staged change overrides the committed key.
            let next_committed = committed.peek()?.cloned();
            let next = match (next_committed, staged.peek()) {
                (None, None) => break,
                (Some(c), Some((s, _))) if c.as_str() < s.as_str() => {
                    committed.take().map(|k| (k, true))
                }
                (Some(_), None) => committed.take().map(|k| (k, true)),
                (c, Some((s, _))) => {
                    if c.is_some_and(|c| c == s.as_str()) {
                        committed.take();
                    }
                    staged
                        .next()
                        .map(|(k, st)| (k.clone(), matches!(st.change, Change::Put(_))))
                }
            };
            let Some((key, present)) = next else { break };
            if !present {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(key);
        }
        Ok((out, false))
    }

    /// How many keys `dataset` has under `prefix`, a run's own staged
    /// `changes` to it counted in, as [`list`](Self::list) would show them:
    /// the store counts the committed keys; each staged change under the
    /// prefix then adds one if it puts a key not committed, and takes one
    /// off if it deletes a committed key.
    pub fn count(
        &self,
        dataset: &str,
        prefix: &str,
        changes: Option<&BTreeMap<String, Staging>>,
    ) -> Result<u64, StoreError> {
        let mut n = self
            .reader
            .count(dataset, prefix, prefix_end(prefix).as_deref())?;
        let staged = changes
            .into_iter()
            .flat_map(|c| c.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)))
            .take_while(|(k, _)| k.starts_with(prefix));
        for (key, staging) in staged {
            // Keys hold no NUL, so `[key, key\0)` holds `key` alone.
            let end = format!("{key}\0");
            let was = self.reader.count(dataset, key, Some(&end))?;
            let is = u64::from(matches!(staging.change, Change::Put(_)));
            n = n + is - was;
        }
        Ok(n)
    }
}

/// The committed keys of a listing, fetched a chunk at a time.
struct Committed<'a> {
    reader: &'a dyn Reader,
    dataset: &'a str,
    to: Option<&'a str>,
    chunk: std::iter::Peekable<std::vec::IntoIter<String>>,
    /// Where the next chunk starts; `None` once the range is exhausted.
    next_from: Option<(String, bool)>,
}

impl Committed<'_> {
    fn peek(&mut self) -> Result<Option<&String>, StoreError> {
        if self.chunk.peek().is_none()
            && let Some((from, exclusive)) = self.next_from.take()
        {
            let keys = self
                .reader
                .keys(self.dataset, &from, exclusive, self.to, KEYS_CHUNK)?;
            if keys.len() == KEYS_CHUNK {
                self.next_from = keys.last().map(|k| (k.clone(), true));
            }
            self.chunk = keys.into_iter().peekable();
        }
        Ok(self.chunk.peek())
    }

    fn take(&mut self) -> Option<String> {
        self.chunk.next()
    }
}

/// The first string after every string starting with `prefix` (keys are
/// ASCII, so bumping the last byte is enough); `None` for the empty prefix.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.pop()?;
    bytes.push(last + 1);
    String::from_utf8(bytes).ok()
}
