//! `bench`: the agent of Runway's benchmarks (`tests/benches/sandbox.rs`).
//!
//! Each action does one kind of work and nothing else, so a benchmark can
//! time it in Runway and in a bare wasmtime host side by side. Input is JSON;
//! missing fields take the defaults shown.
//!
//! - `noop`: returns `0` at once (the run's only host call is
//!   the `context.info` every agent makes);
//! - `calls` `{"n": 0, "dataset": "bench_data", "key": "k"}`: `n`
//!   `datasets.read` calls; not-found (and any other error) is ignored;
//! - `write` `{"n": 0, "bytes": 0, "dataset": first exclusive lock}`: `n`
//!   `datasets.write` calls of one `bytes`-byte value under key `k`
//!   (`list<u8>` arguments);
//! - `log` `{"n": 0, "bytes": 0}`: `n` `log.info` calls with a `bytes`-byte
//!   message (`string` arguments: dataset keys are capped at 200 bytes by
//!   the host, messages are not capped before they cross);
//! - `spin` `{"iters": 0}`: a pure compute loop with no host call;
//! - `touch` `{"bytes": 0, "key": "k"}`: one `datasets.read` of `key` and
//!   one `datasets.write` of a `bytes`-byte value to it, in the first
//!   exclusive lock's dataset (the small run of the landing benchmark).
//!
//! `calls`, `write` and `log` output the nanoseconds their loop took
//! (a JSON number, read from the WASI monotonic clock around the loop
//! only), so a benchmark can time the host calls without the run's
//! set-up and tear-down; `spin` outputs its checksum (so the loop cannot be
//! optimised away); `noop` and `touch` output `0`.

use std::hint::black_box;
use std::time::Instant;

use runway_sdk::{Agent, Context, Error, LockMode, export_agent, log};
use serde::Deserialize;

/// Every action's input; each action reads the fields it needs.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    n: u32,
    bytes: usize,
    iters: u64,
    dataset: Option<String>,
    key: String,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            n: 0,
            bytes: 0,
            iters: 0,
            dataset: None,
            key: "k".into(),
        }
    }
}

struct Bench;

impl Agent for Bench {
    fn run(ctx: &Context) -> Result<impl serde::Serialize, Error> {
        let action = ctx.info().action.as_str();
        if action == "noop" {
            return Ok(0);
        }
        let input: Input = ctx.input()?;
        match action {
            "calls" => {
                let data = ctx.dataset(input.dataset.as_deref().unwrap_or("bench_data"));
                let start = Instant::now();
                for _ in 0..input.n {
                    let _ = black_box(data.read(&input.key));
                }
                Ok(elapsed(start))
            }
            "write" => {
                let data = ctx.dataset(&writable(ctx, input.dataset)?);
                let value = vec![0x5a; input.bytes];
                let start = Instant::now();
                for _ in 0..input.n {
                    data.write(&input.key, black_box(&value))?;
                }
                Ok(elapsed(start))
            }
            "log" => {
                let message = "a".repeat(input.bytes);
                let start = Instant::now();
                for _ in 0..input.n {
                    log::info(black_box(&message));
                }
                Ok(elapsed(start))
            }
            "spin" => Ok(spin(input.iters)),
            "touch" => {
                let data = ctx.dataset(&writable(ctx, input.dataset)?);
                let _ = black_box(data.read(&input.key));
                data.write(&input.key, &vec![0x5a; input.bytes])?;
                Ok(0)
            }
            other => Err(Error::Invalid(format!("bench: unknown action {other:?}"))),
        }
    }
}

/// The dataset named in the input, or the first one the run holds
/// exclusively.
fn writable(ctx: &Context, named: Option<String>) -> Result<String, Error> {
    match named {
        Some(name) => Ok(name),
        None => ctx
            .first_lock(LockMode::Exclusive)
            .map(|l| l.dataset.clone())
            .ok_or_else(|| Error::Denied("write needs an exclusive lock".into())),
    }
}

/// Nanoseconds since `start`, as the run's output.
fn elapsed(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// `iters` rounds of an xorshift-multiply mix: integer work, one loop
/// back-edge per round, no memory traffic.
fn spin(iters: u64) -> u64 {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15u64);
    for i in 0..black_box(iters) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_add(i);
    }
    black_box(x)
}

export_agent!(Bench);
