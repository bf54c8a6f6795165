//! `review-appeals`: opens an appeal for every case flagged by the review;
//! `review-planner` hands off to it, with the review dataset exclusive.
//!
//! Input: `{"review": string, "flagged": [id]}`. Writes `appeal/<id>` =
//! `{"id": id, "status": "open"}` in the dataset `review` for each id.
//! Output: `{"opened": N}`.

use runway_sdk::{Agent, Context, Error, export_agent};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    review: String,
    flagged: Vec<String>,
}

/// An `appeal/<id>` record.
#[derive(Serialize)]
struct Appeal<'a> {
    id: &'a str,
    status: &'static str,
}

/// What the run did.
#[derive(Serialize)]
struct Opened {
    opened: usize,
}

struct ReviewAppeals;

impl Agent for ReviewAppeals {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let Input { review, flagged } = ctx.input()?;
        let data = ctx.dataset(&review);
        for id in &flagged {
            let appeal = Appeal { id, status: "open" };
            data.put(&format!("appeal/{id}"), &appeal)?;
        }
        Ok(Opened {
            opened: flagged.len(),
        })
    }
}

export_agent!(ReviewAppeals);
