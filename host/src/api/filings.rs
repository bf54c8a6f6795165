//! `GET /api/filings`: the plans filed, as the trail's PLAN records say
//! them — which runways were filed together, by whom, from where — for
//! the status page to group a filing's runways and draw its graph.
//!
//! The controller keeps them ([`crate::controller::FilingReport`]: folded
//! from the trail at start, kept as it files), so a page load reads no
//! trail, and the answer is the same before and after a restart.

use axum::Json;
use axum::extract::State;

use super::calls::Api;
use super::refusal::Refusal;
use super::views::{FilingList, FilingView};

/// Every plan filed, oldest first.
#[utoipa::path(get, path = "/api/filings", tag = "runways",
    responses((status = 200, description = "The plans filed, oldest first (the trail's PLAN records): each with its runway ids, who filed it and from where", body = FilingList)))]
pub async fn filings(State(api): State<Api>) -> Result<Json<FilingList>, Refusal> {
    let filings = api.controller.filings().await?;
    let filings = filings.into_iter().map(FilingView::from).collect();
    Ok(Json(FilingList { filings }))
}
