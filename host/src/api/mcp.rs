//! `/mcp`: Runway's door for agent platforms — an MCP server (the `rmcp`
//! crate, streamable HTTP) through which an orchestrating model files
//! manifests, follows runways and reads the audit trail, under the same
//! tokens, roles and audit as the HTTP API: the door is mounted behind
//! the API's bearer-token check ([`super::http`]), and every tool asks
//! the same [`calls`](super::calls) the HTTP handlers ask.
//!
//! | tool | right | does |
//! |---|---|---|
//! | `file_manifest` | file | files a manifest or plan (TOML or JSON); the new runway ids once durable |
//! | `list_runways` | view | runways, by state, agent, label and delegation tree |
//! | `show_runway` | view | one runway with its history, each attempt's log lines and output, its parent and root, its children and their states, its tree's progress |
//! | `wait_runway` | view | waits (up to 60 s) for runways to end |
//! | `cancel_runway` | control | cancels a runway |
//! | `audit_timeline` | view | a runway's, tree's, dataset's or agent's records (beyond transitions with the audit right) |
//! | `verify_audit` | audit | verifies the whole trail, signatures included |
//! | `list_agents` | view | each agent's health: runs, success ratio, run times, what its runs spent, last failure, breaker |
//! | `list_triggers` | view | triggers and schedules: what fires them, their state, firings, next times, what their runways spent |
//! | `show_trigger` | view | one trigger |
//!
//! Triggers are read-only here: pausing, resuming and removing one stay
//! with people (the CLI, the API).
//!
//! Each runway is also a resource, `runway://ID` (the template
//! `runway://{id}`), read as its JSON (`application/json`, as listed).
//!
//! Tool schemas are JSON Schema 2020-12 with the standard formats only:
//! integers are bounded by `minimum`/`maximum`, never by schemars'
//! `format: uint64`, which strict validators (Ajv) refuse.
//!
//! A caller is offered only the tools its roles allow, and a tool called
//! without the right is refused (audited, like any refused API request).
//! Approve and reject are never offered here: a model must not approve
//! work, its own or anyone's — that stays with people, on the page or the
//! CLI. The server is stateless (each POST one JSON-RPC request, answered
//! in JSON) and, as MCP asks, checks the `Host` header against DNS
//! rebinding: loopback names, and the address it listens on.

use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{Extension, ToolCallContext};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::{Caller, Right};
use super::calls::{Answered, Api};
use super::events::{self, Filter, MAX_BACKLOG};
use super::refusal::{Kind, Refusal};
use super::{triggers, views};
use crate::controller::policy;

/// The right each tool needs; a tool not named here is not offered.
const TOOLS: [(&str, Right); 10] = [
    ("file_manifest", Right::File),
    ("list_runways", Right::View),
    ("show_runway", Right::View),
    ("wait_runway", Right::View),
    ("cancel_runway", Right::Control),
    ("audit_timeline", Right::View),
    ("verify_audit", Right::Audit),
    ("list_agents", Right::View),
    ("list_triggers", Right::View),
    ("show_trigger", Right::View),
];

/// The resources' URI scheme.
const SCHEME: &str = "runway://";

/// What a resource is read as.
const MIME: &str = "application/json";

/// The MCP service over `api`, to be mounted at `/mcp` behind the API's
/// token check; it accepts the `Host`s of loopback and of the address
/// the API listens on.
pub fn service(api: &Api) -> StreamableHttpService<Door, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(api.max_body);
    let config = match api.listen.map(|a| a.ip()) {
        // Listening on every address, any name may reach it; every request
        // carries a bearer token a rebinding page cannot know.
        Some(ip) if ip.is_unspecified() => config.disable_allowed_hosts(),
        listen => config.with_allowed_hosts(
            ["localhost", "127.0.0.1", "::1"]
                .map(String::from)
                .into_iter()
                .chain(listen.map(|ip| ip.to_string())),
        ),
    };
    let api = api.clone();
    StreamableHttpService::new(
        move || Ok(Door::new(api.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// One MCP request's server: the API, and the tools.
#[derive(Clone)]
pub struct Door {
    api: Api,
    tools: ToolRouter<Door>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileArgs {
    /// The manifest or plan: TOML (a `[[runway]]` list, or one manifest's
    /// keys) or JSON.
    manifest: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunwayArgs {
    /// The runway's id, as filing answered it.
    id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TriggerArgs {
    /// The trigger's id, as its plan names it.
    id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WaitArgs {
    /// The runways to wait for.
    runways: Vec<String>,
    /// Seconds to wait at most (60 at most; 60 when left out).
    #[schemars(range(max = super::MAX_WAIT_SECS))]
    timeout_secs: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TimelineArgs {
    /// Records of this dataset and of the runways that lock it.
    dataset: Option<String>,
    /// Records of this runway.
    runway: Option<String>,
    /// Records of this runway and of every runway delegated below it.
    tree: Option<String>,
    /// Records of this agent.
    agent: Option<String>,
    /// How many of the latest matching records (500 when left out, 5000
    /// at most).
    #[schemars(range(max = MAX_BACKLOG))]
    limit: Option<usize>,
}

#[tool_router(router = tools)]
impl Door {
    fn new(api: Api) -> Door {
        Door {
            api,
            tools: Door::tools(),
        }
    }

    #[tool(
        description = "File a runway manifest or a plan of several (TOML or JSON: agent, action, datasets, after, earliest_start, window, expires, priority, approval, retry, input). Answers the new runway ids once their filing is durable; the runways then wait for their dependencies, approval, time and locks."
    )]
    async fn file_manifest(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<FileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&parts)?;
        Ok(result(
            self.api.file(&caller, &args.manifest, "mcp".into()).await,
        ))
    }

    #[tool(
        description = "List runways (without histories), optionally of one state, one agent, one label (key=value) or one delegation tree (tree=ID: that runway and every runway delegated below it). Each names its parent, root and depth in its delegation tree."
    )]
    async fn list_runways(
        &self,
        Parameters(filter): Parameters<views::RunwayFilter>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(result(self.api.list(&filter).await))
    }

    #[tool(
        description = "List the triggers and schedules (standing manifests that file runways when a schedule's time comes, a commit lands on a matching dataset, or an event is published): each one's `on` table, kind, state (active or paused), firings so far, last firing, next scheduled firings, the runways it files, how many it has filed and what their runs spent (spent: runs, fuel, wall_ms, bytes)."
    )]
    async fn list_triggers(&self) -> Result<CallToolResult, ErrorData> {
        let listed = self.api.triggers().await;
        Ok(result(
            listed.map(|triggers| triggers::TriggerList { triggers }),
        ))
    }

    #[tool(description = "Show one trigger, as list_triggers shows each.")]
    async fn show_trigger(
        &self,
        Parameters(args): Parameters<TriggerArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(result(self.api.trigger(&args.id).await))
    }

    #[tool(
        description = "Show one runway: state, history of transitions with times and reasons, locks held, each attempt (start, end, how it ended, its log lines and output as this server kept them), output digest, failure reason; in a delegation tree, its parent, root and depth, the runways it delegated (children, each with agent and state) and its tree's progress (done of total)."
    )]
    async fn show_runway(
        &self,
        Parameters(args): Parameters<RunwayArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(result(self.api.show(&args.id).await))
    }

    #[tool(
        description = "Wait for runways to end (at most 60 s per call): done=true with their reports, or done=false to call again."
    )]
    async fn wait_runway(
        &self,
        Parameters(args): Parameters<WaitArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(result(self.api.wait(args.runways, args.timeout_secs).await))
    }

    #[tool(
        description = "Each agent's health: runs, succeeded, failed, success_ratio, p50_ms and p95_ms run time, fuel_per_run, what its runs spent since the trail began (spent: runs taken off, fuel, wall_ms, bytes committed), in_flight, last_failure (runway, reason, at) and its circuit breaker (closed, open or half-open, and breaker_until when open)."
    )]
    async fn list_agents(&self) -> Result<CallToolResult, ErrorData> {
        Ok(result(self.api.agents().await))
    }

    #[tool(
        description = "Cancel a runway: a waiting one ends at once, a running one is stopped and its writes discarded; its dependents fail naming the cancellation."
    )]
    async fn cancel_runway(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<RunwayArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&parts)?;
        Ok(result(self.api.cancel(&caller, &args.id).await))
    }

    #[tool(
        description = "The audit timeline of a dataset, a runway, a delegation tree (tree=ID: that runway and every runway delegated below it) or an agent: the latest matching records, oldest first. Transitions (join outcomes among them) for every viewer; host calls, locks and commits too for auditors."
    )]
    async fn audit_timeline(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<TimelineArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&parts)?;
        let Some(events) = self.api.events.clone() else {
            let why = "this server keeps no live audit tail".to_string();
            return Ok(result::<views::Timeline>(Err(Refusal::new(
                Kind::NotFound,
                why,
            ))));
        };
        let filter = Filter {
            dataset: args.dataset,
            runway: args.runway,
            tree: args.tree,
            agent: args.agent,
            ..Filter::default()
        };
        let everything = caller.may(Right::Audit);
        let limit = args.limit.unwrap_or(500);
        if limit > MAX_BACKLOG {
            let why = format!("limit {limit} is over {MAX_BACKLOG}");
            return Ok(result::<views::Timeline>(Err(Refusal::new(
                Kind::BadInput,
                why,
            ))));
        }
        let records = tokio::task::spawn_blocking(move || {
            events::timeline(&events, filter, everything, limit)
        })
        .await
        .map_err(internal)?;
        Ok(result(Ok(views::Timeline { records })))
    }

    #[tool(
        description = "Verify the whole audit trail as an auditor would offline: every record's hash chain and Merkle tree, every signed checkpoint against this server's key. Answers the report (records, checkpoints, signed size, root, unsigned tail) or what is wrong."
    )]
    async fn verify_audit(&self) -> Result<CallToolResult, ErrorData> {
        let dir = self.api.host.audit.dir().to_path_buf();
        let options = match self.api.signer.clone() {
            Some(key) => runway_audit::VerifyOptions::from(runway_audit::Trust::single(key)),
            None => runway_audit::VerifyOptions::default(),
        };
        let verified =
            tokio::task::spawn_blocking(move || runway_audit::verify_with(&dir, &options))
                .await
                .map_err(internal)?;
        Ok(result(match verified {
            Ok(report) => Ok(views::Verified {
                ok: true,
                report: serde_json::to_value(report).map_err(internal)?,
            }),
            Err(e) => Err(Refusal::new(
                Kind::Conflict,
                format!("the trail does not verify: {e}"),
            )),
        }))
    }
}

impl ServerHandler for Door {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new(
            "runway",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Runway clears sandboxed agent runs from filed manifests. File with file_manifest, \
             follow with show_runway / wait_runway, read the record with audit_timeline. \
             Approvals are given by people, not over this door."
                .to_string(),
        )
    }

    /// The tools this caller's roles allow.
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = context_caller(&context)?;
        let tools: Vec<Tool> = self
            .tools
            .list_all()
            .into_iter()
            .filter(|t| right(&t.name).is_some_and(|r| caller.may(r)))
            .map(|mut t| {
                t.input_schema = standard_formats(&t.input_schema);
                t.output_schema = t.output_schema.map(|s| standard_formats(&s));
                t
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }

    /// Calls a tool, if the caller holds its right; a refusal is audited.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = context_caller(&context)?;
        let Some(needed) = right(&request.name) else {
            let why = format!("no tool {:?}", request.name);
            return Err(Refusal::new(Kind::BadInput, why).to_mcp());
        };
        if let Err(why) = policy::may(&caller, needed) {
            let why = format!("{why} (MCP tool {})", request.name);
            let refused = self.api.refused(Kind::NotAllowed, why);
            return Ok(result::<views::Done>(Err(refused)).into());
        }
        self.tools
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    /// Every runway, as `runway://ID`.
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        context_caller(&context)?;
        let runways = self.api.controller.list().await.map_err(refused)?;
        let resources = runways
            .iter()
            .map(|r| {
                Resource::new(format!("{SCHEME}{}", r.id), r.id.clone())
                    .with_description(format!("{} ({}): {}", r.id, r.agent, r.state.name()))
                    .with_mime_type(MIME)
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    /// `runway://{id}`: any runway, by its id.
    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        context_caller(&context)?;
        let runway = ResourceTemplate::new(format!("{SCHEME}{{id}}"), "runway")
            .with_description(
                "A runway by its id: state, history, locks, output, children (as show_runway)",
            )
            .with_mime_type(MIME);
        Ok(ListResourceTemplatesResult::with_all_items(vec![runway]))
    }

    /// One runway, as `show_runway` answers it.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        context_caller(&context)?;
        let Some(id) = request.uri.strip_prefix(SCHEME) else {
            let why = format!("no resource {:?} (runways are {SCHEME}ID)", request.uri);
            return Err(Refusal::new(Kind::NotFound, why).to_mcp());
        };
        let view = self.api.show(id).await.map_err(|r| r.to_mcp())?;
        let text = serde_json::to_string(&view).map_err(internal)?;
        let contents = ResourceContents::text(text, request.uri.clone()).with_mime_type(MIME);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// `schema` with only the formats JSON Schema defines (schemars writes
/// `format: uint64` for an unsigned integer; its `minimum` stays).
fn standard_formats(schema: &JsonObject) -> Arc<JsonObject> {
    let mut schema = schemars::Schema::from(schema.clone());
    let mut restrict = schemars::transform::RestrictFormats::default();
    schemars::transform::Transform::transform(&mut restrict, &mut schema);
    Arc::new(schema.as_object().cloned().unwrap_or_default())
}

/// The right `tool` needs, when it is one of Runway's.
fn right(tool: &str) -> Option<Right> {
    TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, r)| *r)
}

/// The caller the API's token check let in.
fn caller(parts: &Parts) -> Result<Caller, ErrorData> {
    parts
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| internal("the MCP door was reached without a token check"))
}

fn context_caller(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    let parts = context
        .extensions
        .get::<Parts>()
        .ok_or_else(|| internal("an MCP request without its HTTP request"))?;
    caller(parts)
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    Refusal::new(Kind::HostFault, e.to_string()).to_mcp()
}

/// A controller's refusal as a JSON-RPC error (the refusal table's code).
fn refused(e: crate::controller::ControlError) -> ErrorData {
    Refusal::from(e).to_mcp()
}

/// A call's answer as a tool result: its view as JSON, or the refusal's
/// body (`{"error", "kind", "status"}`, as the HTTP API answers it)
/// marked as an error.
fn result<T: Serialize>(answered: Answered<T>) -> CallToolResult {
    let (value, refused) = match answered {
        Ok(view) => (serde_json::to_value(view), false),
        Err(refusal) => (serde_json::to_value(refusal.body()), true),
    };
    match value {
        Ok(value) if !refused => CallToolResult::structured(value),
        Ok(value) => CallToolResult::structured_error(value),
        Err(e) => {
            let fault = Refusal::new(Kind::HostFault, e.to_string()).body();
            CallToolResult::structured_error(serde_json::to_value(fault).unwrap_or_default())
        }
    }
}
