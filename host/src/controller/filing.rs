//! Filing a plan: runway ids minted (a plan-local id taken already gets a
//! suffix), `after` resolved (plan-local ids first, then runways filed
//! before), times resolved once, one FILING record per runway and one PLAN
//! record — all or nothing: a refused plan files no runway. A plan filed
//! `once` again (same source and digest) gets its runway ids back.

use std::collections::{HashMap, HashSet};

use runway_audit::{Entry, Event, State};

use super::DispatchError;
use super::controls::{ControlError, Filed, Filing};
use super::dispatch::Dispatch;
use super::plan::{self, When};
use super::runway::{Runway, Transition};

impl Dispatch {
    pub(super) fn file(
        &mut self,
        filing: Filing,
    ) -> Result<Result<Vec<Filed>, ControlError>, DispatchError> {
        if self.stopping {
            return Ok(Err(ControlError::Stopping));
        }
        let Filing {
            mut plan,
            by,
            source,
            digest,
            once,
        } = filing;
        let key = (source, digest);
        if let Some(ids) = self.book.plans.get(&key).filter(|_| once) {
            let filed = ids
                .iter()
                .map(|id| Filed {
                    name: self.book.dep(id).name.clone(),
                    id: id.clone(),
                })
                .collect();
            return Ok(Ok(filed));
        }
        let (source, digest) = key;
        let triggers = std::mem::take(&mut plan.triggers);
        if let Err(refused) = self.check_triggers(&triggers) {
            return Ok(Err(refused));
        }
        let local: HashSet<&str> = plan.manifests.iter().map(|m| m.id.as_str()).collect();
        for m in &plan.manifests {
            let unknown = m
                .after
                .iter()
                .find(|a| !local.contains(a.as_str()) && !self.book.index.contains_key(a.as_str()));
            if let Some(after) = unknown {
                return Ok(Err(ControlError::UnknownAfter {
                    runway: m.id.clone(),
                    after: after.clone(),
                }));
            }
        }
        let now = self.clock.now();
        let tz = jiff::tz::TimeZone::system();
        let mut times = Vec::with_capacity(plan.manifests.len());
        for m in &plan.manifests {
            let resolve = |key: &'static str, when: Option<When>| match when {
                None => Ok(None),
                Some(w) => w.resolve(now, &tz).map(Some).ok_or(ControlError::TooLate {
                    runway: m.id.clone(),
                    key,
                    latest: plan::latest(),
                }),
            };
            match (
                resolve("earliest_start", m.earliest_start),
                resolve("expires", m.expires),
            ) {
                (Ok(start), Ok(expires)) => times.push((start, expires)),
                (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            }
        }
        let mut ids = HashMap::new();
        let mut filed = Vec::with_capacity(plan.manifests.len());
        for m in &plan.manifests {
            let id = self.book.fresh_id(&m.id);
            ids.insert(m.id.clone(), id.clone());
            // Held so a later runway of this plan cannot take it.
            self.book.reserved.insert(id.clone());
            filed.push(Filed {
                name: m.id.clone(),
                id,
            });
        }
        let catalog = self.host.plugins();
        let first = self.book.runways.len();
        // One filing: costs are summed (and a budget held) over all of it.
        for k in 1..plan.manifests.len() {
            self.costs.first.insert(first + k, first);
        }
        for (mut m, (start_at, expires_at)) in plan.manifests.into_iter().zip(times) {
            let id = ids[&m.id].clone();
            let name = std::mem::replace(&mut m.id, id);
            self.book.reserved.remove(&m.id);
            for a in &mut m.after {
                if let Some(id) = ids.get(a) {
                    *a = id.clone();
                }
            }
            let plugin = catalog.get(&m.agent);
            let mut runway = Runway::new(m, name, plugin);
            runway.start_at = start_at;
            runway.expires_at = expires_at;
            runway.course.history.push(Transition {
                at: now,
                state: State::Queued,
                reason: "filed".into(),
                by: Some(by.clone()),
            });
            self.add(runway);
        }
        for i in first..self.book.runways.len() {
            let event = self.book.runways[i].filing();
            self.record(i, None, event);
            self.mark_read(i);
        }
        let ids: Vec<String> = filed.iter().map(|f| f.id.clone()).collect();
        // A plan of triggers alone files no runway, and says so in theirs.
        if !ids.is_empty() {
            let plan = Event::PlanFiled {
                by: by.clone(),
                source: source.clone(),
                digest,
                runways: ids.clone(),
            };
            self.record_entry(Entry::of_host(plan));
            self.book.plans.insert((source, digest), ids);
        }
        self.file_triggers(triggers, &by);
        Ok(Ok(filed))
    }
}
