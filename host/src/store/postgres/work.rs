//! Work the leader hands to other hosts (DESIGN.md, "Beyond one
//! machine"): a cleared run the leader has no worker free for is *posted*
//! (`work`, schema 4); a standby's crew *claims* it with `FOR UPDATE SKIP
//! LOCKED`, flies it and lands it under its claim:
//!
//! - its commit checks the claim in the commit's own transaction and marks
//!   it `committed` ([`CLAIMED`], [`COMMITTED`], used by `commit.rs`);
//! - its records go into the shared history under the claim, and the batch
//!   holding the run's end marks it `ended` with the crew's report, in the
//!   same transaction ([`record`]);
//! - a claim is *lost* ([`lose`]) when its crew's host stops beating or the
//!   lead changes hands: from then on the crew can neither commit nor add a
//!   record of that run, and the leader settles it from the history.
//!
//! Every change that someone waits for is announced with `NOTIFY`:
//! [`POSTED`] to the crews, [`ENDED`] (the work's id) to the leader,
//! [`CANCELLED`] (the work's id) to the crew flying it.

use runway_audit::Hash;

use super::client::{Driver, from_sql, to_sql};
use super::lease::{Seat, as_leader};
use crate::store::StoreError;

/// Notified when work is posted.
pub const POSTED: &str = "runway_work_posted";
/// Notified with a work's id when it ended, or its crew gave it up.
pub const ENDED: &str = "runway_work_ended";
/// Notified with a work's id when it was cancelled.
pub const CANCELLED: &str = "runway_work_cancelled";

/// The check at the top of a crew's commit of one run: it holds the claim
/// ($1 crew, $2 runway, $3 attempt). Locks the row, so a loss waits for
/// the commit and a commit after a loss finds nothing.
pub const CLAIMED: &str = "SELECT id FROM work
     WHERE crew = $1 AND runway = $2 AND attempt = $3 AND state = 'claimed' FOR UPDATE";
/// The claim's commit landed ($1 the work's id, $2 its COMMITTING's
/// sequence number).
pub const COMMITTED: &str = "UPDATE work SET state = 'committed', committing = $2 WHERE id = $1";

/// What a host's origin is followed by in its crew's.
pub const CREW: &str = "+crew";

/// The origin of `origin`'s crew: the shard a standby's crew keeps its
/// records in, beside the host's own (signed by the host's key).
pub fn crew_of(origin: &str) -> String {
    format!("{origin}{CREW}")
}

/// Work posted by the leader.
#[derive(Debug, Clone)]
pub struct Posting<'a> {
    pub runway: &'a str,
    pub attempt: u32,
    pub digest: Hash,
    pub request: &'a [u8],
}

/// Work a crew claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: u64,
    pub runway: String,
    pub attempt: u32,
    /// The term of the leader that posted it: its records are taken under it.
    pub term: u64,
    pub digest: Hash,
    pub request: Vec<u8>,
}

/// A claim taken away from its crew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub id: u64,
    pub runway: String,
    pub attempt: u32,
    /// The crew that held it (none: posted, never claimed).
    pub crew: Option<String>,
    /// Its commit had landed: the sequence number of its COMMITTING
    /// record in the crew's shard.
    pub committed: Option<u64>,
}

/// Where a work stands, as the leader reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Still posted, claimed, or committed and not ended.
    Flying,
    /// Ended: the crew's report.
    Ended(Vec<u8>),
    /// Taken from its crew, or given up by it.
    Lost(Lost),
}

/// One of a crew's records for the shared history: its run's work, its
/// sequence number, time and bytes, and the crew's report when it is that
/// run's end.
#[derive(Debug, Clone)]
pub struct CrewRecord {
    pub work: u64,
    pub seq: u64,
    pub time_ns: u64,
    pub entry: Vec<u8>,
    pub report: Option<Vec<u8>>,
}

/// Posts one run, if this host still leads; gives its id.
pub fn post(driver: &Driver, seat: &Seat, posting: &Posting<'_>) -> Result<u64, StoreError> {
    let attempt = i64::from(posting.attempt);
    as_leader(driver, seat, async |tx, term, _| {
        let row = tx
            .query_one(
                "INSERT INTO work (runway, attempt, term, digest, request)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &posting.runway,
                    &attempt,
                    &term,
                    &&posting.digest[..],
                    &posting.request,
                ],
            )
            .await?;
        tx.execute(&format!("NOTIFY {POSTED}"), &[]).await?;
        Ok(from_sql(row.get(0)))
    })
}

/// Claims up to `most` posted runs of agents in `digests` for `crew`,
/// oldest first, skipping those another crew is claiming and the
/// runways `busy` (still flying on `crew`).
pub fn claim(
    driver: &Driver,
    crew: &str,
    digests: &[Hash],
    most: usize,
    busy: &[String],
) -> Result<Vec<Claimed>, StoreError> {
    let digests: Vec<&[u8]> = digests.iter().map(|d| &d[..]).collect();
    let most = i64::try_from(most).unwrap_or(i64::MAX);
    let rows = driver.with(async |c| {
        c.client
            .query(
                "UPDATE work SET state = 'claimed', crew = $1
                  WHERE id IN (SELECT id FROM work
                                WHERE state = 'posted' AND digest = ANY($2)
                                  AND runway <> ALL($4)
                                ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                  RETURNING id, runway, attempt, term, digest, request",
                &[&crew, &digests, &most, &busy],
            )
            .await
    })?;
    let mut claimed: Vec<Claimed> = rows
        .iter()
        .filter_map(|r| {
            let digest: Vec<u8> = r.get(4);
            Some(Claimed {
                id: from_sql(r.get(0)),
                runway: r.get(1),
                attempt: u32::try_from(r.get::<_, i64>(2)).ok()?,
                term: from_sql(r.get(3)),
                digest: digest.try_into().ok()?,
                request: r.get(5),
            })
        })
        .collect();
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Puts a crew's records into the shared history under their claims, in
/// one transaction: refused whole (`Ok(false)`) when any claim was lost.
/// A record carrying a report ends its work.
pub fn record(driver: &Driver, crew: &str, records: &[CrewRecord]) -> Result<bool, StoreError> {
    if records.is_empty() {
        return Ok(true);
    }
    let mut works: Vec<u64> = records.iter().map(|r| r.work).collect();
    works.sort_unstable();
    works.dedup();
    driver.with(async |c| {
        let tx = c.client.transaction().await?;
        let mut terms = std::collections::HashMap::new();
        for &work in &works {
            let row = tx
                .query_opt(
                    "SELECT term FROM work WHERE id = $1 AND crew = $2
                       AND state IN ('claimed', 'committed') FOR UPDATE",
                    &[&to_sql(work), &crew],
                )
                .await?;
            let Some(row) = row else { return Ok(false) };
            terms.insert(work, row.get::<_, i64>(0));
        }
        for r in records {
            tx.execute(
                "INSERT INTO history (origin, seq, term, time_ns, entry)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &crew,
                    &to_sql(r.seq),
                    &terms[&r.work],
                    &to_sql(r.time_ns),
                    &r.entry,
                ],
            )
            .await?;
            if let Some(report) = &r.report {
                tx.execute(
                    "UPDATE work SET state = 'ended', report = $2 WHERE id = $1",
                    &[&to_sql(r.work), report],
                )
                .await?;
                tx.execute(&format!("NOTIFY {ENDED}, '{}'", r.work), &[])
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// Takes every unfinished work of the crews in `crews` away (every
/// crew's, with `None`), if this host leads: posted work no crew took,
/// claims, and commits whose run has not ended. Rows are locked in id
/// order, as a crew's [`record`] locks its works, so the two never
/// deadlock.
pub fn lose(
    driver: &Driver,
    seat: &Seat,
    crews: Option<&[String]>,
) -> Result<Vec<Lost>, StoreError> {
    let all = crews.is_none();
    let crews: Vec<&str> = crews
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    let rows = as_leader(driver, seat, async |tx, _, _| {
        tx.query(
            "WITH old AS (SELECT id, state FROM work
                            WHERE state IN ('posted', 'claimed', 'committed')
                              AND ($1 OR crew = ANY($2)) ORDER BY id FOR UPDATE)
             UPDATE work SET state = 'lost' FROM old WHERE work.id = old.id
             RETURNING work.id, work.runway, work.attempt, work.crew,
                       CASE WHEN old.state = 'committed' THEN work.committing END",
            &[&all, &crews],
        )
        .await
    })?;
    let mut lost: Vec<Lost> = rows.iter().map(lost_of).collect();
    lost.sort_by_key(|l| l.id);
    Ok(lost)
}

/// A lost work from its row (id, runway, attempt, crew, committing).
fn lost_of(r: &tokio_postgres::Row) -> Lost {
    Lost {
        id: from_sql(r.get(0)),
        runway: r.get(1),
        attempt: u32::try_from(r.get::<_, i64>(2)).unwrap_or(0),
        crew: r.get(3),
        committed: r.get::<_, Option<i64>>(4).map(from_sql),
    }
}

/// A crew starting anew gives up what an earlier process of it claimed
/// (its runs died with it); the leader hears of each. Rows are locked in
/// id order, as [`lose`] locks them.
pub fn abandon(driver: &Driver, crew: &str) -> Result<Vec<String>, StoreError> {
    driver.with(async |c| {
        let tx = c.client.transaction().await?;
        let rows = tx
            .query(
                "UPDATE work SET state = 'lost'
                  WHERE id IN (SELECT id FROM work
                                WHERE crew = $1 AND state IN ('claimed', 'committed')
                                ORDER BY id FOR UPDATE)
                  RETURNING id, runway",
                &[&crew],
            )
            .await?;
        for r in &rows {
            let id: i64 = r.get(0);
            tx.execute(&format!("NOTIFY {ENDED}, '{id}'"), &[]).await?;
        }
        tx.commit().await?;
        Ok(rows.iter().map(|r| r.get(1)).collect())
    })
}

/// Which of `seqs`, records of shard `crew`, the shared history took.
pub fn taken(driver: &Driver, crew: &str, seqs: &[u64]) -> Result<Vec<u64>, StoreError> {
    let seqs: Vec<i64> = seqs.iter().map(|&s| to_sql(s)).collect();
    let rows = driver.with(async |c| {
        c.client
            .query(
                "SELECT seq FROM history WHERE origin = $1 AND seq = ANY($2)",
                &[&crew, &seqs],
            )
            .await
    })?;
    Ok(rows.iter().map(|r| from_sql(r.get(0))).collect())
}

/// Where work `id` stands.
pub fn standing(driver: &Driver, id: u64) -> Result<Option<Standing>, StoreError> {
    let row = driver.with(async |c| {
        c.client
            .query_opt(
                "SELECT id, runway, attempt, crew, committing, state, report
                   FROM work WHERE id = $1",
                &[&to_sql(id)],
            )
            .await
    })?;
    Ok(row.map(
        |r| match (r.get::<_, &str>(5), r.get::<_, Option<Vec<u8>>>(6)) {
            ("ended", Some(report)) => Standing::Ended(report),
            ("lost", _) => Standing::Lost(lost_of(&r)),
            _ => Standing::Flying,
        },
    ))
}

/// The works of term `term` that ended or were lost.
pub fn settled(driver: &Driver, term: u64) -> Result<Vec<u64>, StoreError> {
    let rows = driver.with(async |c| {
        c.client
            .query(
                "SELECT id FROM work WHERE term = $1 AND state IN ('ended', 'lost')",
                &[&to_sql(term)],
            )
            .await
    })?;
    Ok(rows.iter().map(|r| from_sql(r.get(0))).collect())
}

/// Asks the crew flying work `id` to cancel it, in the name of `by`.
pub fn cancel(driver: &Driver, id: u64, by: &str) -> Result<(), StoreError> {
    driver.with(async |c| {
        let tx = c.client.transaction().await?;
        tx.execute(
            "UPDATE work SET cancel = $2 WHERE id = $1 AND cancel IS NULL",
            &[&to_sql(id), &by],
        )
        .await?;
        tx.execute(&format!("NOTIFY {CANCELLED}, '{id}'"), &[])
            .await?;
        tx.commit().await
    })
}

/// Who cancelled work `id`, if anyone did.
pub fn cancelled(driver: &Driver, id: u64) -> Result<Option<String>, StoreError> {
    let row = driver.with(async |c| {
        c.client
            .query_opt("SELECT cancel FROM work WHERE id = $1", &[&to_sql(id)])
            .await
    })?;
    Ok(row.and_then(|r| r.get(0)))
}

/// Says how many runs this host's crew flies at once.
pub fn offer(driver: &Driver, seat: &Seat, workers: usize) -> Result<(), StoreError> {
    let Some(origin) = seat.origin() else {
        return Ok(());
    };
    let workers = i64::try_from(workers).unwrap_or(i64::MAX);
    driver.with(async |c| {
        c.client
            .execute(
                "UPDATE hosts SET workers = $2 WHERE origin = $1",
                &[&origin, &workers],
            )
            .await
    })?;
    Ok(())
}
