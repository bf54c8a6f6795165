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
//! priority = 0                           # higher is cleared first (default 0)
//! window = "30m"                         # at most the grant's window_secs
//! retry = { attempts = 3, backoff = "exponential", initial = "1s", max = "5m", jitter = true }
//! earliest_start = "01:00"               # or RFC 3339, or "in 10m"
//! expires = "2026-12-03T06:00:00Z"       # not cleared by then: EXPIRED
//! approval = { required = true, role = "approver" }   # a person approves first
//! labels = { team = "aid", cycle = "2024" }            # shown and filtered on (`--label team=aid`)
//! input = { count = 40000, seed = 7 }    # any TOML, handed over as JSON
//!
//! [budget]                               # the whole plan's (see `budget`)
//! fuel = 1e12
//! wall = "2h"
//! runs = 500
//! when = "outputs.score.risk > 5"        # a condition (CEL) over the outputs of `after`
//! ```
//!
//! An input may take the outputs (JSON) of the runways it runs after: a
//! table whose keys are exactly `from` (a runway of its `after`, by its
//! plan's id) and optionally `path` stands for that output, or the field
//! at `path`, anywhere in the input tree:
//! `input = { apps = { from = "import" }, risk = { from = "score", path =
//! "risk.level" }, threshold = 3 }`. A path is dotted; a numeric segment
//! indexes an array (`items.0.name`). The output is passed by value once
//! the dependencies have ended; a missing output or path fails the runway
//! before it starts (see `flow`). `when` is read then too (see
//! `condition`): false ends the runway SKIPPED, and its dependents go on
//! as after a success with no output.
//!
//! A plan may also hold `[[trigger]]`s — standing manifests filed with it
//! that file runways when a schedule's time comes, a commit lands or an
//! event is published ([`super::trigger`]) — beside its runways or alone.
//!
//! A time is an RFC 3339 timestamp (`"2026-12-03T01:00:00Z"`), a daily
//! `"HH:MM"` in the host's time zone meaning its next occurrence after
//! filing, or `"in DURATION"` after filing. Durations are jiff's friendly format (`"90s"`, `"1m 30s"`, `"2h"`) or
//! ISO 8601 (`"PT90S"`). Times lie between 1970 and
//! [`LATEST_TIME_SECS`] (an `in` or daily time is checked where the
//! controller resolves it, at filing); a window and a retry's waits are
//! whole milliseconds: what the trail keeps, kept exactly.
//!
//! Unknown keys, unknown agents, bad dataset names, locks beyond the
//! agent's grants and dependency cycles are refused with an error naming
//! the culprit. An `after` id that is not one of the plan's own names a
//! runway filed before; the controller refuses it at filing if there is
//! none (`ControlError::UnknownAfter`).
//!
//! Everything of a plan that reaches an audit record is capped here, at its
//! source, so no plan can make a record the audit writer refuses: ids and
//! agent names are names (at most [`names::MAX_DATASET`] bytes), and the
//! `MAX_*` constants below bound the rest. A plan file is read through
//! [`crate::files`] (no links, no FIFOs, capped), and a refusal never quotes
//! it: TOML problems are [`TomlProblem`]s, and refusal reasons are cut to
//! [`MAX_REASON`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use runway_audit::LockMode;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::budget::{Budget, BudgetError, BudgetFile};
use super::condition::{Condition, ConditionError};
use super::flow::{self, FlowError};
use super::locks::LockSet;
use super::route::{AgentFile, OnOpen, Route};
use super::trigger::{self, FiredBy, TriggerDef, TriggerError};
use crate::files::{self, FileError, FileKind, Fingerprint, ReadCaps, TomlProblem};
use crate::limits::{
    LATEST_TIME_SECS, MAX_ACTION_BYTES, MAX_AFTER, MAX_ATTEMPTS, MAX_INPUT_BYTES, MAX_LABEL_BYTES,
    MAX_LABELS, MAX_LOCKS, MAX_PROBLEM_CHARS, MAX_REASON, MAX_RUNWAYS,
};
use crate::names::{self, NameError};
use crate::plugin::grants::Grants;
use crate::plugin::loader::Plugins;
use crate::roles::{Right, Role};

/// What filing checks a plan against: the known agents and their grants.
pub trait Catalog {
    /// Agent names, sorted.
    fn names(&self) -> Vec<String>;
    fn grants(&self, agent: &str) -> Option<&Grants>;
}

impl Catalog for Plugins {
    fn names(&self) -> Vec<String> {
        Plugins::names(self)
    }
    fn grants(&self, agent: &str) -> Option<&Grants> {
        Plugins::grants(self, agent)
    }
}

impl Catalog for BTreeMap<String, Grants> {
    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
    fn grants(&self, agent: &str) -> Option<&Grants> {
        self.get(agent)
    }
}

/// A validated plan: manifests in filing order, dependencies inside it
/// forming no cycle.
#[derive(Debug, Clone)]
pub struct Plan {
    pub manifests: Vec<Manifest>,
    /// Its `[[trigger]]`s ([`super::trigger`]).
    pub triggers: Vec<TriggerDef>,
}

/// One flight plan for one run.
///
/// Its serde form is the manifest as its FILING record keeps it (the
/// layout `runway::MANIFEST_SCHEMA`, JSON): what the record's entry says
/// already (runway id, agent), the input (carried as bytes beside it) and
/// the times (kept resolved) are left out. A new key is a field here with
/// `#[serde(default)]`, so trails written before it still fold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub agent: String,
    pub action: String,
    /// Lock set, in the manifest's order (the order its run is told them in).
    pub datasets: LockSet,
    pub after: Vec<String>,
    /// Input handed to the agent, JSON-encoded.
    #[serde(skip)]
    pub input: Vec<u8>,
    /// Among runways whose locks are free, higher is cleared first.
    pub priority: i64,
    /// The run's window, when shorter than its grant's.
    #[serde(with = "millis_opt")]
    pub window: Option<Duration>,
    pub retry: Retry,
    /// Not cleared before.
    #[serde(skip)]
    pub earliest_start: Option<When>,
    /// Not cleared by then: EXPIRED.
    #[serde(skip)]
    pub expires: Option<When>,
    /// The role whose approval it waits for, when it needs one.
    pub approval: Option<String>,
    /// The operator's own tags (`team = "aid"`), shown and filtered on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Where it stands in a delegation tree, when a run delegated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    /// The runway that handed off to it (it takes over the rest, in that
    /// runway's place in its tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_from: Option<String>,
    /// Its run fails when it goes this long on a worker without reporting
    /// progress (`orchestration.progress`).
    #[serde(default, with = "millis_opt", skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Duration>,
    /// Its route among redundant agents, when `agent` named several
    /// (`agent` is then the pick, made again for each attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// What it does while its agent's breaker is open.
    #[serde(default, skip_serializing_if = "OnOpen::is_wait")]
    pub on_open: OnOpen,
    /// Its plan's budget (every runway of the plan carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Its condition (`when`, CEL; see `condition`), read once its
    /// dependencies have ended: false skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// The names its plan gave the runways of `after`, in that order, when
    /// it reads their outputs (a `from` in its input, or a `when`; see
    /// `flow`): the names those use. Empty when it reads none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
    /// The trigger firing that filed it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_by: Option<FiredBy>,
}

/// A delegated runway's place in its tree, fixed when it was filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The runway that delegated it, and that runway's attempt.
    pub parent: String,
    pub attempt: u32,
    /// The tree's first runway (not delegated by any).
    pub root: String,
    /// The delegation's idempotency key, among the parent's.
    pub key: String,
    /// Its level: 1 for a root's child.
    pub depth: u32,
    /// Levels that may still be added below it (its rights narrowed by
    /// every ancestor's grants).
    pub reach: u32,
    /// The datasets of its lock set its parent handed down (they go back
    /// to the parent when it lands).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handed: Vec<String>,
}

/// A moment a manifest names, fixed at filing by [`When::resolve`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    At(jiff::Timestamp),
    /// The next occurrence of this time of day, in the host's time zone.
    Daily(jiff::civil::Time),
    /// This long after filing.
    In(Duration),
}

impl When {
    /// The moment, for a runway filed at `filed` in time zone `tz`; `None`
    /// when it lies past [`latest`] (never wrapped nor saturated).
    pub fn resolve(
        self,
        filed: jiff::Timestamp,
        tz: &jiff::tz::TimeZone,
    ) -> Option<jiff::Timestamp> {
        let at = match self {
            When::At(at) => at,
            When::In(after) => filed
                .checked_add(jiff::SignedDuration::try_from(after).ok()?)
                .ok()?,
            When::Daily(time) => {
                let mut day = filed.to_zoned(tz.clone()).date();
                loop {
                    // A time skipped by a DST change resolves past the gap.
                    if let Ok(at) = day.to_datetime(time).to_zoned(tz.clone())
                        && at.timestamp() > filed
                    {
                        break at.timestamp();
                    }
                    day = day.tomorrow().ok()?;
                }
            }
        };
        (at <= latest()).then_some(at)
    }
}

/// The latest moment a manifest may name ([`LATEST_TIME_SECS`]).
pub fn latest() -> jiff::Timestamp {
    jiff::Timestamp::from_second(LATEST_TIME_SECS).expect("LATEST_TIME_SECS is a valid time")
}

/// What a refused time is told: the range a manifest's times must lie in.
pub fn time_range() -> String {
    format!(
        "at or after {} and at or before {}",
        jiff::Timestamp::UNIX_EPOCH,
        latest()
    )
}

/// How often a failed or timed-out runway is tried again, and how long it
/// waits before each new attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: u32,
    pub backoff: Backoff,
    /// The wait before the second attempt.
    #[serde(with = "millis")]
    pub initial: Duration,
    /// No wait is longer.
    #[serde(with = "millis")]
    pub max: Duration,
    /// Each wait drawn from its upper half at random, so retries of many
    /// runways do not land together.
    pub jitter: bool,
}

/// Durations as whole milliseconds, as FILING records keep them (filing
/// refuses others).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// [`millis`] for an optional duration.
mod millis_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

impl Retry {
    /// How long to wait before the attempt after attempt number `failed`.
    pub fn wait_after(&self, failed: u32) -> Duration {
        let wait = match self.backoff {
            Backoff::Fixed => self.initial,
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(failed.saturating_sub(1).min(31));
                self.initial.saturating_mul(factor)
            }
        }
        .min(self.max);
        if self.jitter {
            // Equal jitter: somewhere in the upper half of the wait.
            wait / 2 + wait.mul_f64(fastrand::f64() / 2.0)
        } else {
            wait
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff: Backoff::Exponential,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        }
    }
}

/// How waits between attempts grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// `initial`, twice that, four times… up to `max`.
    Exponential,
    /// `initial` every time.
    Fixed,
}

/// Why a plan was refused.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("plan file {0}")]
    File(#[from] FileError),
    /// A plan file that was read but refused: named, with its size and
    /// SHA-256, never its content.
    #[error("plan file {path} ({fingerprint}): {source}")]
    InFile {
        path: String,
        fingerprint: Fingerprint,
        source: Box<PlanError>,
    },
    #[error("plan is not UTF-8 (bad byte at offset {0})")]
    NotUtf8(usize),
    #[error("plan is not valid: {0}")]
    Syntax(TomlProblem),
    /// serde_json's message, escaped and cut to [`MAX_PROBLEM_CHARS`].
    #[error("plan is not valid JSON: {0}")]
    Json(String),
    #[error("plan has no runways")]
    Empty,
    #[error("plan has {count} runways (at most {max})")]
    TooManyRunways { count: usize, max: usize },
    #[error("runway {runway:?}: {key} is {len} bytes (at most {max})")]
    TooLong {
        runway: String,
        key: &'static str,
        len: usize,
        max: usize,
    },
    #[error("runway {runway:?}: {key} has {count} entries (at most {max})")]
    TooMany {
        runway: String,
        key: &'static str,
        count: usize,
        max: usize,
    },
    #[error("runway {runway:?}: action is not printable text")]
    ActionNotPrintable { runway: String },
    #[error("runway {runway:?}: label {key:?}: {why}")]
    BadLabel {
        runway: String,
        key: String,
        why: String,
    },
    #[error("runway {runway:?}: agent: {source}")]
    BadAgent { runway: String, source: NameError },
    #[error("runway {runway:?}: after: {source}")]
    BadAfter { runway: String, source: NameError },
    #[error("runway id {0:?} is used twice")]
    DuplicateId(String),
    #[error("runway {runway:?}: id: {source}")]
    BadId { runway: String, source: NameError },
    #[error(
        "runway {runway:?}: unknown agent {agent:?} (known: {known}); a plugin is NAME.wasm + NAME.toml in the plugins folder, and `runway plugins export DIR` writes the built-in agents (import-applications, compliance-check, grant-calculator) into DIR"
    )]
    UnknownAgent {
        runway: String,
        agent: String,
        known: String,
    },

    #[error(
        "runway {runway:?}: agent {agent} is not granted {} on {dataset} (its grants allow: {granted}); to allow it, add `\"{dataset}\" = \"{}\"` under [datasets] in {agent}.toml beside {agent}.wasm in the plugins folder",
        .mode.name(),
        .mode.name()
    )]
    BeyondGrant {
        runway: String,
        agent: String,
        dataset: String,
        mode: LockMode,
        /// What the agent's grants file allows, e.g. `test_* exclusive`.
        granted: String,
    },
    #[error("runway {runway:?}: datasets: {source}")]
    BadDataset { runway: String, source: NameError },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error(
        "runway {runway:?}: {key} {value:?} is not a duration ({reason}); e.g. \"90s\", \"5m\", \"1h 30m\""
    )]
    BadDuration {
        runway: String,
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "runway {runway:?}: {key} {value:?} is not a time ({reason}); e.g. \"2026-12-03T01:00:00Z\", \"01:00\", \"in 10m\""
    )]
    BadTime {
        runway: String,
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("runway {runway:?}: approval.role: {why}")]
    BadRole { runway: String, why: String },
    #[error("runway {runway:?}: {key} must be {bound}")]
    OutOfRange {
        runway: String,
        key: &'static str,
        bound: String,
    },
    #[error("runway {runway:?}: input cannot be encoded as JSON: {source}")]
    Input {
        runway: String,
        source: serde_json::Error,
    },
    #[error("runway {runway:?}: {why}")]
    BadRoute { runway: String, why: String },
    #[error("plan {0}")]
    Budget(#[from] BudgetError),
    #[error("runway {runway:?}: {source}")]
    Flow { runway: String, source: FlowError },
    #[error("runway {runway:?}: {source}")]
    Condition {
        runway: String,
        source: ConditionError,
    },
    #[error(transparent)]
    Trigger(#[from] TriggerError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    runway: Vec<ManifestFile>,
    budget: Option<BudgetFile>,
    /// Read by [`TriggerDef::parse`].
    #[serde(default)]
    trigger: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    /// Default: the agent's name.
    #[serde(default)]
    id: String,
    agent: AgentFile,
    #[serde(default = "default_action")]
    action: String,
    #[serde(default)]
    datasets: LockSet,
    #[serde(default)]
    after: Vec<String>,
    input: Option<toml::Value>,
    #[serde(default)]
    priority: i64,
    window: Option<String>,
    heartbeat: Option<String>,
    retry: Option<RetryFile>,
    earliest_start: Option<String>,
    expires: Option<String>,
    approval: Option<ApprovalFile>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    when: Option<String>,
    #[serde(default)]
    on_open: OnOpen,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalFile {
    required: bool,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    attempts: u32,
    backoff: Option<Backoff>,
    initial: Option<String>,
    max: Option<String>,
    jitter: Option<bool>,
}

fn default_action() -> String {
    "run".to_string()
}

/// Parses a duration of a manifest, naming the key when it is not one.
fn duration(runway: &str, key: &'static str, text: &str) -> Result<Duration, PlanError> {
    let bad = |reason: String| PlanError::BadDuration {
        runway: runway.to_string(),
        key,
        value: cut(text, 64),
        reason,
    };
    let parsed: jiff::SignedDuration = text.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
    Duration::try_from(parsed).map_err(|_| bad("it is negative".into()))
}

/// Parses a time of a manifest (see the module doc), naming the key when
/// it is not one.
fn when(runway: &str, key: &'static str, text: &str) -> Result<When, PlanError> {
    let bad = |reason: String| PlanError::BadTime {
        runway: runway.to_string(),
        key,
        value: cut(text, 64),
        reason,
    };
    if let Some(after) = text.strip_prefix("in ") {
        return duration(runway, key, after).map(When::In);
    }
    if text.len() <= 5 && text.contains(':') {
        return text
            .parse::<jiff::civil::Time>()
            .map(When::Daily)
            .map_err(|e| bad(e.to_string()));
    }
    let at = text
        .parse::<jiff::Timestamp>()
        .map_err(|e| bad(e.to_string()))?;
    if at < jiff::Timestamp::UNIX_EPOCH || at > latest() {
        return Err(PlanError::OutOfRange {
            runway: runway.to_string(),
            key,
            bound: time_range(),
        });
    }
    Ok(When::At(at))
}

/// What `grants` allow, as a refusal says it: `a shared, test_* exclusive`.
fn granted(grants: &Grants) -> String {
    if grants.datasets.is_empty() {
        return "no dataset".into();
    }
    let each: Vec<String> = grants
        .datasets
        .iter()
        .map(|(d, m)| format!("{d} {}", m.name()))
        .collect();
    each.join(", ")
}

/// `d`, when it is a whole number of milliseconds (the trail keeps a
/// window and a retry's waits in milliseconds; nothing is rounded).
fn whole_millis(runway: &str, key: &'static str, d: Duration) -> Result<Duration, PlanError> {
    match d.subsec_nanos() % 1_000_000 {
        0 => Ok(d),
        _ => Err(PlanError::OutOfRange {
            runway: runway.to_string(),
            key,
            bound: "a whole number of milliseconds".into(),
        }),
    }
}

impl ManifestFile {
    /// Its condition, parsed, and the names of `after` when it reads
    /// their outputs (`input`'s references, checked).
    fn flow(&self, input: &[u8]) -> Result<(Option<Condition>, Vec<String>), PlanError> {
        let runway = || self.id.clone();
        let refers = flow::check(input, &self.after).map_err(|source| PlanError::Flow {
            runway: runway(),
            source,
        })?;
        let when = (self.when.as_deref().map(Condition::parse).transpose()).map_err(|source| {
            PlanError::Condition {
                runway: runway(),
                source,
            }
        })?;
        let reads = match refers || when.is_some() {
            true => self.after.clone(),
            false => Vec::new(),
        };
        Ok((when, reads))
    }

    /// The window, retry policy and priority, checked.
    /// Its `heartbeat`: how long its run may go without reporting
    /// progress, between 100 ms and 24 h.
    fn heartbeat(&self) -> Result<Option<Duration>, PlanError> {
        let Some(text) = &self.heartbeat else {
            return Ok(None);
        };
        let id = self.id.as_str();
        let beat = whole_millis(id, "heartbeat", duration(id, "heartbeat", text)?)?;
        if beat < Duration::from_millis(100)
            || beat > Duration::from_secs(crate::limits::MAX_WINDOW_SECS)
        {
            return Err(PlanError::OutOfRange {
                runway: id.to_string(),
                key: "heartbeat",
                bound: "between 100ms and 24h".into(),
            });
        }
        Ok(Some(beat))
    }

    fn schedule(&self) -> Result<(Option<Duration>, Retry), PlanError> {
        let id = self.id.as_str();
        let range = |key, bound: &str| PlanError::OutOfRange {
            runway: id.to_string(),
            key,
            bound: bound.to_string(),
        };
        let window = match &self.window {
            None => None,
            Some(text) => {
                let w = whole_millis(id, "window", duration(id, "window", text)?)?;
                if w < Duration::from_secs(1)
                    || w > Duration::from_secs(crate::limits::MAX_WINDOW_SECS)
                {
                    return Err(range("window", "between 1s and 24h"));
                }
                Some(w)
            }
        };
        let mut retry = Retry::default();
        if let Some(r) = &self.retry {
            if r.attempts == 0 || r.attempts > MAX_ATTEMPTS {
                return Err(range(
                    "retry.attempts",
                    &format!("between 1 and {MAX_ATTEMPTS}"),
                ));
            }
            retry.attempts = r.attempts;
            retry.backoff = r.backoff.unwrap_or(retry.backoff);
            retry.jitter = r.jitter.unwrap_or(retry.jitter);
            if let Some(text) = &r.initial {
                let initial = duration(id, "retry.initial", text)?;
                retry.initial = whole_millis(id, "retry.initial", initial)?;
            }
            if let Some(text) = &r.max {
                retry.max = whole_millis(id, "retry.max", duration(id, "retry.max", text)?)?;
            }
            if retry.max > Duration::from_secs(crate::limits::MAX_WINDOW_SECS) {
                return Err(range("retry.max", "at most 24h"));
            }
            if retry.initial > retry.max {
                return Err(range("retry.initial", "at most retry.max"));
            }
        }
        Ok((window, retry))
    }
}

/// The plan file in `text`, TOML or JSON, a plan or one manifest.
fn plan_file(text: &str) -> Result<PlanFile, PlanError> {
    // JSON is an object or a list of objects; a TOML plan may start with
    // `[[runway]]` or a `[table]`.
    let trimmed = text.trim_start();
    let json_list = trimmed
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with(['{', ']']));
    if trimmed.starts_with('{') || json_list {
        let json = |e: serde_json::Error| {
            let message = runway_audit::render::escape(&e.to_string()).into_owned();
            PlanError::Json(cut(&message, MAX_PROBLEM_CHARS))
        };
        // The shape first, then the text again into its type: a `Value`'s
        // map is sorted, and a lock set keeps the manifest's order.
        let shape: serde_json::Value = serde_json::from_str(text).map_err(json)?;
        return Ok(match shape {
            serde_json::Value::Array(_) => PlanFile {
                runway: serde_json::from_str(text).map_err(json)?,
                budget: None,
                trigger: Vec::new(),
            },
            serde_json::Value::Object(m)
                if !m.contains_key("runway") && !m.contains_key("trigger") =>
            {
                PlanFile {
                    runway: vec![serde_json::from_str(text).map_err(json)?],
                    budget: None,
                    trigger: Vec::new(),
                }
            }
            _ => serde_json::from_str(text).map_err(json)?,
        });
    }
    let syntax = |e: toml::de::Error| PlanError::Syntax(TomlProblem::new(&e, text));
    // A plan has `[[runway]]` tables (or a `runway` list); one manifest on
    // its own has neither. Told apart without parsing twice.
    let is_plan = text.trim().is_empty()
        || text.lines().any(|line| {
            let line = line.trim_start();
            let table = line.strip_prefix("[[").is_some_and(|rest| {
                let rest = rest.trim_start();
                rest.starts_with("runway") || rest.starts_with("trigger")
            });
            let list = line
                .strip_prefix("runway")
                .is_some_and(|rest| rest.trim_start().starts_with('='));
            table || list
        });
    if is_plan {
        return toml::from_str(text).map_err(syntax);
    }
    let manifest: ManifestFile = toml::from_str(text).map_err(syntax)?;
    Ok(PlanFile {
        runway: vec![manifest],
        budget: None,
        trigger: Vec::new(),
    })
}

impl ManifestFile {
    /// The caps on what reaches the audit record, checked before anything
    /// else so that no error quotes an oversized field: the id first (every
    /// later error names it), then agent, action, `after`, lock set.
    fn check_caps(&self) -> Result<(), PlanError> {
        names::check_runway_id(&self.id).map_err(|source| PlanError::BadId {
            runway: cut(&self.id, names::MAX_DATASET),
            source,
        })?;
        let runway = || self.id.clone();
        names::check_agent(self.agent.name()).map_err(|source| PlanError::BadAgent {
            runway: runway(),
            source,
        })?;
        self.agent.check().map_err(|why| PlanError::BadRoute {
            runway: runway(),
            why,
        })?;
        check_action(&self.id, &self.action)?;
        for (key, count, max) in [
            ("after", self.after.len(), MAX_AFTER),
            ("datasets", self.datasets.len(), MAX_LOCKS),
            ("labels", self.labels.len(), MAX_LABELS),
        ] {
            if count > max {
                return Err(PlanError::TooMany {
                    runway: runway(),
                    key,
                    count,
                    max,
                });
            }
        }
        for (key, value) in &self.labels {
            let why = if key.is_empty() || key.contains('=') {
                Some("a key is not empty and has no '='".to_string())
            } else if key.len().max(value.len()) > MAX_LABEL_BYTES {
                Some(format!(
                    "keys and values are at most {MAX_LABEL_BYTES} bytes"
                ))
            } else if (key.chars().chain(value.chars())).any(runway_audit::render::needs_escape) {
                Some("keys and values are printable".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(PlanError::BadLabel {
                    runway: runway(),
                    key: cut(key, MAX_LABEL_BYTES),
                    why,
                });
            }
        }
        for after in &self.after {
            names::check_runway_id(after).map_err(|source| PlanError::BadAfter {
                runway: runway(),
                source,
            })?;
        }
        Ok(())
    }
}

pub use crate::limits::cut;

/// A manifest's `action`: within its cap, printable.
fn check_action(runway: &str, action: &str) -> Result<(), PlanError> {
    if action.len() > MAX_ACTION_BYTES {
        return Err(PlanError::TooLong {
            runway: runway.to_string(),
            key: "action",
            len: action.len(),
            max: MAX_ACTION_BYTES,
        });
    }
    if action.chars().any(runway_audit::render::needs_escape) {
        return Err(PlanError::ActionNotPrintable {
            runway: runway.to_string(),
        });
    }
    Ok(())
}

impl Manifest {
    /// Its lock set: valid dataset names, each within `grants`.
    fn check_locks(&self, grants: &Grants) -> Result<(), PlanError> {
        for (dataset, &mode) in &self.datasets {
            names::check_dataset(dataset).map_err(|source| PlanError::BadDataset {
                runway: self.id.clone(),
                source,
            })?;
            if !grants.permits(dataset, mode) {
                return Err(PlanError::BeyondGrant {
                    runway: self.id.clone(),
                    agent: self.agent.clone(),
                    dataset: dataset.clone(),
                    mode,
                    granted: granted(grants),
                });
            }
        }
        Ok(())
    }

    /// The checks filing makes, for a manifest an agent asked for (a
    /// delegated child) against its agent's `grants`: action, lock set
    /// and its size, input, attempts.
    pub fn check_asked(&self, grants: &Grants) -> Result<(), PlanError> {
        check_action(&self.id, &self.action)?;
        if self.datasets.len() > MAX_LOCKS {
            return Err(PlanError::TooMany {
                runway: self.id.clone(),
                key: "datasets",
                count: self.datasets.len(),
                max: MAX_LOCKS,
            });
        }
        if self.input.len() > MAX_INPUT_BYTES {
            return Err(PlanError::TooLong {
                runway: self.id.clone(),
                key: "input",
                len: self.input.len(),
                max: MAX_INPUT_BYTES,
            });
        }
        if self.retry.attempts == 0 || self.retry.attempts > MAX_ATTEMPTS {
            return Err(PlanError::TooMany {
                runway: self.id.clone(),
                key: "retry.attempts",
                count: self.retry.attempts as usize,
                max: MAX_ATTEMPTS as usize,
            });
        }
        self.check_locks(grants)
    }
}

/// A refusal reason as it is recorded: cut to [`MAX_REASON`].
pub fn cap_reason(reason: &str) -> String {
    cut(reason, MAX_REASON)
}

/// The audit entry of a refused plan (no runway, no agent), its reason
/// capped.
pub fn rejection(reason: &str) -> runway_audit::Entry {
    runway_audit::Entry::of_host(runway_audit::Event::Rejected {
        reason: cap_reason(reason),
    })
}

impl Plan {
    /// Reads (see [`crate::files`]) and validates a plan file against the
    /// known agents.
    pub fn load(path: &Path, catalog: &impl Catalog, caps: &ReadCaps) -> Result<Plan, PlanError> {
        Plan::read(path, catalog, caps).map(|(plan, _)| plan)
    }

    /// [`Plan::load`], with the SHA-256 of the file's bytes.
    pub fn read(
        path: &Path,
        catalog: &impl Catalog,
        caps: &ReadCaps,
    ) -> Result<(Plan, runway_audit::Hash), PlanError> {
        let bytes = files::read(path, FileKind::Plan, caps)?;
        let fingerprint = Fingerprint::of(&bytes);
        let parsed = match std::str::from_utf8(&bytes) {
            Ok(text) => Plan::parse(text, catalog),
            Err(e) => Err(PlanError::NotUtf8(e.valid_up_to())),
        };
        match parsed {
            Ok(plan) => Ok((plan, fingerprint.sha256)),
            Err(source) => Err(PlanError::InFile {
                path: path.display().to_string(),
                fingerprint,
                source: Box::new(source),
            }),
        }
    }

    /// Parses and validates plan text against the known agents: TOML or
    /// JSON (an object, or a list of them), a plan (`runway` a list of
    /// manifests; in JSON also a bare list) or one manifest on its own.
    pub fn parse(text: &str, catalog: &impl Catalog) -> Result<Plan, PlanError> {
        let mut file = plan_file(text)?;
        for m in &mut file.runway {
            if m.id.is_empty() {
                m.id = m.agent.name().to_string();
            }
        }
        if file.runway.len() > MAX_RUNWAYS {
            return Err(PlanError::TooManyRunways {
                count: file.runway.len(),
                max: MAX_RUNWAYS,
            });
        }
        let budget = file.budget.map(BudgetFile::check).transpose()?;
        let mut manifests = Vec::with_capacity(file.runway.len());
        for m in file.runway {
            m.check_caps()?;
            let input = match &m.input {
                None => Vec::new(),
                Some(v) => serde_json::to_vec(v).map_err(|source| PlanError::Input {
                    runway: m.id.clone(),
                    source,
                })?,
            };
            if input.len() > MAX_INPUT_BYTES {
                return Err(PlanError::TooLong {
                    runway: m.id,
                    key: "input",
                    len: input.len(),
                    max: MAX_INPUT_BYTES,
                });
            }
            let (window, retry) = m.schedule()?;
            let heartbeat = m.heartbeat()?;
            let (condition, reads) = m.flow(&input)?;
            let earliest_start = m
                .earliest_start
                .as_deref()
                .map(|t| when(&m.id, "earliest_start", t))
                .transpose()?;
            let expires = m
                .expires
                .as_deref()
                .map(|t| when(&m.id, "expires", t))
                .transpose()?;
            let approval = match &m.approval {
                Some(a) if a.required => {
                    let role = a.role.clone().unwrap_or_else(|| "approver".into());
                    let parsed = role.parse::<Role>().map_err(|why| PlanError::BadRole {
                        runway: m.id.clone(),
                        why,
                    })?;
                    if !parsed.grants(Right::Approve) {
                        let may: Vec<&str> = Role::ALL
                            .iter()
                            .filter(|r| r.grants(Right::Approve))
                            .map(|r| r.name())
                            .collect();
                        return Err(PlanError::BadRole {
                            runway: m.id,
                            why: format!(
                                "the role {role:?} may not approve (roles that may: {})",
                                may.join(", ")
                            ),
                        });
                    }
                    Some(role)
                }
                _ => None,
            };
            let route = m.agent.route().cloned();
            manifests.push(Manifest {
                id: m.id,
                agent: m.agent.name().to_string(),
                action: m.action,
                datasets: m.datasets,
                after: m.after,
                input,
                priority: m.priority,
                window,
                retry,
                earliest_start,
                expires,
                approval,
                labels: m.labels,
                lineage: None,
                handoff_from: None,
                heartbeat,
                route,
                on_open: m.on_open,
                budget,
                when: condition,
                reads,
                fired_by: None,
            });
        }
        let triggers = file
            .trigger
            .into_iter()
            .map(|t| {
                TriggerDef::parse(t, |runways| {
                    let runways = trigger::with_cause(runways, None)?;
                    let plan = Plan::parse(&runways, catalog).map_err(|e| e.to_string())?;
                    Ok(plan.manifests.into_iter().map(|m| m.id).collect())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let plan = Plan {
            manifests,
            triggers,
        };
        plan.validate(catalog)?;
        Ok(plan)
    }

    fn validate(&self, catalog: &impl Catalog) -> Result<(), PlanError> {
        if self.manifests.is_empty() && self.triggers.is_empty() {
            return Err(PlanError::Empty);
        }
        let mut ids = HashSet::new();
        for m in &self.manifests {
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
            m.check_locks(grants)?;
            // Every candidate of a route: known, and granted the lock set.
            for agent in m.route.iter().flat_map(|r| r.any.iter().skip(1)) {
                let Some(grants) = catalog.grants(agent) else {
                    return Err(PlanError::UnknownAgent {
                        runway: m.id.clone(),
                        agent: agent.clone(),
                        known: catalog.names().join(", "),
                    });
                };
                let candidate = Manifest {
                    agent: agent.clone(),
                    ..m.clone()
                };
                candidate.check_locks(grants)?;
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
                let next = index.get(after[*edge].as_str()).copied();
                *edge += 1;
                // A runway filed before cannot depend on this plan.
                let Some(next) = next else { continue };
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

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_in_the_upper_half() {
        let retry = Retry {
            attempts: 10,
            backoff: Backoff::Exponential,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: false,
        };
        let waits: Vec<u128> = (1..=5).map(|n| retry.wait_after(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        let fixed = Retry {
            backoff: Backoff::Fixed,
            ..retry.clone()
        };
        assert_eq!(fixed.wait_after(4), Duration::from_millis(100));
        let jittered = Retry {
            jitter: true,
            ..retry
        };
        for _ in 0..100 {
            let w = jittered.wait_after(2);
            assert!(w >= Duration::from_millis(100) && w <= Duration::from_millis(200));
        }
    }

    fn agents() -> BTreeMap<String, Grants> {
        let open = Grants::parse(
            "[datasets]\n\"d*\" = \"exclusive\"\nro = \"shared\"\n",
            "t.toml",
        )
        .unwrap();
        [("a".to_string(), open.clone()), ("b".to_string(), open)].into()
    }

    #[test]
    fn a_json_manifest_keeps_its_lock_order() {
        let plan = Plan::parse(
            r#"{"id": "one", "agent": "a", "datasets": {"d1": "shared", "d0": "exclusive"}}"#,
            &agents(),
        )
        .unwrap();
        let order: Vec<&str> = plan.manifests[0]
            .datasets
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(order, ["d1", "d0"]);
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
                (&"d1".to_string(), &LockMode::Exclusive),
                (&"d0".to_string(), &LockMode::Shared)
            ],
            "the lock set keeps the manifest's order"
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

    /// Every field that reaches an audit record is capped, and the refusal
    /// names runway and key without quoting the oversized value.
    #[test]
    fn caps_every_field_at_its_source() {
        let long = "Q".repeat(MAX_ACTION_BYTES + 1);
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("'d{i}'"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let locks = (0..=MAX_LOCKS)
            .map(|i| format!("d{i}='shared'"))
            .collect::<Vec<_>>()
            .join(",");
        let cases = [
            (
                format!("[[runway]]\nid='x'\nagent='a'\naction='{long}'"),
                "runway \"x\": action is 129 bytes (at most 128)".to_string(),
            ),
            (
                "[[runway]]\nid='x'\nagent='a'\naction=\"a\\u202Eb\"".to_string(),
                "runway \"x\": action is not printable text".to_string(),
            ),
            (
                format!(
                    "[[runway]]\nid='x'\nagent='a'\nafter=[{}]",
                    many(MAX_AFTER + 1)
                ),
                "runway \"x\": after has 257 entries (at most 256)".to_string(),
            ),
            (
                format!("[[runway]]\nid='x'\nagent='a'\ndatasets={{{locks}}}"),
                "runway \"x\": datasets has 65 entries (at most 64)".to_string(),
            ),
            (
                format!(
                    "[[runway]]\nid='x'\nagent='a'\ninput={{s='{}'}}",
                    "v".repeat(MAX_INPUT_BYTES)
                ),
                format!(
                    "runway \"x\": input is {} bytes (at most {MAX_INPUT_BYTES})",
                    MAX_INPUT_BYTES + 8
                ),
            ),
            (
                format!("[[runway]]\nid='x'\nagent='{long}'"),
                "runway \"x\": agent: agent name is 129 bytes long (at most 64)".to_string(),
            ),
            (
                format!("[[runway]]\nid='{long}'\nagent='a'"),
                format!(
                    "runway \"{}…\": id: runway id is 129 bytes long (at most 64)",
                    "Q".repeat(61)
                ),
            ),
            (
                "[[runway]]\nid='x'\nagent='a'\n".repeat(MAX_RUNWAYS + 1),
                "plan has 10001 runways (at most 10000)".to_string(),
            ),
        ];
        for (text, expected) in cases {
            let err = Plan::parse(&text, &agents()).unwrap_err().to_string();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn syntax_errors_name_the_place_not_the_line() {
        let key = "K".repeat(10_000);
        let err = Plan::parse(
            &format!("[[runway]]\nid='x'\nagent='a'\n{key}=1"),
            &agents(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("plan is not valid: line 4, column 1: unknown field `KKK"),
            "{err}"
        );
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ééééé", 6), "é…"); // 2-byte letters, 3-byte ellipsis
        assert_eq!(cap_reason(&"r".repeat(5000)).len(), MAX_REASON);
    }
}
