//! The audit trail is the controller's journal: a restart — after a clean
//! stop or `kill -9` — rebuilds the queue from it. Waiting runways wait
//! again, approvals stay given, a run the crash cut short retries per its
//! policy (or stays SUCCEEDED if its commit landed), nothing filed and
//! acknowledged is lost, nothing runs twice to success, tokens are never
//! given twice, and every dataset holds all or none of each run's writes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use runway_audit::{Event, Record, State, Trust, VerifyOptions};
use runway_host::DispatchOptions;
use runway_host::controller::{self, Command};
use runway_host::roles::{Caller, Role};
use runway_tests::{Fixture, filing};

use crate::server::{Server, folders};

#[test]
fn a_restart_rebuilds_the_queue_from_the_trail() {
    let f = Fixture::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let plan = f.plan(
        r#"
        [[runway]]
        id = "gated"
        agent = "probe"
        action = "ok"
        datasets = { test_restart = "exclusive" }
        approval = { required = true }
        [[runway]]
        id = "after-gated"
        agent = "probe"
        action = "ok"
        after = ["gated"]
        [[runway]]
        id = "tomorrow"
        agent = "probe"
        action = "ok"
        earliest_start = "in 1h"
        [[runway]]
        id = "done"
        agent = "probe"
        action = "ok"
        "#,
    );
    // First life: `done` lands, `gated` is approved while clearing is
    // paused (so it waits for locks), then the controller stops.
    let ids = rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        let filed = c.file(filing(plan)).await.unwrap();
        c.wait(vec!["done".into()]).await.unwrap();
        c.send(Command::Pause {
            by: Caller::new("dave", [Role::Admin]),
        })
        .await
        .unwrap();
        c.send(Command::Approve {
            runway: "gated".into(),
            by: Caller::new("alice", [Role::Admin]),
            note: String::new(),
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.stop(false);
        task.await.unwrap().unwrap();
        filed
    });
    assert_eq!(ids.len(), 4);
    let f = f.reopen();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        let before: HashMap<String, State> = c
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.state))
            .collect();
        assert_eq!(before["done"], State::Succeeded);
        assert_eq!(before["tomorrow"], State::WaitingTime);
        assert_eq!(before["after-gated"], State::WaitingDeps);
        // Paused before the stop, so still paused: the approval is kept
        // and nothing is cleared until clearing resumes.
        assert_eq!(before["gated"], State::WaitingLocks);
        let gated = c.show("gated").await.unwrap();
        assert_eq!(gated.approved_by.as_deref(), Some("alice"));
        c.send(Command::Resume {
            by: Caller::new("dave", [Role::Admin]),
        })
        .await
        .unwrap();
        let landed = c
            .wait(vec!["gated".into(), "after-gated".into()])
            .await
            .unwrap();
        assert!(landed.iter().all(|r| r.state == State::Succeeded));
        // A name filed before gets an id of its own; `after` may name a
        // runway of an earlier filing.
        let plan = f.plan(
            "[[runway]]\nid = \"done\"\nagent = \"probe\"\naction = \"ok\"\nafter = [\"gated\"]\n",
        );
        let again = c.file(filing(plan)).await.unwrap();
        assert_eq!(again[0].id, "done-2");
        let unknown = f.plan("[[runway]]\nid = \"x\"\nagent = \"probe\"\nafter = [\"nobody\"]\n");
        let refused = c.file(filing(unknown)).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "runway \"x\": `after` names unknown runway \"nobody\""
        );
        c.send(Command::Cancel {
            runway: "tomorrow".into(),
            by: Caller::new("erin", [Role::Admin]),
        })
        .await
        .unwrap();
        c.wait(vec!["done-2".into()]).await.unwrap();
        c.stop(false);
        task.await.unwrap().unwrap();
    });
    // Each runway succeeded at most once, and was filed once.
    let records = f.records();
    for id in ["gated", "after-gated", "done", "done-2"] {
        let count = |pred: fn(&Event) -> bool| {
            records
                .iter()
                .filter(|r| r.entry.runway == id && pred(&r.entry.event))
                .count()
        };
        assert_eq!(count(|e| matches!(e, Event::Succeeded { .. })), 1, "{id}");
        assert_eq!(count(|e| matches!(e, Event::Filing { .. })), 1, "{id}");
    }
}

/// One round's plan: a writer (retried), a gated reader after it, a flaky
/// runway that succeeds on its second attempt, and a sleeper that is still
/// running when the kill comes (not retried).
fn round(i: usize) -> String {
    format!(
        r#"
        [[runway]]
        id = "w{i}"
        agent = "import-applications"
        datasets = {{ test_k{i} = "exclusive" }}
        input = {{ count = 300, seed = {i} }}
        retry = {{ attempts = 3, backoff = "fixed", initial = "50ms" }}
        [[runway]]
        id = "g{i}"
        agent = "probe"
        action = "ok"
        datasets = {{ test_k{i} = "shared" }}
        after = ["w{i}"]
        approval = {{ required = true }}
        [[runway]]
        id = "f{i}"
        agent = "probe"
        action = "flaky"
        retry = {{ attempts = 3, backoff = "fixed", initial = "50ms" }}
        [[runway]]
        id = "s{i}"
        agent = "hostile"
        action = "sleep"
        input = {{ secs = 1 }}
        priority = 1
        "#
    )
}

#[test]
fn kill_9_of_a_serving_controller_loses_nothing_and_runs_nothing_twice() {
    const KILLS: usize = 50;
    let dir = folders();
    runway_tests::drop_plugin("hostile", &dir.path().join("plugins"));
    let mut acked: Vec<String> = Vec::new();
    let mut alice = None;
    for i in 0..KILLS {
        let server = Server::start(dir.path());
        let alice = alice.get_or_insert_with(|| server.token("alice", &["approver"]));
        // Approve whatever waits for approval, now and then.
        if i % 3 == 0 {
            let waiting = server.json(&["list", "--state", "WAITING_APPROVAL"]);
            for r in waiting["runways"].as_array().unwrap() {
                let id = r["id"].as_str().unwrap();
                let _ = server.client_as(alice, &["approve", id]);
            }
        }
        acked.extend(server.file(&round(i)));
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..300)));
        server.kill();
    }
    // A last life: approve everything, let everything land, stop cleanly.
    let server = Server::start(dir.path());
    let alice = alice.unwrap();
    let mut rounds = 0;
    loop {
        let waiting = server.json(&["list", "--state", "WAITING_APPROVAL"]);
        let waiting = waiting["runways"].as_array().unwrap().clone();
        for r in &waiting {
            let _ = server.client_as(&alice, &["approve", r["id"].as_str().unwrap()]);
        }
        let mut args = vec!["wait", "--timeout-secs", "2", "--json"];
        args.extend(acked.iter().map(String::as_str));
        let out = server.client(&args);
        if out.code != 4 {
            break;
        }
        rounds += 1;
        assert!(rounds < 60, "runways never landed: {}", out.stderr);
    }
    let states = server.states();
    let data: serde_json::Value = {
        let out = crate::cli::runway(dir.path(), &["data", "list", "--json"]);
        serde_json::from_str(&out.stdout).unwrap()
    };
    assert_eq!(server.stop(), Some(0));

    // Nothing acknowledged is lost, and everything has ended.
    let ended = [
        "SUCCEEDED",
        "FAILED",
        "TIMED_OUT",
        "CANCELLED",
        "REJECTED",
        "EXPIRED",
    ];
    for id in &acked {
        let state = states.get(id).unwrap_or_else(|| panic!("{id} was lost"));
        assert!(ended.contains(&state.as_str()), "{id} is {state}");
    }
    let records = read_verified(dir.path());
    // Nothing ran twice to success; nothing started after its success.
    let mut succeeded = HashSet::new();
    let mut tokens = HashSet::new();
    for r in &records {
        match &r.entry.event {
            Event::Succeeded { .. } => {
                assert!(
                    succeeded.insert(r.entry.runway.clone()),
                    "{} succeeded twice",
                    r.entry.runway
                );
            }
            Event::Started { .. } => {
                assert!(
                    !succeeded.contains(&r.entry.runway),
                    "{} ran after its success",
                    r.entry.runway
                );
            }
            Event::LockGranted { token, .. } => {
                assert!(tokens.insert(*token), "token {token} given twice");
            }
            _ => {}
        }
    }
    for id in &acked {
        assert_eq!(succeeded.contains(id), states[id] == "SUCCEEDED", "{id}");
    }
    // Every dataset holds all of a writer's records or none.
    for i in 0..KILLS {
        let held = data
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == format!("test_k{i}"))
            .map_or(0, |d| d["records"].as_u64().unwrap());
        let writer = &states[&format!("w{i}")];
        let expected = if writer == "SUCCEEDED" { 300 } else { 0 };
        assert_eq!(held, expected, "test_k{i} with w{i} {writer}");
    }
    // The crashes were real: runs were cut short, and retried.
    let crashed = records
        .iter()
        .filter(|r| matches!(&r.entry.event, Event::Failed { reason } if reason.contains("host crashed")))
        .count();
    assert!(crashed > 0, "no kill caught a run in flight");
}

/// Every record, after the whole trail verified with its signatures.
pub fn read_verified(dir: &std::path::Path) -> Vec<Record> {
    let keys = dir.join("runway-keys");
    let public = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pub"))
        .expect("a public key");
    let key = runway_audit::PublicKey::read(&public).unwrap();
    let options = VerifyOptions::from(Trust::single(key));
    runway_audit::verify_with(&dir.join("runway-audit"), &options).expect("the trail verifies");
    runway_audit::read_records(&dir.join("runway-audit")).unwrap()
}

#[test]
fn a_retry_waits_out_its_backoff_across_a_restart() {
    let f = Fixture::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let plan = f.plan(
        r#"
        [[runway]]
        id = "flaky"
        agent = "probe"
        action = "flaky"
        retry = { attempts = 2, backoff = "fixed", initial = "1h", max = "1h", jitter = false }
        "#,
    );
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        c.file(filing(plan)).await.unwrap();
        let started = std::time::Instant::now();
        while c.show("flaky").await.unwrap().attempts == 0
            || c.show("flaky").await.unwrap().state != State::Queued
        {
            assert!(started.elapsed() < Duration::from_secs(30), "never failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c.stop(false);
        task.await.unwrap().unwrap();
    });
    let f = f.reopen();
    rt.block_on(async {
        let (c, task) = controller::start(f.host.clone(), DispatchOptions::default()).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let flaky = c.show("flaky").await.unwrap();
        // Its hour of backoff is not over: the restart does not cut it short.
        assert_eq!((flaky.state, flaky.attempts), (State::Queued, 1));
        c.stop(false);
        task.await.unwrap().unwrap();
    });
}
