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
//!
//! Each connection is made with the TLS its `sslmode` asks for (`tls.rs`,
//! libpq's rules), `prefer` falling back to plain text after a failed
//! handshake; a driver opened read-only makes every session's
//! transactions read-only on the server (`runway data`).

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Socket, Statement};

use super::ssl_options;
use super::tls::{HandshakeFailed, Roots, Tls, Verify};
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
    /// TLS as the sslmode asks; `None`: plain text.
    tls: Option<Tls>,
    pub target: Target,
    runtime: Option<tokio::runtime::Runtime>,
    idle: Mutex<Vec<Conn>>,
}

impl Driver {
    /// Parses `url`, sets up its TLS and starts the runtime; connects
    /// nothing yet. `read_only`: every transaction of its sessions is
    /// read-only (the server refuses any write).
    pub fn new(url: &DatabaseUrl, read_only: bool) -> Result<Driver, StoreError> {
        let (rest, ssl) = ssl_options::split(&url.0);
        let mut config =
            Config::from_str(&rest).map_err(|e| StoreError::DatabaseUrl { why: describe(&e) })?;
        let target = Target::of(&config);
        let tls = tls(&mut config, &ssl, &target)?;
        config.application_name(application_name());
        if config.get_connect_timeout().is_none() {
            // An unreachable server is an error within seconds, not a
            // host that hangs at start or in a commit.
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if read_only {
            let options = match config.get_options() {
                Some(o) => format!("{o} -c default_transaction_read_only=on"),
                None => "-c default_transaction_read_only=on".into(),
            };
            config.options(options);
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
            tls,
            target,
            runtime: Some(runtime),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A new connection, its I/O driven by the store's runtime. With
    /// `sslmode=prefer`, a failed TLS handshake is followed by a plain
    /// connection, as libpq does.
    pub fn connect(&self) -> Result<Conn, StoreError> {
        self.connect_telling(None)
    }

    /// A connection of its own that listens on `channels`: each
    /// notification, (channel, payload), goes to `to` until the connection
    /// ends (then `to` is dropped: the receiver hears of it) or the
    /// receiver hangs up. Keep the connection while listening.
    pub fn listen(
        &self,
        channels: &[&str],
        to: std::sync::mpsc::Sender<(String, String)>,
    ) -> Result<Conn, StoreError> {
        let conn = self.connect_telling(Some(to))?;
        let listen: String = channels.iter().map(|c| format!("LISTEN {c};")).collect();
        wait(conn.client.batch_execute(&listen)).map_err(self.target.err())?;
        Ok(conn)
    }

    fn connect_telling(&self, notify: Option<Notify>) -> Result<Conn, StoreError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let target = self.target.clone();
        let runtime = self
            .runtime
            .as_ref()
            .expect("a live driver has its runtime");
        let connected = runtime.spawn(async move {
            let Some(tls) = tls else {
                return start(&config, NoTls, target, notify).await;
            };
            match start(&config, tls, target.clone(), notify.clone()).await {
                Err(e) if config.get_ssl_mode() == SslMode::Prefer && handshake_failed(&e) => {
                    let mut plain = config.clone();
                    plain.ssl_mode(SslMode::Disable);
                    start(&plain, NoTls, target, notify).await
                }
                other => other,
            }
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
    /// Runs `f` on a pooled connection, its error naming the database.
    pub fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take()?;
        let out = wait(f(&mut conn));
        self.give(conn);
        out.map_err(self.target.err())
    }

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

/// Where a listening connection sends its notifications.
type Notify = std::sync::mpsc::Sender<(String, String)>;

/// Connects with `tls`, spawning the connection's I/O task, which sends
/// every notification to `notify`, if given.
async fn start<T>(
    config: &Config,
    tls: T,
    target: Target,
    notify: Option<Notify>,
) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        let Some(notify) = notify else {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL {target}: connection lost: {e}");
            }
            return;
        };
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let told = (n.channel().to_string(), n.payload().to_string());
                    if notify.send(told).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("PostgreSQL {target}: listening connection lost: {e}");
                    return;
                }
                None => return,
            }
        }
    });
    Ok(client)
}

/// Whether `e` is a TLS handshake that failed (not a refusal by the
/// server, nor one of its errors).
fn handshake_failed(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<HandshakeFailed>())
}

/// The TLS `config`'s sslmode and `ssl`'s options ask for (libpq's rules,
/// see `tls.rs`); `None` for plain text: `disable`, or Unix sockets only
/// (which libpq never encrypts; their mode becomes `disable`).
fn tls(
    config: &mut Config,
    ssl: &ssl_options::SslOptions,
    target: &Target,
) -> Result<Option<Tls>, StoreError> {
    let hosts = config.get_hosts();
    if !hosts.is_empty() && hosts.iter().all(|h| matches!(h, Host::Unix(_))) {
        config.ssl_mode(SslMode::Disable);
    }
    if config.get_ssl_mode() == SslMode::Disable {
        return Ok(None);
    }
    let refused = |why: String| StoreError::PostgresTls {
        target: target.to_string(),
        why,
    };
    let rootcert = ssl.rootcert.as_deref();
    let verify = match (ssl.verify.as_deref(), rootcert) {
        (Some("verify-full"), _) | (_, Some("system")) => Verify::Full,
        (Some(_), _) | (None, Some(_)) => Verify::Ca,
        (None, None) => Verify::Nothing,
    };
    let pem;
    let roots = match rootcert {
        None | Some("system") => Roots::Webpki,
        Some(path) => {
            pem = std::fs::read(path).map_err(|e| refused(format!("sslrootcert {path}: {e}")))?;
            Roots::Pem(&pem, path)
        }
    };
    Tls::new(verify, roots).map(Some).map_err(refused)
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

/// Tokens and sequence numbers are far below 2^63; PostgreSQL's are i64.
pub fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
