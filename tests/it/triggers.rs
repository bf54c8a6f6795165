//! Triggers and schedules (issue 23, point 3), with real hosts: schedules
//! on the test clock across daylight-saving changes and after downtime
//! with each catch-up policy, pause / resume / remove with who, commit
//! triggers firing once per commit with the commit named in the input —
//! and, through `kill -9` of a real `runway serve` at random points, every
//! commit firing exactly once, checked from the trail. Two commit triggers
//! that feed each other fire down to the chain's cap and no further, live
//! and when every link is fired by a restart alike.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use runway_audit::{Event, Record};
use runway_host::controller::{Command, Controller, DispatchError, ManualClock, TriggerReport};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, filing};

/// A host and its controller on the test clock, restartable.
struct Tower {
    rt: tokio::runtime::Runtime,
    clock: Arc<ManualClock>,
    fixture: Option<Fixture>,
    controller: Controller,
    task: tokio::task::JoinHandle<Result<(), DispatchError>>,
}

impl Tower {
    fn new(now: &str) -> Tower {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clock = Arc::new(ManualClock::new(now.parse().unwrap()));
        let fixture = Fixture::new();
        let (controller, task) = runway_tests::start_on_clock(&rt, &fixture, clock.clone());
        Tower {
            rt,
            clock,
            fixture: Some(fixture),
            controller,
            task,
        }
    }

    fn fixture(&self) -> &Fixture {
        self.fixture.as_ref().unwrap()
    }

    /// Stops the controller and the host, moves the clock by `down` while
    /// nothing runs, and starts both again on the same folders.
    fn restart_after(&mut self, down: SignedDuration) {
        self.controller.stop(false);
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        self.rt.block_on(task).unwrap().unwrap();
        self.clock.advance(down);
        self.reopen();
    }

    /// A new host and controller on the same folders.
    fn reopen(&mut self) {
        let fixture = self.fixture.take().unwrap().reopen();
        let (controller, task) =
            runway_tests::start_on_clock(&self.rt, &fixture, self.clock.clone());
        self.fixture = Some(fixture);
        self.controller = controller;
        self.task = task;
    }

    /// The host dies, as in a `kill -9` just after its trail was written
    /// (the trail takes nothing more), and a new one starts on the same
    /// folders.
    fn crash(&mut self) {
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        let started = (self.controller.clone(), task);
        runway_tests::crash(&self.rt, self.fixture(), started);
        self.reopen();
    }

    fn file(&self, text: &str) {
        let plan = self.fixture().plan(text);
        self.rt
            .block_on(self.controller.file(filing(plan)))
            .expect("the plan is filed");
    }

    fn triggers(&self) -> BTreeMap<String, TriggerReport> {
        let list = self.rt.block_on(self.controller.triggers()).unwrap();
        list.into_iter().map(|t| (t.id.clone(), t)).collect()
    }

    /// Moves the clock by `by`, then lets the controller take it in: a
    /// request answered after the move has seen it (the controller looks
    /// at its schedules at every step).
    fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
        self.settle();
    }

    /// Waits until the controller has taken a step after now, and the
    /// runways filed so far have ended.
    fn settle(&self) {
        self.rt.block_on(async {
            self.controller.stats().await.unwrap();
            let ids: Vec<String> = self
                .controller
                .list()
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            self.controller.wait(ids).await.unwrap();
        });
    }

    fn send(&self, command: Command) {
        self.rt.block_on(self.controller.send(command)).unwrap();
    }

    fn records(&self) -> Vec<Record> {
        self.fixture().records()
    }
}

/// Every (trigger, key) fired, in trail order.
fn fired(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::TriggerFired { id, key, .. } => Some((id.clone(), key.clone())),
            _ => None,
        })
        .collect()
}

fn keys_of(records: &[Record], trigger: &str) -> Vec<String> {
    fired(records)
        .into_iter()
        .filter(|(t, _)| t == trigger)
        .map(|(_, k)| k)
        .collect()
}

/// The fired runways' FILING records: (trigger, key, plan-local id), and
/// their inputs' `trigger`.
fn fired_filings(records: &[Record]) -> Vec<(String, String, String, serde_json::Value)> {
    records
        .iter()
        .filter_map(|r| {
            let m = runway_host::controller::filed_manifest(&r.entry.event)?;
            let by = m.fired_by?;
            let input: serde_json::Value = serde_json::from_slice(&m.input).ok()?;
            Some((by.trigger, by.key, by.runway, input["trigger"].clone()))
        })
        .collect()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn schedule(id: &str, cron: &str, zone: &str, catch_up: &str) -> String {
    format!(
        r#"
[[trigger]]
id = "{id}"
on = {{ schedule = "{cron}", zone = "{zone}", catch_up = "{catch_up}" }}

[[trigger.runway]]
id = "first"
agent = "probe"
action = "ok"
input = {{ note = "kept", trigger = {{ from = "trigger" }} }}

[[trigger.runway]]
id = "second"
agent = "probe"
action = "ok"
after = ["first"]
input = {{ trigger = {{ from = "trigger" }} }}
"#
    )
}

#[test]
fn a_schedule_fires_once_per_time_across_both_daylight_saving_changes() {
    // Spring: New York jumps from 02:00 EST to 03:00 EDT on 2027-03-14.
    let t = Tower::new("2027-03-13T12:00:00Z");
    t.file(&schedule(
        "spring",
        "30 2 * * *",
        "America/New_York",
        "latest",
    ));
    let upcoming = &t.triggers()["spring"].next;
    assert_eq!(
        upcoming[..3],
        [
            "2027-03-14T07:00:00Z".parse::<Timestamp>().unwrap(),
            "2027-03-15T06:30:00Z".parse().unwrap(),
            "2027-03-16T06:30:00Z".parse().unwrap(),
        ],
        "02:30 does not exist on spring-forward day: it fires at 03:00 EDT"
    );
    // Three days in steps of 15 minutes, each taken in by the controller.
    for _ in 0..(3 * 24 * 4) {
        t.advance(SignedDuration::from_mins(15));
    }
    let records = t.records();
    assert_eq!(
        keys_of(&records, "spring"),
        [
            "2027-03-14T07:00:00Z",
            "2027-03-15T06:30:00Z",
            "2027-03-16T06:30:00Z"
        ]
    );
    // Each firing filed both runways, `after` local to the firing.
    let filings = fired_filings(&records);
    let spring: Vec<_> = filings.iter().filter(|f| f.0 == "spring").collect();
    assert_eq!(spring.len(), 6, "{filings:?}");
    for f in &spring {
        assert_eq!(f.3["kind"], "schedule");
        assert_eq!(f.3["scheduled"], f.1.as_str());
        assert_eq!(f.3["missed"], false);
    }
    let shown = t.rt.block_on(t.controller.list()).unwrap();
    let seconds: Vec<_> = shown.iter().filter(|r| r.name == "second").collect();
    assert_eq!(seconds.len(), 3);
    for s in seconds {
        assert_eq!(s.state, runway_host::controller::State::Succeeded);
        let after = &s.manifest.after;
        assert_eq!(after.len(), 1);
        let first = shown.iter().find(|r| r.id == after[0]).unwrap();
        assert_eq!(first.name, "first");
        assert_eq!(
            first.manifest.fired_by.as_ref().unwrap().key,
            s.manifest.fired_by.as_ref().unwrap().key,
            "a firing's `after` names a runway of the same firing"
        );
    }
    let input: serde_json::Value = serde_json::from_slice(&shown[0].manifest.input).unwrap();
    assert_eq!(input["note"], "kept");
    assert_eq!(input["trigger"]["id"], "spring");

    // Fall: 01:30 happens twice on 2026-11-01; it fires once, at the first.
    let t = Tower::new("2026-10-31T12:00:00Z");
    t.file(&schedule("fall", "30 1 * * *", "America/New_York", "all"));
    for _ in 0..(2 * 24 * 4) {
        t.advance(SignedDuration::from_mins(15));
    }
    assert_eq!(
        keys_of(&t.records(), "fall"),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn after_downtime_each_catch_up_policy_fires_what_it_says_and_never_twice() {
    let mut t = Tower::new("2026-12-01T00:30:00Z");
    let plan = [
        schedule("latest", "0 1 * * *", "UTC", "latest"),
        schedule("all", "0 1 * * *", "UTC", "all"),
        schedule("none", "0 1 * * *", "UTC", "none"),
    ]
    .concat();
    t.file(&plan);
    // On time: all three fire at 01:00.
    t.advance(SignedDuration::from_mins(30));
    let on_time = "2026-12-01T01:00:00Z";
    for id in ["latest", "all", "none"] {
        assert_eq!(keys_of(&t.records(), id), [on_time], "{id}");
    }
    // Down for four days and a half: 01:00 on Dec 2, 3, 4 and 5 missed.
    t.restart_after(hours(4 * 24 + 12));
    t.settle();
    let records = t.records();
    assert_eq!(
        keys_of(&records, "latest"),
        [on_time, "2026-12-05T01:00:00Z"]
    );
    assert_eq!(
        keys_of(&records, "all"),
        [
            on_time,
            "2026-12-02T01:00:00Z",
            "2026-12-03T01:00:00Z",
            "2026-12-04T01:00:00Z",
            "2026-12-05T01:00:00Z"
        ]
    );
    assert_eq!(keys_of(&records, "none"), [on_time]);
    let missed: Vec<_> = fired_filings(&records)
        .into_iter()
        .filter(|f| f.0 == "all" && f.1 != on_time)
        .collect();
    assert!(missed.iter().all(|f| f.3["missed"] == true), "{missed:?}");
    // Restarts fire no time twice, the skipped ones included.
    t.restart_after(SignedDuration::ZERO);
    t.settle();
    t.restart_after(hours(1));
    t.settle();
    assert_eq!(fired(&t.records()).len(), fired(&records).len());
    let shown = t.triggers();
    assert_eq!(shown["all"].fired, 5);
    assert_eq!(shown["none"].fired, 1);
    assert_eq!(
        shown["none"].next[0],
        "2026-12-06T01:00:00Z".parse::<Timestamp>().unwrap()
    );
    // And they go on, on time.
    t.advance(hours(11));
    for id in ["latest", "all", "none"] {
        let keys = keys_of(&t.records(), id);
        assert_eq!(keys.last().unwrap(), "2026-12-06T01:00:00Z", "{id}");
    }
}

#[test]
fn pause_resume_and_remove_are_recorded_with_who_and_obeyed() {
    let mut t = Tower::new("2026-12-01T00:30:00Z");
    t.file(&schedule("nightly", "0 1 * * *", "UTC", "latest"));
    let alice = Caller::new("alice", [Role::Operator]);
    t.send(Command::PauseTrigger {
        trigger: "nightly".into(),
        by: alice.clone(),
    });
    assert!(t.triggers()["nightly"].paused);
    assert!(t.triggers()["nightly"].next.is_empty());
    t.advance(hours(24));
    assert!(
        keys_of(&t.records(), "nightly").is_empty(),
        "paused: no firing"
    );
    // Paused stays paused across a restart; resuming catches nothing up.
    t.restart_after(hours(1));
    assert!(t.triggers()["nightly"].paused);
    t.send(Command::ResumeTrigger {
        trigger: "nightly".into(),
        by: alice.clone(),
    });
    t.settle();
    assert!(keys_of(&t.records(), "nightly").is_empty());
    t.advance(hours(24));
    assert_eq!(keys_of(&t.records(), "nightly"), ["2026-12-03T01:00:00Z"]);
    // A viewer may not; an unknown trigger is named.
    let viewer = Caller::new("vic", [Role::Viewer]);
    let refused = t.rt.block_on(t.controller.send(Command::RemoveTrigger {
        trigger: "nightly".into(),
        by: viewer,
    }));
    assert!(refused.unwrap_err().to_string().contains("vic"));
    let unknown = t.rt.block_on(t.controller.send(Command::PauseTrigger {
        trigger: "nope".into(),
        by: alice.clone(),
    }));
    assert_eq!(unknown.unwrap_err().to_string(), "no trigger nope");
    t.send(Command::RemoveTrigger {
        trigger: "nightly".into(),
        by: alice,
    });
    assert!(t.triggers().is_empty());
    t.advance(hours(48));
    t.restart_after(hours(48));
    assert!(t.triggers().is_empty(), "removed for good");
    let records = t.records();
    assert_eq!(keys_of(&records, "nightly").len(), 1);
    let who: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::TriggerPaused { id, by } => Some(("paused", id.clone(), by.clone())),
            Event::TriggerResumed { id, by, .. } => Some(("resumed", id.clone(), by.clone())),
            Event::TriggerRemoved { id, by } => Some(("removed", id.clone(), by.clone())),
            _ => None,
        })
        .collect();
    let alice = |what| (what, "nightly".to_string(), "alice".to_string());
    assert_eq!(who, [alice("paused"), alice("resumed"), alice("removed")]);
}

/// A commit trigger on `fafsa_*` filing one probe runway.
const ON_COMMIT: &str = r#"
[[trigger]]
id = "compliance"
on = { commit = "fafsa_*" }

[[trigger.runway]]
id = "check"
agent = "probe"
action = "ok"
input = { trigger = { from = "trigger" } }
"#;

/// A runway committing to `dataset`.
fn writer(id: &str, dataset: &str) -> String {
    format!(
        "[[runway]]\nid = \"{id}\"\nagent = \"probe\"\naction = \"count\"\n\
         datasets = {{ {dataset} = \"exclusive\" }}\n"
    )
}

#[test]
fn a_commit_trigger_fires_once_per_matching_commit_naming_it() {
    let mut t = Tower::new("2026-12-01T00:00:00Z");
    t.file(ON_COMMIT);
    t.file(&writer("w1", "fafsa_2024"));
    t.settle();
    t.file(&writer("w2", "other_2024"));
    t.settle();
    t.file(&writer("w3", "fafsa_2025"));
    t.settle();
    let records = t.records();
    let commits: Vec<(u64, String, u64)> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::Committed { token, .. } => {
                Some((r.seq, r.entry.dataset.clone().unwrap(), *token))
            }
            _ => None,
        })
        .collect();
    assert_eq!(commits.len(), 3);
    let matching: Vec<_> = commits
        .iter()
        .filter(|c| c.1.starts_with("fafsa_"))
        .collect();
    let keys: Vec<String> = matching.iter().map(|c| format!("commit:{}", c.0)).collect();
    assert_eq!(keys_of(&records, "compliance"), keys);
    let filings = fired_filings(&records);
    assert_eq!(filings.len(), 2);
    for (f, c) in filings.iter().zip(&matching) {
        assert_eq!(f.3["dataset"], c.1.as_str());
        assert_eq!(f.3["seq"], c.0);
        assert_eq!(f.3["token"], c.2);
        assert_eq!(f.3["kind"], "commit");
    }
    // The firing's record comes before its runway's FILING.
    let fired_at = records
        .iter()
        .position(|r| matches!(r.entry.event, Event::TriggerFired { .. }))
        .unwrap();
    let filed_at = records
        .iter()
        .position(|r| {
            runway_host::controller::filed_manifest(&r.entry.event)
                .is_some_and(|m| m.fired_by.is_some())
        })
        .unwrap();
    assert!(fired_at < filed_at);
    // A restart fires nothing again.
    t.restart_after(SignedDuration::ZERO);
    t.settle();
    assert_eq!(keys_of(&t.records(), "compliance").len(), 2);
    assert_eq!(t.triggers()["compliance"].fired, 2);
    let ids: BTreeSet<String> = t.triggers().keys().cloned().collect();
    assert_eq!(ids, BTreeSet::from(["compliance".to_string()]));
}

/// A commit trigger whose runway writes to a dataset it watches.
const ON_OWN_COMMIT: &str = r#"
[[trigger]]
id = "recheck"
on = { commit = "fafsa_*" }

[[trigger.runway]]
id = "check"
agent = "summary"
datasets = { other_2024 = "shared", fafsa_2024 = "exclusive" }
input = { source = "other_2024", target = "fafsa_2024" }
"#;

#[test]
fn a_commit_trigger_is_not_fired_by_the_commits_of_its_own_runways() {
    let mut t = Tower::new("2026-12-01T00:00:00Z");
    t.file(ON_OWN_COMMIT);
    t.file(&writer("w1", "fafsa_2024"));
    t.settle();
    // Again: the check its commit fired, filed as the writer landed.
    t.settle();
    let commits = |records: &[Record]| {
        records
            .iter()
            .filter(|r| matches!(r.entry.event, Event::Committed { .. }))
            .count()
    };
    let records = t.records();
    assert_eq!(commits(&records), 2, "the writer's commit and its check's");
    assert_eq!(keys_of(&records, "recheck").len(), 1, "the writer's only");
    // Nor after a restart: the check's commit is not owed a firing.
    t.restart_after(SignedDuration::ZERO);
    t.settle();
    let records = t.records();
    assert_eq!(commits(&records), 2);
    assert_eq!(keys_of(&records, "recheck").len(), 1);
}

/// The nightly's compliance check, fired by each import: its input names
/// the dataset from the cause, and nothing else (it refuses unknown keys).
const CHECK_ON_IMPORT: &str = r#"
[[trigger]]
id = "check-on-import"
on = { commit = "fafsa_*" }

[[trigger.runway]]
id = "compliance"
agent = "compliance-check"
datasets = { fafsa_2024_03_16 = "exclusive" }
input = { dataset = { from = "trigger", path = "dataset" } }
"#;

#[test]
fn a_fired_runway_takes_only_what_its_input_names_of_the_cause() {
    let t = Tower::new("2026-12-01T00:00:00Z");
    t.file(CHECK_ON_IMPORT);
    t.file(
        "[[runway]]\nid = \"import\"\nagent = \"import-applications\"\n\
         datasets = { fafsa_2024_03_16 = \"exclusive\" }\ninput = { count = 20, seed = 1 }\n",
    );
    t.settle();
    t.settle();
    let records = t.records();
    assert_eq!(
        keys_of(&records, "check-on-import").len(),
        1,
        "the import's commit only"
    );
    let (id, filed) = records
        .iter()
        .filter_map(|r| {
            let m = runway_host::controller::filed_manifest(&r.entry.event)?;
            m.fired_by.is_some().then(|| (r.entry.runway.clone(), m))
        })
        .next()
        .expect("the check was filed");
    let input: serde_json::Value = serde_json::from_slice(&filed.input).unwrap();
    assert_eq!(input, serde_json::json!({ "dataset": "fafsa_2024_03_16" }));
    let ends: Vec<&Event> = records
        .iter()
        .filter(|r| r.entry.runway == id)
        .map(|r| &r.entry.event)
        .filter(|e| matches!(e, Event::Succeeded { .. } | Event::Failed { .. }))
        .collect();
    assert!(
        matches!(ends[..], [Event::Succeeded { .. }]),
        "compliance-check (which refuses unknown input keys) succeeded: {ends:?}"
    );
}

#[test]
fn a_bad_trigger_is_refused_at_filing_naming_it() {
    let f = Fixture::new();
    let refused = |text: &str| {
        runway_host::controller::Plan::parse(text, &*f.host.plugins())
            .unwrap_err()
            .to_string()
    };
    let bad_cron = "[[trigger]]\nid = \"n\"\non = { schedule = \"0 25 * * *\" }\n\
                    [[trigger.runway]]\nagent = \"probe\"\n";
    assert!(
        refused(bad_cron).contains("trigger \"n\""),
        "{}",
        refused(bad_cron)
    );
    let bad_zone = "[[trigger]]\nid = \"n\"\non = { schedule = \"0 1 * * *\", zone = \"Mars/Base\" }\n\
                    [[trigger.runway]]\nagent = \"probe\"\n";
    assert!(refused(bad_zone).contains("Mars/Base"));
    let bad_agent = "[[trigger]]\nid = \"n\"\non = { commit = \"x*\" }\n\
                     [[trigger.runway]]\nagent = \"nobody\"\n";
    assert!(refused(bad_agent).contains("nobody"));
}

/// The crash test's trigger: each commit to a `fafsa_*` dataset files a
/// check, then a second runway after it.
const COMPLIANCE: &str = r#"
[[trigger]]
id = "compliance"
on = { commit = "fafsa_*" }

[[trigger.runway]]
id = "check"
agent = "probe"
action = "ok"
input = { trigger = { from = "trigger" } }

[[trigger.runway]]
id = "report"
agent = "probe"
action = "ok"
after = ["check"]
input = { trigger = { from = "trigger" } }
"#;

/// One life's writers: two to matching datasets, one to another, and a
/// publisher of two events (its attempt writes too, so it lands through
/// the commit protocol).
fn writers(i: usize) -> String {
    let one = |id: String, dataset: String| {
        format!(
            "[[runway]]\nid = \"{id}\"\nagent = \"import-applications\"\n\
             datasets = {{ {dataset} = \"exclusive\" }}\ninput = {{ count = 20, seed = {i} }}\n\
             retry = {{ attempts = 3, backoff = \"fixed\", initial = \"20ms\" }}\n"
        )
    };
    [
        one(format!("a{i}"), format!("fafsa_a{i}")),
        one(format!("b{i}"), format!("fafsa_b{}", i % 3)),
        one(format!("c{i}"), format!("test_c{i}")),
        format!(
            "[[runway]]\nid = \"p{i}\"\nagent = \"publisher\"\n\
             datasets = {{ test_p{i} = \"exclusive\" }}\n\
             retry = {{ attempts = 3, backoff = \"fixed\", initial = \"20ms\" }}\n\
             input = {{ write = [\"test_p{i}\", \"k\", \"v\"], events = [\
             {{ topic = \"applications.flagged\", payload = {{ life = {i}, n = 1 }} }}, \
             {{ topic = \"applications.flagged\", payload = {{ life = {i}, n = 2 }} }}] }}\n"
        ),
    ]
    .concat()
}

#[test]
fn kill_9_at_random_points_fires_every_commit_and_every_event_exactly_once() {
    use crate::server::{Server, folders};
    const KILLS: usize = 32;
    let dir = folders();
    runway_tests::drop_plugin("publisher", &dir.path().join("plugins"));
    // Some lives end at a point of the commit protocol (the host kills
    // itself there), the others at a random moment.
    let points = ["after-store-commit", "after-committed"];
    for i in 0..KILLS {
        let point = points.get(i % 4).filter(|_| i > 0);
        let env: Vec<(&str, &str)> = point.map(|p| ("RUNWAY_CRASH_AT", *p)).into_iter().collect();
        let server = Server::start_with_env(dir.path(), &[], &env);
        if i == 0 {
            assert!(server.file(COMPLIANCE).is_empty());
            assert!(server.file(&on_topic("flagged", None)).is_empty());
        }
        // A life that ends at a crash point may end before it answers.
        std::fs::write(dir.path().join("writers.toml"), writers(i)).unwrap();
        let _ = server.client(&["file", "writers.toml"]);
        let wait = match point {
            Some(_) => 1500,
            None => fastrand::u64(0..250),
        };
        std::thread::sleep(std::time::Duration::from_millis(wait));
        server.kill();
    }
    // A last life: everything lands, the firings owed included.
    let server = Server::start(dir.path());
    let mut rounds = 0;
    loop {
        let listed = server.json(&["list"]);
        let runways = listed["runways"].as_array().unwrap().clone();
        let ended = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"];
        let open = runways
            .iter()
            .filter(|r| !ended.contains(&r["state"].as_str().unwrap()))
            .count();
        if open == 0 {
            break;
        }
        rounds += 1;
        assert!(rounds < 600, "{open} runways never landed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let shown = server.json(&["triggers", "show", "compliance"]);
    assert_eq!(server.stop(), Some(0));

    let records = crate::restart::read_verified(dir.path());
    // Every commit to a matching dataset, by sequence number.
    let commits: BTreeMap<u64, String> = records
        .iter()
        .filter_map(|r| match (&r.entry.event, &r.entry.dataset) {
            (Event::Committed { .. }, Some(d)) => Some((r.seq, d.clone())),
            _ => None,
        })
        .collect();
    let matching: BTreeSet<String> = commits
        .iter()
        .filter(|(_, d)| d.starts_with("fafsa_"))
        .map(|(seq, _)| format!("commit:{seq}"))
        .collect();
    assert!(matching.len() >= KILLS, "only {} commits", matching.len());
    // Every event delivered: a PUBLISHED record whose runway's next end
    // is SUCCEEDED.
    let mut delivered = BTreeSet::new();
    let mut tentative: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &records {
        let runway = &r.entry.runway;
        match &r.entry.event {
            Event::Published { topic, .. } if topic == "applications.flagged" => {
                tentative.entry(runway.clone()).or_default().push(r.seq);
            }
            Event::Succeeded { .. } => {
                let events = tentative.remove(runway).unwrap_or_default();
                delivered.extend(events.into_iter().map(|s| format!("event:{s}")));
            }
            Event::Failed { .. } | Event::Moved { .. } => drop(tentative.remove(runway)),
            _ => {}
        }
    }
    assert!(
        delivered.len() >= KILLS,
        "only {} events delivered",
        delivered.len()
    );
    let keys = keys_of(&records, "flagged");
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "an event fired twice");
    assert_eq!(
        unique, delivered,
        "events without a firing, or firings without an event"
    );
    // Fired once each: never zero, never twice, nothing else.
    let keys = keys_of(&records, "compliance");
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "a commit fired twice");
    assert_eq!(
        unique, matching,
        "commits without a firing, or firings without a commit"
    );
    // Each firing filed its two runways once, after its record.
    let mut filed: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut seen_fired = BTreeSet::new();
    for r in &records {
        if let Event::TriggerFired { key, refused, .. } = &r.entry.event {
            assert_eq!(refused, &None);
            seen_fired.insert(key.clone());
        }
        let Some(m) = runway_host::controller::filed_manifest(&r.entry.event) else {
            continue;
        };
        let Some(by) = m.fired_by else { continue };
        if by.trigger == "flagged" {
            assert!(
                seen_fired.contains(&by.key),
                "{} filed before its firing",
                by.key
            );
            *filed
                .entry((by.key.clone(), by.runway.clone()))
                .or_default() += 1;
            continue;
        }
        assert!(
            seen_fired.contains(&by.key),
            "{} filed before its firing",
            by.key
        );
        *filed
            .entry((by.key.clone(), by.runway.clone()))
            .or_default() += 1;
        let input: serde_json::Value = serde_json::from_slice(&m.input).unwrap();
        let seq: u64 = by.key["commit:".len()..].parse().unwrap();
        assert_eq!(input["trigger"]["seq"], seq);
        assert_eq!(input["trigger"]["dataset"], commits[&seq].as_str());
    }
    for key in &matching {
        for runway in ["check", "report"] {
            let n = filed.get(&(key.clone(), runway.to_string())).copied();
            assert_eq!(n, Some(1), "{key} {runway}");
        }
    }
    for key in &delivered {
        let n = filed.get(&(key.clone(), "appeal".to_string())).copied();
        assert_eq!(n, Some(1), "{key} appeal");
    }
    assert_eq!(filed.len(), 2 * matching.len() + delivered.len());
    assert_eq!(shown["fired"], matching.len() as u64, "{shown}");
    // The kills were real: some commits were fired only by the next
    // start (a start's first records are its plugins' LOAD records).
    let starts: Vec<u64> = records
        .iter()
        .filter(|r| matches!(r.entry.event, Event::PluginLoaded))
        .map(|r| r.seq)
        .collect();
    let owed = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::TriggerFired { key, .. } => {
                let seq = key.strip_prefix("commit:").or(key.strip_prefix("event:"))?;
                Some((seq.parse::<u64>().ok()?, r.seq))
            }
            _ => None,
        })
        .filter(|(commit, fired)| starts.iter().any(|s| commit < s && s < fired))
        .count();
    assert!(
        owed > 0,
        "no kill fell between a commit or event and its firing"
    );
}

/// A topic trigger on `applications.flagged`, debounced when `debounce`.
fn on_topic(id: &str, debounce: Option<&str>) -> String {
    let debounce = debounce.map_or(String::new(), |d| format!(", debounce = \"{d}\""));
    format!(
        r#"
[[trigger]]
id = "{id}"
on = {{ topic = "applications.flagged"{debounce} }}

[[trigger.runway]]
id = "appeal"
agent = "probe"
action = "ok"
input = {{ trigger = {{ from = "trigger" }} }}
"#
    )
}

/// A publisher runway publishing `apps` on `applications.flagged` (and
/// one event on another topic), failing after if `fail`.
fn publisher(id: &str, apps: &[u32], fail: bool) -> String {
    let mut events: Vec<String> = apps
        .iter()
        .map(|a| format!("{{ topic = \"applications.flagged\", payload = {{ app = {a} }} }}"))
        .collect();
    events.push("{ topic = \"applications.other\", payload = 0 }".into());
    format!(
        "[[runway]]\nid = \"{id}\"\nagent = \"publisher\"\n\
         input = {{ fail = {fail}, events = [{}] }}\n",
        events.join(", ")
    )
}

/// The PUBLISHED records on `applications.flagged`: sequence numbers.
fn published(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::Published { topic, .. } if topic == "applications.flagged" => Some(r.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_topic_trigger_fires_once_per_delivered_event_and_never_for_a_failed_run() {
    let t = Tower::new("2026-12-01T00:00:00Z");
    t.file(&on_topic("flagged", None));
    t.file(&publisher("p1", &[1, 2], false));
    t.settle();
    t.file(&publisher("p2", &[3], true));
    t.settle();
    let records = t.records();
    let seqs = published(&records);
    // The failed run's event never reached the trail: not delivered.
    assert_eq!(seqs.len(), 2);
    let keys: Vec<String> = seqs[..2].iter().map(|s| format!("event:{s}")).collect();
    assert_eq!(keys_of(&records, "flagged"), keys);
    let filings = fired_filings(&records);
    assert_eq!(filings.len(), 2);
    for (f, (seq, app)) in filings.iter().zip([(seqs[0], 1), (seqs[1], 2)]) {
        assert_eq!(f.3["kind"], "topic");
        assert_eq!(f.3["topic"], "applications.flagged");
        assert_eq!(f.3["events"][0]["seq"], seq);
        assert_eq!(f.3["events"][0]["runway"], "p1");
        assert_eq!(f.3["events"][0]["payload"]["app"], app);
    }
}

#[test]
fn a_debounced_topic_trigger_collects_a_window_into_one_firing_across_a_restart() {
    let mut t = Tower::new("2026-12-01T00:00:00Z");
    t.file(&on_topic("batched", Some("30s")));
    t.file(&publisher("p1", &[1], false));
    t.settle();
    t.advance(SignedDuration::from_secs(10));
    t.file(&publisher("p2", &[2, 3], false));
    t.settle();
    assert!(
        keys_of(&t.records(), "batched").is_empty(),
        "the window is open"
    );
    // The window closes 30 s after its first event: one firing, three events.
    t.advance(SignedDuration::from_secs(21));
    let records = t.records();
    let seqs = published(&records);
    assert_eq!(keys_of(&records, "batched"), [format!("event:{}", seqs[0])]);
    let filings = fired_filings(&records);
    assert_eq!(filings.len(), 1);
    let listed: Vec<u64> = (filings[0].3["events"].as_array().unwrap().iter())
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, seqs);
    // Events collected when the host goes down are collected again at the
    // next start, and fire once, together.
    t.file(&publisher("p3", &[4], false));
    t.settle();
    t.file(&publisher("p4", &[5], false));
    t.settle();
    t.restart_after(SignedDuration::from_secs(5));
    t.settle();
    assert_eq!(keys_of(&t.records(), "batched").len(), 1, "not fired yet");
    t.advance(SignedDuration::from_secs(31));
    let records = t.records();
    let seqs = published(&records);
    assert_eq!(seqs.len(), 5);
    let keys = keys_of(&records, "batched");
    assert_eq!(
        keys,
        [format!("event:{}", seqs[0]), format!("event:{}", seqs[3])]
    );
    let second = &fired_filings(&records)[1].3["events"];
    let listed: Vec<u64> = (second.as_array().unwrap().iter())
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, seqs[3..]);
    t.restart_after(SignedDuration::from_secs(60));
    t.advance(SignedDuration::from_secs(60));
    assert_eq!(
        keys_of(&t.records(), "batched").len(),
        2,
        "never fired twice"
    );
}

#[test]
fn the_doors_list_show_pause_resume_and_remove_triggers_and_stream_their_records() {
    use crate::server::{Server, folders, follow, get};
    let dir = folders();
    let server = Server::start(dir.path());
    let plan = [
        schedule("nightly", "0 1 * * *", "America/New_York", "latest"),
        COMPLIANCE.to_string(),
    ]
    .concat();
    std::fs::write(server.dir.join("triggers.toml"), &plan).unwrap();
    let filed = server.client(&["file", "triggers.toml"]);
    assert_eq!(filed.code, 0, "{}", filed.stderr);
    assert_eq!(filed.stdout, "trigger nightly\ntrigger compliance\n");
    // The API's list: the shape the board draws upcoming firings from.
    let admin = server.admin();
    let (status, body) = get(&server.url, "/api/triggers", &admin);
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let (compliance, nightly) = (&list[0], &list[1]);
    let keys: BTreeSet<&str> = nightly
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let shape = [
        "filed",
        "fired",
        "id",
        "kind",
        "last_fired",
        "next",
        "on",
        "runways",
        "spent",
        "state",
    ];
    assert_eq!(keys, BTreeSet::from(shape), "{nightly}");
    assert_eq!(nightly["on"]["schedule"], "0 1 * * *");
    assert_eq!(nightly["on"]["zone"], "America/New_York");
    assert_eq!(nightly["kind"], "schedule");
    assert_eq!(nightly["state"], "active");
    assert_eq!(nightly["fired"], 0);
    assert_eq!(nightly["filed"], 0);
    assert_eq!(
        nightly["spent"],
        serde_json::json!({ "runs": 0, "fuel": 0, "wall_ms": 0, "bytes": 0 })
    );
    assert_eq!(nightly["last_fired"], serde_json::Value::Null);
    assert_eq!(nightly["runways"], serde_json::json!(["first", "second"]));
    let next: Vec<Timestamp> = (nightly["next"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(next.len(), 5);
    for at in &next {
        let local = at.to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap());
        assert_eq!((local.hour(), local.minute()), (1, 0), "{at}");
    }
    assert_eq!(compliance["kind"], "commit");
    assert_eq!(compliance["next"], serde_json::json!([]));
    let (status, _) = get(&server.url, "/api/triggers/nope", &admin);
    assert_eq!(status, 404);

    // The CLI: pause, show, resume, remove; a viewer may only look.
    let vic = server.token("vic", &["viewer"]);
    let refused = server.client_as(&vic, &["triggers", "pause", "nightly"]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    let listed = server.client_as(&vic, &["triggers", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("nightly") && listed.stdout.contains("2 trigger(s)"));
    let paused = server.client(&["triggers", "pause", "nightly"]);
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    let shown = server.json(&["triggers", "show", "nightly"]);
    assert_eq!(shown["state"], "paused", "{shown}");
    assert_eq!(shown["next"], serde_json::json!([]));
    let human = server.client(&["triggers", "show", "nightly"]);
    assert!(
        human.stdout.contains("state     paused"),
        "{}",
        human.stdout
    );
    assert_eq!(server.client(&["triggers", "resume", "nightly"]).code, 0);
    assert_eq!(
        server.json(&["triggers", "show", "nightly"])["state"],
        "active"
    );
    assert_eq!(server.client(&["triggers", "remove", "compliance"]).code, 0);
    let gone = server.client(&["triggers", "show", "compliance"]);
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("no trigger compliance"),
        "{}",
        gone.stderr
    );

    // A viewer's event stream shows the trigger records, with who.
    let events = follow(
        &server.url,
        "/api/events?backlog=1000",
        &vic,
        None,
        10,
        |seen| seen.iter().any(|e| e.data["event"] == "trigger_removed"),
    );
    let names: Vec<&str> = (events.iter())
        .filter_map(|e| e.data["event"].as_str())
        .filter(|e| e.starts_with("trigger_"))
        .collect();
    assert_eq!(
        names,
        [
            "trigger_filed",
            "trigger_filed",
            "trigger_paused",
            "trigger_resumed",
            "trigger_removed"
        ]
    );
    let removed = events
        .iter()
        .find(|e| e.data["event"] == "trigger_removed")
        .unwrap();
    assert_eq!(removed.data["by"], "admin", "{:?}", removed.data);
    assert_eq!(server.stop(), Some(0));
}

/// Two commit triggers that feed each other: `ping`'s runway commits to
/// the dataset `pong` watches, and `pong`'s to the one `ping` watches.
const PING_PONG: &str = r#"
[[trigger]]
id = "ping"
on = { commit = "chain_ping" }

[[trigger.runway]]
id = "hit"
agent = "probe"
action = "count"
datasets = { chain_pong = "exclusive" }

[[trigger]]
id = "pong"
on = { commit = "chain_pong" }

[[trigger.runway]]
id = "hit"
agent = "probe"
action = "count"
datasets = { chain_ping = "exclusive" }
"#;

/// Two topic triggers whose runways publish on each other's topic.
const TICK_TOCK: &str = r#"
[[trigger]]
id = "tick"
on = { topic = "test.tick" }

[[trigger.runway]]
id = "answer"
agent = "publisher"
input = { events = [{ topic = "test.tock" }] }

[[trigger]]
id = "tock"
on = { topic = "test.tock" }

[[trigger.runway]]
id = "answer"
agent = "publisher"
input = { events = [{ topic = "test.tick" }] }
"#;

/// Triggers fed by each other's events stop at the same cap as commits:
/// the event past it is cut, named by its `event:` key.
#[test]
fn topic_triggers_that_feed_each_other_stop_at_the_chain_cap() {
    use runway_host::limits::MAX_TRIGGER_CHAIN;
    let t = Tower::new("2026-12-01T00:00:00Z");
    t.file(TICK_TOCK);
    t.file("[[runway]]\nid = \"start\"\nagent = \"publisher\"\ninput = { events = [{ topic = \"test.tick\" }] }\n");
    runway_tests::eventually("the chain cut", || !cuts(&t.records()).is_empty());
    t.settle();
    let records = t.records();
    let firings = fired(&records);
    assert_eq!(firings.len(), MAX_TRIGGER_CHAIN as usize, "{firings:?}");
    for (n, (id, key)) in firings.iter().enumerate() {
        assert_eq!(id, ["tick", "tock"][n % 2]);
        assert!(key.starts_with("event:"), "{key}");
    }
    let cut = cuts(&records);
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(
        (cut[0].0.as_str(), cut[0].2),
        ("tick", MAX_TRIGGER_CHAIN + 1)
    );
    assert!(cut[0].1.starts_with("event:"), "{cut:?}");
}

/// The TRIGGER CHAIN CUT records: (trigger, key, depth, runway).
fn cuts(records: &[Record]) -> Vec<(String, String, u32, String)> {
    records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::TriggerChainCut {
                id,
                key,
                depth,
                runway,
            } => Some((id.clone(), key.clone(), *depth, runway.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn triggers_that_feed_each_other_fire_down_to_the_chain_cap_and_no_further() {
    use runway_host::limits::MAX_TRIGGER_CHAIN;
    let mut t = Tower::new("2026-12-01T00:00:00Z");
    t.file(PING_PONG);
    t.file(&writer("start", "chain_ping"));
    // Half-way down the chain, the host stops and starts again: the
    // commits owed a firing then are fired by the same rule.
    runway_tests::eventually("five firings", || fired(&t.records()).len() >= 5);
    t.restart_after(SignedDuration::ZERO);
    runway_tests::eventually("the chain cut", || !cuts(&t.records()).is_empty());
    t.settle();
    let records = t.records();
    let firings = fired(&records);
    assert_eq!(firings.len(), MAX_TRIGGER_CHAIN as usize, "{firings:?}");
    // ping, pong, ping, ...: each fired by the other's runway's commit.
    for (n, (id, _)) in firings.iter().enumerate() {
        assert_eq!(id, ["ping", "pong"][n % 2]);
    }
    // Each firing's runway one deeper than the one before.
    let depths: Vec<u32> = records
        .iter()
        .filter_map(|r| runway_host::controller::filed_manifest(&r.entry.event)?.fired_by)
        .map(|by| by.depth)
        .collect();
    assert_eq!(depths, (1..=MAX_TRIGGER_CHAIN).collect::<Vec<_>>());
    // The refusal names the trigger, the depth and the last runway.
    let last = records
        .iter()
        .rev()
        .find(|r| {
            runway_host::controller::filed_manifest(&r.entry.event)
                .is_some_and(|m| m.fired_by.is_some())
        })
        .unwrap()
        .entry
        .runway
        .clone();
    let cut = cuts(&records);
    assert_eq!(cut.len(), 1, "{cut:?}");
    let (id, key, depth, runway) = &cut[0];
    assert_eq!((id.as_str(), *depth), ("ping", MAX_TRIGGER_CHAIN + 1));
    assert_eq!(runway, &last);
    assert!(key.starts_with("commit:"), "{key}");
    // Its record reads on the timeline.
    let record = records
        .iter()
        .find(|r| matches!(r.entry.event, Event::TriggerChainCut { .. }))
        .unwrap();
    let line = runway_audit::record_line(record);
    assert!(line.contains("17 deep in a chain"), "{line}");

    // A kill -9 now, and a new host: nothing more fires, nothing is said
    // again.
    let before = records.len();
    t.crash();
    t.settle();
    let after = t.records();
    assert_eq!(fired(&after).len(), MAX_TRIGGER_CHAIN as usize);
    assert_eq!(cuts(&after).len(), 1);
    let filings = |rs: &[Record]| {
        let filed = rs
            .iter()
            .map(|r| runway_host::controller::filed_manifest(&r.entry.event));
        filed.flatten().count()
    };
    assert_eq!(filings(&after), filings(&records[..before]));
}

/// The same chain through the restart path only: each life of a real
/// `runway serve` kills itself (SIGKILL) just after a COMMITTED record,
/// before its trigger fires, so every link after the first is fired by
/// the next start from the commit it is owed — and the cut too is made
/// at a start, once, with the depth the live host would have said.
#[test]
fn a_chain_fired_only_by_restarts_stops_at_the_same_cap() {
    use crate::server::{Server, folders};
    use runway_host::limits::MAX_TRIGGER_CHAIN;
    let dir = folders();
    let crash = [("RUNWAY_CRASH_AT", "after-committed")];
    let mut lives = 0;
    let quiet = loop {
        let mut server = Server::start_with_env(dir.path(), &[], &crash);
        if lives == 0 {
            assert!(server.file(PING_PONG).is_empty());
            std::fs::write(dir.path().join("start.toml"), writer("start", "chain_ping")).unwrap();
            let _ = server.client(&["file", "start.toml"]);
        }
        // It dies at its commit, or makes the cut and has nothing to do.
        let started = std::time::Instant::now();
        let ended = loop {
            if server.ended_within(std::time::Duration::from_millis(250)) {
                break true;
            }
            let trail = server.trail();
            if trail.iter().any(|r| r["event"] == "trigger_chain_cut") {
                break false;
            }
            assert!(
                started.elapsed().as_secs() < 30,
                "a life neither ended nor cut"
            );
        };
        if !ended {
            break server;
        }
        lives += 1;
        assert!(lives <= 2 * MAX_TRIGGER_CHAIN, "the chain never ends");
    };
    // The start's commit and each fired runway's ended a life.
    assert_eq!(lives, MAX_TRIGGER_CHAIN + 1);
    let count = |trail: &[serde_json::Value], event: &str| {
        trail.iter().filter(|r| r["event"] == event).count()
    };
    let trail = quiet.trail();
    assert_eq!(count(&trail, "trigger_fired"), MAX_TRIGGER_CHAIN as usize);
    let cut: Vec<_> = trail
        .iter()
        .filter(|r| r["event"] == "trigger_chain_cut")
        .collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0]["trigger"], "ping");
    assert_eq!(cut[0]["depth"], MAX_TRIGGER_CHAIN + 1);
    // Once more, killed and started without a crash point: nothing.
    quiet.kill();
    let server = Server::start(dir.path());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let again = server.trail();
    assert_eq!(count(&again, "trigger_fired"), MAX_TRIGGER_CHAIN as usize);
    assert_eq!(count(&again, "trigger_chain_cut"), 1);
}
