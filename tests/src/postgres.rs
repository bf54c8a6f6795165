//! A real PostgreSQL for the tests: Debian's server binaries (installed
//! with apt-get when missing and running as root), `initdb` into a
//! temporary folder, listening on a Unix socket in it only (no TCP port),
//! stopped and removed afterwards.
//!
//! One server per test process ([`server`]), each test with a database of
//! its own ([`Server::database`], dropped with its handle). The shared
//! server is stopped and its folder removed when the process exits (an
//! `atexit` hook: a panicking test does not stop libtest from exiting
//! normally); a watchdog beside it does the same if the process is killed.
//! A [`Server`] started on its own is stopped when dropped.
//!
//! Run as root, the server runs as the `postgres` user (`initdb` refuses
//! root). Authentication is `trust` on the socket, except for the role
//! [`PASSWORD_ROLE`], which must give its password, so tests can prove a
//! wrong password is refused without the password showing anywhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A role that logs in with a password (scram-sha-256).
pub const PASSWORD_ROLE: &str = "runway_secret";
/// Its password.
pub const PASSWORD: &str = "Pa55-w0rd-that-must-never-show";

/// A PostgreSQL server over a temporary folder.
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    /// Run the server's commands as `postgres` (this process is root).
    as_postgres: bool,
    /// Stop and remove when dropped (the shared one is left to `atexit`).
    owned: bool,
    /// Its port: of its TCP listener on 127.0.0.1 when it has one, and of
    /// its socket's name in any case.
    pub port: u16,
}

/// A database of its own on a [`Server`], dropped with this handle.
pub struct Database {
    psql: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    pub name: String,
}

/// The server shared by every test of this process.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let mut server = Server::start(false);
        assert_eq!(server.port, DEFAULT_PORT);
        server.owned = false;
        let dir = server.dir.clone();
        let bin = server.bin.clone();
        let as_postgres = server.as_postgres;
        STOP_AT_EXIT
            .set((bin, dir, as_postgres))
            .expect("one shared server");
        // SAFETY: registering a plain `extern "C"` function with no
        // arguments; it only reads a set OnceLock and runs commands.
        unsafe { libc_atexit(stop_at_exit) };
        server
    })
}

static STOP_AT_EXIT: OnceLock<(PathBuf, PathBuf, bool)> = OnceLock::new();

unsafe extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}

extern "C" fn stop_at_exit() {
    if let Some((bin, dir, as_postgres)) = STOP_AT_EXIT.get() {
        stop(bin, dir, *as_postgres);
    }
}

impl Server {
    /// Starts a server of its own (`fsync` on or off), stopped when dropped.
    pub fn start(fsync: bool) -> Server {
        Server::start_with(fsync, None)
    }

    /// Starts a server of its own that also listens on 127.0.0.1 (port
    /// [`Server::port`]) with TLS only (`ssl=on`, the server certificate
    /// and key at `cert` and `key`, PEM): [`PASSWORD_ROLE`] may log in
    /// there over TLS (`hostssl`, scram), nobody in plain text.
    pub fn start_tls(cert: &Path, key: &Path) -> Server {
        Server::start_with(false, Some((cert, key)))
    }

    fn start_with(fsync: bool, tls: Option<(&Path, &Path)>) -> Server {
        let bin = binaries();
        let as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("runway-pg-")
            .tempdir()
            .expect("temporary folder")
            .keep();
        let port = match tls {
            Some(_) => free_port(),
            None => DEFAULT_PORT,
        };
        let server = Server {
            bin,
            dir,
            as_postgres,
            owned: true,
            port,
        };
        std::fs::create_dir(server.socket_dir()).expect("socket folder");
        if let Some((cert, key)) = tls {
            std::fs::copy(cert, server.dir.join("server.crt")).expect("server certificate");
            std::fs::copy(key, server.dir.join("server.key")).expect("server key");
            // The server refuses a key others may read.
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            std::fs::set_permissions(server.dir.join("server.key"), mode).expect("key mode");
        }
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of {}", server.dir.display());
        }
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-instructions",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let mut hba = format!("local all {PASSWORD_ROLE} scram-sha-256\nlocal all all trust\n");
        let mut options = format!(
            "-k {} -p {port} -c fsync={} -c max_connections=200",
            server.socket_dir().display(),
            if fsync { "on" } else { "off" },
        );
        match tls {
            None => options.push_str(" -c listen_addresses=''"),
            Some(_) => {
                hba.push_str(&format!(
                    "hostssl all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
                ));
                options.push_str(&format!(
                    " -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} \
                     -c ssl_key_file={}",
                    server.dir.join("server.crt").display(),
                    server.dir.join("server.key").display()
                ));
            }
        }
        std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        server.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &server.dir.join("log").display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        watchdog(&server);
        server.psql(
            "postgres",
            &format!("CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'"),
        );
        server
    }

    /// The folder the server's socket is in.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// A new, empty database, dropped with the handle.
    pub fn database(&self) -> Database {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.psql(
            &name,
            &format!("GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}"),
        );
        Database {
            psql: self.bin.join("psql"),
            socket_dir: self.socket_dir(),
            port: self.port,
            name,
        }
    }

    /// Runs `sql` in `database` with psql, giving its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        psql(
            &self.bin.join("psql"),
            &self.socket_dir(),
            self.port,
            database,
            sql,
        )
    }

    /// Runs one of the server's programs (as `postgres` when root).
    fn run(&self, program: &str, args: &[&str]) {
        let status = command(&self.bin, program, args, self.as_postgres)
            .stdout(Stdio::null())
            .status()
            .expect("server program runs");
        assert!(status.success(), "{program} {args:?} failed");
    }
}

impl Database {
    /// Its connection string, as the trusted superuser.
    pub fn url(&self) -> String {
        format!(
            "postgresql:///{}?host={}&port={}&user=postgres",
            self.name,
            self.socket_dir.display(),
            self.port
        )
    }

    /// Runs `sql` in it with psql.
    pub fn psql(&self, sql: &str) -> String {
        psql(&self.psql, &self.socket_dir, self.port, &self.name, sql)
    }

    /// The store config of a host on it, leading under the default lease.
    pub fn config(&self) -> runway_host::store::StoreConfig {
        runway_host::store::StoreConfig::Postgres {
            url: runway_host::store::DatabaseUrl::new(self.url()),
            lease: runway_host::controller::LEASE,
            api: None,
        }
    }

    /// Its connection string as [`PASSWORD_ROLE`] giving `password`.
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgresql://{PASSWORD_ROLE}:{password}@/{}?host={}&port={}",
            self.name,
            self.socket_dir.display(),
            self.port
        )
    }

    /// Its connection string over TCP to 127.0.0.1 as [`PASSWORD_ROLE`]
    /// giving `password`, with `query` (`sslmode=…&…`) appended.
    pub fn tcp_url(&self, password: &str, query: &str) -> String {
        format!(
            "postgresql://{PASSWORD_ROLE}:{password}@127.0.0.1:{}/{}?{query}",
            self.port, self.name
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = Command::new(&self.psql)
            .args(["-X", "-q", "-h"])
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", &sql])
            .stdin(Stdio::null())
            .output();
    }
}

/// Runs `sql` in `database` with psql, giving its unaligned output.
fn psql(program: &Path, socket_dir: &Path, port: u16, database: &str, sql: &str) -> String {
    let out = Command::new(program)
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(socket_dir)
        .args(["-p", &port.to_string()])
        .args(["-U", "postgres", "-d", database, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.owned {
            stop(&self.bin, &self.dir, self.as_postgres);
        }
    }
}

/// The port of a server with no TCP listener (its socket's name).
const DEFAULT_PORT: u16 = 5432;

/// A TCP port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Stops the server in `dir` at once and removes the folder.
fn stop(bin: &Path, dir: &Path, as_postgres: bool) {
    let data = dir.join("data").display().to_string();
    let _ = command(
        bin,
        "pg_ctl",
        &["-D", &data, "-m", "immediate", "-w", "stop"],
        as_postgres,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status();
    let _ = std::fs::remove_dir_all(dir);
}

/// A watchdog process: when this process is gone (killed, say), it stops
/// the server and removes its folder.
fn watchdog(server: &Server) {
    let data = server.dir.join("data");
    let pg_ctl = server.bin.join("pg_ctl");
    let stop = if server.as_postgres {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         [ -d {data} ] && {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        data = data.display(),
        dir = server.dir.display(),
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn command(bin: &Path, program: &str, args: &[&str], as_postgres: bool) -> Command {
    let path = bin.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path).args(args);
        c
    } else {
        let mut c = Command::new(path);
        c.args(args);
        c
    }
}

/// The folder of the newest PostgreSQL server binaries, installing
/// Debian's `postgresql` first when there are none (as root).
fn binaries() -> PathBuf {
    if let Some(bin) = find_binaries() {
        return bin;
    }
    if rustix::process::geteuid().is_root() {
        let install = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                       apt-get install -y -qq postgresql >/dev/null";
        let status = Command::new("sh").args(["-c", install]).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "installing Debian's postgresql failed"
        );
    }
    find_binaries().expect(
        "PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; \
         install Debian's `postgresql`",
    )
}

fn find_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

/// The store at `url` (local data root `root`) opened, joined as `origin`
/// and leading, as the start path leaves it: only a leader writes.
pub fn leading(
    url: &str,
    root: &std::path::Path,
    origin: &str,
) -> Result<runway_host::store::DatasetStore, runway_host::store::StoreError> {
    use runway_host::store::{DatabaseUrl, DatasetStore, Standing, StoreError};
    // A data root this process just let go of may still be locked for a
    // moment: another test thread's child, forked before its `exec`,
    // holds a copy of the lock's descriptor until then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mine = std::process::id().to_string();
    let store = loop {
        match DatasetStore::open_postgres(&DatabaseUrl::new(url), root) {
            Err(StoreError::Locked { pid, .. })
                if pid == mine && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => break opened?,
        }
    };
    let shared = store.shared().expect("a PostgreSQL store is shared");
    let lease = runway_host::controller::LEASE;
    shared.join((origin, std::process::id()), lease, None)?;
    match shared.take_lead(lease)? {
        Standing::Leading { .. } => Ok(store),
        Standing::Standby(leader) => panic!("{origin} should lead, {leader:?} does"),
    }
}
