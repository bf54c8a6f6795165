//! `review-planner`: the review pipeline over the nightly's dataset, as a
//! tree of runways.
//!
//! Input: `{"dataset": string, "review": string, "shard_size": u32}`; the
//! run holds `dataset` shared and `review` exclusive.
//!
//! 1. Scatter: counts the `app/` keys of `dataset` (ids `1..=count`,
//!    zero-padded as `import-applications` writes them), splits them into
//!    shards of `shard_size` ids and delegates a `review-shard` per shard,
//!    all at once, each handed `dataset` shared; joins them all.
//! 2. Gather: delegates `review-summary` with the shards' reviews as its
//!    input and `review` handed down exclusive; joins it; then reads the
//!    `summary` record back (the lock has come back to this run).
//! 3. Hands off to `review-appeals`, which takes over when this run ends:
//!    its input `{"review", "flagged": [id]}`, every case flagged, its lock
//!    `review` exclusive.
//!
//! Reports progress after each step. Output: the `summary` record read back
//! (`{"shards", "reviewed", "flagged", "awarded_total"}`, see
//! `review-summary`).

use runway_sdk::{Agent, Context, Delegation, Error, Handoff, LockMode, export_agent, log};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    dataset: String,
    review: String,
    shard_size: u32,
}

/// The part of a shard's review the planner reads.
#[derive(Deserialize)]
struct ShardReview {
    flagged: Vec<String>,
}

struct ReviewPlanner;

impl Agent for ReviewPlanner {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let Input {
            dataset,
            review,
            shard_size,
        } = ctx.input()?;
        if shard_size == 0 {
            return Err(Error::Invalid("shard_size must be above zero".into()));
        }
        let count = u32::try_from(ctx.dataset(&dataset).count("app/")?)
            .map_err(|_| Error::Invalid(format!("too many applications in {dataset}")))?;
        let width = count.to_string().len().max(6);
        let shards: Vec<Delegation> = (1..=count)
            .step_by(shard_size as usize)
            .map(|first| {
                let last = first.saturating_add(shard_size - 1).min(count);
                let range =
                    json!({ "dataset": dataset, "first": first, "last": last, "width": width });
                Ok(Delegation::to("review-shard")
                    .input(&range)?
                    .lock(&dataset, LockMode::Shared))
            })
            .collect::<Result<_, Error>>()?;
        let steps = shards.len() as u64 + 1;
        ctx.progress(0, steps, &format!("reviewing {count} applications"));

        // Scatter, then gather.
        let reviews = ctx.parallel(shards)?.join_all()?;
        let (mut shards, mut flagged) = (Vec::new(), Vec::new());
        for r in &reviews {
            shards.push(r.json::<Value>()?);
            flagged.extend(r.json::<ShardReview>()?.flagged);
        }
        ctx.progress(steps - 1, steps, "shards reviewed");
        ctx.chain([Delegation::to("review-summary")
            .input(&json!({ "review": review, "shards": shards }))?
            .lock(&review, LockMode::Exclusive)])?;
        // The lock is back with this run: the summary the child wrote.
        let summary: Value = ctx.dataset(&review).get("summary")?;
        ctx.progress(steps, steps, "summarised");

        log::info!(
            "{} of {count} applications flagged for appeal",
            flagged.len()
        );
        let appeals = Handoff::to("review-appeals")
            .input(&json!({ "review": review, "flagged": flagged }))?
            .lock(&review, LockMode::Exclusive);
        ctx.handoff(appeals)?;
        Ok(summary)
    }
}

export_agent!(ReviewPlanner);
