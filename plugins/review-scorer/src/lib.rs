//! `review-scorer`: reviews a range of the nightly's applications and flags
//! the suspicious ones. Two actions, one answer: `thorough` and `quick`
//! give the same output for any range `quick` takes on (`review-shard`
//! races them).
//!
//! Input: `{"dataset": string, "first": u32, "last": u32, "width": usize}`:
//! the applications `app/<id>` for every id `first..=last`, zero-padded to
//! `width` digits as `import-applications` writes them.
//!
//! For each id it reads `app/<id>`, `compliance/<id>` and `award/<id>` (an
//! application that failed compliance has no award) and flags it when its
//! award is above zero while it declares no income and at least
//! [`FLAG_DEPENDENTS`] dependents: a large household living on nothing is
//! worth a second look before the money goes out.
//!
//! `quick` refuses (an `invalid` error) a range holding an application that
//! broke [`QUICK_MAX_REASONS`] or more compliance rules: it cannot judge
//! those quickly. `thorough` takes any range.
//!
//! Output: `{"first", "last", "reviewed": N, "flagged": [id], "awarded_total": USD}`,
//! ids as in the keys (`"000017"`), in order; `awarded_total` sums the
//! range's awards.

use runway_sdk::{Agent, Context, Error, export_agent};
use serde::{Deserialize, Serialize};

/// Fewest dependents that, with no income and an award, raise a flag.
const FLAG_DEPENDENTS: u32 = 4;
/// Compliance rules broken that make `quick` give a range up.
const QUICK_MAX_REASONS: usize = 3;

#[derive(Deserialize)]
struct Input {
    dataset: String,
    first: u32,
    last: u32,
    width: usize,
}

/// The fields of an application the rule reads.
#[derive(Deserialize)]
struct Application {
    dependents: u32,
    income: u64,
}

/// The part of a `compliance/<id>` record read.
#[derive(Deserialize)]
struct Verdict {
    reasons: Vec<String>,
}

/// The part of an `award/<id>` record read.
#[derive(Deserialize)]
struct Award {
    amount: u64,
}

/// What a range's review found.
#[derive(Serialize)]
struct Review {
    first: u32,
    last: u32,
    reviewed: u64,
    flagged: Vec<String>,
    awarded_total: u64,
}

struct ReviewScorer;

impl Agent for ReviewScorer {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let input: Input = ctx.input()?;
        let quick = match ctx.info().action.as_str() {
            "quick" => true,
            "thorough" => false,
            other => {
                return Err(Error::Invalid(format!(
                    "no action {other:?}: quick or thorough"
                )));
            }
        };
        let data = ctx.dataset(&input.dataset);
        let mut review = Review {
            first: input.first,
            last: input.last,
            reviewed: 0,
            flagged: Vec::new(),
            awarded_total: 0,
        };
        for n in input.first..=input.last {
            let id = format!("{n:0width$}", width = input.width);
            let verdict: Verdict = data.get(&format!("compliance/{id}"))?;
            if quick && verdict.reasons.len() >= QUICK_MAX_REASONS {
                return Err(Error::Invalid(format!(
                    "application {id} broke {} compliance rules: too many to judge quickly",
                    verdict.reasons.len()
                )));
            }
            let app: Application = data.get(&format!("app/{id}"))?;
            let award = data.get_opt::<Award>(&format!("award/{id}"))?;
            let amount = award.map_or(0, |a| a.amount);
            if amount > 0 && app.income == 0 && app.dependents >= FLAG_DEPENDENTS {
                review.flagged.push(id);
            }
            review.reviewed += 1;
            review.awarded_total += amount;
        }
        Ok(review)
    }
}

export_agent!(ReviewScorer);
