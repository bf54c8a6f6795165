//! A standby's door: while a host on a shared database stands by, it
//! listens on its `--listen` address all the same and relays every
//! request — the API, the page, MCP, the event stream, metrics — to the
//! host that leads, so operators see one system whichever host they call
//! (DESIGN.md, "Beyond one machine"). The leader's answer comes back as it
//! is, streamed (an event stream stays open), with `runway-relayed-by`
//! naming this host; the caller's bearer token goes on to the leader,
//! which alone decides.
//!
//! Where the leader listens is the database's `hosts.api` of the host
//! that holds the lease, looked up at most every [`LOOKUP`]. With no
//! leader (a takeover in progress), or with this host itself about to
//! lead (its controller still folding), the answer is 503, saying so. A
//! leader listening on https is not relayed to yet (the answer says so).
//! When this host takes the lead, `serve` stops the relay and serves
//! the API itself on the same socket.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::refusal::{Kind, Refusal};
use crate::store::{DatabaseUrl, DatasetStore, Shared};

/// How long a leader's address is trusted before it is looked up again.
const LOOKUP: Duration = Duration::from_millis(500);

/// How long the leader has to accept a connection.
const CONNECT: Duration = Duration::from_secs(5);

/// The header naming the host that relayed an answer.
const RELAYED_BY: HeaderName = HeaderName::from_static("runway-relayed-by");

/// Headers that belong to one hop and are not passed on (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What the relay needs: the database, read through a session of its
/// own (opened at the first lookup: the host may not have migrated it
/// yet), and this host's origin.
#[derive(Clone)]
pub struct Relay {
    url: DatabaseUrl,
    database: Arc<Mutex<Option<DatasetStore>>>,
    origin: String,
    found: Arc<Mutex<Option<Found>>>,
}

/// The leader's address (or why there is none to relay to), and when it
/// was looked up.
type Found = (Instant, Result<String, String>);

impl Relay {
    /// Relays for host `origin`, finding the leader in the database at
    /// `url`.
    pub fn new(url: &DatabaseUrl, origin: &str) -> Relay {
        Relay {
            url: url.clone(),
            database: Arc::default(),
            origin: origin.to_string(),
            found: Arc::default(),
        }
    }

    /// Every route relayed.
    pub fn router(self) -> Router {
        Router::new().fallback(relay).with_state(self)
    }

    /// The leader's API address (`http://host:port`), or why there is
    /// none to relay to; looked up again once [`LOOKUP`] has passed.
    async fn leader(&self) -> Result<String, String> {
        if let Some((at, found)) = &*lock(&self.found)
            && at.elapsed() < LOOKUP
        {
            return found.clone();
        }
        let relay = self.clone();
        let found = tokio::task::spawn_blocking(move || relay.look_up())
            .await
            .unwrap_or_else(|e| Err(format!("the lookup failed: {e}")));
        *lock(&self.found) = Some((Instant::now(), found.clone()));
        found
    }

    /// Where the host holding the lease listens, as the database says
    /// (blocking).
    fn look_up(&self) -> Result<String, String> {
        let mut database = lock(&self.database);
        if database.is_none() {
            let opened = DatasetStore::open_postgres_read_only(&self.url);
            *database = Some(opened.map_err(|e| e.to_string())?);
        }
        let shared = database.as_ref().and_then(DatasetStore::shared);
        let shared = shared.expect("a PostgreSQL store is shared");
        leader_api(shared, &self.origin)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the host holding the lease listens, unless it is `origin`'s.
fn leader_api(shared: &Shared, origin: &str) -> Result<String, String> {
    let leader = shared.leader().map_err(|e| e.to_string())?;
    let Some(leader) = leader.filter(|l| l.expires_in_ms > 0) else {
        return Err("no host leads right now (a takeover is under way)".into());
    };
    if leader.origin == origin {
        return Err(format!(
            "this host ({origin}) is taking the lead and will answer itself in a moment"
        ));
    }
    let hosts = shared.hosts().map_err(|e| e.to_string())?;
    let api = hosts
        .into_iter()
        .find(|h| h.origin == leader.origin)
        .and_then(|h| h.api);
    api.ok_or_else(|| {
        format!(
            "host {} leads (term {}) but does not listen yet",
            leader.origin, leader.term
        )
    })
}

/// Relays `req` to the leader and its answer back.
async fn relay(State(relay): State<Relay>, req: Request) -> Response {
    let unavailable = |why: String| {
        let refusal = Refusal::new(Kind::Stopping, format!("{why}; try again shortly"));
        let mut response = refusal.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    };
    let leader = match relay.leader().await {
        Ok(leader) => leader,
        Err(why) => return unavailable(why),
    };
    match forward(&leader, req).await {
        Ok(mut response) => {
            if let Ok(origin) = HeaderValue::from_str(&relay.origin) {
                response.headers_mut().insert(RELAYED_BY, origin);
            }
            response
        }
        Err(why) => {
            // The leader may be the one that just died: look again soon.
            *lock(&relay.found) = None;
            unavailable(format!("the leader at {leader} did not answer: {why}"))
        }
    }
}

/// Sends `req` to `leader` (`http://host:port`) over a connection of its
/// own, and hands its answer back, the body streamed.
async fn forward(leader: &str, mut req: Request) -> Result<Response, String> {
    let Some(authority) = leader.strip_prefix("http://") else {
        return Err(format!(
            "{leader} is https, and relaying over TLS is not supported yet: call the leader itself"
        ));
    };
    let connect = tokio::net::TcpStream::connect(authority);
    let stream = tokio::time::timeout(CONNECT, connect)
        .await
        .map_err(|_| format!("no connection within {CONNECT:?}"))?
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *req.uri_mut() = Uri::try_from(path).map_err(|e| e.to_string())?;
    let headers = req.headers_mut();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let host = HeaderValue::from_str(authority).map_err(|e| e.to_string())?;
    headers.insert(header::HOST, host);
    let answer = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (mut parts, body) = answer.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}
