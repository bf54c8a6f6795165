//! Every time and duration a manifest can hold — `earliest_start`,
//! `expires` (absolute, daily, or `in …`), `window`, a retry's `initial`
//! and `max` — is stored exactly and comes back exactly after a restart,
//! or is refused at filing naming the key and the range accepted. (A
//! fresh machine found `earliest_start = "3000-01-01T00:00:00Z"` kept as
//! 1970 in the trail: after a restart the runway ran at once.)

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use runway_host::RunwayReport;
use runway_host::controller::ManualClock;
use runway_host::controller::{Controller, DispatchError};
use runway_tests::{Fixture, Started, filing};

use crate::server::{Server, folders};

/// The test clock's now.
const NOW: &str = "2026-12-02T00:00:00Z";
/// The latest time a manifest may name.
const LATEST: &str = "2500-01-01T00:00:00Z";

/// A host and its controller on the test clock, restartable.
struct Host {
    rt: tokio::runtime::Runtime,
    clock: Arc<ManualClock>,
    fixture: Option<Fixture>,
    controller: Controller,
    task: tokio::task::JoinHandle<Result<(), DispatchError>>,
}

impl Host {
    fn new() -> Host {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let clock = Arc::new(ManualClock::new(NOW.parse().unwrap()));
        let fixture = Fixture::new();
        let (controller, task) = start(&rt, &fixture, &clock);
        Host {
            rt,
            clock,
            fixture: Some(fixture),
            controller,
            task,
        }
    }

    fn restart(&mut self) {
        self.controller.stop(true);
        let task = std::mem::replace(&mut self.task, self.rt.spawn(async { Ok(()) }));
        self.rt.block_on(task).unwrap().unwrap();
        let fixture = self.fixture.take().unwrap().reopen();
        let (controller, task) = start(&self.rt, &fixture, &self.clock);
        self.fixture = Some(fixture);
        self.controller = controller;
        self.task = task;
    }

    fn show(&self, id: &str) -> RunwayReport {
        self.rt.block_on(self.controller.show(id)).unwrap()
    }
}

fn start(rt: &tokio::runtime::Runtime, f: &Fixture, clock: &Arc<ManualClock>) -> Started {
    runway_tests::start_on_clock(rt, f, clock.clone())
}

/// A time as a manifest writes it, and the moment it must mean (`None`:
/// it must be refused).
#[derive(Debug, Clone)]
struct Time {
    text: String,
    /// Where it resolves to, when it is in range.
    at: Option<jiff::Timestamp>,
}

fn in_range(at: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let latest: jiff::Timestamp = LATEST.parse().unwrap();
    (at >= jiff::Timestamp::UNIX_EPOCH && at <= latest).then_some(at)
}

fn absolute() -> impl Strategy<Value = Time> {
    let (min, max) = (jiff::Timestamp::MIN, jiff::Timestamp::MAX);
    prop_oneof![
        // Anywhere jiff can name, nanoseconds included.
        (min.as_second()..=max.as_second(), 0i32..1_000_000_000),
        // Near the edges of what is accepted.
        (-2i64..3, 0i32..1_000_000_000),
        (16_725_225_598i64..16_725_225_602, 0i32..2),
        // u64 nanoseconds end in 2554: the old wrap.
        (18_446_744_000i64..18_446_744_100, 0i32..1_000_000_000),
        Just((max.as_second(), 999_999_999)),
    ]
    .prop_filter_map("a valid timestamp", |(s, ns)| {
        let at = jiff::Timestamp::new(s, ns).ok()?;
        Some(Time {
            text: at.to_string(),
            at: in_range(at),
        })
    })
}

fn relative() -> impl Strategy<Value = Time> {
    prop_oneof![
        (0u64..1 << 40, 0u32..1_000_000_000),
        // About what is left to 2500, either side.
        (15_000_000_000u64..16_000_000_000, 0u32..1_000_000_000),
        (100_000_000u64 * 3600..=100_000_000 * 3600, 0u32..1),
        (i64::MAX as u64 / 2..=i64::MAX as u64, 0u32..1_000_000_000),
    ]
    .prop_map(|(secs, ns)| {
        let now: jiff::Timestamp = NOW.parse().unwrap();
        let span = jiff::SignedDuration::new(secs as i64, ns as i32);
        Time {
            text: format!("in {}", iso(secs, ns)),
            at: now.checked_add(span).ok().and_then(in_range),
        }
    })
}

/// `secs.nanos` seconds as ISO 8601 (`PT…S`), which jiff reads exactly.
fn iso(secs: u64, ns: u32) -> String {
    format!("PT{secs}.{ns:09}S")
}

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![3 => absolute(), 2 => relative()]
}

/// A duration and whether a window (1 s to 24 h, whole milliseconds)
/// takes it.
fn duration() -> impl Strategy<Value = (u64, u32)> {
    prop_oneof![
        (
            0u64..200_000,
            prop_oneof![Just(0u32), (0u32..1000).prop_map(|ms| ms * 1_000_000)]
        ),
        (0u64..200_000, 0u32..1_000_000_000),
        (
            86_399u64..86_402,
            prop_oneof![Just(0u32), Just(1_000_000), Just(1)]
        ),
    ]
}

fn whole_ms(ns: u32) -> bool {
    ns.is_multiple_of(1_000_000)
}

fn exactly(secs: u64, ns: u32) -> Duration {
    Duration::new(secs, ns)
}

fn file_and_restart(
    start: Time,
    expires: Time,
    window: (u64, u32),
    initial: (u64, u32),
    max: (u64, u32),
) {
    let manifest = format!(
        "[[runway]]\nid = \"t\"\nagent = \"probe\"\naction = \"ok\"\n\
         approval = {{ required = true }}\n\
         earliest_start = \"{}\"\nexpires = \"{}\"\nwindow = \"{}\"\n\
         retry = {{ attempts = 2, initial = \"{}\", max = \"{}\" }}\n",
        start.text,
        expires.text,
        iso(window.0, window.1),
        iso(initial.0, initial.1),
        iso(max.0, max.1),
    );
    let (w, i, m) = (
        exactly(window.0, window.1),
        exactly(initial.0, initial.1),
        exactly(max.0, max.1),
    );
    let day = Duration::from_secs(86_400);
    let window_ok = whole_ms(window.1) && w >= Duration::from_secs(1) && w <= day;
    let retry_ok = whole_ms(initial.1) && whole_ms(max.1) && m <= day && i <= m;
    let mut host = Host::new();
    let parsed = runway_host::Plan::parse(&manifest, &*runway_tests::plugins().1);
    let plan = match parsed {
        Err(e) => {
            let e = e.to_string();
            let bad_at = |t: &Time| t.at.is_none();
            assert!(
                !window_ok || !retry_ok || bad_at(&start) || bad_at(&expires),
                "refused what is in range: {e}\n{manifest}"
            );
            assert!(e.starts_with("runway \"t\": "), "{e}");
            assert!(e.contains(" must be ") || e.contains("is not"), "{e}");
            if bad_at(&start) && !start.text.starts_with("in ") && window_ok && retry_ok {
                assert!(
                    e.contains("earliest_start must be at or after 1970-01-01T00:00:00Z and at or before 2500-01-01T00:00:00Z"),
                    "{e}"
                );
            }
            return;
        }
        Ok(plan) => plan,
    };
    assert!(window_ok && retry_ok, "accepted {manifest}");
    let filed = host.rt.block_on(host.controller.file(filing(plan)));
    let (Some(start_at), Some(expires_at)) = (start.at, expires.at) else {
        let e = filed
            .expect_err("a time past the latest is refused")
            .to_string();
        assert!(e.contains("resolves past 2500-01-01T00:00:00Z"), "{e}");
        let key = if start.at.is_none() {
            "earliest_start"
        } else {
            "expires"
        };
        assert!(e.contains(key), "{e}");
        return;
    };
    filed.unwrap_or_else(|e| panic!("{e}\n{manifest}"));
    let check = |r: &RunwayReport, when: &str| {
        assert_eq!(r.start_at, Some(start_at), "earliest_start {when}");
        assert_eq!(r.expires_at, Some(expires_at), "expires {when}");
        assert_eq!(r.manifest.window, Some(w), "window {when}");
        assert_eq!(r.manifest.retry.initial, i, "retry.initial {when}");
        assert_eq!(r.manifest.retry.max, m, "retry.max {when}");
    };
    let before = host.show("t");
    check(&before, "as filed");
    host.restart();
    let after = host.show("t");
    check(&after, "after a restart");
    assert_eq!(after.state, before.state);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_time: 60_000, ..ProptestConfig::default() })]

    #[test]
    fn every_time_survives_a_restart_exactly_or_is_refused(
        start in time(),
        expires in time(),
        window in duration(),
        initial in duration(),
        max in duration(),
    ) {
        file_and_restart(start, expires, window, initial, max);
    }
}

/// The reproduction against a real `serve`: a far-future start and expiry
/// survive a restart exactly; past the latest time, and an `in` beyond
/// it, are refused at filing naming the key and the bound.
#[test]
fn far_future_times_survive_a_restart_of_serve() {
    let dir = folders();
    let server = Server::start(dir.path());
    let ids = server.file(
        r#"
        [[runway]]
        id = "later"
        agent = "probe"
        action = "ok"
        earliest_start = "2499-12-31T23:59:59.123456789Z"
        [[runway]]
        id = "gated"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        expires = "2400-01-01T00:00:00Z"
        "#,
    );
    assert_eq!(ids, ["later", "gated"]);
    let refused = |plan: &str, said: &str| {
        std::fs::write(dir.path().join("bad.toml"), plan).unwrap();
        let out = server.client(&["file", "bad.toml"]);
        assert_eq!(out.code, 2, "{plan}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(said), "{plan}: {}", out.stderr);
    };
    refused(
        "[[runway]]\nid = \"x\"\nagent = \"probe\"\nearliest_start = \"3000-01-01T00:00:00Z\"\n",
        "earliest_start must be at or after 1970-01-01T00:00:00Z and at or before 2500-01-01T00:00:00Z",
    );
    refused(
        "[[runway]]\nid = \"x\"\nagent = \"probe\"\nexpires = \"in 100000000h\"\n",
        "expires resolves past 2500-01-01T00:00:00Z",
    );
    refused(
        "[[runway]]\nid = \"x\"\nagent = \"probe\"\nwindow = \"1500us\"\n",
        "window must be a whole number of milliseconds",
    );
    let trail_times = |server: &Server| {
        server
            .trail()
            .into_iter()
            .filter(|r| r["event"] == "filed")
            .map(|r| {
                let m = &r["manifest"];
                (m["earliest_start_ns"].clone(), m["expires_ns"].clone())
            })
            .collect::<Vec<_>>()
    };
    let filed = trail_times(&server);
    let ns =
        |t: &str| serde_json::json!(t.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as u64);
    assert_eq!(
        filed,
        [
            (
                ns("2499-12-31T23:59:59.123456789Z"),
                serde_json::Value::Null
            ),
            (serde_json::Value::Null, ns("2400-01-01T00:00:00Z")),
        ],
        "kept to the nanosecond"
    );
    assert_eq!(server.stop(), Some(0));

    let server = Server::start(dir.path());
    let later = server.json(&["show", "later"]);
    assert_eq!(later["state"], "WAITING_TIME", "{later}");
    let gated = server.json(&["show", "gated"]);
    assert_eq!(gated["state"], "WAITING_APPROVAL", "{gated}");
    assert_eq!(trail_times(&server), filed);
}
