//! The audit trail as the controller's journal: folding its lifecycle
//! records back into runways after a restart (DESIGN.md, "The audit trail
//! is the journal").
//!
//! Every runway's FILING record holds its whole manifest, and every move
//! after it is a record of its own (MOVED, CLEARED, STARTED, SUCCEEDED,
//! FAILED), so reading the trail once in order gives each runway's state,
//! attempts, approval and history as they were at the last durable record.
//! Each attempt's COST record adds to its runway's cost. What the trail
//! does not hold never happened. The start path
//! ([`super::start`]) reads the trail once for both this fold and the
//! commit recovery ([`super::commit`]), and folds what recovery appended
//! too, so a run the crash cut short has its FAILED (or its recovered
//! SUCCEEDED) here.
//!
//! Runways filed before FILING records existed (the older FILED record)
//! cannot be rebuilt; their ids are only kept from being given again.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use runway_audit::{Entry, Event, Hash, State, VerifyError};

use super::breaker::Breakers;
use super::cost::{self, Spent};
use super::filings::Filings;
use super::health::{Ended, Figures};
use super::place::Place;
use super::runway::{Course, Transition, Unfiled, timestamp, unfile};
use super::state::Lifecycle;
use super::trigger_book::{self, TriggerBook};

/// One runway as the trail last saw it.
#[derive(Debug, Clone)]
pub struct Folded {
    /// Its manifest (id, agent and input included), times resolved.
    pub filed: Unfiled,
    /// Its state, attempts, locks, output and moves, as live.
    pub course: Course,
}

/// What the trail says about the controller.
#[derive(Debug, Default)]
pub struct Journal {
    /// Runways in filing order.
    pub runways: Vec<Folded>,
    /// Ids of runways that cannot be rebuilt (filed by an older host).
    pub reserved: HashSet<String>,
    /// Who paused clearing, when the last PAUSED has no RESUMED after it.
    pub paused: Option<String>,
    /// Plans filed: (source, plan digest) → their runway ids.
    pub plans: HashMap<(String, Hash), Vec<String>>,
    /// Each agent's breaker as its last BREAKER record left it.
    pub breakers: Breakers,
    /// Each agent's attempts, as STARTED and their ends tell them.
    pub figures: Figures,
    /// Runway id → the first runway id of the plan that filed it, for
    /// every runway a plan filed but its first (its filing, as costs are
    /// summed: `super::cost`).
    pub first: HashMap<String, String>,
    /// Triggers, and the firings they owe.
    pub triggers: TriggerBook,
    /// What each agent's runs cost, as its STARTED and COST records say.
    pub spent: HashMap<String, Spent>,
    /// Every plan filed, as its PLAN record says it.
    pub filings: Filings,
}

/// Reads the trail in `dir` and folds it.
pub fn read(dir: &Path) -> Result<Journal, VerifyError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut journal = Fold::default();
    runway_audit::for_each_record(dir, threads, |r| {
        journal.apply(&Place::new(None, r.seq), r.time_ns, &r.entry)
    })?;
    Ok(journal.finish())
}

/// Whether [`Fold::apply`] reads `entry` at all: what a snapshot keeps
/// of the trail ([`super::snapshot`]).
pub fn folds(entry: &Entry) -> bool {
    if trigger_book::folds(entry) {
        return true;
    }
    match &entry.event {
        Event::Paused { .. }
        | Event::Resumed { .. }
        | Event::PlanFiled { .. }
        | Event::BreakerMoved { .. } => entry.runway.is_empty(),
        Event::FilingV1(_)
        | Event::Filing { .. }
        | Event::Filed { .. }
        | Event::Moved { .. }
        | Event::Failed { .. }
        | Event::Cleared { .. }
        | Event::Started { .. }
        | Event::Returned { .. }
        | Event::Cost { .. }
        | Event::Decided { .. }
        | Event::Succeeded { .. }
        | Event::Routed { .. } => !entry.runway.is_empty(),
        _ => false,
    }
}

/// A fold in progress: records go in one at a time, in trail order.
#[derive(Default)]
pub struct Fold {
    journal: Journal,
    index: HashMap<String, usize>,
}

impl Fold {
    /// Folds the next record: `entry`, at `place`, written at `time_ns`.
    pub fn apply(&mut self, place: &Place, time_ns: u64, entry: &Entry) {
        let at = timestamp(time_ns);
        self.journal.triggers.apply(place, at, entry);
        self.journal.filings.apply(place.seq, time_ns, entry);
        if entry.runway.is_empty() {
            match &entry.event {
                Event::Paused { by } => self.journal.paused = Some(by.clone()),
                Event::Resumed { .. } => self.journal.paused = None,
                Event::BreakerMoved { to, .. } => {
                    if to == "closed" {
                        self.journal.figures.forgive(&entry.agent);
                    }
                    self.journal
                        .breakers
                        .restore(&entry.agent, &entry.event, at)
                }
                Event::PlanFiled {
                    by,
                    source,
                    digest,
                    runways,
                } => {
                    // Who filed it: its first move's `by`, as when live.
                    for id in runways {
                        if let Some(&i) = self.index.get(id)
                            && let Some(first) = self.journal.runways[i].course.history.first_mut()
                        {
                            first.by = Some(by.clone());
                        }
                    }
                    if let Some((first, rest)) = runways.split_first() {
                        for id in rest {
                            self.journal.first.insert(id.clone(), first.clone());
                        }
                    }
                    let plan = (source.clone(), *digest);
                    self.journal.plans.insert(plan, runways.clone());
                }
                _ => {}
            }
            return;
        }
        let runway = &entry.runway;
        let event = &entry.event;
        if let Some(unfiled) = unfile(runway, &entry.agent, event) {
            if self.index.contains_key(runway) {
                return;
            }
            let filed = match unfiled {
                Ok(filed) => filed,
                Err(why) => {
                    // Kept from being given again, as a runway of an
                    // older host would be.
                    tracing::warn!(runway = %runway, "cannot be rebuilt from the trail: {why}");
                    self.journal.reserved.insert(runway.clone());
                    return;
                }
            };
            if let Some(by) = &filed.manifest.fired_by {
                let triggers = &mut self.journal.triggers;
                triggers.filed(&by.trigger, &by.key, &by.runway, runway);
            }
            self.index
                .insert(runway.clone(), self.journal.runways.len());
            self.journal.runways.push(Folded {
                filed,
                course: Course {
                    history: vec![Transition {
                        at,
                        state: State::Queued,
                        reason: "filed".into(),
                        by: None,
                    }],
                    ..Course::default()
                },
            });
            return;
        }
        if let Event::Filed { .. } = event {
            self.journal.reserved.insert(runway.clone());
            return;
        }
        let Some(&i) = self.index.get(runway) else {
            return;
        };
        self.count(time_ns, at, entry);
        if let Event::Routed { picked, .. } = event {
            let manifest = &mut self.journal.runways[i].filed.manifest;
            manifest.agent = picked.clone();
            return;
        }
        let r = &mut self.journal.runways[i].course;
        let (to, reason, by) = match event {
            Event::Moved { to, reason, by } => (*to, reason.clone(), by.clone()),
            Event::Failed { reason } => (State::Failed, reason.clone(), None),
            Event::Cleared { locks } => {
                r.locks = locks.clone();
                (State::Cleared, String::new(), None)
            }
            Event::Started { attempt } => {
                r.attempt = *attempt;
                r.cost.add(&Spent::one_run());
                (State::Running, format!("attempt {attempt}"), None)
            }
            Event::Succeeded { output } => {
                r.output_digest = Some(*output);
                (State::Succeeded, String::new(), None)
            }
            Event::Returned { output } => {
                r.output = Some(output.clone());
                return;
            }
            Event::Cost {
                fuel,
                wall_us,
                bytes,
                ..
            } => {
                r.cost.add(&Spent::landed(*fuel, *wall_us, *bytes));
                return;
            }
            Event::Decided { value, .. } => {
                r.decided = value.parse().ok();
                return;
            }
            _ => return,
        };
        r.life = Lifecycle::restored(to);
        r.history.push(Transition {
            at,
            state: to,
            reason,
            by,
        });
    }

    /// An attempt taking off, costing or ending, for the agents' figures
    /// and what their runs spent.
    fn count(&mut self, time_ns: u64, at: jiff::Timestamp, entry: &Entry) {
        if let Some(spent) = cost::of_record(entry) {
            let sum = self.journal.spent.entry(entry.agent.clone()).or_default();
            sum.add(&spent);
        }
        let figures = &mut self.journal.figures;
        let (how, reason) = match &entry.event {
            Event::Started { .. } => {
                figures.took_off(&entry.runway, &entry.agent, time_ns);
                return;
            }
            Event::Succeeded { .. } => (Ended::Succeeded, ""),
            Event::Failed { reason } => (Ended::Failed, reason.as_str()),
            Event::Moved {
                to: State::TimedOut,
                reason,
                ..
            } => (Ended::Failed, reason.as_str()),
            Event::Moved {
                to: State::Cancelled,
                ..
            } => (Ended::Cancelled, ""),
            _ => return,
        };
        figures.ended(&entry.runway, how, reason, time_ns, at);
    }

    pub fn finish(self) -> Journal {
        self.journal
    }
}
