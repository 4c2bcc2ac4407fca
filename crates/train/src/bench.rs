//! `train bench`: training-step throughput on synthetic device-resident inputs (the compute
//! ceiling) and streaming from a cache, per precision and batch size, device synchronised before
//! every clock read.

use crate::config::{Precision, TrainSection};
use crate::loader::{self, DeviceTransform, Layout};
use crate::model::{ModelConfig, ModelInput, Network};
use crate::optim::Optimizer;
use crate::trainer::{mgln_loss, Mixup};
use crate::Result;
use tch::{nn, Device, Kind, Tensor};

/// One line of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// `synthetic` or `cache`.
    pub input: String,
    /// Precision.
    pub precision: String,
    /// Batch size.
    pub batch: i64,
    /// Median step time.
    pub median_ms: f64,
    /// Samples per second at the median.
    pub samples_per_s: f64,
}

impl BenchRow {
    /// A row from a measured median step time (samples/s derived from it).
    pub fn new(input: &str, precision: &str, batch: i64, median_ms: f64) -> BenchRow {
        BenchRow {
            input: input.into(),
            precision: precision.into(),
            batch,
            median_ms,
            samples_per_s: batch as f64 * 1000.0 / median_ms,
        }
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The paper's network for `classes` at channel multiplier `width`: the `[model]` defaults (the
/// paper preset) on the paper's planes — a 128² face, parts of 48×128, 64×32 and 32×64, and 3
/// frames.
pub fn paper_config(classes: i64, width: f64) -> ModelConfig {
    let m = crate::config::ModelSection {
        width,
        ..crate::config::ModelSection::default()
    };
    ModelConfig::for_experiment(
        &m,
        (128, 128),
        [(48, 128), (64, 32), (32, 64)],
        3,
        classes as usize,
    )
}

/// Times `steps` training steps after `warm` warm-up steps; the inputs come from `next`. The
/// step is the trainer's: the optimiser `train` sets (kind, lr, weight decay, fused Adam) and its
/// gradient clipping.
#[allow(clippy::too_many_arguments)]
pub fn time_steps(
    mc: &ModelConfig,
    train: &TrainSection,
    device: Device,
    precision: Precision,
    batch: i64,
    warm: usize,
    steps: usize,
    next: &mut dyn FnMut() -> Result<(ModelInput, Tensor)>,
) -> Result<f64> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let model = Network::new(&vs.root(), mc)?;
    // As the trainer on CUDA (channels_last defaults to true there).
    if device.is_cuda() {
        crate::model::to_channels_last(&vs);
    }
    let mut opt = Optimizer::new(&vs, train);
    crate::torch_ext::set_tf32(precision.allows_tf32())?;
    let amp = precision == Precision::Bf16 && device.is_cuda();
    let mut times = Vec::with_capacity(steps);
    for s in 0..warm + steps {
        let (input, y) = next()?;
        sync(device);
        let t0 = std::time::Instant::now();
        // The trainer's own step: mixup on the face (a fixed partner, the reversed batch) and
        // both losses.
        let mix = Mixup {
            lambda: 0.7,
            perm: Tensor::arange(batch, (Kind::Int64, device)).flip([0]),
        };
        let loss = mgln_loss(
            &model,
            input,
            &y,
            None,
            (batch > 1).then_some(&mix),
            &Default::default(),
            amp,
        )?
        .total;
        opt.zero_grad();
        loss.backward();
        if train.grad_clip > 0.0 {
            opt.clip_grad_norm(train.grad_clip);
        }
        opt.step()?;
        sync(device);
        if s >= warm {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(times.get(times.len() / 2).copied().unwrap_or(f64::NAN))
}

fn channels_last_on_cuda(x: Tensor) -> Tensor {
    if x.device().is_cuda() {
        crate::model::channels_last(&x)
    } else {
        x
    }
}

/// Synthetic device-resident inputs of the paper's shapes (the face channels_last on CUDA, as
/// the loader gives it).
pub fn synthetic_input(mc: &ModelConfig, batch: i64, device: Device) -> (ModelInput, Tensor) {
    let opts = (Kind::Float, device);
    let t = mc.frames;
    let part = |(h, w): (i64, i64)| Tensor::randn([batch, t, 3, h, w], opts);
    (
        ModelInput {
            face: channels_last_on_cuda(Tensor::randn([batch, 3, mc.face.0, mc.face.1], opts)),
            parts: [part(mc.parts[0]), part(mc.parts[1]), part(mc.parts[2])],
        },
        Tensor::randint(mc.classes, [batch], (Kind::Int64, device)),
    )
}

/// A source of training-step inputs.
pub type InputSource = Box<dyn FnMut() -> Result<(ModelInput, Tensor)>>;

/// Inputs streamed from a cache through the real loader and device transform, cycling over it.
pub fn cache_inputs(
    cache_dir: &std::path::Path,
    batch: usize,
    device: Device,
) -> Result<(ModelConfig, InputSource)> {
    let cache = loader::open_cache(cache_dir)?;
    let layout = Layout::from_cache(&cache, None)?;
    let classes = cache.manifest().class_names.len() as i64;
    let mut mc = paper_config(classes, 1.0);
    mc.frames = layout.frames() as i64;
    mc.face = (layout.face.0 as i64, layout.face.1 as i64);
    mc.parts = layout.parts.map(|(h, w)| (h as i64, w as i64));
    let tf = DeviceTransform {
        device,
        face_size: mc.face,
        part_sizes: mc.parts,
        channels_last: true,
        parts: true,
    };
    let records: Vec<u64> = (0..cache.len()).collect();
    let mut epoch = 0u64;
    let mut rx = loader::stream(
        cache.clone(),
        layout.clone(),
        loader::epoch_order(&records, 0, 0, 0),
        batch,
        0,
        4,
        false,
    );
    let next = move || -> Result<(ModelInput, Tensor)> {
        loop {
            match rx.recv() {
                Ok(b) => {
                    let b = b?;
                    if b.n == batch {
                        return Ok(tf.apply(&b, &layout, None));
                    }
                }
                Err(_) => {
                    epoch += 1;
                    rx = loader::stream(
                        cache.clone(),
                        layout.clone(),
                        loader::epoch_order(&records, 0, 0, epoch),
                        batch,
                        0,
                        4,
                        false,
                    );
                }
            }
        }
    };
    Ok((mc, Box::new(next)))
}
