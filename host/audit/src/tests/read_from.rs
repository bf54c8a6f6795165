//! Reading the log from a sequence number on: exactly the records from it,
//! in order, across segment boundaries, whatever the number of threads;
//! nothing from the end or past it; and what follows it is still checked.

use super::*;
use crate::{VerifyErrorKind, for_each_record_from, read_records};

/// A log of `n` records over many small segments.
fn spread_log(n: u64) -> tempfile::TempDir {
    let dir = tempdir();
    let log = open_with(dir.path(), 700);
    append_all(&log, 0, n / 2);
    drop(log);
    let log = open_with(dir.path(), 700);
    append_all(&log, n / 2, n - n / 2);
    drop(log);
    dir
}

#[test]
fn yields_exactly_the_records_from_the_one_asked() {
    const N: u64 = 90;
    let dir = spread_log(N);
    let segments = list_segments(dir.path()).expect("list");
    assert!(segments.len() > 8, "{} segments", segments.len());
    let all = read_records(dir.path()).expect("read");
    assert_eq!(all.len() as u64, N);
    for threads in [1, 3] {
        for from in 0..=N + 3 {
            let mut got = Vec::new();
            let end = for_each_record_from(dir.path(), from, threads, |r| got.push(r))
                .expect("read from");
            assert_eq!(end, N, "from {from}");
            let expected = &all[(from.min(N) as usize)..];
            assert_eq!(got.as_slice(), expected, "from {from}, {threads} threads");
        }
    }
    // Every segment's first record, and the one before it, in particular.
    for segment in &segments {
        for from in [segment.first_seq.saturating_sub(1), segment.first_seq] {
            let mut seqs = Vec::new();
            for_each_record_from(dir.path(), from, 1, |r| seqs.push(r.seq)).expect("read");
            assert_eq!(seqs, (from..N).collect::<Vec<_>>());
        }
    }
}

#[test]
fn an_empty_or_missing_folder_has_nothing_from_anywhere() {
    let dir = tempdir();
    let mut seen = 0;
    assert_eq!(
        for_each_record_from(dir.path(), 5, 1, |_| seen += 1).expect("empty"),
        0
    );
    assert_eq!(seen, 0);
}

#[test]
fn a_torn_tail_is_left_out() {
    let dir = spread_log(30);
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(&[50, 0, 0, 0, 1, 2, 3, 4, 5]);
    fs::write(&path, bytes).expect("write");
    for from in [0, 20, 29, 30, 31] {
        let mut seqs = Vec::new();
        let end = for_each_record_from(dir.path(), from, 2, |r| seqs.push(r.seq)).expect("read");
        assert_eq!(end, 30);
        assert_eq!(seqs, (from..30).collect::<Vec<_>>());
    }
}

#[test]
fn records_after_the_start_are_still_checked() {
    let dir = spread_log(40);
    let first = rewrite_record(dir.path(), 30, |r| r.entry.agent = "forged".into());
    // Read from before it: the next record no longer links to it.
    let err = for_each_record_from(dir.path(), first, 1, |_| {}).expect_err("caught");
    assert_eq!(err.seq, Some(31), "{err}");
    assert!(
        matches!(err.kind, VerifyErrorKind::PrevHashMismatch),
        "{err}"
    );
    // From it on, its own link is not checked but the next one's is.
    let err = for_each_record_from(dir.path(), 30, 1, |_| {}).expect_err("caught");
    assert_eq!(err.seq, Some(31), "{err}");
    // Past it, nothing before is looked at.
    let mut seqs = Vec::new();
    for_each_record_from(dir.path(), 31, 1, |r| seqs.push(r.seq)).expect("read");
    assert_eq!(seqs, (31..40).collect::<Vec<_>>());
}

#[test]
fn a_record_without_a_dataset_may_not_link_to_one_even_from_the_middle() {
    let dir = spread_log(40);
    // Record 30 names no dataset (see `entry`) but now claims a link.
    assert_eq!(entry(30).dataset, None);
    rewrite_record(dir.path(), 30, |r| r.prev_dataset = Some([1; 32]));
    let err = for_each_record_from(dir.path(), 30, 1, |_| {}).expect_err("caught");
    assert_eq!(err.seq, Some(30), "{err}");
    assert!(
        matches!(err.kind, VerifyErrorKind::DatasetHashMismatch { .. }),
        "{err}"
    );
}

/// A reader beside a live writer sees a prefix of the log each time, never
/// damage: a frame still being appended is a torn tail, not a length that
/// was altered — whatever the writer adds after the walk took the file's
/// length.
#[test]
fn a_reader_beside_a_writer_sees_a_growing_prefix_never_damage() {
    // The race is narrow: a few rounds make it likely to be met.
    for _ in 0..4 {
        reader_beside_writer();
    }
}

fn reader_beside_writer() {
    let dir = tempdir();
    let log = std::sync::Arc::new(open_with(dir.path(), 64 * 1024));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..20_000 {
                let ticket = log.append(entry(i)).expect("append");
                if i % 50 == 0 {
                    log.wait_durable(ticket).expect("durable");
                }
            }
            log.sync().expect("sync");
        })
    };
    let mut seen = 0;
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let records = read_records(dir.path()).unwrap_or_else(|e| panic!("read {reads}: {e}"));
        assert!(records.len() >= seen, "{} after {seen}", records.len());
        seen = records.len();
        reads += 1;
    }
    writer.join().expect("writer");
    assert_eq!(read_records(dir.path()).expect("read").len(), 20_000);
}
