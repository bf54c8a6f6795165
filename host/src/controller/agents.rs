//! The controller's answer to "how is each agent doing": every agent
//! loaded or ever run, with its figures ([`super::health`]), what its
//! runs spent ([`super::cost`]) and its breaker ([`super::breaker`]), by
//! name.

use std::collections::BTreeSet;

use super::breaker::Phase;
use super::dispatch::Dispatch;
use super::health::AgentHealth;

impl Dispatch {
    pub(super) fn agents_health(&self) -> Vec<AgentHealth> {
        let plugins = self.host.plugins();
        let mut names: BTreeSet<String> = plugins.names().into_iter().collect();
        names.extend(self.figures.agents().map(|(a, _)| a.clone()));
        names.extend(self.costs.agents.keys().cloned());
        names.extend(self.breakers.tripped().map(|(a, _)| a.clone()));
        names
            .into_iter()
            .map(|agent| {
                let phase = self.breakers.phase(&agent);
                let until = match phase {
                    Phase::Open { until } => Some(*until),
                    _ => None,
                };
                let (figures, spent) = (self.figures.of(&agent), self.costs.agent(&agent));
                AgentHealth::of(&agent, &figures, spent, phase.name(), until)
            })
            .collect()
    }
}
