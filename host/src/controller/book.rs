//! The controller's book of runways: every runway it knows in filing order,
//! their ids (minted at filing, never given twice), the `after` edges
//! between them and the plans that filed them ([`super::filings`]). Plain
//! data; the moves are [`super::dispatch`]'s.

use std::collections::{HashMap, HashSet};

use runway_audit::Hash;

use super::filings::Filings;
use super::runway::Runway;
use crate::names::MAX_DATASET;

#[derive(Default)]
pub(super) struct Book {
    pub runways: Vec<Runway>,
    /// Runway id → its place in `runways`.
    pub index: HashMap<String, usize>,
    /// For each runway, the runways whose `after` names it.
    pub dependents: Vec<Vec<usize>>,
    /// For each runway, the runways it delegated, in filing order.
    pub children: Vec<Vec<usize>>,
    /// For each runway, the runway that delegated it.
    pub parents: Vec<Option<usize>>,
    /// Ids not to give again (runways the trail cannot rebuild, and ids
    /// held while a plan is being filed).
    pub reserved: HashSet<String>,
    /// Plans filed: (source, digest) → their runway ids.
    pub plans: HashMap<(String, Hash), Vec<String>>,
    /// Every plan filed, as its PLAN record says it.
    pub filings: Filings,
    /// The last suffix tried for a plan-local id already taken.
    suffixes: HashMap<String, u32>,
}

impl Book {
    /// The runway with id `id`, which must be known.
    pub fn dep(&self, id: &str) -> &Runway {
        &self.runways[self.index[id]]
    }

    /// Adds a runway and its dependency edges; gives its place.
    pub fn add(&mut self, runway: Runway) -> usize {
        let i = self.runways.len();
        self.index.insert(runway.id().to_string(), i);
        self.dependents.push(Vec::new());
        for a in &runway.manifest.after {
            if let Some(&d) = self.index.get(a) {
                self.dependents[d].push(i);
            }
        }
        self.children.push(Vec::new());
        let parent = runway.manifest.lineage.as_ref();
        let parent = parent.and_then(|l| self.index.get(&l.parent).copied());
        if let Some(p) = parent {
            self.children[p].push(i);
        }
        self.parents.push(parent);
        self.runways.push(runway);
        i
    }

    /// The runway that delegated runway `i`, if one did.
    pub fn parent_of(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    /// A runway id for the plan-local id `name`: `name` itself when free,
    /// else `name-2`, `name-3`, ... (cut so it stays a name).
    pub fn fresh_id(&mut self, name: &str) -> String {
        let taken = |b: &Book, id: &str| b.index.contains_key(id) || b.reserved.contains(id);
        if !taken(self, name) {
            return name.to_string();
        }
        let mut n = self.suffixes.get(name).copied().unwrap_or(1);
        loop {
            n += 1;
            let suffix = format!("-{n}");
            let mut base = MAX_DATASET.saturating_sub(suffix.len()).min(name.len());
            while !name.is_char_boundary(base) {
                base -= 1;
            }
            let id = format!("{}{suffix}", &name[..base]);
            if !taken(self, &id) {
                self.suffixes.insert(name.to_string(), n);
                return id;
            }
        }
    }
}
