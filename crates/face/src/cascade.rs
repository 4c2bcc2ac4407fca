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
            source: e,
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
            level.build(
                img,
                sw as usize,
                sh as usize,
                self.kind == FeatureType::Haar,
            );
            self.scan_level(&level, scale, &mut candidates);
        }
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

    fn scan_level(&self, lv: &Level, scale: f32, out: &mut Vec<Rect>) {
        let step = if scale >= 2.0 { 1 } else { 2 };
        let stride = lv.w + 1;
        let (ww, wh) = (self.width as usize, self.height as usize);
        if lv.w < ww || lv.h < wh {
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
        let lbp: Vec<CompiledLbp> = if self.kind == FeatureType::Lbp && self.all_stumps {
            self.weaks
                .iter()
                .map(|w| {
                    let n = self.nodes[w.nodes.start as usize];
                    let r = self.features[n.feature as usize][0];
                    let (x, y, cw, ch) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
                    let mut corners = [0u32; 16];
                    for (k, c) in corners.iter_mut().enumerate() {
                        *c = ((y + (k / 4) * ch) * stride + x + (k % 4) * cw) as u32;
                    }
                    let mut subset = [0i32; 8];
                    let words = &self.subsets
                        [n.subset as usize..n.subset as usize + self.subset_words.min(8)];
                    subset[..words.len()].copy_from_slice(words);
                    CompiledLbp {
                        corners,
                        subset,
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
                    FeatureType::Lbp if !lbp.is_empty() => self.run_lbp_stumps(lv, base, &lbp),
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
        let s = &lv.sum;
        self.run_trees(|n| {
            let r = self.features[n.feature as usize][0];
            let (x, y, cw, ch) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
            let block = |bx: usize, by: usize| -> i64 {
                let o = base + (y + by * ch) * stride + x + bx * cw;
                s[o] - s[o + cw] - s[o + ch * stride] + s[o + ch * stride + cw]
            };
            let c = block(1, 1);
            let code = ((block(0, 0) >= c) as usize) << 7
                | ((block(1, 0) >= c) as usize) << 6
                | ((block(2, 0) >= c) as usize) << 5
                | ((block(2, 1) >= c) as usize) << 4
                | ((block(2, 2) >= c) as usize) << 3
                | ((block(1, 2) >= c) as usize) << 2
                | ((block(0, 2) >= c) as usize) << 1
                | (block(0, 1) >= c) as usize;
            let word = self.subsets[n.subset as usize + (code >> 5)];
            (word >> (code & 31)) & 1 != 0
        })
    }

    /// [`Self::run_lbp`] for all-stump LBP cascades over the per-level compiled program.
    #[inline]
    fn run_lbp_stumps(&self, lv: &Level, base: usize, prog: &[CompiledLbp]) -> i32 {
        let s = &lv.sum[base..];
        for (si, st) in self.stages.iter().enumerate() {
            let mut sum = 0f64;
            for c in &prog[st.weaks.start as usize..st.weaks.end as usize] {
                // A plain loop: `array::map` was not inlined here and cost a fifth of detection.
                let mut v = [0i64; 16];
                for (d, &o) in v.iter_mut().zip(&c.corners) {
                    *d = s[o as usize];
                }
                let block = |bx: usize, by: usize| {
                    let k = by * 4 + bx;
                    v[k] - v[k + 1] - v[k + 4] + v[k + 5]
                };
                let centre = block(1, 1);
                let code = ((block(0, 0) >= centre) as usize) << 7
                    | ((block(1, 0) >= centre) as usize) << 6
                    | ((block(2, 0) >= centre) as usize) << 5
                    | ((block(2, 1) >= centre) as usize) << 4
                    | ((block(2, 2) >= centre) as usize) << 3
                    | ((block(1, 2) >= centre) as usize) << 2
                    | ((block(0, 2) >= centre) as usize) << 1
                    | (block(0, 1) >= centre) as usize;
                let bit = (c.subset[code >> 5] >> (code & 31)) & 1;
                sum += c.leaf[(bit == 0) as usize] as f64;
            }
            if sum < st.threshold as f64 {
                return -(si as i32);
            }
        }
        1
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

/// One pyramid level: the resized image's integral and squared integral images, reused across
/// levels to avoid reallocations.
#[derive(Default)]
struct Level {
    w: usize,
    h: usize,
    pixels: Vec<u8>,
    sum: Vec<i64>,
    sqsum: Vec<i64>,
}

impl Level {
    fn build(&mut self, img: &GrayImage, w: usize, h: usize, squares: bool) {
        self.w = w;
        self.h = h;
        resize_linear_exact(img, w, h, &mut self.pixels);
        let stride = w + 1;
        self.sum.clear();
        self.sum.resize(stride * (h + 1), 0);
        if squares {
            self.sqsum.clear();
            self.sqsum.resize(stride * (h + 1), 0);
        }
        for y in 0..h {
            let (mut row, mut rowsq) = (0i64, 0i64);
            for x in 0..w {
                let v = self.pixels[y * w + x] as i64;
                row += v;
                let at = (y + 1) * stride + x + 1;
                self.sum[at] = self.sum[at - stride] + row;
                if squares {
                    rowsq += v * v;
                    self.sqsum[at] = self.sqsum[at - stride] + rowsq;
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
mod tests {
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
}
