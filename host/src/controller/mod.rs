//! The dispatcher: files a plan's runways and sees each one to its end.
//!
//! A runway asks the host's [`tower::Tower`] for clearance once every runway
//! in its `after` list has SUCCEEDED; the tower grants its whole lock set at
//! once when free. Cleared runways run in parallel on blocking threads
//! and land through the host's landing stage, which commits many runs at
//! once; a runway's locks are released when it has landed. When
//! a runway fails, every runway that depends on it (directly or not) fails
//! too, with a reason naming the dependency. Every filing and state change
//! is an audit record.

mod host;
pub mod locks;
pub mod recovery;
pub mod tower;

pub use host::Host;

use std::collections::HashMap;
use std::sync::Arc;

use runway_audit::{AuditError, Entry, Event, LockGrant, LockRequest};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::loader::Plugin;
use crate::plan::{Manifest, Plan};
use crate::sandbox::{self, LandingError, Observer, RunFailure, RunReport, RunRequest};
use tower::Clearance;

/// Where a runway is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunwayState {
    /// Filed; waiting for its dependencies.
    Queued,
    /// Dependencies done; waiting for its locks.
    Waiting,
    Running,
    Succeeded,
    Failed(String),
}

impl RunwayState {
    /// Upper-case name, as timelines and reports show it.
    pub fn name(&self) -> &'static str {
        match self {
            RunwayState::Queued => "QUEUED",
            RunwayState::Waiting => "WAITING",
            RunwayState::Running => "RUNNING",
            RunwayState::Succeeded => "SUCCEEDED",
            RunwayState::Failed(_) => "FAILED",
        }
    }
}

/// The end of one runway.
#[derive(Debug)]
pub struct RunwayReport {
    pub id: String,
    pub agent: String,
    pub state: RunwayState,
    pub locks: Vec<LockGrant>,
    /// The agent's output bytes, when it succeeded.
    pub output: Option<Vec<u8>>,
    pub run: Option<RunReport>,
}

/// The end of a whole plan, runways in filing order.
#[derive(Debug)]
pub struct PlanReport {
    pub runways: Vec<RunwayReport>,
}

impl PlanReport {
    pub fn failed(&self) -> usize {
        self.runways
            .iter()
            .filter(|r| matches!(r.state, RunwayState::Failed(_)))
            .count()
    }

    pub fn get(&self, id: &str) -> Option<&RunwayReport> {
        self.runways.iter().find(|r| r.id == id)
    }
}

/// Why a plan could not be carried through.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("audit trail failed, stopping: {0}")]
    Audit(#[from] AuditError),
    #[error("audit trail failed, stopping: {0}")]
    Landing(Arc<AuditError>),
}

/// Options for [`run_plan`].
#[derive(Clone)]
pub struct DispatchOptions {
    /// Sees every state change (not host calls), e.g. to print a timeline.
    pub observer: Observer,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            observer: Arc::new(|_| {}),
        }
    }
}

struct Runway {
    manifest: Manifest,
    /// The plugin this runway's records name: the one loaded at filing,
    /// then, from take-off on, the very one its run uses.
    plugin: Option<Arc<Plugin>>,
    state: RunwayState,
    locks: Vec<LockGrant>,
    run: Option<RunReport>,
}

/// Files every runway of `plan` and runs them to their end.
pub async fn run_plan(
    host: Arc<Host>,
    plan: Plan,
    opts: DispatchOptions,
) -> Result<PlanReport, DispatchError> {
    let (reply, clearances) = mpsc::unbounded_channel();
    let (landed_tx, landed) = mpsc::unbounded_channel();
    let catalog = host.plugins();
    let index = plan
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    let mut d = Dispatch {
        host,
        observer: opts.observer,
        runways: plan
            .manifests
            .into_iter()
            .map(|manifest| Runway {
                plugin: catalog.get(&manifest.agent),
                manifest,
                state: RunwayState::Queued,
                locks: Vec::new(),
                run: None,
            })
            .collect(),
        index,
        reply,
        clearances,
        landed_tx,
        landed,
        running: JoinSet::new(),
        tasks: HashMap::new(),
        airborne: 0,
    };
    d.file()?;
    d.fly().await?;
    d.host.audit.sync()?;
    Ok(PlanReport {
        runways: d.runways.into_iter().map(Runway::report).collect(),
    })
}

impl Runway {
    fn report(self) -> RunwayReport {
        let output = match (&self.state, &self.run) {
            (RunwayState::Succeeded, Some(run)) => run.outcome.as_ref().ok().cloned(),
            _ => None,
        };
        RunwayReport {
            id: self.manifest.id,
            agent: self.manifest.agent,
            state: self.state,
            locks: self.locks,
            output,
            run: self.run,
        }
    }
}

struct Dispatch {
    host: Arc<Host>,
    observer: Observer,
    runways: Vec<Runway>,
    index: HashMap<String, usize>,
    reply: mpsc::UnboundedSender<Clearance>,
    clearances: mpsc::UnboundedReceiver<Clearance>,
    /// How runs landed: (runway, report), from the landing stage.
    landed_tx: mpsc::UnboundedSender<(usize, Result<RunReport, LandingError>)>,
    landed: mpsc::UnboundedReceiver<(usize, Result<RunReport, LandingError>)>,
    /// Runs on a worker: each hands its run to the landing stage.
    running: JoinSet<Result<(), AuditError>>,
    tasks: HashMap<tokio::task::Id, usize>,
    /// Runways taken off and not yet landed.
    airborne: usize,
}

impl Dispatch {
    fn record(&self, i: usize, dataset: Option<String>, event: Event) -> Result<(), AuditError> {
        let r = &self.runways[i];
        let entry = Entry {
            runway: r.manifest.id.clone(),
            agent: r.manifest.agent.clone(),
            plugin: r.plugin.as_ref().map(|p| p.digest),
            dataset,
            event,
        };
        (self.observer)(&entry);
        self.host.audit.append(entry).map(drop)
    }

    fn file(&mut self) -> Result<(), AuditError> {
        for i in 0..self.runways.len() {
            let m = &self.runways[i].manifest;
            let event = Event::Filed {
                action: m.action.clone(),
                after: m.after.clone(),
                locks: m
                    .datasets
                    .iter()
                    .map(|(d, &mode)| LockRequest {
                        dataset: d.clone(),
                        mode,
                    })
                    .collect(),
            };
            self.record(i, None, event)?;
        }
        Ok(())
    }

    fn state_of(&self, id: &str) -> &RunwayState {
        &self.runways[self.index[id]].state
    }

    async fn fly(&mut self) -> Result<(), DispatchError> {
        loop {
            self.settle_queued()?;
            let waiting = self.runways.iter().any(|r| r.state == RunwayState::Waiting);
            if !waiting && self.airborne == 0 {
                break;
            }
            // Clearances first, so runways granted together take off together.
            tokio::select! {
                biased;
                Some(c) = self.clearances.recv() => self.take_off(c)?,
                Some(joined) = self.running.join_next_with_id() => {
                    self.host.tower.flown();
                    match joined {
                        Ok((id, handed)) => {
                            self.tasks.remove(&id).expect("every task is tracked");
                            handed?;
                        }
                        // A panic in host code fails that run only, never the plan.
                        Err(e) => {
                            let i = self.tasks.remove(&e.id()).expect("every task is tracked");
                            self.crashed(i, e.to_string())?;
                        }
                    }
                }
                Some((i, landed)) = self.landed.recv() => match landed {
                    Ok(report) => self.land(i, report)?,
                    Err(LandingError::Audit(e)) => return Err(DispatchError::Landing(e)),
                    Err(LandingError::Panicked(why)) => self.crashed(i, why)?,
                },
            }
        }
        // With no cycles (checked at filing) and failures propagated, nothing
        // can be left queued; say so loudly if that ever breaks.
        for i in 0..self.runways.len() {
            if self.runways[i].state == RunwayState::Queued {
                self.fail(i, "never cleared: its dependencies did not finish".into())?;
            }
        }
        Ok(())
    }

    /// For each queued runway: a failed dependency fails it (repeatedly, so
    /// failure travels down whole chains); all dependencies succeeded sends
    /// it to the tower for clearance.
    fn settle_queued(&mut self) -> Result<(), AuditError> {
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..self.runways.len() {
                if self.runways[i].state != RunwayState::Queued {
                    continue;
                }
                let after = &self.runways[i].manifest.after;
                let failed = after
                    .iter()
                    .find(|a| matches!(self.state_of(a), RunwayState::Failed(_)))
                    .cloned();
                if let Some(dep) = failed {
                    self.fail(i, format!("dependency {dep} failed"))?;
                    changed = true;
                } else if after
                    .iter()
                    .all(|a| *self.state_of(a) == RunwayState::Succeeded)
                {
                    self.runways[i].state = RunwayState::Waiting;
                    let wants = self.runways[i].manifest.datasets.clone();
                    self.host.tower.request(i, wants, self.reply.clone());
                }
            }
        }
        Ok(())
    }

    /// A run that host code panicked on: FAILED, and landed with nothing.
    fn crashed(&mut self, i: usize, why: String) -> Result<(), AuditError> {
        let failure = RunFailure::HostFault(why);
        self.record(
            i,
            None,
            Event::Failed {
                reason: failure.to_string(),
            },
        )?;
        self.land(i, RunReport::failed(failure))
    }

    fn fail(&mut self, i: usize, reason: String) -> Result<(), AuditError> {
        self.runways[i].state = RunwayState::Failed(reason.clone());
        self.record(i, None, Event::Failed { reason })
    }

    fn take_off(&mut self, c: Clearance) -> Result<(), AuditError> {
        let i = c.slot;
        // The plugin as loaded now: the folder watch may have replaced it
        // since filing; from here on this run keeps this version.
        let agent = &self.runways[i].manifest.agent;
        let (grants, plugin) = match (c.grants, self.host.plugins().get(agent)) {
            (Ok(grants), Some(plugin)) => (grants, plugin),
            (Err(e), _) => {
                self.grounded(i);
                return self.fail(i, format!("no fencing token: {e}"));
            }
            (_, None) => {
                let reason = format!("agent {agent} was unloaded before take-off");
                self.grounded(i);
                return self.fail(i, reason);
            }
        };
        self.runways[i].plugin = Some(plugin.clone());
        self.record(
            i,
            None,
            Event::Cleared {
                locks: grants.clone(),
            },
        )?;
        for g in &grants {
            let event = Event::LockGranted {
                mode: g.mode,
                token: g.token,
            };
            self.record(i, Some(g.dataset.clone()), event)?;
        }
        let r = &mut self.runways[i];
        r.state = RunwayState::Running;
        r.locks = grants.clone();
        let req = RunRequest {
            runway: r.manifest.id.clone(),
            program: plugin.program(),
            action: r.manifest.action.clone(),
            input: r.manifest.input.clone(),
            attempt: 1,
            locks: grants,
        };
        let host = self.host.clone();
        let observer = self.observer.clone();
        let landed = self.landed_tx.clone();
        let task = self.running.spawn_blocking(move || {
            let flown = sandbox::fly(host.sandbox(), req, &observer)?;
            // The dispatcher may be gone by the time the run lands (its
            // plan failed); the landing itself is the same.
            let reply = Box::new(move |report| drop(landed.send((i, report))));
            host.landing.submit(flown, reply);
            Ok(())
        });
        self.tasks.insert(task.id(), i);
        self.airborne += 1;
        Ok(())
    }

    /// A cleared runway that could not take off: its worker slot and
    /// locks go straight back.
    fn grounded(&self, i: usize) {
        self.host.tower.flown();
        self.host.tower.release(&self.runways[i].manifest.datasets);
    }

    /// A run landed: release its locks and settle its state.
    fn land(&mut self, i: usize, report: RunReport) -> Result<(), AuditError> {
        self.airborne -= 1;
        for g in self.runways[i].locks.clone() {
            let event = Event::LockReleased {
                mode: g.mode,
                token: g.token,
            };
            self.record(i, Some(g.dataset.clone()), event)?;
        }
        self.host.tower.release(&self.runways[i].manifest.datasets);
        let r = &mut self.runways[i];
        r.state = match &report.outcome {
            Ok(_) => RunwayState::Succeeded,
            Err(reason) => RunwayState::Failed(reason.to_string()),
        };
        r.run = Some(report);
        Ok(())
    }
}
