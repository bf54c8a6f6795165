//! A model-based test of the whole controller (proptest): random sequences
//! of filings (agents that succeed, fail, fail once and then succeed, or
//! spin past a 1 s window; with retries, approvals, dependencies, an
//! earliest start an hour away, shared or exclusive locks), approvals,
//! rejections, cancels, pause, resume, the test clock moved two hours on,
//! and restarts (the controller stopped, the host reopened, the queue
//! folded back from the trail) are applied to the real controller and to a
//! small reference model. After every step, once the controller has
//! settled, every runway's state must be the model's, refused commands
//! must be refused for the model's reason, and no lock is held; at the end
//! there was one fencing token per attempt the model expects, tokens only
//! grew, and no two holders of a dataset ever overlapped where one held it
//! exclusively.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use runway_audit::{Event, LockMode, State};
use runway_host::DispatchOptions;
use runway_host::controller::clock::ManualClock;
use runway_host::controller::{self, Command, ControlError, Controller, DispatchError};
use runway_tests::{Fixture, filing};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Ok,
    Fail,
    Flaky,
    /// Spins past its 1 s window: TIMED_OUT.
    Spin,
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
    },
    Approve(usize),
    Reject(usize),
    Cancel(usize),
    Pause,
    Resume,
    /// The test clock moves two hours on.
    Advance,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            prop_oneof![
                3 => Just(Action::Ok),
                2 => Just(Action::Fail),
                2 => Just(Action::Flaky),
                1 => Just(Action::Spin),
            ],
            any::<bool>(),
            prop::bool::weighted(0.4),
            prop::bool::weighted(0.2),
            prop::option::weighted(0.4, 1usize..4),
            0usize..3,
            any::<bool>(),
        )
            .prop_map(|(action, retries, gated, later, after, dataset, exclusive)| Op::File {
                action,
                retries,
                gated,
                later,
                after,
                dataset,
                exclusive,
            }),
        2 => (0usize..16).prop_map(Op::Approve),
        1 => (0usize..16).prop_map(Op::Reject),
        1 => (0usize..16).prop_map(Op::Cancel),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

/// One runway as the model sees it.
#[derive(Debug, Clone)]
struct Modelled {
    action: Action,
    retries: bool,
    gated: bool,
    after: Option<usize>,
    /// The model's clock (hours) before which it is not cleared.
    due: u32,
    approved: bool,
    /// How it ended, once it has (it never moves again).
    ended: Option<State>,
    /// It took off (rather than ending while it waited).
    ran: bool,
}

#[derive(Default)]
struct Model {
    runways: Vec<Modelled>,
    paused: bool,
    /// Hours the test clock has moved on.
    hours: u32,
}

impl Model {
    /// Where runway `i` rests once the controller has settled.
    fn state(&self, i: usize, states: &[State]) -> State {
        let r = &self.runways[i];
        if let Some(ended) = r.ended {
            return ended;
        }
        if let Some(dep) = r.after {
            match states[dep] {
                State::Succeeded => {}
                s if is_final(s) => return State::Failed,
                _ => return State::WaitingDeps,
            }
        }
        if r.gated && !r.approved {
            return State::WaitingApproval;
        }
        if self.hours < r.due {
            return State::WaitingTime;
        }
        if self.paused {
            return State::WaitingLocks;
        }
        match (r.action, r.retries) {
            (Action::Ok, _) | (Action::Flaky, true) => State::Succeeded,
            (Action::Spin, _) => State::TimedOut,
            _ => State::Failed,
        }
    }

    /// The attempts (each with one fresh token) the runways took.
    fn attempts(&self) -> usize {
        self.runways
            .iter()
            .filter(|r| r.ran)
            .map(|r| match (r.action, r.retries) {
                (Action::Ok, _) => 1,
                (_, true) => 2,
                (_, false) => 1,
            })
            .sum()
    }

    /// Every runway's resting state; endings are remembered.
    fn settle(&mut self) -> Vec<State> {
        let mut states = Vec::new();
        for i in 0..self.runways.len() {
            let s = self.state(i, &states);
            if is_final(s) && self.runways[i].ended.is_none() {
                let waited = matches!(s, State::Failed) && self.dep_failed(i, &states);
                self.runways[i].ran = !waited;
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
        self.runways[i]
            .after
            .is_some_and(|d| is_final(states[d]) && states[d] != State::Succeeded)
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
        let fixture = Fixture::with_grants(&[(
            "hostile",
            "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 60\nfuel = 1_000_000_000_000_000\n",
        )]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clock = Arc::new(ManualClock::new("2026-12-02T00:00:00Z".parse().unwrap()));
        let (controller, task) = start(&rt, &fixture, &clock);
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

    fn restart(&mut self) {
        self.controller.stop(false);
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        self.rt.block_on(task).unwrap().unwrap();
        let reopened = self.fixture.take().unwrap().reopen();
        let (controller, task) = start(&self.rt, &reopened, &self.clock);
        self.fixture = Some(reopened);
        self.controller = controller;
        self.task = task;
    }

    fn send(&self, command: Command) -> Result<(), ControlError> {
        self.rt.block_on(self.controller.send(command))
    }

    /// The controller's states, once they are `want` (or after 20 s).
    fn settled(&self, want: &[State]) -> Vec<State> {
        let started = Instant::now();
        loop {
            let listed = self.rt.block_on(self.controller.list()).unwrap();
            let got: Vec<State> = listed.iter().map(|r| r.state).collect();
            if got == want || started.elapsed() > Duration::from_secs(20) {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn start(
    rt: &tokio::runtime::Runtime,
    f: &Fixture,
    clock: &Arc<ManualClock>,
) -> (
    Controller,
    tokio::task::JoinHandle<Result<(), DispatchError>>,
) {
    let _in = rt.enter();
    let opts = DispatchOptions {
        clock: clock.clone(),
        ..DispatchOptions::default()
    };
    controller::start(f.host.clone(), opts).unwrap()
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
    } = op
    else {
        unreachable!()
    };
    let (agent, action) = match action {
        Action::Ok => ("probe", "ok"),
        Action::Fail => ("probe", "fail"),
        Action::Flaky => ("probe", "flaky"),
        Action::Spin => ("hostile", "spin\"\nwindow = \"1s"),
    };
    let mode = if *exclusive { "exclusive" } else { "shared" };
    let mut text = format!(
        "[[runway]]\nid = \"r{i}\"\nagent = \"{agent}\"\naction = \"{action}\"\ndatasets = {{ test_model_{dataset} = \"{mode}\" }}\n"
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
    text
}

fn run(ops: Vec<Op>) {
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
                ..
            } => {
                let i = model.runways.len();
                let plan = d.f().plan(&manifest(i, op));
                let filed = d.rt.block_on(d.controller.file(filing(plan))).unwrap();
                assert_eq!(filed[0].id, format!("r{i}"));
                model.runways.push(Modelled {
                    action: *action,
                    retries: *retries,
                    gated: *gated,
                    after: after.filter(|&b| b <= i && b > 0).map(|b| i - b),
                    due: if *later { model.hours + 1 } else { 0 },
                    approved: false,
                    ended: None,
                    ran: false,
                });
            }
            Op::Approve(n) | Op::Reject(n) | Op::Cancel(n) if !model.runways.is_empty() => {
                let i = n % model.runways.len();
                let state = states[i];
                let (command, allowed) = match op {
                    Op::Approve(_) => (
                        Command::Approve {
                            runway: id(*n),
                            by: "alice".into(),
                            note: String::new(),
                        },
                        state == State::WaitingApproval,
                    ),
                    Op::Reject(_) => (
                        Command::Reject {
                            runway: id(*n),
                            by: "bob".into(),
                            reason: "no".into(),
                        },
                        state == State::WaitingApproval,
                    ),
                    _ => (
                        Command::Cancel {
                            runway: id(*n),
                            by: "carol".into(),
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
                    _ => r.ended = Some(State::Cancelled),
                }
            }
            Op::Approve(_) | Op::Reject(_) | Op::Cancel(_) => continue,
            Op::Pause => {
                d.send(Command::Pause { by: "dave".into() }).unwrap();
                model.paused = true;
            }
            Op::Resume => {
                d.send(Command::Resume { by: "dave".into() }).unwrap();
                model.paused = false;
            }
            Op::Advance => {
                d.clock.advance(jiff::SignedDuration::from_hours(2));
                model.hours += 2;
            }
            Op::Restart => d.restart(),
        }
        let want = model.settle();
        states = d.settled(&want);
        assert_eq!(states, want, "after {op:?} (ops: {ops:?})");
        assert!(
            d.f().host.tower.board().iter().all(|l| l.held.is_none()),
            "a lock held at rest"
        );
    }
    d.controller.stop(false);
    let task = std::mem::replace(&mut d.task, d.rt.spawn(async { Ok(()) }));
    d.rt.block_on(task).unwrap().unwrap();
    let tokens = check_locks(d.f());
    assert_eq!(tokens, model.attempts(), "one fresh token per attempt");
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
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_controller_follows_its_model(ops in prop::collection::vec(op(), 1..14)) {
        run(ops);
    }
}
