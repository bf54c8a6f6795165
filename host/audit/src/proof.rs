//! Inclusion and consistency proofs over the RFC 6962 tree: making them from
//! the leaf hashes (RFC 6962 §2.1.1–2.1.2) and checking them against tree
//! heads alone (RFC 9162 §2.1.3.2 and §2.1.4.2).
//!
//! An inclusion proof shows that a leaf sits at an index of a tree of a
//! given size and root; a consistency proof that the tree of an older size
//! and root is a prefix of the tree of a newer size and root, i.e. that
//! nothing signed before was changed, dropped or reordered since.

use crate::merkle::{node_hash, root_of, split_point};
use crate::record::Hash;

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is above new size {new}")]
    SizesReversed { old: u64, new: u64 },
    #[error("the proof has {found} hashes, a tree of this shape needs {expected}")]
    WrongLength { expected: usize, found: usize },
    #[error("the proof leads to root {found}, not the expected {expected}")]
    RootMismatch { expected: String, found: String },
    #[error("the proof leads to old root {found}, not the expected {expected}")]
    OldRootMismatch { expected: String, found: String },
}

/// The hashes proving that `leaves[index]` is in the tree over `leaves[..size]`.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size || size > leaves.len() as u64 {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(index as usize, &leaves[..size as usize], &mut proof);
    Ok(proof)
}

/// PATH(m, D[n]), appending from the leaf up.
fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n as u64) as usize;
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root_of(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root_of(&leaves[..k]));
    }
}

/// The hashes proving the tree over `leaves[..old]` is a prefix of the tree
/// over `leaves[..new]`.
pub fn consistency_proof(leaves: &[Hash], old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::SizesReversed { old, new });
    }
    if new > leaves.len() as u64 {
        return Err(ProofError::IndexOutOfRange {
            index: new,
            size: leaves.len() as u64,
        });
    }
    let mut proof = Vec::new();
    if old > 0 && old < new {
        subproof(old as usize, &leaves[..new as usize], true, &mut proof);
    }
    Ok(proof)
}

/// SUBPROOF(m, D[n], b).
fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root_of(leaves));
        }
        return;
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root_of(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root_of(&leaves[..k]));
    }
}

/// Checks that `leaf` is at `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let found = root_from_inclusion(leaf, index, size, proof)?;
    if found != *root {
        return Err(ProofError::RootMismatch {
            expected: crate::hex::encode(root),
            found: crate::hex::encode(&found),
        });
    }
    Ok(())
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            found: proof.len(),
        });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    Ok(r)
}

/// How many hashes an inclusion proof for `index` in a tree of `size` has.
fn inclusion_len(index: u64, size: u64) -> usize {
    // The levels at which the paths to `index` and to the last leaf part,
    // plus the right-edge nodes above that: as counted by RFC 9162's loop.
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of
/// the tree of `new` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    let mismatch = |expected: &Hash, found: &Hash| ProofError::RootMismatch {
        expected: crate::hex::encode(expected),
        found: crate::hex::encode(found),
    };
    if old > new {
        return Err(ProofError::SizesReversed { old, new });
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old == new && old_root != new_root {
            return Err(mismatch(new_root, old_root));
        }
        return Ok(());
    }
    // The old tree's root is itself a node of the new tree when `old` is a
    // power of two; the proof then leaves it out.
    let old_is_subtree = old.is_power_of_two();
    let mut fnode = old - 1;
    let mut snode = new - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let expected = consistency_len(old, new);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            found: proof.len(),
        });
    }
    let (seed, rest) = if old_is_subtree {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                expected,
                found: proof.len() + 1,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength {
            expected,
            found: proof.len(),
        });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            expected: crate::hex::encode(old_root),
            found: crate::hex::encode(&fr),
        });
    }
    if sr != *new_root {
        return Err(mismatch(new_root, &sr));
    }
    Ok(())
}

/// How many hashes a consistency proof from `old` to `new` (0 < old < new) has.
fn consistency_len(old: u64, new: u64) -> usize {
    let level = old.trailing_zeros();
    let (fnode, snode) = ((old - 1) >> level, (new - 1) >> level);
    let inner = 64 - (fnode ^ snode).leading_zeros();
    let border = (fnode >> inner).count_ones();
    let seed = usize::from(!old.is_power_of_two());
    seed + (inner + border) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::tests::{ROOTS, h, vector_leaves};
    use crate::record::leaf_hash;

    /// (index, size, proof) of transparency-dev/merkle's vectors (0-based index).
    fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    fn root(size: u64) -> Hash {
        h(ROOTS[size as usize - 1])
    }

    #[test]
    fn inclusion_proofs_match_the_published_vectors() {
        let leaves = vector_leaves();
        for (index, size, expected) in inclusion_vectors() {
            let proof = inclusion_proof(&leaves, index, size).expect("proof");
            assert_eq!(proof, expected, "index {index} size {size}");
            verify_inclusion(&leaves[index as usize], index, size, &proof, &root(size))
                .expect("verifies");
        }
    }

    #[test]
    fn consistency_proofs_match_the_published_vectors() {
        let leaves = vector_leaves();
        for (old, new, expected) in consistency_vectors() {
            let proof = consistency_proof(&leaves, old, new).expect("proof");
            assert_eq!(proof, expected, "{old} -> {new}");
            verify_consistency(old, new, &proof, &root(old), &root(new)).expect("verifies");
        }
    }

    /// Every leaf in every tree up to 40 leaves, every pair of sizes.
    #[test]
    fn generated_proofs_verify_exhaustively() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let roots: Vec<Hash> = (0..=leaves.len()).map(|n| root_of(&leaves[..n])).collect();
        for size in 1..=leaves.len() as u64 {
            for index in 0..size {
                let proof = inclusion_proof(&leaves, index, size).expect("proof");
                assert_eq!(proof.len(), inclusion_len(index, size));
                verify_inclusion(
                    &leaves[index as usize],
                    index,
                    size,
                    &proof,
                    &roots[size as usize],
                )
                .unwrap_or_else(|e| panic!("{index}/{size}: {e}"));
            }
            for old in 0..=size {
                let proof = consistency_proof(&leaves, old, size).expect("proof");
                verify_consistency(
                    old,
                    size,
                    &proof,
                    &roots[old as usize],
                    &roots[size as usize],
                )
                .unwrap_or_else(|e| panic!("{old}->{size}: {e}"));
            }
        }
    }

    /// The corruptions transparency-dev/merkle's verifier tests apply.
    #[test]
    fn corrupted_inclusion_proofs_fail() {
        let leaves = vector_leaves();
        let some_hash = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        for (index, size, proof) in inclusion_vectors() {
            let leaf = leaves[index as usize];
            let root = root(size);
            let mut probes: Vec<(String, u64, u64, Hash, Vec<Hash>, Hash)> = vec![
                (
                    "index - 1".into(),
                    index.wrapping_sub(1),
                    size,
                    leaf,
                    proof.clone(),
                    root,
                ),
                (
                    "index + 1".into(),
                    index + 1,
                    size,
                    leaf,
                    proof.clone(),
                    root,
                ),
                (
                    "index ^ 2".into(),
                    index ^ 2,
                    size,
                    leaf,
                    proof.clone(),
                    root,
                ),
                (
                    "size * 2".into(),
                    index,
                    size * 2,
                    leaf,
                    proof.clone(),
                    root,
                ),
                (
                    "size / 2".into(),
                    index,
                    size / 2,
                    leaf,
                    proof.clone(),
                    root,
                ),
                (
                    "wrong leaf".into(),
                    index,
                    size,
                    some_hash,
                    proof.clone(),
                    root,
                ),
                (
                    "wrong root".into(),
                    index,
                    size,
                    leaf,
                    proof.clone(),
                    some_hash,
                ),
            ];
            let mut extra = proof.clone();
            extra.push(root);
            probes.push(("trailing hash".into(), index, size, leaf, extra, root));
            let mut extra = vec![root];
            extra.extend_from_slice(&proof);
            probes.push(("preceding hash".into(), index, size, leaf, extra, root));
            for i in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[i][0] ^= 8;
                probes.push((
                    format!("flipped proof[{i}]"),
                    index,
                    size,
                    leaf,
                    flipped,
                    root,
                ));
            }
            if !proof.is_empty() {
                let short = proof[..proof.len() - 1].to_vec();
                probes.push(("removed hash".into(), index, size, leaf, short, root));
            }
            for (what, index, size, leaf, proof, root) in probes {
                assert!(
                    verify_inclusion(&leaf, index, size, &proof, &root).is_err(),
                    "{what} verified for {index}/{size}"
                );
            }
        }
    }

    #[test]
    fn corrupted_consistency_proofs_fail() {
        for (old, new, proof) in consistency_vectors() {
            if proof.is_empty() {
                continue;
            }
            let (r1, r2) = (root(old), root(new));
            let wrong = h("abacaba000000000000000000000000000000000000000000060061e00123456");
            let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
                ("old - 1".into(), old - 1, new, r1, r2, proof.clone()),
                ("old + 1".into(), old + 1, new, r1, r2, proof.clone()),
                ("old ^ 2".into(), old ^ 2, new, r1, r2, proof.clone()),
                ("new * 2".into(), old, new * 2, r1, r2, proof.clone()),
                ("new / 2".into(), old, new / 2, r1, r2, proof.clone()),
                ("wrong old root".into(), old, new, wrong, r2, proof.clone()),
                ("wrong new root".into(), old, new, r1, wrong, proof.clone()),
                ("swapped roots".into(), old, new, r2, r1, proof.clone()),
                ("empty proof".into(), old, new, r1, r2, vec![]),
                (
                    "truncated".into(),
                    old,
                    new,
                    r1,
                    r2,
                    proof[..proof.len() - 1].to_vec(),
                ),
            ];
            for extra in [r1, r2] {
                let mut longer = proof.clone();
                longer.push(extra);
                probes.push(("trailing hash".into(), old, new, r1, r2, longer));
                let mut longer = vec![extra];
                longer.extend_from_slice(&proof);
                probes.push(("preceding hash".into(), old, new, r1, r2, longer));
            }
            for i in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[i][0] ^= 16;
                probes.push((format!("flipped proof[{i}]"), old, new, r1, r2, flipped));
            }
            for (what, old, new, r1, r2, proof) in probes {
                assert!(
                    verify_consistency(old, new, &proof, &r1, &r2).is_err(),
                    "{what} verified for {old} -> {new}"
                );
            }
        }
    }

    #[test]
    fn trivial_consistency_cases() {
        let (a, b) = (h(ROOTS[0]), h(ROOTS[1]));
        assert!(verify_consistency(0, 0, &[], &a, &a).is_ok());
        assert!(verify_consistency(0, 5, &[], &a, &b).is_ok());
        assert!(verify_consistency(1, 1, &[], &a, &a).is_ok());
        assert!(verify_consistency(1, 1, &[], &a, &b).is_err());
        assert!(verify_consistency(2, 1, &[], &a, &b).is_err());
        assert!(verify_consistency(1, 2, &[], &a, &b).is_err());
        assert!(verify_consistency(1, 1, &[a], &a, &a).is_err());
    }

    #[test]
    fn a_node_passed_off_as_a_leaf_does_not_verify() {
        // Leaves 0 and 1 hash into node n01; a "record" whose 64 bytes are
        // leaf0 ‖ leaf1 must not prove inclusion at n01's place.
        let leaves = vector_leaves();
        let size = 4;
        let root = root_of(&leaves[..4]);
        let n23 = root_of(&leaves[2..4]);
        let mut forged = leaves[0].to_vec();
        forged.extend_from_slice(&leaves[1]);
        let forged_leaf = leaf_hash(&forged);
        // As the only sibling needed in a tree of two "leaves" (n01, n23):
        assert!(verify_inclusion(&forged_leaf, 0, 2, &[n23], &root).is_err());
        // As leaf 0 of the real tree, with leaf 1's proof hashes:
        let proof = inclusion_proof(&leaves, 0, size).expect("proof");
        assert!(verify_inclusion(&forged_leaf, 0, size, &proof, &root).is_err());
        // While the node itself, as a subtree, does combine into the root:
        assert_eq!(node_hash(&root_of(&leaves[..2]), &n23), root);
    }
}
