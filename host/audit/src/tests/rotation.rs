//! Rotation across segments, and damage to the set of segments.

use super::*;
use crate::{VerifyErrorKind, read_records, verify};

const SMALL: u64 = 1024;

/// A log of `n` records spread over small segments.
fn rotated(n: u64) -> tempfile::TempDir {
    let dir = tempdir();
    let log = open_with(dir.path(), SMALL);
    append_all(&log, 0, n);
    drop(log);
    dir
}

#[test]
fn rotation_verifies_and_continues() {
    let dir = rotated(60);
    let segments = list_segments(dir.path()).expect("list");
    assert!(segments.len() >= 4, "{} segments", segments.len());
    for segment in &segments {
        let len = fs::metadata(&segment.path).expect("metadata").len();
        let parts = Parts::read(&segment.path);
        // Full segments stay within the limit unless one record alone exceeds it.
        assert!(
            len <= SMALL || parts.payloads.len() == 1,
            "{} is {len} bytes",
            segment.name
        );
    }
    let report = verify(dir.path()).expect("verify");
    assert_eq!((report.records, report.segments), (60, segments.len()));

    // A second session appends to the last segment and rotates further.
    let log = open_with(dir.path(), SMALL);
    append_all(&log, 60, 60);
    assert!(log.stats().segments_created >= 3);
    drop(log);
    let report = verify(dir.path()).expect("verify");
    assert_eq!(report.records, 120);
    let records = read_records(dir.path()).expect("read");
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..120).collect::<Vec<_>>()
    );
}

#[test]
fn a_record_larger_than_a_segment_gets_its_own() {
    let dir = tempdir();
    let log = open_with(dir.path(), 64);
    append_all(&log, 0, 5);
    assert_eq!(log.stats().segments_created, 5);
    drop(log);
    assert_eq!(verify(dir.path()).expect("verify").segments, 5);
}

#[test]
fn a_deleted_middle_segment_is_caught() {
    let dir = rotated(60);
    let segments = list_segments(dir.path()).expect("list");
    let (gone, next) = (&segments[1], &segments[2]);
    fs::remove_file(&gone.path).expect("remove");
    let err = verify(dir.path()).expect_err("gap");
    assert!(
        matches!(err.kind, VerifyErrorKind::SegmentGap { expected, found }
            if expected == gone.first_seq && found == next.first_seq),
        "{err}"
    );
    assert_eq!(err.segment.as_deref(), Some(next.name.as_str()));
    assert!(err.to_string().contains("segment gap"), "{err}");
    // Opening for writing refuses too, and changes nothing.
    let open = AuditLog::open(dir.path(), options(SMALL));
    assert!(
        matches!(open, Err(crate::AuditError::Damaged(_))),
        "{open:?}"
    );
}

#[test]
fn a_deleted_first_segment_is_caught() {
    let dir = rotated(60);
    let segments = list_segments(dir.path()).expect("list");
    fs::remove_file(&segments[0].path).expect("remove");
    let err = verify(dir.path()).expect_err("gap");
    assert!(
        matches!(err.kind, VerifyErrorKind::SegmentGap { expected: 0, .. }),
        "{err}"
    );
}

#[test]
fn a_replaced_segment_link_is_caught() {
    let dir = rotated(60);
    let segments = list_segments(dir.path()).expect("list");
    let path = &segments[2].path;
    let mut parts = Parts::read(path);
    let mut header = SegmentHeader::read_from(&mut parts.header.as_slice()).expect("header");
    header.prev_segment[0] ^= 1;
    parts.header = header.encode().expect("encode");
    parts.write(path);
    let err = verify(dir.path()).expect_err("link");
    assert!(
        matches!(err.kind, VerifyErrorKind::SegmentHashMismatch),
        "{err}"
    );
    assert_eq!(err.segment.as_deref(), Some(segments[2].name.as_str()));
}

#[test]
fn a_renamed_segment_is_caught() {
    let dir = rotated(60);
    let segments = list_segments(dir.path()).expect("list");
    let last = segments.last().expect("last");
    let renamed = dir.path().join(segment_file_name(last.first_seq + 1));
    fs::rename(&last.path, renamed).expect("rename");
    let err = verify(dir.path()).expect_err("name");
    assert!(matches!(err.kind, VerifyErrorKind::BadHeader(_)), "{err}");
}

#[test]
fn a_truncated_middle_segment_is_damage_not_a_torn_tail() {
    let dir = rotated(60);
    let segments = list_segments(dir.path()).expect("list");
    let path = &segments[1].path;
    let bytes = fs::read(path).expect("read");
    fs::write(path, &bytes[..bytes.len() - 3]).expect("write");
    let err = verify(dir.path()).expect_err("truncated");
    assert!(matches!(err.kind, VerifyErrorKind::TruncatedFrame), "{err}");
    let last_seq = segments[2].first_seq - 1;
    assert_eq!(err.seq, Some(last_seq), "{err}");
}
