//! Proof files made from a real signed log, checked with the public key
//! alone, and refused when corrupted.

use super::*;
use crate::checkpoint::{CHECKPOINTS_FILE, SignedCheckpoint, read_checkpoint_file};
use crate::proof_file::{Claim, ProofFile, ProofFileError};

fn trust() -> Trust {
    Trust::single(key(1).public())
}

/// The checkpoint of size `size` from the `checkpoints` file.
fn checkpoint_of(dir: &Path, size: u64) -> SignedCheckpoint {
    read_checkpoint_file(dir)
        .expect("read")
        .entries
        .into_iter()
        .filter_map(|e| e.parsed.ok())
        .find(|s| s.checkpoint.size == size)
        .expect("checkpoint of that size")
}

#[test]
fn inclusion_proofs_check_for_every_record() {
    let dir = signed_log_with(3, 7);
    for seq in 0..21 {
        let proof = ProofFile::inclusion(dir.path(), seq, None).expect("prove");
        assert_eq!(proof.size, 21);
        let text = proof.to_text();
        let parsed = ProofFile::parse(&text).expect("parse");
        assert_eq!(parsed, proof);
        let checked = parsed.check(&trust(), None, None).expect("check");
        let record = checked.record.expect("record");
        assert_eq!((record.seq, record.entry), (seq, entry(seq)));
    }
    // Against an older checkpoint.
    let proof = ProofFile::inclusion(dir.path(), 3, Some(7)).expect("prove");
    assert_eq!(proof.size, 7);
    proof.check(&trust(), None, None).expect("check");
    assert!(matches!(
        ProofFile::inclusion(dir.path(), 9, Some(7)),
        Err(ProofFileError::NotCovered { seq: 9, size: 7 })
    ));
    assert!(matches!(
        ProofFile::inclusion(dir.path(), 3, Some(8)),
        Err(ProofFileError::NoCheckpoint(Some(8)))
    ));
}

#[test]
fn consistency_proofs_check_between_any_sizes() {
    let dir = signed_log_with(3, 7);
    for old in 0..=21 {
        let proof = ProofFile::consistency(dir.path(), old, None).expect("prove");
        let parsed = ProofFile::parse(&proof.to_text()).expect("parse");
        parsed.check(&trust(), None, None).expect("check");
    }
    // Holding the old root to a checkpoint the auditor kept.
    let kept = checkpoint_of(dir.path(), 14);
    let proof = ProofFile::consistency(dir.path(), 14, None).expect("prove");
    proof.check(&trust(), None, Some(&kept)).expect("check");
    let other = checkpoint_of(dir.path(), 7);
    assert!(matches!(
        proof.check(&trust(), None, Some(&other)),
        Err(ProofFileError::OldCheckpointMismatch { size: 7 })
    ));
}

/// Replaces line `index` of the proof text (its head) with `line`; `None` removes it.
fn edit_line(text: &str, index: usize, line: Option<String>) -> String {
    let (head, note) = text.split_once("\n\n").expect("head");
    let mut lines: Vec<String> = head.split('\n').map(str::to_owned).collect();
    match line {
        Some(line) if index == lines.len() => lines.push(line),
        Some(line) => lines[index] = line,
        None => {
            lines.remove(index);
        }
    }
    format!("{}\n\n{note}", lines.join("\n"))
}

/// A proof text with hash line `i` (from 0) bit-flipped.
fn flip_hash(proof: &ProofFile, i: usize) -> String {
    let mut flipped = proof.clone();
    flipped.hashes[i][0] ^= 8;
    flipped.to_text()
}

fn refused(text: &str) -> ProofFileError {
    match ProofFile::parse(text).and_then(|p| p.check(&trust(), None, None)) {
        Ok(_) => panic!("corrupted proof accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn corrupted_inclusion_proofs_are_refused() {
    let dir = signed_log_with(3, 7);
    let proof = ProofFile::inclusion(dir.path(), 9, None).expect("prove");
    let text = proof.to_text();
    let Claim::Inclusion { record, .. } = &proof.claim else {
        panic!("inclusion")
    };
    let hashes = proof.hashes.len();
    assert!(hashes >= 3);
    let extra = format!("hash {}", base64_of(&[7; 32]));
    let cases = [
        (
            "wrong index",
            edit_line(&text, 1, Some("inclusion 10 21".into())),
        ),
        (
            "wrong size",
            edit_line(&text, 1, Some("inclusion 9 20".into())),
        ),
        ("extra hash", edit_line(&text, 3 + hashes, Some(extra))),
        ("missing hash", edit_line(&text, 3, None)),
        ("flipped first hash", flip_hash(&proof, 0)),
        ("flipped last hash", flip_hash(&proof, hashes - 1)),
        (
            "other record",
            edit_line(
                &text,
                2,
                Some(format!("record {}", base64_of(&entry_bytes(record)))),
            ),
        ),
    ];
    for (what, bad) in cases {
        let err = refused(&bad);
        assert!(
            matches!(
                err,
                ProofFileError::Proof(_)
                    | ProofFileError::BadRecord { .. }
                    | ProofFileError::SizeMismatch { .. }
            ),
            "{what}: {err}"
        );
    }
    // The checkpoint, too, must be the signed one.
    let mut forged = proof.clone();
    forged.checkpoint.checkpoint.root[0] ^= 1;
    forged.checkpoint =
        SignedCheckpoint::sign(forged.checkpoint.checkpoint.clone(), &[key(2)]).expect("sign");
    assert!(matches!(
        forged.check(&trust(), None, None),
        Err(ProofFileError::Signature { .. })
    ));
}

/// A record's bytes with one field changed (re-encoded canonically).
fn entry_bytes(record: &[u8]) -> Vec<u8> {
    let mut decoded = Record::decode(record).expect("decode");
    decoded.entry.agent.push('!');
    decoded.encode().expect("encode")
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn corrupted_consistency_proofs_are_refused() {
    let dir = signed_log_with(3, 7);
    let proof = ProofFile::consistency(dir.path(), 6, None).expect("prove");
    let text = proof.to_text();
    let hashes = proof.hashes.len();
    assert!(hashes >= 2);
    let extra = format!("hash {}", base64_of(&[7; 32]));
    for (what, bad) in [
        (
            "wrong old size",
            edit_line(&text, 1, Some("consistency 5 21".into())),
        ),
        (
            "wrong new size",
            edit_line(&text, 1, Some("consistency 6 14".into())),
        ),
        ("extra hash", edit_line(&text, 3 + hashes, Some(extra))),
        ("missing hash", edit_line(&text, 3, None)),
        ("flipped hash", flip_hash(&proof, 1)),
        (
            "other old root",
            edit_line(&text, 2, Some(format!("old-root {}", base64_of(&[1; 32])))),
        ),
    ] {
        let err = refused(&bad);
        assert!(
            matches!(
                err,
                ProofFileError::Proof(_) | ProofFileError::SizeMismatch { .. }
            ),
            "{what}: {err}"
        );
    }
}

#[test]
fn malformed_proof_files_are_refused() {
    let dir = signed_log_with(1, 4);
    let text = ProofFile::inclusion(dir.path(), 1, None)
        .expect("prove")
        .to_text();
    for bad in [
        text.replace("runway audit proof v1", "runway audit proof v2"),
        text.replace("inclusion 1 4", "inclusion 01 4"),
        text.replace("inclusion 1 4", "exclusion 1 4"),
        text.replacen("hash ", "hash  ", 1),
        text.split("\n\n").next().expect("head").to_owned(),
    ] {
        assert!(
            matches!(
                ProofFile::parse(&bad),
                Err(ProofFileError::Malformed(_) | ProofFileError::Checkpoint(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn a_proof_needs_a_verifying_log() {
    let dir = signed_log_with(2, 4);
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).expect("read");
    let at = bytes.len() - 5;
    bytes[at] ^= 1;
    fs::write(&path, bytes).expect("write");
    assert!(matches!(
        ProofFile::inclusion(dir.path(), 1, None),
        Err(ProofFileError::Log(_))
    ));
    assert!(dir.path().join(CHECKPOINTS_FILE).exists());
}
