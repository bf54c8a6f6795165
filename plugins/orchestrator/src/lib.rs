//! `orchestrator`: a test agent that delegates to other agents as its input
//! says, joins them, and reports what every call answered.
//!
//! Input (all optional):
//! - `children`: delegations, each `{"agent", "action" (default "ok"),
//!   "input" (any JSON, default none), "locks": [["dataset", "shared" |
//!   "exclusive"], ...], "key", "window_secs", "attempts"}`;
//! - `join`: `"all"` (default), `"any"`, `"first-success"` or
//!   `{"quorum": n}`; `"none"` delegates and returns without joining;
//! - `timeout_ms`: the join's timeout;
//! - `bomb`: delegates this many copies of itself (same input) and joins
//!   them, at every level, until the host says no;
//! - `fail_after_join`: returns an error after the join (its children
//!   ended, its attempt fails);
//! - `handoff`: `{"agent", "action"}`: hands off after the join;
//! - `progress`: reports progress once per child delegated;
//! - `write`: `["dataset", "key", "value"]`: written first, before anything
//!   is delegated;
//! - `touch`: a dataset it holds: read (key `k`) after delegating and again
//!   after the join, then written (key `parent`), each outcome reported;
//! - `count`: delegates that many `probe` `ok` children beside `children`;
//! - `tally`: the output's `results` become `{"<state>": count, ...}`;
//! - `trap`: panics after the join (the instance traps);
//! - `output`: any JSON, returned at once as the output, nothing else done
//!   (a plan's `from` references in it come back resolved: what flowed
//!   in);
//! - `raw`: text returned at once as the output, as is (not JSON).
//!
//! Output: `{"delegated": ["<child id>" | "<error kind>: <message>", ...],
//! "results": [{"runway", "agent", "state", "output", "reason"}, ...],
//! "join": null | "<error kind>: <message>", "touched": [...]}`, `output`
//! being the child's output as JSON when it is JSON, else as text, and
//! `touched` the outcomes of `touch` (`"ok: <value>"` or the error).

use runway_sdk::bindings::runway::agent::orchestration::{
    self as orch, ChildResult, ChildState, Delegation, HandoffRequest, JoinMode, LockRequest,
    RetryPolicy,
};
use runway_sdk::{Context, Error, LockMode, RawAgent, export_agent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Serialize, Clone, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    children: Vec<Ask>,
    join: Option<Value>,
    timeout_ms: Option<u64>,
    bomb: Option<u32>,
    fail_after_join: bool,
    handoff: Option<Handoff>,
    progress: bool,
    write: Option<(String, String, String)>,
    touch: Option<String>,
    /// `count`: delegate this many `probe ok` children (beside `children`).
    count: u32,
    /// Report only how many children ended in each state.
    tally: bool,
    /// Panics (traps) after the join.
    trap: bool,
    /// Returned at once as the output.
    output: Option<Value>,
    /// Returned at once as the output, as bytes.
    raw: Option<String>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Ask {
    agent: String,
    #[serde(default = "ok")]
    action: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    locks: Vec<(String, String)>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    window_secs: Option<u64>,
    #[serde(default)]
    attempts: Option<u32>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Handoff {
    agent: String,
    #[serde(default = "ok")]
    action: String,
}

fn ok() -> String {
    "ok".into()
}

#[derive(Serialize)]
struct Report {
    delegated: Vec<String>,
    results: Value,
    join: Option<String>,
    touched: Vec<String>,
}

#[derive(Serialize)]
struct Found {
    runway: String,
    agent: String,
    state: &'static str,
    output: Option<Value>,
    reason: Option<String>,
}

struct Orchestrator;

impl RawAgent for Orchestrator {
    fn run(ctx: &Context) -> Result<Vec<u8>, Error> {
        let input: Input = ctx.input()?;
        if let Some(output) = &input.output {
            return serde_json::to_vec(output).map_err(|e| Error::Invalid(e.to_string()));
        }
        if let Some(raw) = &input.raw {
            return Ok(raw.clone().into_bytes());
        }
        if let Some((dataset, key, value)) = &input.write {
            ctx.dataset(dataset).write(key, value.as_bytes())?;
        }
        let mut asks = input.children.clone();
        let noop = Ask {
            agent: "probe".into(),
            action: "ok".into(),
            input: None,
            locks: Vec::new(),
            key: None,
            window_secs: None,
            attempts: None,
        };
        asks.extend(std::iter::repeat_n(noop, input.count as usize));
        if let Some(n) = input.bomb {
            let copy = Ask {
                agent: ctx.info().agent.clone(),
                action: ctx.info().action.clone(),
                input: Some(
                    serde_json::to_value(&input).map_err(|e| Error::Invalid(e.to_string()))?,
                ),
                locks: Vec::new(),
                key: None,
                window_secs: None,
                attempts: None,
            };
            asks.extend(std::iter::repeat_n(copy, n as usize));
        }
        let mut report = Report {
            delegated: Vec::new(),
            results: Value::Array(Vec::new()),
            join: None,
            touched: Vec::new(),
        };
        let mut children = Vec::new();
        for (n, ask) in asks.iter().enumerate() {
            match orch::delegate(&delegation(ask)) {
                Ok(child) => {
                    report.delegated.push(child.clone());
                    children.push(child);
                }
                Err(e) => report.delegated.push(said(&e)),
            }
            if input.progress {
                orch::progress(n as u64 + 1, asks.len() as u64, "delegating");
            }
        }
        let mode = match input.join.as_ref() {
            None => Some(JoinMode::All),
            Some(Value::String(s)) => match s.as_str() {
                "all" => Some(JoinMode::All),
                "any" => Some(JoinMode::Any),
                "first-success" => Some(JoinMode::FirstSuccess),
                "none" => None,
                other => return Err(Error::Invalid(format!("join {other:?}"))),
            },
            Some(v) => match v.get("quorum").and_then(Value::as_u64) {
                Some(n) => Some(JoinMode::Quorum(n as u32)),
                None => return Err(Error::Invalid(format!("join {v}"))),
            },
        };
        let touch = |report: &mut Report| {
            if let Some(dataset) = &input.touch {
                let read = ctx.dataset(dataset).read("k");
                report.touched.push(match read {
                    Ok(v) => format!("ok: {}", String::from_utf8_lossy(&v)),
                    Err(e) => said(&e),
                });
            }
        };
        touch(&mut report);
        if let Some(mode) = mode.filter(|_| !children.is_empty()) {
            match orch::join(&children, mode, input.timeout_ms) {
                Ok(results) if input.tally => {
                    let mut tally = serde_json::Map::new();
                    for r in results.into_iter().map(found) {
                        let n = tally.entry(r.state).or_insert(Value::from(0));
                        *n = Value::from(n.as_u64().unwrap_or(0) + 1);
                    }
                    report.results = Value::Object(tally);
                }
                Ok(results) => {
                    let found: Vec<Found> = results.into_iter().map(found).collect();
                    report.results =
                        serde_json::to_value(found).map_err(|e| Error::Invalid(e.to_string()))?;
                }
                Err(e) => report.join = Some(said(&e)),
            }
        }
        touch(&mut report);
        if let Some(dataset) = &input.touch {
            let wrote = ctx.dataset(dataset).write("parent", b"after");
            report.touched.push(match wrote {
                Ok(()) => "ok".into(),
                Err(e) => said(&e),
            });
        }
        if input.trap {
            panic!("trapping after the join, as asked");
        }
        if input.fail_after_join {
            return Err(Error::Invalid("failing after the join, as asked".into()));
        }
        if let Some(h) = &input.handoff {
            orch::handoff(&HandoffRequest {
                agent: h.agent.clone(),
                action: h.action.clone(),
                input: None,
                locks: Vec::new(),
                window_secs: None,
                retry: None,
            })?;
        }
        serde_json::to_vec(&report).map_err(|e| Error::Invalid(e.to_string()))
    }
}

fn delegation(ask: &Ask) -> Delegation {
    Delegation {
        agent: ask.agent.clone(),
        action: ask.action.clone(),
        input: ask
            .input
            .as_ref()
            .map(|v| serde_json::to_vec(v).unwrap_or_default())
            .unwrap_or_default(),
        locks: ask
            .locks
            .iter()
            .map(|(dataset, mode)| LockRequest {
                dataset: dataset.clone(),
                mode: if mode == "exclusive" {
                    LockMode::Exclusive
                } else {
                    LockMode::Shared
                },
            })
            .collect(),
        window_secs: ask.window_secs,
        retry: ask.attempts.map(|attempts| RetryPolicy {
            attempts,
            backoff_ms: 10,
        }),
        key: ask.key.clone(),
    }
}

fn found(r: ChildResult) -> Found {
    let output = r.output.map(|bytes| {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    });
    Found {
        runway: r.runway,
        agent: r.agent,
        state: match r.state {
            ChildState::Waiting => "waiting",
            ChildState::Running => "running",
            ChildState::Succeeded => "succeeded",
            ChildState::Failed => "failed",
            ChildState::TimedOut => "timed-out",
            ChildState::Cancelled => "cancelled",
            ChildState::Rejected => "rejected",
            ChildState::Expired => "expired",
        },
        output,
        reason: r.reason,
    }
}

fn said(e: &Error) -> String {
    e.to_string()
}

export_agent!(raw Orchestrator);
