//! The client verbs — `file`, `list`, `show`, `approve`, `reject`,
//! `cancel`, `pause`, `resume`, `wait` — each one call (or, for `wait`, a
//! few long polls) to the API of a running `runway serve` ([`crate::api`]).
//!
//! `--server` and `--token-file` (or `RUNWAY_SERVER`, `RUNWAY_TOKEN_FILE`)
//! default to what `runway serve` uses by default, so on one machine
//! `runway file x.toml` just works. Human output by default, `--json` for
//! scripts. Requests and answers are the API's own types
//! ([`crate::api::views`]): `--json` prints the answer as read into them.
//! Exit codes as in [`super`]: 1 a waited-for runway did not succeed; a
//! refusal exits with its kind's code in the refusal table
//! ([`crate::api::refusal`]): 2 the server refused the request (bad plan,
//! no such runway, not in a state for it), 4 the server failed, 5 the
//! token or what it asked for was refused; 4 too when the server cannot be
//! reached.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use runway_audit::render::{escape, excerpt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::progress::Progress;
use super::{BAD_INPUT, Failure, HOST_FAULT, RUNWAY_FAILED};
use crate::api::refusal::{ErrorBody, Kind};
use crate::api::views::{
    Approval, BudgetView, Done, FiledList, Rejection, RunwayFilter, RunwayList, RunwayView,
    WaitFor, WaitView, Who,
};
use crate::api::{MAX_WAIT_SECS, token};
use crate::controller::SpentView;
use crate::files::{self, FileKind, ReadCaps};
use runway_audit::State;

/// Where the server is and how to talk to it.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The server's URL.
    #[arg(
        long,
        value_name = "URL",
        env = "RUNWAY_SERVER",
        default_value = "http://127.0.0.1:7878"
    )]
    server: String,
    /// File holding your bearer token (the admin's is written by `runway
    /// serve` at first start; others come from `runway token add`). The
    /// RUNWAY_TOKEN environment variable, when set, is used instead.
    #[arg(long, value_name = "FILE", env = "RUNWAY_TOKEN_FILE", default_value = token::TOKEN_FILE)]
    token_file: PathBuf,
    /// For an https:// server, trust only the certificates in this PEM file
    /// (its own self-signed certificate, or a private CA's); without it,
    /// the public CAs.
    #[arg(long, value_name = "FILE", env = "RUNWAY_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FileArgs {
    /// Plan or manifest file (TOML or JSON); `-` reads standard input.
    plan: String,
    /// Largest plan read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_MAX_PLAN_BYTES)]
    max_plan_bytes: u64,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: RunwayFilter,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct ShowArgs {
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct ApproveArgs {
    id: String,
    /// Your name, to be sure: the server refuses it unless it is your
    /// token's (moves are audited in the token's name).
    #[arg(long)]
    by: Option<String>,
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct RejectArgs {
    id: String,
    /// Your name, to be sure: the server refuses it unless it is your
    /// token's (moves are audited in the token's name).
    #[arg(long)]
    by: Option<String>,
    /// Why (audited; its dependents fail naming it).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct CancelArgs {
    id: String,
    /// Your name, to be sure: the server refuses it unless it is your
    /// token's (moves are audited in the token's name).
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct ByArgs {
    /// Your name, to be sure: the server refuses it unless it is your
    /// token's (moves are audited in the token's name).
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct WaitArgs {
    /// Runway ids.
    #[arg(required = true)]
    ids: Vec<String>,
    /// Give up after this long (exit 4); default: wait as long as it takes.
    #[arg(long, value_name = "SECS")]
    timeout_secs: Option<u64>,
    #[command(flatten)]
    server: ServerArgs,
}

/// One server, its token read.
#[derive(Clone)]
pub(super) struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    json: bool,
}

impl Client {
    pub(super) fn new(args: &ServerArgs) -> Result<Client, Failure> {
        let token = match std::env::var("RUNWAY_TOKEN") {
            Ok(token) if !token.trim().is_empty() => token.trim().to_string(),
            _ => token::read(&args.token_file, &ReadCaps::default())
                .map_err(|e| Failure::new(BAD_INPUT, e))?,
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(MAX_WAIT_SECS + 30)));
        if let Some(ca) = &args.ca_file {
            config = config.tls_config(trusting(ca)?);
        }
        let config = config.build();
        Ok(Client {
            base: args.server.trim_end_matches('/').to_string(),
            token,
            agent: config.into(),
            json: args.json,
        })
    }

    /// Calls `path` (`body` set: POST, else GET); the answer when 2xx,
    /// read as `T`; else the refusal, with its kind's exit code.
    pub(super) fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Body>,
    ) -> Result<T, Failure> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match body {
            None => self.agent.get(&url).header("Authorization", &auth).call(),
            Some(Body::Json(v)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(v),
            Some(Body::Plan { text, source }) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("X-Runway-Source", source)
                .content_type("text/plain; charset=utf-8")
                .send(text),
        };
        let mut answer = sent.map_err(|e| {
            Failure::new(
                HOST_FAULT,
                anyhow::anyhow!("cannot reach the server at {}: {e}", self.base),
            )
        })?;
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| {
                let why = anyhow::anyhow!(
                    "the server's answer does not read ({e}): {}",
                    excerpt(&text, 200)
                );
                Failure::new(HOST_FAULT, why)
            });
        }
        // Not Runway's own refusal (a proxy's): its status says the kind.
        let refusal = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
            error: excerpt(&text, 200),
            kind: Kind::of_status(status),
            status,
        });
        Err(Failure::new(
            refusal.kind.row().exit,
            anyhow::anyhow!("the server refused ({status}): {}", refusal.error),
        ))
    }

    /// Prints `view` as JSON when asked, else as `human` says.
    pub(super) fn print<T: Serialize>(&self, view: &T, human: impl FnOnce(&T)) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(view).unwrap_or_default());
        } else {
            human(view);
        }
    }
}

pub(super) enum Body {
    Json(serde_json::Value),
    Plan { text: String, source: String },
}

impl Body {
    /// A request body of the API's.
    fn of(body: &impl Serialize) -> Result<Body, Failure> {
        serde_json::to_value(body)
            .map(Body::Json)
            .map_err(|e| Failure::new(BAD_INPUT, e))
    }
}

pub fn file(args: FileArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let caps = ReadCaps {
        plan: args.max_plan_bytes,
        ..ReadCaps::default()
    };
    let (bytes, source) = if args.plan == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(caps.plan + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::new(HOST_FAULT, e))?;
        if bytes.len() as u64 > caps.plan {
            let why = anyhow::anyhow!("the plan on standard input is over {} bytes", caps.plan);
            return Err(Failure::new(BAD_INPUT, why));
        }
        (bytes, "stdin".to_string())
    } else {
        let path = PathBuf::from(&args.plan);
        let bytes =
            files::read(&path, FileKind::Plan, &caps).map_err(|e| Failure::new(BAD_INPUT, e))?;
        (bytes, path.display().to_string())
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| Failure::new(BAD_INPUT, anyhow::anyhow!("the plan is not UTF-8: {e}")))?;
    let answer: FiledList = client.call("/api/runways", Some(Body::Plan { text, source }))?;
    client.print(&answer, |filed| {
        for r in &filed.runways {
            println!("{}", escape(&r.id));
        }
        for t in &filed.triggers {
            println!("trigger {}", escape(t));
        }
    });
    Ok(())
}

pub fn list(args: ListArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let query =
        serde_urlencoded::to_string(&args.filter).map_err(|e| Failure::new(BAD_INPUT, e))?;
    let path = match query.is_empty() {
        true => "/api/runways".to_string(),
        false => format!("/api/runways?{query}"),
    };
    let answer: RunwayList = client.call(&path, None)?;
    client.print(&answer, |list| {
        println!(
            "{:<24} {:<17} {:<20} {:>3}  NOTE",
            "ID", "STATE", "AGENT", "TRY"
        );
        for r in &list.runways {
            println!(
                "{:<24} {:<17} {:<20} {:>3}  {}",
                escape(&r.id),
                escape(&r.state),
                escape(&r.agent),
                r.attempts,
                excerpt(&r.note, 80)
            );
            if !r.manifest.labels.is_empty() {
                println!("{:<24} labels {}", "", labels(r));
            }
        }
        println!("{} runway(s)", list.runways.len());
    });
    Ok(())
}

pub fn show(args: ShowArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let answer: RunwayView = client.call(&format!("/api/runways/{}", encode(&args.id)), None)?;
    client.print(&answer, print_runway);
    Ok(())
}

/// A runway's labels, `key=value, …`, escaped.
fn labels(r: &RunwayView) -> String {
    let each = (r.manifest.labels.iter()).map(|(k, v)| escape(&format!("{k}={v}")).to_string());
    each.collect::<Vec<_>>().join(", ")
}

/// What runs spent, each figure against its budget when there is one:
/// `runs 3 of 3, fuel 1200 of 5000, wall 12 ms, 101 bytes written`.
pub(super) fn spend(s: &SpentView, budget: Option<&BudgetView>) -> String {
    let of = |limit: Option<u64>, unit: &str| match limit {
        Some(limit) => format!(" of {limit}{unit}"),
        None => String::new(),
    };
    let b = |f: fn(&BudgetView) -> Option<u64>| budget.and_then(f);
    format!(
        "runs {}{}, fuel {}{}, wall {} ms{}, {} bytes written",
        s.runs,
        of(b(|b| b.runs.map(u64::from)), ""),
        s.fuel,
        of(b(|b| b.fuel), ""),
        s.wall_ms,
        of(b(|b| b.wall_ms), " ms"),
        s.bytes
    )
}

/// A runway as `show` prints it.
fn print_runway(r: &RunwayView) {
    println!("runway   {}", escape(&r.id));
    println!("agent    {}", escape(&r.agent));
    println!("state    {}", escape(&r.state));
    println!("attempts {}", r.attempts);
    println!("cost     {}", spend(&r.cost, None));
    println!(
        "spent    {} (its filing)",
        spend(&r.spent, r.budget.as_ref())
    );
    if let Some(parent) = &r.parent {
        let root = r.root.as_deref().unwrap_or(parent);
        println!(
            "parent   {} (root {}, depth {})",
            escape(parent),
            escape(root),
            r.depth
        );
    }
    if !r.manifest.labels.is_empty() {
        println!("labels   {}", labels(r));
    }
    if let Some(by) = &r.approved_by {
        println!("approved by {}", escape(by));
    }
    for l in &r.locks {
        println!(
            "lock     {} {} token {}",
            escape(&l.dataset),
            escape(&l.mode),
            l.token
        );
    }
    if let Some(d) = &r.output_digest {
        println!("output   sha256 {}", escape(d));
    }
    if !r.takes_from.is_empty() {
        let from: Vec<String> = r
            .takes_from
            .iter()
            .map(|f| escape(f).into_owned())
            .collect();
        println!("input    takes the output of {}", from.join(", "));
    }
    if let Some(when) = &r.when {
        let decided = match r.decided {
            Some(true) => "true: it went on",
            Some(false) => "false: skipped",
            None => "not read yet",
        };
        println!("when     {} → {decided}", excerpt(when, 200));
    }
    if let Some(why) = &r.reason {
        println!("reason   {}", excerpt(why, 400));
    }
    if let Some(from) = &r.handoff_from {
        println!("took over from {}", escape(from));
    }
    if let Some(p) = &r.progress {
        let message = match p.message.is_empty() {
            true => String::new(),
            false => format!(": {}", excerpt(&p.message, 200)),
        };
        println!("progress {} of {}{message}", p.done, p.total);
    }
    let children = r.children.as_deref().unwrap_or_default();
    if !children.is_empty() {
        println!("children {}", children.len());
        for c in children {
            let why = c
                .reason
                .as_deref()
                .filter(|_| c.state != State::Succeeded.name());
            let why = why.map_or_else(String::new, |w| excerpt(w, 120));
            let line = format!(
                "  {:<24} {:<20} {:<17} {why}",
                escape(&c.id),
                escape(&c.agent),
                escape(&c.state)
            );
            println!("{}", line.trim_end());
        }
    }
    println!("history");
    for t in r.history.iter().flatten() {
        let by =
            t.by.as_deref()
                .map_or_else(String::new, |b| format!(" (by {})", escape(b)));
        println!(
            "  {}  {:<17} {}{by}",
            escape(&t.at),
            escape(&t.state),
            excerpt(&t.reason, 200)
        );
    }
    super::attempts::print_attempts(r.runs.as_deref().unwrap_or_default());
}

pub fn approve(args: ApproveArgs) -> Result<(), Failure> {
    let body = Approval {
        by: args.by,
        note: args.note,
    };
    act(
        &args.server,
        &format!("/api/runways/{}/approve", encode(&args.id)),
        body,
        "approved",
        &args.id,
    )
}

pub fn reject(args: RejectArgs) -> Result<(), Failure> {
    let body = Rejection {
        by: args.by,
        reason: args.reason,
    };
    act(
        &args.server,
        &format!("/api/runways/{}/reject", encode(&args.id)),
        body,
        "rejected",
        &args.id,
    )
}

pub fn cancel(args: CancelArgs) -> Result<(), Failure> {
    let body = Who { by: args.by };
    act(
        &args.server,
        &format!("/api/runways/{}/cancel", encode(&args.id)),
        body,
        "cancelled",
        &args.id,
    )
}

pub fn pause(args: ByArgs) -> Result<(), Failure> {
    let body = Who { by: args.by };
    act(&args.server, "/api/pause", body, "paused", "clearing")
}

pub fn resume(args: ByArgs) -> Result<(), Failure> {
    let body = Who { by: args.by };
    act(&args.server, "/api/resume", body, "resumed", "clearing")
}

/// One command: POST `body` to `path`, then say `done what`.
pub(super) fn act(
    server: &ServerArgs,
    path: &str,
    body: impl Serialize,
    done: &str,
    what: &str,
) -> Result<(), Failure> {
    let client = Client::new(server)?;
    let answer: Done = client.call(path, Some(Body::of(&body)?))?;
    client.print(&answer, |_| println!("{done} {}", escape(what)));
    Ok(())
}

pub fn wait(args: WaitArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let progress = Progress::when_watched(args.ids.len(), client.json);
    let stop = AtomicBool::new(false);
    let answer = std::thread::scope(|scope| {
        if let Some(progress) = &progress {
            scope.spawn(|| watch(&client, &args.ids, progress, &stop));
        }
        let answer = wait_for(&client, &args);
        stop.store(true, Ordering::Relaxed);
        answer
    });
    if let Some(progress) = &progress {
        progress.finish();
    }
    let answer = answer?;
    let runways = answer.runways.as_deref().unwrap_or_default();
    client.print(&answer, |_| {
        for r in runways {
            println!(
                "{:<24} {:<10} {}",
                escape(&r.id),
                escape(&r.state),
                excerpt(r.reason.as_deref().unwrap_or_default(), 200)
            );
        }
    });
    let failed = runways
        .iter()
        .filter(|r| r.state != State::Succeeded.name())
        .count();
    if failed > 0 {
        let why = anyhow::anyhow!("{failed} of {} runway(s) did not succeed", runways.len());
        return Err(Failure::new(RUNWAY_FAILED, why));
    }
    Ok(())
}

/// Shows where each of `ids` stands until `stop` (polling the list: the
/// wait itself answers only once all have ended).
fn watch(client: &Client, ids: &[String], progress: &Progress, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(listed) = client.call::<RunwayList>("/api/runways", None) {
            for r in &listed.runways {
                let state = State::ALL.iter().find(|s| s.name() == r.state);
                if let Some(state) = state.filter(|_| ids.contains(&r.id)) {
                    progress.set(&r.id, *state, r.reason.as_deref().unwrap_or_default());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `/api/wait` until all of them ended or the timeout passed.
fn wait_for(client: &Client, args: &WaitArgs) -> Result<WaitView, Failure> {
    let deadline = args
        .timeout_secs
        .map(|s| std::time::Instant::now() + Duration::from_secs(s));
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let secs = left.map_or(MAX_WAIT_SECS, |l| l.as_secs().clamp(1, MAX_WAIT_SECS));
        let body = WaitFor {
            runways: args.ids.clone(),
            timeout_secs: Some(secs),
        };
        let answer: WaitView = client.call("/api/wait", Some(Body::of(&body)?))?;
        if answer.done {
            return Ok(answer);
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            let why = anyhow::anyhow!("gave up waiting after {} s", args.timeout_secs.unwrap_or(0));
            return Err(Failure::new(HOST_FAULT, why));
        }
    }
}

/// TLS trusting the certificates in the PEM file `ca` only.
fn trusting(ca: &std::path::Path) -> Result<ureq::tls::TlsConfig, Failure> {
    let bad = |why: String| {
        Failure::new(
            BAD_INPUT,
            anyhow::anyhow!("--ca-file {}: {why}", ca.display()),
        )
    };
    let pem = crate::files::read(ca, crate::files::FileKind::Key, &ReadCaps::default())
        .map_err(|e| bad(e.to_string()))?;
    let certs = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

/// `s` percent-encoded for a URL path segment or query value.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
