//! The gate before the tower: a runway about to ask for its locks is
//! routed first (a routed manifest's pick, [`super::routing`]; a ROUTED
//! record), then its agent's breaker ([`super::breaker`]) lets it go on,
//! go on as the half-open breaker's probe, or holds it in WAITING_BREAKER
//! (fails it at once with `on_open = "fail"`). And what follows each
//! landing: the agent's figures ([`super::health`]) and its breaker's
//! move, an open breaker's time running out, the tower's holds kept in
//! step (the tower clears none of a held agent's runways but its probe).
//!
//! Delegated children do not pass the gate: they are filed with their
//! locks taken at once, and their root's own breaker governs the tree.

use runway_audit::{Entry, Event, State};

use super::DispatchError;
use super::breaker::{Admit, Phase};
use super::dispatch::Dispatch;
use super::health::Ended;
use super::routing::{self, Candidate};

impl Dispatch {
    /// Routes runway `i` and asks its breaker: `true` when it may ask the
    /// tower for its locks now; else it waits in WAITING_BREAKER or has
    /// failed.
    pub(super) fn pass_gate(&mut self, i: usize) -> Result<bool, DispatchError> {
        if let Some(route) = self.book.runways[i].manifest.route.clone() {
            let candidates: Vec<Candidate<'_>> = route
                .any
                .iter()
                .map(|agent| Candidate {
                    agent,
                    figures: self.figures.of(agent),
                    breaker: self.breakers.phase(agent).name(),
                    admitted: !matches!(self.admits(agent), Admit::Hold(_)),
                })
                .collect();
            let Some(k) = routing::pick(route.prefer, &candidates) else {
                let why = format!(
                    "every candidate's circuit breaker holds it ({})",
                    route.any.join(", ")
                );
                return self.hold(i, why);
            };
            let picked = candidates[k].agent.to_string();
            let figures = candidates.iter().map(Candidate::recorded).collect();
            let r = &mut self.book.runways[i];
            if r.manifest.agent != picked {
                std::sync::Arc::make_mut(&mut r.manifest).agent = picked.clone();
                r.plugin = self.host.plugins().get(&picked);
            }
            let event = Event::Routed {
                prefer: route.prefer.name().into(),
                picked,
                figures,
            };
            self.record(i, None, event);
        }
        let agent = self.book.runways[i].manifest.agent.clone();
        match self.admits(&agent) {
            Admit::Go => Ok(true),
            Admit::Probe => {
                let id = self.book.runways[i].id().to_string();
                self.breakers.probe(&agent, &id);
                Ok(true)
            }
            Admit::Hold(why) => self.hold(i, why),
        }
    }

    /// What `agent`'s breaker says now (no breaker: go).
    fn admits(&self, agent: &str) -> Admit {
        let book = &self.book;
        self.breakers.admits(agent, |probe| {
            book.index.get(probe).is_some_and(|&p| {
                matches!(
                    book.runways[p].state(),
                    State::WaitingLocks | State::Cleared | State::Running
                )
            })
        })
    }

    /// Runway `i` may not go on: WAITING_BREAKER, or FAILED when its
    /// manifest says `on_open = "fail"`.
    fn hold(&mut self, i: usize, why: String) -> Result<bool, DispatchError> {
        let r = &self.book.runways[i];
        if !r.manifest.on_open.is_wait() {
            self.fail(i, format!("{why} (on_open = \"fail\")"))?;
        } else if r.state() != State::WaitingBreaker {
            self.enter(i, State::WaitingBreaker, why, None)?;
        }
        Ok(false)
    }

    /// Runway `i` asked the tower for its locks: as its agent's probe,
    /// the tower may clear it (and only it) while the breaker holds.
    pub(super) fn after_request(&mut self, i: usize) {
        let r = &self.book.runways[i];
        if let Phase::HalfOpen { probe: Some(p) } = self.breakers.phase(&r.manifest.agent)
            && p == r.id()
        {
            self.host.tower.hold(&r.manifest.agent, r.ticket);
        }
    }

    /// Whether runway `i`, cleared by the tower, may not take off after
    /// all: its agent's breaker opened (or another runway became its
    /// probe) while the clearance was on the way. A half-open breaker
    /// without a probe takes it as its probe.
    pub(super) fn held_at_take_off(&mut self, i: usize) -> bool {
        let r = &self.book.runways[i];
        if r.manifest.lineage.is_some() {
            return false;
        }
        let (agent, id) = (r.manifest.agent.clone(), r.id().to_string());
        if let Phase::HalfOpen { probe: Some(p) } = self.breakers.phase(&agent)
            && *p == id
        {
            return false;
        }
        match self.admits(&agent) {
            Admit::Go => false,
            Admit::Probe => {
                self.breakers.probe(&agent, &id);
                self.host.tower.hold(&agent, None);
                false
            }
            Admit::Hold(_) => true,
        }
    }

    /// Runway `i` moved from `from` to `to` (`reason`): an attempt taking
    /// off or landing is counted, and its landing looked at by the
    /// breaker at the next settling.
    pub(super) fn count_flight(&mut self, i: usize, from: State, to: State, reason: &str) {
        let r = &self.book.runways[i];
        if to == State::Running {
            let now = runway_audit::now_ns();
            self.figures.took_off(r.id(), &r.manifest.agent, now);
        } else if from == State::Running {
            let how = match to {
                State::Succeeded => Ended::Succeeded,
                State::Cancelled => Ended::Cancelled,
                _ => Ended::Failed,
            };
            let (now_ns, now) = (runway_audit::now_ns(), self.clock.now());
            let id = r.id().to_string();
            if let Some(agent) = self.figures.ended(&id, how, reason, now_ns, now)
                && how != Ended::Cancelled
            {
                self.landings.push((agent, id, how == Ended::Succeeded));
            }
        }
    }

    /// Breakers catch up: each landing since the last settling may move
    /// its agent's breaker; open ones whose time is up go half-open; a
    /// half-open one without a probe out takes the first of its agent's
    /// runways waiting for locks. When any moved, the runways waiting in
    /// WAITING_BREAKER are looked at again.
    pub(super) fn tend_breakers(&mut self) {
        let mut moves: Vec<(String, Event)> = Vec::new();
        for (agent, runway, ok) in std::mem::take(&mut self.landings) {
            let Some(grant) = self.breaker_grant(&agent) else {
                continue;
            };
            let figures = self.figures.of(&agent);
            let now = self.clock.now();
            if let Some(event) = self
                .breakers
                .landed(&agent, &runway, ok, &grant, &figures, now)
            {
                moves.push((agent, event));
            }
        }
        let now = self.clock.now();
        let plugins = self.host.plugins();
        let grant_of = |agent: &str| plugins.get(agent).and_then(|p| p.grants.breaker);
        moves.extend(self.breakers.tick(now, grant_of));
        let mut changed = !moves.is_empty();
        for (agent, event) in moves {
            match self.breakers.phase(&agent) {
                Phase::Closed => {
                    self.figures.forgive(&agent);
                    self.host.tower.unhold(&agent)
                }
                _ => self.host.tower.hold(&agent, None),
            }
            self.record_entry(Entry {
                agent,
                ..Entry::of_host(event)
            });
        }
        // Half-open with no probe out (or one that ended without
        // running): the first of its runways waiting for locks goes —
        // first in line, or it would wait behind held ones for ever.
        let free: Vec<(String, bool)> = self
            .breakers
            .tripped()
            .filter(|(a, _)| self.admits(a) == Admit::Probe)
            .map(|(a, p)| (a.clone(), matches!(p, Phase::HalfOpen { probe: Some(_) })))
            .collect();
        for (agent, freed) in free {
            // The first in the tower's lines (the lowest ticket): none of
            // its agent's runways, all held, stands before it.
            let first = (self.book.runways.iter().enumerate())
                .filter(|(_, r)| {
                    r.state() == State::WaitingLocks
                        && r.manifest.agent == agent
                        && r.manifest.lineage.is_none()
                })
                .filter_map(|(p, r)| r.ticket.map(|t| (t, p)))
                .min()
                .map(|(_, p)| p);
            match first {
                Some(p) => {
                    let r = &self.book.runways[p];
                    self.breakers.probe(&agent, r.id());
                    self.host.tower.hold(&agent, r.ticket);
                }
                // One waiting in WAITING_BREAKER may take the place.
                None if freed => {
                    self.breakers.unprobe(&agent);
                    changed = true;
                }
                None => {}
            }
        }
        if changed {
            let waiting = (self.book.runways.iter().enumerate())
                .filter(|(_, r)| r.state() == State::WaitingBreaker)
                .map(|(i, _)| i);
            self.schedule.dirty.extend(waiting);
        }
    }

    /// `agent`'s breaker settings, from its grants as loaded now.
    fn breaker_grant(&self, agent: &str) -> Option<crate::plugin::breaker::BreakerGrant> {
        self.host.plugins().get(agent)?.grants.breaker
    }

    /// The tower holds every agent whose breaker is not closed (after a
    /// restart, before any runway asks for locks again).
    pub(super) fn hold_tripped(&self) {
        for (agent, _) in self.breakers.tripped() {
            self.host.tower.hold(agent, None);
        }
    }
}
