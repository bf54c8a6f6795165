//! Showing records to people and scripts: one timeline line per record, and
//! a flat JSON object with hex hashes.
//!
//! Timeline lines are UTC, independent of the local time zone:
//!
//! ```text
//! [2024-03-16T01:00:00.123Z] FILED   import  agent=import-applications action=import after=[] locks=fafsa_2024_03_16 X
//! [2024-03-16T01:00:00.130Z] CLEARED import  (fafsa_2024_03_16 X, token 1)
//! [2024-03-16T01:00:00.131Z] CALL    import  write fafsa_2024_03_16/app/000001 token 1 ok
//! [2024-03-16T01:00:00.132Z] DENIED  probe   read other/key: not granted
//! ```
//!
//! Strings that come from agents or operators (names, keys, reasons) go
//! through [`escape`], so a record cannot forge extra lines, drive the
//! terminal or reorder a line with bidi controls.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::hex;
use crate::record::{
    Entry, Event, Hash, LockMode, LockRequest, Outcome, PassedOutput, Record, sha256,
};

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
        escape(&entry.runway)
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

/// ISO 8601 UTC date and time to the millisecond of a Unix time in
/// nanoseconds, e.g. `2024-03-16T01:00:00.123Z`: timelines span days.
pub fn clock(time_ns: u64) -> String {
    let full = utc_timestamp(time_ns);
    // `…T01:00:00.123456789Z` → `…T01:00:00.123Z`
    format!("{}Z", &full[..full.len() - 7])
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

/// What a FILED line says of any filing record.
fn filed_details(entry: &Entry, action: &str, after: &[String], locks: &[LockRequest]) -> String {
    let after: Vec<_> = after.iter().map(|a| escape(a)).collect();
    let locks = if locks.is_empty() {
        "none".to_owned()
    } else {
        let locks: Vec<_> = locks.iter().map(|l| lock(&l.dataset, l.mode)).collect();
        locks.join(",")
    };
    format!(
        "agent={} action={} after=[{}] locks={locks}",
        escape(&entry.agent),
        escape(action),
        after.join(",")
    )
}

/// The verb and details of a timeline line.
fn describe(entry: &Entry) -> (&'static str, String) {
    let dataset = || entry.dataset.as_deref().map_or(Cow::Borrowed("?"), escape);
    match &entry.event {
        Event::Filed {
            action,
            after,
            locks,
        } => ("FILED", filed_details(entry, action, after, locks)),
        Event::FilingV1(m) => {
            let mut details = filed_details(entry, &m.action, &m.after, &m.locks);
            if m.priority != 0 {
                let _ = write!(details, " priority={}", m.priority);
            }
            if let Some(role) = &m.approval {
                let _ = write!(details, " approval={}", escape(role));
            }
            if let Some(at) = m.earliest_start_ns {
                let _ = write!(details, " not-before={}", clock(at));
            }
            if let Some(at) = m.expires_ns {
                let _ = write!(details, " expires={}", clock(at));
            }
            if let Some(r) = &m.retry {
                let _ = write!(details, " attempts={}", r.attempts);
            }
            let _ = write!(
                details,
                " input={}",
                &hex::encode(&m.input_digest)[..SHORT_HASH]
            );
            ("FILED", details)
        }
        Event::Filing {
            schema,
            manifest,
            input,
        } => (
            "FILED",
            format!(
                "agent={} schema={schema} manifest={} input={} {} sha256={}",
                escape(&entry.agent),
                escape(manifest),
                input.len(),
                plural_len(input.len(), "byte", "bytes"),
                &hex::encode(&sha256(input))[..SHORT_HASH]
            ),
        ),
        // A plugin refused by the host names it; a refused plan names none.
        Event::Rejected { reason } if !entry.agent.is_empty() => (
            "REFUSE",
            format!("{}: {}", plugin_named(entry), escape(reason)),
        ),
        Event::Rejected { reason } => ("REJECT", escape(reason).into_owned()),
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
                    let _ = write!(details, " {}/{}", escape(dataset), escape(key));
                }
                (Some(dataset), None) => {
                    let _ = write!(details, " {}", escape(dataset));
                }
                (None, Some(key)) => {
                    let _ = write!(details, " {}", escape(key));
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
                    let _ = write!(details, ": {}", escape(reason));
                    "DENIED"
                }
                other => {
                    let reason = other.reason().unwrap_or_default();
                    let _ = write!(details, " {}: {}", other.name(), escape(reason));
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
        Event::Committing { locks, changes } => {
            let locks: Vec<_> = locks
                .iter()
                .map(|l| format!("{} token {}", lock(&l.dataset, l.mode), l.token))
                .collect();
            (
                "COMMITTING",
                format!(
                    "{} changes {}",
                    locks.join(", "),
                    &hex::encode(changes)[..SHORT_HASH]
                ),
            )
        }
        Event::Recovered { committing, landed } => (
            "RECOVER",
            if *landed {
                format!("commit of #{committing} found in the store: it landed")
            } else {
                format!("commit of #{committing} not in the store: nothing applied")
            },
        ),
        Event::Moved { to, reason, by } => (
            to.name(),
            match by {
                Some(by) => format!("{} (by {})", escape(reason), escape(by)),
                None => escape(reason).into_owned(),
            },
        ),
        Event::Joined {
            mode,
            children,
            timed_out,
        } => {
            let children: Vec<_> = children
                .iter()
                .map(|c| format!("{} {}", escape(&c.runway), c.state.name()))
                .collect();
            let ran_out = if *timed_out { " (timed out)" } else { "" };
            (
                "JOINED",
                format!("{} [{}]{ran_out}", escape(mode), children.join(", ")),
            )
        }
        Event::Returned { output } => (
            "RETURNED",
            format!(
                "output {} {} sha256={}",
                output.len(),
                plural_len(output.len(), "byte", "bytes"),
                &hex::encode(&sha256(output))[..SHORT_HASH]
            ),
        ),
        Event::Published { topic, payload } => (
            "PUBLISHED",
            format!(
                "{} payload {} {} sha256={}",
                escape(topic),
                payload.len(),
                plural_len(payload.len(), "byte", "bytes"),
                &hex::encode(&sha256(payload))[..SHORT_HASH]
            ),
        ),
        Event::Cost {
            attempt,
            fuel,
            wall_us,
            bytes,
        } => (
            "COST",
            format!(
                "attempt {attempt}: fuel {fuel}, wall {}.{:03} ms, {bytes} {} written",
                wall_us / 1000,
                wall_us % 1000,
                plural_len(*bytes as usize, "byte", "bytes")
            ),
        ),
        Event::Passed { inputs, input } => (
            "PASSED",
            format!(
                "{} input={}",
                outputs_read(inputs),
                &hex::encode(input)[..SHORT_HASH]
            ),
        ),
        Event::Decided {
            expression,
            read,
            value,
        } => (
            "DECIDED",
            format!(
                "when {} = {} {}",
                escape(expression),
                escape(value),
                outputs_read(read)
            ),
        ),
        // The reason says the counts in words (`--json` has them apart).
        Event::BreakerMoved {
            from,
            to,
            reason,
            until_ns,
            ..
        } => {
            let until = match until_ns {
                Some(ns) => format!(" until {}", clock(*ns)),
                None => String::new(),
            };
            (
                "BREAKER",
                format!(
                    "{} → {}{until}: {}",
                    escape(from),
                    escape(to),
                    escape(reason)
                ),
            )
        }
        Event::Routed {
            prefer,
            picked,
            figures,
        } => {
            let each: Vec<String> = figures
                .iter()
                .map(|f| {
                    let p50 = f.p50_ms.map_or("-".into(), |ms| format!("{ms} ms"));
                    format!(
                        "{} runs {} ok {} p50 {p50} in air {} breaker {}",
                        escape(&f.agent),
                        f.runs,
                        f.succeeded,
                        f.in_flight,
                        escape(&f.breaker)
                    )
                })
                .collect();
            (
                "ROUTED",
                format!(
                    "{} by {}: [{}]",
                    escape(picked),
                    escape(prefer),
                    each.join("; ")
                ),
            )
        }
        Event::Paused { by } => ("PAUSED", format!("clearing paused by {}", escape(by))),
        Event::Resumed { by } => ("RESUMED", format!("clearing resumed by {}", escape(by))),
        Event::PlanFiled {
            by,
            source,
            digest,
            runways,
        } => (
            "PLAN",
            format!(
                "{} runway(s) filed by {} from {} plan={}",
                runways.len(),
                escape(by),
                escape(source),
                &hex::encode(digest)[..SHORT_HASH]
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
        Event::Failed { reason } => ("FAILED", escape(reason).into_owned()),
        Event::PluginLoaded => ("LOAD", plugin_named(entry)),
        Event::PluginUnloaded => ("UNLOAD", plugin_named(entry)),
        Event::TriggerFiled {
            id, by, definition, ..
        } => (
            "TRIGGER",
            format!(
                "{} filed by {}: {}",
                escape(id),
                escape(by),
                excerpt(definition, TRIGGER_EXCERPT)
            ),
        ),
        Event::TriggerPaused { id, by } => (
            "TRIGGER",
            format!("{} paused by {}", escape(id), escape(by)),
        ),
        Event::TriggerResumed { id, by, .. } => (
            "TRIGGER",
            format!("{} resumed by {}", escape(id), escape(by)),
        ),
        Event::TriggerRemoved { id, by } => (
            "TRIGGER",
            format!("{} removed by {}", escape(id), escape(by)),
        ),
        Event::TriggerFired {
            id,
            key,
            cause,
            refused,
        } => (
            "FIRED",
            match refused {
                None => format!(
                    "{} for {}: {}",
                    escape(id),
                    escape(key),
                    excerpt(cause, TRIGGER_EXCERPT)
                ),
                Some(why) => format!(
                    "{} for {}, nothing filed: {}",
                    escape(id),
                    escape(key),
                    escape(why)
                ),
            },
        ),
        Event::TriggerChainCut {
            id,
            key,
            depth,
            runway,
        } => (
            "CHAIN CUT",
            format!(
                "{} not fired for {}: runway {}'s firing would be {depth} deep in a chain of triggers",
                escape(id),
                escape(key),
                escape(runway)
            ),
        ),
        Event::Abandoned { reason } => ("ABANDONED", escape(reason).into_owned()),
        Event::Leading { term, accepted } => {
            let shards: Vec<String> = accepted
                .iter()
                .map(|a| format!("{} to {}", escape(&a.origin), a.seq))
                .collect();
            let shards = if shards.is_empty() {
                "none".to_string()
            } else {
                shards.join(", ")
            };
            (
                "LEADING",
                format!("term {term}; earlier terms ended, shards taken: {shards}"),
            )
        }
    }
}

/// Most characters of a trigger's definition or cause on a timeline line.
const TRIGGER_EXCERPT: usize = 160;

/// `plugin NAME digest 1a2b3c4d5e6f` (short), for plugin load, unload and
/// refusal lines; `digest ?` when no component was read.
fn plugin_named(entry: &Entry) -> String {
    let digest = entry.plugin.map_or_else(
        || "?".to_string(),
        |d| hex::encode(&d)[..SHORT_HASH].to_string(),
    );
    format!("plugin {} digest {digest}", escape(&entry.agent))
}

fn lock(dataset: &str, mode: LockMode) -> String {
    format!("{} {}", escape(dataset), mode.letter())
}

fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    plural_len(n as usize, one, many)
}

fn plural_len(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// The JSON fields of any filing record.
fn filed_json(action: &str, after: &[String], locks: &[LockRequest]) -> Vec<(&'static str, Value)> {
    vec![
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
    ]
}

/// The event's name and fields, for JSON.
fn event_fields(event: &Event) -> Vec<(&'static str, Value)> {
    match event {
        Event::Filed {
            action,
            after,
            locks,
        } => filed_json(action, after, locks),
        Event::FilingV1(m) => {
            let mut fields = filed_json(&m.action, &m.after, &m.locks);
            fields.extend([
                ("priority", json!(m.priority)),
                ("window_ms", json!(m.window_ms)),
                ("earliest_start_ns", json!(m.earliest_start_ns)),
                ("expires_ns", json!(m.expires_ns)),
                ("approval", json!(m.approval)),
                (
                    "retry",
                    json!(m.retry.map(|r| json!({
                        "attempts": r.attempts,
                        "exponential": r.exponential,
                        "initial_ms": r.initial_ms,
                        "max_ms": r.max_ms,
                        "jitter": r.jitter,
                    }))),
                ),
                ("input_digest", json!(hex_of(&m.input_digest))),
                ("input_bytes", json!(m.input.len())),
            ]);
            fields
        }
        Event::Filing {
            schema,
            manifest,
            input,
        } => vec![
            ("event", json!("filed")),
            ("schema", json!(schema)),
            ("manifest", json_or_text(manifest)),
            ("input_digest", json!(hex_of(&sha256(input)))),
            ("input_bytes", json!(input.len())),
        ],
        Event::Rejected { reason } => vec![("event", json!("rejected")), ("reason", json!(reason))],
        Event::Cleared { locks } => {
            vec![("event", json!("cleared")), ("locks", grants_json(locks))]
        }
        Event::LockGranted { mode, token } => vec![
            ("event", json!("lock_granted")),
            ("mode", json!(mode.name())),
            ("token", json!(token)),
        ],
        Event::Started { attempt } => {
            vec![("event", json!("started")), ("attempt", json!(attempt))]
        }
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
        Event::Succeeded { output } => vec![
            ("event", json!("succeeded")),
            ("output", json!(hex_of(output))),
        ],
        Event::Failed { reason } => vec![("event", json!("failed")), ("reason", json!(reason))],
        Event::PluginLoaded => vec![("event", json!("plugin-loaded"))],
        Event::PluginUnloaded => vec![("event", json!("plugin-unloaded"))],
        Event::Committing { locks, changes } => vec![
            ("event", json!("committing")),
            ("locks", grants_json(locks)),
            ("changes", json!(hex_of(changes))),
        ],
        Event::Recovered { committing, landed } => vec![
            ("event", json!("recovered")),
            ("committing", json!(committing)),
            ("landed", json!(landed)),
        ],
        Event::Joined {
            mode,
            children,
            timed_out,
        } => vec![
            ("event", json!("joined")),
            ("mode", json!(mode)),
            (
                "children",
                json!(
                    children
                        .iter()
                        .map(|c| json!({"runway": c.runway, "state": c.state.name()}))
                        .collect::<Vec<_>>()
                ),
            ),
            ("timed_out", json!(timed_out)),
        ],
        Event::Returned { output } => vec![
            ("event", json!("returned")),
            ("output_digest", json!(hex_of(&sha256(output)))),
            ("output_bytes", json!(output.len())),
        ],
        Event::Published { topic, payload } => vec![
            ("event", json!("published")),
            ("topic", json!(topic)),
            ("payload_digest", json!(hex_of(&sha256(payload)))),
            ("payload_bytes", json!(payload.len())),
        ],
        Event::Cost {
            attempt,
            fuel,
            wall_us,
            bytes,
        } => vec![
            ("event", json!("cost")),
            ("attempt", json!(attempt)),
            ("fuel", json!(fuel)),
            ("wall_us", json!(wall_us)),
            ("bytes", json!(bytes)),
        ],
        Event::Passed { inputs, input } => vec![
            ("event", json!("passed")),
            ("inputs", passed_json(inputs)),
            ("input_digest", json!(hex_of(input))),
        ],
        Event::Decided {
            expression,
            read,
            value,
        } => vec![
            ("event", json!("decided")),
            ("expression", json!(expression)),
            ("read", passed_json(read)),
            ("value", json!(value)),
        ],
        Event::BreakerMoved {
            from,
            to,
            reason,
            failures,
            within_ms,
            until_ns,
        } => vec![
            ("event", json!("breaker_moved")),
            ("from", json!(from)),
            ("to", json!(to)),
            ("reason", json!(reason)),
            ("failures", json!(failures)),
            ("within_ms", json!(within_ms)),
            ("until_ns", json!(until_ns)),
        ],
        Event::Routed {
            prefer,
            picked,
            figures,
        } => vec![
            ("event", json!("routed")),
            ("prefer", json!(prefer)),
            ("picked", json!(picked)),
            ("figures", json!(figures)),
        ],
        Event::Paused { by } => vec![("event", json!("paused")), ("by", json!(by))],
        Event::Resumed { by } => vec![("event", json!("resumed")), ("by", json!(by))],
        Event::PlanFiled {
            by,
            source,
            digest,
            runways,
        } => vec![
            ("event", json!("plan_filed")),
            ("by", json!(by)),
            ("source", json!(source)),
            ("digest", json!(hex_of(digest))),
            ("runways", json!(runways)),
        ],
        Event::Moved { to, reason, by } => vec![
            ("event", json!("moved")),
            ("to", json!(to.name())),
            ("reason", json!(reason)),
            ("by", json!(by)),
        ],
        Event::TriggerFiled {
            id,
            by,
            definition,
            since_ns,
        } => vec![
            ("event", json!("trigger_filed")),
            ("trigger", json!(id)),
            ("by", json!(by)),
            ("definition", json_or_text(definition)),
            ("since_ns", json!(since_ns)),
        ],
        Event::TriggerPaused { id, by } => vec![
            ("event", json!("trigger_paused")),
            ("trigger", json!(id)),
            ("by", json!(by)),
        ],
        Event::TriggerResumed { id, by, since_ns } => vec![
            ("event", json!("trigger_resumed")),
            ("trigger", json!(id)),
            ("by", json!(by)),
            ("since_ns", json!(since_ns)),
        ],
        Event::TriggerRemoved { id, by } => vec![
            ("event", json!("trigger_removed")),
            ("trigger", json!(id)),
            ("by", json!(by)),
        ],
        Event::TriggerFired {
            id,
            key,
            cause,
            refused,
        } => vec![
            ("event", json!("trigger_fired")),
            ("trigger", json!(id)),
            ("key", json!(key)),
            ("cause", json_or_text(cause)),
            ("refused", json!(refused)),
        ],
        Event::TriggerChainCut {
            id,
            key,
            depth,
            runway,
        } => vec![
            ("event", json!("trigger_chain_cut")),
            ("trigger", json!(id)),
            ("key", json!(key)),
            ("depth", json!(depth)),
            ("runway", json!(runway)),
        ],
        Event::Abandoned { reason } => {
            vec![("event", json!("abandoned")), ("reason", json!(reason))]
        }
        Event::Leading { term, accepted } => vec![
            ("event", json!("leading")),
            ("term", json!(term)),
            (
                "accepted",
                accepted
                    .iter()
                    .map(|a| json!({ "origin": a.origin, "seq": a.seq }))
                    .collect(),
            ),
        ],
    }
}

/// `text` as the JSON object it holds, or as a string when it holds none.
fn json_or_text(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!(text),
    }
}

fn grants_json(locks: &[crate::record::LockGrant]) -> Value {
    let locks = locks
        .iter()
        .map(|l| json!({ "dataset": l.dataset, "mode": l.mode.name(), "token": l.token }));
    Value::Array(locks.collect())
}

fn hex_of(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Outputs another runway read, for a timeline line: `[score.risk
/// sha256=…, import sha256=…]`.
fn outputs_read(outputs: &[PassedOutput]) -> String {
    let each: Vec<String> = outputs
        .iter()
        .map(|o| {
            let path = if o.path.is_empty() {
                String::new()
            } else {
                format!(".{}", escape(&o.path))
            };
            let digest = &hex::encode(&o.digest)[..SHORT_HASH];
            format!("{}{path} sha256={digest}", escape(&o.runway))
        })
        .collect();
    format!("[{}]", each.join(", "))
}

/// Outputs another runway read, for JSON.
fn passed_json(outputs: &[PassedOutput]) -> Value {
    let each: Vec<Value> = outputs
        .iter()
        .map(|o| json!({"runway": o.runway, "path": o.path, "digest": hex_of(&o.digest)}))
        .collect();
    Value::Array(each)
}

/// Unicode format characters (general category Cf, Unicode 16), by hand:
/// invisible, yet they change how a line reads (bidi overrides and
/// isolates reorder it, zero-width characters hide in names).
const FORMAT: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Does `c` need escaping before a person reads it? Control characters,
/// line and paragraph separators (U+2028/9) and format characters (bidi
/// overrides U+202A–U+202E and isolates U+2066–U+2069, zero-width
/// U+200B–U+200F, U+2060, U+FEFF, and the rest of category Cf).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `text` as a person may safely read it: every character of
/// [`needs_escape`] written as an escape (`\n`, `\u{1b}`, `\u{202e}`), so
/// no string can forge lines, drive the terminal or reorder what is shown.
/// Everything meant for people goes through here: timeline lines, `audit
/// show`, the host's console output.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`escape`]d `text`, at most `max_chars` characters in all; a cut text
/// ends with `…`, so a reader knows more exists.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max_chars {
        return escaped.into_owned();
    }
    // Cut between escapes, never inside one.
    let mut out = String::new();
    let mut piece = String::new();
    let mut shown = 0;
    for c in text.chars() {
        piece.clear();
        push_escaped(&mut piece, c);
        let n = piece.chars().count();
        if shown + n >= max_chars {
            break;
        }
        shown += n;
        out.push_str(&piece);
    }
    out.push('…');
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else if needs_escape(c) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Call, LockGrant, LockRequest};

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
        assert_eq!(clock(T), "2024-03-16T01:00:00.123Z");
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
                "[2024-03-16T01:00:00.123Z] FILED   import  agent=import-applications action=import after=[] locks=fafsa_2024_03_16 X",
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
                "[2024-03-16T01:00:00.123Z] CLEARED import  (fafsa_2024_03_16 X, token 1)",
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
                "[2024-03-16T01:00:00.123Z] GRANT   import  fafsa_2024_03_16 X token 1",
            ),
            (
                entry("import", None, Event::Started { attempt: 1 }),
                "[2024-03-16T01:00:00.123Z] START   import  attempt 1",
            ),
            (
                entry(
                    "import",
                    None,
                    Event::Cost {
                        attempt: 2,
                        fuel: 81_234,
                        wall_us: 4_005,
                        bytes: 105,
                    },
                ),
                "[2024-03-16T01:00:00.123Z] COST    import  attempt 2: fuel 81234, wall 4.005 ms, 105 bytes written",
            ),
            (
                entry(
                    "import",
                    Some(DS),
                    call(Call::Write, "app/000001", Some(1), Outcome::Ok),
                ),
                "[2024-03-16T01:00:00.123Z] CALL    import  write fafsa_2024_03_16/app/000001 token 1 ok",
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
                "[2024-03-16T01:00:00.123Z] DENIED  probe   read other/key: not granted",
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
                "[2024-03-16T01:00:00.123Z] CALL    import  read fafsa_2024_03_16/app/9 token 1 not-found: no such key",
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
                "[2024-03-16T01:00:00.123Z] COMMIT  import  fafsa_2024_03_16 token 1: 3 writes, 1 delete",
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
                "[2024-03-16T01:00:00.123Z] RELEASE import  fafsa_2024_03_16 X token 1",
            ),
            (
                entry("import", None, Event::Succeeded { output: [0xab; 32] }),
                "[2024-03-16T01:00:00.123Z] SUCCESS import  output abababababab",
            ),
            (
                entry(
                    "import",
                    None,
                    Event::Failed {
                        reason: "trap: unreachable".into(),
                    },
                ),
                "[2024-03-16T01:00:00.123Z] FAILED  import  trap: unreachable",
            ),
            (
                Entry {
                    agent: String::new(),
                    plugin: None,
                    ..entry(
                        "",
                        None,
                        Event::Rejected {
                            reason: "cycle".into(),
                        },
                    )
                },
                "[2024-03-16T01:00:00.123Z] REJECT  -       cycle",
            ),
            (
                entry(
                    "",
                    None,
                    Event::Rejected {
                        reason: "f.wasm: is a FIFO".into(),
                    },
                ),
                "[2024-03-16T01:00:00.123Z] REFUSE  -       plugin import-applications digest 010101010101: f.wasm: is a FIFO",
            ),
            (
                entry("", None, Event::PluginLoaded),
                "[2024-03-16T01:00:00.123Z] LOAD    -       plugin import-applications digest 010101010101",
            ),
            (
                entry("", None, Event::PluginUnloaded),
                "[2024-03-16T01:00:00.123Z] UNLOAD  -       plugin import-applications digest 010101010101",
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

    /// One character of each class that must not reach a reader raw, and
    /// how it is shown.
    #[test]
    fn escapes_every_class_a_reader_must_see() {
        let classes = [
            ("control", '\u{1b}', "\\u{1b}"),
            ("newline", '\n', "\\n"),
            ("C1 control", '\u{9b}', "\\u{9b}"),
            ("bidi override", '\u{202e}', "\\u{202e}"),
            ("bidi embedding", '\u{202a}', "\\u{202a}"),
            ("bidi isolate", '\u{2066}', "\\u{2066}"),
            ("pop isolate", '\u{2069}', "\\u{2069}"),
            ("zero-width space", '\u{200b}', "\\u{200b}"),
            ("zero-width joiner", '\u{200d}', "\\u{200d}"),
            ("left-to-right mark", '\u{200e}', "\\u{200e}"),
            ("word joiner", '\u{2060}', "\\u{2060}"),
            ("byte order mark", '\u{feff}', "\\u{feff}"),
            ("line separator", '\u{2028}', "\\u{2028}"),
            ("paragraph separator", '\u{2029}', "\\u{2029}"),
            ("soft hyphen (Cf)", '\u{ad}', "\\u{ad}"),
            ("Arabic number sign (Cf)", '\u{600}', "\\u{600}"),
            ("interlinear annotation (Cf)", '\u{fff9}', "\\u{fff9}"),
            ("tag character (Cf)", '\u{e0041}', "\\u{e0041}"),
        ];
        for (class, c, shown) in classes {
            let text = format!("a{c}b");
            assert_eq!(escape(&text), format!("a{shown}b"), "{class}");
        }
        // Letters of any script, marks and emoji stay as they are.
        for plain in ["plain", "café", "ملف", "日本語", "e\u{301}", "🚀"] {
            assert!(matches!(escape(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn excerpts_are_escaped_and_cut_between_escapes() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdefghij", 5), "abcd…");
        // Never half an escape: `\u{202e}` is 8 characters.
        let cut = excerpt("ab\u{202e}cdef", 6);
        assert_eq!(cut, "ab…");
        assert!(excerpt(&"x".repeat(1000), 120).chars().count() <= 120);
    }

    #[test]
    fn a_right_to_left_override_in_a_name_is_shown_escaped() {
        let e = Entry {
            agent: "evil\u{202e}gpj.exe".into(),
            ..entry("run\u{202e}1", None, Event::PluginLoaded)
        };
        let line = timeline_line(T, &e);
        assert!(!line.contains('\u{202e}'), "{line}");
        assert!(line.contains("run\\u{202e}1"), "{line}");
        assert!(
            line.contains("plugin evil\\u{202e}gpj.exe digest"),
            "{line}"
        );
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
        assert!(
            record_line(&record)
                .starts_with("#17     [2024-03-16T01:00:00.123Z] CALL    import  write")
        );
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

    #[test]
    fn a_filing_shows_its_manifest_escaped_and_its_input_digest() {
        let manifest = r#"{"action":"import","labels":{"team":"a\u001b[2Jid"}}"#;
        let filing = Event::Filing {
            schema: 2,
            manifest: format!("{manifest}\n"),
            input: b"abc".to_vec(),
        };
        let line = timeline_line(T, &entry("import", None, filing.clone()));
        assert_eq!(
            line,
            format!(
                "[2024-03-16T01:00:00.123Z] FILED   import  agent=import-applications schema=2 manifest={}\\n input=3 bytes sha256={}",
                manifest,
                &hex::encode(&sha256(b"abc"))[..SHORT_HASH]
            )
        );
        let record = Record {
            seq: 1,
            time_ns: T,
            prev: [0; 32],
            prev_dataset: None,
            entry: entry("import", None, filing),
        };
        let json = record_json(&record);
        assert_eq!(json["event"], "filed");
        assert_eq!(json["schema"], 2);
        assert_eq!(json["manifest"]["labels"]["team"], "a\u{1b}[2Jid");
        assert_eq!(json["input_bytes"], 3);
        assert_eq!(json["input_digest"], hex::encode(&sha256(b"abc")));
        // Text that is not a JSON object stays text.
        let record = Record {
            entry: entry(
                "import",
                None,
                Event::Filing {
                    schema: 2,
                    manifest: "[1]".into(),
                    input: vec![],
                },
            ),
            ..record
        };
        assert_eq!(record_json(&record)["manifest"], "[1]");
    }

    /// Every variant renders: a verb and no raw control character in the
    /// line, an `event` name in the JSON.
    #[test]
    fn every_generated_record_renders() {
        let mut g = crate::codec::Gen(0x5eed_0005);
        for _ in 0..5_000 {
            let mut record: Record = g.of();
            record.entry.runway.push('\n');
            let line = record_line(&record);
            assert!(!line.contains('\n'), "{line}");
            assert!(line.split_whitespace().nth(2).is_some(), "{line}");
            assert!(record_json(&record)["event"].is_string(), "{record:?}");
        }
    }
}
