//! Who waits for what the controller does: callers of
//! [`Controller::wait`](super::Controller::wait), answered once all their
//! runways have ended, and the answers of filings and commands, sent only
//! once the records they caused are durable (so nothing acknowledged is
//! lost in a crash).

use std::collections::HashMap;

use runway_audit::AuditLog;
use tokio::sync::oneshot;

use super::controls::ControlError;
use super::runway::{Runway, RunwayReport};

/// An answer to send once this step's records are durable (`true`), or
/// once the trail failed (`false`).
type Ack = Box<dyn FnOnce(bool) + Send>;

type Reply = oneshot::Sender<Result<Vec<RunwayReport>, ControlError>>;

/// A caller of `wait`: its runways, and how many have not ended yet.
struct Waiter {
    runways: Vec<usize>,
    open: usize,
    reply: Reply,
}

#[derive(Default)]
pub(super) struct Waiters {
    waiters: HashMap<u64, Waiter>,
    /// Runway → the waiters waiting for it.
    watchers: HashMap<usize, Vec<u64>>,
    next: u64,
    /// Runways that ended since the waiters were last told.
    ended: Vec<usize>,
    /// Answers of this step's filings and commands.
    acks: Vec<Ack>,
}

impl Waiters {
    /// Waits for `runways` to end (answered at once when they all have).
    pub fn wait(&mut self, runways: Vec<usize>, book: &[Runway], reply: Reply) {
        let open: Vec<usize> = runways
            .iter()
            .copied()
            .filter(|&i| !book[i].ended())
            .collect();
        let waiter = Waiter {
            open: open.len(),
            runways,
            reply,
        };
        if waiter.open == 0 {
            tell(waiter, book);
            return;
        }
        let w = self.next;
        self.next += 1;
        for i in open {
            self.watchers.entry(i).or_default().push(w);
        }
        self.waiters.insert(w, waiter);
    }

    /// Runway `i` ended (it may yet go round again before the waiters are
    /// told).
    pub fn ended(&mut self, i: usize) {
        self.ended.push(i);
    }

    /// Forgets the endings seen so far (a restore tells nobody).
    pub fn forget_endings(&mut self) {
        self.ended.clear();
    }

    /// Answers every waiter whose runways have all ended now.
    pub fn tell(&mut self, book: &[Runway]) {
        for i in std::mem::take(&mut self.ended) {
            if !book[i].ended() {
                continue; // it went round again
            }
            for w in self.watchers.remove(&i).unwrap_or_default() {
                let Some(waiter) = self.waiters.get_mut(&w) else {
                    continue;
                };
                waiter.open -= 1;
                if waiter.open == 0 {
                    let waiter = self.waiters.remove(&w).expect("just found");
                    tell(waiter, book);
                }
            }
        }
    }

    /// Lets every waiter go unanswered: they learn the controller stopped.
    pub fn drop_all(&mut self) {
        self.waiters.clear();
        self.watchers.clear();
    }

    /// Answers `reply` with `answer`: a refusal at once (nothing changed),
    /// what was done once its records are durable.
    pub fn ack<T: Send + 'static>(
        &mut self,
        answer: Result<T, ControlError>,
        reply: oneshot::Sender<Result<T, ControlError>>,
    ) {
        match answer {
            Err(refused) => drop(reply.send(Err(refused))),
            Ok(done) => self.acks.push(Box::new(move |durable| {
                let _ = reply.send(if durable {
                    Ok(done)
                } else {
                    Err(ControlError::Stopped)
                });
            })),
        }
    }

    /// Sends this step's answers once everything appended to `audit` so
    /// far is durable, without holding the loop (one wait for all).
    pub fn acknowledge(&mut self, audit: &AuditLog) {
        if self.acks.is_empty() {
            return;
        }
        let acks = std::mem::take(&mut self.acks);
        let audit = audit.clone();
        let last = audit.last_ticket();
        tokio::task::spawn_blocking(move || {
            let durable = last.is_none_or(|t| audit.wait_durable(t).is_ok());
            for ack in acks {
                ack(durable);
            }
        });
    }
}

fn tell(waiter: Waiter, book: &[Runway]) {
    let reports = waiter
        .runways
        .iter()
        .map(|&i| book[i].report(true))
        .collect();
    let _ = waiter.reply.send(Ok(reports));
}
