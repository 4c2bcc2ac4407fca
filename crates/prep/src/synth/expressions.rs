//! The expression recipes: landmark displacements per expression, mirroring, easing.

use super::*;

/// Landmark displacement of one expression at full intensity, in inter-ocular units of the
/// face's own frame (x to the subject's left = image right, y down). Each recipe names the action
/// units it imitates.
pub fn expression_offsets(expr: &str) -> [[f64; 2]; 68] {
    let mut d = [[0.0f64; 2]; 68];
    let mut add = |idx: &[usize], dx: f64, dy: f64| {
        for &i in idx {
            d[i][0] += EXPRESSION_GAIN * dx;
            d[i][1] += EXPRESSION_GAIN * dy;
        }
    };
    let brows: Vec<usize> = (17..27).collect();
    let inner_brows = [20, 21, 22, 23];
    let upper_lids = [37, 38, 43, 44];
    let lower_lids = [40, 41, 46, 47];
    let upper_lip = [49, 50, 51, 52, 53, 61, 62, 63];
    let lower_lip = [55, 56, 57, 58, 59, 65, 66, 67];
    let chin: Vec<usize> = (5..12).collect();
    match expr {
        // AU6 + AU12: lip corners up and out, cheeks raise the lower lids, mouth opens a little.
        "happy" => {
            add(&[48, 60], -0.10, -0.10);
            add(&[54, 64], 0.10, -0.10);
            add(&[49, 59], -0.04, -0.05);
            add(&[53, 55], 0.04, -0.05);
            add(&lower_lids, 0.0, -0.035);
            add(&lower_lip, 0.0, 0.04);
        }
        // AU1 + AU2 + AU5 + AU26: brows up, eyes wider, jaw dropped.
        "surprise" => {
            add(&brows, 0.0, -0.13);
            add(&upper_lids, 0.0, -0.05);
            add(&lower_lip, 0.0, 0.30);
            add(&chin, 0.0, 0.22);
            add(&[48, 60], 0.03, 0.08);
            add(&[54, 64], -0.03, 0.08);
            add(&upper_lip, 0.0, 0.02);
        }
        // AU4 + AU5 + AU7 + AU23/24: brows down and together, lids tightened, lips pressed.
        "anger" => {
            add(&brows, 0.0, 0.07);
            add(&[21, 20], 0.05, 0.03);
            add(&[22, 23], -0.05, 0.03);
            add(&lower_lids, 0.0, -0.03);
            add(&upper_lip, 0.0, 0.03);
            add(&lower_lip, 0.0, -0.04);
            add(&[48, 60], 0.04, 0.0);
            add(&[54, 64], -0.04, 0.0);
        }
        // AU1 + AU4 + AU15: inner brows up, lip corners down.
        "sadness" => {
            add(&inner_brows, 0.0, -0.08);
            add(&[21], 0.02, 0.0);
            add(&[22], -0.02, 0.0);
            add(&[48, 54, 60, 64], 0.0, 0.10);
            add(&[57, 66], 0.0, -0.02);
        }
        // AU9 + AU10: nose wrinkled, upper lip raised, brows lowered a little.
        "disgust" => {
            add(&upper_lip, 0.0, -0.09);
            add(&[31, 32, 33, 34, 35], 0.0, -0.05);
            add(&[48, 54], 0.0, -0.04);
            add(&brows, 0.0, 0.04);
            add(&lower_lids, 0.0, -0.03);
        }
        // AU1 + AU2 + AU4 + AU5 + AU20: brows up and together, eyes wide, lips stretched.
        "fear" => {
            add(&brows, 0.0, -0.08);
            add(&[21, 20], 0.04, 0.0);
            add(&[22, 23], -0.04, 0.0);
            add(&upper_lids, 0.0, -0.05);
            add(&[48, 60], -0.10, 0.04);
            add(&[54, 64], 0.10, 0.04);
            add(&lower_lip, 0.0, 0.08);
        }
        // AU14 on one side: one lip corner up and out.
        "contempt" => {
            add(&[54, 64], 0.07, -0.07);
            add(&[53, 55], 0.03, -0.03);
        }
        _ => {}
    }
    d
}

/// The 68-point index of each point's mirror image (left ↔ right).
pub fn mirror_index() -> [usize; 68] {
    let mut m: [usize; 68] = std::array::from_fn(|i| i);
    let pairs: &[(usize, usize)] = &[
        (0, 16),
        (1, 15),
        (2, 14),
        (3, 13),
        (4, 12),
        (5, 11),
        (6, 10),
        (7, 9),
        (17, 26),
        (18, 25),
        (19, 24),
        (20, 23),
        (21, 22),
        (31, 35),
        (32, 34),
        (36, 45),
        (37, 44),
        (38, 43),
        (39, 42),
        (40, 47),
        (41, 46),
        (48, 54),
        (49, 53),
        (50, 52),
        (55, 59),
        (56, 58),
        (60, 64),
        (61, 63),
        (65, 67),
    ];
    for &(a, b) in pairs {
        m[a] = b;
        m[b] = a;
    }
    m
}

/// Smoothstep easing of a sequence position in [0, 1].
pub fn ease(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}
