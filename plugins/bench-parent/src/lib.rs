//! `bench-parent`: the parent of Runway's delegation benchmark
//! (`tests/benches/delegation.rs`). It imports `orchestration`, so its runs
//! fly on a fiber; its children are runs of the `bench` agent, which does
//! not, so they fly the synchronous way. It is an agent of its own, not an
//! action of `bench`, so that every `bench` run stays a run that does not
//! delegate (the sandbox bench's).
//!
//! Input is JSON; missing fields take the defaults shown.
//!
//! - `fan` `{"n": 1}`: delegates `n` children running `bench`'s `noop`,
//!   joins them all, and fails unless every one succeeded; outputs `n`;
//! - `race` `{"n": 8, "win_iters": 0, "lose_iters": 0}`: delegates one
//!   child running `bench`'s `spin` for `win_iters` rounds, then `n - 1`
//!   spinning for `lose_iters`, and joins them `first-success` (the host
//!   cancels the losers); outputs the winner's runway id.

use runway_sdk::{Agent, Context, Delegation, Error};
use serde::{Deserialize, Serialize};

/// Every action's input; each action reads the fields it needs.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    n: u32,
    win_iters: u64,
    lose_iters: u64,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            n: 1,
            win_iters: 0,
            lose_iters: 0,
        }
    }
}

/// `bench`'s `spin` input.
#[derive(Serialize)]
struct Spin {
    iters: u64,
}

struct BenchParent;

impl Agent for BenchParent {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let input: Input = ctx.input()?;
        match ctx.info().action.as_str() {
            "fan" => {
                let noop = (0..input.n).map(|_| Delegation::to("bench").action("noop"));
                let results = ctx.parallel(noop)?.join_all()?;
                match results.iter().find(|r| !r.succeeded()) {
                    Some(r) => Err(Error::Invalid(format!(
                        "fan: child {} ended {}: {:?}",
                        r.runway, r.state, r.reason
                    ))),
                    None => Ok(results.len().to_string()),
                }
            }
            "race" => {
                let spin = |iters| {
                    Delegation::to("bench")
                        .action("spin")
                        .input(&Spin { iters })
                };
                let mut racers = vec![spin(input.win_iters)?];
                for _ in 1..input.n {
                    racers.push(spin(input.lose_iters)?);
                }
                Ok(ctx.first_success(racers)?.runway)
            }
            other => Err(Error::Invalid(format!(
                "bench-parent: unknown action {other:?}"
            ))),
        }
    }
}

runway_sdk::export_agent!(BenchParent);
