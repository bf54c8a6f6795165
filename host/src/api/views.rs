//! What the doors say, as JSON: of a runway, the same shape in the API's
//! lists (no history), `show` and `wait`, in MCP's answers, in the
//! inbox's `done/` reports and in `runway run --json`; of the lock board,
//! the plugins and the server, as the API and the status page show them;
//! and the bodies of the requests the CLI sends.
//!
//! Each shape is a type, declared once here: the server sends it, the
//! OpenAPI description (`/api/openapi.json`) is derived from it, and the
//! CLI writes its requests and reads the answers back with it — a field
//! renamed here is renamed for all three, or does not compile.

use std::collections::{BTreeMap, HashMap, HashSet};

use runway_audit::State;
use runway_audit::render::escape;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use crate::controller::tower::DatasetLocks;
use crate::controller::tree;
use crate::controller::{AttemptReport, Budget, FilingReport, PlanReport, RunwayReport, SpentView};
use crate::limits::Limits;
use crate::plugin::loader::Plugins;

/// Which runways a list shows: declared once for the API's query
/// (`GET /api/runways?state=…`), the MCP tool's arguments and the CLI's
/// flags (`runway list --state …`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, IntoParams, clap::Args)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunwayFilter {
    /// Only runways in this state (QUEUED, WAITING_APPROVAL, RUNNING,
    /// SUCCEEDED, FAILED, ...).
    #[arg(long)]
    #[param(schema_with = state_names, required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Only runways of this agent.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Only runways with this label, as `key=value` (e.g. `team=aid`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Only the delegation tree below this runway: itself and every runway
    /// delegated below it (its children, theirs, ...).
    #[arg(long, value_name = "ROOT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

impl RunwayFilter {
    /// Refused when it names no state there is.
    pub fn check(&self) -> Result<(), String> {
        match &self.state {
            Some(state) if !State::ALL.iter().any(|s| s.name() == state) => {
                let known: Vec<&str> = State::ALL.iter().map(|s| s.name()).collect();
                Err(format!(
                    "no state {:?} (one of {})",
                    escape(state),
                    known.join(", ")
                ))
            }
            _ if self.label.as_ref().is_some_and(|l| !l.contains('=')) => {
                Err("a label is asked for as key=value (e.g. team=aid)".to_string())
            }
            _ => Ok(()),
        }
    }

    /// Whether `r` is shown, but for `tree` (see [`RunwayFilter::tree_members`]).
    pub fn matches(&self, r: &RunwayReport) -> bool {
        let labelled = |l: &str| {
            let (key, value) = l.split_once('=').unwrap_or((l, ""));
            r.manifest.labels.get(key).is_some_and(|v| v == value)
        };
        self.state.as_deref().is_none_or(|s| r.state.name() == s)
            && self.agent.as_deref().is_none_or(|a| r.agent == a)
            && self.label.as_deref().is_none_or(labelled)
    }

    /// The ids of the runways in the tree the filter asks for, among
    /// `runways` (in filing order); `None` when it asks for none.
    pub fn tree_members(&self, runways: &[RunwayReport]) -> Option<HashSet<String>> {
        let root = self.tree.as_deref()?;
        let members = tree::subtree(root, runways.iter().map(tree::link)).unwrap_or_default();
        Some(members.into_iter().map(|m| m.id).collect())
    }
}

/// A runway state's name: one of the states.
fn state_names() -> ObjectBuilder {
    let names = State::ALL.iter().map(|s| s.name());
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only runways in this state."))
        .enum_values(Some(names))
}

/// A runway: where it stands or how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// The runway that delegated it; null when a plan filed it.
    #[serde(default)]
    pub parent: Option<String>,
    /// The first runway of its delegation tree; null when a plan filed it
    /// (it is a root itself).
    #[serde(default)]
    pub root: Option<String>,
    /// Its level in its delegation tree: 0 for a runway a plan filed, 1
    /// for a child of one.
    #[serde(default)]
    pub depth: u32,
    /// The runway that handed off to it: it took over the rest of that
    /// runway's work (in its place in its tree).
    #[serde(default)]
    pub handoff_from: Option<String>,
    /// Its transitions, oldest first (left out of lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<TransitionView>>,
    /// The runways it delegated, in filing order (left out of lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<ChildView>>,
    /// How far its tree has come: what its run last reported, plus one
    /// unit per child, done when the child ended (null in lists, and when
    /// it reported nothing and delegated nothing).
    #[serde(default)]
    pub progress: Option<ProgressView>,
    /// The agent's output, as text.
    pub output: Option<String>,
    /// Its condition (a CEL expression): read once its dependencies
    /// ended; false skipped it.
    #[serde(default)]
    pub when: Option<String>,
    /// The runways whose outputs flow into its input (`from`), by id.
    #[serde(default)]
    pub takes_from: Vec<String>,
    /// What its condition gave, once read (null before, or without one).
    #[serde(default)]
    pub decided: Option<bool>,
    /// When it was filed (RFC 3339, UTC, milliseconds).
    #[serde(default)]
    pub filed_at: Option<String>,
    /// When it first ran (moved to RUNNING); null until it has.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it ended for good; null until it has.
    #[serde(default)]
    pub ended_at: Option<String>,
    /// The input handed to its agent, as JSON text: its manifest's, or,
    /// once the outputs it takes were put in, the input as resolved (in
    /// `show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The log lines kept of its last attempt that landed in this server
    /// process (as in `runs`); in `show` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<String>>,
    /// Its filing's budget (its plan's `[budget]`); null when it has none.
    #[serde(default)]
    pub budget: Option<BudgetView>,
    /// What its filing has spent so far: its plan's runways, the runways
    /// delegated below them and those taking over from them.
    #[serde(default)]
    pub spent: SpentView,
    /// What its own attempts cost.
    #[serde(default)]
    pub cost: SpentView,
    /// Each attempt, oldest first: when it flew, how it ended, and its log
    /// lines and output as this server process kept them (in `show`
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<AttemptView>>,
}

/// One attempt of a runway (each move to RUNNING starts one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// Which attempt: 1 for the first.
    pub attempt: u32,
    /// When it took off (RFC 3339, UTC, milliseconds).
    pub started_at: String,
    /// When it landed; null while it flies.
    pub ended_at: Option<String>,
    /// How it ended: SUCCEEDED, FAILED, TIMED_OUT or CANCELLED; null
    /// while it flies.
    pub state: Option<String>,
    /// Why it ended so (empty for a success).
    pub reason: String,
    /// Whether this server process kept its log lines and output: false
    /// for an attempt flown before it started (the trail keeps no log
    /// lines), one still flying, or a middle one of many (the first and
    /// the latest 7 are kept).
    pub kept: bool,
    /// Its first log lines (at most 500, 256 KiB in all); empty when not
    /// `kept`.
    pub log: Vec<String>,
    /// Lines it logged that `log` leaves out (past those caps, or dropped
    /// by its run beyond its grant's `max_log_kib`).
    pub log_left_out: usize,
    /// SHA-256 (hex) of the input it was handed (the runway's `input`),
    /// when it was kept.
    pub input_digest: Option<String>,
    /// SHA-256 (hex) of its output, when it returned one and it was kept.
    pub output_digest: Option<String>,
    /// Its output's first 8 KiB, as text (ending in `…` when cut).
    pub output: Option<String>,
    /// Its output's whole length, in bytes.
    pub output_bytes: usize,
}

impl From<&AttemptReport> for AttemptView {
    fn from(a: &AttemptReport) -> AttemptView {
        let kept = a.kept.as_deref();
        AttemptView {
            attempt: a.attempt,
            started_at: stamp(a.started),
            ended_at: a.ended.map(stamp),
            state: a.state.map(|s| s.name().to_string()),
            reason: a.reason.clone(),
            kept: kept.is_some(),
            log: kept.map(|k| k.log.clone()).unwrap_or_default(),
            log_left_out: kept.map_or(0, |k| k.log_left_out),
            input_digest: kept.map(|k| runway_audit::hex::encode(&k.input_digest)),
            output_digest: kept
                .and_then(|k| k.output_digest)
                .map(|d| runway_audit::hex::encode(&d)),
            output: kept.and_then(|k| k.output.clone()),
            output_bytes: kept.map_or(0, |k| k.output_bytes),
        }
    }
}

/// A plan's budget: each figure, or null when it is not limited.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetView {
    pub fuel: Option<u64>,
    /// Run time, summed over the runs.
    pub wall_ms: Option<u64>,
    /// Run attempts.
    pub runs: Option<u32>,
}

impl From<Budget> for BudgetView {
    fn from(b: Budget) -> BudgetView {
        BudgetView {
            fuel: b.fuel,
            wall_ms: b.wall.map(|w| w.as_millis() as u64),
            runs: b.runs,
        }
    }
}

/// Plans filed, oldest first: which runways were filed together, by whom,
/// from where (the trail's PLAN records).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FilingList {
    pub filings: Vec<FilingView>,
}

/// One plan filed (a PLAN record).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FilingView {
    /// The PLAN record's sequence number: the filing's id.
    pub seq: u64,
    /// When it was filed (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// Who filed it.
    pub by: String,
    /// Where from: `api`, `inbox NAME.toml`, `runway run`, `refile of ID`.
    pub source: String,
    /// SHA-256 (hex) of the plan as received.
    pub digest: String,
    /// Its runway ids, in the plan's order.
    pub runways: Vec<String>,
}

impl From<FilingReport> for FilingView {
    fn from(f: FilingReport) -> FilingView {
        FilingView {
            seq: f.seq,
            at: runway_audit::render::clock(f.time_ns),
            by: f.by,
            source: f.source,
            digest: runway_audit::hex::encode(&f.digest),
            runways: f.runways,
        }
    }
}

/// A runway a runway delegated, as its parent's `show` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChildView {
    pub id: String,
    pub agent: String,
    /// Its state now (as a runway's `state`).
    pub state: String,
    /// Why it waits, or why it failed or was cancelled.
    pub reason: Option<String>,
}

/// A tree's progress: `done` of `total` units, and the run's last message
/// (the agent's words).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// A lock a runway holds, with its fencing token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LockView {
    pub dataset: String,
    /// `shared` or `exclusive`.
    pub mode: String,
    pub token: u64,
}

/// What a runway was filed with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// The operator's labels.
    pub labels: BTreeMap<String, String>,
}

/// One move of a runway.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransitionView {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub state: String,
    pub reason: String,
    /// Who made the move (approve, reject, cancel), when a person did.
    pub by: Option<String>,
}

/// Runways.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunwayList {
    pub runways: Vec<RunwayView>,
}

/// The runways a filing made, once it is durable.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FiledList {
    pub runways: Vec<FiledRunway>,
    /// The triggers it filed, by id (a plan may hold triggers alone).
    #[serde(default)]
    pub triggers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FiledRunway {
    /// Its id inside the plan.
    pub name: String,
    /// Its runway id.
    pub id: String,
}

/// The runways and triggers a filing made, as the API answers them.
pub fn filed(filed: Vec<crate::controller::Filed>, triggers: Vec<String>) -> FiledList {
    let runways = filed
        .into_iter()
        .map(|f| FiledRunway {
            name: f.name,
            id: f.id,
        })
        .collect();
    FiledList { runways, triggers }
}

/// A wait's answer: the runways once all ended, or not yet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WaitView {
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runways: Option<Vec<RunwayView>>,
}

/// A move made (approve, reject, cancel, pause, resume).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

/// A plan's end: every runway, and how many did not succeed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    pub runways: Vec<RunwayView>,
    pub failed: usize,
}

/// The lock board.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LockBoard {
    pub datasets: Vec<DatasetView>,
}

/// One dataset's locks: who holds it, who waits in which order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    pub dataset: String,
    /// `shared`, `exclusive`, or null when free.
    pub held: Option<String>,
    pub holders: Vec<HolderView>,
    pub waiting: Vec<WaiterView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HolderView {
    pub runway: String,
    pub token: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WaiterView {
    pub runway: String,
    pub mode: String,
    /// 1 for the first in line.
    pub position: usize,
}

/// The plugins loaded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    pub limits: Limits,
}

/// Who is asking and how the server runs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerView {
    pub name: String,
    pub roles: Vec<String>,
    pub rights: Vec<String>,
    /// Served beyond loopback without TLS.
    pub insecure: bool,
    pub paused: bool,
    pub version: String,
}

/// Audit records, oldest first, each as `runway audit show --json` prints
/// it with its `kind` (`transition` or `record`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Timeline {
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
}

/// A verification that held: the report (records, checkpoints, signed
/// size, root, unsigned tail), as `runway audit verify --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verified {
    pub ok: bool,
    #[schema(value_type = Object)]
    pub report: Value,
}

/// The body of a cancel, pause or resume: who (the caller; named again
/// only to be sure).
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Who {
    /// The caller's name, when given (it must be the token's).
    #[serde(default)]
    pub by: Option<String>,
}

/// The body of an approval.
#[derive(Debug, Clone, Serialize, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The caller's name, when given (it must be the token's).
    #[serde(default)]
    pub by: Option<String>,
    /// A note for the record.
    #[serde(default)]
    pub note: String,
}

/// The body of a rejection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// The caller's name, when given (it must be the token's).
    #[serde(default)]
    pub by: Option<String>,
    /// Why, for the record and the runways that depended on it.
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

/// The body of a wait.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// The runway ids to wait for.
    pub runways: Vec<String>,
    /// Seconds to wait at most (60 when left out, 60 at most).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 60)]
    pub timeout_secs: Option<u64>,
}

/// A plan's end as JSON (the inbox's `done/` reports, `runway run
/// --json`).
pub fn plan(report: &PlanReport) -> Value {
    let view = PlanView {
        runways: report.runways.iter().map(runway).collect(),
        failed: report.failed(),
    };
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// One runway as `show` gives it: its view with `children`, each as
/// `reports` (the children's own reports, in any order) say it stands.
pub fn shown(r: &RunwayReport, reports: &[RunwayReport]) -> RunwayView {
    let by_id: HashMap<&str, &RunwayReport> = reports.iter().map(|c| (c.id.as_str(), c)).collect();
    let children = r
        .children
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|c| ChildView {
            id: c.id.clone(),
            agent: c.agent.clone(),
            state: c.state.name().to_string(),
            reason: c.reason.clone(),
        })
        .collect();
    let log = r.runs.iter().rev().find_map(|a| a.kept.as_ref());
    RunwayView {
        children: Some(children),
        input: Some(
            String::from_utf8_lossy(r.resolved.as_ref().unwrap_or(&r.manifest.input)).into_owned(),
        ),
        log: log.map(|k| k.log.clone()),
        runs: Some(r.runs.iter().map(AttemptView::from).collect()),
        ..runway(r)
    }
}

/// One runway's view; `history` only when the report has one, no
/// `children` (see [`shown`]).
pub fn runway(r: &RunwayReport) -> RunwayView {
    let m = &r.manifest;
    let history = (!r.history.is_empty()).then(|| {
        r.history
            .iter()
            .map(|t| TransitionView {
                at: stamp(t.at),
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
            labels: m.labels.clone(),
        },
        parent: m.lineage.as_ref().map(|l| l.parent.clone()),
        root: m.lineage.as_ref().map(|l| l.root.clone()),
        depth: m.lineage.as_ref().map_or(0, |l| l.depth),
        handoff_from: m.handoff_from.clone(),
        history,
        children: None,
        progress: r.progress.as_ref().map(|p| ProgressView {
            done: p.done,
            total: p.total,
            message: p.message.clone(),
        }),
        output: r
            .output
            .as_ref()
            .map(|o| String::from_utf8_lossy(o).into_owned()),
        when: m.when.as_ref().map(|w| w.text().to_string()),
        takes_from: m.takes_from(),
        decided: r.decided,
        filed_at: r.times.filed.map(stamp),
        started_at: r.times.started.map(stamp),
        ended_at: r.times.ended.map(stamp),
        input: None,
        log: None,
        budget: r.budget.map(BudgetView::from),
        spent: r.spent.into(),
        cost: r.cost.into(),
        runs: None,
    }
}

/// RFC 3339, UTC, milliseconds: how a view says a time.
fn stamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
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
            limits: p.grants.limits,
        })
        .collect();
    PluginList { plugins }
}
