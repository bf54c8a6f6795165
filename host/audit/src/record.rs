//! The audit record: its schema, its one canonical postcard encoding, strict
//! decoding and its leaf hash.
//!
//! A [`Record`] is what lands on disk: an [`Entry`] (what happened, said by
//! the host) wrapped with the sequence number, time and the two chain links
//! the writer assigns. Its leaf hash is `SHA-256(0x00 ‖ postcard bytes)`, the
//! RFC 6962 leaf hash, so the same value later feeds a Merkle tree.
//!
//! postcard accepts non-canonical input (overlong varints) and ignores bytes
//! after a value; [`Record::decode`] rejects both, in one pass
//! ([`Record::decode`], in `codec.rs`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The all-zero hash: `prev` of record 0, previous-segment hash of segment 0.
pub const ZERO_HASH: Hash = [0; 32];

/// Domain-separation prefix of a leaf hash (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;

/// `SHA-256(bytes)`.
pub fn sha256(bytes: impl AsRef<[u8]>) -> Hash {
    Sha256::digest(bytes.as_ref()).into()
}

/// The RFC 6962 leaf hash `SHA-256(0x00 ‖ encoded)` of an encoded record.
pub fn leaf_hash(encoded: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(encoded)
        .finalize()
        .into()
}

/// One audit record as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the log, contiguous from 0.
    pub seq: u64,
    /// Unix time in nanoseconds; never decreases along the log.
    pub time_ns: u64,
    /// Leaf hash of the previous record; zeros for record 0.
    pub prev: Hash,
    /// Leaf hash of the previous record with the same `entry.dataset`; `None`
    /// when `entry.dataset` is `None` or this is the dataset's first record.
    pub prev_dataset: Option<Hash>,
    /// What happened.
    pub entry: Entry,
}

/// What the host reports: who did what, where.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Runway id; `""` for host-level records.
    pub runway: String,
    /// Agent name.
    pub agent: String,
    /// SHA-256 of the agent's component, when one is involved.
    pub plugin: Option<Hash>,
    /// The dataset this record belongs to, which puts it on that dataset's chain.
    pub dataset: Option<String>,
    /// The event itself.
    pub event: Event,
}

/// A filing, a runway state change, a lock change or a host call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A manifest was filed.
    Filed {
        action: String,
        after: Vec<String>,
        locks: Vec<LockRequest>,
    },
    /// A filing was rejected.
    Rejected { reason: String },
    /// The dispatcher cleared the runway; all its locks were granted at once.
    Cleared { locks: Vec<LockGrant> },
    /// One lock granted, recorded on that dataset's chain (`entry.dataset` set).
    LockGranted { mode: LockMode, token: u64 },
    /// A run attempt started.
    Started { attempt: u32 },
    /// A host call, allowed or not.
    Call {
        call: Call,
        key: Option<String>,
        token: Option<u64>,
        /// Digest of the call's arguments.
        args: Hash,
        /// Digest of the call's result.
        result: Hash,
        outcome: Outcome,
    },
    /// The staged writes of a run were committed to `entry.dataset`.
    Committed {
        token: u64,
        writes: u32,
        deletes: u32,
    },
    /// One lock released, recorded on that dataset's chain.
    LockReleased { mode: LockMode, token: u64 },
    /// The run succeeded.
    Succeeded { output: Hash },
    /// The run failed.
    Failed { reason: String },
    /// A plugin (`entry.agent`, digest in `entry.plugin`) was loaded from the
    /// plugins folder, new or as a new version.
    PluginLoaded,
    /// A plugin's files left the plugins folder; runs in flight keep it.
    PluginUnloaded,
    /// A run is about to commit: this record is durable before the store's
    /// transaction starts, so the trail always knows a commit may have
    /// happened. `changes` is the digest of the change set.
    Committing {
        locks: Vec<LockGrant>,
        changes: Hash,
    },
    /// At start-up, the commit begun at record `committing` (the host
    /// crashed before its outcome was recorded) was looked up in the store:
    /// `landed` says whether its transaction committed. The records that
    /// follow say the rest: COMMITTED and SUCCEEDED, or FAILED.
    Recovered { committing: u64, landed: bool },
    /// The runway moved to state `to` (the moves without a record of their
    /// own: FILED, CLEARED, STARTED, SUCCEEDED and FAILED are theirs), with
    /// why, and who when a person moved it.
    Moved {
        to: crate::State,
        reason: String,
        by: Option<String>,
    },
    /// A person (`by`) paused clearing: running runs land, nothing new is
    /// cleared until RESUMED.
    Paused { by: String },
    /// A person (`by`) resumed clearing.
    Resumed { by: String },
    /// A manifest was filed, all of it (FILED of this version): the trail
    /// alone can rebuild the queue, and an auditor sees what was asked.
    Filing(FiledManifest),
    /// A plan was filed as `runways` (their FILING records come before
    /// this one, in this order), by `by` from `source` (an inbox file, the
    /// API, `runway run`); `digest` is SHA-256 of the plan as received.
    PlanFiled {
        by: String,
        source: String,
        digest: Hash,
        runways: Vec<String>,
    },
}

/// A manifest as filed, its times resolved at filing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FiledManifest {
    pub action: String,
    pub after: Vec<String>,
    pub locks: Vec<LockRequest>,
    pub priority: i64,
    /// The run's window when shorter than its grant's, in milliseconds.
    pub window_ms: Option<u64>,
    /// Not cleared before (Unix nanoseconds).
    pub earliest_start_ns: Option<u64>,
    /// Not cleared by then: EXPIRED (Unix nanoseconds).
    pub expires_ns: Option<u64>,
    /// The role whose approval it waits for.
    pub approval: Option<String>,
    pub retry: Option<RetryPolicy>,
    /// SHA-256 of `input`.
    pub input_digest: Hash,
    /// The input handed to the agent (capped at filing).
    pub input: Vec<u8>,
}

/// A manifest's retry policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Doubling waits (else fixed).
    pub exponential: bool,
    pub initial_ms: u64,
    pub max_ms: u64,
    pub jitter: bool,
}

/// A lock a manifest asks for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LockRequest {
    pub dataset: String,
    pub mode: LockMode,
}

/// A lock the dispatcher granted, with its fencing token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LockGrant {
    pub dataset: String,
    pub mode: LockMode,
    pub token: u64,
}

/// Shared (readers) or exclusive (one writer).
// Plan files spell the modes `shared` / `exclusive`; postcard encodes the
// variant index, so the names never reach the audit bytes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Shared,
    Exclusive,
}

impl LockMode {
    /// `'S'` or `'X'`, as lock tables write them.
    pub fn letter(self) -> char {
        match self {
            LockMode::Shared => 'S',
            LockMode::Exclusive => 'X',
        }
    }

    /// `"shared"` or `"exclusive"`.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }
}

/// Which host call was made.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Read,
    Write,
    Delete,
    List,
    Log,
    Info,
}

impl Call {
    /// Every call, in declaration (and so encoding) order.
    pub const ALL: [Call; 6] = [
        Call::Read,
        Call::Write,
        Call::Delete,
        Call::List,
        Call::Log,
        Call::Info,
    ];

    /// Lower-case name of the call, as in the WIT interface.
    pub fn name(self) -> &'static str {
        match self {
            Call::Read => "read",
            Call::Write => "write",
            Call::Delete => "delete",
            Call::List => "list",
            Call::Log => "log",
            Call::Info => "info",
        }
    }
}

/// How a host call ended; the errors mirror the guest-visible WIT errors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied(String),
    LockLost(String),
    NotFound(String),
    Invalid(String),
    Limit(String),
}

impl Outcome {
    /// Kebab-case name of the outcome: `ok`, `denied`, `lock-lost`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied(_) => "denied",
            Outcome::LockLost(_) => "lock-lost",
            Outcome::NotFound(_) => "not-found",
            Outcome::Invalid(_) => "invalid",
            Outcome::Limit(_) => "limit",
        }
    }

    /// The reason carried by an error outcome.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Ok => None,
            Outcome::Denied(r)
            | Outcome::LockLost(r)
            | Outcome::NotFound(r)
            | Outcome::Invalid(r)
            | Outcome::Limit(r) => Some(r),
        }
    }
}

/// Why bytes are not a canonical record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a record at all.
    #[error("undecodable record: {0}")]
    Malformed(&'static str),
    /// A record decoded but bytes were left after it.
    #[error("trailing bytes: {0} after the record")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the canonical encoding (e.g. an overlong varint).
    #[error("non-canonical encoding")]
    NonCanonical,
}

/// A record could not be encoded (postcard refused it; not expected for this schema).
#[derive(Debug, thiserror::Error)]
#[error("could not encode audit record: {0}")]
pub struct EncodeError(#[from] postcard::Error);

/// Bytes of the longest varint (a length prefix or a `u64`).
const VARINT_MAX: usize = 10;
/// Bytes a record takes besides its strings and lists, at most: sequence
/// number, time, both chain links, the plugin digest, the event's fixed
/// fields (two digests for a call) and every enum tag and option flag.
const FIXED_MAX: usize = 256;

impl Entry {
    /// A record of the host itself: no runway, agent, plugin or dataset
    /// (a refused plan, a pause of clearing).
    pub fn of_host(event: Event) -> Entry {
        Entry {
            runway: String::new(),
            agent: String::new(),
            plugin: None,
            dataset: None,
            event,
        }
    }

    /// An upper bound on the bytes of this entry's record once encoded,
    /// counted without encoding (it runs on every append): each string and
    /// list with its longest length prefix, each fixed field at its widest.
    pub fn encoded_bound(&self) -> usize {
        let text = |s: &str| s.len() + VARINT_MAX;
        let lists = |n: usize| VARINT_MAX + n * (2 * VARINT_MAX);
        let filed = |action: &str, after: &[String], locks: &[LockRequest]| {
            text(action)
                + lists(after.len() + locks.len())
                + after.iter().map(|a| a.len()).sum::<usize>()
                + locks.iter().map(|l| l.dataset.len()).sum::<usize>()
        };
        let event = match &self.event {
            Event::Filed {
                action,
                after,
                locks,
            } => filed(action, after, locks),
            Event::Cleared { locks } | Event::Committing { locks, .. } => {
                lists(locks.len()) + locks.iter().map(|l| l.dataset.len()).sum::<usize>()
            }
            Event::Rejected { reason } | Event::Failed { reason } => text(reason),
            Event::Paused { by } | Event::Resumed { by } => text(by),
            Event::PlanFiled {
                by,
                source,
                runways,
                ..
            } => {
                text(by)
                    + text(source)
                    + 32
                    + lists(runways.len())
                    + runways.iter().map(|r| r.len()).sum::<usize>()
            }
            Event::Filing(m) => {
                filed(&m.action, &m.after, &m.locks)
                    + 4 * (1 + VARINT_MAX)
                    + m.approval.as_deref().map_or(1, |a| 1 + text(a))
                    + 1
                    + 5 * VARINT_MAX
                    + 32
                    + m.input.len()
                    + VARINT_MAX
            }
            Event::Moved { reason, by, .. } => {
                VARINT_MAX + text(reason) + by.as_deref().map_or(1, |b| 1 + text(b))
            }
            Event::Call { key, outcome, .. } => {
                key.as_deref().map_or(0, text) + outcome.reason().map_or(0, text)
            }
            Event::LockGranted { .. }
            | Event::Started { .. }
            | Event::Committed { .. }
            | Event::LockReleased { .. }
            | Event::Succeeded { .. }
            | Event::PluginLoaded
            | Event::PluginUnloaded
            | Event::Recovered { .. } => 0,
        };
        FIXED_MAX
            + text(&self.runway)
            + text(&self.agent)
            + self.dataset.as_deref().map_or(0, text)
            + event
    }
}

impl Record {
    /// The canonical encoding of this record.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        Ok(postcard::to_stdvec(self)?)
    }

    /// Appends the canonical encoding of this record to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let taken = std::mem::take(buf);
        *buf = postcard::to_extend(self, taken)?;
        Ok(())
    }

    /// The leaf hash of this record's canonical encoding.
    pub fn leaf_hash(&self) -> Result<Hash, EncodeError> {
        Ok(leaf_hash(&self.encode()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            seq: 300,
            time_ns: 1_710_550_800_123_000_000,
            prev: [7; 32],
            prev_dataset: None,
            entry: Entry {
                runway: "import".into(),
                agent: "import-applications".into(),
                plugin: Some([9; 32]),
                dataset: Some("fafsa_2024_03_16".into()),
                event: Event::Call {
                    call: Call::Write,
                    key: Some("app/000001".into()),
                    token: Some(1),
                    args: sha256(b"args"),
                    result: sha256(b"result"),
                    outcome: Outcome::Ok,
                },
            },
        }
    }

    #[test]
    fn round_trips() {
        let record = sample();
        let bytes = record.encode().expect("encode");
        assert_eq!(Record::decode(&bytes), Ok(record));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = sample().encode().expect("encode");
        bytes.push(0);
        assert_eq!(Record::decode(&bytes), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn rejects_overlong_varint() {
        // seq 300 is the varint ac 02; the overlong form ac 82 00 decodes too.
        let bytes = sample().encode().expect("encode");
        assert_eq!(&bytes[..2], &[0xac, 0x02]);
        let mut overlong = vec![0xac, 0x82, 0x00];
        overlong.extend_from_slice(&bytes[2..]);
        let (lenient, rest) = postcard::take_from_bytes::<Record>(&overlong).expect("postcard");
        assert_eq!(
            (lenient.seq, rest.len()),
            (300, 0),
            "postcard itself is lenient"
        );
        assert_eq!(Record::decode(&overlong), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Record::decode(&[0xff; 3]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn leaf_hash_is_domain_separated() {
        let bytes = sample().encode().expect("encode");
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(&bytes);
        assert_eq!(leaf_hash(&bytes), sha256(&prefixed));
        assert_ne!(leaf_hash(&bytes), sha256(&bytes));
    }

    /// A small deterministic generator (xorshift64*), so the property tests
    /// need no dependency and fail the same way every run.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// Values of every varint width, edges included.
        fn u64(&mut self) -> u64 {
            let bits = self.below(65) as u32;
            let edge = [0, 1, 127, 128, 16_383, 16_384, u64::MAX][self.below(7) as usize];
            match self.below(4) {
                0 => edge,
                _ => self.next().checked_shr(64 - bits).unwrap_or(0),
            }
        }
        fn hash(&mut self) -> Hash {
            let mut hash = [0; 32];
            hash.iter_mut().for_each(|b| *b = self.next() as u8);
            hash
        }
        fn string(&mut self) -> String {
            let len = [0, 1, 5, 127, 128, 200][self.below(6) as usize];
            (0..len)
                .map(|_| ['a', 'Z', '/', 'é', '✓', '\u{1F600}'][self.below(6) as usize])
                .collect()
        }
        fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
            (self.below(2) == 1).then(|| f(self))
        }
        fn mode(&mut self) -> LockMode {
            [LockMode::Shared, LockMode::Exclusive][self.below(2) as usize]
        }
        fn event(&mut self) -> Event {
            let list = |g: &mut Self| 0..g.below(4);
            match self.below(19) {
                0 => Event::Filed {
                    action: self.string(),
                    after: list(self).map(|_| self.string()).collect(),
                    locks: list(self)
                        .map(|_| LockRequest {
                            dataset: self.string(),
                            mode: self.mode(),
                        })
                        .collect(),
                },
                1 => Event::Rejected {
                    reason: self.string(),
                },
                2 => Event::Cleared {
                    locks: list(self)
                        .map(|_| LockGrant {
                            dataset: self.string(),
                            mode: self.mode(),
                            token: self.u64(),
                        })
                        .collect(),
                },
                3 => Event::LockGranted {
                    mode: self.mode(),
                    token: self.u64(),
                },
                4 => Event::Started {
                    attempt: self.u64() as u32,
                },
                5 => Event::Call {
                    call: Call::ALL[self.below(6) as usize],
                    key: self.maybe(Self::string),
                    token: self.maybe(Self::u64),
                    args: self.hash(),
                    result: self.hash(),
                    outcome: match self.below(6) {
                        0 => Outcome::Ok,
                        1 => Outcome::Denied(self.string()),
                        2 => Outcome::LockLost(self.string()),
                        3 => Outcome::NotFound(self.string()),
                        4 => Outcome::Invalid(self.string()),
                        _ => Outcome::Limit(self.string()),
                    },
                },
                6 => Event::Committed {
                    token: self.u64(),
                    writes: self.u64() as u32,
                    deletes: self.u64() as u32,
                },
                7 => Event::LockReleased {
                    mode: self.mode(),
                    token: self.u64(),
                },
                8 => Event::Succeeded {
                    output: self.hash(),
                },
                9 => Event::Failed {
                    reason: self.string(),
                },
                10 => Event::PluginLoaded,
                11 => Event::PluginUnloaded,
                12 => Event::Committing {
                    locks: (0..self.below(3))
                        .map(|_| LockGrant {
                            dataset: self.string(),
                            mode: self.mode(),
                            token: self.u64(),
                        })
                        .collect(),
                    changes: self.hash(),
                },
                13 => Event::Recovered {
                    committing: self.u64(),
                    landed: self.below(2) == 1,
                },
                14 => Event::Moved {
                    to: crate::State::ALL[self.below(crate::State::ALL.len() as u64) as usize],
                    reason: self.string(),
                    by: self.maybe(Self::string),
                },
                15 => Event::Paused { by: self.string() },
                16 => Event::Resumed { by: self.string() },
                18 => Event::PlanFiled {
                    by: self.string(),
                    source: self.string(),
                    digest: self.hash(),
                    runways: list(self).map(|_| self.string()).collect(),
                },
                _ => Event::Filing(FiledManifest {
                    action: self.string(),
                    after: list(self).map(|_| self.string()).collect(),
                    locks: list(self)
                        .map(|_| LockRequest {
                            dataset: self.string(),
                            mode: self.mode(),
                        })
                        .collect(),
                    priority: self.u64() as i64,
                    window_ms: self.maybe(Self::u64),
                    earliest_start_ns: self.maybe(Self::u64),
                    expires_ns: self.maybe(Self::u64),
                    approval: self.maybe(Self::string),
                    retry: self.maybe(|g| RetryPolicy {
                        attempts: g.u64() as u32,
                        exponential: g.below(2) == 1,
                        initial_ms: g.u64(),
                        max_ms: g.u64(),
                        jitter: g.below(2) == 1,
                    }),
                    input_digest: self.hash(),
                    input: self.string().into_bytes(),
                }),
            }
        }
        fn record(&mut self) -> Record {
            Record {
                seq: self.u64(),
                time_ns: self.u64(),
                prev: self.hash(),
                prev_dataset: self.maybe(Self::hash),
                entry: Entry {
                    runway: self.string(),
                    agent: self.string(),
                    plugin: self.maybe(Self::hash),
                    dataset: self.maybe(Self::string),
                    event: self.event(),
                },
            }
        }
    }

    /// The definition of canonical: postcard decodes all of it to a record
    /// whose postcard encoding is these very bytes.
    fn canonical_by_postcard(bytes: &[u8]) -> Option<Record> {
        let (record, rest) = postcard::take_from_bytes::<Record>(bytes).ok()?;
        (rest.is_empty() && record.encode().ok()? == bytes).then_some(record)
    }

    #[test]
    fn decodes_every_generated_record_postcard_encodes() {
        let mut g = Gen(0x5eed_0001);
        for _ in 0..20_000 {
            let record = g.record();
            let bytes = record.encode().expect("encode");
            assert_eq!(Record::decode(&bytes).as_ref(), Ok(&record), "{bytes:?}");
        }
    }

    #[test]
    fn accepts_exactly_what_postcard_calls_canonical() {
        // Mutations of generated records: a byte changed, inserted, removed,
        // a cut, a varint made overlong; the decoder agrees with
        // decode-and-re-encode on every one.
        let mut g = Gen(0x5eed_0002);
        let mut rejected = 0;
        for _ in 0..20_000 {
            let mut bytes = g.record().encode().expect("encode");
            let at = g.below(bytes.len() as u64) as usize;
            match g.below(5) {
                0 => bytes[at] = g.next() as u8,
                1 => bytes[at] ^= 1 << g.below(8),
                2 => bytes.insert(at, [0x00, 0x80, 0x01, 0xff][g.below(4) as usize]),
                3 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
            let ours = Record::decode(&bytes);
            assert_eq!(
                ours.as_ref().ok(),
                canonical_by_postcard(&bytes).as_ref(),
                "{bytes:?}"
            );
            rejected += usize::from(ours.is_err());
        }
        assert!(rejected > 5_000, "only {rejected} mutations refused");
    }

    #[test]
    fn lock_mode_letters() {
        assert_eq!(LockMode::Shared.letter(), 'S');
        assert_eq!(LockMode::Exclusive.letter(), 'X');
    }
}
