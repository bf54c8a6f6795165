//! Each agent's health as the doors show it (`GET /api/agents`, the MCP
//! tool `list_agents`, `runway agents`, the page's agent badges): runs,
//! success ratio, p50/p95 run time, fuel per run, runs in the air, last
//! failure and its breaker. One shape, declared here: the server sends
//! it, the OpenAPI description and the MCP tool's schema derive from it,
//! and the CLI reads it back with it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calls::{Answered, Api};
use crate::controller::AgentHealth;

/// Every agent loaded or ever run, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// One agent's health. Totals are since the trail began (folded again
/// at each start); p50/p95 are over its last 50 attempts; fuel per run
/// is since this start.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    pub agent: String,
    /// Attempts landed: succeeded, failed or timed out.
    pub runs: u64,
    pub succeeded: u64,
    /// Failed or timed out.
    pub failed: u64,
    /// `succeeded / runs`; null without runs.
    pub success_ratio: Option<f64>,
    /// Median run time of its last 50 attempts, in milliseconds.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Fuel per attempt landed since the server started.
    pub fuel_per_run: Option<u64>,
    /// Runs in the air now.
    pub in_flight: u32,
    pub last_failure: Option<FailureView>,
    /// `closed`, `open` or `half-open`.
    pub breaker: String,
    /// When an open breaker goes half-open (RFC 3339).
    pub breaker_until: Option<String>,
}

/// An agent's last failure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailureView {
    pub runway: String,
    /// Why it failed (escaped where a person reads it).
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

impl From<AgentHealth> for AgentView {
    fn from(h: AgentHealth) -> AgentView {
        AgentView {
            agent: h.agent,
            runs: h.runs,
            succeeded: h.succeeded,
            failed: h.failed,
            success_ratio: h.success_ratio,
            p50_ms: h.p50_ms,
            p95_ms: h.p95_ms,
            fuel_per_run: h.fuel_per_run,
            in_flight: h.in_flight,
            last_failure: h.last_failure.map(|f| FailureView {
                runway: f.runway,
                reason: f.reason,
                at: f.at.to_string(),
            }),
            breaker: h.breaker.to_string(),
            breaker_until: h.breaker_until.map(|t| t.to_string()),
        }
    }
}

impl Api {
    /// Every agent's health.
    pub async fn agents(&self) -> Answered<AgentList> {
        let all = self.controller.agents().await?;
        let agents = all.into_iter().map(AgentView::from).collect();
        Ok(AgentList { agents })
    }
}
