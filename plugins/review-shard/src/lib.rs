//! `review-shard`: reviews one shard of applications by racing two
//! redundant scorers — `review-scorer` with action `quick` and with action
//! `thorough`, each holding the dataset shared — and keeps the first that
//! succeeds (the other is cancelled, or has failed).
//!
//! Input: `{"dataset": string, "first": u32, "last": u32, "width": usize}`,
//! passed to both scorers as it is.
//!
//! Output: the winning scorer's output, byte for byte (see `review-scorer`).

use runway_sdk::{Context, Delegation, Error, LockMode, RawAgent, export_agent};
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {
    dataset: String,
}

struct ReviewShard;

impl RawAgent for ReviewShard {
    fn run(ctx: &Context) -> Result<Vec<u8>, Error> {
        let Input { dataset } = ctx.input()?;
        let scorer = |action: &str| {
            Delegation::to("review-scorer")
                .action(action)
                .raw_input(ctx.info().input.clone())
                .lock(&dataset, LockMode::Shared)
        };
        let winner = ctx.first_success([scorer("quick"), scorer("thorough")])?;
        Ok(winner.output().unwrap_or_default().to_vec())
    }
}

export_agent!(raw ReviewShard);
