//! Who leads the hosts sharing one database, and under which term
//! (DESIGN.md, "Beyond one machine"): one `leadership` row holds the term,
//! the leader's origin and when its lease lapses, by the database's clock
//! — never a host's, so hosts whose clocks disagree still agree on who
//! leads.
//!
//! - **Taking the lead** ([`take`]): under the row's lock, a lease that
//!   lapsed (or none, or one of this host's own origin) is taken with the
//!   next term; the same transaction
//!   reads how far the shared history took each shard, which is final
//!   from then on (every write of an older term checks the row and waits
//!   on that lock, then finds its term gone).
//! - **Keeping it** ([`renew`]): only while the lease has not lapsed — a
//!   host frozen past its lease finds it over even when no one took it.
//! - **Checking it** ([`LEADS`]): every write a leader makes (history,
//!   posted and lost work, commits, tokens) runs this check in its own
//!   transaction — through [`as_leader`], but for the commit's and the
//!   token's own forms — so a deposed leader's write is refused by the
//!   database itself.
//!
//! [`Seat`] is this host's place: its origin, the term it leads under
//! (0: none) and when its lease lapses by its own monotonic clock, read
//! by every write and by the tower before it clears anything.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runway_audit::Accepted;

use tokio_postgres::Transaction;

use super::client::{Driver, from_sql, to_sql, wait};
use crate::store::StoreError;

/// The check at the top of every leader's write: this origin leads under
/// this term, and its lease has not lapsed. It takes the row's key-share
/// lock, so a takeover (`FOR UPDATE`) waits for the write, and a write
/// waits for a takeover — but a renewal (an `UPDATE` of a column no key
/// holds) never waits for a long commit, whose lease would lapse behind it.
pub const LEADS: &str = "SELECT 1 FROM leadership
     WHERE term = $1 AND origin = $2 AND expires_at > now() FOR KEY SHARE";

/// This host's place on the database.
#[derive(Debug, Default)]
pub struct Seat {
    origin: OnceLock<String>,
    term: AtomicU64,
    /// When the lease lapses by this host's monotonic clock (it started
    /// before the database granted or renewed it): past it, this host
    /// acts no more without asking the database — so a host frozen past
    /// its lease and woken again stops at once, whichever thread runs
    /// first.
    held_until: std::sync::Mutex<Option<Instant>>,
    /// The lease it joined with (ms): a host not heard from for that long
    /// is gone.
    lease_ms: AtomicU64,
}

impl Seat {
    /// A seat that never leads, named `origin` (a crew's).
    pub fn named(origin: String) -> Seat {
        let seat = Seat::default();
        let _ = seat.origin.set(origin);
        seat
    }

    /// The lease this host joined with.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.load(Ordering::Acquire))
    }

    /// This host's origin, once it joined.
    pub fn origin(&self) -> Option<&str> {
        self.origin.get().map(String::as_str)
    }

    /// The term this host leads under and its origin; `None` when it does
    /// not lead (or no longer).
    pub fn leading(&self) -> Option<(i64, &str)> {
        let term = self.term.load(Ordering::Acquire);
        let origin = self.origin()?;
        let held = self
            .held_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until);
        (term > 0 && held).then(|| (to_sql(term), origin))
    }

    /// Leads no more: every write from here on is refused here already.
    pub fn step_down(&self) {
        self.term.store(0, Ordering::Release);
    }

    /// The lease, granted or renewed by a request sent at `asked`, lasts
    /// until `asked + lease` here.
    fn held(&self, asked: Instant, lease: Duration) {
        *self.held_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(asked + lease);
    }
}

/// The leader as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub term: u64,
    pub origin: String,
    /// Milliseconds until its lease lapses (negative: lapsed that long ago).
    pub expires_in_ms: i64,
}

/// What [`take`] found.
#[derive(Debug)]
pub enum Standing {
    /// This host leads now, under `term`; `accepted` is how far the
    /// history took each shard when it did.
    Leading { term: u64, accepted: Vec<Accepted> },
    /// Another host leads, its lease running.
    Standby(Leader),
}

/// Records this host, under `origin` and `pid`, as one of the database's
/// hosts, with where its API listens (`runway hosts` shows it; a standby
/// relays there). An origin another live host (one that beat within
/// `lease`) already uses is refused, naming it: each host signs its own
/// shard.
pub fn join(
    driver: &Driver,
    seat: &Seat,
    (origin, pid): (&str, u32),
    lease: Duration,
    api: Option<&str>,
) -> Result<(), StoreError> {
    let err = driver.target.err();
    let lease_ms = millis(lease);
    let mut conn = driver.take()?;
    let taken = wait(async {
        let tx = conn.client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT pid, beat_at > now() - make_interval(secs => $2::int8 / 1000.0)
                 FROM hosts WHERE origin = $1 FOR UPDATE",
                &[&origin, &lease_ms],
            )
            .await?;
        if let Some(row) = &row {
            let (other, live): (i64, bool) = (row.get(0), row.get(1));
            if live && other != i64::from(pid) {
                return Ok(Some(other));
            }
        }
        tx.execute(
            "INSERT INTO hosts (origin, pid, joined_at, beat_at, api)
             VALUES ($1, $2, now(), now(), $3)
             ON CONFLICT (origin) DO UPDATE
               SET pid = excluded.pid, joined_at = now(), beat_at = now(), in_flight = 0,
                   api = excluded.api",
            &[&origin, &i64::from(pid), &api],
        )
        .await?;
        tx.commit().await?;
        Ok(None)
    });
    driver.give(conn);
    if let Some(other) = taken.map_err(err)? {
        return Err(StoreError::OriginTaken {
            target: driver.target.to_string(),
            origin: origin.to_string(),
            pid: other,
        });
    }
    // A second join (a host restarted in-process) keeps its first origin.
    let _ = seat.origin.set(origin.to_string());
    seat.lease_ms
        .store(lease_ms.unsigned_abs(), Ordering::Release);
    Ok(())
}

/// Takes the lead for `lease` when it is free or lapsed; otherwise says
/// who holds it.
pub fn take(driver: &Driver, seat: &Seat, lease: Duration) -> Result<Standing, StoreError> {
    let origin = seat.origin().ok_or_else(|| not_joined(driver))?;
    let lease_ms = millis(lease);
    let asked = Instant::now();
    let mut conn = driver.take()?;
    let standing = wait(async {
        let tx = conn.client.transaction().await?;
        let row = tx.query_opt(&format!("{LEADER} FOR UPDATE"), &[]).await?;
        let term = match &row {
            Some(row) => {
                let leader = leader_of(row);
                // This origin's earlier session in this process (a host
                // reopened: `join` refuses the origin to any other live
                // process) ends at once.
                if leader.expires_in_ms > 0 && leader.origin != origin {
                    return Ok(Standing::Standby(leader));
                }
                leader.term + 1
            }
            None => 1,
        };
        // The row read is locked, so it takes the next term; with no row
        // to lock, two hosts starting together both read none, and the
        // second's insert meets the first's row: it takes nothing (the
        // term it read, 0, is gone) and stands by.
        let taken = tx
            .execute(
                "INSERT INTO leadership (term, origin, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3::int8 / 1000.0))
                 ON CONFLICT (one) DO UPDATE
                   SET term = excluded.term, origin = excluded.origin,
                       expires_at = excluded.expires_at
                   WHERE leadership.term = excluded.term - 1",
                &[&to_sql(term), &origin, &lease_ms],
            )
            .await?;
        if taken == 0 {
            let row = tx.query_one(LEADER, &[]).await?;
            return Ok(Standing::Standby(leader_of(&row)));
        }
        let accepted = tx
            .query(
                "SELECT origin, max(seq) FROM history GROUP BY origin ORDER BY origin",
                &[],
            )
            .await?
            .iter()
            .map(|r| Accepted {
                origin: r.get(0),
                seq: from_sql(r.get(1)),
            })
            .collect();
        tx.commit().await?;
        Ok(Standing::Leading { term, accepted })
    });
    driver.give(conn);
    let standing = standing.map_err(driver.target.err())?;
    if let Standing::Leading { term, .. } = &standing {
        seat.held(asked, lease);
        seat.term.store(*term, Ordering::Release);
    }
    Ok(standing)
}

/// Keeps this host's lead for `lease` more, and its heartbeat with
/// `in_flight` runs; `false` (and this host no longer leads) when the
/// term is over or its lease lapsed first.
pub fn renew(
    driver: &Driver,
    seat: &Seat,
    lease: Duration,
    in_flight: u64,
) -> Result<bool, StoreError> {
    let Some((term, origin)) = seat.leading() else {
        return Ok(false);
    };
    let lease_ms = millis(lease);
    let asked = Instant::now();
    let conn = driver.take()?;
    let kept = wait(async {
        let kept = conn
            .client
            .execute(
                "UPDATE leadership
                   SET expires_at = now() + make_interval(secs => $3::int8 / 1000.0)
                 WHERE term = $1 AND origin = $2 AND expires_at > now()",
                &[&term, &origin, &lease_ms],
            )
            .await?;
        beat_on(&conn.client, origin, in_flight).await?;
        Ok(kept == 1)
    });
    driver.give(conn);
    let kept = kept.map_err(driver.target.err())?;
    match kept {
        true => seat.held(asked, lease),
        false => seat.step_down(),
    }
    Ok(kept)
}

/// A heartbeat of a host that does not lead.
pub fn beat(driver: &Driver, seat: &Seat, in_flight: u64) -> Result<(), StoreError> {
    let origin = seat.origin().ok_or_else(|| not_joined(driver))?;
    driver
        .with(async |conn| beat_on(&conn.client, origin, in_flight).await)
        .map(|_| ())
}

async fn beat_on(
    client: &tokio_postgres::Client,
    origin: &str,
    in_flight: u64,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE hosts SET beat_at = now(), in_flight = $2 WHERE origin = $1",
            &[&origin, &to_sql(in_flight)],
        )
        .await
}

/// Gives the lead up at once (a clean stop), so another host need not
/// wait for the lease to lapse.
pub fn resign(driver: &Driver, seat: &Seat) -> Result<(), StoreError> {
    let Some((term, origin)) = seat.leading() else {
        return Ok(());
    };
    seat.step_down();
    let sql = "UPDATE leadership SET expires_at = now() WHERE term = $1 AND origin = $2";
    driver
        .with(async |conn| conn.client.execute(sql, &[&term, &origin]).await)
        .map(|_| ())
}

/// The leader as the database knows it now; `None` before any host led.
pub fn leader(driver: &Driver) -> Result<Option<Leader>, StoreError> {
    let row = driver.with(async |conn| conn.client.query_opt(LEADER, &[]).await)?;
    Ok(row.as_ref().map(leader_of))
}

/// The leadership row: its term, origin, and milliseconds left of its
/// lease by the database's clock ([`leader_of`] reads it).
const LEADER: &str = "SELECT term, origin, (extract(epoch FROM expires_at - now()) * 1000)::int8
     FROM leadership";

fn leader_of(row: &tokio_postgres::Row) -> Leader {
    Leader {
        term: from_sql(row.get(0)),
        origin: row.get(1),
        expires_in_ms: row.get(2),
    }
}

/// One host as the database lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub origin: String,
    pub pid: u32,
    /// Milliseconds since it joined and since its last heartbeat.
    pub joined_ms: i64,
    pub beat_ms: i64,
    pub in_flight: u64,
    /// Where its API listens, once it does.
    pub api: Option<String>,
    /// How many runs its crew flies at once while it stands by.
    pub workers: u64,
}

/// Every host that ever joined, by origin.
pub fn hosts(driver: &Driver) -> Result<Vec<HostRow>, StoreError> {
    let sql = "SELECT origin, pid, (extract(epoch FROM now() - joined_at) * 1000)::int8,
                (extract(epoch FROM now() - beat_at) * 1000)::int8, in_flight, api, workers
         FROM hosts ORDER BY origin";
    let rows = driver.with(async |conn| conn.client.query(sql, &[]).await)?;
    Ok(rows
        .iter()
        .map(|r| HostRow {
            origin: r.get(0),
            pid: u32::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            joined_ms: r.get(2),
            beat_ms: r.get(3),
            in_flight: from_sql(r.get(4)),
            api: r.get(5),
            workers: from_sql(r.get(6)),
        })
        .collect())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Runs `write` in one transaction that first checks this host still
/// leads ([`LEADS`]), handing it the term and origin it leads under; a
/// host whose term is over (here or in the database) writes nothing,
/// steps down and is told it was [`deposed`].
pub fn as_leader<T>(
    driver: &Driver,
    seat: &Seat,
    write: impl AsyncFnOnce(&Transaction<'_>, i64, &str) -> Result<T, tokio_postgres::Error>,
) -> Result<T, StoreError> {
    let Some((term, origin)) = seat.leading() else {
        return Err(deposed(&driver.target, 0));
    };
    let written = driver.with(async |c| {
        let tx = c.client.transaction().await?;
        if tx.query_opt(LEADS, &[&term, &origin]).await?.is_none() {
            return Ok(None);
        }
        let out = write(&tx, term, origin).await?;
        tx.commit().await?;
        Ok(Some(out))
    })?;
    written.ok_or_else(|| {
        seat.step_down();
        deposed(&driver.target, term)
    })
}

/// A leader's write refused: its term `term` is over.
pub fn deposed(target: &super::client::Target, term: i64) -> StoreError {
    StoreError::NotLeading {
        target: target.to_string(),
        why: if term > 0 {
            format!(
                "this host's term {term} is over (another host leads, or its lease lapsed); \
                 nothing was written"
            )
        } else {
            "this host does not lead; nothing was written".into()
        },
    }
}

fn not_joined(driver: &Driver) -> StoreError {
    StoreError::NotLeading {
        target: driver.target.to_string(),
        why: "this host has not joined the database".into(),
    }
}
