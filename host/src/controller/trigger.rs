//! A trigger's definition: a standing manifest that files runways when
//! something happens, as a plan file declares it beside (or instead of)
//! its `[[runway]]`s:
//!
//! ```toml
//! [[trigger]]
//! id = "nightly"
//! on = { schedule = "0 1 * * *", zone = "America/New_York", catch_up = "latest" }
//!
//! [[trigger.runway]]                     # the same form as [[runway]]
//! id = "import"
//! agent = "import-applications"
//! datasets = { fafsa_2024_03_16 = "exclusive" }
//!
//! [[trigger.runway]]
//! id = "score"
//! agent = "score-risk"
//! after = ["import"]                     # local to one firing
//! ```
//!
//! `on` is one of:
//! - `{ schedule = "CRON", zone = "IANA name", catch_up = "latest" | "all" | "none" }`
//!   (zone defaults to the host's, catch-up to `latest`; see [`super::cron`]);
//! - `{ commit = "GLOB" }`: each commit to a dataset whose name matches
//!   (`*` any run of characters, `?` one);
//! - `{ topic = "NAME", debounce = "30s" }`: each event published on the
//!   topic, or those within the debounce window together.
//!
//! The runways are checked as a plan is (the caller passes the check, so
//! this file needs no plan type), and checked again at each firing
//! against the agents loaded then. A fired runway's input takes what
//! fired it as outputs flow: `input = { cause = { from = "trigger" },
//! dataset = { from = "trigger", path = "dataset" } }` ([`with_cause`]);
//! an input that names none of it is handed over as written.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cron::{CatchUp, Cron, CronError};
use super::flow;
use crate::limits::MAX_DEBOUNCE;
use crate::names;

/// Most bytes of a trigger's definition (its TRIGGER record's text).
pub const MAX_DEFINITION: usize = runway_audit::record::MANIFEST_MAX;

/// What fires a trigger.
#[derive(Debug, Clone)]
pub enum On {
    Schedule {
        cron: Box<Cron>,
        catch_up: CatchUp,
    },
    Commit {
        datasets: String,
    },
    Topic {
        topic: String,
        debounce: Option<Duration>,
    },
}

impl On {
    /// `schedule`, `commit` or `topic`.
    pub fn kind(&self) -> &'static str {
        match self {
            On::Schedule { .. } => "schedule",
            On::Commit { .. } => "commit",
            On::Topic { .. } => "topic",
        }
    }
}

/// A trigger as filed.
#[derive(Debug, Clone)]
pub struct TriggerDef {
    pub id: String,
    pub on: On,
    /// The `on` table as filed.
    pub on_json: Value,
    /// The runways each firing files, as plan text (`{"runway": [...]}`).
    pub runways: String,
    /// Their plan-local ids, in order.
    pub names: Vec<String>,
    /// All of it as one JSON object, as its TRIGGER record keeps it.
    pub definition: String,
}

/// Names the trigger that fired a runway, and the firing's key: on the
/// runway's manifest, so its FILING record says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredBy {
    pub trigger: String,
    pub key: String,
    /// The runway's id in the trigger's plan.
    pub runway: String,
    /// The firing's depth in a chain of triggers firing each other
    /// ([`crate::limits::MAX_TRIGGER_CHAIN`]): 1 for a schedule's, or for
    /// one caused by a runway no trigger fired; one more than the
    /// causing runway's otherwise. Filings from before it was kept read
    /// as 1.
    #[serde(default = "first_link")]
    pub depth: u32,
}

fn first_link() -> u32 {
    1
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trigger {trigger:?}: {why}")]
pub struct TriggerError {
    pub trigger: String,
    pub why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerFile {
    id: String,
    on: OnFile,
    #[serde(default)]
    runway: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnFile {
    schedule: Option<String>,
    zone: Option<String>,
    catch_up: Option<CatchUp>,
    commit: Option<String>,
    topic: Option<String>,
    debounce: Option<String>,
}

impl TriggerDef {
    /// Reads one trigger (a `[[trigger]]` table, as JSON); `check` checks
    /// its runways' plan text as a plan is checked and gives their ids.
    pub fn parse(
        value: Value,
        check: impl FnOnce(&str) -> Result<Vec<String>, String>,
    ) -> Result<TriggerDef, TriggerError> {
        let named = value
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let refuse = |why: String| TriggerError {
            trigger: crate::limits::cut(&named, names::MAX_DATASET),
            why,
        };
        let definition = serde_json::to_string(&value).map_err(|e| refuse(e.to_string()))?;
        if definition.len() > MAX_DEFINITION {
            return Err(refuse(format!(
                "its definition is {} bytes (at most {MAX_DEFINITION})",
                definition.len()
            )));
        }
        let on_json = value.get("on").cloned().unwrap_or(Value::Null);
        let file: TriggerFile = serde_json::from_value(value).map_err(|e| refuse(e.to_string()))?;
        names::check_runway_id(&file.id).map_err(|e| refuse(e.to_string()))?;
        let on = on(file.on).map_err(refuse)?;
        if file.runway.is_empty() {
            return Err(refuse("it files no runway ([[trigger.runway]])".into()));
        }
        for r in &file.runway {
            match r.get("input") {
                None | Some(Value::Object(_)) => {}
                Some(_) => {
                    return Err(refuse(
                        "a fired runway's input must be a table (it gets a `trigger` key)".into(),
                    ));
                }
            }
        }
        let runways = serde_json::json!({ "runway": file.runway }).to_string();
        let names = check(&runways).map_err(refuse)?;
        Ok(TriggerDef {
            id: file.id,
            on,
            on_json,
            runways,
            names,
            definition,
        })
    }
}

fn on(file: OnFile) -> Result<On, String> {
    let OnFile {
        schedule,
        zone,
        catch_up,
        commit,
        topic,
        debounce,
    } = file;
    let only = |what: &str, with: &str| format!("`{what}` goes only with `{with}`");
    match (schedule, commit, topic) {
        (Some(pattern), None, None) => {
            if debounce.is_some() {
                return Err(only("debounce", "topic"));
            }
            let cron =
                Cron::parse(&pattern, zone.as_deref()).map_err(|e: CronError| e.to_string())?;
            Ok(On::Schedule {
                cron: Box::new(cron),
                catch_up: catch_up.unwrap_or_default(),
            })
        }
        (None, Some(datasets), None) => {
            if zone.is_some() || catch_up.is_some() {
                return Err(only("zone` and `catch_up", "schedule"));
            }
            if debounce.is_some() {
                return Err(only("debounce", "topic"));
            }
            let plain = datasets.replace(['*', '?'], "a");
            names::check_dataset(&plain).map_err(|e| format!("commit pattern: {e}"))?;
            Ok(On::Commit { datasets })
        }
        (None, None, Some(topic)) => {
            if zone.is_some() || catch_up.is_some() {
                return Err(only("zone` and `catch_up", "schedule"));
            }
            names::check_dataset(&topic).map_err(|e| format!("topic: {e}"))?;
            let debounce = match debounce {
                None => None,
                Some(text) => {
                    let d = parse_duration(&text)?;
                    if d.is_zero() || d > MAX_DEBOUNCE {
                        return Err(format!(
                            "debounce {text:?} must be more than nothing and at most {}s",
                            MAX_DEBOUNCE.as_secs()
                        ));
                    }
                    Some(d)
                }
            };
            Ok(On::Topic { topic, debounce })
        }
        _ => Err("`on` names exactly one of `schedule`, `commit`, `topic`".into()),
    }
}

/// A duration in jiff's friendly format (`"30s"`, `"1m 30s"`) or ISO 8601.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}

/// Whether dataset `name` matches `pattern` (`*` any run, `?` one char).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j) = (0, 0);
    // The last `*` seen, and where in `name` it was tried up to.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Whether `pattern` names one dataset (no wildcard).
pub fn is_exact(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

/// What a fired runway's input calls what fired it: `{ from = "trigger" }`
/// stands for the whole cause, `{ from = "trigger", path = "dataset" }`
/// for a field of it (as outputs flow, [`super::flow`]).
pub const CAUSE: &str = "trigger";

/// `runways` (a trigger's runways as plan text, `{"runway": [...]}`) with
/// every reference to [`CAUSE`] in their inputs replaced by `cause`, or
/// the field at its path (refused naming the runway when it has none).
/// Without a cause (a trigger checked at filing, before anything fired
/// it), each becomes an empty table. An input that takes nothing of the cause is
/// left as it is: the agent gets only what its manifest says.
pub fn with_cause(runways: &str, cause: Option<&Value>) -> Result<String, String> {
    let mut plan: Value = serde_json::from_str(runways).map_err(|e| e.to_string())?;
    let Some(list) = plan.get_mut("runway").and_then(Value::as_array_mut) else {
        return Ok(runways.to_string());
    };
    for runway in list {
        let name = runway["id"]
            .as_str()
            .or(runway["agent"].as_str())
            .unwrap_or_default()
            .to_string();
        let Some(input) = runway.get_mut("input") else {
            continue;
        };
        flow::replace_references(input, CAUSE, &mut |path| match cause {
            None => Ok(Value::Object(Default::default())),
            Some(cause) => flow::at_path(cause, CAUSE, path).cloned(),
        })
        .map_err(|e| format!("runway {name:?}: {e}"))?;
    }
    Ok(plan.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(_: &str) -> Result<Vec<String>, String> {
        Ok(vec!["a".into()])
    }

    #[test]
    fn a_firing_filed_before_chain_depths_reads_as_the_first_link() {
        let old = json!({ "trigger": "t", "key": "commit:7", "runway": "r" });
        let by: FiredBy = serde_json::from_value(old).unwrap();
        assert_eq!(by.depth, 1);
        let deep = FiredBy { depth: 5, ..by };
        let again: FiredBy = serde_json::from_value(serde_json::to_value(&deep).unwrap()).unwrap();
        assert_eq!(again, deep);
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob_matches("fafsa_*", "fafsa_2024_03_16"));
        assert!(glob_matches("fafsa_*", "fafsa_"));
        assert!(!glob_matches("fafsa_*", "fafs"));
        assert!(glob_matches("*_03_*", "fafsa_2024_03_16"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "abbc"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn a_definition_names_exactly_one_source() {
        let value = json!({ "id": "n", "on": { "schedule": "0 1 * * *", "zone": "UTC" }, "runway": [{ "agent": "a" }] });
        let t = TriggerDef::parse(value, ok).unwrap();
        assert_eq!(t.on.kind(), "schedule");
        assert_eq!(t.names, vec!["a"]);
        let two = json!({ "id": "n", "on": { "schedule": "0 1 * * *", "commit": "x" }, "runway": [{ "agent": "a" }] });
        assert!(
            TriggerDef::parse(two, ok)
                .unwrap_err()
                .why
                .contains("exactly one")
        );
        let commit =
            json!({ "id": "c", "on": { "commit": "fafsa_*" }, "runway": [{ "agent": "a" }] });
        assert_eq!(TriggerDef::parse(commit, ok).unwrap().on.kind(), "commit");
        let topic = json!({ "id": "t", "on": { "topic": "applications.flagged", "debounce": "30s" }, "runway": [{ "agent": "a" }] });
        match TriggerDef::parse(topic, ok).unwrap().on {
            On::Topic { debounce, .. } => assert_eq!(debounce, Some(Duration::from_secs(30))),
            other => panic!("{other:?}"),
        }
        let bad_zone = json!({ "id": "n", "on": { "commit": "x", "zone": "UTC" }, "runway": [{ "agent": "a" }] });
        assert!(TriggerDef::parse(bad_zone, ok).is_err());
        let none = json!({ "id": "n", "on": { "commit": "x" } });
        assert!(
            TriggerDef::parse(none, ok)
                .unwrap_err()
                .why
                .contains("no runway")
        );
        let scalar =
            json!({ "id": "n", "on": { "commit": "x" }, "runway": [{ "agent": "a", "input": 3 }] });
        assert!(
            TriggerDef::parse(scalar, ok)
                .unwrap_err()
                .why
                .contains("table")
        );
        let refused = json!({ "id": "n", "on": { "commit": "x" }, "runway": [{ "agent": "a" }] });
        let err = TriggerDef::parse(refused, |_| Err("unknown agent a".into())).unwrap_err();
        assert_eq!(err.why, "unknown agent a");
    }

    #[test]
    fn the_cause_goes_where_the_input_takes_it_and_nowhere_else() {
        let cause = json!({ "kind": "commit", "dataset": "d", "seq": 7, "token": 3 });
        let runways = json!({ "runway": [
            { "id": "a", "input": { "threshold": 3, "why": { "from": "trigger" },
                "set": [{ "from": "trigger", "path": "dataset" }], "other": { "from": "x" } } },
            { "id": "b", "input": { "strict": true } },
            { "id": "c" },
        ]})
        .to_string();
        let filed: Value =
            serde_json::from_str(&with_cause(&runways, Some(&cause)).unwrap()).unwrap();
        let a = &filed["runway"][0]["input"];
        assert_eq!(a["threshold"], 3);
        assert_eq!(a["why"]["seq"], 7);
        assert_eq!(a["set"][0], "d");
        assert_eq!(
            a["other"],
            json!({ "from": "x" }),
            "a runway's own references stay"
        );
        assert_eq!(filed["runway"][1]["input"], json!({ "strict": true }));
        assert!(filed["runway"][2].get("input").is_none());
        // Checked at filing: no cause yet.
        let checked: Value = serde_json::from_str(&with_cause(&runways, None).unwrap()).unwrap();
        assert_eq!(checked["runway"][0]["input"]["why"], json!({}));
        // A field the cause lacks is refused, naming the runway.
        let bad = json!({ "runway": [{ "id": "a", "input": { "x": { "from": "trigger", "path": "nope" } } }] });
        let err = with_cause(&bad.to_string(), Some(&cause)).unwrap_err();
        assert!(
            err.contains("runway \"a\"") && err.contains("nope"),
            "{err}"
        );
    }
}
