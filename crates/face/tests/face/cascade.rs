use crate::common::*;
use face::{cascade_path, CascadeDetector, DetectParams, GrayConversion, GrayImage, Rect};
use std::collections::BTreeMap;

const CASCADES: [&str; 4] = [
    "haarcascade_frontalface_default",
    "haarcascade_frontalface_alt2",
    "lbpcascade_frontalface",
    "lbpcascade_frontalface_improved",
];

fn detector(name: &str, test: &str) -> Option<CascadeDetector> {
    let p = cascade_path(name);
    model_file_present(&p, test).then(|| CascadeDetector::load(&p).unwrap())
}

fn iou(a: &Rect, b: &Rect) -> f64 {
    let l = a.x.max(b.x);
    let t = a.y.max(b.y);
    let r = (a.x + a.w).min(b.x + b.w);
    let btm = (a.y + a.h).min(b.y + b.h);
    let inter = ((r - l).max(0) * (btm - t).max(0)) as f64;
    inter / ((a.w * a.h + b.w * b.h) as f64 - inter)
}

#[test]
fn cascades_load_with_documented_sizes() {
    let expect = [
        ("haarcascade_frontalface_default", (24, 24)),
        ("haarcascade_frontalface_alt2", (20, 20)),
        ("lbpcascade_frontalface", (24, 24)),
        ("lbpcascade_frontalface_improved", (45, 45)),
    ];
    for (name, window) in expect {
        let Some(d) = detector(name, "cascades_load_with_documented_sizes") else {
            return;
        };
        assert_eq!(d.window(), window, "{name}");
    }
}

#[test]
fn astronaut_face_is_found_by_every_cascade() {
    let img = GrayImage::open(
        &repo_root().join("data/faces/astronaut.png"),
        GrayConversion::PilLuma,
    )
    .unwrap();
    // dlib's box for the astronaut (inclusive 175,76 .. 265,166).
    let dlib = Rect {
        x: 175,
        y: 76,
        w: 91,
        h: 91,
    };
    for name in CASCADES.iter().take(3) {
        let Some(d) = detector(name, "astronaut_face_is_found_by_every_cascade") else {
            return;
        };
        let boxes = d.detect(&img, &DetectParams::default());
        assert!(
            boxes.iter().any(|b| iou(b, &dlib) > 0.5),
            "{name}: {boxes:?} misses the face"
        );
    }
}

#[test]
fn malformed_cascade_xml_is_an_error() {
    let p = std::path::Path::new("x.xml");
    for xml in [
        "",
        "<opencv_storage></opencv_storage>",
        "<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HOG</featureType></cascade></opencv_storage>",
        "<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType><height>24</height><width>24</width><stages><_><stageThreshold>1</stageThreshold><weakClassifiers><_><internalNodes>0 -1 7 0.5</internalNodes><leafValues>1 2</leafValues></_></weakClassifiers></_></stages><features></features></cascade></opencv_storage>",
    ] {
        let err = CascadeDetector::from_xml(xml, "x", p).unwrap_err();
        assert!(err.to_string().contains("x.xml"), "{err}");
    }
}

/// Regression (fuzzing, fuzz/regressions/cascade_xml/tree_node_points_at_itself_hangs): a tree
/// node whose child index pointed at itself was accepted, and detection looped forever.
#[test]
fn cascade_tree_node_pointing_back_is_refused() {
    let tree = |nodes: &str| {
        format!(
            "<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>\
             <height>6</height><width>6</width><stages><_><stageThreshold>-1</stageThreshold>\
             <weakClassifiers><_><internalNodes>{nodes}</internalNodes>\
             <leafValues>0.2 -0.5 0.4</leafValues></_></weakClassifiers></_></stages><features>\
             <_><rects><_>0 0 6 3 -1.</_><_>0 3 6 3 1.</_></rects></_></features></cascade>\
             </opencv_storage>"
        )
    };
    let p = std::path::Path::new("x.xml");
    assert!(CascadeDetector::from_xml(&tree("1 0 0 0.01 -1 -2 0 -0.03"), "x", p).is_ok());
    for bad in ["1 0 0 0.01 1 -2 0 -0.03", "1 0 0 0.01 -1 1 0 -0.03"] {
        let err = CascadeDetector::from_xml(&tree(bad), "x", p).unwrap_err();
        assert!(
            err.to_string().contains("not after its parent"),
            "{bad}: {err}"
        );
    }
}

#[derive(serde::Deserialize)]
struct RefImage {
    image: String,
    boxes_xywh: BTreeMap<String, Vec<[i64; 4]>>,
}

#[test]
fn real_cascade_parity_with_opencv() {
    let Some(shared) = shared("real_cascade_parity_with_opencv") else {
        return;
    };
    #[derive(serde::Deserialize)]
    struct File {
        images: Vec<RefImage>,
    }
    let refs: File =
        serde_json::from_slice(&std::fs::read(shared.join("reference/opencv_boxes.json")).unwrap())
            .unwrap();
    let images: Vec<(String, GrayImage)> = refs
        .images
        .iter()
        .map(|r| {
            let img = GrayImage::open(&shared.join("data").join(&r.image), GrayConversion::PilLuma)
                .unwrap();
            (r.image.clone(), img)
        })
        .collect();
    let mut all_ok = true;
    for name in CASCADES {
        let Some(det) = detector(name, "real_cascade_parity_with_opencv") else {
            return;
        };
        let (mut agree, mut total) = (0usize, 0usize);
        let mut diffs = Vec::new();
        use rayon::prelude::*;
        let detected: Vec<Option<Vec<Rect>>> = refs
            .images
            .par_iter()
            .zip(&images)
            .map(|(r, (_, img))| {
                r.boxes_xywh
                    .get(name)
                    .map(|_| det.detect(img, &DetectParams::default()))
            })
            .collect();
        for ((r, (path, _)), got) in refs.images.iter().zip(&images).zip(detected) {
            let (Some(want), Some(got)) = (r.boxes_xywh.get(name), got) else {
                continue;
            };
            let mut want: Vec<Rect> = want
                .iter()
                .map(|b| Rect {
                    x: b[0],
                    y: b[1],
                    w: b[2],
                    h: b[3],
                })
                .collect();
            want.sort();
            total += 1;
            let ok = got.len() == want.len()
                && want.iter().all(|w| got.iter().any(|g| iou(g, w) >= 0.95));
            if ok {
                agree += 1;
            } else if diffs.len() < 5 {
                diffs.push(format!("{path}: ours {got:?} opencv {want:?}"));
            }
        }
        let rate = agree as f64 / total as f64;
        println!(
            "{name}: {agree}/{total} images agree with OpenCV ({:.1} %)",
            100.0 * rate
        );
        for d in &diffs {
            println!("  {d}");
        }
        all_ok &= rate >= 0.98;
    }
    assert!(all_ok, "a cascade agrees on fewer than 98 % of images");
}

/// Regression (fuzzing, fuzz/regressions/cascade_xml/window_narrower_than_3_underflows): a
/// window under 3×3 leaves no area for the variance normalisation and underflowed it.
#[test]
fn cascade_window_under_3_is_refused() {
    for (w, h) in [(3, 1), (2, 2), (1, 5)] {
        let xml = format!(
            "<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>\
             <height>{h}</height><width>{w}</width><stages><_><stageThreshold>-1</stageThreshold>\
             <weakClassifiers><_><internalNodes>0 -1 0 0.01</internalNodes>\
             <leafValues>0.2 -0.5</leafValues></_></weakClassifiers></_></stages><features>\
             <_><rects><_>0 0 1 1 -1.</_></rects></_></features></cascade></opencv_storage>"
        );
        let err = CascadeDetector::from_xml(&xml, "x", std::path::Path::new("x.xml")).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{w}×{h}: {err}");
    }
}
