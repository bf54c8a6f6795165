//! Shards checked together: hosts sharing one database each keep and sign
//! their own trail (a shard), and the auditor, having verified each,
//! checks them against each other (DESIGN.md, "Beyond one machine").
//!
//! First, what the shared history never took is set aside. A leader
//! writes a record to its own disk and then hands it to the database; a
//! leader deposed in between (killed, frozen past its lease) keeps records
//! no other host saw. Every term opens with a LEADING record naming how
//! far the history took each shard, so a record of term T beyond what a
//! later term's LEADING says was taken of its shard happened on its host
//! alone: it is set aside, counted, and reported.
//!
//! A crew (a standby flying work the leader posted) whose claim was taken
//! away keeps records the history refused in the same way; it says so
//! with an ABANDONED record for the run, and its records of that attempt,
//! from its STARTED on, are set aside too.
//!
//! Then, over every record kept, across shards:
//! - every shard a LEADING record names is given (none withheld);
//! - each term is led once (one LEADING record per term);
//! - each runway is filed once and succeeds at most once;
//! - each fencing token is granted once;
//! - no two holders of a dataset overlap in time while one of them holds
//!   it exclusively. A grant lasts from its GRANT record until its
//!   RELEASE, or until the attempt that held it ended (SUCCEEDED, FAILED,
//!   or a move off the runway), whichever comes first — an attempt a dead
//!   host cut short ends with the FAILED record the next leader writes.
//!   Times are each host's clock, so hosts' clocks are assumed in step;
//! - every COMMITTED has its COMMITTING (in any shard: a commit left in
//!   doubt by a dead leader is settled by the next, in its own shard).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::record::{Event, LockMode, Record};
use crate::state::State;

/// One host's trail, verified, with its origin.
pub struct Shard {
    pub origin: String,
    pub records: Vec<Record>,
}

/// A record's place among the shards: its shard's origin and its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct At {
    pub origin: String,
    pub seq: u64,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.origin, self.seq)
    }
}

/// What the shards held, checked together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Together {
    pub shards: usize,
    pub records: u64,
    /// Records the shared history never took: of deposed terms, and of
    /// crews' abandoned attempts.
    pub set_aside: u64,
    /// The terms led, in order.
    pub terms: Vec<u64>,
    pub runways: usize,
    pub grants: usize,
    pub commits: usize,
}

/// Where the shards disagree: the first conflict found, naming both
/// records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("term {term} was led twice: LEADING records {first} and {second}")]
    TermLedTwice { term: u64, first: At, second: At },
    #[error(
        "LEADING record {named_by} says the shared history took records of shard {origin}, \
         which is not among the shards given"
    )]
    ShardMissing { origin: String, named_by: At },
    #[error("runway {runway} was filed twice: records {first} and {second}")]
    FiledTwice {
        runway: String,
        first: At,
        second: At,
    },
    #[error("runway {runway} succeeded twice: records {first} and {second}")]
    SucceededTwice {
        runway: String,
        first: At,
        second: At,
    },
    #[error("fencing token {token} was granted twice: records {first} and {second}")]
    TokenTwice { token: u64, first: At, second: At },
    #[error(
        "dataset {dataset} had two holders at once, one of them exclusive: \
         the grant at {first} (token {first_token}) had not ended when {second} \
         (token {second_token}) was granted"
    )]
    Overlap {
        dataset: String,
        first: At,
        first_token: u64,
        second: At,
        second_token: u64,
    },
    #[error(
        "COMMITTED record {at} (dataset {dataset}, token {token}) has no COMMITTING \
         record in any shard"
    )]
    CommittedAlone { at: At, dataset: String, token: u64 },
}

/// Checks `shards` against each other (see the module doc).
pub fn check_together(shards: &[Shard]) -> Result<Together, Conflict> {
    let taken = Taken::read(shards)?;
    taken.all_given(shards)?;
    let mut book = Book::default();
    let mut together = Together {
        shards: shards.len(),
        terms: taken.terms.keys().copied().collect(),
        ..Together::default()
    };
    for shard in shards {
        let abandoned = abandoned(&shard.records);
        let mut term = None;
        for r in &shard.records {
            together.records += 1;
            if let Event::Leading { term: t, .. } = r.entry.event {
                term = Some(t);
            }
            if abandoned.contains(&r.seq) || taken.set_aside(&shard.origin, term, r.seq) {
                together.set_aside += 1;
                // An attempt set aside may still have landed its commit (its
                // host died after it, before its end was taken): the next
                // leader's COMMITTED, settled from the database, names it.
                book.intended(&r.entry.event);
                continue;
            }
            book.keep(&shard.origin, r)?;
        }
    }
    together.runways = book.filed.len();
    together.grants = book.grants.len();
    together.commits = book.committed.len();
    book.check()?;
    Ok(together)
}

/// The records of a shard's abandoned attempts: each ABANDONED record
/// and its runway's records since its last STARTED.
fn abandoned(records: &[Record]) -> std::collections::HashSet<u64> {
    let mut since: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut aside = std::collections::HashSet::new();
    for r in records {
        let runway = r.entry.runway.as_str();
        match r.entry.event {
            Event::Started { .. } => {
                since.insert(runway, vec![r.seq]);
            }
            Event::Abandoned { .. } => {
                aside.extend(since.remove(runway).unwrap_or_default());
                aside.insert(r.seq);
            }
            _ => {
                if let Some(seqs) = since.get_mut(runway) {
                    seqs.push(r.seq);
                }
            }
        }
    }
    aside
}

/// How far each later term found each shard taken.
struct Taken {
    /// Term → its LEADING record's place and what it found taken, by
    /// shard origin: the last record of that shard the history took.
    terms: BTreeMap<u64, (At, HashMap<String, u64>)>,
}

impl Taken {
    fn read(shards: &[Shard]) -> Result<Taken, Conflict> {
        let mut terms: BTreeMap<u64, (At, HashMap<String, u64>)> = BTreeMap::new();
        for shard in shards {
            for r in &shard.records {
                let Event::Leading { term, accepted } = &r.entry.event else {
                    continue;
                };
                let at = At {
                    origin: shard.origin.clone(),
                    seq: r.seq,
                };
                if let Some((first, _)) = terms.get(term) {
                    return Err(Conflict::TermLedTwice {
                        term: *term,
                        first: first.clone(),
                        second: at,
                    });
                }
                let found = accepted.iter().map(|a| (a.origin.clone(), a.seq));
                terms.insert(*term, (at, found.collect()));
            }
        }
        Ok(Taken { terms })
    }

    /// Every shard some LEADING record names is among `shards`: none was
    /// withheld.
    fn all_given(&self, shards: &[Shard]) -> Result<(), Conflict> {
        for (at, found) in self.terms.values() {
            let mut named: Vec<&String> = found.keys().collect();
            named.sort();
            if let Some(origin) = named
                .into_iter()
                .find(|o| shards.iter().all(|s| &s.origin != *o))
            {
                return Err(Conflict::ShardMissing {
                    origin: origin.clone(),
                    named_by: at.clone(),
                });
            }
        }
        Ok(())
    }

    /// Whether record `seq` of shard `origin`, written under `term`, is
    /// beyond what some later term found taken of that shard.
    fn set_aside(&self, origin: &str, term: Option<u64>, seq: u64) -> bool {
        let Some(term) = term else { return false };
        let later = self.terms.range(term + 1..).map(|(_, (_, found))| found);
        later
            .map(|found| found.get(origin))
            .any(|last| last.is_none_or(|&last| seq > last))
    }
}

/// One lock held: from its GRANT record on.
struct Grant {
    dataset: String,
    mode: LockMode,
    token: u64,
    runway: String,
    at: At,
    from_ns: u64,
}

/// The records kept, as the checks need them.
#[derive(Default)]
struct Book {
    filed: HashMap<String, At>,
    succeeded: HashMap<String, At>,
    tokens: HashMap<u64, At>,
    grants: Vec<Grant>,
    /// Token → when its RELEASE was written (the earliest).
    released: HashMap<u64, u64>,
    /// Runway → when its attempts ended.
    ended: HashMap<String, Vec<u64>>,
    /// (dataset, token) of every COMMITTING's locks.
    committing: std::collections::HashSet<(String, u64)>,
    committed: Vec<(At, String, u64)>,
}

impl Book {
    fn keep(&mut self, origin: &str, r: &Record) -> Result<(), Conflict> {
        let at = || At {
            origin: origin.to_string(),
            seq: r.seq,
        };
        let runway = &r.entry.runway;
        let dataset = r.entry.dataset.as_deref();
        match (&r.entry.event, dataset) {
            (Event::Filing { .. } | Event::FilingV1(_), _) => {
                once(&mut self.filed, runway, at(), |first, second| {
                    Conflict::FiledTwice {
                        runway: runway.clone(),
                        first,
                        second,
                    }
                })?;
            }
            (Event::Succeeded { .. }, _) => {
                once(&mut self.succeeded, runway, at(), |first, second| {
                    Conflict::SucceededTwice {
                        runway: runway.clone(),
                        first,
                        second,
                    }
                })?;
                self.ended(runway, r.time_ns);
            }
            (Event::Failed { .. }, _) => self.ended(runway, r.time_ns),
            (Event::Moved { to, .. }, _) if !matches!(to, State::Running | State::Cleared) => {
                self.ended(runway, r.time_ns)
            }
            // Token 0 is the one every fence refuses (no token could be had).
            (Event::LockGranted { mode, token }, Some(dataset)) if *token != 0 => {
                if let Some(first) = self.tokens.insert(*token, at()) {
                    return Err(Conflict::TokenTwice {
                        token: *token,
                        first,
                        second: at(),
                    });
                }
                self.grants.push(Grant {
                    dataset: dataset.to_string(),
                    mode: *mode,
                    token: *token,
                    runway: runway.clone(),
                    at: at(),
                    from_ns: r.time_ns,
                });
            }
            (Event::LockReleased { token, .. }, _) => {
                let when = self.released.entry(*token).or_insert(r.time_ns);
                *when = (*when).min(r.time_ns);
            }
            (Event::Committing { .. }, _) => self.intended(&r.entry.event),
            (Event::Committed { token, .. }, Some(dataset)) => {
                self.committed.push((at(), dataset.to_string(), *token));
            }
            _ => {}
        }
        Ok(())
    }

    /// Notes a COMMITTING's locks: a COMMITTED under one of them has its
    /// COMMITTING.
    fn intended(&mut self, event: &Event) {
        if let Event::Committing { locks, .. } = event {
            let held = locks.iter().map(|l| (l.dataset.clone(), l.token));
            self.committing.extend(held);
        }
    }

    fn ended(&mut self, runway: &str, time_ns: u64) {
        self.ended
            .entry(runway.to_string())
            .or_default()
            .push(time_ns);
    }

    /// The checks that need every record: commits, then overlaps.
    fn check(mut self) -> Result<(), Conflict> {
        for (at, dataset, token) in &self.committed {
            if !self.committing.contains(&(dataset.clone(), *token)) {
                return Err(Conflict::CommittedAlone {
                    at: at.clone(),
                    dataset: dataset.clone(),
                    token: *token,
                });
            }
        }
        for ends in self.ended.values_mut() {
            ends.sort_unstable();
        }
        let mut by_dataset: HashMap<&str, Vec<(&Grant, u64)>> = HashMap::new();
        for g in &self.grants {
            let released = self.released.get(&g.token).copied();
            let ends = self.ended.get(&g.runway).map_or(&[][..], Vec::as_slice);
            let ended = ends.get(ends.partition_point(|&t| t <= g.from_ns)).copied();
            let until = released.into_iter().chain(ended).min().unwrap_or(u64::MAX);
            by_dataset.entry(&g.dataset).or_default().push((g, until));
        }
        for (dataset, mut grants) in by_dataset {
            grants.sort_by_key(|(g, _)| g.from_ns);
            overlap(dataset, &grants)?;
        }
        Ok(())
    }
}

/// Grants of one dataset, by start: the first that begins before an
/// earlier one ended, either of them exclusive.
fn overlap(dataset: &str, grants: &[(&Grant, u64)]) -> Result<(), Conflict> {
    // The latest-ending grant so far, and the latest-ending exclusive one.
    let mut any: Option<(&Grant, u64)> = None;
    let mut exclusive: Option<(&Grant, u64)> = None;
    for &(g, until) in grants {
        let clash = match g.mode {
            LockMode::Exclusive => any,
            LockMode::Shared => exclusive,
        };
        if let Some((first, first_until)) = clash
            && first_until > g.from_ns
        {
            return Err(Conflict::Overlap {
                dataset: dataset.to_string(),
                first: first.at.clone(),
                first_token: first.token,
                second: g.at.clone(),
                second_token: g.token,
            });
        }
        let later = |kept: Option<(&Grant, u64)>| kept.is_none_or(|(_, u)| until > u);
        if later(any) {
            any = Some((g, until));
        }
        if g.mode == LockMode::Exclusive && later(exclusive) {
            exclusive = Some((g, until));
        }
    }
    Ok(())
}

/// Keeps `at` as runway `runway`'s one record of a kind, or says which
/// came first.
fn once(
    seen: &mut HashMap<String, At>,
    runway: &str,
    at: At,
    twice: impl FnOnce(At, At) -> Conflict,
) -> Result<(), Conflict> {
    match seen.get(runway) {
        Some(first) => Err(twice(first.clone(), at)),
        None => {
            seen.insert(runway.to_string(), at);
            Ok(())
        }
    }
}
