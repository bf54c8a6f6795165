//! The writer: round trips, reopening, closing, failures.

use std::collections::HashMap;

use super::*;
use crate::record::MANIFEST_MAX;
use crate::{AuditError, ZERO_HASH, read_records, verify};

#[test]
fn appended_entries_read_back_linked() {
    let dir = tempdir();
    let log = open(dir.path());
    let seqs: Vec<u64> = (0..20)
        .map(|i| log.append_durable(entry(i)).expect("append"))
        .collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    drop(log);

    let records = read_records(dir.path()).expect("read");
    assert_eq!(records.len(), 20);
    let mut prev = ZERO_HASH;
    let mut per_dataset: HashMap<String, crate::Hash> = HashMap::new();
    let mut time = 0;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.seq, i as u64);
        assert_eq!(record.entry, entry(i as u64));
        assert_eq!(record.prev, prev);
        let expected = record
            .entry
            .dataset
            .as_ref()
            .and_then(|d| per_dataset.get(d).copied());
        assert_eq!(record.prev_dataset, expected);
        assert!(record.time_ns >= time && record.time_ns > 0);
        time = record.time_ns;
        prev = record.leaf_hash().expect("hash");
        if let Some(d) = &record.entry.dataset {
            per_dataset.insert(d.clone(), prev);
        }
    }

    let report = verify(dir.path()).expect("verify");
    assert_eq!(report.records, 20);
    assert_eq!(report.segments, 1);
    assert_eq!(report.datasets, 3);
    assert_eq!(report.origin.as_deref(), Some(ORIGIN));
    assert_eq!(report.last_hash, crate::hex::encode(&prev));
    assert_eq!(report.torn_tail, None);
}

#[test]
fn empty_folder_verifies() {
    let dir = tempdir();
    let log = open(dir.path());
    log.sync().expect("sync");
    drop(log);
    let report = verify(dir.path()).expect("verify");
    assert_eq!(
        (report.records, report.segments, report.origin),
        (0, 0, None)
    );
}

#[test]
fn reopen_continues_both_chains() {
    let dir = tempdir();
    append_all(&open(dir.path()), 0, 12);
    let first = read_records(dir.path()).expect("read");

    let log = open(dir.path());
    assert_eq!(log.recovered(), None);
    assert_eq!(log.stats().next_seq, 12);
    append_all(&log, 12, 12);
    assert_eq!(log.stats().appended, 12);
    drop(log);

    let records = read_records(dir.path()).expect("read");
    assert_eq!(&records[..12], &first[..]);
    assert_eq!(records[12].prev, records[11].leaf_hash().expect("hash"));
    assert!(records[12].time_ns >= records[11].time_ns);
    // Each dataset's first record of session two links into session one.
    for record in &records[12..] {
        let Some(dataset) = &record.entry.dataset else {
            continue;
        };
        let last_before = records[..record.seq as usize]
            .iter()
            .rev()
            .find(|r| r.entry.dataset.as_ref() == Some(dataset))
            .map(|r| r.leaf_hash().expect("hash"));
        assert_eq!(record.prev_dataset, last_before, "record {}", record.seq);
    }
    assert_eq!(verify(dir.path()).expect("verify").records, 24);
}

#[test]
fn dropping_the_last_handle_flushes() {
    let dir = tempdir();
    let log = open(dir.path());
    let clone = log.clone();
    for i in 0..50 {
        clone.append(entry(i)).expect("append");
    }
    drop(clone);
    drop(log);
    assert_eq!(read_records(dir.path()).expect("read").len(), 50);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempdir();
    let log = open(dir.path());
    let second = AuditLog::open(dir.path(), options(crate::DEFAULT_SEGMENT_BYTES));
    assert!(matches!(second, Err(AuditError::Locked(_))), "{second:?}");
    drop(log);
    open(dir.path());
}

#[test]
fn origin_is_checked() {
    let dir = tempdir();
    append_all(&open(dir.path()), 0, 1);
    let other = AuditLog::open(dir.path(), AuditOptions::new("elsewhere"));
    assert!(
        matches!(other, Err(AuditError::OriginMismatch { .. })),
        "{other:?}"
    );
    for bad in ["", "two\nlines"] {
        let err = AuditLog::open(dir.path(), AuditOptions::new(bad));
        assert!(matches!(err, Err(AuditError::InvalidOrigin(_))), "{err:?}");
    }
}

#[test]
fn foreign_tickets_are_refused() {
    let a = tempdir();
    let b = tempdir();
    let log_a = open(a.path());
    let log_b = open(b.path());
    append_all(&log_a, 0, 3);
    let ticket = log_a.append(entry(3)).expect("append");
    assert!(matches!(
        log_b.wait_durable(ticket),
        Err(AuditError::ForeignTicket(3))
    ));
    assert_eq!(log_a.wait_durable(ticket).expect("durable"), 3);
}

#[test]
fn writer_failure_is_sticky() {
    let dir = tempdir();
    let log = open(dir.path());
    let early = log.append(entry(0)).expect("append");
    assert_eq!(log.wait_durable(early).expect("durable"), 0);

    log.fail_next_sync();
    let err = log.append_durable(entry(1)).expect_err("sync fails");
    assert!(matches!(err, AuditError::WriterFailed(_)), "{err:?}");
    assert!(err.to_string().contains("injected fsync failure"), "{err}");

    // Nothing is retried and nothing more is accepted.
    assert!(matches!(
        log.append(entry(2)),
        Err(AuditError::WriterFailed(_))
    ));
    assert!(matches!(log.sync(), Err(AuditError::WriterFailed(_))));
    // What was durable before stays so.
    assert_eq!(log.wait_durable(early).expect("still durable"), 0);
    let stats = log.stats();
    assert_eq!((stats.appended, stats.durable), (2, 1));
    drop(log);

    // The folder is still a valid log; the failed record may or may not be
    // in it (it was written, its sync failed).
    let report = verify(dir.path()).expect("verify");
    assert!((1..=2).contains(&report.records), "{report}");
    let log = open(dir.path());
    append_all(&log, report.records, 2);
}

#[test]
fn an_oversized_entry_is_refused_at_append_and_the_writer_goes_on() {
    let dir = tempdir();
    let log = open(dir.path());
    log.append_durable(entry(0)).expect("first");
    // 17 MiB of reason: past the 16 MiB frame limit once encoded.
    let huge = Entry {
        event: Event::Rejected {
            reason: "x".repeat(17 << 20),
        },
        ..entry(1)
    };
    match log.append(huge.clone()) {
        Err(AuditError::EntryTooLarge { bound, max }) => {
            assert_eq!(max, crate::frame::MAX_FRAME_LEN as usize);
            assert!(bound > 17 << 20, "{bound}");
        }
        other => panic!("expected EntryTooLarge, got {other:?}"),
    }
    // A batch holding one is refused whole: nothing of it is appended.
    assert!(matches!(
        log.append_batch(vec![(1, entry(1)), (2, huge)]),
        Err(AuditError::EntryTooLarge { .. })
    ));
    log.health().expect("the writer still runs");
    assert_eq!(log.append_durable(entry(1)).expect("next append"), 1);
    drop(log);
    let records = read_records(dir.path()).expect("read");
    assert_eq!(
        records.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(),
        [entry(0), entry(1)]
    );
}

#[test]
fn a_manifest_over_its_cap_is_refused_at_append_and_the_writer_goes_on() {
    let dir = tempdir();
    let log = open(dir.path());
    let filing = |len: usize| Entry {
        event: Event::Filing {
            schema: 2,
            manifest: "x".repeat(len),
            input: vec![],
        },
        ..entry(0)
    };
    match log.append(filing(MANIFEST_MAX + 1)) {
        Err(AuditError::FieldTooLarge { len, max }) => {
            assert_eq!((len, max), (MANIFEST_MAX + 1, MANIFEST_MAX));
        }
        other => panic!("expected FieldTooLarge, got {other:?}"),
    }
    log.append_durable(filing(MANIFEST_MAX))
        .expect("at the cap");
    drop(log);
    let records = read_records(dir.path()).expect("read");
    let entries: Vec<_> = records.into_iter().map(|r| r.entry).collect();
    assert_eq!(entries, [filing(MANIFEST_MAX)]);
    verify(dir.path()).expect("verify");
}

#[test]
fn the_size_bound_holds_over_the_real_encoding() {
    for i in 0..64 {
        let record = crate::Record {
            seq: u64::MAX,
            time_ns: u64::MAX,
            prev: ZERO_HASH,
            prev_dataset: Some(ZERO_HASH),
            entry: entry(i),
        };
        let encoded = record.encode().expect("encode").len();
        assert!(
            encoded <= record.entry.encoded_bound(),
            "entry {i}: {encoded} > {}",
            record.entry.encoded_bound()
        );
    }
}

#[test]
fn a_halted_log_keeps_what_was_durable_and_refuses_the_rest() {
    let dir = tempdir();
    let log = open(dir.path());
    for i in 0..5 {
        log.append_durable(entry(i)).expect("append");
    }
    assert_eq!(log.last_ticket().map(|t| t.seq()), Some(4));
    log.halt();
    let refused = log.append(entry(5)).expect_err("halted");
    assert!(refused.to_string().contains("halted"), "{refused}");
    assert!(log.sync().is_err(), "a halted log cannot sync");
    drop(log);
    // Reopened, as after the crash: the five durable records, then new ones.
    let log = open(dir.path());
    assert_eq!(log.append_durable(entry(5)).expect("append"), 5);
    drop(log);
    assert_eq!(read_records(dir.path()).expect("read").len(), 6);
}
