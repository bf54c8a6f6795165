//! Circuit breakers per agent, with real components: several agent names
//! over the `probe` component, each with its own grants (`[breaker]`), on
//! a hand-moved clock. A breaker opens after `failures` failed attempts,
//! holds its agent's runways in WAITING_BREAKER (or fails them at once,
//! `on_open = "fail"`), goes half-open after `open_for`, lets exactly one
//! probe through, and closes on its success or opens again on its
//! failure; every move is a BREAKER record, and a restart gives the
//! breaker back from the trail. (Random sequences of failures, clock
//! moves, pauses, restarts and crashes with a breaker are the
//! controller's model test's, `controller_model`.)

use std::sync::Arc;

use jiff::SignedDuration;
use runway_audit::{Event, Record, State};
use runway_host::controller::{AgentHealth, Controller, DispatchError, ManualClock};
use runway_host::{Plugins, RunwayReport};
use runway_tests::{Fixture, Started, bundled_path, eventually, filing, plugins};

/// Grants of every test agent: any dataset.
pub const OPEN_GRANTS: &str = "[datasets]\n\"*\" = \"exclusive\"\n";

/// The plugins: `(name, extra grants)`, each the `probe` component under
/// that name, granted every dataset and what `extra` adds.
pub fn agents_over_probe(agents: &[(&str, &str)]) -> Plugins {
    let wasm = std::fs::read(bundled_path("probe")).expect("probe.wasm");
    let grants: Vec<(String, String)> = agents
        .iter()
        .map(|(name, extra)| (name.to_string(), format!("{OPEN_GRANTS}{extra}")))
        .collect();
    let items = grants
        .iter()
        .map(|(name, g)| (name.as_str(), &wasm[..], g.as_str()));
    Plugins::from_bytes(&plugins().0, items).expect("agents load")
}

/// A host and its controller on a hand-moved clock, restartable.
pub struct Tower {
    pub rt: tokio::runtime::Runtime,
    pub clock: Arc<ManualClock>,
    /// The clock's time at the start.
    pub t0: jiff::Timestamp,
    pub fixture: Option<Fixture>,
    pub controller: Controller,
    task: tokio::task::JoinHandle<Result<(), DispatchError>>,
}

impl Tower {
    pub fn new(plugins: Plugins) -> Tower {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let t0 = jiff::Timestamp::now();
        let clock = Arc::new(ManualClock::new(t0));
        let fixture = Fixture::with_plugins(2, plugins);
        let (controller, task) = start(&rt, &fixture, &clock);
        Tower {
            rt,
            clock,
            t0,
            fixture: Some(fixture),
            controller,
            task,
        }
    }

    /// Stops the controller (runs in the air cancelled) and starts a new
    /// host over the same folders, as after a crash.
    pub fn restart(&mut self) {
        self.controller.stop(true);
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        self.rt.block_on(task).unwrap().unwrap();
        let fixture = self.fixture.take().unwrap().reopen();
        let (controller, task) = start(&self.rt, &fixture, &self.clock);
        self.fixture = Some(fixture);
        self.controller = controller;
        self.task = task;
    }

    /// Files `plan` (TOML); its runway ids.
    pub fn file(&self, plan: &str) -> Vec<String> {
        let f = self.fixture.as_ref().unwrap();
        let filed = self
            .rt
            .block_on(self.controller.file(filing(f.plan(plan))))
            .unwrap();
        filed.into_iter().map(|f| f.id).collect()
    }

    /// Waits for `ids` to end.
    pub fn wait(&self, ids: &[String]) -> Vec<RunwayReport> {
        self.rt
            .block_on(self.controller.wait(ids.to_vec()))
            .unwrap()
    }

    pub fn show(&self, id: &str) -> RunwayReport {
        self.rt.block_on(self.controller.show(id)).unwrap()
    }

    /// Waits until runway `id` is in `state`.
    pub fn until(&self, id: &str, state: State) {
        eventually(&format!("{id} {}", state.name()), || {
            self.show(id).state == state
        });
    }

    pub fn agent(&self, name: &str) -> AgentHealth {
        let all = self.rt.block_on(self.controller.agents()).unwrap();
        all.into_iter()
            .find(|a| a.agent == name)
            .expect("agent listed")
    }

    pub fn records(&self) -> Vec<Record> {
        self.fixture.as_ref().unwrap().records()
    }

    pub fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
    }
}

fn start(rt: &tokio::runtime::Runtime, f: &Fixture, clock: &Arc<ManualClock>) -> Started {
    runway_tests::start_on_clock(rt, f, clock.clone())
}

/// A plan of one runway of `agent` doing `action`.
pub fn one(id: &str, agent: &str, action: &str, extra: &str) -> String {
    format!("[[runway]]\nid = \"{id}\"\nagent = \"{agent}\"\naction = \"{action}\"\n{extra}\n")
}

/// The BREAKER records of `agent`: (from, to, failures).
fn breaker_moves(records: &[Record], agent: &str) -> Vec<(String, String, u32)> {
    records
        .iter()
        .filter(|r| r.entry.agent == agent && r.entry.runway.is_empty())
        .filter_map(|r| match &r.entry.event {
            Event::BreakerMoved {
                from, to, failures, ..
            } => Some((from.clone(), to.clone(), *failures)),
            _ => None,
        })
        .collect()
}

/// The position of the first record of `runway` matching `event`.
fn at(records: &[Record], runway: &str, event: fn(&Event) -> bool) -> usize {
    records
        .iter()
        .position(|r| r.entry.runway == runway && event(&r.entry.event))
        .unwrap_or_else(|| panic!("no such record of {runway}"))
}

const BREAKER: &str = "[breaker]\nfailures = 3\nwithin = \"10m\"\nopen_for = \"5m\"\n";

/// Fails `n` runways of `agent`; they end FAILED.
fn fail(t: &Tower, agent: &str, n: usize) {
    let plan: String = (0..n)
        .map(|i| one(&format!("{agent}-fail-{i}"), agent, "fail", ""))
        .collect();
    for r in t.wait(&t.file(&plan)) {
        assert_eq!(r.state, State::Failed, "{:?}", r.reason);
    }
}

#[test]
fn a_breaker_opens_holds_its_runways_and_closes_on_its_probe() {
    let t = Tower::new(agents_over_probe(&[("shaky", BREAKER), ("steady", "")]));
    fail(&t, "shaky", 2);
    assert_eq!(t.agent("shaky").breaker, "closed", "2 of 3 failures");
    fail(&t, "shaky", 1);
    let shaky = t.agent("shaky");
    assert_eq!(
        (shaky.breaker.as_str(), shaky.failed, shaky.runs),
        ("open", 3, 3)
    );
    let until = t.t0 + SignedDuration::from_mins(5);
    assert_eq!(shaky.breaker_until, Some(format!("{until:.3}")));
    assert!(
        shaky
            .last_failure
            .unwrap()
            .reason
            .contains("failing on purpose")
    );
    let records = t.records();
    assert_eq!(
        breaker_moves(&records, "shaky"),
        [("closed".into(), "open".into(), 3)]
    );

    // Held: two runways of the agent wait; another agent's runs at once.
    let ids = t.file(&format!(
        "{}{}{}",
        one("first", "shaky", "ok", ""),
        one("second", "shaky", "ok", ""),
        one("other", "steady", "ok", "")
    ));
    t.until("first", State::WaitingBreaker);
    t.until("second", State::WaitingBreaker);
    assert_eq!(t.wait(&ids[2..])[0].state, State::Succeeded);
    assert!(t.show("first").note.contains("circuit breaker is open"));

    // Not before open_for is over; then one probe, and the rest after it.
    t.advance(SignedDuration::from_mins(4));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(t.show("first").state, State::WaitingBreaker);
    t.advance(SignedDuration::from_mins(1));
    let ended = t.wait(&ids[..2]);
    assert!(ended.iter().all(|r| r.state == State::Succeeded));
    let records = t.records();
    assert_eq!(
        breaker_moves(&records, "shaky"),
        [
            ("closed".into(), "open".into(), 3),
            ("open".into(), "half-open".into(), 0),
            ("half-open".into(), "closed".into(), 0),
        ]
    );
    let closed = records
        .iter()
        .rposition(|r| matches!(&r.entry.event, Event::BreakerMoved { to, .. } if to == "closed"))
        .unwrap();
    let probe_ok = at(&records, "first", |e| matches!(e, Event::Succeeded { .. }));
    let second_cleared = at(&records, "second", |e| matches!(e, Event::Cleared { .. }));
    assert!(
        probe_ok < closed && closed < second_cleared,
        "one probe only"
    );
    assert_eq!(t.agent("shaky").breaker, "closed");
}

#[test]
fn a_failed_probe_opens_the_breaker_again() {
    let t = Tower::new(agents_over_probe(&[("shaky", BREAKER)]));
    fail(&t, "shaky", 3);
    let id = t.file(&one("probe", "shaky", "fail", ""));
    t.until("probe", State::WaitingBreaker);
    t.advance(SignedDuration::from_mins(5));
    assert_eq!(t.wait(&id)[0].state, State::Failed);
    let moves = breaker_moves(&t.records(), "shaky");
    assert_eq!(
        moves.last().unwrap(),
        &("half-open".to_string(), "open".to_string(), 1)
    );
    let shaky = t.agent("shaky");
    assert_eq!(shaky.breaker, "open");
    assert_eq!(shaky.last_failure.unwrap().runway, "probe");
}

#[test]
fn on_open_fail_fails_at_once_naming_the_agent_and_its_breaker() {
    let t = Tower::new(agents_over_probe(&[("shaky", BREAKER)]));
    fail(&t, "shaky", 3);
    let id = t.file(&one("eager", "shaky", "ok", "on_open = \"fail\""));
    let r = &t.wait(&id)[0];
    assert_eq!(r.state, State::Failed);
    let reason = r.reason.as_deref().unwrap();
    assert!(
        reason.contains("agent shaky's circuit breaker is open until")
            && reason.contains("on_open"),
        "{reason}"
    );
    assert_eq!(r.attempts, 0, "it never took off");
}

#[test]
fn a_breaker_survives_a_restart() {
    let mut t = Tower::new(agents_over_probe(&[("shaky", BREAKER)]));
    fail(&t, "shaky", 3);
    let before = t.agent("shaky");
    let id = t.file(&one("held", "shaky", "ok", ""));
    t.until("held", State::WaitingBreaker);
    t.restart();
    let after = t.agent("shaky");
    assert_eq!(after.breaker, "open");
    assert_eq!(after.breaker_until, before.breaker_until);
    // The figures come back from the trail too.
    assert_eq!((after.runs, after.failed), (3, 3));
    let (was, is) = (before.last_failure.unwrap(), after.last_failure.unwrap());
    assert_eq!((was.runway, was.reason), (is.runway, is.reason));
    assert_eq!(t.show("held").state, State::WaitingBreaker);
    t.advance(SignedDuration::from_mins(5));
    assert_eq!(t.wait(&id)[0].state, State::Succeeded);
    assert_eq!(t.agent("shaky").breaker, "closed");
}

#[test]
fn runway_agents_shows_each_agents_health_and_breaker() {
    use crate::server::{Server, folders, get};
    let dir = folders();
    let plugins = dir.path().join("plugins");
    std::fs::copy(bundled_path("probe"), plugins.join("shaky.toml.tmp")).unwrap();
    std::fs::write(
        plugins.join("shaky.toml"),
        format!("{OPEN_GRANTS}[breaker]\nfailures = 2\nwithin = \"10m\"\nopen_for = \"1h\"\n"),
    )
    .unwrap();
    std::fs::rename(plugins.join("shaky.toml.tmp"), plugins.join("shaky.wasm")).unwrap();
    let server = Server::start(dir.path());
    let ids = server.file(&format!(
        "{}{}{}",
        one("bad-1", "shaky", "fail", ""),
        one("bad-2", "shaky", "fail", ""),
        one("good", "probe", "ok", "")
    ));
    assert_eq!(server.client(&["wait", &ids[0], &ids[1], &ids[2]]).code, 1);
    let held = server.file(&one("held", "shaky", "ok", ""));
    let out = server.client(&["agents"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shaky = out
        .stdout
        .lines()
        .find(|l| l.starts_with("shaky "))
        .unwrap();
    assert!(shaky.contains("open until"), "{}", out.stdout);
    // bad-1 and bad-2 fly together: either lands last.
    assert!(out.stdout.contains("last failure bad-"), "{}", out.stdout);
    let probe = out
        .stdout
        .lines()
        .find(|l| l.starts_with("probe "))
        .unwrap();
    assert!(probe.ends_with("closed"), "{probe}");

    let json = server.json(&["agents"]);
    let agents = json["agents"].as_array().unwrap();
    let shaky = agents.iter().find(|a| a["agent"] == "shaky").unwrap();
    assert_eq!(shaky["runs"], 2);
    assert_eq!(shaky["failed"], 2);
    assert_eq!(shaky["success_ratio"], 0.0);
    assert_eq!(shaky["breaker"], "open");
    assert!(shaky["breaker_until"].is_string());
    let last = shaky["last_failure"]["runway"].as_str().unwrap();
    assert!(last.starts_with("bad-"), "{last}");
    let probe = agents.iter().find(|a| a["agent"] == "probe").unwrap();
    assert_eq!(
        (probe["runs"].as_u64(), probe["succeeded"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(probe["p50_ms"].is_u64() && probe["last_failure"].is_null());

    let show = server.json(&["show", &held[0]]);
    assert_eq!(show["state"], "WAITING_BREAKER");
    // The metrics follow the trail: soon, not at once.
    eventually("the breaker's metrics", || {
        let (status, metrics) = get(&server.url, "/metrics", &server.admin());
        status == 200
            && metrics.contains("runway_breaker_state{agent=\"shaky\"} 2")
            && metrics.contains("runway_breaker_transitions_total{agent=\"shaky\",to=\"open\"} 1")
    });
    let trail = server.trail();
    assert!(
        trail
            .iter()
            .any(|r| r["event"] == "breaker_moved" && r["to"] == "open")
    );
}
