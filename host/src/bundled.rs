//! The embedded defaults: the nightly student-aid plan and its three agents,
//! and the review pipeline over its dataset and its five agents, built from
//! `plugins/` by `build.rs` and compiled into the binary, so an operator can
//! start with nothing but `runway run`.
//!
//! Also the paths of every plugin built from `plugins/` (the test suite's
//! hostile agents among them), for tests and benchmarks.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The nightly plan: import tonight's applications, check compliance,
/// compute awards — one after the other on one dataset.
pub const NIGHTLY_PLAN: &str = include_str!("../nightly.toml");

/// The review pipeline: the nightly's three steps, then `review-planner`'s
/// tree of shards, scorers and summary, and the appeals it hands off to.
pub const REVIEW_PLAN: &str = include_str!("../review.toml");

/// The nightly as standing work: a 01:00 schedule files the import, whose
/// commit fires the compliance check, the awards and — when the check
/// failed any application — the review and its appeals.
pub const WORKFLOWS_PLAN: &str = include_str!("../workflows.toml");

/// The plans `runway plugins export` writes beside the agents, by file name.
pub const PLANS: [(&str, &str); 3] = [
    ("nightly.toml", NIGHTLY_PLAN),
    ("review.toml", REVIEW_PLAN),
    ("workflows.toml", WORKFLOWS_PLAN),
];
