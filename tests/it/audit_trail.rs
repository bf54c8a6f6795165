//! The audit trail written by real runs verifies, and tampering with it is
//! caught and named.

use runway_tests::{Fixture, frames, last_segment};

fn small_run(f: &Fixture) {
    let report = f.run(
        r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = { test_ledger = "exclusive" }
        input = { count = 20 }
        "#,
    );
    assert_eq!(report.failed(), 0);
    f.host.audit.sync().unwrap();
}

#[test]
fn a_real_trail_verifies() {
    let f = Fixture::new();
    small_run(&f);
    let report = runway_audit::verify(&f.audit_dir).unwrap();
    let records = f.records();
    assert_eq!(report.records, records.len() as u64);
    assert!(
        report.records > 20,
        "every write is a record: {}",
        report.records
    );
}

#[test]
fn a_flipped_byte_is_caught_and_named() {
    let f = Fixture::new();
    small_run(&f);
    let records = f.records().len();
    let path = last_segment(&f.audit_dir);
    let original = std::fs::read(&path).unwrap();
    // Flip one byte in the middle of the records area, away from the tail.
    let at = original.len() / 2;
    let mut bytes = original.clone();
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = runway_audit::verify(&f.audit_dir).unwrap_err();
    let seq = err.seq.expect("names a record");
    assert!(seq < records as u64, "{err}");
    assert!(err.to_string().contains(&format!("record {seq}")), "{err}");
}

#[test]
fn a_removed_record_is_caught() {
    let f = Fixture::new();
    small_run(&f);
    let path = last_segment(&f.audit_dir);
    let bytes = std::fs::read(&path).unwrap();
    let frames = frames(&bytes);
    assert!(frames.len() > 10);
    // Cut out the 5th frame entirely: every frame stays well-formed.
    let (start, end) = (frames[5].0, frames[5].1);
    let mut cut = bytes[..start].to_vec();
    cut.extend_from_slice(&bytes[end..]);
    std::fs::write(&path, &cut).unwrap();
    let err = runway_audit::verify(&f.audit_dir).unwrap_err();
    // The gap is named where the missing record belongs.
    assert_eq!(err.seq, Some(5), "{err}");
    assert!(
        err.to_string()
            .contains("sequence gap: expected 5, found 6"),
        "{err}"
    );
}
