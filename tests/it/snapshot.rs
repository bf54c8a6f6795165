//! The journal's snapshot (`controller/snapshot.rs`): a start reads only
//! the trail after it and folds exactly what a whole read folds; a
//! snapshot that is damaged, of another trail, a link or a FIFO is set
//! aside and the trail read whole — never trusted, never a hang.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_audit::AuditOptions;
use runway_host::controller::{self, RunwayReport};
use runway_host::controller::{HostSetup, Opened, PluginSource};
use runway_host::{DispatchOptions, Host, Plan};
use runway_tests::{filing, plugins};

const SNAPSHOT: &str = "journal.snapshot";

struct Roots {
    _dir: tempfile::TempDir,
    data: PathBuf,
    audit: PathBuf,
}

impl Roots {
    fn new() -> Roots {
        let dir = tempfile::tempdir().unwrap();
        Roots {
            data: dir.path().join("data"),
            audit: dir.path().join("audit"),
            _dir: dir,
        }
    }

    /// A start; `snapshot` says whether it may leave a snapshot behind.
    fn open(&self, snapshot: bool) -> Opened {
        self.open_with(snapshot, 0)
    }

    /// A start keeping the trail's last `live` records in memory, as
    /// `runway serve` does.
    fn open_with(&self, snapshot: bool, live: usize) -> Opened {
        let (runtime, plugins) = plugins();
        runway_tests::open_when_free(|| HostSetup {
            data: self.data.clone(),
            audit: self.audit.clone(),
            audit_options: AuditOptions {
                tail: live,
                ..AuditOptions::new("runway-test")
            },
            runtime: runtime.clone(),
            plugins: PluginSource::Loaded(plugins.clone()),
            workers: 2,
            snapshot_after: if snapshot { 1 } else { u64::MAX },
        })
    }

    fn records(&self) -> u64 {
        runway_audit::read_records(&self.audit).unwrap().len() as u64
    }

    fn snapshot(&self) -> PathBuf {
        self.data.join(SNAPSHOT)
    }
}

/// LOAD records a start appends, one per plugin.
fn loads() -> u64 {
    plugins().1.iter().count() as u64
}

fn plan(host: &Host, text: &str) -> Plan {
    Plan::parse(text, &*host.plugins()).expect("plan is valid")
}

/// Runs a chain, a failure and a gated runway (left waiting), then lists.
fn work(host: &Arc<Host>) {
    let done = plan(
        host,
        r#"
        [[runway]]
        id = "first"
        agent = "probe"
        action = "ok"
        datasets = { test_snapshot = "exclusive" }
        [[runway]]
        id = "second"
        agent = "probe"
        action = "ok"
        after = ["first"]
        datasets = { test_snapshot = "shared" }
        [[runway]]
        id = "broken"
        agent = "probe"
        action = "fail"
        "#,
    );
    let gated = plan(
        host,
        r#"
        [[runway]]
        id = "gated"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        "#,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
        controller::file_and_wait(&c, filing(done)).await.unwrap();
        c.file(filing(gated)).await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
    });
}

/// Every runway as a restarted controller shows it.
fn list(host: &Arc<Host>) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(host.clone(), DispatchOptions::default()).unwrap();
        let mut all = Vec::new();
        for r in c.list().await.unwrap() {
            let r: RunwayReport = c.show(&r.id).await.unwrap();
            all.push(format!("{r:?}"));
        }
        c.stop(false);
        task.await.unwrap().unwrap();
        all
    })
}

/// Waits for the snapshot a start writes on its own thread.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no snapshot at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A trail with work on it and a snapshot of all but its last start's
/// records; the runways as a whole read shows them.
fn snapshotted() -> (Roots, Vec<String>) {
    let roots = Roots::new();
    work(&roots.open(false).host);
    let opened = roots.open(true);
    opened.host.audit.sync().unwrap();
    assert_eq!(
        opened.tail,
        roots.records() - loads(),
        "this start's LOADs came after"
    );
    wait_for(&roots.snapshot());
    let shown = list(&opened.host);
    (roots, shown)
}

#[test]
fn a_start_reads_only_the_trail_after_the_snapshot_and_folds_the_same() {
    let (roots, whole) = snapshotted();
    let written = roots.records();
    let opened = roots.open(false);
    // Only the start before's LOAD records came after the snapshot.
    assert_eq!(opened.tail, loads());
    assert!(written > 20 + loads(), "{written} records");
    assert_eq!(
        list(&opened.host),
        whole,
        "the snapshot folds as the trail does"
    );
    drop(opened);
    // And without it, the trail read whole gives the same again.
    read_whole_shows(&roots, &whole);
}

/// Without the snapshot, a start reads the whole trail and shows `whole`.
fn read_whole_shows(roots: &Roots, whole: &[String]) {
    std::fs::remove_file(roots.snapshot()).unwrap();
    let opened = roots.open(false);
    opened.host.audit.sync().unwrap();
    assert_eq!(opened.tail, roots.records() - loads());
    assert_eq!(list(&opened.host), whole);
}

/// A start with `bad` in the snapshot's place reads the trail whole and
/// shows what the whole trail shows.
fn set_aside(bad: impl FnOnce(&Roots)) {
    let (roots, whole) = snapshotted();
    bad(&roots);
    let written = roots.records();
    let opened = roots.open(false);
    assert_eq!(opened.tail, written, "the whole trail was read");
    assert_eq!(list(&opened.host), whole);
}

#[test]
fn a_damaged_snapshot_is_set_aside() {
    set_aside(|roots| {
        let mut bytes = std::fs::read(roots.snapshot()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(roots.snapshot(), bytes).unwrap();
    });
    set_aside(|roots| {
        std::fs::write(roots.snapshot(), b"RWJSNP02 and not much else").unwrap();
    });
    set_aside(|roots| std::fs::write(roots.snapshot(), b"").unwrap());
}

#[test]
fn a_snapshot_of_another_trail_is_set_aside() {
    // Another trail with the same work on it: same runways, other records.
    let (other, _) = snapshotted();
    set_aside(|roots| {
        std::fs::copy(other.snapshot(), roots.snapshot()).unwrap();
    });
    // A snapshot past the trail's end (the trail was cut back).
    let (other, _) = snapshotted();
    work(&other.open(false).host);
    let before = std::fs::metadata(other.snapshot()).unwrap().len();
    drop(other.open(true));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(other.snapshot()).unwrap().len() == before {
        assert!(Instant::now() < deadline, "no new snapshot");
        std::thread::sleep(Duration::from_millis(10));
    }
    set_aside(|roots| {
        std::fs::copy(other.snapshot(), roots.snapshot()).unwrap();
    });
}

#[test]
fn a_link_or_a_fifo_in_the_snapshots_place_is_not_followed() {
    set_aside(|roots| {
        let elsewhere = roots.data.join("elsewhere");
        std::fs::rename(roots.snapshot(), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, roots.snapshot()).unwrap();
    });
    set_aside(|roots| {
        std::fs::remove_file(roots.snapshot()).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(roots.snapshot())
            .status()
            .unwrap();
        assert!(made.success());
    });
}

#[test]
fn a_running_host_keeps_its_snapshot_and_leaves_it_at_the_trails_end() {
    let roots = Roots::new();
    let opened = roots.open_with(true, 4096);
    work(&opened.host);
    // Written while the host runs…
    wait_for(&roots.snapshot());
    let whole = list(&opened.host);
    // …and last as it goes, up to its last durable record.
    opened.host.audit.sync().unwrap();
    drop(opened);
    let opened = roots.open(false);
    assert_eq!(opened.tail, 0, "nothing after the last snapshot");
    assert_eq!(list(&opened.host), whole);
    drop(opened);
    read_whole_shows(&roots, &whole);
}
