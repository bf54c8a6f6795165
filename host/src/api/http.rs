//! The controller's HTTP API (axum, JSON), served by `runway serve` on
//! loopback; the CLI verbs are its client.
//!
//! Every request carries `Authorization: Bearer TOKEN`; the token names the
//! caller and its roles ([`access`]), and each route needs one [`Right`]
//! (deny by default: a route is only reachable through [`guarded`]). A
//! request without a token, or with one nobody holds, is answered 401; one
//! whose roles lack the right, 403; both are audited (a host-level REJECTED
//! record naming the caller, method, path and why). Moves are made in the
//! caller's name: a body's `by`, when given, must be that name.
//!
//! | method | path | right | does |
//! |---|---|---|---|
//! | POST | `/api/runways` | file | files the plan or manifest in the body (TOML or JSON); 201 with the runway ids once durable |
//! | GET | `/api/runways?state=S&agent=A` | view | lists runways (no histories) |
//! | GET | `/api/runways/{id}` | view | one runway with its history |
//! | POST | `/api/runways/{id}/approve` | approve | `{"note"}`; refused (403) to whoever filed it, unless four eyes are off |
//! | POST | `/api/runways/{id}/reject` | approve | `{"reason"}` |
//! | POST | `/api/runways/{id}/cancel` | control | `{}` |
//! | POST | `/api/pause`, `/api/resume` | control | `{}` |
//! | POST | `/api/wait` | view | `{"runways": [...], "timeout_secs": N}`: `{"done": true, "runways": [...]}` once all ended, `{"done": false}` after N s (at most 60) |
//! | GET | `/metrics` | view | Prometheus text ([`metrics`]) |
//! | GET | `/api/locks` | view | the lock board: holders (with tokens) and waiters in line order |
//! | GET | `/api/plugins` | view | plugins loaded: digest, signer, grants |
//! | GET | `/api/server` | view | the caller, their rights, whether the server is paused or insecure |
//! | GET | `/api/audit/proof/{seq}` | audit | the inclusion proof of record `seq` (text, as `runway audit prove` writes) |
//! | GET | `/`, `/audit` | none | the status page ([`super::page`]; it asks for a token and calls the API) |
//! | GET | `/api/events?since=&dataset=&runway=&agent=&backlog=` | view | the trail as server-sent events ([`events`]; records beyond transitions need the audit right) |
//! | POST | `/mcp` | view, then each tool's | the MCP door ([`super::mcp`]) |
//!
//! Errors are `{"error": "..."}` with 400 (bad plan or request), 401 (no or
//! unknown token), 403 (not the caller's right), 404 (no such runway), 409
//! (not in a state for it), 503 (the controller stops).

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runway_audit::render::escape;
use serde::Deserialize;
use serde_json::json;

use super::access::{Caller, Right};
use super::calls::{Answered, Api, Refusal};
use super::{events, mcp, metrics, views};
use crate::controller::plan::{cap_reason, rejection};

/// The API's routes over `api`.
pub fn router(api: Api) -> Router {
    let max_body = api.max_body;
    let view = Router::new()
        .route("/api/runways", get(list))
        .route("/api/runways/{id}", get(show))
        .route("/api/wait", post(wait))
        .route("/api/events", get(events::stream))
        .route("/api/locks", get(locks))
        .route("/api/plugins", get(plugins))
        .route("/api/server", get(server))
        .route("/metrics", get(metrics::scrape));
    let audit = Router::new().route("/api/audit/proof/{seq}", get(proof));
    // The MCP door: any caller who may view; each tool then checks its own
    // right.
    let mcp = Router::new().nest_service("/mcp", mcp::service(&api));
    let file = Router::new().route("/api/runways", post(file));
    let approve = Router::new()
        .route("/api/runways/{id}/approve", post(approve))
        .route("/api/runways/{id}/reject", post(reject));
    let control = Router::new()
        .route("/api/runways/{id}/cancel", post(cancel))
        .route("/api/pause", post(pause))
        .route("/api/resume", post(resume));
    guarded(&api, Right::View, view)
        .merge(guarded(&api, Right::File, file))
        .merge(guarded(&api, Right::Approve, approve))
        .merge(guarded(&api, Right::Control, control))
        .merge(guarded(&api, Right::Audit, audit))
        .merge(guarded(&api, Right::View, mcp))
        .merge(super::page::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(api)
}

/// `routes`, each letting a request in only from a caller with `right`
/// (the [`Caller`] is then in the request's extensions).
pub fn guarded(api: &Api, right: Right, routes: Router<Api>) -> Router<Api> {
    routes.route_layer(middleware::from_fn_with_state(
        (api.clone(), right),
        authorize,
    ))
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type Answer = Result<Response, Refusal>;

/// A call's JSON answer as a response.
fn answer(answered: Answered) -> Answer {
    answered.map(|body| Json(body).into_response())
}

/// Lets a request in only from a caller holding `right`; a refusal is
/// audited.
async fn authorize(
    State((api, right)): State<(Api, Right)>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let caller = given.and_then(|t| api.access.caller(t));
    let (status, why) = match (given, caller) {
        (None, _) => (StatusCode::UNAUTHORIZED, "no bearer token".to_string()),
        (Some(_), None) => (StatusCode::UNAUTHORIZED, "unknown bearer token".to_string()),
        (Some(_), Some(caller)) => match Api::lacks(&caller, right) {
            Some(why) => (StatusCode::FORBIDDEN, why),
            None => {
                request.extensions_mut().insert(caller);
                return next.run(request).await;
            }
        },
    };
    refuse(&api, &request, status, why)
}

/// Answers `status` with `why`, and audits the refusal naming the request.
fn refuse(api: &Api, request: &Request, status: StatusCode, why: String) -> Response {
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
    Refusal(status, why).into_response()
}

async fn locks(State(api): State<Api>) -> Answer {
    let board = api.host.tower.board();
    let runways = api.controller.list().await?;
    Ok(Json(views::locks(&board, &runways)).into_response())
}

async fn plugins(State(api): State<Api>) -> Answer {
    Ok(Json(views::plugins(&api.host.plugins())).into_response())
}

/// Who is asking, what they may do, and how the server runs.
async fn server(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Answer {
    let roles: Vec<&str> = caller.roles.iter().map(|r| r.name()).collect();
    let rights: Vec<&str> = Right::ALL
        .iter()
        .filter(|r| caller.may(**r))
        .map(|r| r.name())
        .collect();
    let body = json!({
        "name": caller.name,
        "roles": roles,
        "rights": rights,
        "insecure": api.insecure,
        "paused": api.host.tower.paused(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    Ok(Json(body).into_response())
}

/// The inclusion proof of record `seq` in the trail as it stands (the
/// text `runway audit check-proof` checks).
async fn proof(State(api): State<Api>, Path(seq): Path<u64>) -> Answer {
    let dir = api.host.audit.dir().to_path_buf();
    let made = tokio::task::spawn_blocking(move || {
        runway_audit::proof_file::ProofFile::inclusion(&dir, seq, None).map(|p| p.to_text())
    })
    .await
    .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let text = made.map_err(|e| Refusal(StatusCode::NOT_FOUND, e.to_string()))?;
    let disposition = format!("attachment; filename=\"record-{seq}.proof\"");
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

async fn file(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let source = headers
        .get("x-runway-source")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "api".to_string(), |s| format!("api {}", cap_reason(s)));
    let filed = api.file(&caller, &body, source).await?;
    Ok((StatusCode::CREATED, Json(filed)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    agent: Option<String>,
}

async fn list(State(api): State<Api>, Query(q): Query<ListQuery>) -> Answer {
    answer(api.list(q.state.as_deref(), q.agent.as_deref()).await)
}

async fn show(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    answer(api.show(&id).await)
}

/// The body of a move: who (the caller; named again only to be sure), a
/// note or a reason.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Who {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

/// A move's body: JSON, or nothing at all.
type Body = Option<Json<Who>>;

/// The body of a move, once its `by` (when given) is found to name the
/// caller.
fn who(api: &Api, caller: &Caller, body: Body) -> Result<Who, Refusal> {
    let who = body.map(|Json(w)| w).unwrap_or_default();
    if let Some(by) = who.by.as_ref().filter(|by| **by != caller.name) {
        let why = format!(
            "`by` names {:?} but the token is {}'s",
            escape(by),
            caller.name
        );
        return Err(api.refused(StatusCode::FORBIDDEN, why));
    }
    Ok(who)
}

async fn approve(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    let who = who(&api, &caller, body)?;
    answer(api.approve(&caller, &id, &who.note).await)
}

async fn reject(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    let who = who(&api, &caller, body)?;
    answer(api.reject(&caller, &id, &who.reason).await)
}

async fn cancel(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    who(&api, &caller, body)?;
    answer(api.cancel(&caller, &id).await)
}

async fn pause(State(api): State<Api>, Extension(caller): Extension<Caller>, body: Body) -> Answer {
    who(&api, &caller, body)?;
    answer(api.pause(&caller, true).await)
}

async fn resume(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Answer {
    who(&api, &caller, body)?;
    answer(api.pause(&caller, false).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitFor {
    runways: Vec<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

async fn wait(State(api): State<Api>, Json(w): Json<WaitFor>) -> Answer {
    answer(api.wait(w.runways, w.timeout_secs).await)
}

/// Serves `api` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(events) = api.events.clone() {
        tokio::spawn(api.metrics.clone().follow(events));
    }
    let app = router(api).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
