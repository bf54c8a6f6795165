//! Fixtures for Runway's integration tests: a host over fresh temporary
//! folders, loaded with every plugin built from `plugins/` (compiled once per
//! test process), and helpers to run plans and read back data and audit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use runway_audit::{AuditLog, AuditOptions, Event, Record};
use runway_host::{
    DatasetStore, DispatchOptions, Host, Plan, PlanReport, Plugins, Runtime, bundled,
};

/// The runtime and plugins, compiled once for the whole test binary.
pub fn plugins() -> &'static (Runtime, Arc<Plugins>) {
    static LOADED: OnceLock<(Runtime, Arc<Plugins>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let runtime = Runtime::new().expect("runtime");
        let plugins =
            Plugins::load_dir(&runtime, Path::new(bundled::PLUGIN_DIR)).expect("plugins load");
        (runtime, Arc::new(plugins))
    })
}

/// A host over its own temporary data root and audit folder.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub audit_dir: PathBuf,
    pub host: Arc<Host>,
}

impl Fixture {
    /// A host with two workers.
    pub fn new() -> Fixture {
        Fixture::with_workers(2)
    }

    pub fn with_workers(workers: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let audit_dir = dir.path().join("audit");
        let (runtime, plugins) = plugins();
        let store = DatasetStore::open(&data).expect("store");
        let audit = AuditLog::open(&audit_dir, AuditOptions::new("runway-test")).expect("audit");
        let host = Arc::new(Host::new(
            runtime,
            plugins.clone(),
            Arc::new(store),
            audit,
            workers,
        ));
        Fixture {
            _dir: dir,
            data,
            audit_dir,
            host,
        }
    }

    /// Parses a plan against the loaded plugins.
    pub fn plan(&self, text: &str) -> Plan {
        Plan::parse(text, &self.host.plugins.names()).expect("plan is valid")
    }

    /// Runs one plan to its end.
    pub fn run(&self, text: &str) -> PlanReport {
        self.run_many(&[text]).pop().expect("one report")
    }

    /// Runs several plans at once on this host, sharing its tower.
    pub fn run_many(&self, texts: &[&str]) -> Vec<PlanReport> {
        let plans: Vec<Plan> = texts.iter().map(|t| self.plan(t)).collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        rt.block_on(async {
            let tasks: Vec<_> = plans
                .into_iter()
                .map(|p| {
                    tokio::spawn(runway_host::run_plan(
                        self.host.clone(),
                        p,
                        DispatchOptions::default(),
                    ))
                })
                .collect();
            let mut reports = Vec::new();
            for t in tasks {
                reports.push(t.await.expect("dispatcher task").expect("plan ran"));
            }
            reports
        })
    }

    /// Every audit record so far, read back and verified from disk.
    pub fn records(&self) -> Vec<Record> {
        self.host.audit.sync().expect("audit sync");
        runway_audit::read_records(&self.audit_dir).expect("audit verifies")
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
