//! `publisher`: a test agent that publishes the events its input names
//! (WIT `events`) and reports what each call answered.
//!
//! Input (all optional): `{"events": [{"topic", "payload": <JSON>}], "write":
//! ["dataset", "key", "value"], "fail": bool}` — `write` is staged first,
//! then each event is published (its payload's JSON text as bytes), then
//! the run fails (an `invalid` error) if `fail` says so. Output:
//! `{"published": ["ok" | "<error kind>: <message>", ...]}`.

use runway_sdk::{Agent, Context, Error, export_agent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    events: Vec<Event>,
    write: Option<(String, String, String)>,
    fail: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    topic: String,
    #[serde(default)]
    payload: Value,
}

#[derive(Serialize)]
struct Output {
    published: Vec<String>,
}

struct Publisher;

impl Agent for Publisher {
    fn run(ctx: &Context) -> Result<impl Serialize, Error> {
        let input: Input = ctx.input()?;
        if let Some((dataset, key, value)) = &input.write {
            ctx.dataset(dataset).write(key, value.as_bytes())?;
        }
        let published = input
            .events
            .iter()
            .map(|e| match ctx.publish_json(&e.topic, &e.payload) {
                Ok(()) => "ok".to_string(),
                Err(err) => err.to_string(),
            })
            .collect();
        if input.fail {
            return Err(Error::Invalid("publisher: told to fail".into()));
        }
        Ok(Output { published })
    }
}

export_agent!(Publisher);
