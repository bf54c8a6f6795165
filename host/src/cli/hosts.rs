//! `runway hosts`: the hosts sharing one PostgreSQL database, as the
//! database knows them — each host (its audit origin) with its role
//! (leader; worker, standing by while its crew flies what the leader
//! posts; or gone: no heartbeat within the lease), its pid, the age of
//! its lease or heartbeat, its runs in flight (a worker's: its crew's)
//! and where its API listens (a worker relays to the leader's).
//! Read-only, from any machine that reaches the database.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::database::store_config;
use super::{BAD_INPUT, Failure, HOST_FAULT};
use crate::files::ReadCaps;
use crate::store::{DatasetStore, StoreConfig};

#[derive(Args)]
pub struct HostsArgs {
    /// A file holding the database's connection string (or the
    /// environment variable RUNWAY_DATABASE_URL), as `runway serve
    /// --database-file` reads it.
    #[arg(long, value_name = "FILE")]
    database_file: Option<PathBuf>,
    /// A host silent longer than this (its lease) is shown as gone.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    lease_ms: u64,
    /// One JSON object per host, one per line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: HostsArgs) -> Result<(), Failure> {
    let config = store_config(
        args.database_file.as_deref(),
        &ReadCaps::default(),
        crate::controller::LEASE,
    )?;
    let StoreConfig::Postgres { url, .. } = config else {
        return Err(Failure::new(
            BAD_INPUT,
            anyhow::anyhow!(
                "runway hosts lists the hosts sharing a PostgreSQL database: give \
                 --database-file or RUNWAY_DATABASE_URL"
            ),
        ));
    };
    let fault = |e: crate::store::StoreError| Failure::new(HOST_FAULT, e);
    let store = DatasetStore::open_postgres_read_only(&url).map_err(fault)?;
    let shared = store.shared().expect("a PostgreSQL store is shared");
    let leader = shared.leader().map_err(fault)?;
    let hosts = shared.hosts().map_err(fault)?;
    let lease_ms = i64::try_from(args.lease_ms).unwrap_or(i64::MAX);
    let mut out = std::io::stdout().lock();
    let mut print = |line: String| writeln!(out, "{line}").map_err(|e| Failure::new(HOST_FAULT, e));
    if !args.json {
        print(format!(
            "{:<24} {:<8} {:>5} {:>8} {:>10} {:>9}  {}",
            "host", "role", "term", "pid", "lease/beat", "in flight", "api"
        ))?;
    }
    for host in hosts {
        let leads = leader
            .as_ref()
            .filter(|l| l.origin == host.origin && l.expires_in_ms > 0);
        let (role, term, age) = match leads {
            // The lease's age: how long ago it was last renewed.
            Some(l) => ("leader", Some(l.term), lease_ms - l.expires_in_ms),
            // Standing by, its crew flying what the leader posts.
            None if host.beat_ms <= lease_ms => ("worker", None, host.beat_ms),
            None => ("gone", None, host.beat_ms),
        };
        if args.json {
            print(
                json!({
                    "host": host.origin,
                    "role": role,
                    "term": term,
                    "pid": host.pid,
                    "age_ms": age,
                    "in_flight": host.in_flight,
                    "api": host.api,
                })
                .to_string(),
            )?;
        } else {
            let term = term.map_or("-".to_string(), |t| t.to_string());
            let api = host.api.as_deref().filter(|_| role != "gone");
            print(format!(
                "{:<24} {:<8} {:>5} {:>8} {:>10} {:>9}  {}",
                runway_audit::render::escape(&host.origin),
                role,
                term,
                host.pid,
                format!("{:.1} s", age as f64 / 1000.0),
                host.in_flight,
                runway_audit::render::escape(api.unwrap_or("-")),
            ))?;
        }
    }
    Ok(())
}
