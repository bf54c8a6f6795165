//! `review-summary`: gathers the shards' reviews into one record.
//!
//! Input: `{"review": string, "shards": [review]}`, each review a
//! `review-scorer` output (`{"reviewed", "flagged": [id], "awarded_total", ...}`).
//!
//! Writes `summary` in the dataset `review` (held exclusive, handed down by
//! `review-planner`) = `{"shards": S, "reviewed": N, "flagged": F,
//! "awarded_total": USD}`: the number of shards, and the sums over them (F
//! counts flagged cases). Output: the same record.

use runway_sdk::{Agent, Context, Error, export_agent};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    review: String,
    shards: Vec<ShardReview>,
}

/// The part of a shard's review summed.
#[derive(Deserialize)]
struct ShardReview {
    reviewed: u64,
    flagged: Vec<String>,
    awarded_total: u64,
}

/// The `summary` record.
#[derive(Serialize)]
struct Summary {
    shards: usize,
    reviewed: u64,
    flagged: usize,
    awarded_total: u64,
}

struct ReviewSummary;

impl Agent for ReviewSummary {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let Input { review, shards } = ctx.input()?;
        let summary = Summary {
            shards: shards.len(),
            reviewed: shards.iter().map(|s| s.reviewed).sum(),
            flagged: shards.iter().map(|s| s.flagged.len()).sum(),
            awarded_total: shards.iter().map(|s| s.awarded_total).sum(),
        };
        ctx.dataset(&review).put("summary", &summary)?;
        Ok(summary)
    }
}

export_agent!(ReviewSummary);
