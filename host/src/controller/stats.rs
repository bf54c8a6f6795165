//! How busy the controller is: each step — one event handled (a clearance,
//! a landing, a request, a timer) and the settling it caused — is timed
//! into a [`Latency`] histogram (`count` steps, `sum` the busy time). The
//! step time is the controller's decision latency: how long an event
//! waits, at most, behind the one being handled.

pub use runway_audit::latency::Latency as Stats;
