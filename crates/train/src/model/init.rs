//! The starting weights of a freshly built network (`model.init`).

use super::ModelConfig;
use crate::config::InitScheme;
use tch::{nn, Tensor};

/// Sets the starting weights of a freshly built network by `scheme` (see [`InitScheme`]).
///
/// `authors` draws every value from the project's counter-based generator keyed by
/// (`seed`, the variable's name): the weights depend on the seed alone, never on libtorch's
/// process-global generator, on other threads (parallel runs and tests) or on the order the
/// variables are visited. [`InitScheme::Tch`] leaves tch's initialisation (libtorch's generator,
/// seeded by the trainer) as it is.
pub fn initialise(vs: &nn::VarStore, cfg: &ModelConfig, scheme: InitScheme, seed: u64) {
    if scheme == InitScheme::Tch {
        return;
    }
    let lstm_bound = 1.0 / ((cfg.lstm_side * cfg.lstm_side) as f64).sqrt();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let leaf = name.rsplit('.').next().unwrap_or("");
            let mut rng = shard::KeyedRng::new(&[seed, 0x1_0417, shard::name_key(&name)]);
            let n = t.numel();
            let values: Option<Vec<f32>> = if name.contains(".offsets.") {
                // Offset convs start near zero, sampling on the grid: the per-channel offsets
                // N(0, 0.01) (oeway/pytorch-deform-conv), the DCN's offsets exactly 0.
                match (name.contains(".dcn."), leaf) {
                    (false, "weight") => {
                        Some((0..n).map(|_| (0.01 * rng.normal()) as f32).collect())
                    }
                    _ => Some(vec![0.0; n]),
                }
            } else if name.contains(".lstm.") {
                Some(
                    (0..n)
                        .map(|_| ((2.0 * rng.uniform() - 1.0) * lstm_bound) as f32)
                        .collect(),
                )
            } else if t.dim() == 1 && leaf == "weight" {
                // Batch norm scales (the only 1-d weights) start at 1, as PyTorch's (tch draws
                // them from U(0, 1)); running statistics keep their start (mean 0, variance 1).
                Some(vec![1.0; n])
            } else if leaf == "weight" && t.dim() == 4 {
                let s = t.size();
                let std = (2.0 / (s[0] * s[2] * s[3]) as f64).sqrt();
                Some((0..n).map(|_| (std * rng.normal()) as f32).collect())
            } else if leaf == "bias" {
                Some(vec![0.0; n])
            } else {
                None
            };
            if let Some(v) = values {
                let src = Tensor::from_slice(&v)
                    .view(t.size().as_slice())
                    .to_kind(t.kind())
                    .to_device(t.device());
                t.copy_(&src);
            }
        }
    });
}
