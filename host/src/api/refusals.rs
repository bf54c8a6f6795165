//! Refused API requests, kept from filling the audit disk or crowding out
//! real work: anyone who can reach the port can be refused, so refusing
//! must cost little and write little.
//!
//! - **A bucket per peer** (its IP address): [`REFUSAL_BURST`] refusals
//!   (401, 403) are audited one by one, one more each [`REFUSAL_REFILL`].
//!   Past it the peer is answered `429 Too Many Requests` with
//!   `Retry-After`, and its refusals are only counted. A caller whose token
//!   lets the request in never touches the bucket, so a real client on the
//!   same address keeps getting answers.
//! - **One summary record per peer and interval**: what was counted goes
//!   on the trail as one REJECTED record (count, first and last time,
//!   routes) once [`REFUSAL_SUMMARY_INTERVAL`] has passed since its first,
//!   and at shutdown ([`Refusals::flush`]).
//! - **A reserve on the audit disk**: while the disk holding the audit
//!   folder has less than the reserve free, no refusal record (one by one
//!   or summary) is written; refusals are counted in memory until there is
//!   room again. Lifecycle and host-call records do not look at the
//!   reserve: they are the trail, and may use it. The check lives here, in
//!   the host, because only the host knows which records are refusals; the
//!   audit crate appends whatever it is given.
//!
//! At most [`MAX_REFUSING_PEERS`] peers are tracked one by one; past it,
//! new peers share one bucket and one summary ("other peers").

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use runway_audit::render::utc_timestamp;
use runway_audit::{AuditLog, now_ns};

use crate::controller::plan::rejection;
use crate::limits::{
    MAX_REFUSING_PEERS, MAX_SUMMARY_ROUTES, REFUSAL_BURST, REFUSAL_REFILL, REFUSAL_SUMMARY_INTERVAL,
};

/// Who was refused: the address a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    Addr(IpAddr),
    /// The door did not say (a router called without a listener).
    Unknown,
    /// Token holders refused inside a call (they are named in the record).
    Callers,
    /// Peers past [`MAX_REFUSING_PEERS`].
    Others,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Addr(ip) => write!(f, "{ip}"),
            Peer::Unknown => f.write_str("an unknown peer"),
            Peer::Callers => f.write_str("token holders"),
            Peer::Others => f.write_str("other peers"),
        }
    }
}

/// How a refusal is to be answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// With its own status (it was audited, or counted while the audit
    /// disk is below its reserve).
    Refuse,
    /// `429 Too Many Requests`, retry after this many seconds.
    Limited { retry_after: u64 },
}

/// The refusals of a server and where they are audited.
pub struct Refusals {
    audit: AuditLog,
    /// Free bytes the audit disk keeps for lifecycle and host-call records.
    reserve: u64,
    /// Refusals per peer audited in full before its bucket runs dry.
    burst: u32,
    peers: Mutex<HashMap<Peer, PeerState>>,
}

struct PeerState {
    tokens: u32,
    refilled: Instant,
    counted: Option<Summary>,
}

/// Refusals counted and not yet on the trail.
struct Summary {
    count: u64,
    first_ns: u64,
    last_ns: u64,
    first_at: Instant,
    routes: BTreeMap<String, u64>,
    other_routes: u64,
}

impl Summary {
    fn new() -> Summary {
        Summary {
            count: 0,
            first_ns: now_ns(),
            last_ns: 0,
            first_at: Instant::now(),
            routes: BTreeMap::new(),
            other_routes: 0,
        }
    }

    fn add(&mut self, route: &str) {
        self.count += 1;
        self.last_ns = now_ns();
        if let Some(n) = self.routes.get_mut(route) {
            *n += 1;
        } else if self.routes.len() < MAX_SUMMARY_ROUTES {
            self.routes.insert(route.to_string(), 1);
        } else {
            self.other_routes += 1;
        }
    }

    /// The summary's reason on the trail.
    fn reason(&self, peer: Peer) -> String {
        let mut routes: Vec<String> = self
            .routes
            .iter()
            .map(|(route, n)| format!("{route} ×{n}"))
            .collect();
        if self.other_routes > 0 {
            routes.push(format!("other routes ×{}", self.other_routes));
        }
        format!(
            "API requests refused and not audited one by one: {} from {peer} between {} and {}; routes: {}",
            self.count,
            utc_timestamp(self.first_ns),
            utc_timestamp(self.last_ns),
            routes.join(", ")
        )
    }
}

impl PeerState {
    fn new(now: Instant, burst: u32) -> PeerState {
        PeerState {
            tokens: burst,
            refilled: now,
            counted: None,
        }
    }

    /// Adds the tokens gained since the last refill.
    fn refill(&mut self, now: Instant, burst: u32) {
        let step = REFUSAL_REFILL.as_nanos().max(1);
        let gained = now.saturating_duration_since(self.refilled).as_nanos() / step;
        if gained == 0 {
            return;
        }
        let gained = u32::try_from(gained).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(gained).min(burst);
        if self.tokens == burst {
            self.refilled = now;
        } else {
            self.refilled += REFUSAL_REFILL * gained;
        }
    }

    /// Whole seconds until the bucket holds a token again (at least 1).
    fn retry_after(&self, now: Instant) -> u64 {
        let left = (self.refilled + REFUSAL_REFILL).saturating_duration_since(now);
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }

    fn count(&mut self, route: &str) {
        self.counted.get_or_insert_with(Summary::new).add(route);
    }
}

impl Refusals {
    /// Refusals audited on `audit`, leaving `reserve` bytes free on its
    /// disk, [`REFUSAL_BURST`] per peer in full.
    pub fn new(audit: AuditLog, reserve: u64) -> Refusals {
        Refusals::with_burst(audit, reserve, REFUSAL_BURST)
    }

    /// [`Refusals::new`] with `burst` refusals per peer audited in full
    /// (then one per [`REFUSAL_REFILL`]).
    pub fn with_burst(audit: AuditLog, reserve: u64, burst: u32) -> Refusals {
        Refusals {
            audit,
            reserve,
            burst,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// A request from `peer` to `route` (method and path) refused for
    /// `reason`: audited while the peer's bucket holds a token and the
    /// audit disk is above its reserve, counted otherwise.
    pub fn refuse(&self, peer: Peer, route: &str, reason: &str) -> Verdict {
        let now = Instant::now();
        let below = self.below_reserve();
        {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            let known = peers.len() < MAX_REFUSING_PEERS || peers.contains_key(&peer);
            let state = peers
                .entry(if known { peer } else { Peer::Others })
                .or_insert_with(|| PeerState::new(now, self.burst));
            state.refill(now, self.burst);
            if state.tokens == 0 {
                state.count(route);
                return Verdict::Limited {
                    retry_after: state.retry_after(now),
                };
            }
            state.tokens -= 1;
            if below {
                state.count(route);
                return Verdict::Refuse;
            }
        }
        if let Err(e) = self.audit.append(rejection(reason)) {
            tracing::warn!("cannot audit a refused API request: {e}");
        }
        Verdict::Refuse
    }

    /// A refusal inside a call (the caller is named in `reason`): audited,
    /// unless the audit disk is below its reserve (then counted).
    pub fn audit(&self, reason: &str) -> Result<(), runway_audit::AuditError> {
        if self.below_reserve() {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            peers
                .entry(Peer::Callers)
                .or_insert_with(|| PeerState::new(Instant::now(), self.burst))
                .count("(inside a call)");
            return Ok(());
        }
        self.audit.append(rejection(reason)).map(drop)
    }

    /// Writes the summaries whose interval has passed (all of them when
    /// `all`, as at shutdown) and forgets the peers with nothing left to
    /// say; nothing while the audit disk is below its reserve. How many
    /// summaries went on the trail.
    pub fn flush(&self, all: bool) -> usize {
        if self.below_reserve() {
            return 0;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            peers.retain(|peer, state| {
                state.refill(now, self.burst);
                let ripe = state.counted.as_ref().is_some_and(|s| {
                    all || now.saturating_duration_since(s.first_at) >= REFUSAL_SUMMARY_INTERVAL
                });
                if ripe && let Some(summary) = state.counted.take() {
                    due.push(summary.reason(*peer));
                }
                state.counted.is_some() || state.tokens < self.burst
            });
        }
        for reason in &due {
            if let Err(e) = self.audit.append(rejection(reason)) {
                tracing::warn!("cannot audit a summary of refused API requests: {e}");
            }
        }
        due.len()
    }

    /// Whether the disk of the audit folder has less than the reserve free.
    fn below_reserve(&self) -> bool {
        if self.reserve == 0 {
            return false;
        }
        match rustix::fs::statvfs(self.audit.dir()) {
            Ok(fs) => fs.f_bavail.saturating_mul(fs.f_frsize) < self.reserve,
            Err(e) => {
                tracing::warn!("cannot tell the audit disk's free space: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_audit::{AuditOptions, Event, read_records};

    fn refused(dir: &std::path::Path) -> Vec<String> {
        read_records(dir)
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.entry.event {
                Event::Rejected { reason } => Some(reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn past_the_bucket_refusals_are_limited_and_summed_once() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path(), AuditOptions::new("test")).unwrap();
        let refusals = Refusals::new(audit.clone(), 0);
        let peer = Peer::Addr([127, 0, 0, 1].into());
        let burst = REFUSAL_BURST as usize;
        let mut limited = 0;
        for i in 0..burst + 50 {
            let route = if i % 2 == 0 { "GET /a" } else { "POST /b" };
            match refusals.refuse(peer, route, "no bearer token") {
                Verdict::Refuse => assert!(i < burst + 2, "refused in full at {i}"),
                Verdict::Limited { retry_after } => {
                    assert!((1..=REFUSAL_REFILL.as_secs().max(1)).contains(&retry_after));
                    limited += 1;
                }
            }
        }
        assert!(limited >= 48, "{limited}");
        // Another peer has a bucket of its own.
        assert_eq!(
            refusals.refuse(Peer::Addr([10, 0, 0, 1].into()), "GET /", "x"),
            Verdict::Refuse
        );
        assert_eq!(refusals.flush(false), 0, "the interval has not passed");
        assert_eq!(refusals.flush(true), 1);
        audit.sync().unwrap();
        let reasons = refused(dir.path());
        let summary = reasons.last().unwrap();
        assert!(
            summary.contains(&format!(": {limited} from 127.0.0.1 between ")),
            "{summary}"
        );
        assert!(
            summary.contains("GET /a ×") && summary.contains("POST /b ×"),
            "{summary}"
        );
        assert!(reasons.len() <= burst + 4, "{}", reasons.len());
    }

    #[test]
    fn below_the_reserve_refusals_are_counted_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path(), AuditOptions::new("test")).unwrap();
        let refusals = Refusals::new(audit.clone(), u64::MAX);
        let peer = Peer::Addr([127, 0, 0, 1].into());
        assert_eq!(refusals.refuse(peer, "GET /", "x"), Verdict::Refuse);
        refusals.audit("inside").unwrap();
        assert_eq!(refusals.flush(true), 0);
        audit.sync().unwrap();
        assert!(refused(dir.path()).is_empty());
    }
}
