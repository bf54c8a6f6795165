//! Showing records to people and scripts: one timeline line per record, and
//! a flat JSON object with hex hashes.
//!
//! Timeline lines are UTC, independent of the local time zone:
//!
//! ```text
//! [01:00:00.123] FILED   import  agent=import-applications action=import after=[] locks=fafsa_2024_03_16 X
//! [01:00:00.130] CLEARED import  (fafsa_2024_03_16 X, token 1)
//! [01:00:00.131] CALL    import  write fafsa_2024_03_16/app/000001 token 1 ok
//! [01:00:00.132] DENIED  probe   read other/key: not granted
//! ```
//!
//! Strings that come from agents (keys, reasons) have control characters
//! escaped, so a record cannot forge extra lines or terminal escapes.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::hex;
use crate::record::{Entry, Event, Hash, LockMode, Outcome, Record};

const NS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;
/// Hex digits of a hash shown in a timeline line.
const SHORT_HASH: usize = 12;

/// One human line for an entry recorded at `time_ns`.
pub fn timeline_line(time_ns: u64, entry: &Entry) -> String {
    let (verb, details) = describe(entry);
    let runway = if entry.runway.is_empty() {
        Cow::Borrowed("-")
    } else {
        clean(&entry.runway)
    };
    let line = format!("[{}] {verb:<7} {runway:<7} {details}", clock(time_ns));
    line.trim_end().to_owned()
}

/// [`timeline_line`] of a record, prefixed with `#seq`.
pub fn record_line(record: &Record) -> String {
    format!(
        "#{:<6} {}",
        record.seq,
        timeline_line(record.time_ns, &record.entry)
    )
}

/// A record as one flat JSON object: hashes in hex, times in nanoseconds and
/// RFC 3339, the event's name under `"event"` and its fields beside it.
pub fn record_json(record: &Record) -> Value {
    let entry = &record.entry;
    let mut object = Map::new();
    object.insert("seq".into(), json!(record.seq));
    object.insert("time_ns".into(), json!(record.time_ns));
    object.insert("time".into(), json!(utc_timestamp(record.time_ns)));
    object.insert(
        "hash".into(),
        json!(record.leaf_hash().ok().map(|h| hex::encode(&h))),
    );
    object.insert("prev".into(), json!(hex::encode(&record.prev)));
    object.insert(
        "prev_dataset".into(),
        json!(record.prev_dataset.as_ref().map(hex_of)),
    );
    object.insert("runway".into(), json!(entry.runway));
    object.insert("agent".into(), json!(entry.agent));
    object.insert("plugin".into(), json!(entry.plugin.as_ref().map(hex_of)));
    object.insert("dataset".into(), json!(entry.dataset));
    for (key, value) in event_fields(&entry.event) {
        object.insert(key.into(), value);
    }
    Value::Object(object)
}

/// `HH:MM:SS.mmm` of a Unix time in nanoseconds, in UTC.
pub fn clock(time_ns: u64) -> String {
    let secs = time_ns / NS_PER_SEC;
    let millis = (time_ns % NS_PER_SEC) / 1_000_000;
    let of_day = secs % SECS_PER_DAY;
    format!(
        "{:02}:{:02}:{:02}.{millis:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// RFC 3339 UTC timestamp with nanoseconds, e.g. `2024-03-16T01:00:00.123000000Z`.
pub fn utc_timestamp(time_ns: u64) -> String {
    let secs = time_ns / NS_PER_SEC;
    let (year, month, day) = civil_from_days(secs / SECS_PER_DAY);
    let of_day = secs % SECS_PER_DAY;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        time_ns % NS_PER_SEC
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The verb and details of a timeline line.
fn describe(entry: &Entry) -> (&'static str, String) {
    let dataset = || entry.dataset.as_deref().map_or(Cow::Borrowed("?"), clean);
    match &entry.event {
        Event::Filed {
            action,
            after,
            locks,
        } => {
            let after: Vec<_> = after.iter().map(|a| clean(a)).collect();
            let locks = if locks.is_empty() {
                "none".to_owned()
            } else {
                let locks: Vec<_> = locks.iter().map(|l| lock(&l.dataset, l.mode)).collect();
                locks.join(",")
            };
            let details = format!(
                "agent={} action={} after=[{}] locks={locks}",
                clean(&entry.agent),
                clean(action),
                after.join(",")
            );
            ("FILED", details)
        }
        Event::Rejected { reason } => ("REJECT", clean(reason).into_owned()),
        Event::Cleared { locks } => {
            let locks: Vec<_> = locks
                .iter()
                .map(|l| format!("{}, token {}", lock(&l.dataset, l.mode), l.token))
                .collect();
            let details = if locks.is_empty() {
                "(no locks)".to_owned()
            } else {
                format!("({})", locks.join("; "))
            };
            ("CLEARED", details)
        }
        Event::LockGranted { mode, token } => (
            "GRANT",
            format!("{} {} token {token}", dataset(), mode.letter()),
        ),
        Event::Started { attempt } => ("START", format!("attempt {attempt}")),
        Event::Call {
            call,
            key,
            token,
            outcome,
            ..
        } => {
            let mut details = call.name().to_owned();
            match (&entry.dataset, key) {
                (Some(dataset), Some(key)) => {
                    let _ = write!(details, " {}/{}", clean(dataset), clean(key));
                }
                (Some(dataset), None) => {
                    let _ = write!(details, " {}", clean(dataset));
                }
                (None, Some(key)) => {
                    let _ = write!(details, " {}", clean(key));
                }
                (None, None) => {}
            }
            if let Some(token) = token {
                let _ = write!(details, " token {token}");
            }
            let verb = match outcome {
                Outcome::Ok => {
                    details.push_str(" ok");
                    "CALL"
                }
                Outcome::Denied(reason) => {
                    let _ = write!(details, ": {}", clean(reason));
                    "DENIED"
                }
                other => {
                    let reason = other.reason().unwrap_or_default();
                    let _ = write!(details, " {}: {}", other.name(), clean(reason));
                    "CALL"
                }
            };
            (verb, details)
        }
        Event::Committed {
            token,
            writes,
            deletes,
        } => (
            "COMMIT",
            format!(
                "{} token {token}: {writes} {}, {deletes} {}",
                dataset(),
                plural(*writes, "write", "writes"),
                plural(*deletes, "delete", "deletes")
            ),
        ),
        Event::LockReleased { mode, token } => (
            "RELEASE",
            format!("{} {} token {token}", dataset(), mode.letter()),
        ),
        Event::Succeeded { output } => (
            "SUCCESS",
            format!("output {}", &hex::encode(output)[..SHORT_HASH]),
        ),
        Event::Failed { reason } => ("FAILED", clean(reason).into_owned()),
        Event::PluginLoaded => ("LOAD", plugin_digest(entry)),
        Event::PluginUnloaded => ("UNLOAD", plugin_digest(entry)),
    }
}

/// `digest 1a2b3c4d5e6f`, short, for plugin load/unload lines.
fn plugin_digest(entry: &Entry) -> String {
    entry.plugin.map_or_else(
        || "digest ?".to_string(),
        |d| format!("digest {}", &hex::encode(&d)[..SHORT_HASH]),
    )
}

fn lock(dataset: &str, mode: LockMode) -> String {
    format!("{} {}", clean(dataset), mode.letter())
}

fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// The event's name and fields, for JSON.
fn event_fields(event: &Event) -> Vec<(&'static str, Value)> {
    match event {
        Event::Filed { action, after, locks } => vec![
            ("event", json!("filed")),
            ("action", json!(action)),
            ("after", json!(after)),
            (
                "locks",
                Value::Array(
                    locks
                        .iter()
                        .map(|l| json!({ "dataset": l.dataset, "mode": l.mode.name() }))
                        .collect(),
                ),
            ),
        ],
        Event::Rejected { reason } => vec![("event", json!("rejected")), ("reason", json!(reason))],
        Event::Cleared { locks } => vec![
            ("event", json!("cleared")),
            (
                "locks",
                Value::Array(
                    locks
                        .iter()
                        .map(|l| json!({ "dataset": l.dataset, "mode": l.mode.name(), "token": l.token }))
                        .collect(),
                ),
            ),
        ],
        Event::LockGranted { mode, token } => vec![
            ("event", json!("lock_granted")),
            ("mode", json!(mode.name())),
            ("token", json!(token)),
        ],
        Event::Started { attempt } => vec![("event", json!("started")), ("attempt", json!(attempt))],
        Event::Call {
            call,
            key,
            token,
            args,
            result,
            outcome,
        } => vec![
            ("event", json!("call")),
            ("call", json!(call.name())),
            ("key", json!(key)),
            ("token", json!(token)),
            ("args", json!(hex_of(args))),
            ("result", json!(hex_of(result))),
            ("outcome", json!(outcome.name())),
            ("reason", json!(outcome.reason())),
        ],
        Event::Committed {
            token,
            writes,
            deletes,
        } => vec![
            ("event", json!("committed")),
            ("token", json!(token)),
            ("writes", json!(writes)),
            ("deletes", json!(deletes)),
        ],
        Event::LockReleased { mode, token } => vec![
            ("event", json!("lock_released")),
            ("mode", json!(mode.name())),
            ("token", json!(token)),
        ],
        Event::Succeeded { output } => vec![("event", json!("succeeded")), ("output", json!(hex_of(output)))],
        Event::Failed { reason } => vec![("event", json!("failed")), ("reason", json!(reason))],
        Event::PluginLoaded => vec![("event", json!("plugin-loaded"))],
        Event::PluginUnloaded => vec![("event", json!("plugin-unloaded"))],
    }
}

fn hex_of(hash: &Hash) -> String {
    hex::encode(hash)
}

/// `text` with control characters escaped (`\n`, `\u{1b}`, ...).
fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Call, LockGrant, LockRequest, sha256};

    /// 2024-03-16T01:00:00.123Z
    const T: u64 = 1_710_550_800_123_000_000;

    fn entry(runway: &str, dataset: Option<&str>, event: Event) -> Entry {
        Entry {
            runway: runway.into(),
            agent: "import-applications".into(),
            plugin: Some([1; 32]),
            dataset: dataset.map(Into::into),
            event,
        }
    }

    fn call(call: Call, key: &str, token: Option<u64>, outcome: Outcome) -> Event {
        Event::Call {
            call,
            key: Some(key.into()),
            token,
            args: sha256(b"a"),
            result: sha256(b"r"),
            outcome,
        }
    }

    const DS: &str = "fafsa_2024_03_16";

    #[test]
    fn times_are_utc() {
        assert_eq!(clock(T), "01:00:00.123");
        assert_eq!(utc_timestamp(T), "2024-03-16T01:00:00.123000000Z");
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 (leap day) 23:59:59.999999999
        assert_eq!(
            utc_timestamp(951_868_799_999_999_999),
            "2000-02-29T23:59:59.999999999Z"
        );
    }

    #[test]
    fn timeline_lines() {
        let cases = [
            (
                entry(
                    "import",
                    None,
                    Event::Filed {
                        action: "import".into(),
                        after: vec![],
                        locks: vec![LockRequest {
                            dataset: DS.into(),
                            mode: LockMode::Exclusive,
                        }],
                    },
                ),
                "[01:00:00.123] FILED   import  agent=import-applications action=import after=[] locks=fafsa_2024_03_16 X",
            ),
            (
                entry(
                    "import",
                    None,
                    Event::Cleared {
                        locks: vec![LockGrant {
                            dataset: DS.into(),
                            mode: LockMode::Exclusive,
                            token: 1,
                        }],
                    },
                ),
                "[01:00:00.123] CLEARED import  (fafsa_2024_03_16 X, token 1)",
            ),
            (
                entry(
                    "import",
                    Some(DS),
                    Event::LockGranted {
                        mode: LockMode::Exclusive,
                        token: 1,
                    },
                ),
                "[01:00:00.123] GRANT   import  fafsa_2024_03_16 X token 1",
            ),
            (
                entry("import", None, Event::Started { attempt: 1 }),
                "[01:00:00.123] START   import  attempt 1",
            ),
            (
                entry(
                    "import",
                    Some(DS),
                    call(Call::Write, "app/000001", Some(1), Outcome::Ok),
                ),
                "[01:00:00.123] CALL    import  write fafsa_2024_03_16/app/000001 token 1 ok",
            ),
            (
                entry(
                    "probe",
                    Some("other"),
                    call(
                        Call::Read,
                        "key",
                        None,
                        Outcome::Denied("not granted".into()),
                    ),
                ),
                "[01:00:00.123] DENIED  probe   read other/key: not granted",
            ),
            (
                entry(
                    "import",
                    Some(DS),
                    call(
                        Call::Read,
                        "app/9",
                        Some(1),
                        Outcome::NotFound("no such key".into()),
                    ),
                ),
                "[01:00:00.123] CALL    import  read fafsa_2024_03_16/app/9 token 1 not-found: no such key",
            ),
            (
                entry(
                    "import",
                    Some(DS),
                    Event::Committed {
                        token: 1,
                        writes: 3,
                        deletes: 1,
                    },
                ),
                "[01:00:00.123] COMMIT  import  fafsa_2024_03_16 token 1: 3 writes, 1 delete",
            ),
            (
                entry(
                    "import",
                    Some(DS),
                    Event::LockReleased {
                        mode: LockMode::Exclusive,
                        token: 1,
                    },
                ),
                "[01:00:00.123] RELEASE import  fafsa_2024_03_16 X token 1",
            ),
            (
                entry("import", None, Event::Succeeded { output: [0xab; 32] }),
                "[01:00:00.123] SUCCESS import  output abababababab",
            ),
            (
                entry(
                    "import",
                    None,
                    Event::Failed {
                        reason: "trap: unreachable".into(),
                    },
                ),
                "[01:00:00.123] FAILED  import  trap: unreachable",
            ),
            (
                entry(
                    "",
                    None,
                    Event::Rejected {
                        reason: "cycle".into(),
                    },
                ),
                "[01:00:00.123] REJECT  -       cycle",
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(timeline_line(T, &entry), expected);
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let e = entry(
            "x",
            None,
            Event::Failed {
                reason: "a\nb\u{1b}[2J".into(),
            },
        );
        let line = timeline_line(T, &e);
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        assert!(line.ends_with("a\\nb\\u{1b}[2J"), "{line}");
    }

    #[test]
    fn record_line_and_json() {
        let record = Record {
            seq: 17,
            time_ns: T,
            prev: [2; 32],
            prev_dataset: None,
            entry: entry(
                "import",
                Some(DS),
                call(Call::Write, "app/1", Some(1), Outcome::Ok),
            ),
        };
        assert!(record_line(&record).starts_with("#17     [01:00:00.123] CALL    import  write"));
        let json = record_json(&record);
        assert_eq!(json["seq"], 17);
        assert_eq!(json["time"], "2024-03-16T01:00:00.123000000Z");
        assert_eq!(json["prev"], hex::encode(&[2; 32]));
        assert_eq!(json["prev_dataset"], Value::Null);
        assert_eq!(json["event"], "call");
        assert_eq!(json["call"], "write");
        assert_eq!(json["key"], "app/1");
        assert_eq!(json["outcome"], "ok");
        assert_eq!(json["args"], hex::encode(&sha256(b"a")));
        let hash = record.leaf_hash().expect("encode");
        assert_eq!(json["hash"], hex::encode(&hash));
    }
}
