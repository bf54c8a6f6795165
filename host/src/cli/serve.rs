//! `runway serve`: the controller as a server — the HTTP API on loopback
//! (`crate::api`), a plugins folder followed and a plans inbox taken
//! (`crate::api::inbox`) — until SIGINT or SIGTERM.
//!
//! The first signal stops clearing and taking plans; runs in the air land
//! within `--grace-secs`, then (or at a second signal) they are stopped:
//! FAILED as a crash would leave them, retried by their policy at the next
//! start (only a person's cancel is final).
//! Runways still waiting stay in the trail and wait again at the next start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use clap::Args;
use runway_audit::render::escape;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::host_args::{HostArgs, timeline_printer, tokio};
use super::{BAD_INPUT, Failure, HOST_FAULT};
use crate::api::access::{self, Access};
use crate::api::refusals::Refusals;
use crate::api::{self, Api, Relay, token};
use crate::controller::start::PluginSource;
use crate::files::{self, FileKind, ReadCaps};
use crate::plugin::watch::PluginFolder;
use crate::store::StoreConfig;
use crate::{DispatchOptions, controller};

/// The address `serve` listens on and clients call by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

#[derive(Args)]
pub struct ServeArgs {
    /// Plugins folder to follow (`NAME.wasm` + `NAME.toml`).
    #[arg(long, value_name = "DIR")]
    plugins: PathBuf,
    /// Drop plan files here; they move to flying/, filed/ (with their
    /// runway ids), then done/ (with a NAME.json report) or rejected/ (with
    /// NAME.error.txt).
    #[arg(long, value_name = "DIR", default_value = "runway-inbox")]
    inbox: PathBuf,
    /// Address of the HTTP API (port 0: any free port; the address taken is
    /// written to runway-serve.addr beside the token file).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Listen beyond loopback, without TLS.
    #[arg(long, conflicts_with = "tls_cert")]
    insecure: bool,
    /// Serve the API over TLS with this certificate chain (PEM); needs
    /// --tls-key. Clients trust it with --ca-file (or a public CA).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The API's bearer token; made (mode 0600) at first start. Default:
    /// runway-serve.token beside the audit folder.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Names, roles and SHA-256 of the other callers' tokens (`runway token
    /// add`). Default: runway-tokens.toml beside the token file.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    /// Let whoever filed a runway approve it too (four eyes off).
    #[arg(long)]
    allow_self_approval: bool,
    /// After a stop signal, runs in the air get this long to land before
    /// they are stopped (and retried by their policy at the next start).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    grace_secs: u64,
    /// Free space (MiB) on the audit folder's disk that records of refused
    /// requests leave to the runways' own records: below it, refusals are
    /// only counted until there is room again.
    #[arg(long, value_name = "MIB", default_value_t = crate::limits::AUDIT_RESERVE_MIB)]
    audit_reserve_mib: u64,
    /// Requests without a known token audited one by one per peer address
    /// before they are answered 429 and summed (then one a second more);
    /// raise it when many clients share an address.
    #[arg(long, value_name = "N", default_value_t = crate::limits::REFUSAL_BURST)]
    refusal_burst: u32,
    /// Keep the datasets in PostgreSQL: a file (mode 0600) holding the
    /// connection string, e.g. `postgresql:///runway?host=/run/postgresql`.
    /// The string may also come from the environment variable
    /// RUNWAY_DATABASE_URL; never on the command line (it holds a password).
    #[arg(long, value_name = "FILE")]
    database_file: Option<PathBuf>,
    /// On a shared database: how long this host's lead lasts without
    /// renewal (renewed every quarter of it). Another host takes over
    /// about this long after the leader dies.
    #[arg(long, value_name = "MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(400..=600_000))]
    lease_ms: u64,
    #[command(flatten)]
    host: HostArgs,
}

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let beyond = !args.listen.ip().is_loopback();
    if beyond && !args.insecure && args.tls_cert.is_none() {
        return Err(Failure::new(
            BAD_INPUT,
            anyhow::anyhow!(
                "--listen {}: beyond loopback the API would go unencrypted; give it --tls-cert and --tls-key, or add --insecure to mean it",
                args.listen
            ),
        ));
    }
    let fault = |e: anyhow::Error| Failure::new(HOST_FAULT, e);
    let runtime = args.host.runtime()?;
    let caps = args.host.caps();
    let token_file = args
        .token_file
        .clone()
        .unwrap_or_else(|| token::beside(&args.host.audit.path));
    let token = token::ensure(&token_file, &caps).map_err(|e| Failure::new(BAD_INPUT, e))?;
    let tls_pem = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_pem(cert, key, &caps)?),
        _ => None,
    };
    let tokens_file = args
        .tokens_file
        .clone()
        .unwrap_or_else(|| access::tokens_beside(&token_file));
    let access = Access::new(&token, tokens_file, caps).map_err(|e| Failure::new(BAD_INPUT, e))?;
    let folder = PluginFolder::new(&args.plugins, runtime.clone())
        .with_policy(args.host.policy()?)
        .with_caps(caps);
    // Every agent is known (and its loading audited) before a restored
    // runway can be cleared.
    let lease = Duration::from_millis(args.lease_ms);
    let mut store = super::database::store_config(args.database_file.as_deref(), &caps, lease)?;
    let tokio = tokio()?;
    // A certificate or key rustls refuses stops the start before anything
    // else has begun.
    let tls = match tls_pem {
        Some((cert, key)) => Some(tokio.block_on(RustlsConfig::from_pem(cert, key)).map_err(
            |e| {
                Failure::new(
                    BAD_INPUT,
                    anyhow::anyhow!("the TLS certificate or key: {e}"),
                )
            },
        )?),
        None => None,
    };
    let listener = std::net::TcpListener::bind(args.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| fault(anyhow::anyhow!("cannot listen on {}: {e}", args.listen)))?;
    // On a shared database the host may stand by a while: meanwhile its
    // address answers by relaying to the leader. It is listed with the
    // host when it joins.
    let relaying = match &mut store {
        StoreConfig::Postgres { url, api, .. } => {
            let bound = listener.local_addr().map_err(|e| fault(e.into()))?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            *api = Some(format!("{scheme}://{bound}"));
            let relay = Relay::new(url, &args.host.origin()).router();
            let (stop, stopped) = watch::channel(false);
            let socket = listener.try_clone().map_err(|e| fault(e.into()))?;
            let until = async move {
                let mut stopped = stopped;
                let _ = stopped.wait_for(|&s| s).await;
            };
            let served = tokio.spawn(api::serve_app(socket, relay, tls.clone(), until));
            Some((stop, served))
        }
        StoreConfig::Embedded => None,
    };
    let (opened, signer) = args.host.open(
        &runtime,
        PluginSource::Folder(folder),
        api::events::TAIL_RECORDS,
        &store,
    )?;
    let host = opened.host;
    let folder = opened.folder.expect("a folder was scanned");
    let audit = host.audit.clone();
    let opts = DispatchOptions {
        observer: timeline_printer(),
        four_eyes: !args.allow_self_approval,
        ..DispatchOptions::default()
    };
    tokio.block_on(async {
        // Leading now: the relay gives the socket back (its streams get a
        // second to end) and the host answers itself.
        if let Some((stop, served)) = relaying {
            let _ = stop.send(true);
            let _ = served.await;
        }
        let (controller, task) =
            controller::start(host.clone(), opts).map_err(|e| fault(e.into()))?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| fault(e.into()))?;
        let bound = listener.local_addr().map_err(|e| fault(e.into()))?;
        let addr_file = token_file.with_file_name("runway-serve.addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::fs::write(&addr_file, format!("{scheme}://{bound}\n"))
            .map_err(|e| fault(anyhow::anyhow!("cannot write {}: {e}", addr_file.display())))?;
        eprintln!(
            "runway: serving {} (plans: {}) and the API on {scheme}://{bound} (token in {}); \
             SIGINT or SIGTERM stops (runs in flight land first)",
            escape(&args.plugins.display().to_string()),
            escape(&args.inbox.display().to_string()),
            escape(&token_file.display().to_string()),
        );
        let signals = signals().map_err(|e| fault(e.into()))?;
        let max_body = usize::try_from(caps.plan).unwrap_or(usize::MAX);
        let api = Api {
            insecure: beyond && tls.is_none(),
            signer,
            listen: Some(bound),
            refusals: std::sync::Arc::new(Refusals::with_burst(
                host.audit.clone(),
                args.audit_reserve_mib.saturating_mul(1 << 20),
                args.refusal_burst,
            )),
            ..Api::new(host.clone(), controller.clone(), access, max_body)
        };
        let (api_stop, api_stopped) = watch::channel(false);
        let api_task = tokio::spawn(api::serve(listener, api, tls, async move {
            let mut stopped = api_stopped;
            let _ = stopped.wait_for(|&s| s).await;
        }));
        let first = {
            let mut s = signals.clone();
            async move {
                let _ = s.wait_for(|&n| n >= 1).await;
                eprintln!("runway: stopping: nothing more is cleared; runs in flight land first");
            }
        };
        let served = crate::api::inbox::serve(
            host.clone(),
            controller.clone(),
            folder,
            &args.inbox,
            caps,
            first,
        )
        .await;
        // Runs in the air land within the grace period, or are stopped:
        // they FAIL as a crash would leave them and are retried by their
        // policy at the next start (only a person's cancel is final).
        let grace = Duration::from_secs(args.grace_secs);
        let mut second = signals.clone();
        let canceller = controller.clone();
        let cancel = tokio::spawn(async move {
            let again = second.wait_for(|&n| n >= 2);
            if tokio::time::timeout(grace, again).await.is_ok() {
                eprintln!(
                    "runway: second signal: stopping the runs in flight (retried by their policy at the next start)"
                );
            } else {
                eprintln!(
                    "runway: grace period over: stopping the runs in flight (retried by their policy at the next start)"
                );
            }
            canceller.stop(true);
        });
        controller.stop(false);
        let ended = task.await;
        cancel.abort();
        let _ = api_stop.send(true);
        let _ = api_task.await;
        served.map_err(|e| fault(e.into()))?;
        match ended {
            Ok(ended) => ended.map_err(|e| fault(e.into()))?,
            Err(e) => return Err(fault(anyhow::anyhow!("the controller panicked: {e}"))),
        }
        audit.sync().map_err(|e| fault(e.into()))
    })
}

/// The PEM certificate chain and key at `cert` and `key`, read as any
/// operator file (regular files within the key cap; no links, no FIFOs).
fn tls_pem(cert: &Path, key: &Path, caps: &ReadCaps) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let read = |path: &Path| {
        files::read(path, FileKind::Key, caps)
            .map_err(|e| Failure::new(BAD_INPUT, anyhow::anyhow!("--tls: {e}")))
    };
    Ok((read(cert)?, read(key)?))
}

/// How many stop signals (SIGINT, SIGTERM) have come.
fn signals() -> std::io::Result<watch::Receiver<u32>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
}
