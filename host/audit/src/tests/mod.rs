//! Tests against real files in temporary folders, with real fsyncs: the
//! writer, reopening, rotation, torn tails, and every kind of tampering the
//! verifier must catch.

mod fixture;
mod group_commit;
mod parallel;
mod proofs;
mod read_from;
mod recovery;
mod resume;
mod rotation;
mod shards;
mod signed;
mod signed_tamper;
mod tail;
mod tamper;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::frame::{FRAME_HEAD_LEN, FrameHead, SegmentHeader, frame};
use crate::keys::PrivateKey;
use crate::record::{
    Call, Entry, Event, LockGrant, LockMode, LockRequest, Outcome, Record, sha256,
};
use crate::segment::{list_segments, segment_file_name};
use crate::trust::Trust;
use crate::{AuditLog, AuditOptions, VerifyOptions};

pub(crate) const ORIGIN: &str = "runway.test/audit";

pub(crate) fn options(segment_bytes: u64) -> AuditOptions {
    AuditOptions {
        segment_bytes,
        ..AuditOptions::new(ORIGIN)
    }
}

/// The test signing key number `n`.
pub(crate) fn key(n: u8) -> PrivateKey {
    PrivateKey::from_seed("runway-test", &[n; 32]).expect("key")
}

/// Options signing with key 1, checkpointing only when asked (sync, close).
pub(crate) fn signed_options(segment_bytes: u64) -> AuditOptions {
    AuditOptions {
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..options(segment_bytes).signed_by(key(1))
    }
}

pub(crate) fn open_signed(dir: &Path) -> AuditLog {
    AuditLog::open(dir, signed_options(crate::DEFAULT_SEGMENT_BYTES)).expect("open signed log")
}

/// Verification options trusting key 1.
pub(crate) fn trusting_key_1() -> VerifyOptions {
    VerifyOptions {
        trust: Some(Trust::single(key(1).public())),
        ..VerifyOptions::default()
    }
}

/// A signed log of `batches` × `per_batch` records, each batch synced (so
/// checkpointed): checkpoints at sizes per_batch, 2 × per_batch, ...
pub(crate) fn signed_log_with(batches: u64, per_batch: u64) -> tempfile::TempDir {
    let dir = tempdir();
    let log = open_signed(dir.path());
    for b in 0..batches {
        append_all(&log, b * per_batch, per_batch);
        log.sync().expect("sync");
    }
    drop(log);
    dir
}

pub(crate) fn open(dir: &Path) -> AuditLog {
    open_with(dir, crate::DEFAULT_SEGMENT_BYTES)
}

pub(crate) fn open_with(dir: &Path, segment_bytes: u64) -> AuditLog {
    AuditLog::open(dir, options(segment_bytes)).expect("open audit log")
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A varied entry: events of every kind, three datasets and host-level records.
pub(crate) fn entry(i: u64) -> Entry {
    let runway = format!("run-{}", i % 4);
    let dataset = match i % 5 {
        0 => None,
        n => Some(format!("ds{}", n % 3)),
    };
    let event = match i % 7 {
        0 => Event::Filed {
            action: "import".into(),
            after: vec![format!("run-{}", i % 3)],
            locks: vec![LockRequest {
                dataset: "ds1".into(),
                mode: LockMode::Exclusive,
            }],
        },
        1 => Event::Cleared {
            locks: vec![LockGrant {
                dataset: "ds1".into(),
                mode: LockMode::Shared,
                token: i,
            }],
        },
        2 => Event::LockGranted {
            mode: LockMode::Exclusive,
            token: i,
        },
        3 => Event::Started { attempt: 1 },
        4 => Event::Call {
            call: Call::Write,
            key: Some(format!("app/{i:06}")),
            token: Some(i),
            args: sha256(i.to_le_bytes()),
            result: sha256(b"ok"),
            outcome: if i.is_multiple_of(2) {
                Outcome::Ok
            } else {
                Outcome::Denied("not granted".into())
            },
        },
        5 => Event::Committed {
            token: i,
            writes: 3,
            deletes: 0,
        },
        _ => Event::Succeeded {
            output: sha256(b"out"),
        },
    };
    Entry {
        runway,
        agent: "import-applications".into(),
        plugin: Some(sha256(b"component")),
        dataset,
        event,
    }
}

/// Writes `n` entries (numbered from `from`) durably in one session.
pub(crate) fn append_all(log: &AuditLog, from: u64, n: u64) {
    let tickets: Vec<_> = (from..from + n)
        .map(|i| log.append(entry(i)).expect("append"))
        .collect();
    for ticket in tickets {
        log.wait_durable(ticket).expect("durable");
    }
}

/// A fresh folder holding `n` records in one segment.
pub(crate) fn log_with(n: u64) -> tempfile::TempDir {
    let dir = tempdir();
    let log = open(dir.path());
    append_all(&log, 0, n);
    log.close().expect("close");
    dir
}

/// The only (or last) segment file of `dir`.
pub(crate) fn last_segment(dir: &Path) -> PathBuf {
    list_segments(dir)
        .expect("list")
        .pop()
        .expect("a segment")
        .path
}

/// A segment file taken apart: header bytes, and each frame's payload.
pub(crate) struct Parts {
    pub header: Vec<u8>,
    pub payloads: Vec<Vec<u8>>,
}

impl Parts {
    pub fn read(path: &Path) -> Parts {
        let bytes = fs::read(path).expect("read segment");
        let header = SegmentHeader::read_from(&mut bytes.as_slice()).expect("header");
        let mut at = header.encoded_len();
        let mut payloads = Vec::new();
        while at < bytes.len() {
            let mut head = [0u8; FRAME_HEAD_LEN];
            head.copy_from_slice(&bytes[at..at + FRAME_HEAD_LEN]);
            let len = FrameHead::parse(head).len as usize;
            let start = at + FRAME_HEAD_LEN;
            payloads.push(bytes[start..start + len].to_vec());
            at = start + len;
        }
        Parts {
            header: bytes[..header.encoded_len()].to_vec(),
            payloads,
        }
    }

    /// Offset of frame `i` in the file.
    pub fn offset(&self, i: usize) -> usize {
        self.header.len()
            + self.payloads[..i]
                .iter()
                .map(|p| FRAME_HEAD_LEN + p.len())
                .sum::<usize>()
    }

    /// The file again, each payload framed with a freshly computed CRC.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        for payload in &self.payloads {
            out.extend_from_slice(&frame(payload).expect("frame"));
        }
        out
    }

    pub fn write(&self, path: &Path) {
        fs::write(path, self.bytes()).expect("write segment");
    }
}

/// Changes record `seq` of `dir` in place with `change`, re-encoded and
/// re-framed with a fresh CRC (no relinking); returns the first sequence
/// number of its segment.
pub(crate) fn rewrite_record(dir: &Path, seq: u64, change: impl FnOnce(&mut Record)) -> u64 {
    let segment = list_segments(dir)
        .expect("list")
        .into_iter()
        .rfind(|s| s.first_seq <= seq)
        .expect("segment");
    let mut parts = Parts::read(&segment.path);
    let i = (seq - segment.first_seq) as usize;
    let mut record = Record::decode(&parts.payloads[i]).expect("decode");
    change(&mut record);
    parts.payloads[i] = record.encode().expect("encode");
    parts.write(&segment.path);
    segment.first_seq
}

/// Writes `records` as they are (no relinking) into one fresh segment.
pub(crate) fn write_records(dir: &Path, records: &[Record]) {
    let first_seq = records.first().map_or(0, |r| r.seq);
    let header = SegmentHeader {
        origin: ORIGIN.into(),
        first_seq,
        prev_segment: [0; 32],
    };
    let parts = Parts {
        header: header.encode().expect("header"),
        payloads: records
            .iter()
            .map(|r| r.encode().expect("encode"))
            .collect(),
    };
    parts.write(&dir.join(segment_file_name(first_seq)));
}

/// Fills in `prev` and `prev_dataset` of every record as a writer would,
/// keeping `seq` and `time_ns` as given.
pub(crate) fn relink(records: &mut [Record]) {
    let mut chain = Chain::default();
    for record in records {
        let linked = chain.link(0, record.entry.clone());
        record.prev = linked.prev;
        record.prev_dataset = linked.prev_dataset;
        chain.advance(record, record.leaf_hash().expect("hash"));
    }
}

/// `n` well-linked records with times 1000, 2000, ...
pub(crate) fn crafted(n: u64) -> Vec<Record> {
    let mut records: Vec<Record> = (0..n)
        .map(|i| Record {
            seq: i,
            time_ns: (i + 1) * 1000,
            prev: [0; 32],
            prev_dataset: None,
            entry: entry(i),
        })
        .collect();
    relink(&mut records);
    records
}
