//! Logging into the run's log (the WIT `log` interface): one function per
//! level, and a `format!`-style macro of the same name. Each call appends one
//! message; the host may cap the log's size.
//!
//! ```no_run
//! use runway_sdk::log;
//!
//! let (records, dataset) = (40_000, "fafsa_2024_03_16");
//! log::info!("read {records} records of {dataset}");
//! log::warn("no awards given");
//! ```

pub use crate::bindings::runway::agent::log::Level;
use crate::host::log;

pub use crate::{debug, error, info, trace, warn};

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

/// `format!` a `trace` message into the run's log: `log::trace!("wrote {n} records")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        $crate::log::trace(&::std::format!($($arg)*))
    };
}

/// `format!` a `debug` message into the run's log: `log::debug!("wrote {n} records")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        $crate::log::debug(&::std::format!($($arg)*))
    };
}

/// `format!` an `info` message into the run's log: `log::info!("wrote {n} records")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::log::info(&::std::format!($($arg)*))
    };
}

/// `format!` a `warn` message into the run's log: `log::warn!("wrote {n} records")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::log::warn(&::std::format!($($arg)*))
    };
}

/// `format!` an `error` message into the run's log: `log::error!("wrote {n} records")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::log::error(&::std::format!($($arg)*))
    };
}
