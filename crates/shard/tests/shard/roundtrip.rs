use crate::common::*;
use proptest::prelude::*;
use shard::{
    Cache, CacheWriter, CacheWriterOptions, EncodedRecord, PlaneInfo, SampleMeta, ShardError, Split,
};

fn arb_split() -> impl Strategy<Value = Split> {
    prop_oneof![
        Just(Split::Train),
        Just(Split::Validation),
        Just(Split::Test),
        any::<u16>().prop_map(Split::Fold),
    ]
}

prop_compose! {
    fn arb_sample()(
        sample_id in "\\PC{0,20}",
        dataset in "[a-z0-9+]{1,10}",
        subject in "\\PC{0,8}",
        sequence in proptest::option::of("[0-9]{1,4}"),
        source in proptest::collection::vec("\\PC{0,16}", 0..4),
        frame_indices in proptest::collection::vec(any::<u32>(), 0..4),
        label in 0u16..7,
        split in arb_split(),
        landmarks in proptest::collection::vec(
            proptest::collection::vec(any::<[f32; 2]>(), 0..=68), 0..3),
        detector in "[a-z_]{0,24}",
        flags in 0u32..=shard::flags::KNOWN,
        shapes in proptest::collection::vec((0u16..40, 0u16..40), 0..6),
        seed in any::<u8>(),
        frames in proptest::collection::vec(
            (proptest::option::of(proptest::array::uniform4(-10_000i32..10_000)), "[a-z_]{0,12}",
             0u32..=shard::flags::KNOWN), 0..4),
        votes in proptest::collection::vec(any::<u16>(), 0..11),
        valence_arousal in proptest::option::of(proptest::array::uniform2(-1f32..1.0)),
    ) -> (SampleMeta, Vec<Vec<u8>>) {
        let planes: Vec<PlaneInfo> = shapes.iter().enumerate()
            .map(|(k, (h, w))| PlaneInfo::new(format!("p{k}"), *h, *w)).collect();
        let data = planes.iter().enumerate()
            .map(|(k, p)| (0..p.len()).map(|j| (j as u8).wrapping_mul(seed).wrapping_add(k as u8)).collect())
            .collect();
        (SampleMeta { sample_id, dataset, subject, sequence, source, frame_indices, label, split,
            landmarks, detector, flags, planes,
            ext: shard::MetaExt {
                frames: frames.into_iter()
                    .map(|(face_box, detector, flags)| shard::FrameInfo { face_box, detector, flags })
                    .collect(),
                votes,
                valence_arousal,
            } }, data)
    }
}

fn same_f32_bits(a: &SampleMeta, b: &SampleMeta) -> bool {
    // NaN != NaN, so compare landmarks bit for bit and everything else with ==.
    let bits = |m: &SampleMeta| -> Vec<Vec<[u32; 2]>> {
        m.landmarks
            .iter()
            .map(|f| f.iter().map(|p| [p[0].to_bits(), p[1].to_bits()]).collect())
            .collect()
    };
    let strip = |m: &SampleMeta| SampleMeta {
        landmarks: Vec::new(),
        ..m.clone()
    };
    bits(a) == bits(b) && strip(a) == strip(b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn roundtrip_arbitrary_records(samples in proptest::collection::vec(arb_sample(), 0..24),
                                   shard_bytes in 64u64..4096) {
        let dir = tempfile::tempdir().unwrap();
        let opts = CacheWriterOptions { target_shard_bytes: shard_bytes, ..Default::default() };
        let mut w = CacheWriter::create(dir.path(), "prop", &key("p"), classes(), opts).unwrap();
        for (m, p) in &samples {
            w.push(&encode(m, p)).unwrap();
        }
        let manifest = w.finish(serde_json::Value::Null).unwrap();
        prop_assert_eq!(manifest.samples, samples.len() as u64);

        let cache = Cache::open(dir.path()).unwrap();
        prop_assert_eq!(cache.len(), samples.len() as u64);
        // get(), the reusable reader, iteration and the parallel API all agree with the input.
        let mut reader = cache.reader().unwrap();
        for (i, (m, p)) in samples.iter().enumerate() {
            let rec = cache.get(i as u64).unwrap();
            prop_assert!(same_f32_bits(&rec.meta, m));
            let got: Vec<&[u8]> = rec.planes().map(|(_, d)| d).collect();
            let want: Vec<&[u8]> = p.iter().map(|v| v.as_slice()).collect();
            prop_assert_eq!(got, want);
            prop_assert!(same_f32_bits(&reader.read(i as u64).unwrap().meta, m));
        }
        let via_iter: Vec<String> = cache.iter().map(|r| r.unwrap().meta.sample_id).collect();
        let ids: Vec<String> = samples.iter().map(|(m, _)| m.sample_id.clone()).collect();
        prop_assert_eq!(&via_iter, &ids);
        let order: Vec<u64> = (0..samples.len() as u64).rev().collect();
        let par: Vec<String> = cache.par_decode(&order, |_, r| r.meta.sample_id.clone())
            .into_iter().map(|r| r.unwrap()).collect();
        let mut rev = ids.clone();
        rev.reverse();
        prop_assert_eq!(par, rev);
        // A cache with no sample is readable but never verifies: it is a failed build.
        prop_assert_eq!(cache.verify().unwrap().is_ok(), !samples.is_empty());
    }
}

/// The tables are streamed in row groups of `STREAM_BATCH_ROWS`; a table of several groups (and
/// a partial last one) reads back as one table, every row in order.
#[test]
fn streamed_table_of_several_row_groups_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.parquet");
    let n = 2 * shard::tables::STREAM_BATCH_ROWS + 17;
    let mut t = shard::tables::stream_samples(&path).unwrap();
    for i in 0..n {
        t.push(shard::SampleRow {
            global_index: i as u64,
            sample_id: format!("s{i:06}"),
            dataset: "d".into(),
            subject: format!("p{}", i % 13),
            label: (i % 7) as u16,
            class_name: format!("c{}", i % 7),
            split: "train".into(),
            fold: -1,
            shard: (i / 1000) as u32,
            index: (i % 1000) as u32,
            flags: i as u32 & 0xff,
        })
        .unwrap();
    }
    assert!(
        !path.exists(),
        "the table is under a temporary name until finished"
    );
    t.finish().unwrap();
    let ids = shard::tables::read_sample_ids(&path).unwrap();
    assert_eq!(ids.len(), n);
    assert!(ids
        .iter()
        .enumerate()
        .all(|(i, s)| *s == format!("s{i:06}")));
    let df = shard::tables::read_table(&path).unwrap();
    let gi = df.column("global_index").unwrap().u64().unwrap();
    assert_eq!(gi.get(n - 1), Some(n as u64 - 1));
    // An empty stream is an empty table with the columns.
    let empty = dir.path().join("landmarks.parquet");
    shard::tables::stream_landmarks(&empty)
        .unwrap()
        .finish()
        .unwrap();
    let df = shard::tables::read_table(&empty).unwrap();
    assert_eq!((df.height(), df.width()), (0, 5 + 2 * 68 + 6));
}

/// A slot with more points than `landmarks.parquet` has columns is refused before anything of the
/// record is written.
#[test]
fn record_with_more_landmarks_than_the_table_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        CacheWriter::create(dir.path(), "c", &key("c"), classes(), Default::default()).unwrap();
    let (mut m, p) = sample(0);
    m.landmarks = vec![vec![[1.0, 2.0]; 69]];
    match w.push(&encode(&m, &p)) {
        Err(ShardError::Encode { reason, .. }) => {
            assert!(reason.contains("69 landmarks"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.samples(), 0);
}

#[test]
fn counts_and_tables_match_records() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_cache(dir.path(), 30, 1000);
    assert!(m.shards.len() > 1, "small target size must roll shards");
    assert_eq!(m.samples, 30);
    assert_eq!(m.counts.by_split.values().sum::<u64>(), 30);
    assert_eq!(m.counts.by_class.values().sum::<u64>(), 30);
    assert_eq!(m.counts.by_subject.len(), 10);
    assert_eq!(m.counts.by_split["train"], 15);
    let df = shard::tables::read_table(&dir.path().join("samples.parquet")).unwrap();
    assert_eq!(df.height(), 30);
    assert_eq!(
        df.get_column_names()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        [
            "global_index",
            "sample_id",
            "dataset",
            "subject",
            "label",
            "class_name",
            "split",
            "fold",
            "shard",
            "index",
            "flags"
        ]
    );
    let failures = shard::tables::read_failures(&dir.path().join("failures.parquet")).unwrap();
    assert!(failures.is_empty());
}

#[test]
fn landmarks_table_has_one_row_per_slot_with_points_box_detector_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 6, 1000);
    let df = shard::tables::read_table(&dir.path().join("landmarks.parquet")).unwrap();
    // sample() has one landmark slot per record.
    assert_eq!(df.height(), 6);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names.len(), 5 + 2 * 68 + 4 + 2);
    assert_eq!(
        names[..5],
        ["global_index", "sample_id", "slot", "frame_index", "source"]
    );
    assert_eq!(names[5], "x_0");
    assert_eq!(names[5 + 67], "x_67");
    assert_eq!(names[5 + 68], "y_0");
    assert_eq!(
        names[5 + 2 * 68..],
        [
            "box_left",
            "box_top",
            "box_right",
            "box_bottom",
            "detector",
            "flags"
        ]
    );
    for i in 0..6u32 {
        let (m, _) = sample(i);
        let row = i as usize;
        let f32_at = |c: &str| df.column(c).unwrap().f32().unwrap().get(row).unwrap();
        let i32_at = |c: &str| df.column(c).unwrap().i32().unwrap().get(row).unwrap();
        for k in [0usize, 33, 67] {
            assert_eq!(f32_at(&format!("x_{k}")), m.landmarks[0][k][0]);
            assert_eq!(f32_at(&format!("y_{k}")), m.landmarks[0][k][1]);
        }
        let b = m.ext.frames[0].face_box.unwrap();
        assert_eq!(
            [
                i32_at("box_left"),
                i32_at("box_top"),
                i32_at("box_right"),
                i32_at("box_bottom")
            ],
            b
        );
        let s = df
            .column("sample_id")
            .unwrap()
            .str()
            .unwrap()
            .get(row)
            .unwrap()
            .to_string();
        assert_eq!(s, m.sample_id);
        let det = df
            .column("detector")
            .unwrap()
            .str()
            .unwrap()
            .get(row)
            .unwrap()
            .to_string();
        assert_eq!(det, m.ext.frames[0].detector);
        assert_eq!(
            df.column("flags").unwrap().u32().unwrap().get(row).unwrap(),
            shard::flags::TRACKED
        );
        assert_eq!(
            df.column("frame_index")
                .unwrap()
                .u32()
                .unwrap()
                .get(row)
                .unwrap(),
            m.frame_indices[0]
        );
    }
}

#[test]
fn failures_are_recorded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        CacheWriter::create(dir.path(), "f", &key("f"), classes(), Default::default()).unwrap();
    let (m, p) = sample(0);
    w.push(&encode(&m, &p)).unwrap();
    let row = shard::FailureRow {
        input: "S999/001/x.png".into(),
        stage: "detect".into(),
        reason: "no_face".into(),
        detail: "no cascade window passed".into(),
    };
    w.push_failure(row.clone());
    let manifest = w.finish(serde_json::Value::Null).unwrap();
    assert_eq!(
        (manifest.samples, manifest.failures, manifest.inputs_seen),
        (1, 1, 2)
    );
    let back = shard::tables::read_failures(&dir.path().join("failures.parquet")).unwrap();
    assert_eq!(back, vec![row]);
}

#[test]
fn plane_size_mismatch_is_an_encode_error() {
    let (m, mut p) = sample(1);
    p[0].pop();
    let refs: Vec<&[u8]> = p.iter().map(|v| v.as_slice()).collect();
    match EncodedRecord::encode(m, &refs, 3) {
        Err(ShardError::Encode { sample_id, reason }) => {
            assert_eq!(sample_id, "S010/001");
            assert!(reason.contains("face"), "{reason}");
        }
        other => panic!("expected Encode error, got {other:?}"),
    }
}

#[test]
fn label_outside_class_names_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = CacheWriter::create(
        dir.path(),
        "x",
        &key("x"),
        vec!["only".into()],
        Default::default(),
    )
    .unwrap();
    let (m, p) = sample(3); // label 3
    assert!(matches!(
        w.push(&encode(&m, &p)),
        Err(ShardError::Encode { .. })
    ));
}

#[test]
fn out_of_range_names_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), 3, 1 << 20);
    let cache = Cache::open(dir.path()).unwrap();
    match cache.get(3) {
        Err(ShardError::OutOfRange {
            index: 3,
            len: 3,
            cache: c,
        }) => assert_eq!(c, dir.path()),
        other => panic!("{other:?}"),
    }
}

/// A record whose payload is over the 16 MiB bulk-decompression limit takes the streaming path
/// (added when fuzzing showed that a damaged index could make the reader reserve 4 GiB) and still
/// reads back byte for byte.
#[test]
fn record_over_16_mib_streams_back_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.fsh");
    let (mut meta, _) = sample(0);
    meta.planes = vec![PlaneInfo::new("face", 4400, 4000)];
    let plane: Vec<u8> = (0..4400u32 * 4000)
        .map(|j| ((j % 251) ^ (j >> 13)) as u8)
        .collect();
    assert!(plane.len() > 16 << 20);
    let mut w = shard::ShardWriter::create(&path, 0).unwrap();
    w.append(&encode(&meta, std::slice::from_ref(&plane)))
        .unwrap();
    w.finish().unwrap();
    let rec = shard::ShardReader::open(&path).unwrap().read(0).unwrap();
    assert_eq!(rec.meta, meta);
    assert_eq!(rec.plane("face").unwrap(), &plane[..]);
}
