//! The shared history: the controller's records of every host, in the
//! order the database took them (`history`), each kept as its shard wrote
//! it — origin, sequence number, time and the entry's canonical bytes —
//! with the term it was taken under.
//!
//! A leader appends a batch in one transaction that first checks it still
//! leads ([`super::lease::LEADS`]): a deposed leader's records are refused
//! whole. A host that takes the lead reads the history from the start and
//! folds it, as a single host folds its own trail.

use super::client::{Driver, from_sql, to_sql};
use super::lease::{Seat, as_leader, deposed};
use crate::store::StoreError;

/// One record of the shared history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its place in the history (growing; gaps where a transaction failed).
    pub pos: u64,
    /// The shard that holds it, and its number there.
    pub origin: String,
    pub seq: u64,
    /// The term it was taken under.
    pub term: u64,
    pub time_ns: u64,
    /// The entry's canonical encoding.
    pub entry: Vec<u8>,
}

/// Appends `records` (sequence number, time, entry bytes) of this host's
/// shard, in order, if this host still leads.
pub fn append(
    driver: &Driver,
    seat: &Seat,
    records: &[(u64, u64, Vec<u8>)],
) -> Result<(), StoreError> {
    if records.is_empty() {
        // Nothing to write: only whether this host still leads, by its
        // own clock.
        return match seat.leading() {
            Some(_) => Ok(()),
            None => Err(deposed(&driver.target, 0)),
        };
    }
    let seqs: Vec<i64> = records.iter().map(|r| to_sql(r.0)).collect();
    let times: Vec<i64> = records.iter().map(|r| to_sql(r.1)).collect();
    let entries: Vec<&[u8]> = records.iter().map(|r| &r.2[..]).collect();
    as_leader(driver, seat, async |tx, term, origin| {
        tx.execute(
            "INSERT INTO history (origin, seq, term, time_ns, entry)
             SELECT $1, s, $2, t, e
               FROM unnest($3::int8[], $4::int8[], $5::bytea[]) WITH ORDINALITY
                 AS u (s, t, e, n)
              ORDER BY n",
            &[&origin, &term, &seqs, &times, &entries],
        )
        .await?;
        Ok(())
    })
}

/// The records after position `after`, at most `limit`, oldest first.
pub fn read(driver: &Driver, after: u64, limit: u32) -> Result<Vec<Recorded>, StoreError> {
    let sql = "SELECT pos, origin, seq, term, time_ns, entry FROM history
          WHERE pos > $1 ORDER BY pos LIMIT $2";
    let (after, limit) = (to_sql(after), i64::from(limit));
    let rows = driver.with(async |conn| conn.client.query(sql, &[&after, &limit]).await)?;
    Ok(rows
        .iter()
        .map(|r| Recorded {
            pos: from_sql(r.get(0)),
            origin: r.get(1),
            seq: from_sql(r.get(2)),
            term: from_sql(r.get(3)),
            time_ns: from_sql(r.get(4)),
            entry: r.get(5),
        })
        .collect())
}
