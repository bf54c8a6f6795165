//! Triggers in the controller: filed with a plan, paused, resumed and
//! removed by people (each a record with who), and fired — by a
//! schedule's time coming ([`super::cron`]), by a commit landing on a
//! matching dataset, by an event delivered on its topic (each at once, or
//! those of a debounce window together, the window starting at the first
//! event) — exactly once per dedup key ([`super::trigger_book`]).
//!
//! A firing, in one controller step: the trigger's runways are read again
//! against the agents loaded now, each input gets the `trigger` cause; the
//! TRIGGER FIRED record (trigger, key, cause, or why nothing is filed) is
//! appended, then the runways are filed as a plan is (their FILING records
//! after it, naming the firing), and the step's records become durable
//! together, in that order. At start, firings recorded and not wholly
//! filed are filed, commits owed a firing are fired, and each schedule
//! looks at what it missed while the host was down (its catch-up policy).
//!
//! Chains of triggers are bounded by two rules, applied alike live and at
//! restart (so a restart never fires what a live host refused, nor
//! refuses what it would have fired):
//! - a commit trigger is not fired by the commits of runways it fired
//!   itself ([`Dispatch::fired_itself`]): nothing is said, the commit is
//!   simply not its cause;
//! - every firing has a depth (`FiredBy::depth`): 1 for a schedule's or
//!   for one caused by a runway no trigger fired, one more than the
//!   causing runway's otherwise (a delegated child counts as its root).
//!   A firing deeper than [`MAX_TRIGGER_CHAIN`] is not made: its key is
//!   settled by a TRIGGER CHAIN CUT record naming the trigger, the depth
//!   and the runway, and a warning ([`Dispatch::cut_chain`]). So triggers
//!   that feed each other (A's runway commits where B watches, B's where
//!   A watches) fire a bounded number of times.

use jiff::Timestamp;
use runway_audit::{Entry, Event};
use serde_json::Value;

use super::DispatchError;
use super::controls::{Command, ControlError, Filing};
use super::dispatch::Dispatch;
use super::place::Place;
use super::plan::{Plan, cap_reason, rejection};
use super::trigger::{FiredBy, On, TriggerDef, with_cause};
use super::trigger_book::{
    Batch, Delivered, Open, TriggerBook, TriggerReport, commit_cause, commit_key, event_key,
    schedule_cause, time_key, topic_cause, unix_nanos,
};
use crate::limits::{
    MAX_DEBOUNCED, MAX_TRIGGER_CHAIN, MAX_TRIGGERS, SCHEDULE_GRACE, UPCOMING_FIRINGS,
};
use crate::sandbox::CommittedTo;
use crate::sandbox::hostcalls::Publication;

impl Dispatch {
    /// Whether `triggers` may be filed (all or none, with their plan).
    pub(super) fn check_triggers(&self, triggers: &[TriggerDef]) -> Result<(), ControlError> {
        let mut ids = std::collections::HashSet::new();
        for t in triggers {
            if !ids.insert(t.id.as_str()) {
                let why = format!("the plan names trigger {:?} twice", t.id);
                return Err(ControlError::TriggerRefused(why));
            }
        }
        let new = ids
            .iter()
            .filter(|id| !self.triggers.triggers.contains_key(**id))
            .count();
        if self.triggers.triggers.len() + new > MAX_TRIGGERS {
            let why = format!("a host keeps at most {MAX_TRIGGERS} triggers");
            return Err(ControlError::TriggerRefused(why));
        }
        Ok(())
    }

    /// Files `triggers` in the name of `by` (checked already).
    pub(super) fn file_triggers(&mut self, triggers: Vec<TriggerDef>, by: &str) {
        let now = self.clock.now();
        for def in triggers {
            let event = Event::TriggerFiled {
                id: def.id.clone(),
                by: by.to_string(),
                definition: def.definition.clone(),
                since_ns: unix_nanos(now),
            };
            self.record_entry(Entry::of_host(event));
            let id = def.id.clone();
            let next = match &def.on {
                On::Schedule { cron, .. } => cron.next_after(now),
                _ => None,
            };
            self.triggers.file(def, now);
            if let Some(next) = next {
                self.triggers.queue.insert((next, id));
            }
        }
    }

    /// Pauses, resumes or removes a trigger (its right was checked).
    pub(super) fn trigger_command(
        &mut self,
        command: Command,
    ) -> Result<Result<(), ControlError>, DispatchError> {
        let now = self.clock.now();
        let (id, event) = match command {
            Command::PauseTrigger { trigger, by } => (
                trigger.clone(),
                Event::TriggerPaused {
                    id: trigger,
                    by: by.name,
                },
            ),
            Command::ResumeTrigger { trigger, by } => (
                trigger.clone(),
                Event::TriggerResumed {
                    id: trigger,
                    by: by.name,
                    since_ns: unix_nanos(now),
                },
            ),
            Command::RemoveTrigger { trigger, by } => (
                trigger.clone(),
                Event::TriggerRemoved {
                    id: trigger,
                    by: by.name,
                },
            ),
            _ => return Ok(Ok(())),
        };
        let Some(t) = self.triggers.triggers.get(&id) else {
            return Ok(Err(ControlError::UnknownTrigger(id)));
        };
        let schedule = matches!(t.def.on, On::Schedule { .. });
        match &event {
            Event::TriggerPaused { .. } => self.triggers.set_paused(&id, true, now),
            Event::TriggerResumed { .. } => {
                self.triggers.set_paused(&id, false, now);
                self.triggers.looked.remove(&id);
                if schedule {
                    self.triggers.queue.insert((now, id.clone()));
                }
            }
            _ => {
                self.triggers.remove(&id);
                self.triggers.looked.remove(&id);
            }
        }
        self.record_entry(Entry::of_host(event));
        Ok(Ok(()))
    }

    /// A run landed `committed`: each commit trigger matching a dataset
    /// fires once for it — but not for a commit of a runway it fired
    /// itself, nor past the chain's cap (see the module doc).
    pub(super) fn commits_landed(
        &mut self,
        runway: &str,
        committed: &[CommittedTo],
    ) -> Result<(), DispatchError> {
        for c in committed {
            for id in self.triggers.commit_triggers(&c.dataset) {
                let at = Place::new(self.host.shard(), c.seq);
                let cause = commit_cause(&id, &c.dataset, &at, c.token, runway);
                self.fire_for_commit(&id, &at, cause)?;
            }
        }
        Ok(())
    }

    /// Fires commit trigger `id` for the COMMITTED record `at` (`cause`
    /// names the committing runway) — unless one of the chain rules says
    /// not to. Live and at restart alike.
    fn fire_for_commit(&mut self, id: &str, at: &Place, cause: Value) -> Result<(), DispatchError> {
        let committer = cause["runway"].as_str().unwrap_or_default().to_string();
        let key = commit_key(at);
        if self.fired_itself(id, &committer) || self.cut_chain(id, &key, &committer) {
            return Ok(());
        }
        self.fire(id, key, cause)
    }

    /// A run that succeeded delivered `published`: each topic trigger on
    /// an event's topic fires for it, or collects it when it debounces.
    pub(super) fn events_delivered(
        &mut self,
        runway: &str,
        published: &[(u64, Publication)],
    ) -> Result<(), DispatchError> {
        for (seq, p) in published {
            let event = Delivered {
                at: Place::new(self.host.shard(), *seq),
                runway: runway.to_string(),
                topic: p.topic.clone(),
                payload: p.payload.clone(),
            };
            for id in self.triggers.topic_triggers(&p.topic) {
                self.deliver(&id, event.clone())?;
            }
        }
        Ok(())
    }

    /// Event `event` for topic trigger `id`: fired now, or collected —
    /// or cut, past the chain's cap (so a batch never is).
    fn deliver(&mut self, id: &str, event: Delivered) -> Result<(), DispatchError> {
        if self.cut_chain(id, &event_key(&event.at), &event.runway) {
            return Ok(());
        }
        let debounce = match self.triggers.triggers.get(id).map(|t| &t.def.on) {
            Some(On::Topic { debounce, .. }) => *debounce,
            _ => return Ok(()),
        };
        let Some(window) = debounce else {
            return self.fire_events(id, vec![event]);
        };
        let now = self.clock.now();
        let due = now
            .checked_add(jiff::SignedDuration::try_from(window).unwrap_or_default())
            .unwrap_or(now);
        let batch = self
            .triggers
            .batches
            .entry(id.to_string())
            .or_insert(Batch {
                events: Vec::new(),
                due,
            });
        batch.events.push(event);
        if batch.events.len() >= MAX_DEBOUNCED {
            let batch = self.triggers.batches.remove(id).expect("just added to");
            self.fire_events(id, batch.events)?;
        }
        Ok(())
    }

    /// Fires topic trigger `id` for `events` (one, or a batch).
    fn fire_events(&mut self, id: &str, events: Vec<Delivered>) -> Result<(), DispatchError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let key = event_key(&first.at);
        let cause = topic_cause(id, &first.topic, &events);
        self.fire(id, key, cause)
    }

    /// Fires the schedules whose time has come (see [`super::cron`]), and
    /// the debounced batches whose window closed.
    pub(super) fn fire_due(&mut self) -> Result<(), DispatchError> {
        if self.stopping {
            return Ok(());
        }
        let now = self.clock.now();
        let closed: Vec<String> = (self.triggers.batches.iter())
            .filter(|(_, b)| b.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in closed {
            let batch = self.triggers.batches.remove(&id).expect("listed");
            self.fire_events(&id, batch.events)?;
        }
        while let Some((at, _)) = self.triggers.queue.first()
            && *at <= now
        {
            let (_, id) = self.triggers.queue.pop_first().expect("looked at first");
            let Some(t) = self.triggers.triggers.get(&id) else {
                continue;
            };
            let On::Schedule { cron, catch_up } = &t.def.on else {
                continue;
            };
            if t.paused {
                continue;
            }
            let looked = self.triggers.looked.get(&id).copied();
            let after = looked.map_or(t.searched_from(), |l| l.max(t.searched_from()));
            let due = cron.due(after, now, *catch_up);
            let next = cron.next_after(now);
            self.triggers.looked.insert(id.clone(), now);
            let grace = jiff::SignedDuration::try_from(SCHEDULE_GRACE).unwrap_or_default();
            for time in due {
                let late = now.duration_since(time) > grace;
                self.fire(&id, time_key(time), schedule_cause(&id, time, late))?;
            }
            if let Some(next) = next {
                self.triggers.queue.insert((next, id));
            }
        }
        Ok(())
    }

    /// When the next schedule or debounced batch is due.
    pub(super) fn next_trigger_time(&self) -> Option<Timestamp> {
        let schedule = self.triggers.queue.first().map(|(at, _)| *at);
        let batch = self.triggers.batches.values().map(|b| b.due).min();
        schedule.into_iter().chain(batch).min()
    }

    /// Fires trigger `id` for `key`: its record, then its runways.
    fn fire(&mut self, id: &str, key: String, cause: Value) -> Result<(), DispatchError> {
        let Some(open) = self.triggers.open(id, cause) else {
            return Ok(());
        };
        let prepared = self.prepare(id, &key, &open);
        let refused = prepared.as_ref().err().cloned();
        let event = Event::TriggerFired {
            id: id.to_string(),
            key: key.clone(),
            cause: open.cause.to_string(),
            refused: refused.clone(),
        };
        self.record_entry(Entry::of_host(event));
        let now = self.clock.now();
        match prepared {
            Ok(plan) => {
                self.triggers.fired(id, &key, now, Some(open));
                self.file_firing(id, &key, plan)
            }
            Err(why) => {
                tracing::warn!(trigger = %id, key = %key, "fired, nothing filed: {why}");
                self.triggers.fired(id, &key, now, None);
                Ok(())
            }
        }
    }

    /// The runways of firing `open` not filed yet, ready to file: read
    /// against the agents loaded now, the cause where their inputs take it, each
    /// naming the firing; `after`s to runways of the firing filed already
    /// name their runway ids.
    fn prepare(&self, id: &str, key: &str, open: &Open) -> Result<Plan, String> {
        let catalog = self.host.plugins();
        let runways = with_cause(&open.runways, Some(&open.cause)).map_err(|e| cap_reason(&e))?;
        let plan = Plan::parse(&runways, &*catalog).map_err(|e| cap_reason(&e.to_string()))?;
        let depth = self.firing_depth(&open.cause);
        let mut manifests = Vec::with_capacity(plan.manifests.len());
        for mut m in plan.manifests {
            if open.filed.contains_key(&m.id) {
                continue;
            }
            for a in &mut m.after {
                if let Some(filed) = open.filed.get(a) {
                    *a = filed.clone();
                }
            }
            m.fired_by = Some(FiredBy {
                trigger: id.to_string(),
                key: key.to_string(),
                runway: m.id.clone(),
                depth,
            });
            manifests.push(m);
        }
        Ok(Plan {
            manifests,
            triggers: Vec::new(),
        })
    }

    /// Files a firing's runways (its record is on the trail before them).
    fn file_firing(&mut self, id: &str, key: &str, plan: Plan) -> Result<(), DispatchError> {
        if plan.manifests.is_empty() {
            return Ok(());
        }
        let filing = Filing {
            plan,
            by: format!("trigger {id}"),
            source: format!("trigger {id}"),
            digest: runway_audit::sha256(key),
            once: false,
        };
        match self.file(filing)? {
            Ok(filed) => {
                for f in filed {
                    self.triggers.filed(id, key, &f.name, &f.id);
                }
            }
            Err(refused) => {
                // Tried again at the next start (the firing stays owed).
                let why =
                    format!("trigger {id} fired for {key}; its runways were refused: {refused}");
                self.record_entry(rejection(&why));
            }
        }
        Ok(())
    }

    /// Takes up the triggers the trail holds: files what firings owe,
    /// fires what commits owe, and queues each schedule to look at once
    /// what it missed.
    pub(super) fn restore_triggers(&mut self, book: TriggerBook) -> Result<(), DispatchError> {
        self.triggers = book;
        let unfiled = std::mem::take(&mut self.triggers.unfiled);
        for ((id, key), open) in unfiled {
            let prepared = self.prepare(&id, &key, &open);
            self.triggers
                .unfiled
                .insert((id.clone(), key.clone()), open);
            match prepared {
                Ok(plan) => {
                    tracing::info!(trigger = %id, key = %key, "filing what a firing cut short by a crash owes");
                    self.file_firing(&id, &key, plan)?;
                }
                Err(why) => {
                    let why =
                        format!("trigger {id} fired for {key}; its runways were refused: {why}");
                    self.record_entry(rejection(&why));
                }
            }
        }
        let pending = std::mem::take(&mut self.triggers.pending);
        for ((at, id), cause) in pending {
            self.fire_for_commit(&id, &at, cause)?;
        }
        // Events owed: fired one by one, or collected again (a debounced
        // trigger's window starts again now).
        let owed = std::mem::take(&mut self.triggers.owed_events);
        for ((id, _), event) in owed {
            self.deliver(&id, event)?;
        }
        let now = self.clock.now();
        let schedules: Vec<String> = self
            .triggers
            .triggers
            .values()
            .filter(|t| matches!(t.def.on, On::Schedule { .. }))
            .map(|t| t.def.id.clone())
            .collect();
        for id in schedules {
            self.triggers.queue.insert((now, id));
        }
        Ok(())
    }

    /// Whether `runway` was filed by trigger `id`. Its own commits do not
    /// fire it again: a commit trigger whose runways write where it watches
    /// would otherwise fire itself down to the chain's cap on every commit.
    fn fired_itself(&self, id: &str, runway: &str) -> bool {
        let fired_by = self
            .book
            .index
            .get(runway)
            .and_then(|&i| self.book.runways[i].manifest.fired_by.as_ref());
        fired_by.is_some_and(|f| f.trigger == id)
    }

    /// The depth in a chain of firings of the firing that filed `runway`
    /// (of its tree's root, for a delegated child); 0 when no trigger did.
    fn chain_depth(&self, runway: &str) -> u32 {
        let book = &self.book;
        let Some(&i) = book.index.get(runway) else {
            return 0;
        };
        let mut m = &book.runways[i].manifest;
        if let Some(root) = m.lineage.as_ref().and_then(|l| book.index.get(&l.root)) {
            m = &book.runways[*root].manifest;
        }
        m.fired_by.as_ref().map_or(0, |f| f.depth)
    }

    /// The depth of a firing for `cause`: one more than the deepest
    /// runway whose commit or events caused it (1 for a schedule's).
    fn firing_depth(&self, cause: &Value) -> u32 {
        let events = cause["events"].as_array().into_iter().flatten();
        let runways = (cause["runway"].as_str().into_iter())
            .chain(events.filter_map(|e| e["runway"].as_str()));
        runways.map(|r| self.chain_depth(r)).max().unwrap_or(0) + 1
    }

    /// Whether trigger `id`'s firing for `key`, caused by `runway`'s commit
    /// or event, would pass [`MAX_TRIGGER_CHAIN`]: then it is not made —
    /// its TRIGGER CHAIN CUT record settles the key (a restart does not
    /// try again) — and the answer is `true`.
    fn cut_chain(&mut self, id: &str, key: &str, runway: &str) -> bool {
        let depth = self.chain_depth(runway) + 1;
        if depth <= MAX_TRIGGER_CHAIN {
            return false;
        }
        tracing::warn!(
            trigger = %id,
            key = %key,
            runway = %runway,
            depth,
            "not fired: triggers firing each other reached the chain's cap of {MAX_TRIGGER_CHAIN}"
        );
        let event = Event::TriggerChainCut {
            id: id.to_string(),
            key: key.to_string(),
            depth,
            runway: runway.to_string(),
        };
        self.record_entry(Entry::of_host(event));
        self.triggers.cut(id, key);
        true
    }

    /// Every trigger, by id.
    pub(super) fn trigger_reports(&self) -> Vec<TriggerReport> {
        let ids: Vec<&String> = self.triggers.triggers.keys().collect();
        ids.into_iter()
            .filter_map(|id| self.trigger_report(id).ok())
            .collect()
    }

    /// Trigger `id` as it stands.
    pub(super) fn trigger_report(&self, id: &str) -> Result<TriggerReport, ControlError> {
        let t = self
            .triggers
            .triggers
            .get(id)
            .ok_or_else(|| ControlError::UnknownTrigger(id.to_string()))?;
        let next = match &t.def.on {
            On::Schedule { cron, .. } if !t.paused => {
                let from = self.clock.now().max(t.searched_from());
                cron.upcoming(from, UPCOMING_FIRINGS)
            }
            _ => Vec::new(),
        };
        let (filed, spent) = self.costs.trigger(id);
        Ok(TriggerReport {
            id: t.def.id.clone(),
            on: t.def.on_json.clone(),
            kind: t.def.on.kind(),
            paused: t.paused,
            fired: t.fired,
            last_fired: t.last_fired,
            next,
            runways: t.def.names.clone(),
            definition: t.def.definition.clone(),
            filed,
            spent,
        })
    }
}
