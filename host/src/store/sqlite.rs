//! The embedded backend: one SQLite database, `runway.db` under the data
//! root, in WAL mode with `synchronous = FULL` (every commit durable when it
//! returns), opened by this host alone.
//!
//! | table | holds |
//! |---|---|
//! | `records` | (dataset, key) → value, and who wrote it: runway, agent, plugin digest, attempt, token, audit seq |
//! | `fences` | dataset → the highest exclusive token that committed to it |
//! | `commits` | one row per run commit, keyed by the audit seq of its COMMITTING record: runway, attempt, the output digest |
//! | `commit_datasets` | what each commit landed on each dataset: token, writes, deletes |
//! | `counters` | `next_token`: the first fencing token not yet reserved |
//!
//! What a commit landed is the data recovery trusts after a crash, so it is
//! typed by the database itself: `STRICT` tables, one column per fact, one
//! row per dataset (not an encoding of our own that would need a version
//! and a parser; an operator reads it with `sqlite3`). A row that does not
//! read back whole is [`StoreError::CorruptCommit`], never a zero. The
//! database's `user_version` is its schema version ([`SCHEMA_VERSION`]):
//! version 0 (commits with a `landed` text column) is migrated on open,
//! strictly, and a newer version is refused.
//!
//! Tokens are reserved in blocks of [`TOKEN_BLOCK`], the block's end made
//! durable before any token of it is handed out; after a crash the rest of
//! a block is skipped, never reused. Fences are cached in memory: this
//! process is the database's only writer.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runway_audit::Hash;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::lock::RootLock;
use super::read_ahead::{self, Fetched, ReadAhead};
use super::{
    Backend, Change, CommitResult, CommitStats, DatasetSummary, Landed, LandedDataset, Provenance,
    Reader, RunCommit, StoreError,
};

/// The database file's name in the data root.
pub const DB_FILE: &str = "runway.db";
/// Tokens reserved per durable write of the counter.
const TOKEN_BLOCK: u64 = 1024;
/// Rows written between two looks at the run's deadline.
const DEADLINE_EVERY: usize = 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    dataset   TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    value     BLOB    NOT NULL,
    runway    TEXT    NOT NULL,
    agent     TEXT    NOT NULL,
    plugin    BLOB    NOT NULL,
    attempt   INTEGER NOT NULL,
    token     INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL,
    PRIMARY KEY (dataset, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fences (
    dataset TEXT    PRIMARY KEY,
    token   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The schema version this host writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// The commit tables of [`SCHEMA_VERSION`] 1.
const COMMIT_TABLES: &str = "
CREATE TABLE commits (
    committing_seq INTEGER PRIMARY KEY,
    runway         TEXT    NOT NULL,
    attempt        INTEGER NOT NULL CHECK (attempt >= 0),
    output         BLOB    NOT NULL CHECK (length(output) = 32)
) STRICT;
CREATE TABLE commit_datasets (
    committing_seq INTEGER NOT NULL REFERENCES commits (committing_seq),
    dataset        TEXT    NOT NULL,
    token          INTEGER NOT NULL CHECK (token >= 0),
    writes         INTEGER NOT NULL CHECK (writes >= 0),
    deletes        INTEGER NOT NULL CHECK (deletes >= 0),
    PRIMARY KEY (committing_seq, dataset)
) STRICT, WITHOUT ROWID;
";

/// The SQLite backend of one data root.
pub struct Sqlite {
    path: PathBuf,
    db: Mutex<Connection>,
    tokens: Mutex<Tokens>,
    fences: Mutex<HashMap<String, u64>>,
    readers: Arc<ReadPool>,
    /// The data root's lock; none when opened read-only.
    _lock: Option<RootLock>,
}

struct Tokens {
    next: u64,
    reserved_until: u64,
}

impl Sqlite {
    /// Opens (creating if needed) the database under the data root `root`.
    pub fn open(root: &Path) -> Result<Sqlite, StoreError> {
        let shown = root.display().to_string();
        std::fs::create_dir_all(root).map_err(|source| StoreError::OpenRoot {
            path: shown.clone(),
            source,
        })?;
        let lock = RootLock::take(root)?;
        refuse_old_layout(root)?;
        let path = root.join(DB_FILE);
        let (db, next) = {
            let err = db_err(&path);
            let db = Connection::open(&path).map_err(&err)?;
            db.pragma_update(None, "journal_mode", "WAL")
                .map_err(&err)?;
            db.pragma_update(None, "synchronous", "FULL")
                .map_err(&err)?;
            db.execute_batch(SCHEMA).map_err(&err)?;
            migrate(&db, &path)?;
            let next: Option<i64> = db
                .query_row(
                    "SELECT value FROM counters WHERE name = 'next_token'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            (db, next.map_or(1, from_sql))
        };
        Ok(Sqlite {
            readers: ReadPool::new(&path),
            path,
            db: Mutex::new(db),
            tokens: Mutex::new(Tokens {
                next,
                reserved_until: next,
            }),
            fences: Mutex::new(HashMap::new()),
            _lock: Some(lock),
        })
    }

    /// Opens an existing database for reading only: no lock, no schema.
    pub fn open_read_only(root: &Path) -> Result<Sqlite, StoreError> {
        let path = root.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NoDatabase {
                path: root.display().to_string(),
            });
        }
        let db = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(db_err(&path))?;
        Ok(Sqlite {
            readers: ReadPool::new(&path),
            path,
            db: Mutex::new(db),
            tokens: Mutex::new(Tokens {
                next: 0,
                reserved_until: 0,
            }),
            fences: Mutex::new(HashMap::new()),
            _lock: None,
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        lock(&self.db)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        db_err(&self.path)
    }

    fn commit_failed(&self, reason: &str) -> StoreError {
        StoreError::CommitFailed {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// The fence of `dataset` as `db` sees it (cached once read: this
    /// process is the only writer).
    fn fence_on(&self, db: &Connection, dataset: &str) -> Result<u64, StoreError> {
        if let Some(&fence) = lock(&self.fences).get(dataset) {
            return Ok(fence);
        }
        let fence: Option<i64> = db
            .prepare_cached("SELECT token FROM fences WHERE dataset = ?1")
            .and_then(|mut s| s.query_row(params![dataset], |r| r.get(0)).optional())
            .map_err(self.err())?;
        let fence = fence.map_or(0, from_sql);
        lock(&self.fences).insert(dataset.to_string(), fence);
        Ok(fence)
    }

    /// The exclusive token `run` holds on each dataset it staged writes
    /// to, each checked against the fence (`moved`: fences raised earlier
    /// in this transaction).
    fn check_fences(
        &self,
        db: &Connection,
        run: &RunCommit<'_>,
        moved: &HashMap<String, u64>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut tokens = BTreeMap::new();
        for (dataset, _) in run.staged.iter() {
            let token = *run
                .tokens
                .get(dataset)
                .ok_or_else(|| StoreError::NoExclusiveLock {
                    dataset: dataset.clone(),
                })?;
            let fence = match moved.get(dataset) {
                Some(&fence) => fence,
                None => self.fence_on(db, dataset)?,
            };
            if token < fence {
                return Err(StoreError::Fenced {
                    dataset: dataset.clone(),
                    token,
                    fence,
                });
            }
            tokens.insert(dataset.clone(), token);
        }
        Ok(tokens)
    }
}

impl Backend for Sqlite {
    fn next_token(&self) -> Result<u64, StoreError> {
        let mut tokens = lock(&self.tokens);
        if tokens.next == tokens.reserved_until {
            let until = tokens.next + TOKEN_BLOCK;
            self.db()
                .execute(
                    "INSERT INTO counters (name, value) VALUES ('next_token', ?1)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![to_sql(until)],
                )
                .map_err(self.err())?;
            tokens.reserved_until = until;
        }
        let token = tokens.next;
        tokens.next += 1;
        Ok(token)
    }

    fn reader(&self) -> Result<Box<dyn Reader>, StoreError> {
        let conn = match lock(&self.readers.idle).pop() {
            Some(conn) => conn,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                Connection::open_with_flags(&self.path, flags).map_err(self.err())?
            }
        };
        let reader = SqliteReader {
            conn: Some(conn),
            pool: self.readers.clone(),
            since: Cell::new(Instant::now()),
            ahead: RefCell::default(),
        };
        reader.begin()?;
        Ok(Box::new(reader))
    }

    fn fence(&self, dataset: &str) -> Result<u64, StoreError> {
        // A cached fence needs no connection: a host call checking its
        // lock never waits for a landing transaction to let go of it.
        if let Some(&fence) = lock(&self.fences).get(dataset) {
            return Ok(fence);
        }
        self.fence_on(&self.db(), dataset)
    }

    fn commit(&self, runs: &[RunCommit<'_>]) -> Vec<CommitResult> {
        let err = self.err();
        let mut db = self.db();
        let mut tx = match db.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let reason = err(e).to_string();
                return runs
                    .iter()
                    .map(|_| Err(self.commit_failed(&reason)))
                    .collect();
            }
        };
        // Fences as this transaction leaves them: the cached ones, then
        // those of each run that landed in it.
        let mut moved: HashMap<String, u64> = HashMap::new();
        let mut results = Vec::with_capacity(runs.len());
        for run in runs {
            // Each run in a savepoint of its own: a fenced or failed run
            // rolls back alone and never takes the others down.
            let landed = tx.savepoint().map_err(&err).and_then(|sp| {
                let tokens = self.check_fences(&sp, run, &moved)?;
                let stats = apply(&sp, run, &tokens).map_err(|e| match e {
                    Applied::PastDeadline => StoreError::PastDeadline,
                    Applied::Sql(e) => err(e),
                })?;
                sp.commit().map_err(&err)?;
                Ok((tokens, stats))
            });
            results.push(landed.map(|(tokens, stats)| {
                moved.extend(tokens);
                stats
            }));
        }
        if let Err(e) = tx.commit() {
            let reason = err(e).to_string();
            return results
                .into_iter()
                .map(|r| r.and(Err(self.commit_failed(&reason))))
                .collect();
        }
        lock(&self.fences).extend(moved);
        results
    }

    fn landed(&self, _origin: &str, committing_seq: u64) -> Result<Option<Landed>, StoreError> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT runway, attempt, output FROM commits WHERE committing_seq = ?1",
                params![to_sql(committing_seq)],
                |r| {
                    Ok((
                        r.get::<_, Value>(0)?,
                        r.get::<_, Value>(1)?,
                        r.get::<_, Value>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(self.err())?;
        let Some((runway, attempt, output)) = row else {
            return Ok(None);
        };
        let runway = match runway {
            Value::Text(runway) => runway,
            other => {
                let corrupt = Corrupt::new(&self.path, committing_seq, "?");
                return Err(corrupt.of(format!("runway is {}", kind(&other))));
            }
        };
        let corrupt = Corrupt::new(&self.path, committing_seq, &runway);
        let attempt = corrupt.number("attempt", attempt)?;
        let output: Hash = match output {
            Value::Blob(b) => b.try_into().map_err(|b: Vec<u8>| {
                corrupt.of(format!("output digest has {} bytes, not 32", b.len()))
            })?,
            other => return Err(corrupt.of(format!("output digest is {}", kind(&other)))),
        };
        let mut stmt = db
            .prepare_cached(
                "SELECT dataset, token, writes, deletes FROM commit_datasets
                 WHERE committing_seq = ?1 ORDER BY dataset",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![to_sql(committing_seq)], |r| {
                Ok((
                    r.get::<_, Value>(0)?,
                    r.get::<_, Value>(1)?,
                    r.get::<_, Value>(2)?,
                    r.get::<_, Value>(3)?,
                ))
            })
            .map_err(self.err())?;
        let mut datasets = Vec::new();
        for row in rows {
            let (dataset, token, writes, deletes) = row.map_err(self.err())?;
            let Value::Text(dataset) = dataset else {
                return Err(corrupt.of(format!("a dataset name is {}", kind(&dataset))));
            };
            datasets.push(LandedDataset {
                token: corrupt.number("token", token)?,
                stats: CommitStats {
                    writes: corrupt.number("writes", writes)?,
                    deletes: corrupt.number("deletes", deletes)?,
                },
                dataset,
            });
        }
        if datasets.is_empty() {
            return Err(corrupt.of("it lists no dataset (a commit lands on at least one)".into()));
        }
        Ok(Some(Landed {
            runway,
            attempt,
            datasets,
            output,
        }))
    }

    fn datasets(&self) -> Result<Vec<DatasetSummary>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT name, sum(records), max(fence) FROM (
                   SELECT dataset AS name, count(*) AS records, 0 AS fence FROM records GROUP BY dataset
                   UNION ALL SELECT dataset, 0, token FROM fences)
                 GROUP BY name ORDER BY name",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DatasetSummary {
                    name: r.get(0)?,
                    records: from_sql(r.get(1)?),
                    fence: from_sql(r.get(2)?),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    fn provenance(&self, dataset: &str, key: &str) -> Result<Option<Provenance>, StoreError> {
        self.db()
            .query_row(
                "SELECT runway, agent, plugin, attempt, token, audit_seq FROM records
                 WHERE dataset = ?1 AND key = ?2",
                params![dataset, key],
                |r| provenance(r, 0),
            )
            .optional()
            .map_err(self.err())
    }

    fn scan(&self, dataset: &str) -> Result<Vec<(String, Vec<u8>, Provenance)>, StoreError> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT key, value, runway, agent, plugin, attempt, token, audit_seq FROM records
                 WHERE dataset = ?1 ORDER BY key",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![dataset], |r| {
                Ok((r.get(0)?, r.get(1)?, provenance(r, 2)?))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

/// The provenance columns of a row, starting at column `at`.
fn provenance(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Provenance> {
    let plugin: Vec<u8> = r.get(at + 2)?;
    Ok(Provenance {
        runway: r.get(at)?,
        agent: r.get(at + 1)?,
        plugin: plugin.try_into().unwrap_or([0; 32]),
        attempt: r.get(at + 3)?,
        token: from_sql(r.get(at + 4)?),
        audit_seq: from_sql(r.get(at + 5)?),
        shard: None,
    })
}

/// A data root written by the file-per-record store has dataset folders
/// and a `.runway-tokens` file; this store would silently ignore them.
fn refuse_old_layout(root: &Path) -> Result<(), StoreError> {
    let shown = root.display().to_string();
    let entries = std::fs::read_dir(root).map_err(|source| StoreError::OpenRoot {
        path: shown.clone(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_dir()) || name == ".runway-tokens" {
            found.push(name);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    found.truncate(3);
    Err(StoreError::OldLayout {
        path: shown,
        found: format!(": {}", found.join(", ")),
    })
}

/// Why applying one run's changes stopped.
enum Applied {
    PastDeadline,
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for Applied {
    fn from(e: rusqlite::Error) -> Self {
        Applied::Sql(e)
    }
}

/// Applies one run's staged changes with its checked `tokens`, raises its
/// fences and writes its commits row.
fn apply(
    db: &Connection,
    run: &RunCommit<'_>,
    tokens: &BTreeMap<String, u64>,
) -> Result<BTreeMap<String, CommitStats>, Applied> {
    if tokens.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut put = db.prepare_cached(put_sql(1))?;
    let mut put_many = db.prepare_cached(put_sql(PUT_ROWS))?;
    let mut puts: Vec<(&str, &[u8], i64)> = Vec::with_capacity(PUT_ROWS);
    let mut delete = db.prepare_cached("DELETE FROM records WHERE dataset = ?1 AND key = ?2")?;
    let mut fence = db.prepare_cached(
        "INSERT INTO fences (dataset, token) VALUES (?1, ?2)
         ON CONFLICT (dataset) DO UPDATE SET token = excluded.token",
    )?;
    let mut stats = BTreeMap::new();
    let mut rows = 0usize;
    for (dataset, changes) in run.staged.iter() {
        let token = to_sql(tokens[dataset]);
        let mut s = CommitStats::default();
        for (key, staging) in changes {
            if rows.is_multiple_of(DEADLINE_EVERY) && Instant::now() >= run.deadline {
                return Err(Applied::PastDeadline);
            }
            rows += 1;
            match &staging.change {
                Change::Put(value) => {
                    puts.push((
                        key.as_str(),
                        value.as_slice(),
                        to_sql((run.seq_of)(staging.call)),
                    ));
                    if puts.len() == PUT_ROWS {
                        bind_puts(&mut put_many, dataset, &puts, run, token)?;
                        put_many.raw_execute()?;
                        puts.clear();
                    }
                    s.writes += 1;
                }
                Change::Delete => {
                    s.deletes += delete.execute(params![dataset, key])? as u32;
                }
            }
        }
        for row in puts.drain(..) {
            bind_puts(&mut put, dataset, &[row], run, token)?;
            put.raw_execute()?;
        }
        fence.execute(params![dataset, token])?;
        stats.insert(dataset.clone(), s);
    }
    let seq = to_sql(run.committing_seq);
    db.prepare_cached(
        "INSERT INTO commits (committing_seq, runway, attempt, output) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![seq, run.runway, run.attempt, &run.output[..]])?;
    let mut landed = db.prepare_cached(
        "INSERT INTO commit_datasets (committing_seq, dataset, token, writes, deletes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (dataset, s) in &stats {
        landed.execute(params![
            seq,
            dataset,
            to_sql(tokens[dataset]),
            s.writes,
            s.deletes
        ])?;
    }
    Ok(stats)
}

/// Rows one statement of a commit upserts: one statement per row was
/// most of a landing's time in the nightly's profile (its step, reset and
/// binding per row).
const PUT_ROWS: usize = 32;
/// A record's columns, bound in this order.
const PUT_COLUMNS: usize = 9;

/// The upsert of `rows` records (cached per connection by its text).
fn put_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let [one, many] = SQL.get_or_init(|| {
        let sql = |rows: usize| {
            let row = format!("({})", ["?"; PUT_COLUMNS].join(", "));
            format!(
                "INSERT INTO records (dataset, key, value, runway, agent, plugin, attempt, token, \
                 audit_seq) VALUES {}
                 ON CONFLICT (dataset, key) DO UPDATE SET value = excluded.value,
                   runway = excluded.runway, agent = excluded.agent, plugin = excluded.plugin,
                   attempt = excluded.attempt, token = excluded.token, audit_seq = excluded.audit_seq",
                vec![row; rows].join(", ")
            )
        };
        [sql(1), sql(PUT_ROWS)]
    });
    if rows == 1 { one } else { many }
}

/// Binds `rows` (key, value, audit seq) of `run`'s records of `dataset`
/// to an upsert of as many rows.
fn bind_puts(
    stmt: &mut rusqlite::CachedStatement<'_>,
    dataset: &str,
    rows: &[(&str, &[u8], i64)],
    run: &RunCommit<'_>,
    token: i64,
) -> rusqlite::Result<()> {
    for (i, &(key, value, seq)) in rows.iter().enumerate() {
        let at = i * PUT_COLUMNS;
        stmt.raw_bind_parameter(at + 1, dataset)?;
        stmt.raw_bind_parameter(at + 2, key)?;
        stmt.raw_bind_parameter(at + 3, value)?;
        stmt.raw_bind_parameter(at + 4, run.runway)?;
        stmt.raw_bind_parameter(at + 5, run.agent)?;
        stmt.raw_bind_parameter(at + 6, &run.plugin[..])?;
        stmt.raw_bind_parameter(at + 7, run.attempt)?;
        stmt.raw_bind_parameter(at + 8, token)?;
        stmt.raw_bind_parameter(at + 9, seq)?;
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`], in one transaction: from
/// version 0, the `landed` text of every commits row is parsed strictly
/// into `commit_datasets` rows (a part that does not parse stops the
/// migration, naming the row); a newer version is refused.
fn migrate(db: &Connection, path: &Path) -> Result<(), StoreError> {
    let err = db_err(path);
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = db.unchecked_transaction().map_err(&err)?;
    let old: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'commits'",
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    if old {
        tx.execute_batch("ALTER TABLE commits RENAME TO commits_v0")
            .map_err(&err)?;
    }
    tx.execute_batch(COMMIT_TABLES).map_err(&err)?;
    if old {
        let rows: Vec<(i64, String, i64, String, Vec<u8>)> = tx
            .prepare("SELECT committing_seq, runway, attempt, landed, output FROM commits_v0")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(&err)?;
        for (seq, runway, attempt, landed, output) in rows {
            let corrupt = Corrupt::new(path, from_sql(seq), &runway);
            tx.execute(
                "INSERT INTO commits (committing_seq, runway, attempt, output)
                 VALUES (?1, ?2, ?3, ?4)",
                params![seq, runway, attempt, output],
            )
            .map_err(|e| corrupt.of(e.to_string()))?;
            for part in landed.split(',') {
                let parsed = part.split_once('=').and_then(|(dataset, n)| {
                    let n: Vec<u64> = n
                        .split(':')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .ok()?;
                    match n[..] {
                        [token, writes, deletes] => Some((dataset, token, writes, deletes)),
                        _ => None,
                    }
                });
                let Some((dataset, token, writes, deletes)) = parsed else {
                    return Err(corrupt.of(format!(
                        "landed part {part:?} is not DATASET=TOKEN:WRITES:DELETES"
                    )));
                };
                tx.execute(
                    "INSERT INTO commit_datasets (committing_seq, dataset, token, writes, deletes)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![seq, dataset, to_sql(token), to_sql(writes), to_sql(deletes)],
                )
                .map_err(|e| corrupt.of(e.to_string()))?;
            }
        }
        tx.execute_batch("DROP TABLE commits_v0").map_err(&err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(&err)?;
    tx.commit().map_err(&err)
}

/// Names a corrupt commits row in its errors.
struct Corrupt<'a> {
    path: &'a Path,
    committing_seq: u64,
    runway: &'a str,
}

impl<'a> Corrupt<'a> {
    fn new(path: &'a Path, committing_seq: u64, runway: &'a str) -> Corrupt<'a> {
        Corrupt {
            path,
            committing_seq,
            runway,
        }
    }

    fn of(&self, why: String) -> StoreError {
        StoreError::CorruptCommit {
            path: self.path.display().to_string(),
            committing_seq: self.committing_seq,
            runway: self.runway.to_string(),
            why,
        }
    }

    /// Column `name` as a non-negative integer that fits `T`.
    fn number<T: TryFrom<i64>>(&self, name: &str, value: Value) -> Result<T, StoreError> {
        match value {
            Value::Integer(n) => T::try_from(n)
                .ok()
                .filter(|_| n >= 0)
                .ok_or_else(|| self.of(format!("{name} {n} is out of range"))),
            other => Err(self.of(format!("{name} is {}", kind(&other)))),
        }
    }
}

/// What kind of SQLite value `v` is, for an error.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(n) => format!("the integer {n}"),
        Value::Real(x) => format!("the real {x}"),
        Value::Text(t) => format!("the text {:?}", t.chars().take(40).collect::<String>()),
        Value::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// Idle read connections of one database, kept for the next run.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// A run's reads: a connection of its own in one read transaction (one
/// snapshot instead of a lock round trip per statement), renewed every
/// [`SNAPSHOT_AGE`] so a long run never pins the write-ahead log; point
/// reads through a [`ReadAhead`].
struct SqliteReader {
    conn: Option<Connection>,
    pool: Arc<ReadPool>,
    since: Cell<Instant>,
    ahead: RefCell<ReadAhead>,
}

/// How long a reader keeps one snapshot. A run only reads datasets it
/// holds a lock on, which nobody else commits to meanwhile, so a fresher
/// snapshot never shows it anything different.
const SNAPSHOT_AGE: Duration = Duration::from_millis(100);

impl ReadPool {
    fn new(path: &Path) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }
}

impl SqliteReader {
    fn begin(&self) -> Result<(), StoreError> {
        self.since.set(Instant::now());
        let conn = self
            .conn
            .as_ref()
            .expect("a live reader has its connection");
        conn.execute_batch("BEGIN").map_err(db_err(&self.pool.path))
    }

    /// The connection, its snapshot renewed when old.
    fn conn(&self) -> Result<&Connection, StoreError> {
        let conn = self
            .conn
            .as_ref()
            .expect("a live reader has its connection");
        if self.since.get().elapsed() > SNAPSHOT_AGE {
            conn.execute_batch("COMMIT")
                .map_err(db_err(&self.pool.path))?;
            self.begin()?;
        }
        Ok(conn)
    }
}

impl Drop for SqliteReader {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.execute_batch("COMMIT").is_ok()
        {
            lock(&self.pool.idle).push(conn);
        }
    }
}

impl SqliteReader {
    /// At most `window` committed rows of `dataset` from `key` on, fewer
    /// once their values hold [`read_ahead::MAX_BYTES`].
    fn fetch(&self, dataset: &str, key: &str, window: usize) -> Result<Fetched, StoreError> {
        let err = db_err(&self.pool.path);
        let mut stmt = self
            .conn()?
            .prepare_cached(
                "SELECT key, value FROM records WHERE dataset = ?1 AND key >= ?2
                 ORDER BY key LIMIT ?3",
            )
            .map_err(&err)?;
        let limit = i64::try_from(window).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![dataset, key, limit]).map_err(&err)?;
        let (mut out, mut bytes) = (Vec::with_capacity(window), 0);
        while let Some(row) = rows.next().map_err(&err)? {
            let value: Vec<u8> = row.get(1).map_err(&err)?;
            bytes += value.len();
            out.push((row.get(0).map_err(&err)?, value));
            if bytes >= read_ahead::MAX_BYTES {
                return Ok((out, false));
            }
        }
        let to_end = out.len() < window;
        Ok((out, to_end))
    }
}

impl Reader for SqliteReader {
    fn read(&self, dataset: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.ahead
            .borrow_mut()
            .read(dataset, key, |window| self.fetch(dataset, key, window))
    }

    fn keys(
        &self,
        dataset: &str,
        from: &str,
        exclusive: bool,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let db = self.conn()?;
        let sql = match (exclusive, to.is_some()) {
            (true, true) => {
                "SELECT key FROM records WHERE dataset = ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT ?4"
            }
            (false, true) => {
                "SELECT key FROM records WHERE dataset = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4"
            }
            (true, false) => {
                "SELECT key FROM records WHERE dataset = ?1 AND key > ?2 AND ?3 IS NULL ORDER BY key LIMIT ?4"
            }
            (false, false) => {
                "SELECT key FROM records WHERE dataset = ?1 AND key >= ?2 AND ?3 IS NULL ORDER BY key LIMIT ?4"
            }
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let err = db_err(&self.pool.path);
        let mut stmt = db.prepare_cached(sql).map_err(&err)?;
        let rows = stmt
            .query_map(params![dataset, from, to, limit], |r| r.get(0))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn count(&self, dataset: &str, from: &str, to: Option<&str>) -> Result<u64, StoreError> {
        // Two statements, so each range is one seek on the primary key.
        let sql = match to {
            Some(_) => "SELECT count(*) FROM records WHERE dataset = ?1 AND key >= ?2 AND key < ?3",
            None => "SELECT count(*) FROM records WHERE dataset = ?1 AND key >= ?2 AND ?3 IS NULL",
        };
        let n: i64 = self
            .conn()?
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(params![dataset, from, to], |r| r.get(0)))
            .map_err(db_err(&self.pool.path))?;
        Ok(from_sql(n))
    }
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Database {
        path: path.display().to_string(),
        source,
    }
}

/// Tokens and sequence numbers are far below 2^63; SQLite integers are i64.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Locks a mutex, recovering from poisoning: every guarded structure here is
/// left consistent before any operation that can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::{DatasetStore, Staged};
    use super::*;

    fn commit(
        store: &DatasetStore,
        tokens: &[(&str, u64)],
        writes: &[(&str, &str, &[u8])],
    ) -> Result<BTreeMap<String, CommitStats>, StoreError> {
        let mut staged = Staged::default();
        for (i, (dataset, key, value)) in writes.iter().enumerate() {
            staged.stage(dataset, key, Change::Put(value.to_vec()), i as u64);
        }
        let tokens: BTreeMap<String, u64> =
            tokens.iter().map(|(d, t)| (d.to_string(), *t)).collect();
        let run = RunCommit {
            runway: "r",
            agent: "a",
            plugin: [7; 32],
            attempt: 1,
            tokens: &tokens,
            staged: &staged,
            seq_of: &|call| 100 + call,
            deadline: Instant::now() + std::time::Duration::from_secs(60),
            committing_seq: tokens.values().min().copied().unwrap_or(0) * 10,
            output: [3; 32],
        };
        store
            .commit(std::slice::from_ref(&run))
            .pop()
            .expect("one result per run")
    }

    /// The commits row is what recovery trusts: a row corrupted in the
    /// real database file (through a second connection, past its checks)
    /// reads back as an error naming it, never as zeros or fewer datasets.
    #[test]
    fn a_corrupt_commits_row_is_an_error_naming_it() {
        // Each of these once read as a zero digest, or a dataset skipped.
        for (sql, why) in [
            (
                "UPDATE commits SET output = x'0102'",
                "output digest has 2 bytes",
            ),
            (
                "UPDATE commit_datasets SET writes = -1 WHERE dataset = 'e'",
                "writes -1 is out of range",
            ),
            (
                "UPDATE commit_datasets SET deletes = 1 << 33",
                "deletes 8589934592 is out of range",
            ),
            ("DELETE FROM commit_datasets", "lists no dataset"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = DatasetStore::open(dir.path()).unwrap();
            let writes: &[(&str, &str, &[u8])] = &[("d", "x", b"1"), ("e", "y", b"2")];
            commit(&store, &[("d", 9), ("e", 9)], writes).unwrap();
            assert_eq!(store.landed("", 90).unwrap().unwrap().datasets.len(), 2);
            let other = Connection::open(dir.path().join(DB_FILE)).unwrap();
            other
                .pragma_update(None, "ignore_check_constraints", true)
                .unwrap();
            other.execute_batch(sql).unwrap();
            let err = store.landed("", 90).unwrap_err();
            match &err {
                StoreError::CorruptCommit {
                    committing_seq: 90,
                    runway,
                    why: found,
                    ..
                } if runway == "r" && found.contains(why) => {}
                _ => panic!("{sql}: {err}"),
            }
            let text = err.to_string();
            assert!(text.contains("COMMITTING record 90 (runway r)"), "{text}");
        }
    }

    /// A data root written before the commits row was typed (schema 0,
    /// `landed` as text) is migrated on open, strictly; a part that does
    /// not parse stops the open naming the row; a newer schema is refused.
    #[test]
    fn a_version_0_database_is_migrated_strictly_and_a_newer_one_refused() {
        let v0 = |landed: &str| {
            let dir = tempfile::tempdir().unwrap();
            let db = Connection::open(dir.path().join(DB_FILE)).unwrap();
            db.execute_batch(SCHEMA).unwrap();
            db.execute_batch(
                "CREATE TABLE commits (committing_seq INTEGER PRIMARY KEY, runway TEXT NOT NULL,
                   attempt INTEGER NOT NULL, landed TEXT NOT NULL, output BLOB NOT NULL)",
            )
            .unwrap();
            db.execute(
                "INSERT INTO commits VALUES (7, 'import', 2, ?1, ?2)",
                params![landed, vec![5u8; 32]],
            )
            .unwrap();
            dir
        };
        let dir = v0("a=9:2:0,b=10:0:1");
        let store = DatasetStore::open(dir.path()).unwrap();
        let landed = store.landed("", 7).unwrap().unwrap();
        assert_eq!((landed.runway.as_str(), landed.attempt), ("import", 2));
        assert_eq!(
            landed.datasets,
            [
                LandedDataset {
                    dataset: "a".into(),
                    token: 9,
                    stats: CommitStats {
                        writes: 2,
                        deletes: 0
                    }
                },
                LandedDataset {
                    dataset: "b".into(),
                    token: 10,
                    stats: CommitStats {
                        writes: 0,
                        deletes: 1
                    }
                }
            ]
        );
        // New commits land in the new tables beside the migrated row.
        commit(&store, &[("c", 4)], &[("c", "k", b"v")]).unwrap();
        assert!(store.landed("", 40).unwrap().is_some());
        drop(store);

        let dir = v0("a=9:2:0,b=ten:0:1");
        let err = DatasetStore::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("COMMITTING record 7 (runway import)") && err.contains("\"b=ten:0:1\""),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        drop(DatasetStore::open(dir.path()).unwrap());
        let db = Connection::open(dir.path().join(DB_FILE)).unwrap();
        db.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(db);
        let err = DatasetStore::open(dir.path()).err().unwrap();
        assert!(
            matches!(
                err,
                StoreError::NewerSchema {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    /// The semantics both backends share are tested on both in the
    /// integration tests (`tests/it/store.rs`); these are SQLite's own.
    #[test]
    fn a_reopen_skips_the_rest_of_a_token_block() {
        let dir = tempfile::tempdir().unwrap();
        let first = DatasetStore::open(dir.path())
            .unwrap()
            .next_token()
            .unwrap();
        let store = DatasetStore::open(dir.path()).unwrap();
        assert!(store.next_token().unwrap() >= first + TOKEN_BLOCK);
    }

    #[test]
    fn a_second_host_and_an_old_layout_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = DatasetStore::open(dir.path()).unwrap();
        let err = DatasetStore::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        let old = tempfile::tempdir().unwrap();
        std::fs::create_dir(old.path().join("fafsa_2024_03_16")).unwrap();
        let err = DatasetStore::open(old.path()).err().unwrap().to_string();
        assert!(
            err.contains("file-per-record layout") && err.contains("fafsa_2024_03_16"),
            "{err}"
        );
    }
}
