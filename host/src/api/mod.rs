//! The doors of a running controller: the HTTP API ([`http`], with the
//! admin's bearer [`token`], the callers and roles of [`access`] and the
//! JSON [`views`] of runways), the MCP server ([`mcp`]) — both asking the
//! same [`calls`] — and the plans inbox
//! ([`inbox`], which also follows the plugins folder). Each files and acts
//! through the one `controller::Controller` handle.

pub mod access;
pub mod calls;
pub mod events;
pub mod extract;
pub mod http;
pub mod inbox;
pub mod mcp;
pub mod metrics;
pub mod page;
pub mod refusal;
pub mod refusals;
pub mod token;
pub mod views;

pub use calls::{Api, MAX_WAIT_SECS};
pub use http::{router, serve};
