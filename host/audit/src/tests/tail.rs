//! The live end: a log opened with a tail keeps its last durable records in
//! memory, says when a reader asks for what it no longer holds, and tells
//! its watchers after each durable batch; reopened, it starts after what
//! is on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{entry, options, tempdir};
use crate::{AuditLog, AuditOptions, Follow};

fn open_tailed(dir: &std::path::Path) -> AuditLog {
    let options = AuditOptions {
        tail: 3,
        ..options(crate::DEFAULT_SEGMENT_BYTES)
    };
    AuditLog::open(dir, options).expect("open")
}

#[test]
fn the_tail_holds_the_last_durable_records_and_tells_its_watchers() {
    let dir = tempdir();
    let log = open_tailed(dir.path());
    let tail = log.tail().expect("a tail").clone();
    let told = Arc::new(AtomicU64::new(0));
    let seen = told.clone();
    tail.watch(move |next| seen.store(next, Ordering::SeqCst));
    assert!(matches!(tail.from(0, 10), Follow::Records(r) if r.is_empty()));

    for i in 0..5 {
        log.append_durable(entry(i)).unwrap();
    }
    assert_eq!(told.load(Ordering::SeqCst), 5);
    assert_eq!(tail.next_seq(), 5);
    assert!(matches!(tail.from(1, 10), Follow::Behind { oldest: 2 }));
    let Follow::Records(records) = tail.from(2, 10) else {
        panic!("the ring holds 2..5");
    };
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(records[0].entry, entry(2));
    let Follow::Records(two) = tail.from(3, 1) else {
        panic!()
    };
    assert_eq!(two.len(), 1);
    assert!(matches!(tail.from(5, 10), Follow::Records(r) if r.is_empty()));
    // Each durable batch's sync was timed.
    let syncs = log.sync_latency();
    assert!(syncs.count >= 1 && syncs.sum > std::time::Duration::ZERO);
    drop(log);

    // Reopened, it starts where the trail ends; untailed, there is none.
    let log = open_tailed(dir.path());
    let tail = log.tail().unwrap();
    assert_eq!(tail.next_seq(), 5);
    assert!(matches!(tail.from(4, 10), Follow::Behind { oldest: 5 }));
    drop(log);
    let log = super::open(dir.path());
    assert!(log.tail().is_none());
}
