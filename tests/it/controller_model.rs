//! A model-based test of the whole controller (proptest): random sequences
//! of filings (agents that succeed, fail, or fail once and then succeed;
//! with retries, approvals, dependencies and shared or exclusive locks),
//! approvals, rejections, cancels, pause, resume and restarts (the
//! controller stopped, the host reopened, the queue folded back from the
//! trail) are applied to the real controller and to a small reference
//! model. After every step, once the controller has settled, every
//! runway's state must be the model's, refused commands must be refused
//! for the model's reason, and at the end no two holders of a dataset ever
//! overlapped where one held it exclusively, and no token was given twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use runway_audit::{Event, LockMode, State};
use runway_host::DispatchOptions;
use runway_host::controller::{self, Command, ControlError, Controller, DispatchError};
use runway_tests::{Fixture, filing};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Ok,
    Fail,
    Flaky,
}

#[derive(Debug, Clone)]
enum Op {
    File {
        action: Action,
        retries: bool,
        gated: bool,
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
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            prop_oneof![Just(Action::Ok), Just(Action::Fail), Just(Action::Flaky)],
            any::<bool>(),
            prop::bool::weighted(0.4),
            prop::option::weighted(0.4, 1usize..4),
            0usize..3,
            any::<bool>(),
        )
            .prop_map(|(action, retries, gated, after, dataset, exclusive)| Op::File {
                action,
                retries,
                gated,
                after,
                dataset,
                exclusive,
            }),
        2 => (0usize..16).prop_map(Op::Approve),
        1 => (0usize..16).prop_map(Op::Reject),
        1 => (0usize..16).prop_map(Op::Cancel),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
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
    approved: bool,
    /// How it ended, once it has (it never moves again).
    ended: Option<State>,
}

#[derive(Default)]
struct Model {
    runways: Vec<Modelled>,
    paused: bool,
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
        if self.paused {
            return State::WaitingLocks;
        }
        match (r.action, r.retries) {
            (Action::Ok, _) | (Action::Flaky, true) => State::Succeeded,
            _ => State::Failed,
        }
    }

    /// Every runway's resting state; endings are remembered.
    fn settle(&mut self) -> Vec<State> {
        let mut states = Vec::new();
        for i in 0..self.runways.len() {
            let s = self.state(i, &states);
            if is_final(s) {
                self.runways[i].ended = Some(s);
            }
            states.push(s);
        }
        states
    }
}

/// Will not move again (FAILED too: the model's failures have no retry
/// left once the controller has settled).
fn is_final(s: State) -> bool {
    s.is_final() || s == State::Failed
}

struct Driver {
    fixture: Option<Fixture>,
    rt: tokio::runtime::Runtime,
    controller: Controller,
    task: tokio::task::JoinHandle<Result<(), DispatchError>>,
}

impl Driver {
    fn new() -> Driver {
        let fixture = Fixture::new();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (controller, task) = start(&rt, &fixture);
        Driver {
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
        let (controller, task) = start(&self.rt, &reopened);
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
) -> (
    Controller,
    tokio::task::JoinHandle<Result<(), DispatchError>>,
) {
    let _in = rt.enter();
    controller::start(f.host.clone(), DispatchOptions::default()).unwrap()
}

fn manifest(i: usize, op: &Op) -> String {
    let Op::File {
        action,
        retries,
        gated,
        after,
        dataset,
        exclusive,
    } = op
    else {
        unreachable!()
    };
    let action = match action {
        Action::Ok => "ok",
        Action::Fail => "fail",
        Action::Flaky => "flaky",
    };
    let mode = if *exclusive { "exclusive" } else { "shared" };
    let mut text = format!(
        "[[runway]]\nid = \"r{i}\"\nagent = \"probe\"\naction = \"{action}\"\ndatasets = {{ test_model_{dataset} = \"{mode}\" }}\n"
    );
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
                    approved: false,
                    ended: None,
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
            Op::Restart => d.restart(),
        }
        let want = model.settle();
        states = d.settled(&want);
        assert_eq!(states, want, "after {op:?} (ops: {ops:?})");
    }
    d.controller.stop(false);
    let task = std::mem::replace(&mut d.task, d.rt.spawn(async { Ok(()) }));
    d.rt.block_on(task).unwrap().unwrap();
    check_locks(d.f());
}

/// No exclusive holder beside another holder of its dataset, ever; no
/// token given twice.
fn check_locks(f: &Fixture) {
    let mut held: HashMap<String, Vec<(String, LockMode)>> = HashMap::new();
    let mut tokens = HashSet::new();
    for r in f.records() {
        let (Some(dataset), runway) = (r.entry.dataset.clone(), r.entry.runway.clone()) else {
            continue;
        };
        match r.entry.event {
            Event::LockGranted { mode, token } => {
                assert!(tokens.insert(token), "token {token} given twice");
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_controller_follows_its_model(ops in prop::collection::vec(op(), 1..14)) {
        run(ops);
    }
}
