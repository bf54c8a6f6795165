//! Landing runs on PostgreSQL: one transaction for the batch, a savepoint
//! per run, each run's fences moved first — and moved, not read: a
//! conditional upsert
//!
//! ```sql
//! INSERT INTO fences … ON CONFLICT (dataset) DO UPDATE SET token = $t
//!   WHERE fences.token <= $t RETURNING token
//! ```
//!
//! takes the fence row's lock and compares in one statement, so two hosts
//! committing to a dataset at once serialise on that row, and the second
//! re-checks against what the first committed: a stale token lands nothing,
//! whatever the timing (no read-then-write window). Datasets are fenced in
//! name order, so two commits never wait on each other's rows in a cycle.
//!
//! Writes go as arrays, a chunk of rows per statement (`unnest`), so a
//! commit of thousands of records is a few round trips. A run's deadline
//! bounds every statement (`SET LOCAL statement_timeout`) and is looked at
//! before each chunk: past it, the run's savepoint rolls back and it is
//! [`StoreError::PastDeadline`].

use std::collections::BTreeMap;
use std::time::Instant;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Statement, Transaction};

use super::client::{Conn, Target, from_sql, to_sql};
use super::lease::{LEADS, deposed};
use super::work::{CLAIMED, COMMITTED};
use crate::store::{Change, CommitStats, RunCommit, StoreError};

/// Most rows one statement writes or deletes.
const CHUNK_ROWS: usize = 1000;
/// A chunk stops taking rows once their values hold this many bytes.
const CHUNK_BYTES: usize = 4 << 20;

const FENCE: &str = "INSERT INTO fences (dataset, token) VALUES ($1, $2)
     ON CONFLICT (dataset) DO UPDATE SET token = excluded.token
     WHERE fences.token <= excluded.token
     RETURNING token";
const FENCE_OF: &str = "SELECT token FROM fences WHERE dataset = $1";
const PUT: &str = "INSERT INTO records
       (dataset, key, value, runway, agent, plugin, attempt, token, audit_seq, origin)
     SELECT $1, k, v, $4, $5, $6, $7, $8, s, $10
       FROM unnest($2::text[], $3::bytea[], $9::int8[]) AS t (k, v, s)
     ON CONFLICT (dataset, key) DO UPDATE SET value = excluded.value,
       runway = excluded.runway, agent = excluded.agent, plugin = excluded.plugin,
       attempt = excluded.attempt, token = excluded.token, audit_seq = excluded.audit_seq,
       origin = excluded.origin";
const DELETE: &str = "DELETE FROM records WHERE dataset = $1 AND key = ANY($2::text[])";
const COMMITS: &str = "INSERT INTO commits (origin, committing_seq, runway, attempt, output)
     VALUES ($5, $1, $2, $3, $4)";
const LANDED: &str = "INSERT INTO commit_datasets
       (origin, committing_seq, dataset, token, writes, deletes)
     SELECT $6, $1, d, t, w, x FROM unnest($2::text[], $3::int8[], $4::int8[], $5::int8[])
       AS u (d, t, w, x)";

/// What one run landed, with the tokens it landed under.
pub type Landing = (BTreeMap<String, u64>, BTreeMap<String, CommitStats>);

/// One result per run, in order.
pub type Landings = Vec<Result<Landing, StoreError>>;

/// How a batch's transaction ended.
pub enum Outcome {
    /// Committed: each run's own result.
    Committed(Landings),
    /// Failed before its COMMIT was sent: nothing landed.
    Failed(StoreError),
    /// The COMMIT itself failed (the connection lost, say): the runs that
    /// were ready may or may not have landed; their commits rows say.
    Unknown(Landings, StoreError),
}

/// Who lands a batch, and what its transaction checks first.
#[derive(Clone, Copy)]
pub enum By<'a> {
    /// The leader (term, origin): it still leads (see `lease.rs`), so a
    /// deposed leader lands nothing.
    Leader(i64, &'a str),
    /// A standby's crew (its shard's origin): each run's claim is still
    /// its own (see `work.rs`), so a run whose claim was lost lands
    /// nothing.
    Crew(&'a str),
}

/// Lands each run in a savepoint of its own, in one transaction, checked
/// as [`By`] says.
pub async fn land_all(
    conn: &mut Conn,
    target: &Target,
    by: By<'_>,
    runs: &[RunCommit<'_>],
) -> Outcome {
    let err = target.err();
    let stmts = match Prepared::on(conn).await {
        Ok(stmts) => stmts,
        Err(e) => return Outcome::Failed(err(e)),
    };
    let mut tx = match conn.client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return Outcome::Failed(err(e)),
    };
    let (origin, crew) = match by {
        By::Leader(term, origin) => {
            match tx.query_opt(LEADS, &[&term, &origin]).await {
                Ok(Some(_)) => {}
                Ok(None) => return Outcome::Failed(deposed(target, term)),
                Err(e) => return Outcome::Failed(err(e)),
            }
            (origin, false)
        }
        By::Crew(origin) => (origin, true),
    };
    let mut results = Vec::with_capacity(runs.len());
    for run in runs {
        let landed = match land_one(&mut tx, &stmts, (origin, crew), run).await {
            Ok(landed) => landed,
            Err(e) => return Outcome::Failed(err(e)),
        };
        // A fenced or failed run rolled back alone; the batch goes on.
        results.push(landed.map_err(|why| why.into_error(target, run.deadline)));
    }
    // Every statement after the runs' own is bounded by no run's deadline.
    if let Err(e) = tx.batch_execute("SET LOCAL statement_timeout = 0").await {
        return Outcome::Failed(err(e));
    }
    match tx.commit().await {
        Ok(()) => Outcome::Committed(results),
        Err(e) => Outcome::Unknown(results, err(e)),
    }
}

/// One run in a savepoint of its own: its result, or the error that
/// broke the transaction itself.
async fn land_one(
    tx: &mut Transaction<'_>,
    stmts: &Prepared,
    (origin, crew): (&str, bool),
    run: &RunCommit<'_>,
) -> Result<Result<Landing, Failed>, tokio_postgres::Error> {
    let sp = tx.savepoint("run").await?;
    let landed = match crew {
        true => claimed(&sp, origin, run).await,
        false => Ok(None),
    };
    let landed = match landed {
        Ok(claim) => land(&sp, stmts, origin, run).await.map(|l| (l, claim)),
        Err(e) => Err(e),
    };
    let landed = match landed {
        Ok((landing, Some(claim))) => sp
            .execute(COMMITTED, &[&claim, &to_sql(run.committing_seq)])
            .await
            .map(|_| landing)
            .map_err(Failed::Sql),
        Ok((landing, None)) => Ok(landing),
        Err(e) => Err(e),
    };
    Ok(match landed {
        Ok(landing) => {
            sp.commit().await?;
            Ok(landing)
        }
        Err(why) => {
            sp.rollback().await?;
            Err(why)
        }
    })
}

/// The crew `crew`'s claim on `run`, locked for this transaction (its
/// work's id), or why it lands nothing.
async fn claimed(
    tx: &Transaction<'_>,
    crew: &str,
    run: &RunCommit<'_>,
) -> Result<Option<i64>, Failed> {
    let attempt = i64::from(run.attempt);
    match tx
        .query_opt(CLAIMED, &[&crew, &run.runway, &attempt])
        .await?
    {
        Some(row) => Ok(Some(row.get(0))),
        None => Err(Failed::Store(StoreError::ClaimLost {
            runway: run.runway.to_string(),
            attempt: run.attempt,
        })),
    }
}

/// The statements of a commit, prepared on its connection.
struct Prepared {
    fence: Statement,
    fence_of: Statement,
    put: Statement,
    delete: Statement,
    commits: Statement,
    landed: Statement,
}

impl Prepared {
    async fn on(conn: &mut Conn) -> Result<Prepared, tokio_postgres::Error> {
        Ok(Prepared {
            fence: conn.prepare(FENCE).await?,
            fence_of: conn.prepare(FENCE_OF).await?,
            put: conn.prepare(PUT).await?,
            delete: conn.prepare(DELETE).await?,
            commits: conn.prepare(COMMITS).await?,
            landed: conn.prepare(LANDED).await?,
        })
    }
}

/// Why one run landed nothing.
enum Failed {
    Store(StoreError),
    Sql(tokio_postgres::Error),
    PastDeadline,
}

impl Failed {
    fn into_error(self, target: &Target, deadline: Instant) -> StoreError {
        match self {
            Failed::Store(e) => e,
            Failed::PastDeadline => StoreError::PastDeadline,
            // The server cancelled a statement at the run's deadline.
            Failed::Sql(e)
                if e.code() == Some(&SqlState::QUERY_CANCELED) && Instant::now() >= deadline =>
            {
                StoreError::PastDeadline
            }
            Failed::Sql(e) => target.err()(e),
        }
    }
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        Failed::Sql(e)
    }
}

/// One run, inside its savepoint: fences first, then its writes, then its
/// commits rows.
async fn land(
    tx: &Transaction<'_>,
    stmts: &Prepared,
    origin: &str,
    run: &RunCommit<'_>,
) -> Result<Landing, Failed> {
    let mut tokens = BTreeMap::new();
    for (dataset, _) in run.staged.iter() {
        let token = *run.tokens.get(dataset).ok_or_else(|| {
            Failed::Store(StoreError::NoExclusiveLock {
                dataset: dataset.clone(),
            })
        })?;
        tokens.insert(dataset.clone(), token);
    }
    if tokens.is_empty() {
        return Ok((tokens, BTreeMap::new()));
    }
    let left = run.deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failed::PastDeadline);
    }
    let ms = left.as_millis().clamp(1, i32::MAX as u128);
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
        .await?;
    for (dataset, &token) in &tokens {
        let moved = tx
            .query_opt(&stmts.fence, &[dataset, &to_sql(token)])
            .await?;
        if moved.is_none() {
            let fence: i64 = tx.query_one(&stmts.fence_of, &[dataset]).await?.get(0);
            return Err(Failed::Store(StoreError::Fenced {
                dataset: dataset.clone(),
                token,
                fence: from_sql(fence),
            }));
        }
    }
    let mut stats = BTreeMap::new();
    for (dataset, changes) in run.staged.iter() {
        let token = to_sql(tokens[dataset]);
        let mut s = CommitStats::default();
        let mut puts = Puts::default();
        let mut deletes: Vec<&str> = Vec::new();
        for (key, staging) in changes {
            match &staging.change {
                Change::Put(value) => {
                    puts.keys.push(key);
                    puts.values.push(value);
                    puts.seqs.push(to_sql((run.seq_of)(staging.call)));
                    puts.bytes += value.len();
                    s.writes += 1;
                    if puts.keys.len() == CHUNK_ROWS || puts.bytes >= CHUNK_BYTES {
                        put(tx, stmts, (origin, run), dataset, token, &mut puts).await?;
                    }
                }
                Change::Delete => {
                    deletes.push(key);
                    if deletes.len() == CHUNK_ROWS {
                        s.deletes += delete(tx, stmts, run, dataset, &mut deletes).await?;
                    }
                }
            }
        }
        if !puts.keys.is_empty() {
            put(tx, stmts, (origin, run), dataset, token, &mut puts).await?;
        }
        if !deletes.is_empty() {
            s.deletes += delete(tx, stmts, run, dataset, &mut deletes).await?;
        }
        stats.insert(dataset.clone(), s);
    }
    let seq = to_sql(run.committing_seq);
    let attempt = i64::from(run.attempt);
    tx.execute(
        &stmts.commits,
        &[&seq, &run.runway, &attempt, &&run.output[..], &origin],
    )
    .await?;
    let names: Vec<&str> = stats.keys().map(String::as_str).collect();
    let landed_tokens: Vec<i64> = names.iter().map(|d| to_sql(tokens[*d])).collect();
    let writes: Vec<i64> = stats.values().map(|s| i64::from(s.writes)).collect();
    let deletes: Vec<i64> = stats.values().map(|s| i64::from(s.deletes)).collect();
    tx.execute(
        &stmts.landed,
        &[&seq, &names, &landed_tokens, &writes, &deletes, &origin],
    )
    .await?;
    Ok((tokens, stats))
}

/// A chunk of one dataset's puts.
#[derive(Default)]
struct Puts<'a> {
    keys: Vec<&'a str>,
    values: Vec<&'a [u8]>,
    seqs: Vec<i64>,
    bytes: usize,
}

async fn put(
    tx: &Transaction<'_>,
    stmts: &Prepared,
    (origin, run): (&str, &RunCommit<'_>),
    dataset: &str,
    token: i64,
    puts: &mut Puts<'_>,
) -> Result<(), Failed> {
    if Instant::now() >= run.deadline {
        return Err(Failed::PastDeadline);
    }
    let attempt = i64::from(run.attempt);
    tx.execute(
        &stmts.put,
        &[
            &dataset,
            &puts.keys,
            &puts.values,
            &run.runway,
            &run.agent,
            &&run.plugin[..],
            &attempt,
            &token,
            &puts.seqs,
            &origin,
        ],
    )
    .await?;
    puts.keys.clear();
    puts.values.clear();
    puts.seqs.clear();
    puts.bytes = 0;
    Ok(())
}

async fn delete(
    tx: &Transaction<'_>,
    stmts: &Prepared,
    run: &RunCommit<'_>,
    dataset: &str,
    keys: &mut Vec<&str>,
) -> Result<u32, Failed> {
    if Instant::now() >= run.deadline {
        return Err(Failed::PastDeadline);
    }
    let n = tx.execute(&stmts.delete, &[&dataset, &*keys]).await?;
    keys.clear();
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}
