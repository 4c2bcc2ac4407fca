//! dlib's ERT shape predictor (`shape_predictor_68_face_landmarks.dat`): reader and inference.
//!
//! The serialisation and the algorithm follow `shared/docs/face-models.md` section 1 (verified
//! against dlib 20.0.1). The model is stored in flat arrays: per cascade, the 500 anchors and
//! deltas; per tree, 15 packed splits; all leaves in one contiguous `f32` array, so that inference
//! walks memory forward.

use crate::{FaceError, GrayImage, Result};
use std::path::{Path, PathBuf};

/// A face box in dlib's inclusive convention: `right = left + width − 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FaceBox {
    /// Left column.
    pub left: i64,
    /// Top row.
    pub top: i64,
    /// Right column (inclusive).
    pub right: i64,
    /// Bottom row (inclusive).
    pub bottom: i64,
}

impl FaceBox {
    /// From inclusive corners.
    pub fn ltrb(left: i64, top: i64, right: i64, bottom: i64) -> FaceBox {
        FaceBox {
            left,
            top,
            right,
            bottom,
        }
    }

    /// From OpenCV's `x, y, w, h` (exclusive size).
    pub fn xywh(x: i64, y: i64, w: i64, h: i64) -> FaceBox {
        FaceBox::ltrb(x, y, x + w - 1, y + h - 1)
    }

    /// Width in pixels (`right − left + 1`).
    pub fn width(&self) -> i64 {
        self.right - self.left + 1
    }

    /// Height in pixels.
    pub fn height(&self) -> i64 {
        self.bottom - self.top + 1
    }

    /// Centre (x, y).
    pub fn center(&self) -> (f64, f64) {
        (
            (self.left + self.right) as f64 / 2.0,
            (self.top + self.bottom) as f64 / 2.0,
        )
    }

    /// Intersection over union with another box.
    pub fn iou(&self, o: &FaceBox) -> f64 {
        let l = self.left.max(o.left);
        let t = self.top.max(o.top);
        let r = self.right.min(o.right);
        let b = self.bottom.min(o.bottom);
        let inter = ((r - l + 1).max(0) * (b - t + 1).max(0)) as f64;
        let union = (self.width() * self.height() + o.width() * o.height()) as f64 - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// 68 landmarks as dlib returns them: integer pixels (rounded with `floor(v + 0.5)`) and the
/// unrounded `f32` positions they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmarks {
    /// Rounded points, exactly dlib's `full_object_detection` parts.
    pub points: Vec<[i64; 2]>,
    /// Unrounded points in image pixels.
    pub precise: Vec<[f32; 2]>,
}

impl Landmarks {
    /// Mean of points `range` (precise coordinates).
    pub fn mean(&self, range: std::ops::Range<usize>) -> [f64; 2] {
        let n = range.len() as f64;
        let (mut x, mut y) = (0.0, 0.0);
        for p in &self.precise[range] {
            x += p[0] as f64;
            y += p[1] as f64;
        }
        [x / n, y / n]
    }

    /// Distance between the eye centres (points 36–41 and 42–47).
    pub fn inter_ocular(&self) -> f64 {
        let l = self.mean(36..42);
        let r = self.mean(42..48);
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }
}

/// One split node in 32 bits: feature indices in bits 0–10 and 11–21, the threshold as a signed
/// integer in bits 22–31.
///
/// Feature pixels are grey levels 0–255, so the difference `d` a split tests is an integer in
/// −255..=255, and for an integer `d`, `d > thresh` ⟺ `d > floor(thresh)`; that floor, clamped to
/// −256..=255 (NaN → 255: never taken, as dlib's `>` is false on NaN), decides every comparison
/// as dlib's f32 test does. Half the bytes of (u16, u16, f32): every face walks all 7,500 trees,
/// whose splits (450 KB instead of 900 KB) stream from L3; the walk measured a quarter faster.
/// Models with more than 2,048 feature pixels per cascade are refused at load (dlib's 68-point
/// model has 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split(u32);

impl Split {
    /// Largest feature index a split can hold.
    const MAX_FEATURE: u64 = (1 << 11) - 1;

    /// Packs a split; the indices must be at most [`Split::MAX_FEATURE`].
    fn new(idx1: u16, idx2: u16, thresh: f32) -> Split {
        debug_assert!(u64::from(idx1.max(idx2)) <= Split::MAX_FEATURE);
        // `as` would map NaN to 0 (a split taken by any positive difference), hence apart.
        let t = if thresh.is_nan() {
            255
        } else {
            (thresh.floor() as i32).clamp(-256, 255)
        };
        Split(u32::from(idx1) | u32::from(idx2) << 11 | (t as u32) << 22)
    }

    #[inline(always)]
    fn idx1(self) -> usize {
        (self.0 & 0x7ff) as usize
    }

    #[inline(always)]
    fn idx2(self) -> usize {
        (self.0 >> 11 & 0x7ff) as usize
    }

    /// The threshold's floor, sign-extended from 10 bits.
    #[inline(always)]
    fn thresh(self) -> i32 {
        self.0 as i32 >> 22
    }
}

/// dlib's 68-point ERT landmark model, loaded into flat arrays.
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    /// Normalised mean shape, x0 y0 x1 y1 …
    initial: Vec<f32>,
    cascades: usize,
    trees: usize,
    /// splits per tree (2^depth − 1) and leaves per tree (2^depth).
    splits_per_tree: usize,
    leaves_per_tree: usize,
    features: usize,
    splits: Vec<Split>,
    leaves: Vec<f32>,
    anchors: Vec<u32>,
    /// Per feature, the offset from its anchor in the mean shape's frame, x and y apart (the
    /// vector feature path loads eight of each at once).
    delta_x: Vec<f32>,
    delta_y: Vec<f32>,
    /// The CPU has AVX2 (leaf additions use 8 lanes).
    avx2: bool,
}

/// Byte reader of dlib's serialisation format with offsets for error messages.
struct DlibReader<'a> {
    bytes: &'a [u8],
    at: usize,
    file: &'a Path,
}

impl<'a> DlibReader<'a> {
    fn err(&self, offset: usize, reason: impl Into<String>) -> FaceError {
        FaceError::DlibFormat {
            file: self.file.to_path_buf(),
            offset: offset as u64,
            reason: reason.into(),
        }
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.err(self.at, "unexpected end of file"))?;
        self.at += 1;
        Ok(b)
    }

    #[inline]
    fn magnitude(&mut self, n: usize, start: usize) -> Result<u64> {
        let end = self.at + n;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| self.err(start, "unexpected end of file inside an integer"))?;
        let mut v = 0u64;
        for (i, b) in slice.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        self.at = end;
        Ok(v)
    }

    /// Signed integer of at most `max_bytes` bytes.
    #[inline]
    fn signed(&mut self, max_bytes: usize) -> Result<i64> {
        let start = self.at;
        let c = self.byte()?;
        let n = (c & 0x0f) as usize;
        if n == 0 || n > max_bytes {
            return Err(self.err(
                start,
                format!("integer control byte {c:#04x} gives {n} bytes (1..={max_bytes} allowed)"),
            ));
        }
        let v = self.magnitude(n, start)?;
        if v > i64::MAX as u64 {
            return Err(self.err(start, "integer overflows i64"));
        }
        Ok(if c & 0x80 != 0 { -(v as i64) } else { v as i64 })
    }

    /// Unsigned integer of at most `max_bytes` bytes.
    #[inline]
    fn unsigned(&mut self, max_bytes: usize) -> Result<u64> {
        let start = self.at;
        let c = self.byte()? & 0x8f;
        let n = c as usize;
        if n == 0 || n > max_bytes {
            return Err(self.err(
                start,
                format!("unsigned control byte {c:#04x} is not 1..={max_bytes} bytes"),
            ));
        }
        self.magnitude(n, start)
    }

    /// A length prefix, bounded so that a corrupt length cannot make us allocate gigabytes.
    fn len(&mut self, max: u64, what: &str) -> Result<usize> {
        let start = self.at;
        let n = self.unsigned(8)?;
        if n > max {
            return Err(self.err(start, format!("{what} length {n} exceeds the limit {max}")));
        }
        Ok(n as usize)
    }

    #[inline]
    fn float(&mut self) -> Result<f32> {
        let start = self.at;
        let first = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.err(self.at, "unexpected end of file"))?;
        if first & 0x70 != 0 {
            return Err(self.err(start, "float in dlib's old ASCII format is not supported"));
        }
        let mantissa = self.signed(8)?;
        let exponent = self.signed(2)?;
        Ok(match exponent {
            32000 => f32::INFINITY,
            32001 => f32::NEG_INFINITY,
            32002 => f32::NAN,
            e => ((mantissa as f64) * pow2(e as i32)) as f32,
        })
    }

    /// [`Self::column`] appending to `out` (no allocation per leaf: the model has 120,000 leaves).
    fn column_into(&mut self, expect_rows: usize, out: &mut Vec<f32>) -> Result<()> {
        let start = self.at;
        let nr = self.signed(8)?.unsigned_abs() as usize;
        let nc = self.signed(8)?.unsigned_abs() as usize;
        if nc != 1 || nr != expect_rows {
            return Err(self.err(
                start,
                format!("expected a column of {expect_rows} rows, found {nr}×{nc}"),
            ));
        }
        for _ in 0..nr {
            out.push(self.float()?);
        }
        Ok(())
    }

    /// `matrix<float,0,1>`: negative row and column counts (new format), then the elements.
    fn column(&mut self, expect_rows: Option<usize>) -> Result<Vec<f32>> {
        let start = self.at;
        let nr = self.signed(8)?.unsigned_abs() as usize;
        let nc = self.signed(8)?.unsigned_abs() as usize;
        if nc != 1 || nr > 1_000_000 {
            return Err(self.err(start, format!("expected a column vector, found {nr}×{nc}")));
        }
        if let Some(e) = expect_rows {
            if nr != e {
                return Err(self.err(start, format!("column of {nr} rows, expected {e}")));
            }
        }
        (0..nr).map(|_| self.float()).collect()
    }
}

impl ShapePredictor {
    /// Loads a `.dat` file. Errors name the byte offset of the first malformed value.
    pub fn load(path: &Path) -> Result<ShapePredictor> {
        let bytes = std::fs::read(path).map_err(|e| FaceError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses the serialised model; `name` is used in error messages.
    ///
    /// # Errors
    /// [`FaceError::DlibFormat`] with the byte offset for a truncated or malformed file, a tree
    /// that is not complete, trees of different depths, anchors that are not landmark indices,
    /// and split feature indices above 2,047 (the packed split's limit; dlib's 68-point model
    /// uses 500 per cascade).
    pub fn from_bytes(bytes: &[u8], name: &Path) -> Result<ShapePredictor> {
        let mut r = DlibReader {
            bytes,
            at: 0,
            file: name,
        };
        let version = r.signed(4)?;
        if version != 1 {
            return Err(r.err(0, format!("shape_predictor version {version}, expected 1")));
        }
        let initial = r.column(None)?;
        if initial.is_empty() || initial.len() % 2 != 0 {
            return Err(r.err(1, format!("initial shape has {} values", initial.len())));
        }
        let dims = initial.len();

        let cascades = r.len(1000, "cascade list")?;
        let mut splits = Vec::new();
        // Every serialised float takes at least two bytes (a mantissa and an exponent byte), so
        // this capacity is never outgrown and the leaves are parsed straight into huge pages;
        // the unused part of the reservation is never touched, so it costs no memory.
        let mut leaves = huge_page_vec(bytes.len() / 2);
        let mut trees_per = None;
        let mut shape = None;
        for c in 0..cascades {
            let at = r.at;
            let trees = r.len(100_000, "tree list")?;
            if *trees_per.get_or_insert(trees) != trees {
                return Err(r.err(
                    at,
                    format!("cascade {c} has {trees} trees, cascade 0 has {trees_per:?}"),
                ));
            }
            for t in 0..trees {
                let at = r.at;
                let ns = r.len(1 << 16, "split list")?;
                let mut tree_splits = Vec::with_capacity(ns);
                for _ in 0..ns {
                    let at = r.at;
                    let i1 = r.unsigned(8)?;
                    let i2 = r.unsigned(8)?;
                    let thresh = r.float()?;
                    if i1.max(i2) > Split::MAX_FEATURE {
                        return Err(r.err(
                            at,
                            format!(
                                "split feature index {} exceeds {} (more feature pixels per cascade than supported)",
                                i1.max(i2),
                                Split::MAX_FEATURE
                            ),
                        ));
                    }
                    tree_splits.push(Split::new(i1 as u16, i2 as u16, thresh));
                }
                let nl = r.len(1 << 17, "leaf list")?;
                if nl != ns + 1 || !(nl.is_power_of_two()) {
                    return Err(r.err(at, format!("tree {t} of cascade {c}: {ns} splits and {nl} leaves is not a complete binary tree")));
                }
                if *shape.get_or_insert((ns, nl)) != (ns, nl) {
                    return Err(r.err(at, "trees of different depths are not supported"));
                }
                splits.extend(tree_splits);
                for _ in 0..nl {
                    r.column_into(dims, &mut leaves)?;
                }
            }
        }
        let trees = trees_per.unwrap_or(0);
        let (splits_per_tree, leaves_per_tree) = shape.unwrap_or((0, 1));

        let at = r.at;
        let na = r.len(1000, "anchor list")?;
        if na != cascades {
            return Err(r.err(at, format!("{na} anchor lists for {cascades} cascades")));
        }
        let mut anchors = Vec::new();
        let mut features = None;
        for _ in 0..na {
            let at = r.at;
            let n = r.len(1 << 16, "anchor")?;
            if *features.get_or_insert(n) != n {
                return Err(r.err(at, "cascades with different feature counts"));
            }
            for _ in 0..n {
                let at = r.at;
                let a = r.unsigned(8)?;
                if a as usize >= dims / 2 {
                    return Err(r.err(at, format!("anchor {a} is not a landmark index")));
                }
                anchors.push(a as u32);
            }
        }
        let features = features.unwrap_or(0);
        let at = r.at;
        let nd = r.len(1000, "delta list")?;
        if nd != cascades {
            return Err(r.err(at, format!("{nd} delta lists for {cascades} cascades")));
        }
        let (mut delta_x, mut delta_y) = (Vec::new(), Vec::new());
        for _ in 0..nd {
            let at = r.at;
            let n = r.len(1 << 16, "delta")?;
            if n != features {
                return Err(r.err(at, format!("{n} deltas for {features} anchors")));
            }
            for _ in 0..n {
                delta_x.push(r.float()?);
                delta_y.push(r.float()?);
            }
        }
        if let Some(s) = splits
            .iter()
            .find(|s| s.idx1() >= features || s.idx2() >= features)
        {
            return Err(r.err(
                r.at,
                format!(
                    "split uses feature {} / {} of {features}",
                    s.idx1(),
                    s.idx2()
                ),
            ));
        }
        if r.at != bytes.len() {
            return Err(r.err(
                r.at,
                format!("{} trailing bytes after the model", bytes.len() - r.at),
            ));
        }
        Ok(ShapePredictor {
            initial,
            cascades,
            trees,
            splits_per_tree,
            leaves_per_tree,
            features,
            splits,
            leaves,
            anchors,
            delta_x,
            delta_y,
            avx2: crate::lanes::simd_enabled(),
        })
    }

    /// The normalised mean shape (box coordinates in 0..1), one (x, y) per landmark.
    pub fn initial_shape(&self) -> Vec<[f32; 2]> {
        self.initial.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
    }

    /// Number of landmarks (68 for the standard model).
    pub fn num_parts(&self) -> usize {
        self.initial.len() / 2
    }

    /// (cascades, trees per cascade, leaves per tree, feature pixels per cascade).
    pub fn dimensions(&self) -> (usize, usize, usize, usize) {
        (
            self.cascades,
            self.trees,
            self.leaves_per_tree,
            self.features,
        )
    }

    /// Predicts the 68 landmarks of the face in `face` (a dlib-convention box), exactly as dlib's
    /// `shape_predictor::operator()` does.
    pub fn predict(&self, img: &GrayImage, face: FaceBox) -> Landmarks {
        let mut state = PredictState::new(self, face);
        let mut leaf_offsets = vec![0usize; self.trees];
        // Where in `leaves` each tree's chosen leaf starts.
        let mut leaf_at = vec![0usize; self.trees];
        for c in 0..self.cascades {
            state.features(self, img, c);
            let tree0 = c * self.trees;
            // Each leaf's first line is requested as soon as its tree is walked, so the leaf
            // loads start while the walk still keeps the core busy (measured a few per cent
            // faster than loading only after the walk). Requesting whole leaves here, or adding
            // the leaves of earlier trees during the walk, measured slower: the walk's own loads
            // then wait behind the misses.
            self.walk_trees_then(c, &state.feats, &mut leaf_offsets, |first, leaves| {
                for (k, &leaf) in leaves.iter().enumerate() {
                    let at = self.leaf_start(tree0 + first + k, leaf);
                    leaf_at[first + k] = at;
                    prefetch_floats(&self.leaves, at, 1);
                }
            });
            state.add_leaves(&self.leaves, &leaf_at, self.avx2, Some(6));
        }
        state.finish()
    }

    /// Predicts many faces at once, each result identical to [`ShapePredictor::predict`].
    ///
    /// Trees are visited in the outer loop (in blocks of 8) and faces in the inner one, so every
    /// face still adds its leaves in dlib's tree order (same float sums), but each tree's leaves
    /// are read once per batch while they are in cache instead of once per face: the 65 MB leaf
    /// table streams through memory sequentially instead of being read at random. Worth it from
    /// ~8 faces on (FER2013 rows, whole-frame boxes); the result does not depend on the batch
    /// size.
    pub fn predict_batch(&self, faces: &[(&GrayImage, FaceBox)]) -> Vec<Landmarks> {
        let mut states: Vec<PredictState> = faces
            .iter()
            .map(|(_, b)| PredictState::new(self, *b))
            .collect();
        let nf = faces.len();
        let dims = self.initial.len();
        let mut walked = vec![0usize; self.trees];
        // Leaf index per (tree, face): the addition loop reads one tree's row at a time.
        let mut by_tree = vec![0u32; self.trees * nf];
        for c in 0..self.cascades {
            if let (Some(st), Some((img, _))) = (states.first_mut(), faces.first()) {
                st.locate(self, img, c);
            }
            for k in 0..nf {
                // Locate (and prefetch) the next face's pixels before reading this one's.
                if k + 1 < nf {
                    states[k + 1].locate(self, faces[k + 1].0, c);
                }
                let st = &mut states[k];
                st.read(faces[k].0);
                self.walk_trees(c, &st.feats, &mut walked);
                for (tree, &leaf) in walked.iter().enumerate() {
                    by_tree[tree * nf + k] = leaf as u32;
                }
            }
            let tree0 = c * self.trees;
            // The leaves some face of the batch uses, a couple of trees ahead: each is read from
            // memory once and then from cache by the other faces that land on it.
            let prefetch_used = |tree: usize| {
                let mut used = 0u64;
                for &leaf in &by_tree[tree * nf..(tree + 1) * nf] {
                    used |= 1u64.checked_shl(leaf).unwrap_or(0);
                }
                while used != 0 {
                    let leaf = used.trailing_zeros() as usize;
                    prefetch_floats(&self.leaves, self.leaf_start(tree0 + tree, leaf), dims);
                    used &= used - 1;
                }
            };
            // Trees in blocks, then face by face: the block's leaves sit in cache while every face
            // adds its eight, with its sums in registers across them (measured: 0.20–0.25 →
            // 0.16–0.17 ms per face, against faces in groups of 24 adding tree by tree through
            // memory). Each face still adds its leaves in tree order.
            const BLOCK: usize = 8;
            for tree in 0..BLOCK.min(self.trees) {
                prefetch_used(tree);
            }
            let mut leaf_at = [0usize; BLOCK];
            for block in (0..self.trees).step_by(BLOCK) {
                let end = (block + BLOCK).min(self.trees);
                for tree in end..(end + BLOCK).min(self.trees) {
                    prefetch_used(tree);
                }
                for (k, st) in states.iter_mut().enumerate() {
                    for (at, tree) in leaf_at.iter_mut().zip(block..end) {
                        let leaf = by_tree[tree * nf + k] as usize;
                        *at = self.leaf_start(tree0 + tree, leaf);
                    }
                    st.add_leaves(&self.leaves, &leaf_at[..end - block], self.avx2, None);
                }
            }
        }
        states.into_iter().map(PredictState::finish).collect()
    }

    /// Where leaf `leaf` of tree `tree` (counted over all cascades) starts in `leaves`.
    #[inline(always)]
    fn leaf_start(&self, tree: usize, leaf: usize) -> usize {
        (tree * self.leaves_per_tree + leaf) * self.initial.len()
    }

    /// Walks every tree of cascade `c` (they only read the feature pixels) and stores each tree's
    /// leaf index.
    fn walk_trees(&self, c: usize, feats: &[i32], leaf_offsets: &mut [usize]) {
        self.walk_trees_then(c, feats, leaf_offsets, |_, _| {})
    }

    /// [`Self::walk_trees`], calling `walked(first, leaves)` as soon as each run of trees is
    /// walked (`first` counted within the cascade, `leaves` their leaf indices).
    #[inline(always)]
    fn walk_trees_then(
        &self,
        c: usize,
        feats: &[i32],
        leaf_offsets: &mut [usize],
        mut walked: impl FnMut(usize, &[usize]),
    ) {
        let n = self.splits_per_tree;
        let tree0 = c * self.trees;
        assert!(
            feats.len() == self.features
                && leaf_offsets.len() <= self.trees
                && (tree0 + leaf_offsets.len()) * n <= self.splits.len(),
            "walk_trees: feature or tree count does not match the model"
        );
        let mut chunks = leaf_offsets.chunks_exact_mut(8);
        let mut t = tree0;
        // Eight trees side by side: each level of a walk waits on the last (split → pixels →
        // compare), so one tree at a time leaves the core idle between loads.
        for out in &mut chunks {
            let mut i = [0usize; 8];
            while i[0] < n {
                for (k, ik) in i.iter_mut().enumerate() {
                    // SAFETY: tree t + k < tree0 + leaf_offsets.len() and i < n, so the split is
                    // inside `splits` (asserted above); its feature indices are < `features`
                    // (checked when the model was loaded) = feats.len() (asserted above).
                    let left = unsafe {
                        let sp = *self.splits.get_unchecked((t + k) * n + *ik);
                        *feats.get_unchecked(sp.idx1()) - *feats.get_unchecked(sp.idx2())
                            > sp.thresh()
                    };
                    *ik = 2 * *ik + 2 - left as usize;
                }
            }
            for (o, ik) in out.iter_mut().zip(i) {
                *o = ik - n;
            }
            walked(t - tree0, out);
            t += 8;
        }
        for leaf_at in chunks.into_remainder() {
            *leaf_at = self.walk_tree(t, feats);
            walked(t - tree0, std::slice::from_ref(leaf_at));
            t += 1;
        }
    }

    /// The leaf index tree `tree` (counted over all cascades) sends a face with these feature
    /// pixels to; 0 for depth-0 trees.
    #[inline(always)]
    fn walk_tree(&self, tree: usize, feats: &[i32]) -> usize {
        let n = self.splits_per_tree;
        let splits = &self.splits[tree * n..(tree + 1) * n];
        let mut i = 0usize;
        while i < n {
            let s = splits[i];
            // Branch-free: which child a face goes to is a coin toss for the branch predictor,
            // and a mispredict costs more than the whole comparison.
            let left = feats[s.idx1()] - feats[s.idx2()] > s.thresh();
            i = 2 * i + 2 - left as usize;
        }
        i - n
    }
}

/// One face's prediction in progress: the current normalised shape and the box geometry.
struct PredictState {
    cur: Vec<f32>,
    /// Grey level of each feature pixel of the current cascade, 0 outside the image (integers, so
    /// the splits compare them exactly with integer thresholds).
    feats: Vec<i32>,
    /// Per feature of the current cascade: index of its pixel in the image data, `usize::MAX`
    /// when outside (set by [`PredictState::locate`], read by [`PredictState::read`]).
    pixel_at: Vec<usize>,
    l: f64,
    t: f64,
    sx: f64,
    sy: f64,
    /// Mean of the initial shape and its centred squared norm (the same for every cascade).
    mean_from: (f64, f64),
    from_sq: f64,
}

impl PredictState {
    fn new(sp: &ShapePredictor, face: FaceBox) -> PredictState {
        let n = sp.initial.len() / 2;
        let (mfx, mfy) = mean_xy(&sp.initial);
        let mut from_sq = 0f64;
        for k in 0..n {
            let fx = sp.initial[2 * k] as f64 - mfx;
            let fy = sp.initial[2 * k + 1] as f64 - mfy;
            from_sq += fx * fx + fy * fy;
        }
        PredictState {
            cur: sp.initial.clone(),
            feats: vec![0; sp.features],
            pixel_at: vec![usize::MAX; sp.features],
            l: face.left as f64,
            t: face.top as f64,
            sx: (face.right - face.left) as f64,
            sy: (face.bottom - face.top) as f64,
            mean_from: (mfx, mfy),
            from_sq,
        }
    }

    /// The feature pixels of cascade `c`: [`Self::locate`] then [`Self::read`].
    fn features(&mut self, sp: &ShapePredictor, img: &GrayImage, c: usize) {
        self.locate(sp, img, c);
        self.read(img);
    }

    /// Where the feature pixels of cascade `c` are: anchors moved by the similarity initial →
    /// current (Umeyama without reflection, closed form), nearest pixel (`usize::MAX` outside the
    /// image), each one prefetched. Apart from [`Self::read`] so that a batch can locate the next
    /// face's pixels while it reads this one's: the image has usually left the cache since the
    /// previous cascade, and the reads are then cache misses.
    fn locate(&mut self, sp: &ShapePredictor, img: &GrayImage, c: usize) {
        let n = sp.initial.len() / 2;
        let (mfx, mfy) = self.mean_from;
        let cur = &self.cur;
        let (mtx, mty) = mean_xy(cur);
        let (mut dot, mut cross) = (0f64, 0f64);
        for k in 0..n {
            let fx = sp.initial[2 * k] as f64 - mfx;
            let fy = sp.initial[2 * k + 1] as f64 - mfy;
            let tx = cur[2 * k] as f64 - mtx;
            let ty = cur[2 * k + 1] as f64 - mty;
            dot += fx * tx + fy * ty;
            cross += fx * ty - fy * tx;
        }
        let (a, b) = if self.from_sq != 0.0 {
            ((dot / self.from_sq) as f32, (cross / self.from_sq) as f32)
        } else {
            (1.0, 0.0)
        };
        let base = c * sp.features;
        let range = base..base + sp.features;
        let (dx, dy, anchors) = (
            &sp.delta_x[range.clone()],
            &sp.delta_y[range.clone()],
            &sp.anchors[range],
        );
        let geometry = [self.l, self.t, self.sx, self.sy];
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if sp.avx2 {
            // SAFETY: `avx2` is true only when the CPU reported AVX2, and the anchors are landmark
            // indices (both checked at model load); `cur` holds every landmark.
            done = unsafe {
                locate_pixels_avx2(
                    &mut self.pixel_at,
                    cur,
                    anchors,
                    dx,
                    dy,
                    (a, b),
                    geometry,
                    img,
                )
            };
        }
        for k in done..self.pixel_at.len() {
            let anchor = anchors[k] as usize;
            let ux = (a * dx[k] - b * dy[k]) + cur[2 * anchor];
            let uy = (b * dx[k] + a * dy[k]) + cur[2 * anchor + 1];
            self.pixel_at[k] = feature_pixel(img, geometry, ux, uy);
            prefetch_pixel(img.data(), self.pixel_at[k]);
        }
    }

    /// The grey values at the located pixels, 0 outside the image.
    fn read(&mut self, img: &GrayImage) {
        let data = img.data();
        for (f, &at) in self.feats.iter_mut().zip(&self.pixel_at) {
            *f = data.get(at).map_or(0, |&v| i32::from(v));
        }
    }

    /// Adds the leaves starting at `leaf_at` (offsets into `table`), in order; with `ahead`, each
    /// whole leaf is prefetched that many leaves before its turn (one face at a time the leaves
    /// come from memory; a batch has them in cache already).
    #[inline(always)]
    fn add_leaves(&mut self, table: &[f32], leaf_at: &[usize], avx2: bool, ahead: Option<usize>) {
        let dims = self.cur.len();
        if let Some(ahead) = ahead {
            for &at in leaf_at.iter().take(ahead) {
                prefetch_floats(table, at, dims);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if avx2 && dims == SUMS_IN_REGISTERS {
            // SAFETY: `avx2` is true only when the CPU reported AVX2 (checked at model load).
            unsafe { sum_leaves_in_registers(&mut self.cur, table, leaf_at, ahead) };
            return;
        }
        for (k, &at) in leaf_at.iter().enumerate() {
            if let Some(&next) = ahead.and_then(|a| leaf_at.get(k + a)) {
                prefetch_floats(table, next, dims);
            }
            self.add_leaf(&table[at..at + dims], avx2);
        }
    }

    #[inline(always)]
    fn add_leaf(&mut self, leaf: &[f32], avx2: bool) {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` is true only when the CPU reported AVX2 (checked at model load).
            unsafe { add_avx2(&mut self.cur, leaf) };
            return;
        }
        let _ = avx2;
        add_floats(&mut self.cur, leaf);
    }

    fn finish(self) -> Landmarks {
        let n = self.cur.len() / 2;
        let mut points = Vec::with_capacity(n);
        let mut precise = Vec::with_capacity(n);
        for k in 0..n {
            let x = self.l + self.cur[2 * k] as f64 * self.sx;
            let y = self.t + self.cur[2 * k + 1] as f64 * self.sy;
            points.push([(x + 0.5).floor() as i64, (y + 0.5).floor() as i64]);
            precise.push([x as f32, y as f32]);
        }
        Landmarks { points, precise }
    }
}

/// `cur += leaf`, element by element. Each element is one IEEE addition whatever the vector
/// width, so the sums are the same bits as dlib's scalar loop.
#[inline(always)]
fn add_floats(cur: &mut [f32], leaf: &[f32]) {
    for (cv, lv) in cur.iter_mut().zip(leaf) {
        *cv += *lv;
    }
}

/// [`add_floats`] compiled for AVX2 (8 lanes instead of baseline x86-64's 4): the leaf additions
/// are half of a batched prediction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_avx2(cur: &mut [f32], leaf: &[f32]) {
    add_floats(cur, leaf)
}

/// The shape size whose leaf sums [`sum_leaves_in_registers`] keeps in registers: 68 points.
const SUMS_IN_REGISTERS: usize = 136;

/// `cur += table[at..at + 136]` for each offset in `leaf_at`, in order, with the 136 sums held in
/// 17 AVX2 registers across all the leaves instead of loaded and stored once per leaf; with
/// `ahead`, the whole leaf that many offsets on is prefetched. Each element still gets one IEEE
/// f32 addition per leaf in the same order (no FMA), so the sums are the bits of [`add_floats`]
/// leaf after leaf.
///
/// Why: one face at a time the additions wait on leaves coming from memory, and how many leaves
/// are in flight at once depends on how many trees' additions fit in the core's reorder window.
/// With the sums in registers a leaf costs 17 fused load-adds instead of 17 loads, adds and
/// stores: measured 6 % faster per face, same points. A batch adds a block of trees' leaves
/// (in cache) per face with it.
///
/// # Safety
/// The CPU must have AVX2. Panics (a bug, not bad data) if `cur` is not 136 long or an offset
/// leaves `table`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_leaves_in_registers(
    cur: &mut [f32],
    table: &[f32],
    leaf_at: &[usize],
    ahead: Option<usize>,
) {
    use std::arch::x86_64::*;
    const VECS: usize = SUMS_IN_REGISTERS / 8;
    assert_eq!(cur.len(), SUMS_IN_REGISTERS, "shape size");
    let mut acc = [_mm256_setzero_ps(); VECS];
    for (v, a) in acc.iter_mut().enumerate() {
        // SAFETY: 8 · v + 8 ≤ 136 = cur.len().
        *a = unsafe { _mm256_loadu_ps(cur.as_ptr().add(8 * v)) };
    }
    for (k, &at) in leaf_at.iter().enumerate() {
        if let Some(&next) = ahead.and_then(|a| leaf_at.get(k + a)) {
            prefetch_floats(table, next, SUMS_IN_REGISTERS);
        }
        let leaf = &table[at..at + SUMS_IN_REGISTERS];
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: 8 · v + 8 ≤ 136 = leaf.len().
            *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(leaf.as_ptr().add(8 * v)) });
        }
    }
    for (v, a) in acc.iter().enumerate() {
        // SAFETY: 8 · v + 8 ≤ 136 = cur.len().
        unsafe { _mm256_storeu_ps(cur.as_mut_ptr().add(8 * v), *a) };
    }
}

/// An empty vector with room for `capacity` floats, in memory the kernel is asked to back with
/// 2 MB pages (the 65 MB leaf table is parsed into it).
///
/// Every tree of a prediction lands on a different 4 KB page of the table, so with ordinary pages
/// nearly every leaf costs a TLB miss and a page walk (profiled: a third of the prediction time).
/// Transparent huge pages in `madvise` mode, Debian's default, need the hint; where they are off the
/// hint is ignored and nothing else changes. Parsing straight into it, rather than copying the
/// parsed table over, saves a 65 MB copy and the page faults of a second buffer at load.
fn huge_page_vec(capacity: usize) -> Vec<f32> {
    let out: Vec<f32> = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = out.as_ptr() as usize;
        let end = start + capacity * std::mem::size_of::<f32>();
        let aligned = start.div_ceil(PAGE) * PAGE;
        if end > aligned + PAGE {
            // SAFETY: the range lies inside `out`'s allocation and is page aligned; MADV_HUGEPAGE
            // only changes how the kernel backs the pages, never their contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    (end - aligned) / PAGE * PAGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    out
}

/// Index in the image data of the pixel at the point (`ux`, `uy`) of the face box's unit frame,
/// `geometry` = (left, top, width span, height span) of the box: nearest pixel by floor(x + 0.5)
/// as dlib rounds; `usize::MAX` outside the image (dlib reads 0 there). A NaN coordinate (only a
/// corrupt model makes one) is outside, as in the vector path.
#[inline(always)]
fn feature_pixel(img: &GrayImage, geometry: [f64; 4], ux: f32, uy: f32) -> usize {
    let [l, t, sx, sy] = geometry;
    let (vx, vy) = (l + ux as f64 * sx + 0.5, t + uy as f64 * sy + 0.5);
    if vx.is_nan() || vy.is_nan() {
        return usize::MAX;
    }
    let (x, y) = (floor_to_i64(vx), floor_to_i64(vy));
    if x >= 0 && y >= 0 && (x as usize) < img.width() && (y as usize) < img.height() {
        y as usize * img.width() + x as usize
    } else {
        usize::MAX
    }
}

/// Asks the CPU to start loading the cache line of `data[at]` (nothing when `at` is outside).
#[inline(always)]
fn prefetch_pixel(data: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < data.len() {
        // SAFETY: the address is inside `data` (checked above); prefetch has no other effect.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                data.as_ptr().add(at) as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}

/// [`PredictState::locate`]'s per-feature loop for eight features at a time: the same f32
/// similarity transform and f64 pixel arithmetic as [`feature_pixel`], operation for operation (no
/// fused multiply-add), giving the same indices (`usize::MAX` outside), each prefetched. Returns
/// how many features it did (a multiple of eight); the caller does the rest.
///
/// # Safety
/// The CPU must have AVX2, and every anchor must be a landmark of `cur` (2 · anchor + 1 <
/// `cur.len()`; the model loader refuses anchors that are not landmark indices).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn locate_pixels_avx2(
    pixel_at: &mut [usize],
    cur: &[f32],
    anchors: &[u32],
    dx: &[f32],
    dy: &[f32],
    (a, b): (f32, f32),
    geometry: [f64; 4],
    img: &GrayImage,
) -> usize {
    use std::arch::x86_64::*;
    let n = pixel_at.len();
    if anchors.len() != n || dx.len() != n || dy.len() != n {
        return 0;
    }
    let (va, vb) = (_mm256_set1_ps(a), _mm256_set1_ps(b));
    let [l, t, sx, sy] = [
        _mm256_set1_pd(geometry[0]),
        _mm256_set1_pd(geometry[1]),
        _mm256_set1_pd(geometry[2]),
        _mm256_set1_pd(geometry[3]),
    ];
    let half = _mm256_set1_pd(0.5);
    let (w, h) = (img.width(), img.height());
    let (wf, hf) = (_mm256_set1_pd(w as f64), _mm256_set1_pd(h as f64));
    let data = img.data();
    if data.is_empty() || data.len() > i32::MAX as usize {
        return 0;
    }
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: k + 8 <= n = the length of all four slices (checked above).
        let (anc, d0, d1) = unsafe {
            (
                _mm256_loadu_si256(anchors.as_ptr().add(k).cast()),
                _mm256_loadu_ps(dx.as_ptr().add(k)),
                _mm256_loadu_ps(dy.as_ptr().add(k)),
            )
        };
        let ix = _mm256_slli_epi32::<1>(anc);
        let iy = _mm256_add_epi32(ix, _mm256_set1_epi32(1));
        // SAFETY: every 2·anchor + 1 is inside `cur` (the caller's contract).
        let (cx, cy) = unsafe {
            (
                _mm256_i32gather_ps::<4>(cur.as_ptr(), ix),
                _mm256_i32gather_ps::<4>(cur.as_ptr(), iy),
            )
        };
        let ux = _mm256_add_ps(
            _mm256_sub_ps(_mm256_mul_ps(va, d0), _mm256_mul_ps(vb, d1)),
            cx,
        );
        let uy = _mm256_add_ps(
            _mm256_add_ps(_mm256_mul_ps(vb, d0), _mm256_mul_ps(va, d1)),
            cy,
        );
        let halves = [
            (_mm256_castps256_ps128(ux), _mm256_castps256_ps128(uy)),
            (
                _mm256_extractf128_ps::<1>(ux),
                _mm256_extractf128_ps::<1>(uy),
            ),
        ];
        // Per half: the pixel index y·w + x (exact in f64, < 2³¹ checked above) widened to 64
        // bits, all ones (usize::MAX) in lanes outside.
        for (j, (hx, hy)) in halves.into_iter().enumerate() {
            let fx = _mm256_floor_pd(_mm256_add_pd(
                _mm256_add_pd(l, _mm256_mul_pd(_mm256_cvtps_pd(hx), sx)),
                half,
            ));
            let fy = _mm256_floor_pd(_mm256_add_pd(
                _mm256_add_pd(t, _mm256_mul_pd(_mm256_cvtps_pd(hy), sy)),
                half,
            ));
            let inside = crate::lanes::inside_box(fx, fy, wf, hf);
            let at = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(_mm256_add_pd(
                _mm256_mul_pd(fy, wf),
                fx,
            )));
            let at = _mm256_or_si256(
                _mm256_and_si256(at, _mm256_castpd_si256(inside)),
                _mm256_andnot_si256(_mm256_castpd_si256(inside), _mm256_set1_epi64x(-1)),
            );
            let out = &mut pixel_at[k + 4 * j..k + 4 * j + 4];
            // The store writes four 64-bit lanes into four usizes: true on x86-64 except the x32
            // ABI (x86_64 with 32-bit pointers), which this refuses to compile for.
            const _: () = assert!(
                usize::BITS == 64,
                "the AVX2 pixel index store needs 64-bit usize"
            );
            // SAFETY: four u64 into a four-element slice of 64-bit usizes (asserted just above).
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), at) };
            for &p in out.iter() {
                prefetch_pixel(data, p);
            }
        }
        k += 8;
    }
    k
}

/// Asks the CPU to start loading `len` floats at `v[at..]` (a leaf a few trees ahead): the leaves
/// are 65 MB, so each one is a cache miss the walk over the trees already knows about.
#[inline(always)]
fn prefetch_floats(v: &[f32], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if at + len <= v.len() {
            let mut k = 0;
            while k < len {
                // SAFETY: the address is inside `v` (checked above); prefetch has no other effect.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(
                        v.as_ptr().add(at + k) as *const i8,
                        std::arch::x86_64::_MM_HINT_T0,
                    );
                }
                k += 16;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, at, len);
}

/// 2^e as f64, exactly (subnormal, zero or infinity outside the normal range), built from exponent
/// bits. `powi` is a compiler-rt call, and LLVM hoists it out of any branch, so it ran for each of
/// the model's 16 M floats: a quarter of the load time.
#[inline]
fn pow2(e: i32) -> f64 {
    let normal = |k: i32| f64::from_bits(((k.clamp(-1022, 1023) + 1023) as u64) << 52);
    let e = e.clamp(-2200, 2200);
    // Two normal factors whose product is 2^e, correctly rounded when it leaves the normal range.
    let first = e.clamp(-1022, 1023);
    normal(first) * normal(e - first)
}

/// `v.floor() as i64` without a libm call (baseline x86-64 has no SSE4.1 `roundsd`); exact for
/// every finite value in i64 range, and saturating like `as` beyond it.
#[inline(always)]
pub(crate) fn floor_to_i64(v: f64) -> i64 {
    let t = v as i64;
    // Saturating: below i64::MIN, `t` is already i64::MIN and still compares greater than `v`
    // (found by fuzzing a model whose leaves send points to -1e30: an overflow panic in debug
    // builds and i64::MAX in release).
    t.saturating_sub(((t as f64) > v) as i64)
}

fn mean_xy(v: &[f32]) -> (f64, f64) {
    let n = (v.len() / 2) as f64;
    let (mut x, mut y) = (0f64, 0f64);
    for p in v.chunks_exact(2) {
        x += p[0] as f64;
        y += p[1] as f64;
    }
    (x / n, y / n)
}

/// Where Debian's `libdlib-data` installs the 68-point model.
pub const DEFAULT_SHAPE_MODEL: &str = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

/// The model path: `$FER_SHAPE_MODEL` when set, else [`DEFAULT_SHAPE_MODEL`].
pub fn default_shape_model_path() -> PathBuf {
    std::env::var_os("FER_SHAPE_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SHAPE_MODEL))
}

#[cfg(test)]
mod tests {
    use super::floor_to_i64;
    use crate::{FaceBox, GrayConversion, GrayImage, ShapePredictor};
    use proptest::prelude::*;
    use std::path::Path;

    /// The AVX2 paths (eight features in lanes, gathers, floor in f64 lanes; one face's leaf sums
    /// held in registers) must give the scalar path's landmarks bit for bit, also for boxes whose
    /// feature points leave the image on every side (the outside test runs in the lanes).
    #[test]
    fn vector_features_give_the_scalar_landmarks() {
        if !crate::lanes::avx2_or_skip("vector_features_give_the_scalar_landmarks") {
            return;
        }
        let Ok(vector) = ShapePredictor::load(&super::default_shape_model_path()) else {
            println!("skipped: shape model not installed (make setup)");
            return;
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png");
        let Ok(img) = GrayImage::open(&root, GrayConversion::PilLuma) else {
            panic!("astronaut.png missing");
        };
        // Forced on: under FER_SIMD=off the model loads scalar, and this test still compares.
        let mut vector = vector;
        vector.avx2 = true;
        let mut scalar = vector.clone();
        scalar.avx2 = false;
        let boxes = [
            FaceBox::ltrb(175, 76, 265, 166),
            FaceBox::ltrb(-60, -40, 40, 60),
            FaceBox::ltrb(450, 470, 560, 580),
            FaceBox::ltrb(-100, -100, 700, 700),
            FaceBox::ltrb(200, 100, 206, 106),
        ];
        for b in boxes {
            let (v, s) = (vector.predict(&img, b), scalar.predict(&img, b));
            assert_eq!(v.points, s.points, "{b:?}");
            let bits = |p: &[[f32; 2]]| p.iter().map(|q| q.map(f32::to_bits)).collect::<Vec<_>>();
            assert_eq!(bits(&v.precise), bits(&s.precise), "{b:?}");
        }
        let faces: Vec<_> = boxes.iter().map(|b| (&img, *b)).collect();
        let (v, s) = (vector.predict_batch(&faces), scalar.predict_batch(&faces));
        assert_eq!(v, s);
    }

    /// The packed split's integer threshold must send every possible pixel difference (−255 to
    /// 255) the way dlib's f32 `difference > thresh` does: thresholds on, near and between
    /// integers, beyond the difference range, ±0, infinities, NaN and 200,000 arbitrary bit
    /// patterns (subnormals and NaN payloads included).
    #[test]
    fn integer_split_threshold_decides_as_the_float_test() {
        let mut thresholds = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            254.5,
            255.0,
            255.5,
            256.0,
            -255.0,
            -255.5,
            -256.0,
            -256.5,
            1e30,
            -1e30,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        for k in -300..=300 {
            let v = k as f32;
            thresholds.extend([v, v.next_up(), v.next_down(), v + 0.25]);
        }
        let mut next = crate::cascade::tests::xorshift(0x2545_f491_4f6c_dd1d);
        thresholds.extend((0..200_000).map(|_| f32::from_bits(next() as u32)));
        for thresh in thresholds {
            let s = super::Split::new(2047, 1, thresh);
            assert_eq!((s.idx1(), s.idx2()), (2047, 1));
            for d in -255i32..=255 {
                assert_eq!(
                    d > s.thresh(),
                    d as f32 > thresh,
                    "difference {d}, threshold {thresh:e} ({:#x})",
                    thresh.to_bits()
                );
            }
        }
    }

    /// dlib's integer encoding, as the model file has it (for the hand-built models below).
    fn dlib_int(out: &mut Vec<u8>, v: i64) {
        let bytes: Vec<u8> = v.unsigned_abs().to_le_bytes().into_iter().collect();
        let n = bytes.iter().rposition(|&b| b != 0).map_or(1, |k| k + 1);
        out.push(n as u8 | if v < 0 { 0x80 } else { 0 });
        out.extend_from_slice(&bytes[..n]);
    }

    /// A split naming feature 2,048 cannot be packed: the model is refused at that split's
    /// offset, and 2,047 still gets past the split reader.
    #[test]
    fn split_feature_beyond_the_packed_range_is_refused_at_its_offset() {
        let model = |feature: i64| {
            let mut b = Vec::new();
            dlib_int(&mut b, 1); // version
            dlib_int(&mut b, -2); // initial shape: 2 rows, 1 column
            dlib_int(&mut b, -1);
            for _ in 0..2 {
                dlib_int(&mut b, 1); // mantissa 1, exponent -1: 0.5
                dlib_int(&mut b, -1);
            }
            dlib_int(&mut b, 1); // one cascade of one tree with one split
            dlib_int(&mut b, 1);
            dlib_int(&mut b, 1);
            let split_at = b.len();
            dlib_int(&mut b, feature);
            dlib_int(&mut b, 0);
            dlib_int(&mut b, 0);
            dlib_int(&mut b, 0);
            (b, split_at)
        };
        let (bytes, split_at) = model(2048);
        let msg = ShapePredictor::from_bytes(&bytes, Path::new("wide.dat"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("2048") && msg.contains(&format!("byte {split_at}")),
            "{msg}"
        );
        let (bytes, _) = model(2047);
        let msg = ShapePredictor::from_bytes(&bytes, Path::new("ok.dat"))
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("2048"), "{msg}");
    }

    proptest! {
        #[test]
        fn floor_to_i64_equals_floor(v in -1e15f64..1e15) {
            prop_assert_eq!(floor_to_i64(v), v.floor() as i64);
        }
    }

    #[test]
    fn pow2_is_exact() {
        for e in -1022..=1023 {
            assert_eq!(super::pow2(e), 2f64.powi(e), "2^{e}");
        }
        assert_eq!(super::pow2(-1074), f64::from_bits(1));
        assert_eq!(super::pow2(-1023), f64::from_bits(1 << 51));
        assert_eq!(super::pow2(-1100), 0.0);
        assert_eq!(super::pow2(1024), f64::INFINITY);
        assert_eq!(super::pow2(i32::MIN), 0.0);
        assert_eq!(super::pow2(i32::MAX), f64::INFINITY);
    }

    #[test]
    fn floor_to_i64_edges() {
        for v in [-0.5, -1.0, -0.0, 0.0, 0.5, 1.0, -1.5, 2.999_999, -2.000_001] {
            assert_eq!(floor_to_i64(v), v.floor() as i64, "{v}");
        }
    }

    /// Regression (fuzzing, fuzz/regressions/dlib_model/point_far_below_i64_overflows): beyond
    /// i64's range the result saturates like `as` instead of overflowing.
    #[test]
    fn floor_to_i64_saturates_out_of_range() {
        for v in [
            -1e30,
            -9.3e18,
            f64::NEG_INFINITY,
            1e30,
            f64::INFINITY,
            f64::NAN,
        ] {
            assert_eq!(floor_to_i64(v), v.floor() as i64, "{v}");
        }
    }
}
