//! Bad plans are refused before anything is filed, naming the culprit.

use runway_host::{Plan, PlanError};
use runway_tests::plugins;

fn parse(text: &str) -> Result<Plan, PlanError> {
    Plan::parse(text, &*plugins().1)
}

#[test]
fn a_cycle_is_refused_naming_its_path() {
    let err = parse(
        r#"
        [[runway]]
        id = "a"
        agent = "probe"
        after = ["c"]
        [[runway]]
        id = "b"
        agent = "probe"
        after = ["a"]
        [[runway]]
        id = "c"
        agent = "probe"
        after = ["b"]
        "#,
    )
    .unwrap_err();
    assert!(
        matches!(&err, PlanError::Cycle(path) if path.len() == 4),
        "{err}"
    );
    assert_eq!(err.to_string(), "dependency cycle: a -> c -> b -> a");
}

#[test]
fn an_unknown_agent_is_refused_by_name() {
    let err = parse("[[runway]]\nid = 'x'\nagent = 'ghost'\n").unwrap_err();
    assert!(
        matches!(&err, PlanError::UnknownAgent { agent, .. } if agent == "ghost"),
        "{err}"
    );
    assert!(
        err.to_string().contains("probe"),
        "lists known agents: {err}"
    );
}

#[test]
fn unknown_keys_and_unknown_after_are_refused() {
    let err = parse("[[runway]]\nid = 'x'\nagent = 'probe'\npriority_boost = 9\n").unwrap_err();
    assert!(err.to_string().contains("priority_boost"), "{err}");
    let err = parse("[[runway]]\nid = 'x'\nagent = 'probe'\nafter = ['nobody']\n").unwrap_err();
    assert!(
        matches!(&err, PlanError::UnknownAfter { after, .. } if after == "nobody"),
        "{err}"
    );
}

#[test]
fn the_embedded_nightly_plan_is_valid() {
    let plan = parse(runway_host::bundled::NIGHTLY_PLAN).unwrap();
    assert_eq!(plan.manifests.len(), 3);
}
