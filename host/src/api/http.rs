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
//! | POST | `/api/runways/{id}/refile` | control | `{}`: its manifest filed again as a new runway (a retry; [`super::refile`]); 201 with the new id |
//! | GET | `/api/filings` | view | the plans filed: their runways, who, from where ([`super::filings`]) |
//! | POST | `/api/pause`, `/api/resume` | control | `{}` |
//! | GET | `/api/triggers` | view | every trigger: `on`, kind, state, firings, the next ones ([`triggers`]) |
//! | GET | `/api/triggers/{id}` | view | one trigger |
//! | POST | `/api/triggers/{id}/pause`, `…/resume`, `…/remove` | control | no body |
//! | POST | `/api/wait` | view | `{"runways": [...], "timeout_secs": N}`: `{"done": true, "runways": [...]}` once all ended, `{"done": false}` after N s (at most 60) |
//! | GET | `/metrics` | view | Prometheus text ([`metrics`]) |
//! | GET | `/api/locks` | view | the lock board: holders (with tokens) and waiters in line order |
//! | GET | `/api/plugins` | view | plugins loaded: digest, signer, grants |
//! | GET | `/api/agents` | view | each agent's health: runs, success ratio, p50/p95, fuel per run, in flight, last failure, breaker ([`agents`]) |
//! | GET | `/api/server` | view | the caller, their rights, whether the server is paused or insecure |
//! | GET | `/api/audit/proof/{seq}` | audit | the inclusion proof of record `seq` (text, as `runway audit prove` writes) |
//! | GET | `/`, `/audit` | none | the status page ([`super::page`]; it asks for a token and calls the API) |
//! | GET | `/api/events?since=&dataset=&runway=&agent=&backlog=` | view | the trail as server-sent events ([`events`]; records beyond transitions need the audit right) |
//! | GET | `/api/openapi.json` | none | this API described (OpenAPI 3.1, derived from the handlers) |
//! | POST | `/mcp` | view, then each tool's | the MCP door ([`super::mcp`]) |
//!
//! Errors are a refusal's body, `{"error": "...", "kind": "...", "status":
//! N}` (the text escaped as the CLI shows it), with the status its kind
//! has in the refusal table ([`super::refusal`]): 400 (bad plan, query or
//! path), 401 (no or unknown token; with `WWW-Authenticate: Bearer`, RFC
//! 6750), 403 (not the caller's right or role; four eyes), 429 (refused
//! too often from one address; `Retry-After`), 404 (no such runway or
//! route), 405 (no such method), 409 (not in a state for it), 413 (body
//! too large), 415 (body of a type the route does not take), 422 (JSON of
//! the wrong shape), 500 (a host fault), 503 (the controller stops) — the
//! framework's own refusals included ([`super::extract`]). The description
//! says so of every operation, from the same table ([`document_refusals`]).

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use runway_audit::render::escape;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Caller, Right};
use super::calls::Api;
use super::extract::{JsonBody, PathOf, PlanText, QueryOf};
use super::refusal::{Applies, ErrorBody, Kind, Refusal};
use super::{agents, events, filings, mcp, metrics, refusals, triggers, views};
use crate::controller::plan::cap_reason;
use crate::controller::policy;
use crate::limits::{HEADER_TIMEOUT, REFUSAL_SUMMARY_INTERVAL};

/// The API's routes over `api`, and `/api/openapi.json`: the description
/// utoipa derives from the handlers below and the [`views`]' types.
pub fn router(api: Api) -> Router {
    let max_body = api.max_body;
    let view = OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(wait))
        .routes(routes!(events::stream))
        .routes(routes!(locks))
        .routes(routes!(plugins))
        .routes(routes!(agents))
        .routes(routes!(server))
        .routes(routes!(metrics::scrape))
        .routes(routes!(filings::filings))
        .routes(routes!(triggers::list_triggers))
        .routes(routes!(triggers::show_trigger));
    let audit = OpenApiRouter::new().routes(routes!(proof));
    let file = OpenApiRouter::new().routes(routes!(file));
    let approve = OpenApiRouter::new()
        .routes(routes!(approve))
        .routes(routes!(reject));
    let control = OpenApiRouter::new()
        .routes(routes!(cancel))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(refile))
        .routes(routes!(triggers::pause_trigger))
        .routes(routes!(triggers::resume_trigger))
        .routes(routes!(triggers::remove_trigger));
    // The MCP door: any caller who may view; each tool then checks its own
    // right.
    let mcp = OpenApiRouter::new().nest_service("/mcp", mcp::service(&api));
    let (routes, description) = OpenApiRouter::with_openapi(Description::openapi())
        .merge(guarded(&api, Right::View, view))
        .merge(guarded(&api, Right::File, file))
        .merge(guarded(&api, Right::Approve, approve))
        .merge(guarded(&api, Right::Control, control))
        .merge(guarded(&api, Right::Audit, audit))
        .merge(guarded(&api, Right::View, mcp))
        .split_for_parts();
    let mut description = description;
    document_refusals(&mut description);
    let description = Json(description);
    routes
        .route(
            "/api/openapi.json",
            get(move || std::future::ready(description.clone())),
        )
        .merge(super::page::routes())
        .fallback(|request: Request| async move {
            let why = format!(
                "no such route: {} {}",
                request.method(),
                request.uri().path()
            );
            Refusal::new(Kind::NotFound, why)
        })
        .method_not_allowed_fallback(|request: Request| async move {
            let why = format!(
                "{} is not a method of {}",
                request.method(),
                request.uri().path()
            );
            Refusal::new(Kind::NoSuchMethod, why)
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(api)
}

/// The OpenAPI description's frame: what every path shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Runway",
        description = "The controller of a Runway host: file manifests, follow runways, approve, cancel, read the audit trail. Every path needs `Authorization: Bearer TOKEN`; 401 without a known token, 403 without the right (both audited). Errors are `{\"error\": \"...\", \"kind\": \"...\", \"status\": N}` (ErrorBody)."
    ),
    modifiers(&Bearer),
    components(schemas(ErrorBody))
)]
struct Description;

/// Bearer tokens on every path.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// Adds to every operation of `doc` the refusals it may answer with that
/// its handler does not describe, as the refusal table says
/// ([`Kind::row`]): every path is guarded (401, 403; past its peer's
/// bucket 429) and may meet a host fault or a stopping controller (500,
/// 503); 400 where it reads a query, path or body; 404 where the path
/// names a runway or record; 413, 415 and 422 where it reads a body.
fn document_refusals(doc: &mut utoipa::openapi::OpenApi) {
    let challenge = utoipa::openapi::HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some("`Bearer realm=\"runway\"` (RFC 6750)"))
        .build();
    let retry_after = utoipa::openapi::HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
        .description(Some("Seconds until a refusal is audited again"))
        .build();
    let error = utoipa::openapi::ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let body = operation.request_body.is_some();
            for kind in Kind::ALL {
                let row = kind.row();
                let applies = match row.applies {
                    Applies::Always => true,
                    Applies::Input => params || body,
                    Applies::Named => path.contains('{'),
                    Applies::Body => body,
                    Applies::Described => false,
                };
                if !applies {
                    continue;
                }
                let mut response = utoipa::openapi::ResponseBuilder::new()
                    .description(row.says)
                    .content("application/json", error.clone());
                response = match kind {
                    Kind::Unauthenticated => response.header("WWW-Authenticate", challenge.clone()),
                    Kind::TooManyRequests => response.header("Retry-After", retry_after.clone()),
                    _ => response,
                };
                operation
                    .responses
                    .responses
                    .entry(row.http.as_u16().to_string())
                    .or_insert_with(|| RefOr::T(response.build()));
            }
        }
    }
}

/// `routes`, each letting a request in only from a caller with `right`
/// (the [`Caller`] is then in the request's extensions).
pub fn guarded(api: &Api, right: Right, routes: OpenApiRouter<Api>) -> OpenApiRouter<Api> {
    routes.route_layer(middleware::from_fn_with_state(
        (api.clone(), right),
        authorize,
    ))
}

/// A handler's answer: a view as JSON, or a refusal.
type Answer<T> = Result<Json<T>, Refusal>;

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
    let (kind, why) = match (given, caller) {
        (None, _) => (Kind::Unauthenticated, "no bearer token".to_string()),
        (Some(_), None) => (Kind::Unauthenticated, "unknown bearer token".to_string()),
        (Some(_), Some(caller)) => match policy::may(&caller, right) {
            Err(why) => (Kind::NotAllowed, why.to_string()),
            Ok(()) => {
                request.extensions_mut().insert(caller);
                return next.run(request).await;
            }
        },
    };
    refuse(&api, &request, kind, why)
}

/// Answers `kind` with `why`, and audits the refusal naming the request
/// — or, for a caller without a known token past its peer's bucket,
/// answers 429 ([`refusals`]). A known token's refusal (403) names its
/// holder and is always audited in full (above the disk's reserve).
fn refuse(api: &Api, request: &Request, kind: Kind, why: String) -> Response {
    let addr = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let peer = addr.map_or_else(String::new, |a| format!(" from {a}"));
    let route = cap_reason(&format!(
        "{} {}",
        request.method(),
        escape(request.uri().path())
    ));
    let reason = cap_reason(&format!("API request refused: {why} ({route}{peer})"));
    if kind != Kind::Unauthenticated {
        return match api.refusals.audit(&reason) {
            Ok(()) => Refusal::new(kind, why).into_response(),
            Err(e) => Refusal::new(Kind::HostFault, e.to_string()).into_response(),
        };
    }
    let who = addr.map_or(refusals::Peer::Unknown, |a| refusals::Peer::Addr(a.ip()));
    match api.refusals.refuse(who, &route, &reason) {
        refusals::Verdict::Refuse => Refusal::new(kind, why).into_response(),
        refusals::Verdict::Limited { retry_after } => {
            let why = format!(
                "too many refused requests from {who}; retry after {retry_after} s ({why})"
            );
            let mut answer = Refusal::new(Kind::TooManyRequests, why).into_response();
            answer
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
            answer
        }
    }
}

#[utoipa::path(get, path = "/api/locks", tag = "locks",
    responses((status = 200, description = "Per dataset: how it is held, its holders with their fencing tokens, its waiters in line order", body = views::LockBoard)))]
async fn locks(State(api): State<Api>) -> Answer<views::LockBoard> {
    let board = api.host.tower.board();
    let runways = api.controller.list().await?;
    Ok(Json(views::locks(&board, &runways)))
}

#[utoipa::path(get, path = "/api/plugins", tag = "plugins",
    responses((status = 200, description = "The plugins loaded: digest, signer, grants", body = views::PluginList)))]
async fn plugins(State(api): State<Api>) -> Answer<views::PluginList> {
    Ok(Json(views::plugins(&api.host.plugins())))
}

#[utoipa::path(get, path = "/api/agents", tag = "agents",
    responses((status = 200, description = "Each agent's health: runs, success ratio, p50/p95 run time, fuel per run, runs in the air, last failure, circuit breaker", body = agents::AgentList)))]
async fn agents(State(api): State<Api>) -> Answer<agents::AgentList> {
    api.agents().await.map(Json)
}

/// Who is asking, what they may do, and how the server runs.
#[utoipa::path(get, path = "/api/server", tag = "server",
    responses((status = 200, description = "The caller's name, roles and rights; whether the server is paused or served without TLS beyond loopback", body = views::ServerView)))]
async fn server(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
) -> Answer<views::ServerView> {
    Ok(Json(views::ServerView {
        roles: caller.roles.iter().map(|r| r.name().to_string()).collect(),
        rights: Right::ALL
            .iter()
            .filter(|r| caller.may(**r))
            .map(|r| r.name().to_string())
            .collect(),
        name: caller.name,
        insecure: api.insecure,
        paused: api.host.tower.paused(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }))
}

/// The inclusion proof of record `seq` in the trail as it stands (the
/// text `runway audit check-proof` checks).
#[utoipa::path(get, path = "/api/audit/proof/{seq}", tag = "audit",
    params(("seq" = u64, Path, minimum = 0, description = "The record's sequence number")),
    responses((status = 200, description = "The inclusion proof of the record, as `runway audit check-proof` reads it", content_type = "text/plain", body = String),
        (status = 404, description = "No such record", body = ErrorBody)))]
async fn proof(State(api): State<Api>, PathOf(seq): PathOf<u64>) -> Result<Response, Refusal> {
    let dir = api.host.audit.dir().to_path_buf();
    let made = tokio::task::spawn_blocking(move || {
        runway_audit::proof_file::ProofFile::inclusion(&dir, seq, None).map(|p| p.to_text())
    })
    .await
    .map_err(|e| Refusal::new(Kind::HostFault, e.to_string()))?;
    let text = made.map_err(|e| Refusal::new(Kind::NotFound, e.to_string()))?;
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

#[utoipa::path(post, path = "/api/runways", tag = "runways",
    request_body(description = "A manifest or a plan of them, TOML or JSON",
        content((String = "application/toml"), (String = "text/plain"), (Object = "application/json"))),
    params(("x-runway-source" = Option<String>, Header, description = "Where the plan came from, for the record")),
    responses((status = 201, description = "Filed, durably: the new runway ids", body = views::FiledList),
        (status = 400, description = "The plan is refused (the error names the key or runway), or is not UTF-8", body = ErrorBody)))]
async fn file(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    PlanText(body): PlanText,
) -> Result<(StatusCode, Json<views::FiledList>), Refusal> {
    let source = headers
        .get("x-runway-source")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "api".to_string(), |s| format!("api {}", cap_reason(s)));
    let filed = api.file(&caller, &body, source).await?;
    Ok((StatusCode::CREATED, Json(filed)))
}

#[utoipa::path(get, path = "/api/runways", tag = "runways", params(views::RunwayFilter),
    responses((status = 200, description = "The runways, without histories", body = views::RunwayList),
        (status = 400, description = "No such state", body = ErrorBody)))]
async fn list(
    State(api): State<Api>,
    QueryOf(filter): QueryOf<views::RunwayFilter>,
) -> Answer<views::RunwayList> {
    api.list(&filter).await.map(Json)
}

#[utoipa::path(get, path = "/api/runways/{id}", tag = "runways",
    params(("id" = String, Path, description = "The runway id")),
    responses((status = 200, description = "The runway with its history, and each attempt with its log lines and output as this server process kept them", body = views::RunwayView),
        (status = 404, description = "No such runway", body = ErrorBody)))]
async fn show(State(api): State<Api>, PathOf(id): PathOf<String>) -> Answer<views::RunwayView> {
    api.show(&id).await.map(Json)
}

/// Refused (403, audited) when a body's `by` names someone other than the
/// caller.
fn check_by(api: &Api, caller: &Caller, by: Option<&str>) -> Result<(), Refusal> {
    if let Some(by) = by.filter(|by| *by != caller.name) {
        let why = format!(
            "`by` names {:?} but the token is {}'s",
            escape(by),
            caller.name
        );
        return Err(api.refused(Kind::NotAllowed, why));
    }
    Ok(())
}

/// The `by` of an optional body.
fn by(body: &Option<views::Who>) -> Option<&str> {
    body.as_ref().and_then(|w| w.by.as_deref())
}

#[utoipa::path(post, path = "/api/runways/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "The runway id")), request_body(content = Option<views::Approval>),
    responses((status = 200, description = "Approved; it queues for its locks", body = views::Done),
        (status = 403, description = "Not the role it waits for, or the caller filed it (four eyes)", body = ErrorBody),
        (status = 409, description = "It does not wait for approval", body = ErrorBody)))]
async fn approve(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
    JsonBody(body): JsonBody<Option<views::Approval>>,
) -> Answer<views::Done> {
    let body = body.unwrap_or_default();
    check_by(&api, &caller, body.by.as_deref())?;
    api.approve(&caller, &id, &body.note).await.map(Json)
}

#[utoipa::path(post, path = "/api/runways/{id}/reject", tag = "approvals",
    params(("id" = String, Path, description = "The runway id")), request_body(content = views::Rejection),
    responses((status = 200, description = "Rejected; its dependents fail naming the rejecter", body = views::Done),
        (status = 400, description = "The reason is blank", body = ErrorBody),
        (status = 409, description = "It does not wait for approval", body = ErrorBody)))]
async fn reject(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
    JsonBody(body): JsonBody<views::Rejection>,
) -> Answer<views::Done> {
    check_by(&api, &caller, body.by.as_deref())?;
    api.reject(&caller, &id, &body.reason).await.map(Json)
}

#[utoipa::path(post, path = "/api/runways/{id}/cancel", tag = "runways",
    params(("id" = String, Path, description = "The runway id")), request_body(content = Option<views::Who>),
    responses((status = 200, description = "Cancelled (a running one is stopped, its writes discarded)", body = views::Done),
        (status = 409, description = "It has ended", body = ErrorBody)))]
async fn cancel(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
    JsonBody(body): JsonBody<Option<views::Who>>,
) -> Answer<views::Done> {
    check_by(&api, &caller, by(&body))?;
    api.cancel(&caller, &id).await.map(Json)
}

#[utoipa::path(post, path = "/api/runways/{id}/refile", tag = "runways",
    params(("id" = String, Path, description = "The runway id")), request_body(content = Option<views::Who>),
    responses((status = 201, description = "Its manifest filed again, durably, as a new runway: its id", body = views::FiledList),
        (status = 404, description = "No such runway", body = ErrorBody)))]
async fn refile(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    PathOf(id): PathOf<String>,
    JsonBody(body): JsonBody<Option<views::Who>>,
) -> Result<(StatusCode, Json<views::FiledList>), Refusal> {
    check_by(&api, &caller, by(&body))?;
    let filed = api.refile(&caller, &id).await?;
    Ok((StatusCode::CREATED, Json(filed)))
}

#[utoipa::path(post, path = "/api/pause", tag = "server", request_body(content = Option<views::Who>),
    responses((status = 200, description = "Nothing more is cleared; running runs land", body = views::Done)))]
async fn pause(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<Option<views::Who>>,
) -> Answer<views::Done> {
    check_by(&api, &caller, by(&body))?;
    api.pause(&caller, true).await.map(Json)
}

#[utoipa::path(post, path = "/api/resume", tag = "server", request_body(content = Option<views::Who>),
    responses((status = 200, description = "Clearing goes on", body = views::Done)))]
async fn resume(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<Option<views::Who>>,
) -> Answer<views::Done> {
    check_by(&api, &caller, by(&body))?;
    api.pause(&caller, false).await.map(Json)
}

#[utoipa::path(post, path = "/api/wait", tag = "runways", request_body(content = views::WaitFor),
    responses((status = 200, description = "done=true with the runways once all ended; done=false after timeout_secs (60 at most)", body = views::WaitView),
        (status = 400, description = "timeout_secs is over 60", body = ErrorBody),
        (status = 404, description = "No such runway", body = ErrorBody)))]
async fn wait(
    State(api): State<Api>,
    JsonBody(w): JsonBody<views::WaitFor>,
) -> Answer<views::WaitView> {
    api.wait(w.runways, w.timeout_secs).await.map(Json)
}

/// Serves `api` on `listener` until `shutdown` resolves: over TLS when
/// given `tls`, else plain HTTP. A connection that has not sent a
/// request's headers within [`HEADER_TIMEOUT`] is closed; refusals counted
/// past their peers' buckets go on the trail every interval and at the end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    tls: Option<RustlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(events) = api.events.clone() {
        tokio::spawn(api.metrics.clone().follow(events));
    }
    let refusals = api.refusals.clone();
    let summaries = tokio::spawn({
        let refusals = refusals.clone();
        async move {
            let mut every = tokio::time::interval(REFUSAL_SUMMARY_INTERVAL / 4);
            loop {
                every.tick().await;
                refusals.flush(false);
            }
        }
    });
    let served = serve_app(listener.into_std()?, router(api), tls, shutdown).await;
    summaries.abort();
    refusals.flush(true);
    served
}

/// Serves `app` on `listener` until `shutdown` resolves (then gives event
/// streams a second): over TLS when given `tls`; a connection that has not
/// sent a request's headers within [`HEADER_TIMEOUT`] is closed. The API's
/// doors and a standby's relay (`super::relay`) alike.
pub async fn serve_app(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Event streams never end by themselves: give them a moment.
        stopping.graceful_shutdown(Some(std::time::Duration::from_secs(1)));
    });
    let mut server = axum_server::from_tcp(listener)?
        .handle(handle)
        .first_request_timeout(HEADER_TIMEOUT);
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_TIMEOUT);
    match tls {
        None => server.serve(app).await,
        Some(tls) => {
            server
                .acceptor(
                    axum_server::tls_rustls::RustlsAcceptor::new(tls)
                        .handshake_timeout(HEADER_TIMEOUT),
                )
                .serve(app)
                .await
        }
    }
}
