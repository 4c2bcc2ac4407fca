use crate::common::*;
use prep::inventory::reason;
use prep::DatasetKind;
use shard::{Cache, Split};
use std::collections::BTreeMap;

#[test]
fn ckplus_tree_every_sequence_is_accounted_for() {
    let Some(models) = models("ckplus_tree_every_sequence_is_accounted_for") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    let mut req = request(DatasetKind::Ckplus, raw.path(), caches.path(), models);
    req.config.folds = 2;
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    let failures = shard::tables::read_failures(&out.dir.join("failures.parquet")).unwrap();
    assert_eq!((s.seen, s.cached), (9, 4), "{s:?} {failures:?}");
    assert_eq!(s.excluded.get(reason::UNLABELLED), Some(&1));
    assert_eq!(s.excluded.get(reason::NEUTRAL_EXCLUDED), Some(&1));
    assert_eq!(s.failed.get(reason::BAD_EMOTION), Some(&1));
    assert_eq!(s.failed.get(reason::NO_FRAMES), Some(&1));
    assert_eq!(s.failed.get(reason::DECODE_ERROR), Some(&1));

    let cache = Cache::open(&out.dir).unwrap();
    assert!(cache.verify().unwrap().is_ok());
    let classes = &cache.manifest().class_names;
    assert_eq!(classes.len(), 7, "7 classes without neutral");
    let mut labels = BTreeMap::new();
    for r in cache.iter() {
        let r = r.unwrap();
        let m = &r.meta;
        labels.insert(m.sample_id.clone(), classes[m.label as usize].clone());
        // first, middle, peak of 5 frames; one detection, then tracking.
        assert_eq!(m.frame_indices, vec![1, 3, 5], "{}", m.sample_id);
        assert_eq!(m.landmarks.len(), 3);
        assert_ne!(m.flags & shard::flags::TRACKED, 0);
        assert!(matches!(m.split, Split::Fold(0 | 1)));
        assert_eq!(r.plane("face").unwrap().len(), 128 * 128);
        for k in 0..3 {
            assert_eq!(r.plane(&format!("eyes/{k}")).unwrap().len(), 48 * 128);
            assert_eq!(r.plane(&format!("nose/{k}")).unwrap().len(), 64 * 32);
            assert_eq!(r.plane(&format!("mouth/{k}")).unwrap().len(), 32 * 64);
        }
        // The face is found where it was drawn: eyes in the upper half of the frame.
        let eye_y = m.landmarks[2][36][1];
        assert!(
            (100.0..300.0).contains(&eye_y),
            "{}: eye at y {eye_y}",
            m.sample_id
        );
        // Per slot (format 1.1): detected on the first frame, tracked after; each with the box
        // the predictor ran on, which holds the landmarks' centre.
        let f = &m.ext.frames;
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].flags & shard::flags::TRACKED, 0);
        assert_eq!(f[0].detector, m.detector);
        assert_eq!(
            (f[1].detector.as_str(), f[2].detector.as_str()),
            ("tracked", "tracked")
        );
        for (k, fi) in f.iter().enumerate() {
            let [l, t, r, b] = fi.face_box.unwrap();
            let n = m.landmarks[k].len() as f32;
            let cx = m.landmarks[k].iter().map(|p| p[0]).sum::<f32>() / n;
            let cy = m.landmarks[k].iter().map(|p| p[1]).sum::<f32>() / n;
            assert!((l as f32..=r as f32).contains(&cx) && (t as f32..=b as f32).contains(&cy));
        }
    }
    // landmarks.parquet: one row per sample and slot.
    let lm = shard::tables::read_table(&out.dir.join("landmarks.parquet")).unwrap();
    assert_eq!(lm.height(), 4 * 3);
    assert_eq!(
        lm.column("detector").unwrap().str().unwrap().get(1),
        Some("tracked")
    );
    let want: BTreeMap<String, String> = [
        ("S005/001", "disgust"),
        ("S005/002", "happy"),
        ("S010/001", "surprise"),
        ("S010/002", "anger"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(labels, want);
    // Failures name their input and reason in failures.parquet.
    assert_eq!(failures.len() as u64, s.seen - s.cached);
    assert!(failures
        .iter()
        .any(|f| f.input.ends_with("S011/001") && f.reason == reason::BAD_EMOTION));
    assert!(out.dir.join("qa/sheet-01.png").exists());

    // Unchanged inputs and config: a cache hit.
    let again = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert!(again.hit);
    assert_eq!(again.manifest.key, out.manifest.key);
    assert_eq!(again.summary, out.summary);
    // A changed config is another cache.
    req.config.crops.part_margin = 3.0;
    let other = prep::build(&req, &prep::build::NoProgress).unwrap();
    assert!(!other.hit);
    assert_ne!(other.dir, out.dir);
}

#[test]
fn oulu_tree_with_authors_fold_list() {
    let Some(models) = models("oulu_tree_with_authors_fold_list") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    let base = raw.path().join("OriginalImg/VL/Strong");
    let mut list = String::new();
    for (p, person) in ["P001", "P002", "P003"].iter().enumerate() {
        for (e, emotion) in ["Anger", "Happiness"].iter().enumerate() {
            for f in 0..4 {
                let img = frame(320, 240, 230, f as i64, 0, p == 1);
                save_jpeg(
                    &img,
                    &base.join(person).join(emotion).join(format!("{f:03}.jpeg")),
                );
            }
            let code = [1, 5][e];
            for f in [0, 2, 3] {
                // Like the authors' list, some lines write `oulu/Strong/…` for `OriginalImg/VL/Strong/…`.
                let prefix = if p == 2 && f == 0 {
                    "oulu/Strong"
                } else {
                    "OriginalImg/VL/Strong"
                };
                list.push_str(&format!(
                    "{}\t{prefix}/{person}/{emotion}/{f:03}.jpeg\t{code}\n",
                    p + 1
                ));
            }
        }
    }
    // A folder with an unknown emotion name and a listed sequence the copy lacks.
    save_jpeg(
        &frame(320, 240, 230, 0, 0, false),
        &base.join("P001/Contempt/000.jpeg"),
    );
    list.push_str("1\tOriginalImg/VL/Strong/P009/Fear/000.jpeg\t4\n");
    let folds = raw.path().join("folds.txt");
    std::fs::write(&folds, list).unwrap();
    let mut req = request(DatasetKind::Oulu, raw.path(), caches.path(), models);
    req.fold_list = Some(folds);
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    assert_eq!((s.seen, s.cached), (7, 6), "{s:?}");
    assert_eq!(s.failed.get(reason::UNKNOWN_CLASS), Some(&1));
    let cov = s.folds.as_ref().unwrap();
    assert_eq!(cov.listed, 6);
    assert_eq!(cov.missing, vec!["P009/Fear".to_string()]);
    let cache = Cache::open(&out.dir).unwrap();
    assert_eq!(cache.manifest().class_names.len(), 6);
    for r in cache.iter() {
        let m = r.unwrap().meta;
        let want_fold = m.subject[1..].parse::<u16>().unwrap() - 1;
        assert_eq!(m.split, Split::Fold(want_fold), "{}", m.sample_id);
        assert_eq!(m.frame_indices, vec![0, 2, 3]);
    }
}

#[test]
fn fer2013_csv_bad_rows_become_failure_rows() {
    let Some(models) = models("fer2013_csv_bad_rows_become_failure_rows") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    let face48 = {
        let f = frame(48, 48, 48, 0, 0, false);
        f.data()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut csv = String::from("\u{feff}emotion,pixels,Usage\r\n");
    csv.push_str(&format!("3,{face48},Training\r\n"));
    csv.push_str(&format!("6,\"{face48}\",PublicTest\r\n"));
    csv.push_str(&format!("0,{face48},PrivateTest\r\n"));
    csv.push_str(&format!("9,{face48},Training\r\n")); // bad label
    csv.push_str(&format!("1,{face48} 7,Training\r\n")); // 2305 pixels
    csv.push_str(&format!("1,{face48},Validation\r\n")); // bad usage
    csv.push_str("1,1 2 3\r\n"); // missing field
    csv.push_str("\r\n"); // blank lines are not rows
    let path = dir.path().join("fer2013.csv");
    std::fs::write(&path, csv).unwrap();
    let req = request(DatasetKind::Fer2013, &path, caches.path(), models);
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    assert_eq!((s.seen, s.cached, s.failed_total()), (7, 3, 4));
    for r in [
        reason::BAD_LABEL,
        reason::BAD_PIXELS,
        reason::BAD_USAGE,
        reason::BAD_ROW,
    ] {
        assert_eq!(s.failed.get(r), Some(&1), "{r}: {s:?}");
    }
    let cache = Cache::open(&out.dir).unwrap();
    let splits: Vec<Split> = cache.iter().map(|r| r.unwrap().meta.split).collect();
    assert_eq!(splits, vec![Split::Train, Split::Validation, Split::Test]);
    let r = cache.get(0).unwrap();
    assert_ne!(r.meta.flags & shard::flags::WHOLE_FRAME_BOX, 0);
    assert_ne!(r.meta.flags & shard::flags::REPEATED_FRAME, 0);
    let failures = shard::tables::read_failures(&out.dir.join("failures.parquet")).unwrap();
    assert!(failures
        .iter()
        .any(|f| f.input == "fer2013.csv:5" && f.reason == reason::BAD_LABEL));
    // An empty file and a header without the columns are errors naming the file.
    std::fs::write(&path, "").unwrap();
    let e = prep::build(
        &request(
            DatasetKind::Fer2013,
            &path,
            caches.path(),
            req.models.clone(),
        ),
        &prep::build::NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("fer2013.csv") && e.contains("empty"), "{e}");
    std::fs::write(&path, "a,b,c\n").unwrap();
    let e = prep::build(
        &request(
            DatasetKind::Fer2013,
            &path,
            caches.path(),
            req.models.clone(),
        ),
        &prep::build::NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("emotion"), "{e}");
}

/// The batched whole-frame path (one landmark pass for many FER2013 rows) writes exactly the
/// records the one-by-one path writes.
#[test]
fn batched_whole_frame_processing_equals_one_by_one() {
    let Some(models) = models("batched_whole_frame_processing_equals_one_by_one") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("emotion,pixels,Usage\n");
    for k in 0..40 {
        let f = frame(48, 48, 44 + (k % 5), k as i64 % 3 - 1, 0, k % 2 == 0);
        let px = f
            .data()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        csv.push_str(&format!("{},{px},Training\n", k % 7));
    }
    let path = dir.path().join("fer2013.csv");
    std::fs::write(&path, csv).unwrap();
    let cfg = prep::PrepConfig::default();
    let inv = prep::datasets::fer2013::inventory(&path, None, cfg.slots()).unwrap();
    let faces = models.load(cfg.reinitialise).unwrap();
    let p = prep::pipeline::Processor {
        faces: &faces,
        config: &cfg,
        box_mode: prep::BoxMode::WholeFrame,
        root: &inv.root,
        dataset: "fer2013",
    };
    assert!(p.batches());
    let batched = p.process_batch(&inv.items, &vec![false; inv.items.len()]);
    assert_eq!(batched.len(), 40);
    for (item, b) in inv.items.iter().zip(batched) {
        let (one, b) = (p.process(item, false).unwrap().record, b.unwrap().record);
        assert_eq!(one.meta, b.meta, "{}", item.sample_id);
        assert_eq!(one.frame_len(), b.frame_len());
    }
}

/// The batched detection path (landmarks of many inputs' frames predicted together, in lock step
/// over the frames of sequences) gives exactly the results of the one-by-one path: records,
/// and failures with their stage, reason and detail, in Detect and DetectOrWholeFrame modes,
/// with tracking and with detection on every frame.
#[test]
fn batched_detection_processing_equals_one_by_one() {
    let Some(models) = models("batched_detection_processing_equals_one_by_one") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    // Faceless sequences: all frames blank, and a blank first frame before faces.
    let blank = face::GrayImage::filled(640, 490, 128);
    for f in 1..=5u32 {
        let dir = raw.path().join("cohn-kanade-images/S020");
        save_png(&blank, &dir.join(format!("001/S020_001_{f:08}.png")));
        let second = if f == 1 {
            blank.clone()
        } else {
            frame(640, 490, 440, f as i64, 0, false)
        };
        save_png(&second, &dir.join(format!("002/S020_002_{f:08}.png")));
    }
    for q in ["001", "002"] {
        write(
            &raw.path()
                .join(format!("Emotion/S020/{q}/S020_{q}_00000005_emotion.txt")),
            b"4",
        );
    }
    for (mode, every_frame) in [
        (prep::BoxMode::Detect, false),
        (prep::BoxMode::DetectOrWholeFrame, false),
        (prep::BoxMode::Detect, true),
    ] {
        let cfg = prep::PrepConfig {
            detect_every_frame: every_frame,
            ..prep::PrepConfig::default()
        };
        let fi = |n: usize| cfg.frame_indices(n);
        let inv = prep::datasets::ckplus::inventory(
            raw.path(),
            prep::datasets::ckplus::CkPlusOptions {
                frame_indices: &fi,
                include_neutral: false,
                dataset_landmarks: false,
            },
        )
        .unwrap();
        let faces = models.load(cfg.reinitialise).unwrap();
        let p = prep::pipeline::Processor {
            faces: &faces,
            config: &cfg,
            box_mode: mode,
            root: &inv.root,
            dataset: "ckplus",
        };
        assert!(p.batches());
        let batched = p.process_batch(&inv.items, &vec![false; inv.items.len()]);
        assert_eq!(batched.len(), inv.items.len());
        let (mut ok, mut failed) = (0, 0);
        for (item, b) in inv.items.iter().zip(batched) {
            let what = format!("{} ({mode:?}, every frame {every_frame})", item.sample_id);
            match (p.process(item, false), b) {
                (Ok(one), Ok(b)) => {
                    assert_eq!(one.record.meta, b.record.meta, "{what}");
                    assert_eq!(one.record.frame_len(), b.record.frame_len(), "{what}");
                    ok += 1;
                }
                (Err(one), Err(b)) => {
                    assert_eq!(
                        (&one.stage, &one.reason, &one.detail),
                        (&b.stage, &b.reason, &b.detail),
                        "{what}"
                    );
                    failed += 1;
                }
                (one, b) => panic!("{what}: one by one {:?}, batched {:?}", one.err(), b.err()),
            }
        }
        // Both outcomes occur: four faces (+ the half-blank sequence with the whole-frame
        // fallback), and the decode failure (+ the faceless sequences without it).
        assert!(ok >= 4 && failed >= 1, "{mode:?}: {ok} ok, {failed} failed");
    }
}

/// `--dataset ferplus` end to end on known-answer rows: majority (the default) and plurality keep
/// the rows and labels their rules give, the rule is part of the cache key (two caches), the
/// other rows are counted as excluded (`ferplus_no_majority`), and the modes that need the vote
/// distribution are refused before anything is read.
#[test]
fn ferplus_rules_pick_rows_labels_and_cache_key() {
    let Some(models) = models("ferplus_rules_pick_rows_labels_and_cache_key") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    let face48 = frame(48, 48, 48, 0, 0, false)
        .data()
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    // (votes, label under majority, label under plurality); None = excluded.
    let rows: [([u32; 10], Option<u16>, Option<u16>); 5] = [
        ([0, 9, 1, 0, 0, 0, 0, 0, 0, 0], Some(1), Some(1)),
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], None, Some(0)),
        ([6, 0, 1, 1, 0, 0, 0, 0, 2, 0], Some(0), Some(0)),
        ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None, None),
        ([0, 2, 0, 0, 0, 0, 0, 0, 0, 8], None, None),
    ];
    let mut csv = String::from("emotion,pixels,Usage\n");
    let mut plus = String::from(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n",
    );
    for (i, (votes, _, _)) in rows.iter().enumerate() {
        csv.push_str(&format!("3,{face48},Training\n"));
        let v: Vec<String> = votes.iter().map(|x| x.to_string()).collect();
        plus.push_str(&format!("Training,fer{i:07}.png,{}\n", v.join(",")));
    }
    let path = dir.path().join("fer2013.csv");
    std::fs::write(&path, csv).unwrap();
    std::fs::write(dir.path().join("fer2013new.csv"), plus).unwrap();
    let mut dirs = Vec::new();
    for (mode, pick) in [
        (prep::FerPlusMode::Majority, 1usize),
        (prep::FerPlusMode::Plurality, 2),
    ] {
        let mut req = request(DatasetKind::Ferplus, &path, caches.path(), models.clone());
        req.ferplus_mode = mode;
        let out = prep::build(&req, &prep::build::NoProgress).unwrap();
        let want: BTreeMap<String, u16> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let label = if pick == 1 { r.1 } else { r.2 };
                label.map(|l| (format!("ferplus/r{i:06}"), l))
            })
            .collect();
        let cache = Cache::open(&out.dir).unwrap();
        let mut votes = BTreeMap::new();
        let got: BTreeMap<String, u16> = cache
            .iter()
            .map(|r| {
                let m = r.unwrap().meta;
                votes.insert(m.sample_id.clone(), m.ext.votes.clone());
                (m.sample_id, m.label)
            })
            .collect();
        assert_eq!(got, want, "{mode:?}");
        // Every kept sample stores its row's 10 vote counts (format 1.1).
        for (id, v) in &votes {
            let row: usize = id.trim_start_matches("ferplus/r").parse().unwrap();
            let want: Vec<u16> = rows[row].0.iter().map(|&x| x as u16).collect();
            assert_eq!(v, &want, "{id}");
        }
        let s = &out.summary;
        assert!(s.adds_up(), "{s:?}");
        assert_eq!(
            s.excluded
                .get(reason::FERPLUS_NO_MAJORITY)
                .copied()
                .unwrap_or(0),
            (rows.len() - want.len()) as u64,
            "{mode:?}: {s:?}"
        );
        dirs.push(out.dir);
    }
    // The soft modes build too (their rows, labels = the distribution's first maximum, as the
    // unit tests pin), each with its own key.
    for mode in [
        prep::FerPlusMode::Probability,
        prep::FerPlusMode::Crossentropy,
        prep::FerPlusMode::MultiTarget,
    ] {
        let mut req = request(DatasetKind::Ferplus, &path, caches.path(), models.clone());
        req.ferplus_mode = mode;
        let out = prep::build(&req, &prep::build::NoProgress).unwrap();
        let want: BTreeMap<String, u16> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                shard::votes::ferplus_target(&r.0, mode)
                    .ok()
                    .map(|t| (format!("ferplus/r{i:06}"), t.label))
            })
            .collect();
        let got: BTreeMap<String, u16> = Cache::open(&out.dir)
            .unwrap()
            .iter()
            .map(|r| {
                let m = r.unwrap().meta;
                assert_eq!(m.ext.votes.len(), 10);
                (m.sample_id, m.label)
            })
            .collect();
        assert_eq!(got, want, "{mode:?}");
        let key = &out.manifest.key_ingredients["config"]["ferplus_mode"];
        assert_eq!(key, mode.name(), "the rule is in the key ingredients");
        dirs.push(out.dir);
    }
    let distinct: std::collections::BTreeSet<_> = dirs.iter().collect();
    assert_eq!(distinct.len(), 5, "the rule must be part of the cache key");
}

/// RAF-DB as distributed: the list file's labels 1–7 and train/test names, the original images
/// with the dataset's boxes (a face too small for the detector is found through its box), images
/// without a box file detected, and every malformed entry a failure row. Then the common
/// re-packaging `train|test/<1..7>/`.
#[test]
fn rafdb_layouts_build_with_the_dataset_boxes() {
    let Some(models) = models("rafdb_layouts_build_with_the_dataset_boxes") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path();
    // A 60 px face on a 640×480 canvas: below the detector's smallest face (20 % of 480).
    let (w, h, side) = (640usize, 480usize, 60usize);
    let small_box = astronaut_box_in_frame(&models, w, h, side);
    save_jpeg(
        &frame(w, h, side, 0, 0, false),
        &root.join("Image/original/train_00001.jpg"),
    );
    write(
        &root.join("Annotation/boundingbox/train_00001_boundingbox.txt"),
        format!(
            "{} {} {} {}\n",
            small_box[0], small_box[1], small_box[2], small_box[3]
        )
        .as_bytes(),
    );
    save_jpeg(
        &frame(640, 480, 400, 0, 0, false),
        &root.join("Image/original/train_00002.jpg"),
    );
    save_jpeg(
        &frame(640, 480, 400, 5, 0, true),
        &root.join("Image/original/test_00001.jpg"),
    );
    write(
        &root.join("Annotation/boundingbox/test_00001_boundingbox.txt"),
        b"12 7 nan\n",
    );
    save_jpeg(
        &frame(640, 480, 400, 0, 5, false),
        &root.join("Image/original/test_00002.jpg"),
    );
    write(
        &root.join("EmoLabel/list_patition_label.txt"),
        b"train_00001.jpg 4\ntrain_00002.jpg 1\ntest_00001.jpg 7\ntest_00002.jpg 9\n\
          test_00003.jpg 3\nhello\n",
    );
    let caches = tempfile::tempdir().unwrap();
    let req = request(DatasetKind::Rafdb, root, caches.path(), models.clone());
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    assert_eq!((s.seen, s.cached), (6, 2), "{s:?}");
    for r in [
        reason::BAD_BOX,
        reason::BAD_LABEL,
        reason::UNREADABLE,
        reason::BAD_ROW,
    ] {
        assert_eq!(s.failed.get(r), Some(&1), "{r}: {s:?}");
    }
    let cache = Cache::open(&out.dir).unwrap();
    assert_eq!(cache.manifest().class_names[3], "happiness");
    assert_eq!(cache.manifest().extra["recipe"]["dataset_boxes"], true);
    let recs: BTreeMap<String, shard::SampleMeta> = cache
        .iter()
        .map(|r| {
            let m = r.unwrap().meta;
            (m.sample_id.clone(), m)
        })
        .collect();
    let boxed = &recs["rafdb/train_00001"];
    assert_eq!((boxed.label, boxed.split), (3, Split::Train));
    assert_eq!(boxed.detector, "dataset_box");
    assert_ne!(boxed.flags & shard::flags::DATASET_BOX, 0);
    let b = boxed.ext.frames[0].face_box.unwrap();
    assert_eq!(b, small_box.map(|v| v.round() as i32));
    // The landmarks were found in the box: their centre lies inside it.
    let n = boxed.landmarks[0].len() as f32;
    let cx = boxed.landmarks[0].iter().map(|p| p[0]).sum::<f32>() / n;
    assert!(
        (b[0] as f32..=b[2] as f32).contains(&cx),
        "{cx} outside {b:?}"
    );
    let detected = &recs["rafdb/train_00002"];
    assert_eq!(detected.label, 0);
    assert_eq!(detected.flags & shard::flags::DATASET_BOX, 0);

    // dataset_boxes = false: the small face must be detected, is not, and RAF-DB's default box
    // mode (detect, else the whole frame) takes the whole 640×480 canvas as its box.
    let mut no_boxes = req.clone();
    no_boxes.config.dataset_boxes = false;
    let out = prep::build(&no_boxes, &prep::build::NoProgress).unwrap();
    assert_ne!(out.manifest.key, cache.manifest().key);
    assert_eq!(out.summary.cached, 2, "{:?}", out.summary);
    let m = Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| r.unwrap().meta)
        .find(|m| m.sample_id == "rafdb/train_00001")
        .unwrap();
    assert_ne!(m.flags & shard::flags::WHOLE_FRAME_BOX, 0);
    assert_eq!(m.ext.frames[0].face_box, Some([0, 0, 639, 479]));
    assert_eq!(out.manifest.extra["recipe"].get("dataset_boxes"), None);

    // The re-packaging: train|test/<1..7>/.
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path();
    save_jpeg(
        &frame(100, 100, 100, 0, 0, false),
        &root.join("train/4/train_00001_aligned.jpg"),
    );
    save_jpeg(
        &frame(100, 100, 100, 0, 0, true),
        &root.join("test/7/test_00001_aligned.jpg"),
    );
    save_jpeg(
        &frame(100, 100, 100, 0, 0, true),
        &root.join("train/9/x.jpg"),
    );
    write(&root.join("README.txt"), b"RAF-DB");
    let out = prep::build(
        &request(DatasetKind::Rafdb, root, caches.path(), models),
        &prep::build::NoProgress,
    )
    .unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    assert_eq!((s.seen, s.cached), (4, 2), "{s:?}");
    assert_eq!(s.failed.get(reason::UNKNOWN_CLASS), Some(&1));
    assert_eq!(s.excluded.get(reason::NOT_AN_IMAGE), Some(&1));
    let got: BTreeMap<String, (u16, Split)> = Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| {
            let m = r.unwrap().meta;
            (m.sample_id, (m.label, m.split))
        })
        .collect();
    let want: BTreeMap<String, (u16, Split)> = [
        (
            "rafdb/test/test_00001_aligned".to_string(),
            (6, Split::Test),
        ),
        (
            "rafdb/train/train_00001_aligned".to_string(),
            (3, Split::Train),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

/// ExpW: one sample per listed face, cut in its listed box (two faces of one photo: two samples,
/// in one fold), and malformed lines, boxes, labels and missing photos as failure rows.
#[test]
fn expw_one_sample_per_listed_face() {
    let Some(models) = models("expw_one_sample_per_listed_face") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path();
    // Two 300×480 halves, each with the astronaut at 250 px, side by side.
    let (hw, h, side) = (300usize, 480usize, 250usize);
    let left = frame(hw, h, side, 0, 0, false);
    let right = frame(hw, h, side, 0, 0, true);
    let mut px = Vec::with_capacity(2 * hw * h);
    for y in 0..h {
        px.extend_from_slice(&left.data()[y * hw..(y + 1) * hw]);
        px.extend_from_slice(&right.data()[y * hw..(y + 1) * hw]);
    }
    let photo = face::GrayImage::new(2 * hw, h, px).unwrap();
    save_jpeg(&photo, &root.join("image/origin/happy_crowd_1.jpg"));
    let [l, t, r, b] = astronaut_box_in_frame(&models, hw, h, side).map(|v| v as i64);
    // The mirrored face's box: mirrored columns, shifted by the half's width.
    let (ml, mr) = (
        hw as i64 + (hw as i64 - 1 - r),
        hw as i64 + (hw as i64 - 1 - l),
    );
    let list = format!(
        "happy_crowd_1.jpg 0 {t} {l} {r} {b} 55.1 3\n\
         happy_crowd_1.jpg 1 {t} {ml} {mr} {b} 48.0 5\n\
         happy_crowd_1.jpg 2 {t} 50 10 {b} 9.0 3\n\
         missing.jpg 0 1 1 40 40 9.0 0\n\
         happy_crowd_1.jpg 3 {t} {l} {r} {b} 9.0 8\n\
         truncated line\n"
    );
    write(&root.join("label/label.lst"), list.as_bytes());
    let caches = tempfile::tempdir().unwrap();
    let mut req = request(DatasetKind::Expw, root, caches.path(), models);
    req.config.folds = 2;
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let st = &out.summary;
    assert!(st.adds_up(), "{st:?}");
    assert_eq!((st.seen, st.cached), (6, 2), "{st:?}");
    for why in [
        reason::BAD_BOX,
        reason::UNREADABLE,
        reason::BAD_LABEL,
        reason::BAD_ROW,
    ] {
        assert_eq!(st.failed.get(why), Some(&1), "{why}: {st:?}");
    }
    let recs: Vec<shard::SampleMeta> = Cache::open(&out.dir)
        .unwrap()
        .iter()
        .map(|r| r.unwrap().meta)
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].sample_id, "expw/happy_crowd_1/0");
    assert_eq!((recs[0].label, recs[1].label), (3, 5));
    assert_eq!(recs[0].split, recs[1].split, "one photo, one fold");
    for (m, (bl, br)) in recs.iter().zip([(l, r), (ml, mr)]) {
        assert_eq!(m.detector, "dataset_box");
        let fb = m.ext.frames[0].face_box.unwrap();
        assert_eq!(fb, [bl as i32, t as i32, br as i32, b as i32]);
        // Each face's landmarks lie in its own half.
        let n = m.landmarks[0].len() as f32;
        let cx = m.landmarks[0].iter().map(|p| p[0]).sum::<f32>() / n;
        assert!(
            (bl as f32..=br as f32).contains(&cx),
            "{}: {cx}",
            m.sample_id
        );
    }
}

/// AffectNet: the file lists' rows with the dataset's 68 landmarks used as they are (flag
/// `DATASET_LANDMARKS`), its box recorded and valence / arousal stored; expressions 8–10 excluded
/// with their reasons; validation.csv as the test split; the 7-class protocol excluding contempt.
#[test]
fn affectnet_lists_landmarks_valence_and_protocols() {
    let Some(models) = models("affectnet_lists_landmarks_valence_and_protocols") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path();
    let faces = models.load(false).unwrap();
    let img = frame(320, 320, 260, 0, 0, false);
    let found = faces.detect(&img, None).into_iter().next().unwrap();
    let lm: Vec<String> = found
        .landmarks
        .precise
        .iter()
        .flat_map(|p| [format!("{:.2}", p[0]), format!("{:.2}", p[1])])
        .collect();
    let lm = lm.join(";");
    for name in ["100/a.jpg", "100/b.jpg", "200/c.jpg", "200/d.jpg"] {
        save_jpeg(&img, &root.join("Manually_Annotated_Images").join(name));
    }
    let header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n";
    write(
        &root.join("Manually_Annotated_file_lists/training.csv"),
        format!(
            "{header}100/a.jpg,30,40,250,240,{lm},1,0.75,0.125\n\
             100/b.jpg,30,40,250,240,{lm},9,0,0\n\
             100/x.jpg,30,40,250,240,1;2;3,1,0,0\n"
        )
        .as_bytes(),
    );
    write(
        &root.join("Manually_Annotated_file_lists/validation.csv"),
        format!(
            "{header}200/c.jpg,30,40,250,240,{lm},7,-0.5,0.25\n\
             200/d.jpg,30,40,250,240,{lm},10,0,0\n"
        )
        .as_bytes(),
    );
    let caches = tempfile::tempdir().unwrap();
    let req = request(DatasetKind::Affectnet, root, caches.path(), models);
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    assert_eq!((s.seen, s.cached), (5, 2), "{s:?}");
    assert_eq!(s.excluded.get(reason::AFFECTNET_UNCERTAIN), Some(&1));
    assert_eq!(s.excluded.get(reason::AFFECTNET_NO_FACE), Some(&1));
    assert_eq!(s.failed.get(reason::BAD_LANDMARKS), Some(&1));
    let cache = Cache::open(&out.dir).unwrap();
    assert_eq!(cache.manifest().class_names.len(), 8);
    assert_eq!(cache.manifest().extra["recipe"]["dataset_landmarks"], true);
    let recs: BTreeMap<String, shard::SampleMeta> = cache
        .iter()
        .map(|r| {
            let m = r.unwrap().meta;
            (m.sample_id.clone(), m)
        })
        .collect();
    let a = &recs["affectnet/100/a"];
    assert_eq!((a.label, a.split), (1, Split::Train));
    assert_ne!(a.flags & shard::flags::DATASET_LANDMARKS, 0);
    assert_eq!(a.ext.valence_arousal, Some([0.75, 0.125]));
    assert_eq!(a.ext.frames[0].face_box, Some([30, 40, 279, 279]));
    let want: Vec<[f32; 2]> = found
        .landmarks
        .precise
        .iter()
        .map(|p| {
            [
                format!("{:.2}", p[0]).parse().unwrap(),
                format!("{:.2}", p[1]).parse().unwrap(),
            ]
        })
        .collect();
    assert_eq!(a.landmarks[0], want, "the dataset's landmarks, as given");
    let c = &recs["affectnet/200/c"];
    assert_eq!((c.label, c.split), (7, Split::Test));
    assert_eq!(c.ext.valence_arousal, Some([-0.5, 0.25]));

    // 7 classes: contempt excluded, another key.
    let mut seven = req.clone();
    seven.config.affectnet_classes = 7;
    let out7 = prep::build(&seven, &prep::build::NoProgress).unwrap();
    assert_ne!(out7.manifest.key, out.manifest.key);
    assert_eq!(out7.summary.cached, 1);
    assert_eq!(
        out7.summary.excluded.get(reason::CONTEMPT_EXCLUDED),
        Some(&1)
    );
    assert_eq!(out7.manifest.class_names.len(), 7);
}

/// Every committed prep config (manifests/prep/) parses and passes the checks.
#[test]
fn committed_prep_configs_parse() {
    let dir = repo_root().join("manifests/prep");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            prep::PrepConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
    let seven = prep::PrepConfig::load(&dir.join("affectnet-7class.toml")).unwrap();
    assert_eq!(seven.affectnet_classes, 7);
}
