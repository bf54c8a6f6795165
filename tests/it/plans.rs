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
fn unknown_keys_are_refused() {
    let err = parse("[[runway]]\nid = 'x'\nagent = 'probe'\npriority_boost = 9\n").unwrap_err();
    assert!(err.to_string().contains("priority_boost"), "{err}");
    // An `after` outside the plan names a runway filed before: the
    // controller checks it at filing (see controller.rs).
    let plan = parse("[[runway]]\nid = 'x'\nagent = 'probe'\nafter = ['earlier']\n").unwrap();
    assert_eq!(plan.manifests[0].after, ["earlier"]);
}

#[test]
fn a_manifest_may_come_alone_and_in_json() {
    let one = parse("agent = 'probe'\naction = 'ok'\npriority = 3\n").unwrap();
    assert_eq!(one.manifests.len(), 1);
    assert_eq!(
        (one.manifests[0].id.as_str(), one.manifests[0].priority),
        ("probe", 3)
    );
    let json =
        parse(r#"{"agent": "probe", "action": "ok", "datasets": {"test_j": "shared"}}"#).unwrap();
    assert_eq!(json.manifests[0].datasets.len(), 1);
    let list =
        parse(r#"[{"id": "a", "agent": "probe"}, {"id": "b", "agent": "probe", "after": ["a"]}]"#)
            .unwrap();
    assert_eq!(list.manifests[1].after, ["a"]);
    let err = parse(r#"{"agent": "probe", "colour": "red"}"#).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    let err = parse(r#"{"agent": "probe", "#).unwrap_err();
    assert!(matches!(err, PlanError::Json(_)), "{err}");
}

#[test]
fn the_embedded_nightly_plan_is_valid() {
    let plan = parse(runway_host::bundled::NIGHTLY_PLAN).unwrap();
    assert_eq!(plan.manifests.len(), 3);
}
