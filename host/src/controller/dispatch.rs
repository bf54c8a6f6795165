//! [`Dispatch`]: the controller's state, one part per concern — the
//! [`Book`] of runways, what the [`Schedule`] must look at, the
//! [`Waiters`], the [`Flights`] in the air — and the one way a runway moves
//! (checked against the state machine, one audit record per move, its
//! history, dependents and waiters kept in step). What the controller does
//! with it lives beside it, one file per concern: filing, restore, the
//! event loop, settling, commands, take-off, landing.

use std::collections::BTreeSet;
use std::sync::Arc;

use runway_audit::{AuditError, Entry, Event, State};

use super::book::Book;
use super::breaker::Breakers;
use super::clock::Clock;
use super::controls::Inbox;
use super::cost::Ledger;
use super::family::Families;
use super::filings::Filings;
use super::flights::Flights;
use super::health::Figures;
use super::host::Host;
use super::runway::{Runway, Transition};
use super::state::IllegalMove;
use super::stats::Stats;
use super::trigger_book::TriggerBook;
use super::waiters::Waiters;
use super::{DispatchError, DispatchOptions};
use crate::sandbox::Observer;

/// The runways to look at again.
#[derive(Default)]
pub(super) struct Schedule {
    /// Filed, or a dependency ended, in filing order.
    pub dirty: BTreeSet<usize>,
    /// Waiting runways with a time to watch: an earliest start, an expiry,
    /// a retry's backoff.
    pub timed: BTreeSet<usize>,
}

pub(super) struct Dispatch {
    pub host: Arc<Host>,
    pub observer: Observer,
    pub clock: Arc<dyn Clock>,
    pub book: Book,
    pub schedule: Schedule,
    pub waiters: Waiters,
    pub flights: Flights,
    /// Delegation trees: joins, keys, places, progress.
    pub family: Families,
    pub inbox: Inbox,
    pub four_eyes: bool,
    /// Triggers and the firings they owe.
    pub triggers: TriggerBook,
    /// This step's records, appended together at its end (one lock and
    /// one wake-up of the writer per step, not per record).
    outbox: Vec<(u64, Entry)>,
    /// Every handle is gone.
    pub closed: bool,
    /// Clearing stopped for good; the controller ends once nothing flies.
    pub stopping: bool,
    pub stats: Stats,
    /// Agents' circuit breakers, their figures, and the landings their
    /// breakers have not looked at yet (agent, runway, succeeded).
    pub breakers: Breakers,
    pub figures: Figures,
    pub landings: Vec<(String, String, bool)>,
    /// What runs cost, per filing, agent and trigger (`spend`).
    pub costs: Ledger,
}

impl Dispatch {
    pub fn new(host: Arc<Host>, opts: DispatchOptions, inbox: Inbox) -> Dispatch {
        Dispatch {
            host,
            observer: opts.observer,
            clock: opts.clock,
            book: Book::default(),
            schedule: Schedule::default(),
            waiters: Waiters::default(),
            flights: Flights::default(),
            family: Families::default(),
            inbox,
            four_eyes: opts.four_eyes,
            triggers: TriggerBook::default(),
            outbox: Vec::new(),
            closed: false,
            stopping: false,
            stats: Stats::default(),
            breakers: Breakers::default(),
            figures: Figures::default(),
            landings: Vec::new(),
            costs: Ledger::default(),
        }
    }

    /// Runway `i`'s record of `event` (on `dataset`'s chain when given),
    /// appended with the step's others ([`Dispatch::flush`]).
    pub fn record(&mut self, i: usize, dataset: Option<String>, event: Event) {
        let r = &self.book.runways[i];
        let entry = Entry {
            runway: r.id().to_string(),
            agent: r.manifest.agent.clone(),
            plugin: r.plugin.as_ref().map(|p| p.digest),
            dataset,
            event,
        };
        self.record_entry(entry);
    }

    /// A record of the controller's, appended with the step's others.
    pub fn record_entry(&mut self, entry: Entry) {
        (self.observer)(&entry);
        self.outbox.push((runway_audit::now_ns(), entry));
    }

    /// Appends the records kept so far, in order: at the end of each step,
    /// and before anyone else may append after them (a run taking off, a
    /// pause). The PLAN records among them are kept in the book's filings
    /// with the sequence numbers they got.
    pub fn flush(&mut self) -> Result<(), AuditError> {
        // The next step's records go into a buffer of this one's size.
        let room = Vec::with_capacity(self.outbox.len());
        let batch = std::mem::replace(&mut self.outbox, room);
        let (n, plans) = (batch.len() as u64, Filings::among(&batch));
        if let Some(appended) = self.host.audit.append_batch(batch)? {
            self.book.filings.appended(appended, n, plans);
        }
        Ok(())
    }

    /// Adds a runway, charged to its filing; it is looked at next round.
    pub fn add(&mut self, runway: Runway) -> usize {
        let timed = !runway.ended() && (runway.start_at.is_some() || runway.expires_at.is_some());
        let i = self.book.add(runway);
        self.enroll(i);
        if timed {
            self.schedule.timed.insert(i);
        }
        self.schedule.dirty.insert(i);
        i
    }

    /// Moves runway `i` to `to`; `event` is the move's audit record (a
    /// MOVED record with `reason` when `None`).
    pub fn enter(
        &mut self,
        i: usize,
        to: State,
        reason: String,
        event: Option<Event>,
    ) -> Result<(), DispatchError> {
        let from = self.book.runways[i].state();
        // Leaving WAITING_APPROVAL is the approval: its record names who.
        let approval = match from {
            State::WaitingApproval => self.book.runways[i].approval.take(),
            _ => None,
        };
        let (reason, by) = match approval {
            Some((by, note)) => {
                let note = if note.is_empty() {
                    String::new()
                } else {
                    format!(" ({note})")
                };
                (format!("approved{note}; {reason}"), Some(by))
            }
            None => (reason, None),
        };
        let event = event.unwrap_or(Event::Moved {
            to,
            reason: reason.clone(),
            by: by.clone(),
        });
        let by = match &event {
            Event::Moved { by, .. } => by.clone(),
            _ => by,
        };
        self.move_runway(i, to, &reason, by)?;
        self.record(i, None, event);
        Ok(())
    }

    /// Moves runway `i` to FAILED; its FAILED record says why.
    pub fn fail(&mut self, i: usize, reason: String) -> Result<(), DispatchError> {
        let event = Event::Failed {
            reason: reason.clone(),
        };
        self.enter(i, State::Failed, reason, Some(event))
    }

    /// Moves runway `i` to `to` in the name of the person `by`.
    pub fn moved_by(
        &mut self,
        i: usize,
        to: State,
        reason: String,
        by: String,
    ) -> Result<(), DispatchError> {
        let event = Event::Moved {
            to,
            reason: reason.clone(),
            by: Some(by),
        };
        self.enter(i, to, reason, Some(event))
    }

    /// Moves runway `i` to `to` and keeps the books: its history, an
    /// ending wakes its dependents and waiters, a retry opens it again.
    pub fn move_runway(
        &mut self,
        i: usize,
        to: State,
        reason: &str,
        by: Option<String>,
    ) -> Result<(), IllegalMove> {
        let was_ended = self.book.runways[i].ended();
        let from = self.book.runways[i].state();
        let flew = from == State::Running;
        self.book.runways[i].move_to(to)?;
        self.count_flight(i, from, to, reason);
        if flew && to != State::Running {
            self.family.landed.push(i);
        }
        let at = self.clock.now();
        let r = &mut self.book.runways[i];
        r.course.history.push(Transition {
            at,
            state: to,
            reason: reason.to_string(),
            by,
        });
        if r.ended() && !was_ended {
            self.schedule.timed.remove(&i);
            let dependents = self.book.dependents[i].iter().copied();
            self.schedule.dirty.extend(dependents);
            self.waiters.ended(i);
            if self.book.parents[i].is_some() {
                self.family.ended.push(i);
            }
        }
        Ok(())
    }

    /// Whether the controller has work that keeps it up: it serves until
    /// stopped, then until the last run in the air has landed and its
    /// worker let go of the host (so the host goes with its last holder).
    pub fn done(&self) -> bool {
        // Runs flying on crews are not waited for: the next leader takes
        // them from their crews and retries them.
        let here = self.flights.airborne - self.flights.remote.len();
        self.stopping && here == 0 && self.flights.on_workers == 0
    }
}
