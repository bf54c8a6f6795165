//! The one door to the host: every call the SDK makes goes through here.
//!
//! In a component these are the WIT imports, as generated. Built natively
//! with the `testing` feature they are the in-memory host of
//! [`crate::testing`], which has a function of the same name and arguments
//! for each import, so an agent's `run` can be unit-tested with plain
//! `cargo test`. The datasets interface is taken whole on both sides: a new
//! call there needs no line here.

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
pub(crate) use crate::bindings::runway::agent::{
    context::info,
    datasets::*,
    events::publish,
    log::log,
    orchestration::{cancel, delegate, handoff, join, progress},
};

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub(crate) use crate::testing::door::*;
