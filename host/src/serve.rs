//! `serve`: a long-running host for operators.
//!
//! It watches two folders. The plugins folder is rescanned on every change
//! ([`crate::watch`]): new and changed plugins are loaded, removed ones
//! unloaded, broken ones refused — each change audited — and runs already in
//! flight keep the version they started with. The inbox takes plan files:
//! each `NAME.toml` dropped there is moved to `flying/`, filed and flown on
//! the shared tower (so plans dropped together contend for locks fairly),
//! then moved to `done/` beside its report `NAME.json`; a plan that cannot
//! be filed goes to `rejected/` beside `NAME.error.txt`, and the refusal is
//! audited. Nothing dropped in is ever lost or run twice.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runway_audit::{AuditError, Entry, Event};
use thiserror::Error;
use tokio::task::JoinSet;

use crate::controller::{DispatchOptions, Host, PlanReport, RunwayState, run_plan};
use crate::plan::Plan;
use crate::watch::{PluginChange, PluginFolder, watch};

/// How often the folders are looked at (changes are batched this long).
pub const POLL: Duration = Duration::from_millis(200);
/// A full rescan even without events, in case the OS dropped one.
const RESCAN_EVERY: u32 = 25;

/// Why serving stopped.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot watch {path}: {source}")]
    Watch { path: String, source: notify::Error },
    #[error("inbox {path}: {source}")]
    Inbox {
        path: String,
        source: std::io::Error,
    },
    #[error("plugins folder: {0}")]
    Plugins(#[from] crate::loader::LoadError),
    #[error("audit trail failed: {0}")]
    Audit(#[from] AuditError),
}

/// Serves until `shutdown` resolves, then lets plans in flight land.
pub async fn serve(
    host: Arc<Host>,
    mut folder: PluginFolder,
    inbox: &Path,
    opts: DispatchOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let inbox_err = |source| ServeError::Inbox {
        path: inbox.display().to_string(),
        source,
    };
    for sub in ["flying", "done", "rejected"] {
        std::fs::create_dir_all(inbox.join(sub)).map_err(inbox_err)?;
    }
    let watch_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| ServeError::Watch { path, source }
    };
    let (_plugin_watch, plugin_events) = watch(folder.dir()).map_err(watch_err(folder.dir()))?;
    let (_inbox_watch, inbox_events) = watch(inbox).map_err(watch_err(inbox))?;
    reload(&host, &mut folder)?;
    let mut flights: JoinSet<()> = JoinSet::new();
    // Plan files that could not be moved, so they are not retried forever.
    let mut stuck = HashSet::new();
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(POLL);
    let mut round = 0u32;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        round = round.wrapping_add(1);
        let full = round.is_multiple_of(RESCAN_EVERY);
        if drain(&plugin_events) || full {
            reload(&host, &mut folder)?;
        }
        if drain(&inbox_events) || full || round == 1 {
            for plan in new_plans(inbox, &mut stuck).map_err(inbox_err)? {
                if file(&host, inbox, &plan, &opts, &mut flights)? {
                    // Moved away: the same name dropped again is a new plan.
                    stuck.remove(&plan);
                }
            }
        }
        while flights.try_join_next().is_some() {}
    }
    while flights.join_next().await.is_some() {}
    Ok(())
}

/// True when at least one event arrived (and forgets them all).
fn drain(events: &std::sync::mpsc::Receiver<()>) -> bool {
    let mut any = false;
    while events.try_recv().is_ok() {
        any = true;
    }
    any
}

/// Rescans the plugins folder, swaps the catalog, audits every change.
pub fn reload(host: &Host, folder: &mut PluginFolder) -> Result<Vec<PluginChange>, ServeError> {
    let (next, changes) = folder.rescan(&host.plugins())?;
    host.set_plugins(Arc::new(next));
    for change in &changes {
        let (agent, plugin, event) = match change {
            PluginChange::Loaded { name, digest } => (name, Some(*digest), Event::PluginLoaded),
            PluginChange::Unloaded { name, digest } => (name, Some(*digest), Event::PluginUnloaded),
            PluginChange::Refused { name, reason } => (
                name,
                None,
                Event::Rejected {
                    reason: reason.clone(),
                },
            ),
        };
        tracing::info!(plugin = %agent, ?change, "plugins folder changed");
        host.audit.append(Entry {
            runway: String::new(),
            agent: agent.clone(),
            plugin,
            dataset: None,
            event,
        })?;
    }
    Ok(changes)
}

/// Plan files in the inbox not tried yet, oldest name first.
fn new_plans(inbox: &Path, seen: &mut HashSet<PathBuf>) -> std::io::Result<Vec<PathBuf>> {
    let mut plans = Vec::new();
    for entry in std::fs::read_dir(inbox)? {
        let path = entry?.path();
        if path.is_file()
            && path.extension().is_some_and(|x| x == "toml")
            && seen.insert(path.clone())
        {
            plans.push(path);
        }
    }
    plans.sort();
    Ok(plans)
}

/// Moves a dropped plan to `flying/`, files it and flies it in the
/// background; a plan that cannot be filed goes to `rejected/`. False when
/// the file could not be taken (nothing was filed).
fn file(
    host: &Arc<Host>,
    inbox: &Path,
    dropped: &Path,
    opts: &DispatchOptions,
    flights: &mut JoinSet<()>,
) -> Result<bool, ServeError> {
    let name = dropped
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plan")
        .to_string();
    let stem = free_stem(inbox, &name);
    let flying = inbox.join("flying").join(format!("{stem}.toml"));
    if let Err(e) = std::fs::rename(dropped, &flying) {
        // Gone already (or not ours to move): nothing was filed.
        tracing::warn!(plan = %dropped.display(), "cannot take plan: {e}");
        return Ok(false);
    }
    let plan = match Plan::load(&flying, &*host.plugins()) {
        Ok(plan) => plan,
        Err(e) => {
            let reason = format!("plan {name}: {e}");
            host.audit.append(Entry {
                runway: String::new(),
                agent: String::new(),
                plugin: None,
                dataset: None,
                event: Event::Rejected {
                    reason: reason.clone(),
                },
            })?;
            let rejected = inbox.join("rejected");
            let _ = std::fs::write(
                rejected.join(format!("{stem}.error.txt")),
                format!("{reason}\n"),
            );
            let _ = std::fs::rename(&flying, rejected.join(format!("{stem}.toml")));
            return Ok(true);
        }
    };
    let host = host.clone();
    let opts = opts.clone();
    let done = inbox.join("done");
    flights.spawn(async move {
        let result = run_plan(host, plan, opts).await;
        let report = match &result {
            Ok(report) => report_json(report),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        let _ = std::fs::write(done.join(format!("{stem}.json")), text);
        let _ = std::fs::rename(&flying, done.join(format!("{stem}.toml")));
    });
    Ok(true)
}

/// A name for a dropped plan not yet used in `flying/`, `done/` or
/// `rejected/`: `name`, then `name-2`, `name-3`, ...
fn free_stem(inbox: &Path, name: &str) -> String {
    let taken = |stem: &str| {
        ["flying", "done", "rejected"]
            .iter()
            .any(|d| inbox.join(d).join(format!("{stem}.toml")).exists())
    };
    let mut stem = name.to_string();
    let mut n = 2;
    while taken(&stem) {
        stem = format!("{name}-{n}");
        n += 1;
    }
    stem
}

/// A plan's end as JSON: one entry per runway.
pub fn report_json(report: &PlanReport) -> serde_json::Value {
    let runways: Vec<_> = report
        .runways
        .iter()
        .map(|r| {
            let (state, reason) = match &r.state {
                RunwayState::Failed(why) => ("FAILED", Some(why.as_str())),
                other => (other.name(), None),
            };
            serde_json::json!({
                "id": r.id,
                "agent": r.agent,
                "state": state,
                "reason": reason,
                "output": r.output.as_ref().map(|o| String::from_utf8_lossy(o).into_owned()),
                "locks": r.locks.iter().map(|l| serde_json::json!({
                    "dataset": l.dataset, "mode": l.mode.name(), "token": l.token
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "runways": runways, "failed": report.failed() })
}
