//! The doors of a running controller: the HTTP API ([`http`], with the
//! admin's bearer [`token`], the callers and roles of [`access`] and the
//! JSON [`views`] of runways) and the plans inbox
//! ([`inbox`], which also follows the plugins folder). Each files and acts
//! through the one `controller::Controller` handle.

pub mod access;
pub mod events;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod page;
pub mod token;
pub mod views;

pub use http::{Api, MAX_WAIT_SECS, router, serve};
