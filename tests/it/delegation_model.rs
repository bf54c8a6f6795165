//! A model test of delegation (proptest over seeds): random forests of
//! `orchestrator` trees — each runway with random shared or exclusive locks
//! on four datasets, children that hand some of them down and take others,
//! nested orchestrators, `probe` children that succeed, fail, sleep past
//! their window or report their locks, every join mode, timeouts, parents
//! that fail after their join — run on the real controller, some cut short
//! by a crash (the trail halted as a `kill -9` leaves it, the host
//! reopened, the trees settled). Then the trail is replayed and must show:
//! no two holders of a dataset overlapped where one held it exclusively;
//! every lock was granted to a runway in an attempt and released by it
//! (nothing held at the end); no child ever waited in line for a lock; and
//! whoever waited in line for locks held none — with parents waiting only
//! on their own children, no cycle of waits can form.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use runway_audit::{Event, LockMode, Record, State};
use runway_host::DispatchOptions;
use runway_host::controller::{self, Plan};
use runway_tests::{Fixture, filing};
use serde_json::{Value, json};

const DATASETS: [&str; 4] = ["test_m0", "test_m1", "test_m2", "test_m3"];

/// A random lock set over [`DATASETS`].
fn locks(rng: &mut fastrand::Rng) -> Vec<(String, &'static str)> {
    let mut set = Vec::new();
    for d in DATASETS {
        if rng.u8(0..3) == 0 {
            let mode = if rng.bool() { "exclusive" } else { "shared" };
            set.push((d.to_string(), mode));
        }
    }
    set
}

/// A child of a runway holding `held`: some of those handed down (same
/// mode), maybe others; an orchestrator with children of its own while
/// `depth` allows, else a probe.
fn child(rng: &mut fastrand::Rng, held: &[(String, &'static str)], depth: u32) -> Value {
    let mut asked: Vec<(String, &'static str)> =
        held.iter().filter(|_| rng.bool()).cloned().collect();
    for (d, m) in locks(rng) {
        if !asked.iter().any(|(a, _)| *a == d) && !held.iter().any(|(h, _)| *h == d) {
            asked.push((d, m));
        }
    }
    let locks: Vec<Value> = asked.iter().map(|(d, m)| json!([d, m])).collect();
    if depth < 2 && rng.u8(0..3) == 0 {
        return json!({
            "agent": "orchestrator",
            "locks": locks,
            "input": orchestrate(rng, &asked, depth + 1),
        });
    }
    let action = ["ok", "fail", "locks", "slow-first"][rng.usize(0..4)];
    json!({ "agent": "probe", "action": action, "locks": locks, "window_secs": 1 })
}

/// An orchestrator's input: a few children, a join.
fn orchestrate(rng: &mut fastrand::Rng, held: &[(String, &'static str)], depth: u32) -> Value {
    let children: Vec<Value> = (0..rng.usize(1..4))
        .map(|_| child(rng, held, depth))
        .collect();
    let join = match rng.u8(0..5) {
        0 => json!("all"),
        1 => json!("any"),
        2 => json!("first-success"),
        3 => json!({ "quorum": 1 }),
        _ => json!("none"),
    };
    json!({
        "children": children,
        "join": join,
        "timeout_ms": if rng.bool() { 300 } else { 2000 },
        "fail_after_join": rng.u8(0..4) == 0,
    })
}

/// A forest: a few roots, each with its own locks and tree.
fn forest(rng: &mut fastrand::Rng) -> Value {
    let roots: Vec<Value> = (0..rng.usize(1..4))
        .map(|n| {
            let held = locks(rng);
            let datasets: serde_json::Map<String, Value> =
                held.iter().map(|(d, m)| (d.clone(), json!(m))).collect();
            json!({
                "id": format!("root{n}"),
                "agent": "orchestrator",
                "datasets": datasets,
                "retry": { "attempts": 2, "initial": "10ms" },
                "input": orchestrate(rng, &held, 0),
            })
        })
        .collect();
    json!({ "runway": roots })
}

/// Files `plan` on a host with `workers` workers; with `crash_after`, the
/// host dies that long after (the trail halted as a `kill -9` leaves it)
/// and a new one settles what the trail holds. Returns the fixture (its
/// trail ended, everything in it settled) and the trail's length at the
/// crash, if there was one.
fn fly(plan: Plan, crash_after: Option<Duration>) -> (Fixture, Option<usize>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut f = Fixture::with_workers(2);
    let start = |f: &Fixture| {
        let _in = rt.enter();
        controller::start(f.host.clone(), DispatchOptions::default()).unwrap()
    };
    let (c, task) = start(&f);
    let ids: Vec<String> = rt
        .block_on(c.file(filing(plan)))
        .unwrap()
        .into_iter()
        .map(|filed| filed.id)
        .collect();
    let mut crashed_at = None;
    let (c, task) = match crash_after {
        None => (c, task),
        Some(after) => {
            std::thread::sleep(after);
            f.host.audit.sync().unwrap();
            f.host.audit.halt();
            c.stop(true);
            let _ = rt.block_on(task).unwrap();
            let started = Instant::now();
            while Arc::strong_count(&f.host) > 1 {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "a run outlived its host"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            // Counted once the old log is closed: a batch its writer had
            // taken when the crash came still lands before the crash point.
            let (reopened, left) = f.reopen_counting();
            (f, crashed_at) = (reopened, Some(left));
            start(&f)
        }
    };
    // Everything the trail holds ends: the roots, and with them their
    // trees (children of an ended attempt are cancelled).
    rt.block_on(c.wait(ids)).unwrap();
    let started = Instant::now();
    loop {
        let listed = rt.block_on(c.list()).unwrap();
        // FAILED and TIMED_OUT stay only when no retry comes.
        let ended = |s: State| s.is_final() || matches!(s, State::Failed | State::TimedOut);
        let going: Vec<_> = listed
            .iter()
            .filter(|r| !ended(r.state))
            .map(|r| (&r.id, r.state))
            .collect();
        if going.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a tree never settled: {going:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c.stop(false);
    rt.block_on(task).unwrap().unwrap();
    (f, crashed_at)
}

/// Checks the invariants of the module doc on `records`; `crashed_at` is
/// where a crash ended one host's trail (its holds end there too).
fn check(records: &[Record], crashed_at: Option<usize>) {
    // runway → in an attempt (between CLEARED and its end).
    let mut flying: HashSet<String> = HashSet::new();
    let mut children: HashSet<String> = HashSet::new();
    // dataset → (holder, mode)
    let mut holders: HashMap<String, Vec<(String, LockMode)>> = HashMap::new();
    for (n, r) in records.iter().enumerate() {
        if Some(n) == crashed_at {
            holders.clear();
            flying.clear();
        }
        let runway = &r.entry.runway;
        match &r.entry.event {
            Event::Filing { .. } => {
                let m = controller::filed_manifest(&r.entry.event).unwrap();
                if m.lineage.is_some() {
                    children.insert(runway.clone());
                }
            }
            Event::Cleared { .. } => {
                flying.insert(runway.clone());
            }
            Event::LockGranted { mode, .. } => {
                assert!(
                    flying.contains(runway),
                    "#{n}: {runway} granted a lock outside an attempt"
                );
                let dataset = r.entry.dataset.clone().unwrap();
                let held = holders.entry(dataset.clone()).or_default();
                let clash = held
                    .iter()
                    .find(|(_, m)| *m == LockMode::Exclusive || *mode == LockMode::Exclusive);
                if clash.is_some() {
                    let story: Vec<String> = records[..=n]
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| !matches!(r.entry.event, Event::Call { .. }))
                        .map(|(k, r)| format!("#{k} {}", runway_audit::record_line(r)))
                        .collect();
                    panic!(
                        "#{n}: {runway} granted {dataset} {} while {clash:?} held it:\n{}",
                        mode.name(),
                        story.join("\n")
                    );
                }
                held.push((runway.clone(), *mode));
            }
            Event::LockReleased { .. } => {
                let dataset = r.entry.dataset.clone().unwrap();
                let held = holders.entry(dataset.clone()).or_default();
                let at = held.iter().position(|(h, _)| h == runway);
                assert!(
                    at.is_some(),
                    "#{n}: {runway} released {dataset} it did not hold"
                );
                held.remove(at.unwrap());
            }
            Event::Moved { to, reason, .. } => {
                if *to == State::WaitingLocks && reason.starts_with("waiting behind") {
                    assert!(
                        !children.contains(runway),
                        "#{n}: child {runway} waited in line: {reason}"
                    );
                    let holds = holders.values().flatten().any(|(h, _)| h == runway);
                    assert!(!holds, "#{n}: {runway} waited in line holding a lock");
                }
                if to.is_final() || *to == State::Queued {
                    flying.remove(runway);
                }
            }
            _ => {}
        }
    }
    let left: Vec<_> = holders.iter().filter(|(_, h)| !h.is_empty()).collect();
    assert!(left.is_empty(), "locks held at the end: {left:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_never_overlap_holders_nor_wait_in_a_cycle(seed in any::<u64>(), crash in 0u8..4) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let f = Fixture::with_workers(2);
        let plan = Plan::parse(&forest(&mut rng).to_string(), &*f.host.plugins()).unwrap();
        drop(f);
        let crash_after = (crash == 0).then(|| Duration::from_millis(rng.u64(20..400)));
        let (f, crashed_at) = fly(plan, crash_after);
        check(&f.records(), crashed_at);
    }
}
