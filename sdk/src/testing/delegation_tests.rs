//! Delegating agents on the in-memory host: fan-out and joins in every mode,
//! races, chains, retries, idempotency keys, progress — each driven through
//! the SDK's own `Context` calls, as an agent makes them. The agents and
//! helpers on top are shared with the handoff and lock tests.

use std::cell::Cell;
use std::rc::Rc;

use serde::Serialize;

use super::TestHost;
use crate::{
    Agent, Child, ChildResult, ChildState, Context, Delegation, Error, JoinMode, LockMode,
};

/// Doubles its input.
pub(super) struct Double;

impl Agent for Double {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        Ok(ctx.input::<u64>()? * 2)
    }
}

/// A host with `double` (an agent type), `square` and `fail` (closures).
pub(super) fn host() -> TestHost {
    TestHost::new()
        .agent::<Double>("double")
        .agent_fn("square", |ctx: &Context| {
            let n: u64 = ctx.input()?;
            Ok(n * n)
        })
        .agent_fn("fail", |ctx: &Context| -> Result<u64, Error> {
            Err(Error::Limit(format!("{} gave up", ctx.info().runway)))
        })
}

/// (runway, agent, state) of each child.
pub(super) fn states(children: &[ChildResult]) -> Vec<(&str, &str, ChildState)> {
    children
        .iter()
        .map(|c| (c.runway.as_str(), c.agent.as_str(), c.state))
        .collect()
}

struct FanOut;

impl Agent for FanOut {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let all = ctx
            .parallel([
                Delegation::to("double").input(&2)?,
                Delegation::to("square").input(&3)?,
            ])?
            .join_all()?;
        all.iter()
            .map(ChildResult::json)
            .collect::<Result<Vec<u64>, _>>()
    }
}

#[test]
fn a_fan_out_joins_every_child_with_its_output() {
    let run = host().run::<FanOut>();
    assert_eq!(run.json::<Vec<u64>>(), [4, 9]);
    assert_eq!(
        states(run.children()),
        [
            ("test-1.1", "double", ChildState::Succeeded),
            ("test-1.2", "square", ChildState::Succeeded),
        ]
    );
    assert_eq!(run.children()[1].output(), Some(&b"9"[..]));
}

/// Tells who it is: runway, action, attempt, input, and its locks
/// (dataset, exclusive, token).
pub(super) type WhoAmI = (String, String, u32, String, Vec<(String, bool, u64)>);

pub(super) fn who_am_i(ctx: &Context) -> Result<WhoAmI, Error> {
    let info = ctx.info();
    let exclusive = |mode| mode == LockMode::Exclusive;
    let locks = info
        .locks
        .iter()
        .map(|l| (l.dataset.clone(), exclusive(l.mode), l.token));
    Ok((
        info.runway.clone(),
        info.action.clone(),
        info.attempt,
        String::from_utf8_lossy(&info.input).into_owned(),
        locks.collect(),
    ))
}

struct AskTwice;

impl Agent for AskTwice {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let first = ctx.delegate(
            Delegation::to("whoami")
                .action("look")
                .input("hi")?
                .lock("ref", LockMode::Shared)
                .lock("free", LockMode::Exclusive),
        )?;
        let second = ctx.delegate(Delegation::to("whoami").raw_input(*b"raw"))?;
        let joined = ctx.join(&[second, first], JoinMode::All, None)?;
        joined
            .iter()
            .map(ChildResult::json)
            .collect::<Result<Vec<WhoAmI>, _>>()
    }
}

#[test]
fn each_child_runs_with_its_own_run_info_and_fresh_tokens() {
    let mut host = TestHost::new()
        .lock("ref", LockMode::Shared)
        .lock("apps", LockMode::Exclusive)
        .agent_fn("whoami", who_am_i);
    let [second, first]: [WhoAmI; 2] = host.run::<AskTwice>().json();
    let locks = vec![("ref".to_string(), false, 3), ("free".to_string(), true, 4)];
    assert_eq!(
        first,
        ("test-1.1".into(), "look".into(), 1, "\"hi\"".into(), locks),
        "in the order joined; tokens past the parent's 1 and 2"
    );
    assert_eq!(
        second,
        ("test-1.2".into(), "run".into(), 1, "raw".into(), vec![])
    );
}

struct WriteThenMaybeFail;

impl Agent for WriteThenMaybeFail {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let delegations = ["writer", "writer-failing"]
            .map(|a| Delegation::to(a).lock("out", LockMode::Exclusive));
        let [ok, failing] = delegations;
        let ok = ctx.delegate(ok)?;
        ctx.join(&[ok], JoinMode::All, None)?;
        let failing = ctx.delegate(failing)?;
        ctx.join(&[failing], JoinMode::All, None)?;
        Ok(())
    }
}

#[test]
fn a_childs_writes_land_only_if_it_succeeds() {
    let write = |ctx: &Context, fail: bool| {
        let key = &ctx.info().runway;
        ctx.dataset("out").put(key, &ctx.info().agent)?;
        match fail {
            true => Err(Error::Invalid("no".into())),
            false => Ok(()),
        }
    };
    let mut host = TestHost::new()
        .agent_fn("writer", move |ctx: &Context| write(ctx, false))
        .agent_fn("writer-failing", move |ctx: &Context| write(ctx, true));
    let run = host.run::<WriteThenMaybeFail>();
    assert_eq!(
        states(run.children()),
        [
            ("test-1.1", "writer", ChildState::Succeeded),
            ("test-1.2", "writer-failing", ChildState::Failed),
        ]
    );
    assert_eq!(
        host.keys("out"),
        ["test-1.1"],
        "the failed child's write is gone"
    );
}

/// Races `fail`, `double`, `square`.
struct Race;

impl Agent for Race {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let winner = ctx.first_success([
            Delegation::to("fail"),
            Delegation::to("double").input(&5)?,
            Delegation::to("counted").input(&5)?,
        ])?;
        Ok((winner.runway.clone(), winner.json::<u64>()?))
    }
}

#[test]
fn first_success_keeps_the_first_success_and_cancels_the_rest() {
    let ran = Rc::new(Cell::new(0));
    let counter = ran.clone();
    let mut host = host().agent_fn("counted", move |_: &Context| {
        counter.set(counter.get() + 1);
        Ok(0)
    });
    let run = host.run::<Race>();
    assert_eq!(run.json::<(String, u64)>(), ("test-1.2".into(), 10));
    assert_eq!(
        states(run.children()),
        [
            ("test-1.1", "fail", ChildState::Failed),
            ("test-1.2", "double", ChildState::Succeeded),
            ("test-1.3", "counted", ChildState::Cancelled),
        ]
    );
    assert_eq!(ran.get(), 0, "a cancelled child never runs");
    assert_eq!(
        run.children()[2].reason(),
        Some("cancelled: test-1.2 succeeded first")
    );
    assert_eq!(
        run.children()[0].reason(),
        Some("agent returned error: limit: test-1.1 gave up")
    );
}

struct AllFail;

impl Agent for AllFail {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.first_success(std::iter::repeat_n(Delegation::to("fail"), 10))?;
        Ok(())
    }
}

#[test]
fn first_success_with_no_success_says_how_each_ended() {
    let run = host().run::<AllFail>();
    let Error::Invalid(message) = run.error() else {
        panic!("{}", run.error());
    };
    assert!(
        message.starts_with(
            "no child succeeded: child test-1.1 (fail): failed: agent returned error: \
             limit: test-1.1 gave up; child test-1.2 (fail): failed: "
        ),
        "{message}"
    );
    assert!(message.contains("child test-1.8 (fail)"), "{message}");
    assert!(!message.contains("test-1.9"), "capped: {message}");
    assert!(message.ends_with("; and 2 more"), "{message}");
}

/// Quorum of 2 over `square`, `fail`, `double`, `square`.
struct Quorum;

impl Agent for Quorum {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let all = ctx.parallel([
            Delegation::to("square").input(&3)?,
            Delegation::to("fail"),
            Delegation::to("double").input(&3)?,
            Delegation::to("square").input(&4)?,
        ])?;
        let met = all.quorum(2)?;
        let out_of_reach =
            ctx.parallel([Delegation::to("fail"), Delegation::to("double").input(&1)?])?;
        let missed = out_of_reach.quorum(2)?;
        let any = ctx.parallel([Delegation::to("fail"), Delegation::to("double").input(&1)?])?;
        let any = any.join_any()?;
        Ok([met, missed, any].map(|r| r.iter().map(|c| c.state.name()).collect::<Vec<_>>()))
    }
}

#[test]
fn quorum_runs_children_until_enough_succeeded_or_too_few_can() {
    let run = host().run::<Quorum>();
    assert_eq!(
        run.json::<Vec<Vec<String>>>(),
        [
            vec!["succeeded", "failed", "succeeded", "waiting"],
            vec!["failed", "waiting"],
            vec!["failed", "waiting"],
        ]
    );
    assert_eq!(run.children().len(), 8);
    assert_eq!(
        run.children()[3].state,
        ChildState::Waiting,
        "a child never joined never runs"
    );
}

/// A quorum of 3 among 2 children.
struct Unreachable;

impl Agent for Unreachable {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let two = ctx.parallel([Delegation::to("fail"), Delegation::to("double")])?;
        two.quorum(3).map(|results| results.len())
    }
}

#[test]
fn a_quorum_no_join_could_meet_is_invalid_in_the_hosts_words() {
    let run = host().run::<Unreachable>();
    assert_eq!(
        run.error().to_string(),
        "invalid: join: a quorum of 3 among 2 children can never be met"
    );
    assert!(
        run.children()
            .iter()
            .all(|c| c.state == ChildState::Waiting)
    );
}

/// `double` of 5, then `double`, then `square`: 400.
struct Pipeline;

impl Agent for Pipeline {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let last = ctx.chain([
            Delegation::to("double").input(&5)?,
            Delegation::to("double").input(&1000)?,
            Delegation::to("square"),
        ])?;
        last.json::<u64>()
    }
}

#[test]
fn a_chain_passes_each_output_on() {
    let run = host().run::<Pipeline>();
    assert_eq!(
        run.json::<u64>(),
        400,
        "(5 * 2 * 2)^2: the second input replaced"
    );
    assert_eq!(run.children().len(), 3);
}

struct BrokenPipeline;

impl Agent for BrokenPipeline {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.chain([
            Delegation::to("double").input(&5)?,
            Delegation::to("fail"),
            Delegation::to("square"),
        ])
        .map(|_| ())
    }
}

#[test]
fn a_chain_stops_at_the_step_that_fails_naming_it() {
    let run = host().run::<BrokenPipeline>();
    assert_eq!(
        run.error(),
        &Error::Invalid(
            "chain step 2 of 3: child test-1.2 (fail): failed: agent returned error: \
             limit: test-1.2 gave up"
                .into()
        )
    );
    assert_eq!(run.children().len(), 2, "the third step was never filed");
}

struct Retried;

impl Agent for Retried {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let child = ctx.delegate(
            Delegation::to("third-time-lucky").retry(3, std::time::Duration::from_millis(1)),
        )?;
        let once = ctx.delegate(Delegation::to("third-time-lucky"))?;
        let results = ctx.join(&[child, once], JoinMode::All, None)?;
        Ok(results.iter().map(|r| r.state.name()).collect::<Vec<_>>())
    }
}

#[test]
fn a_child_is_tried_again_as_its_retry_policy_says() {
    let mut host = TestHost::new().agent_fn("third-time-lucky", |ctx: &Context| {
        match ctx.info().attempt {
            3 => Ok(3),
            n => Err(Error::Limit(format!("attempt {n}"))),
        }
    });
    assert_eq!(
        host.run::<Retried>().json::<Vec<String>>(),
        ["succeeded", "failed"]
    );
}

struct SameKey;

impl Agent for SameKey {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let a = ctx.delegate(Delegation::to("double").input(&1)?.key("shard-1"))?;
        let b = ctx.delegate(Delegation::to("double").input(&1)?.key("shard-1"))?;
        let c = ctx.delegate(Delegation::to("double").input(&1)?.key("shard-2"))?;
        let stranger = ctx.join(&[Child("test-9".into())], JoinMode::All, None);
        Ok((
            a.id() == b.id(),
            c.to_string(),
            stranger.unwrap_err().to_string(),
        ))
    }
}

#[test]
fn a_key_given_again_gives_back_the_same_child() {
    let run = host().run::<SameKey>();
    assert_eq!(
        run.json::<(bool, String, String)>(),
        (
            true,
            "test-1.2".into(),
            "invalid: join: test-9 is not a child of test-1".into()
        )
    );
    assert_eq!(run.children().len(), 2);
}

struct Reports;

impl Agent for Reports {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.progress(0, 2, "starting");
        let child = ctx.delegate(Delegation::to("reports-too"))?;
        ctx.join(&[child], JoinMode::All, None)?;
        ctx.progress(2, 2, "done");
        Ok(())
    }
}

#[test]
fn progress_is_recorded_in_order() {
    let mut host = TestHost::new().agent_fn("reports-too", |ctx: &Context| {
        ctx.progress(1, 1, "child");
        Ok(())
    });
    let run = host.run::<Reports>();
    let want = [(0, 2, "starting".to_string()), (2, 2, "done".to_string())];
    assert_eq!(run.progress(), want, "the child's own report is its own");
}
