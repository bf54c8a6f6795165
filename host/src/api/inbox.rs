//! `serve`: a long-running host for operators.
//!
//! It watches two folders. The plugins folder is rescanned on every change
//! ([`crate::plugin::watch`]): new and changed plugins are loaded, removed ones
//! unloaded, broken ones refused — each change audited — and runs already in
//! flight keep the version they started with. The inbox takes plan files:
//! each `NAME.toml` dropped there is moved to `flying/`, filed with the
//! controller, moved to `filed/` beside `NAME.json` (its runway ids) once
//! the filing is durable, and to `done/` beside its report `NAME.json` once
//! every runway of it has ended; a plan that cannot be filed goes to
//! `rejected/` beside `NAME.error.txt`, and the refusal is audited.
//!
//! Nothing dropped in is ever lost or run twice: the inbox files each plan
//! *once* (by its place and digest, see [`Filing::once`]), and at start the
//! plans a stop or a crash left in `flying/` and `filed/` are taken again —
//! filed if their filing never became durable, otherwise only waited for.
//!
//! The loop itself never reads a file: plugin rescans run on a blocking
//! thread (one at a time, applied when done), and each plan is read and
//! parsed in its own flight within [`PLAN_READ_TIMEOUT`], so a slow or stuck
//! file never stops the next plan from being taken. Change events are
//! debounced ([`DEBOUNCE`]) and both folders are looked at every
//! [`FULL_RESCAN`] anyway.
//!
//! When the audit writer stops (an I/O failure), nothing more is taken:
//! plans in the inbox stay there, plans taken stay in `flying/` or
//! `filed/`, none goes to `done/` with an error, and `serve` returns
//! [`ServeError::Audit`].

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use runway_audit::AuditError;
use runway_audit::render::escape;
use thiserror::Error;
use tokio::task::{JoinHandle, JoinSet};

use crate::controller::plan::{Plan, cap_reason, rejection};
use crate::controller::{ControlError, Controller, Filing, Host, PlanReport};
use crate::files::ReadCaps;
use crate::plugin::loader::{LoadError, Plugins};
use crate::plugin::watch::{PluginChange, PluginFolder, watch};

/// How often the folders are looked at.
pub const POLL: Duration = Duration::from_millis(200);
/// Quiet after a folder's last change event before it is read: copying a
/// file raises many events, and the folder is read once, after them.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// Both folders are looked at this often even without events, in case the
/// OS dropped one. Plugins whose files did not change are not read again.
pub const FULL_RESCAN: Duration = Duration::from_secs(5);
/// Longest reading and parsing a dropped plan may take before it is
/// rejected; the serving loop never waits for it. Parsing a plan at the
/// 64 MiB cap takes seconds on a loaded 2-core machine, so this is generous:
/// it is there for reads that never end, not for slow parses.
pub const PLAN_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    Plugins(#[from] LoadError),
    #[error("a plugins rescan failed: {0}")]
    Rescan(tokio::task::JoinError),
    /// Plans taken already stay in `flying/`, the rest in the inbox.
    #[error("no more plans are taken: {0}")]
    Audit(#[from] AuditError),
}

/// The inbox's folders for plans taken.
const TAKEN: [&str; 4] = ["flying", "filed", "done", "rejected"];

/// Serves until `shutdown` resolves or the audit writer stops, then stops
/// `controller` (runs in the air land) and waits for the inbox's flights
/// to settle. Every file is read within `caps`.
pub async fn serve(
    host: Arc<Host>,
    controller: Controller,
    folder: PluginFolder,
    inbox: &Path,
    caps: ReadCaps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let inbox_err = |source| ServeError::Inbox {
        path: inbox.display().to_string(),
        source,
    };
    for sub in TAKEN {
        std::fs::create_dir_all(inbox.join(sub)).map_err(inbox_err)?;
    }
    let watch_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| ServeError::Watch { path, source }
    };
    let (_plugin_watch, plugin_events) = watch(folder.dir()).map_err(watch_err(folder.dir()))?;
    let (_inbox_watch, inbox_events) = watch(inbox).map_err(watch_err(inbox))?;
    // The start path scanned the folder; changes since come as events, and
    // a full rescan every FULL_RESCAN catches any the OS dropped.
    let mut rescans = Rescans::new(folder);
    let mut flights: JoinSet<()> = JoinSet::new();
    // Plans a stop or a crash left half way are taken again.
    for (folder, stem) in left_over(inbox).map_err(inbox_err)? {
        let flight = Flight {
            host: host.clone(),
            controller: controller.clone(),
            inbox: inbox.to_path_buf(),
            name: stem.clone(),
            stem,
        };
        flights.spawn(flight.fly(folder, caps));
    }
    // Plan files that could not be moved, so they are not retried forever.
    let mut stuck = HashSet::new();
    let (mut plugins_quiet, mut inbox_quiet) = (Quiet::default(), Quiet::default());
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(POLL);
    let mut last_full = Instant::now();
    let mut first = true;
    let mut rescan_wanted = false;
    let ended = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = tick.tick() => {}
        }
        // A stopped writer stops the taking of work, before anything is taken.
        if let Err(e) = host.audit.health() {
            break Err(ServeError::Audit(e));
        }
        let full = last_full.elapsed() >= FULL_RESCAN;
        if full {
            last_full = Instant::now();
        }
        if let Err(e) = rescans.poll(&host, Duration::ZERO).await {
            break Err(e);
        }
        // A change seen while a rescan runs is rescanned once it is done.
        rescan_wanted |= plugins_quiet.due(&plugin_events) || full;
        if rescan_wanted && rescans.start(&host) {
            rescan_wanted = false;
        }
        if inbox_quiet.due(&inbox_events) || full || first {
            match new_plans(inbox, &mut stuck) {
                Ok(plans) => {
                    for plan in plans {
                        if take(&host, &controller, inbox, &plan, &caps, &mut flights) {
                            // Moved away: the same name dropped again is a new plan.
                            stuck.remove(&plan);
                        }
                    }
                }
                Err(e) => break Err(inbox_err(e)),
            }
        }
        first = false;
        while flights.try_join_next().is_some() {}
    };
    // Runs in the air land; runways still waiting wait again after a
    // restart, and their plans stay where they are.
    controller.stop(false);
    while flights.join_next().await.is_some() {}
    ended
}

/// Plans in `flying/` and `filed/`: (folder, stem), oldest name first.
fn left_over(inbox: &Path) -> std::io::Result<Vec<(&'static str, String)>> {
    let mut found = Vec::new();
    for folder in ["flying", "filed"] {
        for entry in std::fs::read_dir(inbox.join(folder))? {
            let path = entry?.path();
            let stem = path.file_stem().and_then(|s| s.to_str());
            if let (true, Some(stem)) = (path.extension().is_some_and(|x| x == "toml"), stem) {
                found.push((folder, stem.to_string()));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// Events seen, and whether their folder has been quiet long enough since.
#[derive(Default)]
struct Quiet {
    last_event: Option<Instant>,
}

impl Quiet {
    /// True once events came and then none for [`DEBOUNCE`].
    fn due(&mut self, events: &Receiver<()>) -> bool {
        if events.try_iter().count() > 0 {
            self.last_event = Some(Instant::now());
        }
        match self.last_event {
            Some(at) if at.elapsed() >= DEBOUNCE => {
                self.last_event = None;
                true
            }
            _ => false,
        }
    }
}

type RescanResult = Result<(Plugins, Vec<PluginChange>), LoadError>;

/// Rescans of the plugins folder, run off the serving loop: at most one at
/// a time; its result is applied once it is done, however long it takes.
struct Rescans {
    /// `None` while a rescan has it.
    folder: Option<PluginFolder>,
    running: Option<JoinHandle<(PluginFolder, RescanResult)>>,
}

impl Rescans {
    fn new(folder: PluginFolder) -> Rescans {
        Rescans {
            folder: Some(folder),
            running: None,
        }
    }

    /// Starts a rescan on a blocking thread; false when one is running.
    fn start(&mut self, host: &Host) -> bool {
        let Some(mut folder) = self.folder.take() else {
            return false;
        };
        let current = host.plugins();
        self.running = Some(tokio::task::spawn_blocking(move || {
            let result = folder.rescan(&current);
            (folder, result)
        }));
        true
    }

    /// Waits up to `wait` for the running rescan; once it is done, swaps the
    /// catalog and audits every change.
    async fn poll(&mut self, host: &Host, wait: Duration) -> Result<(), ServeError> {
        let Some(running) = &mut self.running else {
            return Ok(());
        };
        let Ok(joined) = tokio::time::timeout(wait, running).await else {
            return Ok(());
        };
        self.running = None;
        let (folder, result) = joined.map_err(ServeError::Rescan)?;
        self.folder = Some(folder);
        let (next, changes) = result?;
        host.set_plugins(Arc::new(next));
        for change in &changes {
            audit_change(host, change)?;
        }
        Ok(())
    }
}

/// The audit record of one change in the plugins folder.
fn audit_change(host: &Host, change: &PluginChange) -> Result<(), AuditError> {
    let entry = change.entry();
    tracing::info!(plugin = %escape(&entry.agent), "plugins folder changed");
    host.audit.append(entry).map(drop)
}

/// Plan files in the inbox not tried yet, oldest name first: every entry
/// named `*.toml`, whatever it is (reading refuses all but regular files).
fn new_plans(inbox: &Path, seen: &mut HashSet<PathBuf>) -> std::io::Result<Vec<PathBuf>> {
    let mut plans = Vec::new();
    for entry in std::fs::read_dir(inbox)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "toml") && seen.insert(path.clone()) {
            plans.push(path);
        }
    }
    plans.sort();
    Ok(plans)
}

/// Moves a dropped plan to `flying/` and hands it to a flight (which reads,
/// files and flies it). False when the file could not be taken.
fn take(
    host: &Arc<Host>,
    controller: &Controller,
    inbox: &Path,
    dropped: &Path,
    caps: &ReadCaps,
    flights: &mut JoinSet<()>,
) -> bool {
    let name = dropped
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plan")
        .to_string();
    let stem = free_stem(inbox, &name);
    let flying = inbox.join("flying").join(format!("{stem}.toml"));
    if let Err(e) = std::fs::rename(dropped, &flying) {
        // Gone already (or not ours to move): nothing was filed.
        tracing::warn!(plan = %escape(&dropped.display().to_string()), "cannot take plan: {e}");
        return false;
    }
    let flight = Flight {
        host: host.clone(),
        controller: controller.clone(),
        inbox: inbox.to_path_buf(),
        name,
        stem,
    };
    flights.spawn(flight.fly("flying", *caps));
    true
}

/// One plan taken from the inbox, now in `flying/STEM.toml` (or, taken
/// again at start, in `filed/`).
struct Flight {
    host: Arc<Host>,
    controller: Controller,
    inbox: PathBuf,
    /// The name it was dropped under.
    name: String,
    stem: String,
}

impl Flight {
    fn path(&self, folder: &str, ext: &str) -> PathBuf {
        self.inbox.join(folder).join(format!("{}.{ext}", self.stem))
    }

    /// Reads the plan in `folder` off the serving loop (within
    /// [`PLAN_READ_TIMEOUT`]) and files it once; moves it to `filed/` with
    /// its runway ids, waits for them all to end, then moves it to `done/`
    /// with its report — or to `rejected/` when it cannot be filed. If the
    /// controller stops first, the plan stays where it is.
    async fn fly(self, folder: &'static str, caps: ReadCaps) {
        let taken = self.path(folder, "toml");
        let catalog = self.host.plugins();
        let read = {
            let taken = taken.clone();
            tokio::task::spawn_blocking(move || Plan::read(&taken, &*catalog, &caps))
        };
        let (plan, digest) = match tokio::time::timeout(PLAN_READ_TIMEOUT, read).await {
            Ok(Ok(Ok(read))) => read,
            Ok(Ok(Err(e))) => return self.reject(folder, &e.to_string()),
            Ok(Err(e)) => return self.reject(folder, &format!("host fault reading it: {e}")),
            Err(_) => {
                let secs = PLAN_READ_TIMEOUT.as_secs();
                return self.reject(folder, &format!("reading it took longer than {secs} s"));
            }
        };
        let filing = Filing {
            plan,
            by: "inbox".into(),
            source: format!("inbox {}.toml", self.stem),
            digest,
            once: true,
        };
        let filed = match self.controller.file(filing).await {
            Ok(filed) => filed,
            Err(e @ (ControlError::UnknownAfter { .. } | ControlError::TooLate { .. })) => {
                return self.reject(folder, &e.to_string());
            }
            // Stopping: it is taken again at the next start.
            Err(_) => return,
        };
        let ids: Vec<String> = filed.iter().map(|f| f.id.clone()).collect();
        if folder == "flying" {
            let text = serde_json::json!({ "runways": ids }).to_string();
            let _ = std::fs::write(self.path("filed", "json"), text);
            let _ = std::fs::rename(&taken, self.path("filed", "toml"));
        }
        let Ok(runways) = self.controller.wait(ids).await else {
            return;
        };
        let report = super::views::plan(&PlanReport { runways });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        let _ = std::fs::write(self.path("done", "json"), text);
        let _ = std::fs::rename(self.path("filed", "toml"), self.path("done", "toml"));
        let _ = std::fs::remove_file(self.path("filed", "json"));
    }

    /// Audits the refusal, then moves the plan to `rejected/` beside its
    /// reason (escaped). Without an audit record it stays where it is.
    fn reject(&self, folder: &str, why: &str) {
        let reason = cap_reason(&format!("plan {}: {why}", self.name));
        if self.host.audit.append(rejection(&reason)).is_err() {
            return;
        }
        let text = format!("{}\n", escape(&reason));
        let _ = std::fs::write(self.path("rejected", "error.txt"), text);
        let _ = std::fs::rename(self.path(folder, "toml"), self.path("rejected", "toml"));
    }
}

/// A name for a dropped plan not yet used in `flying/`, `filed/`, `done/`
/// or `rejected/`: `name`, then `name-2`, `name-3`, ...
fn free_stem(inbox: &Path, name: &str) -> String {
    let taken = |stem: &str| {
        TAKEN
            .iter()
            .any(|d| std::fs::symlink_metadata(inbox.join(d).join(format!("{stem}.toml"))).is_ok())
    };
    let mut stem = name.to_string();
    let mut n = 2;
    while taken(&stem) {
        stem = format!("{name}-{n}");
        n += 1;
    }
    stem
}
