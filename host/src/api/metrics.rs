//! `GET /metrics`: the server's figures in Prometheus text format
//! (`prometheus-client`), for monitoring.
//!
//! Kept as the trail grows (a follower of its live end, so every figure
//! comes from what was recorded): per agent, how long runways waited
//! (queued → cleared) and ran (started → landed), and how attempts ended;
//! plugin loads and refusals; API refusals. Read at each scrape: runways by
//! state, each agent's circuit breaker (`runway_breaker_state`: 0
//! closed, 1 half-open, 2 open; its moves `runway_breaker_transitions`),
//! locks held and waiters per dataset, audit records appended and
//! durable, records not yet under a signed checkpoint, and fsync latency.
//! Counters count from the server's start.
//!
//! A series never vanishes once it has a meaning: every runway state is
//! given (0 when no runway is in it), and every dataset a lock was ever
//! taken on this session keeps its `locks_held` (both modes) and
//! `lock_waiters` series, 0 once released. `runway_build_info` names the
//! version; the process's CPU, memory, threads and open files follow under
//! the usual unprefixed `process_*` names ([`process`]).

mod process;

use std::collections::BTreeSet;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use runway_audit::latency::Latency;
use runway_audit::{Event, Follow, LockMode, Record, State as RunwayState};

use super::events::Events;
use crate::controller::{Controller, Host};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    agent: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatasetLabels {
    dataset: String,
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatasetLabel {
    dataset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    agent: String,
    to: String,
}

type Seconds = Family<AgentLabel, Histogram>;

/// The figures kept as the trail grows.
pub struct Metrics {
    wait: Seconds,
    run: Seconds,
    outcomes: Family<OutcomeLabels, Counter>,
    plugin_loads: Counter,
    plugin_refusals: Counter,
    api_refusals: Counter,
    /// Circuit breaker moves, per agent and the state moved to.
    breaker_moves: Family<BreakerLabels, Counter>,
    /// When each runway last queued and last took off (Unix ns), and its
    /// agent: the starts of the waits and runs still open.
    open: Mutex<HashMap<String, Open>>,
    /// Every dataset a lock was granted on: their series stay, at 0 when
    /// free. As many as the loaded plugins' grants name.
    datasets: Mutex<BTreeSet<String>>,
}

#[derive(Default)]
struct Open {
    queued: Option<u64>,
    started: Option<u64>,
}

fn seconds() -> Seconds {
    // 1 ms to about 4.6 hours, ×4 apart: a run's time and a runway's wait
    // for its 01:00 start alike.
    Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 4.0, 13)))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            wait: seconds(),
            run: seconds(),
            outcomes: Family::default(),
            plugin_loads: Counter::default(),
            plugin_refusals: Counter::default(),
            api_refusals: Counter::default(),
            breaker_moves: Family::default(),
            open: Mutex::new(HashMap::new()),
            datasets: Mutex::new(BTreeSet::new()),
        }
    }
}

impl Metrics {
    /// Counts `record` in.
    fn observe(&self, record: &Record) {
        let e = &record.entry;
        let t = record.time_ns;
        let agent = || AgentLabel {
            agent: e.agent.clone(),
        };
        let ended = |outcome: &str| {
            self.outcomes
                .get_or_create(&OutcomeLabels {
                    agent: e.agent.clone(),
                    outcome: outcome.to_string(),
                })
                .inc();
        };
        self.note_datasets(record);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let secs = |from: u64| t.saturating_sub(from) as f64 / 1e9;
        match &e.event {
            Event::FilingV1(_) | Event::Filing { .. } => {
                open.entry(e.runway.clone()).or_default().queued = Some(t)
            }
            Event::Moved {
                to: RunwayState::Queued,
                ..
            } => open.entry(e.runway.clone()).or_default().queued = Some(t),
            Event::Cleared { .. } => {
                if let Some(from) = open.get_mut(&e.runway).and_then(|o| o.queued.take()) {
                    self.wait.get_or_create(&agent()).observe(secs(from));
                }
            }
            Event::Started { .. } => open.entry(e.runway.clone()).or_default().started = Some(t),
            Event::Succeeded { .. } | Event::Failed { .. } | Event::Moved { .. } => {
                let outcome = match &e.event {
                    Event::Succeeded { .. } => RunwayState::Succeeded,
                    Event::Failed { .. } => RunwayState::Failed,
                    Event::Moved { to, .. } => *to,
                    _ => unreachable!("matched above"),
                };
                if !(outcome.is_final() || outcome == RunwayState::Failed) {
                    return;
                }
                ended(outcome.name());
                if let Some(from) = open.get_mut(&e.runway).and_then(|o| o.started.take()) {
                    self.run.get_or_create(&agent()).observe(secs(from));
                }
                if outcome.is_final() {
                    open.remove(&e.runway);
                }
            }
            Event::PluginLoaded => {
                self.plugin_loads.inc();
            }
            Event::BreakerMoved { to, .. } => {
                let labels = BreakerLabels {
                    agent: e.agent.clone(),
                    to: to.clone(),
                };
                self.breaker_moves.get_or_create(&labels).inc();
            }
            Event::Rejected { .. } if e.runway.is_empty() && !e.agent.is_empty() => {
                self.plugin_refusals.inc();
            }
            Event::Rejected { reason } if reason.starts_with("API request refused") => {
                self.api_refusals.inc();
            }
            _ => {}
        };
    }

    /// Remembers the datasets `record` grants a lock on.
    fn note_datasets(&self, record: &Record) {
        let e = &record.entry;
        let mut datasets = self.datasets.lock().unwrap_or_else(PoisonError::into_inner);
        match &e.event {
            Event::Cleared { locks } => {
                for l in locks {
                    if !datasets.contains(&l.dataset) {
                        datasets.insert(l.dataset.clone());
                    }
                }
            }
            Event::LockGranted { .. } => {
                if let Some(d) = &e.dataset
                    && !datasets.contains(d)
                {
                    datasets.insert(d.clone());
                }
            }
            _ => {}
        }
    }

    /// Follows the trail's live end from the oldest record it holds (this
    /// session's first, unless many came before the API started), for as
    /// long as the server runs.
    pub async fn follow(self: Arc<Self>, events: Arc<Events>) {
        let mut grown = events.grown();
        let mut next = 0;
        loop {
            match events.tail().from(next, 1024) {
                Follow::Records(records) if records.is_empty() => {
                    if grown.changed().await.is_err() {
                        return;
                    }
                }
                Follow::Records(records) => {
                    for record in &records {
                        self.observe(record);
                    }
                    next = records.last().map_or(next, |r| r.seq + 1);
                }
                // Fell behind (the trail grew faster than this task ran):
                // what was missed is not counted.
                Follow::Behind { oldest } => next = oldest,
            }
        }
    }
}

/// A [`Latency`] as a Prometheus histogram in seconds.
#[derive(Debug)]
struct LatencyMetric(Latency);

impl EncodeMetric for LatencyMetric {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .buckets()
            .into_iter()
            .map(|(upper, n)| (upper.as_secs_f64(), n))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            self.0.sum.as_secs_f64(),
            self.0.count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text: wait and run time per agent, outcomes, runways by state, locks and waiters, audit records and fsync latency", content_type = "text/plain", body = String)))]
pub async fn scrape(
    State(m): State<Arc<Metrics>>,
    State(host): State<Arc<Host>>,
    State(controller): State<Controller>,
) -> axum::response::Response {
    let mut registry = Registry::with_prefix("runway");
    registry.register_with_unit(
        "wait",
        "Time from queued (filed, or back for a retry) to cleared, per agent",
        Unit::Seconds,
        m.wait.clone(),
    );
    registry.register_with_unit(
        "run",
        "Time from take-off to landing, per agent",
        Unit::Seconds,
        m.run.clone(),
    );
    registry.register(
        "attempt_outcomes",
        "Attempts ended, per agent and outcome (FAILED ones may be retried)",
        m.outcomes.clone(),
    );
    registry.register("plugin_loads", "Plugins loaded", m.plugin_loads.clone());
    registry.register(
        "plugin_refusals",
        "Plugins refused (bad grants, signature, component)",
        m.plugin_refusals.clone(),
    );
    registry.register(
        "api_refusals",
        "API requests refused (401, 403, and refused commands)",
        m.api_refusals.clone(),
    );

    registry.register(
        "build",
        "The server's version",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );

    let by_state: Family<StateLabel, Gauge> = Family::default();
    for s in RunwayState::ALL {
        by_state
            .get_or_create(&StateLabel {
                state: s.name().to_string(),
            })
            .set(0);
    }
    if let Ok(runways) = controller.list().await {
        for r in &runways {
            by_state
                .get_or_create(&StateLabel {
                    state: r.state.name().to_string(),
                })
                .inc();
        }
    }
    registry.register("runways", "Runways by state", by_state);
    registry.register(
        "breaker_transitions",
        "Circuit breaker moves, per agent and the state moved to",
        m.breaker_moves.clone(),
    );
    let breakers: Family<AgentLabel, Gauge> = Family::default();
    for a in controller.agents().await.unwrap_or_default() {
        let state = match a.breaker.as_str() {
            "open" => 2,
            "half-open" => 1,
            _ => 0,
        };
        breakers
            .get_or_create(&AgentLabel { agent: a.agent })
            .set(state);
    }
    registry.register(
        "breaker_state",
        "Each agent's circuit breaker: 0 closed, 1 half-open, 2 open",
        breakers,
    );
    let held: Family<DatasetLabels, Gauge> = Family::default();
    let waiting: Family<DatasetLabel, Gauge> = Family::default();
    let known = m
        .datasets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for dataset in known {
        for mode in [LockMode::Shared, LockMode::Exclusive] {
            held.get_or_create(&DatasetLabels {
                dataset: dataset.clone(),
                mode: mode.name().to_string(),
            })
            .set(0);
        }
        waiting.get_or_create(&DatasetLabel { dataset }).set(0);
    }
    for d in host.tower.board() {
        if let Some(mode) = d.held {
            held.get_or_create(&DatasetLabels {
                dataset: d.dataset.clone(),
                mode: mode.name().to_string(),
            })
            .set(d.holders.len() as i64);
        }
        waiting
            .get_or_create(&DatasetLabel { dataset: d.dataset })
            .set(d.waiting.len() as i64);
    }
    registry.register("locks_held", "Lock holders per dataset and mode", held);
    registry.register("lock_waiters", "Runways waiting per dataset", waiting);

    let audit = host.audit.stats();
    let durable = audit.next_seq - (audit.appended - audit.durable);
    registry.register(
        "audit_records_appended",
        "Audit records appended since the server started",
        ConstCounter::new(audit.appended),
    );
    registry.register(
        "audit_records_durable",
        "Audit records written and synced since the server started",
        ConstCounter::new(audit.durable),
    );
    registry.register(
        "audit_records_unsigned",
        "Durable audit records not yet under a signed checkpoint",
        prometheus_client::metrics::gauge::ConstGauge::new(
            durable.saturating_sub(audit.checkpointed) as i64,
        ),
    );
    registry.register_with_unit(
        "audit_fsync",
        "Time the audit writer's syncs took",
        Unit::Seconds,
        LatencyMetric(host.audit.sync_latency()),
    );

    // Which host answered (a standby relays its scrape to the leader).
    let origin = host.audit.origin().to_string();
    let mut host = Registry::default();
    process::register(&mut host);
    let info = prometheus_client::metrics::info::Info::new(vec![("host".to_string(), origin)]);
    host.register("runway_host", "The host whose figures these are", info);

    let mut body = String::new();
    let encoded = prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)
        .and_then(|()| prometheus_client::encoding::prometheus_text::encode(&mut body, &host));
    if let Err(e) = encoded {
        tracing::warn!("encoding metrics: {e}");
    }
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}
