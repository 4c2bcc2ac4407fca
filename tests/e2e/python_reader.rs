//! `python/fer_shard` (the Python reader written from FORMAT.md) against the Rust reader, on the
//! three prep-built fixture caches: every record's every field and plane, landmarks.parquet read
//! with pyarrow, the torch Dataset, and damage detection.

use super::{fixture, repo};
use std::path::{Path, PathBuf};

/// The records of a cache as the Rust reader sees them, in the JSON shape the Python script
/// prints (landmarks as f32 bit patterns, planes as name, height, width and blake3).
fn rust_view(dir: &Path) -> serde_json::Value {
    let cache = shard::Cache::open(dir).unwrap();
    let records: Vec<serde_json::Value> = cache
        .iter()
        .map(|r| {
            let r = r.unwrap();
            let m = &r.meta;
            let planes: Vec<serde_json::Value> = r
                .planes()
                .map(|(info, data)| {
                    serde_json::json!([
                        info.name,
                        info.height,
                        info.width,
                        blake3::hash(data).to_hex().to_string()
                    ])
                })
                .collect();
            serde_json::json!({
                "sample_id": m.sample_id,
                "dataset": m.dataset,
                "subject": m.subject,
                "sequence": m.sequence,
                "source": m.source,
                "frame_indices": m.frame_indices,
                "label": m.label,
                "split": m.split.kind(),
                "fold": m.split.fold(),
                "landmark_bits": m.landmarks.iter().map(|f| f.iter().map(|p| [p[0].to_bits(), p[1].to_bits()]).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "detector": m.detector,
                "flags": m.flags,
                "planes": planes,
                "frames": m.ext.frames.iter().map(|f| serde_json::json!([f.face_box, f.detector, f.flags])).collect::<Vec<_>>(),
                "votes": m.ext.votes,
                "valence_arousal": m.ext.valence_arousal.map(|[v, a]| [v.to_bits(), a.to_bits()]),
            })
        })
        .collect();
    serde_json::json!({ "records": records })
}

const SCRIPT: &str = r#"
import json, shutil, struct, sys, tempfile, os
import numpy as np
import fer_shard

cache = fer_shard.Cache(sys.argv[1])
n = cache.verify()
records = []
for rec in cache:
    records.append({
        "sample_id": rec.sample_id, "dataset": rec.dataset, "subject": rec.subject,
        "sequence": rec.sequence, "source": rec.source, "frame_indices": rec.frame_indices,
        "label": rec.label, "split": rec.split, "fold": rec.fold,
        "landmark_bits": rec.landmarks.view(np.uint32).tolist(),
        "detector": rec.detector, "flags": rec.flags,
        "planes": [[k, int(v.shape[0]), int(v.shape[1]), __import__("blake3").blake3(v.tobytes()).hexdigest()]
                   for k, v in rec.planes.items()],
        "frames": [[list(f.face_box) if f.face_box is not None else None, f.detector, f.flags] for f in rec.frames],
        "votes": rec.votes,
        "valence_arousal": None if rec.valence_arousal is None else
            [int(np.array(x, dtype=np.float32).view(np.uint32)) for x in rec.valence_arousal],
    })
assert n == len(records) == len(cache)

# landmarks.parquet through pyarrow (what pandas reads it with) equals the records.
lm = cache.landmarks().to_pydict()
rows = len(lm["sample_id"])
for r in range(rows):
    rec = cache[lm["global_index"][r]]
    k = lm["slot"][r]
    assert lm["sample_id"][r] == rec.sample_id
    xs = np.array([lm[f"x_{i}"][r] for i in range(68)], dtype=np.float32)
    ys = np.array([lm[f"y_{i}"][r] for i in range(68)], dtype=np.float32)
    assert (xs.view(np.uint32) == rec.landmarks[k, :, 0].view(np.uint32)).all(), (r, "x")
    assert (ys.view(np.uint32) == rec.landmarks[k, :, 1].view(np.uint32)).all(), (r, "y")
    box = [lm[c][r] for c in ("box_left", "box_top", "box_right", "box_bottom")]
    fb = rec.frames[k].face_box
    assert box == (list(fb) if fb is not None else [None] * 4), (r, box, fb)
    assert lm["detector"][r] == rec.frames[k].detector and lm["flags"][r] == rec.frames[k].flags
assert rows == sum(len(r.landmarks) for r in cache)

# The torch Dataset.
from fer_shard.torch import ShardDataset
ds = ShardDataset(cache, planes=("face", "mouth/0"))
assert len(ds) == len(cache)
(face, mouth), label = ds[len(ds) - 1]
assert face.shape[0] == 1 and float(face.max()) <= 1.0 and label == cache[len(ds) - 1].label
assert (face[0].numpy() * 255).round().astype(np.uint8).tobytes() == cache[len(ds) - 1].planes["face"].tobytes()

# Damage: one flipped byte inside a record is an error naming the shard, not data.
with tempfile.TemporaryDirectory() as t:
    copy = os.path.join(t, "c")
    shutil.copytree(sys.argv[1], copy)
    shard = os.path.join(copy, cache.manifest["shards"][0]["file"])
    data = bytearray(open(shard, "rb").read())
    data[40] ^= 0x5A
    open(shard, "wb").write(bytes(data))
    bad = fer_shard.Cache(copy)
    try:
        bad[0]
        raise SystemExit("damaged record was read")
    except fer_shard.CacheError as e:
        assert "shard-00000.fsh" in str(e), e
    try:
        bad.verify()
        raise SystemExit("damaged cache verified")
    except fer_shard.CacheError:
        pass

print(json.dumps({"records": records}))
"#;

#[test]
fn python_reader_decodes_every_record_as_the_rust_reader() {
    let Some(fx) = fixture() else { return };
    let Some(py) = testkit::venv_python("python_reader_decodes_every_record_as_the_rust_reader")
    else {
        return;
    };
    // Plus a cache with every appended field set (votes, valence / arousal, a box-less slot).
    let extra = tempfile::tempdir().unwrap();
    let extra_dir = appended_fields_cache(extra.path());
    let dirs = [
        fx.ck.dir.clone(),
        fx.ou.dir.clone(),
        fx.fer.dir.clone(),
        extra_dir,
    ];
    for dir in &dirs {
        let o = std::process::Command::new(&py)
            .args(["-c", SCRIPT])
            .arg(dir)
            .env("PYTHONPATH", repo().join("python"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success(),
            "{}: {stderr}\n(missing modules? `make setup` installs numpy zstandard xxhash blake3 pyarrow)",
            dir.display()
        );
        let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let want = rust_view(dir);
        let (g, w) = (
            got["records"].as_array().unwrap(),
            want["records"].as_array().unwrap(),
        );
        assert_eq!(g.len(), w.len());
        assert!(!w.is_empty());
        for (a, b) in g.iter().zip(w) {
            assert_eq!(a, b, "{}", dir.display());
        }
    }
}

/// `pip install ./python` works (offline, with the .venv's setuptools).
#[test]
fn python_package_installs_with_pip() {
    let Some(py) = testkit::venv_python("python_package_installs_with_pip") else {
        return;
    };
    let target = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
        ])
        .arg(target.path())
        .arg(repo().join("python"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(target.path().join("fer_shard/reader.py").exists());
    let o = std::process::Command::new(&py)
        .args([
            "-c",
            "import fer_shard, fer_shard.torch; print(fer_shard.__version__)",
        ])
        .env("PYTHONPATH", target.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0.1.0");
}

/// Three records with 68 landmarks, a face and a mouth plane, and the appended (1.1) fields set
/// in every combination the readers must handle: votes, valence / arousal, a slot without a box.
fn appended_fields_cache(dir: &Path) -> PathBuf {
    let key = shard::CacheKey::compute(
        &serde_json::json!({"appended": 1}),
        &std::collections::BTreeMap::new(),
        &shard::SourceFingerprint {
            files: 0,
            bytes: 0,
            digest: "x".into(),
        },
    )
    .unwrap();
    let out = dir.join(shard::cache_dir_name("appended", &key));
    let mut w = shard::CacheWriter::create(
        &out,
        "appended",
        &key,
        (0..8).map(|c| format!("c{c}")).collect(),
        shard::CacheWriterOptions::default(),
    )
    .unwrap();
    for i in 0..3u16 {
        let face: Vec<u8> = (0..64).map(|v| (v * 3 + i as usize) as u8).collect();
        let mouth: Vec<u8> = (0..8).map(|v| (v * 7 + i as usize) as u8).collect();
        let meta = shard::SampleMeta {
            sample_id: format!("x/{i}"),
            dataset: "affectnet".into(),
            subject: String::new(),
            sequence: None,
            source: vec![format!("img/{i}.jpg")],
            frame_indices: vec![0],
            label: i,
            split: shard::Split::Test,
            landmarks: vec![(0..68).map(|k| [k as f32 + 0.5, i as f32 - 0.25]).collect()],
            detector: "dataset_landmarks".into(),
            flags: shard::flags::DATASET_LANDMARKS,
            planes: vec![
                shard::PlaneInfo::new("face", 8, 8),
                shard::PlaneInfo::new("mouth/0", 2, 4),
            ],
            ext: shard::MetaExt {
                frames: vec![shard::FrameInfo {
                    face_box: (i != 1).then_some([-3, 4, 50 + i as i32, 60]),
                    detector: "dataset_landmarks".into(),
                    flags: shard::flags::DATASET_LANDMARKS,
                }],
                votes: if i == 0 {
                    vec![0, 7, 1, 0, 0, 0, 2, 0, 0, 0]
                } else {
                    Vec::new()
                },
                valence_arousal: (i != 2).then_some([0.5 - i as f32, -0.125]),
            },
        };
        w.push(&shard::EncodedRecord::encode(meta, &[&face, &mouth], 3).unwrap())
            .unwrap();
    }
    w.finish(serde_json::json!({})).unwrap();
    out
}
