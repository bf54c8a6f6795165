//! Forwarding: a log may hand each batch, once it is durable on disk, to a
//! [`Forward`] that must take it before anyone is told the batch is
//! durable — the host on PostgreSQL uses it to put the controller's
//! records into the shared history in the same order, checked against its
//! lease (DESIGN.md, "Beyond one machine"). A batch the forward refuses
//! stops the log for good, as a failed disk would: its records stay in
//! the segment files (they happened on this host), but no waiter is told
//! they are durable and nothing more is appended.

use std::fmt;
use std::sync::Arc;

use crate::record::Record;

/// Takes each durable batch, in log order, before it counts as durable.
pub trait Forward: Send + Sync {
    /// Takes `records` (one batch, oldest first); an `Err` says why they
    /// were refused, and stops the log.
    fn forward(&self, records: &[Record]) -> Result<(), String>;
}

/// A [`Forward`] in [`AuditOptions`](crate::AuditOptions).
#[derive(Clone)]
pub struct Forwarder(pub Arc<dyn Forward>);

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Forwarder")
    }
}
