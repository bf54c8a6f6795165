//! The tower: one per host, shared by every plan being dispatched. It owns
//! the [`LockTable`], the first-come-first-served queue of runways waiting
//! for clearance, and the global limit on runs in the air (on a worker;
//! a run at the landing stage keeps its locks but not its worker).
//!
//! A dispatcher asks for clearance with the runway's whole lock set; when the
//! set is free (and a worker slot is), the tower grants it at once, draws one
//! fencing token per dataset from the store's counter, and sends the
//! [`Clearance`] down the dispatcher's channel. Releasing a lock set lets the
//! tower clear whoever waits next.
//!
//! The tower never walks its whole queue: a waiter becomes *ready* (its
//! locks free and first in line, see [`super::locks`]) only at its request
//! or when a line it stands in moves, so only those waiters are looked at;
//! the ready ones wait by priority for a worker.
//!
//! A delegated child never waits in line for a lock ([`Tower::request_at_once`]):
//! its locks are taken the moment it is filed, or it is refused naming
//! their holders; it then waits only for a worker, before any runway that
//! is not a child (the deepest first), so trees in flight finish before new
//! ones start. A parent waiting on its children gives its worker back
//! ([`Tower::park`]) and takes one again when they are done.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use runway_audit::{LockGrant, LockMode};
use tokio::sync::mpsc::UnboundedSender;

use super::locks::{DatasetId, Lines, LockSet, LockTable, Names, Wants};
use crate::limits::MAX_TREES_IN_AIR;
use crate::store::{DatasetStore, StoreError};

/// Permission to take off: the granted locks, or why tokens failed.
#[derive(Debug)]
pub struct Clearance {
    /// The requester's own handle for the runway.
    pub slot: usize,
    pub grants: Result<Vec<LockGrant>, StoreError>,
}

/// One dataset on the lock board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetLocks {
    pub dataset: String,
    /// How it is held, if it is.
    pub held: Option<LockMode>,
    /// The runways holding it (several only when shared).
    pub holders: Vec<String>,
    /// The runways waiting for it, in line order, and the mode each wants.
    pub waiting: Vec<(String, LockMode)>,
}

/// A runway asking the tower for its locks.
pub struct Request {
    /// The requester's own handle for the runway.
    pub slot: usize,
    /// The runway's id, as lock holders are named.
    pub runway: String,
    /// Its lock set, numbered by [`Tower::intern`].
    pub wants: Wants,
    pub priority: i64,
    /// The agent, and how many of its runs may be in the air at once.
    pub agent: String,
    pub agent_limit: Option<u64>,
    /// Its level in a delegation tree (0: not a child): deeper runways
    /// are cleared first.
    pub depth: u32,
    /// Its agent may delegate: as a root, it counts against
    /// [`MAX_TREES_IN_AIR`].
    pub delegates: bool,
}

struct Waiting {
    request: Request,
    /// The request's lock set, by dataset number.
    wants: Wants,
    runway: Arc<str>,
    reply: UnboundedSender<Clearance>,
    /// In `ready`: it stays there until it is cleared or withdrawn (what
    /// is ready never conflicts with what else is), so it is not looked
    /// at again.
    ready: bool,
    /// Its locks were taken at its request (a child's): it stands in no
    /// line and waits only for a worker.
    held: bool,
}

/// Where a waiter stands among the ready: deeper first, then higher
/// priority, then filing order.
type Rank = (Reverse<u32>, Reverse<i64>, u64);

fn rank(w: &Waiting, ticket: u64) -> Rank {
    (
        Reverse(w.request.depth),
        Reverse(w.request.priority),
        ticket,
    )
}

struct State {
    names: Names,
    table: LockTable,
    /// Every waiter, by ticket (tickets tell requests apart and give the
    /// filing order).
    queue: HashMap<u64, Waiting>,
    lines: Lines,
    /// Waiters whose locks are free and who are first in line, best first:
    /// they go as workers (and their agents' limits) allow.
    ready: BTreeSet<Rank>,
    in_air: usize,
    /// Roots in the air that may delegate (their trees may wait on
    /// children).
    trees: HashSet<Arc<str>>,
    /// Runs in the air per agent.
    by_agent: HashMap<String, u64>,
    /// Nothing is cleared while paused.
    paused: bool,
    tickets: u64,
    /// [`State::consider_heads`]' list, kept between calls.
    heads: Vec<u64>,
    /// Agents whose circuit breaker holds them: none of their runways
    /// (delegated children aside) is cleared but the ticket named, the
    /// half-open breaker's probe.
    held: HashMap<String, Option<u64>>,
    /// Workers of the crews standing by (see [`Tower::set_crews`]).
    crews: usize,
}

impl State {
    /// Marks ready those of `tickets` whose locks are free and who are
    /// first in line.
    fn consider(&mut self, tickets: impl IntoIterator<Item = u64>) {
        for t in tickets {
            let Some(w) = self.queue.get_mut(&t) else {
                continue;
            };
            if w.ready {
                continue;
            }
            let wants = &w.wants;
            if w.held {
                w.ready = true;
                self.ready.insert(rank(w, t));
            } else if self.table.free(wants) && self.lines.first_in_line(t, wants) {
                w.ready = true;
                self.ready.insert(rank(w, t));
                self.lines.ready(t, wants);
            }
        }
    }

    /// Takes waiter `ticket` out of the queue and its lines; those who
    /// now stand first in its lines are looked at.
    fn take(&mut self, ticket: u64) -> Waiting {
        let w = self.queue.remove(&ticket).expect("a queued ticket");
        self.ready.remove(&rank(&w, ticket));
        if !w.held {
            self.lines.leave(ticket, &w.wants);
            self.consider_heads(&w.wants);
        }
        w
    }

    /// Looks at whoever stands first in the lines of `wants`' datasets and
    /// is not ready yet.
    fn consider_heads(&mut self, wants: &[(DatasetId, LockMode)]) {
        let mut heads = std::mem::take(&mut self.heads);
        heads.extend(wants.iter().flat_map(|&(d, _)| self.lines.heads(d)));
        self.consider(heads.drain(..));
        self.heads = heads;
    }

    /// Puts a request in the queue (in no line yet); gives its ticket.
    fn enqueue(&mut self, request: Request, reply: UnboundedSender<Clearance>, held: bool) -> u64 {
        let wants = request.wants.clone();
        let runway: Arc<str> = request.runway.as_str().into();
        self.tickets += 1;
        let ticket = self.tickets;
        if !held {
            self.lines.join(ticket, &wants);
        }
        let waiting = Waiting {
            request,
            wants,
            runway,
            reply,
            ready: false,
            held,
        };
        self.queue.insert(ticket, waiting);
        ticket
    }

    fn in_air_of(&self, agent: &str) -> u64 {
        self.by_agent.get(agent).copied().unwrap_or(0)
    }

    /// One run of `agent` left the air.
    fn landed(&mut self, agent: &str) {
        if let Some(n) = self.by_agent.get_mut(agent) {
            *n -= 1;
            if *n == 0 {
                self.by_agent.remove(agent);
            }
        }
    }
}

/// Locks, queue and worker limit for one host.
pub struct Tower {
    state: Mutex<State>,
    store: Arc<DatasetStore>,
    workers: usize,
}

impl Tower {
    pub fn new(store: Arc<DatasetStore>, workers: usize) -> Tower {
        Tower {
            state: Mutex::new(State {
                names: Names::default(),
                table: LockTable::default(),
                queue: HashMap::new(),
                lines: Lines::default(),
                ready: BTreeSet::new(),
                in_air: 0,
                trees: HashSet::new(),
                by_agent: HashMap::new(),
                paused: false,
                tickets: 0,
                heads: Vec::new(),
                held: HashMap::new(),
                crews: 0,
            }),
            store,
            // The pool holds MAX_LIVE_RUNS runs' worth of slots.
            workers: workers.clamp(1, crate::limits::MAX_LIVE_RUNS as usize),
        }
    }

    /// `set` numbered as the tower keeps lock sets: done once per runway,
    /// so no later request or release hashes a dataset name.
    pub fn intern(&self, set: &LockSet) -> Wants {
        self.lock().names.intern(set)
    }

    /// Queues a runway for clearance; the answer comes down `reply`.
    /// Returns why it waits, when it is not cleared at once: the holders
    /// it waits behind, earlier waiters, or the run limit.
    pub fn request(
        &self,
        request: Request,
        reply: UnboundedSender<Clearance>,
    ) -> (u64, Option<String>) {
        let mut s = self.lock();
        let (agent, limit) = (request.agent.clone(), request.agent_limit);
        let tree = request.delegates && request.depth == 0;
        let ticket = s.enqueue(request, reply, false);
        s.consider([ticket]);
        self.pump(&mut s);
        if !s.queue.contains_key(&ticket) {
            return (ticket, None);
        }
        let why = if s.paused {
            "waiting: clearing is paused".to_string()
        } else if s.held.contains_key(&agent) {
            format!("waiting: agent {agent}'s circuit breaker holds its runways")
        } else if let Some(max) = limit.filter(|&max| s.in_air_of(&agent) >= max) {
            format!("waiting: agent {agent} has {max} of {max} runs in the air")
        } else if let blockers = s.table.blockers(&s.queue[&ticket].wants, &s.names)
            && !blockers.is_empty()
        {
            format!("waiting behind {}", blockers.join(", "))
        } else if s.in_air >= self.workers + s.crews {
            format!("waiting for one of {} workers", self.workers + s.crews)
        } else if tree && s.trees.len() >= MAX_TREES_IN_AIR {
            format!("waiting: {MAX_TREES_IN_AIR} delegating trees are in the air, the most at once")
        } else {
            "waiting behind earlier runways for the same datasets".to_string()
        };
        (ticket, Some(why))
    }

    /// Queues a child: its locks are taken now, before anyone waiting in
    /// their lines — `handed` (a part of its set) from its parent `from`,
    /// which holds them, the rest if they are free — and it waits only for
    /// a worker; if they are not, nothing is queued and the answer names
    /// their holders.
    pub fn request_at_once(
        &self,
        request: Request,
        reply: UnboundedSender<Clearance>,
        handed: &[(DatasetId, LockMode)],
        from: &str,
    ) -> Result<u64, Vec<String>> {
        let mut s = self.lock();
        let own: Wants = request
            .wants
            .iter()
            .filter(|w| !handed.contains(w))
            .copied()
            .collect();
        if !s.table.holds(handed, from) {
            return Err(vec![format!(
                "{from} (which does not hold what it hands down)"
            )]);
        }
        if !s.table.free(&own) {
            return Err(s.table.blockers(&own, &s.names));
        }
        let runway: Arc<str> = request.runway.as_str().into();
        s.table.hand_over(handed, from, &runway);
        s.table.acquire(&own, &runway);
        // Those ready for a worker with a lock the child just took are
        // not ready any more: they go again when it is released.
        for t in s.lines.ready_in_conflict(&own) {
            let Some(w) = s.queue.get_mut(&t) else {
                continue;
            };
            w.ready = false;
            let (rank, wants) = (rank(w, t), w.wants.clone());
            s.ready.remove(&rank);
            s.lines.unready(t, &wants);
        }
        let ticket = s.enqueue(request, reply, true);
        s.consider([ticket]);
        self.pump(&mut s);
        Ok(ticket)
    }

    /// Takes back the request `ticket` (its runway expired or was
    /// cancelled while it waited); no-op once it was cleared. A child's
    /// locks, taken at its request, are given back.
    pub fn withdraw(&self, ticket: u64) {
        let mut s = self.lock();
        if s.queue.contains_key(&ticket) {
            let w = s.take(ticket);
            if w.held {
                s.table.release(&w.wants, &w.runway);
                s.consider_heads(&w.wants);
            }
            self.pump(&mut s);
        }
    }

    /// A child landed: the locks `handed` to it go back to its parent `to`
    /// (they were never free in between, so nobody waiting is touched).
    pub fn hand_back(&self, handed: &[(DatasetId, LockMode)], from: &str, to: &str) {
        let mut s = self.lock();
        let to: Arc<str> = to.into();
        s.table.hand_over(handed, from, &to);
    }

    /// A run waits on its children: its worker is free for others, its
    /// locks stay held.
    pub fn park(&self) {
        self.flown();
    }

    /// A run's wait on its children is over: it counts against the
    /// workers again (its task is back in the workers' queue).
    pub fn unpark(&self) {
        self.lock().in_air += 1;
    }

    /// This host's own workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The workers of the crews standing by on a shared database: runs
    /// cleared beyond this host's own workers fly there (`remote.rs`).
    pub fn set_crews(&self, workers: usize) {
        let mut s = self.lock();
        s.crews = workers;
        self.pump(&mut s);
    }

    /// Runs cleared and not yet off their workers.
    pub fn in_air(&self) -> usize {
        self.lock().in_air
    }

    /// A cleared runway's run left its worker (its agent returned and the
    /// run went to the landing stage, or it never took off): the worker
    /// slot is free, its locks are still held.
    pub fn flown(&self) {
        let mut s = self.lock();
        s.in_air -= 1;
        self.pump(&mut s);
    }

    /// A cleared runway landed: its locks are free, and its run no longer
    /// counts against `agent`'s limit.
    pub fn release(&self, wants: &[(DatasetId, LockMode)], runway: &str, agent: &str) {
        let mut s = self.lock();
        s.table.release(wants, runway);
        s.landed(agent);
        s.trees.remove(runway);
        s.consider_heads(wants);
        self.pump(&mut s);
    }

    /// Every dataset locked or waited for right now, by name: who holds
    /// it and who waits, in line order.
    pub fn board(&self) -> Vec<DatasetLocks> {
        let s = self.lock();
        let empty = |d: DatasetId| DatasetLocks {
            dataset: s.names.name(d).to_string(),
            held: None,
            holders: Vec::new(),
            waiting: Vec::new(),
        };
        let mut board: HashMap<DatasetId, DatasetLocks> = HashMap::new();
        for (d, mode, holders) in s.table.held() {
            let e = board.entry(d).or_insert_with(|| empty(d));
            e.held = Some(mode);
            e.holders = holders.iter().map(|h| h.to_string()).collect();
        }
        for (d, tickets) in s.lines.waiting() {
            let waiting: Vec<(String, LockMode)> = tickets
                .filter_map(|t| s.queue.get(&t))
                .filter_map(|w| {
                    let mode = w.wants.iter().find(|(x, _)| *x == d)?.1;
                    Some((w.runway.to_string(), mode))
                })
                .collect();
            board.entry(d).or_insert_with(|| empty(d)).waiting = waiting;
        }
        let mut board: Vec<DatasetLocks> = board.into_values().collect();
        board.sort_by(|a, b| a.dataset.cmp(&b.dataset));
        board
    }

    /// Clears none of `agent`'s runways (its circuit breaker is open or
    /// half-open) but `probe`'s ticket, when given.
    pub fn hold(&self, agent: &str, probe: Option<u64>) {
        let mut s = self.lock();
        s.held.insert(agent.to_string(), probe);
        self.pump(&mut s);
    }

    /// Clears `agent`'s runways again (its breaker closed).
    pub fn unhold(&self, agent: &str) {
        let mut s = self.lock();
        if s.held.remove(agent).is_some() {
            self.pump(&mut s);
        }
    }

    /// Whether clearing is paused.
    pub fn paused(&self) -> bool {
        self.lock().paused
    }

    /// Stops (or starts again) clearing; runs in the air land as usual.
    pub fn set_paused(&self, paused: bool) {
        let mut s = self.lock();
        s.paused = paused;
        self.pump(&mut s);
    }

    /// Clears the best ready waiters while workers are free, skipping
    /// those whose agent is at its limit.
    fn pump(&self, s: &mut State) {
        // A host that no longer leads a shared database clears nothing.
        while !s.paused && s.in_air < self.workers + s.crews && self.store.may_write() {
            let next = s.ready.iter().map(|&(_, _, t)| t).find(|t| {
                let r = &s.queue[t].request;
                let tree = r.delegates && r.depth == 0;
                r.agent_limit.is_none_or(|max| s.in_air_of(&r.agent) < max)
                    && !(tree && s.trees.len() >= MAX_TREES_IN_AIR)
                    && (r.depth > 0 || s.held.get(&r.agent).is_none_or(|probe| *probe == Some(*t)))
            });
            let Some(ticket) = next else { return };
            // Its locks are taken before its lines move on, so those who
            // stand first next see them held.
            let w = &s.queue[&ticket];
            let (wants, runway) = (w.wants.clone(), w.runway.clone());
            if !w.held {
                s.table.acquire(&wants, &runway);
            }
            let Waiting { request, reply, .. } = s.take(ticket);
            let Request {
                slot,
                agent,
                delegates,
                depth,
                ..
            } = request;
            if delegates && depth == 0 {
                s.trees.insert(runway.clone());
            }
            s.in_air += 1;
            *s.by_agent.entry(agent.clone()).or_insert(0) += 1;
            let grants = wants
                .iter()
                .map(|&(d, mode)| {
                    Ok(LockGrant {
                        dataset: s.names.name(d).to_string(),
                        mode,
                        token: self.store.next_token()?,
                    })
                })
                .collect();
            if reply.send(Clearance { slot, grants }).is_err() {
                // Nobody is waiting any more: hand the locks straight back.
                s.table.release(&wants, &runway);
                s.in_air -= 1;
                s.landed(&agent);
                s.trees.remove(&runway);
                s.consider_heads(&wants);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
