//! What a caller may ask of a running controller, behind both of its doors
//! — the HTTP API ([`super::http`]) and the MCP server ([`super::mcp`]) —
//! so that filing, listing, showing, waiting and each move are decided,
//! audited and answered the same way whichever door they came through.
//!
//! Each call takes the [`Caller`] the door authenticated and answers JSON
//! (the shapes of [`views`]) or a [`Refusal`]: a status and why. Refusals
//! that matter to an auditor — a right not held, a filing refused, a move
//! refused — are audited in the caller's name before they are answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use runway_audit::PublicKey;
use runway_audit::render::escape;
use serde_json::Value;

use super::access::{Access, Caller};
use super::events::Events;
use super::metrics::Metrics;
use super::refusal::Refusal;
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

/// A call's answer.
pub type Answered = Result<Value, Refusal>;

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

    /// `why`, audited as a refused API request, as a refusal with `status`.
    pub fn refused(&self, status: StatusCode, why: String) -> Refusal {
        let reason = cap_reason(&format!("API request refused: {why}"));
        match self.refusals.audit(&reason) {
            Ok(()) => Refusal(status, why),
            Err(e) => Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }

    /// Files the plan or manifest `text` (TOML or JSON) in `caller`'s name;
    /// the new runway ids once their filing is durable. A plan refused is
    /// audited naming `source` and the caller.
    pub async fn file(&self, caller: &Caller, text: &str, source: String) -> Answered {
        let plan = match Plan::parse(text, &*self.host.plugins()) {
            Ok(plan) => plan,
            Err(e) => {
                let reason = cap_reason(&format!(
                    "filing refused ({source}, by {}): {e}",
                    caller.name
                ));
                if let Err(e) = self.host.audit.append(rejection(&reason)) {
                    return Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
                }
                return Err(Refusal(StatusCode::BAD_REQUEST, e.to_string()));
            }
        };
        let filing = Filing {
            plan,
            by: caller.name.clone(),
            source,
            digest: runway_audit::sha256(text.as_bytes()),
            once: false,
        };
        let filed = self.controller.file(filing).await?;
        let runways = filed
            .into_iter()
            .map(|f| views::FiledRunway {
                name: f.name,
                id: f.id,
            })
            .collect();
        Ok(views::json(views::FiledList { runways }))
    }

    /// The runways (no histories), of one state and one agent when named.
    pub async fn list(&self, state: Option<&str>, agent: Option<&str>) -> Answered {
        if let Some(state) = state
            && !runway_audit::State::ALL.iter().any(|s| s.name() == state)
        {
            let known: Vec<&str> = runway_audit::State::ALL.iter().map(|s| s.name()).collect();
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                format!("no state {:?} (one of {})", escape(state), known.join(", ")),
            ));
        }
        let runways = self
            .controller
            .list()
            .await?
            .iter()
            .filter(|r| state.is_none_or(|s| r.state.name() == s))
            .filter(|r| agent.is_none_or(|a| r.agent == a))
            .map(views::runway_view)
            .collect();
        Ok(views::json(views::RunwayList { runways }))
    }

    /// One runway with its history.
    pub async fn show(&self, id: &str) -> Answered {
        Ok(views::runway(&self.controller.show(id).await?))
    }

    /// Waits up to `timeout_secs` (at most [`MAX_WAIT_SECS`]; more is
    /// refused) for `runways` to end: `{"done": true, "runways": [...]}`,
    /// or `{"done": false}`.
    pub async fn wait(&self, runways: Vec<String>, timeout_secs: Option<u64>) -> Answered {
        let secs = timeout_secs.unwrap_or(MAX_WAIT_SECS);
        if secs > MAX_WAIT_SECS {
            let why = format!("timeout_secs {secs} is over {MAX_WAIT_SECS}; wait again instead");
            return Err(Refusal(StatusCode::BAD_REQUEST, why));
        }
        let waited =
            tokio::time::timeout(Duration::from_secs(secs), self.controller.wait(runways)).await;
        let runways = match waited {
            Ok(reports) => Some(reports?.iter().map(views::runway_view).collect()),
            Err(_) => None,
        };
        Ok(views::json(views::WaitView {
            done: runways.is_some(),
            runways,
        }))
    }

    /// Approves runway `id` in `caller`'s name, if they hold the role it
    /// waits for (and did not file it, while four eyes are on).
    pub async fn approve(&self, caller: &Caller, id: &str, note: &str) -> Answered {
        let wanted = self.controller.show(id).await?.manifest.approval.clone();
        if let Some(role) = wanted.filter(|role| !caller.holds(role)) {
            let why = format!(
                "{} ({}) may not approve runway {id}: it waits for the role {role}",
                caller.name,
                caller.roles_shown()
            );
            return Err(self.refused(StatusCode::FORBIDDEN, why));
        }
        let approve = Command::Approve {
            runway: id.to_string(),
            by: caller.name.clone(),
            note: cap_reason(note),
        };
        self.command(caller, approve).await
    }

    /// Rejects runway `id` in `caller`'s name; a reason is required.
    pub async fn reject(&self, caller: &Caller, id: &str, reason: &str) -> Answered {
        if reason.trim().is_empty() {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                "a rejection needs a reason".into(),
            ));
        }
        let reject = Command::Reject {
            runway: id.to_string(),
            by: caller.name.clone(),
            reason: cap_reason(reason),
        };
        self.command(caller, reject).await
    }

    /// Cancels runway `id` in `caller`'s name.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Answered {
        let cancel = Command::Cancel {
            runway: id.to_string(),
            by: caller.name.clone(),
        };
        self.command(caller, cancel).await
    }

    /// Stops clearing new runways (`pause`) or goes on (`resume`).
    pub async fn pause(&self, caller: &Caller, pause: bool) -> Answered {
        let by = caller.name.clone();
        let command = if pause {
            Command::Pause { by }
        } else {
            Command::Resume { by }
        };
        self.command(caller, command).await
    }

    /// Sends `command`; a refusal is audited in the caller's name.
    async fn command(&self, caller: &Caller, command: Command) -> Answered {
        if let Err(e) = self.controller.send(command).await {
            let Refusal(status, why) = Refusal::from(e);
            return Err(self.refused(status, format!("{}: {why}", caller.name)));
        }
        Ok(views::json(views::Done { ok: true }))
    }
}
