//! The audit record: its schema, its one canonical postcard encoding, strict
//! decoding and its leaf hash.
//!
//! A [`Record`] is what lands on disk: an [`Entry`] (what happened, said by
//! the host) wrapped with the sequence number, time and the two chain links
//! the writer assigns. Its leaf hash is `SHA-256(0x00 ‖ postcard bytes)`, the
//! RFC 6962 leaf hash, so the same value later feeds a Merkle tree.
//!
//! The types are declared once, with `codec.rs`'s macros, which derive
//! their strict decoder, their encoded-size bound and their test generator
//! from the declaration. postcard accepts non-canonical input (overlong
//! varints) and ignores bytes after a value; [`Record::decode`] rejects
//! both, in one pass.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::codec::DecodeError;
use crate::codec::{Wire, decode_exact, wire_enum, wire_struct, wire_units};

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

wire_struct! {
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
}

wire_struct! {
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
}

wire_enum! {
    /// A filing, a runway state change, a lock change or a host call.
    ///
    /// postcard encodes the variant index: new variants go at the end, and
    /// none is ever removed or moved (old trails decode forever).
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
        /// A manifest was filed, all of it, in the first manifest layout
        /// (positional fields): decoded forever for old trails; hosts now
        /// write [`Event::Filing`].
        FilingV1(manifest: FiledManifest),
        /// A plan was filed as `runways` (their FILING records come before
        /// this one, in this order), by `by` from `source` (an inbox file, the
        /// API, `runway run`); `digest` is SHA-256 of the plan as received.
        PlanFiled {
            by: String,
            source: String,
            digest: Hash,
            runways: Vec<String>,
        },
        /// A manifest was filed, all of it: the trail alone can rebuild the
        /// queue, and an auditor sees what was asked. `manifest` is one JSON
        /// object as filed, in the controller's layout number `schema` (its
        /// keys are the controller's; here it is text of at most
        /// [`MANIFEST_MAX`] bytes), `input` the input handed to the agent
        /// (capped at filing). A new manifest key needs no new variant.
        Filing {
            schema: u32,
            manifest: String,
            input: Vec<u8>,
        },
        /// A join of this runway's children ended: `mode` as the WIT names
        /// it (`all`, `any`, `first-success`, `quorum(2)`), each child as
        /// the join found it, in the order asked, and whether the wait ran
        /// out first. The children it cancels (a first success's losers,
        /// those still going) have records of their own after this one
        /// saying how they ended.
        Joined {
            mode: String,
            children: Vec<JoinedChild>,
            timed_out: bool,
        },
        /// A run's output, kept on the trail because others read it (a
        /// child's parent, after a restart too): durable before the run's
        /// COMMITTING (or its SUCCEEDED, when it wrote nothing), at most
        /// [`OUTPUT_MAX`] bytes. Its SUCCEEDED carries its digest.
        Returned { output: Vec<u8> },
        /// An event the run published (`events.publish`) on `topic`, at
        /// most [`PAYLOAD_MAX`] bytes of `payload`: written with the run's
        /// landing, before its COMMITTING (or its SUCCEEDED when it wrote
        /// nothing). It is delivered — triggers on the topic see it — only
        /// when the attempt that published it SUCCEEDED; an attempt that
        /// failed delivers none of its events.
        Published { topic: String, payload: Vec<u8> },
        /// What attempt `attempt` of the runway cost, appended by the
        /// landing stage right before that attempt's end record (SUCCEEDED,
        /// FAILED, or the MOVED to TIMED_OUT or CANCELLED), under the same
        /// durable wait: `fuel` the run burnt, `wall_us` from its take-off
        /// (its store made) to its landing (this record), on the monotonic
        /// clock, and `bytes` the keys and values of its change set that
        /// committed (0 when nothing committed). The controller sums these
        /// per filing, agent and trigger, and holds a plan to its budget
        /// with the sums. A run a crash cut short has none.
        Cost {
            attempt: u32,
            fuel: u64,
            wall_us: u64,
            bytes: u64,
        },
        /// Outputs flowed into this runway's input (`from` references),
        /// written once its dependencies ended and before its run is
        /// cleared (again after a restart, resolved anew from the trail):
        /// each output passed, and SHA-256 of the input as resolved, the
        /// bytes its run is handed.
        Passed {
            inputs: Vec<PassedOutput>,
            input: Hash,
        },
        /// This runway's condition (`when`, CEL) was read once its
        /// dependencies ended: the expression, the outputs it read (whole,
        /// `path` empty) and its value as CEL text: `true` (it goes on),
        /// `false` (SKIPPED follows), or another value or the evaluation's
        /// error (FAILED follows, naming it).
        Decided {
            expression: String,
            read: Vec<PassedOutput>,
            value: String,
        },
        /// A circuit breaker of agent `entry.agent` moved (a host record:
        /// no runway), written by the controller when it decided so:
        /// `from` and `to` are `closed`, `open` or `half-open`; `failures`
        /// the failed or timed-out attempts of the agent it counted within
        /// the last `within_ms` (of the grants' `failures`), `reason` the
        /// decision in words (the probe runway that closed or reopened it);
        /// `until_ns` when open: the controller's time it goes half-open.
        BreakerMoved {
            from: String,
            to: String,
            reason: String,
            failures: u32,
            within_ms: u64,
            until_ns: Option<u64>,
        },
        /// The tower picked agent `picked` (now `entry.agent`) for this
        /// runway's next attempt among the manifest's candidates, by
        /// `prefer` (`fastest`, `reliable`, `least-loaded`), from the
        /// figures it read for each candidate, in the manifest's order.
        Routed {
            prefer: String,
            picked: String,
            figures: Vec<RouteFigures>,
        },
        /// A trigger was filed by `by` (or filed again under its id,
        /// replacing its definition and keeping its history): `definition`
        /// is all of it as one JSON object — `id`, `on` (what fires it) and
        /// `runway` (the manifests each firing files) — text of at most
        /// [`MANIFEST_MAX`] bytes. Nothing fires at filing. `since_ns` is
        /// the controller's clock then (Unix nanoseconds): a schedule's
        /// times before it are not due.
        TriggerFiled {
            id: String,
            by: String,
            definition: String,
            since_ns: u64,
        },
        /// A person (`by`) paused trigger `id`: it does not fire until
        /// resumed, and what happens meanwhile is not caught up.
        TriggerPaused { id: String, by: String },
        /// A person (`by`) resumed trigger `id` at `since_ns` (the
        /// controller's clock, Unix nanoseconds): a schedule's times before
        /// it are not caught up.
        TriggerResumed {
            id: String,
            by: String,
            since_ns: u64,
        },
        /// A person (`by`) removed trigger `id`; it never fires again.
        TriggerRemoved { id: String, by: String },
        /// Trigger `id` fired for `key`, its dedup key (a scheduled time in
        /// RFC 3339, `commit:SEQ` for the COMMITTED record SEQ, `event:SEQ`
        /// for a published event): durable before the runways it files,
        /// whose FILING records name the trigger and key (`fired_by`), so a
        /// restart files those not filed yet and never fires a key twice.
        /// `cause` is the JSON object the runways get as their input's
        /// `trigger` (at most [`MANIFEST_MAX`] bytes); `refused` says why
        /// nothing was filed (its runways no longer file: an agent gone).
        TriggerFired {
            id: String,
            key: String,
            cause: String,
            refused: Option<String>,
        },
        /// Trigger `id` did not fire for `key`: the firing would have been
        /// `depth` links down a chain of triggers firing each other
        /// (runways one fired committing or publishing where another
        /// watches), past the host's cap. `runway` is the one whose commit
        /// or event would have fired it. The chain ends here; the key is
        /// settled, never fired later, not even after a restart.
        TriggerChainCut {
            id: String,
            key: String,
            depth: u32,
            runway: String,
        },
        /// Hosts sharing one database (DESIGN.md, "Beyond one machine"):
        /// the host whose shard holds this record became the leader for
        /// `term`, and from here on clears runways under it. Taking over ended every earlier term:
        /// `accepted` names, per host's shard (its origin), the last of its
        /// records the shared history took — records after it under an
        /// earlier term were refused by the database and never happened
        /// for the other hosts.
        Leading { term: u64, accepted: Vec<Accepted> },
        /// A crew's run (a standby flying work the leader posted): its
        /// claim was taken away before all its records reached the shared
        /// history, so this shard's records of the attempt, from its
        /// STARTED on, happened here alone — the auditor sets them aside.
        Abandoned { reason: String },
    }
}

wire_struct! {
    /// How far the shared history took one shard ([`Event::Leading`]):
    /// its last record there, by the shard's origin and sequence number.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub struct Accepted {
        pub origin: String,
        pub seq: u64,
    }
}

wire_struct! {
    /// One runway's output as another read it ([`Event::Passed`],
    /// [`Event::Decided`]): whose, which field (a dotted path; empty for
    /// the whole output), and SHA-256 of that runway's whole output (its
    /// SUCCEEDED record's digest).
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub struct PassedOutput {
        pub runway: String,
        pub path: String,
        pub digest: Hash,
    }
}

wire_struct! {
    /// One candidate's figures as a routing pick read them
    /// ([`Event::Routed`]), over the controller's sliding window.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub struct RouteFigures {
        pub agent: String,
        /// Attempts in the window.
        pub runs: u32,
        pub succeeded: u32,
        /// Median run time of the window's attempts (none without runs).
        pub p50_ms: Option<u64>,
        /// Runs in the air now.
        pub in_flight: u32,
        /// `closed`, `open` or `half-open`: an open one is left out.
        pub breaker: String,
    }
}

wire_struct! {
    /// One child as a join found it ([`Event::Joined`]).
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub struct JoinedChild {
        pub runway: String,
        pub state: crate::State,
    }
}

wire_struct! {
    /// A manifest as filed in the first layout ([`Event::FilingV1`]), its
    /// times resolved at filing.
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
}

wire_struct! {
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
}

wire_struct! {
    /// A lock a manifest asks for.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub struct LockRequest {
        pub dataset: String,
        pub mode: LockMode,
    }
}

wire_struct! {
    /// A lock the dispatcher granted, with its fencing token.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub struct LockGrant {
        pub dataset: String,
        pub mode: LockMode,
        pub token: u64,
    }
}

wire_units! {
    /// Shared (readers) or exclusive (one writer).
    // Plan files spell the modes `shared` / `exclusive`; postcard encodes the
    // variant index, so the names never reach the audit bytes.
    #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[serde(rename_all = "lowercase")]
    pub enum LockMode {
        Shared,
        Exclusive,
    }
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

wire_units! {
    /// Which host call was made. New calls go at the end (postcard encodes
    /// the index); [`Call::ALL`] lists them all.
    #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Call {
        Read,
        Write,
        Delete,
        List,
        Log,
        Info,
        Count,
        Delegate,
        Join,
        Handoff,
        Progress,
        Cancel,
        Publish,
    }
}

impl Call {
    /// Lower-case name of the call, as in the WIT interface.
    pub fn name(self) -> &'static str {
        match self {
            Call::Read => "read",
            Call::Write => "write",
            Call::Delete => "delete",
            Call::List => "list",
            Call::Log => "log",
            Call::Info => "info",
            Call::Count => "count",
            Call::Delegate => "delegate",
            Call::Join => "join",
            Call::Handoff => "handoff",
            Call::Progress => "progress",
            Call::Cancel => "cancel",
            Call::Publish => "publish",
        }
    }
}

wire_enum! {
    /// How a host call ended; the errors mirror the guest-visible WIT errors.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
    pub enum Outcome {
        Ok,
        Denied(reason: String),
        LockLost(reason: String),
        NotFound(reason: String),
        Invalid(reason: String),
        Limit(reason: String),
    }
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

/// A record could not be encoded (postcard refused it; not expected for this schema).
#[derive(Debug, thiserror::Error)]
#[error("could not encode audit record: {0}")]
pub struct EncodeError(#[from] postcard::Error);

/// Most bytes of the manifest text of a [`Event::Filing`] record; the writer
/// refuses a longer one and the verifier does not decode it.
pub const MANIFEST_MAX: usize = 64 << 10;

/// Most bytes of a run's output in a [`Event::Returned`] record (the
/// host's largest output).
pub const OUTPUT_MAX: usize = 1 << 20;

/// Most bytes of an event's payload in a [`Event::Published`] record (the
/// host's cap on `events.publish`).
pub const PAYLOAD_MAX: usize = 64 << 10;

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
    /// counted without encoding (it runs on every append): each field at
    /// its widest, derived from the schema's declaration.
    pub fn encoded_bound(&self) -> usize {
        // seq, time_ns, prev, prev_dataset: the writer's fields.
        2 * Wire::bound(&0u64)
            + Wire::bound(&ZERO_HASH)
            + Wire::bound(&Some(ZERO_HASH))
            + Wire::bound(self)
    }
}

impl Event {
    /// What in this event is over a cap of the schema's own (the manifest
    /// text): its length and the cap.
    pub fn over_cap(&self) -> Option<(usize, usize)> {
        match self {
            Event::Filing { manifest, .. } if manifest.len() > MANIFEST_MAX => {
                Some((manifest.len(), MANIFEST_MAX))
            }
            Event::Returned { output } if output.len() > OUTPUT_MAX => {
                Some((output.len(), OUTPUT_MAX))
            }
            Event::Published { payload, .. } if payload.len() > PAYLOAD_MAX => {
                Some((payload.len(), PAYLOAD_MAX))
            }
            Event::TriggerFiled { definition, .. } if definition.len() > MANIFEST_MAX => {
                Some((definition.len(), MANIFEST_MAX))
            }
            Event::TriggerFired { cause, .. } if cause.len() > MANIFEST_MAX => {
                Some((cause.len(), MANIFEST_MAX))
            }
            _ => None,
        }
    }
}

impl Record {
    /// Decodes exactly one record from `bytes`, rejecting anything that is
    /// not its canonical encoding (or over a cap of the schema).
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let record: Record = decode_exact(bytes)?;
        if record.entry.event.over_cap().is_some() {
            return Err(DecodeError::Malformed("a field over its cap"));
        }
        Ok(record)
    }

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
    use crate::codec::Gen;

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
            let record = g.of::<Record>();
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
            let mut bytes = g.of::<Record>().encode().expect("encode");
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

    /// Every variant of every schema enum comes out of the generator, so a
    /// new event, call or outcome is in the property tests above.
    #[test]
    fn the_generator_reaches_every_variant() {
        let mut g = Gen(0x5eed_0003);
        let mut events = std::collections::BTreeSet::new();
        let mut calls = std::collections::BTreeSet::new();
        let mut outcomes = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            let event: Event = g.of();
            if let Event::Call { call, outcome, .. } = &event {
                calls.insert(call.variant_name());
                outcomes.insert(outcome.variant_name());
            }
            events.insert(event.variant_name());
        }
        let all = |names: &[&'static str]| names.iter().copied().collect();
        assert_eq!(events, all(Event::VARIANTS));
        assert_eq!(calls, all(Call::VARIANTS));
        assert_eq!(outcomes, all(Outcome::VARIANTS));
    }

    /// The bound derived from the schema holds over the real encoding of
    /// records of every variant, at the widest sequence number and time.
    #[test]
    fn the_size_bound_holds_for_every_variant() {
        let mut g = Gen(0x5eed_0004);
        for _ in 0..20_000 {
            let record = Record {
                seq: u64::MAX,
                time_ns: u64::MAX,
                prev_dataset: Some(ZERO_HASH),
                ..g.of()
            };
            let encoded = record.encode().expect("encode").len();
            let bound = record.entry.encoded_bound();
            assert!(encoded <= bound, "{record:?}: {encoded} > {bound}");
        }
    }

    /// Variant indices are positions on the wire: the list is append-only.
    #[test]
    fn variants_keep_their_wire_positions() {
        assert_eq!(
            Event::VARIANTS,
            [
                "Filed",
                "Rejected",
                "Cleared",
                "LockGranted",
                "Started",
                "Call",
                "Committed",
                "LockReleased",
                "Succeeded",
                "Failed",
                "PluginLoaded",
                "PluginUnloaded",
                "Committing",
                "Recovered",
                "Moved",
                "Paused",
                "Resumed",
                "FilingV1",
                "PlanFiled",
                "Filing",
                "Joined",
                "Returned",
                "Published",
                "Cost",
                "Passed",
                "Decided",
                "BreakerMoved",
                "Routed",
                "TriggerFiled",
                "TriggerPaused",
                "TriggerResumed",
                "TriggerRemoved",
                "TriggerFired",
                "TriggerChainCut",
                "Leading",
                "Abandoned",
            ]
        );
        assert_eq!(Call::ALL.len(), Call::VARIANTS.len());
        for (i, call) in Call::ALL.iter().enumerate() {
            assert_eq!(postcard::to_stdvec(call).expect("encode"), [i as u8]);
        }
    }

    #[test]
    fn a_manifest_over_its_cap_does_not_decode() {
        let mut record = sample();
        record.entry.event = Event::Filing {
            schema: 2,
            manifest: "x".repeat(MANIFEST_MAX + 1),
            input: vec![],
        };
        let bytes = record.encode().expect("encode");
        assert_eq!(
            Record::decode(&bytes),
            Err(DecodeError::Malformed("a field over its cap"))
        );
        record.entry.event = Event::Filing {
            schema: 2,
            manifest: "x".repeat(MANIFEST_MAX),
            input: vec![1, 2],
        };
        let bytes = record.encode().expect("encode");
        assert_eq!(Record::decode(&bytes), Ok(record));
    }
}
