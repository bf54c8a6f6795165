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

#[test]
fn exported_agents_are_a_plugins_folder_the_nightly_runs_from() {
    use crate::cli::runway;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("agents");
    std::fs::create_dir(&out).unwrap();
    // A link planted where a component goes is replaced, not written through.
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "do not touch\n").unwrap();
    std::os::unix::fs::symlink(&secret, out.join("import-applications.wasm")).unwrap();

    let exported = runway(dir.path(), &["plugins", "export", "agents"]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    for name in [
        "import-applications",
        "compliance-check",
        "grant-calculator",
        "review-planner",
        "review-shard",
        "review-scorer",
        "review-summary",
        "review-appeals",
    ] {
        for ext in ["wasm", "toml"] {
            let file = format!("{name}.{ext}");
            assert!(exported.stdout.contains(&file), "{}", exported.stdout);
            let meta = std::fs::symlink_metadata(out.join(&file)).unwrap();
            assert!(meta.file_type().is_file(), "{file}");
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "do not touch\n");
    for (name, plan) in runway_host::bundled::PLANS {
        assert_eq!(std::fs::read_to_string(out.join(name)).unwrap(), plan);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The folder is one the loader takes as it is: the nightly runs from it.
    let ran = runway(
        dir.path(),
        &[
            "run",
            "agents/nightly.toml",
            "--plugins",
            "agents",
            "--json",
        ],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["runways"].as_array().unwrap().len(), 3);
}
