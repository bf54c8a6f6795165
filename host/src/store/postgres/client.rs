//! Connections of the PostgreSQL backend, usable from any thread.
//!
//! The store's trait is synchronous and is called from plain threads and
//! from tokio tasks alike (the tower grants tokens inside the host's
//! runtime). The sync `postgres` crate would panic there ("Cannot start a
//! runtime from within a runtime"), so the backend drives `tokio-postgres`
//! itself: each connection's I/O task runs on a one-thread runtime owned
//! by the store ([`Driver`]), and a caller waits for a query's answer with
//! [`wait`], which parks the calling thread and needs no runtime of its
//! own — so queries may borrow the caller's data (a commit's staged
//! values), nothing is copied to another thread.
//!
//! The connection string holds a password: it lives in a [`DatabaseUrl`]
//! whose `Debug` prints nothing of it, and every error and log line names
//! the database by its [`Target`] (database, host, user) only.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::store::StoreError;

/// A PostgreSQL connection string (URL or `key=value` form). Never shown:
/// `Debug` prints `DatabaseUrl(..)` and there is no `Display`.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into().trim().to_string())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

/// How errors and logs name a database: never with its password.
#[derive(Debug, Clone)]
pub struct Target(Arc<str>);

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Target {
    fn of(config: &Config) -> Target {
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string(),
            })
            .collect();
        let hosts = if hosts.is_empty() {
            "localhost".to_string()
        } else {
            hosts.join(",")
        };
        let user = config.get_user().unwrap_or("(default user)");
        let db = config.get_dbname().unwrap_or(user);
        Target(format!("database {db:?} on {hosts} (user {user})").into())
    }

    /// Wraps a driver error, naming this database.
    pub fn err(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres {
            target: self.to_string(),
            source,
        }
    }
}

/// A driver error in words: the server's own message for a database error
/// (the driver's `Display` says only "db error"), else the driver's words
/// and their cause (an I/O error, say).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.to_string();
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Waits for `f` on the calling thread (parked between wake-ups).
pub fn wait<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// One connection and the statements prepared on it, by their text.
pub struct Conn {
    pub client: Client,
    prepared: HashMap<&'static str, Statement>,
}

impl Conn {
    /// `sql` prepared on this connection (once).
    pub async fn prepare(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(stmt) = self.prepared.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(sql).await?;
        self.prepared.insert(sql, stmt.clone());
        Ok(stmt)
    }
}

/// How long connecting may take unless the connection string says.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most idle connections kept for the next reader or commit.
const MAX_IDLE: usize = 16;

/// The runtime that drives the connections' I/O, and the idle ones.
pub struct Driver {
    config: Config,
    pub target: Target,
    runtime: Option<tokio::runtime::Runtime>,
    idle: Mutex<Vec<Conn>>,
}

impl Driver {
    /// Parses `url` (refusing TLS it cannot give) and starts the runtime;
    /// connects nothing yet.
    pub fn new(url: &DatabaseUrl) -> Result<Driver, StoreError> {
        let mut config =
            Config::from_str(&url.0).map_err(|e| StoreError::DatabaseUrl { why: describe(&e) })?;
        let target = Target::of(&config);
        if config.get_ssl_mode() == SslMode::Require {
            return Err(StoreError::PostgresTls {
                target: target.to_string(),
            });
        }
        if config.get_ssl_mode() == SslMode::Prefer {
            // Without a TLS implementation "prefer" means plain text:
            // say so by asking for it, not by trying TLS first.
            config.ssl_mode(SslMode::Disable);
        }
        config.application_name(application_name());
        if config.get_connect_timeout().is_none() {
            // An unreachable server is an error within seconds, not a
            // host that hangs at start or in a commit.
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("runway-postgres")
            .enable_all()
            .build()
            .map_err(|source| StoreError::PostgresRuntime {
                target: target.to_string(),
                source,
            })?;
        Ok(Driver {
            config,
            target,
            runtime: Some(runtime),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A new connection, its I/O driven by the store's runtime.
    pub fn connect(&self) -> Result<Conn, StoreError> {
        let config = self.config.clone();
        let target = self.target.clone();
        let runtime = self
            .runtime
            .as_ref()
            .expect("a live driver has its runtime");
        let connected = runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("PostgreSQL {target}: connection lost: {e}");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = wait(connected)
            .map_err(|e| StoreError::PostgresRuntime {
                target: self.target.to_string(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(self.target.err())?;
        Ok(Conn {
            client,
            prepared: HashMap::new(),
        })
    }

    /// An idle connection, or a new one.
    pub fn take(&self) -> Result<Conn, StoreError> {
        loop {
            match lock(&self.idle).pop() {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => return Ok(conn),
                None => return self.connect(),
            }
        }
    }

    /// Keeps `conn` for the next caller (unless closed or enough are kept).
    pub fn give(&self, conn: Conn) {
        let mut idle = lock(&self.idle);
        if !conn.client.is_closed() && idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        lock(&self.idle).clear();
        // Never blocks: the store may be dropped inside a tokio task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How this host names itself to the server (`pg_stat_activity`), so a
/// second host's refusal says who holds the database.
fn application_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = format!("runway {} pid {}", host.trim(), std::process::id());
    name.chars().take(63).collect()
}

/// Locks a mutex, recovering from poisoning (the guarded lists stay whole).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
