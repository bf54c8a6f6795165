//! `summary`: counts the records of one dataset (held shared) and their
//! bytes, and writes the count to another (held exclusive) under key
//! `summary`. Input: `{"source": "...", "target": "..."}`; output and record:
//! `{"records": N, "bytes": B}`.
//!
//! The README's first agent, and the contract the Python and JavaScript
//! examples (`plugins/summary-py`, `plugins/summary-js`) implement too.

use runway_sdk::{Agent, Context, Error, export_agent, log};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    source: String,
    target: String,
}

/// What the agent writes and outputs.
#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
pub struct Counts {
    pub records: u64,
    pub bytes: u64,
}

pub struct Summary;

impl Agent for Summary {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let Input { source, target } = ctx.input()?;
        let (data, mut counts) = (ctx.dataset(&source), Counts::default());
        for key in data.keys("") {
            counts.records += 1;
            counts.bytes += data.read(&key?)?.len() as u64;
        }
        ctx.dataset(&target).put("summary", &counts)?;
        log::info!(
            "summarised {} records ({} bytes) of {source} into {target}",
            counts.records,
            counts.bytes
        );
        Ok(counts)
    }
}

export_agent!(Summary);

#[cfg(test)]
mod tests {
    use super::*;
    use runway_sdk::LockMode::{Exclusive, Shared};
    use runway_sdk::testing::TestHost;
    use serde_json::json;

    fn host() -> TestHost {
        TestHost::new()
            .input(json!({ "source": "apps", "target": "stats" }))
            .record("apps", "a1", "x")
            .record("apps", "a2", 42)
    }

    #[test]
    fn counts_records_and_bytes_into_the_target() {
        let mut host = host().lock("apps", Shared).lock("stats", Exclusive);
        let run = host.run::<Summary>();
        let want = Counts {
            records: 2,
            bytes: 5,
        };
        assert_eq!(run.json::<Counts>(), want);
        assert_eq!(host.get::<Counts>("stats", "summary"), Some(want));
        assert_eq!(
            run.messages(),
            ["summarised 2 records (5 bytes) of apps into stats"]
        );
    }

    #[test]
    fn a_shared_target_is_denied_and_nothing_is_written() {
        let mut host = host().lock("apps", Shared).lock("stats", Shared);
        assert!(matches!(host.run::<Summary>().error(), Error::Denied(_)));
        assert_eq!(host.keys("stats"), Vec::<&str>::new());
    }

    #[test]
    fn an_unlocked_source_is_denied() {
        let mut host = host().lock("stats", Exclusive);
        let run = host.run::<Summary>();
        assert!(matches!(run.error(), Error::Denied(m) if m.contains("no lock on dataset apps")));
    }

    #[test]
    fn a_missing_input_field_is_named() {
        let mut host = TestHost::new().input(json!({ "source": "apps" }));
        let run = host.run::<Summary>();
        assert!(matches!(run.error(), Error::Invalid(m) if m.contains("missing field `target`")));
    }
}
