//! `runway show`'s attempts: each attempt of a runway — when it took off
//! and landed, how it ended and why — with the log lines and output the
//! server kept of it. Guest text is escaped and cut, so a log line cannot
//! drive the terminal.

use runway_audit::render::{escape, excerpt};

use crate::api::views::AttemptView;

/// Longest log line or output shown, in characters (escapes counted).
const LINE_CHARS: usize = 400;

/// Prints each attempt of `runs`, oldest first, and its log lines.
pub(super) fn print_attempts(runs: &[AttemptView]) {
    if runs.is_empty() {
        return;
    }
    println!("runs");
    for a in runs {
        let ended = match (&a.state, &a.ended_at) {
            (Some(state), Some(at)) => format!("{} {}", escape(at), escape(state)),
            _ => "in flight".to_string(),
        };
        let reason = match a.reason.is_empty() {
            true => String::new(),
            false => format!(": {}", excerpt(&a.reason, 200)),
        };
        println!(
            "  attempt {}  {} → {ended}{reason}",
            a.attempt,
            escape(&a.started_at)
        );
        if !a.kept {
            println!(
                "    (no log kept here: flown before this server started, in flight, or a middle attempt of many)"
            );
            continue;
        }
        for line in &a.log {
            println!("    | {}", excerpt(line, LINE_CHARS));
        }
        if a.log_left_out > 0 {
            println!("    ({} more log lines not kept)", a.log_left_out);
        }
        if let Some(output) = &a.output {
            println!(
                "    output ({} bytes): {}",
                a.output_bytes,
                excerpt(output, LINE_CHARS)
            );
        }
    }
}
