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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use runway_audit::{LockGrant, LockMode};
use tokio::sync::mpsc::UnboundedSender;

use super::locks::{LockTable, Want};
use crate::store::{DatasetStore, StoreError};

/// Permission to take off: the granted locks, or why tokens failed.
#[derive(Debug)]
pub struct Clearance {
    /// The requester's own handle for the runway.
    pub slot: usize,
    pub grants: Result<Vec<LockGrant>, StoreError>,
}

/// A runway asking the tower for its locks.
pub struct Request {
    /// The requester's own handle for the runway.
    pub slot: usize,
    /// The runway's id, as lock holders are named.
    pub runway: String,
    pub wants: BTreeMap<String, LockMode>,
    pub priority: i64,
    /// The agent, and how many of its runs may be in the air at once.
    pub agent: String,
    pub agent_limit: Option<u64>,
}

struct Waiting {
    /// Tells this request apart from every other one (slots are only
    /// unique per dispatcher).
    ticket: u64,
    request: Request,
    reply: UnboundedSender<Clearance>,
}

struct State {
    table: LockTable,
    queue: VecDeque<Waiting>,
    in_air: usize,
    /// Runs in the air per agent.
    by_agent: HashMap<String, u64>,
    /// Nothing is cleared while paused.
    paused: bool,
    tickets: u64,
}

impl State {
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
                table: LockTable::default(),
                queue: VecDeque::new(),
                in_air: 0,
                by_agent: HashMap::new(),
                paused: false,
                tickets: 0,
            }),
            store,
            // The pool holds MAX_LIVE_RUNS runs' worth of slots.
            workers: workers.clamp(1, crate::limits::MAX_LIVE_RUNS as usize),
        }
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
        let blockers = s.table.blockers(&request.wants);
        let (agent, limit) = (request.agent.clone(), request.agent_limit);
        s.tickets += 1;
        let ticket = s.tickets;
        s.queue.push_back(Waiting {
            ticket,
            request,
            reply,
        });
        self.pump(&mut s);
        if !s.queue.iter().any(|w| w.ticket == ticket) {
            return (ticket, None);
        }
        let why = if s.paused {
            "waiting: clearing is paused".to_string()
        } else if let Some(max) = limit.filter(|&max| s.in_air_of(&agent) >= max) {
            format!("waiting: agent {agent} has {max} of {max} runs in the air")
        } else if !blockers.is_empty() {
            format!("waiting behind {}", blockers.join(", "))
        } else if s.in_air >= self.workers {
            format!("waiting for one of {} workers", self.workers)
        } else {
            "waiting behind earlier runways for the same datasets".to_string()
        };
        (ticket, Some(why))
    }

    /// Takes back the request `ticket` (its runway expired or was
    /// cancelled while it waited); no-op once it was cleared.
    pub fn withdraw(&self, ticket: u64) {
        let mut s = self.lock();
        s.queue.retain(|w| w.ticket != ticket);
        self.pump(&mut s);
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
    pub fn release(&self, wants: &BTreeMap<String, LockMode>, runway: &str, agent: &str) {
        let mut s = self.lock();
        s.table.release(wants, runway);
        s.landed(agent);
        self.pump(&mut s);
    }

    /// Datasets locked right now: (dataset, mode, holders).
    pub fn locks(&self) -> Vec<(String, LockMode, usize)> {
        self.lock().table.snapshot()
    }

    /// Stops (or starts again) clearing; runs in the air land as usual.
    pub fn set_paused(&self, paused: bool) {
        let mut s = self.lock();
        s.paused = paused;
        self.pump(&mut s);
    }

    fn pump(&self, s: &mut State) {
        if s.paused {
            return;
        }
        loop {
            let free = self.workers.saturating_sub(s.in_air);
            let wants: Vec<Want<'_>> = s
                .queue
                .iter()
                .map(|w| Want {
                    locks: &w.request.wants,
                    priority: w.request.priority,
                    held_back: w
                        .request
                        .agent_limit
                        .is_some_and(|max| s.in_air_of(&w.request.agent) >= max),
                })
                .collect();
            let mut granted = s.table.grant(&wants, free);
            // Two ready runways of one agent may still pass its limit together.
            let mut round: HashMap<&str, u64> = HashMap::new();
            granted.retain(|&i| {
                let r = &s.queue[i].request;
                let n = round.entry(&r.agent).or_insert(0);
                let ok = r
                    .agent_limit
                    .is_none_or(|max| s.in_air_of(&r.agent) + *n < max);
                *n += u64::from(ok);
                ok
            });
            if granted.is_empty() {
                return;
            }
            s.in_air += granted.len();
            let mut orphaned = false;
            let mut cleared: Vec<Waiting> = granted
                .iter()
                .rev()
                .map(|&i| s.queue.remove(i).expect("granted index is in the queue"))
                .collect();
            cleared.reverse(); // tokens are drawn in filing order
            for w in cleared {
                let Request {
                    slot,
                    runway,
                    wants,
                    agent,
                    ..
                } = w.request;
                s.table.acquire(&wants, &runway);
                *s.by_agent.entry(agent.clone()).or_insert(0) += 1;
                let grants = wants
                    .iter()
                    .map(|(dataset, &mode)| {
                        Ok(LockGrant {
                            dataset: dataset.clone(),
                            mode,
                            token: self.store.next_token()?,
                        })
                    })
                    .collect();
                if w.reply.send(Clearance { slot, grants }).is_err() {
                    // Nobody is waiting any more: hand the locks straight back.
                    s.table.release(&wants, &runway);
                    s.in_air -= 1;
                    s.landed(&agent);
                    orphaned = true;
                }
            }
            if !orphaned {
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
