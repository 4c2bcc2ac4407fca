//! Streaming loader: a cache's records → host batches (decoded on worker threads, a bounded number
//! ahead) → device tensors with augmentation, grey → 3 channels and ImageNet normalisation done on
//! the device.
//!
//! The order of an epoch is a permutation that depends only on (seed, fold, epoch); the decoder
//! threads only change when a batch is ready, never what it holds. A loader can start at any step
//! of an epoch, which is how a resumed run continues exactly where it stopped.

use crate::{Result, TrainError};
use shard::Cache;
use shard::{planes, KeyedRng};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Where the planes of a record are and how big they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Face (height, width).
    pub face: (usize, usize),
    /// Eyes, nose, mouth (height, width).
    pub parts: [(usize, usize); 3],
    /// Frame slots stored in the cache.
    pub slots: usize,
    /// Slots used (indices into the stored ones).
    pub use_slots: Vec<usize>,
}

impl Layout {
    /// Reads the layout from the first record and picks `frames` of the stored slots (evenly
    /// spread, always including the last = peak).
    ///
    /// Errors: an empty cache, planes missing or of different sizes across slots.
    pub fn from_cache(cache: &Cache, frames: Option<usize>) -> Result<Layout> {
        if cache.is_empty() {
            return Err(TrainError::Config(format!(
                "{}: the cache has no samples",
                cache.dir().display()
            )));
        }
        let r = cache.get(0)?;
        let find = |name: &str| {
            r.meta
                .planes
                .iter()
                .find(|p| p.name == name)
                .map(|p| (p.height as usize, p.width as usize))
        };
        let bad = |reason: String| TrainError::Record {
            cache: cache.dir().to_path_buf(),
            record: 0,
            reason,
        };
        let face = find(planes::FACE).ok_or_else(|| bad("no face plane".into()))?;
        let slots = r
            .meta
            .planes
            .iter()
            .filter(|p| {
                planes::parse_part_plane(&p.name).is_some_and(|(part, _)| part == planes::PARTS[0])
            })
            .count();
        if slots == 0 {
            return Err(bad(format!(
                "no {} planes",
                planes::part_plane(planes::PARTS[0], 0)
            )));
        }
        let mut parts = [(0, 0); 3];
        for (i, name) in planes::PARTS.iter().enumerate() {
            let first = planes::part_plane(name, 0);
            parts[i] = find(&first).ok_or_else(|| bad(format!("no {first}")))?;
            for k in 1..slots {
                let other = planes::part_plane(name, k);
                if find(&other) != Some(parts[i]) {
                    return Err(bad(format!("{other} differs from {first}")));
                }
            }
        }
        let want = frames.unwrap_or(slots).clamp(1, slots);
        let use_slots = if want == 1 {
            vec![slots - 1]
        } else {
            (0..want)
                .map(|i| (i * (slots - 1) + (want - 1) / 2) / (want - 1))
                .collect()
        };
        Ok(Layout {
            face,
            parts,
            slots,
            use_slots,
        })
    }

    /// Frames fed to the network.
    pub fn frames(&self) -> usize {
        self.use_slots.len()
    }
}

mod infos;
pub use infos::{sample_infos, SampleInfo};

/// A batch in host memory: u8 planes, row-major.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// Samples in the batch.
    pub n: usize,
    /// Record numbers.
    pub records: Vec<u64>,
    /// [n, H, W] faces.
    pub face: Vec<u8>,
    /// Per part [n, T, h, w].
    pub parts: [Vec<u8>; 3],
    /// Labels.
    pub labels: Vec<i64>,
    /// Records that failed to decode and were skipped (only with `skip_bad_records`).
    pub skipped: Vec<(u64, String)>,
}

impl HostBatch {
    /// Whether every sample's frames are the same pixels in every part (a still image in every
    /// frame slot).
    pub fn frames_are_still(&self, layout: &Layout) -> bool {
        let t = layout.frames();
        (0..3).all(|i| {
            let frame = layout.parts[i].0 * layout.parts[i].1;
            self.parts[i]
                .chunks_exact(frame * t)
                .all(|s| s.chunks_exact(frame).all(|f| f == &s[(t - 1) * frame..]))
        })
    }

    /// Part `i`'s last frame of every sample, [n, h, w].
    pub fn last_frames(&self, i: usize, layout: &Layout) -> Vec<u8> {
        let t = layout.frames();
        let frame = layout.parts[i].0 * layout.parts[i].1;
        self.parts[i]
            .chunks_exact(frame * t)
            .flat_map(|s| &s[(t - 1) * frame..])
            .copied()
            .collect()
    }
}

/// Decodes the records `ids` into a host batch.
///
/// Errors: a damaged record (unless `skip_bad`), planes that do not match the layout.
pub fn decode_batch(
    cache: &Cache,
    layout: &Layout,
    ids: &[u64],
    skip_bad: bool,
) -> Result<HostBatch> {
    type Decoded = (Vec<u8>, [Vec<u8>; 3], i64);
    let decoded = cache.par_decode(ids, |_, r| -> std::result::Result<Decoded, String> {
        let face = r.plane(planes::FACE).ok_or("no face plane")?.to_vec();
        let mut parts: [Vec<u8>; 3] = Default::default();
        for (i, name) in planes::PARTS.iter().enumerate() {
            for &k in &layout.use_slots {
                let plane = planes::part_plane(name, k);
                let p = r.plane(&plane).ok_or_else(|| format!("no {plane} plane"))?;
                parts[i].extend_from_slice(p);
            }
        }
        Ok((face, parts, r.meta.label as i64))
    });
    let mut b = HostBatch {
        n: 0,
        records: Vec::with_capacity(ids.len()),
        face: Vec::new(),
        parts: Default::default(),
        labels: Vec::new(),
        skipped: Vec::new(),
    };
    let face_len = layout.face.0 * layout.face.1;
    for (&g, d) in ids.iter().zip(decoded) {
        let d = match d {
            Ok(Ok(d)) => d,
            Ok(Err(reason)) => {
                return Err(TrainError::Record {
                    cache: cache.dir().to_path_buf(),
                    record: g,
                    reason,
                })
            }
            Err(e) if skip_bad => {
                b.skipped.push((g, e.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if d.0.len() != face_len {
            return Err(TrainError::Record {
                cache: cache.dir().to_path_buf(),
                record: g,
                reason: format!("face plane of {} bytes, layout says {face_len}", d.0.len()),
            });
        }
        b.face.extend_from_slice(&d.0);
        for i in 0..3 {
            b.parts[i].extend_from_slice(&d.1[i]);
        }
        b.labels.push(d.2);
        b.records.push(g);
        b.n += 1;
    }
    Ok(b)
}

/// The order of an epoch: a permutation of `records` depending only on the keys.
pub fn epoch_order(records: &[u64], seed: u64, fold: u64, epoch: u64) -> Vec<u64> {
    let mut v = records.to_vec();
    KeyedRng::new(&[seed, fold, epoch, 0x0_0dde]).shuffle(&mut v);
    v
}

/// Streams host batches of `order` from `start_batch` on, decoded by a background thread a bounded
/// number of batches ahead (`prefetch`). Dropping the iterator stops the thread.
pub fn stream(
    cache: Arc<Cache>,
    layout: Layout,
    order: Vec<u64>,
    batch: usize,
    start_batch: usize,
    prefetch: usize,
    skip_bad: bool,
) -> Receiver<Result<HostBatch>> {
    let (tx, rx) = sync_channel(prefetch.max(1));
    std::thread::spawn(move || {
        for ids in order.chunks(batch.max(1)).skip(start_batch) {
            let b = decode_batch(&cache, &layout, ids, skip_bad);
            let stop = b.is_err();
            if tx.send(b).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// Per-sample augmentation parameters (drawn on the host from the counter RNG, applied on the
/// device): scale, shift (fractions of the crop), rotation, horizontal flip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Scale factor.
    pub scale: f64,
    /// Shift x, y in normalised [-1, 1] units.
    pub shift: (f64, f64),
    /// Rotation in radians (in pixel space, about the crop's centre).
    pub rotation: f64,
    /// Mirror.
    pub flip: bool,
}

impl Augment {
    /// No change but a mirror image when `flip` (flip averaging at test time).
    pub fn mirror(flip: bool) -> Augment {
        Augment {
            scale: 1.0,
            shift: (0.0, 0.0),
            rotation: 0.0,
            flip,
        }
    }
}

/// Draws one [`Augment`] per sample: scale uniform in 1 ± `scale`, shift uniform in ± `shift`
/// of the crop per axis, rotation uniform in ± `rotate_degrees`, a flip with probability ½ when
/// `flip`. The rotation is drawn only when `rotate_degrees > 0`, so that runs without it draw
/// exactly what they drew before it existed.
pub fn draw_augments(
    rng: &mut KeyedRng,
    n: usize,
    shift: f64,
    scale: f64,
    rotate_degrees: f64,
    flip: bool,
) -> Vec<Augment> {
    (0..n)
        .map(|_| {
            let scale = 1.0 + scale * (2.0 * rng.uniform() - 1.0);
            let shift = (
                2.0 * shift * (2.0 * rng.uniform() - 1.0),
                2.0 * shift * (2.0 * rng.uniform() - 1.0),
            );
            let flip = flip && rng.uniform() < 0.5;
            let rotation = if rotate_degrees > 0.0 {
                rotate_degrees.to_radians() * (2.0 * rng.uniform() - 1.0)
            } else {
                0.0
            };
            Augment {
                scale,
                shift,
                rotation,
                flip,
            }
        })
        .collect()
}

/// The per-channel mean the loader subtracts from crops scaled to [0, 1]: ImageNet's (the SSM's
/// pretraining). `model.json` of an export records this same constant.
pub const NORMALISATION_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// The per-channel standard deviation the loader divides by; see [`NORMALISATION_MEAN`].
pub const NORMALISATION_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// How host batches become network inputs on the device.
#[derive(Debug, Clone)]
pub struct DeviceTransform {
    /// Target device.
    pub device: Device,
    /// Face size fed to the network (resized on the device when it differs from the cache's).
    pub face_size: (i64, i64),
    /// Part sizes fed to the network.
    pub part_sizes: [(i64, i64); 3],
    /// Use channels_last for the 4-d inputs.
    pub channels_last: bool,
    /// Prepare the part crops; `false` for networks that see the face alone (the CNN, MGLN
    /// without a PBM), whose inputs then hold no part frames ([b, 0, 3, h, w]): the parts are
    /// ten times the face's pixels, and warping them for nothing cost a CNN step a fifth of its
    /// time.
    pub parts: bool,
}

/// Host data onto `device` without waiting for it: on CUDA through page-locked memory (libtorch's
/// caching host allocator recycles those blocks, so no step allocates new ones) and a
/// non-blocking copy, ordered on the stream before the kernels that read it. A copy from pageable
/// memory would synchronise the whole stream with the host at every step.
pub fn upload(host: Tensor, device: Device) -> Tensor {
    if device.is_cuda() {
        let kind = host.kind();
        host.pin_memory(device)
            .to_device_(device, kind, true, false)
    } else {
        host
    }
}

/// Resamples images `x` [n·repeat, c, h, w] to `out` (height, width): with `aug`, sample i's
/// [`Augment`] applied to its `repeat` consecutive images (a sample's frames) by bilinear
/// sampling with border padding; without, a plain bilinear resize (or nothing at the same size).
pub fn warp(x: &Tensor, aug: Option<&[Augment]>, repeat: i64, out: (i64, i64)) -> Tensor {
    let (n, _, h, w) = x.size4().unwrap_or((0, 1, 0, 0));
    match aug {
        Some(a) => {
            let mut theta = Vec::with_capacity(a.len() * 6 * repeat as usize);
            // Output → input coordinates, normalised to [-1, 1] per axis: mirror, rotate (in
            // pixels: the normalised axes differ by the aspect ratio), scale, shift.
            let aspect = if h > 0 { w as f64 / h as f64 } else { 1.0 };
            for s in a {
                let fx = if s.flip { -1.0 } else { 1.0 };
                let (sin, cos) = s.rotation.sin_cos();
                let row = [
                    (fx * cos / s.scale) as f32,
                    // 0 − sin: exactly +0 without rotation, the matrix runs had before rotation.
                    ((0.0 - sin) / aspect / s.scale) as f32,
                    s.shift.0 as f32,
                    (fx * sin * aspect / s.scale) as f32,
                    (cos / s.scale) as f32,
                    s.shift.1 as f32,
                ];
                for _ in 0..repeat {
                    theta.extend_from_slice(&row);
                }
            }
            let theta = upload(Tensor::from_slice(&theta).view([n, 2, 3]), x.device());
            let grid = Tensor::affine_grid_generator(&theta, [n, 1, out.0, out.1], false);
            // bilinear, border padding, align_corners = false.
            x.grid_sampler(&grid, 0, 1, false)
        }
        None if (h, w) != out => x.upsample_bilinear2d([out.0, out.1], false, None, None),
        None => x.shallow_clone(),
    }
}

fn normalise(x: &Tensor, channels_last: bool) -> Tensor {
    // Grey to 3 channels with per-channel scalars: nothing to upload per batch.
    let channels: Vec<Tensor> = (0..3)
        .map(|c| (x - NORMALISATION_MEAN[c]) / NORMALISATION_STD[c])
        .collect();
    let y = Tensor::cat(&channels, 1);
    if channels_last {
        crate::model::channels_last(&y)
    } else {
        y.contiguous()
    }
}

impl DeviceTransform {
    /// Moves a host batch to the device and prepares the network input: u8 → [0, 1], the same
    /// augmentation for the face and every part crop of a sample (`aug`), resizing, 3 channels,
    /// ImageNet normalisation.
    pub fn apply(
        &self,
        b: &HostBatch,
        layout: &Layout,
        aug: Option<&[Augment]>,
    ) -> (crate::model::ModelInput, Tensor) {
        let n = b.n as i64;
        let t = layout.frames() as i64;
        let pinned = |v: &[u8]| upload(Tensor::from_slice(v), self.device);
        let (fh, fw) = (layout.face.0 as i64, layout.face.1 as i64);
        let face = pinned(&b.face).view([n, 1, fh, fw]).to_kind(Kind::Float) / 255.0;
        let face = warp(&face, aug, 1, self.face_size);
        let face = normalise(&face, self.channels_last && self.device.is_cuda());
        // A batch of still images (every sample's frames the same pixels, as FER2013 and JAFFE
        // fill their slots) sends one frame per sample: each frame of a sample gets the same
        // augmentation, so its frames would stay equal on the device, and the network computes
        // them once.
        let still = t > 1 && self.parts && b.frames_are_still(layout);
        let t = match (self.parts, still) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => t,
        };
        let parts: Vec<Tensor> = (0..3)
            .map(|i| {
                let (h, w) = (layout.parts[i].0 as i64, layout.parts[i].1 as i64);
                let out = self.part_sizes[i];
                if t == 0 {
                    let o = (Kind::Float, self.device);
                    return Tensor::zeros([n, 0, 3, out.0, out.1], o);
                }
                let host = if still {
                    pinned(&b.last_frames(i, layout))
                } else {
                    pinned(&b.parts[i])
                };
                let x = host.view([n * t, 1, h, w]).to_kind(Kind::Float) / 255.0;
                let x = warp(&x, aug, t, out);
                normalise(&x, false).view([n, t, 3, out.0, out.1])
            })
            .collect();
        let labels = upload(Tensor::from_slice(&b.labels), self.device);
        let [e, no, m]: [Tensor; 3] = match parts.try_into() {
            Ok(a) => a,
            Err(_) => unreachable!("three parts were built above"),
        };
        (
            crate::model::ModelInput {
                face,
                parts: [e, no, m],
            },
            labels,
        )
    }
}

/// Opens a cache for training: checks the manifest and shard headers.
pub fn open_cache(dir: &Path) -> Result<Arc<Cache>> {
    Ok(Arc::new(Cache::open(dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            face: (2, 2),
            parts: [(1, 2), (1, 1), (2, 1)],
            slots: 3,
            use_slots: vec![0, 1, 2],
        }
    }

    /// Two samples whose three frames repeat their pixels: still, and the last frames are each
    /// sample's; one byte of one middle frame changed: not still. Still batches go to the
    /// network as one frame a sample.
    #[test]
    fn still_batches_are_found_and_sent_once() {
        let l = layout();
        let frames = |i: usize, sample: u8| -> Vec<u8> {
            let n = l.parts[i].0 * l.parts[i].1;
            (0..3)
                .flat_map(|_| vec![sample * 10 + i as u8; n])
                .collect()
        };
        let mut b = HostBatch {
            n: 2,
            records: vec![0, 1],
            face: vec![0; 8],
            parts: [0, 1, 2].map(|i| [frames(i, 1), frames(i, 2)].concat()),
            labels: vec![0, 1],
            skipped: Vec::new(),
        };
        assert!(b.frames_are_still(&l));
        assert_eq!(b.last_frames(0, &l), vec![10, 10, 20, 20]);
        assert_eq!(b.last_frames(2, &l), vec![12, 12, 22, 22]);
        let tf = DeviceTransform {
            device: Device::Cpu,
            face_size: (2, 2),
            part_sizes: [(8, 8); 3],
            channels_last: false,
            parts: true,
        };
        let (x, _) = tf.apply(&b, &l, None);
        assert_eq!(x.parts[0].size(), vec![2, 1, 3, 8, 8]);
        // The second sample's middle nose frame.
        b.parts[1][4] = 99;
        assert!(!b.frames_are_still(&l));
        let (x, _) = tf.apply(&b, &l, None);
        assert_eq!(x.parts[0].size(), vec![2, 3, 3, 8, 8]);
        let face_only = DeviceTransform { parts: false, ..tf };
        let (y, _) = face_only.apply(&b, &l, None);
        assert!(y.face.equal(&x.face));
        assert_eq!(y.parts[2].size(), vec![2, 0, 3, 8, 8]);
    }
}
