//! The shipped workflows plan (`host/workflows.toml`, exported beside the
//! agents) on the test clock, as the README walks an operator through it:
//! filed once, its 01:00 New York schedule files the import; the import's
//! commit fires the compliance check, told its dataset by what fired it;
//! the awards follow, and the review — the appeal branch — runs because
//! the check failed some applications, handing its flagged cases off to
//! appeals. Each firing happens once, and each decision is on the trail.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use runway_audit::{Event, Record, State};
use runway_host::bundled::WORKFLOWS_PLAN;
use runway_host::controller::{ManualClock, RunwayReport};
use runway_tests::{Fixture, filing};

/// The shipped plan with 2,000 applications in shards of 500.
fn small_plan() -> String {
    let (count, shard) = ("count = 40000,", "shard_size = 2500 }");
    assert!(WORKFLOWS_PLAN.contains(count) && WORKFLOWS_PLAN.contains(shard));
    WORKFLOWS_PLAN
        .replace(count, "count = 2000,")
        .replace(shard, "shard_size = 500 }")
}

fn fired(records: &[Record], trigger: &str) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.entry.event {
            Event::TriggerFired { id, key, .. } if id == trigger => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The runway of the one firing named `name` in its plan.
fn named<'a>(reports: &'a [RunwayReport], name: &str) -> &'a RunwayReport {
    let mut found = reports.iter().filter(|r| r.name == name);
    let one = found.next().unwrap_or_else(|| panic!("no runway {name}"));
    assert!(found.next().is_none(), "{name} filed twice");
    one
}

#[test]
fn the_nightly_schedule_fires_the_check_the_awards_and_the_appeal_branch_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // 00:30 in New York (EST, UTC-5).
    let clock = Arc::new(ManualClock::new("2026-12-07T05:30:00Z".parse().unwrap()));
    let f = Fixture::new();
    let (controller, task) = runway_tests::start_on_clock(&rt, &f, clock.clone());
    let plan = f.plan(&small_plan());
    rt.block_on(controller.file(filing(plan))).unwrap();

    let triggers = rt.block_on(controller.triggers()).unwrap();
    let nightly = triggers.iter().find(|t| t.id == "nightly").unwrap();
    let one_am: Timestamp = "2026-12-07T06:00:00Z".parse().unwrap();
    assert_eq!(nightly.next.first(), Some(&one_am), "01:00 New York");
    assert_eq!(rt.block_on(controller.list()).unwrap().len(), 0);

    // 01:00 in New York: the night runs itself, and settles.
    clock.advance(SignedDuration::from_mins(31));
    let reports = rt.block_on(async {
        loop {
            controller.stats().await.unwrap();
            let listed = controller.list().await.unwrap();
            let ids: Vec<String> = listed.iter().map(|r| r.id.clone()).collect();
            let ended = controller.wait(ids).await.unwrap();
            // The review files its tree (and appeals) as it runs: settled
            // once a wait found nothing new.
            if ended.len() == listed.len() && listed.len() > 4 {
                let again = controller.list().await.unwrap();
                if again.len() == listed.len() {
                    break ended;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    // The night's own runways and the appeals succeeded (inside the
    // review's tree, quick scorers may fail or lose their races: that is
    // the review pipeline's test).
    for name in ["import", "compliance", "awards", "review"] {
        let r = named(&reports, name);
        assert_eq!(r.state, State::Succeeded, "{name}: {:?}", r.reason);
    }
    let appeals = reports.iter().find(|r| r.agent == "review-appeals");
    assert_eq!(
        appeals.map(|r| r.state),
        Some(State::Succeeded),
        "the review handed its flagged cases off to appeals"
    );
    let compliance = named(&reports, "compliance");
    let checked: serde_json::Value =
        serde_json::from_slice(compliance.output.as_deref().expect("an output")).unwrap();
    assert_eq!(checked["checked"], 2000, "{checked}");
    assert!(checked["failed"].as_u64().unwrap() > 0, "{checked}");
    let review = named(&reports, "review");

    let records = f.records();
    assert_eq!(fired(&records, "nightly"), vec![one_am.to_string()]);
    // One firing of the check: for the import's commit, not for the
    // commits of the runways it filed itself.
    let import = named(&reports, "import");
    let commits: Vec<u64> = records
        .iter()
        .filter(|r| r.entry.runway == import.id && matches!(r.entry.event, Event::Committed { .. }))
        .map(|r| r.seq)
        .collect();
    assert_eq!(commits.len(), 1);
    assert_eq!(
        fired(&records, "check-on-import"),
        vec![format!("commit:{}", commits[0])]
    );
    // The check was told its dataset by what fired it (resolved as it was
    // filed), and the appeal branch's condition read the check's output
    // and held.
    let input = records
        .iter()
        .filter(|r| r.entry.runway == compliance.id)
        .find_map(|r| runway_host::controller::filed_manifest(&r.entry.event))
        .map(|m| m.input)
        .expect("the check's FILING record");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&input).unwrap(),
        serde_json::json!({ "dataset": "fafsa_2024_03_16" })
    );
    let decided: Vec<&Event> = records
        .iter()
        .filter(|r| r.entry.runway == review.id)
        .map(|r| &r.entry.event)
        .filter(|e| matches!(e, Event::Decided { .. }))
        .collect();
    assert!(
        matches!(decided.as_slice(), [Event::Decided { value, .. }] if value == "true"),
        "{decided:?}"
    );

    // What the check's firing spent is its filing's, the review's tree
    // and hand-off included (53 runs here), as the filing's own sum says.
    let triggers = rt.block_on(controller.triggers()).unwrap();
    let check = triggers.iter().find(|t| t.id == "check-on-import").unwrap();
    assert_eq!(check.filed, 3);
    assert_eq!(check.spent, review.spent);
    assert!(check.spent.runs > 3, "{:?}", check.spent);

    // Nothing more fires until 01:00 New York tomorrow.
    clock.advance(SignedDuration::from_hours(23));
    rt.block_on(controller.stats()).unwrap();
    let triggers = rt.block_on(controller.triggers()).unwrap();
    let nightly = triggers.iter().find(|t| t.id == "nightly").unwrap();
    assert_eq!(nightly.fired, 1);
    assert_eq!(
        nightly.next.first(),
        Some(&"2026-12-08T06:00:00Z".parse().unwrap())
    );
    assert_eq!(fired(&f.records(), "check-on-import").len(), 1);
    controller.stop(false);
    rt.block_on(task).unwrap().unwrap();
}
