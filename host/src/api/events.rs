//! `GET /api/events`: the audit trail as it grows, as server-sent events —
//! the one stream the status page and any client follow.
//!
//! Every event is one durable record (`id:` its sequence number, `data:`
//! its JSON as `runway audit show --json` prints it), named `transition`
//! for a runway's filing and moves (and pause, resume, plan filings) and
//! `record` for everything else (host calls, locks, commits, plugins).
//! Callers who may read the audit trail get both; others only transitions.
//!
//! Query: `since=SEQ` (or a `Last-Event-ID` header: the stream resumes after
//! it), `dataset=`, `runway=`, `tree=`, `agent=` filters, `backlog=N` (how
//! many matching records before the live end to send first, 500 by
//! default).
//!
//! Delegation trees: `runway=ID` keeps the records of that runway alone —
//! its FILING, its moves, its calls and the JOINED records of its joins
//! (a join is recorded as its parent's); `tree=ID` keeps those of that
//! runway and of every runway delegated below it (and of a root's
//! successor after a hand-off), its children's FILINGs among them, so one
//! stream follows a whole tree as it grows. The tree's
//! runways filed before the stream starts are taken from the controller,
//! those filed later from their FILING records' lineage as they stream by.
//! A JOINED record is a `transition`: who won a race and who was cancelled
//! is a runway's course, which viewers see.
//!
//! A resumed stream gets every matching record from where it left off,
//! however many: what memory no longer holds (the last [`TAIL_RECORDS`])
//! is read from disk at the client's pace, by at most
//! [`MAX_STREAM_DISK_READERS`] streams at once, and so is the rest of a
//! live reader that fell that far behind — the host never waits for a
//! reader. Records the disk cannot give (a damaged trail) are announced by
//! one `missed` event `{from, to, why}` before anything newer, with an id
//! of its own (`to - 1`, a record never sent); no id is sent twice. A
//! client that takes nothing for [`STREAM_STALL`] while its records come
//! from disk is let go: the stream ends, and it resumes with
//! `Last-Event-ID`.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::controller::tree::{link, parent_of, subtree};
use crate::controller::{Controller, RunwayReport, filed_manifest};
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use runway_audit::{Event, Follow, Record, Tail, record_json};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, watch};

use super::access::{Caller, Right};
use super::extract::QueryOf;
use super::refusal::{ErrorBody, Kind, Refusal};
use crate::limits::{MAX_STREAM_DISK_READERS, STREAM_STALL};

/// Most records a backlog may ask for.
pub const MAX_BACKLOG: usize = 5_000;
/// Records in memory for live readers (`AuditOptions::tail`).
pub const TAIL_RECORDS: usize = 10_000;
/// Most records read from the tail per step.
const CHUNK: usize = 256;

/// The live end of the trail and a signal that it grew.
pub struct Events {
    tail: Tail,
    grown: watch::Receiver<u64>,
    dir: PathBuf,
    /// Streams reading from disk at once.
    disk_readers: Arc<Semaphore>,
}

impl Events {
    /// Follows `audit`, when it was opened with a tail.
    pub fn new(audit: &runway_audit::AuditLog) -> Option<Events> {
        let tail = audit.tail()?.clone();
        let (tx, grown) = watch::channel(tail.next_seq());
        tail.watch(move |next| {
            tx.send_replace(next);
        });
        Some(Events {
            tail,
            grown,
            dir: audit.dir().to_path_buf(),
            disk_readers: Arc::new(Semaphore::new(MAX_STREAM_DISK_READERS)),
        })
    }
}

impl Events {
    /// The trail's live end.
    pub fn tail(&self) -> &Tail {
        &self.tail
    }

    /// Changes whenever the trail grows.
    pub fn grown(&self) -> watch::Receiver<u64> {
        self.grown.clone()
    }
}

/// Which records a reader wants.
#[derive(Debug, Deserialize, Default, Clone, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// From this sequence number on: every matching record since.
    pub since: Option<u64>,
    /// Records of this dataset and of the runways that lock it.
    pub dataset: Option<String>,
    /// Records of this runway.
    pub runway: Option<String>,
    /// Records of this runway and of every runway delegated below it.
    pub tree: Option<String>,
    /// Records of this agent.
    pub agent: Option<String>,
    /// How many matching records before the live end to send first (500;
    /// 5000 at most).
    pub backlog: Option<usize>,
}

/// A filter being applied: it learns which runways touch its dataset, and
/// which belong to its tree.
pub struct Matcher {
    filter: Filter,
    everything: bool,
    touching: HashSet<String>,
    tree: HashSet<String>,
}

impl Matcher {
    /// Applies `filter`; its tree (when it asks for one) starts as the
    /// runway it names and those of `runways` (the controller's, in filing
    /// order) delegated below it, and grows as children are filed.
    pub fn new(filter: Filter, everything: bool, runways: &[RunwayReport]) -> Matcher {
        let mut tree = HashSet::new();
        if let Some(root) = &filter.tree {
            let members = subtree(root, runways.iter().map(link));
            tree.extend(members.into_iter().flatten().map(|m| m.id));
            tree.insert(root.clone());
        }
        Matcher {
            filter,
            everything,
            touching: HashSet::new(),
            tree,
        }
    }

    /// Whether `record` files a child of a runway of the tree: it joins it.
    fn learn_tree(&mut self, record: &Record) {
        if self.filter.tree.is_none() || !matches!(record.entry.event, Event::Filing { .. }) {
            return;
        }
        let Some(manifest) = filed_manifest(&record.entry.event) else {
            return;
        };
        if parent_of(&manifest).is_some_and(|p| self.tree.contains(p)) {
            self.tree.insert(record.entry.runway.clone());
        }
    }

    /// Whether `record` goes to this reader, and as which kind.
    fn kind(&mut self, record: &Record) -> Option<&'static str> {
        self.learn_tree(record);
        let kind = if is_transition(&record.entry.event) {
            "transition"
        } else if self.everything {
            "record"
        } else {
            return None;
        };
        let e = &record.entry;
        if let Some(dataset) = &self.filter.dataset {
            let locks = match &e.event {
                Event::FilingV1(_) | Event::Filing { .. } => {
                    filed_manifest(&e.event).is_some_and(|m| m.datasets.contains_key(dataset))
                }
                Event::Cleared { locks } => locks.iter().any(|l| &l.dataset == dataset),
                _ => false,
            };
            if (locks || e.dataset.as_ref() == Some(dataset)) && !e.runway.is_empty() {
                self.touching.insert(e.runway.clone());
            }
            if e.dataset.as_ref() != Some(dataset) && !self.touching.contains(&e.runway) {
                return None;
            }
        }
        if self.filter.runway.as_ref().is_some_and(|r| *r != e.runway)
            || self.filter.agent.as_ref().is_some_and(|a| *a != e.agent)
            || (self.filter.tree.is_some() && !self.tree.contains(&e.runway))
        {
            return None;
        }
        Some(kind)
    }
}

/// A runway's filing or move, or the controller's (a trigger's too).
pub fn is_transition(event: &Event) -> bool {
    matches!(
        event,
        Event::FilingV1(_)
            | Event::Filing { .. }
            | Event::Moved { .. }
            | Event::Cleared { .. }
            | Event::Started { .. }
            | Event::Succeeded { .. }
            | Event::Failed { .. }
            | Event::Paused { .. }
            | Event::Resumed { .. }
            | Event::PlanFiled { .. }
            | Event::Joined { .. }
            | Event::TriggerFiled { .. }
            | Event::TriggerPaused { .. }
            | Event::TriggerResumed { .. }
            | Event::TriggerRemoved { .. }
            | Event::TriggerFired { .. }
            | Event::TriggerChainCut { .. }
    )
}

fn sse(kind: &str, record: &Record) -> SseEvent {
    SseEvent::default()
        .event(kind)
        .id(record.seq.to_string())
        .data(record_json(record).to_string())
}

/// The stream's state between events.
struct Reader {
    events: Arc<Events>,
    grown: watch::Receiver<u64>,
    /// Away on the disk reader's thread while it reads.
    matcher: Option<Matcher>,
    next: u64,
    ready: VecDeque<SseEvent>,
    disk: Option<DiskRead>,
    /// Its client stopped taking events while the disk was read: the
    /// stream ends (the client resumes with `Last-Event-ID`).
    ended: bool,
}

/// Records `from..until` being read from disk for one stream, on a
/// blocking thread that hands them over one at a time.
struct DiskRead {
    records: mpsc::Receiver<(u64, SseEvent)>,
    until: u64,
    done: tokio::task::JoinHandle<(Matcher, Walked)>,
}

/// How a read from disk ended.
enum Walked {
    /// Every record of the range was read.
    All,
    /// The client took nothing for [`STREAM_STALL`], or left.
    Stalled,
    /// The trail could not be read past `at`: why.
    Failed { at: u64, why: String },
}

impl Reader {
    /// The next event, waiting for the trail to grow when there is none;
    /// none once the stream ended.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if let Some(disk) = self.disk.as_mut() {
                if let Some((seq, event)) = disk.records.recv().await {
                    self.next = seq + 1;
                    return Some(event);
                }
                let disk = self.disk.take()?;
                let (matcher, walked) = disk.done.await.ok()?;
                self.matcher = Some(matcher);
                match walked {
                    Walked::All => {}
                    Walked::Stalled => self.ended = true,
                    Walked::Failed { at, why } => {
                        // What the disk cannot give is said, once, with an
                        // id of its own (the last record it names), before
                        // anything newer.
                        let from = self.next.max(at);
                        let missed =
                            serde_json::json!({ "from": from, "to": disk.until, "why": why });
                        self.ready.push_back(
                            SseEvent::default()
                                .event("missed")
                                .id((disk.until - 1).to_string())
                                .data(missed.to_string()),
                        );
                    }
                }
                self.next = self.next.max(disk.until);
                continue;
            }
            let matcher = self.matcher.as_mut()?;
            match self.events.tail.from(self.next, CHUNK) {
                Follow::Records(records) if records.is_empty() => {
                    // The trail's writer going away ends nothing here: the
                    // keep-alive goes on until the client leaves.
                    let _ = self.grown.changed().await;
                }
                Follow::Records(records) => {
                    for record in &records {
                        if let Some(kind) = matcher.kind(record) {
                            self.ready.push_back(sse(kind, record));
                        }
                    }
                    self.next = records.last().map_or(self.next, |r| r.seq + 1);
                }
                Follow::Behind { oldest } => {
                    // A resumed stream, or a reader slower than the trail
                    // grows: what memory no longer holds comes from disk,
                    // at the client's pace; the host is not held back.
                    let matcher = self.matcher.take()?;
                    self.disk = Some(self.read_disk(matcher, oldest).await?);
                }
            }
        }
    }

    /// Starts reading records `self.next..until` from disk (once one of
    /// the [`MAX_STREAM_DISK_READERS`] is free).
    async fn read_disk(&self, mut matcher: Matcher, until: u64) -> Option<DiskRead> {
        let permit = self
            .events
            .disk_readers
            .clone()
            .acquire_owned()
            .await
            .ok()?;
        let (tx, records) = mpsc::channel(CHUNK);
        let dir = self.events.dir.clone();
        let from = self.next;
        let runtime = tokio::runtime::Handle::current();
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut walked = Walked::All;
            let mut read = from;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
            let result = runway_audit::for_each_record(&dir, threads, |record| {
                if record.seq >= until || !matches!(walked, Walked::All) {
                    return;
                }
                // Earlier records only teach the filter which runways
                // touch its dataset.
                let kind = matcher.kind(&record);
                if record.seq < from {
                    return;
                }
                read = record.seq + 1;
                if let Some(kind) = kind {
                    let sent = runtime
                        .block_on(tx.send_timeout((record.seq, sse(kind, &record)), STREAM_STALL));
                    if sent.is_err() {
                        walked = Walked::Stalled;
                    }
                }
            });
            if matches!(walked, Walked::All) {
                // Damage past `until` is not this stream's to report.
                if read < until {
                    let why = match result {
                        Err(e) => e.to_string(),
                        Ok(()) => format!("the trail on disk ends before record {until}"),
                    };
                    walked = Walked::Failed { at: read, why };
                }
            }
            (matcher, walked)
        });
        Some(DiskRead {
            records,
            until,
            done,
        })
    }
}

/// The last `limit` records (at most [`MAX_BACKLOG`]) that `filter` keeps,
/// as `runway audit show --json` prints them, each with its kind
/// (`transition` or `record`; records only when `everything`).
pub fn timeline(events: &Events, filter: Filter, everything: bool, limit: usize) -> Vec<Value> {
    let since = filter.since.unwrap_or(0);
    // Read from the trail's start: the tree is learnt from its FILINGs.
    let mut matcher = Matcher::new(filter, everything, &[]);
    let (kept, _) = catch_up(events, &mut matcher, since, limit.min(MAX_BACKLOG));
    kept.iter()
        .map(|(kind, record)| {
            let mut value = record_json(record);
            value["kind"] = Value::from(*kind);
            value
        })
        .collect()
}

/// A matching record and its kind.
type Kept = (&'static str, Arc<Record>);

/// Catching up: the last `limit` matching records from `since` to the
/// live end (those no longer in memory read from disk), and the sequence
/// number to go on from.
fn catch_up(
    events: &Events,
    matcher: &mut Matcher,
    since: u64,
    limit: usize,
) -> (VecDeque<Kept>, u64) {
    let mut kept: VecDeque<Kept> = VecDeque::new();
    let mut keep = |matcher: &mut Matcher, record: Arc<Record>| {
        if let Some(kind) = matcher.kind(&record)
            && limit > 0
        {
            if kept.len() == limit {
                kept.pop_front();
            }
            kept.push_back((kind, record));
        }
    };
    let mut next = since;
    loop {
        match events.tail.from(next, CHUNK) {
            Follow::Records(records) if records.is_empty() => break,
            Follow::Records(records) => {
                next = records.last().map_or(next, |r| r.seq + 1);
                for record in records {
                    keep(matcher, record);
                }
            }
            Follow::Behind { oldest } => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
                let from = next;
                let read = runway_audit::for_each_record(&events.dir, threads, |record| {
                    if record.seq >= from && record.seq < oldest {
                        keep(matcher, Arc::new(record));
                    }
                });
                if let Err(e) = read {
                    tracing::warn!("reading the audit trail for an event stream: {e}");
                }
                next = oldest;
            }
        }
    }
    (kept, next)
}

/// `GET /api/events`.
#[utoipa::path(get, path = "/api/events", tag = "audit",
    params(Filter, ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this record (what a reconnecting EventSource sends)")),
    responses((status = 200, description = "Server-sent events: `transition` and (with the audit right) `record`, each one durable record as JSON with `id:` its sequence number; `missed` (with an id of its own) for records the trail on disk cannot give", content_type = "text/event-stream", body = String,
        example = json!("event: transition\nid: 7\ndata: {\"seq\":7,\"event\":\"state_changed\",...}\n\n")),
        (status = 404, description = "This server keeps no live audit tail", body = ErrorBody)))]
pub async fn stream(
    State(events): State<Option<Arc<Events>>>,
    State(controller): State<Controller>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    QueryOf(filter): QueryOf<Filter>,
) -> axum::response::Response {
    let Some(events) = events else {
        let why = "this server keeps no live audit tail";
        return Refusal::new(Kind::NotFound, why).into_response();
    };
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|seq| seq.saturating_add(1));
    // From where it left off, else `since`: every matching record from
    // there on (older ones read from disk as the client takes them). Else
    // the last `backlog` matching records.
    // A tree's runways filed before `since` are the controller's to name.
    let runways = match &filter.tree {
        Some(_) => controller.list().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let mut matcher = Matcher::new(filter.clone(), caller.may(Right::Audit), &runways);
    let caught = match resumed.or(filter.since) {
        Some(since) => Ok((VecDeque::new(), since, matcher)),
        None => {
            let limit = filter.backlog.unwrap_or(500).min(MAX_BACKLOG);
            let reader = events.clone();
            tokio::task::spawn_blocking(move || {
                let (kept, next) = catch_up(&reader, &mut matcher, 0, limit);
                let ready = kept.iter().map(|(kind, r)| sse(kind, r)).collect();
                (ready, next, matcher)
            })
            .await
        }
    };
    let (ready, next, matcher) = match caught {
        Ok(caught) => caught,
        Err(e) => return Refusal::new(Kind::HostFault, e.to_string()).into_response(),
    };
    let reader = Reader {
        grown: events.grown.clone(),
        events,
        matcher: Some(matcher),
        next,
        ready,
        disk: None,
        ended: false,
    };
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let event = reader.next().await?;
        Some((Ok::<_, Infallible>(event), reader))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use runway_audit::{Call, Entry, Outcome};

    use super::*;
    use crate::controller::{Lineage, Manifest};

    fn record(runway: &str, event: Event) -> Record {
        Record {
            seq: 0,
            time_ns: 0,
            prev: [0; 32],
            prev_dataset: None,
            entry: Entry {
                runway: runway.into(),
                agent: "orchestrator".into(),
                plugin: None,
                dataset: None,
                event,
            },
        }
    }

    /// A FILING record of a runway delegated by `parent`, if any.
    fn filing(parent: Option<&str>) -> Event {
        let lineage = parent.map(|p| Lineage {
            parent: p.into(),
            attempt: 1,
            root: "r".into(),
            key: "0".into(),
            depth: 1,
            reach: 1,
            handed: Vec::new(),
        });
        let manifest = Manifest {
            lineage,
            ..Manifest::default()
        };
        Event::Filing {
            schema: 2,
            manifest: serde_json::to_string(&manifest).unwrap(),
            input: Vec::new(),
        }
    }

    fn call() -> Event {
        Event::Call {
            call: Call::Read,
            key: None,
            token: None,
            args: [0; 32],
            result: [0; 32],
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn a_tree_filter_learns_the_children_filed_as_they_stream_by() {
        let filter = Filter {
            tree: Some("r".into()),
            ..Filter::default()
        };
        let (mut viewer, mut auditor) = (
            Matcher::new(filter.clone(), false, &[]),
            Matcher::new(filter, true, &[]),
        );
        let joined = Event::Joined {
            mode: "first-success".into(),
            children: Vec::new(),
            timed_out: false,
        };
        let stream = [
            (
                record("r", filing(None)),
                Some("transition"),
                Some("transition"),
            ),
            (record("other", filing(None)), None, None),
            (
                record("r.1", filing(Some("r"))),
                Some("transition"),
                Some("transition"),
            ),
            (
                record("r.1.1", filing(Some("r.1"))),
                Some("transition"),
                Some("transition"),
            ),
            (record("o.1", filing(Some("other"))), None, None),
            (record("r", joined), Some("transition"), Some("transition")),
            (record("r.1.1", call()), None, Some("record")),
            (record("o.1", call()), None, None),
        ];
        for (record, seen, audited) in &stream {
            let who = &record.entry.runway;
            assert_eq!(viewer.kind(record), *seen, "{who} for a viewer");
            assert_eq!(auditor.kind(record), *audited, "{who} for an auditor");
        }
    }

    #[test]
    fn a_tree_filter_keeps_the_runway_it_names_before_it_is_filed() {
        let filter = Filter {
            tree: Some("nobody".into()),
            ..Filter::default()
        };
        // Unknown to the controller (a stream opened before the filing): the
        // runway it names, and its children once they are filed.
        let mut matcher = Matcher::new(filter, true, &[]);
        assert_eq!(matcher.kind(&record("nobody", call())), Some("record"));
        assert_eq!(matcher.kind(&record("x", call())), None);
    }
}
