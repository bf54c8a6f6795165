//! Settling: after every event, each runway that may move on does — a
//! dependency that ended badly fails its dependents (so failure travels
//! down whole chains; a SKIPPED one is done, with no output), dependencies
//! all done send a runway on to its condition and input (`decide`), its
//! approval, its earliest start and the tower; a retry whose backoff is
//! over goes round again; a runway not cleared by its `expires` EXPIRES.
//! Only the runways marked dirty or timed are looked at.

use runway_audit::State;
use tokio::time::Instant;

use super::DispatchError;
use super::dispatch::Dispatch;
use super::locks::Wants;
use super::tower::Request;

impl Dispatch {
    pub(super) fn settle(&mut self) -> Result<(), DispatchError> {
        self.tend_breakers();
        let now = Instant::now();
        let wall = self.clock.now();
        let timed = self.schedule.timed.iter().copied();
        self.schedule.dirty.extend(timed);
        while let Some(i) = self.schedule.dirty.pop_first() {
            let r = &self.book.runways[i];
            let waiting = matches!(
                r.state(),
                State::Queued
                    | State::WaitingDeps
                    | State::WaitingApproval
                    | State::WaitingTime
                    | State::WaitingBreaker
                    | State::WaitingLocks
            );
            if let Some(at) = r.expires_at.filter(|&at| waiting && at <= wall) {
                self.expire(i, at)?;
                continue;
            }
            if r.state() == State::WaitingBreaker {
                self.ask_for_locks(i)?;
                continue;
            }
            if r.state() == State::WaitingTime {
                if r.start_at.is_none_or(|at| at <= wall) {
                    self.ask_for_locks(i)?;
                }
                continue;
            }
            if r.state() == State::WaitingApproval {
                if r.approval.is_some() {
                    self.when_time_comes(i, wall)?;
                }
                continue;
            }
            if !matches!(r.state(), State::Queued | State::WaitingDeps) {
                continue;
            }
            if r.not_before.is_some_and(|t| t > now) {
                continue;
            }
            let book = &self.book;
            let after = &r.manifest.after;
            // A skipped dependency is done, with no output.
            let done = |s: State| matches!(s, State::Succeeded | State::Skipped);
            let failed = after
                .iter()
                .find(|a| book.dep(a).ended() && !done(book.dep(a).state()))
                .map(|a| (a.clone(), book.dep(a).state()));
            let waiting: Vec<&str> = after
                .iter()
                .filter(|a| !done(book.dep(a).state()))
                .map(String::as_str)
                .collect();
            if let Some((dep, state)) = failed {
                let by = match book.dep(&dep).course.ended_by() {
                    Some(by) => format!(" by {by}"),
                    None => String::new(),
                };
                let reason = format!("dependency {dep} {}{by}", ended_as(state));
                self.fail(i, reason)?;
            } else if waiting.is_empty() {
                if self.book.runways[i].not_before.take().is_some() {
                    let r = &self.book.runways[i];
                    if r.start_at.is_none() && r.expires_at.is_none() {
                        self.schedule.timed.remove(&i);
                    }
                }
                // Its condition and the outputs it takes.
                if !self.decide(i)? {
                    continue;
                }
                let r = &self.book.runways[i];
                let approved = r.course.approved_by().is_some();
                match &r.manifest.approval {
                    Some(role) if !approved => {
                        let reason = format!("waiting for approval (role {role})");
                        self.enter(i, State::WaitingApproval, reason, None)?;
                    }
                    _ => self.when_time_comes(i, wall)?,
                }
            } else if r.state() == State::Queued {
                let reason = format!("waiting for {}", waiting.join(", "));
                self.enter(i, State::WaitingDeps, reason, None)?;
            }
        }
        Ok(())
    }

    /// Waits for its earliest start, or asks for its locks now.
    fn when_time_comes(&mut self, i: usize, wall: jiff::Timestamp) -> Result<(), DispatchError> {
        match self.book.runways[i].start_at.filter(|&at| at > wall) {
            Some(at) => {
                let reason = format!("not before {at}");
                self.enter(i, State::WaitingTime, reason, None)
            }
            None => self.ask_for_locks(i),
        }
    }

    fn ask_for_locks(&mut self, i: usize) -> Result<(), DispatchError> {
        if !self.pass_gate(i)? {
            return Ok(());
        }
        match self.request_locks(i) {
            Ok(why) => {
                self.after_request(i);
                let reason = why.unwrap_or_else(|| "its locks are free".into());
                self.enter(i, State::WaitingLocks, reason, None)
            }
            Err(refused) => self.fail(i, refused),
        }
    }

    /// Files runway `i`'s request with the tower; says what it waits
    /// behind, if anything, or (a child's) why it may not wait.
    pub(super) fn request_locks(&mut self, i: usize) -> Result<Option<String>, String> {
        let wants = self.wants(i);
        let r = &self.book.runways[i];
        let m = &r.manifest;
        let request = Request {
            slot: i,
            runway: m.id.clone(),
            wants,
            priority: m.priority,
            agent: m.agent.clone(),
            agent_limit: r.plugin.as_ref().and_then(|p| p.grants.limits.max_running),
            depth: m.lineage.as_ref().map_or(0, |l| l.depth),
            delegates: r
                .plugin
                .as_ref()
                .is_some_and(|p| p.grants.delegate.is_some()),
        };
        let reply = self.flights.clear_tx.clone();
        if let Some(lineage) = &m.lineage {
            // A child never waits in line for a lock (a retry's included):
            // taken at once (those handed down, from its parent, while it
            // holds them), or it waits for nothing and is told so.
            let parent = lineage.parent.clone();
            let mut handed = self.handed_wants(m, &request.wants);
            let p = self.book.parent_of(i);
            let held_by_parent = |w: &(u32, runway_audit::LockMode)| {
                p.is_some_and(|p| {
                    let pr = &self.book.runways[p];
                    let wants = pr.wants.as_deref().unwrap_or_default();
                    pr.state() == State::Running && wants.contains(w)
                })
            };
            handed.retain(held_by_parent);
            let tower = &self.host.tower;
            return match tower.request_at_once(request, reply, &handed, &parent) {
                Ok(ticket) => {
                    self.book.runways[i].ticket = Some(ticket);
                    Ok(Some("its locks are taken; waiting for a worker".into()))
                }
                Err(holders) => Err(format!(
                    "a child takes only locks free at once; its locks are held by {}",
                    holders.join(", ")
                )),
            };
        }
        let (ticket, why) = self.host.tower.request(request, reply);
        self.book.runways[i].ticket = Some(ticket);
        Ok(why)
    }

    /// Runway `i`'s lock set as the tower numbers it (numbered once).
    pub(super) fn wants(&mut self, i: usize) -> Wants {
        let r = &mut self.book.runways[i];
        let tower = &self.host.tower;
        r.wants
            .get_or_insert_with(|| tower.intern(&r.manifest.datasets))
            .clone()
    }

    /// Not cleared by its `expires`: EXPIRED, its request taken back.
    fn expire(&mut self, i: usize, at: jiff::Timestamp) -> Result<(), DispatchError> {
        self.take_back(i);
        let reason = format!("not cleared by {at}");
        self.enter(i, State::Expired, reason, None)
    }

    /// Withdraws runway `i`'s request from the tower, if it has one there.
    pub(super) fn take_back(&mut self, i: usize) {
        if let Some(ticket) = self.book.runways[i].ticket.take() {
            self.host.tower.withdraw(ticket);
        }
    }

    /// The next wall-clock moment a waiting runway waits for.
    pub(super) fn next_wall_time(&self) -> Option<jiff::Timestamp> {
        let breakers = self.breakers.next_until();
        self.schedule
            .timed
            .iter()
            .map(|&i| &self.book.runways[i])
            .filter(|r| !r.ended() && !matches!(r.state(), State::Cleared | State::Running))
            .flat_map(|r| {
                let start = r.start_at.filter(|_| r.state() == State::WaitingTime);
                start.into_iter().chain(r.expires_at)
            })
            .chain(breakers)
            .min()
    }
}

/// How a dependency that ended badly is named in its dependents' reason.
fn ended_as(state: State) -> &'static str {
    match state {
        State::TimedOut => "timed out",
        State::Cancelled => "was cancelled",
        State::Rejected => "was rejected",
        State::Expired => "expired",
        State::BudgetExhausted => "ran out of budget",
        _ => "failed",
    }
}
