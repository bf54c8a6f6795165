//! One host per database, for now: a session-level advisory lock taken on
//! a connection of its own and held for the store's life, as the data
//! root's `flock` is for the embedded store. A second host is refused,
//! naming the holder as the server knows it (its `application_name`:
//! `runway HOSTNAME pid N`, and its address). The server drops the lock
//! when the holder's session ends, kill -9 of the host included.
//!
//! Advisory locks are per database: hosts on other databases of the same
//! server do not see each other.
//!
//! This lasts until the controller itself is on PostgreSQL (a leader and
//! claims), when many hosts will share one database.

use super::client::{Conn, Driver, wait};
use crate::store::StoreError;

/// The advisory lock's two keys: "Runw" and 1 (pg_locks: classid, objid).
const KEYS: (i32, i32) = (0x5275_6e77, 1);

/// The database held by this host; released when dropped.
pub struct Hold {
    conn: Option<Conn>,
}

impl Hold {
    /// Takes the database's host lock, or says who holds it.
    pub fn take(driver: &Driver) -> Result<Hold, StoreError> {
        let conn = driver.connect()?;
        let err = driver.target.err();
        let taken: bool = wait(
            conn.client
                .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&KEYS.0, &KEYS.1]),
        )
        .map_err(&err)?
        .get(0);
        if taken {
            return Ok(Hold { conn: Some(conn) });
        }
        let holder = wait(conn.client.query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''),
                    coalesce(host(a.client_addr), 'a local socket')
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2",
            &[&KEYS.0, &KEYS.1],
        ))
        .map_err(&err)?;
        let holder = match holder {
            Some(row) => {
                let (pid, name, from): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
                let name = if name.is_empty() {
                    "a Runway host".into()
                } else {
                    name
                };
                format!("{name}, server pid {pid}, from {from}")
            }
            // Released between the two looks: still refused, said plainly.
            None => "a host that just let go of it; try again".into(),
        };
        Err(StoreError::DatabaseInUse {
            target: driver.target.to_string(),
            holder,
        })
    }

    /// Whether the session holding the lock is still there: when it is
    /// gone, so is the lock, and another host may have taken the database.
    pub fn held(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.client.is_closed())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // Unlocked before the connection closes, so a host reopening the
        // database right after finds it free (the server notices a closed
        // session only a moment later).
        if let Some(conn) = self.conn.take() {
            let _ = wait(
                conn.client
                    .execute("SELECT pg_advisory_unlock($1, $2)", &[&KEYS.0, &KEYS.1]),
            );
        }
    }
}
