//! The committed trail an older host wrote (`tests/fixtures/trail-0.1.0` at
//! the repository root, FILING records of the first manifest layout): it
//! must verify with its key and decode, record by record, forever.

use std::path::PathBuf;

use crate::keys::PublicKey;
use crate::record::{Event, Record};
use crate::render::{record_json, record_line};
use crate::trust::Trust;
use crate::{State, VerifyOptions, read_records, verify_with};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/trail-0.1.0")
}

#[test]
fn the_0_1_0_trail_verifies_and_every_record_decodes() {
    let dir = fixture();
    let key = PublicKey::read(&dir.join("vm_runway.pub")).expect("fixture key");
    let options = VerifyOptions {
        trust: Some(Trust::single(key)),
        ..VerifyOptions::default()
    };
    let report = verify_with(&dir.join("audit"), &options).expect("the fixture verifies");
    assert!(report.signatures_checked, "{report}");
    assert_eq!(report.signed_size, report.records, "{report}");

    let records = read_records(&dir.join("audit")).expect("read");
    assert_eq!(records.len() as u64, report.records);
    for record in &records {
        // Strictly decodable from its canonical bytes, and shown.
        let bytes = record.encode().expect("encode");
        assert_eq!(Record::decode(&bytes).as_ref(), Ok(record));
        assert!(!record_line(record).is_empty());
        assert!(record_json(record)["event"].is_string(), "#{}", record.seq);
    }

    // What README.md says the trail holds: three first-layout filings, one
    // plan, one run to its end, one approval still awaited.
    let filings: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::FilingV1(m) => Some((r.entry.runway.as_str(), m)),
            _ => None,
        })
        .collect();
    let runways: Vec<_> = filings.iter().map(|(id, _)| *id).collect();
    assert_eq!(runways, ["import", "compliance", "later"]);
    let (_, compliance) = filings[1];
    assert_eq!(compliance.approval.as_deref(), Some("approver"));
    let (_, later) = filings[2];
    assert_eq!(later.expires_ns, Some(15_160_480_200_123_456_789));
    assert!(records.iter().any(|r| matches!(
        (&r.entry.event, r.entry.runway.as_str()),
        (Event::Succeeded { .. }, "import")
    )));
    assert!(records.iter().any(|r| matches!(
        &r.entry.event,
        Event::Moved { to: State::WaitingApproval, .. } if r.entry.runway == "compliance"
    )));
    assert!(
        records
            .iter()
            .any(|r| matches!(&r.entry.event, Event::PlanFiled { .. }))
    );
    assert!(
        !records
            .iter()
            .any(|r| matches!(&r.entry.event, Event::Filing { .. })),
        "the fixture predates FILING of manifest layout 2"
    );
}
