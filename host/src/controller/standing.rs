//! A host's standing among the hosts sharing one PostgreSQL database
//! (DESIGN.md, "Beyond one machine"): it joins them, stands by until the
//! lead is free ([`wait_for_lead`]), then keeps it ([`LeadKeeper`]).
//!
//! The lease is renewed every quarter of its length; the database's clock
//! decides when it lapses. A renewal the database refuses — the term is
//! over, or the lease lapsed first (a host frozen past it, say) — or a
//! database this host cannot reach until the lease would have lapsed ends
//! this host's lead: every write it makes is refused from then on, and
//! its audit log is halted, so its controller stops at its next record
//! and the process ends, saying why. A clean stop resigns the lead, so
//! the next host need not wait for the lease to lapse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use runway_audit::{Accepted, AuditLog};

use crate::store::{Leader, Shared, Standing, StoreError};

/// How long a lead lasts without renewal, unless the host is told
/// otherwise: failover takes about this long plus one poll.
pub const LEASE: Duration = Duration::from_secs(5);

/// How often a host standing by looks whether the lead is free.
const POLL: Duration = Duration::from_millis(500);

/// The lead, taken.
pub struct Lead {
    pub term: u64,
    /// How far the history took each shard when this host took over.
    pub accepted: Vec<Accepted>,
}

/// Joins the database's hosts as `origin`, its API at `api` (refused,
/// after a lease's wait, while another live process uses the origin) and
/// waits until this host leads; `standing_by` hears who leads while it
/// waits, once per leader; each heartbeat says the runs `in_flight` (its
/// crew's).
pub fn wait_for_lead(
    shared: &Shared,
    (origin, api): (&str, Option<&str>),
    lease: Duration,
    standing_by: &dyn Fn(&Leader),
    in_flight: &dyn Fn() -> u64,
) -> Result<Lead, StoreError> {
    // The same origin's last process, killed a moment ago, may not have
    // lapsed yet: it gets its lease's time to, then the origin is refused.
    let joining = Instant::now();
    loop {
        match shared.join((origin, std::process::id()), lease, api) {
            Err(StoreError::OriginTaken { .. }) if joining.elapsed() < lease + POLL => {
                std::thread::sleep(POLL);
            }
            joined => break joined?,
        }
    }
    let mut told: Option<(u64, String)> = None;
    loop {
        match shared.take_lead(lease)? {
            Standing::Leading { term, accepted } => return Ok(Lead { term, accepted }),
            Standing::Standby(leader) => {
                let who = (leader.term, leader.origin.clone());
                if told.as_ref() != Some(&who) {
                    standing_by(&leader);
                    told = Some(who);
                }
                shared.beat(in_flight())?;
                let lapses = u64::try_from(leader.expires_in_ms.max(0)).unwrap_or(0);
                std::thread::sleep(POLL.min(Duration::from_millis(lapses + 10)));
            }
        }
    }
}

/// Keeps this host's lead on a thread of its own; resigns it when
/// dropped.
pub struct LeadKeeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    lost: Arc<AtomicBool>,
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

impl LeadKeeper {
    /// Renews `shared`'s lead every quarter of `lease`, with the runs
    /// `in_flight` says; halts `audit` when the lead is lost.
    pub fn start(
        shared: Shared,
        lease: Duration,
        audit: AuditLog,
        in_flight: Box<dyn Fn() -> u64 + Send>,
    ) -> std::io::Result<LeadKeeper> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let lost = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, lost, shared) = (stop.clone(), lost.clone(), shared.clone());
            std::thread::Builder::new()
                .name("runway-lead".into())
                .spawn(move || keep(&shared, lease, &audit, &*in_flight, &stop, &lost))?
        };
        Ok(LeadKeeper {
            stop,
            lost,
            shared,
            thread: Some(thread),
        })
    }

    /// Whether the lead was lost (not given up).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

impl Drop for LeadKeeper {
    fn drop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !self.lost()
            && let Err(e) = self.shared.resign()
        {
            tracing::warn!("could not give the lead up (it lapses with its lease): {e}");
        }
    }
}

fn keep(
    shared: &Shared,
    lease: Duration,
    audit: &AuditLog,
    in_flight: &dyn Fn() -> u64,
    stop: &(Mutex<bool>, Condvar),
    lost: &AtomicBool,
) {
    let every = lease / 4;
    // The lease runs from before the last renewal that the database took.
    let mut held_until = Instant::now() + lease;
    loop {
        {
            let stopped = stop.0.lock().unwrap_or_else(|p| p.into_inner());
            let (stopped, _) = stop
                .1
                .wait_timeout_while(stopped, every, |s| !*s)
                .unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
        }
        let asked = Instant::now();
        let why = match shared.renew(lease, in_flight()) {
            Ok(true) => {
                held_until = asked + lease;
                continue;
            }
            Ok(false) => "the database says its term is over".to_string(),
            Err(e) if Instant::now() < held_until => {
                tracing::warn!("could not renew the lead (retrying while it lasts): {e}");
                continue;
            }
            Err(e) => format!("it could not be renewed before it lapsed: {e}"),
        };
        shared.step_down();
        lost.store(true, Ordering::Release);
        tracing::error!("this host lost the lead: {why}; it stops acting now");
        audit.halt();
        return;
    }
}
