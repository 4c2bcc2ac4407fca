//! Reading OpenCV's new-format cascade XML (HAAR and LBP) into the flat tables the scan walks.

use super::*;

pub(super) fn child<'a>(n: roxmltree::Node<'a, 'a>, tag: &str) -> Option<roxmltree::Node<'a, 'a>> {
    n.children().find(|c| c.is_element() && c.has_tag_name(tag))
}

pub(super) fn items<'a>(
    n: roxmltree::Node<'a, 'a>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> {
    n.children()
        .filter(|c| c.is_element() && c.has_tag_name("_"))
}

pub(super) fn text<'a>(n: roxmltree::Node<'a, 'a>) -> &'a str {
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
}
