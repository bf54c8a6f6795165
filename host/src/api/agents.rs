//! Each agent's health as the doors show it (`GET /api/agents`, the MCP
//! tool `list_agents`, `runway agents`, the page's agent badges): runs,
//! success ratio, p50/p95 run time, fuel per run, what its runs spent
//! (fuel, wall time, bytes committed), runs in the air, last
//! failure and its breaker. One shape, the controller's
//! [`AgentHealth`]: the server sends it, the OpenAPI description derives
//! from it, and the CLI reads it back with it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calls::{Answered, Api};
use crate::controller::AgentHealth;

/// Every agent loaded or ever run, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentHealth>,
}

impl Api {
    /// Every agent's health.
    pub async fn agents(&self) -> Answered<AgentList> {
        let agents = self.controller.agents().await?;
        Ok(AgentList { agents })
    }
}
