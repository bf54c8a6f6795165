//! The tamper suite against a signed log: every case caught, and named as
//! the record or checkpoint at fault. A log of 20 records with checkpoints
//! at sizes 5, 10, 15 and 20 is tampered with as someone without the key
//! would: editing bytes, recomputing CRCs, renumbering and re-chaining.

use super::*;
use crate::checkpoint::{
    CHECKPOINTS_FILE, Checkpoint, LATEST_FILE, SignedCheckpoint, read_checkpoint_file,
};
use crate::merkle::tests::vector_leaves;
use crate::record::DecodeError;
use crate::trust::{SignatureProblem, TrustedKey};
use crate::{AuditError, VerifyError, VerifyErrorKind, verify_with};

const BATCHES: u64 = 4;
const PER_BATCH: u64 = 5;
const N: u64 = BATCHES * PER_BATCH;

fn signed_log() -> tempfile::TempDir {
    signed_log_with(BATCHES, PER_BATCH)
}

fn verify_err(dir: &Path) -> VerifyError {
    verify_err_with(dir, &trusting_key_1())
}

fn verify_err_with(dir: &Path, options: &VerifyOptions) -> VerifyError {
    match verify_with(dir, options) {
        Ok(report) => panic!("tampering not detected: {report}"),
        Err(err) => err,
    }
}

/// Opening for writing must refuse too, changing nothing, when it reads
/// the records tampered with: from a resume point it reads only those
/// after it (the signed records before it are `verify`'s to check), so the
/// resume point goes first.
fn open_refuses(dir: &Path) {
    crate::resume::remove(dir);
    let segment = fs::read(last_segment(dir)).expect("read");
    let checkpoints = fs::read(dir.join(CHECKPOINTS_FILE)).expect("read");
    let open = AuditLog::open(dir, signed_options(crate::DEFAULT_SEGMENT_BYTES));
    assert!(matches!(open, Err(AuditError::Damaged(_))), "{open:?}");
    assert_eq!(fs::read(last_segment(dir)).expect("read"), segment);
    assert_eq!(
        fs::read(dir.join(CHECKPOINTS_FILE)).expect("read"),
        checkpoints
    );
}

fn decoded(dir: &Path) -> Vec<Record> {
    Parts::read(&last_segment(dir))
        .payloads
        .iter()
        .map(|p| Record::decode(p).expect("decode"))
        .collect()
}

/// Replaces the log with `records`, re-linked and re-framed as a writer
/// would (what an attacker without the key can do).
fn rewrite_relinked(dir: &Path, mut records: Vec<Record>) {
    for (seq, record) in records.iter_mut().enumerate() {
        record.seq = seq as u64;
    }
    relink(&mut records);
    fs::remove_file(last_segment(dir)).expect("remove");
    write_records(dir, &records);
}

fn assert_root_mismatch(err: &VerifyError, size: u64, from: u64) {
    assert!(
        matches!(err.kind, VerifyErrorKind::RootMismatch { size: s, from: f } if s == size && f == from),
        "{err}"
    );
    let place = err.checkpoint.as_ref().expect("names a checkpoint");
    assert_eq!(
        (place.index, place.size),
        (Some((size / PER_BATCH) as usize), Some(size))
    );
    assert!(
        err.to_string()
            .contains(&format!("a record in seq {from}..{size}")),
        "{err}"
    );
}

#[test]
fn the_untampered_log_verifies() {
    let dir = signed_log();
    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!(
        (report.records, report.checkpoints, report.signed_size),
        (N, 4, N)
    );
}

#[test]
fn a_flipped_bit_in_a_signed_record_names_it() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    let original = fs::read(&path).expect("read");
    let parts = Parts::read(&path);
    for k in [0, 7, 13, N as usize - 1] {
        let mut bytes = original.clone();
        bytes[parts.offset(k) + FRAME_HEAD_LEN + 3] ^= 0x10;
        fs::write(&path, &bytes).expect("write");
        let err = verify_err(dir.path());
        assert_eq!(err.seq, Some(k as u64), "{err}");
        assert!(matches!(err.kind, VerifyErrorKind::CrcMismatch), "{err}");
        assert!(err.to_string().contains(&format!("record {k} ")), "{err}");
        open_refuses(dir.path());
    }
}

#[test]
fn a_flipped_bit_in_a_length_or_crc_names_the_record() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    let original = fs::read(&path).expect("read");
    let parts = Parts::read(&path);
    for (k, at) in [(4, 0), (9, 1), (12, 4), (16, 7)] {
        let mut bytes = original.clone();
        bytes[parts.offset(k) + at] ^= 0x01;
        fs::write(&path, &bytes).expect("write");
        let err = verify_err(dir.path());
        assert_eq!(err.seq, Some(k as u64), "flip at {at} of record {k}: {err}");
        open_refuses(dir.path());
    }
}

#[test]
fn a_flipped_prev_hash_names_the_record() {
    let dir = signed_log();
    let mut records = decoded(dir.path());
    records[8].prev[5] ^= 0x04;
    // Re-framed with a fresh CRC: the chain catches it at that very record.
    fs::remove_file(last_segment(dir.path())).expect("remove");
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert_eq!(err.seq, Some(8), "{err}");
    assert!(
        matches!(err.kind, VerifyErrorKind::PrevHashMismatch),
        "{err}"
    );
    open_refuses(dir.path());
}

#[test]
fn a_deleted_record_is_caught_even_when_re_chained() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    let original = parts.bytes();
    parts.payloads.remove(7);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SequenceGap {
                expected: 7,
                found: 8
            }
        ),
        "{err}"
    );
    fs::write(&path, original).expect("restore");

    let mut records = decoded(dir.path());
    records.remove(7);
    rewrite_relinked(dir.path(), records);
    let err = verify_err(dir.path());
    assert_root_mismatch(&err, 10, 5);
    open_refuses(dir.path());
}

#[test]
fn swapped_records_are_caught_even_when_re_chained() {
    let dir = signed_log();
    let mut records = decoded(dir.path());
    records.swap(11, 12);
    // Times as they were, so that time order holds.
    let (t11, t12) = (records[12].time_ns, records[11].time_ns);
    records[11].time_ns = t11;
    records[12].time_ns = t12;
    rewrite_relinked(dir.path(), records);
    let err = verify_err(dir.path());
    assert_root_mismatch(&err, 15, 10);
}

#[test]
fn a_duplicated_record_is_caught_even_when_re_chained() {
    let dir = signed_log();
    let mut records = decoded(dir.path());
    let copy = records[3].clone();
    records.insert(4, copy);
    rewrite_relinked(dir.path(), records);
    let err = verify_err(dir.path());
    assert_root_mismatch(&err, 5, 0);
}

#[test]
fn truncation_below_the_latest_checkpoint_is_caught() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    let original = fs::read(&path).expect("read");
    let parts = Parts::read(&path);
    // At a frame boundary, and in the middle of a frame.
    for cut in [parts.offset(17), parts.offset(17) + 11] {
        fs::write(&path, &original[..cut]).expect("write");
        let err = verify_err(dir.path());
        assert!(
            matches!(
                err.kind,
                VerifyErrorKind::MissingRecords {
                    records: 17,
                    size: 20
                }
            ),
            "{err}"
        );
        assert_eq!(err.seq, Some(17));
        assert!(
            err.to_string().contains("records 17..20 were removed"),
            "{err}"
        );
        open_refuses(dir.path());
    }
}

#[test]
fn a_torn_record_beyond_the_checkpoint_is_an_unsigned_tail() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    // Two more records the writer wrote before dying, then half a third.
    let mut chain = crate::chain::Chain::default();
    for record in decoded(dir.path()) {
        chain.advance(&record, record.leaf_hash().expect("hash"));
    }
    let mut bytes = fs::read(&path).expect("read");
    for i in 0..3 {
        let record = chain.link(u64::MAX / 2, entry(N + i));
        let payload = record.encode().expect("encode");
        chain.advance(&record, crate::leaf_hash(&payload));
        let framed = frame(&payload).expect("frame");
        let keep = if i < 2 {
            framed.len()
        } else {
            framed.len() / 2
        };
        bytes.extend_from_slice(&framed[..keep]);
    }
    fs::write(&path, &bytes).expect("write");

    let report = verify_with(dir.path(), &trusting_key_1()).expect("not tampering");
    assert_eq!((report.records, report.signed_size), (N + 2, N));
    assert_eq!(report.unsigned_records, 2);
    let torn = report.torn_tail.clone().expect("torn tail");
    assert_eq!(torn.seq, N + 2);
    assert!(
        report.to_string().contains("unsigned tail: 2 records"),
        "{report}"
    );

    // Reopening trims the torn record and signs the two whole ones.
    let log = open_signed(dir.path());
    assert_eq!(log.recovered().map(|t| t.seq), Some(N + 2));
    log.sync().expect("sync");
    drop(log);
    let report = verify_with(dir.path(), &trusting_key_1()).expect("verify");
    assert_eq!((report.records, report.signed_size), (N + 2, N + 2));
}

/// The lines of entry `index` (from 1) of the `checkpoints` file.
fn flip_in_checkpoint(dir: &Path, index: usize, line: usize, column: usize, mask: u8) {
    let path = dir.join(CHECKPOINTS_FILE);
    let mut bytes = fs::read(&path).expect("read");
    let entry = read_checkpoint_file(dir).expect("read").entries[index - 1].offset as usize;
    let mut at = entry;
    for _ in 0..line {
        at += bytes[at..].iter().position(|&b| b == b'\n').expect("line") + 1;
    }
    bytes[at + column] ^= mask;
    fs::write(&path, bytes).expect("write");
}

#[test]
fn flipped_bits_in_a_checkpoint_are_caught() {
    // (what, line, column, mask): origin, size, root, key id, signature.
    let cases = [
        ("origin", 0, 3, 0x01),
        ("size", 1, 0, 0x01),
        ("root", 2, 10, 0x01),
        ("root end", 2, 42, 0x02),
        ("key id", 4, 20, 0x01),
        ("signature", 4, 40, 0x01),
        ("signature end", 4, 100, 0x04),
    ];
    for (what, line, column, mask) in cases {
        let dir = signed_log();
        flip_in_checkpoint(dir.path(), 3, line, column, mask);
        let err = verify_err(dir.path());
        let place = err
            .checkpoint
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: {err}"));
        assert_eq!(
            (place.file.as_str(), place.index),
            (CHECKPOINTS_FILE, Some(3)),
            "{what}: {err}"
        );
        assert!(
            matches!(
                err.kind,
                VerifyErrorKind::Signature(_) | VerifyErrorKind::BadCheckpoint(_)
            ),
            "{what}: {err}"
        );
        assert!(
            err.to_string().starts_with("checkpoint #3 in checkpoints"),
            "{err}"
        );
    }
}

#[test]
fn a_changed_latest_checkpoint_is_caught() {
    let dir = signed_log();
    let path = dir.path().join(LATEST_FILE);
    let mut bytes = fs::read(&path).expect("read");
    bytes[20] ^= 0x01;
    fs::write(&path, bytes).expect("write");
    let err = verify_err(dir.path());
    assert_eq!(err.checkpoint.map(|c| c.file), Some(LATEST_FILE.to_owned()));
}

#[test]
fn unknown_keys_and_keys_outside_their_range_are_refused() {
    let dir = signed_log();
    let stranger = VerifyOptions {
        trust: Some(Trust::single(key(2).public())),
        ..VerifyOptions::default()
    };
    let err = verify_err_with(dir.path(), &stranger);
    assert!(
        matches!(&err.kind, VerifyErrorKind::Signature(p) if matches!(&**p, SignatureProblem::UnknownKeys { keys } if keys == &[key(1).public().label()])),
        "{err}"
    );
    assert_eq!(err.checkpoint.and_then(|c| c.index), Some(1));

    let limited = VerifyOptions {
        trust: Some(Trust {
            keys: vec![TrustedKey {
                key: key(1).public(),
                from_size: 0,
                until_size: Some(12),
            }],
        }),
        ..VerifyOptions::default()
    };
    let err = verify_err_with(dir.path(), &limited);
    assert!(
        matches!(&err.kind, VerifyErrorKind::Signature(p)
            if matches!(**p, SignatureProblem::OutsideValidity { size: 15, .. })),
        "{err}"
    );
    assert_eq!(err.checkpoint.and_then(|c| c.index), Some(3));
}

/// The `checkpoints` file with `edit` applied to its entries' texts.
fn edit_checkpoints(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let file = read_checkpoint_file(dir).expect("read");
    let mut entries: Vec<String> = file
        .entries
        .iter()
        .map(|e| e.parsed.as_ref().expect("parsed").to_string())
        .collect();
    edit(&mut entries);
    let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
    fs::write(dir.join(CHECKPOINTS_FILE), text).expect("write");
}

#[test]
fn two_roots_for_one_size_are_caught() {
    let dir = signed_log();
    let forged = SignedCheckpoint::sign(
        Checkpoint {
            origin: ORIGIN.into(),
            size: 10,
            root: [9; 32],
            extensions: Vec::new(),
        },
        &[key(1)],
    )
    .expect("sign");
    edit_checkpoints(dir.path(), |entries| entries.insert(2, forged.to_string()));
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::ConflictingRoots { size: 10, .. }),
        "{err}"
    );
    assert_eq!(err.checkpoint.as_ref().and_then(|c| c.index), Some(3));
    assert!(
        err.to_string().contains("as checkpoint #2 in checkpoints"),
        "{err}"
    );
}

#[test]
fn a_size_going_down_is_caught() {
    let dir = signed_log();
    edit_checkpoints(dir.path(), |entries| entries.swap(1, 2));
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SizeDecreased {
                previous: 15,
                found: 10
            }
        ),
        "{err}"
    );
    assert_eq!(err.checkpoint.and_then(|c| c.index), Some(3));
}

#[test]
fn non_canonical_record_bytes_are_caught_inside_the_signed_range() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    let original = Parts::read(&path);
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

    let mut parts = original;
    parts.payloads[14].extend_from_slice(&[0, 0]);
    parts.write(&path);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::Decode(DecodeError::TrailingBytes(2))
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(14));
    open_refuses(dir.path());
}

#[test]
fn a_64_byte_node_is_not_a_record() {
    let dir = signed_log();
    let path = last_segment(dir.path());
    let mut parts = Parts::read(&path);
    let leaves = vector_leaves();
    let mut node_children = leaves[0].to_vec();
    node_children.extend_from_slice(&leaves[1]);
    parts.payloads[0] = node_children;
    parts.write(&path);
    let err = verify_err(dir.path());
    assert_eq!(err.seq, Some(0), "{err}");
    assert!(matches!(err.kind, VerifyErrorKind::Decode(_)), "{err}");
}

#[test]
fn a_sequence_gap_or_backwards_time_is_named_even_when_re_chained() {
    let dir = signed_log();
    let mut records = decoded(dir.path());
    for record in &mut records[9..] {
        record.seq += 1;
    }
    relink(&mut records);
    fs::remove_file(last_segment(dir.path())).expect("remove");
    write_records(dir.path(), &records);
    let err = verify_err(dir.path());
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::SequenceGap {
                expected: 9,
                found: 10
            }
        ),
        "{err}"
    );

    let dir = signed_log();
    let mut records = decoded(dir.path());
    records[6].time_ns = records[5].time_ns - 1;
    rewrite_relinked(dir.path(), records);
    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::TimeBackwards { .. }),
        "{err}"
    );
    assert_eq!(err.seq, Some(6));
}

#[test]
fn a_rollback_of_log_and_checkpoints_is_caught_with_a_kept_checkpoint() {
    let dir = signed_log_with(2, PER_BATCH);
    let old_state = tempdir();
    for name in [CHECKPOINTS_FILE, LATEST_FILE] {
        fs::copy(dir.path().join(name), old_state.path().join(name)).expect("copy");
    }
    let segment = last_segment(dir.path());
    fs::copy(&segment, old_state.path().join("segment")).expect("copy");

    // Two more batches; the auditor keeps the latest checkpoint.
    let log = open_signed(dir.path());
    append_all(&log, 10, 10);
    log.sync().expect("sync");
    drop(log);
    let kept = fs::read(dir.path().join(LATEST_FILE)).expect("read");

    // Everything rolled back to the old, self-consistent state.
    for name in [CHECKPOINTS_FILE, LATEST_FILE] {
        fs::copy(old_state.path().join(name), dir.path().join(name)).expect("copy");
    }
    fs::copy(old_state.path().join("segment"), &segment).expect("copy");
    verify_with(dir.path(), &trusting_key_1()).expect("consistent by itself");

    let options = VerifyOptions {
        kept_checkpoints: vec![("kept.checkpoint".into(), kept)],
        ..trusting_key_1()
    };
    let err = verify_err_with(dir.path(), &options);
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::MissingRecords {
                records: 10,
                size: 20
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("checkpoint in kept.checkpoint (size 20)"),
        "{err}"
    );
}

#[test]
fn deleted_checkpoints_and_cut_records_do_not_verify_with_a_key() {
    let dir = signed_log();
    for file in [CHECKPOINTS_FILE, LATEST_FILE] {
        fs::remove_file(dir.path().join(file)).expect("remove");
    }
    let mut parts = Parts::read(&last_segment(dir.path()));
    parts.payloads.truncate(N as usize - 3);
    parts.write(&last_segment(dir.path()));

    let err = verify_err(dir.path());
    assert!(
        matches!(err.kind, VerifyErrorKind::NoCheckpoint { records } if records == N - 3),
        "{err}"
    );
    assert_eq!(err.seq, Some(0));
    assert!(
        err.to_string()
            .contains("no signed checkpoint covers the log's 17 records"),
        "{err}"
    );
    // Without keys nothing is claimed about signatures: it reads as unsigned.
    let report = crate::verify(dir.path()).expect("unsigned log");
    assert_eq!((report.signed_size, report.unsigned_records), (0, N - 3));
}

#[test]
fn an_unsigned_tail_longer_than_allowed_is_refused() {
    let dir = signed_log();
    // The last two checkpoints gone: records 10..20 are unsigned.
    edit_checkpoints(dir.path(), |entries| entries.truncate(2));
    fs::remove_file(dir.path().join(LATEST_FILE)).expect("remove");
    let allowing = |n| VerifyOptions {
        allow_unsigned_tail: n,
        ..trusting_key_1()
    };
    let err = verify_err_with(dir.path(), &allowing(9));
    assert!(
        matches!(
            err.kind,
            VerifyErrorKind::UnsignedTail {
                signed: 10,
                records: N,
                allowed: 9
            }
        ),
        "{err}"
    );
    assert_eq!(err.seq, Some(10));
    assert!(
        err.to_string()
            .contains("records 10..20 follow the last signed checkpoint: 10 unsigned records"),
        "{err}"
    );
    let report = verify_with(dir.path(), &allowing(10)).expect("within the allowance");
    assert_eq!(report.unsigned_records, 10);
    // The default allows what the writer may leave unsigned.
    assert!(verify_with(dir.path(), &trusting_key_1()).is_ok());
}

#[test]
fn a_crlf_checkpoints_file_is_refused_naming_the_line() {
    for (file, line) in [(CHECKPOINTS_FILE, 1), (LATEST_FILE, 1)] {
        let dir = signed_log();
        let path = dir.path().join(file);
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, text.replace('\n', "\r\n")).expect("write");
        let err = verify_err(dir.path());
        assert!(
            matches!(&err.kind, VerifyErrorKind::CheckpointFile(
                crate::checkpoint::CheckpointFileError::CarriageReturn { file: f, line: l })
                if f == file && *l == line),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!(
                "{file} line {line} ends in a carriage return (CRLF line endings?)"
            )),
            "{err}"
        );
        // Opening for writing refuses too, instead of trimming the file as
        // one torn entry.
        let before = fs::read(&path).expect("read");
        let open = AuditLog::open(dir.path(), signed_options(crate::DEFAULT_SEGMENT_BYTES));
        assert!(matches!(open, Err(AuditError::Damaged(_))), "{open:?}");
        assert_eq!(fs::read(&path).expect("read"), before);
    }
}

#[test]
fn a_checkpoint_with_an_extension_line_verifies() {
    let dir = signed_log();
    let last = read_checkpoint_file(dir.path()).expect("read").entries[BATCHES as usize - 1]
        .parsed
        .clone()
        .expect("parsed");
    let mut checkpoint = last.checkpoint;
    checkpoint.extensions = vec!["witness.example/w1 20 ts=1710550800".into()];
    let extended = SignedCheckpoint::sign(checkpoint, &[key(1)]).expect("sign");
    let text = extended.to_string();
    assert!(
        text.contains("=\nwitness.example/w1 20 ts=1710550800\n\n\u{2014} runway-test "),
        "{text}"
    );
    edit_checkpoints(dir.path(), |entries| {
        *entries.last_mut().expect("last") = text.clone();
    });
    fs::write(dir.path().join(LATEST_FILE), &text).expect("write");
    let report = verify_with(dir.path(), &trusting_key_1()).expect("extension lines verify");
    assert_eq!(report.signed_size, N);

    // The signature covers the extension line.
    let forged = text.replace("ts=1710550800", "ts=1710550801");
    fs::write(dir.path().join(LATEST_FILE), forged).expect("write");
    let err = verify_err(dir.path());
    assert!(
        matches!(&err.kind, VerifyErrorKind::Signature(p)
            if matches!(**p, SignatureProblem::BadSignature { .. })),
        "{err}"
    );
}
