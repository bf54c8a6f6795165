//! Live progress for `runway run` and `runway wait` when a person watches
//! (stderr is a terminal, and no `--json`): a bar of runways landed out of
//! all, with counts by state, and a line per runway with its state and why
//! (the first [`LINES`]; indicatif draws them). Piped, nothing of this is
//! drawn and the output stays plain.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use runway_audit::render::escape;
use runway_audit::{Entry, Event, State};

/// Most runways shown one per line; the rest are counted in the bar.
pub const LINES: usize = 12;

/// Runways landing, drawn on stderr.
pub struct Progress {
    multi: MultiProgress,
    landed: ProgressBar,
    runways: Mutex<Runways>,
}

#[derive(Default)]
struct Runways {
    state: HashMap<String, State>,
    lines: HashMap<String, ProgressBar>,
}

impl Progress {
    /// Progress over `total` runways, when a person watches (stderr is a
    /// terminal and `json` is off).
    pub fn when_watched(total: usize, json: bool) -> Option<Progress> {
        (!json && std::io::stderr().is_terminal()).then(|| Progress::new(total))
    }

    fn new(total: usize) -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let landed = multi.add(ProgressBar::new(total as u64));
        landed.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} landed  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        landed.enable_steady_tick(Duration::from_millis(250));
        Progress {
            multi,
            landed,
            runways: Mutex::default(),
        }
    }

    /// Runway `id` is now in `state`, for `reason`.
    pub fn set(&self, id: &str, state: State, reason: &str) {
        let Ok(mut runways) = self.runways.lock() else {
            return;
        };
        runways.state.insert(id.to_string(), state);
        if !runways.lines.contains_key(id) && runways.lines.len() < LINES {
            let line = self.multi.add(ProgressBar::new_spinner());
            line.set_style(
                ProgressStyle::with_template("  {prefix:<24} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            line.set_prefix(escape(id).into_owned());
            runways.lines.insert(id.to_string(), line);
        }
        if let Some(line) = runways.lines.get(id) {
            let why = escape(reason);
            line.set_message(format!("{:<16} {why}", state.name()));
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut landed = 0;
        for state in runways.state.values() {
            if state.is_final() {
                landed += 1;
            }
            *counts.entry(state.name()).or_default() += 1;
        }
        self.landed.set_position(landed);
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        self.landed.set_message(counts.join(", "));
    }

    /// Follows one of the controller's records (`runway run`'s observer).
    pub fn follow(&self, entry: &Entry) {
        let moved = match &entry.event {
            Event::FilingV1(_) | Event::Filing { .. } => Some((State::Queued, "filed")),
            Event::Moved { to, reason, .. } => Some((*to, reason.as_str())),
            Event::Cleared { .. } => Some((State::Cleared, "")),
            Event::Started { .. } => Some((State::Running, "")),
            Event::Succeeded { .. } => Some((State::Succeeded, "")),
            Event::Failed { reason } => Some((State::Failed, reason.as_str())),
            _ => None,
        };
        if let Some((state, reason)) = moved {
            self.set(&entry.runway, state, reason);
        }
    }

    /// Prints `line` on stdout without tearing the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| println!("{line}"));
    }

    /// Takes the bars off the terminal.
    pub fn finish(&self) {
        self.landed.finish_and_clear();
        if let Ok(runways) = self.runways.lock() {
            for line in runways.lines.values() {
                line.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }
}
