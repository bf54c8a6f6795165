//! A model-based test of the whole controller (proptest): random sequences
//! of filings (agents that succeed, fail, fail once and then succeed, spin
//! past a 1 s window, or run until stopped; with retries, approvals,
//! dependencies, an earliest start an hour away, shared or exclusive
//! locks, conditions true, false or `!skipped(...)` of their dependency),
//! approvals, rejections, cancels, pause, resume, the test clock
//! moved two hours on or back, restarts (the controller stopped, runs in
//! the air stopped — failed and retried by policy, as after a crash — the
//! host reopened, the queue folded back from the trail) and crashes (the trail halted mid-work as a `kill -9` would
//! leave it, then the same reopening) are applied to the real controller
//! and to a small reference model. After every step, once the controller
//! has settled, every runway's state must be the model's, refused commands
//! must be refused for the model's reason, and no lock is held but the
//! running runway's; at the end there was one fencing token per attempt
//! the model expects, tokens only grew, no two holders of a dataset
//! ever overlapped where one held it exclusively, and a runway SKIPPED
//! never ran and has its condition's decision on the trail.
//!
//! One agent, `shaky` (the `probe` component), has a circuit breaker in
//! its grants (2 failures within a day open it for an hour): its runways
//! succeed or fail, wait in WAITING_BREAKER while it is open (or fail at
//! once, `on_open = "fail"`), and the model predicts its moves — open
//! after the second failure since it last closed, half-open once the
//! test clock passes the hour, one probe (the first of its waiting
//! runways) that closes or opens it again — across pauses, cancels,
//! restarts and crashes. At the end the trail's BREAKER records are the
//! model's moves, and no runway of `shaky` was cleared while it was open,
//! nor a second while it was half-open.
//!
//! An hourly schedule trigger (catch-up `all`) stands throughout, firing
//! as the clock moves on (and not as it moves back) across the restarts
//! and crashes: its runways are left out of the model's states, and at the
//! end no time fired twice and each firing filed its runway exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use runway_audit::{Event, LockMode, State};
use runway_host::controller::ManualClock;
use runway_host::controller::{Command, ControlError, Controller, DispatchError};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, Started, filing};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Ok,
    Fail,
    Flaky,
    /// Spins past its 1 s window: TIMED_OUT.
    Spin,
    /// Runs until cancelled or the host stops (at most one at a time, on
    /// a dataset of its own, so it blocks nobody else).
    Hang,
}

/// A runway's condition (`when`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cond {
    None,
    /// True over its dependency's outputs.
    True,
    /// False over its dependency's outputs: SKIPPED.
    False,
    /// `!skipped('<its dependency>')` (none without one).
    NotSkipped,
}

#[derive(Debug, Clone)]
enum Op {
    File {
        action: Action,
        retries: bool,
        gated: bool,
        /// Not before an hour from filing (test clock).
        later: bool,
        /// Depends on the runway filed this many before it (when there).
        after: Option<usize>,
        dataset: usize,
        exclusive: bool,
        when: Cond,
    },
    Approve(usize),
    Reject(usize),
    Cancel(usize),
    Pause,
    Resume,
    /// The test clock moves two hours on.
    Advance,
    /// The test clock jumps two hours back.
    Rewind,
    Restart,
    Crash,
    /// A runway of `shaky` (the agent with a breaker), failing or not.
    Shaky {
        fails: bool,
        fail_open: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            prop_oneof![
                3 => Just(Action::Ok),
                2 => Just(Action::Fail),
                2 => Just(Action::Flaky),
                1 => Just(Action::Spin),
                1 => Just(Action::Hang),
            ],
            any::<bool>(),
            prop::bool::weighted(0.4),
            prop::bool::weighted(0.2),
            prop::option::weighted(0.4, 1usize..4),
            0usize..3,
            any::<bool>(),
            prop_oneof![
                3 => Just(Cond::None),
                1 => Just(Cond::True),
                1 => Just(Cond::False),
                2 => Just(Cond::NotSkipped),
            ],
        )
            .prop_map(|(action, retries, gated, later, after, dataset, exclusive, when)| Op::File {
                action,
                retries,
                gated,
                later,
                after,
                dataset,
                exclusive,
                when,
            }),
        2 => (0usize..16).prop_map(Op::Approve),
        1 => (0usize..16).prop_map(Op::Reject),
        1 => (0usize..16).prop_map(Op::Cancel),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Advance),
        1 => Just(Op::Rewind),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
        3 => (prop::bool::weighted(0.6), prop::bool::weighted(0.2))
            .prop_map(|(fails, fail_open)| Op::Shaky { fails, fail_open }),
    ]
}

/// One runway as the model sees it.
#[derive(Debug, Clone)]
struct Modelled {
    action: Action,
    retries: bool,
    gated: bool,
    after: Option<usize>,
    when: Cond,
    /// The model's clock (hours) before which it is not cleared.
    due: Option<i32>,
    approved: bool,
    /// How it ended, once it has (it never moves again).
    ended: Option<State>,
    /// It took off (rather than ending while it waited).
    ran: bool,
    /// A hanging runway in the air now, and how many times it took off.
    running: bool,
    tries: usize,
    /// A runway of `shaky`: whether it fails at once while the breaker
    /// holds it (`on_open = "fail"`).
    shaky: Option<bool>,
    /// It passed the breaker and waits for its locks (paused): should the
    /// breaker open meanwhile, the tower holds it there.
    passed: bool,
}

/// `shaky`'s breaker as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum Breaker {
    #[default]
    Closed,
    /// Open until the model's clock (hours) reaches this.
    Open(i32),
    /// Half-open, with its probe once one was let through.
    HalfOpen(Option<usize>),
}

impl Breaker {
    fn name(self) -> &'static str {
        match self {
            Breaker::Closed => "closed",
            Breaker::Open(_) => "open",
            Breaker::HalfOpen(_) => "half-open",
        }
    }
}

/// `shaky`'s grants: the breaker the model predicts.
const SHAKY: &str = "[datasets]\n\"test_*\" = \"exclusive\"\n[breaker]\nfailures = 2\nwithin = \"24h\"\nopen_for = \"1h\"\n";

#[derive(Default)]
struct Model {
    runways: Vec<Modelled>,
    paused: bool,
    /// Hours the test clock has moved on (back, when negative).
    hours: i32,
    breaker: Breaker,
    /// `shaky`'s failures since its breaker last closed.
    failures: u32,
    /// The breaker's moves, (from, to), as its records must say them.
    moves: Vec<(&'static str, &'static str)>,
}

impl Model {
    /// Where runway `i` rests once the controller has settled.
    fn state(&self, i: usize, states: &[State]) -> State {
        let r = &self.runways[i];
        if let Some(ended) = r.ended {
            return ended;
        }
        // In the air it stays, whatever pause says: pause stops clearing,
        // not the runs already cleared.
        if r.running {
            return State::Running;
        }
        if let Some(dep) = r.after {
            match states[dep] {
                // A skipped dependency is done, with no output.
                State::Succeeded | State::Skipped => {}
                s if is_final(s) => return State::Failed,
                _ => return State::WaitingDeps,
            }
        }
        // Its condition is read once its dependency has ended.
        let dep_skipped = r.after.is_some_and(|d| states[d] == State::Skipped);
        match r.when {
            Cond::False => return State::Skipped,
            Cond::NotSkipped if dep_skipped => return State::Skipped,
            _ => {}
        }
        if r.gated && !r.approved {
            return State::WaitingApproval;
        }
        if r.due.is_some_and(|due| self.hours < due) {
            return State::WaitingTime;
        }
        if self.paused {
            return State::WaitingLocks;
        }
        match (r.action, r.retries) {
            (Action::Ok, _) | (Action::Flaky, true) => State::Succeeded,
            (Action::Spin, _) => State::TimedOut,
            (Action::Hang, _) => State::Running,
            _ => State::Failed,
        }
    }

    /// A hanging runway is alive (its successor files as `Ok`).
    fn hangs(&self) -> bool {
        self.runways
            .iter()
            .any(|r| r.action == Action::Hang && r.ended.is_none())
    }

    /// The host stopped (past its grace) or crashed under the runs in the
    /// air: a hanging runway that ran FAILED, and is taken again when it
    /// has an attempt left — a stop is no more final than a crash.
    fn stopped(&mut self) {
        for r in self.runways.iter_mut().filter(|r| r.running) {
            r.running = false;
            r.ended = match r.retries && r.tries < 2 {
                true => None,
                false => Some(State::Failed),
            };
        }
    }

    /// The attempts (each with one fresh token) the runways took.
    fn attempts(&self) -> usize {
        self.runways
            .iter()
            .filter(|r| r.ran || r.action == Action::Hang)
            .map(|r| match (r.action, r.retries) {
                (Action::Hang, _) => r.tries,
                (Action::Ok, _) => 1,
                (_, true) => 2,
                (_, false) => 1,
            })
            .sum()
    }

    /// `shaky`'s breaker moves to `to`.
    fn move_breaker(&mut self, to: Breaker) {
        self.moves.push((self.breaker.name(), to.name()));
        self.breaker = to;
    }

    /// Where runway `i` of `shaky` rests, its breaker asked (and moved by
    /// its landing).
    fn shaky_state(&mut self, i: usize) -> State {
        let r = &self.runways[i];
        if let Some(ended) = r.ended {
            return ended;
        }
        let go = match self.breaker {
            Breaker::Closed => true,
            Breaker::Open(_) => false,
            Breaker::HalfOpen(None) => {
                self.breaker = Breaker::HalfOpen(Some(i));
                true
            }
            Breaker::HalfOpen(Some(p)) => p == i,
        };
        let r = &mut self.runways[i];
        match (go, r.passed, r.shaky == Some(true)) {
            (false, true, _) => return State::WaitingLocks,
            (false, false, true) => return State::Failed,
            (false, false, false) => return State::WaitingBreaker,
            (true, _, _) if self.paused => {
                r.passed = true;
                return State::WaitingLocks;
            }
            (true, _, _) => {}
        }
        r.ran = true;
        let fails = r.action == Action::Fail;
        match (self.breaker, fails) {
            (Breaker::HalfOpen(_), true) => self.move_breaker(Breaker::Open(self.hours + 1)),
            (Breaker::HalfOpen(_), false) => {
                self.failures = 0;
                self.move_breaker(Breaker::Closed);
            }
            (_, true) => {
                self.failures += 1;
                if self.failures >= 2 {
                    self.move_breaker(Breaker::Open(self.hours + 1));
                }
            }
            (_, false) => {}
        }
        if fails {
            State::Failed
        } else {
            State::Succeeded
        }
    }

    /// Every runway's resting state; endings are remembered.
    fn settle(&mut self) -> Vec<State> {
        // A probe cancelled before it ran leaves the place free; an open
        // breaker whose hour is over goes half-open.
        if let Breaker::HalfOpen(Some(p)) = self.breaker
            && self.runways[p].ended.is_some()
        {
            self.breaker = Breaker::HalfOpen(None);
        }
        if let Breaker::Open(until) = self.breaker
            && self.hours >= until
        {
            self.move_breaker(Breaker::HalfOpen(None));
        }
        let mut states = Vec::new();
        for i in 0..self.runways.len() {
            let s = match self.runways[i].shaky {
                Some(_) => self.shaky_state(i),
                None => self.state(i, &states),
            };
            // Past its earliest start, a later jump of the clock back
            // does not send it back to wait.
            if matches!(s, State::WaitingLocks | State::Running) {
                self.runways[i].due = None;
            }
            if s == State::Running && !self.runways[i].running {
                self.runways[i].running = true;
                self.runways[i].tries += 1;
            }
            if is_final(s) && self.runways[i].ended.is_none() {
                let waited = matches!(s, State::Failed) && self.dep_failed(i, &states);
                if self.runways[i].shaky.is_none() {
                    self.runways[i].ran = !waited && s != State::Skipped;
                }
                self.runways[i].ended = Some(s);
            }
            states.push(s);
        }
        states
    }
}

impl Model {
    /// Runway `i`'s dependency ended badly.
    fn dep_failed(&self, i: usize, states: &[State]) -> bool {
        self.runways[i].after.is_some_and(|d| {
            is_final(states[d]) && !matches!(states[d], State::Succeeded | State::Skipped)
        })
    }
}

/// Will not move again (FAILED and TIMED_OUT too: the model's failures
/// have no retry left once the controller has settled).
fn is_final(s: State) -> bool {
    s.is_final() || matches!(s, State::Failed | State::TimedOut)
}

struct Driver {
    clock: Arc<ManualClock>,
    fixture: Option<Fixture>,
    rt: tokio::runtime::Runtime,
    controller: Controller,
    task: tokio::task::JoinHandle<Result<(), DispatchError>>,
}

impl Driver {
    fn new() -> Driver {
        // hostile's spin outlasts a 1 s window, not its fuel.
        let mut plugins = runway_tests::bundled_with_grants(&[(
            "hostile",
            "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 60\nfuel = 1_000_000_000_000_000\n",
        )]);
        let probe = std::fs::read(runway_tests::bundled_path("probe")).unwrap();
        let grants = runway_host::Grants::parse(SHAKY, "shaky's grants").unwrap();
        let runtime = &runway_tests::plugins().0;
        plugins.insert(runtime, "shaky", &probe, grants).unwrap();
        let fixture = Fixture::with_plugins(2, plugins);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clock = Arc::new(ManualClock::new("2026-12-02T00:00:00Z".parse().unwrap()));
        let (controller, task) = start(&rt, &fixture, &clock);
        let hourly = fixture.plan(HOURLY);
        rt.block_on(controller.file(filing(hourly))).unwrap();
        Driver {
            clock,
            fixture: Some(fixture),
            rt,
            controller,
            task,
        }
    }

    fn f(&self) -> &Fixture {
        self.fixture.as_ref().unwrap()
    }

    /// Stops the controller (runs in the air stopped, as when a stop's
    /// grace is over) and starts a new one on the same folders.
    fn restart(&mut self) {
        self.controller.stop(true);
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        self.rt.block_on(task).unwrap().unwrap();
        self.reopen();
    }

    /// The host dies mid-work, as in a `kill -9` just after its trail was
    /// written: the trail takes nothing more, the runs in the air stop
    /// without a word on it, and a new host starts on the same folders.
    /// (What a kill loses that was not yet durable is the `restart` test's
    /// subject; here the model must know what the trail holds.)
    fn crash(&mut self) {
        self.await_started();
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        runway_tests::crash(&self.rt, self.f(), (self.controller.clone(), task));
        // The last run's thread lets go of the host once it has stopped.
        let started = Instant::now();
        while Arc::strong_count(&self.f().host) > 1 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a run outlived its host"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.reopen();
    }

    /// Waits until every runway listed RUNNING has its attempt's STARTED
    /// record on the trail. The move to RUNNING is made in memory and its
    /// STARTED record appended by the run's thread a moment later; a crash
    /// in between leaves an attempt that never began, which the host rightly
    /// does not count — but the model counts every attempt it saw running.
    fn await_started(&self) {
        let started = Instant::now();
        loop {
            let listed = self.rt.block_on(self.controller.list()).unwrap();
            let records = self.f().records();
            let begun = listed
                .iter()
                .filter(|r| r.state == State::Running)
                .all(|r| {
                    let starts = records.iter().filter(|x| {
                        x.entry.runway == r.id && matches!(x.entry.event, Event::Started { .. })
                    });
                    starts.count() == r.attempts as usize
                });
            if begun {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a run listed RUNNING never began"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn reopen(&mut self) {
        let reopened = self.fixture.take().unwrap().reopen();
        let (controller, task) = start(&self.rt, &reopened, &self.clock);
        self.fixture = Some(reopened);
        self.controller = controller;
        self.task = task;
    }

    fn send(&self, command: Command) -> Result<(), ControlError> {
        self.rt.block_on(self.controller.send(command))
    }

    /// The controller's states, once they are `want` — or what they are
    /// when the wait is over: 10 s, and 5 s more per runway (a spin's
    /// window is 1 s; every other run is a few milliseconds).
    fn settled(&self, want: &[State]) -> Vec<State> {
        let started = Instant::now();
        let limit = Duration::from_secs(10 + 5 * want.len() as u64);
        loop {
            let listed = self.rt.block_on(self.controller.list()).unwrap();
            let modelled = listed.iter().filter(|r| r.manifest.fired_by.is_none());
            let got: Vec<State> = modelled.map(|r| r.state).collect();
            if got == want || started.elapsed() > limit {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn start(rt: &tokio::runtime::Runtime, f: &Fixture, clock: &Arc<ManualClock>) -> Started {
    runway_tests::start_on_clock(rt, f, clock.clone())
}

fn manifest(i: usize, op: &Op) -> String {
    let Op::File {
        action,
        retries,
        gated,
        later,
        after,
        dataset,
        exclusive,
        when,
    } = op
    else {
        unreachable!()
    };
    let hangs = *action == Action::Hang;
    let (agent, action) = match action {
        Action::Ok => ("probe", "ok"),
        Action::Fail => ("probe", "fail"),
        Action::Flaky => ("probe", "flaky"),
        Action::Spin => ("hostile", "spin\"\nwindow = \"1s"),
        Action::Hang => ("hostile", "spin"),
    };
    let mode = if *exclusive { "exclusive" } else { "shared" };
    let dataset = match hangs {
        true => "test_model_hang = \"shared\"".to_string(),
        false => format!("test_model_{dataset} = \"{mode}\""),
    };
    let mut text = format!(
        "[[runway]]\nid = \"r{i}\"\nagent = \"{agent}\"\naction = \"{action}\"\ndatasets = {{ {dataset} }}\n"
    );
    if *later {
        text.push_str("earliest_start = \"in 1h\"\n");
    }
    if *retries {
        text.push_str("retry = { attempts = 2, backoff = \"fixed\", initial = \"10ms\" }\n");
    }
    if *gated {
        text.push_str("approval = { required = true }\n");
    }
    if let Some(back) = after.filter(|&b| b <= i) {
        text.push_str(&format!("after = [\"r{}\"]\n", i - back));
    }
    let dep = after.filter(|&b| b <= i && b > 0).map(|b| i - b);
    let when = match (when, dep) {
        (Cond::True, _) => Some("size(outputs) >= 0".to_string()),
        (Cond::False, _) => Some("size(outputs) < 0".to_string()),
        (Cond::NotSkipped, Some(d)) => Some(format!("!skipped('r{d}')")),
        (Cond::NotSkipped | Cond::None, _) => None,
    };
    if let Some(when) = when {
        text.push_str(&format!("when = \"{when}\"\n"));
    }
    text
}

/// Runs `ops` against the controller and the model; gives the number of
/// times the hourly trigger fired.
fn run(ops: Vec<Op>) -> usize {
    let mut d = Driver::new();
    let mut model = Model::default();
    let mut states: Vec<State> = Vec::new();
    for op in &ops {
        let id = |n: usize| format!("r{}", n % model.runways.len().max(1));
        match op {
            Op::File {
                action,
                retries,
                gated,
                later,
                after,
                dataset,
                exclusive,
                when,
            } => {
                let i = model.runways.len();
                let action = match action {
                    Action::Hang if model.hangs() => Action::Ok,
                    a => *a,
                };
                let op = Op::File {
                    action,
                    retries: *retries,
                    gated: *gated,
                    later: *later,
                    after: *after,
                    dataset: *dataset,
                    exclusive: *exclusive,
                    when: *when,
                };
                let plan = d.f().plan(&manifest(i, &op));
                let filed = d.rt.block_on(d.controller.file(filing(plan))).unwrap();
                assert_eq!(filed[0].id, format!("r{i}"));
                model.runways.push(Modelled {
                    action,
                    retries: *retries,
                    gated: *gated,
                    after: after.filter(|&b| b <= i && b > 0).map(|b| i - b),
                    when: *when,
                    due: later.then_some(model.hours + 1),
                    approved: false,
                    ended: None,
                    ran: false,
                    running: false,
                    tries: 0,
                    shaky: None,
                    passed: false,
                });
            }
            Op::Shaky { fails, fail_open } => {
                let i = model.runways.len();
                let action = if *fails { "fail" } else { "ok" };
                let mut text = format!(
                    "[[runway]]\nid = \"r{i}\"\nagent = \"shaky\"\naction = \"{action}\"\ndatasets = {{ test_model_shaky = \"exclusive\" }}\n"
                );
                if *fail_open {
                    text.push_str("on_open = \"fail\"\n");
                }
                let plan = d.f().plan(&text);
                let filed = d.rt.block_on(d.controller.file(filing(plan))).unwrap();
                assert_eq!(filed[0].id, format!("r{i}"));
                model.runways.push(Modelled {
                    action: if *fails { Action::Fail } else { Action::Ok },
                    retries: false,
                    gated: false,
                    after: None,
                    when: Cond::None,
                    due: None,
                    approved: false,
                    ended: None,
                    ran: false,
                    running: false,
                    tries: 0,
                    shaky: Some(*fail_open),
                    passed: false,
                });
            }
            Op::Approve(n) | Op::Reject(n) | Op::Cancel(n) if !model.runways.is_empty() => {
                let i = n % model.runways.len();
                let state = states[i];
                let (command, allowed) = match op {
                    Op::Approve(_) => (
                        Command::Approve {
                            runway: id(*n),
                            by: Caller::new("alice", [Role::Admin]),
                            note: String::new(),
                        },
                        state == State::WaitingApproval,
                    ),
                    Op::Reject(_) => (
                        Command::Reject {
                            runway: id(*n),
                            by: Caller::new("bob", [Role::Admin]),
                            reason: "no".into(),
                        },
                        state == State::WaitingApproval,
                    ),
                    _ => (
                        Command::Cancel {
                            runway: id(*n),
                            by: Caller::new("carol", [Role::Admin]),
                        },
                        !is_final(state),
                    ),
                };
                let answer = d.send(command);
                assert_eq!(answer.is_ok(), allowed, "{op:?} on {state:?}: {answer:?}");
                if !allowed {
                    let why = answer.unwrap_err();
                    let expected_ended = is_final(state);
                    assert_eq!(
                        matches!(why, ControlError::Ended { .. }),
                        expected_ended,
                        "{why}"
                    );
                    continue;
                }
                let r = &mut model.runways[i];
                match op {
                    Op::Approve(_) => r.approved = true,
                    Op::Reject(_) => r.ended = Some(State::Rejected),
                    _ => {
                        r.ended = Some(State::Cancelled);
                        r.running = false;
                    }
                }
            }
            Op::Approve(_) | Op::Reject(_) | Op::Cancel(_) => continue,
            Op::Pause => {
                d.send(Command::Pause {
                    by: Caller::new("dave", [Role::Admin]),
                })
                .unwrap();
                model.paused = true;
            }
            Op::Resume => {
                d.send(Command::Resume {
                    by: Caller::new("dave", [Role::Admin]),
                })
                .unwrap();
                model.paused = false;
            }
            Op::Advance | Op::Rewind => {
                let hours = if matches!(op, Op::Advance) { 2 } else { -2 };
                d.clock
                    .advance(jiff::SignedDuration::from_hours(hours.into()));
                model.hours += hours;
            }
            Op::Restart => {
                d.restart();
                model.stopped();
            }
            Op::Crash => {
                d.crash();
                model.stopped();
            }
        }
        let want = model.settle();
        states = d.settled(&want);
        assert_eq!(states, want, "after {op:?} (ops: {ops:?})");
        let held: Vec<String> = d
            .f()
            .host
            .tower
            .board()
            .into_iter()
            .filter(|l| l.held.is_some())
            .map(|l| l.dataset)
            .collect();
        let running = model.runways.iter().any(|r| r.running);
        let expected = if running {
            vec!["test_model_hang".to_string()]
        } else {
            vec![]
        };
        assert_eq!(held, expected, "locks held at rest after {op:?}");
    }
    d.controller.stop(true);
    let task = std::mem::replace(&mut d.task, d.rt.spawn(async { Ok(()) }));
    d.rt.block_on(task).unwrap().unwrap();
    let tokens = check_locks(d.f());
    assert_eq!(tokens, model.attempts(), "one fresh token per attempt");
    // A skipped runway never ran, and its condition's decision is on the
    // trail.
    let records = d.f().records();
    for (i, r) in model.runways.iter().enumerate() {
        if r.ended != Some(State::Skipped) {
            continue;
        }
        let id = format!("r{i}");
        let mine = records.iter().filter(|x| x.entry.runway == id);
        let (mut ran, mut decided) = (false, false);
        for x in mine {
            ran |= matches!(x.entry.event, Event::Started { .. });
            decided |= matches!(&x.entry.event, Event::Decided { value, .. } if value == "false");
        }
        assert!(
            !ran && decided,
            "{id}: skipped, yet ran ({ran}) or undecided ({decided})"
        );
    }
    check_breaker(&records, &model.moves);
    check_firings(d.f())
}

/// `shaky`'s BREAKER records are the model's moves, and none of its
/// runways was cleared while its breaker was open, nor a second one while
/// it was half-open (its one probe).
fn check_breaker(records: &[runway_audit::Record], moves: &[(&str, &str)]) {
    let mut recorded = Vec::new();
    let (mut phase, mut probes) = ("closed".to_string(), 0);
    for r in records.iter().filter(|r| r.entry.agent == "shaky") {
        match &r.entry.event {
            Event::BreakerMoved { from, to, .. } => {
                assert_eq!(from, &phase, "moves follow each other");
                recorded.push((from.clone(), to.clone()));
                phase = to.clone();
                probes = 0;
            }
            Event::Cleared { .. } => {
                assert_ne!(phase, "open", "{} cleared while open", r.entry.runway);
                if phase == "half-open" {
                    probes += 1;
                    assert!(probes <= 1, "{}: a second probe", r.entry.runway);
                }
            }
            _ => {}
        }
    }
    let moves: Vec<(String, String)> = moves
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    assert_eq!(recorded, moves, "the breaker's moves");
}

/// The trigger every case runs beside its runways.
const HOURLY: &str = r#"
[[trigger]]
id = "hourly"
on = { schedule = "0 * * * *", zone = "UTC", catch_up = "all" }

[[trigger.runway]]
id = "tick"
agent = "probe"
action = "ok"
"#;

/// No scheduled time fired twice, each a whole hour, and each firing's
/// runway filed once, after its record. Gives how many fired.
fn check_firings(f: &Fixture) -> usize {
    let mut fired = HashSet::new();
    let mut filed = HashMap::new();
    for r in f.records() {
        if let Event::TriggerFired { key, .. } = &r.entry.event {
            let at: jiff::Timestamp = key.parse().unwrap();
            assert_eq!(at.as_second() % 3600, 0, "{key}");
            assert!(fired.insert(key.clone()), "{key} fired twice");
        }
        let by = runway_host::controller::filed_manifest(&r.entry.event).and_then(|m| m.fired_by);
        if let Some(by) = by {
            assert!(
                fired.contains(&by.key),
                "{} filed before its firing",
                by.key
            );
            *filed.entry(by.key).or_insert(0) += 1;
        }
    }
    for key in &fired {
        assert_eq!(filed.get(key), Some(&1), "{key}");
    }
    fired.len()
}

/// Each hour the clock passes fires once: not again after a crash, a
/// restart, or the clock set back and moved on over it again.
#[test]
fn the_hourly_trigger_fires_each_hour_once_across_crashes_and_rewinds() {
    let ops = vec![
        Op::Advance,
        Op::Crash,
        Op::Advance,
        Op::Rewind,
        Op::Restart,
        Op::Advance,
    ];
    assert_eq!(run(ops), 4, "01:00 to 04:00");
}

/// No exclusive holder beside another holder of its dataset, ever; tokens
/// only grow. Returns how many were given.
fn check_locks(f: &Fixture) -> usize {
    let mut held: HashMap<String, Vec<(String, LockMode)>> = HashMap::new();
    let mut tokens = HashSet::new();
    let mut last = 0;
    for r in f.records() {
        let (Some(dataset), runway) = (r.entry.dataset.clone(), r.entry.runway.clone()) else {
            continue;
        };
        match r.entry.event {
            Event::LockGranted { mode, token } => {
                assert!(tokens.insert(token), "token {token} given twice");
                assert!(token > last, "token {token} after {last}");
                last = token;
                let holders = held.entry(dataset.clone()).or_default();
                let clash = holders
                    .iter()
                    .any(|(_, m)| *m == LockMode::Exclusive || mode == LockMode::Exclusive);
                assert!(!clash, "{runway} got {dataset} {mode:?} beside {holders:?}");
                holders.push((runway, mode));
            }
            Event::LockReleased { .. } => {
                let holders = held.entry(dataset).or_default();
                holders.retain(|(h, _)| *h != runway);
            }
            _ => {}
        }
    }
    tokens.len()
}

proptest! {
    // A failing case's last step waits out `settled`'s deadline at each
    // shrink: shrinking stops after two minutes with what it has.
    #![proptest_config(ProptestConfig {
        cases: 12,
        max_shrink_iters: 64,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_controller_follows_its_model(ops in prop::collection::vec(op(), 1..14)) {
        run(ops);
    }
}

/// The case random sequences rarely reach: a crash under a run that has an
/// attempt left takes it again; a second crash ends it FAILED.
#[test]
fn a_crash_under_a_run_retries_it_once() {
    run(vec![hang(true), Op::Crash, Op::Crash]);
}

fn hang(retries: bool) -> Op {
    Op::File {
        action: Action::Hang,
        retries,
        gated: false,
        later: false,
        after: None,
        dataset: 0,
        exclusive: false,
        when: Cond::None,
    }
}

/// A stop past its grace under a run that has an attempt left takes it
/// again at the next start, as a crash does; a second stop ends it FAILED.
#[test]
fn a_stop_under_a_run_retries_it_once() {
    run(vec![hang(true), Op::Restart, Op::Restart]);
}

/// The case a fresh machine found (shrunk): pause stops clearing, not a
/// run already in the air — the model had the retried hang waiting for
/// locks after `Pause`, the host rightly kept it RUNNING.
#[test]
fn pause_leaves_a_run_in_the_air_running() {
    let gated_failure = Op::File {
        action: Action::Fail,
        retries: false,
        gated: true,
        later: false,
        after: None,
        dataset: 0,
        exclusive: true,
        when: Cond::None,
    };
    run(vec![
        gated_failure,
        hang(true),
        Op::Approve(2),
        Op::Resume,
        Op::Crash,
        Op::Approve(8),
        Op::Pause,
    ]);
}

/// Conditions as random sequences may miss them: a false one skips its
/// runway, `!skipped(...)` of it skips its dependent too, and a runway
/// after that one, with no condition, runs (a skipped dependency is done).
#[test]
fn a_false_condition_skips_and_the_skip_travels_as_far_as_asked() {
    let file = |after: Option<usize>, when: Cond| Op::File {
        action: Action::Ok,
        retries: false,
        gated: false,
        later: false,
        after,
        dataset: 0,
        exclusive: false,
        when,
    };
    run(vec![
        file(None, Cond::False),
        file(Some(1), Cond::NotSkipped),
        file(Some(1), Cond::None),
        file(Some(1), Cond::True),
    ]);
}

/// The breaker's whole round, as random sequences may miss it: two
/// failures open it; a runway waits, one with `on_open = "fail"` fails at
/// once; under a pause the hour passes and the first waiting runway
/// becomes the probe, across a crash; it fails and opens the breaker
/// again; after a restart and another hour the next probe closes it and
/// the failures before do not count again. Then: closed by its probe
/// before a restart, two failures after it open it again.
#[test]
fn shakys_breaker_opens_probes_and_closes_across_a_crash() {
    let shaky = |fails: bool, fail_open: bool| Op::Shaky { fails, fail_open };
    run(vec![
        shaky(true, false),
        shaky(true, false),
        shaky(true, false),
        shaky(false, true),
        shaky(false, false),
        Op::Pause,
        Op::Advance,
        Op::Crash,
        Op::Resume,
        Op::Restart,
        Op::Advance,
        shaky(true, false),
        Op::Rewind,
        shaky(true, false),
    ]);
    // Closed again before a restart, it opens again after it (the fold
    // gives back what the close forgot, not the trail's clock).
    run(vec![
        shaky(true, false),
        shaky(true, false),
        Op::Advance,
        shaky(false, false),
        Op::Restart,
        shaky(true, false),
        shaky(true, false),
    ]);
}

/// The case a random sequence found (shrunk): the clock moved two hours
/// on and at once back. The controller must see the move on before the
/// next question is answered — the breaker's hour passed, it went
/// half-open — even when the move came while it was mid-step (the test
/// clock's notification was lost then, and the move on with it).
#[test]
fn a_clock_moved_on_and_back_at_once_is_seen_on() {
    run(vec![
        Op::Shaky {
            fails: true,
            fail_open: false,
        },
        Op::Shaky {
            fails: true,
            fail_open: true,
        },
        Op::Advance,
        Op::Rewind,
        Op::Resume,
        Op::Restart,
        Op::Resume,
        Op::File {
            action: Action::Fail,
            retries: false,
            gated: false,
            later: false,
            after: Some(3),
            dataset: 1,
            exclusive: false,
            when: Cond::False,
        },
        Op::Pause,
        Op::Approve(3),
    ]);
}
