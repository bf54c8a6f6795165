//! A delegation tree as its readers walk it: from runways in filing order,
//! each with the parent its lineage names (or, for a root's successor, the
//! runway it took over from), the runway asked for and every runway below
//! it, parents before children and siblings in filing order. A pure function, shared by whoever reads trees — the
//! API's lists and event stream (from the controller's reports) and
//! `runway audit show --tree` (from the FILING records of an audit folder
//! alone).
//!
//! A child is attached only to a parent filed before it, as the host files
//! them, so even a forged trail cannot make a cycle; and the walk keeps its
//! own stack, so no tree is too deep for it.

use std::collections::HashMap;

use super::plan::Manifest;
use super::runway::RunwayReport;

/// One runway of a [`subtree`]: its id and its level below the runway the
/// tree was asked for (0 for that one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub depth: usize,
}

/// The tree below `root` among `runways` — `(id, parent)` pairs in filing
/// order — as [`Member`]s, parents first (depth first, children in filing
/// order); `None` when no runway is `root`.
pub fn subtree<'a>(
    root: &str,
    runways: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<Vec<Member>> {
    let mut filed: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, parent) in runways {
        if filed.contains_key(id) {
            // Ids are unique on a host: the first filing is the one.
            continue;
        }
        if let Some(children) = parent.and_then(|p| filed.get_mut(p)) {
            children.push(id);
        }
        filed.insert(id, Vec::new());
    }
    let (root, _) = filed.get_key_value(root)?;
    let mut members = Vec::new();
    let mut stack = vec![(*root, 0)];
    while let Some((id, depth)) = stack.pop() {
        members.push(Member {
            id: id.to_string(),
            depth,
        });
        let children = filed.get(id).map(Vec::as_slice).unwrap_or_default();
        stack.extend(children.iter().rev().map(|c| (*c, depth + 1)));
    }
    Some(members)
}

/// The runway a runway hangs under in a tree: the one that delegated it,
/// else the one it took over from (a root's successor, after a hand-off,
/// continues that root's tree).
pub fn parent_of(m: &Manifest) -> Option<&str> {
    let delegated = m.lineage.as_ref().map(|l| l.parent.as_str());
    delegated.or(m.handoff_from.as_deref())
}

/// A runway's id and the runway it hangs under ([`parent_of`]), as
/// [`subtree`] takes them.
pub fn link(r: &RunwayReport) -> (&str, Option<&str>) {
    (r.id.as_str(), parent_of(&r.manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(root: &str, runways: &[(&str, Option<&str>)]) -> Option<Vec<(String, usize)>> {
        let members = subtree(root, runways.iter().copied())?;
        Some(members.into_iter().map(|m| (m.id, m.depth)).collect())
    }

    #[test]
    fn a_tree_is_walked_parents_first_siblings_in_filing_order() {
        let runways = [
            ("boss", None),
            ("other", None),
            ("boss.1", Some("boss")),
            ("boss.2", Some("boss")),
            ("boss.3", Some("boss.2")),
            ("other.1", Some("other")),
            ("boss.4", Some("boss.1")),
        ];
        let tree = walk("boss", &runways).unwrap();
        let expected = [
            ("boss", 0),
            ("boss.1", 1),
            ("boss.4", 2),
            ("boss.2", 1),
            ("boss.3", 2),
        ];
        let expected: Vec<(String, usize)> =
            expected.iter().map(|(i, d)| (i.to_string(), *d)).collect();
        assert_eq!(tree, expected);
        // A subtree, and a runway without children.
        let sub = walk("boss.2", &runways).unwrap();
        assert_eq!(sub, vec![("boss.2".into(), 0), ("boss.3".into(), 1)]);
        assert_eq!(
            walk("boss.3", &runways).unwrap(),
            vec![("boss.3".into(), 0)]
        );
        assert_eq!(walk("nobody", &runways), None);
    }

    #[test]
    fn a_parent_filed_later_adopts_no_one() {
        // A forged order: "a" names "b" as its parent before "b" was filed,
        // and "b" names "a": no cycle, and no runway is met twice.
        let runways = [("a", Some("b")), ("b", Some("a")), ("a", Some("x"))];
        assert_eq!(
            walk("a", &runways).unwrap(),
            vec![("a".into(), 0), ("b".into(), 1)]
        );
        assert_eq!(walk("b", &runways).unwrap(), vec![("b".into(), 0)]);
    }
}
