//! `{{name}}`: a Runway agent. It counts its visits in the dataset it holds
//! exclusively and greets the name its input gives.
//!
//! Build it into a plugins folder with `runway build`, test it natively with
//! `cargo test`, run it with `runway run plan.toml --plugins plugins`.
//! To have other agents do part of the work (`ctx.delegate`,
//! `ctx.parallel`, `ctx.first_success`, ...), see README.md.

use runway_sdk::{Agent, Context, Error, LockMode, export_agent, log};
use serde::{Deserialize, Serialize};

/// The manifest's `input`.
#[derive(Deserialize)]
struct Input {
    name: String,
}

/// The record this agent keeps, and its output.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct Visits {
    pub count: u64,
}

pub struct {{type}};

impl Agent for {{type}} {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let input: Input = ctx.input()?;
        let lock = ctx
            .first_lock(LockMode::Exclusive)
            .ok_or_else(|| Error::Denied("{{name}} needs an exclusive lock".into()))?;
        let data = ctx.dataset(&lock.dataset);
        let mut visits: Visits = data.get_opt("visits")?.unwrap_or_default();
        visits.count += 1;
        data.put("visits", &visits)?;
        log::info!("hello, {} (visit {})", input.name, visits.count);
        Ok(visits)
    }
}

export_agent!({{type}});

#[cfg(test)]
mod tests {
    use super::*;
    use runway_sdk::testing::TestHost;
    use serde_json::json;

    #[test]
    fn counts_visits() {
        let mut host = TestHost::new()
            .input(json!({ "name": "world" }))
            .lock("{{dataset}}", LockMode::Exclusive)
            .record("{{dataset}}", "visits", Visits { count: 41 });
        let run = host.run::<{{type}}>();
        assert_eq!(run.json::<Visits>(), Visits { count: 42 });
        assert_eq!(host.get("{{dataset}}", "visits"), Some(Visits { count: 42 }));
        assert_eq!(run.messages(), ["hello, world (visit 42)"]);
    }

    #[test]
    fn a_shared_lock_cannot_write() {
        let mut host = TestHost::new()
            .input(json!({ "name": "world" }))
            .lock("{{dataset}}", LockMode::Shared);
        assert!(matches!(host.run::<{{type}}>().error(), Error::Denied(_)));
    }
}
