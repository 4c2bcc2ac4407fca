//! The building blocks MGLN's modules share: a padded conv, and optional batch norms behind it.

use tch::{nn, Tensor};

/// Batch norms `norms[i]` (when `on`) for the `i`-th of `channels.len()` convs under `p`, named
/// `<name><i>_bn`.
pub(super) fn norms(p: &nn::Path, name: &str, channels: &[i64], on: bool) -> Vec<nn::BatchNorm> {
    if !on {
        return Vec::new();
    }
    channels
        .iter()
        .enumerate()
        .map(|(i, &c)| nn::batch_norm2d(p / format!("{name}{i}_bn"), c, Default::default()))
        .collect()
}

/// `x` through batch norm `k` of `norms` when there is one.
pub(super) fn normed(x: Tensor, norms: &[nn::BatchNorm], k: usize, train: bool) -> Tensor {
    match norms.get(k) {
        Some(bn) => x.apply_t(bn, train),
        None => x,
    }
}

pub(super) fn conv(p: nn::Path, cin: i64, cout: i64, k: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        k,
        nn::ConvConfig {
            padding: k / 2,
            ..Default::default()
        },
    )
}
