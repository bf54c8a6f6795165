//! The controller's HTTP API (axum, JSON), served by `runway serve` on
//! loopback; the CLI verbs are its client.
//!
//! Every request carries `Authorization: Bearer TOKEN` ([`token`]); one
//! without it, or with another token, is answered 401 and audited (a
//! host-level REJECTED record naming the method, path and why).
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/api/runways` | files the plan or manifest in the body (TOML or JSON); 201 with the runway ids once durable |
//! | GET | `/api/runways?state=S&agent=A` | lists runways (no histories) |
//! | GET | `/api/runways/{id}` | one runway with its history |
//! | POST | `/api/runways/{id}/approve` | `{"by", "note"}` |
//! | POST | `/api/runways/{id}/reject` | `{"by", "reason"}` |
//! | POST | `/api/runways/{id}/cancel` | `{"by"}` |
//! | POST | `/api/pause`, `/api/resume` | `{"by"}` |
//! | POST | `/api/wait` | `{"runways": [...], "timeout_secs": N}`: `{"done": true, "runways": [...]}` once all ended, `{"done": false}` after N s (at most [`MAX_WAIT_SECS`]) |
//!
//! Errors are `{"error": "..."}` with 400 (bad plan or request), 404 (no
//! such runway), 409 (not in a state for it), 503 (the controller stops).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runway_audit::render::escape;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{token, views};
use crate::controller::plan::{Plan, cap_reason, rejection};
use crate::controller::{Command, ControlError, Controller, Filing, Host};

/// Longest one `/api/wait` request waits before it answers "not yet".
pub const MAX_WAIT_SECS: u64 = 60;

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub host: Arc<Host>,
    pub controller: Controller,
    pub token: Arc<String>,
    /// Largest request body (a plan), in bytes.
    pub max_body: usize,
}

/// The API's routes over `api`.
pub fn router(api: Api) -> Router {
    let max_body = api.max_body;
    Router::new()
        .route("/api/runways", post(file).get(list))
        .route("/api/runways/{id}", get(show))
        .route("/api/runways/{id}/approve", post(approve))
        .route("/api/runways/{id}/reject", post(reject))
        .route("/api/runways/{id}/cancel", post(cancel))
        .route("/api/pause", post(pause))
        .route("/api/resume", post(resume))
        .route("/api/wait", post(wait))
        .layer(middleware::from_fn_with_state(api.clone(), authorize))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(api)
}

/// An API answer that failed: its status and why.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ControlError> for Refusal {
    fn from(e: ControlError) -> Refusal {
        let status = match e {
            ControlError::Unknown(_) => StatusCode::NOT_FOUND,
            ControlError::NotAwaitingApproval { .. } | ControlError::Ended { .. } => {
                StatusCode::CONFLICT
            }
            ControlError::UnknownAfter { .. } => StatusCode::BAD_REQUEST,
            ControlError::Stopping | ControlError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        };
        Refusal(status, e.to_string())
    }
}

type Answer = Result<Response, Refusal>;

/// Lets a request in only with the server's bearer token; a refusal is
/// audited.
async fn authorize(State(api): State<Api>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let why = match given {
        None => "no bearer token",
        Some(given) if !token::matches(&api.token, given) => "wrong bearer token",
        Some(_) => return next.run(request).await,
    };
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or_else(String::new, |c| format!(" from {}", c.0));
    let reason = cap_reason(&format!(
        "API request refused: {why} ({} {}{peer})",
        request.method(),
        escape(request.uri().path())
    ));
    if let Err(e) = api.host.audit.append(rejection(&reason)) {
        tracing::warn!("cannot audit a refused API request: {e}");
    }
    Refusal(StatusCode::UNAUTHORIZED, why.to_string()).into_response()
}

/// Who the caller is: the one token there is today is the operator's.
const CALLER: &str = "admin";

async fn file(State(api): State<Api>, headers: HeaderMap, body: String) -> Answer {
    let source = headers
        .get("x-runway-source")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "api".to_string(), |s| format!("api {}", cap_reason(s)));
    let plan = match Plan::parse(&body, &*api.host.plugins()) {
        Ok(plan) => plan,
        Err(e) => {
            let reason = cap_reason(&format!("filing refused ({source}): {e}"));
            if let Err(e) = api.host.audit.append(rejection(&reason)) {
                return Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
            }
            return Err(Refusal(StatusCode::BAD_REQUEST, e.to_string()));
        }
    };
    let filing = Filing {
        plan,
        by: CALLER.into(),
        source,
        digest: runway_audit::sha256(body.as_bytes()),
        once: false,
    };
    let filed = api.controller.file(filing).await?;
    let runways: Vec<Value> = filed
        .iter()
        .map(|f| json!({ "name": f.name, "id": f.id }))
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "runways": runways }))).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    agent: Option<String>,
}

async fn list(State(api): State<Api>, Query(q): Query<ListQuery>) -> Answer {
    if let Some(state) = &q.state
        && !runway_audit::State::ALL.iter().any(|s| s.name() == state)
    {
        let known: Vec<&str> = runway_audit::State::ALL.iter().map(|s| s.name()).collect();
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("no state {:?} (one of {})", escape(state), known.join(", ")),
        ));
    }
    let runways: Vec<Value> = api
        .controller
        .list()
        .await?
        .iter()
        .filter(|r| q.state.as_deref().is_none_or(|s| r.state.name() == s))
        .filter(|r| q.agent.as_deref().is_none_or(|a| r.agent == a))
        .map(views::runway)
        .collect();
    Ok(Json(json!({ "runways": runways })).into_response())
}

async fn show(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    let report = api.controller.show(&id).await?;
    Ok(Json(views::runway(&report)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Who {
    by: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

impl Who {
    fn checked(self) -> Result<Who, Refusal> {
        crate::names::check_dataset(&self.by)
            .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("`by` is not a name: {e}")))?;
        Ok(Who {
            note: cap_reason(&self.note),
            reason: cap_reason(&self.reason),
            by: self.by,
        })
    }
}

async fn command(api: &Api, command: Command) -> Answer {
    api.controller.send(command).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}

async fn approve(State(api): State<Api>, Path(id): Path<String>, Json(who): Json<Who>) -> Answer {
    let who = who.checked()?;
    let approve = Command::Approve {
        runway: id,
        by: who.by,
        note: who.note,
    };
    command(&api, approve).await
}

async fn reject(State(api): State<Api>, Path(id): Path<String>, Json(who): Json<Who>) -> Answer {
    let who = who.checked()?;
    if who.reason.trim().is_empty() {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "a rejection needs a reason".into(),
        ));
    }
    let reject = Command::Reject {
        runway: id,
        by: who.by,
        reason: who.reason,
    };
    command(&api, reject).await
}

async fn cancel(State(api): State<Api>, Path(id): Path<String>, Json(who): Json<Who>) -> Answer {
    let who = who.checked()?;
    command(
        &api,
        Command::Cancel {
            runway: id,
            by: who.by,
        },
    )
    .await
}

async fn pause(State(api): State<Api>, Json(who): Json<Who>) -> Answer {
    let by = who.checked()?.by;
    command(&api, Command::Pause { by }).await
}

async fn resume(State(api): State<Api>, Json(who): Json<Who>) -> Answer {
    let by = who.checked()?.by;
    command(&api, Command::Resume { by }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitFor {
    runways: Vec<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

async fn wait(State(api): State<Api>, Json(w): Json<WaitFor>) -> Answer {
    let secs = w.timeout_secs.unwrap_or(MAX_WAIT_SECS).min(MAX_WAIT_SECS);
    let waited =
        tokio::time::timeout(Duration::from_secs(secs), api.controller.wait(w.runways)).await;
    let body = match waited {
        Ok(reports) => {
            let runways: Vec<Value> = reports?.iter().map(views::runway).collect();
            json!({ "done": true, "runways": runways })
        }
        Err(_) => json!({ "done": false }),
    };
    Ok(Json(body).into_response())
}

/// Serves `api` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(api).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
