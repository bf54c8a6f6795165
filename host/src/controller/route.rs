//! What a manifest says of its agent beyond one name: a route among
//! redundant agents (`agent = { any = ["scorer-a", "scorer-b"], prefer =
//! "fastest" }`) and what to do while an agent's breaker is open
//! (`on_open = "wait"` (default) or `"fail"`). Parsed here, checked
//! against the catalog by the plan ([`super::plan`]), picked among at
//! clearance by [`super::routing`].

use serde::{Deserialize, Serialize};

use crate::limits::MAX_ROUTE_CANDIDATES;
use crate::names;

/// Which candidate routing prefers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prefer {
    /// The lowest median run time.
    #[default]
    Fastest,
    /// The highest success ratio.
    Reliable,
    /// The fewest runs in the air.
    LeastLoaded,
}

impl Prefer {
    /// As a manifest and the ROUTED record spell it.
    pub fn name(self) -> &'static str {
        match self {
            Prefer::Fastest => "fastest",
            Prefer::Reliable => "reliable",
            Prefer::LeastLoaded => "least-loaded",
        }
    }
}

/// A route: the candidates, in the manifest's order, and the preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub any: Vec<String>,
    #[serde(default)]
    pub prefer: Prefer,
}

/// A manifest's `agent`: one name, or a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AgentFile {
    One(String),
    Any(Route),
}

impl AgentFile {
    /// The agent its records name until a pick: the one, or the first
    /// candidate.
    pub fn name(&self) -> &str {
        match self {
            AgentFile::One(name) => name,
            AgentFile::Any(route) => route.any.first().map_or("", String::as_str),
        }
    }

    /// Its route, when it has one.
    pub fn route(&self) -> Option<&Route> {
        match self {
            AgentFile::One(_) => None,
            AgentFile::Any(route) => Some(route),
        }
    }

    /// A route's own checks: between 1 and [`MAX_ROUTE_CANDIDATES`]
    /// candidates, each a valid agent name, none twice.
    pub fn check(&self) -> Result<(), String> {
        let Some(route) = self.route() else {
            return Ok(());
        };
        if route.any.is_empty() || route.any.len() > MAX_ROUTE_CANDIDATES {
            return Err(format!(
                "agent.any names {} agents; between 1 and {MAX_ROUTE_CANDIDATES}",
                route.any.len()
            ));
        }
        for (i, agent) in route.any.iter().enumerate() {
            names::check_agent(agent).map_err(|e| format!("agent.any: {e}"))?;
            if route.any[..i].contains(agent) {
                return Err(format!("agent.any names {agent} twice"));
            }
        }
        Ok(())
    }
}

/// What a runway does while its agent's breaker is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOpen {
    /// Waits in WAITING_BREAKER.
    #[default]
    Wait,
    /// Fails at once, naming the agent and its breaker.
    Fail,
}

impl OnOpen {
    pub fn is_wait(&self) -> bool {
        *self == OnOpen::Wait
    }
}
