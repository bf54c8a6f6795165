//! Fixtures for Runway's integration tests: a host over fresh temporary
//! folders, loaded with every plugin built from `plugins/` (compiled once per
//! test process), and helpers to run plans and read back data and audit.

pub mod components;
pub mod postgres;
pub mod timing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use runway_audit::{AuditError, AuditOptions, Event, Record};
use runway_host::controller::{self, Filing};
use runway_host::controller::{HostSetup, Opened, PluginSource, StartError};
use runway_host::store::{StoreConfig, StoreError};
use runway_host::{DispatchOptions, Grants, Host, Plan, PlanReport, Plugins, Runtime, bundled};

/// The runtime and plugins, compiled once for the whole test binary.
pub fn plugins() -> &'static (Arc<Runtime>, Arc<Plugins>) {
    static LOADED: OnceLock<(Arc<Runtime>, Arc<Plugins>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let runtime = Arc::new(Runtime::new().expect("runtime"));
        let plugins =
            Plugins::load_dir(&runtime, Path::new(bundled::PLUGIN_DIR)).expect("plugins load");
        (runtime, Arc::new(plugins))
    })
}

/// The environment variable naming the store the fixtures' datasets are
/// kept in: `postgres` puts each fixture on a fresh database of the tests'
/// PostgreSQL server (`.ci/run` runs the controller and delegation suites
/// so, as well as on the embedded store: one suite over both backends);
/// unset, the embedded store.
pub const STORE_UNDER_TEST: &str = "RUNWAY_TEST_STORE";

/// A host over its own temporary data root and audit folder.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub audit_dir: PathBuf,
    pub host: Arc<Host>,
    /// Where the host keeps its datasets (reopened the same way).
    store: StoreConfig,
    /// The PostgreSQL database of a fixture on one (dropped last).
    _db: Option<Arc<postgres::Database>>,
}

impl Fixture {
    /// A host with two workers.
    pub fn new() -> Fixture {
        Fixture::with_workers(2)
    }

    pub fn with_workers(workers: usize) -> Fixture {
        Fixture::build(workers, plugins().1.clone())
    }

    /// A host whose plugins are the bundled ones, except that each named
    /// plugin gets the given grants instead of its own.
    pub fn with_grants(overrides: &[(&str, &str)]) -> Fixture {
        Fixture::build(2, Arc::new(bundled_with_grants(overrides)))
    }

    /// A host with `workers` workers over `plugins` (e.g. the bundled ones
    /// plus components a test built).
    pub fn with_plugins(workers: usize, plugins: Plugins) -> Fixture {
        Fixture::build(workers, Arc::new(plugins))
    }

    /// A host whose data root is prepared by `prepare` (given its path,
    /// not yet created) before the store opens it, e.g. to mount it.
    pub fn with_data_root(prepare: impl FnOnce(&Path)) -> Fixture {
        Fixture::build_with(2, plugins().1.clone(), prepare)
    }

    fn build(workers: usize, plugins: Arc<Plugins>) -> Fixture {
        Fixture::build_with(workers, plugins, |_| {})
    }

    /// A host over a fresh data root (prepared by `prepare`), its
    /// datasets in the store under test ([`STORE_UNDER_TEST`]).
    fn build_with(workers: usize, plugins: Arc<Plugins>, prepare: impl FnOnce(&Path)) -> Fixture {
        let postgres = std::env::var(STORE_UNDER_TEST).is_ok_and(|s| s == "postgres");
        Fixture::on(postgres, workers, plugins, prepare)
    }

    /// A host with two workers whose datasets are in a fresh database of
    /// the tests' PostgreSQL server (`postgres`); its journal and audit
    /// trail stay in temporary folders.
    pub fn on_postgres() -> Fixture {
        Fixture::on(true, 2, plugins().1.clone(), |_| {})
    }

    fn on(
        postgres: bool,
        workers: usize,
        plugins: Arc<Plugins>,
        prepare: impl FnOnce(&Path),
    ) -> Fixture {
        let db = postgres.then(|| postgres::server().database());
        let store = db.as_ref().map_or(StoreConfig::Embedded, |db| db.config());
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let audit_dir = dir.path().join("audit");
        prepare(&data);
        let host = open_host_on(&data, &audit_dir, plugins, workers, &store);
        Fixture {
            _dir: dir,
            data,
            audit_dir,
            host,
            store,
            _db: db.map(Arc::new),
        }
    }

    /// The fixture's PostgreSQL database, when it has one.
    pub fn database(&self) -> Option<&postgres::Database> {
        self._db.as_deref()
    }

    /// Parses a plan against the loaded plugins.
    pub fn plan(&self, text: &str) -> Plan {
        Plan::parse(text, &*self.host.plugins()).expect("plan is valid")
    }

    /// Runs one plan to its end.
    pub fn run(&self, text: &str) -> PlanReport {
        self.run_many(&[text]).pop().expect("one report")
    }

    /// Runs several plans at once on this host's controller, sharing its
    /// tower.
    pub fn run_many(&self, texts: &[&str]) -> Vec<PlanReport> {
        let plans: Vec<Plan> = texts.iter().map(|t| self.plan(t)).collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        rt.block_on(async {
            let (controller, task) =
                controller::start(self.host.clone(), DispatchOptions::default())
                    .expect("controller starts");
            let flights: Vec<_> = plans
                .into_iter()
                .map(|p| {
                    let controller = controller.clone();
                    tokio::spawn(
                        async move { controller::file_and_wait(&controller, filing(p)).await },
                    )
                })
                .collect();
            let mut reports = Vec::new();
            for t in flights {
                reports.push(t.await.expect("filing task").expect("plan ran"));
            }
            controller.stop(false);
            task.await
                .expect("controller task")
                .expect("controller ends well");
            reports
        })
    }

    /// Every audit record so far, read back and verified from disk.
    pub fn records(&self) -> Vec<Record> {
        self.host.audit.sync().expect("audit sync");
        runway_audit::read_records(&self.audit_dir).expect("audit verifies")
    }

    /// Every record of a dataset with its bytes (for byte-identity checks).
    pub fn snapshot(&self, dataset: &str) -> Vec<(String, Vec<u8>)> {
        let records = self.host.store.records(dataset).expect("dataset records");
        records.into_iter().map(|(k, v, _)| (k, v)).collect()
    }

    /// The same folders opened again by a new host, as after a restart.
    pub fn reopen(self) -> Fixture {
        self.reopen_counting().0
    }

    /// [`Fixture::reopen`], also giving how many records the old host's
    /// trail holds once its log is closed (nothing more can land in it).
    pub fn reopen_counting(self) -> (Fixture, usize) {
        let Fixture {
            _dir,
            data,
            audit_dir,
            host,
            store,
            _db,
        } = self;
        let plugins = host.plugins();
        drop(host);
        let left = runway_audit::read_records(&audit_dir).map_or(0, |r| r.len());
        let host = open_host_on(&data, &audit_dir, plugins, 2, &store);
        let reopened = Fixture {
            _dir,
            data,
            audit_dir,
            host,
            store,
            _db,
        };
        (reopened, left)
    }

    /// A committed record's value, parsed as JSON.
    pub fn json(&self, dataset: &str, key: &str) -> serde_json::Value {
        let bytes = self
            .host
            .store
            .read(dataset, key)
            .expect("store read")
            .unwrap_or_else(|| panic!("{dataset}/{key} missing"));
        serde_json::from_slice(&bytes).expect("record is JSON")
    }

    /// Committed keys of a dataset with a prefix.
    pub fn keys(&self, dataset: &str, prefix: &str) -> Vec<String> {
        let (keys, _) = self
            .host
            .store
            .list(dataset, prefix, None, usize::MAX, None)
            .expect("list");
        keys
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

/// The bundled plugins as a fresh catalog, to add test components to.
pub fn bundled_plugins() -> Plugins {
    bundled_with_grants(&[])
}

/// The bundled plugins, each named one with the given grants instead of its own.
pub fn bundled_with_grants(overrides: &[(&str, &str)]) -> Plugins {
    let (runtime, _) = plugins();
    let mut set = Plugins::default();
    for (name, path) in bundled::PLUGIN_PATHS {
        let bytes = std::fs::read(path).expect("plugin bytes");
        let grants = match overrides.iter().find(|(n, _)| n == name) {
            Some((_, text)) => Grants::parse(text, "test grants").expect("test grants parse"),
            None => Grants::load(&Path::new(path).with_extension("toml"), &Default::default())
                .expect("bundled grants"),
        };
        set.insert(runtime, name, &bytes, grants)
            .expect("plugin loads");
    }
    set
}

/// Where a bundled plugin's component was built.
pub fn bundled_path(name: &str) -> PathBuf {
    let (_, path) = bundled::PLUGIN_PATHS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no bundled plugin {name}"));
    PathBuf::from(path)
}

/// The `bench` agent alone, compiled by `runtime` (the benches' own).
pub fn bench_plugins(runtime: &Arc<Runtime>) -> Arc<Plugins> {
    let path = bundled_path("bench");
    let wasm = std::fs::read(&path).expect("bench.wasm");
    let grants = std::fs::read_to_string(path.with_extension("toml")).expect("grants");
    let plugins = Plugins::from_bytes(runtime, [("bench", &wasm[..], &grants[..])]);
    Arc::new(plugins.expect("bench loads"))
}

/// A folder on tmpfs where there is one, so no `fsync` hides what a bench
/// measures.
pub fn tmpfs_dir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").expect("tmpfs dir"),
        false => tempfile::tempdir().expect("tempdir"),
    }
}

/// A controller started on `f`'s host inside `rt`, on the test `clock`,
/// and the task that serves it.
pub type Started = (
    controller::Controller,
    tokio::task::JoinHandle<Result<(), controller::DispatchError>>,
);

/// Starts a controller on `f`'s host inside `rt`, its wall clock `clock`.
pub fn start_on_clock(
    rt: &tokio::runtime::Runtime,
    f: &Fixture,
    clock: Arc<controller::ManualClock>,
) -> Started {
    let _in = rt.enter();
    let opts = DispatchOptions {
        clock,
        ..DispatchOptions::default()
    };
    controller::start(f.host.clone(), opts).expect("the controller starts")
}

/// Ends `started` as a `kill -9` just after `f`'s trail was written
/// would: the trail takes nothing more, the runs in the air stop without
/// a word on it. The controller's task ends well (nothing was in the air)
/// or on the halted trail.
pub fn crash(rt: &tokio::runtime::Runtime, f: &Fixture, started: Started) {
    f.host.audit.sync().expect("trail synced");
    f.host.audit.halt();
    let (controller, task) = started;
    controller.stop(true);
    match rt.block_on(task).expect("the controller's task") {
        Ok(())
        | Err(controller::DispatchError::Audit(_) | controller::DispatchError::Landing(_)) => {}
        Err(other) => panic!("the crashed controller ended with {other}"),
    }
}

/// A host brought up over `data` and `audit_dir` the way `runway serve`
/// and `runway run` bring theirs up (the library's one start path:
/// recovery and the journal folded in one pass, plugins recorded). Every
/// start past a record leaves a journal snapshot, so every restart in the
/// tests goes through one.
pub fn open_host(
    data: &Path,
    audit_dir: &Path,
    plugins: Arc<Plugins>,
    workers: usize,
) -> Arc<Host> {
    open_host_on(data, audit_dir, plugins, workers, &StoreConfig::Embedded)
}

/// [`open_host`] with the datasets in `store`.
pub fn open_host_on(
    data: &Path,
    audit_dir: &Path,
    plugins: Arc<Plugins>,
    workers: usize,
    store: &StoreConfig,
) -> Arc<Host> {
    let runtime = &self::plugins().0;
    let setup = || HostSetup {
        snapshot_after: 0,
        ..setup(runtime, data, audit_dir, plugins.clone(), workers)
    };
    open_when_free_on(setup, store).host
}

/// Brings a host up through the start path, waiting (up to 30 s) while
/// its data root or audit folder is still claimed by a host this process
/// has just let go of, whose last threads may still be finishing.
pub fn open_when_free(setup: impl Fn() -> HostSetup) -> Opened {
    open_when_free_on(setup, &StoreConfig::Embedded)
}

/// [`open_when_free`] with the datasets in `store`.
pub fn open_when_free_on(setup: impl Fn() -> HostSetup, store: &StoreConfig) -> Opened {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match controller::open_on(setup(), store) {
            Ok(opened) => return opened,
            Err(
                StartError::Store(StoreError::Locked { .. })
                | StartError::Audit(AuditError::Locked(_)),
            ) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("the host comes up: {e}"),
        }
    }
}

/// A host as production starts it, with plugins compiled by `runtime` (the
/// benches' own).
pub fn open_host_with(
    runtime: &Arc<Runtime>,
    data: &Path,
    audit_dir: &Path,
    plugins: Arc<Plugins>,
    workers: usize,
) -> Arc<Host> {
    open_when_free(|| setup(runtime, data, audit_dir, plugins.clone(), workers)).host
}

/// How the tests and benches start a host.
pub fn setup(
    runtime: &Arc<Runtime>,
    data: &Path,
    audit_dir: &Path,
    plugins: Arc<Plugins>,
    workers: usize,
) -> HostSetup {
    HostSetup {
        data: data.to_path_buf(),
        audit: audit_dir.to_path_buf(),
        audit_options: AuditOptions::new("runway-test"),
        runtime: runtime.clone(),
        plugins: PluginSource::Loaded(plugins),
        workers,
        snapshot_after: controller::SNAPSHOT_AFTER,
    }
}

/// A test's filing of `plan`.
pub fn filing(plan: Plan) -> Filing {
    Filing {
        plan,
        by: "test".into(),
        source: "test".into(),
        digest: [0; 32],
        once: false,
    }
}

/// Copies a bundled plugin into a plugins folder: grants first, then the
/// component (so a watching host never sees the component alone).
pub fn drop_plugin(name: &str, dir: &Path) {
    let wasm = bundled_path(name);
    std::fs::copy(
        wasm.with_extension("toml"),
        dir.join(format!("{name}.toml")),
    )
    .expect("copy grants");
    std::fs::copy(&wasm, dir.join(format!("{name}.wasm"))).expect("copy component");
}

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"512k"`) at `path` (created). `None`,
    /// with the reason printed, when this process may not mount (not root).
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs at {}", path.display());
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Is this process root (may mount)?
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    })
}

/// The output of a runway as JSON.
pub fn output(report: &PlanReport, id: &str) -> serde_json::Value {
    let r = report.get(id).unwrap_or_else(|| panic!("no runway {id}"));
    let out = r
        .output
        .as_ref()
        .unwrap_or_else(|| panic!("runway {id} has no output: {:?}", r.state));
    serde_json::from_slice(out).expect("output is JSON")
}

/// Position (index in the trail) of the first record matching `pred`.
pub fn position(records: &[Record], pred: impl Fn(&Record) -> bool) -> usize {
    records.iter().position(pred).expect("a record matches")
}

/// Is this record `event` of `runway`?
pub fn is(record: &Record, runway: &str, event: fn(&Event) -> bool) -> bool {
    record.entry.runway == runway && event(&record.entry.event)
}

/// The newest audit segment file in an audit folder.
pub fn last_segment(audit_dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(audit_dir)
        .expect("read audit dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

/// (start, end) of every frame in a segment file's bytes.
pub fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    use runway_audit::frame::{FRAME_HEAD_LEN, SegmentHeader};
    let mut cursor = std::io::Cursor::new(bytes);
    SegmentHeader::read_from(&mut cursor).expect("segment header");
    let mut at = cursor.position() as usize;
    let mut out = Vec::new();
    while at + FRAME_HEAD_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push((at, at + FRAME_HEAD_LEN + len));
        at += FRAME_HEAD_LEN + len;
    }
    out
}

/// Waits (at most a minute) until `check` holds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Implements the `orchestration` and `events` interfaces for a bench's
/// bare host state `$state`: every call refused (`denied`) or ignored, as
/// a run without a controller is answered.
#[macro_export]
macro_rules! deny_orchestration {
    ($state:ty) => {
        impl runway_host::sandbox::hostcalls::runway::agent::orchestration::Host for $state {
            async fn delegate(
                &mut self,
                _: runway_host::sandbox::hostcalls::Delegation,
            ) -> wasmtime::Result<
                Result<
                    runway_host::sandbox::hostcalls::Child,
                    runway_host::sandbox::hostcalls::GuestError,
                >,
            > {
                Ok(Err(runway_host::sandbox::hostcalls::GuestError::Denied(
                    "bare host".into(),
                )))
            }
            async fn join(
                &mut self,
                _: Vec<runway_host::sandbox::hostcalls::Child>,
                _: runway_host::sandbox::hostcalls::JoinMode,
                _: Option<u64>,
            ) -> wasmtime::Result<
                Result<
                    Vec<runway_host::sandbox::hostcalls::ChildResult>,
                    runway_host::sandbox::hostcalls::GuestError,
                >,
            > {
                Ok(Err(runway_host::sandbox::hostcalls::GuestError::Denied(
                    "bare host".into(),
                )))
            }
            async fn handoff(
                &mut self,
                _: runway_host::sandbox::hostcalls::HandoffRequest,
            ) -> wasmtime::Result<Result<(), runway_host::sandbox::hostcalls::GuestError>> {
                Ok(Err(runway_host::sandbox::hostcalls::GuestError::Denied(
                    "bare host".into(),
                )))
            }
            async fn cancel(
                &mut self,
                _: Vec<runway_host::sandbox::hostcalls::Child>,
            ) -> wasmtime::Result<Result<(), runway_host::sandbox::hostcalls::GuestError>> {
                Ok(Err(runway_host::sandbox::hostcalls::GuestError::Denied(
                    "bare host".into(),
                )))
            }
            fn progress(&mut self, _: u64, _: u64, _: String) -> wasmtime::Result<()> {
                Ok(())
            }
        }
        impl runway_host::sandbox::hostcalls::runway::agent::events::Host for $state {
            fn publish(
                &mut self,
                _: String,
                _: Vec<u8>,
            ) -> wasmtime::Result<Result<(), runway_host::sandbox::hostcalls::GuestError>> {
                Ok(Err(runway_host::sandbox::hostcalls::GuestError::Denied(
                    "bare host".into(),
                )))
            }
        }
    };
}

/// A self-signed server certificate for 127.0.0.1 and localhost
/// (openssl, P-256, two days), its certificate written as `cert` and its
/// key as `key` in `dir`, named `cn` (distinct names make a wrong root
/// fail as an unknown issuer).
pub fn self_signed(dir: &Path, cert: &str, key: &str, cn: &str) {
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-keyout", key, "-out", cert])
        .args(["-subj", &format!("/CN={cn}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // A server's own certificate, not a CA's (rustls refuses a CA
        // certificate presented as a server's).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}
