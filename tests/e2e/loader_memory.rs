//! Issue 39: the loader's memory does not grow with the cache. What a run does before and while
//! it trains — open the cache, read every sample's split ([`train::loader::sample_infos`]), order
//! an epoch, stream 20 batches of 64 through the loader's prefetching thread — in a process of its
//! own on a cache of 2,000 records and on one of 8,000 (`prep synth-scale` copies of the synthetic
//! FER2013 cache), reading the process's anonymous resident memory (RssAnon) after every batch.
//! The peak on 8,000 records may exceed the peak on 2,000 by at most 16 MiB. A loader that kept
//! what it decoded would add 6,000 × 47 KB ≈ 280 MB, one that decoded the whole cache ahead would
//! add as much; metadata held per record is about 100 bytes a record, under 1 MB here. Observed
//! growth on the development machine: 0.5 to 1.7 MiB in five runs, so the bound leaves 14 MiB of
//! margin. (The whole trainer is measured by scripts/bench_loader_memory.sh: libtorch's own
//! allocations move its peak by ±50 MB from run to run, too much for a test.)

use super::fixture;
use std::path::Path;
use std::process::Command;

/// The peak anonymous resident memory, in KiB, of the probe run in a process of its own.
fn probe_peak_kib(cache: &Path) -> u64 {
    let o = Command::new(std::env::current_exe().unwrap())
        .args([
            "loader_memory::loader_probe",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FER_LOADER_PROBE_CACHE", cache)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.lines()
        .find_map(|l| Some(&l[l.find("probe peak_anon_kib=")? + 20..]))
        .unwrap_or_else(|| panic!("no probe line in {out}"))
        .trim()
        .parse()
        .unwrap()
}

fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The probe itself, run only by [`loader_peak_memory_does_not_grow_with_a_four_times_larger_cache`]
/// in a child process (so that no other test shares its memory).
#[test]
#[ignore = "run by loader_peak_memory_does_not_grow_with_a_four_times_larger_cache in a process of its own"]
fn loader_probe() {
    let Some(dir) = std::env::var_os("FER_LOADER_PROBE_CACHE") else {
        return;
    };
    let cache = train::loader::open_cache(Path::new(&dir)).unwrap();
    let layout = train::loader::Layout::from_cache(&cache, None).unwrap();
    let infos = train::loader::sample_infos(&cache).unwrap();
    let train: Vec<u64> = infos
        .iter()
        .filter(|i| i.split == shard::Split::Train)
        .map(|i| i.record)
        .collect();
    drop(infos);
    let order = train::loader::epoch_order(&train, 1, 0, 0);
    let mut peak = rss_anon_kib();
    let rx = train::loader::stream(cache, layout, order, 64, 0, 4, false);
    for b in rx.into_iter().take(20) {
        assert_eq!(b.unwrap().n, 64);
        peak = peak.max(rss_anon_kib());
    }
    println!("\nprobe peak_anon_kib={peak}");
}

#[test]
fn loader_peak_memory_does_not_grow_with_a_four_times_larger_cache() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scaled = |n: u64| {
        prep::synth::scale_cache(&fx.fer.dir, n, dir.path(), &format!("fer-{n}"), &|_| {})
            .unwrap()
            .dir
    };
    let (small, large) = (scaled(2_000), scaled(8_000));
    let (a, b) = (probe_peak_kib(&small), probe_peak_kib(&large));
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "loader peak anonymous memory: {:.1} MiB on 2,000 records, {:.1} MiB on 8,000",
        mib(a),
        mib(b)
    );
    assert!(
        mib(b) - mib(a) < 16.0,
        "the loader's peak grew by {:.1} MiB from 2,000 to 8,000 records ({:.1} → {:.1} MiB)",
        mib(b) - mib(a),
        mib(a),
        mib(b)
    );
}
