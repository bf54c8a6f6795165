//! The signed log: checkpoints made only over durable records, `sync`
//! waiting for one, recovery of the checkpoint files, key rotation.

use std::time::Duration;

use super::*;
use crate::checkpoint::{
    CHECKPOINTS_FILE, LATEST_FILE, SignedCheckpoint, read_checkpoint_file, read_latest,
};
use crate::merkle::root_of;
use crate::trust::TrustedKey;
use crate::{AuditError, read_records, verify, verify_with};

/// Sizes of the checkpoints in the `checkpoints` file.
fn checkpoint_sizes(dir: &Path) -> Vec<u64> {
    read_checkpoint_file(dir)
        .expect("read")
        .entries
        .into_iter()
        .map(|e| e.parsed.expect("parsed").checkpoint.size)
        .collect()
}

fn latest(dir: &Path) -> SignedCheckpoint {
    let bytes = read_latest(dir).expect("read").expect("latest");
    SignedCheckpoint::parse_bytes(&bytes).expect("parse")
}

#[test]
fn sync_returns_once_a_checkpoint_covers_everything() {
    let dir = tempdir();
    let log = open_signed(dir.path());
    for round in 1..=3u64 {
        for i in 0..10 {
            log.append(entry(round * 10 + i)).expect("append");
        }
        log.sync().expect("sync");
        let stats = log.stats();
        assert_eq!(stats.checkpointed, round * 10);
        assert_eq!(latest(dir.path()).checkpoint.size, round * 10);
    }
    drop(log);
    assert_eq!(checkpoint_sizes(dir.path()), [10, 20, 30]);

    let leaves: Vec<_> = read_records(dir.path())
        .expect("read")
        .iter()
        .map(|r| r.leaf_hash().expect("hash"))
        .collect();
    let head = latest(dir.path()).checkpoint;
    assert_eq!(
        (head.origin.as_str(), head.root),
        (ORIGIN, root_of(&leaves))
    );

    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!(
        (
            report.checkpoints,
            report.signed_size,
            report.unsigned_records
        ),
        (3, 30, 0)
    );
    assert_eq!(report.signers, [key(1).public().label()]);
    assert!(report.signatures_checked);
}

#[test]
fn closing_signs_what_was_drained() {
    let dir = tempdir();
    let log = open_signed(dir.path());
    for i in 0..25 {
        log.append(entry(i)).expect("append");
    }
    drop(log);
    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!((report.records, report.signed_size), (25, 25));
}

#[test]
fn checkpoints_are_throttled_but_never_skip_a_sync() {
    let dir = tempdir();
    let log = open_signed(dir.path());
    // One at a time, each durable: many batches, but within the hour-long
    // interval no checkpoint on the writer's own initiative.
    for i in 0..20 {
        log.append_durable(entry(i)).expect("append");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(log.stats().batches >= 10);
    assert_eq!(log.stats().checkpoints, 0, "{:?}", log.stats());
    log.sync().expect("sync");
    assert_eq!(log.stats().checkpointed, 20);
    assert_eq!(log.stats().checkpoints, 1);
}

#[test]
fn frequent_checkpoints_are_at_most_one_per_batch() {
    let dir = tempdir();
    let options = AuditOptions {
        checkpoint_interval: Duration::ZERO,
        ..signed_options(crate::DEFAULT_SEGMENT_BYTES)
    };
    let log = AuditLog::open(dir.path(), options).expect("open");
    append_all(&log, 0, 200);
    log.sync().expect("sync");
    let stats = log.stats();
    assert!(
        stats.checkpoints >= 1 && stats.checkpoints <= stats.batches,
        "{stats:?}"
    );
    drop(log);
    let sizes = checkpoint_sizes(dir.path());
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    verify_with(dir.path(), &trusting_key_1()).expect("verify");
}

#[test]
fn nothing_is_signed_past_a_failed_sync() {
    let dir = tempdir();
    let log = open_signed(dir.path());
    append_all(&log, 0, 5);
    log.sync().expect("sync");
    log.fail_next_sync();
    assert!(log.append_durable(entry(5)).is_err());
    assert!(matches!(log.sync(), Err(AuditError::WriterFailed(_))));
    drop(log);
    // Record 5 was written but its sync failed: no checkpoint covers it.
    assert_eq!(checkpoint_sizes(dir.path()), [5]);
    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!(report.signed_size, 5);
}

#[test]
fn an_unsigned_tail_is_signed_when_a_key_opens_the_log() {
    let dir = tempdir();
    append_all(&open(dir.path()), 0, 7);
    let report = verify(dir.path()).expect("verify");
    assert_eq!((report.checkpoints, report.unsigned_records), (0, 7));
    // With a key, a log nothing signs does not verify.
    let err = verify_with(dir.path(), &trusting_key_1()).expect_err("unsigned");
    assert!(
        matches!(
            err.kind,
            crate::VerifyErrorKind::NoCheckpoint { records: 7 }
        ),
        "{err}"
    );

    let log = open_signed(dir.path());
    log.sync().expect("sync");
    assert_eq!(log.stats().checkpointed, 7);
    drop(log);
    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!((report.signed_size, report.unsigned_records), (7, 0));
}

#[test]
fn a_torn_checkpoint_entry_is_trimmed_and_the_latest_restored() {
    let dir = signed_log_with(2, 4);
    let path = dir.path().join(CHECKPOINTS_FILE);
    let whole = fs::read(&path).expect("read");
    // A third entry cut short, and the latest file lost.
    let mut torn = whole.clone();
    torn.extend_from_slice(b"runway.test/audit\n12\n");
    fs::write(&path, &torn).expect("write");
    fs::remove_file(dir.path().join(LATEST_FILE)).expect("remove");

    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!(report.torn_checkpoint, Some((whole.len() as u64, 21)));
    let log = open_signed(dir.path());
    assert_eq!(log.recovered_checkpoint(), Some((whole.len() as u64, 21)));
    assert_eq!(fs::read(&path).expect("read"), whole);
    assert_eq!(latest(dir.path()).checkpoint.size, 8);
    append_all(&log, 8, 2);
    log.sync().expect("sync");
    drop(log);
    assert_eq!(checkpoint_sizes(dir.path()), [4, 8, 10]);
    verify_with(dir.path(), &trusting_key_1()).expect("verify");
}

#[test]
fn a_latest_checkpoint_behind_the_file_is_rewritten() {
    let dir = signed_log_with(2, 3);
    let first = read_checkpoint_file(dir.path()).expect("read").entries[0]
        .parsed
        .clone()
        .expect("parsed");
    fs::write(dir.path().join(LATEST_FILE), first.to_string()).expect("write");
    // A crash between appending a checkpoint and replacing the latest.
    verify_with(dir.path(), &trusting_key_1()).expect("behind is not damage");
    drop(open_signed(dir.path()));
    assert_eq!(latest(dir.path()).checkpoint.size, 6);
}

#[test]
fn keys_rotate_with_an_overlap() {
    let dir = tempdir();
    let with = |keys: &[u8]| AuditOptions {
        signing_keys: keys.iter().map(|&n| key(n)).collect(),
        ..signed_options(crate::DEFAULT_SEGMENT_BYTES)
    };
    for (round, keys) in [&[1u8][..], &[1, 2], &[2]].iter().enumerate() {
        let log = AuditLog::open(dir.path(), with(keys)).expect("open");
        append_all(&log, round as u64 * 5, 5);
        log.sync().expect("sync");
    }
    let trust = |ranges: [(u64, Option<u64>); 2]| VerifyOptions {
        trust: Some(Trust {
            keys: [1u8, 2]
                .iter()
                .zip(ranges)
                .map(|(&n, (from_size, until_size))| TrustedKey {
                    key: key(n).public(),
                    from_size,
                    until_size,
                })
                .collect(),
        }),
        ..VerifyOptions::default()
    };
    let report = verify_with(dir.path(), &trust([(0, Some(10)), (10, None)])).expect("verify");
    assert_eq!(report.signers.len(), 2);
    assert_eq!(report.signed_size, 15);

    // The old key's range ends before the overlap: size 10 is still fine
    // (the new key signed it too), size 5 is signed by key 1 alone.
    let err = verify_with(dir.path(), &trust([(0, Some(4)), (10, None)])).expect_err("range");
    assert!(
        err.to_string().contains("trusted for sizes 0..=4 only"),
        "{err}"
    );
    assert_eq!(err.checkpoint.and_then(|c| c.size), Some(5));
}
