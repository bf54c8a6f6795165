//! The doors of a running controller: the HTTP API ([`http`], with the
//! admin's bearer [`token`] and the callers and roles of [`access`]), the
//! MCP server ([`mcp`]) — both asking the same [`calls`], which answer the
//! typed [`views`] or a [`refusal`] of a kind (one table gives each kind
//! its HTTP status, MCP error and CLI exit code) — and the plans inbox
//! ([`inbox`], which also follows the plugins folder). Each files and acts
//! through the one `controller::Controller` handle, in its caller's name;
//! what a caller may do is the controller's to decide. A host standing by
//! on a shared database relays every request to the leader ([`relay`]).

pub(crate) mod access;
pub(crate) mod agents;
pub(crate) mod calls;
pub(crate) mod events;
pub(crate) mod extract;
pub(crate) mod filings;
pub(crate) mod http;
pub(crate) mod inbox;
pub(crate) mod mcp;
pub(crate) mod metrics;
pub(crate) mod page;
pub(crate) mod refile;
pub(crate) mod refusal;
pub(crate) mod refusals;
pub(crate) mod relay;
pub(crate) mod token;
pub(crate) mod triggers;
pub(crate) mod views;

pub use access::Access;
pub use calls::{Api, MAX_WAIT_SECS};
pub(crate) use http::serve_app;
pub use http::{router, serve};
pub use inbox::FULL_RESCAN;
pub use inbox::serve as serve_inbox;
pub use refusal::Kind;
pub(crate) use relay::Relay;
