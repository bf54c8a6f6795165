//! Plugins across restarts and reloads: compiled components come from the
//! disk cache after a restart, and a run in flight keeps the plugin version
//! it started with when the catalog changes under it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runway_audit::Event;
use runway_host::{Grants, Plugins, Runtime, State, bundled};
use runway_tests::Fixture;

fn probe() -> (&'static str, Vec<u8>, Grants) {
    let (name, path) = bundled::PLUGIN_PATHS
        .iter()
        .find(|(n, _)| *n == "probe")
        .unwrap();
    let grants =
        Grants::load(&Path::new(path).with_extension("toml"), &Default::default()).unwrap();
    (name, std::fs::read(path).unwrap(), grants)
}

fn cached(dir: &Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .map(|p| {
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, modified)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_restart_loads_compiled_components_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes, grants) = probe();
    {
        let runtime = Runtime::with_cache(dir.path()).unwrap();
        let mut plugins = Plugins::default();
        plugins
            .insert(&runtime, name, &bytes, grants.clone())
            .unwrap();
    }
    let first = cached(dir.path());
    assert_eq!(first.len(), 1, "one compiled component per digest");
    let digest = runway_audit::hex::encode(&runway_audit::sha256(&bytes));
    assert!(
        first[0]
            .0
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&digest)
    );

    // A new runtime (a restart) finds it and does not compile again: a
    // recompile would rewrite the cache file.
    std::thread::sleep(Duration::from_millis(20));
    let runtime = Runtime::with_cache(dir.path()).unwrap();
    let mut plugins = Plugins::default();
    plugins.insert(&runtime, name, &bytes, grants).unwrap();
    assert_eq!(cached(dir.path()), first);
    assert!(plugins.get(name).is_some());
}

#[test]
fn a_run_in_flight_keeps_the_plugin_it_started_with() {
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"hostile_*\" = \"exclusive\"\n[limits]\nfuel = 1_000_000_000_000_000\nwindow_secs = 1\n",
    )]);
    let started_with = f.host.plugins().get("hostile").unwrap().digest;
    let host = f.host.clone();
    // While the run spins, the catalog drops hostile altogether.
    let swapper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        host.set_plugins(Arc::new(Plugins::default()));
    });
    let report = f.run(
        r#"
        [[runway]]
        id = "inflight"
        agent = "hostile"
        action = "spin-calls"
        datasets = { hostile_inflight = "exclusive" }
        "#,
    );
    swapper.join().unwrap();
    assert!(
        f.host.plugins().get("hostile").is_none(),
        "the catalog did change"
    );
    // The run was stopped by its own window, not by the unload.
    let r = report.get("inflight").unwrap();
    assert!(
        matches!((r.state, &r.reason), (State::TimedOut, Some(why)) if why.starts_with("timed out")),
        "{:?} {:?}",
        r.state,
        r.reason
    );
    let calls: Vec<_> = f
        .records()
        .into_iter()
        .filter(|r| r.entry.runway == "inflight" && matches!(r.entry.event, Event::Call { .. }))
        .collect();
    assert!(!calls.is_empty());
    assert!(calls.iter().all(|r| r.entry.plugin == Some(started_with)));
}
