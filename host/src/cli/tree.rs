//! `runway audit show --tree ROOT`: a delegation tree as the audit folder
//! alone tells it, offline. The tree comes from the FILING records'
//! lineage (each child names its parent; a root's successor after a
//! hand-off names the runway it took over from, and hangs under it),
//! walked by [`crate::controller::tree::subtree`]; each runway's course from its own
//! records: its agent, where it ended (or stands), when its first attempt
//! started and when it ended, how many attempts it took, why it did not
//! succeed; and each of its joins (JOINED records): the mode, every child
//! as the join found it, who won a first success and who lost the race
//! (cancelled), who was still going when a join timed out.
//!
//! Printed as `tree` prints folders — each runway under its parent, its
//! joins under it — or, with `--json`, as one object with the runways in
//! the same order, each with its parent and level. The output depends on
//! the trail alone: the same folder prints the same lines.

use std::collections::HashMap;

use runway_audit::render::{escape, excerpt};
use runway_audit::{Event, Record, State};
use serde::Serialize;

use super::{BAD_INPUT, Failure};
use crate::controller::tree::{parent_of, subtree};
use crate::controller::{Manifest, filed_manifest};

/// One runway of the tree, as its records tell it.
#[derive(Debug, Clone, Serialize)]
pub struct TreeRunway {
    pub id: String,
    pub agent: String,
    /// The runway that delegated it (none for a runway a plan filed).
    pub parent: Option<String>,
    /// The runway that handed off to it (a root's successor hangs under
    /// it in the tree).
    pub handoff_from: Option<String>,
    /// Its level below the tree's first runway (0 for that one).
    pub level: usize,
    /// Its last state on the trail.
    pub state: &'static str,
    /// When its first attempt started (RFC 3339, UTC, milliseconds).
    pub started: Option<String>,
    /// When it ended, if it has.
    pub ended: Option<String>,
    /// From its first start to its end.
    pub duration_ms: Option<u64>,
    pub attempts: u32,
    /// Why it did not succeed.
    pub reason: Option<String>,
    pub joins: Vec<TreeJoin>,
    #[serde(skip)]
    started_ns: Option<u64>,
    #[serde(skip)]
    ended_ns: Option<u64>,
}

/// One join of a runway's children (a JOINED record).
#[derive(Debug, Clone, Serialize)]
pub struct TreeJoin {
    pub mode: String,
    pub timed_out: bool,
    pub children: Vec<JoinedAs>,
}

/// A child as a join found it.
#[derive(Debug, Clone, Serialize)]
pub struct JoinedAs {
    pub runway: String,
    pub state: &'static str,
    /// `won` (a first success's winner), `lost` (cancelled when another
    /// won) or `timed out` (still going when the join gave up).
    pub outcome: Option<&'static str>,
}

/// The tree below runway `root` in `records` (an audit folder's, in
/// order), parents first; refused naming `root` when no FILING record
/// files it.
pub fn build(records: &[Record], root: &str) -> Result<Vec<TreeRunway>, Failure> {
    let filings: Vec<(&Record, Manifest)> = records
        .iter()
        .filter_map(|r| Some((r, filed_manifest(&r.entry.event)?)))
        .collect();
    let links = filings
        .iter()
        .map(|(r, m)| (r.entry.runway.as_str(), parent_of(m)));
    let Some(members) = subtree(root, links) else {
        let why = anyhow::anyhow!(
            "no runway {} in this audit folder: no FILING record files it",
            escape(root)
        );
        return Err(Failure::new(BAD_INPUT, why));
    };
    let filed: HashMap<&str, &(&Record, Manifest)> = filings
        .iter()
        .rev()
        .map(|f| (f.0.entry.runway.as_str(), f))
        .collect();
    let mut tree: Vec<TreeRunway> = members
        .iter()
        .map(|m| {
            let (record, manifest) = filed[m.id.as_str()];
            TreeRunway {
                id: m.id.clone(),
                agent: record.entry.agent.clone(),
                parent: manifest.lineage.as_ref().map(|l| l.parent.clone()),
                handoff_from: manifest.handoff_from.clone(),
                level: m.depth,
                state: State::Queued.name(),
                started: None,
                ended: None,
                duration_ms: None,
                attempts: 0,
                reason: None,
                joins: Vec::new(),
                started_ns: None,
                ended_ns: None,
            }
        })
        .collect();
    let index: HashMap<String, usize> = tree
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    for record in records {
        if let Some(&i) = index.get(&record.entry.runway) {
            follow(&mut tree[i], record);
        }
    }
    for r in &mut tree {
        r.started = r.started_ns.map(time);
        r.ended = r.ended_ns.map(time);
        r.duration_ms = match (r.started_ns, r.ended_ns) {
            (Some(s), Some(e)) => Some(e.saturating_sub(s) / 1_000_000),
            _ => None,
        };
    }
    Ok(tree)
}

/// Runway `r`'s course after `record`, one of its own.
fn follow(r: &mut TreeRunway, record: &Record) {
    let at = record.time_ns;
    let state = match &record.entry.event {
        Event::Filing { .. } | Event::FilingV1(_) => State::Queued,
        Event::Cleared { .. } => State::Cleared,
        Event::Started { attempt } => {
            r.started_ns.get_or_insert(at);
            r.attempts = r.attempts.max(*attempt);
            State::Running
        }
        Event::Succeeded { .. } => State::Succeeded,
        Event::Failed { reason } => {
            r.reason = Some(reason.clone());
            State::Failed
        }
        Event::Moved { to, reason, .. } => {
            if ended_badly(*to) {
                r.reason = Some(reason.clone());
            }
            *to
        }
        Event::Joined {
            mode,
            children,
            timed_out,
        } => {
            r.joins.push(join(mode, children, *timed_out));
            return;
        }
        _ => return,
    };
    r.state = state.name();
    let ended = state == State::Succeeded || ended_badly(state);
    r.ended_ns = ended.then_some(at);
    if state == State::Succeeded {
        r.reason = None;
    }
}

/// A join as its record tells it, each child's outcome named.
fn join(mode: &str, children: &[runway_audit::JoinedChild], timed_out: bool) -> TreeJoin {
    let race = mode == "first-success" && !timed_out;
    let winner = children
        .iter()
        .position(|c| c.state == State::Succeeded)
        .filter(|_| race);
    let children = children
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let going = c.state != State::Succeeded && !ended_badly(c.state);
            let outcome = if winner == Some(i) {
                Some("won")
            } else if winner.is_some() && (going || c.state == State::Cancelled) {
                Some("lost")
            } else if timed_out && going {
                Some("timed out")
            } else {
                None
            };
            JoinedAs {
                runway: c.runway.clone(),
                state: c.state.name(),
                outcome,
            }
        })
        .collect();
    TreeJoin {
        mode: mode.to_string(),
        timed_out,
        children,
    }
}

/// Ended, and not a success.
fn ended_badly(state: State) -> bool {
    matches!(
        state,
        State::Failed | State::TimedOut | State::Cancelled | State::Rejected | State::Expired
    )
}

/// `ns` (Unix nanoseconds) as RFC 3339, UTC, milliseconds.
fn time(ns: u64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("{ns} ns"),
    }
}

/// The tree as lines: a head line, then each runway under its parent
/// (`├─`, `└─`), its joins under it.
pub fn lines(tree: &[TreeRunway]) -> Vec<String> {
    let Some(top) = tree.first() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(tree.len() * 2 + 1);
    let count = match tree.len() {
        1 => "1 runway".to_string(),
        n => format!("{n} runways"),
    };
    match top.parent.as_ref().or(top.handoff_from.as_ref()) {
        Some(parent) if top.parent.is_none() => out.push(format!(
            "tree of {} (taking over from {}): {count}",
            escape(&top.id),
            escape(parent)
        )),
        Some(parent) => out.push(format!(
            "tree of {} (delegated by {}): {count}",
            escape(&top.id),
            escape(parent)
        )),
        None => out.push(format!("tree of {}: {count}", escape(&top.id))),
    }
    let last = last_siblings(tree);
    // For each level above the runway being printed: whether a sibling of
    // its ancestor there follows (a `│` goes on down).
    let mut going_on: Vec<bool> = Vec::new();
    for (i, r) in tree.iter().enumerate() {
        going_on.truncate(r.level.saturating_sub(1));
        let mut lead: String = going_on
            .iter()
            .map(|&on| if on { "│  " } else { "   " })
            .collect();
        let branch = match (r.level, last[i]) {
            (0, _) => "",
            (_, true) => "└─ ",
            (_, false) => "├─ ",
        };
        out.push(format!("{lead}{branch}{}", describe(r)));
        if r.level > 0 {
            going_on.push(!last[i]);
            lead.push_str(if last[i] { "   " } else { "│  " });
        }
        let has_children = tree.get(i + 1).is_some_and(|n| n.level > r.level);
        let bar = if has_children { "│ " } else { "  " };
        for j in &r.joins {
            out.push(format!("{lead}{bar}{}", joined(j)));
        }
    }
    out
}

/// Whether each runway of `tree` (parents first) is the last child of its
/// parent: one pass from the end.
fn last_siblings(tree: &[TreeRunway]) -> Vec<bool> {
    let mut last = vec![true; tree.len()];
    // Whether a runway at each level was met since the last shallower one.
    let mut met: Vec<bool> = Vec::new();
    for (i, r) in tree.iter().enumerate().rev() {
        met.truncate(r.level + 1);
        met.resize(r.level + 1, false);
        last[i] = !met[r.level];
        met[r.level] = true;
    }
    last
}

/// A runway's line: id, agent, state, times, attempts, reason.
fn describe(r: &TreeRunway) -> String {
    let times = match (&r.started, &r.ended, r.duration_ms) {
        (Some(s), Some(e), Some(ms)) => format!("{s} → {e} ({})", duration(ms)),
        (Some(s), _, _) => format!("{s} → still going"),
        (None, Some(e), _) => format!("never started, ended {e}"),
        (None, None, _) => "not started".to_string(),
    };
    let took_over = r.handoff_from.as_deref().map_or_else(String::new, |from| {
        format!(", took over from {}", escape(from))
    });
    let attempts = match r.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    let reason = r
        .reason
        .as_deref()
        .map_or_else(String::new, |why| format!(": {}", excerpt(why, 200)));
    format!(
        "{}  {}  {}  {times}{took_over}{attempts}{reason}",
        escape(&r.id),
        escape(&r.agent),
        r.state
    )
}

/// A join's line: `join first-success: a SUCCEEDED (won), b (lost)` —
/// a loser's own line says how it ended (cancelled then, or landing
/// already).
fn joined(j: &TreeJoin) -> String {
    let children: Vec<String> = j
        .children
        .iter()
        .map(|c| match c.outcome {
            Some("lost") => format!("{} (lost)", escape(&c.runway)),
            Some(o) => format!("{} {} ({o})", escape(&c.runway), c.state),
            None => format!("{} {}", escape(&c.runway), c.state),
        })
        .collect();
    let ran_out = if j.timed_out { ", timed out" } else { "" };
    format!("join {}{ran_out}: {}", escape(&j.mode), children.join(", "))
}

/// A duration in milliseconds, as people read it.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        _ => format!("{}.{:03} s", ms / 1_000, ms % 1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runway(id: &str, level: usize) -> TreeRunway {
        TreeRunway {
            id: id.into(),
            agent: "probe".into(),
            parent: None,
            handoff_from: None,
            level,
            state: "SUCCEEDED",
            started: Some("S".into()),
            ended: Some("E".into()),
            duration_ms: Some(1_500),
            attempts: 1,
            reason: None,
            joins: Vec::new(),
            started_ns: None,
            ended_ns: None,
        }
    }

    #[test]
    fn a_tree_is_drawn_each_runway_under_its_parent() {
        let mut tree = vec![
            runway("a", 0),
            runway("a.1", 1),
            runway("a.1.1", 2),
            runway("a.2", 1),
            runway("a.2.1", 2),
            runway("a.2.2", 2),
        ];
        tree[0].joins.push(TreeJoin {
            mode: "first-success".into(),
            timed_out: false,
            children: vec![
                JoinedAs {
                    runway: "a.1".into(),
                    state: "SUCCEEDED",
                    outcome: Some("won"),
                },
                JoinedAs {
                    runway: "a.2".into(),
                    state: "CANCELLED",
                    outcome: Some("lost"),
                },
            ],
        });
        tree[5].state = "CANCELLED";
        tree[5].reason = Some("lost\nthe race".into());
        tree[5].attempts = 2;
        let expected = [
            "tree of a: 6 runways",
            "a  probe  SUCCEEDED  S → E (1.500 s)",
            "│ join first-success: a.1 SUCCEEDED (won), a.2 (lost)",
            "├─ a.1  probe  SUCCEEDED  S → E (1.500 s)",
            "│  └─ a.1.1  probe  SUCCEEDED  S → E (1.500 s)",
            "└─ a.2  probe  SUCCEEDED  S → E (1.500 s)",
            "   ├─ a.2.1  probe  SUCCEEDED  S → E (1.500 s)",
            "   └─ a.2.2  probe  CANCELLED  S → E (1.500 s), 2 attempts: lost\\nthe race",
        ];
        assert_eq!(lines(&tree), expected);
    }

    #[test]
    fn a_join_names_the_winner_the_losers_and_who_was_still_going() {
        let child = |runway: &str, state: State| runway_audit::JoinedChild {
            runway: runway.into(),
            state,
        };
        let outcomes = |j: TreeJoin| -> Vec<Option<&'static str>> {
            j.children.iter().map(|c| c.outcome).collect()
        };
        // A race: the first success won; those it cancelled lost; one that
        // had failed before just failed.
        let race = [
            child("a", State::Failed),
            child("b", State::Succeeded),
            child("c", State::Cancelled),
        ];
        let won = join("first-success", &race, false);
        assert_eq!(outcomes(won.clone()), [None, Some("won"), Some("lost")]);
        assert_eq!(
            joined(&won),
            "join first-success: a FAILED, b SUCCEEDED (won), c (lost)"
        );
        // Timed out: nobody won; who had not ended timed out.
        let late = [child("a", State::Succeeded), child("b", State::Running)];
        let timed = join("all", &late, true);
        assert_eq!(outcomes(timed.clone()), [None, Some("timed out")]);
        assert_eq!(
            joined(&timed),
            "join all, timed out: a SUCCEEDED, b RUNNING (timed out)"
        );
        let raced_out = join("first-success", &late, true);
        assert_eq!(outcomes(raced_out), [None, Some("timed out")]);
    }

    #[test]
    fn durations_read_as_people_read_them() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(61_005), "61.005 s");
    }
}
