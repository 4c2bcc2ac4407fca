//! Face pipeline throughput on one core: landmarks per face, and detection + landmarks +
//! alignment + crops per image at JAFFE size (256×256) and CK+ frame size (640×490).
//! Inputs are made from the embedded astronaut face, so the bench needs no dataset.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use face::{
    cascade_path, crop_face_and_parts, CascadeDetector, CropConfig, FaceBox, FacePipeline,
    GrayConversion, GrayImage,
};
use std::path::Path;

fn load() -> Option<(GrayImage, FacePipeline)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let img = GrayImage::open(
        &root.join("data/faces/astronaut.png"),
        GrayConversion::PilLuma,
    )
    .ok()?;
    let sp = face::ShapePredictor::load(&face::default_shape_model_path()).ok()?;
    let det = CascadeDetector::load(&cascade_path("haarcascade_frontalface_default")).ok()?;
    Some((img, FacePipeline::new(det, sp, None)))
}

/// The face region of the astronaut scaled to `side`², then placed in a `w`×`h` grey canvas.
fn frame(src: &GrayImage, side: usize, w: usize, h: usize) -> GrayImage {
    let mut crop = Vec::new();
    let sub = GrayImage::new(
        224,
        224,
        (0..224 * 224)
            .map(|i| src.at(110 + i % 224, 20 + i / 224))
            .collect(),
    )
    .expect("sub");
    face::resize_linear_exact(&sub, side, side, &mut crop);
    let mut out = GrayImage::filled(w, h, 96);
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    for y in 0..side {
        for x in 0..side {
            out.data_mut()[(y0 + y) * w + x0 + x] = crop[y * side + x];
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let Some((img, pipe)) = load() else {
        eprintln!("skipped: face bench needs the models (make setup)");
        return;
    };
    let mut g = c.benchmark_group("face");
    g.throughput(Throughput::Elements(1));
    let b = FaceBox::ltrb(175, 76, 265, 166);
    g.bench_function("landmarks (one face, 512x512)", |bch| {
        bch.iter(|| pipe.predictor().predict(&img, b))
    });
    // Batched prediction (FER2013 rows, CK+48 frames): trees outer, faces inner, so the leaf
    // table streams once per batch. 128 boxes jittered around the face, as prep batches them.
    let boxes: Vec<(&GrayImage, FaceBox)> = (0..128i64)
        .map(|k| {
            (
                &img,
                FaceBox::ltrb(170 + k % 11, 72 + k % 9, 262 + k % 7, 164 + k % 13),
            )
        })
        .collect();
    g.throughput(Throughput::Elements(boxes.len() as u64));
    g.bench_function("landmarks (batch of 128 faces, per face)", |bch| {
        bch.iter(|| pipe.predictor().predict_batch(&boxes))
    });
    g.throughput(Throughput::Elements(1));
    let crops = CropConfig::default();
    let jaffe = frame(&img, 200, 256, 256);
    let ck = frame(&img, 400, 640, 490);
    for (name, im, min_face) in [
        ("256x256 (JAFFE size)", &jaffe, 100),
        ("640x490 (CK+ frame)", &ck, 200),
    ] {
        assert!(
            !pipe.detect(im, Some(min_face)).is_empty(),
            "bench frame must hold a face"
        );
        g.bench_function(
            format!("detect+landmarks+crops {name}, min face {min_face}px"),
            |bch| {
                bch.iter(|| {
                    let f = pipe
                        .detect(im, Some(min_face))
                        .into_iter()
                        .next()
                        .expect("face");
                    crop_face_and_parts(im, &f.landmarks.precise, &crops)
                })
            },
        );
        g.bench_function(format!("track+landmarks+crops {name}"), |bch| {
            let f = pipe
                .detect(im, Some(min_face))
                .into_iter()
                .next()
                .expect("face");
            bch.iter(|| {
                let t = pipe.track(im, &f.landmarks);
                crop_face_and_parts(im, &t.landmarks.precise, &crops)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
