//! The dispatcher's state machine end to end: every move is an audit
//! record; retries with backoff take fresh locks and tokens and tell the
//! agent their attempt; priorities decide among the ready; a manifest's
//! window bounds its run; a runway waiting for locks names who it waits
//! behind; earliest start and expiry follow a hand-moved wall clock;
//! approval holds a runway back without holding its locks; rejection and
//! cancel (of a waiting runway at once, of a running one within ticks)
//! fail dependents naming who; pause and resume are audited with who; bad
//! schedules are refused naming the key.

use std::collections::HashSet;
use std::sync::Arc;

use runway_audit::{Event, Record, State};
use runway_host::DispatchOptions;
use runway_host::controller::ManualClock;
use runway_host::controller::When;
use runway_host::controller::{self, Command, ControlError, Controller};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, eventually, filing, output};

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
        (
            "approval = { required = true, role = \"finance\" }",
            "approval.role: no role \"finance\" (one of viewer, operator, approver, auditor, admin)",
        ),
        // A role without the approve right would make a runway only an
        // admin can approve.
        (
            "approval = { required = true, role = \"viewer\" }",
            "approval.role: the role \"viewer\" may not approve (roles that may: approver, admin)",
        ),
        (
            "approval = { required = true, role = \"operator\" }",
            "approval.role: the role \"operator\" may not approve",
        ),
        (
            "approval = { required = true, role = \"auditor\" }",
            "approval.role: the role \"auditor\" may not approve",
        ),
        (
            "window = \"1500ms 1us\"",
            "window must be a whole number of milliseconds",
        ),
        (
            "retry = { attempts = 2, initial = \"10500us\" }",
            "retry.initial must be a whole number of milliseconds",
        ),
        (
            "earliest_start = \"1969-12-31T23:59:59Z\"",
            "earliest_start must be at or after 1970-01-01T00:00:00Z and at or before 2500-01-01T00:00:00Z",
        ),
        (
            "expires = \"2500-01-01T00:00:00.000000001Z\"",
            "expires must be at or after 1970-01-01T00:00:00Z and at or before 2500-01-01T00:00:00Z",
        ),
    ] {
        let err = plan(extra).expect_err(extra);
        assert!(err.contains(needle), "{extra}: {err}");
    }
    assert!(plan("window = \"1m 30s\"\nretry = { attempts = 3, max = \"PT2M\" }").is_ok());
    assert!(plan("approval = { required = true, role = \"admin\" }").is_ok());
    assert!(plan("expires = \"2500-01-01T00:00:00Z\"").is_ok());

    // An unknown agent: where plugins come from, and how to get the
    // built-in ones.
    let err = runway_host::Plan::parse(
        "[[runway]]\nid = \"r\"\nagent = \"import-applicatons\"\n",
        &*runway_tests::plugins().1,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("unknown agent \"import-applicatons\""),
        "{err}"
    );
    assert!(err.contains("`runway plugins export DIR`"), "{err}");
}

#[test]
fn earliest_start_waits_for_the_wall_clock_and_expiry_fails_the_dependents() {
    let f = Fixture::new();
    let start: jiff::Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let plan = f.plan(
        r#"
        [[runway]]
        id = "later"
        agent = "probe"
        action = "ok"
        earliest_start = "in 2h"
        [[runway]]
        id = "doomed"
        agent = "probe"
        action = "ok"
        earliest_start = "2026-12-02T05:00:00Z"
        expires = "in 1h"
        [[runway]]
        id = "after-doomed"
        agent = "probe"
        action = "ok"
        after = ["doomed"]
        [[runway]]
        id = "now"
        agent = "probe"
        action = "ok"
        earliest_start = "2000-01-01T00:00:00Z"
        [[runway]]
        id = "unapproved"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        expires = "in 1h"
        "#,
    );
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let opts = DispatchOptions {
        clock: clock.clone(),
        ..DispatchOptions::default()
    };
    let flying = tokio.spawn(runway_host::run_plan(f.host.clone(), plan, opts));
    let ended = |runway: &str| {
        f.records().iter().any(|r| {
            r.entry.runway == runway
                && matches!(
                    r.entry.event,
                    Event::Succeeded { .. }
                        | Event::Failed { .. }
                        | Event::Moved {
                            to: State::Expired,
                            ..
                        }
                )
        })
    };
    eventually("the runway without a wait lands", || ended("now"));
    assert_eq!(
        moves(&f.records(), "later"),
        [(
            State::WaitingTime,
            "not before 2026-12-02T02:00:00Z".to_string()
        )]
    );
    assert!(!ended("later"), "ran before its time");
    // 01:30: "doomed" (not before 05:00) expired at 01:00; its dependent fails.
    clock.advance(jiff::SignedDuration::from_mins(90));
    eventually("doomed expires", || ended("after-doomed"));
    assert!(!ended("later"), "ran before its time");
    // 02:30: "later" may go.
    clock.advance(jiff::SignedDuration::from_hours(1));
    let report = tokio.block_on(flying).unwrap().expect("plan flies");
    let state = |id| report.get(id).unwrap().state;
    assert_eq!(state("now"), State::Succeeded);
    assert_eq!(state("later"), State::Succeeded);
    assert_eq!(state("doomed"), State::Expired);
    // Waiting for an approval that never came does not outlive `expires`.
    assert_eq!(state("unapproved"), State::Expired);
    let doomed = report.get("doomed").unwrap();
    assert_eq!(
        doomed.reason.as_deref(),
        Some("not cleared by 2026-12-02T01:00:00Z")
    );
    assert_eq!(
        report.get("after-doomed").unwrap().reason.as_deref(),
        Some("dependency doomed expired")
    );
    assert_eq!(doomed.attempts, 0, "an expired runway never ran");
}

#[test]
fn a_daily_time_means_its_next_occurrence_in_the_host_time_zone() {
    let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
    let daily = When::Daily("01:00".parse().unwrap());
    // 00:30 UTC is 02:30 at +02: 01:00 there has passed, so tomorrow's.
    let filed: jiff::Timestamp = "2026-12-02T00:30:00Z".parse().unwrap();
    assert_eq!(
        daily.resolve(filed, &tz).unwrap().to_string(),
        "2026-12-02T23:00:00Z"
    );
    // 22:30 UTC the day before is 00:30 at +02: today's 01:00 is ahead.
    let filed: jiff::Timestamp = "2026-12-01T22:30:00Z".parse().unwrap();
    assert_eq!(
        daily.resolve(filed, &tz).unwrap().to_string(),
        "2026-12-01T23:00:00Z"
    );
    let bad = runway_host::Plan::parse(
        "[[runway]]\nid = \"r\"\nagent = \"probe\"\nearliest_start = \"tomorrow-ish\"\n",
        &*runway_tests::plugins().1,
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("earliest_start \"tomorrow-ish\" is not a time"),
        "{bad}"
    );
}

#[test]
fn an_agent_limit_keeps_its_runs_apart_while_others_fly() {
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 10\nmax_running = 1\n",
    )]);
    let mut text = String::new();
    for n in 1..=3 {
        text.push_str(&format!(
            "[[runway]]\nid = \"sleep{n}\"\nagent = \"hostile\"\naction = \"sleep\"\n\
             datasets = {{ test_limit{n} = \"exclusive\" }}\ninput = {{ secs = 1 }}\n"
        ));
    }
    text.push_str("[[runway]]\nid = \"other\"\nagent = \"probe\"\naction = \"ok\"\n");
    let report = f.run(&text);
    assert_eq!(report.failed(), 0);
    let records = f.records();
    // [START, end] of each hostile run: no two overlap.
    let mut spans: Vec<(u64, u64)> = (1..=3)
        .map(|n| {
            let id = format!("sleep{n}");
            let at = |pred: fn(&Event) -> bool| {
                records
                    .iter()
                    .find(|r| r.entry.runway == id && pred(&r.entry.event))
                    .map(|r| r.time_ns)
                    .unwrap()
            };
            (
                at(|e| matches!(e, Event::Started { .. })),
                at(|e| matches!(e, Event::Succeeded { .. })),
            )
        })
        .collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
        "runs of one agent overlapped past its limit: {spans:?}"
    );
    let held: Vec<String> = ["sleep2", "sleep3"]
        .iter()
        .flat_map(|id| moves(&records, id))
        .map(|(_, why)| why)
        .collect();
    assert!(
        held.iter()
            .any(|why| why == "waiting: agent hostile has 1 of 1 runs in the air"),
        "{held:?}"
    );
    // The other agent was not held back by hostile's limit.
    let other_start = records
        .iter()
        .find(|r| r.entry.runway == "other" && matches!(r.entry.event, Event::Started { .. }))
        .unwrap()
        .time_ns;
    assert!(other_start < spans[0].1, "probe waited for hostile");
}

/// Files `text` with a controller on `f`'s host; the task ends when its
/// runways have and the controller has stopped.
fn flying(
    f: &Fixture,
    text: &str,
) -> (
    tokio::runtime::Runtime,
    Controller,
    tokio::task::JoinHandle<
        Result<runway_host::PlanReport, runway_host::controller::DispatchError>,
    >,
) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let plan = f.plan(text);
    let (controller, ended) = {
        let _in = tokio.enter();
        controller::start(f.host.clone(), DispatchOptions::default()).unwrap()
    };
    let c = controller.clone();
    let task = tokio.spawn(async move {
        let report = controller::file_and_wait(&c, filing(plan)).await;
        c.stop(false);
        ended.await.unwrap()?;
        report
    });
    (tokio, controller, task)
}

/// The first record of `runway` for which `pred` holds, once it is there.
fn awaited(f: &Fixture, what: &str, runway: &str, pred: fn(&Event) -> bool) -> Record {
    let mut found = None;
    eventually(what, || {
        found = f
            .records()
            .into_iter()
            .find(|r| r.entry.runway == runway && pred(&r.entry.event));
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn a_runway_awaiting_approval_holds_no_lock_and_lands_once_approved() {
    let f = Fixture::new();
    let (tokio, controls, task) = flying(
        &f,
        r#"
        [[runway]]
        id = "gated"
        agent = "probe"
        action = "ok"
        datasets = { test_gate = "exclusive" }
        approval = { required = true, role = "approver" }
        [[runway]]
        id = "other"
        agent = "probe"
        action = "ok"
        datasets = { test_gate = "exclusive" }
        "#,
    );
    // The gated runway blocks nobody: the other one, filed after it on the
    // same dataset, lands while it waits.
    awaited(&f, "other lands", "other", |e| {
        matches!(e, Event::Succeeded { .. })
    });
    assert_eq!(
        moves(&f.records(), "gated"),
        [(
            State::WaitingApproval,
            "waiting for approval (role approver)".to_string()
        )]
    );
    // Approving what does not wait for approval is refused, naming why.
    let early = tokio.block_on(controls.send(Command::Approve {
        runway: "other".into(),
        by: Caller::new("alice", [Role::Admin]),
        note: String::new(),
    }));
    assert!(
        matches!(early, Err(ControlError::Ended { .. })),
        "{early:?}"
    );
    tokio
        .block_on(controls.send(Command::Approve {
            runway: "gated".into(),
            by: Caller::new("alice", [Role::Admin]),
            note: "checked the batch".into(),
        }))
        .unwrap();
    let report = tokio.block_on(task).unwrap().unwrap();
    assert_eq!(report.failed(), 0);
    let approved = f
        .records()
        .into_iter()
        .find_map(|r| match r.entry.event {
            Event::Moved {
                to: State::WaitingLocks,
                reason,
                by,
            } if r.entry.runway == "gated" => Some((reason, by)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        approved,
        (
            "approved (checked the batch); its locks are free".to_string(),
            Some("alice".to_string())
        )
    );
}

#[test]
fn a_rejection_fails_the_dependents_naming_the_rejecter() {
    let f = Fixture::new();
    let (tokio, controls, task) = flying(
        &f,
        r#"
        [[runway]]
        id = "gated"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        [[runway]]
        id = "next"
        agent = "probe"
        action = "ok"
        after = ["gated"]
        "#,
    );
    awaited(&f, "gated waits", "gated", |e| {
        matches!(
            e,
            Event::Moved {
                to: State::WaitingApproval,
                ..
            }
        )
    });
    tokio
        .block_on(controls.send(Command::Reject {
            runway: "gated".into(),
            by: Caller::new("bob", [Role::Admin]),
            reason: "not today".into(),
        }))
        .unwrap();
    let report = tokio.block_on(task).unwrap().unwrap();
    let gated = report.get("gated").unwrap();
    assert_eq!((gated.state, gated.attempts), (State::Rejected, 0));
    assert_eq!(
        report.get("next").unwrap().reason.as_deref(),
        Some("dependency gated was rejected by bob")
    );
    let rejected = awaited(&f, "the rejection", "gated", |e| {
        matches!(
            e,
            Event::Moved {
                to: State::Rejected,
                ..
            }
        )
    });
    assert!(
        matches!(rejected.entry.event, Event::Moved { ref by, .. } if by.as_deref() == Some("bob"))
    );
}

#[test]
fn cancel_stops_a_running_spin_loop_within_ticks_and_ends_a_waiting_runway_at_once() {
    let f = Fixture::with_grants(&[(
        "hostile",
        "[datasets]\n\"test_*\" = \"exclusive\"\n[limits]\nwindow_secs = 60\nfuel = 1_000_000_000_000_000\n",
    )]);
    let (tokio, controls, task) = flying(
        &f,
        r#"
        [[runway]]
        id = "spinner"
        agent = "hostile"
        action = "spin"
        datasets = { test_cancel = "exclusive" }
        [[runway]]
        id = "sleeper"
        agent = "hostile"
        action = "sleep"
        input = { secs = 600 }
        [[runway]]
        id = "later"
        agent = "probe"
        action = "ok"
        earliest_start = "in 1h"
        [[runway]]
        id = "after-later"
        agent = "probe"
        action = "ok"
        after = ["later"]
        "#,
    );
    awaited(&f, "the spin starts", "spinner", |e| {
        matches!(e, Event::Started { .. })
    });
    // Blocked in a WASI sleep (host code, where no epoch fires), it is
    // stopped all the same.
    awaited(&f, "the sleep starts", "sleeper", |e| {
        matches!(e, Event::Started { .. })
    });
    awaited(&f, "later waits", "later", |e| {
        matches!(
            e,
            Event::Moved {
                to: State::WaitingTime,
                ..
            }
        )
    });
    let cancelled_at = std::time::Instant::now();
    for runway in ["spinner", "sleeper", "later"] {
        tokio
            .block_on(controls.send(Command::Cancel {
                runway: runway.into(),
                by: Caller::new("carol", [Role::Admin]),
            }))
            .unwrap();
    }
    let report = tokio.block_on(task).unwrap().unwrap();
    assert!(
        cancelled_at.elapsed() < std::time::Duration::from_secs(5),
        "the spin ran on for {:?}",
        cancelled_at.elapsed()
    );
    let spinner = report.get("spinner").unwrap();
    assert_eq!(spinner.state, State::Cancelled, "{:?}", spinner.reason);
    assert_eq!(spinner.reason.as_deref(), Some("cancelled by carol"));
    let sleeper = report.get("sleeper").unwrap();
    assert_eq!(sleeper.state, State::Cancelled, "{:?}", sleeper.reason);
    assert_eq!(report.get("later").unwrap().state, State::Cancelled);
    assert_eq!(
        report.get("after-later").unwrap().reason.as_deref(),
        Some("dependency later was cancelled by carol")
    );
    // A cancel of what has ended is refused.
    let (tokio2, controls2, task2) = flying(
        &f,
        "[[runway]]\nid = \"x\"\nagent = \"probe\"\naction = \"ok\"\n",
    );
    drop(tokio2.block_on(task2));
    let late = tokio2.block_on(controls2.send(Command::Cancel {
        runway: "x".into(),
        by: Caller::new("carol", [Role::Admin]),
    }));
    assert_eq!(late, Err(ControlError::Stopped));
    drop(tokio);
}

#[test]
fn pause_stops_clearing_until_resumed_and_both_name_who() {
    let f = Fixture::new();
    f.host.pause("dave").unwrap();
    let (tokio, _controls, task) = flying(
        &f,
        "[[runway]]\nid = \"held\"\nagent = \"probe\"\naction = \"ok\"\n",
    );
    let waiting = awaited(&f, "held waits", "held", |e| {
        matches!(
            e,
            Event::Moved {
                to: State::WaitingLocks,
                ..
            }
        )
    });
    assert!(
        matches!(&waiting.entry.event, Event::Moved { reason, .. } if reason == "waiting: clearing is paused")
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!task.is_finished(), "cleared while paused");
    f.host.resume("dave").unwrap();
    let report = tokio.block_on(task).unwrap().unwrap();
    assert_eq!(report.failed(), 0);
    let tower: Vec<Event> = f
        .records()
        .into_iter()
        .filter(|r| r.entry.runway.is_empty())
        .map(|r| r.entry.event)
        // (On a shared database the trail opens with the LEADING record.)
        .filter(|e| {
            !matches!(
                e,
                Event::PlanFiled { .. } | Event::PluginLoaded | Event::Leading { .. }
            )
        })
        .collect();
    assert_eq!(
        tower,
        [
            Event::Paused { by: "dave".into() },
            Event::Resumed { by: "dave".into() }
        ]
    );
}

#[test]
fn the_filed_record_keeps_the_whole_manifest() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "full"
        agent = "probe"
        action = "ok"
        datasets = { test_filed = "shared" }
        priority = -3
        window = "90s"
        earliest_start = "2000-01-01T00:00:00Z"
        retry = { attempts = 2, backoff = "fixed", initial = "5ms", max = "1s", jitter = false }
        input = { n = 1 }
        "#,
    );
    assert_eq!(report.failed(), 0);
    let (schema, manifest, input) = f
        .records()
        .into_iter()
        .find_map(|r| match r.entry.event {
            Event::Filing {
                schema,
                manifest,
                input,
            } if r.entry.runway == "full" => Some((schema, manifest, input)),
            _ => None,
        })
        .expect("a FILING record");
    assert_eq!(schema, 2);
    // The manifest as JSON, every key of it (times resolved), the input
    // beside it as the agent gets it.
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({
            "action": "ok",
            "datasets": { "test_filed": "shared" },
            "after": [],
            "priority": -3,
            "window": 90_000,
            "retry": { "attempts": 2, "backoff": "fixed", "initial": 5, "max": 1000, "jitter": false },
            "approval": null,
            "earliest_start_ns": 946_684_800_000_000_000u64,
        })
    );
    assert_eq!(input, br#"{"n":1}"#);
}
