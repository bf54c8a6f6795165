//! Deciding, once a runway's dependencies have ended, whether it goes on
//! and with what input: its condition (`when`, see [`super::condition`])
//! is read over their outputs — false ends it SKIPPED, an error FAILED —
//! and the outputs its input takes (see [`super::flow`]) are put in by
//! value — a missing one FAILS it before it starts. Each decision is an
//! audit record: DECIDED (the expression, the outputs it read, its value)
//! and PASSED (each output passed, the digest of the input as resolved).
//!
//! The outputs come from the trail: a runway whose output another reads
//! keeps it there (a RETURNED record, see [`Dispatch::mark_read`]), so a
//! restart resolves the very same input; a runway cleared after a restart
//! resolves its input again at take-off ([`Dispatch::ready_input`]).

use runway_audit::{Event, PassedOutput, State};
use serde_json::Value;

use super::DispatchError;
use super::condition::Scope;
use super::dispatch::Dispatch;
use super::flow::{self, FlowError, Output, Resolved};
use super::plan::Manifest;
use crate::limits::cut;

/// How much of an expression a move's reason quotes.
const QUOTED: usize = 200;

impl Manifest {
    /// Whether it reads the outputs of the runways it runs after (a `from`
    /// in its input, or a `when`).
    pub fn reads_outputs(&self) -> bool {
        self.when.is_some() || !self.reads.is_empty()
    }

    /// The runway ids whose outputs flow into its input (`from`), in
    /// `after`'s order.
    pub fn takes_from(&self) -> Vec<String> {
        if self.reads.is_empty() || !flow::may_refer(&self.input) {
            return Vec::new();
        }
        let Ok(value) = serde_json::from_slice::<Value>(&self.input) else {
            return Vec::new();
        };
        let refs = flow::references(&value).unwrap_or_default();
        let taken = |name: &String| refs.iter().any(|r| r.from == *name);
        (self.reads.iter().zip(&self.after))
            .filter(|(name, _)| taken(name))
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The name its plan gave `after[k]` (the id itself when it reads no
    /// output).
    fn name_of(&self, k: usize) -> &str {
        self.reads.get(k).unwrap_or(&self.after[k])
    }
}

impl Dispatch {
    /// Runway `i`'s dependencies have all ended, none badly: its condition
    /// is read and its input resolved, once. Whether it goes on (`false`:
    /// it ended, SKIPPED or FAILED).
    pub(super) fn decide(&mut self, i: usize) -> Result<bool, DispatchError> {
        let r = &self.book.runways[i];
        if !r.manifest.reads_outputs() || r.resolved.is_some() {
            return Ok(true);
        }
        let m = r.manifest.clone();
        let resolved = self.resolve_input(i);
        if let Some(when) = &m.when {
            let input = match &resolved {
                Ok(Some((bytes, _))) => serde_json::from_slice(bytes).ok(),
                Ok(None) if m.input.is_empty() => Some(Value::Object(Default::default())),
                Ok(None) => serde_json::from_slice(&m.input).ok(),
                Err(_) => None,
            };
            let (scope, read) = self.scope(i, input);
            let read = if when.reads_outputs() {
                read
            } else {
                Vec::new()
            };
            let value = when.evaluate(scope);
            let event = Event::Decided {
                expression: when.text().to_string(),
                read,
                value: match &value {
                    Ok(b) => b.to_string(),
                    Err(why) => why.clone(),
                },
            };
            self.record(i, None, event);
            self.book.runways[i].course.decided = value.as_ref().ok().copied();
            let quoted = cut(when.text(), QUOTED);
            match (value, &resolved) {
                (Ok(true), _) => {}
                (Ok(false), _) => {
                    let reason = format!("its condition is false: {quoted}");
                    self.enter(i, State::Skipped, reason, None)?;
                    return Ok(false);
                }
                // The input's own failure says more than a condition that
                // could not read it.
                (Err(_), Err(e)) => {
                    self.fail(i, e.to_string())?;
                    return Ok(false);
                }
                (Err(why), Ok(_)) => {
                    self.fail(i, format!("its condition {quoted} failed: {why}"))?;
                    return Ok(false);
                }
            }
        }
        match resolved {
            Err(e) => {
                self.fail(i, e.to_string())?;
                return Ok(false);
            }
            Ok(None) => self.book.runways[i].resolved = Some(m.input.clone()),
            Ok(Some((bytes, inputs))) => self.passed(i, bytes, inputs),
        }
        Ok(true)
    }

    /// Runway `i`'s input at take-off: resolved again when a restart came
    /// after it was decided (from the outputs on the trail, the same
    /// bytes); `Err` naming what is missing.
    pub(super) fn ready_input(&mut self, i: usize) -> Result<(), String> {
        let r = &self.book.runways[i];
        if r.manifest.reads.is_empty() || r.resolved.is_some() {
            return Ok(());
        }
        match self.resolve_input(i) {
            Ok(Some((bytes, inputs))) => self.passed(i, bytes, inputs),
            Ok(None) => {
                let r = &mut self.book.runways[i];
                r.resolved = Some(r.manifest.input.clone());
            }
            Err(e) => return Err(e.to_string()),
        }
        Ok(())
    }

    /// Runway `i` reads the outputs of the runways it runs after: each
    /// keeps its output on the trail (a RETURNED record), and one that
    /// landed already with its output in memory records it now.
    pub(super) fn mark_read(&mut self, i: usize) {
        if !self.book.runways[i].manifest.reads_outputs() {
            return;
        }
        for k in 0..self.book.runways[i].manifest.after.len() {
            let id = &self.book.runways[i].manifest.after[k];
            let Some(&d) = self.book.index.get(id) else {
                continue;
            };
            let dep = &mut self.book.runways[d];
            if std::mem::replace(&mut dep.read, true) || dep.state() != State::Succeeded {
                continue;
            }
            let output = dep.run.as_ref().and_then(|run| run.outcome.as_ref().ok());
            if let (None, Some(output)) = (&dep.course.output, output) {
                let output = output.clone();
                dep.course.output = Some(output.clone());
                self.record(d, None, Event::Returned { output });
            }
        }
    }

    /// Keeps runway `i`'s resolved input, with its PASSED record.
    fn passed(&mut self, i: usize, bytes: Vec<u8>, inputs: Vec<PassedOutput>) {
        let input = runway_audit::sha256(&bytes);
        self.record(i, None, Event::Passed { inputs, input });
        self.book.runways[i].resolved = Some(bytes);
    }

    /// Runway `i`'s input with the outputs it takes put in; `None` when
    /// it takes none.
    fn resolve_input(&self, i: usize) -> Result<Resolved, FlowError> {
        let m = &self.book.runways[i].manifest;
        if m.reads.is_empty() {
            return Ok(None);
        }
        flow::resolve(&m.input, |name| self.output_of(m, name))
    }

    /// The output of the runway `m`'s plan calls `name`, one of its
    /// `after`.
    fn output_of<'a>(&'a self, m: &'a Manifest, name: &str) -> Output<'a> {
        let k = (m.reads.iter().position(|n| n == name))
            .ok_or_else(|| "it is not in `after`".to_string())?;
        let id = m.after[k].as_str();
        let dep = self.book.dep(id);
        match (dep.state(), &dep.course.output, dep.course.output_digest) {
            (State::Succeeded, Some(bytes), Some(digest)) => Ok((id, bytes, digest)),
            (State::Succeeded, _, _) => Err("the trail did not keep it".into()),
            (State::Skipped, _, _) => Err("it was skipped".into()),
            (state, _, _) => Err(format!("it is {}", state.name())),
        }
    }

    /// What runway `i`'s condition reads, and the outputs among it.
    fn scope(&self, i: usize, input: Option<Value>) -> (Scope, Vec<PassedOutput>) {
        let m = &self.book.runways[i].manifest;
        let mut scope = Scope {
            input,
            ..Scope::default()
        };
        let mut read = Vec::new();
        for (k, id) in m.after.iter().enumerate() {
            let name = m.name_of(k).to_string();
            let dep = self.book.dep(id);
            if dep.state() == State::Skipped {
                scope.skipped.push(name.clone());
            }
            let output = (dep.course.output.as_deref()).zip(dep.course.output_digest);
            if let (State::Succeeded, Some((bytes, digest))) = (dep.state(), output)
                && let Ok(value) = serde_json::from_slice::<Value>(bytes)
            {
                scope.outputs.push((name.clone(), value));
                read.push(PassedOutput {
                    runway: id.clone(),
                    path: String::new(),
                    digest,
                });
            }
            scope.after.push(name);
        }
        (scope, read)
    }
}
