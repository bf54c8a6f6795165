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
