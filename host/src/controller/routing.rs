//! Routing by measured performance: at clearance, the tower picks one of
//! a routed manifest's candidates ([`super::route`]) from its own figures
//! ([`super::health`], over each agent's last
//! [`crate::limits::FIGURES_WINDOW_RUNS`] attempts). Each attempt picks
//! again; the pick and the figures behind it are a ROUTED record, and the
//! journal's fold gives the pick back after a restart.
//!
//! The rule, in order:
//! 1. candidates whose breaker holds them (open, or its probe out) are
//!    left out; none left: the runway waits in WAITING_BREAKER;
//! 2. warm-up (`fastest`, `reliable`): a candidate with no attempt landed
//!    and none in the air is tried first, so figures get made;
//! 3. `fastest`: the lowest median run time; `reliable`: the highest
//!    success ratio; `least-loaded`: the fewest runs in the air — a
//!    candidate without figures (its warm-up still in the air) comes
//!    after every one with;
//! 4. ties: fewer runs in the air, then the manifest's order.

use std::cmp::Ordering;

use runway_audit::RouteFigures;

use super::health::AgentFigures;
use super::route::Prefer;

/// One candidate as the pick sees it.
pub struct Candidate<'a> {
    pub agent: &'a str,
    pub figures: AgentFigures,
    /// Its breaker's state, by name.
    pub breaker: &'static str,
    /// Its breaker lets it be cleared now.
    pub admitted: bool,
}

impl Candidate<'_> {
    /// As the ROUTED record keeps it.
    pub fn recorded(&self) -> RouteFigures {
        RouteFigures {
            agent: self.agent.to_string(),
            runs: self.figures.window_runs(),
            succeeded: self.figures.window_succeeded(),
            p50_ms: self.figures.quantile_ms(0.5),
            in_flight: self.figures.in_flight,
            breaker: self.breaker.to_string(),
        }
    }
}

/// The candidate picked (its index), or none when every breaker holds.
pub fn pick(prefer: Prefer, candidates: &[Candidate<'_>]) -> Option<usize> {
    let admitted = || candidates.iter().enumerate().filter(|(_, c)| c.admitted);
    if prefer != Prefer::LeastLoaded
        && let Some((i, _)) =
            admitted().find(|(_, c)| c.figures.window_runs() == 0 && c.figures.in_flight == 0)
    {
        return Some(i);
    }
    admitted()
        .min_by(|(i, a), (j, b)| {
            let by = match prefer {
                Prefer::Fastest => lower(a.figures.quantile_ms(0.5), b.figures.quantile_ms(0.5)),
                Prefer::Reliable => lower(
                    a.figures.window_ratio().map(|r| -r),
                    b.figures.window_ratio().map(|r| -r),
                ),
                Prefer::LeastLoaded => Ordering::Equal,
            };
            by.then(a.figures.in_flight.cmp(&b.figures.in_flight))
                .then(i.cmp(j))
        })
        .map(|(i, _)| i)
}

/// Lower first; none (no figures) after every some.
fn lower<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::health::{Ended, Figures};

    fn candidates<'a>(f: &Figures, names: &[&'a str]) -> Vec<Candidate<'a>> {
        names
            .iter()
            .map(|&agent| Candidate {
                agent,
                figures: f.of(agent),
                breaker: "closed",
                admitted: true,
            })
            .collect()
    }

    #[test]
    fn warms_up_then_picks_by_figures() {
        let mut f = Figures::default();
        let t = jiff::Timestamp::UNIX_EPOCH;
        let names = ["slow", "fast"];
        assert_eq!(pick(Prefer::Fastest, &candidates(&f, &names)), Some(0));
        f.took_off("r1", "slow", 0);
        // slow's warm-up is in the air: fast warms up next.
        assert_eq!(pick(Prefer::Fastest, &candidates(&f, &names)), Some(1));
        f.ended("r1", Ended::Succeeded, "", 300_000_000, t);
        f.took_off("r2", "fast", 0);
        f.ended("r2", Ended::Succeeded, "", 10_000_000, t);
        assert_eq!(pick(Prefer::Fastest, &candidates(&f, &names)), Some(1));
        // fast fails: reliable goes to slow.
        f.took_off("r3", "fast", 0);
        f.ended("r3", Ended::Failed, "no", 10_000_000, t);
        assert_eq!(pick(Prefer::Reliable, &candidates(&f, &names)), Some(0));
        // Load: fast has one in the air.
        f.took_off("r4", "fast", 0);
        assert_eq!(pick(Prefer::LeastLoaded, &candidates(&f, &names)), Some(0));
        // A held candidate is left out; all held: none.
        let mut c = candidates(&f, &names);
        c[0].admitted = false;
        assert_eq!(pick(Prefer::Reliable, &c), Some(1));
        c[1].admitted = false;
        assert_eq!(pick(Prefer::Fastest, &c), None);
    }
}
