//! A run's reads on PostgreSQL: a connection of its own in one
//! `REPEATABLE READ READ ONLY` transaction — one snapshot for the run —
//! renewed only past [`SNAPSHOT_AGE`] so a long run never holds back the
//! server's vacuum (a run reads only datasets it holds a lock on, which
//! nobody commits to meanwhile, so a fresher snapshot shows it nothing
//! different). Point reads go through a [`ReadAhead`]: a run reading keys
//! in order pays one round trip per window of rows, not one per key.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::client::{Conn, Driver, wait};
use crate::store::read_ahead::{self, Fetched, ReadAhead};
use crate::store::{Reader, StoreError};

/// How long a reader keeps one snapshot.
const SNAPSHOT_AGE: Duration = Duration::from_secs(10);

const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

const FETCH: &str = "SELECT key, value FROM records WHERE dataset = $1 AND key >= $2
                     ORDER BY key LIMIT $3";
/// Keys in a range: by `from` excluded, then by [`Upper`].
const KEYS: [[&str; 3]; 2] = [
    [
        "SELECT key FROM records WHERE dataset = $1 AND key >= $2 AND $3::text IS NULL
         ORDER BY key LIMIT $4",
        "SELECT key FROM records WHERE dataset = $1 AND key >= $2 AND key < $3
         ORDER BY key LIMIT $4",
        "SELECT key FROM records WHERE dataset = $1 AND key >= $2 AND key <= $3
         ORDER BY key LIMIT $4",
    ],
    [
        "SELECT key FROM records WHERE dataset = $1 AND key > $2 AND $3::text IS NULL
         ORDER BY key LIMIT $4",
        "SELECT key FROM records WHERE dataset = $1 AND key > $2 AND key < $3
         ORDER BY key LIMIT $4",
        "SELECT key FROM records WHERE dataset = $1 AND key > $2 AND key <= $3
         ORDER BY key LIMIT $4",
    ],
];
/// Counts in a range: by [`Upper`].
const COUNT: [&str; 3] = [
    "SELECT count(*) FROM records WHERE dataset = $1 AND key >= $2 AND $3::text IS NULL",
    "SELECT count(*) FROM records WHERE dataset = $1 AND key >= $2 AND key < $3",
    "SELECT count(*) FROM records WHERE dataset = $1 AND key >= $2 AND key <= $3",
];

/// A range's upper end as PostgreSQL can take it: its text holds no NUL,
/// and the store bounds a single key `k` by `k\0`. Keys hold no NUL (nor
/// any control byte), so `key < p\0…` is `key <= p`.
fn upper(to: Option<&str>) -> (usize, Option<&str>) {
    match to {
        None => (0, None),
        Some(to) => match to.find('\0') {
            None => (1, Some(to)),
            Some(nul) => (2, Some(&to[..nul])),
        },
    }
}

/// The statements a reader uses, prepared on its connection.
struct Statements {
    fetch: Statement,
    keys: [[Statement; 3]; 2],
    count: [Statement; 3],
}

/// Reads from one snapshot.
pub struct PgReader {
    conn: Option<Conn>,
    stmts: Statements,
    driver: Arc<Driver>,
    since: Cell<Instant>,
    ahead: RefCell<ReadAhead>,
}

impl PgReader {
    pub fn new(driver: &Arc<Driver>) -> Result<PgReader, StoreError> {
        let mut conn = driver.take()?;
        let err = driver.target.err();
        let stmts = wait(async {
            conn.client.batch_execute(BEGIN).await?;
            Ok(Statements {
                fetch: conn.prepare(FETCH).await?,
                keys: [
                    [
                        conn.prepare(KEYS[0][0]).await?,
                        conn.prepare(KEYS[0][1]).await?,
                        conn.prepare(KEYS[0][2]).await?,
                    ],
                    [
                        conn.prepare(KEYS[1][0]).await?,
                        conn.prepare(KEYS[1][1]).await?,
                        conn.prepare(KEYS[1][2]).await?,
                    ],
                ],
                count: [
                    conn.prepare(COUNT[0]).await?,
                    conn.prepare(COUNT[1]).await?,
                    conn.prepare(COUNT[2]).await?,
                ],
            })
        })
        .map_err(err)?;
        Ok(PgReader {
            conn: Some(conn),
            stmts,
            driver: driver.clone(),
            since: Cell::new(Instant::now()),
            ahead: RefCell::default(),
        })
    }

    /// Rows of `stmt` with `params`, in this reader's snapshot (renewed
    /// first when old).
    fn query(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = &self
            .conn
            .as_ref()
            .expect("a live reader has its connection")
            .client;
        let renew = self.since.get().elapsed() > SNAPSHOT_AGE;
        let rows = wait(async {
            if renew {
                client.batch_execute(&format!("COMMIT; {BEGIN}")).await?;
            }
            client.query(stmt, params).await
        })
        .map_err(self.driver.target.err())?;
        if renew {
            self.since.set(Instant::now());
        }
        Ok(rows)
    }

    /// At most `window` committed rows of `dataset` from `key` on, fewer
    /// once their values hold [`read_ahead::MAX_BYTES`].
    fn fetch(&self, dataset: &str, key: &str, window: usize) -> Result<Fetched, StoreError> {
        let limit = i64::try_from(window).unwrap_or(i64::MAX);
        let rows = self.query(&self.stmts.fetch, &[&dataset, &key, &limit])?;
        let (mut out, mut bytes) = (Vec::with_capacity(rows.len()), 0);
        for row in rows {
            let value: Vec<u8> = row.get(1);
            bytes += value.len();
            out.push((row.get(0), value));
            if bytes >= read_ahead::MAX_BYTES {
                return Ok((out, false));
            }
        }
        let to_end = out.len() < window;
        Ok((out, to_end))
    }
}

impl Drop for PgReader {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && wait(conn.client.batch_execute("COMMIT")).is_ok()
        {
            self.driver.give(conn);
        }
    }
}

impl Reader for PgReader {
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
        let (bound, to) = upper(to);
        let stmt = &self.stmts.keys[usize::from(exclusive)][bound];
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(stmt, &[&dataset, &from, &to, &limit])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn count(&self, dataset: &str, from: &str, to: Option<&str>) -> Result<u64, StoreError> {
        let (bound, to) = upper(to);
        let stmt = &self.stmts.count[bound];
        let rows = self.query(stmt, &[&dataset, &from, &to])?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
