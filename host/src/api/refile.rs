//! Re-filing: an operator files a runway's manifest again, as a new
//! runway — a retry of one that failed or was cancelled, or a re-run of
//! one that succeeded (`POST /api/runways/{id}/refile`, the `control`
//! right). It goes through the one filing path (a FILING record and a
//! PLAN record naming the caller, with source `refile of ID`), so it is
//! audited with who like any filing.
//!
//! The new runway is a plan's runway: a delegated runway filed again leaves
//! its tree (its parent waits for it no longer), and its `after` names the
//! runways the old one ran after.

use super::access::Caller;
use super::calls::{Answered, Api};
use super::views;
use crate::controller::{Filing, Plan};

impl Api {
    /// Files runway `id`'s manifest again in `caller`'s name; the new
    /// runway's id once its filing is durable.
    pub async fn refile(&self, caller: &Caller, id: &str) -> Answered<views::FiledList> {
        let report = self.controller.show(id).await?;
        let mut manifest = (*report.manifest).clone();
        manifest.id = report.name.clone();
        manifest.lineage = None;
        manifest.handoff_from = None;
        // Filed by a person now, not by the trigger that filed it first.
        manifest.fired_by = None;
        // What is filed again, for the PLAN record's digest.
        let mut filed = serde_json::to_vec(&manifest).unwrap_or_default();
        filed.extend_from_slice(&manifest.input);
        let filing = Filing {
            plan: Plan {
                manifests: vec![manifest],
                triggers: Vec::new(),
            },
            by: caller.name.clone(),
            source: format!("refile of {id}"),
            digest: runway_audit::sha256(&filed),
            once: false,
        };
        Ok(views::filed(
            self.controller.file(filing).await?,
            Vec::new(),
        ))
    }
}
