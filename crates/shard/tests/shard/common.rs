use shard::{
    CacheKey, CacheWriter, CacheWriterOptions, EncodedRecord, PlaneInfo, SampleMeta,
    SourceFingerprint, Split,
};
use std::collections::BTreeMap;
use std::path::Path;

pub fn key(tag: &str) -> CacheKey {
    let src = SourceFingerprint {
        files: 1,
        bytes: 2,
        digest: "00".into(),
    };
    CacheKey::compute(&tag, &BTreeMap::new(), &src).unwrap()
}

pub fn classes() -> Vec<String> {
    [
        "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A small deterministic sample: two frames, four planes.
pub fn sample(i: u32) -> (SampleMeta, Vec<Vec<u8>>) {
    let planes_info = vec![
        PlaneInfo::new("face", 8, 8),
        PlaneInfo::new("eyes/0", 3, 8),
        PlaneInfo::new("nose/0", 4, 2),
        PlaneInfo::new("mouth/0", 2, 4),
    ];
    let planes = planes_info
        .iter()
        .enumerate()
        .map(|(k, p)| {
            (0..p.len())
                .map(|j| (j as u32 * 7 + k as u32 * 31 + i * 13) as u8)
                .collect()
        })
        .collect();
    let meta = SampleMeta {
        sample_id: format!("S{:03}/{:03}", 10 + i / 3, i % 3),
        dataset: "ckplus".into(),
        subject: format!("S{:03}", 10 + i / 3),
        sequence: Some(format!("{:03}", i % 3)),
        source: vec![format!("S{:03}/{:03}/a.png", 10 + i / 3, i % 3)],
        frame_indices: vec![0, 5, 9],
        label: (i % 7) as u16,
        split: if i.is_multiple_of(2) {
            Split::Fold((i % 10) as u16)
        } else {
            Split::Train
        },
        landmarks: vec![(0..68).map(|p| [p as f32 * 1.5, i as f32 + 0.25]).collect()],
        detector: "haar_frontalface_default".into(),
        flags: shard::flags::TRACKED,
        planes: planes_info,
        ext: shard::MetaExt {
            frames: vec![shard::FrameInfo {
                face_box: Some([3, 4, 60 + i as i32, 61 + i as i32]),
                detector: "haar_frontalface_default".into(),
                flags: shard::flags::TRACKED,
            }],
            votes: if i.is_multiple_of(2) {
                vec![0, 7, 1, 0, 0, 0, 2, 0, 0, 0]
            } else {
                Vec::new()
            },
            valence_arousal: (!i.is_multiple_of(2)).then_some([0.25, -0.5 - i as f32 / 8.0]),
        },
    };
    (meta, planes)
}

pub fn encode(meta: &SampleMeta, planes: &[Vec<u8>]) -> EncodedRecord {
    let refs: Vec<&[u8]> = planes.iter().map(|p| p.as_slice()).collect();
    EncodedRecord::encode(meta.clone(), &refs, 3).unwrap()
}

/// Writes `n` samples of [`sample`] into `dir`, rolling shards at `shard_bytes`.
pub fn write_cache(dir: &Path, n: u32, shard_bytes: u64) -> shard::Manifest {
    let opts = CacheWriterOptions {
        target_shard_bytes: shard_bytes,
        ..Default::default()
    };
    let mut w = CacheWriter::create(dir, "test", &key("t"), classes(), opts).unwrap();
    for i in 0..n {
        let (m, p) = sample(i);
        w.push(&encode(&m, &p)).unwrap();
    }
    w.finish(serde_json::json!({"note": "test"})).unwrap()
}
