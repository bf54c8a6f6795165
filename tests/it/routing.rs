//! Routing by measured performance, with real components: two agent
//! names over the `probe` component (its `as-told` action makes one
//! slower, or fails one, by name). A routed manifest warms every
//! candidate up, then goes to the fastest; a candidate whose breaker
//! opened is left out; each pick is a ROUTED record with the figures it
//! read, and a restart gives the pick back.

use runway_audit::{Event, Record, RouteFigures, State};

use crate::breakers::{Tower, agents_over_probe};

const BREAKER: &str = "[breaker]\nfailures = 1\nwithin = \"10m\"\nopen_for = \"1h\"\n";

/// A routed runway: `agent = { any = [...] }` doing `as-told` with `input`.
fn routed(id: &str, prefer: &str, input: &str, extra: &str) -> String {
    format!(
        "[[runway]]\nid = \"{id}\"\nagent = {{ any = [\"scorer-a\", \"scorer-b\"], prefer = \"{prefer}\" }}\naction = \"as-told\"\ninput = {input}\n{extra}\n"
    )
}

/// Scorer-a is slow.
const SLOW_A: &str = "{ slow_ms = { scorer-a = 300 } }";

/// The ROUTED records of `runway`: (picked, figures).
fn picks(records: &[Record], runway: &str) -> Vec<(String, Vec<RouteFigures>)> {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .filter_map(|r| match &r.entry.event {
            Event::Routed {
                picked, figures, ..
            } => {
                assert_eq!(&r.entry.agent, picked, "the record names the pick");
                Some((picked.clone(), figures.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Runs one routed runway to its end; the agent it ran as.
fn run(t: &Tower, id: &str, input: &str) -> (State, String) {
    let ids = t.file(&routed(id, "fastest", input, ""));
    let r = t.wait(&ids).remove(0);
    (r.state, r.agent)
}

#[test]
fn routing_warms_up_then_picks_the_faster_and_leaves_an_open_breaker_out() {
    let t = Tower::new(agents_over_probe(&[
        ("scorer-a", ""),
        ("scorer-b", BREAKER),
    ]));
    // Warm-up: each candidate once, in the manifest's order.
    assert_eq!(run(&t, "w1", SLOW_A), (State::Succeeded, "scorer-a".into()));
    assert_eq!(run(&t, "w2", SLOW_A), (State::Succeeded, "scorer-b".into()));
    // Then the faster, by the median run time it measured.
    for id in ["f1", "f2", "f3"] {
        assert_eq!(run(&t, id, SLOW_A).1, "scorer-b", "{id}");
    }
    let records = t.records();
    let (picked, figures) = picks(&records, "f1").remove(0);
    assert_eq!(picked, "scorer-b");
    let (a, b) = (&figures[0], &figures[1]);
    assert_eq!((a.agent.as_str(), a.runs, b.runs), ("scorer-a", 1, 1));
    assert!(a.p50_ms.unwrap() >= 300, "{a:?}");
    assert!(b.p50_ms.unwrap() < a.p50_ms.unwrap(), "{b:?}");
    let health = t.agent("scorer-b");
    assert_eq!(
        (health.runs, health.succeeded, health.breaker.as_str()),
        (4, 4, "closed")
    );

    // scorer-b fails once: its breaker opens, and routing moves away.
    let fails_b = "{ fail = [\"scorer-b\"] }";
    assert_eq!(
        run(&t, "broken", fails_b),
        (State::Failed, "scorer-b".into())
    );
    assert_eq!(t.agent("scorer-b").breaker, "open");
    assert_eq!(
        run(&t, "after", SLOW_A),
        (State::Succeeded, "scorer-a".into())
    );
    let records = t.records();
    let (_, figures) = picks(&records, "after").remove(0);
    assert_eq!(figures[1].breaker, "open");
}

#[test]
fn every_candidate_open_waits_and_each_attempt_picks_again() {
    let both = [("scorer-a", BREAKER), ("scorer-b", BREAKER)];
    let t = Tower::new(agents_over_probe(&both));
    let fail_both = "{ fail = [\"scorer-a\", \"scorer-b\"] }";
    // Two attempts: each picks again (the second finds a's breaker open).
    let ids = t.file(&routed(
        "twice",
        "fastest",
        fail_both,
        "retry = { attempts = 2, initial = \"1ms\", max = \"1ms\", jitter = false }",
    ));
    assert_eq!(t.wait(&ids)[0].state, State::Failed);
    let records = t.records();
    let picked: Vec<String> = picks(&records, "twice").into_iter().map(|p| p.0).collect();
    assert_eq!(picked, ["scorer-a", "scorer-b"]);
    let ids = t.file(&routed("held", "least-loaded", SLOW_A, ""));
    t.until(&ids[0], State::WaitingBreaker);
    assert!(
        t.show("held")
            .note
            .contains("every candidate's circuit breaker")
    );
    t.advance(jiff::SignedDuration::from_hours(1));
    assert_eq!(t.wait(&ids)[0].state, State::Succeeded);
}

#[test]
fn a_pick_comes_back_after_a_restart() {
    let mut t = Tower::new(agents_over_probe(&[("scorer-a", ""), ("scorer-b", "")]));
    // The pick is made; the runway waits for a lock another holds.
    let hold = "[[runway]]\nid = \"holder\"\nagent = \"scorer-a\"\naction = \"as-told\"\ninput = { slow_ms = { scorer-a = 1500 } }\ndatasets = { test_routed = \"exclusive\" }\n";
    let held = t.file(hold);
    t.until(&held[0], State::Running);
    let plan = routed(
        "waiting",
        "least-loaded",
        "{}",
        "datasets = { test_routed = \"exclusive\" }",
    );
    let ids = t.file(&plan);
    t.until(&ids[0], State::WaitingLocks);
    let picked = t.show("waiting").agent;
    assert_eq!(picked, "scorer-b", "scorer-a has one in the air");
    t.restart();
    assert_eq!(t.show("waiting").agent, picked);
    let r = t.wait(&ids).remove(0);
    assert_eq!(r.state, State::Succeeded);
}
