//! The audit trail's throughput, printed as figures from one run:
//!
//! - durable appends per second with group commit (200-byte records), from
//!   producers appending in bursts and waiting for their last record, as
//!   host calls do; the p99 latency of a lone durable append and of `sync`
//!   (which waits for a signed checkpoint) under that load;
//! - verify records per second on one thread and on two (the whole
//!   verifier: frames, CRCs, strict decoding, both chains, the Merkle tree,
//!   signatures);
//! - raw SHA-256 over the same bytes in the same process, per record and as
//!   one stream, and verify's throughput as a ratio of both;
//! - the bare disk in the same process: the same bytes written in batches
//!   of the size group commit reached, one write and one `fdatasync` each,
//!   with no linking, encoding or hashing, and durable appends as a ratio
//!   of it;
//! - reopening a log of 1,000,000 records from its resume point with a
//!   tail of 1,000 records after it, against reopening it by a full walk
//!   (its resume file removed), as a ratio;
//! - issue 21's targets, met or not: durable appends ≥ 1,000,000 records/s
//!   (on a quiet machine: the load average is printed before and after),
//!   verify on two threads ≥ 1.8 × one.
//!
//! `cargo bench -p runway-audit` (release). `AUDIT_BENCH_RECORDS` sets the
//! number of records (default 2,000,000). The log goes to a temporary
//! folder on the disk of `TMPDIR` (`AUDIT_BENCH_KEEP=1` keeps it);
//! `AUDIT_BENCH_VERIFY=DIR` only verifies the log in DIR, for profiling;
//! `AUDIT_BENCH_REOPEN=1` only runs the reopening figures.

use std::env;
use std::fs;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use runway_audit::frame::{FRAME_HEAD_LEN, FrameHead, SegmentHeader};
use runway_audit::segment::list_segments;
use runway_audit::{
    AuditLog, AuditOptions, Call, Entry, Event, Outcome, PrivateKey, Trust, VerifyOptions, sha256,
};
use sha2::{Digest, Sha256};

const PRODUCERS: u64 = 2;
const BURST: u64 = 1000;

fn main() {
    let total: u64 = env::var("AUDIT_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    let key = PrivateKey::from_seed("bench", &[7; 32]).expect("key");
    if let Ok(dir) = env::var("AUDIT_BENCH_VERIFY") {
        verify(std::path::Path::new(&dir), &key);
        return;
    }
    println!("  load average before    {}", load_average());
    if env::var_os("AUDIT_BENCH_REOPEN").is_some() {
        reopen(&key);
        println!("  load average after     {}", load_average());
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let options = AuditOptions::new("runway.bench/audit").signed_by(key.clone());

    let log = AuditLog::open(dir.path(), options).expect("open");
    // Warm up: first segment created, code paths touched.
    for i in 0..1000 {
        log.append(entry(i)).expect("append");
    }
    log.sync().expect("sync");
    let before = log.stats();
    let writer_before = thread_ticks("runway-audit");

    let per_producer = total / PRODUCERS;
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (append_latencies, sync_latencies) = thread::scope(|scope| {
        for p in 0..PRODUCERS {
            let log = log.clone();
            scope.spawn(move || {
                let mut i = 0;
                while i < per_producer {
                    let mut last = None;
                    for _ in 0..BURST.min(per_producer - i) {
                        last = Some(log.append(entry(p * per_producer + i)).expect("append"));
                        i += 1;
                    }
                    if let Some(ticket) = last {
                        log.wait_durable(ticket).expect("durable");
                    }
                }
            });
        }
        // A host call that must be durable, and a run's end that waits for
        // its checkpoint, timed while the producers load the writer.
        let probe = {
            let log = log.clone();
            let done = done.clone();
            scope.spawn(move || {
                let mut appends = Vec::new();
                let mut syncs = Vec::new();
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    log.append_durable(entry(u64::MAX - n)).expect("append");
                    appends.push(t.elapsed());
                    if n.is_multiple_of(8) {
                        let t = Instant::now();
                        log.sync().expect("sync");
                        syncs.push(t.elapsed());
                    }
                    n += 1;
                }
                (appends, syncs)
            })
        };
        // The producers are the scope's other threads: wait for the records.
        while log.stats().durable - before.durable < PRODUCERS * per_producer {
            thread::sleep(Duration::from_millis(1));
        }
        done.store(true, Ordering::Relaxed);
        probe.join().expect("probe")
    });
    let elapsed = started.elapsed();
    let writer_ticks = thread_ticks("runway-audit") - writer_before;
    log.sync().expect("sync");
    let stats = log.stats();
    drop(log);

    let appended = stats.durable - before.durable;
    let batches = stats.batches - before.batches;
    let bytes = stats.bytes_written - before.bytes_written;
    println!(
        "audit bench: {appended} records, {} producers in bursts of {BURST}",
        PRODUCERS
    );
    println!(
        "  record size            {:.0} bytes framed ({} bytes encoded)",
        bytes as f64 / appended as f64,
        encoded_len()
    );
    println!(
        "  durable appends        {:.0} records/s  ({:.2} s, {batches} group commits, {:.0} records/commit, {} checkpoints)",
        appended as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        appended as f64 / batches.max(1) as f64,
        stats.checkpoints - before.checkpoints
    );
    // CPU time says what the writer thread costs even when the machine is
    // busy and the wall-clock rate is not the writer's.
    println!(
        "  writer thread CPU      {:.2} s, {:.0} ns/record (at most {:.0} records/s with a core of its own)",
        writer_ticks as f64 / 100.0,
        writer_ticks as f64 * 1e7 / appended as f64,
        appended as f64 * 100.0 / writer_ticks.max(1) as f64
    );
    println!(
        "  durable append latency p50 {:.2} ms, p99 {:.2} ms  ({} samples)",
        percentile(&append_latencies, 50.0),
        percentile(&append_latencies, 99.0),
        append_latencies.len()
    );
    println!(
        "  sync (signed checkpoint) latency p50 {:.2} ms, p99 {:.2} ms  ({} samples)",
        percentile(&sync_latencies, 50.0),
        percentile(&sync_latencies, 99.0),
        sync_latencies.len()
    );

    let append_rate = appended as f64 / elapsed.as_secs_f64();
    let per_commit = (appended / batches.max(1)).max(1);
    let bare_rate = bare_disk(
        dir.path(),
        (bytes / appended.max(1)) as usize,
        per_commit,
        total,
    );
    println!(
        "  bare write+fdatasync   {bare_rate:.0} records/s  (batches of {per_commit}); durable appends / bare {:.2}",
        append_rate / bare_rate
    );

    let verify_ratio = verify(dir.path(), &key);
    breakdown();
    reopen(&key);
    println!("  load average after     {}", load_average());
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  target durable appends >= 1,000,000 records/s: {append_rate:.0} ({:.2} of it) {}",
        append_rate / 1e6,
        met(append_rate >= 1e6)
    );
    println!(
        "  target verify 2 threads / 1 >= 1.80: {verify_ratio:.2} {}",
        met(verify_ratio >= 1.8)
    );
    if env::var_os("AUDIT_BENCH_KEEP").is_some() {
        println!("  kept the log in {}", dir.keep().display());
    }
}

/// Records of the reopening figures, and how many follow the resume point.
const REOPEN_RECORDS: u64 = 1_000_000;
const REOPEN_TAIL: u64 = 1_000;

/// Opens a signed log of [`REOPEN_RECORDS`] records from its resume point,
/// [`REOPEN_TAIL`] records behind the end, and by a full walk; prints both
/// and their ratio.
fn reopen(key: &PrivateKey) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = AuditOptions::new("runway.bench/reopen").signed_by(key.clone());
    let head = REOPEN_RECORDS - REOPEN_TAIL;
    let fill = |log: &AuditLog, from: u64, n: u64| {
        let mut i = from;
        while i < from + n {
            let batch: Vec<_> = (i..(i + 10_000).min(from + n))
                .map(|j| (runway_audit::now_ns(), entry(j)))
                .collect();
            i += batch.len() as u64;
            log.append_batch(batch).expect("append");
        }
        log.sync().expect("sync");
    };
    let log = AuditLog::open(dir.path(), options.clone()).expect("open");
    fill(&log, 0, head);
    drop(log);
    let resume = dir.path().join("resume");
    let early = fs::read(&resume).expect("a resume point after closing");
    let log = AuditLog::open(dir.path(), options.clone()).expect("open");
    fill(&log, head, REOPEN_TAIL);
    drop(log);
    let time_open = || {
        let t = Instant::now();
        let log = AuditLog::open(dir.path(), options.clone()).expect("reopen");
        let took = t.elapsed();
        let state = (log.resumed_from(), log.next_seq(), log.stats().checkpointed);
        drop(log);
        (took, state)
    };
    let mut fast = Vec::new();
    for _ in 0..3 {
        fs::write(&resume, &early).expect("put the resume point back");
        let (took, state) = time_open();
        assert_eq!(state, (Some(head), REOPEN_RECORDS, REOPEN_RECORDS));
        fast.push(took);
    }
    let mut full = Vec::new();
    for _ in 0..2 {
        fs::remove_file(&resume).expect("remove the resume point");
        let (took, state) = time_open();
        assert_eq!(state, (None, REOPEN_RECORDS, REOPEN_RECORDS));
        full.push(took);
    }
    let best = |d: &[Duration]| d.iter().min().copied().unwrap_or_default().as_secs_f64();
    let (fast, full) = (best(&fast), best(&full));
    println!(
        "  reopen {REOPEN_RECORDS} records: from the resume point ({REOPEN_TAIL} after it) {:.1} ms, full walk {:.1} ms; full / resumed {:.0}",
        fast * 1e3,
        full * 1e3,
        full / fast
    );
}

/// CPU time (user + system, in clock ticks) of `/proc/<which>/stat`:
/// `self` for the process, `thread-self` for the calling thread.
fn cpu_ticks(which: &str) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{which}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// CPU time (clock ticks) of this process's threads named `name`.
fn thread_ticks(name: &str) -> u64 {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| fs::read_to_string(t.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
        .map(|t| cpu_ticks(&format!("self/task/{}", t.file_name().to_string_lossy())))
        .sum()
}

/// The machine's load average (1, 5, 15 minutes), as /proc says it.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// Records per second the disk makes durable with nothing else to do:
/// `records` (at most 500,000) frames of `frame` bytes, `per_batch` to a
/// write and an `fdatasync`, to a new file in `dir`.
fn bare_disk(dir: &std::path::Path, frame: usize, per_batch: u64, records: u64) -> f64 {
    use std::io::Write;
    let records = records.min(500_000);
    let path = dir.join("bare-disk");
    let mut file = fs::File::create(&path).expect("create");
    let batch: Vec<u8> = (0..frame * per_batch as usize).map(|i| i as u8).collect();
    let t = Instant::now();
    let mut written = 0;
    while written < records {
        file.write_all(&batch).expect("write");
        file.sync_data().expect("fdatasync");
        written += per_batch;
    }
    let rate = written as f64 / t.elapsed().as_secs_f64();
    drop(file);
    fs::remove_file(&path).expect("remove");
    rate
}

/// Verifies the log in `dir` on one thread and on two, and hashes its
/// records; returns the two threads' rate over one's.
fn verify(dir: &std::path::Path, key: &PrivateKey) -> f64 {
    let mut rates = Vec::new();
    let mut cpu = Vec::new();
    // Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux).
    let ticks_per_s = 100.0;
    for threads in [1, 2] {
        let options = VerifyOptions {
            threads: NonZeroUsize::new(threads),
            ..VerifyOptions::from(Trust::single(key.public()))
        };
        let (walker, process) = (cpu_ticks("thread-self"), cpu_ticks("self"));
        let t = Instant::now();
        let report = runway_audit::verify_with(dir, &options).expect("verify");
        let verify_time = t.elapsed();
        let walker = cpu_ticks("thread-self") - walker;
        let process = cpu_ticks("self") - process;
        let verify_rate = report.records as f64 / verify_time.as_secs_f64();
        println!(
            "  verify, {threads} thread(s)     {verify_rate:.0} records/s  ({} records, {} checkpoints, {:.2} s)",
            report.records,
            report.checkpoints,
            verify_time.as_secs_f64()
        );
        // On a busy machine the threads wait for a core: CPU time says
        // what the work itself allows. The walking thread's own share
        // bounds the speed-up (Amdahl).
        println!(
            "    CPU {:.2} s, the walking thread's {:.2} s ({:.0}%)",
            process as f64 / ticks_per_s,
            walker as f64 / ticks_per_s,
            100.0 * walker as f64 / process.max(1) as f64
        );
        cpu.push((process, walker));
        rates.push((threads, verify_rate, verify_time));
    }
    let ratio = rates[1].1 / rates[0].1;
    println!("  verify 2 threads / 1    {ratio:.2}");
    let (one, (two, walker)) = (cpu[0].0, cpu[1]);
    println!(
        "  verify 2 threads / 1 by CPU time, on two free cores at most {:.2}",
        one as f64 / (walker.max(two / 2).max(1)) as f64
    );

    // Raw SHA-256 of the same bytes, from memory.
    let payloads = payloads(dir);
    let total_bytes: usize = payloads.iter().map(Vec::len).sum();
    let t = Instant::now();
    for payload in &payloads {
        black_box(sha256(black_box(payload)));
    }
    let per_record = t.elapsed();
    let stream: Vec<u8> = payloads.concat();
    let t = Instant::now();
    black_box(Sha256::digest(black_box(&stream)));
    let streamed = t.elapsed();
    let sha_rate = payloads.len() as f64 / per_record.as_secs_f64();
    println!(
        "  raw SHA-256 per record {sha_rate:.0} records/s ({:.0} MB/s); as one stream {:.0} MB/s",
        total_bytes as f64 / per_record.as_secs_f64() / 1e6,
        total_bytes as f64 / streamed.as_secs_f64() / 1e6
    );
    for (threads, verify_rate, verify_time) in rates {
        println!(
            "  verify / raw SHA-256, {threads} thread(s)  {:.2} (per record), {:.2} (one stream)",
            verify_rate / sha_rate,
            verify_time_ratio(verify_time, streamed)
        );
    }
    ratio
}

fn verify_time_ratio(verify: Duration, sha: Duration) -> f64 {
    sha.as_secs_f64() / verify.as_secs_f64()
}

/// A host call record of about 200 bytes encoded.
fn entry(i: u64) -> Entry {
    Entry {
        runway: format!("imp-{}", i % 16),
        agent: "importer".into(),
        plugin: Some(sha256(b"component")),
        dataset: Some(format!("ds{}", i % 8)),
        event: Event::Call {
            call: Call::Write,
            key: Some(format!("a/{:06}", i % 1_000_000)),
            token: Some(i),
            args: sha256(i.to_le_bytes()),
            result: sha256(b"ok"),
            outcome: Outcome::Ok,
        },
    }
}

fn encoded_len() -> usize {
    let record = runway_audit::Record {
        seq: 1_000_000,
        time_ns: 1_710_550_800_123_000_000,
        prev: [1; 32],
        prev_dataset: Some([2; 32]),
        entry: entry(1_000_000),
    };
    record.encode().expect("encode").len()
}

/// Every record's bytes, from the segment files.
fn payloads(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for segment in list_segments(dir).expect("list") {
        let bytes = fs::read(&segment.path).expect("read");
        let header = SegmentHeader::read_from(&mut bytes.as_slice()).expect("header");
        let mut at = header.encoded_len();
        while at + FRAME_HEAD_LEN <= bytes.len() {
            let mut head = [0u8; FRAME_HEAD_LEN];
            head.copy_from_slice(&bytes[at..at + FRAME_HEAD_LEN]);
            let len = FrameHead::parse(head).len as usize;
            out.push(bytes[at + FRAME_HEAD_LEN..at + FRAME_HEAD_LEN + len].to_vec());
            at += FRAME_HEAD_LEN + len;
        }
    }
    out
}

/// The `p`th percentile in milliseconds.
fn percentile(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank].as_secs_f64() * 1e3
}

/// Where one record's verification time goes, step by step, on records
/// like the bench's.
fn breakdown() {
    let n = 200_000u64;
    let records: Vec<runway_audit::Record> = (0..n)
        .map(|i| runway_audit::Record {
            seq: 1_000_000 + i,
            time_ns: 1_710_550_800_123_000_000 + i,
            prev: [1; 32],
            prev_dataset: Some([2; 32]),
            entry: entry(i),
        })
        .collect();
    let bytes: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.encode().expect("encode"))
        .collect();
    let per_record = |t: Instant| t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for b in &bytes {
        black_box(runway_audit::Record::decode(black_box(b)).expect("decode"));
    }
    let strict = per_record(t);
    let t = Instant::now();
    for b in &bytes {
        black_box(postcard::from_bytes::<runway_audit::Record>(black_box(b)).expect("decode"));
    }
    let lenient = per_record(t);
    let t = Instant::now();
    for b in &bytes {
        black_box(runway_audit::leaf_hash(black_box(b)));
    }
    let leaf = per_record(t);
    let mut frontier = runway_audit::Frontier::new();
    let t = Instant::now();
    for i in 0..n {
        frontier.push([i as u8; 32]);
    }
    black_box(frontier.root());
    let tree = per_record(t);
    let t = Instant::now();
    for b in &bytes {
        black_box(crc32c::crc32c(black_box(b)));
    }
    let crc = per_record(t);
    println!(
        "  per record: strict decode {strict:.0} ns (one pass; postcard's lenient decode alone {lenient:.0}), leaf hash {leaf:.0} ns, tree {tree:.0} ns, CRC32C {crc:.0} ns"
    );
}
