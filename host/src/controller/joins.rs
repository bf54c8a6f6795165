//! Joins: a parent waiting on its children (`orchestration.join`) is
//! answered once its mode is met or its deadline comes (the rules are
//! [`super::family`]'s), with every child's state and the outputs of those
//! that succeeded — on a timeout too, so nothing a finished child produced
//! is lost. While it waits the parent holds no worker ([`Tower::park`]).
//! The answer is a JOINED record; a first success's losers are cancelled
//! at once, after it, each with its own CANCELLED record. And when a
//! parent's attempt ends, its children still going are cancelled: a child
//! never outlives the attempt that filed it.
//!
//! [`Tower::park`]: super::tower::Tower::park

use runway_audit::{Event, JoinedChild, State};
use tokio::time::Instant;

use super::DispatchError;
use super::dispatch::Dispatch;
use super::family::{Families, Join, Progress, Standing};
use crate::sandbox::hostcalls::{Child, ChildResult, ChildState, GuestError, JoinMode};

impl Dispatch {
    /// Runway `parent` waits on `children` as `mode` says, until `until`:
    /// answered now when the mode is met already, else when it is.
    pub(super) fn join(
        &mut self,
        parent: &str,
        children: Vec<Child>,
        mode: JoinMode,
        until: Instant,
        reply: tokio::sync::oneshot::Sender<Result<Vec<ChildResult>, GuestError>>,
    ) -> Result<(), DispatchError> {
        let own = match self.own_children(parent, &children, mode) {
            Ok(own) => own,
            Err(why) => {
                let _ = reply.send(Err(GuestError::Invalid(why)));
                return Ok(());
            }
        };
        let p = self.book.index[parent];
        let join = Join {
            children: own,
            mode,
            until,
            reply,
        };
        if self.join_over(&join) || Instant::now() >= until {
            return self.answer_join(p, join, false);
        }
        self.host.tower.park();
        self.family.joins.insert(p, join);
        Ok(())
    }

    /// After each event: the children of attempts that ended are
    /// cancelled, then the joins that are over are answered.
    pub(super) fn tend_families(&mut self) -> Result<(), DispatchError> {
        while !self.family.landed.is_empty() {
            for p in std::mem::take(&mut self.family.landed) {
                self.family.beats.remove(&p);
                self.orphan_children(p)?;
            }
        }
        self.look_at_joins()?;
        self.listen_for_heartbeats();
        Ok(())
    }

    /// Stops the runs on a worker that reported no progress for their
    /// manifest's heartbeat (a run waiting on its children is not
    /// silent: the host knows what it waits for).
    fn listen_for_heartbeats(&mut self) {
        let now = Instant::now();
        let silent: Vec<usize> = self
            .family
            .beats
            .iter()
            .filter(|&(i, _)| !self.family.joins.contains_key(i))
            .filter(|&(&i, &beat)| {
                let every = self.book.runways[i].manifest.heartbeat;
                every.is_some_and(|every| beat + every <= now)
            })
            .map(|(&i, _)| i)
            .collect();
        for i in silent {
            self.family.beats.remove(&i);
            let r = &self.book.runways[i];
            if let Some(every) = r.manifest.heartbeat {
                r.cancel.silent(every);
            }
        }
    }

    /// When the next run with a heartbeat falls silent, if none reports.
    pub(super) fn next_heartbeat(&self) -> Option<Instant> {
        self.family
            .beats
            .iter()
            .filter(|&(i, _)| !self.family.joins.contains_key(i))
            .filter_map(|(&i, &beat)| Some(beat + self.book.runways[i].manifest.heartbeat?))
            .min()
    }

    /// Runway `i` is being stopped: if it waits on children, its wait ends
    /// unanswered, which wakes it to find itself stopped.
    pub(super) fn stop_waiting(&mut self, i: usize) {
        if self.family.joins.remove(&i).is_some() {
            self.host.tower.unpark();
        }
    }

    /// The runways `children` names, all of them `parent`'s own, enough
    /// for `mode`; or why not.
    fn own_children(
        &self,
        parent: &str,
        children: &[Child],
        mode: JoinMode,
    ) -> Result<Vec<usize>, String> {
        let p = *self
            .book
            .index
            .get(parent)
            .ok_or_else(|| format!("join: no runway {parent}"))?;
        let mut own = Vec::with_capacity(children.len());
        for c in children {
            match self.book.index.get(c) {
                Some(&i) if self.book.parent_of(i) == Some(p) && !own.contains(&i) => own.push(i),
                Some(_) if self.book.index.get(c).is_some_and(|i| own.contains(i)) => {
                    return Err(format!("join: {c} is named twice"));
                }
                _ => return Err(format!("join: {c} is not a child of {parent}")),
            }
        }
        if let JoinMode::Quorum(n) = mode
            && n as usize > own.len()
        {
            return Err(format!(
                "join: a quorum of {n} among {} children can never be met",
                own.len()
            ));
        }
        Ok(own)
    }

    /// Answers the joins whose children ended or whose deadline came.
    pub(super) fn look_at_joins(&mut self) -> Result<(), DispatchError> {
        let now = Instant::now();
        let mut parents: Vec<usize> = std::mem::take(&mut self.family.ended)
            .into_iter()
            .filter_map(|c| self.book.parent_of(c))
            .collect();
        parents.extend(
            self.family
                .joins
                .iter()
                .filter(|(_, j)| j.until <= now)
                .map(|(&p, _)| p),
        );
        parents.sort_unstable();
        parents.dedup();
        for p in parents {
            let Some(join) = self.family.joins.get(&p) else {
                continue;
            };
            let over = self.join_over(join);
            if over || join.until <= now {
                let join = self.family.joins.remove(&p).expect("just found");
                self.host.tower.unpark();
                if let Some(beat) = self.family.beats.get_mut(&p) {
                    *beat = now;
                }
                self.answer_join(p, join, !over)?;
            }
        }
        Ok(())
    }

    fn join_over(&self, join: &Join) -> bool {
        let standing: Vec<Standing> = join.children.iter().map(|&c| self.standing(c)).collect();
        Join::over(join.mode, &standing)
    }

    /// How far child `c`'s line got (itself, or whoever took over from it).
    fn standing(&self, c: usize) -> Standing {
        let r = &self.book.runways[self.line_end(c)];
        match (r.ended(), r.state()) {
            (_, State::Succeeded) => Standing::Succeeded,
            (true, _) => Standing::EndedBadly,
            (false, _) => Standing::Going,
        }
    }

    /// The answer of `join` of runway `p`: the JOINED record, a first
    /// success's losers cancelled, every child's result sent.
    fn answer_join(&mut self, p: usize, join: Join, timed_out: bool) -> Result<(), DispatchError> {
        let winner = match join.mode {
            JoinMode::FirstSuccess if !timed_out => join
                .children
                .iter()
                .copied()
                .find(|&c| self.standing(c) == Standing::Succeeded),
            _ => None,
        };
        let parent = self.book.runways[p].id().to_string();
        let losers: Vec<usize> = match winner {
            Some(_) => join
                .children
                .iter()
                .copied()
                .filter(|&c| self.standing(c) == Standing::Going)
                .collect(),
            None => Vec::new(),
        };
        let record = Event::Joined {
            mode: Families::mode_name(join.mode),
            children: join
                .children
                .iter()
                .map(|&c| JoinedChild {
                    runway: self.book.runways[self.line_end(c)].id().to_string(),
                    // As found: a loser's own record says how it ended (a
                    // run already landing when the join was answered ends
                    // as it would have).
                    state: self.book.runways[self.line_end(c)].state(),
                })
                .collect(),
            timed_out,
        };
        self.record(p, None, record);
        let why = winner.map(|w| format!("lost the race to {}", self.book.runways[w].id()));
        if let Some(why) = &why {
            for &c in &losers {
                let end = self.line_end(c);
                self.cancel_child(end, &parent, why)?;
            }
        }
        let results = join
            .children
            .iter()
            .map(|&c| {
                let mut result = self.child_result(c);
                if let Some(why) = why.as_ref().filter(|_| losers.contains(&c)) {
                    result.state = ChildState::Cancelled;
                    result.reason = Some(format!("cancelled: {why}"));
                }
                result
            })
            .collect();
        let _ = join.reply.send(Ok(results));
        Ok(())
    }

    /// Cancels child `c` in the name of its parent: at once when it waits,
    /// at its next epoch tick (or before its commit) when it flies.
    pub(super) fn cancel_child(
        &mut self,
        c: usize,
        parent: &str,
        why: &str,
    ) -> Result<(), DispatchError> {
        let by = format!("runway {parent}");
        match self.book.runways[c].state() {
            State::Cleared | State::Running => {
                self.book.runways[c].cancel.cancel_because(&by, why);
                self.stop_waiting(c);
                // A tick now, not at the ticker's next: it stops at its
                // next loop check (the others only look at their switch).
                self.host.sandbox().engine.increment_epoch();
            }
            _ if self.book.runways[c].ended() => {}
            _ => {
                self.take_back(c);
                self.moved_by(c, State::Cancelled, format!("cancelled: {why}"), by)?;
            }
        }
        Ok(())
    }

    /// Cancels those of runway `parent`'s `children` that have not ended
    /// (its `orchestration.cancel`).
    pub(super) fn cancel_children(
        &mut self,
        parent: &str,
        children: &[Child],
    ) -> Result<Result<(), GuestError>, DispatchError> {
        let own = match self.own_children(parent, children, JoinMode::All) {
            Ok(own) => own,
            Err(why) => return Ok(Err(GuestError::Invalid(why.replacen("join", "cancel", 1)))),
        };
        for c in own {
            self.cancel_child(c, parent, "its parent cancelled it")?;
        }
        Ok(Ok(()))
    }

    /// Runway `p`'s attempt ended: its children still going are cancelled,
    /// its wait (if it waited) is over, its waiting place is free.
    pub(super) fn orphan_children(&mut self, p: usize) -> Result<(), DispatchError> {
        self.stop_waiting(p);
        self.family.places.remove(&p);
        let parent = self.book.runways[p].id().to_string();
        let attempt = self.book.runways[p].course.attempt;
        let going: Vec<usize> = self.book.children[p]
            .iter()
            .copied()
            .filter(|&c| !self.book.runways[c].ended())
            .collect();
        for c in going {
            let why = format!("its parent {parent}'s attempt {attempt} ended");
            self.cancel_child(c, &parent, &why)?;
        }
        Ok(())
    }

    /// Runway `i`'s report as `show` gives it: its history, its children
    /// and the progress of its tree (its own report plus, for each child,
    /// one unit done when it ended).
    pub(super) fn shown(&self, i: usize) -> super::RunwayReport {
        let mut report = self.book.runways[i].report(true);
        let children = &self.book.children[i];
        report.children = children
            .iter()
            .map(|&c| self.book.runways[c].id().to_string())
            .collect();
        let own = self.family.progress.get(&i).cloned();
        report.progress = match (own, children.is_empty()) {
            (own, true) => own,
            (own, false) => {
                let ended = children
                    .iter()
                    .filter(|&&c| self.book.runways[c].ended())
                    .count() as u64;
                let own = own.unwrap_or_default();
                Some(Progress {
                    done: own.done + ended,
                    total: own.total + children.len() as u64,
                    message: own.message,
                })
            }
        };
        report
    }

    /// Child `c` as a join reports it: the last runway of its line.
    fn child_result(&self, c: usize) -> ChildResult {
        let r = &self.book.runways[self.line_end(c)];
        let state = match r.state() {
            State::Succeeded => ChildState::Succeeded,
            State::Running => ChildState::Running,
            State::Cancelled => ChildState::Cancelled,
            State::Rejected => ChildState::Rejected,
            State::Expired => ChildState::Expired,
            // Children carry no condition and no plan budget of their own;
            // should one end so, its parent sees it did not succeed.
            State::Skipped | State::BudgetExhausted => ChildState::Failed,
            State::Failed if r.ended() => ChildState::Failed,
            State::TimedOut if r.ended() => ChildState::TimedOut,
            _ => ChildState::Waiting,
        };
        let output = match r.state() {
            State::Succeeded => r.course.output.clone(),
            _ => None,
        };
        ChildResult {
            runway: r.id().to_string(),
            agent: r.manifest.agent.clone(),
            state,
            output,
            reason: r.course.reason().map(str::to_string),
        }
    }
}
