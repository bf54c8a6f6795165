//! The doors of a running controller: the HTTP API ([`http`], with the
//! admin's bearer [`token`] and the callers and roles of [`access`]), the
//! MCP server ([`mcp`]) — both asking the same [`calls`], which answer the
//! typed [`views`] or a [`refusal`] of a kind (one table gives each kind
//! its HTTP status, MCP error and CLI exit code) — and the plans inbox
//! ([`inbox`], which also follows the plugins folder). Each files and acts
//! through the one `controller::Controller` handle, in its caller's name;
//! what a caller may do is the controller's to decide.

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
