//! What `run` and `serve` share: where data, audit trail, keys and the
//! compiled-component cache live, and how many runs fly at once — and
//! bringing a host up over them (the library's start path,
//! [`crate::controller::start`]).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use runway_audit::{AuditOptions, Entry, PublicKey};

use super::keygen::read_public_key;
use super::{AuditDir, Failure, HOST_FAULT};
use crate::Runtime;
use crate::controller::start::{self, HostSetup, Opened, PluginSource};
use crate::files::{self, ReadCaps};
use crate::plugin::signing::PluginPolicy;
use crate::sandbox::compiler::Compiler;
use crate::store::StoreConfig;

#[derive(Args)]
pub struct HostArgs {
    /// Data root holding the datasets.
    #[arg(long, value_name = "DIR", default_value = "runway-data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub audit: AuditDir,
    /// The audit log's origin: a schema-less URL-like name for this log
    /// (C2SP), e.g. runway.example/nightly. Default: the audit folder's own;
    /// HOSTNAME/runway for a new folder.
    #[arg(long, value_name = "NAME")]
    pub origin: Option<String>,
    /// Private key that signs the audit checkpoints; twice while rotating
    /// keys. Default: runway-keys/ORIGIN.key beside the audit folder (named
    /// after the origin, `/` as `_`), made on first use.
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,
    /// Compiled components are kept here, so a restart — or a run from
    /// another folder — does not recompile. Default: this user's cache
    /// folder, `$XDG_CACHE_HOME/runway/compiled` or
    /// `~/.cache/runway/compiled`.
    #[arg(long, value_name = "DIR", env = "RUNWAY_CACHE")]
    pub cache: Option<PathBuf>,
    /// Most runs at once (default: the number of cores; at most 64).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=crate::limits::MAX_LIVE_RUNS as i64))]
    pub workers: Option<u32>,
    /// Compiling one component may take at most this much CPU time (all
    /// the compiler's threads); past it the plugin is refused.
    #[arg(long, value_name = "SECS", default_value_t = crate::sandbox::compiler::DEFAULT_COMPILE_SECS)]
    pub compile_timeout_secs: u64,
    /// Compiling one component may use at most this much memory (address
    /// space of the compiler process); past it the plugin is refused.
    #[arg(long, value_name = "MIB", default_value_t = crate::sandbox::compiler::DEFAULT_COMPILE_MIB)]
    pub compile_memory_mib: u64,
    /// Load only plugins with a good `NAME.wasm.sig` by an `--author`.
    #[arg(long, requires = "author")]
    pub require_signed: bool,
    /// A trusted plugin author's public key (`NAME.pub`); repeatable.
    #[arg(long, value_name = "FILE")]
    pub author: Vec<PathBuf>,
    /// Largest plan file read, in bytes; a larger one is refused unread.
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_MAX_PLAN_BYTES)]
    pub max_plan_bytes: u64,
    /// Largest grants file (`NAME.toml`) read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_MAX_GRANTS_BYTES)]
    pub max_grants_bytes: u64,
    /// Largest plugin component (`NAME.wasm`) read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_MAX_COMPONENT_BYTES)]
    pub max_component_bytes: u64,
    /// Largest signature, key or trust file read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_MAX_KEY_BYTES)]
    pub max_key_bytes: u64,
}

impl HostArgs {
    /// The runtime, compiling in a capped process of its own (this binary).
    pub fn runtime(&self) -> Result<Arc<Runtime>, Failure> {
        let program = std::env::current_exe().map_err(|e| Failure::new(HOST_FAULT, e))?;
        let compiler = Compiler {
            program,
            args: vec!["__compile".into()],
            max_time: std::time::Duration::from_secs(self.compile_timeout_secs),
            max_memory_mib: self.compile_memory_mib,
        };
        let cache = (self.cache.clone()).unwrap_or_else(|| files::user_cache("compiled"));
        Runtime::with_cache_and_compiler(&cache, Some(compiler))
            .map(Arc::new)
            .map_err(|e| Failure::new(HOST_FAULT, e))
    }

    /// How large each operator file may be (`--max-*-bytes`).
    pub fn caps(&self) -> ReadCaps {
        ReadCaps {
            plan: self.max_plan_bytes,
            grants: self.max_grants_bytes,
            component: self.max_component_bytes,
            key: self.max_key_bytes,
        }
    }

    /// Which plugins may load, from `--require-signed` and `--author`.
    pub fn policy(&self) -> Result<PluginPolicy, Failure> {
        let authors = self
            .author
            .iter()
            .map(|p| read_public_key(p, &self.caps()))
            .collect::<Result<_, _>>()?;
        Ok(PluginPolicy {
            authors,
            require_signed: self.require_signed,
        })
    }

    /// The audit trail's origin: `--origin`, else the folder's own, else
    /// the default (`HOSTNAME/runway`).
    pub fn origin(&self) -> String {
        self.origin
            .clone()
            .or_else(|| runway_audit::segment::folder_origin(&self.audit.path))
            .unwrap_or_else(super::keygen::default_origin)
    }

    /// How the signed audit trail is opened, keeping its last `tail`
    /// durable records in memory for live readers; also gives the key
    /// that signs it.
    fn audit_options(&self, tail: usize) -> Result<(AuditOptions, Option<PublicKey>), Failure> {
        let origin = self.origin();
        let signing_keys =
            super::keygen::signing_keys(&self.audit.path, &origin, &self.key, &self.caps())?;
        let signer = signing_keys.first().map(|k| k.public());
        let options = AuditOptions {
            signing_keys,
            tail,
            ..AuditOptions::new(origin)
        };
        Ok((options, signer))
    }

    /// Brings the host up through the library's one start path, over the
    /// data root and audit folder, with `plugins`, keeping the trail's last
    /// `tail` records in memory, its datasets in `store`; also gives the
    /// key that signs the trail.
    pub fn open(
        &self,
        runtime: &Arc<Runtime>,
        plugins: PluginSource,
        tail: usize,
        store: &StoreConfig,
    ) -> Result<(Opened, Option<PublicKey>), Failure> {
        let (audit_options, signer) = self.audit_options(tail)?;
        let workers = self.workers.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            |n| n as usize,
        );
        let setup = HostSetup {
            data: self.data.clone(),
            audit: self.audit.path.clone(),
            audit_options,
            runtime: runtime.clone(),
            plugins,
            workers,
            snapshot_after: start::SNAPSHOT_AFTER,
        };
        let opened = start::open_on(setup, store).map_err(|e| Failure::new(HOST_FAULT, e))?;
        let settled = &opened.settled;
        if settled.commits > 0 {
            eprintln!(
                "runway: settled {} commit(s) a crash had interrupted (see RECOVER in the audit)",
                settled.commits
            );
        }
        if settled.runs > 0 {
            eprintln!(
                "runway: failed {} run(s) a crash had cut short (host crashed during the run)",
                settled.runs
            );
        }
        Ok((opened, signer))
    }
}

/// Prints each state change as a timeline line.
pub fn timeline_printer() -> crate::sandbox::Observer {
    Arc::new(|entry: &Entry| println!("{}", timeline_line(entry)))
}

/// One line of the timeline, stamped now.
pub fn timeline_line(entry: &Entry) -> String {
    runway_audit::timeline_line(runway_audit::now_ns(), entry)
}

/// A multi-threaded tokio runtime for the dispatcher.
pub fn tokio() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(HOST_FAULT, e))
}
