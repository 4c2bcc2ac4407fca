use crate::common::*;
use face::{FaceBox, GrayConversion, GrayImage, ShapePredictor};
use std::path::Path;

#[derive(Default, Debug)]
struct Agreement {
    faces: usize,
    points: usize,
    identical: usize,
    within_1px: usize,
    worst: f64,
}

fn compare(sp: &ShapePredictor, img: &GrayImage, faces: &[RefFace], acc: &mut Agreement) {
    for f in faces {
        let [l, t, r, b] = f.box_ltrb;
        let got = sp.predict(img, FaceBox::ltrb(l, t, r, b));
        acc.faces += 1;
        for (g, w) in got.points.iter().zip(&f.landmarks) {
            acc.points += 1;
            let d = (((g[0] - w[0]).pow(2) + (g[1] - w[1]).pow(2)) as f64).sqrt();
            acc.identical += (d == 0.0) as usize;
            acc.within_1px += (d <= 1.0 + 1e-9) as usize;
            acc.worst = acc.worst.max(d);
        }
    }
}

#[test]
fn model_loads_with_the_documented_shape() {
    let Some(sp) = model("model_loads_with_the_documented_shape") else {
        return;
    };
    assert_eq!(sp.num_parts(), 68);
    assert_eq!(sp.dimensions(), (15, 500, 16, 500));
}

#[test]
fn astronaut_landmarks_equal_dlib() {
    let Some(sp) = model("astronaut_landmarks_equal_dlib") else {
        return;
    };
    let fixture: RefImage = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/astronaut_dlib.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let img = GrayImage::open(
        &repo_root().join("data/faces/astronaut.png"),
        GrayConversion::PilLuma,
    )
    .unwrap();
    let mut acc = Agreement::default();
    compare(sp, &img, &fixture.faces, &mut acc);
    assert_eq!(acc.identical, 68, "{acc:?}");
}

#[test]
fn real_landmark_parity_with_dlib() {
    let Some(shared) = shared("real_landmark_parity_with_dlib") else {
        return;
    };
    let Some(sp) = model("real_landmark_parity_with_dlib") else {
        return;
    };
    let refs: Vec<RefImage> = {
        #[derive(serde::Deserialize)]
        struct File {
            images: Vec<RefImage>,
        }
        let f: File = serde_json::from_slice(
            &std::fs::read(shared.join("reference/dlib_landmarks.json")).unwrap(),
        )
        .unwrap();
        f.images
    };
    let mut acc = Agreement::default();
    for r in &refs {
        let path = ["data/faces", "data/dlib_faces", "data/jaffe"]
            .iter()
            .map(|d| shared.join(d).join(&r.image))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{} not found under shared/data", r.image));
        let img = GrayImage::open(&path, GrayConversion::PilLuma).unwrap();
        let mut one = Agreement::default();
        compare(sp, &img, &r.faces, &mut one);
        if std::env::var_os("FER_VERBOSE").is_some() {
            println!(
                "{}: {}/{} identical, worst {:.2}",
                r.image, one.identical, one.points, one.worst
            );
        }
        compare(sp, &img, &r.faces, &mut acc);
    }
    let identical = acc.identical as f64 / acc.points as f64;
    println!(
        "landmark parity: {} faces, {}/{} points identical ({:.2} %), {} within 1 px, worst {:.2} px",
        acc.faces,
        acc.identical,
        acc.points,
        100.0 * identical,
        acc.within_1px,
        acc.worst
    );
    assert_eq!(acc.faces, 282);
    // Exact parity is what we get (libjpeg-turbo decoding, Pillow's luma); the floor is
    // 99 % identical and none further than 1 px.
    assert!(identical >= 0.999, "{acc:?}");
    assert!(acc.within_1px == acc.points, "{acc:?}");
}

#[test]
fn truncated_model_names_the_offset() {
    let path = face::default_shape_model_path();
    if !testkit::files_present("truncated_model_names_the_offset", &[&path]) {
        return;
    }
    let bytes = std::fs::read(&path).expect("the installed shape model reads");
    for cut in [0usize, 1, 3, 1000, bytes.len() / 2, bytes.len() - 1] {
        let err = ShapePredictor::from_bytes(&bytes[..cut], Path::new("cut.dat")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cut.dat") && msg.contains("byte"), "{msg}");
    }
    // `load` reads the file in 1 MiB windows: cut at, before and after a window's end, or with
    // a byte too many, it must fail exactly as `from_bytes` on the same bytes; whole, it must
    // predict what `from_bytes` predicts.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.dat");
    let window = 1usize << 20;
    let mut longer = bytes.clone();
    longer.push(0);
    let cuts: Vec<&[u8]> = vec![
        &bytes[..3],
        &bytes[..window - 1],
        &bytes[..window],
        &bytes[..window + 1],
        &bytes[..bytes.len() - 1],
        &longer,
    ];
    for cut in cuts {
        std::fs::write(&file, cut).unwrap();
        let streamed = ShapePredictor::load(&file).unwrap_err().to_string();
        let whole = ShapePredictor::from_bytes(cut, &file)
            .unwrap_err()
            .to_string();
        assert_eq!(streamed, whole, "{} bytes", cut.len());
    }
    let streamed = ShapePredictor::load(&path).unwrap();
    let whole = ShapePredictor::from_bytes(&bytes, &path).unwrap();
    let img = GrayImage::open(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/faces/astronaut.png"),
        GrayConversion::PilLuma,
    )
    .unwrap();
    let face = FaceBox::ltrb(175, 76, 265, 166);
    assert_eq!(streamed.predict(&img, face), whole.predict(&img, face));

    let mut extra = bytes[..64].to_vec();
    extra[0] = 0x0f; // a 15-byte integer: impossible
    let msg = ShapePredictor::from_bytes(&extra, Path::new("bad.dat"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("byte 0"), "{msg}");
}

/// `predict_batch` reorders the loops (trees outside, faces inside) but must give every face
/// bit-identical points to `predict`, whatever the batch holds: several boxes, several images,
/// boxes leaving the image.
#[test]
fn batch_prediction_equals_single_prediction() {
    let Some(sp) = model("batch_prediction_equals_single_prediction") else {
        return;
    };
    let img = GrayImage::open(
        &repo_root().join("data/faces/astronaut.png"),
        GrayConversion::PilLuma,
    )
    .unwrap();
    let small =
        GrayImage::new(48, 48, (0..48 * 48).map(|i| (i * 7 % 251) as u8).collect()).unwrap();
    let mut faces: Vec<(&GrayImage, FaceBox)> = Vec::new();
    for k in 0..12i64 {
        faces.push((
            &img,
            FaceBox::ltrb(150 + 3 * k, 60 + k, 320 + 2 * k, 230 + 3 * k),
        ));
        faces.push((&small, FaceBox::ltrb(-k, 0, 47 + k, 47)));
    }
    let batch = sp.predict_batch(&faces);
    assert_eq!(batch.len(), faces.len());
    for ((im, b), got) in faces.iter().zip(&batch) {
        let one = sp.predict(im, *b);
        assert_eq!(one.points, got.points, "{b:?}");
        assert_eq!(one.precise, got.precise, "{b:?}");
    }
    assert!(sp.predict_batch(&[]).is_empty());
}
