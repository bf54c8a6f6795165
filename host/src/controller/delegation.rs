//! Delegation: a running runway asks (through its `orchestration.delegate`
//! call) for a child, and the controller files one on its behalf, or
//! refuses saying why. Deny by default, rights only narrow:
//!
//! 1. the parent must be running the attempt that asks;
//! 2. a delegation asked again with the same key gets its first child back
//!    (unless that child ended badly: then a new one is filed), so a
//!    retried parent never runs a child that succeeded twice;
//! 3. the parent's grants must name the agent (`[delegate] agents`), and
//!    the agent must be loaded;
//! 4. depth, children per parent and descendants per tree stay within the
//!    parent's grants and what its ancestors left it (`Lineage::reach`);
//! 5. the child's locks are checked as filing checks a plan's, against the
//!    child's grants — and each must be granted to every ancestor too;
//! 6. no hold-and-wait: a dataset an ancestor holds is refused, naming it
//!    (unless both are shared: shared beside shared never waits); any
//!    other lock is taken at once if free, or the delegation is refused
//!    naming its holders (`Tower::request_at_once`);
//! 7. the parent takes one of the host's waiting places at its first
//!    delegation (a parent may wait on its children only in one).
//!
//! The child is then filed like any runway (its FILING record carries its
//! lineage) and waits only for a worker, before runways that are not
//! children.

use std::time::Duration;

use runway_audit::{Event, LockMode, State};

use super::DispatchError;
use super::dispatch::Dispatch;
use super::locks::Wants;
use super::plan::{Backoff, Lineage, Manifest, Retry};
use super::runway::{Runway, Transition};
use super::tower::Request;
use crate::limits::{MAX_WAITING_PARENTS, MAX_WINDOW_SECS};
use std::sync::Arc;

use crate::plugin::Plugin;
use crate::sandbox::hostcalls::{Child, Delegation, GuestError, HandoffRequest, WitLockMode};

impl Dispatch {
    /// Files the child `request` asks for, for runway `parent`'s attempt
    /// `attempt` (its delegation number `position`), or says why not.
    pub(super) fn delegate(
        &mut self,
        parent: &str,
        attempt: u32,
        position: u32,
        request: Delegation,
    ) -> Result<Result<Child, GuestError>, DispatchError> {
        let Some(&p) = self.book.index.get(parent) else {
            return Ok(Err(GuestError::Denied(format!("no runway {parent}"))));
        };
        let pr = &self.book.runways[p];
        if pr.state() != State::Running || pr.course.attempt != attempt || self.stopping {
            return Ok(Err(GuestError::Denied(format!(
                "runway {parent} is not running attempt {attempt} any more"
            ))));
        }
        let key = request.key.clone().unwrap_or_else(|| position.to_string());
        if let Some(&c) = self.family.keys.get(&(p, key.clone())) {
            let child = &self.book.runways[c];
            if !child.ended() || child.state() == State::Succeeded {
                return Ok(Ok(child.id().to_string()));
            }
        }
        self.file_child(p, attempt, key, request, None)
    }

    /// Files the child `request` asks for under runway `p`'s attempt
    /// `attempt` with idempotency key `key` — delegated by `p`, or taking
    /// over from `p`'s child `from` (a hand-off, which `from`'s grants
    /// allowed) — or says why not.
    pub(super) fn file_child(
        &mut self,
        p: usize,
        attempt: u32,
        key: String,
        request: Delegation,
        from: Option<usize>,
    ) -> Result<Result<Child, GuestError>, DispatchError> {
        let parent = self.book.runways[p].id().to_string();
        let parent = parent.as_str();
        let mut manifest = match self.child_manifest(p, attempt, key.clone(), request, from) {
            Ok(m) => m,
            Err(refused) => return Ok(Err(refused)),
        };
        manifest.handoff_from = from.map(|c| self.book.runways[c].id().to_string());
        let wants = self.host.tower.intern(&manifest.datasets);
        let plugin = self.host.plugins().get(&manifest.agent);
        let depth = manifest.lineage.as_ref().map_or(0, |l| l.depth);
        let root = self.root_of(p);
        let agent_limit = plugin.as_ref().and_then(|g| g.grants.limits.max_running);
        let child_id = manifest.id.clone();
        let request = Request {
            slot: self.book.runways.len(),
            runway: child_id.clone(),
            wants: wants.clone(),
            priority: manifest.priority,
            agent: manifest.agent.clone(),
            agent_limit,
            depth,
            delegates: plugin.as_ref().is_some_and(|p| p.grants.delegate.is_some()),
        };
        let reply = self.flights.clear_tx.clone();
        let handed = self.handed_wants(&manifest, &wants);
        let tower = &self.host.tower;
        let ticket = match tower.request_at_once(request, reply, &handed, parent) {
            Ok(ticket) => ticket,
            Err(holders) => {
                return Ok(Err(GuestError::LockLost(format!(
                    "{parent} delegating to {}: its locks are held by {}; a child takes only locks free now",
                    manifest.agent,
                    holders.join(", ")
                ))));
            }
        };
        self.family.places.insert(p);
        self.hand_down(p, &manifest);
        let mut runway = Runway::new(manifest, child_id.clone(), plugin);
        runway.wants = Some(wants);
        runway.ticket = Some(ticket);
        let reason = match &runway.manifest.handoff_from {
            Some(from) => format!("taking over from {from}, a child of {parent}"),
            None => format!("delegated by {parent}"),
        };
        runway.course.history.push(Transition {
            at: self.clock.now(),
            state: State::Queued,
            reason,
            by: None,
        });
        let c = self.add(runway);
        self.schedule.dirty.remove(&c);
        self.family.keys.insert((p, key), c);
        *self.family.descendants.entry(root).or_insert(0) += 1;
        let event = self.book.runways[c].filing();
        self.record(c, None, event);
        self.enter(
            c,
            State::WaitingLocks,
            "its locks are taken; waiting for a worker".into(),
            None,
        )?;
        Ok(Ok(child_id))
    }

    /// Checks the hand-off `to` that runway `parent`'s attempt `attempt`
    /// asks for, as a delegation's agent and rights are checked (the
    /// successor is filed when the run succeeds).
    pub(super) fn check_handoff(
        &self,
        parent: &str,
        attempt: u32,
        to: &HandoffRequest,
    ) -> Result<(), GuestError> {
        let Some(&p) = self.book.index.get(parent) else {
            return Err(GuestError::Denied(format!("no runway {parent}")));
        };
        let pr = &self.book.runways[p];
        if pr.state() != State::Running || pr.course.attempt != attempt || self.stopping {
            return Err(GuestError::Denied(format!(
                "runway {parent} is not running attempt {attempt} any more"
            )));
        }
        let plugin = self.may_delegate_to(p, &to.agent)?;
        let successor = Manifest {
            id: format!("{parent}.handoff"),
            agent: to.agent.clone(),
            action: to.action.clone(),
            datasets: to
                .locks
                .iter()
                .map(|l| (l.dataset.clone(), lock_mode(l.mode)))
                .collect(),
            input: to.input.clone().unwrap_or_default(),
            ..Manifest::default()
        };
        successor
            .check_asked(&plugin.grants)
            .map_err(|e| GuestError::Denied(e.to_string()))?;
        self.check_ancestors(p, &successor, false)
    }

    /// The plugin of `agent`, if runway `p`'s grants let it delegate to
    /// it and it is loaded.
    fn may_delegate_to(&self, p: usize, agent: &str) -> Result<Arc<Plugin>, GuestError> {
        let pr = &self.book.runways[p];
        let grants = pr.plugin.as_ref().map(|g| &g.grants);
        let Some(may) = grants.and_then(|g| g.delegate.as_ref()) else {
            return Err(GuestError::Denied(format!(
                "agent {} may not delegate: its grants have no [delegate]",
                pr.manifest.agent
            )));
        };
        if !may.names(agent) {
            return Err(GuestError::Denied(format!(
                "agent {} may not delegate to {agent}: its grants' [delegate] agents do not name it",
                pr.manifest.agent
            )));
        }
        self.host
            .plugins()
            .get(agent)
            .ok_or_else(|| GuestError::NotFound(format!("no plugin named {agent} is loaded")))
    }

    /// The part of `wants` (a child's lock set, numbered) its manifest
    /// says is handed down.
    pub(super) fn handed_wants(&self, child: &Manifest, wants: &Wants) -> Wants {
        let handed = child.lineage.as_ref().map_or(&[][..], |l| &l.handed[..]);
        child
            .datasets
            .keys()
            .zip(wants)
            .filter(|(d, _)| handed.contains(d))
            .map(|(_, w)| *w)
            .collect()
    }

    /// Runway `p` hands `child`'s handed-down locks over: they leave its
    /// locks, each with a RELEASE record on its dataset's chain.
    fn hand_down(&mut self, p: usize, child: &Manifest) {
        let handed = child.lineage.as_ref().map_or(&[][..], |l| &l.handed[..]);
        let locks = std::mem::take(&mut self.book.runways[p].course.locks);
        let (gone, kept): (Vec<_>, Vec<_>) =
            locks.into_iter().partition(|l| handed.contains(&l.dataset));
        self.book.runways[p].course.locks = kept;
        for g in gone {
            let event = Event::LockReleased {
                mode: g.mode,
                token: g.token,
            };
            self.record(p, Some(g.dataset), event);
        }
    }

    /// The root of runway `i`'s tree (itself when it is not a child).
    pub(super) fn root_of(&self, i: usize) -> usize {
        match &self.book.runways[i].manifest.lineage {
            Some(l) => self.book.index.get(&l.root).copied().unwrap_or(i),
            None => i,
        }
    }

    /// The manifest of the child runway `p`'s attempt asks for, checked
    /// (rules 3–7 of the module doc but the locks' holders).
    fn child_manifest(
        &mut self,
        p: usize,
        attempt: u32,
        key: String,
        request: Delegation,
        from: Option<usize>,
    ) -> Result<Manifest, GuestError> {
        let plugin = match from {
            // The hand-off's own grants named the agent.
            Some(_) => self.host.plugins().get(&request.agent).ok_or_else(|| {
                GuestError::NotFound(format!("no plugin named {} is loaded", request.agent))
            })?,
            None => self.may_delegate_to(p, &request.agent)?,
        };
        let pr = &self.book.runways[p];
        let parent = pr.id().to_string();
        let may = pr
            .plugin
            .as_ref()
            .and_then(|g| g.grants.delegate.clone())
            .ok_or_else(|| GuestError::Denied(format!("{parent} may not delegate")))?;
        let (depth, reach) = match &pr.manifest.lineage {
            Some(l) => (l.depth, l.reach),
            None => (0, may.depth),
        };
        if reach == 0 {
            return Err(GuestError::Limit(format!(
                "depth: {parent} is {depth} level(s) below its root and may delegate no deeper"
            )));
        }
        let children = self.book.children[p].len();
        if children >= may.children as usize {
            return Err(GuestError::Limit(format!(
                "children: {parent} has {children} children, its grants allow {}",
                may.children
            )));
        }
        let root = self.root_of(p);
        let budget = self.family.budgets.get(&root);
        if let Some(why) = budget.and_then(|b| b.spent(tokio::time::Instant::now())) {
            let root_id = self.book.runways[root].id();
            return Err(GuestError::Limit(format!(
                "budget: the tree of {root_id}: {why}"
            )));
        }
        let descendants = self.family.descendants.get(&root).copied().unwrap_or(0);
        let allowed = self.book.runways[root]
            .plugin
            .as_ref()
            .and_then(|g| g.grants.delegate.as_ref())
            .map_or(0, |d| d.descendants);
        if descendants >= allowed {
            let root_id = self.book.runways[root].id();
            return Err(GuestError::Limit(format!(
                "descendants: the tree of {root_id} has {descendants} runways below its root, its grants allow {allowed}"
            )));
        }
        if !self.family.places.contains(&p)
            && self.family.places.len() >= MAX_WAITING_PARENTS as usize
        {
            return Err(GuestError::Limit(format!(
                "the host's {MAX_WAITING_PARENTS} places for parents waiting on children are all taken"
            )));
        }
        let own_reach = plugin.grants.delegate.as_ref().map_or(0, |d| d.depth);
        let root_id = self.book.runways[root].id().to_string();
        let n = descendants + 1;
        let id = self.book.fresh_id(&child_id(&root_id, n));
        let pr = &self.book.runways[p];
        let manifest = Manifest {
            id,
            agent: request.agent.clone(),
            action: request.action,
            datasets: request
                .locks
                .iter()
                .map(|l| (l.dataset.clone(), lock_mode(l.mode)))
                .collect(),
            after: Vec::new(),
            input: request.input,
            priority: pr.manifest.priority,
            window: request
                .window_secs
                .map(|s| Duration::from_secs(s.min(MAX_WINDOW_SECS))),
            retry: match request.retry {
                None => Retry::default(),
                Some(r) => Retry {
                    attempts: r.attempts,
                    backoff: Backoff::Exponential,
                    initial: Duration::from_millis(r.backoff_ms.min(MAX_WINDOW_SECS * 1000)),
                    ..Retry::default()
                },
            },
            lineage: Some(Lineage {
                parent: parent.clone(),
                attempt,
                root: root_id,
                key,
                depth: depth + 1,
                reach: (reach - 1).min(own_reach),
                handed: request
                    .locks
                    .iter()
                    .filter(|l| pr.course.locks.iter().any(|h| h.dataset == l.dataset))
                    .map(|l| l.dataset.clone())
                    .collect(),
            }),
            ..Manifest::default()
        };
        if manifest.datasets.len() != request.locks.len() {
            return Err(GuestError::Invalid(
                "delegate: a dataset is named twice in the child's locks".into(),
            ));
        }
        manifest
            .check_asked(&plugin.grants)
            .map_err(|e| GuestError::Denied(e.to_string()))?;
        self.check_handed(p, &manifest)?;
        self.check_ancestors(p, &manifest, true)?;
        Ok(manifest)
    }

    /// A lock handed down goes in the mode the parent `p` holds it.
    fn check_handed(&self, p: usize, child: &Manifest) -> Result<(), GuestError> {
        let handed = child.lineage.as_ref().map_or(&[][..], |l| &l.handed[..]);
        for lock in &self.book.runways[p].course.locks {
            let asked = child.datasets.get(&lock.dataset);
            if let Some(&mode) = asked.filter(|_| handed.contains(&lock.dataset))
                && mode != lock.mode
            {
                return Err(GuestError::Denied(format!(
                    "{} is held {} by {}: a lock is handed down in the mode it is held",
                    lock.dataset,
                    lock.mode.name(),
                    self.book.runways[p].id()
                )));
            }
        }
        Ok(())
    }

    /// Every ancestor of the child (`p` first) must be granted each of its
    /// locks, and — when `holds` is checked — may hold none of them (but
    /// shared where the child asks shared).
    fn check_ancestors(&self, p: usize, child: &Manifest, holds: bool) -> Result<(), GuestError> {
        let mut a = Some(p);
        while let Some(i) = a {
            let r = &self.book.runways[i];
            for (dataset, &mode) in &child.datasets {
                let granted = r
                    .plugin
                    .as_ref()
                    .is_some_and(|g| g.grants.permits(dataset, mode));
                if !granted {
                    return Err(GuestError::Denied(format!(
                        "{} may not lock {dataset} ({}): ancestor {} (agent {}) is not granted it",
                        child.agent,
                        mode.name(),
                        r.id(),
                        r.manifest.agent
                    )));
                }
                // Shared beside shared never waits: taken at once, or
                // refused by the tower naming the holder.
                let held = r.state() == State::Running
                    && r.course.locks.iter().any(|l| {
                        &l.dataset == dataset
                            && (l.mode == LockMode::Exclusive || mode == LockMode::Exclusive)
                    });
                let handed = i == p
                    && child
                        .lineage
                        .as_ref()
                        .is_some_and(|l| l.handed.contains(dataset));
                if holds && held && !handed {
                    return Err(GuestError::Denied(format!(
                        "{dataset} is held by ancestor {}, which does not hand it down",
                        r.id()
                    )));
                }
            }
            a = self.book.parent_of(i);
        }
        Ok(())
    }
}

/// A child's runway id: its tree's root and its number there.
fn child_id(root: &str, n: u32) -> String {
    let suffix = format!(".{n}");
    let mut base = crate::names::MAX_DATASET
        .saturating_sub(suffix.len())
        .min(root.len());
    while !root.is_char_boundary(base) {
        base -= 1;
    }
    format!("{}{suffix}", &root[..base])
}

pub(super) fn lock_mode(mode: WitLockMode) -> LockMode {
    match mode {
        WitLockMode::Shared => LockMode::Shared,
        WitLockMode::Exclusive => LockMode::Exclusive,
    }
}
