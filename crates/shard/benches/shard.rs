//! Shard write and read throughput with the MGLN payload: a 128×128 face and three frames of
//! eyes 48×128, nose 64×32 and mouth 32×64 (47,104 bytes of u8 per sample).
//!
//! Planes are smooth gradients plus noise, which compress about like real face crops (≈ 1.3–1.6×).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shard::{
    Cache, CacheKey, CacheWriter, CacheWriterOptions, EncodedRecord, PlaneInfo, SampleMeta,
    SourceFingerprint, Split,
};
use std::collections::BTreeMap;

fn planes_info() -> Vec<PlaneInfo> {
    let mut v = vec![PlaneInfo::new("face", 128, 128)];
    for k in 0..3 {
        v.push(PlaneInfo::new(format!("eyes/{k}"), 48, 128));
        v.push(PlaneInfo::new(format!("nose/{k}"), 64, 32));
        v.push(PlaneInfo::new(format!("mouth/{k}"), 32, 64));
    }
    v
}

fn sample(i: u64) -> (SampleMeta, Vec<Vec<u8>>) {
    let infos = planes_info();
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let planes = infos
        .iter()
        .map(|p| {
            (0..p.len())
                .map(|j| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let (y, x) = (j / p.width as usize, j % p.width as usize);
                    ((x + y) as u64 + (state & 15)) as u8
                })
                .collect()
        })
        .collect();
    let meta = SampleMeta {
        sample_id: format!("S{:03}/{:03}", i / 10, i % 10),
        dataset: "bench".into(),
        subject: format!("S{:03}", i / 10),
        sequence: Some(format!("{:03}", i % 10)),
        source: vec!["a.png".into(), "b.png".into(), "c.png".into()],
        frame_indices: vec![0, 7, 14],
        label: (i % 7) as u16,
        split: Split::Fold((i % 10) as u16),
        landmarks: vec![vec![[100.5, 200.25]; 68]; 3],
        detector: "haar_frontalface_default".into(),
        flags: 0,
        planes: infos,
        ext: shard::MetaExt::default(),
    };
    (meta, planes)
}

fn key() -> CacheKey {
    let src = SourceFingerprint {
        files: 0,
        bytes: 0,
        digest: String::new(),
    };
    CacheKey::compute(&"bench", &BTreeMap::new(), &src).expect("key")
}

fn classes() -> Vec<String> {
    (0..7).map(|c| format!("c{c}")).collect()
}

/// Encodes and writes `samples` as one cache in `dir` (the timed body of the write benchmark).
fn write_cache(dir: &std::path::Path, samples: &[(SampleMeta, Vec<Vec<u8>>)]) {
    let mut w = CacheWriter::create(
        dir,
        "bench",
        &key(),
        classes(),
        CacheWriterOptions::default(),
    )
    .expect("writer");
    for (meta, planes) in samples {
        let refs: Vec<&[u8]> = planes.iter().map(|p| p.as_slice()).collect();
        let rec = EncodedRecord::encode(meta.clone(), &refs, 3).expect("encode");
        w.push(&rec).expect("push");
    }
    w.finish(serde_json::Value::Null).expect("finish");
}

fn bench(c: &mut Criterion) {
    const N: u64 = 2000;
    let samples: Vec<_> = (0..N).map(sample).collect();
    let mut g = c.benchmark_group("shard");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);

    g.bench_function("encode+write 2000 samples (one core)", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                write_cache(dir.path(), &samples);
                dir
            },
            BatchSize::PerIteration,
        )
    });

    let dir = tempfile::tempdir().expect("tempdir");
    write_cache(dir.path(), &samples);
    let cache = Cache::open(dir.path()).expect("open");

    g.bench_function("sequential read+decode 2000 samples (one core)", |b| {
        b.iter(|| {
            let mut r = cache.reader().expect("reader");
            let mut sum = 0u64;
            for i in 0..N {
                let rec = r.read(i).expect("read");
                sum += rec.plane("face").map(|p| p[0] as u64).unwrap_or(0);
            }
            sum
        })
    });
    g.finish();

    let mut g = c.benchmark_group("shard-open");
    g.bench_function("open cache + random access to one record", |b| {
        let mut i = 0u64;
        b.iter(|| {
            let cache = Cache::open(dir.path()).expect("open");
            i = (i + 7919) % N;
            cache.get(i).expect("get").meta.label
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
