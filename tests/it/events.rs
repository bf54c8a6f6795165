//! Events an agent publishes (WIT 0.1.3 `events.publish`), through a real
//! component (`plugins/publisher`): checked against the grants and caps,
//! audited as calls, and on the trail as PUBLISHED records only when the
//! run succeeds — before its COMMITTING, so a commit found landed after a
//! crash has its events — never when it fails.

use runway_audit::{Call, Event, Outcome, Record};
use runway_host::State;
use runway_tests::{Fixture, output};

fn published(records: &[Record], runway: &str) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r.entry.runway == runway)
        .filter_map(|r| match &r.entry.event {
            Event::Published { topic, payload } => Some((
                topic.clone(),
                String::from_utf8(payload.clone()).expect("JSON text"),
            )),
            _ => None,
        })
        .collect()
}

fn plan(input: &str) -> String {
    format!(
        "[[runway]]\nid = \"pub\"\nagent = \"publisher\"\ndatasets = {{ test_events = \"exclusive\" }}\ninput = {input}\n"
    )
}

#[test]
fn a_run_that_succeeds_puts_its_events_on_the_trail_before_its_commit() {
    let f = Fixture::new();
    let report = f.run(&plan(
        r#"{ write = ["test_events", "k", "v"], events = [{ topic = "applications.flagged", payload = { id = 7 } }, { topic = "test.two", payload = "x" }] }"#,
    ));
    assert_eq!(report.get("pub").unwrap().state, State::Succeeded);
    assert_eq!(
        output(&report, "pub")["published"],
        serde_json::json!(["ok", "ok"])
    );
    let records = f.records();
    assert_eq!(
        published(&records, "pub"),
        [
            (
                "applications.flagged".to_string(),
                r#"{"id":7}"#.to_string()
            ),
            ("test.two".to_string(), r#""x""#.to_string()),
        ]
    );
    let last_event = records
        .iter()
        .rposition(|r| matches!(r.entry.event, Event::Published { .. }))
        .unwrap();
    let committing = records
        .iter()
        .position(|r| matches!(r.entry.event, Event::Committing { .. }))
        .expect("the run committed");
    assert!(
        last_event < committing,
        "events are durable with the COMMITTING"
    );
    let calls = records
        .iter()
        .filter(|r| {
            matches!(
                &r.entry.event,
                Event::Call {
                    call: Call::Publish,
                    outcome: Outcome::Ok,
                    ..
                }
            )
        })
        .count();
    assert_eq!(calls, 2, "each publish is an audited call");
}

#[test]
fn a_run_that_fails_publishes_nothing() {
    let f = Fixture::new();
    let report = f.run(&plan(
        r#"{ fail = true, write = ["test_events", "k", "v"], events = [{ topic = "applications.flagged" }] }"#,
    ));
    assert_eq!(report.get("pub").unwrap().state, State::Failed);
    let records = f.records();
    assert!(published(&records, "pub").is_empty());
    let call = records.iter().any(|r| {
        matches!(
            &r.entry.event,
            Event::Call {
                call: Call::Publish,
                outcome: Outcome::Ok,
                ..
            }
        )
    });
    assert!(call, "the call itself is on the record");
}

#[test]
fn a_run_without_writes_delivers_its_events_too() {
    let f = Fixture::new();
    let report = f.run(&plan(
        r#"{ events = [{ topic = "test.plain", payload = [1, 2] }] }"#,
    ));
    assert_eq!(report.get("pub").unwrap().state, State::Succeeded);
    let records = f.records();
    assert_eq!(
        published(&records, "pub"),
        [("test.plain".into(), "[1,2]".into())]
    );
    let event = records
        .iter()
        .position(|r| matches!(r.entry.event, Event::Published { .. }))
        .unwrap();
    let end = records
        .iter()
        .position(|r| r.entry.runway == "pub" && matches!(r.entry.event, Event::Succeeded { .. }))
        .unwrap();
    assert!(event < end);
}

#[test]
fn topics_outside_the_grants_bad_topics_and_oversized_payloads_are_refused() {
    let f = Fixture::new();
    let big = "x".repeat(70_000);
    let report = f.run(&plan(&format!(
        r#"{{ events = [{{ topic = "payments.sent" }}, {{ topic = "no spaces" }}, {{ topic = ".hidden" }}, {{ topic = "test.big", payload = "{big}" }}] }}"#
    )));
    let said = output(&report, "pub")["published"].clone();
    let said: Vec<String> = serde_json::from_value(said).unwrap();
    assert!(
        said[0].starts_with("denied:") && said[0].contains("payments.sent"),
        "{said:?}"
    );
    assert!(
        said[1].starts_with("invalid:") && said[1].contains("topic"),
        "{said:?}"
    );
    assert!(said[2].starts_with("invalid:"), "{said:?}");
    assert!(
        said[3].starts_with("limit:") && said[3].contains("65536"),
        "{said:?}"
    );
    assert!(published(&f.records(), "pub").is_empty());
}

#[test]
fn an_agent_without_events_grants_may_not_publish() {
    let f = Fixture::with_grants(&[("publisher", "[datasets]\n\"test_*\" = \"exclusive\"\n")]);
    let report = f.run(&plan(r#"{ events = [{ topic = "test.x" }] }"#));
    let said = output(&report, "pub")["published"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        said.starts_with("denied:") && said.contains("[events] publish"),
        "{said}"
    );
}

#[test]
fn a_run_publishes_at_most_its_cap_of_events() {
    let f = Fixture::new();
    let events: Vec<String> = (0..runway_host::limits::MAX_EVENTS_PER_RUN + 2)
        .map(|_| r#"{ topic = "test.many" }"#.to_string())
        .collect();
    let report = f.run(&plan(&format!("{{ events = [{}] }}", events.join(", "))));
    let said: Vec<String> =
        serde_json::from_value(output(&report, "pub")["published"].clone()).unwrap();
    let ok = said.iter().filter(|s| *s == "ok").count();
    assert_eq!(ok, runway_host::limits::MAX_EVENTS_PER_RUN);
    assert!(
        said.last().unwrap().starts_with("limit:"),
        "{:?}",
        said.last()
    );
    assert_eq!(published(&f.records(), "pub").len(), ok);
}
