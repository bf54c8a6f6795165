//! `compliance-check`: check every application against the eligibility rules
//! and record the verdict.
//!
//! Input (JSON, optional): `{"dataset": string}`, defaulting to the first
//! dataset the run holds exclusively.
//!
//! For every key `app/<id>` it writes `compliance/<id>` =
//! `{"id", "passed": bool, "reasons": [string]}`; `reasons` lists every rule
//! the application breaks (empty when it passes). The rules:
//! 1. `citizenship` is `citizen` or `eligible_noncitizen` (`other`, or
//!    anything else, fails);
//! 2. `enrolled_credits` is at least 6 (half time) and at most 24;
//! 3. `age` is at least 16;
//! 4. `income` is at least 0 and `household_size` at least 1;
//! 5. sanity: `dependents` is below `household_size` (the applicant is part
//!    of the household), `state` is two uppercase letters, and `id` matches
//!    the key. A record that is not a valid application JSON fails with the
//!    decoding error as its reason.
//!
//! Output: `{"checked": N, "passed": P, "failed": F}`.

use runway_sdk::{Agent, Context, Dataset, Error, LockMode, export_agent, log};
use serde::{Deserialize, Serialize};

/// The run's input; empty input means all defaults.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    dataset: Option<String>,
}

/// The fields of an application these rules look at. Numbers are signed so
/// a negative value is reported by a rule rather than as a decoding error.
#[derive(Deserialize)]
struct Application {
    id: String,
    state: String,
    age: i64,
    household_size: i64,
    dependents: i64,
    income: i64,
    enrolled_credits: i64,
    citizenship: String,
}

/// The verdict stored under `compliance/<id>`.
#[derive(Serialize)]
struct Verdict {
    id: String,
    passed: bool,
    reasons: Vec<String>,
}

/// Every rule `app` breaks, given the id from its key.
fn violations(id: &str, app: &Application) -> Vec<String> {
    let mut reasons = Vec::new();
    if !matches!(app.citizenship.as_str(), "citizen" | "eligible_noncitizen") {
        reasons.push(format!("citizenship {:?} is not eligible", app.citizenship));
    }
    if app.enrolled_credits < 6 {
        reasons.push(format!(
            "enrolled in {} credits, fewer than 6",
            app.enrolled_credits
        ));
    }
    if app.enrolled_credits > 24 {
        reasons.push(format!(
            "enrolled in {} credits, more than 24",
            app.enrolled_credits
        ));
    }
    if app.age < 16 {
        reasons.push(format!("age {} is under 16", app.age));
    }
    if app.income < 0 {
        reasons.push(format!("income {} is negative", app.income));
    }
    if app.household_size < 1 {
        reasons.push(format!("household size {} is below 1", app.household_size));
    }
    if app.dependents < 0 || app.dependents >= app.household_size {
        reasons.push(format!(
            "{} dependents do not fit a household of {}",
            app.dependents, app.household_size
        ));
    }
    if app.state.len() != 2 || !app.state.bytes().all(|b| b.is_ascii_uppercase()) {
        reasons.push(format!("state {:?} is not a two-letter code", app.state));
    }
    if app.id != id {
        reasons.push(format!("record id {:?} does not match its key", app.id));
    }
    reasons
}

/// The verdict for the record under `app/<id>`.
fn check(data: &Dataset, id: &str) -> Result<Verdict, Error> {
    let reasons = match data.get::<Application>(&format!("app/{id}")) {
        Ok(app) => violations(id, &app),
        Err(Error::Invalid(why)) => vec![format!("malformed application: {why}")],
        Err(e) => return Err(e),
    };
    Ok(Verdict {
        id: id.to_owned(),
        passed: reasons.is_empty(),
        reasons,
    })
}

struct ComplianceCheck;

impl Agent for ComplianceCheck {
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
        let (mut checked, mut passed) = (0u64, 0u64);
        for key in data.keys("app/") {
            let key = key?;
            let id = &key["app/".len()..];
            let verdict = check(&data, id)?;
            data.put(&format!("compliance/{id}"), &verdict)?;
            checked += 1;
            passed += u64::from(verdict.passed);
        }
        let failed = checked - passed;
        log::info(&format!(
            "{name}: checked {checked}, passed {passed}, failed {failed}"
        ));
        let output = serde_json::json!({ "checked": checked, "passed": passed, "failed": failed });
        Ok(output)
    }
}

export_agent!(ComplianceCheck);
