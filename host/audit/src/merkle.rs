//! The RFC 6962 Merkle tree over the records' leaf hashes.
//!
//! A leaf hash is `SHA-256(0x00 ‖ record bytes)` ([`leaf_hash`]), an
//! interior node `SHA-256(0x01 ‖ left ‖ right)` ([`node_hash`]); the two
//! prefixes keep a 64-byte record equal to some `left ‖ right` from passing
//! for that node. A tree of `n` leaves splits at the largest power of two
//! below `n`; the empty tree's root is `SHA-256("")`.
//!
//! The writer and the verifier both grow the tree one leaf at a time in a
//! [`Frontier`]: the roots of the perfect subtrees that make up the tree so
//! far, at most one per bit of the size, so O(log n) hashes of state and one
//! node hash per leaf on average.
//!
//! [`leaf_hash`]: crate::leaf_hash

use sha2::{Digest, Sha256};

use crate::record::Hash;

/// Domain-separation prefix of an interior node (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 65];
    block[0] = NODE_PREFIX;
    block[1..33].copy_from_slice(left);
    block[33..].copy_from_slice(right);
    Sha256::digest(block).into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The tree so far, kept as the roots of its perfect subtrees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first; subtree `i`
    /// has as many leaves as the `i`-th set bit of `size` from the top says.
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of its perfect subtrees, largest first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// The tree of `size` leaves whose perfect subtrees have `peaks` as
    /// roots, largest first; `None` if there are not one per set bit of
    /// `size`.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Frontier> {
        (peaks.len() == size.count_ones() as usize).then_some(Frontier { size, peaks })
    }

    /// Adds a leaf hash on the right.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Every trailing one bit of the old size is a subtree of the same
        // height as the one being carried: merge them, like binary addition.
        let mut carries = self.size.trailing_ones();
        while carries > 0 {
            // A set bit in `size` always has its peak on the stack.
            let Some(left) = self.peaks.pop() else { break };
            node = node_hash(&left, &node);
            carries -= 1;
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// Adds on the right a perfect subtree of `1 << height` leaves with
    /// root `root`; the size must be a multiple of its width.
    pub fn push_subtree(&mut self, height: u32, root: Hash) {
        debug_assert!(self.size.trailing_zeros() >= height);
        let mut node = root;
        // As in `push`, one level up per trailing one bit above `height`.
        let mut carries = (self.size >> height).trailing_ones();
        while carries > 0 {
            let Some(left) = self.peaks.pop() else { break };
            node = node_hash(&left, &node);
            carries -= 1;
        }
        self.peaks.push(node);
        self.size += 1 << height;
    }

    /// The tree head: the peaks folded from the right.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(last, |right, left| node_hash(left, &right))
    }
}

/// The root of the tree over `leaves` (MTH in RFC 6962).
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for &leaf in leaves {
        frontier.push(leaf);
    }
    frontier.root()
}

/// The largest power of two strictly below `n` (`n` ≥ 2): where RFC 6962
/// splits a tree of `n` leaves.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hex;
    use crate::record::leaf_hash;

    /// Leaves and roots of transparency-dev/merkle's RFC 6962 test vectors.
    pub(crate) const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    pub(crate) const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    pub(crate) fn bytes(hex_text: &str) -> Vec<u8> {
        (0..hex_text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    pub(crate) fn vector_leaves() -> Vec<Hash> {
        LEAVES.iter().map(|l| leaf_hash(&bytes(l))).collect()
    }

    pub(crate) fn h(hex_text: &str) -> Hash {
        hex::decode_hash(hex_text).expect("hash")
    }

    #[test]
    fn roots_match_the_published_vectors() {
        let leaves = vector_leaves();
        let mut frontier = Frontier::new();
        for (n, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.size(), n as u64 + 1);
            assert_eq!(hex::encode(&frontier.root()), ROOTS[n], "size {}", n + 1);
            assert_eq!(root_of(&leaves[..=n]), h(ROOTS[n]));
        }
    }

    #[test]
    fn empty_tree_root_is_the_hash_of_nothing() {
        assert_eq!(
            hex::encode(&Frontier::new().root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn frontier_matches_the_recursive_definition() {
        fn mth(leaves: &[Hash]) -> Hash {
            match leaves.len() {
                0 => empty_root(),
                1 => leaves[0],
                n => {
                    let k = split_point(n as u64) as usize;
                    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in 0..=leaves.len() {
            assert_eq!(root_of(&leaves[..n]), mth(&leaves[..n]), "size {n}");
        }
    }

    /// A perfect subtree pushed whole leaves the frontier as its leaves
    /// pushed one by one would.
    #[test]
    fn subtrees_push_as_their_leaves() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut by_leaf = Frontier::new();
        let mut by_subtree = Frontier::new();
        let mut at = 0usize;
        for step in [1usize, 1, 2, 4, 8, 16, 32, 64, 128, 1, 1, 2, 4, 8, 16] {
            let height = step.trailing_zeros();
            assert_eq!(at % step, 0);
            for &leaf in &leaves[at..at + step] {
                by_leaf.push(leaf);
            }
            by_subtree.push_subtree(height, root_of_perfect(&leaves[at..at + step]));
            at += step;
            assert_eq!(by_subtree, by_leaf, "after {at} leaves");
            assert_eq!(by_subtree.root(), root_of(&leaves[..at]));
        }
    }

    fn root_of_perfect(leaves: &[Hash]) -> Hash {
        match leaves {
            [leaf] => *leaf,
            _ => {
                let (l, r) = leaves.split_at(leaves.len() / 2);
                node_hash(&root_of_perfect(l), &root_of_perfect(r))
            }
        }
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn a_64_byte_leaf_equal_to_a_node_is_not_that_node() {
        let leaves = vector_leaves();
        let (left, right) = (leaves[0], leaves[1]);
        let mut joined = left.to_vec();
        joined.extend_from_slice(&right);
        assert_eq!(joined.len(), 64);
        assert_ne!(leaf_hash(&joined), node_hash(&left, &right));
        // The tree over the two leaves is the node; a one-leaf "tree" whose
        // leaf bytes are left ‖ right is not.
        assert_eq!(root_of(&leaves[..2]), node_hash(&left, &right));
        assert_ne!(root_of(&[leaf_hash(&joined)]), root_of(&leaves[..2]));
    }
}
