//! The embedded defaults: the nightly student-aid plan and its three agents,
//! built from `plugins/` by `build.rs` and compiled into the binary, so an
//! operator can start with nothing but `runway run`.
//!
//! Also the paths of every plugin built from `plugins/` (the test suite's
//! hostile agents among them), for tests and benchmarks.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The nightly plan: import tonight's applications, check compliance,
/// compute awards — one after the other on one dataset.
pub const NIGHTLY_PLAN: &str = include_str!("../nightly.toml");
