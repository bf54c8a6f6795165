//! Events on the in-memory host: what a run publishes is shown with it when
//! it succeeds, nothing when it fails, and a bad topic is refused as the
//! host refuses it.

use serde::Serialize;

use super::TestHost;
use crate::{Agent, Context, Error};

/// Publishes one JSON event and one raw one, then fails if told to.
struct Flags;

impl Agent for Flags {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        ctx.publish_json("applications.flagged", &serde_json::json!({ "id": 7 }))?;
        ctx.publish("applications.flagged", b"raw")?;
        if ctx.input::<bool>()? {
            return Err(Error::Invalid("told to fail".into()));
        }
        Ok(())
    }
}

#[test]
fn a_run_that_succeeds_shows_its_events_in_order() {
    let run = TestHost::new().input(false).run::<Flags>();
    let topics: Vec<_> = run
        .published()
        .iter()
        .map(|(t, p)| (t.as_str(), p.as_slice()))
        .collect();
    assert_eq!(
        topics,
        [
            ("applications.flagged", br#"{"id":7}"#.as_slice()),
            ("applications.flagged", b"raw".as_slice())
        ]
    );
}

#[test]
fn a_run_that_fails_publishes_nothing() {
    let run = TestHost::new().input(true).run::<Flags>();
    assert!(run.published().is_empty());
}

/// Publishes on a bad topic and an oversized payload, and says what it was told.
struct Bad;

impl Agent for Bad {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let topic = ctx.publish("no spaces", b"").unwrap_err();
        let size = ctx.publish("ok", &vec![0; (64 << 10) + 1]).unwrap_err();
        Ok(vec![topic.to_string(), size.to_string()])
    }
}

#[test]
fn a_bad_topic_or_payload_is_refused() {
    let said: Vec<String> = TestHost::new().run::<Bad>().json();
    assert!(said[0].contains("not valid"), "{said:?}");
    assert!(said[1].contains("over the cap"), "{said:?}");
}
