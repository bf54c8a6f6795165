//! `import-applications`: write deterministic synthetic student-aid
//! applications into a dataset.
//!
//! Input (JSON, all optional): `{"dataset": string, "count": u32, "seed": u64}`.
//! - `dataset` defaults to the first dataset the run holds exclusively;
//! - `count` (default 1000) records are written under `app/000001`,
//!   `app/000002`, ... The number is zero-padded to 6 digits, or to the width
//!   of `count` if that is wider, so keys sort in numeric order;
//! - `seed` (default 1) drives a splitmix64 generator: the same seed and count
//!   always give the same records.
//!
//! Each record is JSON: `id` (the key's number), `name`, `state` (two-letter
//! US code), `age` (15..=64), `household_size` (1..=8), `dependents`
//! (normally below `household_size`; about 2% of records deliberately are
//! not), `income` (USD: 10% are 0, the rest log-uniform over 1,000..250,000),
//! `enrolled_credits` (0..=18) and `citizenship` (`citizen` 85%,
//! `eligible_noncitizen` 10%, `other` 5%).
//!
//! Output: `{"written": N}`.

use runway_sdk::{Agent, Context, Error, LockMode, export_agent, log};
use serde::{Deserialize, Serialize};

/// The run's input; empty input means all defaults.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Input {
    dataset: Option<String>,
    count: u32,
    seed: u64,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            dataset: None,
            count: 1000,
            seed: 1,
        }
    }
}

/// One application record, as stored under `app/<id>`.
#[derive(Serialize)]
struct Application {
    id: String,
    name: String,
    state: &'static str,
    age: u32,
    household_size: u32,
    dependents: u32,
    income: u64,
    enrolled_credits: u32,
    citizenship: &'static str,
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Imani", "Jon", "Kemi",
    "Luis", "Mei", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vik", "Wren",
    "Yusuf", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Abbott", "Baker", "Chen", "Diaz", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jones",
    "Kowalski", "Lopez", "Mensah", "Nguyen", "Okafor", "Patel", "Quist", "Rossi", "Singh",
    "Tanaka", "Usman", "Varga", "Walker", "Xu", "Young",
];

const STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY",
];

/// splitmix64: tiny, fast, and good enough for synthetic data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn application(rng: &mut SplitMix64, id: String) -> Application {
    let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
    let household_size = rng.range(1, 8);
    let dependents = if rng.below(50) == 0 {
        household_size // inconsistent on purpose: the applicant is not counted
    } else {
        rng.range(0, household_size - 1)
    };
    let income = if rng.below(10) == 0 {
        0
    } else {
        (1_000.0 * 250f64.powf(rng.unit())).round() as u64
    };
    let citizenship = match rng.below(100) {
        0..85 => "citizen",
        85..95 => "eligible_noncitizen",
        _ => "other",
    };
    Application {
        id,
        name,
        state: rng.pick(STATES),
        age: rng.range(15, 64),
        household_size,
        dependents,
        income,
        enrolled_credits: rng.range(0, 18),
        citizenship,
    }
}

struct ImportApplications;

impl Agent for ImportApplications {
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
        let width = input.count.to_string().len().max(6);
        let mut rng = SplitMix64(input.seed);
        for n in 1..=input.count {
            let id = format!("{n:0width$}");
            let record = application(&mut rng, id);
            data.put(&format!("app/{}", record.id), &record)?;
        }
        log::info(&format!(
            "wrote {} applications to {name} (seed {})",
            input.count, input.seed
        ));
        Ok(serde_json::json!({ "written": input.count }))
    }
}

export_agent!(ImportApplications);
