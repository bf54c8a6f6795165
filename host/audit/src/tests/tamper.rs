//! Tampering the verifier must catch, each named at the right record.

use super::*;
use crate::findings::TornKind;
use crate::record::DecodeError;
use crate::{VerifyError, VerifyErrorKind, verify};

const N: u64 = 10;

fn verify_err(dir: &Path) -> VerifyError {
    match verify(dir) {
        Ok(report) => panic!("tampering not detected: {report}"),
        Err(err) => err,
    }
}

#[test]
fn every_flipped_byte_is_caught_at_its_record() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let original = fs::read(&path).expect("read");
    let parts = Parts::read(&path);
    for k in 0..N as usize {
        let start = parts.offset(k);
        let end = start + FRAME_HEAD_LEN + parts.payloads[k].len();
        for at in start..end {
            for mask in [0x01, 0x80] {
                let mut bytes = original.clone();
                bytes[at] ^= mask;
                fs::write(&path, &bytes).expect("write");
                let err = verify_err(dir.path());
                assert_eq!(err.seq, Some(k as u64), "flip {mask:#x} at {at}: {err}");
                assert_eq!(err.offset, start as u64, "flip at {at}: {err}");
            }
        }
    }
    fs::write(&path, &original).expect("restore");
    verify(dir.path()).expect("restored log verifies");
}

#[test]
fn flipped_bytes_with_recomputed_crc_are_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let parts = Parts::read(&path);
    // The last record has no successor to betray it; signed checkpoints will.
    for k in 0..N as usize - 1 {
        for at in 0..parts.payloads[k].len() {
            let mut tampered = Parts {
                header: parts.header.clone(),
                payloads: parts.payloads.clone(),
            };
            tampered.payloads[k][at] ^= 0x01;
            fs::write(&path, tampered.bytes()).expect("write");
            let err = verify_err(dir.path());
            let seq = err.seq.expect("seq");
            assert!(
                seq == k as u64 || seq == k as u64 + 1,
                "flip in record {k} at {at}: {err}"
            );
            if seq == k as u64 + 1 {
                assert!(
                    matches!(err.kind, VerifyErrorKind::PrevHashMismatch),
                    "{err}"
                );
            }
        }
    }
    parts.write(&path);
}

#[test]
fn a_removed_record_is_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    parts.payloads.remove(4);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SequenceGap {
                expected: 4,
                found: 5
            }
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(4));
    assert!(
        err.to_string()
            .contains("sequence gap: expected 4, found 5"),
        "{err}"
    );
}

#[test]
fn a_removed_record_with_renumbered_successors_is_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut records: Vec<Record> = Parts::read(&path)
        .payloads
        .iter()
        .map(|p| Record::decode(p).expect("decode"))
        .collect();
    records.remove(4);
    for record in &mut records[4..] {
        record.seq -= 1;
    }
    fs::remove_file(&path).expect("remove");
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::PrevHashMismatch),
        "{err}"
    );
    assert_eq!(err.seq, Some(4));
}

#[test]
fn swapped_records_are_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    parts.payloads.swap(3, 4);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SequenceGap {
                expected: 3,
                found: 4
            }
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(3));
}

#[test]
fn swapped_and_renumbered_records_are_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut records: Vec<Record> = Parts::read(&path)
        .payloads
        .iter()
        .map(|p| Record::decode(p).expect("decode"))
        .collect();
    records.swap(3, 4);
    records[3].seq = 3;
    records[4].seq = 4;
    fs::remove_file(&path).expect("remove");
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert_eq!(err.seq, Some(3), "{err}");
}

#[test]
fn a_duplicated_record_is_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    let copy = parts.payloads[6].clone();
    parts.payloads.insert(7, copy);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SequenceGap {
                expected: 7,
                found: 6
            }
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(7));
}

#[test]
fn truncation_mid_frame_is_a_torn_tail() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let bytes = fs::read(&path).expect("read");
    let parts = Parts::read(&path);
    let last = parts.offset(N as usize - 1);
    for cut in [last + 3, last + FRAME_HEAD_LEN + 5, bytes.len() - 1] {
        fs::write(&path, &bytes[..cut]).expect("write");
        let report = verify(dir.path()).expect("torn tail is not damage");
        assert_eq!(report.records, N - 1);
        let torn = report.torn_tail.expect("torn tail reported");
        assert_eq!(torn.seq, N - 1);
        assert_eq!(torn.offset, last as u64);
        assert_eq!(torn.bytes, (cut - last) as u64);
        assert_eq!(torn.kind, TornKind::IncompleteFrame);
        let records = crate::read_records(dir.path()).expect("read");
        assert_eq!(records.len() as u64, N - 1);
    }
}

#[test]
fn an_altered_length_is_not_mistaken_for_a_torn_tail() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let parts = Parts::read(&path);
    let mut bytes = fs::read(&path).expect("read");
    // Make record 2's frame claim to run past the end of the file.
    let at = parts.offset(2);
    let claimed = (bytes.len() as u32).to_le_bytes();
    bytes[at..at + 4].copy_from_slice(&claimed);
    fs::write(&path, &bytes).expect("write");
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::FrameLengthMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.seq, Some(2));
    // Opening must refuse rather than trim records 2 onwards.
    let open = AuditLog::open(dir.path(), options(crate::DEFAULT_SEGMENT_BYTES));
    assert!(
        matches!(open, Err(crate::AuditError::Damaged(_))),
        "{open:?}"
    );
    assert_eq!(fs::read(&path).expect("read"), bytes, "nothing was changed");
}

#[test]
fn absurd_lengths_are_rejected() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let parts = Parts::read(&path);
    let mut bytes = fs::read(&path).expect("read");
    let at = parts.offset(5);
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).expect("write");
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::FrameTooLong(u32::MAX)),
        "{err}"
    );
    assert_eq!(err.seq, Some(5));
}

#[test]
fn a_sequence_gap_is_caught() {
    let dir = tempdir();
    let mut records = crafted(N);
    for record in &mut records[5..] {
        record.seq += 1;
    }
    relink(&mut records);
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SequenceGap {
                expected: 5,
                found: 6
            }
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(5));
}

#[test]
fn time_going_backwards_is_caught() {
    let dir = tempdir();
    let mut records = crafted(N);
    records[5].time_ns = records[4].time_ns - 1;
    relink(&mut records);
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::TimeBackwards { .. }),
        "{err}"
    );
    assert_eq!(err.seq, Some(5));
    assert!(err.to_string().contains("time went backwards"), "{err}");

    // Equal times are fine.
    let dir = tempdir();
    let mut records = crafted(N);
    records[5].time_ns = records[4].time_ns;
    relink(&mut records);
    write_records(dir.path(), &records);
    verify(dir.path()).expect("equal times verify");
}

#[test]
fn a_broken_dataset_chain_is_caught() {
    let dir = tempdir();
    let mut records = crafted(N);
    let k = records
        .iter()
        .rposition(|r| r.prev_dataset.is_some())
        .expect("a dataset record with a predecessor");
    // Point the dataset link elsewhere, keep the global chain intact after it.
    records[k].prev_dataset = Some([0xee; 32]);
    let mut chain = crate::chain::Chain::default();
    for record in &mut records {
        if record.seq as usize > k {
            record.prev = chain.last_hash;
        }
        chain.advance(record, record.leaf_hash().expect("hash"));
    }
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::DatasetHashMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.seq, Some(k as u64));
}

#[test]
fn a_dataset_link_on_a_host_record_is_caught() {
    let dir = tempdir();
    let mut records = crafted(N);
    let k = records
        .iter()
        .position(|r| r.entry.dataset.is_none() && r.seq > 0)
        .expect("a record without dataset");
    records[k].prev_dataset = Some(records[k].prev);
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::DatasetHashMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.seq, Some(k as u64));
}

#[test]
fn non_canonical_and_trailing_bytes_are_caught() {
    // seq 2 re-encoded as the overlong varint 82 00.
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    assert_eq!(parts.payloads[2][0], 2);
    parts.payloads[2].splice(0..1, [0x82, 0x00]);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::Decode(DecodeError::NonCanonical)),
        "{err}"
    );
    assert_eq!(err.seq, Some(2));
    assert!(err.to_string().contains("non-canonical encoding"), "{err}");

    let dir = log_with(N);
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    parts.payloads[3].push(0);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::Decode(DecodeError::TrailingBytes(1))
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(3));
}

#[test]
fn a_damaged_header_is_caught() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let original = fs::read(&path).expect("read");
    let header_len = Parts::read(&path).header.len();
    for at in 0..header_len {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).expect("write");
        match verify(dir.path()) {
            Err(err) => {
                assert_eq!((err.seq, err.offset), (None, 0), "{err}");
                assert!(err.to_string().contains("bad header"), "{err}");
            }
            // Raising the origin length past the end of a lone segment looks
            // like a torn header to a verifier that cannot know the origin;
            // it reports all the bytes as torn, and opening refuses (below).
            Ok(report) => {
                let torn = report.torn_tail.expect("torn");
                assert_eq!(
                    (torn.kind, torn.bytes),
                    (TornKind::IncompleteHeader, bytes.len() as u64)
                );
            }
        }
        let open = AuditLog::open(dir.path(), options(crate::DEFAULT_SEGMENT_BYTES));
        assert!(
            matches!(open, Err(crate::AuditError::Damaged(_))),
            "flip at {at}: {open:?}"
        );
        assert_eq!(
            fs::read(&path).expect("read"),
            bytes,
            "flip at {at}: file changed"
        );
    }
}

#[test]
fn error_messages_name_record_segment_and_offset() {
    let dir = log_with(N);
    let path = last_segment(dir.path());
    let parts = Parts::read(&path);
    let mut bytes = fs::read(&path).expect("read");
    let at = parts.offset(7);
    bytes[at + FRAME_HEAD_LEN + 2] ^= 0x40;
    fs::write(&path, &bytes).expect("write");
    let err = verify_err(dir.path());
    let name = segment_file_name(0);
    assert_eq!(
        err.to_string(),
        format!("record 7 ({name} @ {at}): CRC mismatch")
    );
}
