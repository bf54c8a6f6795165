//! Handoffs on the in-memory host: recorded when the run succeeds, made at
//! most once, run in the run's place when the agent is registered, and the
//! last of a line's results given to a parent joining it.

use serde::Serialize;

use super::TestHost;
use super::delegation_tests::{WhoAmI, host, who_am_i};
use crate::{Agent, ChildResult, Context, Delegation, Error, Handoff, JoinMode, LockMode};

struct HandOff;

impl Agent for HandOff {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.handoff(Handoff::to("appeals").action("review"))?;
        let again = ctx.handoff(Handoff::to("elsewhere"));
        Ok(again.unwrap_err().to_string())
    }
}

#[test]
fn a_handoff_is_recorded_and_made_once() {
    let run = TestHost::new().run::<HandOff>();
    let handoff = run.handoff().expect("recorded");
    assert_eq!((&*handoff.agent, &*handoff.action), ("appeals", "review"));
    assert_eq!(
        run.json::<String>(),
        "invalid: runway test-1 already handed off to agent appeals"
    );
    assert!(run.successor().is_none(), "appeals is not registered");
}

#[test]
fn a_registered_agent_takes_over_with_the_output() {
    let mut host = TestHost::new().agent_fn("appeals", who_am_i);
    let run = host.run::<HandOff>();
    let next = run.successor().expect("appeals ran");
    let (runway, action, attempt, input, _) = next.json::<WhoAmI>();
    assert_eq!(
        (&*runway, &*action, attempt),
        ("test-1.handoff", "review", 1)
    );
    assert_eq!(
        input,
        serde_json::to_string(&run.json::<String>()).unwrap(),
        "its input is the output"
    );
}

struct HandOffWithInput;

impl Agent for HandOffWithInput {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.handoff(Handoff::to("appeals").input(&["case-7"])?)?;
        Ok("flagged")
    }
}

#[test]
fn a_handoff_given_its_own_input_passes_that_instead_of_the_output() {
    let mut host = TestHost::new().agent_fn("appeals", who_am_i);
    let run = host.run::<HandOffWithInput>();
    assert_eq!(run.json::<String>(), "flagged");
    let handoff = run.handoff().expect("recorded");
    assert_eq!(handoff.input.as_deref(), Some(&br#"["case-7"]"#[..]));
    let (runway, _, _, input, _) = run.successor().expect("appeals ran").json::<WhoAmI>();
    assert_eq!((&*runway, &*input), ("test-1.handoff", r#"["case-7"]"#));
}

struct HandOffThenFail;

impl Agent for HandOffThenFail {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.handoff(Handoff::to("appeals"))?;
        Err::<(), _>(Error::Invalid("changed my mind".into()))
    }
}

#[test]
fn a_failed_run_hands_nothing_off() {
    let mut host = TestHost::new().agent_fn("appeals", who_am_i);
    let run = host.run::<HandOffThenFail>();
    assert!(run.handoff().is_none() && run.successor().is_none());
}

struct JoinsAHandoff;

impl Agent for JoinsAHandoff {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let child = ctx.delegate(Delegation::to("hands-off").input(&4)?)?;
        let [result] = <[ChildResult; 1]>::try_from(ctx.join(&[child], JoinMode::All, None)?)
            .expect("one result");
        Ok((result.agent.clone(), result.json::<u64>()?))
    }
}

#[test]
fn a_parent_gets_the_last_of_a_handed_off_lines_results() {
    let mut host = host().agent_fn("hands-off", |ctx: &Context| {
        ctx.handoff(Handoff::to("square"))?;
        ctx.input::<u64>()
    });
    let run = host.run::<JoinsAHandoff>();
    assert_eq!(run.json::<(String, u64)>(), ("square".into(), 16));
}

struct HandsOnALock;

impl Agent for HandsOnALock {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let child = ctx.delegate(Delegation::to("marks").lock("free", LockMode::Exclusive))?;
        let [result] = <[ChildResult; 1]>::try_from(ctx.join(&[child], JoinMode::All, None)?)
            .expect("one result");
        Ok((result.agent.clone(), result.json::<String>()?))
    }
}

#[test]
fn the_agent_taking_over_can_take_the_locks_its_predecessor_held() {
    let mark = |ctx: &Context| {
        let agent = &ctx.info().agent;
        ctx.dataset("free").put(agent, agent)?;
        Ok(agent.clone())
    };
    let mut host = TestHost::new()
        .agent_fn("marks", move |ctx: &Context| {
            ctx.handoff(Handoff::to("marks-too").lock("free", LockMode::Exclusive))?;
            mark(ctx)
        })
        .agent_fn("marks-too", mark);
    let run = host.run::<HandsOnALock>();
    assert_eq!(
        run.json::<(String, String)>(),
        ("marks-too".into(), "marks-too".into())
    );
    assert_eq!(
        host.keys("free"),
        ["marks", "marks-too"],
        "both lines' writes landed"
    );
}
