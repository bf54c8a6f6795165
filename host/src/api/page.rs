//! The status page: one HTML shell, a script and a style sheet, compiled
//! into the binary (no CDN; works offline). The shell needs no token; the
//! script asks for one and calls the API with it, so the page can do
//! exactly what its token's roles allow. Its sections: the board of
//! runways (filters by agent, dataset, state; a delegated runway names its
//! parent), each runway's page (its delegation tree: the parent it was
//! delegated by, its tree's progress bar and every runway below it, each
//! under its parent with its state, kept live; manifest, transitions,
//! locks held or its place in line, its audit records with their
//! inclusion proofs), approvals with Approve / Reject,
//! the lock table, the plugins, and `/audit?dataset=NAME` (or `runway=`,
//! `agent=`): the trail growing live. The board groups runways by the
//! filing that filed them, with each run's start, end and duration, and
//! the panels of upcoming firings and agents' health when the server
//! answers for them; a filing's page (`/filings/SEQ`) draws its graph
//! ([`GRAPH`]: runways by state, `after`, data and delegation edges,
//! conditions, children folded under their parent) and its timeline
//! ([`GANTT`]: each run's waits and flight, one lane per dataset); a
//! runway's page shows its attempts, log lines, input and output inline,
//! and offers an operator Retry / Re-file. Its icon is served at
//! `/favicon.svg` and, for browsers that ask without being told,
//! `/favicon.ico` (the same SVG).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::calls::Api;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
/// A filing's graph, drawn as SVG (loaded before [`SCRIPT`]).
const GRAPH: &str = include_str!("page/graph.js");
/// Runs on a time axis, one lane per dataset (loaded before [`SCRIPT`]).
const GANTT: &str = include_str!("page/gantt.js");
const STYLE: &str = include_str!("page/style.css");
const ICON: &str = include_str!("page/favicon.svg");

/// What every answer of the page carries: its own assets only, no framing,
/// no referrer.
const HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-cache"),
];

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (HEADERS, [(header::CONTENT_TYPE, content_type)], body)
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// The page's routes (the shell at each of its paths, and its assets).
pub fn routes() -> Router<Api> {
    let mut router = Router::new();
    for path in [
        "/",
        "/approvals",
        "/locks",
        "/plugins",
        "/audit",
        "/runways/{id}",
        "/filings/{seq}",
    ] {
        router = router.route(path, get(index));
    }
    router
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/graph.js",
            get(|| async { asset("text/javascript; charset=utf-8", GRAPH) }),
        )
        .route(
            "/assets/gantt.js",
            get(|| async { asset("text/javascript; charset=utf-8", GANTT) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/favicon.svg", get(icon))
        .route("/favicon.ico", get(icon))
}

async fn icon() -> impl IntoResponse {
    asset("image/svg+xml", ICON)
}
