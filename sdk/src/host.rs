//! The one door to the host: every call the SDK makes goes through here.
//!
//! In a component these are the WIT imports. Built natively with the
//! `testing` feature they are the in-memory host of [`crate::testing`], so an
//! agent's `run` can be unit-tested with plain `cargo test`.

#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
pub(crate) use crate::bindings::runway::agent::{
    context::info,
    datasets::{delete, list, read, write},
    log::log,
};

#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub(crate) use crate::testing::door::{delete, info, list, log, read, write};
