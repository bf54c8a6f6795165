//! Verification on several threads names the same first bad record, in
//! the same words and at the same place, as on one.

use std::num::NonZeroUsize;

use super::*;
use crate::{VerifyErrorKind, VerifyReport, verify_with};

/// Enough records for several segments of several chunks each.
const RECORDS: u64 = 6000;
const SEGMENT_BYTES: u64 = 320 << 10;

fn multi_chunk_log() -> tempfile::TempDir {
    let dir = tempdir();
    let log = open_with(dir.path(), SEGMENT_BYTES);
    append_all(&log, 0, RECORDS);
    log.close().expect("close");
    let segments = list_segments(dir.path()).expect("list");
    assert!(segments.len() >= 3, "{} segments", segments.len());
    dir
}

fn on(dir: &Path, threads: usize) -> Result<VerifyReport, crate::VerifyError> {
    let options = VerifyOptions {
        threads: NonZeroUsize::new(threads),
        ..VerifyOptions::default()
    };
    verify_with(dir, &options)
}

/// The error on one thread, after checking every other count finds it too.
fn same_error_on_any_count(dir: &Path) -> crate::VerifyError {
    let one = on(dir, 1).expect_err("one thread finds the damage");
    for threads in 2..=4 {
        let many = on(dir, threads).expect_err("several threads find the damage");
        assert_eq!(format!("{many:?}"), format!("{one:?}"), "{threads} threads");
        assert_eq!(many.to_string(), one.to_string(), "{threads} threads");
    }
    one
}

/// The last segment of more than one chunk: its first seq, path and parts.
fn late_parts(dir: &Path) -> (u64, PathBuf, Parts) {
    list_segments(dir)
        .expect("list")
        .into_iter()
        .rev()
        .map(|segment| (segment.first_seq, Parts::read(&segment.path), segment.path))
        .find(|(_, parts, _)| parts.payloads.len() > 1100)
        .map(|(first, parts, path)| (first, path, parts))
        .expect("a segment of several chunks")
}

#[test]
fn an_intact_log_reports_the_same_on_any_count() {
    let dir = multi_chunk_log();
    let one = on(dir.path(), 1).expect("verify");
    assert_eq!(one.records, RECORDS);
    for threads in 2..=4 {
        assert_eq!(on(dir.path(), threads).expect("verify"), one);
    }
}

#[test]
fn a_late_crc_flaw_is_named_as_on_one_thread() {
    let dir = multi_chunk_log();
    let (first, path, parts) = late_parts(dir.path());
    let k = parts.payloads.len() - 7;
    let mut bytes = fs::read(&path).expect("read");
    bytes[parts.offset(k) + FRAME_HEAD_LEN + 20] ^= 0x10;
    fs::write(&path, &bytes).expect("write");
    let err = same_error_on_any_count(dir.path());
    assert_eq!(err.seq, Some(first + k as u64), "{err}");
    assert_eq!(err.offset, parts.offset(k) as u64, "{err}");
    assert!(matches!(err.kind, VerifyErrorKind::CrcMismatch), "{err}");
}

#[test]
fn the_first_of_two_late_flaws_is_named_as_on_one_thread() {
    let dir = multi_chunk_log();
    let (first, path, mut parts) = late_parts(dir.path());
    // A record whose `prev` (after seq and time, 8 bytes or fewer) is
    // altered, its CRC recomputed. Further on, in a later chunk, a frame
    // length is absurd.
    let k = 100;
    parts.payloads[k][30] ^= 0x01;
    let mut bytes = parts.bytes();
    let late = parts.payloads.len() - 5;
    let absurd = parts.offset(late);
    bytes[absurd..absurd + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).expect("write");
    let err = same_error_on_any_count(dir.path());
    assert_eq!(err.seq, Some(first + k as u64), "{err}");
    assert!(
        matches!(err.kind, VerifyErrorKind::PrevHashMismatch),
        "{err}"
    );

    // With the first flaw mended, the absurd length is the one named.
    parts.payloads[k][30] ^= 0x01;
    let mut bytes = parts.bytes();
    bytes[absurd..absurd + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).expect("write");
    let err = same_error_on_any_count(dir.path());
    assert_eq!(err.seq, Some(first + late as u64), "{err}");
    assert!(
        matches!(err.kind, VerifyErrorKind::FrameTooLong(_)),
        "{err}"
    );
}

#[test]
fn a_flaw_in_an_earlier_segment_comes_before_a_later_one() {
    let dir = multi_chunk_log();
    let segments = list_segments(dir.path()).expect("list");
    for segment in [&segments[0], &segments[segments.len() - 1]] {
        let mut parts = Parts::read(&segment.path);
        let k = parts.payloads.len() - 3;
        parts.payloads[k].push(0);
        parts.write(&segment.path);
    }
    let err = same_error_on_any_count(dir.path());
    let k = Parts::read(&segments[0].path).payloads.len() - 3;
    assert_eq!(err.seq, Some(k as u64), "{err}");
    assert_eq!(err.segment.as_deref(), Some(segments[0].name.as_str()));
}

/// Checkpoints at sizes inside the chunks' subtrees (multiples of 97) and
/// between them: each root is checked, whole subtrees or leaf by leaf, the
/// same on any count.
#[test]
fn checkpoints_inside_chunks_are_checked_on_any_count() {
    let dir = signed_log_with(31, 97);
    let on_signed = |threads: usize| {
        let options = VerifyOptions {
            threads: NonZeroUsize::new(threads),
            ..trusting_key_1()
        };
        verify_with(dir.path(), &options)
    };
    let one = on_signed(1).expect("verify");
    assert_eq!((one.records, one.checkpoints), (31 * 97, 31));
    for threads in 2..=4 {
        assert_eq!(on_signed(threads).expect("verify"), one);
    }

    // A record changed and the log re-linked, as one without the key could:
    // the first checkpoint past it no longer matches, on any count.
    let mut records = crate::read_records(dir.path()).expect("read");
    records[1500].entry.agent = "someone-else".into();
    relink(&mut records);
    for segment in list_segments(dir.path()).expect("list") {
        fs::remove_file(segment.path).expect("remove");
    }
    write_records(dir.path(), &records);
    let mut first = None;
    for threads in 1..=4 {
        let err = on_signed(threads).expect_err("the root at 1552 differs");
        assert!(
            matches!(
                err.kind,
                VerifyErrorKind::RootMismatch {
                    size: 1552,
                    from: 1455
                }
            ),
            "{err}"
        );
        let shown = err.to_string();
        assert_eq!(first.get_or_insert_with(|| shown.clone()), &shown);
    }
}
