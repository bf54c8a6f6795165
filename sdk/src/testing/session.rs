//! The in-memory host while [`TestHost::run`](super::TestHost::run) is in
//! progress, one per thread: the committed datasets, the agents the test
//! registered, the runs in progress (a stack: a child runs inside its
//! parent's `join`, innermost last) and the fencing-token counter; and
//! running one run to its end — its retries, and the agents it hands off
//! to, with it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::frame::{Datasets, Frame};
use super::locks;
use super::run::Run;
use crate::{ChildResult, ChildState, Error, Handoff, RunInfo};

/// An agent's `run` as the test registered it: it asks the host who it is,
/// and gives back its output.
pub(super) type Body = Rc<dyn Fn() -> Result<Vec<u8>, Error>>;

/// The in-memory host's state during one `TestHost::run`.
pub(super) struct Session {
    pub(super) committed: Datasets,
    pub(super) agents: BTreeMap<String, Body>,
    /// The runs in progress, innermost (the one calling) last.
    pub(super) stack: Vec<Frame>,
    /// The last fencing token given out.
    pub(super) tokens: u64,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// The session installed on this thread, until [`finish`](Self::finish)ed
/// or dropped (a panic in an agent unwinds through it and clears it).
pub(super) struct Installed(());

/// Installs `session` on this thread.
pub(super) fn install(session: Session) -> Installed {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        assert!(s.is_none(), "TestHost::run called inside a run");
        *s = Some(session);
    });
    Installed(())
}

impl Installed {
    /// The session, taken off this thread.
    pub(super) fn finish(self) -> Session {
        SESSION
            .with(|s| s.borrow_mut().take())
            .expect("the session is still installed")
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        SESSION.with(|s| s.borrow_mut().take());
    }
}

/// Calls `f` with this thread's session; the host's calls all come here.
pub(super) fn with<T>(f: impl FnOnce(&mut Session) -> T) -> T {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let session = s.as_mut().expect(
            "runway-sdk (feature `testing`) was called outside TestHost::run: \
             run the agent through TestHost",
        );
        f(session)
    })
}

impl Session {
    /// The run making the call.
    pub(super) fn caller(&mut self) -> &mut Frame {
        self.caller_and_committed().0
    }

    /// The run making the call, and the committed records it reads through.
    pub(super) fn caller_and_committed(&mut self) -> (&mut Frame, &Datasets) {
        let run = self.stack.last_mut();
        let run = run.expect("a host call comes from a run in progress");
        (run, &self.committed)
    }
}

/// Runs `body` as the run `info`: again while it fails, `attempts` times in
/// all (the attempt number counting up from `info`'s); its staged writes
/// committed when it succeeds, discarded when it fails. Then it lands (its
/// parent gets back the locks it handed down) and, if it handed off to an
/// agent the test registered, that agent runs in its place, the same way.
pub(super) fn run_line(mut info: RunInfo, body: Body, attempts: u32) -> Run {
    let mut run = run_once(info.clone(), &body);
    for _ in 1..attempts {
        if run.output.is_ok() {
            break;
        }
        info.attempt += 1;
        run = run_once(info.clone(), &body);
    }
    with(|s| locks::land(&mut s.stack, &mut s.tokens, &info.runway));
    if let (Ok(output), Some(to)) = (&run.output, &run.handoff) {
        run.successor = take_over(&info.runway, output, to).map(Box::new);
    }
    run
}

/// Runs the waiting child `id` of the calling run (retries and handoffs
/// included) and records how its line ended.
pub(super) fn run_child(id: &str) {
    let (info, body, attempts) = with(|s| {
        let filed = s.caller().child_mut(id).expect("a joined child was filed");
        filed.result.state = ChildState::Running;
        let (info, attempts) = (filed.info.clone(), filed.attempts);
        let body = s.agents[&info.agent].clone();
        (info, body, attempts)
    });
    let agent = info.agent.clone();
    let line = run_line(info, body, attempts);
    let result = line_result(id, agent, &line);
    with(|s| {
        s.caller()
            .child_mut(id)
            .expect("a joined child was filed")
            .result = result
    });
}

/// One attempt of a run.
fn run_once(info: RunInfo, body: &Body) -> Run {
    with(|s| s.stack.push(Frame::new(info)));
    let output = body();
    with(|s| {
        let frame = s.stack.pop().expect("the run's frame is still there");
        if output.is_ok() {
            for (dataset, changes) in frame.staged {
                let records = s.committed.entry(dataset).or_default();
                for (key, change) in changes {
                    match change {
                        Some(value) => records.insert(key, value),
                        None => records.remove(&key),
                    };
                }
            }
        }
        let handoff = frame.handoff.filter(|_| output.is_ok());
        let published = if output.is_ok() {
            frame.published
        } else {
            Vec::new()
        };
        Run {
            output,
            logs: frame.logs,
            progress: frame.progress,
            published,
            children: frame.children.into_iter().map(|c| c.result).collect(),
            handoff,
            successor: None,
        }
    })
}

/// The run of the agent `to` names, in the place of the run `runway` that
/// handed off with `output` (its input, unless `to` gives one); none when
/// the test did not register the agent.
/// Its runway id is `runway` and `.handoff`; a lock it cannot have fails it.
fn take_over(runway: &str, output: &[u8], to: &Handoff) -> Option<Run> {
    let id = format!("{runway}.handoff");
    let (body, locks) = with(|s| {
        let body = s.agents.get(&to.agent)?.clone();
        Some((
            body,
            locks::grant(&mut s.stack, &mut s.tokens, &id, &to.locks),
        ))
    })?;
    let info = |locks| RunInfo {
        runway: id.clone(),
        agent: to.agent.clone(),
        action: to.action.clone(),
        input: to.input.clone().unwrap_or_else(|| output.to_vec()),
        attempt: 1,
        locks,
    };
    Some(match locks {
        Ok(locks) => run_line(info(locks), body, to.retry.map_or(1, |r| r.attempts)),
        Err(e) => Run {
            output: Err(e),
            logs: Vec::new(),
            progress: Vec::new(),
            published: Vec::new(),
            children: Vec::new(),
            handoff: None,
            successor: None,
        },
    })
}

/// How the line of the child `id` (delegated to `agent`) ended: the last
/// run's state and output or reason, and the agent that ran it.
fn line_result(id: &str, mut agent: String, line: &Run) -> ChildResult {
    let mut last = line;
    while let (Some(next), Some(to)) = (&last.successor, &last.handoff) {
        agent.clone_from(&to.agent);
        last = next;
    }
    let (state, output, reason) = match &last.output {
        Ok(output) => (ChildState::Succeeded, Some(output.clone()), None),
        Err(e) => (
            ChildState::Failed,
            None,
            Some(format!("agent returned error: {e}")),
        ),
    };
    ChildResult {
        runway: id.into(),
        agent,
        state,
        output,
        reason,
    }
}
