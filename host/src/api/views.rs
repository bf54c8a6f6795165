//! What Runway says of a runway, as JSON: the same shape in the API's
//! lists (no history), `show` and `wait`, in the inbox's `done/` reports
//! and in `runway run --json`; and of the lock board and the plugins, as
//! the API and the status page show them.
//!
//! Each shape is a type, so the OpenAPI description (`/api/openapi.json`)
//! is derived from what is actually sent.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::controller::tower::DatasetLocks;
use crate::controller::{PlanReport, RunwayReport};
use crate::plugin::loader::Plugins;

/// A runway: where it stands or how it ended.
#[derive(Serialize, ToSchema)]
pub struct RunwayView {
    /// Its runway id, unique on this server.
    pub id: String,
    /// Its id inside the plan that filed it.
    pub name: String,
    pub agent: String,
    /// QUEUED, WAITING_DEPS, WAITING_APPROVAL, WAITING_TIME, WAITING_LOCKS,
    /// CLEARED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, REJECTED
    /// or EXPIRED.
    pub state: String,
    /// Why it waits, or why it failed.
    pub reason: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    pub approved_by: Option<String>,
    /// The approval's (or cancellation's) note.
    pub note: String,
    /// SHA-256 (hex) of the agent's output, once it succeeded.
    pub output_digest: Option<String>,
    /// The locks of its current or last attempt, with their fencing
    /// tokens: held now only while `locks_held`.
    pub locks: Vec<LockView>,
    /// Whether it holds `locks` now (CLEARED or RUNNING); once it has
    /// landed, or gone back to wait for a retry, they were released.
    pub locks_held: bool,
    pub manifest: ManifestView,
    /// Its transitions, oldest first (left out of lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<TransitionView>>,
    /// The agent's output, as text.
    pub output: Option<String>,
}

/// A lock a runway holds, with its fencing token.
#[derive(Serialize, ToSchema)]
pub struct LockView {
    pub dataset: String,
    /// `shared` or `exclusive`.
    pub mode: String,
    pub token: u64,
}

/// What a runway was filed with.
#[derive(Serialize, ToSchema)]
pub struct ManifestView {
    pub action: String,
    /// Dataset → `shared` or `exclusive`.
    pub datasets: BTreeMap<String, String>,
    pub after: Vec<String>,
    pub priority: i64,
    pub window_secs: Option<f64>,
    /// The role whose approval it waits for, if any.
    pub approval: Option<String>,
    /// Attempts allowed.
    pub attempts: u32,
}

/// One move of a runway.
#[derive(Serialize, ToSchema)]
pub struct TransitionView {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub state: String,
    pub reason: String,
    /// Who made the move (approve, reject, cancel), when a person did.
    pub by: Option<String>,
}

/// Runways.
#[derive(Serialize, ToSchema)]
pub struct RunwayList {
    pub runways: Vec<RunwayView>,
}

/// The runways a filing made, once it is durable.
#[derive(Serialize, ToSchema)]
pub struct FiledList {
    pub runways: Vec<FiledRunway>,
}

#[derive(Serialize, ToSchema)]
pub struct FiledRunway {
    /// Its id inside the plan.
    pub name: String,
    /// Its runway id.
    pub id: String,
}

/// A wait's answer: the runways once all ended, or not yet.
#[derive(Serialize, ToSchema)]
pub struct WaitView {
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runways: Option<Vec<RunwayView>>,
}

/// A move made (approve, reject, cancel, pause, resume).
#[derive(Serialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

/// A plan's end: every runway, and how many did not succeed.
#[derive(Serialize, ToSchema)]
pub struct PlanView {
    pub runways: Vec<RunwayView>,
    pub failed: usize,
}

/// The lock board.
#[derive(Serialize, ToSchema)]
pub struct LockBoard {
    pub datasets: Vec<DatasetView>,
}

/// One dataset's locks: who holds it, who waits in which order.
#[derive(Serialize, ToSchema)]
pub struct DatasetView {
    pub dataset: String,
    /// `shared`, `exclusive`, or null when free.
    pub held: Option<String>,
    pub holders: Vec<HolderView>,
    pub waiting: Vec<WaiterView>,
}

#[derive(Serialize, ToSchema)]
pub struct HolderView {
    pub runway: String,
    pub token: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct WaiterView {
    pub runway: String,
    pub mode: String,
    /// 1 for the first in line.
    pub position: usize,
}

/// The plugins loaded.
#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
}

#[derive(Serialize, ToSchema)]
pub struct PluginView {
    pub name: String,
    /// SHA-256 (hex) of the component.
    pub digest: String,
    /// The trusted author who signed it, if one did.
    pub signed_by: Option<String>,
    /// Dataset → `shared` or `exclusive`: what its grants allow.
    pub datasets: BTreeMap<String, String>,
    /// Per-run limits: memory_mib, fuel, window_secs, ...
    #[schema(value_type = Object)]
    pub limits: Value,
}

/// A view as JSON.
pub fn json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A plan's end as JSON.
pub fn plan(report: &PlanReport) -> Value {
    json(PlanView {
        runways: report.runways.iter().map(runway_view).collect(),
        failed: report.failed(),
    })
}

/// One runway as JSON; `history` only when the report has one.
pub fn runway(r: &RunwayReport) -> Value {
    json(runway_view(r))
}

/// One runway's view.
pub fn runway_view(r: &RunwayReport) -> RunwayView {
    let m = &r.manifest;
    let history = (!r.history.is_empty()).then(|| {
        r.history
            .iter()
            .map(|t| TransitionView {
                at: t.at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                state: t.state.name().to_string(),
                reason: t.reason.clone(),
                by: t.by.clone(),
            })
            .collect()
    });
    RunwayView {
        id: r.id.clone(),
        name: r.name.clone(),
        agent: r.agent.clone(),
        state: r.state.name().to_string(),
        reason: r.reason.clone(),
        attempts: r.attempts,
        approved_by: r.approved_by.clone(),
        note: r.note.clone(),
        output_digest: r.output_digest.map(|d| runway_audit::hex::encode(&d)),
        locks: r
            .locks
            .iter()
            .map(|l| LockView {
                dataset: l.dataset.clone(),
                mode: l.mode.name().to_string(),
                token: l.token,
            })
            .collect(),
        locks_held: matches!(
            r.state,
            runway_audit::State::Cleared | runway_audit::State::Running
        ),
        manifest: ManifestView {
            action: m.action.clone(),
            datasets: m
                .datasets
                .iter()
                .map(|(d, mode)| (d.clone(), mode.name().to_string()))
                .collect(),
            after: m.after.clone(),
            priority: m.priority,
            window_secs: m.window.map(|w| w.as_secs_f64()),
            approval: m.approval.clone(),
            attempts: m.retry.attempts,
        },
        history,
        output: r
            .output
            .as_ref()
            .map(|o| String::from_utf8_lossy(o).into_owned()),
    }
}

/// The lock board: per dataset, its holders (with the fencing token each
/// holds, from `runways`) and its waiters in line order.
pub fn locks(board: &[DatasetLocks], runways: &[RunwayReport]) -> LockBoard {
    let tokens: HashMap<(&str, &str), u64> = runways
        .iter()
        .flat_map(|r| {
            r.locks
                .iter()
                .map(move |l| ((r.id.as_str(), l.dataset.as_str()), l.token))
        })
        .collect();
    let datasets = board
        .iter()
        .map(|d| DatasetView {
            dataset: d.dataset.clone(),
            held: d.held.map(|m| m.name().to_string()),
            holders: d
                .holders
                .iter()
                .map(|h| HolderView {
                    runway: h.clone(),
                    token: tokens.get(&(h.as_str(), d.dataset.as_str())).copied(),
                })
                .collect(),
            waiting: d
                .waiting
                .iter()
                .enumerate()
                .map(|(i, (runway, mode))| WaiterView {
                    runway: runway.clone(),
                    mode: mode.name().to_string(),
                    position: i + 1,
                })
                .collect(),
        })
        .collect();
    LockBoard { datasets }
}

/// The plugins loaded: digest, who signed them, their grants.
pub fn plugins(plugins: &Plugins) -> PluginList {
    let plugins = plugins
        .iter()
        .map(|p| PluginView {
            name: p.name.clone(),
            digest: runway_audit::hex::encode(&p.digest),
            signed_by: p.signed_by.clone(),
            datasets: p
                .grants
                .datasets
                .iter()
                .map(|(d, m)| (d.clone(), m.name().to_string()))
                .collect(),
            limits: json(p.grants.limits),
        })
        .collect();
    PluginList { plugins }
}
