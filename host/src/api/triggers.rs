//! The triggers' doors: the view a trigger is shown as (the API's JSON,
//! the MCP tools', the CLI's), the calls behind them, and the HTTP routes
//! `GET /api/triggers`, `GET /api/triggers/{id}` (view) and `POST
//! /api/triggers/{id}/pause|resume|remove` (control, like cancel; no
//! body). Pausing, resuming and removing are the controller's to allow
//! ([`crate::controller::policy`]); a refusal is audited in the caller's
//! name, as every command's is.

use axum::Json;
use axum::extract::{Extension, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::calls::Api;
use super::extract::PathOf;
use super::refusal::{ErrorBody, Refusal};
use super::views::Done;
use crate::controller::{Command, SpentView, TriggerReport};

/// A trigger: what fires it, how often it has, what it files and what
/// that has cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TriggerView {
    pub id: String,
    /// Its `on` table as filed (`schedule`, `zone`, `catch_up`; `commit`;
    /// `topic`, `debounce`).
    #[schema(value_type = Object)]
    pub on: serde_json::Value,
    /// `schedule`, `commit` or `topic`.
    pub kind: String,
    /// `active` or `paused`.
    pub state: String,
    /// Firings so far.
    pub fired: u64,
    /// When it last fired (RFC 3339), null if never.
    pub last_fired: Option<String>,
    /// A schedule's next firings (RFC 3339, up to 5); empty for other
    /// kinds and while paused.
    pub next: Vec<String>,
    /// The plan-local ids of the runways each firing files.
    pub runways: Vec<String>,
    /// Runways its firings filed, since the trail began.
    pub filed: u64,
    /// What their runs spent: attempts taken off, fuel, wall time, bytes
    /// committed (the sum of their COST records).
    pub spent: SpentView,
}

impl From<TriggerReport> for TriggerView {
    fn from(t: TriggerReport) -> TriggerView {
        TriggerView {
            id: t.id,
            on: t.on,
            kind: t.kind.to_string(),
            state: if t.paused { "paused" } else { "active" }.to_string(),
            fired: t.fired,
            last_fired: t.last_fired.map(|at| format!("{at:.3}")),
            next: t.next.iter().map(ToString::to_string).collect(),
            runways: t.runways,
            filed: t.filed,
            spent: t.spent.into(),
        }
    }
}

/// Every trigger (the MCP tool's answer is an object).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerList {
    pub triggers: Vec<TriggerView>,
}

/// What may be done to a trigger.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Pause,
    Resume,
    Remove,
}

impl Api {
    /// Every trigger, by id.
    pub async fn triggers(&self) -> Result<Vec<TriggerView>, Refusal> {
        let all = self.controller.triggers().await?;
        Ok(all.into_iter().map(TriggerView::from).collect())
    }

    /// Trigger `id`.
    pub async fn trigger(&self, id: &str) -> Result<TriggerView, Refusal> {
        Ok(self.controller.trigger(id).await?.into())
    }

    /// Pauses, resumes or removes trigger `id` in `caller`'s name.
    pub async fn act_on_trigger(
        &self,
        caller: &Caller,
        id: &str,
        action: Action,
    ) -> Result<Done, Refusal> {
        let (trigger, by) = (id.to_string(), caller.clone());
        let command = match action {
            Action::Pause => Command::PauseTrigger { trigger, by },
            Action::Resume => Command::ResumeTrigger { trigger, by },
            Action::Remove => Command::RemoveTrigger { trigger, by },
        };
        self.command(command).await
    }
}

#[utoipa::path(get, path = "/api/triggers", tag = "triggers",
    responses((status = 200, description = "Every trigger, by id", body = Vec<TriggerView>)))]
pub async fn list_triggers(State(api): State<Api>) -> Result<Json<Vec<TriggerView>>, Refusal> {
    api.triggers().await.map(Json)
}

#[utoipa::path(get, path = "/api/triggers/{id}", tag = "triggers",
    params(("id" = String, Path, description = "The trigger id")),
    responses((status = 200, description = "The trigger", body = TriggerView),
        (status = 404, description = "No such trigger", body = ErrorBody)))]
pub async fn show_trigger(
    State(api): State<Api>,
    PathOf(id): PathOf<String>,
) -> Result<Json<TriggerView>, Refusal> {
    api.trigger(&id).await.map(Json)
}

#[utoipa::path(post, path = "/api/triggers/{id}/pause", tag = "triggers",
    params(("id" = String, Path, description = "The trigger id")),
    responses((status = 200, description = "Paused: it fires no more until resumed, and catches nothing up", body = Done),
        (status = 404, description = "No such trigger", body = ErrorBody)))]
pub async fn pause_trigger(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
) -> Result<Json<Done>, Refusal> {
    api.act_on_trigger(&caller, &id, Action::Pause)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/triggers/{id}/resume", tag = "triggers",
    params(("id" = String, Path, description = "The trigger id")),
    responses((status = 200, description = "Resumed, from now on", body = Done),
        (status = 404, description = "No such trigger", body = ErrorBody)))]
pub async fn resume_trigger(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
) -> Result<Json<Done>, Refusal> {
    api.act_on_trigger(&caller, &id, Action::Resume)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/triggers/{id}/remove", tag = "triggers",
    params(("id" = String, Path, description = "The trigger id")),
    responses((status = 200, description = "Removed for good", body = Done),
        (status = 404, description = "No such trigger", body = ErrorBody)))]
pub async fn remove_trigger(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
) -> Result<Json<Done>, Refusal> {
    api.act_on_trigger(&caller, &id, Action::Remove)
        .await
        .map(Json)
}
