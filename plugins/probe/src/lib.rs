//! `probe`: a test agent that deliberately attempts what it must not, and
//! reports what the host answered.
//!
//! The behaviour is chosen by the run's `action`:
//! - `read-unlocked`: reads key `probe` of the dataset named by the input
//!   `{"dataset": string}` (default `probe-unlocked`), which must be one the
//!   run holds no lock on;
//! - `write-shared`: writes, then deletes, key `probe` in the first dataset
//!   the run holds in shared mode (it must hold one);
//! - `bad-names`: reads dataset names `..`, `../x`, `/etc/passwd`, `a/b`,
//!   `""`, a 300-character name and a name with a NUL; then, in the first
//!   dataset it holds (`probe` if none), reads (and, if that lock is
//!   exclusive, writes) the same names as keys except `a/b`, which is a valid
//!   key;
//! - `all`: all of the above;
//! - `ok`: does nothing and outputs `{}`;
//! - `fail`: returns an `invalid` error;
//! - `trap`: panics, which traps the instance;
//! - `locks`: outputs the locks it was told, in order, as
//!   `[{"dataset", "mode", "token"}, ...]`, each also looked up by name;
//! - `flaky`: fails (an `invalid` error) on its first attempt, succeeds
//!   with `{"attempt": N}` on any later one;
//! - `slow-first`: sleeps 600 s on its first attempt (past any stop's
//!   grace), succeeds with `{"attempt": N}` at once on any later one.
//! - `as-told`: behaves as the input tells the agent it runs as (several
//!   agent names may share this component): `{"slow_ms": {"<agent>": ms},
//!   "fail": ["<agent>", ...]}` — sleeps that long, then fails (an
//!   `invalid` error) when named in `fail`, else outputs `{"agent": name}`;
//! - `count`: counts the keys under the input's `prefix` (default `""`) in
//!   each dataset it holds, in manifest order; in one held exclusive it
//!   first stages two new keys, rewrites the first key listed, deletes the
//!   second and writes then deletes a fifth, and counts again. Then it
//!   counts and lists the input's `dataset`, which it must not hold. Output:
//!   `{"held": [{"dataset", "before", "after", "listed"}, ...],
//!   "unlocked": {"count", "list"}}` (`after` is `before` when nothing was
//!   staged; `unlocked` holds each call's error as text).
//!
//! Each attempt's outcome is `ok` or the WIT error case it got (`denied`,
//! `lock-lost`, `not-found`, `invalid`, `limit`). The output is
//! `{"attempts": [{"what", "detail", "outcome"}, ...]}`. Every attempt here
//! is forbidden, so if any outcome is `ok` the run fails with
//! `invalid("probe: forbidden call allowed: ...")` (and its staged writes are
//! discarded).

use runway_sdk::{Agent, Context, Dataset, Error, LockMode, export_agent, log};
use serde::{Deserialize, Serialize};

/// The key every probing call uses.
const KEY: &str = "probe";

/// The run's input; empty input means all defaults.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    /// A dataset the run holds no lock on, for `read-unlocked` and `count`.
    dataset: String,
    /// The prefix `count` counts under.
    prefix: String,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            dataset: "probe-unlocked".into(),
            prefix: String::new(),
        }
    }
}

/// One forbidden call and what the host answered.
#[derive(Serialize)]
struct Attempt {
    what: &'static str,
    detail: String,
    outcome: &'static str,
}

/// The attempts of one run.
#[derive(Default, Serialize)]
struct Report {
    attempts: Vec<Attempt>,
}

impl Report {
    fn record(&mut self, what: &'static str, detail: String, result: Result<impl Sized, Error>) {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        log::info(&format!("{what} {detail}: {outcome}"));
        self.attempts.push(Attempt {
            what,
            detail,
            outcome,
        });
    }
}

/// Names that are never valid as a dataset name, with `a/b` last.
fn bad_names() -> Vec<String> {
    vec![
        "..".into(),
        "../x".into(),
        "/etc/passwd".into(),
        String::new(),
        "x".repeat(300),
        "nul\0name".into(),
        "a/b".into(),
    ]
}

/// A readable rendering of a name: escaped, long ones abbreviated.
fn show(name: &str) -> String {
    if name.len() > 40 {
        format!("{:?}... ({} bytes)", &name[..16], name.len())
    } else {
        format!("{name:?}")
    }
}

fn read_unlocked(ctx: &Context, report: &mut Report) -> Result<(), Error> {
    let input: Input = ctx.input()?;
    if ctx.info().locks.iter().any(|l| l.dataset == input.dataset) {
        return Err(Error::Invalid(format!(
            "probe: read-unlocked needs a dataset without a lock, but {} is locked",
            input.dataset
        )));
    }
    let data = ctx.dataset(&input.dataset);
    report.record("read-unlocked", show(data.name()), data.read(KEY));
    Ok(())
}

fn write_shared(ctx: &Context, report: &mut Report) -> Result<(), Error> {
    let lock = ctx
        .first_lock(LockMode::Shared)
        .ok_or_else(|| Error::Invalid("probe: write-shared needs a shared lock".into()))?;
    let data = ctx.dataset(&lock.dataset);
    report.record("write-shared", show(data.name()), data.write(KEY, b"{}"));
    report.record("delete-shared", show(data.name()), data.delete(KEY));
    Ok(())
}

fn bad_names_probe(ctx: &Context, report: &mut Report) {
    for name in bad_names() {
        let data = ctx.dataset(&name);
        report.record("bad-dataset-name", show(&name), data.read(KEY));
    }
    let (held, exclusive): (Dataset, bool) = match ctx.info().locks.first() {
        Some(lock) => (ctx.dataset(&lock.dataset), lock.mode == LockMode::Exclusive),
        None => (ctx.dataset("probe"), false),
    };
    for key in bad_names().into_iter().filter(|k| k != "a/b") {
        report.record("bad-key-read", show(&key), held.read(&key));
        if exclusive {
            report.record("bad-key-write", show(&key), held.write(&key, b"{}"));
        }
    }
}

/// The run's locks in the order it was told them, each found again by
/// dataset name.
fn locks(ctx: &Context) -> Result<serde_json::Value, Error> {
    let told = ctx.locks().iter().map(|l| {
        let found = ctx.lock(&l.dataset).map(|f| f.token);
        serde_json::json!({
            "dataset": l.dataset,
            "mode": if l.mode == LockMode::Shared { "shared" } else { "exclusive" },
            "token": found,
        })
    });
    Ok(told.collect())
}

/// The `count` action: counts as the run sees them, before and after
/// staging changes, and the refusals where the run holds no lock.
fn count(ctx: &Context) -> Result<serde_json::Value, Error> {
    let Input { dataset, prefix } = ctx.input()?;
    let mut held = Vec::new();
    for lock in ctx.locks() {
        let data = ctx.dataset(&lock.dataset);
        let before = data.count(&prefix)?;
        if lock.mode == LockMode::Exclusive {
            let keys: Vec<String> = data.keys(&prefix).take(2).collect::<Result<_, _>>()?;
            data.write(&format!("{prefix}count-new1"), b"1")?;
            data.write(&format!("{prefix}count-new2"), b"2")?;
            if let Some(first) = keys.first() {
                data.write(first, b"rewritten")?;
            }
            if let Some(second) = keys.get(1) {
                data.delete(second)?;
            }
            data.write(&format!("{prefix}count-tmp"), b"t")?;
            data.delete(&format!("{prefix}count-tmp"))?;
        }
        held.push(serde_json::json!({
            "dataset": lock.dataset,
            "before": before,
            "after": data.count(&prefix)?,
            "listed": data.keys(&prefix).count(),
        }));
    }
    let unlocked = ctx.dataset(&dataset);
    let text = |r: Result<(), Error>| r.map_or_else(|e| e.to_string(), |()| "ok".into());
    Ok(serde_json::json!({
        "held": held,
        "unlocked": {
            "count": text(unlocked.count(&prefix).map(drop)),
            "list": text(unlocked.keys(&prefix).next().unwrap_or(Ok(String::new())).map(drop)),
        },
    }))
}

struct Probe;

/// The input of `as-told`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AsTold {
    slow_ms: std::collections::BTreeMap<String, u64>,
    fail: Vec<String>,
}

fn as_told(ctx: &Context) -> Result<serde_json::Value, Error> {
    let told: AsTold = ctx.input()?;
    let agent = ctx.info().agent.clone();
    if let Some(&ms) = told.slow_ms.get(&agent) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    if told.fail.contains(&agent) {
        return Err(Error::Invalid(format!("probe: {agent} told to fail")));
    }
    Ok(serde_json::json!({ "agent": agent }))
}

impl Agent for Probe {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let mut report = Report::default();
        match ctx.info().action.as_str() {
            "ok" => return Ok(serde_json::json!({})),
            "fail" => return Err(Error::Invalid("probe: failing on purpose".into())),
            "trap" => panic!("probe: trapping on purpose"),
            "flaky" => {
                let attempt = ctx.info().attempt;
                // Each attempt logs its number, and the input's `say`.
                let input: serde_json::Value = ctx.input().unwrap_or_default();
                let say = input.get("say").and_then(|s| s.as_str()).unwrap_or("");
                log::info(format!("flaky: attempt {attempt} {say}").trim_end());
                if attempt < 2 {
                    return Err(Error::Invalid("probe: flaky, first attempt".into()));
                }
                return Ok(serde_json::json!({ "attempt": attempt }));
            }
            // The first attempt outlasts any stop's grace; later ones
            // succeed at once.
            "slow-first" => {
                let attempt = ctx.info().attempt;
                if attempt < 2 {
                    std::thread::sleep(std::time::Duration::from_secs(600));
                }
                return Ok(serde_json::json!({ "attempt": attempt }));
            }
            "as-told" => return as_told(ctx),
            "locks" => return locks(ctx),
            "count" => return count(ctx),
            "read-unlocked" => read_unlocked(ctx, &mut report)?,
            "write-shared" => write_shared(ctx, &mut report)?,
            "bad-names" => bad_names_probe(ctx, &mut report),
            "all" => {
                read_unlocked(ctx, &mut report)?;
                write_shared(ctx, &mut report)?;
                bad_names_probe(ctx, &mut report);
            }
            other => return Err(Error::Invalid(format!("probe: unknown action {other:?}"))),
        }
        let allowed: Vec<String> = report
            .attempts
            .iter()
            .filter(|a| a.outcome == "ok")
            .map(|a| format!("{} {}", a.what, a.detail))
            .collect();
        if !allowed.is_empty() {
            return Err(Error::Invalid(format!(
                "probe: forbidden call allowed: {}",
                allowed.join(", ")
            )));
        }
        Ok(serde_json::to_value(&report)?)
    }
}

export_agent!(Probe);
