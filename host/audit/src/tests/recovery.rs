//! Reopening after a crash: torn tails are trimmed and reported, damage
//! before the tail is refused without changing anything.

use super::*;
use crate::findings::TornKind;
use crate::{AuditError, VerifyErrorKind, read_records, verify};

const N: u64 = 8;

/// The frame record `seq` would have, for faking a torn write of it.
fn next_frame(dir: &Path) -> Vec<u8> {
    let records = read_records(dir).expect("read");
    let last = records.last().expect("records");
    let mut chain = Chain::default();
    for record in &records {
        chain.advance(record, record.leaf_hash().expect("hash"));
    }
    let record = chain.link(last.time_ns + 1, entry(last.seq + 1));
    frame(&record.encode().expect("encode")).expect("frame")
}

fn append_bytes(path: &Path, extra: &[u8]) {
    let mut bytes = fs::read(path).expect("read");
    bytes.extend_from_slice(extra);
    fs::write(path, bytes).expect("write");
}

/// Opens, checks what was trimmed, continues, and checks the result verifies.
fn reopen_and_continue(dir: &Path, kind: TornKind, torn_bytes: u64) {
    let log = open(dir);
    let trimmed = log.recovered().expect("torn tail reported").clone();
    assert_eq!(
        (trimmed.kind, trimmed.seq, trimmed.bytes),
        (kind, N, torn_bytes)
    );
    assert!(
        trimmed.to_string().contains(&format!("record {N}")),
        "{trimmed}"
    );
    append_all(&log, N, 3);
    drop(log);
    let report = verify(dir).expect("verify after recovery");
    assert_eq!((report.records, report.torn_tail), (N + 3, None));
    let records = read_records(dir).expect("read");
    assert_eq!(records[N as usize].entry, entry(N));
}

#[test]
fn an_incomplete_frame_is_trimmed() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let frame = next_frame(dir.path());
    for cut in [1, FRAME_HEAD_LEN, frame.len() - 1] {
        let before = fs::read(&path).expect("read");
        append_bytes(&path, &frame[..cut]);
        let torn = verify(dir.path()).expect("verify").torn_tail.expect("torn");
        assert_eq!(torn.kind, TornKind::IncompleteFrame);
        {
            let log = open(dir.path());
            assert_eq!(log.recovered().map(|t| t.bytes), Some(cut as u64));
        }
        assert_eq!(
            fs::read(&path).expect("read"),
            before,
            "trimmed back exactly"
        );
    }
    append_bytes(&path, &frame[..frame.len() / 2]);
    reopen_and_continue(
        dir.path(),
        TornKind::IncompleteFrame,
        (frame.len() / 2) as u64,
    );
}

#[test]
fn a_last_frame_failing_its_crc_is_trimmed_on_open() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut frame = next_frame(dir.path());
    let len = frame.len();
    // The length landed, the payload did not (all zeros).
    frame[FRAME_HEAD_LEN..].fill(0);
    append_bytes(&path, &frame);
    // The verifier calls it what it is; opening for writing trims it.
    let err = verify(dir.path()).expect_err("CRC mismatch");
    assert!(matches!(err.kind, VerifyErrorKind::CrcMismatch), "{err}");
    assert_eq!(err.seq, Some(N));
    reopen_and_continue(dir.path(), TornKind::CrcMismatch, len as u64);
}

#[test]
fn a_damaged_but_linking_last_record_is_not_trimmed() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).expect("read");
    // Flip a bit of the last record's CRC: its contents still link.
    let at = Parts::read(&path).offset(N as usize - 1) + 4;
    bytes[at] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    let err =
        AuditLog::open(dir.path(), options(crate::DEFAULT_SEGMENT_BYTES)).expect_err("damaged");
    assert!(
        err.to_string().contains(&format!("record {}", N - 1)),
        "{err}"
    );
    assert_eq!(fs::read(&path).expect("read"), bytes, "nothing trimmed");
}

#[test]
fn a_zero_filled_tail_is_trimmed() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    append_bytes(&path, &[0; 300]);
    let torn = verify(dir.path()).expect("verify").torn_tail.expect("torn");
    assert_eq!(torn.kind, TornKind::ZeroFill);
    reopen_and_continue(dir.path(), TornKind::ZeroFill, 300);
}

#[test]
fn a_torn_segment_header_is_removed() {
    let dir = log_with(N);
    let records = read_records(dir.path()).expect("read");
    let header = SegmentHeader {
        origin: ORIGIN.into(),
        first_seq: N,
        prev_segment: records.last().expect("last").leaf_hash().expect("hash"),
    }
    .encode()
    .expect("header");
    let torn_path = dir.path().join(segment_file_name(N));
    for cut in [0, 5, header.len() - 1] {
        fs::write(&torn_path, &header[..cut]).expect("write");
        let report = verify(dir.path()).expect("verify");
        assert_eq!(report.records, N);
        let torn = report.torn_tail.expect("torn");
        assert_eq!(
            (torn.kind, torn.offset, torn.bytes),
            (TornKind::IncompleteHeader, 0, cut as u64)
        );
    }
    reopen_and_continue(
        dir.path(),
        TornKind::IncompleteHeader,
        (header.len() - 1) as u64,
    );
    assert_eq!(
        list_segments(dir.path()).expect("list").len(),
        1,
        "appends went to the old segment"
    );
}

#[test]
fn a_short_foreign_header_is_not_removed() {
    let dir = log_with(N);
    let torn_path = dir.path().join(segment_file_name(N));
    fs::write(&torn_path, b"RUNWAYAL\x01\x00\xff\xffsomething else").expect("write");
    let open = AuditLog::open(dir.path(), options(crate::DEFAULT_SEGMENT_BYTES));
    assert!(matches!(open, Err(AuditError::Damaged(_))), "{open:?}");
    assert!(torn_path.exists());
}

#[test]
fn damage_before_the_tail_is_refused_untouched() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let parts = Parts::read(&path);
    let mut bytes = fs::read(&path).expect("read");
    let at = parts.offset(3) + FRAME_HEAD_LEN + 1;
    bytes[at] ^= 0xff;
    // A torn tail after the damage must not be trimmed either.
    bytes.extend_from_slice(&[0x10, 0, 0]);
    fs::write(&path, &bytes).expect("write");

    let err =
        AuditLog::open(dir.path(), options(crate::DEFAULT_SEGMENT_BYTES)).expect_err("damaged");
    let AuditError::Damaged(verify_err) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(verify_err.seq, Some(3), "{err}");
    assert!(err.to_string().contains("record 3"), "{err}");
    assert_eq!(fs::read(&path).expect("read"), bytes);
}

#[test]
fn two_sessions_with_rotation_and_a_crash_in_between() {
    let dir = tempdir();
    let log = open_with(dir.path(), 700);
    append_all(&log, 0, N);
    drop(log);
    let path = last_segment(dir.path());
    append_bytes(&path, &next_frame(dir.path())[..20]);
    let log = open_with(dir.path(), 700);
    assert!(log.recovered().is_some());
    append_all(&log, N, 30);
    drop(log);
    let report = verify(dir.path()).expect("verify");
    assert_eq!(report.records, N + 30);
    assert!(report.segments > 2);
}
