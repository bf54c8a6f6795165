//! The leader's yard on a shared database (DESIGN.md, "Beyond one
//! machine"): on a thread of its own, it hears of the crews and of the
//! runs they fly, and tells the controller (`remote.rs`):
//! - a posted run that ended or was given up (`NOTIFY`, and once more for
//!   every such run of this term whenever it starts listening again, so
//!   none is missed with a lost connection): the crew's report, or the
//!   loss;
//! - every [`LOOK`]: the workers of the hosts standing by size the
//!   tower's crew slots, and the claims of hosts not heard from for a
//!   lease are taken away (each a loss, told the same way).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::host::Host;
use crate::sandbox::{RunFailure, RunReport};
use crate::store::{ENDED, Listening, Lost, Shared, WorkStanding};

/// What the yard hears of a run flying on a crew (`remote.rs`).
pub(super) enum Remote {
    /// Work `id` ended: the crew's report.
    Landed(u64, Box<RunReport>),
    /// Work taken from its crew before it ended.
    Lost(Lost),
}

/// How often the yard looks at the hosts.
const LOOK: Duration = Duration::from_millis(500);

/// The yard's thread; stopped when dropped.
pub struct Yard {
    stop: Arc<AtomicBool>,
    wake: Sender<(String, String)>,
    thread: Option<JoinHandle<()>>,
}

impl Yard {
    /// Starts the yard of `host`, which leads a shared database, telling
    /// the controller at `to`.
    pub fn start(host: &Arc<Host>, to: UnboundedSender<Remote>) -> Option<Yard> {
        let shared = host.store.shared()?.clone();
        let term = shared.term()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = channel();
        let watch = Watch {
            shared,
            term,
            host: Arc::downgrade(host),
            to,
            told: HashSet::new(),
        };
        let thread = {
            let (stop, wake) = (stop.clone(), wake.clone());
            std::thread::Builder::new()
                .name("runway-yard".into())
                .spawn(move || watch.run(&stop, &wake, &woken))
                .ok()?
        };
        Some(Yard {
            stop,
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Yard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.send((String::new(), String::new()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Watch {
    shared: Shared,
    term: u64,
    host: Weak<Host>,
    to: UnboundedSender<Remote>,
    /// Works already told of.
    told: HashSet<u64>,
}

impl Watch {
    fn run(
        mut self,
        stop: &AtomicBool,
        wake: &Sender<(String, String)>,
        woken: &std::sync::mpsc::Receiver<(String, String)>,
    ) {
        let mut listening: Option<Listening> = None;
        let mut looked = Instant::now() - LOOK;
        while !stop.load(Ordering::Acquire) {
            if listening.as_ref().is_none_or(Listening::closed) {
                listening = match self.shared.listen(&[ENDED], wake.clone()) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!("the yard cannot listen for crews' runs: {e}");
                        None
                    }
                };
                // Whatever ended while nobody listened.
                match self.shared.settled_work(self.term) {
                    Ok(ids) => ids.into_iter().for_each(|id| self.tell(id)),
                    Err(e) => tracing::warn!("the yard could not read settled work: {e}"),
                }
            }
            if looked.elapsed() >= LOOK {
                looked = Instant::now();
                if !self.look() {
                    return;
                }
            }
            if let Ok((channel, payload)) = woken.recv_timeout(LOOK)
                && channel == ENDED
                && let Ok(id) = payload.parse()
            {
                self.tell(id);
            }
        }
    }

    /// Tells the controller how work `id` ended, once.
    fn tell(&mut self, id: u64) {
        if self.told.contains(&id) {
            return;
        }
        let remote = match self.shared.work_standing(id) {
            Ok(Some(WorkStanding::Ended(report))) => {
                let report = postcard::from_bytes::<RunReport>(&report).unwrap_or_else(|e| {
                    let why = format!("the crew's report does not read: {e}");
                    RunReport::failed(RunFailure::HostFault(why))
                });
                Remote::Landed(id, Box::new(report))
            }
            Ok(Some(WorkStanding::Lost(lost))) => Remote::Lost(lost),
            Ok(Some(WorkStanding::Flying) | None) => return,
            Err(e) => {
                tracing::warn!("the yard could not read work {id}: {e}");
                return;
            }
        };
        self.told.insert(id);
        let _ = self.to.send(remote);
    }

    /// Sizes the tower's crew slots and takes the claims of hosts gone
    /// away; `false` once the host is gone.
    fn look(&mut self) -> bool {
        let Some(host) = self.host.upgrade() else {
            return false;
        };
        let hosts = match self.shared.hosts() {
            Ok(hosts) => hosts,
            Err(e) => {
                tracing::warn!("the yard could not read the hosts: {e}");
                return true;
            }
        };
        let me = self.shared.origin().unwrap_or_default();
        let lease = i64::try_from(self.shared.lease().as_millis()).unwrap_or(i64::MAX);
        let others = hosts.iter().filter(|h| h.origin != me);
        let (live, gone): (Vec<_>, Vec<_>) = others.partition(|h| h.beat_ms <= lease);
        let crews: u64 = live.iter().map(|h| h.workers).sum();
        host.tower
            .set_crews(usize::try_from(crews).unwrap_or(usize::MAX));
        let gone: Vec<String> = gone
            .iter()
            .filter(|h| h.workers > 0)
            .map(|h| crate::store::crew_of(&h.origin))
            .collect();
        if !gone.is_empty() {
            match self.shared.lose(Some(&gone)) {
                Ok(lost) => {
                    for lost in lost {
                        self.told.insert(lost.id);
                        let _ = self.to.send(Remote::Lost(lost));
                    }
                }
                Err(e) => tracing::warn!("the yard could not take claims from gone hosts: {e}"),
            }
        }
        true
    }
}
