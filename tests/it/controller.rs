//! The dispatcher's state machine end to end: every move is an audit
//! record; retries with backoff take fresh locks and tokens and tell the
//! agent their attempt; priorities decide among the ready; a manifest's
//! window bounds its run; a runway waiting for locks names who it waits
//! behind; bad schedules are refused naming the key.

use std::collections::HashSet;

use runway_audit::{Event, Record, State};
use runway_tests::{Fixture, output};

/// The MOVED records of `runway`: (state, reason).
fn moves(records: &[Record], runway: &str) -> Vec<(State, String)> {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .filter_map(|r| match &r.entry.event {
            Event::Moved { to, reason, .. } => Some((*to, reason.clone())),
            _ => None,
        })
        .collect()
}

/// (attempt, time) of each STARTED record of `runway`.
fn starts(records: &[Record], runway: &str) -> Vec<(u32, u64)> {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .filter_map(|r| match r.entry.event {
            Event::Started { attempt } => Some((attempt, r.time_ns)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_failing_runway_retries_with_backoff_and_fresh_tokens_then_fails_for_good() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "stubborn"
        agent = "probe"
        action = "fail"
        datasets = { test_retry = "exclusive" }
        retry = { attempts = 3, backoff = "exponential", initial = "60ms", max = "1s", jitter = false }
        [[runway]]
        id = "after-it"
        agent = "probe"
        action = "ok"
        after = ["stubborn"]
        "#,
    );
    let r = report.get("stubborn").unwrap();
    assert_eq!((r.state, r.attempts), (State::Failed, 3));
    assert!(r.reason.as_deref().unwrap().contains("failing on purpose"));
    // Its dependent failed only once the last attempt had failed.
    let next = report.get("after-it").unwrap();
    assert_eq!(next.state, State::Failed);
    assert_eq!(next.reason.as_deref(), Some("dependency stubborn failed"));

    let records = f.records();
    let started = starts(&records, "stubborn");
    assert_eq!(
        started.iter().map(|s| s.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "each attempt told its number"
    );
    // Backoff: 60 ms before the second attempt, 120 ms before the third.
    let gaps: Vec<u64> = started.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= 60_000_000, "{gaps:?}");
    assert!(gaps[1] >= 120_000_000, "{gaps:?}");
    let retries: Vec<String> = moves(&records, "stubborn")
        .into_iter()
        .filter(|(to, _)| *to == State::Queued)
        .map(|(_, why)| why)
        .collect();
    assert_eq!(
        retries,
        [
            "retry: attempt 2 of 3 in 0.060 s",
            "retry: attempt 3 of 3 in 0.120 s"
        ]
    );
    // Each attempt took its own lock with a fresh token.
    let tokens: HashSet<u64> = records
        .iter()
        .filter(|r| r.entry.runway == "stubborn")
        .filter_map(|r| match r.entry.event {
            Event::LockGranted { token, .. } => Some(token),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 3, "{tokens:?}");
}

#[test]
fn a_flaky_runway_succeeds_on_its_second_attempt_and_its_dependent_runs() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "flaky"
        agent = "probe"
        action = "flaky"
        retry = { attempts = 5, initial = "10ms", jitter = true }
        [[runway]]
        id = "after-it"
        agent = "probe"
        action = "ok"
        after = ["flaky"]
        "#,
    );
    let r = report.get("flaky").unwrap();
    assert_eq!(
        (r.state, r.attempts, r.reason.as_deref()),
        (State::Succeeded, 2, None)
    );
    assert_eq!(output(&report, "flaky")["attempt"], 2);
    assert_eq!(report.get("after-it").unwrap().state, State::Succeeded);
    // The dependent waited for it, and said so.
    let waits = moves(&f.records(), "after-it");
    assert_eq!(
        waits[0],
        (State::WaitingDeps, "waiting for flaky".to_string())
    );
}

#[test]
fn with_one_worker_the_higher_priority_of_two_ready_runways_goes_first() {
    let f = Fixture::with_workers(1);
    let report = f.run(
        r#"
        [[runway]]
        id = "first"
        agent = "probe"
        action = "ok"
        [[runway]]
        id = "low"
        agent = "probe"
        action = "ok"
        [[runway]]
        id = "high"
        agent = "probe"
        action = "ok"
        priority = 10
        "#,
    );
    assert_eq!(report.failed(), 0);
    let records = f.records();
    let order: Vec<&str> = records
        .iter()
        .filter(|r| matches!(r.entry.event, Event::Started { .. }))
        .map(|r| r.entry.runway.as_str())
        .collect();
    assert_eq!(order, ["first", "high", "low"]);
    let low = moves(&records, "low");
    assert_eq!(
        low[0],
        (
            State::WaitingLocks,
            "waiting for one of 1 workers".to_string()
        )
    );
}

#[test]
fn a_runway_waiting_for_a_lock_names_the_holder_it_waits_behind() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "writer"
        agent = "probe"
        action = "ok"
        datasets = { test_wait = "exclusive" }
        [[runway]]
        id = "reader"
        agent = "probe"
        action = "ok"
        datasets = { test_wait = "shared" }
        "#,
    );
    assert_eq!(report.failed(), 0);
    let records = f.records();
    assert_eq!(
        moves(&records, "reader")[0],
        (
            State::WaitingLocks,
            "waiting behind writer (test_wait X)".to_string()
        )
    );
    assert_eq!(
        moves(&records, "writer")[0],
        (State::WaitingLocks, "its locks are free".to_string())
    );
}

#[test]
fn a_manifest_window_shorter_than_the_grant_times_the_run_out() {
    // hostile's grant allows 60 s; the manifest asks for 1 s.
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 60\nfuel = 1_000_000_000_000_000\n",
    )]);
    let report = f.run(
        r#"
        [[runway]]
        id = "spinner"
        agent = "hostile"
        action = "spin"
        window = "1s"
        "#,
    );
    let r = report.get("spinner").unwrap();
    assert_eq!(r.state, State::TimedOut, "{:?}", r.reason);
    assert_eq!(
        r.reason.as_deref(),
        Some("timed out: wall-clock window of 1 s exceeded")
    );
    let timed_out = moves(&f.records(), "spinner")
        .into_iter()
        .any(|(to, _)| to == State::TimedOut);
    assert!(timed_out, "the move to TIMED_OUT is audited");
}

#[test]
fn bad_schedules_are_refused_naming_the_key() {
    let plan = |extra: &str| {
        runway_host::Plan::parse(
            &format!("[[runway]]\nid = \"r\"\nagent = \"probe\"\n{extra}\n"),
            &*runway_tests::plugins().1,
        )
        .map(drop)
        .map_err(|e| e.to_string())
    };
    for (extra, needle) in [
        ("window = \"soon\"", "window \"soon\" is not a duration"),
        ("window = \"10ms\"", "window must be between 1s and 24h"),
        ("window = \"25h\"", "window must be between 1s and 24h"),
        (
            "retry = { attempts = 0 }",
            "retry.attempts must be between 1 and 100",
        ),
        (
            "retry = { attempts = 2, initial = \"1m\", max = \"1s\" }",
            "retry.initial must be at most retry.max",
        ),
        (
            "retry = { attempts = 2, backoff = \"linear\" }",
            "unknown variant `linear`",
        ),
        (
            "retry = { attempts = 2, tries = 3 }",
            "unknown field `tries`",
        ),
        ("priority = \"high\"", "invalid type"),
    ] {
        let err = plan(extra).expect_err(extra);
        assert!(err.contains(needle), "{extra}: {err}");
    }
    assert!(plan("window = \"1m 30s\"\nretry = { attempts = 3, max = \"PT2M\" }").is_ok());
}
