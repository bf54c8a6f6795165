//! Locks as the audit trail shows them: exclusive holders of one dataset
//! never overlap, even across plans dispatched at once; shared holders do.

use runway_audit::{Event, LockMode, Record};
use runway_tests::Fixture;

/// Each holder's [granted, released] span over `dataset`, as positions in the trail.
fn spans(records: &[Record], dataset: &str) -> Vec<(String, LockMode, usize, usize)> {
    let mut open: Vec<(String, LockMode, usize)> = Vec::new();
    let mut spans = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.entry.dataset.as_deref() != Some(dataset) {
            continue;
        }
        match &r.entry.event {
            Event::LockGranted { mode, .. } => open.push((r.entry.runway.clone(), *mode, i)),
            Event::LockReleased { .. } => {
                let at = open
                    .iter()
                    .position(|o| o.0 == r.entry.runway)
                    .expect("released after granted");
                let (runway, mode, start) = open.remove(at);
                spans.push((runway, mode, start, i));
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "locks never released: {open:?}");
    spans
}

fn overlap(a: &(String, LockMode, usize, usize), b: &(String, LockMode, usize, usize)) -> bool {
    a.2 < b.3 && b.2 < a.3
}

fn writer_plan(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"
                [[runway]]
                id = "{prefix}{i}"
                agent = "import-applications"
                datasets = {{ test_contested = "exclusive" }}
                input = {{ count = 20, seed = {i} }}
                "#
            )
        })
        .collect()
}

#[test]
fn exclusive_holders_never_overlap_across_plans() {
    let f = Fixture::with_workers(4);
    let reports = f.run_many(&[&writer_plan("a", 3), &writer_plan("b", 3)]);
    for r in &reports {
        assert_eq!(r.failed(), 0);
    }
    let records = f.records();
    let spans = spans(&records, "test_contested");
    assert_eq!(spans.len(), 6);
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            assert!(
                !overlap(a, b),
                "{} and {} held 'test_contested' exclusively at once",
                a.0,
                b.0
            );
        }
    }
    // Every write happened inside its writer's span, under its token.
    for r in &records {
        if let Event::Call { token: Some(t), .. } = &r.entry.event {
            let granted = records.iter().any(|g| {
                g.entry.runway == r.entry.runway
                    && matches!(g.entry.event, Event::LockGranted { token, .. } if token == *t)
            });
            assert!(
                granted,
                "call under token {t} that was never granted to {}",
                r.entry.runway
            );
        }
    }
}

#[test]
fn shared_holders_overlap() {
    let f = Fixture::with_workers(4);
    let report = f.run(
        r#"
        [[runway]]
        id = "seed"
        agent = "import-applications"
        datasets = { test_library = "exclusive" }
        input = { count = 10 }
        [[runway]]
        id = "reader-1"
        agent = "probe"
        action = "ok"
        datasets = { test_library = "shared" }
        after = ["seed"]
        [[runway]]
        id = "reader-2"
        agent = "probe"
        action = "ok"
        datasets = { test_library = "shared" }
        after = ["seed"]
        [[runway]]
        id = "reader-3"
        agent = "probe"
        action = "ok"
        datasets = { test_library = "shared" }
        after = ["seed"]
        "#,
    );
    assert_eq!(report.failed(), 0);
    let records = f.records();
    let spans = spans(&records, "test_library");
    let readers: Vec<_> = spans.iter().filter(|s| s.1 == LockMode::Shared).collect();
    assert_eq!(readers.len(), 3);
    assert!(
        overlap(readers[0], readers[1]) && overlap(readers[1], readers[2]),
        "{readers:?}"
    );
    let writer = spans.iter().find(|s| s.0 == "seed").unwrap();
    assert!(readers.iter().all(|r| !overlap(r, writer)));
}

#[test]
fn tokens_only_grow_and_survive_a_restart() {
    let f = Fixture::new();
    let report = f.run(&writer_plan("w", 3));
    let mut tokens: Vec<u64> = report.runways.iter().map(|r| r.locks[0].token).collect();
    let sorted = {
        let mut t = tokens.clone();
        t.sort();
        t.dedup();
        t
    };
    assert_eq!(sorted.len(), 3, "tokens are unique: {tokens:?}");
    // One host per data root: a second store is refused, naming this process.
    let err = runway_host::DatasetStore::open(&f.data)
        .err()
        .expect("second store refused")
        .to_string();
    assert!(
        err.contains(&format!(
            "in use by another Runway host (pid {})",
            std::process::id()
        )),
        "{err}"
    );
    // After a restart the store continues above every token seen.
    let f = f.reopen();
    let again = &f.host.store;
    let next = again.next_token().unwrap();
    tokens.sort();
    assert!(next > *tokens.last().unwrap(), "{next} after {tokens:?}");
    assert_eq!(
        again.fence("test_contested").unwrap(),
        *tokens.last().unwrap(),
        "the last writer set the fence"
    );
}

/// The tower against a model, over random sequences of filings, take-offs
/// and landings: after every step no dataset has an exclusive holder beside
/// another, no more runs fly than there are workers, tokens only grow,
/// every grant is a whole lock set, and nothing is granted while an earlier
/// conflicting request still waits; at the end, landing everything clears
/// every request (no deadlock, no starvation).
mod model {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use proptest::prelude::*;
    use runway_audit::LockMode;
    use runway_host::DatasetStore;
    use runway_host::controller::LockSet;
    use runway_host::controller::{Clearance, Request, Tower};
    use tokio::sync::mpsc;

    const DATASETS: [&str; 4] = ["a", "b", "c", "d"];
    const WORKERS: usize = 2;

    #[derive(Debug, Clone)]
    enum Op {
        File(Vec<(usize, bool)>, i64),
        /// The `n`th flying run's agent returns: its worker is free.
        Fly(usize),
        /// The `n`th run holding locks lands: its locks go back.
        Land(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (prop::collection::vec((0..4usize, any::<bool>()), 1..3), -2..3i64)
                .prop_map(|(locks, p)| Op::File(locks, p)),
            2 => (0..8usize).prop_map(Op::Fly),
            2 => (0..8usize).prop_map(Op::Land),
        ]
    }

    fn conflict(a: &LockSet, b: &LockSet) -> bool {
        a.iter().any(|(d, m)| {
            b.get(d)
                .is_some_and(|n| *m == LockMode::Exclusive || *n == LockMode::Exclusive)
        })
    }

    struct Model {
        tower: Tower,
        reply: mpsc::UnboundedSender<Clearance>,
        clearances: mpsc::UnboundedReceiver<Clearance>,
        wants: Vec<LockSet>,
        waiting: Vec<usize>,
        flying: Vec<usize>,
        holding: Vec<usize>,
        last_token: u64,
        _dir: tempfile::TempDir,
    }

    impl Model {
        fn new() -> Model {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(DatasetStore::open(dir.path()).unwrap());
            let (reply, clearances) = mpsc::unbounded_channel();
            Model {
                tower: Tower::new(store, WORKERS),
                reply,
                clearances,
                wants: Vec::new(),
                waiting: Vec::new(),
                flying: Vec::new(),
                holding: Vec::new(),
                last_token: 0,
                _dir: dir,
            }
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::File(locks, priority) => {
                    let wants: LockSet = locks
                        .into_iter()
                        .map(|(d, x)| {
                            let mode = if x {
                                LockMode::Exclusive
                            } else {
                                LockMode::Shared
                            };
                            (DATASETS[d].to_string(), mode)
                        })
                        .collect();
                    let slot = self.wants.len();
                    self.wants.push(wants.clone());
                    self.waiting.push(slot);
                    let request = Request {
                        slot,
                        runway: format!("r{slot}"),
                        wants: self.tower.intern(&wants),
                        priority,
                        agent: "agent".into(),
                        agent_limit: None,
                        depth: 0,
                        delegates: false,
                    };
                    let _ = self.tower.request(request, self.reply.clone());
                }
                Op::Fly(n) if !self.flying.is_empty() => {
                    self.flying.remove(n % self.flying.len());
                    self.tower.flown();
                }
                Op::Land(n) => {
                    // Only a run whose agent returned lands.
                    let landed: Vec<usize> = self
                        .holding
                        .iter()
                        .copied()
                        .filter(|s| !self.flying.contains(s))
                        .collect();
                    if let Some(&slot) = landed.get(n % landed.len().max(1)) {
                        self.holding.retain(|&s| s != slot);
                        let wants = self.tower.intern(&self.wants[slot]);
                        self.tower.release(&wants, &format!("r{slot}"), "agent");
                    }
                }
                Op::Fly(_) => {}
            }
            self.drain();
            self.check();
        }

        /// Takes the clearances the last step produced, checking each.
        fn drain(&mut self) {
            while let Ok(c) = self.clearances.try_recv() {
                let grants = c.grants.expect("tokens");
                let slot = c.slot;
                let got: LockSet = grants.iter().map(|g| (g.dataset.clone(), g.mode)).collect();
                assert_eq!(got, self.wants[slot], "a grant is the whole lock set");
                for g in &grants {
                    assert!(g.token > self.last_token, "tokens only grow");
                    self.last_token = g.token;
                }
                let at = self.waiting.iter().position(|&s| s == slot).unwrap();
                for &earlier in &self.waiting[..at] {
                    assert!(
                        !conflict(&self.wants[earlier], &self.wants[slot]),
                        "r{slot} overtook the earlier r{earlier} on a dataset they share"
                    );
                }
                self.waiting.remove(at);
                self.flying.push(slot);
                self.holding.push(slot);
            }
        }

        fn check(&self) {
            assert!(self.flying.len() <= WORKERS, "more runs than workers");
            let mut holders: HashMap<&str, Vec<LockMode>> = HashMap::new();
            for &s in &self.holding {
                for (d, m) in &self.wants[s] {
                    holders.entry(d).or_default().push(*m);
                }
            }
            for (d, modes) in holders {
                if modes.contains(&LockMode::Exclusive) {
                    assert_eq!(modes.len(), 1, "an exclusive holder of {d} beside another");
                }
            }
        }

        /// Lands everything until every request was granted and landed.
        fn finish(&mut self) {
            for _ in 0..10_000 {
                if self.waiting.is_empty() && self.holding.is_empty() {
                    return;
                }
                while !self.flying.is_empty() {
                    self.apply(Op::Fly(0));
                }
                self.apply(Op::Land(0));
            }
            let stuck: HashSet<usize> = self.waiting.iter().copied().collect();
            panic!("requests never granted: {stuck:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn the_tower_keeps_its_invariants_and_clears_everyone(ops in prop::collection::vec(op(), 1..80)) {
            let mut model = Model::new();
            for op in ops {
                model.apply(op);
            }
            model.finish();
        }
    }
}
