//! `hostile`: a malicious agent for the host's sandbox tests. Every attack
//! really does the harmful thing; the host is expected to stop it (or to
//! shrug it off) and stay healthy for the next run.
//!
//! The run's `action` picks the attack; the input (JSON, optional) may
//! parameterise it. "First exclusive dataset" is the first lock the run
//! holds in exclusive mode (manifest order); an action that needs one fails
//! with `invalid` without it.
//!
//! | action | what it does | what the host must do |
//! | --- | --- | --- |
//! | `ok` | outputs `{}` | run succeeds (the component loads) |
//! | `spin` | `loop` on a `black_box`ed counter, no host calls | stop it: fuel or wall-clock window |
//! | `spin-calls` | endless cheap host calls: `datasets.read` of a missing key on its first lock's dataset (`hostile_none` without one; `{"via": "log"}`: `log` at trace level instead), errors ignored | stop it: fuel or the window (every read is audited) |
//! | `grow-memory` | allocates 1 MiB chunks and writes a byte into every 4 KiB of each, forever | refuse `memory.grow` past `memory_mib`; the guest then aborts |
//! | `recurse` | unbounded non-tail recursion; `{"big_frames": true}` puts a 4 KiB array in each frame | small frames: wasm stack overflow trap; big frames: the 1 MiB shadow stack runs below address 0, an out-of-bounds trap |
//! | `huge-value` | `{"mib": N}` (default 64): allocates N MiB and `write`s it as one value, key `hostile/huge` of the first exclusive dataset; a refusal fails the run with the host's error | refuse it (a value over the host's cap; a transfer over its hostcall budget traps) |
//! | `forged-length` | calls the raw `write` import with a lying pointer/length, see [`forged`]; `{"forge": "value-len" (default) \| "value-ptr" \| "dataset-len" \| "ret-ptr" \| "ret-misaligned"}` | trap the run; with `ret-ptr`/`ret-misaligned` the write already happened, so drop it |
//! | `million-keys` | `write`s a 1,000,000-byte value (`hostile/million`), then `{"keys": K}` (default 0) tiny records `hostile/k/NNNNNNNNNN` (stops at the first error), then one `list` with limit `u32::MAX` | apply its caps (value size, staged writes, page size) |
//! | `log-flood` | `log` (info) 100,000 messages of 64 KiB, then 100,000 lines each to stdout and stderr, with ANSI escapes, `\r`, NUL, bell, bidi overrides, fake log lines and (once) invalid UTF-8; `{"messages", "message_kib", "lines"}` override the counts | keep at most `max_log_kib` of it, neutralised; the run succeeds |
//! | `trap-midway` | `write`s `hostile/000`..`hostile/099` to the first exclusive dataset, then executes `unreachable` | fail the run and leave the dataset unchanged |
//! | `panic` | `panic!("hostile panic: ...")` | fail the run (a trap) |
//! | `big-output` | `{"mib": N}` (default 8) or `{"kib": K}`: returns a JSON object of exactly that many bytes (`{}` if under 10) | refuse an output over `max_output_kib` (over about 1 MiB, wasmtime's hostcall fuel may trap the result's lifting first) |
//! | `sleep` | `{"secs": N}` (default 30): `std::thread::sleep`, a WASI monotonic-clock wait, then outputs `{}` | end the run at its window although the guest is blocked in the host |
//! | `key-flood` | `{"keys": K, "key_len": L}` (defaults 1,000,000 and 191): `write`s K empty values under L-byte keys of the first exclusive dataset; the first refusal fails the run with the host's error | refuse past the staging caps (keys count, not only value bytes) |
//! | `ansi-error` | `{"kib": K}` (default 900): fails with `invalid` carrying K KiB of ANSI/OSC escapes, fake `SUCCEEDED` and `audit ok` lines | store the reason capped; print it escaped |
//! | `ansi-output` | `{"kib": K}` (default 64): succeeds with K KiB of the same text as its output | print it escaped |
//! | `wasi-escape` | tries `/etc/passwd`, listing `/`, writing `/tmp/runway-escape`, the environment, the arguments, TCP to 127.0.0.1:22, a UDP bind, resolving `localhost` | deny them all; see [`escape`] |
//!
//! Outputs, when there is one:
//! - `ok`: `{}`;
//! - `huge-value` (only if the host took the value): `{"dataset", "bytes",
//!   "outcome": "ok"}`;
//! - `million-keys`: `{"dataset", "write": {"bytes", "outcome", "message"},
//!   "keys": {"requested", "written", "outcome", "message"},
//!   "list": {"limit", "outcome", "message", "returned", "next_cursor"}}`;
//! - `log-flood`: `{"log_calls", "log_bytes", "stdout_lines",
//!   "stdout_errors", "stderr_lines", "stderr_errors"}`;
//! - `big-output`: `{"pad": "xxx..."}`, exactly the requested size;
//! - `wasi-escape`: `{"attempts": [{"what", "outcome", "detail", "escaped"}]}`.
//!
//! An `outcome` of a host call is `ok` or the WIT error case (`denied`,
//! `lock-lost`, `not-found`, `invalid`, `limit`), with its text in
//! `message`. `huge-value` fails the run with the host's error if the write
//! is refused, and with `invalid("hostile: could not allocate ...")` if the
//! N MiB do not fit under its own memory cap (nothing is sent then; N must
//! stay well below `memory_mib`). `wasi-escape` fails
//! the run with `invalid("hostile: escaped via ...")` if any attempt got
//! out; `forged-length` fails it with `invalid("hostile: ...")` if the host
//! returned at all. An unknown action is `invalid`.

mod escape;
mod forged;

use std::hint::black_box;
use std::io::Write;

use runway_sdk::bindings::runway::agent::datasets;
use runway_sdk::{Context, Dataset, Error, LockMode, RawAgent, export_agent, log};
use serde::Deserialize;
use serde_json::{Value, json};

const MIB: usize = 1 << 20;
/// Bytes per page touched by `grow-memory`: the host's page size, so each
/// one is really backed by host memory.
const HOST_PAGE: usize = 4096;

/// `ok` or the WIT case of a host call's error, and the error's text.
fn outcome<T>(result: &Result<T, Error>) -> (&'static str, &str) {
    match result {
        Ok(_) => ("ok", ""),
        Err(e) => (e.kind(), e.message()),
    }
}

/// The first dataset the run holds exclusively.
fn exclusive(ctx: &Context, action: &str) -> Result<Dataset, Error> {
    ctx.first_lock(LockMode::Exclusive)
        .map(|lock| ctx.dataset(&lock.dataset))
        .ok_or_else(|| Error::Invalid(format!("hostile: {action} needs an exclusive lock")))
}

/// Stop the instance with a wasm `unreachable` trap.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Input of `huge-value`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SizeInput {
    mib: Option<u32>,
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n).wrapping_add(1);
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SpinCallsInput {
    /// `read` (default) or `log`.
    via: Option<String>,
}

fn spin_calls(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: SpinCallsInput = ctx.input()?;
    match input.via.as_deref().unwrap_or("read") {
        "read" => {
            let data = match ctx.info().locks.first() {
                Some(lock) => ctx.dataset(&lock.dataset),
                None => ctx.dataset("hostile_none"),
            };
            loop {
                let _ = black_box(data.read("hostile/missing"));
            }
        }
        "log" => loop {
            log::trace(black_box("hostile: spinning"));
        },
        other => Err(Error::Invalid(format!("hostile: unknown via {other:?}"))),
    }
}

fn grow_memory() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; MIB];
        for byte in chunk.iter_mut().step_by(HOST_PAGE) {
            *byte = 1;
        }
        held.push(black_box(chunk));
        if held.len().is_multiple_of(16) {
            log::debug(&format!("hostile: holding {} MiB", held.len()));
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RecurseInput {
    big_frames: bool,
}

/// Recursion with small frames: exhausts the wasm call stack. The result
/// goes through `black_box` after the call, so it is not a tail call and
/// cannot become a loop; the exit condition is opaque, so never taken.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = recurse(black_box(depth.wrapping_add(1)));
    black_box(below) ^ depth
}

/// Recursion with a 4 KiB array in every frame, kept in linear memory by
/// `black_box`: exhausts the shadow stack first.
#[inline(never)]
fn recurse_big(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 4096]);
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = recurse_big(black_box(depth.wrapping_add(1)));
    black_box(below) ^ u64::from(frame[depth as usize % frame.len()])
}

fn huge_value(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: SizeInput = ctx.input()?;
    let mib = input.mib.unwrap_or(64);
    let data = exclusive(ctx, "huge-value")?;
    let mut value = Vec::new();
    match (mib as usize).checked_mul(MIB) {
        Some(n) if value.try_reserve_exact(n).is_ok() => value.resize(n, b'h'),
        _ => {
            return Err(Error::Invalid(format!(
                "hostile: could not allocate {mib} MiB in linear memory; nothing was sent"
            )));
        }
    }
    // A refusal fails the run with the host's own error case and message.
    data.write("hostile/huge", &value)?;
    let output = json!({
        "dataset": data.name(),
        "bytes": value.len(),
        "outcome": "ok",
    });
    Ok(serde_json::to_vec(&output)?)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ForgedInput {
    forge: forged::Forge,
}

fn forged_length(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: ForgedInput = ctx.input()?;
    let dataset = ctx
        .first_lock(LockMode::Exclusive)
        .map_or("hostile_forged", |lock| lock.dataset.as_str());
    let returned = forged::call(dataset, input.forge);
    Err(Error::Invalid(format!("hostile: {returned}")))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct MillionKeysInput {
    keys: u32,
}

/// Bytes of the big value written by `million-keys`.
const MILLION: usize = 1_000_000;

fn million_keys(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: MillionKeysInput = ctx.input()?;
    let data = exclusive(ctx, "million-keys")?;

    let write = data.write("hostile/million", &vec![b'm'; MILLION]);
    let (write_outcome, write_message) = outcome(&write);

    let mut written = 0u32;
    let mut keys = Ok(());
    for i in 0..input.keys {
        match data.write(&format!("hostile/k/{i:010}"), b"{}") {
            Ok(()) => written += 1,
            Err(e) => {
                keys = Err(e);
                break;
            }
        }
    }
    let (keys_outcome, keys_message) = outcome(&keys);

    let list = datasets::list(data.name(), "", None, u32::MAX);
    let (list_outcome, list_message) = outcome(&list);
    let (returned, next_cursor) = list.as_ref().map_or((0, false), |page| {
        (page.keys.len(), page.next_cursor.is_some())
    });

    let output = json!({
        "dataset": data.name(),
        "write": { "bytes": MILLION, "outcome": write_outcome, "message": write_message },
        "keys": {
            "requested": input.keys,
            "written": written,
            "outcome": keys_outcome,
            "message": keys_message,
        },
        "list": {
            "limit": u32::MAX,
            "outcome": list_outcome,
            "message": list_message,
            "returned": returned,
            "next_cursor": next_cursor,
        },
    });
    Ok(serde_json::to_vec(&output)?)
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FloodInput {
    messages: u32,
    message_kib: u32,
    lines: u32,
}

impl Default for FloodInput {
    fn default() -> Self {
        Self {
            messages: 100_000,
            message_kib: 64,
            lines: 100_000,
        }
    }
}

/// Text that pretends to be the host's own log, in colour, with a carriage
/// return, a bell, a NUL and a right-to-left override thrown in.
const FAKE_LOG: &str = "\x1b[31mERROR\x1b[0m runway::host: audit trail corrupted\r\
     2099-01-01T00:00:00Z  INFO runway::executor: run committed agent=hostile\x07\0\u{202e}txt.exe\n\
     [INFO] fake host line\x1b[2K\x1b[1A\n";

fn log_flood(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: FloodInput = ctx.input()?;
    let size = (input.message_kib as usize).saturating_mul(1024);
    let mut message = String::with_capacity(size.max(FAKE_LOG.len()));
    while message.len() + FAKE_LOG.len() <= size.max(FAKE_LOG.len()) {
        message.push_str(FAKE_LOG);
    }
    while message.len() < size {
        message.push('A');
    }
    for _ in 0..input.messages {
        log::info(black_box(&message));
    }

    let (mut stdout_errors, mut stderr_errors) = (0u32, 0u32);
    // Write errors (e.g. a capped pipe that closed) are counted, not fatal:
    // `println!` would panic on them and end the flood early.
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    stdout_errors += u32::from(out.write_all(b"\xff\xfe not UTF-8 \xc3\x28\n").is_err());
    for i in 0..input.lines {
        let line = format!("{i:06} {FAKE_LOG}");
        stdout_errors += u32::from(out.write_all(line.as_bytes()).is_err());
        stderr_errors += u32::from(err.write_all(line.as_bytes()).is_err());
    }
    stdout_errors += u32::from(out.flush().is_err());

    let output = json!({
        "log_calls": input.messages,
        "log_bytes": u64::from(input.messages) * message.len() as u64,
        "stdout_lines": input.lines,
        "stdout_errors": stdout_errors,
        "stderr_lines": input.lines,
        "stderr_errors": stderr_errors,
    });
    Ok(serde_json::to_vec(&output)?)
}

fn trap_midway(ctx: &Context) -> Result<Vec<u8>, Error> {
    let data = exclusive(ctx, "trap-midway")?;
    for i in 0..100 {
        data.write(
            &format!("hostile/{i:03}"),
            format!("{{\"n\":{i}}}").as_bytes(),
        )?;
    }
    log::warn("hostile: wrote hostile/000..099, now trapping");
    trap()
}

/// Input of `big-output`: `kib`, if given, wins over `mib`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct OutputInput {
    mib: Option<u32>,
    kib: Option<u32>,
}

fn big_output(ctx: &Context) -> Result<Vec<u8>, Error> {
    const OPEN: &[u8] = b"{\"pad\":\"";
    const CLOSE: &[u8] = b"\"}";
    let input: OutputInput = ctx.input()?;
    let total = match (input.kib, input.mib) {
        (Some(kib), _) => (kib as usize).checked_mul(1024),
        (None, mib) => (mib.unwrap_or(8) as usize).checked_mul(MIB),
    }
    .ok_or_else(|| Error::Invalid("hostile: output size does not fit in memory".into()))?;
    let Some(pad) = total.checked_sub(OPEN.len() + CLOSE.len()) else {
        return Ok(b"{}".to_vec());
    };
    let mut output = Vec::with_capacity(total);
    output.extend_from_slice(OPEN);
    output.resize(OPEN.len() + pad, b'x');
    output.extend_from_slice(CLOSE);
    Ok(output)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SleepInput {
    secs: Option<u64>,
}

fn sleep(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: SleepInput = ctx.input()?;
    std::thread::sleep(std::time::Duration::from_secs(input.secs.unwrap_or(30)));
    Ok(b"{}".to_vec())
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct KeyFloodInput {
    keys: Option<u32>,
    key_len: Option<usize>,
}

fn key_flood(ctx: &Context) -> Result<Vec<u8>, Error> {
    let input: KeyFloodInput = ctx.input()?;
    let data = exclusive(ctx, "key-flood")?;
    let (keys, len) = (
        input.keys.unwrap_or(1_000_000),
        input.key_len.unwrap_or(191),
    );
    let pad = "k".repeat(len.saturating_sub(11));
    for i in 0..keys {
        // The first refusal fails the run with the host's error.
        data.write(&format!("{pad}/{i:010}"), b"")?;
    }
    Ok(serde_json::to_vec(&json!({ "written": keys }))?)
}

/// Text meant to take over an operator's terminal: clear the screen, set the
/// window title (OSC), and print lines that look like the host's own.
const TERMINAL_ATTACK: &str = "\x1b[2J\x1b[H\x1b]0;runway: all good\x07\
     import       SUCCEEDED  {\"imported\":40000}\n\
     audit runway-audit: ok, 3 records\n\u{202e}deliaf\u{200b}\u{2066}";

/// `TERMINAL_ATTACK` repeated to `{"kib": K}` KiB (default `default_kib`).
fn attack_text(ctx: &Context, default_kib: u32) -> Result<String, Error> {
    let input: SizeKibInput = ctx.input()?;
    let size = (input.kib.unwrap_or(default_kib) as usize).saturating_mul(1024);
    let mut text = String::with_capacity(size + TERMINAL_ATTACK.len());
    while text.len() < size {
        text.push_str(TERMINAL_ATTACK);
    }
    Ok(text)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SizeKibInput {
    kib: Option<u32>,
}

fn wasi_escape() -> Result<Vec<u8>, Error> {
    let attempts = escape::attempts();
    for a in &attempts {
        log::info(&format!("{}: {} {}", a.what, a.outcome, a.detail));
    }
    let escaped: Vec<String> = attempts
        .iter()
        .filter(|a| a.escaped)
        .map(|a| format!("{} ({})", a.what, a.detail))
        .collect();
    if !escaped.is_empty() {
        return Err(Error::Invalid(format!(
            "hostile: escaped via {}",
            escaped.join(", ")
        )));
    }
    let output: Value = json!({ "attempts": attempts });
    Ok(serde_json::to_vec(&output)?)
}

struct Hostile;

impl RawAgent for Hostile {
    fn run(ctx: &Context) -> Result<Vec<u8>, Error> {
        let action = ctx.info().action.as_str();
        log::info(&format!("hostile: {action}"));
        match action {
            "ok" => Ok(b"{}".to_vec()),
            "spin" => spin(),
            "spin-calls" => spin_calls(ctx),
            "grow-memory" => grow_memory(),
            "recurse" => {
                let input: RecurseInput = ctx.input()?;
                let depth = if input.big_frames {
                    recurse_big(0)
                } else {
                    recurse(0)
                };
                Err(Error::Invalid(format!(
                    "hostile: recursion ended at {depth}, which it never should"
                )))
            }
            "huge-value" => huge_value(ctx),
            "forged-length" => forged_length(ctx),
            "million-keys" => million_keys(ctx),
            "log-flood" => log_flood(ctx),
            "trap-midway" => trap_midway(ctx),
            "panic" => panic!("hostile panic: failing the run on purpose"),
            "big-output" => big_output(ctx),
            "wasi-escape" => wasi_escape(),
            "sleep" => sleep(ctx),
            "key-flood" => key_flood(ctx),
            "ansi-error" => Err(Error::Invalid(attack_text(ctx, 900)?)),
            "ansi-output" => Ok(attack_text(ctx, 64)?.into_bytes()),
            other => Err(Error::Invalid(format!("hostile: unknown action {other:?}"))),
        }
    }
}

export_agent!(raw Hostile);
