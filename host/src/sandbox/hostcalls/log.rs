//! `runway:agent/log`: an agent's log lines, capped and neutralised, kept
//! with the run and forwarded to `tracing` under target `runway::agent`.

use runway_audit::Call;

use super::runway::agent::log::{Host, Level};
use super::{NO_DATA, RunLog, RunState, Target, digest_parts};

/// Longest single message kept; longer ones are cut with a marker.
pub const MAX_MESSAGE: usize = 4096;

impl RunLog {
    /// An empty log keeping at most `cap` bytes; later lines are counted
    /// and dropped.
    pub fn new(cap: usize) -> RunLog {
        RunLog {
            cap,
            ..RunLog::default()
        }
    }

    /// Keeps `line` if the run's budget allows; says whether it was kept.
    pub(crate) fn push(&mut self, line: String) -> bool {
        if self.bytes + line.len() > self.cap {
            self.dropped += 1;
            return false;
        }
        self.bytes += line.len();
        self.lines.push(line);
        true
    }
}

/// Control characters become `\u{..}` escapes, so a guest cannot forge lines
/// or drive a terminal; overlong messages are cut on a char boundary.
pub(crate) fn neutralise(message: &str) -> String {
    if message.len() <= MAX_MESSAGE && !message.chars().any(char::is_control) {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 16));
    for c in message.chars() {
        if out.len() >= MAX_MESSAGE {
            out.push_str(" …[truncated]");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Host for RunState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let args = digest_parts(&[message.as_bytes()]);
        let line = neutralise(&message);
        let runway = &self.info.runway;
        match level {
            Level::Trace => tracing::trace!(target: "runway::agent", %runway, "{line}"),
            Level::Debug => tracing::debug!(target: "runway::agent", %runway, "{line}"),
            Level::Info => tracing::info!(target: "runway::agent", %runway, "{line}"),
            Level::Warn => tracing::warn!(target: "runway::agent", %runway, "{line}"),
            Level::Error => tracing::error!(target: "runway::agent", %runway, "{line}"),
        }
        let kept = self.log.push(format!("{level:?} {line}"));
        let result = if kept {
            Ok(())
        } else {
            Err(super::GuestError::Limit("run log full".into()))
        };
        // The guest's `log` returns nothing; a dropped line only shows in the audit.
        let _ = self.audited(Call::Log, Target::default(), args, result, |_| NO_DATA)?;
        Ok(())
    }
}
