//! The full chain (our cascade + calibration + predictor) against dlib's own detector + predictor.

use crate::common::*;
use face::{
    cascade_path, BoxCalibration, CascadeDetector, DetectParams, FaceBox, FacePipeline,
    GrayConversion, GrayImage, PipelineOptions,
};

fn iod(l: &[[i64; 2]]) -> f64 {
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        let (x, y) = r.fold((0.0, 0.0), |a, i| {
            (a.0 + l[i][0] as f64, a.1 + l[i][1] as f64)
        });
        (x / n, y / n)
    };
    let (a, b) = (mean(36..42), mean(42..48));
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn real_full_chain_matches_dlib_within_two_percent_iod() {
    let Some(shared) = shared("real_full_chain_matches_dlib_within_two_percent_iod") else {
        return;
    };
    let Some(sp) = model("real_full_chain_matches_dlib_within_two_percent_iod") else {
        return;
    };
    #[derive(serde::Deserialize)]
    struct File {
        images: Vec<RefImage>,
    }
    let refs: File = serde_json::from_slice(
        &std::fs::read(shared.join("reference/dlib_landmarks.json")).unwrap(),
    )
    .unwrap();
    let haar = CascadeDetector::load(&cascade_path("haarcascade_frontalface_default")).unwrap();
    let lbp = CascadeDetector::load(&cascade_path("lbpcascade_frontalface")).unwrap();
    let variants = [
        ("calibrated", &haar, BoxCalibration::HAAR_DEFAULT, false),
        (
            "calibrated + re-init",
            &haar,
            BoxCalibration::HAAR_DEFAULT,
            true,
        ),
        ("uncalibrated", &haar, BoxCalibration::IDENTITY, false),
        ("lbp calibrated", &lbp, BoxCalibration::LBP, false),
    ];
    let mut lbp_median = f64::NAN;
    let mut default_median = f64::NAN;
    let mut fits: Vec<[f64; 3]> = Vec::new();
    for (name, det, calibration, reinitialise) in variants {
        let pipe = FacePipeline::new(
            det.clone(),
            sp.clone(),
            Some(PipelineOptions {
                detect: DetectParams::default(),
                calibration,
                reinitialise,
            }),
        );
        let (mut errs, mut missed, mut total) = (Vec::new(), 0usize, 0usize);
        for r in refs.images.iter().filter(|r| !r.image.ends_with(".png")) {
            let path = ["data/dlib_faces", "data/jaffe"]
                .iter()
                .map(|d| shared.join(d).join(&r.image))
                .find(|p| p.exists())
                .unwrap();
            let img = GrayImage::open(&path, GrayConversion::PilLuma).unwrap();
            let found = pipe.detect(&img, None);
            for f in &r.faces {
                total += 1;
                let [l, t, rr, b] = f.box_ltrb;
                let dlib_box = FaceBox::ltrb(l, t, rr, b);
                let Some(best) = found
                    .iter()
                    .filter_map(|d| d.detection.map(|r| (d, r)))
                    .max_by(|a, b| {
                        let ia = calibration.apply(&a.1).iou(&dlib_box);
                        let ib = calibration.apply(&b.1).iou(&dlib_box);
                        ia.total_cmp(&ib)
                    })
                    .filter(|(_, r)| calibration.apply(r).iou(&dlib_box) > 0.3)
                else {
                    missed += 1;
                    continue;
                };
                if name == "uncalibrated" {
                    let rect = best.1;
                    let w = rect.w as f64;
                    let (cx, cy) = (
                        rect.x as f64 + (w - 1.0) / 2.0,
                        rect.y as f64 + (rect.h as f64 - 1.0) / 2.0,
                    );
                    let (dcx, dcy) = dlib_box.center();
                    fits.push([dlib_box.width() as f64 / w, (dcx - cx) / w, (dcy - cy) / w]);
                }
                let got = &best.0.landmarks.points;
                let mean_err = got
                    .iter()
                    .zip(&f.landmarks)
                    .map(|(g, w)| (((g[0] - w[0]).pow(2) + (g[1] - w[1]).pow(2)) as f64).sqrt())
                    .sum::<f64>()
                    / 68.0;
                errs.push(mean_err / iod(&f.landmarks));
            }
        }
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        let median = quantile(&mut errs, 0.5);
        let p95 = quantile(&mut errs, 0.95);
        println!(
            "full chain ({name}): {} of {total} dlib faces found ({missed} missed); error / inter-ocular: mean {:.4}, median {:.4}, p95 {:.4}",
            errs.len(),
            mean,
            median,
            p95
        );
        if name == "calibrated" {
            default_median = median;
        }
        if name == "lbp calibrated" {
            lbp_median = median;
        }
    }
    let mut s: Vec<f64> = fits.iter().map(|f| f[0]).collect();
    let mut dx: Vec<f64> = fits.iter().map(|f| f[1]).collect();
    let mut dy: Vec<f64> = fits.iter().map(|f| f[2]).collect();
    println!(
        "fitted haar_default -> dlib box mapping on {} faces (medians): scale {:.3}, dx {:+.3}, dy {:+.3}",
        fits.len(),
        quantile(&mut s, 0.5),
        quantile(&mut dx, 0.5),
        quantile(&mut dy, 0.5)
    );
    assert!(
        default_median <= 0.02,
        "median error {default_median} > 2 % of the inter-ocular distance"
    );
    assert!(
        lbp_median <= 0.02,
        "LBP chain median error {lbp_median} > 2 % of the inter-ocular distance"
    );
}
