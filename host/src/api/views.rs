//! What Runway says of a runway, as JSON: the same shape in the API's
//! lists (no history), `show` and `wait`, in the inbox's `done/` reports
//! and in `runway run --json`; and of the lock board and the plugins, as
//! the API and the status page show them.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::controller::tower::DatasetLocks;
use crate::controller::{PlanReport, RunwayReport};
use crate::plugin::loader::Plugins;

/// A plan's end: every runway, and how many did not succeed.
pub fn plan(report: &PlanReport) -> Value {
    let runways: Vec<Value> = report.runways.iter().map(runway).collect();
    json!({ "runways": runways, "failed": report.failed() })
}

/// One runway as JSON; `history` only when the report has one.
pub fn runway(r: &RunwayReport) -> Value {
    let m = &r.manifest;
    let mut value = json!({
        "id": r.id,
        "name": r.name,
        "agent": r.agent,
        "state": r.state.name(),
        "reason": r.reason,
        "attempts": r.attempts,
        "approved_by": r.approved_by,
        "note": r.note,
        "output_digest": r.output_digest.map(|d| runway_audit::hex::encode(&d)),
        "locks": r.locks.iter().map(|l| json!({
            "dataset": l.dataset, "mode": l.mode.name(), "token": l.token
        })).collect::<Vec<_>>(),
        "manifest": {
            "action": m.action,
            "datasets": m.datasets.iter().map(|(d, mode)| (d.clone(), json!(mode.name())))
                .collect::<serde_json::Map<_, _>>(),
            "after": m.after,
            "priority": m.priority,
            "window_secs": m.window.map(|w| w.as_secs_f64()),
            "approval": m.approval,
            "attempts": m.retry.attempts,
        },
    });
    if !r.history.is_empty() {
        value["history"] = r
            .history
            .iter()
            .map(|t| {
                json!({
                    "at": t.at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    "state": t.state.name(),
                    "reason": t.reason,
                    "by": t.by,
                })
            })
            .collect();
    }
    value["output"] = json!(r.output.as_ref().map(|o| String::from_utf8_lossy(o)));
    value
}

/// The lock board: per dataset, its holders (with the fencing token each
/// holds, from `runways`) and its waiters in line order.
pub fn locks(board: &[DatasetLocks], runways: &[RunwayReport]) -> Value {
    let tokens: HashMap<(&str, &str), u64> = runways
        .iter()
        .flat_map(|r| {
            r.locks
                .iter()
                .map(move |l| ((r.id.as_str(), l.dataset.as_str()), l.token))
        })
        .collect();
    let datasets: Vec<Value> = board
        .iter()
        .map(|d| {
            let holders: Vec<Value> = d
                .holders
                .iter()
                .map(|h| json!({ "runway": h, "token": tokens.get(&(h.as_str(), d.dataset.as_str())) }))
                .collect();
            let waiting: Vec<Value> = d
                .waiting
                .iter()
                .enumerate()
                .map(|(i, (runway, mode))| {
                    json!({ "runway": runway, "mode": mode.name(), "position": i + 1 })
                })
                .collect();
            json!({
                "dataset": d.dataset,
                "held": d.held.map(|m| m.name()),
                "holders": holders,
                "waiting": waiting,
            })
        })
        .collect();
    json!({ "datasets": datasets })
}

/// The plugins loaded: digest, who signed them, their grants.
pub fn plugins(plugins: &Plugins) -> Value {
    let list: Vec<Value> = plugins
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "digest": runway_audit::hex::encode(&p.digest),
                "signed_by": p.signed_by,
                "datasets": p.grants.datasets.iter()
                    .map(|(d, m)| (d.clone(), json!(m.name())))
                    .collect::<serde_json::Map<_, _>>(),
                "limits": p.grants.limits,
            })
        })
        .collect();
    json!({ "plugins": list })
}
