//! A real `runway serve` under abuse from whoever can reach its port, on
//! loopback: a flood of requests with a junk token (answered 429 with
//! `Retry-After` past the peer's bucket, audited one by one only up to it,
//! then as one summary record) while a real client files a runway and
//! sees it land; connections that never finish their headers, closed after
//! the header timeout; and an event stream resumed across far more records
//! than a backlog holds, nothing skipped and no id sent twice.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runway_host::limits::{HEADER_TIMEOUT, REFUSAL_BURST, REFUSAL_REFILL};

use crate::server::{Server, Sse, folders, follow};

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The reasons of the REJECTED records on `trail` that start with `prefix`.
fn rejections(trail: &[serde_json::Value], prefix: &str) -> Vec<String> {
    trail
        .iter()
        .filter(|r| r["event"] == "rejected")
        .filter_map(|r| r["reason"].as_str())
        .filter(|r| r.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// The count a summary record gives for `peer`.
fn summed(reason: &str, peer: &str) -> u64 {
    let (head, _) = reason
        .split_once(&format!(" from {peer} between "))
        .unwrap_or_else(|| panic!("not a summary of {peer}: {reason}"));
    head.rsplit(' ').next().unwrap().parse().unwrap()
}

const SUMMARY: &str = "API requests refused and not audited one by one: ";
const REFUSED: &str = "API request refused: ";

#[test]
fn flood_of_junk_tokens_is_limited_and_summed_while_a_real_client_is_served() {
    let dir = folders();
    let server = Server::start(dir.path());
    let audit = dir.path().join("runway-audit");
    let before = bytes_under(&audit);
    let url = server.url.clone();

    // Four clients with a junk token, 5,000 requests each at most, for a
    // minute at most, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (unauthorized, limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let retry_after = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let flood: Vec<_> = (0..4)
        .map(|i| {
            let (stop, unauthorized, limited) =
                (stop.clone(), unauthorized.clone(), limited.clone());
            let (url, retry_after) = (url.clone(), retry_after.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let path = if i % 2 == 0 {
                    "/api/runways"
                } else {
                    "/api/locks"
                };
                for _ in 0..5_000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(60) {
                        break;
                    }
                    let answer = agent
                        .get(&format!("{url}{path}"))
                        .header("Authorization", "Bearer junk")
                        .call()
                        .unwrap();
                    match answer.status().as_u16() {
                        401 => unauthorized.fetch_add(1, Ordering::Relaxed),
                        429 => {
                            let mut shown = retry_after.lock().unwrap();
                            if shown.is_none() {
                                *shown = answer
                                    .headers()
                                    .get("retry-after")
                                    .map(|v| v.to_str().unwrap().to_string());
                            }
                            limited.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("a junk token answered {other}"),
                    };
                }
            })
        })
        .collect();
    runway_tests::eventually("the flood limited", || {
        limited.load(Ordering::Relaxed) > 100
    });

    // Meanwhile a real client is answered, and its runway files and lands.
    let ids = server.file("[[runway]]\nid = \"real\"\nagent = \"probe\"\naction = \"ok\"\n");
    let waited = server.client(&["wait", &ids[0], "--timeout-secs", "120"]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    assert!(waited.stdout.contains("SUCCEEDED"), "{}", waited.stdout);
    let listed = server.json(&["list"]);
    assert_eq!(listed["runways"][0]["id"], "real");
    let during = flood.iter().any(|t| !t.is_finished());
    // The flood goes on to 4,000 requests at least (20,000 at most).
    let sent = || unauthorized.load(Ordering::Relaxed) + limited.load(Ordering::Relaxed);
    runway_tests::eventually("4,000 junk requests", || {
        sent() >= 4_000 || flood.iter().all(|t| t.is_finished())
    });
    stop.store(true, Ordering::Relaxed);
    for thread in flood {
        thread.join().unwrap();
    }
    let elapsed = started.elapsed();
    assert!(during, "the runway landed while the flood went on");

    let (unauthorized, limited) = (
        unauthorized.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
    );
    let retry_after: u64 = retry_after
        .lock()
        .unwrap()
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Past the bucket every junk request was answered 429: at most the
    // burst and one a refill were let through as 401.
    let allowed = u64::from(REFUSAL_BURST) + elapsed.as_secs() / REFUSAL_REFILL.as_secs() + 1;
    assert!(
        unauthorized <= allowed,
        "{unauthorized} answered 401 in {elapsed:?}"
    );

    // On the trail at shutdown: each 401 one by one, the 429s as a summary
    // of the one peer, with its routes, whose counts add up.
    assert_eq!(server.stop(), Some(0));
    let trail = runway_audit::read_records(&audit)
        .unwrap()
        .iter()
        .map(runway_audit::record_json)
        .collect::<Vec<_>>();
    let one_by_one = rejections(&trail, REFUSED);
    assert_eq!(one_by_one.len() as u64, unauthorized);
    let summaries = rejections(&trail, SUMMARY);
    assert!(!summaries.is_empty());
    let total: u64 = summaries.iter().map(|r| summed(r, "127.0.0.1")).sum();
    assert_eq!(total, limited, "{summaries:?}");
    let last = summaries.last().unwrap();
    assert!(
        last.contains("GET /api/runways ×") && last.contains("GET /api/locks ×"),
        "{last}"
    );
    assert!(last.contains("Z and 20"), "first and last time: {last}");

    // The bound: the audit folder grew by less than 256 KiB for all of it
    // (20,000 refusals wrote 2.8 MB before they were limited).
    let grown = bytes_under(&audit) - before;
    println!(
        "{} junk requests in {elapsed:?}: {unauthorized} answered 401, {limited} 429; audit grew {grown} bytes",
        unauthorized + limited
    );
    assert!(grown < 256 << 10, "the audit folder grew {grown} bytes");
}

#[test]
fn flood_connections_that_never_finish_their_headers_are_closed() {
    let dir = folders();
    let server = Server::start(dir.path());
    let addr = server.url.trim_start_matches("http://").to_string();
    // 200 half-sent requests and 100 connections that say nothing.
    let mut open: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            if i < 200 {
                write!(
                    stream,
                    "GET /api/runways HTTP/1.1\r\nHost: {addr}\r\nX-Slow: "
                )
                .unwrap();
            }
            stream
        })
        .collect();
    // A real client is answered meanwhile.
    assert_eq!(server.json(&["list"])["runways"], serde_json::json!([]));
    // Each is closed by the server after the header timeout: reading ends
    // (bounded well past it, so a slow machine does not fail it).
    let bound = HEADER_TIMEOUT * 6;
    let started = Instant::now();
    for (i, stream) in open.iter_mut().enumerate() {
        let left = bound
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).unwrap();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "connection {i} still open after {:?}: {e}",
                started.elapsed()
            ),
        }
    }
    // And the server still serves.
    assert_eq!(server.json(&["list"])["runways"], serde_json::json!([]));
}

#[test]
fn flood_an_event_stream_resumed_across_more_than_a_backlog_skips_nothing() {
    let dir = folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    let vic = server.token("vic", &["viewer"]);
    let first = server.file("[[runway]]\nid = \"before\"\nagent = \"probe\"\naction = \"ok\"\n");
    assert_eq!(server.client(&["wait", &first[0]]).code, 0);
    let last = server.trail().last().unwrap()["seq"].as_u64().unwrap();
    // 12,000 host calls after it: more than a backlog (5,000) and more than
    // the server keeps in memory (10,000).
    let ids = server.file(
        "[[runway]]\nid = \"bulk\"\nagent = \"import-applications\"\n\
         datasets = { test_resume = \"exclusive\" }\ninput = { count = 12000, seed = 5 }\n",
    );
    let waited = server.client(&["wait", &ids[0], "--timeout-secs", "300"]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);

    // Resumed after `last`: every record from there on, in order.
    // Asked after each event: the last one is enough to look at.
    let landed = |e: &Sse| e.data["runway"] == "bulk" && e.data["event"] == "succeeded";
    let got = follow(&server.url, "/api/events", &admin, Some(last), 240, |e| {
        e.last().is_some_and(landed)
    });
    assert!(
        got.iter().any(landed),
        "{} events, last {:?}",
        got.len(),
        got.last()
    );
    assert!(got.iter().all(|e| e.event != "missed"), "nothing is missed");
    let seen: Vec<u64> = got.iter().map(|e| e.id.expect("an id")).collect();
    assert_eq!(seen.first(), Some(&(last + 1)));
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "ids run on from {} without a gap or a repeat",
        last + 1
    );
    assert!(seen.len() > 12_000, "{}", seen.len());

    // A viewer resuming with since= gets the transitions only, the filing
    // first, each id once.
    let moves = follow(
        &server.url,
        &format!("/api/events?runway=bulk&since={}", last + 1),
        &vic,
        None,
        120,
        |e| e.last().is_some_and(landed),
    );
    assert!(moves.iter().any(landed), "{moves:?}");
    assert_eq!(moves[0].data["event"], "filed");
    assert!(moves.iter().all(|e| e.event == "transition"), "{moves:?}");
    let ids: Vec<u64> = moves.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}
