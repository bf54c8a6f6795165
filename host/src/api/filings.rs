//! `GET /api/filings`: the plans filed, as the trail's PLAN records say
//! them — which runways were filed together, by whom, from where — for
//! the status page to group a filing's runways and draw its graph.
//!
//! Read like `/api/events`' backlog: the last [`MAX_BACKLOG`] host-level
//! transitions (plans, pauses, resumes), from the trail's live end and,
//! for what memory no longer holds, from disk.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::events::{Events, Filter, MAX_BACKLOG, timeline};
use super::refusal::{ErrorBody, Kind, Refusal};
use super::views::{FilingList, FilingView};

/// The fields of a PLAN record's JSON that a filing shows.
#[derive(Deserialize)]
struct PlanRecord {
    seq: u64,
    time_ns: u64,
    event: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    runways: Vec<String>,
}

/// The filings among the last host-level transitions, oldest first.
#[utoipa::path(get, path = "/api/filings", tag = "runways",
    responses((status = 200, description = "The plans filed, oldest first (the trail's last PLAN records): each with its runway ids, who filed it and from where", body = FilingList),
        (status = 404, description = "This server keeps no live audit tail", body = ErrorBody)))]
pub async fn filings(
    State(events): State<Option<Arc<Events>>>,
) -> Result<Json<FilingList>, Refusal> {
    let events = events
        .ok_or_else(|| Refusal::new(Kind::NotFound, "this server keeps no live audit tail"))?;
    let read = tokio::task::spawn_blocking(move || {
        // Host-level records name no agent.
        let host = Filter {
            agent: Some(String::new()),
            ..Filter::default()
        };
        timeline(&events, host, false, MAX_BACKLOG)
    })
    .await
    .map_err(|e| Refusal::new(Kind::HostFault, e.to_string()))?;
    let filings = read
        .into_iter()
        .filter_map(|v| serde_json::from_value::<PlanRecord>(v).ok())
        .filter(|p| p.event == "plan_filed")
        .map(|p| FilingView {
            seq: p.seq,
            at: runway_audit::render::clock(p.time_ns),
            by: p.by,
            source: p.source,
            digest: p.digest,
            runways: p.runways,
        })
        .collect();
    Ok(Json(FilingList { filings }))
}
