//! The PostgreSQL schema, versioned: the migrations in
//! `store/migrations/V<N>__<name>.sql`, applied in order by refinery, which
//! records each in `refinery_schema_history` (version, name, checksum) and
//! refuses a database whose applied migrations diverge from ours.
//!
//! Before refinery runs, a database whose highest applied version is newer
//! than the newest this host knows is refused by [`StoreError::NewerSchema`],
//! naming both versions. A host migrates under a session advisory lock,
//! so two hosts starting together never migrate at once.

use refinery::{Migration, Runner};

use super::client::{Conn, Target};
use crate::store::StoreError;

/// Every migration, oldest first: its refinery name and its SQL.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "V1__datasets",
        include_str!("../migrations/V1__datasets.sql"),
    ),
    ("V2__hosts", include_str!("../migrations/V2__hosts.sql")),
    (
        "V3__record_shard",
        include_str!("../migrations/V3__record_shard.sql"),
    ),
    ("V4__work", include_str!("../migrations/V4__work.sql")),
    (
        "V5__record_room",
        include_str!("../migrations/V5__record_room.sql"),
    ),
];

/// The advisory lock hosts take while they migrate, so two hosts starting
/// together never migrate at once: "Runw" and 2 (pg_locks: classid, objid).
const MIGRATING: (i32, i32) = (0x5275_6e77, 2);

/// The schema version this host writes (the newest migration's).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// refinery's table of applied migrations.
pub const HISTORY: &str = "refinery_schema_history";

/// The newest migration applied to the database at `conn`; `None`
/// when no migration ever ran there.
async fn applied(conn: &Conn) -> Result<Option<i64>, tokio_postgres::Error> {
    let exists: bool = conn
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let sql = format!("SELECT max(version) FROM {HISTORY}");
    let found: Option<i32> = conn.client.query_one(&sql, &[]).await?.get(0);
    Ok(found.map(i64::from))
}

fn newer(target: &Target, found: i64) -> StoreError {
    StoreError::NewerSchema {
        path: target.to_string(),
        found,
        known: SCHEMA_VERSION,
    }
}

/// Brings the database at `conn` to [`SCHEMA_VERSION`], refusing a newer one.
pub fn migrate(conn: &mut Conn, target: &Target) -> Result<(), StoreError> {
    let err = target.err();
    super::client::wait(async {
        let (class, object) = MIGRATING;
        conn.client
            .execute("SELECT pg_advisory_lock($1, $2)", &[&class, &object])
            .await
            .map_err(&err)?;
        let migrated = migrate_held(conn, target).await;
        conn.client
            .execute("SELECT pg_advisory_unlock($1, $2)", &[&class, &object])
            .await
            .map_err(&err)?;
        migrated
    })
}

/// [`migrate`] once the migration lock is held.
async fn migrate_held(conn: &mut Conn, target: &Target) -> Result<(), StoreError> {
    if let Some(found) = applied(conn).await.map_err(target.err())?
        && found > SCHEMA_VERSION
    {
        return Err(newer(target, found));
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
}

/// For a reader beside the host: the database holds exactly the schema
/// this Runway knows. Nothing is migrated: a missing or older schema is
/// refused (a host migrates it when it starts), as is a newer one.
pub fn check(conn: &Conn, target: &Target) -> Result<(), StoreError> {
    let found = super::client::wait(applied(conn)).map_err(target.err())?;
    let missing = |why: String| StoreError::NoPostgresSchema {
        target: target.to_string(),
        why,
    };
    match found {
        None => Err(missing(
            "no Runway datasets here (no host has run on this database yet)".into(),
        )),
        Some(found) if found > SCHEMA_VERSION => Err(newer(target, found)),
        Some(found) if found < SCHEMA_VERSION => Err(missing(format!(
            "schema version {found}, older than this Runway's {SCHEMA_VERSION}: start a host on \
             it to migrate it first"
        ))),
        Some(_) => Ok(()),
    }
}

fn migration_failed(target: &Target, e: refinery::Error) -> StoreError {
    StoreError::Migration {
        target: target.to_string(),
        why: e.to_string(),
    }
}
