use crate::common::*;
use prep::DatasetKind;
use shard::Cache;

/// `--part i/N` builds merged with `prep cache merge` equal a single build: same key, same
/// samples in the same order with the same bytes, same failure rows, same summary.
#[test]
fn part_builds_merge_into_the_single_build() {
    let Some(models) = models("part_builds_merge_into_the_single_build") else {
        return;
    };
    let raw = tempfile::tempdir().unwrap();
    ckplus_tree(raw.path());
    // A copied sequence: each part must find the duplicate (its copies fall in other parts) and
    // drop the same one.
    let img = raw.path().join("cohn-kanade-images");
    std::fs::create_dir_all(img.join("S012/001")).unwrap();
    for f in 1..=5u32 {
        std::fs::copy(
            img.join(format!("S005/001/S005_001_{f:08}.png")),
            img.join(format!("S012/001/S012_001_{f:08}.png")),
        )
        .unwrap();
    }
    write(
        &raw.path()
            .join("Emotion/S012/001/S012_001_00000005_emotion.txt"),
        b"3",
    );
    let single_dir = tempfile::tempdir().unwrap();
    let parts_dir = tempfile::tempdir().unwrap();
    let merged_dir = tempfile::tempdir().unwrap();
    let mut req = request(
        DatasetKind::Ckplus,
        raw.path(),
        single_dir.path(),
        models.clone(),
    );
    req.config.dedup = prep::dedup::DedupMode::DropFromTrain;
    let single = prep::build(&req, &prep::build::NoProgress).unwrap();
    let mut part_dirs = Vec::new();
    for i in 1..=3 {
        let mut r = request(
            DatasetKind::Ckplus,
            raw.path(),
            parts_dir.path(),
            models.clone(),
        );
        r.part = Some((i, 3));
        r.config.dedup = prep::dedup::DedupMode::DropFromTrain;
        let out = prep::build(&r, &prep::build::NoProgress).unwrap();
        assert_eq!(out.manifest.key, single.manifest.key);
        part_dirs.push(out.dir);
    }
    let merged =
        prep::merge_parts(&part_dirs, merged_dir.path(), &prep::build::NoProgress).unwrap();
    assert_eq!(merged.manifest.key, single.manifest.key);
    assert_eq!(merged.summary, single.summary);
    assert_eq!(single.summary.duplicates.exact_pairs, 1);
    let table =
        |d: &std::path::Path| shard::tables::read_table(&d.join("duplicates.parquet")).unwrap();
    assert!(table(&merged.dir).equals(&table(&single.dir)));
    let (a, b) = (
        Cache::open(&single.dir).unwrap(),
        Cache::open(&merged.dir).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for g in 0..a.len() {
        let (x, y) = (a.get(g).unwrap(), b.get(g).unwrap());
        assert_eq!(x.meta, y.meta);
        assert!(x.planes().map(|p| p.1).eq(y.planes().map(|p| p.1)));
    }
    // Byte-identical shards.
    for s in &a.manifest().shards {
        let bs = b
            .manifest()
            .shards
            .iter()
            .find(|t| t.file == s.file)
            .unwrap();
        assert_eq!(s.blake3, bs.blake3);
    }
    let fa = shard::tables::read_failures(&single.dir.join("failures.parquet")).unwrap();
    let fb = shard::tables::read_failures(&merged.dir.join("failures.parquet")).unwrap();
    assert_eq!(fa, fb);
    // A missing part is an error.
    let e = prep::merge_parts(&part_dirs[..2], merged_dir.path(), &prep::build::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("part 3/3 is missing"), "{e}");
}

/// `scripts/slurm/prep-array.sbatch` run as Slurm would run it (three array tasks, then the
/// merge task): the merged cache is the cache of a single build (same key, same records).
#[test]
fn slurm_array_script_builds_parts_and_merges_into_the_single_build() {
    let Some(models) = models("slurm_array_script_builds_parts_and_merges_into_the_single_build")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("emotion,pixels,Usage\n");
    for r in 0..30u64 {
        let mut rng = shard::KeyedRng::new(&[r, 0x51]);
        let px: Vec<String> = (0..48 * 48).map(|_| rng.below(256).to_string()).collect();
        let usage = ["Training", "PublicTest", "PrivateTest"][(r % 3) as usize];
        csv.push_str(&format!("{},{},{usage}\n", r % 7, px.join(" ")));
    }
    let source = dir.path().join("fer2013.csv");
    std::fs::write(&source, csv).unwrap();
    let caches = dir.path().join("cache");
    let script = repo_root().join("scripts/slurm/prep-array.sbatch");
    let run = |envs: &[(&str, String)]| {
        let mut c = std::process::Command::new("bash");
        c.arg(&script)
            .env("SLURM_SUBMIT_DIR", dir.path())
            .env("PREP", env!("CARGO_BIN_EXE_prep"))
            .env("DATASET", "fer2013")
            .env("SOURCE", &source)
            .env("NAME", "fer-array")
            .env("CACHE_DIR", &caches)
            .env("PREP_ARGS", "--qa-samples 0");
        for (k, v) in envs {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{envs:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    for i in 1..=3 {
        run(&[
            ("SLURM_ARRAY_TASK_ID", i.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", "3".into()),
            ("SLURM_CPUS_PER_TASK", "1".into()),
        ]);
    }
    run(&[("MERGE", "1".into()), ("PARTS", "3".into())]);
    let mut req = request(
        DatasetKind::Fer2013,
        &source,
        &dir.path().join("single"),
        models,
    );
    req.name = Some("fer-array".into());
    req.qa_samples = 0;
    let single = prep::build(&req, &prep::build::NoProgress).unwrap();
    let merged = Cache::open(&caches.join(single.dir.file_name().unwrap())).unwrap();
    assert_eq!(merged.manifest().key, single.manifest.key);
    let a = Cache::open(&single.dir).unwrap();
    assert_eq!(a.len(), merged.len());
    for g in 0..a.len() {
        assert_eq!(a.get(g).unwrap().meta, merged.get(g).unwrap().meta);
    }
}
