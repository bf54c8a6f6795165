//! `runway:agent/log`: an agent's log lines, capped and neutralised, kept
//! with the run and forwarded to `tracing` under target `runway::agent`.

use runway_audit::Call;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::runway::agent::log::{Host, Level};
use super::{NO_DATA, RunState, Target, digest_parts};

/// Longest single message kept; longer ones are cut with a marker.
pub const MAX_MESSAGE: usize = 4096;

/// A run's log: what the agent logged, capped at `cap` bytes.
#[derive(Default, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunLog {
    pub lines: Vec<String>,
    pub bytes: usize,
    pub dropped: usize,
    pub cap: usize,
}

/// What a run says: its log lines and its stdout and stderr, each within
/// the plugin's log budget (`cap` bytes).
pub(crate) struct RunOutput {
    pub log: RunLog,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub cap: usize,
}

impl RunOutput {
    pub fn stdio(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.stdout.contents().to_vec(),
            self.stderr.contents().to_vec(),
        )
    }

    /// stdout or stderr filled to the cap.
    pub fn full(&self) -> bool {
        self.stdout.contents().len() >= self.cap || self.stderr.contents().len() >= self.cap
    }
}

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
        let kept = self.output.log.push(format!("{level:?} {line}"));
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
