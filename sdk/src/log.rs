//! Logging into the run's log (the WIT `log` interface), one function per
//! level. Each call appends one message; the host may cap the log's size.

use crate::bindings::runway::agent::log::{Level, log};

/// Append a `trace` message to the run's log.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Append a `debug` message to the run's log.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Append an `info` message to the run's log.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Append a `warn` message to the run's log.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Append an `error` message to the run's log.
pub fn error(message: &str) {
    log(Level::Error, message);
}
