//! Compatibility pins. `tests/golden/v1_1.fsh` is a shard written by format 1.1: this test reads
//! it with a reader written from FORMAT.md alone (not the crate's), checks the crate's reader
//! decodes it to the known samples, and checks that today's writer produces the same header and
//! the same decompressed payloads. A format change therefore fails here until the version is
//! bumped and the golden file regenerated (`SHARD_BLESS=1 cargo test -p shard golden`).
//! `tests/golden/v1.fsh`, written by format 1.0 (no appended metadata), must still be read.

use crate::common::*;
use std::path::PathBuf;

const N: u32 = 4;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1_1.fsh")
}

fn golden_v1_0_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1.fsh")
}

/// A reader written from FORMAT.md section 3: returns the header bytes and each decompressed payload.
fn spec_reader(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(&bytes[0..8], b"\x89FSH\r\n\x1a\n");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1, "major");
    assert_eq!(u32_at(12), 1, "schema");
    assert_eq!(u64_at(24), xxhash_rust::xxh3::xxh3_64(&bytes[0..24]));
    let t = bytes.len() - 40;
    assert_eq!(&bytes[t + 32..], b"FSHEND\r\n");
    assert_eq!(
        u64_at(t + 24),
        xxhash_rust::xxh3::xxh3_64(&bytes[t..t + 24])
    );
    let (index_offset, count) = (u64_at(t) as usize, u64_at(t + 8) as usize);
    assert_eq!(index_offset + 24 * count + 40, bytes.len());
    let index = &bytes[index_offset..index_offset + 24 * count];
    assert_eq!(u64_at(t + 16), xxhash_rust::xxh3::xxh3_64(index));
    let mut payloads = Vec::new();
    let mut expect = 32usize;
    for i in 0..count {
        let e = index_offset + 24 * i;
        let (off, flen, plen, sum) = (
            u64_at(e) as usize,
            u32_at(e + 8) as usize,
            u32_at(e + 12) as usize,
            u64_at(e + 16),
        );
        assert_eq!(off, expect);
        expect += flen;
        let frame = &bytes[off..off + flen];
        assert_eq!(xxhash_rust::xxh3::xxh3_64(frame), sum);
        let payload = zstd::stream::decode_all(frame).unwrap();
        assert_eq!(payload.len(), plen);
        payloads.push(payload);
    }
    assert_eq!(expect, index_offset);
    (bytes[0..32].to_vec(), payloads)
}

#[test]
fn golden_v1_1_shard_is_still_read_and_written_the_same() {
    let dir = tempfile::tempdir().unwrap();
    write_cache(dir.path(), N, 1 << 20);
    let fresh = std::fs::read(dir.path().join("shard-00000.fsh")).unwrap();
    if std::env::var_os("SHARD_BLESS").is_some() {
        std::fs::create_dir_all(golden_path().parent().unwrap()).unwrap();
        std::fs::write(golden_path(), &fresh).unwrap();
    }
    let golden =
        std::fs::read(golden_path()).expect("golden shard missing; SHARD_BLESS=1 writes it");
    assert_eq!(u16::from_le_bytes([golden[10], golden[11]]), 1, "minor");
    let (gh, gp) = spec_reader(&golden);
    let (fh, fp) = spec_reader(&fresh);
    assert_eq!(gh, fh, "header bytes changed: bump the format version");
    assert_eq!(gp, fp, "record payloads changed: bump the format version");

    // The crate's reader decodes the golden file to the known samples.
    let r = shard::ShardReader::open(&golden_path()).unwrap();
    assert_eq!(r.records().unwrap(), N as u64);
    for i in 0..N {
        let rec = r.read(i as u64).unwrap();
        let (m, p) = sample(i);
        assert_eq!(rec.meta, m);
        let planes: Vec<Vec<u8>> = rec.planes().map(|(_, d)| d.to_vec()).collect();
        assert_eq!(planes, p);
    }
}

/// Format 1.0 shards (written before the per-slot boxes and votes were appended) read with empty
/// appended fields and everything else as written.
#[test]
fn golden_v1_0_shard_reads_with_empty_appended_metadata() {
    let bytes = std::fs::read(golden_v1_0_path()).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), 0, "minor");
    let (_, payloads) = spec_reader(&bytes);
    assert_eq!(payloads.len(), N as usize);
    let r = shard::ShardReader::open(&golden_v1_0_path()).unwrap();
    for i in 0..N {
        let rec = r.read(i as u64).unwrap();
        let (mut m, p) = sample(i);
        m.ext = shard::MetaExt::default();
        assert_eq!(rec.meta, m);
        assert!(rec.meta.ext.is_empty());
        let planes: Vec<Vec<u8>> = rec.planes().map(|(_, d)| d.to_vec()).collect();
        assert_eq!(planes, p);
    }
}
