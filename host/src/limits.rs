//! Every limit on a run, with its value — on the run as a whole, never on
//! one piece of it: the fixed ones, and the per-plugin [`Limits`] a grants
//! file sets (memory, fuel, window, output, log) with their maxima;
//! `sandbox::limiter` enforces both.
//!
//! - **Memory**: one budget for the whole run, shared by every linear memory
//!   and every table of every instance it creates (a table element counts
//!   [`TABLE_ELEMENT_BYTES`]); the counts of instances, memories and tables
//!   are capped too ([`MAX_CORE_INSTANCES_PER_RUN`], …). The limiter
//!   remembers that it refused, so the run's failure says why.
//! - **CPU**: a fuel budget.
//! - **Wall time**: an epoch deadline, checked by wasmtime at every loop
//!   back-edge and function entry; WASI clock waits are cut at the same
//!   deadline (`sandbox::hostcalls::clocks`), so a guest blocked in a sleep is stopped
//!   on time too.
//! - **Transfers**: hostcall fuel, so a guest cannot make the host allocate
//!   more than [`MAX_TRANSFER`] bytes for one call.
//! - **Staging**: values, keys and key bytes a run may stage
//!   ([`MAX_STAGED`], [`MAX_STAGED_KEYS`]); the commit happens inside what
//!   is left of the window.
//! - **Texts**: everything a guest says that the host keeps (error messages,
//!   failure reasons) is cut to [`MAX_REASON`] at its source, by [`cut`].
//! - **Plans**: runways per plan, `action`, `after`, lock set, input and
//!   retry sizes ([`MAX_RUNWAYS`], …), checked at filing.
//! - **The API's doors**: refused requests per peer
//!   ([`REFUSAL_BURST`], then 429 and one summary record per
//!   [`REFUSAL_SUMMARY_INTERVAL`]), a reserve on the audit disk that
//!   refusal records leave alone ([`AUDIT_RESERVE_MIB`]), the time a
//!   connection has to send its headers ([`HEADER_TIMEOUT`]), and the event
//!   streams reading from disk at once.
//!
//! The epoch ticks every [`TICK`] on a thread owned by the runtime.

use std::time::Duration;

use serde::Deserialize;

/// How often the epoch advances.
pub const TICK: Duration = Duration::from_millis(10);
/// Largest value a guest may write in one call.
pub const MAX_VALUE: usize = 1 << 20;
/// Most bytes one run may stage before it commits: values plus keys plus
/// the store's bookkeeping per change (`store::ENTRY_BYTES`).
pub const MAX_STAGED: usize = 512 << 20;
/// Most changes (writes and deletes of distinct keys) one run may stage.
pub const MAX_STAGED_KEYS: usize = 250_000;
/// Most bytes a guest may hand the host in one call (value + names + slack).
pub const MAX_TRANSFER: usize = MAX_VALUE + (64 << 10);
/// Most core instances one run may create (a Rust component needs a few).
pub const MAX_CORE_INSTANCES_PER_RUN: u32 = 32;
/// Most linear memories one run may create, all instances together.
pub const MAX_MEMORIES_PER_RUN: u32 = 4;
/// Most tables one run may create, all instances together.
pub const MAX_TABLES_PER_RUN: u32 = 16;
/// Bytes a table element counts towards the run's memory budget.
pub const TABLE_ELEMENT_BYTES: usize = 16;
/// Longest failure or refusal reason kept (and audited), and written to
/// the inbox's `rejected/` (longer ones are cut, ending in `…`).
pub const MAX_REASON: usize = 2048;

/// Most runways one plan may file.
pub const MAX_RUNWAYS: usize = 10_000;
/// Longest `action`, in bytes; it must be printable (nothing
/// `runway_audit::render::needs_escape` would escape).
pub const MAX_ACTION_BYTES: usize = 128;
/// Most ids one runway's `after` may name.
pub const MAX_AFTER: usize = 256;
/// Most datasets one runway may lock.
pub const MAX_LOCKS: usize = 64;
/// Largest `input` of one runway, once encoded as JSON.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Longest condition (`when`, a CEL expression) of one runway, in bytes.
pub const MAX_WHEN_BYTES: usize = 4096;
/// Most labels one runway may carry.
pub const MAX_LABELS: usize = 16;
/// Longest label key or value, in bytes (printable, a key without `=`).
pub const MAX_LABEL_BYTES: usize = 128;
/// Most attempts a retry policy may ask for.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest parser message quoted in a plan's refusal (escaped, cut).
pub const MAX_PROBLEM_CHARS: usize = 120;
/// Most runs alive at once; `--workers` may not ask for more. The pool
/// holds this many runs' worth of every slot kind, each run capped at its
/// share, so a run can never take a neighbour's slots.
pub const MAX_LIVE_RUNS: u32 = 64;
/// Runs waiting on their children at once (a parent in `join` holds no
/// worker, but its instance stays in the pool): the pool holds this many
/// runs' worth of slots beside [`MAX_LIVE_RUNS`]. A run that would wait
/// past it has its delegation refused (`limit`), never a worker held.
pub const MAX_WAITING_PARENTS: u32 = 192;
/// Trees in the air at once: roots whose agent may delegate, cleared and
/// not landed. Past it such roots wait for one to land, so the waiting
/// places ([`MAX_WAITING_PARENTS`]) always leave room for the trees in
/// flight to grow, however fast new roots come.
pub const MAX_TREES_IN_AIR: usize = MAX_WAITING_PARENTS as usize / 2;
/// Deepest delegation tree a grants file may allow (`[delegate] depth`).
pub const MAX_DELEGATE_DEPTH: u32 = 16;
/// Most children of one run a grants file may allow.
pub const MAX_CHILDREN: u32 = 10_000;
/// Most runways in one delegation tree, its root excluded.
pub const MAX_DESCENDANTS: u32 = 100_000;
/// Most children one `join` may name.
pub const MAX_JOIN: usize = MAX_CHILDREN as usize;
/// Longest message of one `progress` call kept (cut beyond).
pub const MAX_PROGRESS_MESSAGE: usize = 256;
/// Most events one run may publish (`events.publish`).
pub const MAX_EVENTS_PER_RUN: usize = 1000;
/// Most payload bytes one event may carry (the audit crate's
/// `PAYLOAD_MAX`, which its records are checked against).
pub const MAX_EVENT_PAYLOAD: usize = 64 << 10;
/// Most payload bytes one run may publish in all.
pub const MAX_EVENTS_BYTES: usize = 1 << 20;
/// Most linear memory any run may grow to; grants may only lower it.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Largest `memory_mib`: the pool's memory slot size.
pub const MAX_MEMORY_MIB: u64 = (MAX_MEMORY_BYTES >> 20) as u64;
/// Largest `fuel` (about a day of CPU; wasmtime keeps fuel as an `i64`).
pub const MAX_FUEL: u64 = 1_000_000_000_000_000;
/// Largest `window_secs`: one day.
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// Largest `wall` of a plan's `[budget]` (run time summed over its runs):
/// 366 days.
pub const MAX_BUDGET_WALL_SECS: u64 = 366 * 86_400;
/// Largest `max_output_kib`: an output travels back in one host transfer.
pub const MAX_OUTPUT_KIB: u64 = 1024;
/// Largest `max_log_kib`.
pub const MAX_LOG_KIB: u64 = 16 << 10;
/// The latest moment a manifest may name — an `earliest_start` or
/// `expires`, or what an `in …` or a daily time resolves to at filing —
/// as Unix seconds: 2500-01-01T00:00:00Z. The trail keeps times as
/// unsigned 64-bit Unix nanoseconds, which end in 2554; a round year well
/// inside that keeps every accepted time exact across a restart.
pub const LATEST_TIME_SECS: i64 = 16_725_225_600;

/// Per-run limits of one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub memory_mib: u64,
    pub fuel: u64,
    pub window_secs: u64,
    pub max_output_kib: u64,
    pub max_log_kib: u64,
    /// Runs of this agent in the air at once (`None`: only the host's
    /// worker limit).
    pub max_running: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            fuel: 10_000_000_000,
            window_secs: 60,
            max_output_kib: 1024,
            max_log_kib: 256,
            max_running: None,
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
    }
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
    pub fn max_output(&self) -> usize {
        (self.max_output_kib as usize).saturating_mul(1024)
    }
    pub fn max_log(&self) -> usize {
        (self.max_log_kib as usize).saturating_mul(1024)
    }
}

/// Refused API requests (401, 403) one peer gets audited one by one in a
/// burst: its token bucket's size. Past it the peer is answered 429 and
/// its refusals are summed ([`REFUSAL_SUMMARY_INTERVAL`]).
pub const REFUSAL_BURST: u32 = 20;
/// A peer's refusal bucket gains one token this often.
pub const REFUSAL_REFILL: Duration = Duration::from_secs(1);
/// Refusals past a peer's bucket go on the trail as one summary record
/// per peer and interval (count, first and last time, routes).
pub const REFUSAL_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);
/// Peers whose refusals are tracked one by one; past it, new peers share
/// one bucket and one summary ("other peers").
pub const MAX_REFUSING_PEERS: usize = 4096;
/// Routes a refusal summary names one by one (the others are counted).
pub const MAX_SUMMARY_ROUTES: usize = 8;
/// Free space (MiB) on the audit disk that refusal records leave to
/// lifecycle and host-call records: below it, refusals are only summed
/// in memory until there is room again (`serve --audit-reserve-mib`).
pub const AUDIT_RESERVE_MIB: u64 = 64;
/// Longest a connection may take to send a request's headers (the first
/// request's included) before it is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest journal snapshot a start reads (`controller/snapshot.rs`); a
/// larger one is set aside and the trail read whole.
pub const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;

/// Event streams reading older records from disk at once; others wait.
pub const MAX_STREAM_DISK_READERS: usize = 4;
/// An event stream reading from disk whose client takes nothing for this
/// long is ended (the client resumes with `Last-Event-ID`).
pub const STREAM_STALL: Duration = Duration::from_secs(30);

/// Routing and agent health read each agent's last this many attempts
/// (its sliding window, counted in runs so that an idle agent keeps its
/// figures): median and p95 run time, the success ratio routing reads.
pub const FIGURES_WINDOW_RUNS: usize = 50;
/// Most candidates a routed manifest may name (`agent = { any = [...] }`).
pub const MAX_ROUTE_CANDIDATES: usize = 16;
/// A breaker's `failures`, at most.
pub const MAX_BREAKER_FAILURES: u32 = 1000;
/// A breaker's `within` and `open_for`, at most (a day).
pub const MAX_BREAKER_SPAN: Duration = Duration::from_secs(86_400);
/// Most triggers one host keeps (filed and not removed).
pub const MAX_TRIGGERS: usize = 100_000;
/// Most missed times of a schedule fired at once after downtime with
/// `catch_up = "all"` (the most recent ones; older ones are skipped).
pub const MAX_CATCH_UP: usize = 100;
/// A scheduled time this late or less is on time, not missed: it fires
/// under every catch-up policy, `none` included.
pub const SCHEDULE_GRACE: Duration = Duration::from_secs(60);
/// Most events one debounced firing collects; more start the next one
/// (with [`MAX_CAUSE_BYTES`], its cause fits in its record).
pub const MAX_DEBOUNCED: usize = 100;
/// Most bytes of event payloads a topic trigger's firing lists in its
/// cause (its record's and its runways' `trigger`); events past it are
/// listed by digest only.
pub const MAX_CAUSE_BYTES: usize = 40 << 10;
/// Longest debounce window a topic trigger may ask for.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(86_400);
/// Deepest chain of triggers firing each other: a schedule's or an
/// operator's work fires at depth 1, and a firing caused by the commit or
/// event of a runway fired at depth d is at depth d + 1. Two commit
/// triggers whose runways write where the other watches (A's runway
/// commits to B's dataset, B's to A's) would otherwise fire each other
/// without end, each firing filing runways, taking locks and writing
/// records; a pipeline of triggers deeper than this is a loop, not a
/// design. The firing past it is not made (a TRIGGER CHAIN CUT record
/// names it).
pub const MAX_TRIGGER_CHAIN: u32 = 16;
/// Most upcoming firings a schedule shows (`GET /api/triggers`).
pub const UPCOMING_FIRINGS: usize = 5;
/// Attempts of one runway whose log lines and output the controller keeps
/// to show (`runway show`, the page): the first and the latest, this many
/// in all, however many a retry policy allows ([`MAX_ATTEMPTS`]).
pub const ATTEMPTS_KEPT: usize = 8;
/// Most log lines kept of one attempt (each at most 4 KiB: the sandbox
/// cuts longer ones).
pub const ATTEMPT_LOG_LINES: usize = 500;
/// Most bytes of log lines kept of one attempt (the default grant's
/// `max_log_kib`): an attempt's kept log is at most this, so a runway's at
/// most [`ATTEMPTS_KEPT`] times it.
pub const ATTEMPT_LOG_BYTES: usize = 256 << 10;
/// Most bytes of an attempt's output kept beside its log (a preview; its
/// digest names all of it).
pub const ATTEMPT_OUTPUT_BYTES: usize = 8 << 10;

/// `text` cut to at most `max` bytes at a character boundary, ending in
/// `…` when cut: the one way a capped text is cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = '…'.len_utf8();
    let mut end = max.saturating_sub(ellipsis);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
