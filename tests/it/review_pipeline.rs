//! The review pipeline (`host/review.toml`, the `review-*` agents) through
//! the real host: the nightly's three steps, then a planner that fans out a
//! shard reviewer per 500 applications (scatter), each racing two
//! redundant scorers (first success), a summary written under the lock the
//! planner hands down (gather), and the flagged cases handed off to
//! appeals. Outputs and records are asserted exactly, against a reading of
//! the dataset made here; the tree is read back from the trail. And the
//! operator's two commands, through the CLI binary, as shipped.

use std::collections::BTreeMap;

use runway_audit::{Call, Event, Record, State};
use runway_host::Manifest;
use runway_host::bundled::REVIEW_PLAN;
use runway_tests::{Fixture, output};
use serde_json::{Value, json};

const DS: &str = "fafsa_2024_03_16";
const REVIEW: &str = "review_2024_03_16";

/// The shipped plan with 2,000 applications in shards of 500.
fn small_plan() -> String {
    let (count, shard) = ("count = 40000,", "shard_size = 2500 }");
    assert!(REVIEW_PLAN.contains(count) && REVIEW_PLAN.contains(shard));
    REVIEW_PLAN
        .replace(count, "count = 2000,")
        .replace(shard, "shard_size = 500 }")
}

/// The review as the scorer's documented rule gives it, read here from the
/// committed records: flagged ids (an award above zero, no income, four
/// dependents or more) and the sum of the awards.
fn expected_review(f: &Fixture) -> (Vec<String>, u64) {
    let (mut flagged, mut total) = (Vec::new(), 0);
    for key in f.keys(DS, "app/") {
        let id = key.strip_prefix("app/").unwrap().to_string();
        let app = f.json(DS, &key);
        let award = f.host.store.read(DS, &format!("award/{id}")).unwrap();
        let award = award.map_or(0, |bytes| {
            let award: Value = serde_json::from_slice(&bytes).unwrap();
            award["amount"].as_u64().unwrap()
        });
        if award > 0 && app["income"] == 0 && app["dependents"].as_u64().unwrap() >= 4 {
            flagged.push(id);
        }
        total += award;
    }
    (flagged, total)
}

/// Every runway filed on the trail, with its FILING manifest (its agent
/// from the record), in order.
fn filed(records: &[Record]) -> Vec<(String, Manifest)> {
    records
        .iter()
        .filter_map(|r| {
            let m = runway_host::controller::filed_manifest(&r.entry.event)?;
            let agent = r.entry.agent.clone();
            Some((r.entry.runway.clone(), Manifest { agent, ..m }))
        })
        .collect()
}

/// A runway's RETURNED output on the trail.
fn returned(records: &[Record], id: &str) -> Option<Vec<u8>> {
    records.iter().find_map(|r| match &r.entry.event {
        Event::Returned { output } if r.entry.runway == id => Some(output.clone()),
        _ => None,
    })
}

#[test]
fn the_review_pipeline_reviews_the_nightly_exactly() {
    let f = Fixture::with_workers(2);
    let report = f.run(&small_plan());
    let ran: Vec<(&str, State)> = report
        .runways
        .iter()
        .map(|r| (r.id.as_str(), r.state))
        .collect();
    assert_eq!(
        ran,
        [
            ("import", State::Succeeded),
            ("compliance", State::Succeeded),
            ("awards", State::Succeeded),
            ("review", State::Succeeded),
            ("review.next", State::Succeeded),
        ],
        "the successor taking over from the planner is waited for and reported"
    );

    // What the review found, read independently, and pinned.
    let (flagged, awarded_total) = expected_review(&f);
    assert_eq!(flagged.len(), FLAGGED_OF_2000);
    assert_eq!(awarded_total, output(&report, "awards")["total"]);
    let summary = json!({
        "awarded_total": awarded_total,
        "flagged": flagged.len(),
        "reviewed": 2000,
        "shards": 4,
    });
    assert_eq!(output(&report, "review"), summary, "the summary read back");
    assert_eq!(f.json(REVIEW, "summary"), summary);
    assert_eq!(
        output(&report, "review.next"),
        json!({ "opened": flagged.len() })
    );
    let appeals: Vec<String> = flagged.iter().map(|id| format!("appeal/{id}")).collect();
    assert_eq!(
        f.keys(REVIEW, ""),
        [&appeals[..], &["summary".into()]].concat()
    );
    for id in &flagged {
        let appeal = f.json(REVIEW, &format!("appeal/{id}"));
        assert_eq!(appeal, json!({ "id": id, "status": "open" }));
    }

    // The tree on the trail: 4 shards of the planner, 2 scorers each, the
    // summary, and the appeals that took over from the planner.
    let records = f.records();
    let filed = filed(&records);
    let agents: BTreeMap<&str, usize> = filed.iter().fold(BTreeMap::new(), |mut n, (_, m)| {
        *n.entry(m.agent.as_str()).or_default() += 1;
        n
    });
    assert_eq!(
        agents,
        BTreeMap::from([
            ("compliance-check", 1),
            ("grant-calculator", 1),
            ("import-applications", 1),
            ("review-appeals", 1),
            ("review-planner", 1),
            ("review-scorer", 8),
            ("review-shard", 4),
            ("review-summary", 1),
        ])
    );
    let under = |parent: &str| -> Vec<(&str, &Manifest)> {
        filed
            .iter()
            .filter(|(_, m)| m.lineage.as_ref().is_some_and(|l| l.parent == parent))
            .map(|(id, m)| (id.as_str(), m))
            .collect()
    };
    let planned = under("review");
    let shards: Vec<&str> = planned
        .iter()
        .filter(|(_, m)| m.agent == "review-shard")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(shards.len(), 4);
    assert_eq!(planned.len(), 5, "4 shards and the summary");
    let mut reviewed = Vec::new();
    for shard in &shards {
        let scorers = under(shard);
        let actions: Vec<&str> = scorers.iter().map(|(_, m)| m.action.as_str()).collect();
        assert_eq!(actions, ["quick", "thorough"], "{shard}");
        for (id, m) in &scorers {
            assert_eq!(m.agent, "review-scorer");
            assert_eq!(m.lineage.as_ref().unwrap().depth, 2, "{id}");
        }
        // One winner; the other failed or was cancelled; the shard's
        // output is the winner's, byte for byte.
        let joined = records
            .iter()
            .find_map(|r| match &r.entry.event {
                Event::Joined { mode, children, .. } if r.entry.runway == *shard => {
                    assert_eq!(mode, "first-success");
                    Some(children.clone())
                }
                _ => None,
            })
            .expect("the race is on the trail");
        // The winner is the first success in the join's order; the JOINED
        // record shows each child as the join found it (a loser still
        // going, or one that landed before the parent came to join), and
        // every child has ended since.
        let won: Vec<&str> = joined
            .iter()
            .filter(|c| c.state == State::Succeeded)
            .map(|c| c.runway.as_str())
            .take(1)
            .collect();
        assert_eq!(won.len(), 1, "{shard}: {joined:?}");
        for c in &joined {
            let ended = crate::delegation::last_state(&records, &c.runway);
            assert!(
                matches!(ended, State::Succeeded | State::Failed | State::Cancelled),
                "{shard}: {} is {ended:?}",
                c.runway
            );
        }
        let output = returned(&records, shard).unwrap();
        assert_eq!(
            Some(&output),
            returned(&records, won[0]).as_ref(),
            "{shard}"
        );
        reviewed.push(serde_json::from_slice::<Value>(&output).unwrap());
    }
    // Shard 4 holds application 001606, which broke three compliance rules:
    // the quick scorer refuses it, so thorough wins there.
    let last = under(shards[3]);
    let quick = records.iter().find_map(|r| match &r.entry.event {
        Event::Failed { reason } if r.entry.runway == last[0].0 => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        quick.as_deref(),
        Some(
            "agent returned error: invalid: application 001606 broke 3 compliance rules: \
             too many to judge quickly"
        )
    );
    let ranges: Vec<(u64, u64, u64)> = reviewed
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (n("first"), n("last"), n("reviewed"))
        })
        .collect();
    assert_eq!(
        ranges,
        [
            (1, 500, 500),
            (501, 1000, 500),
            (1001, 1500, 500),
            (1501, 2000, 500)
        ]
    );
    let all_flagged: Vec<String> = reviewed
        .iter()
        .flat_map(|r| r["flagged"].as_array().unwrap().clone())
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert_eq!(all_flagged, flagged);

    // The summary child held the review dataset handed down; the planner
    // got it back (a fresh, higher token) and read the summary through it.
    let (summary_id, summary_m) = planned
        .iter()
        .find(|(_, m)| m.agent == "review-summary")
        .unwrap();
    assert_eq!(summary_m.lineage.as_ref().unwrap().handed, [REVIEW]);
    let token = |id: &str| {
        records.iter().rev().find_map(|r| match &r.entry.event {
            Event::LockGranted { token, .. }
                if r.entry.runway == id && r.entry.dataset.as_deref() == Some(REVIEW) =>
            {
                Some(*token)
            }
            _ => None,
        })
    };
    assert!(token("review").unwrap() > token(summary_id).unwrap());

    // The planner reported its progress: started, shards reviewed, summarised.
    let reports = records
        .iter()
        .filter(|r| r.entry.runway == "review")
        .filter(|r| {
            matches!(
                r.entry.event,
                Event::Call {
                    call: Call::Progress,
                    ..
                }
            )
        })
        .count();
    assert_eq!(reports, 3);

    // The appeals took over from the planner: a new root, the review
    // dataset exclusive, the flagged cases as input.
    let (_, next) = filed.iter().find(|(id, _)| id == "review.next").unwrap();
    assert_eq!(
        (next.agent.as_str(), next.handoff_from.as_deref()),
        ("review-appeals", Some("review"))
    );
    assert!(next.lineage.is_none());
    let handed: Value = serde_json::from_slice(&next.input).unwrap();
    assert_eq!(handed, json!({ "review": REVIEW, "flagged": flagged }));
}

/// Cases the rule flags among the 2,000 applications of seed 20240316.
const FLAGGED_OF_2000: usize = 17;

#[test]
fn an_operator_runs_the_review_in_two_commands() {
    use crate::cli::runway;
    let dir = tempfile::tempdir().unwrap();
    let exported = runway(dir.path(), &["plugins", "export", "agents"]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    assert!(
        exported.stdout.contains("review.toml"),
        "{}",
        exported.stdout
    );
    let ran = runway(
        dir.path(),
        &["run", "agents/review.toml", "--plugins", "agents"],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let summary: Vec<&str> = ran
        .stdout
        .lines()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .take(5)
        .collect();
    assert_eq!(
        summary,
        [
            r#"import       SUCCEEDED  {"written":40000}"#,
            r#"compliance   SUCCEEDED  {"checked":40000,"failed":15057,"passed":24943}"#,
            r#"awards       SUCCEEDED  {"awarded":19392,"considered":24943,"total":117074976}"#,
            r#"review       SUCCEEDED  {"awarded_total":117074976,"flagged":494,"reviewed":40000,"shards":16}"#,
            r#"review.next  SUCCEEDED  {"opened":494}"#,
        ],
        "{}",
        ran.stdout
    );
}

/// What the review's scatter relies on: a dataset held shared up the tree
/// is taken shared below at once (shared beside shared never waits), by a
/// grandchild whose parent does not hold it too — while an exclusive hold
/// up the tree still refuses it.
#[test]
fn a_reader_below_a_reader_takes_the_dataset_shared_at_once() {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "reader"
        agent = "orchestrator"
        datasets = { test_shared = "shared", test_mine = "exclusive" }
        input = { children = [{ agent = "orchestrator", input = { children = [
            { agent = "probe", action = "locks", locks = [["test_shared", "shared"]] },
            { agent = "probe", action = "locks", locks = [["test_mine", "shared"]] },
        ] } }] }
        "#,
    );
    let out = output(&report, "reader");
    let child = &out["results"][0]["output"];
    assert_eq!(child["delegated"][0], "reader.2", "{out}");
    let locks = &child["results"][0]["output"];
    assert_eq!(locks[0]["dataset"], "test_shared", "{out}");
    assert_eq!(locks[0]["mode"], "shared", "{out}");
    let said = child["delegated"][1].as_str().unwrap();
    assert!(
        said.starts_with("denied: test_mine is held by ancestor reader"),
        "{out}"
    );
}
