//! `grant-calculator`: compute a grant for every application that passed the
//! compliance check.
//!
//! Input (JSON, optional): `{"dataset": string}`, defaulting to the first
//! dataset the run holds exclusively.
//!
//! For every `compliance/<id>` record with `"passed": true` it reads
//! `app/<id>` and writes `award/<id>` = `{"id", "amount": u32}` (USD), zero
//! amounts included, so every passing application gets a decision. The
//! formula, a simplified Pell-style grant, in whole dollars:
//! - allowance = 15,000 + 5,500 × (household_size − 1);
//! - expected contribution = 22% of (income − allowance), or 0 if income is
//!   below the allowance;
//! - full-time award = 7,395 − expected contribution, floored at 0;
//! - amount = full-time award × min(enrolled_credits, 12) / 12 (rounded
//!   down), and an amount under 750 becomes 0.
//!
//! Output: `{"considered": C, "awarded": N, "total": T}`: C passing
//! applications, N of them with a non-zero award, T dollars in all.

use runway_sdk::{Agent, Context, Error, LockMode, export_agent, log};
use serde::{Deserialize, Serialize};

/// Largest award, for a full-time student with no expected contribution.
const MAX_AWARD: u64 = 7_395;
/// Awards below this are not paid.
const MIN_AWARD: u64 = 750;
/// Credits that count as full time.
const FULL_TIME_CREDITS: u64 = 12;

/// The run's input; empty input means all defaults.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    dataset: Option<String>,
}

/// The part of a `compliance/<id>` record this agent needs.
#[derive(Deserialize)]
struct Verdict {
    passed: bool,
}

/// The fields of an application the formula uses.
#[derive(Deserialize)]
struct Application {
    household_size: u64,
    income: u64,
    enrolled_credits: u64,
}

/// The record stored under `award/<id>`.
#[derive(Serialize)]
struct Award {
    id: String,
    amount: u32,
}

/// The grant for `app`, per the formula in the module docs.
fn amount(app: &Application) -> u32 {
    let allowance = 15_000 + 5_500 * app.household_size.saturating_sub(1);
    let contribution = app.income.saturating_sub(allowance) * 22 / 100;
    let full_time = MAX_AWARD.saturating_sub(contribution);
    let credits = app.enrolled_credits.min(FULL_TIME_CREDITS);
    let prorated = full_time * credits / FULL_TIME_CREDITS;
    // At most MAX_AWARD, so it always fits.
    if prorated < MIN_AWARD {
        0
    } else {
        prorated as u32
    }
}

struct GrantCalculator;

impl Agent for GrantCalculator {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let input: Input = ctx.input()?;
        let name = match input.dataset {
            Some(name) => name,
            None => ctx
                .first_lock(LockMode::Exclusive)
                .map(|lock| lock.dataset.clone())
                .ok_or_else(|| Error::Invalid("no dataset given and no exclusive lock".into()))?,
        };
        let data = ctx.dataset(&name);
        let (mut considered, mut awarded, mut total) = (0u64, 0u64, 0u64);
        for key in data.keys("compliance/") {
            let key = key?;
            let id = &key["compliance/".len()..];
            if !data.get::<Verdict>(&key)?.passed {
                continue;
            }
            let app: Application = data.get(&format!("app/{id}"))?;
            let award = Award {
                id: id.to_owned(),
                amount: amount(&app),
            };
            data.put(&format!("award/{id}"), &award)?;
            considered += 1;
            awarded += u64::from(award.amount > 0);
            total += u64::from(award.amount);
        }
        log::info(&format!(
            "{name}: {awarded} of {considered} passing applications awarded, ${total} in all"
        ));
        let output =
            serde_json::json!({ "considered": considered, "awarded": awarded, "total": total });
        Ok(output)
    }
}

export_agent!(GrantCalculator);
