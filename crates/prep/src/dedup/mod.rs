//! Duplicate inputs: exact (the same decoded pixels) and, on request, near (a perceptual hash
//! within a Hamming distance), within and across splits, for every dataset. FER2013 as
//! distributed holds pixel-identical images in Training and the test splits, some with different
//! labels; a protocol number is only comparable when everyone handles them the same way, so the
//! default only reports them (`dedup = "report"`), and dropping is a named, keyed choice.
//!
//! Fingerprints are taken from the decoded frames before any face processing: `exact` is blake3
//! over every distinct frame of the input (slot, width, height, pixels), so sequences compare as
//! wholes; `dhash` is the 64-bit difference hash of the last (peak) frame (box-averaged to 9×8,
//! one bit per horizontal neighbour pair). Inputs with a dataset box (RAF-DB, ExpW, AffectNet)
//! are the face in that box: `exact` covers the box, `dhash` the box widened to twice its size
//! (see `pipeline::input_fingerprint`).

pub use crate::fingerprint::{cut_box, dhash, fingerprint, widened, Fingerprint};
use crate::inventory::{reason, InputItem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a build does with duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DedupMode {
    /// Keep everything; list the duplicates (the published protocols' data as distributed).
    #[default]
    Report,
    /// Drop duplicates that sit on the training side of an evaluation: training samples with a
    /// copy in validation or test (fixed splits), or, for folds, the copies outside the fold of a
    /// group's first sample (by sample id).
    DropFromTrain,
    /// Drop every member of a duplicate group whose members carry different labels.
    DropConflicting,
}

impl DedupMode {
    /// The config / CLI name.
    pub fn name(self) -> &'static str {
        match self {
            DedupMode::Report => "report",
            DedupMode::DropFromTrain => "drop-from-train",
            DedupMode::DropConflicting => "drop-conflicting",
        }
    }
}

impl std::str::FromStr for DedupMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            DedupMode::Report,
            DedupMode::DropFromTrain,
            DedupMode::DropConflicting,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| {
            format!("unknown dedup mode {s:?} (report, drop-from-train or drop-conflicting)")
        })
    }
}

/// How two inputs are the same.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateKind {
    /// The same decoded pixels (blake3 of every distinct frame, or of the dataset's face box).
    Exact,
    /// Peak frames whose 64-bit difference hashes are within the configured number of bits.
    Near,
}

impl DuplicateKind {
    /// The name in `duplicates.parquet`'s `kind` column: `exact`, `near`.
    pub fn name(self) -> &'static str {
        match self {
            DuplicateKind::Exact => "exact",
            DuplicateKind::Near => "near",
        }
    }
}

impl std::fmt::Display for DuplicateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DuplicateKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "exact" => Ok(DuplicateKind::Exact),
            "near" => Ok(DuplicateKind::Near),
            other => Err(format!("duplicate kind {other:?}: expected exact or near")),
        }
    }
}

/// Two inputs that are the same image (or sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicatePair {
    /// Exact or near.
    pub kind: DuplicateKind,
    /// Hamming distance of the dHashes (0 for exact pairs).
    pub distance: u32,
    /// Item indices, a < b.
    pub a: usize,
    /// See `a`.
    pub b: usize,
}

/// Every exact pair, and with `near = Some(t)` every other pair whose dHashes differ in at most
/// `t` bits (t ≤ 7: candidates share at least one of the hash's 8 bytes, which finds them all
/// without comparing every pair).
pub fn find_pairs(fps: &[Option<Fingerprint>], near: Option<u32>) -> Vec<DuplicatePair> {
    let mut pairs = Vec::new();
    let mut by_exact: BTreeMap<[u8; 32], Vec<usize>> = BTreeMap::new();
    for (i, f) in fps.iter().enumerate() {
        if let Some(f) = f {
            by_exact.entry(f.exact).or_default().push(i);
        }
    }
    for members in by_exact.values() {
        for (k, &a) in members.iter().enumerate() {
            for &b in &members[k + 1..] {
                pairs.push(DuplicatePair {
                    kind: DuplicateKind::Exact,
                    distance: 0,
                    a,
                    b,
                });
            }
        }
    }
    if let Some(t) = near {
        // Pigeonhole: two 64-bit hashes within t ≤ 7 bits agree on at least one of 8 bytes.
        let mut seen = std::collections::HashSet::new();
        for band in 0..8 {
            let mut buckets: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
            for (i, f) in fps.iter().enumerate() {
                if let Some(f) = f {
                    buckets
                        .entry((f.dhash >> (8 * band)) as u8)
                        .or_default()
                        .push(i);
                }
            }
            for members in buckets.values() {
                for (k, &a) in members.iter().enumerate() {
                    for &b in &members[k + 1..] {
                        let (fa, fb) = match (&fps[a], &fps[b]) {
                            (Some(x), Some(y)) => (x, y),
                            _ => continue,
                        };
                        if fa.exact == fb.exact {
                            continue;
                        }
                        let d = (fa.dhash ^ fb.dhash).count_ones();
                        if d <= t && seen.insert((a, b)) {
                            pairs.push(DuplicatePair {
                                kind: DuplicateKind::Near,
                                distance: d,
                                a,
                                b,
                            });
                        }
                    }
                }
            }
        }
    }
    pairs.sort_by_key(|p| (p.a, p.b));
    pairs
}

/// Duplicate counts of a build (in the summary, the manifest and the final table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCounts {
    /// Exact pairs in all.
    pub exact_pairs: u64,
    /// Exact pairs whose two members are in the same split (or fold).
    pub exact_within_split: u64,
    /// Exact pairs across splits (or folds): the leaks a protocol number can contain.
    pub exact_across_splits: u64,
    /// Exact pairs whose members carry different labels.
    pub exact_conflicting: u64,
    /// Near pairs (with `near_duplicate_bits` set).
    pub near_pairs: u64,
    /// Inputs dropped by the dedup mode.
    pub dropped: u64,
}

/// What the build does: the pairs, the inputs to drop (item index → reason code and detail) and
/// the counts.
#[derive(Debug, Clone, Default)]
pub struct DedupPlan {
    /// Every pair found.
    pub pairs: Vec<DuplicatePair>,
    /// Inputs to leave out, as exclusions.
    pub drops: BTreeMap<usize, (&'static str, String)>,
    /// Counts.
    pub counts: DuplicateCounts,
}

/// Groups `pairs` (union-find) and decides what `mode` drops.
pub fn plan(items: &[InputItem], pairs: Vec<DuplicatePair>, mode: DedupMode) -> DedupPlan {
    let mut parent: Vec<usize> = (0..items.len()).collect();
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut counts = DuplicateCounts::default();
    for p in &pairs {
        let (ra, rb) = (root(&mut parent, p.a), root(&mut parent, p.b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
        let (a, b) = (&items[p.a], &items[p.b]);
        if p.kind == DuplicateKind::Exact {
            counts.exact_pairs += 1;
            if a.split == b.split {
                counts.exact_within_split += 1;
            } else {
                counts.exact_across_splits += 1;
            }
            if a.label != b.label {
                counts.exact_conflicting += 1;
            }
        } else {
            counts.near_pairs += 1;
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for p in &pairs {
        for i in [p.a, p.b] {
            let r = root(&mut parent, i);
            let g = groups.entry(r).or_default();
            if !g.contains(&i) {
                g.push(i);
            }
        }
    }
    let mut drops = BTreeMap::new();
    for members in groups.values_mut() {
        members.sort_unstable();
        let first = &items[members[0]];
        let ids = |skip: usize| {
            members
                .iter()
                .filter(|&&m| m != skip)
                .map(|&m| items[m].sample_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match mode {
            DedupMode::Report => {}
            DedupMode::DropFromTrain => {
                let fixed = members.iter().all(|&m| items[m].split.fold().is_none());
                for &m in members.iter() {
                    let it = &items[m];
                    let drop = if fixed {
                        it.split == shard::Split::Train
                            && members
                                .iter()
                                .any(|&o| items[o].split != shard::Split::Train)
                    } else {
                        it.split != first.split
                    };
                    if drop {
                        drops.insert(
                            m,
                            (
                                reason::DUPLICATE_ACROSS_SPLITS,
                                format!(
                                    "{} duplicates {} (dedup = drop-from-train)",
                                    it.sample_id,
                                    ids(m)
                                ),
                            ),
                        );
                    }
                }
            }
            DedupMode::DropConflicting => {
                if members.iter().any(|&m| items[m].label != first.label) {
                    for &m in members.iter() {
                        drops.insert(
                            m,
                            (
                                reason::CONFLICTING_DUPLICATE,
                                format!(
                                    "{} duplicates {} under another label (dedup = drop-conflicting)",
                                    items[m].sample_id,
                                    ids(m)
                                ),
                            ),
                        );
                    }
                }
            }
        }
    }
    counts.dropped = drops.len() as u64;
    DedupPlan {
        pairs,
        drops,
        counts,
    }
}

mod table;
pub use table::{read_table, write_table, ReportedPair};

#[cfg(test)]
mod tests {
    use super::*;
    use face::GrayImage;

    #[test]
    fn dhash_known_answers() {
        // A left-to-right ramp: every cell darker than its right neighbour: no bit set.
        let ramp: Vec<u8> = (0..8).flat_map(|_| (0..9u8).map(|x| x * 20)).collect();
        assert_eq!(dhash(&GrayImage::new(9, 8, ramp).unwrap()), 0);
        // Right-to-left: every bit set.
        let ramp: Vec<u8> = (0..8)
            .flat_map(|_| (0..9u8).map(|x| 200 - x * 20))
            .collect();
        assert_eq!(dhash(&GrayImage::new(9, 8, ramp).unwrap()), u64::MAX);
        // Only row 2, column 4 brighter than its neighbour: bit 20.
        let mut v = vec![0u8; 72];
        v[2 * 9 + 4] = 255;
        assert_eq!(dhash(&GrayImage::new(9, 8, v).unwrap()), 1 << 20);
    }

    #[test]
    fn cut_box_takes_the_inclusive_box_clipped_to_the_image() {
        let img = GrayImage::new(4, 3, (0..12).collect()).unwrap();
        let c = cut_box(&img, [1, 0, 2, 1]);
        assert_eq!((c.width(), c.height(), c.data()), (2, 2, &[1, 2, 5, 6][..]));
        let c = cut_box(&img, [2, 1, 9, 9]);
        assert_eq!(
            (c.width(), c.height(), c.data()),
            (2, 2, &[6, 7, 10, 11][..])
        );
        // Nothing inside: the whole image.
        assert_eq!(cut_box(&img, [10, 10, 20, 20]), img);
        // A 4×2 box at (10, 20) doubled: 8×4 about the same centre.
        assert_eq!(widened([10, 20, 13, 21], 2.0), [8, 19, 15, 22]);
        assert_eq!(widened([10, 20, 13, 21], 1.0), [10, 20, 13, 21]);
    }

    #[test]
    fn near_pairs_found_by_bands_equal_the_brute_force() {
        let mut rng = shard::KeyedRng::new(&[11]);
        let mut fps: Vec<Option<Fingerprint>> = Vec::new();
        for i in 0..300u64 {
            let base = rng.next_u64();
            // Groups of three: the base hash and two variants 1–9 bits away.
            for k in 0..3u64 {
                let mut h = base;
                for _ in 0..(k * (1 + i % 4)) {
                    h ^= 1 << rng.below(64);
                }
                fps.push(Some(Fingerprint {
                    exact: *blake3::hash(&(3 * i + k).to_le_bytes()).as_bytes(),
                    dhash: h,
                }));
            }
        }
        fps.push(None);
        for t in [0, 3, 7] {
            let got = find_pairs(&fps, Some(t));
            let mut want = Vec::new();
            for a in 0..fps.len() {
                for b in a + 1..fps.len() {
                    if let (Some(x), Some(y)) = (&fps[a], &fps[b]) {
                        let d = (x.dhash ^ y.dhash).count_ones();
                        if d <= t {
                            want.push((a, b, d));
                        }
                    }
                }
            }
            let got: Vec<_> = got.iter().map(|p| (p.a, p.b, p.distance)).collect();
            assert_eq!(got, want, "threshold {t}");
        }
    }
}
