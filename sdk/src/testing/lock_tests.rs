//! Delegation's refusals and locks on the in-memory host: an agent not
//! registered is denied by name, a lock handed down fences the parent off
//! until the child ends, locks are handed down, taken free or refused
//! naming the holder, a cycle of delegations stops at the depth limit, and
//! a child cancelled (by a race or by its parent) hands its lock back.

use serde::Serialize;

use super::TestHost;
use super::delegation_tests::{host, states};
use super::door::MAX_DEPTH;
use crate::{
    Agent, Child, ChildResult, ChildState, Context, Delegation, Error, JoinMode, LockMode,
};

struct AskStrangers;

impl Agent for AskStrangers {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let alone = ctx.delegate(Delegation::to("ghost")).unwrap_err();
        let among = ctx
            .parallel([Delegation::to("double"), Delegation::to("ghost")])
            .unwrap_err();
        Ok([alone.to_string(), among.to_string()])
    }
}

#[test]
fn an_agent_not_registered_is_denied_by_name() {
    let run = host().run::<AskStrangers>();
    let [alone, among] = run.json::<[String; 2]>();
    assert!(
        alone.starts_with("denied: runway test-1 may not delegate to agent ghost: "),
        "{alone}"
    );
    assert!(
        among.starts_with(
            "denied: delegation 2 of 2 (agent ghost): runway test-1 may not delegate to agent ghost"
        ),
        "{among}"
    );
    assert_eq!(
        states(run.children()),
        [("test-1.1", "double", ChildState::Waiting)],
        "the one filed before the refusal stays filed"
    );
}

/// Hands `apps` down to a child, tries it while the child holds it, joins,
/// tries again; says what it saw and the tokens it held.
struct HandDown;

impl Agent for HandDown {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let apps = ctx.dataset("apps");
        let child = ctx.delegate(Delegation::to("stamp").lock("apps", LockMode::Exclusive))?;
        let read = apps.read("k").unwrap_err();
        let write = apps.write("k", b"p").unwrap_err();
        assert!(matches!(read, Error::LockLost(_)), "{read}");
        let during = Context::from_host().locks()[0].token;
        ctx.join(&[child], JoinMode::All, None)?;
        let seen = apps.read("k")?;
        apps.write("k2", b"parent")?;
        let after = Context::from_host().locks()[0].token;
        Ok((read.to_string(), write.to_string(), during, after, seen))
    }
}

#[test]
fn a_lock_handed_down_is_the_childs_until_it_is_joined() {
    let mut host =
        TestHost::new()
            .lock("apps", LockMode::Exclusive)
            .agent_fn("stamp", |ctx: &Context| {
                ctx.dataset("apps").write("k", b"child")?;
                Ok(ctx.info().locks[0].token)
            });
    let run = host.run::<HandDown>();
    let (read, write, during, after, seen): (String, String, u64, u64, Vec<u8>) = run.json();
    let lost =
        "lock-lost: the lock of runway test-1 on apps is delegated to test-1.1 until it ends";
    assert_eq!((&*read, &*write), (lost, lost));
    assert_eq!(during, 1, "the parent's token while the child holds it");
    let child_token = run.children()[0].json::<u64>().unwrap();
    assert_eq!(child_token, 2, "the child's is fresh and higher");
    assert_eq!(after, 3, "back to the parent with a fresh token");
    assert_eq!(seen, b"child", "the parent sees the child's landed write");
    assert_eq!(host.read("apps", "k2"), Some(&b"parent"[..]));
}

/// Asks for locks the way the host refuses them, and once the way it grants
/// them; says what each attempt answered.
struct LockRules;

impl Agent for LockRules {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let to = |dataset, mode| Delegation::to("nested").lock(dataset, mode);
        let answer = |d| match ctx.delegate(d) {
            Ok(child) => child.to_string(),
            Err(e) => e.to_string(),
        };
        Ok([
            // `ref` is held shared: two children may share it...
            answer(to("ref", LockMode::Shared)),
            answer(to("ref", LockMode::Shared)),
            // ...but never have it exclusive.
            answer(to("ref", LockMode::Exclusive)),
            // `apps` is held exclusive: handed to one child, then no other.
            answer(to("apps", LockMode::Exclusive)),
            answer(to("apps", LockMode::Shared)),
            // `free` is no one's: the first child takes it, the next is refused.
            answer(to("free", LockMode::Exclusive)),
            answer(to("free", LockMode::Shared)),
            answer(
                Delegation::to("nested")
                    .lock("x", LockMode::Shared)
                    .lock("x", LockMode::Shared),
            ),
        ])
    }
}

#[test]
fn locks_are_handed_down_taken_free_or_refused_naming_the_holder() {
    let mut host = TestHost::new()
        .lock("ref", LockMode::Shared)
        .lock("apps", LockMode::Exclusive)
        .agent_fn("nested", |_: &Context| Ok(()));
    assert_eq!(
        host.run::<LockRules>().json::<[String; 8]>(),
        [
            "test-1.1",
            "test-1.2",
            "denied: runway test-1 holds ref shared: it cannot hand it down exclusive",
            "test-1.3",
            "lock-lost: apps is delegated to runway test-1.3",
            "test-1.4",
            "lock-lost: free is held by runway test-1.4",
            "invalid: dataset x is asked for twice",
        ]
    );
}

/// Delegates to `middle`, which asks for the top's `apps` for its own child
/// without holding it.
struct Grandparent;

impl Agent for Grandparent {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let middle = ctx.delegate(Delegation::to("middle"))?;
        let [result] = <[ChildResult; 1]>::try_from(ctx.join(&[middle], JoinMode::All, None)?)
            .expect("one result");
        result.json::<String>()
    }
}

#[test]
fn a_lock_an_ancestor_did_not_hand_down_is_refused_without_waiting() {
    let mut host = TestHost::new()
        .lock("apps", LockMode::Exclusive)
        .agent_fn("leaf", |_: &Context| Ok(()))
        .agent_fn("middle", |ctx: &Context| {
            let refused = ctx.delegate(Delegation::to("leaf").lock("apps", LockMode::Shared));
            Ok(refused.unwrap_err().to_string())
        });
    assert_eq!(
        host.run::<Grandparent>().json::<String>(),
        "lock-lost: apps is held by runway test-1, an ancestor that did not hand it down"
    );
}

/// Delegates to itself until refused; gives back how deep it got.
struct Recurse;

impl Agent for Recurse {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        match ctx.delegate(Delegation::to("recurse")) {
            Ok(child) => {
                let result = ctx.join(&[child], JoinMode::All, None)?;
                result[0].json::<String>()
            }
            Err(e) => Ok(format!(
                "{} deep: {e}",
                ctx.info().runway.split('.').count()
            )),
        }
    }
}

#[test]
fn a_cycle_of_delegations_stops_at_the_depth_limit() {
    let mut host = TestHost::new().agent::<Recurse>("recurse");
    let message = host.run::<Recurse>().json::<String>();
    assert!(
        message.starts_with(&format!(
            "{MAX_DEPTH} deep: limit: runway test-1{} may not delegate to agent recurse",
            ".1".repeat(MAX_DEPTH - 1)
        )),
        "{message}"
    );
}

/// Races a child handed `apps` against one that wins first; writes `apps`
/// after the join.
struct RaceWithALock;

impl Agent for RaceWithALock {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.first_success([
            Delegation::to("double").input(&1)?,
            Delegation::to("double")
                .input(&2)?
                .lock("apps", LockMode::Exclusive),
        ])?;
        ctx.dataset("apps").write("after", b"parent")
    }
}

#[test]
fn a_cancelled_child_gives_its_lock_back() {
    let mut host = host().lock("apps", LockMode::Exclusive);
    let run = host.run::<RaceWithALock>();
    assert!(run.output.is_ok(), "{:?}", run.output);
    assert_eq!(run.children()[1].state, ChildState::Cancelled);
    assert_eq!(host.read("apps", "after"), Some(&b"parent"[..]));
}

/// Files a child handed `apps` and one that ends first; cancels both and a
/// stranger, then both again; writes `apps` with no join in between.
struct CancelsItsChildren;

impl Agent for CancelsItsChildren {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let done = ctx.delegate(Delegation::to("double").input(&1)?)?;
        ctx.join(std::slice::from_ref(&done), JoinMode::All, None)?;
        let holder = ctx.delegate(Delegation::to("double").lock("apps", LockMode::Exclusive))?;
        let before = ctx.dataset("apps").write("k", b"parent").unwrap_err();
        let stranger = Child("test-1.9".into());
        let refused = ctx.cancel(&[holder.clone(), stranger]).unwrap_err();
        let twice = ctx.cancel(&[done.clone(), done.clone()]).unwrap_err();
        ctx.cancel(&[done.clone(), holder.clone()])?;
        ctx.cancel(&[done.clone(), holder.clone()])?;
        ctx.dataset("apps").write("k", b"parent")?;
        let joined = ctx.join(&[done, holder], JoinMode::All, None)?;
        let states: Vec<String> = joined.iter().map(|c| c.state.to_string()).collect();
        let why = joined[1].reason.clone();
        Ok((
            before.kind(),
            refused.to_string(),
            twice.to_string(),
            states,
            why,
        ))
    }
}

#[test]
fn a_cancelled_child_never_runs_and_hands_its_lock_back_at_once() {
    let mut host = host().lock("apps", LockMode::Exclusive);
    let run = host.run::<CancelsItsChildren>();
    type Said = (String, String, String, Vec<String>, Option<String>);
    let (before, refused, twice, states, why) = run.json::<Said>();
    assert_eq!(before, "lock-lost", "handed down until cancelled");
    assert_eq!(
        refused,
        "invalid: cancel: test-1.9 is not a child of test-1"
    );
    assert_eq!(twice, "invalid: cancel: test-1.1 is named twice");
    assert_eq!(states, ["succeeded", "cancelled"], "an ended child is left");
    assert_eq!(why.as_deref(), Some("cancelled: its parent cancelled it"));
    assert_eq!(run.children()[1].state, ChildState::Cancelled);
    assert_eq!(
        host.read("apps", "k"),
        Some(&b"parent"[..]),
        "the lock came back"
    );
}
