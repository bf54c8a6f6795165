//! `audit-stress DIR`: opens the signed audit log in DIR (recovering what a
//! previous, killed run left) and appends to it from several threads as
//! fast as it can, until killed. The crash test kills it with SIGKILL at
//! many points and checks what it was told against what is on disk.
//!
//! Lines on stdout, each written only after what it reports happened:
//!
//! ```text
//! ready <records in the log after recovery> <public key>
//! ack <seq> <key>        the record with that key is durable at that seq
//! synced <size>          a signed checkpoint covers the first <size> records
//! ```
//!
//! It stops by itself after [`LIFETIME`], should nobody kill it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use runway_audit::{AuditLog, AuditOptions, Call, Entry, Event, Outcome, PrivateKey, sha256};

const THREADS: u64 = 3;
/// Small segments, so that kills land around rotations too.
const SEGMENT_BYTES: u64 = 64 << 10;
/// Frequent checkpoints, so that kills land inside checkpoint writes too.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(2);
const LIFETIME: Duration = Duration::from_secs(30);

/// The key the stress log is signed with; its public half goes out on the
/// `ready` line for the crash test to trust.
fn key() -> PrivateKey {
    PrivateKey::from_seed("audit-stress", &[5; 32]).expect("key")
}

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: audit-stress DIR");
        std::process::exit(2);
    };
    let options = AuditOptions {
        segment_bytes: SEGMENT_BYTES,
        checkpoint_interval: CHECKPOINT_INTERVAL,
        ..AuditOptions::new("runway.test/stress").signed_by(key())
    };
    let log = match AuditLog::open(&dir, options) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("audit-stress: {e}");
            std::process::exit(1);
        }
    };
    let stdout = Mutex::new(std::io::stdout());
    let ready = format!("ready {} {}\n", log.stats().next_seq, key().public());
    say(&stdout, &ready);
    let started = Instant::now();
    thread::scope(|scope| {
        for thread in 0..THREADS {
            let (log, stdout) = (&log, &stdout);
            scope.spawn(move || append_until_killed(log, stdout, thread, started));
        }
    });
}

/// Bursts of appends, each waited for as a host call would, then acked.
fn append_until_killed(
    log: &AuditLog,
    stdout: &Mutex<std::io::Stdout>,
    thread: u64,
    started: Instant,
) {
    let mut i = 0u64;
    let mut burst = 0u64;
    while started.elapsed() < LIFETIME {
        // Bursts of 1 to 37 records, varied so batches vary.
        let size = 1 + (thread * 7 + burst * 13) % 37;
        let mut tickets = Vec::new();
        for _ in 0..size {
            let key = format!("{thread}/{i}");
            let ticket = log.append(entry(thread, &key)).expect("append");
            tickets.push((ticket, key));
            i += 1;
        }
        let mut lines = String::new();
        for (ticket, key) in tickets {
            let seq = log.wait_durable(ticket).expect("durable");
            lines.push_str(&format!("ack {seq} {key}\n"));
        }
        say(stdout, &lines);
        if burst % 5 == thread {
            let size = log.stats().next_seq;
            log.sync().expect("sync");
            say(stdout, &format!("synced {size}\n"));
        }
        burst += 1;
    }
}

fn entry(thread: u64, key: &str) -> Entry {
    Entry {
        runway: format!("stress-{thread}"),
        agent: "audit-stress".into(),
        plugin: Some(sha256(b"audit-stress")),
        dataset: Some(format!("stress_{}", key.len() % 3)),
        event: Event::Call {
            call: Call::Write,
            key: Some(key.to_owned()),
            token: Some(thread),
            args: sha256(key.as_bytes()),
            result: sha256(b"ok"),
            outcome: Outcome::Ok,
        },
    }
}

fn say(stdout: &Mutex<std::io::Stdout>, text: &str) {
    let mut out = stdout.lock().unwrap_or_else(|e| e.into_inner());
    // The test reading these may have stopped listening; that is its business.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
