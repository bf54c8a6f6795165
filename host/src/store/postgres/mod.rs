//! The PostgreSQL backend: the embedded store's semantics in a database
//! that many hosts can reach (DESIGN.md, "Beyond one machine").
//!
//! | table | holds |
//! |---|---|
//! | `records` | (dataset, key) → value, and who wrote it: runway, agent, plugin digest, attempt, token, audit seq |
//! | `fences` | dataset → the highest exclusive token that committed to it |
//! | `fencing_tokens` (a sequence) | the next fencing token: unique and growing across restarts and hosts |
//! | `commits`, `commit_datasets` | one row per run commit, keyed by the shard (origin) and audit seq of its COMMITTING record, and what it landed on each dataset |
//! | `leadership`, `hosts` | who leads under which term until when, and every host with its heartbeat (`lease.rs`) |
//! | `history` | the controller's records of every host, in the order the database took them (`history.rs`) |
//! | `refinery_schema_history` | the migrations applied (`schema.rs`) |
//!
//! Opening it: the connection string is parsed (`client.rs`; never shown),
//! the schema migrated or a newer one refused (`schema.rs`). Hosts then
//! join and one leads ([`Shared`]); only the leader writes — tokens,
//! commits, history — and each of those writes checks in its own
//! transaction that it still leads. Commits are one transaction with a
//! savepoint per run, fences moved under row locks first (`commit.rs`);
//! a run reads through one snapshot (`reader.rs`). TLS per `sslmode`, as
//! libpq gives it (`tls.rs`, the options tokio-postgres does not parse
//! taken out by `ssl_options.rs`). `runway data` opens it read-only beside
//! the hosts ([`Postgres::open_read_only`]: no migration).
//!
//! Fences are cached in memory, as the embedded store does: only the
//! leader writes, and the cache is emptied whenever this host takes the
//! lead; the commit checks the database's fence itself whatever the cache
//! says.

mod client;
mod commit;
mod history;
mod lease;
mod reader;
mod schema;
mod ssl_options;
mod tls;
mod work;

pub use client::{DatabaseUrl, describe};
pub use history::Recorded;
pub use lease::{HostRow, Leader, Standing};
pub use schema::SCHEMA_VERSION;
pub(crate) use work::{
    CANCELLED, CREW, Claimed, CrewRecord, ENDED, Lost, POSTED, Posting, Standing as WorkStanding,
    crew_of,
};

/// A connection listening for notifications, while kept.
pub(crate) struct Listening(client::Conn);

impl Listening {
    /// Its connection ended: nothing more is heard through it.
    pub(crate) fn closed(&self) -> bool {
        self.0.client.is_closed()
    }
}

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use client::{Driver, from_sql, lock, to_sql, wait};
use commit::Outcome;
use lease::Seat;
use runway_audit::Hash;

use super::lock::RootLock;
use super::{
    Backend, CommitResult, CommitStats, DatasetSummary, Landed, LandedDataset, Provenance, Reader,
    RunCommit, StoreError,
};

/// The PostgreSQL backend of one host.
pub struct Postgres {
    driver: Arc<Driver>,
    /// This host's place: its origin and the term it leads under.
    seat: Arc<Seat>,
    fences: Arc<Mutex<HashMap<String, u64>>>,
    /// The local data root (journal snapshot) stays this host's alone.
    _root: Option<RootLock>,
    /// A standby's crew: it lands only runs it claimed (`work.rs`).
    crew: bool,
}

impl Postgres {
    /// Connects to the database at `url`, takes it for this host, migrates
    /// it; `root` is the host's local data root (created if needed).
    pub fn open(url: &DatabaseUrl, root: &Path) -> Result<Postgres, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::OpenRoot {
            path: root.display().to_string(),
            source,
        })?;
        let root_lock = RootLock::take(root)?;
        let driver = Arc::new(Driver::new(url, false)?);
        let mut conn = driver.take()?;
        schema::migrate(&mut conn, &driver.target)?;
        driver.give(conn);
        Ok(Postgres {
            driver,
            seat: Arc::default(),
            fences: Arc::default(),
            _root: Some(root_lock),
            crew: false,
        })
    }

    /// Opens the database at `url` to read it beside a running host
    /// (`runway data`): no host lock, no migration (the schema must be
    /// the one this Runway knows), every session read-only on the server.
    pub fn open_read_only(url: &DatabaseUrl) -> Result<Postgres, StoreError> {
        let driver = Arc::new(Driver::new(url, true)?);
        let conn = driver.take()?;
        schema::check(&conn, &driver.target)?;
        driver.give(conn);
        Ok(Postgres {
            driver,
            seat: Arc::default(),
            fences: Arc::default(),
            _root: None,
            crew: false,
        })
    }

    /// The handle through which this host joins the others and leads.
    pub fn shared(&self) -> Shared {
        Shared {
            driver: self.driver.clone(),
            seat: self.seat.clone(),
            fences: self.fences.clone(),
        }
    }

    /// Runs `f` on a pooled connection.
    fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut client::Conn) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        self.driver.with(f)
    }

    /// After a COMMIT whose answer was lost: each run that was ready
    /// landed if and only if its commits row is there (looked up anew).
    fn resolve(
        &self,
        runs: &[RunCommit<'_>],
        landed: commit::Landings,
        why: &StoreError,
    ) -> commit::Landings {
        let target = self.driver.target.to_string();
        runs.iter()
            .zip(landed)
            .map(|(run, result)| {
                let landing = result?;
                let origin = self.seat.origin().unwrap_or_default();
                match self.landed(origin, run.committing_seq) {
                    Ok(Some(_)) => Ok(landing),
                    Ok(None) => Err(StoreError::CommitFailed {
                        path: target.clone(),
                        reason: why.to_string(),
                    }),
                    Err(e) => Err(StoreError::CommitFailed {
                        path: target.clone(),
                        reason: format!(
                            "{why}; whether it landed is unknown (its commits row, COMMITTING \
                             record {}, could not be read: {e})",
                            run.committing_seq
                        ),
                    }),
                }
            })
            .collect()
    }

    fn corrupt(&self, committing_seq: u64, runway: &str, why: String) -> StoreError {
        StoreError::CorruptCommit {
            path: self.driver.target.to_string(),
            committing_seq,
            runway: runway.to_string(),
            why,
        }
    }
}

impl Backend for Postgres {
    fn next_token(&self) -> Result<u64, StoreError> {
        let Some((term, origin)) = self.seat.leading() else {
            return Err(lease::deposed(&self.driver.target, 0));
        };
        // Handed out only to the leader: a deposed one gets no row.
        let token: Option<i64> = self.with(async |c| {
            let stmt = c
                .prepare(
                    "SELECT nextval('fencing_tokens') FROM leadership
                     WHERE term = $1 AND origin = $2 AND expires_at > now()",
                )
                .await?;
            let row = c.client.query_opt(&stmt, &[&term, &origin]).await?;
            Ok(row.map(|r| r.get(0)))
        })?;
        match token {
            Some(token) => Ok(from_sql(token)),
            None => {
                self.seat.step_down();
                Err(lease::deposed(&self.driver.target, term))
            }
        }
    }

    fn reader(&self) -> Result<Box<dyn Reader>, StoreError> {
        Ok(Box::new(reader::PgReader::new(&self.driver)?))
    }

    fn fence(&self, dataset: &str) -> Result<u64, StoreError> {
        if let Some(&fence) = lock(&self.fences).get(dataset) {
            return Ok(fence);
        }
        let fence: Option<i64> = self.with(async |c| {
            let stmt = c
                .prepare("SELECT token FROM fences WHERE dataset = $1")
                .await?;
            Ok(c.client
                .query_opt(&stmt, &[&dataset])
                .await?
                .map(|r| r.get(0)))
        })?;
        let fence = fence.map_or(0, from_sql);
        lock(&self.fences).insert(dataset.to_string(), fence);
        Ok(fence)
    }

    fn commit(&self, runs: &[RunCommit<'_>]) -> Vec<CommitResult> {
        let target = &self.driver.target;
        let failed = |reason: String| -> Vec<CommitResult> {
            runs.iter()
                .map(|_| {
                    Err(StoreError::CommitFailed {
                        path: target.to_string(),
                        reason: reason.clone(),
                    })
                })
                .collect()
        };
        // A crew lands only what it claimed; a host, only while it leads.
        let by = match (self.crew, self.seat.leading(), self.seat.origin()) {
            (true, _, Some(crew)) => commit::By::Crew(crew),
            (false, Some((term, origin)), _) => commit::By::Leader(term, origin),
            _ => return failed(lease::deposed(target, 0).to_string()),
        };
        let mut conn = match self.driver.take() {
            Ok(conn) => conn,
            Err(e) => return failed(e.to_string()),
        };
        let outcome = wait(commit::land_all(&mut conn, target, by, runs));
        self.driver.give(conn);
        let landed = match outcome {
            Outcome::Committed(landed) => landed,
            // Deposed: said as it is, once per run.
            Outcome::Failed(StoreError::NotLeading { target, why }) => {
                self.seat.step_down();
                return runs
                    .iter()
                    .map(|_| {
                        Err(StoreError::NotLeading {
                            target: target.clone(),
                            why: why.clone(),
                        })
                    })
                    .collect();
            }
            Outcome::Failed(e) => return failed(e.to_string()),
            Outcome::Unknown(landed, why) => self.resolve(runs, landed, &why),
        };
        let mut fences = lock(&self.fences);
        landed
            .into_iter()
            .map(|result| match result {
                Ok((tokens, stats)) => {
                    fences.extend(tokens);
                    Ok(stats)
                }
                Err(e) => {
                    if let StoreError::Fenced { dataset, fence, .. } = &e {
                        fences.insert(dataset.clone(), *fence);
                    }
                    Err(e)
                }
            })
            .collect()
    }

    fn landed(&self, origin: &str, committing_seq: u64) -> Result<Option<Landed>, StoreError> {
        let seq = to_sql(committing_seq);
        let (row, datasets) = self.with(async |c| {
            let row = c
                .client
                .query_opt(
                    "SELECT runway, attempt, output FROM commits
                     WHERE origin = $1 AND committing_seq = $2",
                    &[&origin, &seq],
                )
                .await?;
            let datasets = c
                .client
                .query(
                    "SELECT dataset, token, writes, deletes FROM commit_datasets
                     WHERE origin = $1 AND committing_seq = $2 ORDER BY dataset",
                    &[&origin, &seq],
                )
                .await?;
            Ok((row, datasets))
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let runway: String = row.get(0);
        let number = |name: &str, n: i64| -> Result<u32, StoreError> {
            u32::try_from(n).map_err(|_| {
                self.corrupt(
                    committing_seq,
                    &runway,
                    format!("{name} {n} is out of range"),
                )
            })
        };
        let attempt = number("attempt", row.get(1))?;
        let output: Vec<u8> = row.get(2);
        let output: Hash = output.try_into().map_err(|b: Vec<u8>| {
            let why = format!("output digest has {} bytes, not 32", b.len());
            self.corrupt(committing_seq, &runway, why)
        })?;
        let mut landed = Vec::with_capacity(datasets.len());
        for r in datasets {
            let token: i64 = r.get(1);
            if token < 0 {
                let why = format!("token {token} is out of range");
                return Err(self.corrupt(committing_seq, &runway, why));
            }
            landed.push(LandedDataset {
                dataset: r.get(0),
                token: from_sql(token),
                stats: CommitStats {
                    writes: number("writes", r.get(2))?,
                    deletes: number("deletes", r.get(3))?,
                },
            });
        }
        if landed.is_empty() {
            let why = "it lists no dataset (a commit lands on at least one)".into();
            return Err(self.corrupt(committing_seq, &runway, why));
        }
        Ok(Some(Landed {
            runway,
            attempt,
            datasets: landed,
            output,
        }))
    }

    fn datasets(&self) -> Result<Vec<DatasetSummary>, StoreError> {
        let rows = self.with(async |c| {
            c.client
                .query(
                    "SELECT name, sum(records)::int8, max(fence) FROM (
                       SELECT dataset AS name, count(*) AS records, 0::int8 AS fence
                         FROM records GROUP BY dataset
                       UNION ALL SELECT dataset, 0, token FROM fences) AS d
                     GROUP BY name ORDER BY name",
                    &[],
                )
                .await
        })?;
        Ok(rows
            .iter()
            .map(|r| DatasetSummary {
                name: r.get(0),
                records: from_sql(r.get(1)),
                fence: from_sql(r.get(2)),
            })
            .collect())
    }

    fn provenance(&self, dataset: &str, key: &str) -> Result<Option<Provenance>, StoreError> {
        let row = self.with(async |c| {
            c.client
                .query_opt(
                    "SELECT runway, agent, plugin, attempt, token, audit_seq, origin
                     FROM records WHERE dataset = $1 AND key = $2",
                    &[&dataset, &key],
                )
                .await
        })?;
        Ok(row.map(|r| provenance(&r, 0)))
    }

    fn scan(&self, dataset: &str) -> Result<Vec<(String, Vec<u8>, Provenance)>, StoreError> {
        let rows = self.with(async |c| {
            c.client
                .query(
                    "SELECT key, value, runway, agent, plugin, attempt, token, audit_seq, origin
                     FROM records WHERE dataset = $1 ORDER BY key",
                    &[&dataset],
                )
                .await
        })?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), provenance(r, 2)))
            .collect())
    }
}

/// The provenance columns of a row, starting at column `at`.
fn provenance(r: &tokio_postgres::Row, at: usize) -> Provenance {
    let plugin: Vec<u8> = r.get(at + 2);
    let attempt: i64 = r.get(at + 3);
    Provenance {
        runway: r.get(at),
        agent: r.get(at + 1),
        plugin: plugin.try_into().unwrap_or([0; 32]),
        attempt: u32::try_from(attempt).unwrap_or(0),
        token: from_sql(r.get(at + 4)),
        audit_seq: from_sql(r.get(at + 5)),
        shard: r.get(at + 6),
    }
}

/// The database as the hosts sharing it see it: joining, leading and the
/// shared history (`lease.rs`, `history.rs`). Cheap to clone.
#[derive(Clone)]
pub struct Shared {
    driver: Arc<Driver>,
    seat: Arc<Seat>,
    fences: Arc<Mutex<HashMap<String, u64>>>,
}

impl Shared {
    /// Joins the database's hosts as `origin`, its API at `api` (see
    /// [`lease::join`]).
    pub fn join(
        &self,
        (origin, pid): (&str, u32),
        lease: Duration,
        api: Option<&str>,
    ) -> Result<(), StoreError> {
        lease::join(&self.driver, &self.seat, (origin, pid), lease, api)
    }

    /// Takes the lead if it is free (see [`lease::take`]). Fences cached
    /// while another host led are forgotten.
    pub fn take_lead(&self, lease: Duration) -> Result<Standing, StoreError> {
        let standing = lease::take(&self.driver, &self.seat, lease)?;
        if let Standing::Leading { .. } = standing {
            lock(&self.fences).clear();
        }
        Ok(standing)
    }

    /// Keeps the lead (see [`lease::renew`]).
    pub fn renew(&self, lease: Duration, in_flight: u64) -> Result<bool, StoreError> {
        lease::renew(&self.driver, &self.seat, lease, in_flight)
    }

    /// A heartbeat while standing by.
    pub fn beat(&self, in_flight: u64) -> Result<(), StoreError> {
        lease::beat(&self.driver, &self.seat, in_flight)
    }

    /// Gives the lead up at once (a clean stop).
    pub fn resign(&self) -> Result<(), StoreError> {
        lease::resign(&self.driver, &self.seat)
    }

    /// Stops leading here at once, before the database says so.
    pub fn step_down(&self) {
        self.seat.step_down();
    }

    /// The origin this host joined under: its shard.
    pub fn origin(&self) -> Option<&str> {
        self.seat.origin()
    }

    /// The term this host leads under, if it does.
    pub fn term(&self) -> Option<u64> {
        self.seat.leading().map(|(term, _)| from_sql(term))
    }

    pub fn leader(&self) -> Result<Option<Leader>, StoreError> {
        lease::leader(&self.driver)
    }

    pub fn hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        lease::hosts(&self.driver)
    }

    /// Appends this host's records to the shared history, if it leads.
    pub fn append_history(&self, records: &[(u64, u64, Vec<u8>)]) -> Result<(), StoreError> {
        history::append(&self.driver, &self.seat, records)
    }

    /// The lease this host joined with: a host silent for longer is gone.
    pub(crate) fn lease(&self) -> Duration {
        self.seat.lease()
    }

    /// The origin of this host's crew (its shard while it stands by).
    pub(crate) fn crew_origin(&self) -> Option<String> {
        self.seat.origin().map(work::crew_of)
    }

    /// The backend this host's crew lands its claimed runs through: the
    /// same connections, the crew's origin, never leading.
    pub(crate) fn crew_backend(&self) -> Option<Postgres> {
        Some(Postgres {
            driver: self.driver.clone(),
            seat: Arc::new(Seat::named(self.crew_origin()?)),
            fences: Arc::default(),
            _root: None,
            crew: true,
        })
    }

    /// Posts a run for the crews, if this host leads (`work.rs`).
    pub(crate) fn post(&self, posting: &Posting<'_>) -> Result<u64, StoreError> {
        work::post(&self.driver, &self.seat, posting)
    }

    /// Claims up to `most` posted runs of the agents `digests` for this
    /// host's crew, none of the runways `busy` (an earlier attempt of
    /// theirs still flies on the crew, its claim taken or not).
    pub(crate) fn claim(
        &self,
        digests: &[Hash],
        most: usize,
        busy: &[String],
    ) -> Result<Vec<Claimed>, StoreError> {
        let crew = self.crew_origin().unwrap_or_default();
        work::claim(&self.driver, &crew, digests, most, busy)
    }

    /// This host's crew's records, into the history under their claims;
    /// `false`: a claim was lost, nothing was taken.
    pub(crate) fn record_claimed(&self, records: &[CrewRecord]) -> Result<bool, StoreError> {
        let crew = self.crew_origin().unwrap_or_default();
        work::record(&self.driver, &crew, records)
    }

    /// Takes unfinished work away from `crews` (every crew's: `None`).
    pub(crate) fn lose(&self, crews: Option<&[String]>) -> Result<Vec<Lost>, StoreError> {
        work::lose(&self.driver, &self.seat, crews)
    }

    /// Gives up what an earlier process of this host's crew claimed.
    pub(crate) fn abandon(&self) -> Result<Vec<String>, StoreError> {
        let crew = self.crew_origin().unwrap_or_default();
        work::abandon(&self.driver, &crew)
    }

    /// Which of `seqs`, records of this host's crew's shard, the shared
    /// history took.
    pub(crate) fn taken_of_crew(&self, seqs: &[u64]) -> Result<Vec<u64>, StoreError> {
        let crew = self.crew_origin().unwrap_or_default();
        work::taken(&self.driver, &crew, seqs)
    }

    /// Where work `id` stands.
    pub(crate) fn work_standing(&self, id: u64) -> Result<Option<WorkStanding>, StoreError> {
        work::standing(&self.driver, id)
    }

    /// The works of term `term` that ended or were lost.
    pub(crate) fn settled_work(&self, term: u64) -> Result<Vec<u64>, StoreError> {
        work::settled(&self.driver, term)
    }

    /// Asks the crew flying work `id` to cancel it.
    pub(crate) fn cancel_work(&self, id: u64, by: &str) -> Result<(), StoreError> {
        work::cancel(&self.driver, id, by)
    }

    /// Who cancelled work `id`.
    pub(crate) fn work_cancelled(&self, id: u64) -> Result<Option<String>, StoreError> {
        work::cancelled(&self.driver, id)
    }

    /// Says how many runs this host's crew flies at once.
    pub(crate) fn offer(&self, workers: usize) -> Result<(), StoreError> {
        work::offer(&self.driver, &self.seat, workers)
    }

    /// Listens on `channels` (see [`Driver::listen`]) until the returned
    /// handle is dropped.
    pub(crate) fn listen(
        &self,
        channels: &[&str],
        to: std::sync::mpsc::Sender<(String, String)>,
    ) -> Result<Listening, StoreError> {
        Ok(Listening(self.driver.listen(channels, to)?))
    }

    /// The shared history after position `after`, at most `limit` records.
    pub fn read_history(&self, after: u64, limit: u32) -> Result<Vec<Recorded>, StoreError> {
        history::read(&self.driver, after, limit)
    }
}
