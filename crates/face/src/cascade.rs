//! OpenCV cascade face detection (new-format XML, HAAR and LBP), reproducing
//! `CascadeClassifier::detectMultiScale` of OpenCV 4.x: bit-exact bilinear pyramid
//! (`INTER_LINEAR_EXACT`), integral images, variance normalisation, the step rule and
//! `groupRectangles`. Written from `shared/docs/face-models.md` section 2.

use crate::{FaceError, GrayImage, Result};
use std::path::{Path, PathBuf};

/// An axis-aligned box in OpenCV's convention (`x, y, width, height`, exclusive size).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Rect {
    /// Left column.
    pub x: i64,
    /// Top row.
    pub y: i64,
    /// Width.
    pub w: i64,
    /// Height.
    pub h: i64,
}

/// Parameters of [`CascadeDetector::detect`], with OpenCV's names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    /// Pyramid step (default 1.1).
    pub scale_factor: f64,
    /// Groups with this many or fewer members are dropped (default 3); 0 disables grouping.
    pub min_neighbors: usize,
    /// Smallest window (width, height) considered (default 20×20). Raising it skips the fine
    /// pyramid levels, the expensive ones: CK+/Oulu faces are large.
    pub min_size: (i64, i64),
    /// Largest window (default: the image size).
    pub max_size: Option<(i64, i64)>,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            scale_factor: 1.1,
            min_neighbors: 3,
            min_size: (20, 20),
            max_size: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeatureType {
    Haar,
    Lbp,
}

#[derive(Debug, Clone, Copy)]
struct WeightedRect {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    weight: f32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
    feature: u32,
    threshold: f32,
    /// LBP: offset of this node's category words in `subsets`.
    subset: u32,
}

#[derive(Debug, Clone)]
struct Weak {
    nodes: std::ops::Range<u32>,
    leaves: std::ops::Range<u32>,
}

#[derive(Debug, Clone)]
struct Stage {
    threshold: f32,
    weaks: std::ops::Range<u32>,
}

/// A boosted cascade loaded from OpenCV's XML.
#[derive(Debug, Clone)]
pub struct CascadeDetector {
    name: String,
    kind: FeatureType,
    width: i64,
    height: i64,
    stages: Vec<Stage>,
    weaks: Vec<Weak>,
    nodes: Vec<Node>,
    leaves: Vec<f32>,
    subsets: Vec<i32>,
    subset_words: usize,
    /// Every weak classifier is a single-node stump (enables the compiled fast path).
    all_stumps: bool,
    /// LBP stump cascades scan eight windows at a time in AVX2 lanes (the CPU has it).
    vector_scan: bool,
    /// HAAR: up to three weighted rects per feature; LBP: the one cell rect (weight unused).
    features: Vec<[WeightedRect; 3]>,
}

/// Directory where Debian's `opencv-data` installs the cascades.
pub const OPENCV_DATA_DIR: &str = "/usr/share/opencv4";

/// Path of a cascade shipped by `opencv-data`, e.g. `haarcascade_frontalface_default` or
/// `lbpcascade_frontalface`; `$FER_OPENCV_DATA` overrides the directory.
pub fn cascade_path(name: &str) -> PathBuf {
    let root = std::env::var_os("FER_OPENCV_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(OPENCV_DATA_DIR));
    let sub = if name.starts_with("lbp") {
        "lbpcascades"
    } else {
        "haarcascades"
    };
    root.join(sub).join(format!("{name}.xml"))
}

fn child<'a>(n: roxmltree::Node<'a, 'a>, tag: &str) -> Option<roxmltree::Node<'a, 'a>> {
    n.children().find(|c| c.is_element() && c.has_tag_name(tag))
}

fn items<'a>(n: roxmltree::Node<'a, 'a>) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> {
    n.children()
        .filter(|c| c.is_element() && c.has_tag_name("_"))
}

fn text<'a>(n: roxmltree::Node<'a, 'a>) -> &'a str {
    n.text().unwrap_or("").trim()
}

impl CascadeDetector {
    /// Loads a cascade XML file.
    pub fn load(path: &Path) -> Result<CascadeDetector> {
        let xml = std::fs::read_to_string(path).map_err(|e| FaceError::Io {
            path: path.to_path_buf(),
            cause: e,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_xml(&xml, &name, path)
    }

    /// Parses cascade XML text; `file` is used in error messages.
    pub fn from_xml(xml: &str, name: &str, file: &Path) -> Result<CascadeDetector> {
        let bad = |reason: String| FaceError::Cascade {
            file: file.to_path_buf(),
            reason,
        };
        let doc = roxmltree::Document::parse(xml).map_err(|e| bad(format!("XML: {e}")))?;
        let cascade = doc
            .root_element()
            .children()
            .find(|c| c.is_element() && c.has_tag_name("cascade"))
            .ok_or_else(|| {
                bad("no <cascade> element (only OpenCV's new cascade format is supported)".into())
            })?;
        let field = |tag: &str| {
            child(cascade, tag)
                .map(text)
                .ok_or_else(|| bad(format!("<{tag}> missing")))
        };
        let int = |tag: &str| -> Result<i64> {
            field(tag)?
                .parse::<i64>()
                .map_err(|e| bad(format!("<{tag}>: {e}")))
        };
        if field("stageType")? != "BOOST" {
            return Err(bad("stageType is not BOOST".into()));
        }
        let kind = match field("featureType")? {
            "HAAR" => FeatureType::Haar,
            "LBP" => FeatureType::Lbp,
            other => {
                return Err(bad(format!(
                    "featureType {other} is not supported (HAAR, LBP)"
                )))
            }
        };
        let (width, height) = (int("width")?, int("height")?);
        // At least 3×3: the variance normalisation uses the window less a 1-pixel border (found
        // by fuzzing: a 3×1 window underflowed it, fuzz/regressions/cascade_xml).
        if !(3..=1000).contains(&width) || !(3..=1000).contains(&height) {
            return Err(bad(format!(
                "window {width}×{height} out of range (3..=1000 on each side)"
            )));
        }
        let max_cat = child(cascade, "featureParams")
            .and_then(|f| child(f, "maxCatCount"))
            .map(text)
            .unwrap_or("0")
            .parse::<usize>()
            .map_err(|e| bad(format!("maxCatCount: {e}")))?;
        let subset_words = if max_cat > 0 { max_cat.div_ceil(32) } else { 0 };
        if (kind == FeatureType::Lbp) != (subset_words > 0) {
            return Err(bad(
                "LBP cascades need maxCatCount > 0 and HAAR cascades 0".into()
            ));
        }

        let parse_f32 = |s: &str, what: &str| -> Result<f32> {
            s.parse::<f64>()
                .map(|v| v as f32)
                .map_err(|e| bad(format!("{what} {s:?}: {e}")))
        };
        let mut stages = Vec::new();
        let mut weaks = Vec::new();
        let mut nodes = Vec::new();
        let mut leaves = Vec::new();
        let mut subsets = Vec::new();
        let stages_el = child(cascade, "stages").ok_or_else(|| bad("<stages> missing".into()))?;
        for (si, st) in items(stages_el).enumerate() {
            let thr_txt = child(st, "stageThreshold")
                .map(text)
                .ok_or_else(|| bad(format!("stage {si}: stageThreshold missing")))?;
            let threshold = parse_f32(thr_txt, "stageThreshold")? - 1e-5f32;
            let wc = child(st, "weakClassifiers")
                .ok_or_else(|| bad(format!("stage {si}: weakClassifiers missing")))?;
            let first_weak = weaks.len() as u32;
            for (wi, w) in items(wc).enumerate() {
                let nums: Vec<&str> = child(w, "internalNodes")
                    .map(text)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                let leaf_vals: Vec<&str> = child(w, "leafValues")
                    .map(text)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                let per_node = if kind == FeatureType::Lbp {
                    3 + subset_words
                } else {
                    4
                };
                if nums.is_empty() || !nums.len().is_multiple_of(per_node) {
                    return Err(bad(format!(
                        "stage {si} weak {wi}: {} internalNodes values, expected a multiple of {per_node}",
                        nums.len()
                    )));
                }
                let first_node = nodes.len() as u32;
                let first_leaf = leaves.len() as u32;
                for chunk in nums.chunks(per_node) {
                    let int_at = |k: usize| -> Result<i64> {
                        chunk[k]
                            .parse::<i64>()
                            .map_err(|e| bad(format!("stage {si} weak {wi}: {e}")))
                    };
                    let (left, right, feature) = (int_at(0)?, int_at(1)?, int_at(2)?);
                    let mut node = Node {
                        left: left as i32,
                        right: right as i32,
                        feature: u32::try_from(feature).map_err(|_| {
                            bad(format!("stage {si} weak {wi}: negative feature index"))
                        })?,
                        threshold: 0.0,
                        subset: subsets.len() as u32,
                    };
                    if kind == FeatureType::Haar {
                        node.threshold = parse_f32(chunk[3], "threshold")?;
                    } else {
                        for k in 0..subset_words {
                            subsets.push(int_at(3 + k)? as i32);
                        }
                    }
                    nodes.push(node);
                }
                for v in &leaf_vals {
                    leaves.push(parse_f32(v, "leafValue")?);
                }
                let n_nodes = nodes.len() as u32 - first_node;
                let n_leaves = leaves.len() as u32 - first_leaf;
                for (k, n) in nodes[first_node as usize..].iter().enumerate() {
                    for child_idx in [n.left, n.right] {
                        // A child node must come after its parent, as in every tree OpenCV
                        // writes: otherwise a node can point back at itself and the walk never
                        // ends (found by fuzzing: fuzz/regressions/cascade_xml).
                        let ok = if child_idx > 0 {
                            (child_idx as u32) < n_nodes && child_idx as usize > k
                        } else {
                            ((-child_idx) as u32) < n_leaves
                        };
                        if !ok {
                            return Err(bad(format!(
                                "stage {si} weak {wi}: node child {child_idx} out of range or not after its parent"
                            )));
                        }
                    }
                }
                weaks.push(Weak {
                    nodes: first_node..first_node + n_nodes,
                    leaves: first_leaf..first_leaf + n_leaves,
                });
            }
            stages.push(Stage {
                threshold,
                weaks: first_weak..weaks.len() as u32,
            });
        }
        if stages.is_empty() {
            return Err(bad("no stages".into()));
        }

        let feats_el =
            child(cascade, "features").ok_or_else(|| bad("<features> missing".into()))?;
        let mut features = Vec::new();
        let zero = WeightedRect {
            x: 0,
            y: 0,
            w: 0,
            h: 0,
            weight: 0.0,
        };
        for (fi, f) in items(feats_el).enumerate() {
            let parse_rect = |s: &str, with_weight: bool| -> Result<WeightedRect> {
                let v: Vec<&str> = s.split_whitespace().collect();
                let need = if with_weight { 5 } else { 4 };
                if v.len() != need {
                    return Err(bad(format!(
                        "feature {fi}: rect {s:?} needs {need} numbers"
                    )));
                }
                let i = |k: usize| -> Result<i32> {
                    v[k].trim_end_matches('.')
                        .parse::<i32>()
                        .map_err(|e| bad(format!("feature {fi}: {e}")))
                };
                let r = WeightedRect {
                    x: i(0)?,
                    y: i(1)?,
                    w: i(2)?,
                    h: i(3)?,
                    weight: if with_weight {
                        parse_f32(v[4], "rect weight")?
                    } else {
                        0.0
                    },
                };
                Ok(r)
            };
            let mut rects = [zero; 3];
            match kind {
                FeatureType::Haar => {
                    if child(f, "tilted").map(text).unwrap_or("0") != "0" {
                        return Err(bad(format!(
                            "feature {fi}: tilted HAAR features are not supported"
                        )));
                    }
                    let rs = child(f, "rects")
                        .ok_or_else(|| bad(format!("feature {fi}: rects missing")))?;
                    let list: Vec<_> = items(rs).collect();
                    if list.is_empty() || list.len() > 3 {
                        return Err(bad(format!("feature {fi}: {} rects", list.len())));
                    }
                    for (k, r) in list.iter().enumerate() {
                        rects[k] = parse_rect(text(*r), true)?;
                    }
                }
                FeatureType::Lbp => {
                    let r = child(f, "rect")
                        .ok_or_else(|| bad(format!("feature {fi}: rect missing")))?;
                    rects[0] = parse_rect(text(r), false)?;
                }
            }
            for r in rects.iter().filter(|r| r.w > 0 || r.h > 0) {
                let span = if kind == FeatureType::Lbp { 3 } else { 1 };
                // In i64: x + 3·w overflows i32 for rects near i32::MAX.
                let (x, y, w, h) = (r.x as i64, r.y as i64, r.w as i64, r.h as i64);
                if x < 0 || y < 0 || w < 0 || h < 0 || x + span * w > width || y + span * h > height
                {
                    return Err(bad(format!(
                        "feature {fi}: rect leaves the {width}×{height} window"
                    )));
                }
            }
            features.push(rects);
        }
        if let Some(n) = nodes.iter().find(|n| n.feature as usize >= features.len()) {
            return Err(bad(format!(
                "node uses feature {} of {}",
                n.feature,
                features.len()
            )));
        }
        let all_stumps = (kind == FeatureType::Haar || subset_words <= 8)
            && weaks.iter().all(|w| {
                w.nodes.len() == 1
                    && nodes[w.nodes.start as usize].left <= 0
                    && nodes[w.nodes.start as usize].right <= 0
            });
        Ok(CascadeDetector {
            all_stumps,
            vector_scan: crate::lanes::simd_enabled(),
            name: name.to_string(),
            kind,
            width,
            height,
            stages,
            weaks,
            nodes,
            leaves,
            subsets,
            subset_words,
            features,
        })
    }

    /// The cascade's name (file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The detection window (width, height).
    pub fn window(&self) -> (i64, i64) {
        (self.width, self.height)
    }

    /// Runs the detector on a grey image, as OpenCV's `detectMultiScale`. Boxes are sorted.
    pub fn detect(&self, img: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let candidates = self.candidates(img, p);
        let mut out = group_rectangles(&candidates, p.min_neighbors, 0.2);
        for r in &mut out {
            let x0 = r.x.max(0);
            let y0 = r.y.max(0);
            let x1 = (r.x + r.w).min(iw);
            let y1 = (r.y + r.h).min(ih);
            *r = Rect {
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
            };
        }
        out.sort();
        out
    }

    /// Every window the cascade accepts, over all pyramid levels, in scan order (level, row,
    /// column), before grouping.
    fn candidates(&self, img: &GrayImage, p: &DetectParams) -> Vec<Rect> {
        let (iw, ih) = (img.width() as i64, img.height() as i64);
        let (max_w, max_h) = p.max_size.unwrap_or((iw, ih));
        let mut scales = Vec::new();
        let mut factor = 1.0f64;
        if p.scale_factor > 1.0 {
            loop {
                let ww = round_half_even(self.width as f64 * factor);
                let wh = round_half_even(self.height as f64 * factor);
                if ww > max_w || wh > max_h || ww > iw || wh > ih {
                    break;
                }
                if ww >= p.min_size.0 && wh >= p.min_size.1 {
                    scales.push(factor as f32);
                }
                factor *= p.scale_factor;
            }
        }
        let mut candidates = Vec::new();
        let mut level = Level::default();
        for &scale in &scales {
            let sw = round_half_even_f32(iw as f32 / scale);
            let sh = round_half_even_f32(ih as f32 / scale);
            if sw < self.width || sh < self.height {
                continue;
            }
            // OpenCV's window step: every pixel from scale 2 on, every other pixel below.
            let step = if scale >= 2.0 { 1 } else { 2 };
            let split = self.kind == FeatureType::Lbp && self.vector_scan && step == 2;
            level.build(img, sw as usize, sh as usize, self.kind, split);
            self.scan_level(&level, scale, step, &mut candidates);
        }
        candidates
    }

    fn scan_level(&self, lv: &Level, scale: f32, step: usize, out: &mut Vec<Rect>) {
        let stride = lv.w + 1;
        let (ww, wh) = (self.width as usize, self.height as usize);
        if lv.w < ww || lv.h < wh {
            return;
        }
        if self.kind == FeatureType::Lbp && self.all_stumps {
            self.scan_level_lbp(lv, scale, step, out);
            return;
        }
        // Corner offsets of every feature rect relative to the window origin at this stride.
        let offs: Vec<[[usize; 4]; 3]> = self
            .features
            .iter()
            .map(|rs| {
                let mut o = [[0usize; 4]; 3];
                for (k, r) in rs.iter().enumerate() {
                    let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                    o[k] = [
                        y * stride + x,
                        y * stride + x + w,
                        (y + h) * stride + x,
                        (y + h) * stride + x + w,
                    ];
                }
                o
            })
            .collect();
        // All-stump HAAR cascades (frontalface_default, _alt) get a flat per-level program.
        let stumps: Vec<CompiledStump> = if self.kind == FeatureType::Haar && self.all_stumps {
            self.weaks
                .iter()
                .map(|w| {
                    let n = self.nodes[w.nodes.start as usize];
                    let rs = &self.features[n.feature as usize];
                    let o = &offs[n.feature as usize];
                    CompiledStump {
                        off: o.map(|c| c.map(|v| v as u32)),
                        weight: [rs[0].weight, rs[1].weight, rs[2].weight],
                        threshold: n.threshold,
                        leaf: self.stump_leaves(w, &n),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let (nx, ny, nw, nh) = (1usize, 1usize, ww - 2, wh - 2);
        let norm = [
            ny * stride + nx,
            ny * stride + nx + nw,
            (ny + nh) * stride + nx,
            (ny + nh) * stride + nx + nw,
        ];
        let area = (nw * nh) as f64;
        let win_w = round_half_even_f32(self.width as f32 * scale);
        let win_h = round_half_even_f32(self.height as f32 * scale);
        let mut y = 0usize;
        while y + wh <= lv.h {
            let mut x = 0usize;
            while x + ww <= lv.w {
                let base = y * stride + x;
                let result = match self.kind {
                    FeatureType::Haar if !stumps.is_empty() => {
                        match variance_norm(lv, base, &norm, area) {
                            Some(vnf) => self.run_haar_stumps(lv, base, &stumps, vnf),
                            None => -1,
                        }
                    }
                    FeatureType::Haar => match variance_norm(lv, base, &norm, area) {
                        Some(vnf) => self.run_haar(lv, base, &offs, vnf),
                        None => -1,
                    },
                    FeatureType::Lbp => self.run_lbp(lv, base, stride),
                };
                if result == 1 {
                    out.push(Rect {
                        x: round_half_even_f32(x as f32 * scale),
                        y: round_half_even_f32(y as f32 * scale),
                        w: win_w,
                        h: win_h,
                    });
                }
                x += if result == 0 { 2 * step } else { step };
            }
            y += step;
        }
    }

    /// [`Self::run_haar`] for all-stump cascades over the per-level compiled program.
    #[inline]
    fn run_haar_stumps(&self, lv: &Level, base: usize, prog: &[CompiledStump], vnf: f32) -> i32 {
        let s = &lv.sum[base..];
        let rect = |o: &[u32; 4]| -> f32 {
            (s[o[0] as usize] - s[o[1] as usize] - s[o[2] as usize] + s[o[3] as usize]) as f32
        };
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for c in &prog[st.weaks.start as usize..st.weaks.end as usize] {
                // A third rect with weight 0 adds exactly 0.0, as OpenCV's skipped term would.
                let v = (c.weight[0] * rect(&c.off[0])
                    + c.weight[1] * rect(&c.off[1])
                    + c.weight[2] * rect(&c.off[2]))
                    * vnf;
                sum += if v < c.threshold {
                    c.leaf[0]
                } else {
                    c.leaf[1]
                } as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
    }

    /// 1 = accepted, −k = rejected at stage k (0 means stage 0, which triggers the step skip).
    #[inline]
    fn run_haar(&self, lv: &Level, base: usize, offs: &[[[usize; 4]; 3]], vnf: f32) -> i32 {
        let s = &lv.sum;
        let eval = |f: usize| -> f32 {
            let rs = &self.features[f];
            let o = &offs[f];
            let rsum = |k: usize| -> f32 {
                (s[base + o[k][0]] - s[base + o[k][1]] - s[base + o[k][2]] + s[base + o[k][3]])
                    as f32
            };
            let mut v = rs[0].weight * rsum(0) + rs[1].weight * rsum(1);
            if rs[2].weight != 0.0 {
                v += rs[2].weight * rsum(2);
            }
            v * vnf
        };
        self.run_trees(|n| eval(n.feature as usize) < n.threshold)
    }

    /// The (left, right) leaf values of a single-node weak classifier.
    fn stump_leaves(&self, w: &Weak, n: &Node) -> [f32; 2] {
        let leaf = |child: i32| self.leaves[(w.leaves.start as i32 - child) as usize];
        [leaf(n.left), leaf(n.right)]
    }

    /// The boosted-tree stages of any cascade: `go_left` decides each node. Returns 1 when every
    /// stage passes, −k when stage k rejects (0 for stage 0, which triggers the step skip).
    #[inline]
    fn run_trees(&self, go_left: impl Fn(&Node) -> bool) -> i32 {
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for w in &self.weaks[st.weaks.start as usize..st.weaks.end as usize] {
                let nodes = &self.nodes[w.nodes.start as usize..w.nodes.end as usize];
                let mut idx = 0i32;
                loop {
                    let n = &nodes[idx as usize];
                    idx = if go_left(n) { n.left } else { n.right };
                    if idx <= 0 {
                        break;
                    }
                }
                sum += self.leaves[(w.leaves.start as i32 - idx) as usize] as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
    }

    #[inline]
    fn run_lbp(&self, lv: &Level, base: usize, stride: usize) -> i32 {
        let s = &lv.isum;
        self.run_trees(|n| {
            let r = self.features[n.feature as usize][0];
            let (x, y, cw, ch) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
            let mut v = [0i32; 16];
            for (k, d) in v.iter_mut().enumerate() {
                *d = s[base + (y + (k / 4) * ch) * stride + x + (k % 4) * cw];
            }
            let code = lbp_code(&v);
            (self.subsets[n.subset as usize + (code >> 5)] >> (code & 31)) & 1 != 0
        })
    }

    /// The LBP stumps of every weak classifier, with corner offsets for one level's layout.
    fn compile_lbp(&self, layout: IntegralLayout) -> Vec<CompiledLbp> {
        self.weaks
            .iter()
            .map(|w| {
                let n = self.nodes[w.nodes.start as usize];
                let r = self.features[n.feature as usize][0];
                let (x, y, cw, ch) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                let mut corners = [0u32; 16];
                for (k, c) in corners.iter_mut().enumerate() {
                    *c = layout.offset(y + (k / 4) * ch, x + (k % 4) * cw) as u32;
                }
                let mut subset = [0i32; 8];
                let words =
                    &self.subsets[n.subset as usize..n.subset as usize + self.subset_words.min(8)];
                subset[..words.len()].copy_from_slice(words);
                CompiledLbp {
                    corners,
                    subset,
                    leaf: self.stump_leaves(w, &n),
                }
            })
            .collect()
    }

    /// One pyramid level of an all-stump LBP cascade: eight windows at a time in AVX2 lanes when
    /// the CPU has it, else window by window. Both visit the windows OpenCV visits and accept the
    /// same ones, in the same order.
    fn scan_level_lbp(&self, lv: &Level, scale: f32, step: usize, out: &mut Vec<Rect>) {
        let (ww, wh) = (self.width as usize, self.height as usize);
        let rect_at = |x: usize, y: usize| Rect {
            x: round_half_even_f32(x as f32 * scale),
            y: round_half_even_f32(y as f32 * scale),
            w: round_half_even_f32(self.width as f32 * scale),
            h: round_half_even_f32(self.height as f32 * scale),
        };
        #[cfg(target_arch = "x86_64")]
        if self.vector_scan {
            let layout = if step == 2 {
                IntegralLayout::split(lv.w + 1)
            } else {
                IntegralLayout::Plain { stride: lv.w + 1 }
            };
            let data = if step == 2 { &lv.split } else { &lv.isum };
            let prog = self.compile_lbp(layout);
            let positions = (lv.w - ww) / step + 1;
            let rows = (lv.h - wh) / step + 1;
            // The furthest element a batch reads: last row, last batch's last lane, furthest corner.
            let last_batch = (positions - 1) / LANES * LANES;
            let reach = prog.iter().flat_map(|c| c.corners).max().unwrap_or(0) as usize;
            let furthest = (rows - 1) * step * (lv.w + 1) + last_batch + LANES - 1 + reach;
            if furthest < data.len() {
                // SAFETY: the CPU has AVX2 (`vector_scan`), and every load the scan makes lies at
                // or before `furthest`, which is inside `data` (checked just above).
                unsafe {
                    self.scan_lbp_avx2(data, &prog, positions, rows, step, lv.w + 1, |x, y| {
                        out.push(rect_at(x, y))
                    })
                };
                return;
            }
        }
        let prog = self.compile_lbp(IntegralLayout::Plain { stride: lv.w + 1 });
        let stride = lv.w + 1;
        let mut y = 0usize;
        while y + wh <= lv.h {
            let mut x = 0usize;
            while x + ww <= lv.w {
                let result = self.run_lbp_stumps(&lv.isum[y * stride + x..], &prog);
                if result == 1 {
                    out.push(rect_at(x, y));
                }
                x += if result == 0 { 2 * step } else { step };
            }
            y += step;
        }
    }

    /// [`Self::run_lbp`] for all-stump LBP cascades over the per-level compiled program; `s`
    /// starts at the window's origin in the plain integral image.
    #[inline]
    fn run_lbp_stumps(&self, s: &[i32], prog: &[CompiledLbp]) -> i32 {
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for c in &prog[st.weaks.start as usize..st.weaks.end as usize] {
                // A plain loop: `array::map` was not inlined here and cost a fifth of detection.
                let mut v = [0i32; 16];
                for (d, &o) in v.iter_mut().zip(&c.corners) {
                    *d = s[o as usize];
                }
                let code = lbp_code(&v);
                let bit = (c.subset[code >> 5] >> (code & 31)) & 1;
                sum += c.leaf[(bit == 0) as usize] as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
    }

    /// The window scan of [`Self::scan_level_lbp`] in AVX2: lane `j` of a batch is the window at
    /// position `p0 + j` of a row (x = position · step). Stage 0 runs on all eight lanes; OpenCV's
    /// step rule (skip the next position after a stage-0 rejection) then picks the lanes it would
    /// have visited, and the later stages run while any of those is still accepted. `accept` gets
    /// (x, y) of each accepted window in scan order.
    ///
    /// # Safety
    /// The CPU must have AVX2, and `data` must hold every element the scan reads: for each row
    /// `r < rows`, batch start `p0 < positions` (a multiple of 8) and corner `c`, the eight
    /// elements from `r · step · stride + p0 + c`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn scan_lbp_avx2(
        &self,
        data: &[i32],
        prog: &[CompiledLbp],
        positions: usize,
        rows: usize,
        step: usize,
        stride: usize,
        mut accept: impl FnMut(usize, usize),
    ) {
        let stage = |k: usize| {
            let st = &self.stages[k];
            (
                &prog[st.weaks.start as usize..st.weaks.end as usize],
                st.threshold as f64,
            )
        };
        let Some(first) = self.stages.first().map(|_| stage(0)) else {
            return;
        };
        for r in 0..rows {
            let y = r * step;
            // Position (relative to the batch) of the next window the step rule visits.
            let mut next = 0usize;
            let mut p0 = 0usize;
            while p0 < positions {
                let valid = if positions - p0 >= LANES {
                    0xff
                } else {
                    (1u32 << (positions - p0)) - 1
                };
                // SAFETY: in bounds by the caller's contract.
                let at = unsafe { data.as_ptr().add(y * stride + p0) };
                // SAFETY: the CPU has AVX2 (this fn's contract), and every corner offset of the
                // stage's features from `at` stays within `furthest` (the caller's contract).
                let pass0 = unsafe { lbp_stage_avx2(at, first.0, first.1) };
                let mut visited = 0u32;
                let mut pos = next;
                while pos < LANES {
                    visited |= 1 << pos;
                    pos += if pass0 >> pos & 1 == 1 { 1 } else { 2 };
                }
                next = pos - LANES;
                let mut alive = visited & pass0 & valid;
                let mut k = 1;
                while alive != 0 && k < self.stages.len() {
                    let (weaks, threshold) = stage(k);
                    // SAFETY: as for stage 0 above: AVX2, and loads within `furthest`.
                    alive &= unsafe { lbp_stage_avx2(at, weaks, threshold) };
                    k += 1;
                }
                while alive != 0 {
                    let j = alive.trailing_zeros() as usize;
                    accept((p0 + j) * step, y);
                    alive &= alive - 1;
                }
                p0 += LANES;
            }
        }
    }

    /// The subset words per LBP node (0 for HAAR); exposed for diagnostics.
    pub fn subset_words(&self) -> usize {
        self.subset_words
    }
}

/// A HAAR stump with its rect corners resolved to integral-image offsets at one level's stride.
#[derive(Debug, Clone, Copy)]
struct CompiledStump {
    off: [[u32; 4]; 3],
    weight: [f32; 3],
    threshold: f32,
    leaf: [f32; 2],
}

/// An LBP stump with the 4×4 corner grid of its 3×3 blocks resolved to integral-image offsets.
#[derive(Debug, Clone, Copy)]
struct CompiledLbp {
    corners: [u32; 16],
    subset: [i32; 8],
    /// Leaf taken when the code's subset bit is set, and when it is clear.
    leaf: [f32; 2],
}

/// Windows per batch of the vector LBP scan (eight i32 lanes of an AVX2 register).
const LANES: usize = 8;

/// Where integral-image element (row, column) lives in the array a scan reads.
#[derive(Debug, Clone, Copy)]
enum IntegralLayout {
    /// Row-major with `stride` = width + 1.
    Plain { stride: usize },
    /// Each row holds its even columns, then its odd ones (`even` of them first), so that windows
    /// two columns apart — the step-2 levels — read adjacent elements.
    Split { stride: usize, even: usize },
}

impl IntegralLayout {
    fn split(stride: usize) -> IntegralLayout {
        IntegralLayout::Split {
            stride,
            even: stride.div_ceil(2),
        }
    }

    fn offset(self, row: usize, col: usize) -> usize {
        match self {
            IntegralLayout::Plain { stride } => row * stride + col,
            IntegralLayout::Split { stride, even } => row * stride + (col & 1) * even + (col >> 1),
        }
    }
}

/// The 8-bit LBP code of a 3×3 block grid from its 4×4 integral corners (row-major): bit set when
/// the neighbour block's sum is ≥ the centre's, weights 128…1 clockwise from the top-left. The
/// integral is i32 and wraps on large images; a block sum taken in wrapping arithmetic is still
/// exact, as it is at most 255 · (block area) < 2³¹.
#[inline(always)]
fn lbp_code(v: &[i32; 16]) -> usize {
    let block = |bx: usize, by: usize| {
        let k = by * 4 + bx;
        v[k].wrapping_sub(v[k + 1])
            .wrapping_sub(v[k + 4])
            .wrapping_add(v[k + 5])
    };
    let centre = block(1, 1);
    ((block(0, 0) >= centre) as usize) << 7
        | ((block(1, 0) >= centre) as usize) << 6
        | ((block(2, 0) >= centre) as usize) << 5
        | ((block(2, 1) >= centre) as usize) << 4
        | ((block(2, 2) >= centre) as usize) << 3
        | ((block(1, 2) >= centre) as usize) << 2
        | ((block(0, 2) >= centre) as usize) << 1
        | (block(0, 1) >= centre) as usize
}

/// One stage of LBP stumps on eight windows at once; `at` points at lane 0's window origin and
/// lane `j` reads `at + j`. Returns the lanes whose stage sum is not below `threshold`. Each lane
/// does [`lbp_code`] and the scalar f64 summation in the same order, so it decides as
/// [`CascadeDetector::run_lbp_stumps`] does.
///
/// # Safety
/// AVX2, and the eight elements from `at + corner` readable for every corner of `prog`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn lbp_stage_avx2(at: *const i32, prog: &[CompiledLbp], threshold: f64) -> u32 {
    use std::arch::x86_64::*;
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (c31, c255) = (_mm256_set1_epi32(31), _mm256_set1_epi32(255));
    for c in prog {
        // SAFETY: readable by the caller's contract.
        let load = |k: usize| unsafe { _mm256_loadu_si256(at.add(c.corners[k] as usize).cast()) };
        // d[r][x] = corner(r, x) − corner(r, x + 1); block(bx, by) = d[by][bx] − d[by + 1][bx].
        let mut d = [[_mm256_setzero_si256(); 3]; 4];
        for (r, dr) in d.iter_mut().enumerate() {
            let row = [
                load(4 * r),
                load(4 * r + 1),
                load(4 * r + 2),
                load(4 * r + 3),
            ];
            for (x, dv) in dr.iter_mut().enumerate() {
                *dv = _mm256_sub_epi32(row[x], row[x + 1]);
            }
        }
        let block = |bx: usize, by: usize| _mm256_sub_epi32(d[by][bx], d[by + 1][bx]);
        let centre = block(1, 1);
        // A clear bit is `centre > block`; collect those and invert.
        let clear = |bx: usize, by: usize, weight: i32| {
            _mm256_and_si256(
                _mm256_cmpgt_epi32(centre, block(bx, by)),
                _mm256_set1_epi32(weight),
            )
        };
        let inverted = _mm256_or_si256(
            _mm256_or_si256(
                _mm256_or_si256(clear(0, 0, 128), clear(1, 0, 64)),
                _mm256_or_si256(clear(2, 0, 32), clear(2, 1, 16)),
            ),
            _mm256_or_si256(
                _mm256_or_si256(clear(2, 2, 8), clear(1, 2, 4)),
                _mm256_or_si256(clear(0, 2, 2), clear(0, 1, 1)),
            ),
        );
        let code = _mm256_xor_si256(inverted, c255);
        // subset[code >> 5] by a lane permute, then its bit (code & 31) moved to the sign bit,
        // which is what blendv reads: 31 − k = 31 ^ k for k in 0..32.
        // SAFETY: `subset` is [i32; 8], exactly the 32 bytes one unaligned load reads.
        let subset = unsafe { _mm256_loadu_si256(c.subset.as_ptr().cast()) };
        let word = _mm256_permutevar8x32_epi32(subset, _mm256_srli_epi32::<5>(code));
        let bit_at_sign =
            _mm256_sllv_epi32(word, _mm256_xor_si256(_mm256_and_si256(code, c31), c31));
        let leaf = _mm256_blendv_ps(
            _mm256_set1_ps(c.leaf[1]),
            _mm256_set1_ps(c.leaf[0]),
            _mm256_castsi256_ps(bit_at_sign),
        );
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(leaf)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(leaf)));
    }
    let t = _mm256_set1_pd(threshold);
    let below = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(lo, t))
        | _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(hi, t)) << 4;
    !(below as u32) & 0xff
}

/// OpenCV's variance normalisation: `Some(1/σ·area)` factor when the window is evaluated at all.
#[inline]
fn variance_norm(lv: &Level, base: usize, norm: &[usize; 4], area: f64) -> Option<f32> {
    let s = lv.sum[base + norm[0]] - lv.sum[base + norm[1]] - lv.sum[base + norm[2]]
        + lv.sum[base + norm[3]];
    let q = lv.sqsum[base + norm[0]] - lv.sqsum[base + norm[1]] - lv.sqsum[base + norm[2]]
        + lv.sqsum[base + norm[3]];
    // OpenCV reads the squared sum as unsigned 32-bit.
    let nf = area * (q as u32) as f64 - (s as f64) * (s as f64);
    if nf > 0.0 {
        let vnf = (1.0 / nf.sqrt()) as f32;
        (area * (vnf as f64) < 0.1).then_some(vnf)
    } else {
        None
    }
}

/// One pyramid level: the resized image and its integral images, reused across levels to avoid
/// reallocations. HAAR reads `sum`/`sqsum` (i64, as the variance needs); LBP reads `isum` (i32,
/// wrapping: block sums stay exact, see [`lbp_code`]) and, on step-2 levels of the vector scan,
/// `split` (the same values in [`IntegralLayout::Split`]).
#[derive(Default)]
struct Level {
    w: usize,
    h: usize,
    pixels: Vec<u8>,
    sum: Vec<i64>,
    sqsum: Vec<i64>,
    isum: Vec<i32>,
    split: Vec<i32>,
}

impl Level {
    fn build(&mut self, img: &GrayImage, w: usize, h: usize, kind: FeatureType, split: bool) {
        self.w = w;
        self.h = h;
        resize_linear_exact(img, w, h, &mut self.pixels);
        let stride = w + 1;
        let len = stride * (h + 1);
        if kind == FeatureType::Haar {
            self.sum.clear();
            self.sum.resize(len, 0);
            self.sqsum.clear();
            self.sqsum.resize(len, 0);
            for y in 0..h {
                let (mut row, mut rowsq) = (0i64, 0i64);
                for x in 0..w {
                    let v = self.pixels[y * w + x] as i64;
                    row += v;
                    rowsq += v * v;
                    let at = (y + 1) * stride + x + 1;
                    self.sum[at] = self.sum[at - stride] + row;
                    self.sqsum[at] = self.sqsum[at - stride] + rowsq;
                }
            }
            return;
        }
        // A batch of the vector scan reads up to LANES − 1 elements past the last window's corner
        // (lanes beyond the row are discarded), and split rows end with the odd half: pad so those
        // reads stay inside (`scan_level_lbp` checks the bound before each level).
        self.isum.clear();
        self.isum.resize(len + 2 * LANES, 0);
        for y in 0..h {
            let (above, below) = self.isum.split_at_mut((y + 1) * stride);
            let above = &above[y * stride + 1..];
            let below = &mut below[1..stride];
            let px = &self.pixels[y * w..(y + 1) * w];
            let mut row = 0i32;
            for ((o, a), &p) in below.iter_mut().zip(above).zip(px) {
                row = row.wrapping_add(p as i32);
                *o = a.wrapping_add(row);
            }
        }
        if split {
            let layout = IntegralLayout::split(stride);
            self.split.clear();
            self.split.resize(len + 2 * LANES, 0);
            for r in 0..=h {
                for c in 0..stride {
                    self.split[layout.offset(r, c)] = self.isum[r * stride + c];
                }
            }
        }
    }
}

fn round_half_even(v: f64) -> i64 {
    v.round_ties_even() as i64
}

fn round_half_even_f32(v: f32) -> i64 {
    v.round_ties_even() as i64
}

/// Per destination index: source index and the u8.8 weight of the next source pixel, computed with
/// exact rational arithmetic (`src/dst · (d + ½) − ½`), as OpenCV's `resize_bitExact`.
fn linear_coeffs(src: usize, dst: usize) -> (Vec<usize>, Vec<i64>, usize, usize) {
    let mut ofs = vec![0usize; dst];
    let mut c1 = vec![0i64; dst];
    let (mut lo, mut hi) = (0usize, dst);
    let (s, d) = (src as i64, dst as i64);
    for k in 0..dst {
        // f = (s(2k+1) − d) / (2d)
        let num = s * (2 * k as i64 + 1) - d;
        let den = 2 * d;
        let i = num.div_euclid(den);
        if i >= 0 && src > 1 {
            if i < s - 1 {
                ofs[k] = i as usize;
                let r = 256 * (num - i * den);
                let (q, rem) = (r / den, r % den);
                c1[k] = if 2 * rem > den || (2 * rem == den && q % 2 == 1) {
                    q + 1
                } else {
                    q
                };
            } else {
                ofs[k] = src - 1;
                hi = hi.min(k);
            }
        } else {
            lo = lo.max(k + 1);
        }
    }
    (ofs, c1, lo, hi)
}

/// OpenCV's `INTER_LINEAR_EXACT` resize of an 8-bit grey image (exact 2× downscales use
/// `INTER_AREA`, as OpenCV does).
pub fn resize_linear_exact(img: &GrayImage, dw: usize, dh: usize, out: &mut Vec<u8>) {
    let (sw, sh) = (img.width(), img.height());
    let src = img.data();
    out.clear();
    out.resize(dw * dh, 0);
    if dw == 0 || dh == 0 {
        return;
    }
    if dw == sw && dh == sh {
        out.copy_from_slice(src);
        return;
    }
    if dw * 2 == sw && dh * 2 == sh {
        for y in 0..dh {
            for x in 0..dw {
                let a = src[2 * y * sw + 2 * x] as u32 + src[2 * y * sw + 2 * x + 1] as u32;
                let b =
                    src[(2 * y + 1) * sw + 2 * x] as u32 + src[(2 * y + 1) * sw + 2 * x + 1] as u32;
                out[y * dw + x] = ((a + b + 2) >> 2) as u8;
            }
        }
        return;
    }
    // OpenCV interpolates each row horizontally, then the two rows vertically, all in exact
    // integers: out = ((256 − c)·(h·row a) + c·(h·row b) + 2¹⁵) >> 16 with h the horizontal
    // weights. The sum is bilinear, so the vertical blend may come first, over the source row,
    // where it is contiguous u16 arithmetic the compiler vectorises; the result is the same.
    // Borders fold in as weight 0 on the edge pixel (256·p, as OpenCV's border rows and
    // columns): vertically (a, 0), horizontally (index 0 or the last, weight 0).
    let (xo, xc, x0, x1) = linear_coeffs(sw, dw);
    let (yo, yc, y0, y1) = linear_coeffs(sh, dh);
    let cols: Vec<(u32, u32)> = (0..dw)
        .map(|d| {
            if d < x0 {
                (0, 0)
            } else if d >= x1 {
                (xo[dw - 1] as u32, 0)
            } else {
                (xo[d] as u32, xc[d] as u32)
            }
        })
        .collect();
    // One extra element: a weight-0 column on the last pixel reads v[sw].
    let mut v = vec![0u16; sw + 1];
    for (y, dst) in out.chunks_exact_mut(dw).enumerate() {
        let (a, b, c) = if y < y0 {
            (0, 0, 0u16)
        } else if y >= y1 {
            (sh - 1, sh - 1, 0)
        } else {
            (yo[y], yo[y] + 1, yc[y] as u16)
        };
        let (ra, rb) = (&src[a * sw..(a + 1) * sw], &src[b * sw..(b + 1) * sw]);
        // (256 − c)·p + c·q ≤ 256·255 fits u16.
        for ((o, &p), &q) in v.iter_mut().zip(ra).zip(rb) {
            *o = (256 - c) * p as u16 + c * q as u16;
        }
        for (o, &(x, w)) in dst.iter_mut().zip(&cols) {
            let x = x as usize;
            let (p, q) = (v[x] as u32, v[x + 1] as u32);
            // ≤ 256 · 65280 < 2³².
            *o = (((256 - w) * p + w * q + (1 << 15)) >> 16) as u8;
        }
    }
}

/// OpenCV's `groupRectangles(rects, min_neighbors, eps)`: union-find clustering of similar boxes,
/// averaging, dropping small groups and groups nested in stronger ones.
pub fn group_rectangles(rects: &[Rect], min_neighbors: usize, eps: f64) -> Vec<Rect> {
    if min_neighbors == 0 {
        return rects.to_vec();
    }
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut a: usize) -> usize {
        while p[a] != a {
            p[a] = p[p[a]];
            a = p[a];
        }
        a
    }
    let similar = |a: &Rect, b: &Rect| {
        let d = eps * (a.w.min(b.w) + a.h.min(b.h)) as f64 * 0.5;
        ((a.x - b.x).abs() as f64) <= d
            && ((a.y - b.y).abs() as f64) <= d
            && ((a.x + a.w - b.x - b.w).abs() as f64) <= d
            && ((a.y + a.h - b.y - b.h).abs() as f64) <= d
    };
    for i in 0..n {
        for j in i + 1..n {
            if similar(&rects[i], &rects[j]) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut classes: Vec<(usize, [i64; 4], usize)> = Vec::new(); // root, sums, count
    for (i, r) in rects.iter().enumerate() {
        let root = find(&mut parent, i);
        match classes.iter_mut().find(|c| c.0 == root) {
            Some(c) => {
                c.1[0] += r.x;
                c.1[1] += r.y;
                c.1[2] += r.w;
                c.1[3] += r.h;
                c.2 += 1;
            }
            None => classes.push((root, [r.x, r.y, r.w, r.h], 1)),
        }
    }
    let groups: Vec<(Rect, usize)> = classes
        .iter()
        .map(|(_, s, cnt)| {
            let k = 1.0f32 / *cnt as f32;
            let avg = |v: i64| (v as f32 * k).round_ties_even() as i64;
            (
                Rect {
                    x: avg(s[0]),
                    y: avg(s[1]),
                    w: avg(s[2]),
                    h: avg(s[3]),
                },
                *cnt,
            )
        })
        .collect();
    let mut out = Vec::new();
    for (i, (r1, n1)) in groups.iter().enumerate() {
        if *n1 <= min_neighbors {
            continue;
        }
        let nested = groups.iter().enumerate().any(|(j, (r2, n2))| {
            if j == i || *n2 <= min_neighbors {
                return false;
            }
            let dx = (r2.w as f64 * eps).round_ties_even() as i64;
            let dy = (r2.h as f64 * eps).round_ties_even() as i64;
            r1.x >= r2.x - dx
                && r1.y >= r2.y - dy
                && r1.x + r1.w <= r2.x + r2.w + dx
                && r1.y + r1.h <= r2.y + r2.h + dy
                && (*n2 > 3.max(*n1) || *n1 < 3)
        });
        if !nested {
            out.push(*r1);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The compiled stump programs must decide exactly as the generic tree walk they replace.
    #[test]
    fn compiled_programs_match_the_generic_walk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png");
        let Ok(img) = GrayImage::open(&root, crate::GrayConversion::PilLuma) else {
            panic!("astronaut.png missing");
        };
        for name in ["haarcascade_frontalface_default", "lbpcascade_frontalface"] {
            let Ok(fast) = CascadeDetector::load(&cascade_path(name)) else {
                println!("skipped: {name} not installed (make setup)");
                continue;
            };
            assert!(fast.all_stumps, "{name}");
            let mut generic = fast.clone();
            generic.all_stumps = false;
            let p = DetectParams::default();
            let (a, b) = (fast.detect(&img, &p), generic.detect(&img, &p));
            assert!(!a.is_empty(), "{name}");
            assert_eq!(a, b, "{name}");
        }
    }

    /// The horizontal-then-vertical formulation of OpenCV's `resize_bitExact` (the code before
    /// the vertical-first rewrite), kept as the reference it must equal.
    fn resize_reference(img: &GrayImage, dw: usize, dh: usize) -> Vec<u8> {
        let (sw, sh) = (img.width(), img.height());
        let src = img.data();
        let mut out = vec![0u8; dw * dh];
        let (xo, xc, x0, x1) = linear_coeffs(sw, dw);
        let (yo, yc, y0, y1) = linear_coeffs(sh, dh);
        let hline = |row: usize, buf: &mut [i64]| {
            let r = &src[row * sw..(row + 1) * sw];
            for (d, b) in buf.iter_mut().enumerate() {
                *b = if d < x0 {
                    (r[0] as i64) << 8
                } else if d >= x1 {
                    (r[xo[dw - 1]] as i64) << 8
                } else {
                    (256 - xc[d]) * r[xo[d]] as i64 + xc[d] * r[xo[d] + 1] as i64
                };
            }
        };
        let mut r0 = vec![0i64; dw];
        let mut r1 = vec![0i64; dw];
        let mut cached = (usize::MAX, usize::MAX);
        for y in 0..dh {
            let dst = &mut out[y * dw..(y + 1) * dw];
            if y < y0 || y >= y1 {
                let row = if y < y0 { 0 } else { sh - 1 };
                hline(row, &mut r0);
                cached = (usize::MAX, usize::MAX);
                for (o, v) in dst.iter_mut().zip(&r0) {
                    *o = ((v + 128) >> 8) as u8;
                }
            } else {
                let (a, b) = (yo[y], yo[y] + 1);
                if cached != (a, b) {
                    if cached.1 == a {
                        std::mem::swap(&mut r0, &mut r1);
                    } else {
                        hline(a, &mut r0);
                    }
                    hline(b, &mut r1);
                    cached = (a, b);
                }
                let c = yc[y];
                for ((o, p), q) in dst.iter_mut().zip(&r0).zip(&r1) {
                    *o = (((256 - c) * p + c * q + (1 << 15)) >> 16) as u8;
                }
            }
        }
        out
    }

    /// The vertical-first resize equals the horizontal-first one on random images, for down-
    /// and up-scales, odd sizes, one-pixel sources and the identity.
    #[test]
    fn resize_vertical_first_equals_horizontal_first() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let one = GrayImage::new(3, 3, vec![7; 9]).expect("3x3");
        for (dw, dh) in [(0, 0), (0, 5), (5, 0)] {
            let mut out = vec![1];
            resize_linear_exact(&one, dw, dh, &mut out);
            assert!(out.is_empty(), "an empty output size gives an empty plane");
        }
        let sizes = [
            (1, 1),
            (1, 7),
            (7, 1),
            (2, 3),
            (24, 24),
            (31, 17),
            (256, 256),
            (97, 203),
        ];
        for &(sw, sh) in &sizes {
            let data: Vec<u8> = (0..sw * sh).map(|_| next() as u8).collect();
            let img = GrayImage::new(sw, sh, data).expect("sizes match");
            for &(dw, dh) in sizes.iter().chain(&[(90, 90), (35, 61), (3, 2), (640, 5)]) {
                if dw * 2 == sw && dh * 2 == sh {
                    continue; // the INTER_AREA path, unchanged
                }
                let mut fast = Vec::new();
                resize_linear_exact(&img, dw, dh, &mut fast);
                let expected = if (dw, dh) == (sw, sh) {
                    img.data().to_vec()
                } else {
                    resize_reference(&img, dw, dh)
                };
                assert_eq!(fast, expected, "{sw}x{sh} -> {dw}x{dh}");
            }
        }
    }

    /// A xorshift64 stream: reproducible random test inputs without a dependency.
    pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// A grey image of `w`×`h` cut from `img` at (`x0`, `y0`), wrapping around its edges.
    fn cut(img: &GrayImage, x0: usize, y0: usize, w: usize, h: usize) -> GrayImage {
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = ((x0 + x) % img.width(), (y0 + y) % img.height());
                data.push(img.data()[sy * img.width() + sx]);
            }
        }
        GrayImage::new(w, h, data).expect("sizes match")
    }

    /// The AVX2 LBP scan must accept exactly the windows of the window-by-window scan, in the same
    /// order, and both those of the generic tree walk: on step-1 and step-2 levels, and on widths
    /// that leave partial batches of every length at the end of a row.
    #[test]
    fn vector_lbp_scan_accepts_the_windows_of_the_scalar_scan() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png");
        let Ok(img) = GrayImage::open(&root, crate::GrayConversion::PilLuma) else {
            panic!("astronaut.png missing");
        };
        if !crate::lanes::avx2_or_skip("vector_lbp_scan_accepts_the_windows_of_the_scalar_scan") {
            return;
        }
        for name in ["lbpcascade_frontalface", "lbpcascade_frontalface_improved"] {
            let Ok(vector) = CascadeDetector::load(&cascade_path(name)) else {
                println!("skipped: {name} not installed (make setup)");
                continue;
            };
            assert!(vector.all_stumps, "{name}");
            // Forced on: under FER_SIMD=off the cascade loads scalar, and this test still compares.
            let mut vector = vector;
            vector.vector_scan = true;
            let mut scalar = vector.clone();
            scalar.vector_scan = false;
            let mut generic = scalar.clone();
            generic.all_stumps = false;
            let mut hits = 0;
            let images = [
                img.clone(),
                cut(&img, 90, 10, 201, 177),
                cut(&img, 101, 33, 163, 150),
                cut(&img, 7, 300, 97, 61),
                cut(&img, 130, 40, 130, 130),
            ];
            for (k, im) in images.iter().enumerate() {
                for p in [
                    DetectParams::default(),
                    DetectParams {
                        scale_factor: 1.05,
                        min_size: (1, 1),
                        ..DetectParams::default()
                    },
                ] {
                    let v = vector.candidates(im, &p);
                    assert_eq!(v, scalar.candidates(im, &p), "{name}, image {k}, {p:?}");
                    assert_eq!(v, generic.candidates(im, &p), "{name}, image {k}, {p:?}");
                    hits += v.len();
                }
            }
            assert!(
                hits > 0,
                "{name}: no window accepted anywhere, the test tests nothing"
            );
        }
    }

    /// LBP block sums come from an i32 integral image that wraps on large images; the code must be
    /// that of the true block sums whatever the corners' wrapped values.
    #[test]
    fn lbp_code_is_exact_on_wrapped_integrals() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            // True block sums up to 255 · 2²³ (a block of 8 M pixels), and arbitrary wrapped
            // contributions from above and left of the grid.
            let mut blocks = [[0i64; 3]; 3];
            for b in blocks.iter_mut().flatten() {
                *b = (next() % (255 << 23)) as i64;
                if next().is_multiple_of(4) {
                    *b = blocks_equal_value(&mut next);
                }
            }
            let (above, left) = ([0; 4].map(|_| next() as i32), [0; 4].map(|_| next() as i32));
            let mut corners = [0i32; 16];
            for r in 0..4 {
                for c in 0..4 {
                    let inside: i64 = (0..r)
                        .flat_map(|i| (0..c).map(move |j| (i, j)))
                        .map(|(i, j)| blocks[i][j])
                        .sum();
                    corners[r * 4 + c] = above[r].wrapping_add(left[c]).wrapping_add(inside as i32);
                }
            }
            let centre = blocks[1][1];
            let neighbours = [
                (0, 0),
                (1, 0),
                (2, 0),
                (2, 1),
                (2, 2),
                (1, 2),
                (0, 2),
                (0, 1),
            ];
            let expected = neighbours.iter().fold(0usize, |code, &(bx, by)| {
                code << 1 | (blocks[by][bx] >= centre) as usize
            });
            assert_eq!(lbp_code(&corners), expected, "{blocks:?}");
        }
    }

    /// Ties between neighbour and centre must be exercised: a small set of values.
    fn blocks_equal_value(next: &mut impl FnMut() -> u64) -> i64 {
        [0, 1, 1000, 255 << 20][(next() % 4) as usize]
    }
}
