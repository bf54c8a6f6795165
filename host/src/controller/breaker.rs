//! Circuit breakers, one per agent whose grants have a `[breaker]`
//! (`plugin::breaker`): the state machine and the records of its moves.
//!
//! - **closed** → **open** when `failures` attempts of the agent failed or
//!   timed out within the last `within` (on the controller's clock),
//!   checked as each attempt lands; failures before it last closed never
//!   count again: the agent's figures forget them as it closes
//!   ([`super::health::Figures::forgive`], live and in the fold alike, so
//!   no clock time of the close is needed to restore it);
//! - **open** → **half-open** once `open_for` has passed;
//! - **half-open** lets exactly one runway be cleared, its probe: the
//!   probe's success closes the breaker, its failure opens it again (a
//!   probe that ends without running leaves the place to the next).
//!
//! While open, and while the probe is out, the agent's runways wait in
//! WAITING_BREAKER (or fail at once, `on_open = "fail"`), and the tower
//! clears none of those already waiting for locks ([`super::tower`]'s
//! holds). Every move is a BREAKER record (no runway, the agent's name)
//! with the counts it read; after a restart the last record of each agent
//! gives its state back ([`Breakers::restore`]), an open one's end as
//! recorded.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use runway_audit::Event;

use super::health::AgentFigures;
use crate::plugin::breaker::BreakerGrant;

/// Where a breaker stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Closed (the failures before it are forgotten).
    Closed,
    /// Open until then.
    Open { until: Timestamp },
    /// One probe may run: the runway id of the one that was let through.
    HalfOpen { probe: Option<String> },
}

impl Phase {
    /// `closed`, `open` or `half-open`, as records and views say it.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open { .. } => "open",
            Phase::HalfOpen { .. } => "half-open",
        }
    }
}

const CLOSED: Phase = Phase::Closed;

/// What the breaker says to one of its agent's runways at the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Closed (or no breaker): go on.
    Go,
    /// Half-open and no probe out: go on as its probe.
    Probe,
    /// Open, or its probe is out: why, in words.
    Hold(String),
}

/// Every agent's breaker that ever moved (others are closed).
#[derive(Debug, Default)]
pub struct Breakers {
    phases: BTreeMap<String, Phase>,
}

/// A move, as its record says it.
fn moved(from: &Phase, to: &Phase, reason: String, failures: u32, grant: &BreakerGrant) -> Event {
    Event::BreakerMoved {
        from: from.name().into(),
        to: to.name().into(),
        reason,
        failures,
        within_ms: grant.within.as_millis() as u64,
        until_ns: match to {
            Phase::Open { until } => Some(until.as_nanosecond().max(0) as u64),
            _ => None,
        },
    }
}

fn span(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Breakers {
    /// `agent`'s breaker.
    pub fn phase(&self, agent: &str) -> &Phase {
        self.phases.get(agent).unwrap_or(&CLOSED)
    }

    /// Every breaker that is not closed.
    pub fn tripped(&self) -> impl Iterator<Item = (&String, &Phase)> {
        self.phases
            .iter()
            .filter(|(_, p)| !matches!(p, Phase::Closed))
    }

    /// Whether a runway of `agent` may go on; `probing` says whether a
    /// runway is still out as the probe (it may have ended without
    /// running, leaving the place free).
    pub fn admits(&self, agent: &str, probing: impl Fn(&str) -> bool) -> Admit {
        match self.phase(agent) {
            Phase::Closed => Admit::Go,
            Phase::Open { until } => Admit::Hold(format!(
                "agent {agent}'s circuit breaker is open until {until:.3}"
            )),
            Phase::HalfOpen { probe: Some(p) } if probing(p) => Admit::Hold(format!(
                "agent {agent}'s circuit breaker is half-open: its probe {p} is out"
            )),
            Phase::HalfOpen { .. } => Admit::Probe,
        }
    }

    /// Runway `runway` goes on as `agent`'s probe.
    pub fn probe(&mut self, agent: &str, runway: &str) {
        if let Some(Phase::HalfOpen { probe }) = self.phases.get_mut(agent) {
            *probe = Some(runway.to_string());
        }
    }

    /// `agent`'s probe ended without running: the place is free.
    pub fn unprobe(&mut self, agent: &str) {
        if let Some(Phase::HalfOpen { probe }) = self.phases.get_mut(agent) {
            *probe = None;
        }
    }

    /// An attempt of `agent` (runway `runway`) landed, `ok` or not, at
    /// `now`; `figures` already count it. The move it makes, if any.
    pub fn landed(
        &mut self,
        agent: &str,
        runway: &str,
        ok: bool,
        grant: &BreakerGrant,
        figures: &AgentFigures,
        now: Timestamp,
    ) -> Option<Event> {
        let from = self.phase(agent).clone();
        let (to, reason, failures) = match &from {
            Phase::Closed => {
                let window_start = now.saturating_sub(span(grant.within)).ok()?;
                let failures = figures.failures_since(window_start);
                if ok || failures < grant.failures {
                    return None;
                }
                let until = now.saturating_add(span(grant.open_for)).ok()?;
                let reason = format!(
                    "{failures} attempts failed within {:#} (the breaker opens at {}); last: runway {runway}",
                    SignedDuration::try_from(grant.within).unwrap_or_default(),
                    grant.failures
                );
                (Phase::Open { until }, reason, failures)
            }
            Phase::HalfOpen { probe: Some(p) } if p == runway => {
                if ok {
                    let reason = format!("probe {runway} succeeded");
                    (Phase::Closed, reason, 0)
                } else {
                    let until = now.saturating_add(span(grant.open_for)).ok()?;
                    let reason = format!("probe {runway} failed");
                    (Phase::Open { until }, reason, 1)
                }
            }
            _ => return None,
        };
        let event = moved(&from, &to, reason, failures, grant);
        self.phases.insert(agent.to_string(), to);
        Some(event)
    }

    /// Open breakers whose time is up go half-open at `now`: each agent
    /// and its record.
    pub fn tick(
        &mut self,
        now: Timestamp,
        grant_of: impl Fn(&str) -> Option<BreakerGrant>,
    ) -> Vec<(String, Event)> {
        let mut moves = Vec::new();
        for (agent, phase) in self.phases.iter_mut() {
            let Phase::Open { until } = *phase else {
                continue;
            };
            if until > now {
                continue;
            }
            let to = Phase::HalfOpen { probe: None };
            // An agent whose grants lost their breaker closes instead.
            let event = match grant_of(agent) {
                Some(grant) => moved(
                    phase,
                    &to,
                    format!("open since {until} is over: one probe may run"),
                    0,
                    &grant,
                ),
                None => Event::BreakerMoved {
                    from: phase.name().into(),
                    to: "closed".into(),
                    reason: "its grants have no breaker any more".into(),
                    failures: 0,
                    within_ms: 0,
                    until_ns: None,
                },
            };
            *phase = match grant_of(agent) {
                Some(_) => to,
                None => Phase::Closed,
            };
            moves.push((agent.clone(), event));
        }
        moves
    }

    /// The next moment an open breaker goes half-open.
    pub fn next_until(&self) -> Option<Timestamp> {
        self.phases
            .values()
            .filter_map(|p| match p {
                Phase::Open { until } => Some(*until),
                _ => None,
            })
            .min()
    }

    /// Folds `agent`'s BREAKER record written at `at`: its `to` (and an
    /// open one's `until_ns`) is where it stands.
    pub fn restore(&mut self, agent: &str, event: &Event, at: Timestamp) {
        let Event::BreakerMoved { to, until_ns, .. } = event else {
            return;
        };
        let phase = match (to.as_str(), until_ns) {
            ("open", Some(ns)) => Phase::Open {
                until: Timestamp::from_nanosecond(i128::from(*ns)).unwrap_or(at),
            },
            ("half-open", _) => Phase::HalfOpen { probe: None },
            _ => Phase::Closed,
        };
        self.phases.insert(agent.to_string(), phase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::health::{Ended, Figures};
    use std::time::Duration;

    #[test]
    fn opens_half_opens_and_closes_on_the_probe() {
        let grant = BreakerGrant {
            failures: 2,
            within: Duration::from_secs(600),
            open_for: Duration::from_secs(300),
        };
        let mut figures = Figures::default();
        let mut b = Breakers::default();
        let t0: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let fail = |f: &mut Figures, id: &str, at: Timestamp| {
            f.took_off(id, "a", 0);
            f.ended(id, Ended::Failed, "boom", 1, at);
        };
        fail(&mut figures, "r1", t0);
        assert!(
            b.landed("a", "r1", false, &grant, &figures.of("a"), t0)
                .is_none()
        );
        // A failure outside the window does not count with the next one.
        let late = t0.checked_add(SignedDuration::from_secs(601)).unwrap();
        fail(&mut figures, "r2", late);
        assert!(
            b.landed("a", "r2", false, &grant, &figures.of("a"), late)
                .is_none()
        );
        fail(&mut figures, "r3", late);
        let opened = b.landed("a", "r3", false, &grant, &figures.of("a"), late);
        assert!(
            matches!(opened, Some(Event::BreakerMoved { ref to, failures: 2, .. }) if to == "open")
        );
        assert!(matches!(b.admits("a", |_| true), Admit::Hold(_)));
        assert!(b.tick(late, |_| Some(grant)).is_empty());
        let half = late.checked_add(SignedDuration::from_secs(300)).unwrap();
        assert_eq!(b.tick(half, |_| Some(grant)).len(), 1);
        assert_eq!(b.admits("a", |_| true), Admit::Probe);
        b.probe("a", "p");
        assert!(matches!(b.admits("a", |_| true), Admit::Hold(_)));
        // A probe that ended without running leaves the place free.
        assert_eq!(b.admits("a", |_| false), Admit::Probe);
        // Someone else's landing does not close it; the probe's does.
        assert!(
            b.landed("a", "x", true, &grant, &figures.of("a"), half)
                .is_none()
        );
        let closed = b.landed("a", "p", true, &grant, &figures.of("a"), half);
        assert!(matches!(closed, Some(Event::BreakerMoved { ref to, .. }) if to == "closed"));
        // Failures before it closed do not count again.
        figures.forgive("a");
        fail(&mut figures, "r4", half);
        assert!(
            b.landed("a", "r4", false, &grant, &figures.of("a"), half)
                .is_none()
        );
    }
}
