//! The triggers a host keeps, and what the trail says of them: the book
//! the journal's fold builds at start ([`TriggerBook::apply`], fed every
//! trigger record, every COMMITTED record and every FILING of a fired
//! runway, in trail order) and the controller keeps up to date while it
//! runs, through the same methods.
//!
//! Exactly once, across `kill -9`: a firing's TRIGGER FIRED record, with
//! its dedup key, comes before the FILING records of the runways it files
//! (they name it, `fired_by`). So after a crash the fold knows
//! - every key fired: never fired again;
//! - each firing whose runways were not all filed ([`TriggerBook::unfiled`]):
//!   the rest are filed at restart;
//! - each COMMITTED record a commit trigger had to fire for and has no
//!   firing nor TRIGGER CHAIN CUT record ([`TriggerBook::pending`]): fired
//!   at restart (or cut, by the same rules as live);
//! - each event delivered (a PUBLISHED record of an attempt that then
//!   SUCCEEDED) a topic trigger had to fire for and no firing lists
//!   ([`TriggerBook::owed_events`]): fired at restart — a debounced
//!   trigger's owed events make one batch whose window starts again then.
//!
//! An event's key is its PUBLISHED record's place (its number, and its
//! shard on a shared database: [`Place`]); a debounced firing's key is
//! its first event's, and its cause lists every event it collected, so
//! each event is in exactly one firing. A commit's key is its COMMITTED
//! record's place.
//!
//! A schedule's key is its scheduled time, so a restart never fires a time
//! twice: the newest time fired is where its next search starts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use runway_audit::{Entry, Event};
use serde_json::{Value, json};

use super::place::Place;
use super::trigger::{On, TriggerDef, glob_matches, is_exact};
use crate::limits::MAX_CAUSE_BYTES;

/// One trigger as it stands.
#[derive(Debug, Clone)]
pub struct Standing {
    pub def: TriggerDef,
    pub paused: bool,
    /// Firings so far (refused ones included).
    pub fired: u64,
    /// When it last fired.
    pub last_fired: Option<Timestamp>,
    /// Filed, or last resumed, at: a schedule's times before are not due.
    pub since: Timestamp,
    /// A schedule's newest time fired.
    pub last_time: Option<Timestamp>,
}

impl Standing {
    /// The moment a schedule's next search starts after.
    pub fn searched_from(&self) -> Timestamp {
        self.last_time.map_or(self.since, |t| t.max(self.since))
    }
}

/// A firing recorded whose runways are not all filed yet.
#[derive(Debug, Clone)]
pub struct Open {
    /// What fired it (the runways' input's `trigger`).
    pub cause: Value,
    /// The runways to file, as plan text, as the trigger was when it fired.
    pub runways: String,
    pub names: Vec<String>,
    /// Those filed: plan-local id → runway id.
    pub filed: BTreeMap<String, String>,
}

/// Every trigger, and the firings owed.
#[derive(Debug, Default)]
pub struct TriggerBook {
    pub triggers: BTreeMap<String, Standing>,
    /// (trigger, key) of firings recorded and not wholly filed.
    pub unfiled: BTreeMap<(String, String), Open>,
    /// (COMMITTED record, trigger) → cause: commits a trigger owes a
    /// firing.
    pub pending: BTreeMap<(Place, String), Value>,
    /// Commit triggers by the dataset they name, and those with a glob.
    exact: HashMap<String, BTreeSet<String>>,
    globs: BTreeSet<String>,
    /// Topic triggers by their topic.
    topics: HashMap<String, BTreeSet<String>>,
    /// Events published by attempts not ended yet, by runway (the fold's).
    tentative: HashMap<String, Vec<Delivered>>,
    /// (trigger, PUBLISHED record) → the event: delivered, no firing yet.
    pub owed_events: BTreeMap<(String, Place), Delivered>,
    /// Debounced triggers' events collected, and when each batch fires.
    pub batches: BTreeMap<String, Batch>,
    /// Schedules to look at, by when (kept by the live controller).
    pub queue: BTreeSet<(Timestamp, String)>,
    /// When the live controller last looked at each schedule.
    pub looked: HashMap<String, Timestamp>,
}

/// An event delivered: its PUBLISHED record's place, the runway that
/// published it, its topic and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub at: Place,
    pub runway: String,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// A debounced trigger's events, waiting for its window to close.
#[derive(Debug, Clone)]
pub struct Batch {
    pub events: Vec<Delivered>,
    /// When it fires (the controller's clock).
    pub due: Timestamp,
}

/// The dedup key of the firing for the event (or the batch whose first
/// event is) PUBLISHED record `at`.
pub fn event_key(at: &Place) -> String {
    format!("event:{at}")
}

/// What a topic trigger's runways are told fired them: the events, each
/// with its payload (JSON when it is, else text) while they fit in
/// [`MAX_CAUSE_BYTES`], past that its digest only.
pub fn topic_cause(trigger: &str, topic: &str, events: &[Delivered]) -> Value {
    let mut left = MAX_CAUSE_BYTES;
    let listed: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut v = json!({
                "runway": e.runway,
                "sha256": hex(&runway_audit::sha256(&e.payload)),
                "bytes": e.payload.len(),
            });
            e.at.write_into(&mut v);
            let payload = serde_json::from_slice::<Value>(&e.payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&e.payload).into()));
            let size = payload.to_string().len();
            if size <= left {
                left -= size;
                v["payload"] = payload;
            }
            v
        })
        .collect();
    json!({
        "id": trigger,
        "kind": "topic",
        "topic": topic,
        "events": listed,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A trigger as the controller shows it.
#[derive(Debug, Clone)]
pub struct TriggerReport {
    pub id: String,
    /// Its `on` table as filed.
    pub on: Value,
    /// `schedule`, `commit` or `topic`.
    pub kind: &'static str,
    pub paused: bool,
    pub fired: u64,
    pub last_fired: Option<Timestamp>,
    /// A schedule's next firings (none while paused).
    pub next: Vec<Timestamp>,
    /// The plan-local ids of the runways each firing files.
    pub runways: Vec<String>,
    /// Its whole definition, as its TRIGGER record keeps it.
    pub definition: String,
    /// Runways its firings filed, and what their runs spent
    /// ([`super::cost`]).
    pub filed: u64,
    pub spent: super::cost::Spent,
}

/// The dedup key of the firing for COMMITTED record `at`.
pub fn commit_key(at: &Place) -> String {
    format!("commit:{at}")
}

/// The dedup key of a schedule's firing for time `at`.
pub fn time_key(at: Timestamp) -> String {
    at.to_string()
}

/// What a commit trigger's runways are told fired them.
pub fn commit_cause(trigger: &str, dataset: &str, at: &Place, token: u64, runway: &str) -> Value {
    let mut cause = json!({
        "id": trigger,
        "kind": "commit",
        "dataset": dataset,
        "token": token,
        "runway": runway,
    });
    at.write_into(&mut cause);
    cause
}

/// What a schedule's runways are told fired them.
pub fn schedule_cause(trigger: &str, at: Timestamp, late: bool) -> Value {
    json!({
        "id": trigger,
        "kind": "schedule",
        "scheduled": time_key(at),
        "missed": late,
    })
}

impl TriggerBook {
    /// Trigger `def` filed at `at` (again: its definition replaced, its
    /// history kept).
    pub fn file(&mut self, def: TriggerDef, at: Timestamp) {
        self.unindex(&def.id);
        match &def.on {
            On::Commit { datasets } if is_exact(datasets) => {
                let ids = self.exact.entry(datasets.clone()).or_default();
                ids.insert(def.id.clone());
            }
            On::Commit { .. } => {
                self.globs.insert(def.id.clone());
            }
            On::Topic { topic, .. } => {
                let ids = self.topics.entry(topic.clone()).or_default();
                ids.insert(def.id.clone());
            }
            On::Schedule { .. } => {}
        }
        match self.triggers.get_mut(&def.id) {
            Some(t) => t.def = def,
            None => {
                let standing = Standing {
                    def,
                    paused: false,
                    fired: 0,
                    last_fired: None,
                    since: at,
                    last_time: None,
                };
                self.triggers.insert(standing.def.id.clone(), standing);
            }
        }
    }

    fn unindex(&mut self, id: &str) {
        let Some(t) = self.triggers.get(id) else {
            return;
        };
        let (index, key) = match &t.def.on {
            On::Commit { datasets } => (&mut self.exact, datasets.clone()),
            On::Topic { topic, .. } => (&mut self.topics, topic.clone()),
            On::Schedule { .. } => return,
        };
        if let Some(ids) = index.get_mut(&key) {
            ids.remove(id);
            if ids.is_empty() {
                index.remove(&key);
            }
        }
        self.globs.remove(id);
    }

    /// Pauses (or resumes, at `at`) trigger `id`.
    pub fn set_paused(&mut self, id: &str, paused: bool, at: Timestamp) {
        if let Some(t) = self.triggers.get_mut(id) {
            if t.paused && !paused {
                t.since = at;
            }
            t.paused = paused;
        }
    }

    /// Removes trigger `id`; what it owed is forgotten.
    pub fn remove(&mut self, id: &str) {
        self.unindex(id);
        self.triggers.remove(id);
        self.pending.retain(|(_, t), _| t != id);
        self.owed_events.retain(|(t, _), _| t != id);
        self.batches.remove(id);
    }

    /// Trigger `id` fired for `key` at `at`; `open` is the firing to file,
    /// unless it was refused.
    pub fn fired(&mut self, id: &str, key: &str, at: Timestamp, open: Option<Open>) {
        self.settle_commit(id, key);
        if key.starts_with("event:")
            && let Some(open) = &open
            && let Some(events) = open.cause["events"].as_array()
        {
            for at in events.iter().filter_map(Place::of_cause) {
                self.owed_events.remove(&(id.to_string(), at));
            }
        }
        let Some(t) = self.triggers.get_mut(id) else {
            return;
        };
        t.fired += 1;
        t.last_fired = Some(at);
        if let Ok(time) = key.parse::<Timestamp>() {
            t.last_time = Some(t.last_time.map_or(time, |l| l.max(time)));
        }
        if let Some(open) = open
            && !open.names.is_empty()
        {
            self.unfiled.insert((id.to_string(), key.to_string()), open);
        }
    }

    /// Runway `name` of trigger `id`'s firing for `key` was filed as
    /// `runway`.
    pub fn filed(&mut self, id: &str, key: &str, name: &str, runway: &str) {
        let firing = (id.to_string(), key.to_string());
        if let Some(open) = self.unfiled.get_mut(&firing) {
            open.filed.insert(name.to_string(), runway.to_string());
            if open.names.iter().all(|n| open.filed.contains_key(n)) {
                self.unfiled.remove(&firing);
            }
        }
    }

    /// The active commit triggers that `dataset` matches, by id.
    pub fn commit_triggers(&self, dataset: &str) -> Vec<String> {
        let exact = self.exact.get(dataset).into_iter().flatten();
        let globbed = self.globs.iter().filter(|id| {
            let t = &self.triggers[*id];
            matches!(&t.def.on, On::Commit { datasets } if glob_matches(datasets, dataset))
        });
        exact
            .chain(globbed)
            .filter(|id| !self.triggers[*id].paused)
            .cloned()
            .collect()
    }

    /// The active topic triggers on `topic`, by id.
    pub fn topic_triggers(&self, topic: &str) -> Vec<String> {
        let ids = self.topics.get(topic).into_iter().flatten();
        ids.filter(|id| !self.triggers[*id].paused)
            .cloned()
            .collect()
    }

    /// A commit key fired (or cut): the commit is owed nothing more.
    fn settle_commit(&mut self, id: &str, key: &str) {
        if let Some(at) = key.strip_prefix("commit:").and_then(Place::parse) {
            self.pending.remove(&(at, id.to_string()));
        }
    }

    /// Trigger `id`'s firing for `key` was cut (the chain of triggers
    /// reached its cap): the commit or event is owed nothing more, and the
    /// trigger did not fire.
    pub fn cut(&mut self, id: &str, key: &str) {
        self.settle_commit(id, key);
        if let Some(at) = key.strip_prefix("event:").and_then(Place::parse) {
            self.owed_events.remove(&(id.to_string(), at));
        }
    }

    /// The firing `open` would be for trigger `id` as it stands.
    pub fn open(&self, id: &str, cause: Value) -> Option<Open> {
        let t = self.triggers.get(id)?;
        Some(Open {
            cause,
            runways: t.def.runways.clone(),
            names: t.def.names.clone(),
            filed: BTreeMap::new(),
        })
    }

    /// Folds record `place`, `entry`, written at `at` (the journal calls it
    /// for every record it keeps, in trail order; FILING records come
    /// through [`TriggerBook::filed`]).
    pub fn apply(&mut self, place: &Place, at: Timestamp, entry: &Entry) {
        match &entry.event {
            Event::TriggerFiled {
                id,
                definition,
                since_ns,
                ..
            } => match read_definition(definition) {
                Ok(def) => self.file(def, nanos(*since_ns)),
                Err(why) => {
                    tracing::warn!(trigger = %id, "cannot be rebuilt from the trail: {why}")
                }
            },
            Event::TriggerPaused { id, .. } => self.set_paused(id, true, at),
            Event::TriggerResumed { id, since_ns, .. } => {
                self.set_paused(id, false, nanos(*since_ns))
            }
            Event::TriggerRemoved { id, .. } => self.remove(id),
            Event::TriggerFired {
                id,
                key,
                cause,
                refused,
            } => {
                let cause = serde_json::from_str(cause).unwrap_or(Value::Null);
                let open = match refused {
                    None => self.open(id, cause),
                    Some(_) => None,
                };
                self.fired(id, key, at, open);
            }
            Event::TriggerChainCut { id, key, .. } => self.cut(id, key),
            Event::Published { topic, payload } => {
                let event = Delivered {
                    at: place.clone(),
                    runway: entry.runway.clone(),
                    topic: topic.clone(),
                    payload: payload.clone(),
                };
                self.tentative
                    .entry(entry.runway.clone())
                    .or_default()
                    .push(event);
            }
            // An attempt's end: its events are delivered if it succeeded.
            Event::Succeeded { .. } => {
                for event in self.tentative.remove(&entry.runway).unwrap_or_default() {
                    for id in self.topic_triggers(&event.topic) {
                        self.owed_events
                            .insert((id, event.at.clone()), event.clone());
                    }
                }
            }
            Event::Failed { .. } | Event::Moved { .. } => {
                self.tentative.remove(&entry.runway);
            }
            Event::Committed { token, .. } => {
                let Some(dataset) = &entry.dataset else {
                    return;
                };
                for id in self.commit_triggers(dataset) {
                    let cause = commit_cause(&id, dataset, place, *token, &entry.runway);
                    self.pending.insert((place.clone(), id), cause);
                }
            }
            _ => {}
        }
    }
}

/// Unix nanoseconds as a timestamp (the epoch when out of range).
pub fn nanos(ns: u64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The controller clock's `at` as Unix nanoseconds (0 before 1970).
pub fn unix_nanos(at: Timestamp) -> u64 {
    u64::try_from(at.as_nanosecond()).unwrap_or(0)
}

/// Whether the trigger book reads `entry` (the journal's snapshot keeps it).
pub fn folds(entry: &Entry) -> bool {
    matches!(
        entry.event,
        Event::TriggerFiled { .. }
            | Event::TriggerPaused { .. }
            | Event::TriggerResumed { .. }
            | Event::TriggerRemoved { .. }
            | Event::TriggerFired { .. }
            | Event::TriggerChainCut { .. }
            | Event::Committed { .. }
            | Event::Published { .. }
    )
}

/// A TRIGGER record's definition, read again (its runways were checked
/// when it was filed, and are checked again at each firing).
pub fn read_definition(definition: &str) -> Result<TriggerDef, String> {
    let value: Value = serde_json::from_str(definition).map_err(|e| e.to_string())?;
    TriggerDef::parse(value, |runways| {
        let value: Value = serde_json::from_str(runways).map_err(|e| e.to_string())?;
        let list = value["runway"].as_array().cloned().unwrap_or_default();
        let name = |r: &Value| {
            let id = r["id"].as_str().filter(|id| !id.is_empty());
            id.or(r["agent"].as_str()).unwrap_or_default().to_string()
        };
        Ok(list.iter().map(name).collect())
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(runway: &str, dataset: &str, token: u64) -> Entry {
        Entry {
            runway: runway.into(),
            agent: "writer".into(),
            plugin: None,
            dataset: Some(dataset.into()),
            event: Event::Committed {
                token,
                writes: 1,
                deletes: 0,
            },
        }
    }

    /// Two hosts sharing a database each number their shard from 0: host
    /// b's firing for its COMMITTED #5 leaves host a's #5 owed.
    #[test]
    fn a_firing_for_one_shards_commit_leaves_anothers_of_the_same_number_owed() {
        let mut book = TriggerBook::default();
        let definition = json!({
            "id": "t",
            "on": { "commit": "d" },
            "runway": [{ "agent": "a" }],
        });
        book.file(read_definition(&definition.to_string()).unwrap(), nanos(0));
        let (a5, b5) = (Place::new(Some("a"), 5), Place::new(Some("b"), 5));
        book.apply(&a5, nanos(1), &committed("r1", "d", 1));
        book.apply(&b5, nanos(2), &committed("r2", "d", 2));
        let fired = Event::TriggerFired {
            id: "t".into(),
            key: commit_key(&b5),
            cause: commit_cause("t", "d", &b5, 2, "r2").to_string(),
            refused: None,
        };
        book.apply(&Place::new(Some("b"), 6), nanos(3), &Entry::of_host(fired));
        let owed: Vec<&Place> = book.pending.keys().map(|(at, _)| at).collect();
        assert_eq!(owed, [&a5]);
        assert_eq!(book.pending[&(a5, "t".into())]["shard"], "a");
    }
}
