//! The PostgreSQL schema, versioned: the migrations in
//! `store/migrations/V<N>__<name>.sql`, applied in order by refinery, which
//! records each in `refinery_schema_history` (version, name, checksum) and
//! refuses a database whose applied migrations diverge from ours.
//!
//! Before refinery runs, a database whose highest applied version is newer
//! than the newest this host knows is refused by [`StoreError::NewerSchema`],
//! naming both versions. Only the host holding the database's lock (see
//! `hold.rs`) migrates, so two hosts never migrate at once.

use refinery::{Migration, Runner};

use super::client::{Conn, Target};
use crate::store::StoreError;

/// Every migration, oldest first: its refinery name and its SQL.
const MIGRATIONS: &[(&str, &str)] = &[(
    "V1__datasets",
    include_str!("../migrations/V1__datasets.sql"),
)];

/// The schema version this host writes (the newest migration's).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// refinery's table of applied migrations.
pub const HISTORY: &str = "refinery_schema_history";

/// Brings the database at `conn` to [`SCHEMA_VERSION`], refusing a newer one.
pub fn migrate(conn: &mut Conn, target: &Target) -> Result<(), StoreError> {
    let err = target.err();
    super::client::wait(async {
        let exists: bool = conn
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY])
            .await
            .map_err(&err)?
            .get(0);
        let found: Option<i32> = if exists {
            let sql = format!("SELECT max(version) FROM {HISTORY}");
            conn.client.query_one(&sql, &[]).await.map_err(&err)?.get(0)
        } else {
            None
        };
        let found = found.map(i64::from);
        if let Some(found) = found
            && found > SCHEMA_VERSION
        {
            return Err(StoreError::NewerSchema {
                path: target.to_string(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let migrations = MIGRATIONS
            .iter()
            .map(|(name, sql)| Migration::unapplied(name, sql))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| migration_failed(target, e))?;
        Runner::new(&migrations)
            .set_migration_table_name(HISTORY)
            .run_async(&mut conn.client)
            .await
            .map_err(|e| migration_failed(target, e))?;
        Ok(())
    })
}

fn migration_failed(target: &Target, e: refinery::Error) -> StoreError {
    StoreError::Migration {
        target: target.to_string(),
        why: e.to_string(),
    }
}
