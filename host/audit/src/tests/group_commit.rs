//! Group commit: many appenders share few writes and syncs.

use std::thread;

use super::*;
use crate::{read_records, verify};

#[test]
fn concurrent_appends_share_batches() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 200;
    let dir = tempdir();
    let log = open(dir.path());
    thread::scope(|scope| {
        for t in 0..THREADS {
            let log = log.clone();
            scope.spawn(move || {
                // Bursts of appends, each burst waited for as a host call would.
                for burst in 0..PER_THREAD / 10 {
                    let tickets: Vec<_> = (0..10)
                        .map(|i| {
                            let n = t * PER_THREAD + burst * 10 + i;
                            log.append(entry(n)).expect("append")
                        })
                        .collect();
                    for ticket in tickets {
                        log.wait_durable(ticket).expect("durable");
                    }
                }
            });
        }
    });
    let stats = log.stats();
    let total = THREADS * PER_THREAD;
    assert_eq!((stats.appended, stats.durable), (total, total));
    assert!(
        stats.batches < total / 2,
        "{} batches for {total} records: no group commit",
        stats.batches
    );
    drop(log);

    let records = read_records(dir.path()).expect("read");
    assert_eq!(records.len() as u64, total);
    let mut entries: Vec<_> = records.into_iter().map(|r| r.entry).collect();
    let mut expected: Vec<_> = (0..total).map(entry).collect();
    let key = |e: &crate::Entry| format!("{e:?}");
    entries.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(entries, expected);
    assert_eq!(verify(dir.path()).expect("verify").records, total);
}

#[test]
fn sync_covers_everything_appended() {
    let dir = tempdir();
    let log = open(dir.path());
    for i in 0..100 {
        log.append(entry(i)).expect("append");
    }
    log.sync().expect("sync");
    let stats = log.stats();
    assert_eq!(stats.durable, 100);
    assert!(stats.batches <= 100);
    assert!(stats.bytes_written > 100 * 8);
}

#[test]
fn the_writer_never_leaves_more_than_max_unsigned_durable_and_unsigned() {
    const MAX: u64 = 50;
    let dir = tempdir();
    let log = AuditLog::open(
        dir.path(),
        crate::AuditOptions {
            max_unsigned: MAX,
            ..signed_options(crate::DEFAULT_SEGMENT_BYTES)
        },
    )
    .expect("open");
    // One burst of ten times the bound: taken in batches of at most MAX.
    let burst = (0..10 * MAX).map(|i| (i, entry(i))).collect();
    let last = log
        .append_batch(burst)
        .expect("append")
        .expect("batch")
        .last;
    log.wait_durable(last).expect("durable");
    let mut n = 10 * MAX;
    for _ in 0..40 {
        for _ in 0..7 {
            log.append(entry(n)).expect("append");
            n += 1;
        }
        let ticket = log.append(entry(n)).expect("append");
        n += 1;
        log.wait_durable(ticket).expect("durable");
        let stats = log.stats();
        assert!(
            stats.durable - stats.checkpointed <= MAX,
            "{} durable, {} checkpointed",
            stats.durable,
            stats.checkpointed
        );
    }
    let stats = log.stats();
    assert!(stats.batches >= 10, "{} batches", stats.batches);
    assert!(stats.checkpoints >= 10, "{} checkpoints", stats.checkpoints);
    drop(log);
    let options = VerifyOptions {
        allow_unsigned_tail: MAX,
        ..trusting_key_1()
    };
    assert_eq!(
        crate::verify_with(dir.path(), &options)
            .expect("verify")
            .records,
        n
    );
}
