//! Crash test: a writer process (`audit-stress`) appending from several
//! threads is killed with SIGKILL at many points — while opening and
//! recovering, between and inside batches, rotations and checkpoint writes —
//! and restarted on the same folder, again and again. After every kill:
//!
//! - the folder verifies, checkpoint signatures included (a torn tail or a
//!   torn checkpoint entry is reported, not an error);
//! - every record the writer acknowledged as durable is there, at the
//!   sequence number it was given, with the contents it was given;
//! - every checkpoint covers only records that are on disk (the verifier
//!   refuses a checkpoint larger than the log), and every `sync` that
//!   returned is covered by a checkpoint.
//!
//! A kill leaves the kernel's page cache alone, so it cannot lose what was
//! written but not synced; that `fdatasync` comes before signing is held by
//! the writer's ordering and by the unit test that fails a sync.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runway_audit::{PublicKey, Record, Trust, VerifyErrorKind, VerifyOptions};

/// When to kill the writer in each round.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// Right after it was spawned, likely while it recovers.
    Spawned,
    /// After it said it is ready.
    Ready,
    /// After this many acknowledgements.
    Acks(usize),
    /// This long after it said it is ready.
    After(Duration),
}

/// A varied, fixed schedule of 40 kill points.
fn schedule() -> Vec<KillAt> {
    (0..40u64)
        .map(|r| match r % 5 {
            0 => KillAt::Acks(1 + (r * 37) as usize % 900),
            1 => KillAt::After(Duration::from_millis(1 + r % 23)),
            2 => KillAt::Acks(2 + 3 * r as usize),
            3 if r % 10 == 3 => KillAt::Spawned,
            3 => KillAt::Ready,
            _ => KillAt::Acks(100 + 29 * r as usize),
        })
        .collect()
}

/// What the writers have said, over all rounds.
#[derive(Default)]
struct Told {
    /// seq → key, for every acknowledged record.
    acked: BTreeMap<u64, String>,
    /// The largest size a returned `sync` covered.
    synced: u64,
    public_key: Option<PublicKey>,
}

impl Told {
    fn hear(&mut self, line: &str) {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("ack"), Some(seq), Some(key)) => {
                let seq = seq.parse().expect("seq");
                let before = self.acked.insert(seq, key.to_owned());
                assert!(
                    before.is_none_or(|k| k == key),
                    "seq {seq} acknowledged twice with different records"
                );
            }
            (Some("synced"), Some(size), None) => {
                self.synced = self.synced.max(size.parse().expect("size"));
            }
            (Some("ready"), Some(_), Some(key)) => {
                self.public_key = Some(PublicKey::parse(key).expect("public key"));
            }
            _ => panic!("unexpected line from audit-stress: {line:?}"),
        }
    }
}

/// Spawns the writer, kills it at `at`, and hears out everything it said.
fn round(dir: &Path, at: KillAt, told: &mut Told) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_audit-stress"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn audit-stress");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    if !matches!(at, KillAt::Spawned) {
        let mut acks = 0;
        let mut ready_at = None;
        loop {
            let line = lines
                .next()
                .expect("audit-stress ended early")
                .expect("read line");
            told.hear(&line);
            if line.starts_with("ready") {
                ready_at = Some(Instant::now());
            }
            acks += usize::from(line.starts_with("ack"));
            let due = match at {
                KillAt::Spawned => true,
                KillAt::Ready => ready_at.is_some(),
                KillAt::Acks(n) => acks >= n,
                KillAt::After(delay) => ready_at.is_some_and(|t| t.elapsed() >= delay),
            };
            if due {
                break;
            }
        }
    }
    kill(&mut child);
    // What it said before dying was said after the fact it reports.
    for line in lines {
        told.hear(&line.expect("read line"));
    }
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Everything the auditor can check after a kill.
fn check(dir: &Path, told: &Told, round: usize) {
    let Some(public_key) = &told.public_key else {
        return; // Killed before the first writer ever got ready.
    };
    let options = VerifyOptions::from(Trust::single(public_key.clone()));
    let report = match runway_audit::verify_with(dir, &options) {
        Ok(report) => report,
        // Killed before its first checkpoint, so no sync ever returned: with
        // a key that is not a verified log, but the log itself is whole.
        Err(e) if matches!(e.kind, VerifyErrorKind::NoCheckpoint { .. }) && told.synced == 0 => {
            runway_audit::verify(dir)
                .unwrap_or_else(|e| panic!("round {round}: the log does not verify: {e}"))
        }
        Err(e) => panic!("round {round}: the log does not verify: {e}"),
    };
    assert!(
        report.signed_size >= told.synced,
        "round {round}: sync returned for {} records, checkpoints cover {}",
        told.synced,
        report.signed_size
    );
    let records: Vec<Record> = runway_audit::read_records(dir).expect("read");
    assert_eq!(records.len() as u64, report.records);
    for (&seq, key) in &told.acked {
        let record = records
            .get(seq as usize)
            .unwrap_or_else(|| panic!("round {round}: acknowledged record {seq} is missing"));
        let found = match &record.entry.event {
            runway_audit::Event::Call { key, .. } => key.as_deref(),
            _ => None,
        };
        assert_eq!(
            found,
            Some(key.as_str()),
            "round {round}: record {seq} is not the one acknowledged"
        );
    }
}

#[test]
fn killed_writers_lose_nothing_acknowledged_and_sign_nothing_undurable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut told = Told::default();
    let started = Instant::now();
    for (n, at) in schedule().into_iter().enumerate() {
        round(dir.path(), at, &mut told);
        check(dir.path(), &told, n);
    }
    assert!(
        told.acked.len() > 2000,
        "only {} records acknowledged: the kills came too early to test much",
        told.acked.len()
    );
    assert!(told.synced > 0, "no sync returned in any round");
    eprintln!(
        "crash test: {} acknowledged records over {} kills in {:.1} s",
        told.acked.len(),
        schedule().len(),
        started.elapsed().as_secs_f64()
    );
}
