//! TensorBoard scalars: one TFRecord event file per fold, written by the project, so that
//! `tensorboard --logdir runs` shows every run's curves.
//!
//! The format (TensorFlow's `core/lib/io/record_writer.cc` and `core/util/event.proto`):
//! each record is `u64 length (LE) | u32 masked CRC-32C of the length bytes | data |
//! u32 masked CRC-32C of data`, where `masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`. The
//! first record is an `Event { wall_time, file_version: "brain.Event:2" }`; each further one an
//! `Event { wall_time = 1, step = 2, summary = 5 }` whose `Summary` holds repeated
//! `Value { tag = 1, simple_value = 2 (float) }`. Only these few fields are written, so the
//! protobuf encoding is done here by hand (varints, fixed64/fixed32, length-delimited) rather
//! than through a code generator.
//!
//! The file is rewritten whole (atomically) from a fold's history after every epoch, as
//! `metrics.jsonl` is, so a resumed run's file equals an uninterrupted one's.

use crate::outputs::EpochRecord;
use crate::Result;
use std::path::{Path, PathBuf};

/// The CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`, as TFRecord frames use.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC (so that a CRC of data that itself holds CRCs is not degenerate).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Appends one TFRecord frame holding `data`.
pub fn push_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, ((field << 3) | wire) as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The serialised `Event` with only `wall_time` and `file_version` (the first record of a file).
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    bytes_field(&mut e, 3, b"brain.Event:2");
    e
}

/// The serialised `Event` carrying scalar summaries (tag, value) at `step`.
pub fn scalars_event(wall_time: f64, step: i64, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut summary = Vec::new();
    for (tag, v) in scalars {
        let mut value = Vec::new();
        bytes_field(&mut value, 1, tag.as_bytes());
        key(&mut value, 2, 5);
        value.extend_from_slice(&v.to_le_bytes());
        bytes_field(&mut summary, 1, &value);
    }
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut e, 2, 0);
    // int64 is encoded as the two's-complement u64 varint (steps are never negative here).
    varint(&mut e, step as u64);
    bytes_field(&mut e, 5, &summary);
    e
}

/// The scalars of one epoch under TensorBoard tags (`loss/total`, `accuracy/test`, …): loss
/// (total, global, local), accuracies (train, test and validation when evaluated), learning rate
/// and training throughput; where the test set was evaluated, also `test/balanced_accuracy` and
/// `test/macro_f1` (from the epoch's confusion matrix).
pub fn epoch_scalars(r: &EpochRecord) -> Vec<(&'static str, f32)> {
    let mut v = vec![
        ("loss/total", r.loss as f32),
        ("loss/global", r.loss_global as f32),
        ("loss/local", r.loss_local as f32),
        ("accuracy/train", r.train_accuracy as f32),
    ];
    if let Some(a) = r.test_accuracy {
        v.push(("accuracy/test", a as f32));
    }
    if let Some(a) = r.validation_accuracy {
        v.push(("accuracy/validation", a as f32));
    }
    if let Some(counts) = &r.confusion {
        let c = super::Confusion {
            counts: counts.clone(),
        };
        v.push(("test/balanced_accuracy", c.balanced_accuracy() as f32));
        v.push(("test/macro_f1", c.macro_f1() as f32));
    }
    v.push(("lr", r.lr as f32));
    v.push(("samples_per_s", r.samples_per_s as f32));
    v
}

/// The event file's name inside a fold directory. Fixed (TensorBoard only needs `tfevents` in
/// the name) so that rewriting replaces it instead of adding files.
pub const EVENT_FILE: &str = "events.out.tfevents.0.fer-mgln";

/// Writes `<fold_dir>/events.out.tfevents.0.fer-mgln` from a fold's history: one event per epoch,
/// step = epoch (from 1), wall time = `started_unix` plus the training seconds up to that epoch.
///
/// Errors: the file cannot be written.
pub fn write_fold_events(
    fold_dir: &Path,
    started_unix: f64,
    history: &[EpochRecord],
) -> Result<PathBuf> {
    let mut out = Vec::new();
    push_record(&mut out, &file_version_event(started_unix));
    let mut t = started_unix;
    for r in history {
        t += r.seconds;
        push_record(
            &mut out,
            &scalars_event(t, r.epoch as i64, &epoch_scalars(r)),
        );
    }
    let path = fold_dir.join(EVENT_FILE);
    shard::atomic_write(&path, &out)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answers() {
        // RFC 3720 (iSCSI) appendix B.4 and the usual check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&inc), 0x46DD_794E);
    }

    #[test]
    fn a_record_frame_has_length_crcs_and_data() {
        let mut out = Vec::new();
        push_record(&mut out, b"abc");
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(
            u32::from_le_bytes(out[15..19].try_into().unwrap()),
            masked_crc32c(b"abc")
        );
    }

    #[test]
    fn varints_match_protobuf() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let e = file_version_event(0.0);
        // field 1 fixed64 (0x09) + 8 bytes, field 3 bytes (0x1a) + len 13.
        assert_eq!(e[0], 0x09);
        assert_eq!(e[9], 0x1a);
        assert_eq!(e[10], 13);
    }
}
