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

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use runway_audit::{LockGrant, LockMode};
use tokio::sync::mpsc::UnboundedSender;

use super::locks::LockTable;
use crate::store::{DatasetStore, StoreError};

/// Permission to take off: the granted locks, or why tokens failed.
#[derive(Debug)]
pub struct Clearance {
    /// The requester's own handle for the runway.
    pub slot: usize,
    pub grants: Result<Vec<LockGrant>, StoreError>,
}

struct Waiting {
    slot: usize,
    wants: BTreeMap<String, LockMode>,
    reply: UnboundedSender<Clearance>,
}

struct State {
    table: LockTable,
    queue: VecDeque<Waiting>,
    in_air: usize,
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
            }),
            store,
            // The pool holds MAX_LIVE_RUNS runs' worth of slots.
            workers: workers.clamp(1, crate::limits::MAX_LIVE_RUNS as usize),
        }
    }

    /// Queues a runway for clearance; the answer comes down `reply`.
    pub fn request(
        &self,
        slot: usize,
        wants: BTreeMap<String, LockMode>,
        reply: UnboundedSender<Clearance>,
    ) {
        let mut s = self.lock();
        s.queue.push_back(Waiting { slot, wants, reply });
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

    /// A cleared runway landed: free its locks.
    pub fn release(&self, wants: &BTreeMap<String, LockMode>) {
        let mut s = self.lock();
        s.table.release(wants);
        self.pump(&mut s);
    }

    /// Datasets locked right now: (dataset, mode, holders).
    pub fn locks(&self) -> Vec<(String, LockMode, usize)> {
        self.lock().table.snapshot()
    }

    fn pump(&self, s: &mut State) {
        loop {
            let free = self.workers.saturating_sub(s.in_air);
            let State {
                table,
                queue,
                in_air,
            } = s;
            let granted = table.grant(queue.iter().map(|w| &w.wants), free);
            if granted.is_empty() {
                return;
            }
            *in_air += granted.len();
            let mut orphaned = false;
            let mut cleared: Vec<Waiting> = granted
                .iter()
                .rev()
                .map(|&i| queue.remove(i).expect("granted index is in the queue"))
                .collect();
            cleared.reverse(); // tokens are drawn in filing order
            for w in cleared {
                let grants = w
                    .wants
                    .iter()
                    .map(|(dataset, &mode)| {
                        Ok(LockGrant {
                            dataset: dataset.clone(),
                            mode,
                            token: self.store.next_token()?,
                        })
                    })
                    .collect();
                if w.reply
                    .send(Clearance {
                        slot: w.slot,
                        grants,
                    })
                    .is_err()
                {
                    // Nobody is waiting any more: hand the locks straight back.
                    table.release(&w.wants);
                    *in_air -= 1;
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
