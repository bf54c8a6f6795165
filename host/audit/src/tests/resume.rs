//! Reopening from the resume point: it agrees exactly with reading the
//! whole log; a resume file that does not hold (damaged, foreign, stale,
//! pointing past the log, lying about the tree or the chain's end) costs
//! only a full walk, never a wrong state; what follows it is still checked
//! and a torn tail after it still trimmed.

use super::*;
use crate::checkpoint::{CHECKPOINTS_FILE, LATEST_FILE};
use crate::findings::TornKind;
use crate::merkle::Frontier;
use crate::recover::{Recovered, recover};
use crate::resume::{self, RESUME_FILE, ResumePoint};
use crate::{AuditError, verify, verify_with};

/// Segments small enough that the log spans several.
const SEGMENT: u64 = 1500;

fn open_small(dir: &Path) -> AuditLog {
    AuditLog::open(dir, signed_options(SEGMENT)).expect("open signed log")
}

/// A signed log written in `sessions` sessions of `per` records each
/// (closed after each, so a resume point at each end).
fn sessions(sessions: u64, per: u64) -> tempfile::TempDir {
    let dir = tempdir();
    for s in 0..sessions {
        let log = open_small(dir.path());
        append_all(&log, s * per, per);
        log.close().expect("close");
    }
    dir
}

/// A copy of the folder `from` (files only), without its writer lock.
fn copy(from: &Path) -> tempfile::TempDir {
    let to = tempdir();
    for dirent in fs::read_dir(from).expect("read dir") {
        let dirent = dirent.expect("dirent");
        let name = dirent.file_name();
        if name != "writer.lock" {
            fs::copy(dirent.path(), to.path().join(name)).expect("copy");
        }
    }
    to
}

fn recovered(dir: &Path) -> Recovered {
    recover(dir, ORIGIN, &[key(1)]).expect("recover")
}

/// The state a reopening rebuilds, both ways, must be the very same.
fn assert_same(a: &Recovered, b: &Recovered) {
    assert_eq!(a.chain.next_seq, b.chain.next_seq);
    assert_eq!(a.chain.last_hash, b.chain.last_hash);
    assert_eq!(a.chain.last_time_ns, b.chain.last_time_ns);
    assert_eq!(a.chain.datasets(), b.chain.datasets());
    assert_eq!(a.frontier, b.frontier);
    assert_eq!(a.frontier.root(), b.frontier.root());
    let last = |r: &Recovered| {
        r.last.as_ref().map(|l| {
            let name = l.path.file_name().map(|n| n.to_owned());
            (name, l.len, l.header_len, l.last_frame)
        })
    };
    assert_eq!(last(a), last(b));
    assert_eq!(a.signed_size, b.signed_size);
    assert_eq!(a.checkpoints_len, b.checkpoints_len);
}

/// Recovers `dir` and a copy of it without its resume file: the first
/// from `resumed_from`, the second by a full walk, to the same state.
fn agrees_with_full_walk(dir: &Path, resumed_from: Option<u64>) -> Recovered {
    let bare = copy(dir);
    resume::remove(bare.path());
    let full = recovered(bare.path());
    assert_eq!(full.resumed_from, None);
    let fast = recovered(dir);
    assert_eq!(fast.resumed_from, resumed_from);
    assert_same(&fast, &full);
    fast
}

/// Rewrites the resume file of `dir` with `change` applied, signed by key 1
/// as the log's own writer would: only the checks against the log catch it.
fn forge(dir: &Path, change: impl FnOnce(&mut ResumePoint)) {
    let mut point = resume::read(dir, ORIGIN, &[key(1)])
        .expect("readable")
        .expect("a resume file");
    change(&mut point);
    resume::write(dir, &point, ORIGIN, &key(1)).expect("write resume");
}

#[test]
fn reopening_resumes_and_agrees_exactly_with_a_full_walk() {
    let dir = sessions(3, 40);
    assert!(list_segments(dir.path()).expect("list").len() > 3);
    // Its checkpoints are read from the one covering it on.
    let point = resume::read(dir.path(), ORIGIN, &[key(1)])
        .expect("ok")
        .expect("some");
    assert_eq!(point.checkpoints_at.index, 3);
    agrees_with_full_walk(dir.path(), Some(120));

    // The same entries at the same times after either reopening give the
    // very same bytes: the same chain, datasets' heads, tree and segment.
    let twin = copy(dir.path());
    resume::remove(twin.path());
    let batch = |from: u64| (from..from + 25).map(|i| (i, entry(i))).collect::<Vec<_>>();
    for (folder, resumed) in [(dir.path(), Some(120)), (twin.path(), None)] {
        let log = open_small(folder);
        assert_eq!(log.resumed_from(), resumed);
        assert_eq!(log.next_seq(), 120);
        log.append_batch(batch(120)).expect("append");
        log.sync().expect("sync");
        assert_eq!(log.next_seq(), 145);
        drop(log);
        verify_with(folder, &trusting_key_1()).expect("verifies");
    }
    for file in [LATEST_FILE, CHECKPOINTS_FILE] {
        assert_eq!(
            fs::read(dir.path().join(file)).expect("read"),
            fs::read(twin.path().join(file)).expect("read"),
            "{file}"
        );
    }
    let segments = |d: &Path| {
        list_segments(d)
            .expect("list")
            .iter()
            .map(|s| fs::read(&s.path).expect("read"))
            .collect::<Vec<_>>()
    };
    assert_eq!(segments(dir.path()), segments(twin.path()));
    // Both wrote their resume point on closing.
    agrees_with_full_walk(dir.path(), Some(145));
    agrees_with_full_walk(twin.path(), Some(145));
    let report = verify(dir.path()).expect("the verifier ignores the resume file");
    assert_eq!(report.records, 145);
}

#[test]
fn a_stale_resume_point_is_used_and_reads_more() {
    let dir = sessions(1, 30);
    let old = fs::read(dir.path().join(RESUME_FILE)).expect("resume");
    let log = open_small(dir.path());
    append_all(&log, 30, 50);
    log.close().expect("close");
    fs::write(dir.path().join(RESUME_FILE), old).expect("put back");
    agrees_with_full_walk(dir.path(), Some(30));
    let log = open_small(dir.path());
    assert_eq!((log.resumed_from(), log.next_seq()), (Some(30), 80));
    append_all(&log, 80, 5);
    drop(log);
    verify_with(dir.path(), &trusting_key_1()).expect("verifies");
}

#[test]
fn a_resume_file_that_does_not_hold_costs_only_a_full_walk() {
    let base = sessions(2, 30);
    type Spoil = fn(&Path);
    let cases: [(&str, Spoil); 11] = [
        ("missing", |d| resume::remove(d)),
        ("a flipped byte", |d| {
            let path = d.join(RESUME_FILE);
            let mut bytes = fs::read(&path).expect("read");
            bytes[30] ^= 0x40;
            fs::write(path, bytes).expect("write");
        }),
        ("cut short", |d| {
            let path = d.join(RESUME_FILE);
            let bytes = fs::read(&path).expect("read");
            fs::write(path, &bytes[..bytes.len() / 2]).expect("write");
        }),
        ("another version", |d| {
            let path = d.join(RESUME_FILE);
            let mut bytes = fs::read(&path).expect("read");
            bytes[8] = 9;
            fs::write(path, bytes).expect("write");
        }),
        ("another origin", |d| {
            let point = resume::read(d, ORIGIN, &[key(1)])
                .expect("ok")
                .expect("some");
            resume::write(d, &point, "elsewhere", &key(1)).expect("write");
        }),
        ("another key", |d| {
            let point = resume::read(d, ORIGIN, &[key(1)])
                .expect("ok")
                .expect("some");
            resume::write(d, &point, ORIGIN, &key(2)).expect("write");
        }),
        ("a wrong frontier", |d| {
            forge(d, |p| {
                let mut peaks = p.frontier.peaks().to_vec();
                peaks[0][0] ^= 1;
                p.frontier = Frontier::from_peaks(p.frontier.size(), peaks).expect("shape");
            })
        }),
        ("a wrong offset", |d| forge(d, |p| p.offset -= 3)),
        ("a wrong checkpoint entry", |d| {
            forge(d, |p| p.checkpoints_at.offset += 7)
        }),
        ("a wrong chain end", |d| {
            forge(d, |p| p.chain.last_hash[0] ^= 1)
        }),
        ("past the log", |d| {
            forge(d, |p| {
                p.chain = Chain::resume(
                    p.chain.next_seq + 10,
                    p.chain.last_hash,
                    p.chain.last_time_ns,
                    p.chain.datasets().clone(),
                );
                for _ in 0..10 {
                    p.frontier.push([1; 32]);
                }
                p.offset += 10_000;
            })
        }),
    ];
    for (what, spoil) in cases {
        let dir = copy(base.path());
        spoil(dir.path());
        agrees_with_full_walk(dir.path(), None);
        let log = open_small(dir.path());
        assert_eq!((log.resumed_from(), log.next_seq()), (None, 60), "{what}");
        append_all(&log, 60, 3);
        drop(log);
        verify_with(dir.path(), &trusting_key_1()).unwrap_or_else(|e| panic!("{what}: {e}"));
        // Closing wrote a good one again.
        agrees_with_full_walk(dir.path(), Some(63));
    }
}

#[test]
fn a_resume_point_no_checkpoint_covers_is_not_used() {
    let dir = sessions(1, 20);
    // The log cut back to 10 records and its checkpoints to match: a
    // resume point at 20 must not bring records 10..20 back to life.
    let point = resume::read(dir.path(), ORIGIN, &[key(1)])
        .expect("ok")
        .expect("some");
    let log = sessions(1, 10);
    resume::write(log.path(), &point, ORIGIN, &key(1)).expect("write");
    let fast = recovered(log.path());
    assert_eq!((fast.resumed_from, fast.chain.next_seq), (None, 10));
}

#[test]
fn a_torn_tail_after_the_resume_point_is_trimmed() {
    let dir = sessions(2, 20);
    let path = last_segment(dir.path());
    let clean = fs::read(&path).expect("read");
    let mut torn = clean.clone();
    torn.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    fs::write(&path, torn).expect("write");
    let log = open_small(dir.path());
    assert_eq!(log.resumed_from(), Some(40));
    let trimmed = log.recovered().expect("a torn tail").clone();
    assert_eq!(
        (trimmed.kind, trimmed.seq, trimmed.bytes),
        (TornKind::IncompleteFrame, 40, 6)
    );
    drop(log);
    assert_eq!(
        fs::read(&path).expect("read"),
        clean,
        "trimmed back exactly"
    );
    verify_with(dir.path(), &trusting_key_1()).expect("verifies");
}

#[test]
fn a_log_cut_inside_the_signed_range_is_still_refused() {
    let dir = sessions(2, 20);
    let path = last_segment(dir.path());
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..bytes.len() - 5]).expect("cut");
    let open = AuditLog::open(dir.path(), signed_options(SEGMENT));
    assert!(matches!(open, Err(AuditError::Damaged(_))), "{open:?}");
}

#[test]
fn tampering_after_the_resume_point_is_caught_by_open() {
    let dir = sessions(1, 20);
    let old = fs::read(dir.path().join(RESUME_FILE)).expect("resume");
    let log = open_small(dir.path());
    append_all(&log, 20, 20);
    log.close().expect("close");
    fs::write(dir.path().join(RESUME_FILE), old).expect("put back");
    // Record 35 names another runway, its frame a fresh CRC.
    rewrite_record(dir.path(), 35, |r| r.entry.runway = "someone-else".into());
    let open = AuditLog::open(dir.path(), signed_options(SEGMENT));
    let Err(AuditError::Damaged(err)) = open else {
        panic!("tampering after the resume point not caught: {open:?}");
    };
    assert_eq!(err.seq, Some(36), "{err}");
}

#[test]
fn a_crash_between_writing_and_renaming_leaves_a_usable_resume_point() {
    let dir = sessions(2, 20);
    // A later resume point half written to its temp file, never renamed.
    let bytes = fs::read(dir.path().join(RESUME_FILE)).expect("read");
    fs::write(dir.path().join("resume.tmp"), &bytes[..bytes.len() / 3]).expect("write");
    agrees_with_full_walk(dir.path(), Some(40));
    // Or written whole but never renamed over a missing one.
    let bare = copy(dir.path());
    fs::rename(
        bare.path().join(RESUME_FILE),
        bare.path().join("resume.tmp"),
    )
    .expect("mv");
    agrees_with_full_walk(bare.path(), None);
    for d in [dir.path(), bare.path()] {
        let log = open_small(d);
        append_all(&log, 40, 2);
        drop(log);
        verify_with(d, &trusting_key_1()).expect("verifies");
        agrees_with_full_walk(d, Some(42));
    }
}

#[test]
fn an_unsigned_log_has_no_resume_point() {
    let dir = log_with(10);
    assert!(!dir.path().join(RESUME_FILE).exists());
    let log = open(dir.path());
    assert_eq!((log.resumed_from(), log.next_seq()), (None, 10));
}

#[test]
fn checkpoints_before_the_one_covering_the_resume_point_are_left_to_verify() {
    let dir = sessions(3, 20);
    // The first entry's root, one base64 letter changed.
    let path = dir.path().join(CHECKPOINTS_FILE);
    let text = fs::read_to_string(&path).expect("read");
    let root_line = text.lines().nth(2).expect("root line").to_owned();
    let mut changed = root_line.clone().into_bytes();
    changed[0] = if changed[0] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).expect("ascii");
    fs::write(&path, text.replacen(&root_line, &changed, 1)).expect("write");

    let log = open_small(dir.path());
    assert_eq!((log.resumed_from(), log.next_seq()), (Some(60), 60));
    drop(log);
    assert!(
        verify_with(dir.path(), &trusting_key_1()).is_err(),
        "verify reads them all"
    );
    resume::remove(dir.path());
    let open = AuditLog::open(dir.path(), signed_options(SEGMENT));
    assert!(matches!(open, Err(AuditError::Damaged(_))), "{open:?}");
}
