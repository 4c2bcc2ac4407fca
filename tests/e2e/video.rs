//! Video in (issue 40): the DFEW and AFEW layouts `prep synth` writes (clips encoded with FFmpeg,
//! planted broken files) build caches in which every file is accounted for, whose records hold
//! the recipe's frames of each clip, whose key names the decoder and the frame rule, and whose
//! crops `train predict` reproduces byte for byte from the clip file; and `train predict` on a
//! synthetic video writes one row per frame that agrees with what was drawn: a face where one
//! was, none in the blank stretch, its landmarks' box on the drawn face's, the rows in time order,
//! and a corrupt video beside it giving an error row and exit status 1.

use crate::same_crops::assert_predict_cuts_the_cached_crops;
use crate::{models, repo, request, run_quietly, small_config};
use prep::synth::{generate_clips, synth_video, BaseFace, ClipOptions, VideoOptions};
use prep::{DatasetKind, ModelFiles};
use shard::{Cache, Split};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CLIP_FRAMES: usize = 12;

struct ClipFixture {
    root: PathBuf,
    base: BaseFace,
    report: prep::synth::ClipReport,
    dfew: prep::BuildOutcome,
    afew: prep::BuildOutcome,
    models: ModelFiles,
}

fn ffmpeg_present(test: &str) -> bool {
    match face::video::Ffmpeg::find() {
        Ok(_) => true,
        Err(e) => {
            testkit::unavailable(test, e);
            false
        }
    }
}

/// The two clip layouts (5 subjects × 7 classes each) and their caches, built once.
fn clips() -> Option<&'static ClipFixture> {
    static FIXTURE: OnceLock<Option<ClipFixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let m = models()?;
            if !ffmpeg_present("video fixture") {
                return None;
            }
            let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-video");
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            let faces = m.load(false).unwrap();
            let img = face::GrayImage::open(
                &repo().join("data/faces/astronaut.png"),
                face::GrayConversion::PilLuma,
            )
            .unwrap();
            let found = faces.detect(&img, None).into_iter().next().unwrap();
            let base = BaseFace::new(img, &found.landmarks.precise);
            let raw = root.join("raw");
            let report = generate_clips(
                &base,
                &ClipOptions {
                    out: raw.clone(),
                    subjects: 5,
                    seed: 4,
                    frames: CLIP_FRAMES,
                    fps: 25.0,
                },
            )
            .unwrap();
            let caches = root.join("cache");
            let build = |kind, dir: &str| {
                prep::build(
                    &request(kind, &raw.join(dir), &caches, dir, None, &m),
                    &prep::build::NoProgress,
                )
                .unwrap()
            };
            let dfew = build(DatasetKind::Dfew, "dfew");
            let afew = build(DatasetKind::Afew, "afew");
            Some(ClipFixture {
                root,
                base,
                report,
                dfew,
                afew,
                models: m,
            })
        })
        .as_ref()
}

fn failure_reasons(dir: &Path) -> BTreeMap<String, String> {
    shard::tables::read_failures(&dir.join("failures.parquet"))
        .unwrap()
        .into_iter()
        .map(|r| (r.input, r.reason))
        .collect()
}

#[test]
fn clip_layouts_build_caches_with_every_file_accounted_for() {
    let Some(fx) = clips() else { return };
    let r = &fx.report;
    // DFEW: 35 listed clips cached in the official folds (subject mod 5); the unlabelled clip,
    // the stray README, the corrupt and the cut clip each have their row.
    let d = &fx.dfew.summary;
    assert_eq!(d.cached as usize, r.dfew_clips);
    assert_eq!(d.seen, d.cached + d.excluded_total() + d.failed_total());
    let rows = failure_reasons(&fx.dfew.dir);
    for (path, reason) in &r.planted {
        if path.starts_with("Clip/") {
            assert_eq!(rows.get(path), Some(reason), "{path}: {rows:?}");
        }
    }
    assert_eq!(d.failed_total(), 2, "{rows:?}");
    // AFEW: Train and Val clips; the broken .avi, the sound-only one and Test/ have rows.
    let a = &fx.afew.summary;
    assert_eq!(a.cached as usize, r.afew_clips);
    assert_eq!(a.seen, a.cached + a.excluded_total() + a.failed_total());
    let rows = failure_reasons(&fx.afew.dir);
    for (path, reason) in &r.planted {
        if !path.starts_with("Clip/") {
            assert_eq!(rows.get(path), Some(reason), "{path}: {rows:?}");
        }
    }
    // Every record holds the recipe's frames of its clip (first, middle, last of 12) and a split
    // from the layout.
    let want = face::frame_indices(&[0.0, 0.5, 1.0], CLIP_FRAMES);
    let mut dfew_folds = BTreeMap::new();
    for rec in Cache::open(&fx.dfew.dir).unwrap().iter() {
        let m = rec.unwrap().meta;
        let idx: Vec<usize> = m.frame_indices.iter().map(|&i| i as usize).collect();
        assert_eq!(idx, want, "{}", m.sample_id);
        assert!(
            m.source.iter().all(|s| s.ends_with(".mp4")),
            "{:?}",
            m.source
        );
        *dfew_folds.entry(m.split).or_insert(0) += 1;
    }
    assert_eq!(
        dfew_folds.keys().copied().collect::<Vec<_>>(),
        (0..5).map(Split::Fold).collect::<Vec<_>>()
    );
    let mut afew_splits = BTreeMap::new();
    for rec in Cache::open(&fx.afew.dir).unwrap().iter() {
        let m = rec.unwrap().meta;
        *afew_splits.entry(m.split).or_insert(0) += 1;
    }
    assert_eq!(afew_splits.get(&Split::Train), Some(&28));
    assert_eq!(afew_splits.get(&Split::Test), Some(&7));
}

#[test]
fn the_clip_cache_key_names_the_decoder_and_the_frame_rule() {
    let Some(fx) = clips() else { return };
    let key_text = serde_json::to_string(&fx.dfew.manifest.key_ingredients).unwrap();
    let version = &face::video::Ffmpeg::find().unwrap().version;
    assert!(
        key_text.contains(&format!("ffmpeg {version}")),
        "{key_text}"
    );
    let raw = fx.root.join("raw/dfew");
    let caches = fx.root.join("cache");
    let mut req = request(DatasetKind::Dfew, &raw, &caches, "dfew", None, &fx.models);
    let (same, _, _) = prep::build::compute_key(&req).unwrap();
    assert_eq!(same.hex(), fx.dfew.manifest.key);
    req.config.frame_positions = vec![0.0, 0.75, 1.0];
    let (other, _, _) = prep::build::compute_key(&req).unwrap();
    assert_ne!(other.hex(), fx.dfew.manifest.key);
}

#[test]
fn predict_on_a_clip_file_cuts_the_cached_crops() {
    let Some(fx) = clips() else { return };
    for (out, dir) in [(&fx.dfew, "dfew"), (&fx.afew, "afew")] {
        let kinds = assert_predict_cuts_the_cached_crops(&out.dir, &fx.root.join("raw").join(dir));
        assert_eq!(kinds.files as u64, out.summary.cached, "{dir}: {kinds:?}");
    }
}

/// The `train` binary beside this test binary.
fn train_bin() -> Option<PathBuf> {
    let bin = std::env::current_exe()
        .ok()?
        .parent()?
        .parent()?
        .join("train");
    bin.exists().then_some(bin)
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (head, rows)
}

#[test]
fn predict_on_a_video_gives_a_row_per_frame_that_matches_the_drawing() {
    let Some(fx) = clips() else { return };
    let Some(bin) = train_bin() else {
        testkit::unavailable(
            "predict_on_a_video_gives_a_row_per_frame_that_matches_the_drawing",
            "no train binary beside the tests (run with --workspace)",
        );
        return;
    };
    // A tiny two-epoch model on the DFEW cache: the test is about the rows, not the accuracy.
    let runs = fx.root.join("runs");
    let cfg = small_config(&fx.dfew.dir, &runs, "[0]", 2);
    let run = run_quietly(&cfg).dir;
    let video = fx.root.join("video/person.mp4");
    let fps = 30.0;
    let truth = synth_video(
        &fx.base,
        &VideoOptions {
            out: video.clone(),
            width: 640,
            height: 480,
            frames: 60,
            fps,
            seed: 1,
        },
    )
    .unwrap();
    let broken = fx.root.join("video/broken.avi");
    std::fs::write(&broken, b"not a video".repeat(50)).unwrap();
    let out_dir = fx.root.join("predicted");
    let o = Command::new(&bin)
        .args(["predict", "--device", "cpu", "--annotate", "--run"])
        .arg(&run)
        .arg("--out-dir")
        .arg(&out_dir)
        .arg(&video)
        .arg(&broken)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("broken.avi") && stdout.contains("not a readable video"),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 of 2 inputs could not be classified"),
        "{stderr}"
    );
    let (head, rows) = read_csv(&out_dir.join("person.csv"));
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), truth.len());
    let classes = 7;
    let mut found_where_drawn = 0;
    for (k, (row, t)) in rows.iter().zip(&truth).enumerate() {
        assert_eq!(row[col("frame")], (k + 1).to_string());
        let ts: f64 = row[col("timestamp")].parse().unwrap();
        assert!((ts - k as f64 / fps).abs() < 1e-3, "frame {k}: {ts}");
        let success = row[col("success")] == "1";
        if !t.face {
            assert!(!success, "frame {k}: a face found in a blank frame");
            assert!(row[col("p_happy")].is_empty());
            continue;
        }
        if !success {
            continue;
        }
        found_where_drawn += 1;
        let xs: Vec<f64> = (0..68)
            .map(|i| row[col(&format!("x_{i}"))].parse().unwrap())
            .collect();
        let ys: Vec<f64> = (0..68)
            .map(|i| row[col(&format!("y_{i}"))].parse().unwrap())
            .collect();
        let fold = |v: &[f64], f: fn(f64, f64) -> f64, z: f64| v.iter().copied().fold(z, f);
        let got = [
            fold(&xs, f64::min, f64::INFINITY),
            fold(&ys, f64::min, f64::INFINITY),
            fold(&xs, f64::max, f64::NEG_INFINITY),
            fold(&ys, f64::max, f64::NEG_INFINITY),
        ];
        let want = t.landmark_box.unwrap();
        let iou = {
            let ix = (got[2].min(want[2]) - got[0].max(want[0])).max(0.0);
            let iy = (got[3].min(want[3]) - got[1].max(want[1])).max(0.0);
            let area = |b: [f64; 4]| (b[2] - b[0]) * (b[3] - b[1]);
            ix * iy / (area(got) + area(want) - ix * iy)
        };
        // The landmarks sit on the drawn face (they move 2.7 px a frame across the picture).
        assert!(
            iou > 0.6,
            "frame {k}: landmark box {got:?} vs drawn {want:?}"
        );
        let probs: Vec<f64> = (0..classes)
            .map(|i| row[col("p_happy") + i].parse().unwrap())
            .collect();
        assert!(
            (probs.iter().sum::<f64>() - 1.0).abs() < 1e-3,
            "frame {k}: {probs:?}"
        );
        let window: usize = row[col("window")].parse().unwrap();
        assert!((1..=3).contains(&window), "frame {k}: window {window}");
    }
    let drawn = truth.iter().filter(|t| t.face).count();
    assert!(
        found_where_drawn * 10 >= drawn * 9,
        "a face found in {found_where_drawn} of {drawn} frames where one was drawn"
    );
    let jsonl = std::fs::read_to_string(out_dir.join("person.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), truth.len());
    assert!(out_dir.join("person_probabilities.svg").exists());
    let annotated = face::video::probe(&out_dir.join("person_annotated.mp4")).unwrap();
    assert_eq!(annotated.frames(), truth.len());

    // Every third frame: frames 1, 4, 7, … and the run succeeds without the broken file.
    let o = Command::new(&bin)
        .args(["predict", "--device", "cpu", "--every", "3", "--run"])
        .arg(&run)
        .arg("--out-dir")
        .arg(fx.root.join("predicted-every-3"))
        .arg(&video)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (head, rows) = read_csv(&fx.root.join("predicted-every-3/person.csv"));
    let frame = head.iter().position(|h| h == "frame").unwrap();
    let frames: Vec<usize> = rows.iter().map(|r| r[frame].parse().unwrap()).collect();
    assert_eq!(frames, (0..20).map(|k| 3 * k + 1).collect::<Vec<_>>());
}
