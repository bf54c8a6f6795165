//! `serve`: the plugins folder is followed between runs (load, replace,
//! unload, refuse — all audited) and plan files dropped in the inbox are
//! flown and reported, or rejected with the reason.

use runway_audit::{AuditOptions, Event};
use runway_host::DispatchOptions;
use runway_host::controller::{self, HostSetup, PluginSource};
use runway_host::plugin::PluginFolder;
use runway_tests::{bundled_path, drop_plugin, eventually, plugins};

fn plan(agent: &str, action: &str) -> String {
    format!(
        "[[runway]]\nid = \"only\"\nagent = \"{agent}\"\naction = \"{action}\"\ndatasets = {{ test_served = \"exclusive\" }}\n"
    )
}

#[test]
fn serve_follows_the_plugins_folder_and_flies_dropped_plans() {
    let dir = tempfile::tempdir().unwrap();
    let (folder_dir, inbox, audit_dir) = (
        dir.path().join("plugins"),
        dir.path().join("inbox"),
        dir.path().join("audit"),
    );
    std::fs::create_dir_all(&folder_dir).unwrap();
    std::fs::create_dir_all(&inbox).unwrap();
    drop_plugin("probe", &folder_dir);

    let (runtime, _) = plugins();
    let setup = HostSetup {
        data: dir.path().join("data"),
        audit: audit_dir.clone(),
        audit_options: AuditOptions::new("runway-test"),
        runtime: runtime.clone(),
        plugins: PluginSource::Folder(PluginFolder::new(&folder_dir, runtime.clone())),
        workers: 2,
        snapshot_after: 0,
    };
    let opened = controller::open(setup).unwrap();
    let (host, folder) = (opened.host, opened.folder.unwrap());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn({
        let host = host.clone();
        let inbox = inbox.clone();
        async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let (controller, task) =
                runway_host::controller::start(host.clone(), DispatchOptions::default()).unwrap();
            let served = runway_host::api::serve_inbox(
                host,
                controller,
                folder,
                &inbox,
                Default::default(),
                shutdown,
            )
            .await;
            task.await.unwrap().unwrap();
            served
        }
    });

    // A plan dropped in the inbox flies and is reported.
    std::fs::write(inbox.join("first.toml"), plan("probe", "ok")).unwrap();
    let report = inbox.join("done/first.json");
    eventually("first report", || report.exists());
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["runways"][0]["state"], "SUCCEEDED", "{json}");
    assert!(inbox.join("done/first.toml").exists());

    // A plugin dropped into the folder is loaded and can fly.
    drop_plugin("import-applications", &folder_dir);
    eventually("import-applications loaded", || {
        host.plugins().get("import-applications").is_some()
    });
    std::fs::write(
        inbox.join("second.toml"),
        plan("import-applications", "import"),
    )
    .unwrap();
    eventually("second report", || inbox.join("done/second.json").exists());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inbox.join("done/second.json")).unwrap()).unwrap();
    assert_eq!(json["runways"][0]["state"], "SUCCEEDED", "{json}");

    // A broken component is refused; the catalog keeps what works.
    std::fs::write(folder_dir.join("broken.toml"), "[datasets]\n").unwrap();
    std::fs::write(folder_dir.join("broken.wasm"), b"\0asm not really").unwrap();
    // Replacing a plugin's component with another build loads the new digest.
    let old = host.plugins().get("probe").unwrap().digest;
    std::fs::copy(
        bundled_path("compliance-check"),
        folder_dir.join("probe.wasm"),
    )
    .unwrap();
    eventually("probe replaced", || {
        host.plugins().get("probe").is_some_and(|p| p.digest != old)
    });
    assert!(host.plugins().get("broken").is_none());

    // A removed plugin is unloaded; a plan naming it is rejected, with the reason.
    std::fs::remove_file(folder_dir.join("probe.wasm")).unwrap();
    eventually("probe unloaded", || host.plugins().get("probe").is_none());
    std::fs::write(inbox.join("third.toml"), plan("probe", "ok")).unwrap();
    let error = inbox.join("rejected/third.error.txt");
    eventually("third rejected", || error.exists());
    assert!(
        std::fs::read_to_string(&error)
            .unwrap()
            .contains("unknown agent \"probe\"")
    );
    // The same name dropped again is kept apart, not overwritten.
    std::fs::write(inbox.join("third.toml"), plan("probe", "ok")).unwrap();
    eventually("third again rejected", || {
        inbox.join("rejected/third-2.error.txt").exists()
    });

    stop.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
    host.audit.sync().unwrap();
    let records = runway_audit::read_records(&audit_dir).unwrap();
    let about = |agent: &str, pred: fn(&Event) -> bool| {
        records
            .iter()
            .filter(|r| r.entry.agent == agent && pred(&r.entry.event))
            .count()
    };
    assert_eq!(
        about("probe", |e| matches!(e, Event::PluginLoaded)),
        2,
        "first load and the replacement"
    );
    assert_eq!(about("probe", |e| matches!(e, Event::PluginUnloaded)), 1);
    assert_eq!(
        about("import-applications", |e| matches!(e, Event::PluginLoaded)),
        1
    );
    assert!(about("broken", |e| matches!(e, Event::Rejected { .. })) >= 1);
    let rejected_plans = records
        .iter()
        .filter(|r| matches!(&r.entry.event, Event::Rejected { reason } if reason.starts_with("plan third")))
        .count();
    assert_eq!(rejected_plans, 2);
}
