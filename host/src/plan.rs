//! Plan files: the flight plans an operator files, and their validation.
//!
//! A plan is TOML with one `[[runway]]` table per manifest:
//!
//! ```toml
//! [[runway]]
//! id = "import"                          # unique within the plan
//! agent = "import-applications"          # a plugin name
//! action = "import"                      # passed to the agent (default "run")
//! datasets = { fafsa_2024_03_16 = "exclusive" }   # the lock set
//! after = []                             # ids that must succeed first
//! input = { count = 40000, seed = 7 }    # any TOML, handed over as JSON
//! ```
//!
//! Unknown keys, unknown agents, unknown `after` ids, bad dataset names,
//! locks beyond the agent's grants and dependency cycles are refused with an
//! error naming the culprit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use runway_audit::LockMode;
use serde::Deserialize;
use thiserror::Error;

use crate::grants::Grants;
use crate::names::{self, NameError};

/// What filing checks a plan against: the known agents and their grants.
pub trait Catalog {
    /// Agent names, sorted.
    fn names(&self) -> Vec<String>;
    fn grants(&self, agent: &str) -> Option<&Grants>;
}

impl Catalog for BTreeMap<String, Grants> {
    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
    fn grants(&self, agent: &str) -> Option<&Grants> {
        self.get(agent)
    }
}

/// A validated plan: manifests in filing order, dependencies known to exist
/// and to form no cycle.
#[derive(Debug, Clone)]
pub struct Plan {
    pub manifests: Vec<Manifest>,
}

/// One flight plan for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub id: String,
    pub agent: String,
    pub action: String,
    /// Lock set, ordered by dataset name (the order locks are granted in).
    pub datasets: BTreeMap<String, LockMode>,
    pub after: Vec<String>,
    /// Input handed to the agent, JSON-encoded.
    pub input: Vec<u8>,
}

/// Why a plan was refused.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("plan is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("plan has no runways")]
    Empty,
    #[error("runway id {0:?} is used twice")]
    DuplicateId(String),
    #[error("runway {runway:?}: id is not valid: {source}")]
    BadId { runway: String, source: NameError },
    #[error("runway {runway:?}: unknown agent {agent:?} (known: {known})")]
    UnknownAgent {
        runway: String,
        agent: String,
        known: String,
    },
    #[error("runway {runway:?}: `after` names unknown runway {after:?}")]
    UnknownAfter { runway: String, after: String },
    #[error("runway {runway:?}: agent {agent} is not granted {} on {dataset}{}", .mode.name(), match .allowed { Some(m) => format!(" (only {})", m.name()), None => String::new() })]
    BeyondGrant {
        runway: String,
        agent: String,
        dataset: String,
        mode: LockMode,
        allowed: Option<LockMode>,
    },
    #[error("runway {runway:?}: dataset name is not valid: {source}")]
    BadDataset { runway: String, source: NameError },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("runway {runway:?}: input cannot be encoded as JSON: {source}")]
    Input {
        runway: String,
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    runway: Vec<ManifestFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    id: String,
    agent: String,
    #[serde(default = "default_action")]
    action: String,
    #[serde(default)]
    datasets: BTreeMap<String, LockMode>,
    #[serde(default)]
    after: Vec<String>,
    input: Option<toml::Value>,
}

fn default_action() -> String {
    "run".to_string()
}

impl Plan {
    /// Reads and validates a plan file against the known agents.
    pub fn load(path: &Path, catalog: &impl Catalog) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Plan::parse(&text, catalog)
    }

    /// Parses and validates plan text against the known agents.
    pub fn parse(text: &str, catalog: &impl Catalog) -> Result<Plan, PlanError> {
        let file: PlanFile = toml::from_str(text)?;
        let mut manifests = Vec::with_capacity(file.runway.len());
        for m in file.runway {
            let input = match &m.input {
                None => Vec::new(),
                Some(v) => serde_json::to_vec(v).map_err(|source| PlanError::Input {
                    runway: m.id.clone(),
                    source,
                })?,
            };
            manifests.push(Manifest {
                id: m.id,
                agent: m.agent,
                action: m.action,
                datasets: m.datasets,
                after: m.after,
                input,
            });
        }
        let plan = Plan { manifests };
        plan.validate(catalog)?;
        Ok(plan)
    }

    fn validate(&self, catalog: &impl Catalog) -> Result<(), PlanError> {
        if self.manifests.is_empty() {
            return Err(PlanError::Empty);
        }
        let mut ids = HashSet::new();
        for m in &self.manifests {
            names::check_dataset(&m.id).map_err(|source| PlanError::BadId {
                runway: m.id.clone(),
                source,
            })?;
            if !ids.insert(m.id.as_str()) {
                return Err(PlanError::DuplicateId(m.id.clone()));
            }
        }
        for m in &self.manifests {
            let Some(grants) = catalog.grants(&m.agent) else {
                return Err(PlanError::UnknownAgent {
                    runway: m.id.clone(),
                    agent: m.agent.clone(),
                    known: catalog.names().join(", "),
                });
            };
            for (dataset, &mode) in &m.datasets {
                names::check_dataset(dataset).map_err(|source| PlanError::BadDataset {
                    runway: m.id.clone(),
                    source,
                })?;
                if !grants.permits(dataset, mode) {
                    return Err(PlanError::BeyondGrant {
                        runway: m.id.clone(),
                        agent: m.agent.clone(),
                        dataset: dataset.clone(),
                        mode,
                        allowed: grants.allowed(dataset),
                    });
                }
            }
            if let Some(after) = m.after.iter().find(|a| !ids.contains(a.as_str())) {
                return Err(PlanError::UnknownAfter {
                    runway: m.id.clone(),
                    after: after.clone(),
                });
            }
        }
        self.check_acyclic()
    }

    /// Depth-first search; on a back edge, reports the cycle's path.
    fn check_acyclic(&self) -> Result<(), PlanError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let index: HashMap<&str, usize> = self
            .manifests
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.as_str(), i))
            .collect();
        let mut mark = vec![Mark::New; self.manifests.len()];
        for root in 0..self.manifests.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Explicit stack of (node, next edge) so deep plans cannot overflow.
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::OnPath;
            while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
                let after = &self.manifests[node].after;
                if *edge == after.len() {
                    mark[node] = Mark::Done;
                    stack.pop();
                    continue;
                }
                let next = index[after[*edge].as_str()];
                *edge += 1;
                match mark[next] {
                    Mark::New => {
                        mark[next] = Mark::OnPath;
                        stack.push((next, 0));
                    }
                    Mark::OnPath => {
                        let start = stack.iter().position(|&(n, _)| n == next).unwrap_or(0);
                        let mut path: Vec<String> = stack[start..]
                            .iter()
                            .map(|&(n, _)| self.manifests[n].id.clone())
                            .collect();
                        path.push(self.manifests[next].id.clone());
                        return Err(PlanError::Cycle(path));
                    }
                    Mark::Done => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> BTreeMap<String, Grants> {
        let open = Grants::parse(
            "[datasets]\n\"d*\" = \"exclusive\"\nro = \"shared\"\n",
            "t.toml",
        )
        .unwrap();
        [("a".to_string(), open.clone()), ("b".to_string(), open)].into()
    }

    #[test]
    fn parses_a_plan() {
        let plan = Plan::parse(
            r#"
            [[runway]]
            id = "one"
            agent = "a"
            datasets = { d1 = "exclusive", d0 = "shared" }
            input = { n = 3 }
            [[runway]]
            id = "two"
            agent = "b"
            action = "check"
            after = ["one"]
            "#,
            &agents(),
        )
        .unwrap();
        let one = &plan.manifests[0];
        assert_eq!(one.action, "run");
        assert_eq!(
            one.datasets.iter().collect::<Vec<_>>(),
            [
                (&"d0".to_string(), &LockMode::Shared),
                (&"d1".to_string(), &LockMode::Exclusive)
            ]
        );
        assert_eq!(one.input, br#"{"n":3}"#);
        assert_eq!(plan.manifests[1].after, ["one"]);
    }

    #[test]
    fn refuses_bad_plans_naming_the_culprit() {
        let cases = [
            ("[[runway]]\nid='x'\nagent='a'\ncolour='red'", "colour"),
            ("[[runway]]\nid='x'\nagent='zz'", "unknown agent \"zz\""),
            (
                "[[runway]]\nid='x'\nagent='a'\nafter=['nope']",
                "unknown runway \"nope\"",
            ),
            (
                "[[runway]]\nid='x'\nagent='a'\ndatasets={'../etc'='shared'}",
                "dataset name",
            ),
            (
                "[[runway]]\nid='x'\nagent='a'\ndatasets={d='sometimes'}",
                "sometimes",
            ),
            (
                "[[runway]]\nid='x'\nagent='a'\n[[runway]]\nid='x'\nagent='b'",
                "used twice",
            ),
            ("", "no runways"),
            (
                "[[runway]]\nid='p'\nagent='a'\nafter=['q']\n[[runway]]\nid='q'\nagent='a'\nafter=['r']\n[[runway]]\nid='r'\nagent='a'\nafter=['q']",
                "cycle: q -> r -> q",
            ),
            (
                "[[runway]]\nid='s'\nagent='a'\nafter=['s']",
                "cycle: s -> s",
            ),
        ];
        for (text, needle) in cases {
            let err = Plan::parse(text, &agents()).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err:?} lacks {needle:?}");
        }
    }
}
