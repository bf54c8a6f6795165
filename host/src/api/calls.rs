//! What a caller may ask of a running controller, behind both of its doors
//! — the HTTP API ([`super::http`]) and the MCP server ([`super::mcp`]) —
//! so that filing, listing, showing, waiting and each move are decided,
//! audited and answered the same way whichever door they came through.
//!
//! Each call takes the [`Caller`] the door authenticated and answers one
//! of the [`views`]' types or a [`Refusal`]: its kind and why. Whether the
//! caller may make a move is the controller's to decide (the command
//! carries the caller); refusals that matter to an auditor — a right not
//! held, a filing refused, a move refused — are audited in the caller's
//! name before they are answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use runway_audit::PublicKey;

use super::access::{Access, Caller};
use super::events::Events;
use super::metrics::Metrics;
use super::refusal::{Kind, Refusal};
use super::refusals::Refusals;
use super::views;
use crate::controller::plan::{Plan, cap_reason, rejection};
use crate::controller::{Command, Controller, Filing, Host};

/// Longest one wait waits before it answers "not yet".
pub const MAX_WAIT_SECS: u64 = 60;

/// What every call shares.
#[derive(Clone)]
pub struct Api {
    pub host: Arc<Host>,
    pub controller: Controller,
    pub access: Arc<Access>,
    /// Largest request body (a plan), in bytes.
    pub max_body: usize,
    /// The trail's live end, when the audit log keeps one.
    pub events: Option<Arc<Events>>,
    pub metrics: Arc<Metrics>,
    /// Served beyond loopback without TLS (the page shows a red banner).
    pub insecure: bool,
    /// The key that signs this trail's checkpoints (what `verify` trusts).
    pub signer: Option<PublicKey>,
    /// The address the API listens on, when it listens.
    pub listen: Option<SocketAddr>,
    /// Refused requests: per-peer buckets, summaries, the audit reserve.
    pub refusals: Arc<Refusals>,
}

/// What the handlers that need only a part of the API take as their state
/// (so [`super::events`] and [`super::metrics`] need not know [`Api`]).
impl FromRef<Api> for Arc<Host> {
    fn from_ref(api: &Api) -> Arc<Host> {
        api.host.clone()
    }
}

impl FromRef<Api> for Controller {
    fn from_ref(api: &Api) -> Controller {
        api.controller.clone()
    }
}

impl FromRef<Api> for Arc<Metrics> {
    fn from_ref(api: &Api) -> Arc<Metrics> {
        api.metrics.clone()
    }
}

impl FromRef<Api> for Option<Arc<Events>> {
    fn from_ref(api: &Api) -> Option<Arc<Events>> {
        api.events.clone()
    }
}

/// A call's answer: a view, or why not.
pub type Answered<T> = Result<T, Refusal>;

impl Api {
    pub fn new(host: Arc<Host>, controller: Controller, access: Access, max_body: usize) -> Api {
        let events = Events::new(&host.audit).map(Arc::new);
        let reserve = crate::limits::AUDIT_RESERVE_MIB << 20;
        let refusals = Arc::new(Refusals::new(host.audit.clone(), reserve));
        Api {
            host,
            controller,
            access: Arc::new(access),
            max_body,
            events,
            metrics: Arc::default(),
            insecure: false,
            signer: None,
            listen: None,
            refusals,
        }
    }

    /// `why`, audited as a refused API request, as a refusal of `kind`.
    pub fn refused(&self, kind: Kind, why: String) -> Refusal {
        let reason = cap_reason(&format!("API request refused: {why}"));
        match self.refusals.audit(&reason) {
            Ok(()) => Refusal::new(kind, why),
            Err(e) => Refusal::new(Kind::HostFault, e.to_string()),
        }
    }

    /// Files the plan or manifest `text` (TOML or JSON) in `caller`'s name;
    /// the new runway ids once their filing is durable. A plan refused is
    /// audited naming `source` and the caller.
    pub async fn file(
        &self,
        caller: &Caller,
        text: &str,
        source: String,
    ) -> Answered<views::FiledList> {
        let plan = match Plan::parse(text, &*self.host.plugins()) {
            Ok(plan) => plan,
            Err(e) => {
                let reason = cap_reason(&format!(
                    "filing refused ({source}, by {}): {e}",
                    caller.name
                ));
                if let Err(e) = self.host.audit.append(rejection(&reason)) {
                    return Err(Refusal::new(Kind::HostFault, e.to_string()));
                }
                return Err(Refusal::new(Kind::BadInput, e.to_string()));
            }
        };
        let triggers = plan.triggers.iter().map(|t| t.id.clone()).collect();
        let filing = Filing {
            plan,
            by: caller.name.clone(),
            source,
            digest: runway_audit::sha256(text.as_bytes()),
            once: false,
        };
        Ok(views::filed(self.controller.file(filing).await?, triggers))
    }

    /// The runways (no histories) `filter` shows.
    pub async fn list(&self, filter: &views::RunwayFilter) -> Answered<views::RunwayList> {
        filter
            .check()
            .map_err(|why| Refusal::new(Kind::BadInput, why))?;
        let all = self.controller.list().await?;
        let tree = filter.tree_members(&all);
        let runways = all
            .iter()
            .filter(|r| filter.matches(r))
            .filter(|r| tree.as_ref().is_none_or(|t| t.contains(&r.id)))
            .map(views::runway)
            .collect();
        Ok(views::RunwayList { runways })
    }

    /// One runway with its history, its children (with their states) and
    /// its tree's progress.
    pub async fn show(&self, id: &str) -> Answered<views::RunwayView> {
        let report = self.controller.show(id).await?;
        // One list for all the children's states, however many they are.
        let reports = match report.children.is_empty() {
            true => Vec::new(),
            false => self.controller.list().await?,
        };
        Ok(views::shown(&report, &reports))
    }

    /// Waits up to `timeout_secs` (at most [`MAX_WAIT_SECS`]; more is
    /// refused) for `runways` to end: `{"done": true, "runways": [...]}`,
    /// or `{"done": false}`.
    pub async fn wait(
        &self,
        runways: Vec<String>,
        timeout_secs: Option<u64>,
    ) -> Answered<views::WaitView> {
        let secs = timeout_secs.unwrap_or(MAX_WAIT_SECS);
        if secs > MAX_WAIT_SECS {
            let why = format!("timeout_secs {secs} is over {MAX_WAIT_SECS}; wait again instead");
            return Err(Refusal::new(Kind::BadInput, why));
        }
        let waited =
            tokio::time::timeout(Duration::from_secs(secs), self.controller.wait(runways)).await;
        let runways = match waited {
            Ok(reports) => Some(reports?.iter().map(views::runway).collect()),
            Err(_) => None,
        };
        Ok(views::WaitView {
            done: runways.is_some(),
            runways,
        })
    }

    /// Approves runway `id` in `caller`'s name, if the controller lets
    /// them (the role it waits for; four eyes).
    pub async fn approve(&self, caller: &Caller, id: &str, note: &str) -> Answered<views::Done> {
        let approve = Command::Approve {
            runway: id.to_string(),
            by: caller.clone(),
            note: cap_reason(note),
        };
        self.command(approve).await
    }

    /// Rejects runway `id` in `caller`'s name; a reason is required.
    pub async fn reject(&self, caller: &Caller, id: &str, reason: &str) -> Answered<views::Done> {
        if reason.trim().is_empty() {
            let why = "a rejection needs a reason".to_string();
            return Err(Refusal::new(Kind::BadInput, why));
        }
        let reject = Command::Reject {
            runway: id.to_string(),
            by: caller.clone(),
            reason: cap_reason(reason),
        };
        self.command(reject).await
    }

    /// Cancels runway `id` in `caller`'s name.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Answered<views::Done> {
        let cancel = Command::Cancel {
            runway: id.to_string(),
            by: caller.clone(),
        };
        self.command(cancel).await
    }

    /// Stops clearing new runways (`pause`) or goes on (`resume`).
    pub async fn pause(&self, caller: &Caller, pause: bool) -> Answered<views::Done> {
        let by = caller.clone();
        let command = if pause {
            Command::Pause { by }
        } else {
            Command::Resume { by }
        };
        self.command(command).await
    }

    /// Sends `command`; a refusal is audited in its caller's name.
    pub(super) async fn command(&self, command: Command) -> Answered<views::Done> {
        let name = command.by().name.clone();
        if let Err(e) = self.controller.send(command).await {
            let Refusal { kind, why } = Refusal::from(e);
            return Err(self.refused(kind, format!("{name}: {why}")));
        }
        Ok(views::Done { ok: true })
    }
}
